/* aetherbus - Apache-2.0
 *
 * ab_metrics: a registry of counters, gauges and histograms rendered in
 * the Prometheus text exposition format (version 0.0.4).
 *
 * Metrics are registered once at start-up (name, help, label names) and
 * return a handle; the hot path only increments through handles, with
 * relaxed atomics and no lock. A labelled family holds a small bounded set
 * of label values (AB_METRICS_MAX_SERIES): ab_metric_with() finds an
 * existing series without locking or allocating, and creates a missing one
 * under the family lock. What to count and when stays with the callers.
 */
#ifndef AB_METRICS_H
#define AB_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "ab_err.h"

typedef struct ab_metrics_s ab_metrics_t;
typedef struct ab_metric_s ab_metric_t;

/** Most series one labelled family holds; ab_metric_with() returns NULL
 *  beyond it (and logs one warning per family). */
#define AB_METRICS_MAX_SERIES 256

/** Most label names per family. */
#define AB_METRICS_MAX_LABELS 8

/** Latency buckets in seconds (0.5 ms .. 10 s), the default histogram
 *  layout when ab_metrics_histogram() gets no bounds. */
extern const double ab_metrics_latency_buckets[];
extern const size_t ab_metrics_latency_buckets_cnt;

/**
 * @brief Creates a registry whose metric names all start with
 *        "aetherbus_<service>_".
 * @param service e.g. "ingest"; NULL or "" gives the prefix "aetherbus_".
 * @returns the registry (free with ab_metrics_destroy()), or NULL with
 *          errstr filled.
 */
ab_metrics_t *ab_metrics_new(const char *service, char *errstr,
                             size_t errstr_size);

/** @brief Frees the registry and every handle it returned; NULL is a
 *         no-op. No increment may run concurrently. */
void ab_metrics_destroy(ab_metrics_t *reg);

/**
 * @brief Registers a counter (monotonic uint64).
 * @param name without the prefix, e.g. "events_accepted_total".
 * @param help one line of help text (escaped on output).
 * @param labels comma-separated label names ("route,status"), or NULL.
 * @returns the family handle; registering the same name again with the same
 *          type and labels returns the same handle. NULL with errstr filled
 *          on a bad name or label, or a clash with another type/labels.
 *          The registry owns the handle.
 */
ab_metric_t *ab_metrics_counter(ab_metrics_t *reg, const char *name,
                                const char *help, const char *labels,
                                char *errstr, size_t errstr_size);

/** @brief Registers a gauge (a double that goes up and down).
 *  @returns as ab_metrics_counter(). */
ab_metric_t *ab_metrics_gauge(ab_metrics_t *reg, const char *name,
                              const char *help, const char *labels,
                              char *errstr, size_t errstr_size);

/**
 * @brief Registers an unlabelled gauge whose value is read from \p fn at
 *        each render (queue lengths, memory). \p fn runs in the rendering
 *        thread and must be thread-safe.
 * @returns as ab_metrics_counter().
 */
ab_metric_t *ab_metrics_gauge_fn(ab_metrics_t *reg, const char *name,
                                 const char *help,
                                 double (*fn)(void *opaque), void *opaque,
                                 char *errstr, size_t errstr_size);

/**
 * @brief Registers a histogram.
 * @param bounds strictly increasing upper bounds (le), without +Inf; NULL
 *        uses ab_metrics_latency_buckets. Copied.
 * @returns as ab_metrics_counter().
 */
ab_metric_t *ab_metrics_histogram(ab_metrics_t *reg, const char *name,
                                  const char *help, const char *labels,
                                  const double *bounds, size_t bounds_cnt,
                                  char *errstr, size_t errstr_size);

/**
 * @brief Finds or creates the series of a labelled family.
 * @param values exactly one value per label name, in order, followed by
 *        NULL (AB_METRIC_WITH() adds the NULL). Copied on creation.
 * @returns the series handle (owned by the registry, valid until
 *          ab_metrics_destroy()), or NULL when the family is full, the value
 *          count is wrong, or memory ran out. Lock-free and allocation-free
 *          when the series exists; callers on a hot path may keep the handle.
 */
ab_metric_t *ab_metric_with(ab_metric_t *m, const char *const *values);

/** @brief ab_metric_with() with the values inline:
 *  AB_METRIC_WITH(m, "/events/ingest", "202"). */
#define AB_METRIC_WITH(m, ...)                                                 \
        ab_metric_with((m), (const char *const[]){__VA_ARGS__, NULL})

/*
 * Hot-path operations. Each takes an unlabelled metric or a series from
 * ab_metric_with(); NULL is a no-op (so a full family drops, never
 * crashes); an operation that does not fit the type is ignored, and so is
 * an update to a labelled family's own handle.
 */

/** @brief Adds 1 to a counter. */
void ab_metric_inc(ab_metric_t *m);

/** @brief Adds \p n to a counter. */
void ab_metric_add(ab_metric_t *m, uint64_t n);

/** @brief Sets a gauge. */
void ab_metric_set(ab_metric_t *m, double v);

/** @brief Adds \p d (may be negative) to a gauge. */
void ab_metric_gauge_add(ab_metric_t *m, double d);

/** @brief Records one observation in a histogram (NaN is ignored). */
void ab_metric_observe(ab_metric_t *m, double v);

/** @returns a counter's value, or a gauge's value truncated to uint64
 *           (tests, readiness checks); 0 for NULL or a histogram. */
uint64_t ab_metric_value(const ab_metric_t *m);

/**
 * @brief Renders every metric in registration order (series in creation
 *        order) in the Prometheus text format.
 * @param bufp set to a NUL-terminated malloc()ed string the caller frees.
 * @param lenp set to its length (may be NULL).
 * @returns AB_OK or AB_ERR_NOMEM.
 */
ab_err_t ab_metrics_render(ab_metrics_t *reg, char **bufp, size_t *lenp);

#endif
