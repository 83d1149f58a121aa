/* aetherbus - Apache-2.0
 *
 * admin_deadletter: what aetherbus-admin does with <prefix>deadletter.
 * `list` prints each dead letter as one JSON line; `replay` produces the
 * events again to the topic they were read from, so the sink (its group
 * resumes there), audit and stats see them as they saw the first copy:
 * one path, with the sink's ordering, batching and retries, rather than a
 * second client of the sink that would bypass them. Audit keeps its one
 * row (same id and content); stats counts a replay within its duplicate
 * horizon once, an older one again.
 */
#ifndef ADMIN_DEADLETTER_H
#define ADMIN_DEADLETTER_H

#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "ab_catalog.h"
#include "ab_err.h"

typedef struct admin_dlq_filter_s {
        const char *name;  /**< event name, or a prefix ending in '*'; NULL: all */
        int64_t since_ms;  /**< dead-lettered at or after; 0: all */
} admin_dlq_filter_t;

/**
 * @brief Reads every record <prefix>deadletter holds now (to the high
 *        watermarks at start) and prints the matching ones to \p out;
 *        with \p replay, also produces them again (acks=all) and waits for
 *        each delivery. \p conf is copied for the clients.
 * @param matched, replayed, failed counts.
 * @returns AB_OK; AB_ERR_NOT_FOUND without the topic; AB_ERR_TIMEOUT or
 *          AB_ERR_KAFKA when the cluster does not answer.
 */
ab_err_t admin_deadletter_run(const rd_kafka_conf_t *conf,
                              const ab_catalog_t *cat, const char *prefix,
                              const admin_dlq_filter_t *filter, int replay,
                              int timeout_ms, FILE *out, size_t *matched,
                              size_t *replayed, size_t *failed, char *errstr,
                              size_t errstr_size);

#endif
