/* aetherbus - Apache-2.0
 *
 * stats_window: the last hour of the bus in 60 one-minute buckets aligned
 * to the epoch (half-open [m, m+1)), advancing with an injectable clock.
 * Owns the counts per bucket (accepted by name and source, failures by
 * kind and reason), duplicate suppression over the last minutes (Bloom
 * filters),
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
/** Most minutes the duplicate check can look back. */
#define STATS_DEDUPE_MAX 60

typedef struct stats_window_s stats_window_t;

typedef struct stats_window_conf_s {
        int64_t future_ms;  /**< receivedAt ahead of the clock still counted */
        int dedupe_minutes; /**< 0 (off) .. STATS_DEDUPE_MAX; 1 MiB each */
} stats_window_conf_t;

/** Records by what became of them, since start. */
typedef struct stats_counters_s {
        uint64_t records;     /**< every record handed to the window */
        uint64_t undecodable; /**< not an envelope nor a failure record */
        uint64_t late;        /**< older than the hour when read */
        uint64_t future;      /**< ahead of the clock beyond future_ms */
        uint64_t skewed;      /**< occurredAt ahead of receivedAt */
        uint64_t duplicates;  /**< an id already counted in the horizon */
        uint64_t dedupe_unchecked; /**< counted without the check (full) */
} stats_counters_t;

/** Defaults: 5 minutes ahead, 5 minutes of duplicates. */
void stats_window_conf_init(stats_window_conf_t *conf);

/** @returns a window over \p cat's names, or NULL (out of memory). */
stats_window_t *stats_window_new(const ab_catalog_t *cat,
                                 const stats_window_conf_t *conf);
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

/** @brief Copies the counters. */
void stats_window_counters(stats_window_t *w, stats_counters_t *c);

#endif
