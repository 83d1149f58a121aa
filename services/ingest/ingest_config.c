/* aetherbus - Apache-2.0
 *
 * ingest_config: the configuration table of aetherbus-ingest. Every setting
 * is an environment variable with a matching flag; --help is generated from
 * this table, so the help text here is the documentation.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_config.h"

/* librdkafka takes a fractional linger.ms; so do we, in its range. */
static ab_err_t check_linger(const char *value, char *errstr,
                             size_t errstr_size) {
        char *end;
        double v;

        errno = 0;
        v     = strtod(value, &end);
        if (errno || end == value || *end || !(v >= 0 && v <= 1000)) {
                ab_errstr_set(errstr, errstr_size,
                              "must be a number of milliseconds in 0..1000");
                return AB_ERR_INVALID;
        }
        return AB_OK;
}

static const ab_conf_row_t rows[] = {
    AB_CONF_COMMON_ROWS(ingest_conf_t, common, "8080"),
    AB_SERVICE_CONF_ROWS(ingest_conf_t, svc, "0"),
    {.env    = "EVENT_INGEST_TOKEN",
     .flag   = "ingest-token",
     .type   = AB_CONF_STR,
     .offset = offsetof(ingest_conf_t, ingest_token),
     .flags  = AB_CONF_SECRET,
     .help   = "When set, POST /events/ingest and /bus/events require it in "
               "x-event-token or Authorization: Bearer."},
    {.env    = "INGEST_CLIENTS_FILE",
     .flag   = "clients-file",
     .type   = AB_CONF_STR,
     .offset = offsetof(ingest_conf_t, clients_file),
     .help   = "Per-client API keys: a JSON list of {name, keySha256, "
               "allow, ratePerSec, burst}. Each client sends its key as "
               "x-event-token or Authorization: Bearer; reloaded on SIGHUP. "
               "Replaces EVENT_INGEST_TOKEN."},
    {.env    = "MAX_BODY_BYTES",
     .flag   = "max-body-bytes",
     .type   = AB_CONF_SIZE,
     .def    = "1M",
     .min    = 1024,
     .max    = 64LL * 1024 * 1024,
     .offset = offsetof(ingest_conf_t, max_body),
     .help   = "Largest request body; beyond it 413."},
    {.env    = "MAX_BATCH",
     .flag   = "max-batch",
     .type   = AB_CONF_INT,
     .def    = "1000",
     .min    = 1,
     .max    = 100000,
     .offset = offsetof(ingest_conf_t, max_batch),
     .help   = "Most events in one request; beyond it 413."},
    {.env    = "MAX_PAYLOAD_BYTES",
     .flag   = "max-payload-bytes",
     .type   = AB_CONF_SIZE,
     .def    = "64K",
     .min    = 16,
     .max    = 16LL * 1024 * 1024,
     .offset = offsetof(ingest_conf_t, max_payload),
     .help   = "Largest payload of one event (compact JSON); beyond it the "
               "item is rejected."},
    {.env    = "MAX_ID_LENGTH",
     .flag   = "max-id-length",
     .type   = AB_CONF_INT,
     .def    = "128",
     .min    = 36, /* the UUIDs the server generates */
     .max    = 1024,
     .offset = offsetof(ingest_conf_t, max_id_len),
     .help   = "Longest event id."},
    {.env    = "ALLOW_UNKNOWN_PREFIXES",
     .flag   = "allow-unknown-prefixes",
     .type   = AB_CONF_STR,
     .offset = offsetof(ingest_conf_t, allow_unknown_prefixes),
     .help   = "Dotted names outside the catalog accepted for these "
               "prefixes (comma list, or * for any); their topic must "
               "exist."},
    {.env    = "MAX_UNKNOWN_PREFIXES",
     .flag   = "max-unknown-prefixes",
     .type   = AB_CONF_INT,
     .def    = "64",
     .min    = 0,
     .max    = 4096,
     .offset = offsetof(ingest_conf_t, max_unknown_prefixes),
     .help   = "Distinct prefixes outside the catalog taken with "
               "ALLOW_UNKNOWN_PREFIXES; a new one beyond is rejected (each "
               "keeps a topic handle and a metric series for good)."},
    {.env    = "MAX_INFLIGHT_REQUESTS",
     .flag   = "max-inflight-requests",
     .type   = AB_CONF_INT,
     .def    = "512",
     .min    = 1,
     .max    = 100000,
     .offset = offsetof(ingest_conf_t, max_inflight),
     .help   = "Requests held open for Kafka at once; beyond it 503 + "
               "Retry-After, so a slow Kafka cannot grow memory without "
               "bound."},
    {.env    = "KAFKA_LINGER_MS",
     .flag   = "linger-ms",
     .type   = AB_CONF_STR,
     .def    = "0.5",
     .offset = offsetof(ingest_conf_t, linger_ms),
     .help   = "Producer linger.ms, fractions allowed (0..1000): how long a "
               "batch waits for more events. 0.5 measured best for one "
               "event per request; 1 costs a third of that rate.",
     .check  = check_linger},
    {.env    = "KAFKA_BATCH_NUM_MESSAGES",
     .flag   = "batch-num-messages",
     .type   = AB_CONF_INT,
     .def    = "10000",
     .min    = 1,
     .max    = 1000000,
     .offset = offsetof(ingest_conf_t, batch_num_messages),
     .help   = "Producer batch.num.messages."},
    {.env    = "KAFKA_DELIVERY_TIMEOUT_MS",
     .flag   = "delivery-timeout-ms",
     .type   = AB_CONF_DURATION,
     .def    = "15s",
     .min    = 1000,
     .max    = 600000,
     .offset = offsetof(ingest_conf_t, delivery_timeout_ms),
     .help   = "How long an event may wait for Kafka before its request "
               "answers 503 (message.timeout.ms)."},
    {.env    = "KAFKA_QUEUE_MAX_MESSAGES",
     .flag   = "queue-max-messages",
     .type   = AB_CONF_INT,
     .def    = "100000",
     .min    = 100,
     .max    = 10000000,
     .offset = offsetof(ingest_conf_t, queue_max_messages),
     .help   = "Events held for Kafka at most; beyond it 503 (bounded "
               "memory)."},
    {.env    = "KAFKA_QUEUE_MAX_BYTES",
     .flag   = "queue-max-bytes",
     .type   = AB_CONF_SIZE,
     .def    = "16M",
     .min    = 1024 * 1024,
     .max    = 2047LL * 1024 * 1024,
     .offset = offsetof(ingest_conf_t, queue_max_bytes),
     .help   = "Bytes held for Kafka at most; beyond it 503."},
    {.env = NULL},
};

/* Bytes a record carries besides its payload, at most: the other
 * envelope fields (each bounded) and the CloudEvents headers that repeat
 * them, with room to spare. */
#define RECORD_OVERHEAD (8 * 1024)

static ab_err_t finalize(void *confp, char *errstr, size_t errstr_size) {
        ingest_conf_t *conf = confp;
        const char *mmb     = getenv("RDKAFKA_MESSAGE_MAX_BYTES");
        long long max_msg   = mmb ? atoll(mmb) : 1000000; /* librdkafka's */

        /* A payload the producer cannot send would be answered 503 and
         * retried forever; refuse the setting instead. */
        if ((long long)conf->max_payload + RECORD_OVERHEAD > max_msg) {
                ab_errstr_set(errstr, errstr_size,
                              "MAX_PAYLOAD_BYTES (%zu) + %d bytes of envelope "
                              "must fit in message.max.bytes (%lld); raise "
                              "RDKAFKA_MESSAGE_MAX_BYTES (and the topics' "
                              "max.message.bytes) or lower the payload limit",
                              conf->max_payload, RECORD_OVERHEAD, max_msg);
                return AB_ERR_INVALID;
        }

        conf->message_max_bytes = (size_t)max_msg;
        if (conf->clients_file && conf->ingest_token) {
                /* Two credentials schemes at once would leave one of them
                 * unchecked on some path: pick one. */
                ab_errstr_set(errstr, errstr_size,
                              "INGEST_CLIENTS_FILE and EVENT_INGEST_TOKEN: "
                              "set one, not both (give the shared token's "
                              "client an entry in the file)");
                return AB_ERR_INVALID;
        }
        if (conf->clients_file && !*conf->clients_file) {
                ab_errstr_set(errstr, errstr_size,
                              "INGEST_CLIENTS_FILE: must not be empty when set");
                return AB_ERR_INVALID;
        }
        if (conf->ingest_token && !*conf->ingest_token) {
                ab_errstr_set(errstr, errstr_size,
                              "EVENT_INGEST_TOKEN: must not be empty when set");
                return AB_ERR_INVALID;
        }
        if (ab_service_conf_check(&conf->svc, errstr, errstr_size) != AB_OK) {
                return AB_ERR_INVALID;
        }
        /* A request must fit into the producer queue, or a valid batch
         * could never be accepted. */
        if (conf->max_batch > conf->queue_max_messages) {
                ab_errstr_set(errstr, errstr_size,
                              "MAX_BATCH (%d) must not exceed "
                              "KAFKA_QUEUE_MAX_MESSAGES (%d)",
                              conf->max_batch, conf->queue_max_messages);
                return AB_ERR_INVALID;
        }
        if (conf->max_body > conf->queue_max_bytes) {
                ab_errstr_set(errstr, errstr_size,
                              "MAX_BODY_BYTES (%zu) must not exceed "
                              "KAFKA_QUEUE_MAX_BYTES (%zu)",
                              conf->max_body, conf->queue_max_bytes);
                return AB_ERR_INVALID;
        }
        /* Else a body of the largest size allowed could never be taken. */
        if (conf->max_body > conf->svc.http_body_budget) {
                ab_errstr_set(errstr, errstr_size,
                              "MAX_BODY_BYTES (%zu) must not exceed "
                              "HTTP_BODY_BUDGET_BYTES (%zu)",
                              conf->max_body, conf->svc.http_body_budget);
                return AB_ERR_INVALID;
        }
        return AB_OK;
}

const ab_conf_spec_t ingest_conf_spec = {
    .prog     = "aetherbus-ingest",
    .about    = "HTTP front door: validates events, routes them by prefix "
                "and publishes them to Kafka.",
    .rows     = rows,
    .finalize = finalize,
};
