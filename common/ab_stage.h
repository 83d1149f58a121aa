/* aetherbus - Apache-2.0
 *
 * ab_stage: what one service did with events, counted in event time. Each
 * stage of the pipeline (accepted by ingest, consumed by stats, sunk and
 * dead-lettered by sink, audited by audit) counts its events per prefix in
 * one-minute buckets of receivedAt, so the stages can be compared minute by
 * minute (aetherbus-admin reconcile) whatever each one's lag.
 *
 * Bounded: a ring of the last AB_STAGE_MINUTES minutes per (stage, prefix),
 * the catalog's prefixes plus AB_STAGE_MAX_OTHER others, then one "_other"
 * slot; older buckets roll off. Thread-safe (ingest counts on the
 * producer's delivery-report thread, consumers on their loop, the HTTP
 * threads read). Two views: per-prefix totals on /metrics as
 * aetherbus_<svc>_stage_events_total{stage,prefix} (a handful of series per
 * service, so Prometheus cardinality stays flat; a minute label would add
 * a series a minute), and the per-minute figures as JSON on
 * GET /admin/stages for reconcile. What to count and when (after the work
 * is durable) stays with the services.
 */
#ifndef AB_STAGE_H
#define AB_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ab_auth.h"
#include "ab_catalog.h"
#include "ab_err.h"
#include "ab_http.h"
#include "ab_metrics.h"

/** Minutes each (stage, prefix) keeps: 3 hours. */
#define AB_STAGE_MINUTES 180

/** Prefixes outside the catalog (ALLOW_UNKNOWN_PREFIXES) kept by name;
 *  beyond, they share the slot "_other". */
#define AB_STAGE_MAX_OTHER 16

/** Most stages one service counts ("sunk,deadlettered"). */
#define AB_STAGE_MAX_STAGES 4

/** The width of a bucket: events whose receivedAt (> 0) falls in the same
 *  AB_STAGE_MINUTE_MS count the same as one ab_stage_count() of them all. */
#define AB_STAGE_MINUTE_MS 60000LL

typedef struct ab_stage_s ab_stage_t;

/**
 * @brief Creates the counters of one service.
 * @param metrics registers stage_events_total{stage,prefix} in it (may be
 *        NULL: no /metrics view).
 * @param service "ingest": named in the JSON.
 * @param stages comma-separated stage names, in the order of the index
 *        ab_stage_count() takes ("sunk,deadlettered").
 * @param cat the catalog whose prefixes get a slot each (not kept).
 * @param counts_from_ms from when this process sees every event it counts
 *        (its start for a consumer resuming a group; the replay start for
 *        one re-reading the topics); reconcile compares only the minutes
 *        that begin at or after it. 0: now.
 * @returns the counters (ab_stage_destroy()), or NULL with errstr.
 */
ab_stage_t *ab_stage_new(ab_metrics_t *metrics, const char *service,
                         const char *stages, const ab_catalog_t *cat,
                         int64_t counts_from_ms, char *errstr,
                         size_t errstr_size);

/** @brief Moves countsFrom once the service knows better (a consumer
 *         whose replay start is fixed only when it starts reading). */
void ab_stage_set_counts_from(ab_stage_t *st, int64_t counts_from_ms);

/** @brief Frees; NULL is a no-op. No count may run concurrently. */
void ab_stage_destroy(ab_stage_t *st);

/**
 * @brief Counts \p n events of \p prefix received at \p received_at_ms in
 *        stage \p stage. A receivedAt outside the ring (older than
 *        AB_STAGE_MINUTES, or more than 5 minutes ahead of this clock)
 *        counts in the totals only, and in "outOfWindow". NULL \p st, a
 *        bad stage index or a NULL prefix is a no-op.
 */
void ab_stage_count(ab_stage_t *st, int stage, const char *prefix,
                    int64_t received_at_ms, uint64_t n);

/**
 * @returns the prefix of an event topic (\p topic without \p topic_prefix),
 *          or NULL when \p topic does not start with it or is one of the
 *          system topics (rejected, deadletter, audit's checkpoints).
 */
const char *ab_stage_topic_prefix(const char *topic, const char *topic_prefix);

/**
 * @brief The per-minute figures of the minutes that begin at or after
 *        \p since_ms: {service, startedAt(Ms), countsFrom(Ms), minutesKept,
 *        outOfWindow, minutes: [{stage, prefix, minute, minuteMs, count}]}.
 * @returns a new document (json_decref()), NULL when out of memory.
 */
json_t *ab_stage_json(ab_stage_t *st, int64_t since_ms);

/**
 * @brief GET /admin/stages[?since=RFC3339|age]: answers 405 to another
 *        method, lets \p auth check the admin token (it answers 401/403),
 *        400 on a bad since, else 200 with ab_stage_json().
 */
void ab_stage_respond(ab_stage_t *st, ab_auth_t *auth, ab_http_req_t *req);

#endif
