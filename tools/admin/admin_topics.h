/* aetherbus - Apache-2.0
 *
 * admin_topics: the topics the event catalog needs (TOPIC_PREFIX + every
 * catalog prefix, plus rejected and deadletter), what the cluster has, and
 * creating the missing ones with librdkafka's Admin API. The command line
 * and the exit codes stay in main.c.
 */
#ifndef ADMIN_TOPICS_H
#define ADMIN_TOPICS_H

#include <stddef.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "ab_catalog.h"
#include "ab_err.h"

typedef struct admin_topics_s admin_topics_t;

/**
 * @brief The catalog's topics under \p topic_prefix, in catalog order,
 *        rejected and deadletter last. Does no I/O.
 * @returns a new set (free with admin_topics_destroy()) or NULL with errstr,
 *          e.g. when \p topic_prefix makes an illegal topic name.
 */
admin_topics_t *admin_topics_new(const ab_catalog_t *cat,
                                 const char *topic_prefix, char *errstr,
                                 size_t errstr_size);

/** @brief Frees \p at; NULL is a no-op. */
void admin_topics_destroy(admin_topics_t *at);

/** @returns the number of topics the catalog needs. */
size_t admin_topics_count(const admin_topics_t *at);

/**
 * @brief What admin_topics_create() asks for: \p partitions (>= 1) and
 *        \p replication_factor (>= 1, or -1 for the broker's default).
 *        Defaults: 3 and -1.
 */
void admin_topics_set_layout(admin_topics_t *at, int partitions,
                             int replication_factor);

/**
 * @brief Adds a topic config "key=value" for the topics
 *        admin_topics_create() makes; existing topics are compared.
 * @returns AB_OK, AB_ERR_INVALID (not key=value) or AB_ERR_TOO_LARGE
 *          (too many) with errstr.
 */
ab_err_t admin_topics_add_config(admin_topics_t *at, const char *kv,
                                 char *errstr, size_t errstr_size);

/**
 * @brief Reads the cluster's metadata and prints, per needed topic, whether
 *        it exists and its partition and replica counts, then a summary.
 * @param missing_cntp set to the number of missing topics.
 * @returns AB_OK, or AB_ERR_KAFKA / AB_ERR_TIMEOUT with errstr when the
 *          cluster cannot be read.
 */
ab_err_t admin_topics_list(admin_topics_t *at, rd_kafka_t *rk, int timeout_ms,
                           FILE *out, size_t *missing_cntp, char *errstr,
                           size_t errstr_size);

/**
 * @brief Creates the missing topics (rd_kafka_CreateTopics), leaves the
 *        existing ones alone and reports them: fewer partitions than asked,
 *        or a config that differs from an added one, is a mismatch, never
 *        changed. Waits (bounded) until the new topics are in the metadata
 *        and prints "created N, existing M, mismatched K, failed F".
 * @param failed_cntp set to the number of topics that could not be made.
 * @returns AB_OK (check *failed_cntp), or with errstr: AB_ERR_UNSUPPORTED
 *          when the cluster has no controller to create topics (librdkafka's
 *          mock cluster), AB_ERR_KAFKA / AB_ERR_TIMEOUT when it cannot be
 *          read or the request as a whole failed.
 */
ab_err_t admin_topics_create(admin_topics_t *at, rd_kafka_t *rk,
                             int timeout_ms, FILE *out, size_t *failed_cntp,
                             char *errstr, size_t errstr_size);

#endif
