/* aetherbus - Apache-2.0
 *
 * stats: the context of aetherbus-stats, shared by its modules. Nothing
 * outside services/stats includes this header.
 */
#ifndef STATS_H
#define STATS_H

#include <signal.h>
#include <stdatomic.h>

#include "ab_auth.h"
#include "ab_avro.h"
#include "ab_catalog.h"
#include "ab_conf.h"
#include "ab_consume.h"
#include "ab_emit.h"
#include "ab_kafka.h"
#include "ab_metrics.h"
#include "ab_service.h"
#include "ab_stage.h"
#include "stats_window.h"

typedef struct stats_conf_s {
        ab_conf_common_t common;
        ab_service_conf_common_t svc;
        int64_t skew_allowance_ms;
        int64_t future_allowance_ms;
        int dedupe_minutes;
        int clock_offset_ms;
        char *audit_url;  /* STATS_AUDIT_URL, NULL: no audit panels */
        char *ingest_url; /* STATS_INGEST_URL, NULL: no ingest health */
        char *sink_url;   /* STATS_SINK_URL, NULL: no sink health */
} stats_conf_t;

extern const ab_conf_spec_t stats_conf_spec;

typedef struct stats_s {
        const stats_conf_t *conf;
        ab_catalog_t *catalog;
        ab_avro_codec_t *codec;
        ab_catalog_topics_t topics;
        ab_metrics_t *metrics;
        ab_producer_t *producer; /* security events */
        ab_auth_t *auth;
        ab_emit_t emitter;          /* its own security events */
        ab_consume_t *consume;
        ab_service_t *svc;
        stats_window_t *window;
        _Atomic int64_t lag;     /* consumer lag in records, -1 unknown */
        int64_t last_export_ms;
        stats_counters_t exported;
        ab_metric_t *m_window_events;   /* {prefix,name} */
        ab_metric_t *m_window_failures; /* {reason} */
        ab_metric_t *m_window_lag;      /* {lag,stat} */
        ab_metric_t *m_records;         /* {outcome} */
        _Atomic int console_inflight;   /* proxied GETs under way */
        ab_stage_t *stage;              /* "consumed", per prefix, minute */
        int64_t replay_from_ms;         /* where the last start re-read from */
} stats_t;

stats_t *stats_new(const stats_conf_t *conf, char *errstr, size_t errstr_size);
ab_err_t stats_run(stats_t *st, volatile sig_atomic_t *run);
void stats_destroy(stats_t *st);

/** @returns the wall clock the window uses (ms). */
int64_t stats_now_ms(const stats_t *st);

/**
 * @brief The admin guard of every stats route: the console's session
 *        cookie (see stats_console.c), else ab_auth_admin().
 * @returns 1 when the request may go on, else 0 after answering.
 */
int stats_console_guard(stats_t *st, ab_http_req_t *req);

/** The console's handlers (stats_console.c), routed by stats_http.c. */
ab_http_handler_t stats_console_page;
ab_http_handler_t stats_console_login;
ab_http_handler_t stats_console_logout;
ab_http_handler_t stats_console_proxy;

/** @brief Once the server stopped: waits up to \p timeout_ms for the
 *         console's proxied GETs to end (they hold \p st). */
void stats_console_drain(stats_t *st, int timeout_ms);

/** @returns the route table. */
const ab_http_route_t *stats_http_routes(void);

#endif
