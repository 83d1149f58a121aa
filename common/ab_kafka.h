/* aetherbus - Apache-2.0
 *
 * ab_kafka: the Kafka client wrappers every service uses. Owns the client
 * configuration (our defaults, the RDKAFKA_<property> passthrough, logging
 * of librdkafka into ab_log), the producer (acks=all, idempotence,
 * delivery reports, backpressure, bounded flush, readiness) and the
 * consumer (manual offset store and commit, pause and resume, rebalance
 * handling, clean close).
 *
 * What stays out: what goes into a record (ab_avro encodes the value, the
 * catalog picks the topic, ab_cloudevents makes an envelope's record) and
 * any retry policy (callers decide, e.g. 503).
 */
#ifndef AB_KAFKA_H
#define AB_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "ab_err.h"

/** Environment variables with this prefix reach librdkafka. */
#define AB_KAFKA_ENV_PREFIX "RDKAFKA_"

/* ------------------------------------------------------------------ */
/* Configuration                                                       */
/* ------------------------------------------------------------------ */

/**
 * @brief Maps an environment variable name to a librdkafka property:
 *        "RDKAFKA_SASL_MECHANISMS" -> "sasl.mechanisms" (prefix dropped,
 *        lowercased, '_' -> '.'). \p name may carry "=value", which is
 *        ignored.
 * @returns AB_OK, or AB_ERR_INVALID when \p name lacks the prefix, names
 *          no property, or the property does not fit in \p prop_size.
 */
ab_err_t ab_kafka_env2prop(const char *name, char *prop, size_t prop_size);

/**
 * @brief rd_kafka_conf_set() with our error shape: errstr names the
 *        property ("sasl.mechanisms: Invalid value ...").
 * @returns AB_OK, AB_ERR_UNKNOWN (no such property) or AB_ERR_INVALID
 *          (bad value).
 */
ab_err_t ab_kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
                           const char *value, char *errstr,
                           size_t errstr_size);

/**
 * @brief Applies every RDKAFKA_<property>=value of \p envp (NULL-terminated
 *        "NAME=value" strings; NULL means the process environment).
 *        Stops at the first property librdkafka rejects; the caller treats
 *        that as a configuration error (exit 2).
 * @returns AB_OK or the error of ab_kafka_conf_set(); errstr names the
 *          variable and the property.
 */
ab_err_t ab_kafka_conf_env(rd_kafka_conf_t *conf, char *const *envp,
                           char *errstr, size_t errstr_size);

/**
 * @brief Routes librdkafka's log_cb and error_cb into ab_log (component
 *        "kafka"). Fatal errors are logged at error level with their
 *        reason; the wrappers below also record them.
 */
void ab_kafka_conf_logging(rd_kafka_conf_t *conf);

/**
 * @brief Builds a client configuration: our defaults, bootstrap.servers =
 *        \p brokers (may be NULL), then \p props (NULL-terminated
 *        name, value pairs, may be NULL), then the RDKAFKA_ environment
 *        passthrough (which wins), with logging routed into ab_log.
 * @returns a new conf (rd_kafka_conf_destroy() it unless rd_kafka_new()
 *          took it) or NULL with errstr naming the rejected property.
 */
rd_kafka_conf_t *ab_kafka_conf_new(const char *brokers,
                                   const char *const *props, char *errstr,
                                   size_t errstr_size);

/**
 * @returns the ab_err_t for a librdkafka error: __QUEUE_FULL is
 *          AB_ERR_UNAVAILABLE, timeouts AB_ERR_TIMEOUT, MSG_SIZE_TOO_LARGE
 *          AB_ERR_TOO_LARGE, no error AB_OK, the rest AB_ERR_KAFKA.
 */
ab_err_t ab_kafka_err2ab(rd_kafka_resp_err_t err);

/**
 * @brief Readiness: one metadata request bounded by \p timeout_ms; when
 *        \p topics is non-NULL each of the \p topic_cnt topics must exist.
 * @returns AB_OK, AB_ERR_UNAVAILABLE when no broker answers, or
 *          AB_ERR_NOT_FOUND with errstr "topic <name> does not exist".
 */
ab_err_t ab_kafka_ready(rd_kafka_t *rk, const char *const *topics,
                        size_t topic_cnt, int timeout_ms, char *errstr,
                        size_t errstr_size);

/* ------------------------------------------------------------------ */
/* Producer                                                            */
/* ------------------------------------------------------------------ */

typedef struct ab_producer_s ab_producer_t;

/** One delivery report; valid only during the callback. */
typedef struct ab_delivery_s {
        void *msg_opaque;            /**< as given to produce */
        ab_err_t err;                /**< AB_OK when the record is durable */
        rd_kafka_resp_err_t kafka_err;
        const char *errstr;          /**< NULL on success */
        const char *topic;
        int32_t partition;
        int64_t offset;              /**< -1 when unknown */
} ab_delivery_t;

/** Runs on the thread that polls (ab_producer_poll() or the poll thread). */
typedef void(ab_delivery_cb_t)(const ab_delivery_t *dr, void *opaque);

/** Producer settings; ab_producer_conf_init() fills the defaults. */
typedef struct ab_producer_conf_s {
        const char *brokers;         /**< bootstrap.servers, required */
        int linger_ms;               /**< -1 (default) keeps librdkafka's */
        int batch_num_messages;      /**< 0 keeps librdkafka's */
        int batch_size;              /**< bytes; 0 keeps librdkafka's */
        int queue_max_messages;      /**< local queue bound; 0 keeps default */
        int queue_max_kbytes;        /**< 0 keeps librdkafka's */
        int delivery_timeout_ms;     /**< message.timeout.ms; 0 keeps default */
        int poll_thread;             /**< non-zero: a thread runs the polls */
        const char *const *props;    /**< more name, value pairs or NULL */
        ab_delivery_cb_t *dr_cb;     /**< may be NULL */
        void *opaque;                /**< second argument of dr_cb */
} ab_producer_conf_t;

/** Counters of one producer. */
typedef struct ab_producer_stats_s {
        uint64_t produced;    /**< accepted into the local queue */
        uint64_t delivered;   /**< acknowledged by the brokers */
        uint64_t failed;      /**< delivery reports with an error */
        uint64_t queue_full;  /**< produce calls refused as backpressure */
        int outq_len;         /**< messages + requests not yet acknowledged */
} ab_producer_stats_t;

/** @brief Fills \p pc with the defaults (no brokers, no callback). */
void ab_producer_conf_init(ab_producer_conf_t *pc);

/**
 * @brief Creates a producer: acks=all, enable.idempotence=true plus
 *        \p pc, with RDKAFKA_ passthrough (acks and idempotence are not
 *        overridable).
 * @returns a new producer (ab_producer_destroy()) or NULL with errstr; a
 *          rejected property is named in errstr.
 */
ab_producer_t *ab_producer_new(const ab_producer_conf_t *pc, char *errstr,
                               size_t errstr_size);

/**
 * @brief Stops the poll thread, purges what is still queued (those records
 *        get a failed delivery report, so msg_opaques are released) and
 *        frees. Call ab_producer_flush() first to deliver. NULL is a no-op.
 */
void ab_producer_destroy(ab_producer_t *p);

/**
 * @brief Queues one record. \p key and \p hdrs may be NULL. The value and
 *        key are copied. \p hdrs is taken only on success; on error the
 *        caller still owns it. \p timestamp_ms is the record's timestamp
 *        (CreateTime, ms since the epoch); 0 means now.
 * @returns AB_OK, AB_ERR_UNAVAILABLE when the local queue is full
 *          (backpressure: answer 503, never spin), or another error with
 *          errstr. \p msg_opaque comes back in the delivery report, which
 *          is made for every AB_OK.
 */
ab_err_t ab_producer_produce(ab_producer_t *p, const char *topic,
                             const void *key, size_t key_len,
                             const void *value, size_t value_len,
                             rd_kafka_headers_t *hdrs, int64_t timestamp_ms,
                             void *msg_opaque, char *errstr,
                             size_t errstr_size);

/**
 * @brief Serves delivery reports and client events for up to
 *        \p timeout_ms. Not needed with poll_thread set (harmless).
 * @returns the number of events served.
 */
int ab_producer_poll(ab_producer_t *p, int timeout_ms);

/**
 * @brief Waits up to \p timeout_ms for every queued record to be
 *        delivered (delivery reports run).
 * @returns AB_OK, or AB_ERR_TIMEOUT after logging the outq_len left.
 */
ab_err_t ab_producer_flush(ab_producer_t *p, int timeout_ms);

/**
 * @brief Readiness of the producer's cluster, see ab_kafka_ready(); a
 *        metadata request that times out while librdkafka has not
 *        reported every broker down is AB_ERR_TIMEOUT ("Kafka slow"), not
 *        AB_ERR_UNAVAILABLE ("Kafka not reachable"): the caller decides
 *        whether slow is still serving.
 */
ab_err_t ab_producer_ready(ab_producer_t *p, const char *const *topics,
                           size_t topic_cnt, int timeout_ms, char *errstr,
                           size_t errstr_size);

/** @returns rd_kafka_outq_len(): records and requests not yet done. */
int ab_producer_outq_len(ab_producer_t *p);

/** @brief Copies the counters of \p p into \p st. */
void ab_producer_stats(ab_producer_t *p, ab_producer_stats_t *st);

/**
 * @returns AB_OK, or AB_ERR_KAFKA with the reason in errstr once the
 *          client raised a fatal error (the service drains and exits).
 */
ab_err_t ab_producer_fatal(ab_producer_t *p, char *errstr, size_t errstr_size);

/** @returns the librdkafka handle (owned by \p p), e.g. for metadata. */
rd_kafka_t *ab_producer_handle(ab_producer_t *p);

/* ------------------------------------------------------------------ */
/* Consumer                                                            */
/* ------------------------------------------------------------------ */

typedef struct ab_consumer_s ab_consumer_t;

/** Consumer settings; ab_consumer_conf_init() fills the defaults. */
typedef struct ab_consumer_conf_s {
        const char *brokers;           /**< bootstrap.servers, required */
        const char *group_id;          /**< NULL: no group, assign mode */
        const char *auto_offset_reset; /**< "earliest" (default) or "latest" */
        int session_timeout_ms;        /**< 0 keeps librdkafka's */
        const char *const *props;      /**< more name, value pairs or NULL */
        /** Group mode: called with the partitions about to be assigned;
         *  it may set their offsets (e.g. from a store of its own). May
         *  be NULL. */
        void (*on_assign)(void *opaque, rd_kafka_topic_partition_list_t *parts);
        /** Group mode: called with the partitions about to be revoked or
         *  lost, before the stored offsets are committed, so the service
         *  stores what is done and drops the rest. May be NULL. */
        void (*on_revoke)(void *opaque,
                          const rd_kafka_topic_partition_list_t *parts,
                          int lost);
        void *opaque;                  /**< first argument of the hooks */
} ab_consumer_conf_t;

/** @brief Fills \p cc with the defaults. */
void ab_consumer_conf_init(ab_consumer_conf_t *cc);

/**
 * @brief Creates a consumer with enable.auto.commit=false and
 *        enable.auto.offset.store=false (not overridable): offsets move
 *        only through ab_consumer_store() and the commit calls.
 * @returns a new consumer (ab_consumer_destroy()) or NULL with errstr.
 */
ab_consumer_t *ab_consumer_new(const ab_consumer_conf_t *cc, char *errstr,
                               size_t errstr_size);

/**
 * @brief Closes (revoking commits what is stored) and frees. NULL is a
 *        no-op.
 */
void ab_consumer_destroy(ab_consumer_t *c);

/**
 * @brief Joins the group for \p topics; a name starting with '^' is a
 *        regex ("^events\\..*"). Needs a group_id.
 * @returns AB_OK, AB_ERR_INVALID without group or topics, or AB_ERR_KAFKA.
 */
ab_err_t ab_consumer_subscribe(ab_consumer_t *c, const char *const *topics,
                               size_t topic_cnt, char *errstr,
                               size_t errstr_size);

/**
 * @brief Assigns every partition of \p topics (regexes allowed, matched
 *        against the cluster's topics) starting at \p offset
 *        (RD_KAFKA_OFFSET_BEGINNING, _END, _STORED or an offset): for
 *        services whose every replica reads everything. No group join.
 * @returns AB_OK, AB_ERR_NOT_FOUND naming a missing topic, or an error.
 */
ab_err_t ab_consumer_assign_all(ab_consumer_t *c, const char *const *topics,
                                size_t topic_cnt, int64_t offset,
                                int timeout_ms, char *errstr,
                                size_t errstr_size);

/**
 * @brief Waits up to \p timeout_ms for one record. Also serves the
 *        rebalance, commit and error callbacks.
 * @returns AB_OK with *msgp set to a record (rd_kafka_message_destroy()
 *          it) or NULL when none came; or an error with errstr (the
 *          consumer keeps going; check ab_consumer_fatal()).
 */
ab_err_t ab_consumer_poll(ab_consumer_t *c, int timeout_ms,
                          rd_kafka_message_t **msgp, char *errstr,
                          size_t errstr_size);

/**
 * @brief Marks \p msg as done (its work is durable): stores offset + 1
 *        for the next commit and for the commit on revoke.
 * @returns AB_OK or AB_ERR_KAFKA (e.g. the partition is no longer ours).
 */
ab_err_t ab_consumer_store(ab_consumer_t *c, const rd_kafka_message_t *msg,
                           char *errstr, size_t errstr_size);

/**
 * @brief Commits the stored offsets; \p async non-zero returns at once
 *        (failures are logged). Nothing stored is AB_OK.
 * @returns AB_OK, AB_ERR_INVALID without a group, or AB_ERR_KAFKA.
 */
ab_err_t ab_consumer_commit(ab_consumer_t *c, int async, char *errstr,
                            size_t errstr_size);

/**
 * @brief Stores and commits exactly \p msg's offset + 1 for its partition.
 * @returns as ab_consumer_commit().
 */
ab_err_t ab_consumer_commit_message(ab_consumer_t *c,
                                    const rd_kafka_message_t *msg, int async,
                                    char *errstr, size_t errstr_size);

/**
 * @brief Commits the explicit \p offsets (the next offset to read per
 *        partition; not taken).
 * @returns as ab_consumer_commit().
 */
ab_err_t
ab_consumer_commit_offsets(ab_consumer_t *c,
                           const rd_kafka_topic_partition_list_t *offsets,
                           int async, char *errstr, size_t errstr_size);

/**
 * @brief Pauses fetching on the whole assignment, including partitions
 *        assigned later, until ab_consumer_resume(). Polling must go on.
 * @returns AB_OK or AB_ERR_KAFKA.
 */
ab_err_t ab_consumer_pause(ab_consumer_t *c, char *errstr, size_t errstr_size);

/** @brief Resumes fetching. @returns AB_OK or AB_ERR_KAFKA. */
ab_err_t ab_consumer_resume(ab_consumer_t *c, char *errstr,
                            size_t errstr_size);

/** @returns the number of partitions currently assigned. */
int ab_consumer_assignment_count(ab_consumer_t *c);

/** @returns as ab_producer_fatal(). */
ab_err_t ab_consumer_fatal(ab_consumer_t *c, char *errstr, size_t errstr_size);

/** @returns the librdkafka handle (owned by \p c). */
rd_kafka_t *ab_consumer_handle(ab_consumer_t *c);

#endif
