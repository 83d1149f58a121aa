/* aetherbus - Apache-2.0
 *
 * ab_record: the one format of the records that say an event failed:
 * <prefix>rejected (ingest refused an item) and <prefix>deadletter (the
 * sink gave up on an event). Owns their JSON value, their headers (the
 * dead-letter ones under Kafka Connect's names, so existing DLQ tooling
 * reads them) and the decoder stats, audit and the admin tool use.
 *
 * What stays out: producing and consuming (ab_kafka, ab_consume) and the
 * accepted events' Avro (ab_avro).
 */
#ifndef AB_RECORD_H
#define AB_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "ab_err.h"

/** What a failure record says happened. */
typedef enum {
        AB_RECORD_REJECTED = 0, /**< ingest refused the item */
        AB_RECORD_DEADLETTER,   /**< the sink gave up on the event */
} ab_record_kind_t;

/** ce_type header of each kind. */
#define AB_RECORD_CE_REJECTED   "aetherbus.rejected"
#define AB_RECORD_CE_DEADLETTER "aetherbus.deadletter"

/** Kafka Connect's dead-letter context header names. */
#define AB_RECORD_H_TOPIC     "__connect.errors.topic"
#define AB_RECORD_H_PARTITION "__connect.errors.partition"
#define AB_RECORD_H_OFFSET    "__connect.errors.offset"
#define AB_RECORD_H_CLASS     "__connect.errors.exception.class.name"
#define AB_RECORD_H_MESSAGE   "__connect.errors.exception.message"
#define AB_RECORD_H_STATUS    "__connect.errors.http.status"
#define AB_RECORD_H_RESPONSE  "__connect.errors.http.response"

/** Longest response excerpt a dead-letter record keeps. */
#define AB_RECORD_RESPONSE_MAX 1024
/** Longest original text a record keeps (an unparseable body, or an
 *  original too large for the record); longer ones are cut, flagged
 *  "truncated" and carry "originalSize" and "originalSha256". */
#define AB_RECORD_TEXT_MAX 4096

/**
 * One failure record, as a view: every pointer is borrowed (from the
 * caller when encoding, from the decoded document when decoding). Fields
 * that do not apply are NULL / -1 / 0.
 */
typedef struct ab_record_failure_s {
        ab_record_kind_t kind;
        const char *reason;       /**< human text, never NULL */
        const char *code;         /**< "INVALID", "HTTP_400", ... */
        const char *tenant;       /**< companyId or x-tenant; the key */
        const char *client;       /**< who sent it (ce_authid), or NULL */
        /** Largest value the producer takes (message.max.bytes less room
         *  for headers); 0: no bound. Beyond it the original is replaced
         *  by its first AB_RECORD_TEXT_MAX bytes, its size and SHA-256, so
         *  the rejection is still written. */
        size_t max_len;
        int64_t received_at_ms;   /**< when ingest received the item */
        /* rejected */
        const char *path;         /**< request path */
        int64_t index;            /**< item index, -1 for a whole body */
        const char *original_text; /**< unparseable body, any length */
        size_t original_text_len;
        /* both: the item or event as JSON (an envelope for dead letters) */
        json_t *original;
        /* deadletter: where the event was read and what the sink said */
        const char *src_topic;
        int32_t src_partition;
        int64_t src_offset;
        int http_status;          /**< 0: no HTTP answer (gave up retrying) */
        const char *response;     /**< excerpt of the sink's answer */
        int64_t failed_at_ms;     /**< when the sink gave up */
} ab_record_failure_t;

/** @brief Zeroes \p f with index/offset/partition -1. */
void ab_record_failure_init(ab_record_failure_t *f, ab_record_kind_t kind);

/**
 * @brief The record's value: compact JSON with every field that applies.
 *        Text that is not UTF-8 (an unparseable body, a response excerpt,
 *        a tenant) is kept with each invalid byte as \xNN, never dropped;
 *        a value over f->max_len keeps its original cut (see max_len).
 * @returns a malloc'ed NUL-terminated text (*lenp its length), or NULL
 *          with errstr.
 */
char *ab_record_failure_encode(const ab_record_failure_t *f, size_t *lenp,
                               char *errstr, size_t errstr_size);

/**
 * @brief The record's headers: content-type application/json, ce_type,
 *        ce_authid when f->client is set, and for dead letters the Kafka
 *        Connect context headers.
 * @returns a new list (hand it to the producer or destroy it).
 */
rd_kafka_headers_t *ab_record_failure_headers(const ab_record_failure_t *f);

/**
 * @brief Parses a failure record's value into \p f. \p kind is taken
 *        from the topic the record came from.
 * @returns AB_OK with *docp the document \p f points into (json_decref()
 *          it), or AB_ERR_MALFORMED with errstr.
 */
ab_err_t ab_record_failure_decode(ab_record_kind_t kind, const void *data,
                                  size_t len, json_t **docp,
                                  ab_record_failure_t *f, char *errstr,
                                  size_t errstr_size);

/** @returns "rejected" or "deadletter". */
const char *ab_record_kind_name(ab_record_kind_t kind);

#endif
