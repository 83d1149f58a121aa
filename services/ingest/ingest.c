/* aetherbus - Apache-2.0
 *
 * ingest: builds and runs aetherbus-ingest. Owns the wiring (catalog,
 * codec, producer, HTTP server, metrics), the topic table, readiness, the
 * service's own platform events and the graceful drain on SIGTERM. Request
 * handling lives in ingest_http.c and ingest_publish.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ab_log.h"
#include "ingest.h"

#define READY_TIMEOUT_MS  3000

static double gauge_outq(void *opaque) {
        ingest_t *ing = opaque;

        return ing->producer ? (double)ab_producer_outq_len(ing->producer) : 0;
}

static double gauge_inflight(void *opaque) {
        ingest_t *ing = opaque;

        return (double)atomic_load(&ing->inflight);
}

static int check_ready(void *opaque, char *reason, size_t reason_size);

int ingest_ready(ingest_t *ing, char *reason, size_t reason_size) {
        return ab_service_ready(ing->svc, reason, reason_size);
}

const char *ingest_topic(ingest_t *ing, const ab_envelope_t *env, char *buf,
                         size_t buf_size) {
        size_t i;

        if (env->entry) {
                for (i = 0; i < ing->topics.prefix_cnt; i++) {
                        if (!strcmp(ab_catalog_prefix_get(ing->catalog, i),
                                    env->entry->prefix)) {
                                return ing->topics.names[i];
                        }
                }
        }
        if (ab_catalog_topic(ing->conf->common.topic_prefix, env->prefix, buf,
                             buf_size) != AB_OK) {
                return NULL;
        }
        return buf;
}

ab_err_t ingest_emit(ingest_t *ing, const char *type, const char *tenant,
                     json_t *payload, char *errstr, size_t errstr_size) {
        ab_envelope_t env;
        ab_envelope_ctx_t ctx;
        ab_err_t err;

        memset(&ctx, 0, sizeof(ctx));
        ctx.catalog = ing->catalog;
        ctx.limits  = &ing->limits;
        err = ab_envelope_platform(&env, &ctx, "aetherbus-ingest", type, tenant,
                                   payload, errstr, errstr_size);
        if (err) {
                return err;
        }
        env.auth_type = "system";
        env.auth_id   = "aetherbus-ingest";
        err = ingest_produce(ing, &env, NULL, errstr, errstr_size);
        ab_envelope_clear(&env);
        return err;
}

static char *schema_json(ingest_t *ing, size_t *lenp, char *errstr,
                         size_t errstr_size) {
        json_t *doc, *events, *avsc, *prefixes;
        json_error_t jerr;
        size_t i;
        char fp[17];
        char topic[256];
        char *out;
        const ab_catalog_entry_t *e;

        avsc = json_loads(ab_schema_envelope_avsc, 0, &jerr);
        if (!avsc) {
                ab_errstr_set(errstr, errstr_size, "envelope.avsc: %s", jerr.text);
                return NULL;
        }
        snprintf(fp, sizeof(fp), "%016llx",
                 (unsigned long long)ab_avro_codec_fingerprint(ing->codec));
        events = json_array();
        for (i = 0; i < ab_catalog_count(ing->catalog); i++) {
                e = ab_catalog_get(ing->catalog, i);
                ab_catalog_topic(ing->conf->common.topic_prefix, e->prefix, topic,
                                 sizeof(topic));
                json_array_append_new(
                    events,
                    json_pack("{s:s,s:s,s:s,s:s,s:s}", "name", e->name, "prefix",
                              e->prefix, "topic", topic, "family",
                              e->family == AB_FAMILY_BUSINESS ? "business"
                                                              : "platform",
                              "description", e->description));
        }
        prefixes = json_array();
        for (i = 0; i < ing->topics.prefix_cnt; i++) {
                json_array_append_new(
                    prefixes,
                    json_pack("{s:s,s:s}", "prefix",
                              ab_catalog_prefix_get(ing->catalog, i), "topic",
                              ing->topics.names[i]));
        }
        doc = json_pack(
            "{s:i,s:[s,s],s:{s:[s,s,s,s,s],s:s},s:o,s:o,s:{s:s,s:s},s:o,"
            "s:{s:s,s:s,s:s,s:s}}",
            "schemaVersion", AB_ENVELOPE_SCHEMA_VERSION, "endpoints",
            "POST /events/ingest", "POST /bus/events", "sources", "business",
            "storefront", "admin", "api", "bot", "agent", "platform",
            "[a-z0-9][a-z0-9._-]{0,63}", "events", events, "prefixes", prefixes,
            "topics", "rejected", ing->topics.rejected, "deadletter",
            ing->topics.deadletter,
            "avro", avsc, "kafka", "key", "companyId, else id", "value",
            "Avro single-object encoding (0xC3 0x01 + CRC-64-AVRO "
            "fingerprint + body)",
            "fingerprint", fp, "headers",
            "ce_specversion, ce_id, ce_type, ce_source, ce_time, ce_subject, "
            "content-type");
        if (!doc) {
                ab_errstr_set(errstr, errstr_size, "cannot build the schema document");
                return NULL;
        }
        out = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        *lenp = out ? strlen(out) : 0;
        return out;
}

static ab_err_t metrics_init(ingest_t *ing, char *errstr, size_t errstr_size) {
        static const double batch_bounds[] = {1, 2, 5, 10, 50, 100, 500, 1000, 10000};

        ing->metrics = ab_metrics_new("ingest", errstr, errstr_size);
        if (!ing->metrics) {
                return AB_ERR_NOMEM;
        }
        ing->m_accepted = ab_metrics_counter(
            ing->metrics, "events_accepted_total",
            "Events acknowledged by Kafka (acks=all), by topic.", "topic",
            errstr, errstr_size);
        ing->m_rejected = ab_metrics_counter(
            ing->metrics, "events_rejected_total",
            "Items or bodies that failed validation, by error code.", "code",
            errstr, errstr_size);
        ing->m_failed = ab_metrics_counter(
            ing->metrics, "events_failed_total",
            "Events Kafka did not take (answered 503 or lost async), by "
            "reason.",
            "reason", errstr, errstr_size);
        ing->m_batch_size = ab_metrics_histogram(
            ing->metrics, "batch_size",
            "Events per accepted request body.", NULL, batch_bounds,
            sizeof(batch_bounds) / sizeof(batch_bounds[0]), errstr,
            errstr_size);
        if (!ing->m_accepted || !ing->m_rejected || !ing->m_failed ||
            !ing->m_batch_size ||
            !ab_metrics_gauge_fn(ing->metrics,
                                 "producer_queue_length",
                                 "Records waiting for Kafka acknowledgement.",
                                 gauge_outq, ing, errstr, errstr_size) ||
            !ab_metrics_gauge_fn(ing->metrics,
                                 "requests_waiting",
                                 "Requests held open until Kafka acknowledges "
                                 "their events.",
                                 gauge_inflight, ing, errstr, errstr_size)) {
                return AB_ERR_INTERNAL;
        }
        return AB_OK;
}

ingest_t *ingest_new(const ingest_conf_t *conf, char *errstr,
                     size_t errstr_size) {
        ingest_t *ing;
        ab_producer_conf_t pc;
        ab_service_def_t def;
        const char *props[] = {"linger.ms", conf->linger_ms, NULL};

        ing = calloc(1, sizeof(*ing));
        if (!ing) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        ing->conf = conf;
        atomic_init(&ing->inflight, 0);
        pthread_mutex_init(&ing->unknown_lock, NULL);
        if (conf->max_unknown_prefixes > 0 &&
            !(ing->unknown = calloc((size_t)conf->max_unknown_prefixes,
                                    sizeof(*ing->unknown)))) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                free(ing);
                return NULL;
        }

        ab_envelope_limits_default(&ing->limits);
        ing->limits.max_id_len        = (size_t)conf->max_id_len;
        ing->limits.max_payload_bytes = conf->max_payload;
        ing->limits.max_batch         = (size_t)conf->max_batch;
        ing->limits.max_input_bytes   = conf->max_body;

        if (!(ing->catalog = ab_catalog_new(errstr, errstr_size)) ||
            !(ing->codec = ab_avro_codec_new(NULL, errstr, errstr_size)) ||
            metrics_init(ing, errstr, errstr_size) != AB_OK ||
            !(ing->stage = ab_stage_new(ing->metrics, "ingest", "accepted",
                                        ing->catalog, 0, errstr,
                                        errstr_size)) ||
            ab_catalog_topics_init(&ing->topics, ing->catalog,
                                   conf->common.topic_prefix, errstr,
                                   errstr_size) != AB_OK) {
                goto fail;
        }
        /* The catalog's topics own their series from the start: unknown
         * prefixes can never crowd them out of the family's 256. */
        for (size_t i = 0; i < ing->topics.event_cnt; i++) {
                (void)AB_METRIC_WITH(ing->m_accepted, ing->topics.names[i]);
        }

        ab_producer_conf_init(&pc);
        pc.brokers             = conf->common.kafka_brokers;
        pc.props               = props;
        pc.batch_num_messages  = conf->batch_num_messages;
        pc.queue_max_messages  = conf->queue_max_messages;
        pc.queue_max_kbytes    = (int)(conf->queue_max_bytes / 1024);
        pc.delivery_timeout_ms = (int)conf->delivery_timeout_ms;
        pc.poll_thread         = 1;
        pc.dr_cb               = ingest_publish_dr;
        pc.opaque              = ing;
        if (!(ing->producer = ab_producer_new(&pc, errstr, errstr_size)) ||
            ingest_rbac_init(ing, errstr, errstr_size) != AB_OK) {
                goto fail;
        }
        if (!(ing->schema_json = schema_json(ing, &ing->schema_json_len, errstr,
                                             errstr_size))) {
                goto fail;
        }

        memset(&def, 0, sizeof(def));
        def.name     = "ingest";
        def.common   = &conf->common;
        def.sc       = &conf->svc;
        def.max_body = conf->max_body;
        def.routes   = ingest_http_routes();
        def.metrics  = ing->metrics;
        def.check    = check_ready;
        def.opaque   = ing;
        if (!(ing->svc = ab_service_new(&def, errstr, errstr_size))) {
                goto fail;
        }
        return ing;

fail:
        ingest_destroy(ing);
        return NULL;
}

/* Asks the cluster for every topic we write to; the reason names what is
 * missing so /readyz tells an operator what to create. The deadletter
 * topic is the sink's to write, not ingest's. */
/* A broker slower than READY_TIMEOUT_MS still takes writes well inside
 * KAFKA_DELIVERY_TIMEOUT_MS: the request path waits that long for an
 * acknowledgement, so readiness says "unavailable" on the same terms:
 * every broker down, or no answer for longer than the delivery timeout.
 * Called from the readiness thread only. */
static int check_ready(void *opaque, char *reason, size_t reason_size) {
        ingest_t *ing = opaque;
        int64_t now   = ab_time_now_ms();
        ab_err_t err;

        err = ab_producer_ready(ing->producer,
                                (const char *const *)ing->topics.names,
                                ing->topics.prefix_cnt + 1, READY_TIMEOUT_MS,
                                reason, reason_size);
        if (err == AB_OK) {
                ing->ready_ok_ms = now;
                ing->slow_logged = 0;
                return 1;
        }
        if (err == AB_ERR_TIMEOUT && ing->ready_ok_ms &&
            now - ing->ready_ok_ms < ing->conf->delivery_timeout_ms) {
                if (!ing->slow_logged) {
                        ab_warn("kafka", "%s; still serving: events wait up to "
                                         "KAFKA_DELIVERY_TIMEOUT_MS for their "
                                         "acknowledgement",
                                reason);
                        ing->slow_logged = 1;
                }
                return 1;
        }
        return 0;
}

ab_err_t ingest_run(ingest_t *ing, volatile sig_atomic_t *run,
                    volatile sig_atomic_t *reload) {
        char errstr[512];
        int waited = 0;
        int64_t budget = ing->conf->svc.shutdown_timeout_ms;
        ab_err_t err;
        ab_producer_stats_t st;

        if (ab_service_start(ing->svc, errstr, sizeof(errstr)) != AB_OK) {
                ab_error("http", "cannot listen: %s", errstr);
                return AB_ERR_IO;
        }
        if (ingest_emit(ing, "core.startup", NULL,
                        json_pack("{s:s,s:s,s:s,s:i}", "service",
                                  "aetherbus-ingest", "version", AB_VERSION,
                                  "host", ab_service_host(ing->svc), "pid",
                                  (int)getpid()),
                        errstr, sizeof(errstr)) != AB_OK) {
                ab_warn("kafka", "cannot emit core.startup: %s", errstr);
        }
        while (*run) {
                ab_service_sleep_ms(100);
                if (reload && *reload) {
                        *reload = 0;
                        ingest_rbac_reload(ing);
                }
                if (ab_producer_fatal(ing->producer, errstr, sizeof(errstr))) {
                        ab_error("kafka", "fatal producer error, draining: %s",
                                 errstr);
                        break;
                }
        }

        /* Drain: refuse new events, let held requests get their reports,
         * then flush whatever is left, all within one bound. */
        ab_info("main", "stopping: %d requests waiting for Kafka",
                atomic_load(&ing->inflight));
        ab_service_drain(ing->svc);
        while (atomic_load(&ing->inflight) > 0 && waited < budget) {
                ab_service_sleep_ms(50);
                waited += 50;
        }
        err = ab_producer_flush(ing->producer,
                                (int)(budget > waited ? budget - waited : 0));
        ab_service_stop(ing->svc, 1000);
        ab_producer_stats(ing->producer, &st);
        ab_info("main",
                "stopped: produced %llu, delivered %llu, failed %llu, "
                "outq_len %d",
                (unsigned long long)st.produced,
                (unsigned long long)st.delivered,
                (unsigned long long)st.failed, st.outq_len);
        return err;
}

int ingest_unknown_prefix_take(ingest_t *ing, const char *prefix) {
        size_t i;
        int ok = 0;

        pthread_mutex_lock(&ing->unknown_lock);
        for (i = 0; i < ing->unknown_cnt && !ok; i++) {
                ok = !strcmp(ing->unknown[i], prefix);
        }
        if (!ok && ing->unknown_cnt < (size_t)ing->conf->max_unknown_prefixes &&
            strlen(prefix) < sizeof(ing->unknown[0])) {
                memcpy(ing->unknown[ing->unknown_cnt++], prefix,
                       strlen(prefix) + 1);
                ok = 1;
        }
        pthread_mutex_unlock(&ing->unknown_lock);
        return ok;
}

void ingest_destroy(ingest_t *ing) {
        if (!ing) {
                return;
        }
        free(ing->unknown);
        pthread_mutex_destroy(&ing->unknown_lock);
        ab_service_destroy(ing->svc);
        ab_producer_destroy(ing->producer);
        ab_stage_destroy(ing->stage); /* after the last delivery report */
        ab_auth_destroy(ing->auth);
        ingest_clients_holder_destroy(ing->clients);
        ab_avro_codec_destroy(ing->codec);
        ab_catalog_destroy(ing->catalog);
        ab_catalog_topics_clear(&ing->topics);
        free(ing->schema_json);
        ab_metrics_destroy(ing->metrics);
        free(ing);
}
