/* aetherbus - Apache-2.0
 *
 * ab_consume: the consume loop every consumer service shares (stats, sink,
 * audit). Owns reading every topic of the bus in batches, decoding each
 * record into what it says (an accepted envelope from Avro, or a rejected
 * or dead-letter failure record, or "undecodable" with the reason), the
 * at-least-once bookkeeping (an offset is stored only when the service says
 * the record's work is durable, then committed), pause and resume per
 * partition, the start position by timestamp for services that rebuild
 * state from Kafka, the catch-up progress behind their readiness, and the
 * consumer-lag metrics (log end - done, per partition).
 *
 * What stays out: what a service does with a record, and when its work is
 * durable: it tells us with ab_consume_done().
 */
#ifndef AB_CONSUME_H
#define AB_CONSUME_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "ab_avro.h"
#include "ab_envelope.h"
#include "ab_err.h"
#include "ab_kafka.h"
#include "ab_metrics.h"
#include "ab_record.h"

/** What a record turned out to be. */
typedef enum {
        AB_CONSUME_ACCEPTED = 0, /**< an envelope (Avro single-object) */
        AB_CONSUME_REJECTED,     /**< a <prefix>rejected failure record */
        AB_CONSUME_DEADLETTER,   /**< a <prefix>deadletter failure record */
        AB_CONSUME_UNDECODABLE,  /**< neither: counted and skipped */
} ab_consume_kind_t;

/** One record read, decoded. ab_consume_rec_clear() releases it. */
typedef struct ab_consume_rec_s {
        ab_consume_kind_t kind;
        const char *topic;        /**< valid while the record is */
        int32_t partition;
        int64_t offset;
        int64_t timestamp_ms;     /**< Kafka timestamp, -1 when absent */
        const void *key;          /**< NULL when absent */
        size_t key_len;
        const void *value;        /**< the raw value */
        size_t value_len;
        ab_envelope_t env;        /**< ACCEPTED: a view (ab_avro_decode_view():
                                       payload as text in payload_json) */
        ab_record_failure_t fail; /**< REJECTED/DEADLETTER, in fail_doc */
        json_t *fail_doc;
        char error[160];          /**< UNDECODABLE: why */
        rd_kafka_message_t *msg;  /**< owned */
} ab_consume_rec_t;

/** Settings; zero fields take the defaults shown. */
typedef struct ab_consume_conf_s {
        const char *brokers;
        /** NULL: no group; every partition of the topics is assigned (each
         *  replica reads everything, nothing is committed). */
        const char *group_id;
        const char *const *topics; /**< names, or '^' regexes */
        size_t topic_cnt;
        const char *topic_prefix;  /**< tells rejected/deadletter apart */
        const ab_avro_codec_t *codec; /**< not owned */
        /** No group: start at the first record with timestamp >= this
         *  (ms since the epoch); 0 starts at the beginning. Where the
         *  broker cannot answer a timestamp lookup (the devbroker), the
         *  beginning. */
        int64_t start_ms;
        int session_timeout_ms;
        const char *const *props;  /**< more librdkafka name, value pairs */
        ab_metrics_t *metrics;     /**< registers the consumer metrics */
        /** Group mode hooks, see ab_consumer_conf_t; may be NULL. */
        void (*on_assign)(void *opaque, rd_kafka_topic_partition_list_t *parts);
        void (*on_revoke)(void *opaque,
                          const rd_kafka_topic_partition_list_t *parts,
                          int lost);
        void *opaque;
} ab_consume_conf_t;

typedef struct ab_consume_s ab_consume_t;

/**
 * @returns a consumer (ab_consume_destroy()) that reads nothing until
 *          ab_consume_start(), or NULL with errstr.
 */
ab_consume_t *ab_consume_new(const ab_consume_conf_t *conf, char *errstr,
                             size_t errstr_size);

/**
 * @brief Joins the group, or assigns every partition at the start
 *        position (then the catch-up target is each partition's log end
 *        now).
 * @returns AB_OK, AB_ERR_NOT_FOUND naming a missing topic,
 *          AB_ERR_UNAVAILABLE when the brokers do not answer, or an error.
 */
ab_err_t ab_consume_start(ab_consume_t *c, int timeout_ms, char *errstr,
                          size_t errstr_size);

/**
 * @brief Reads up to \p max records, waiting up to \p timeout_ms for the
 *        first, and decodes each into \p recs[i]. Also serves rebalances,
 *        commits and errors, and refreshes the lag metrics.
 * @returns the number of records filled (ab_consume_rec_clear() each).
 */
size_t ab_consume_poll(ab_consume_t *c, ab_consume_rec_t *recs, size_t max,
                       int timeout_ms);

/** @brief Releases what \p rec holds. */
void ab_consume_rec_clear(ab_consume_rec_t *rec);

/**
 * @brief Marks \p rec's work durable: its offset + 1 is stored for the
 *        next commit (group mode) and counts as done for the lag.
 * @returns AB_OK, or AB_ERR_KAFKA when the partition is no longer ours
 *          (its work will be redone by the new owner).
 */
ab_err_t ab_consume_done(ab_consume_t *c, const ab_consume_rec_t *rec);

/** @brief ab_consume_done() by position: \p offset is the record's. */
ab_err_t ab_consume_done_at(ab_consume_t *c, const char *topic,
                            int32_t partition, int64_t offset);

/**
 * @brief Commits what is stored (group mode); \p async returns at once.
 * @returns AB_OK (also when nothing is stored) or an error with errstr.
 */
ab_err_t ab_consume_commit(ab_consume_t *c, int async, char *errstr,
                           size_t errstr_size);

/**
 * @brief Pauses or resumes fetching of one partition (backpressure while
 *        its work is retried); polling must go on.
 */
ab_err_t ab_consume_pause_partition(ab_consume_t *c, const char *topic,
                                    int32_t partition, int pause);

/**
 * @brief Starts partitions at explicit offsets instead of the group's
 *        committed ones: call from on_assign (e.g. positions kept in a
 *        database). \p offset is the next record to read.
 */
void ab_consume_set_offset(rd_kafka_topic_partition_list_t *parts,
                           const char *topic, int32_t partition,
                           int64_t offset);

/**
 * @brief Whether every assigned partition was read up to its log end as
 *        it was at ab_consume_start() (no group only; a group consumer is
 *        always caught up). \p progress says how far ("12000 of 50000
 *        records, 3 of 42 partitions done").
 */
int ab_consume_caught_up(ab_consume_t *c, char *progress, size_t progress_size);

/** @returns total lag in records over the assignment (log end - done)
 *           as ab_consume_poll() last refreshed it (every 2 s, with the
 *           consumer_lag metrics), -1 before; any thread. */
int64_t ab_consume_lag(const ab_consume_t *c);

/** @returns as ab_consumer_fatal(). */
ab_err_t ab_consume_fatal(ab_consume_t *c, char *errstr, size_t errstr_size);

/** @returns the consumer wrapper (owned by \p c). */
ab_consumer_t *ab_consume_consumer(ab_consume_t *c);

/** @returns "accepted", "rejected", "deadletter" or "undecodable". */
const char *ab_consume_kind_name(ab_consume_kind_t kind);

/**
 * @brief Decodes one raw record value as it would be on \p topic; what
 *        ab_consume_poll() does per record, for tests and tools.
 *        \p rec->msg stays NULL.
 */
void ab_consume_decode(ab_consume_t *c, const char *topic, const void *value,
                       size_t len, ab_consume_rec_t *rec);

/** @brief Commits (sync), leaves the group and frees; NULL is a no-op. */
void ab_consume_destroy(ab_consume_t *c);

#endif
