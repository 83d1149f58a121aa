/* aetherbus - Apache-2.0
 *
 * admin_reconcile: `aetherbus-admin reconcile`. Compares, per prefix and
 * minute of receivedAt, what Kafka holds (offsets by time on each events
 * topic partition: records carry receivedAt as their timestamp) with what
 * each stage counted (GET /admin/stages of ingest, stats, sink, audit) and
 * prints where they differ once a minute is older than the grace.
 *
 * Kafka is the truth for "accepted": the services' counters live in memory
 * and restart at 0, so each says from when it counts every event it sees
 * (countsFrom); a minute before it is not compared, a minute it falls into
 * is compared against the records Kafka holds from that instant on. Where
 * the broker cannot look offsets up by time (librdkafka's mock, the
 * devbroker), ingest's accepted figures stand in for Kafka's.
 *
 * What stays out: the command line (main.c) and the services' counting
 * (common/ab_stage.c).
 */
#ifndef ADMIN_RECONCILE_H
#define ADMIN_RECONCILE_H

#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "ab_catalog.h"
#include "ab_err.h"

/** The stages reconcile reads, in column order. */
typedef enum {
        ADMIN_RC_INGEST = 0,
        ADMIN_RC_STATS,
        ADMIN_RC_SINK,
        ADMIN_RC_AUDIT,
        ADMIN_RC_SERVICES
} admin_rc_service_t;

typedef struct admin_rc_conf_s {
        int64_t since_ms;  /**< first minute compared: the one at or after */
        int64_t grace_ms;  /**< a minute is compared once its end is older */
        /** Base URLs of each service ("http://host:port"); several replicas
         *  of one service comma-separated (their figures are summed);
         *  NULL: not configured, skipped with a note. */
        const char *urls[ADMIN_RC_SERVICES];
        const char *admin_token; /**< x-admin-token, or NULL */
        int timeout_ms;
} admin_rc_conf_t;

/**
 * @brief Runs the comparison and prints the minutes that differ to \p out
 *        (nothing when every stage agrees) and notes to \p notes.
 *        \p conf is copied for the client.
 * @param missing set to the events accepted but missing downstream (or
 *        acknowledged by ingest but not in Kafka), summed.
 * @returns AB_OK when the comparison ran; AB_ERR_KAFKA/AB_ERR_TIMEOUT when
 *          the cluster could not be read, AB_ERR_UNAVAILABLE when a
 *          configured service did not answer, AB_ERR_NOT_FOUND when there
 *          is nothing to compare against (no offsets by time, no ingest).
 */
ab_err_t admin_reconcile_run(const rd_kafka_conf_t *conf,
                             const ab_catalog_t *cat, const char *topic_prefix,
                             const admin_rc_conf_t *rc, FILE *out,
                             FILE *notes, uint64_t *missing, char *errstr,
                             size_t errstr_size);

#endif
