/* aetherbus - Apache-2.0
 *
 * sink: the context of aetherbus-sink, shared by its modules. Nothing
 * outside services/sink includes this header.
 */
#ifndef SINK_H
#define SINK_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "ab_avro.h"
#include "ab_catalog.h"
#include "ab_conf.h"
#include "ab_consume.h"
#include "ab_kafka.h"
#include "ab_metrics.h"
#include "ab_service.h"
#include "ab_stage.h"
#include "sink_batch.h"
#include "sink_client.h"
#include "sink_retry.h"

#define SINK_GROUP_ID_DEF "aetherbus-sink"

typedef struct sink_conf_s {
        ab_conf_common_t common;
        ab_service_conf_common_t svc;
        char *url;             /* EVENT_SINK_URL */
        char *token;           /* EVENT_SINK_TOKEN */
        char *group_id;        /* SINK_GROUP_ID */
        char *topics;          /* SINK_TOPICS: a regex, or NULL */
        char *names;           /* SINK_NAMES: "A,B,crm.*", or NULL */
        int max_events;
        size_t max_bytes;
        int64_t linger_ms;
        int concurrency;
        int64_t timeout_ms;
        int64_t retry_base_ms;
        int64_t retry_cap_ms;
        int max_retries;       /* 0: never give up */
        int gzip;
        int64_t session_timeout_ms; /* 0: librdkafka's */
} sink_conf_t;

extern const ab_conf_spec_t sink_conf_spec;

typedef struct sink_s sink_t;

/**
 * @brief Builds the service: catalog, codec, topics, metrics, the
 *        dead-letter producer, the HTTP client and the HTTP server.
 * @returns the service (sink_destroy()) or NULL with errstr.
 */
sink_t *sink_new(const sink_conf_t *conf, char *errstr, size_t errstr_size);

/**
 * @brief Serves HTTP, joins the group and forwards until *\p run is 0,
 *        then drains (bounded by SHUTDOWN_TIMEOUT_MS) and commits.
 * @returns AB_OK, or an error when the service could not run.
 */
ab_err_t sink_run(sink_t *sk, volatile sig_atomic_t *run);

/** @brief Frees \p sk; NULL is a no-op. */
void sink_destroy(sink_t *sk);

/**
 * @returns 1 when the event name \p name passes SINK_NAMES \p names (a
 *          comma list of exact names and "prefix*" items; NULL or empty
 *          passes everything), else 0.
 */
int sink_name_match(const char *names, const char *name);

#endif
