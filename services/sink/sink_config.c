/* aetherbus - Apache-2.0
 *
 * sink_config: the configuration table of aetherbus-sink.
 */
#include <stddef.h>

#include "sink.h"

static const ab_conf_row_t rows[] = {
    AB_CONF_COMMON_ROWS(sink_conf_t, common, "8082"),
    AB_SERVICE_CONF_ROWS(sink_conf_t, svc, "1"),
    {.env    = "EVENT_SINK_URL",
     .flag   = "event-sink-url",
     .type   = AB_CONF_URL,
     .offset = offsetof(sink_conf_t, url),
     .flags  = AB_CONF_REQUIRED,
     .help   = "Where batches are POSTed: a JSON array of envelopes in the "
               "ingest form, one Idempotency-Key per partition offset "
               "range."},
    {.env    = "EVENT_SINK_TOKEN",
     .flag   = "event-sink-token",
     .type   = AB_CONF_STR,
     .offset = offsetof(sink_conf_t, token),
     .flags  = AB_CONF_SECRET,
     .help   = "Sent as Authorization: Bearer when set."},
    {.env    = "SINK_GROUP_ID",
     .flag   = "group-id",
     .type   = AB_CONF_STR,
     .def    = SINK_GROUP_ID_DEF,
     .offset = offsetof(sink_conf_t, group_id),
     .help   = "Consumer group: replicas share the partitions."},
    {.env    = "SINK_TOPICS",
     .flag   = "topics",
     .type   = AB_CONF_STR,
     .offset = offsetof(sink_conf_t, topics),
     .help   = "A regex of the topics to read instead of every catalog "
               "topic (rejected and dead-letter records are never "
               "forwarded)."},
    {.env    = "SINK_NAMES",
     .flag   = "names",
     .type   = AB_CONF_STR,
     .offset = offsetof(sink_conf_t, names),
     .help   = "Comma list of event names, or prefixes ending in '*', to "
               "forward; other events are skipped (and committed)."},
    {.env    = "SINK_BATCH_MAX_EVENTS",
     .flag   = "batch-max-events",
     .type   = AB_CONF_INT,
     .def    = "500",
     .min    = 1,
     .max    = 100000,
     .offset = offsetof(sink_conf_t, max_events),
     .help   = "Events per batch."},
    {.env    = "SINK_BATCH_MAX_BYTES",
     .flag   = "batch-max-bytes",
     .type   = AB_CONF_SIZE,
     .def    = "1M",
     .min    = 256,
     .max    = 64 * 1024 * 1024,
     .offset = offsetof(sink_conf_t, max_bytes),
     .help   = "Body bytes per batch (an event larger than this goes "
               "alone)."},
    {.env    = "SINK_LINGER_MS",
     .flag   = "linger-ms",
     .type   = AB_CONF_DURATION,
     .def    = "1000",
     .min    = 1,
     .max    = 600000,
     .offset = offsetof(sink_conf_t, linger_ms),
     .help   = "Longest wait to fill a batch, from its first event."},
    {.env    = "SINK_CONCURRENCY",
     .flag   = "concurrency",
     .type   = AB_CONF_INT,
     .def    = "4",
     .min    = 1,
     .max    = SINK_CONCURRENCY_MAX,
     .offset = offsetof(sink_conf_t, concurrency),
     .help   = "Requests in flight across partitions (one per partition "
               "at most, which keeps each key's order)."},
    {.env    = "SINK_TIMEOUT_MS",
     .flag   = "timeout-ms",
     .type   = AB_CONF_DURATION,
     .def    = "10s",
     .min    = 100,
     .max    = 600000,
     .offset = offsetof(sink_conf_t, timeout_ms),
     .help   = "Whole-request timeout."},
    {.env    = "SINK_RETRY_BASE_MS",
     .flag   = "retry-base-ms",
     .type   = AB_CONF_DURATION,
     .def    = "200",
     .min    = 1,
     .max    = 600000,
     .offset = offsetof(sink_conf_t, retry_base_ms),
     .help   = "First backoff step (full jitter, doubling)."},
    {.env    = "SINK_RETRY_CAP_MS",
     .flag   = "retry-cap-ms",
     .type   = AB_CONF_DURATION,
     .def    = "30s",
     .min    = 1,
     .max    = 3600000,
     .offset = offsetof(sink_conf_t, retry_cap_ms),
     .help   = "Longest backoff."},
    {.env    = "SINK_MAX_RETRIES",
     .flag   = "max-retries",
     .type   = AB_CONF_INT,
     .def    = "0",
     .min    = 0,
     .max    = 1000000,
     .offset = offsetof(sink_conf_t, max_retries),
     .help   = "Retries of one batch before its events are dead-lettered; "
               "0 never gives up."},
    {.env    = "SINK_GZIP",
     .flag   = "gzip",
     .type   = AB_CONF_BOOL,
     .def    = "0",
     .offset = offsetof(sink_conf_t, gzip),
     .help   = "Gzip request bodies (Content-Encoding: gzip)."},
    {.env    = "SINK_SESSION_TIMEOUT_MS",
     .flag   = "session-timeout-ms",
     .type   = AB_CONF_DURATION,
     .def    = "0",
     .min    = 0,
     .max    = 3600000,
     .offset = offsetof(sink_conf_t, session_timeout_ms),
     .help   = "Group session timeout: how soon the partitions of a replica "
               "that died move to the others (0: librdkafka's 45 s)."},
    {.env = NULL},
};

static ab_err_t finalize(void *confp, char *errstr, size_t errstr_size) {
        sink_conf_t *conf = confp;

        if (conf->retry_cap_ms < conf->retry_base_ms) {
                ab_errstr_set(errstr, errstr_size,
                              "SINK_RETRY_CAP_MS: must not be below "
                              "SINK_RETRY_BASE_MS");
                return AB_ERR_INVALID;
        }
        if (!conf->group_id || !*conf->group_id) {
                ab_errstr_set(errstr, errstr_size,
                              "SINK_GROUP_ID: must not be empty");
                return AB_ERR_INVALID;
        }
        return ab_service_conf_check(&conf->svc, errstr, errstr_size);
}

const ab_conf_spec_t sink_conf_spec = {
    .prog     = "aetherbus-sink",
    .about    = "Consumes the bus topics and forwards every accepted event "
                "to EVENT_SINK_URL in batches; events the sink refuses go "
                "to the dead-letter topic.",
    .rows     = rows,
    .finalize = finalize,
};
