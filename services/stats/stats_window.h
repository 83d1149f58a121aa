/* aetherbus - Apache-2.0
 *
 * stats_window: the last hour of the bus in 60 one-minute buckets aligned
 * to the epoch (half-open [m, m+1)), advancing with an injectable clock.
 * Owns the counts per bucket (accepted by name and source, failures by
 * kind and reason), duplicate suppression per minute (a Bloom filter),
 * the lag histograms and the heavy-hitter tenants. Bounded memory whatever
 * the input: names come from the catalog, other keys are capped tables
 * with an "other" row.
 */
#ifndef STATS_WINDOW_H
#define STATS_WINDOW_H

#include <jansson.h>
#include <stdint.h>

#include "ab_catalog.h"
#include "ab_consume.h"

#define STATS_BUCKETS 60
/** Events an event's occurredAt may lie ahead of receivedAt before it is
 *  counted as clock-skewed. */
#define STATS_SKEW_MS 1000

typedef struct stats_window_s stats_window_t;

/** @returns a window over \p cat's names, or NULL (out of memory). */
stats_window_t *stats_window_new(const ab_catalog_t *cat);
void stats_window_destroy(stats_window_t *w);

/**
 * @brief Counts one decoded record at wall time \p now_ms. Accepted
 *        events count in the minute of their receivedAt; failures in the
 *        minute of their receivedAt (or the record timestamp).
 */
void stats_window_add(stats_window_t *w, const ab_consume_rec_t *rec,
                      int64_t now_ms);

/** Filter and span of one answer. */
typedef struct stats_query_s {
        int minutes;            /**< 5, 15 or 60 */
        const char *name;       /**< NULL: all */
        const char *prefix;     /**< NULL: all */
        const char *company_id; /**< NULL: all (approximate, top-N only) */
} stats_query_t;

/** @returns the JSON answer of GET /admin/events/stats (new reference). */
json_t *stats_window_query(stats_window_t *w, const stats_query_t *q,
                           int64_t now_ms);

/** @returns the records counted as undecodable, late, skewed, duplicate. */
void stats_window_counters(stats_window_t *w, uint64_t *undecodable,
                           uint64_t *late, uint64_t *skewed,
                           uint64_t *duplicates);

#endif
