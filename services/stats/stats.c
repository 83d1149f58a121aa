/* aetherbus - Apache-2.0
 *
 * stats: builds and runs aetherbus-stats. Every replica assigns itself
 * every partition of every topic of the bus (no shared group), so each
 * one holds the whole hour and several behind one Service agree. On start
 * the hour is rebuilt from Kafka by timestamp; /readyz is 503 until every
 * partition was read to the end it had at start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "ab_emit.h"
#include "ab_log.h"
#include "ab_time.h"
#include "stats.h"

#define BATCH 256
#define START_TIMEOUT_MS 5000
#define EXPORT_INTERVAL_MS 5000

int64_t stats_now_ms(const stats_t *st) {
        return ab_time_now_ms() + st->conf->clock_offset_ms;
}

static int check(void *opaque, char *reason, size_t reason_size) {
        stats_t *st = opaque;

        if (!st->consume) {
                snprintf(reason, reason_size, "not reading Kafka yet");
                return 0;
        }
        return ab_consume_caught_up(st->consume, reason, reason_size);
}

/* The hour's figures on /metrics too, with label sets bounded by the
 * catalog (names, prefixes) and by the window's own capped tables
 * (reasons); tenants never become labels. */
static ab_err_t metrics_init(stats_t *st, char *errstr, size_t errstr_size) {
        if (!(st->m_window_events = ab_metrics_gauge(
                  st->metrics, "window_events",
                  "Accepted events in the last hour, by catalog name",
                  "prefix,name", errstr, errstr_size)) ||
            !(st->m_window_failures = ab_metrics_gauge(
                  st->metrics, "window_failures",
                  "Rejected and dead-lettered events in the last hour, by "
                  "reason",
                  "reason", errstr, errstr_size)) ||
            !(st->m_window_lag = ab_metrics_gauge(
                  st->metrics, "window_lag_ms",
                  "Lag over the last hour: event (receivedAt - occurredAt) "
                  "and pipeline (read - Kafka timestamp)",
                  "lag,stat", errstr, errstr_size)) ||
            !(st->m_records = ab_metrics_counter(
                  st->metrics, "window_records_total",
                  "Records read, by what the window did with them",
                  "outcome", errstr, errstr_size))) {
                return AB_ERR_INTERNAL;
        }
        return AB_OK;
}

static void export_count(stats_t *st, const char *outcome, uint64_t now,
                         uint64_t *last) {
        if (now > *last) {
                ab_metric_add(AB_METRIC_WITH(st->m_records, outcome),
                              now - *last);
                *last = now;
        }
}

static void export_lag(stats_t *st, const char *lag, json_t *h) {
        static const char *const stats[] = {"avg", "p50", "p95", "p99", "max"};
        size_t i;

        for (i = 0; i < sizeof(stats) / sizeof(stats[0]); i++) {
                ab_metric_set(AB_METRIC_WITH(st->m_window_lag, lag, stats[i]),
                              json_number_value(json_object_get(h, stats[i])));
        }
}

/* Every few seconds from the consuming thread: one query of the hour. */
static void metrics_export(stats_t *st, int64_t now) {
        const ab_catalog_entry_t *e;
        stats_query_t q;
        stats_counters_t c;
        json_t *doc, *by_name, *reasons, *v;
        const char *k;
        size_t i;

        if (now - st->last_export_ms < EXPORT_INTERVAL_MS) {
                return;
        }
        st->last_export_ms = now;
        memset(&q, 0, sizeof(q));
        q.minutes = 60;
        if (!(doc = stats_window_query(st->window, &q, now))) {
                return;
        }
        by_name = json_object_get(json_object_get(doc, "breakdown"), "name");
        for (i = 0; i < ab_catalog_count(st->catalog); i++) {
                e = ab_catalog_get(st->catalog, i);
                ab_metric_set(AB_METRIC_WITH(st->m_window_events, e->prefix,
                                             e->name),
                              (double)json_integer_value(
                                  json_object_get(by_name, e->name)));
        }
        ab_metric_set(AB_METRIC_WITH(st->m_window_events, "other", "other"),
                      (double)json_integer_value(
                          json_object_get(by_name, "other")));
        /* Reasons the window stopped counting fall back to zero here. */
        reasons = json_object_get(doc, "failuresByReason");
        json_object_foreach(reasons, k, v) {
                ab_metric_set(AB_METRIC_WITH(st->m_window_failures, k),
                              (double)json_integer_value(v));
        }
        export_lag(st, "event", json_object_get(doc, "eventLagMs"));
        export_lag(st, "pipeline", json_object_get(doc, "pipelineLagMs"));
        json_decref(doc);
        stats_window_counters(st->window, &c);
        export_count(st, "undecodable", c.undecodable, &st->exported.undecodable);
        export_count(st, "late", c.late, &st->exported.late);
        export_count(st, "future", c.future, &st->exported.future);
        export_count(st, "duplicate", c.duplicates, &st->exported.duplicates);
        export_count(st, "dedupe_unchecked", c.dedupe_unchecked,
                     &st->exported.dedupe_unchecked);
        export_count(st, "read", c.records, &st->exported.records);
}

/* Where a start re-reads Kafka from: the hour, plus room for events
 * received late inside it. */
static int64_t start_ms(const stats_t *st) {
        return stats_now_ms(st) - 3600000 - st->conf->skew_allowance_ms;
}

stats_t *stats_new(const stats_conf_t *conf, char *errstr, size_t errstr_size) {
        stats_t *st;
        ab_producer_conf_t pc;
        ab_service_def_t def;
        stats_window_conf_t wc;

        st = calloc(1, sizeof(*st));
        if (!st) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        st->conf = conf;
        atomic_init(&st->lag, -1);
        atomic_init(&st->console_inflight, 0);
        /* Before any thread: the console's proxy uses libcurl. */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                ab_errstr_set(errstr, errstr_size, "cannot initialise libcurl");
                free(st);
                return NULL;
        }
        if (!(st->catalog = ab_catalog_new(errstr, errstr_size)) ||
            !(st->codec = ab_avro_codec_new(NULL, errstr, errstr_size)) ||
            ab_catalog_topics_init(&st->topics, st->catalog,
                                   conf->common.topic_prefix, errstr,
                                   errstr_size) != AB_OK ||
            !(st->metrics = ab_metrics_new("stats", errstr, errstr_size)) ||
            metrics_init(st, errstr, errstr_size) != AB_OK ||
            /* Counts from now until the replay start is fixed. */
            !(st->stage = ab_stage_new(st->metrics, "stats", "consumed",
                                       st->catalog, 0, errstr,
                                       errstr_size))) {
                goto fail;
        }
        stats_window_conf_init(&wc);
        wc.future_ms      = conf->future_allowance_ms;
        wc.dedupe_minutes = conf->dedupe_minutes;
        if (!(st->window = stats_window_new(st->catalog, &wc))) {
                if (!errstr[0]) {
                        ab_errstr_set(errstr, errstr_size, "out of memory");
                }
                goto fail;
        }
        ab_producer_conf_init(&pc);
        pc.brokers     = conf->common.kafka_brokers;
        pc.poll_thread = 1;
        if (!(st->producer = ab_producer_new(&pc, errstr, errstr_size))) {
                goto fail;
        }
        st->emitter.producer     = st->producer;
        st->emitter.codec        = st->codec;
        st->emitter.catalog      = st->catalog;
        st->emitter.topic_prefix = conf->common.topic_prefix;
        st->emitter.source       = "aetherbus-stats";
        if (!(st->auth = ab_service_auth_new(&conf->svc, st->metrics, ab_emit,
                                              &st->emitter, errstr,
                                              errstr_size))) {
                goto fail;
        }
        memset(&def, 0, sizeof(def));
        def.name    = "stats";
        def.common  = &conf->common;
        def.sc      = &conf->svc;
        def.routes  = stats_http_routes();
        def.metrics = st->metrics;
        def.check   = check;
        def.check_interval_ms = 500;
        def.opaque  = st;
        if (!(st->svc = ab_service_new(&def, errstr, errstr_size))) {
                goto fail;
        }
        return st;

fail:
        stats_destroy(st);
        return NULL;
}

static ab_consume_t *consume_new(stats_t *st, char *errstr,
                                 size_t errstr_size) {
        ab_consume_conf_t cc;

        memset(&cc, 0, sizeof(cc));
        cc.brokers      = st->conf->common.kafka_brokers;
        cc.topics       = (const char *const *)st->topics.names;
        cc.topic_cnt    = st->topics.event_cnt;
        cc.topic_prefix = st->conf->common.topic_prefix;
        cc.codec        = st->codec;
        cc.metrics      = st->metrics;
        cc.start_ms        = start_ms(st);
        st->replay_from_ms = cc.start_ms;
        return ab_consume_new(&cc, errstr, errstr_size);
}

/* The stage counter: every event read, duplicates too (the window
 * dedupes its figures; reconcile compares records). */
static void count_consumed(stats_t *st, const ab_consume_rec_t *rec) {
        if (rec->kind != AB_CONSUME_ACCEPTED) {
                return;
        }
        ab_stage_count(st->stage, 0,
                       ab_stage_topic_prefix(rec->topic,
                                             st->conf->common.topic_prefix),
                       rec->env.received_at_ms > 0 ? rec->env.received_at_ms
                                                   : rec->timestamp_ms,
                       1);
}

ab_err_t stats_run(stats_t *st, volatile sig_atomic_t *run) {
        ab_consume_rec_t recs[BATCH];
        ab_consume_t *c;
        char errstr[512];
        size_t n, i;
        int64_t now;

        if (ab_service_start(st->svc, errstr, sizeof(errstr)) != AB_OK) {
                ab_error("http", "cannot listen: %s", errstr);
                return AB_ERR_IO;
        }
        /* Topics may not exist yet: keep trying, /readyz says why. */
        while (*run && !st->consume) {
                c = consume_new(st, errstr, sizeof(errstr));
                if (c && ab_consume_start(c, START_TIMEOUT_MS, errstr,
                                          sizeof(errstr)) == AB_OK) {
                        st->consume = c;
                        /* Every start re-reads the hour by timestamp, so
                         * each minute from there on is counted whole. */
                        ab_stage_set_counts_from(st->stage,
                                                 st->replay_from_ms);
                        break;
                }
                ab_warn("kafka", "cannot read the topics yet: %s", errstr);
                ab_consume_destroy(c);
                ab_service_sleep_ms(1000);
        }
        while (*run) {
                n   = ab_consume_poll(st->consume, recs, BATCH, 100);
                now = stats_now_ms(st);
                for (i = 0; i < n; i++) {
                        count_consumed(st, &recs[i]);
                        stats_window_add(st->window, &recs[i], now);
                        ab_consume_rec_clear(&recs[i]);
                }
                /* The HTTP threads read the lag from here. */
                atomic_store(&st->lag, ab_consume_lag(st->consume));
                metrics_export(st, now);
                if (ab_consume_fatal(st->consume, errstr, sizeof(errstr))) {
                        ab_error("kafka", "fatal consumer error: %s", errstr);
                        break;
                }
        }
        ab_info("main", "stopping");
        ab_service_stop(st->svc, 1000);
        ab_producer_flush(st->producer, 2000);
        return AB_OK;
}

void stats_destroy(stats_t *st) {
        if (!st) {
                return;
        }
        ab_service_destroy(st->svc);
        /* A proxied GET ends within its own timeout. */
        stats_console_drain(st, 6000);
        ab_consume_destroy(st->consume);
        ab_stage_destroy(st->stage); /* after the consumer: it counts into it */
        ab_producer_destroy(st->producer);
        ab_auth_destroy(st->auth);
        stats_window_destroy(st->window);
        ab_catalog_topics_clear(&st->topics);
        ab_metrics_destroy(st->metrics);
        ab_avro_codec_destroy(st->codec);
        ab_catalog_destroy(st->catalog);
        free(st);
}
