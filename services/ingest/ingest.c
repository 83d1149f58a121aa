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

#define READY_INTERVAL_MS 2000
#define READY_TIMEOUT_MS  3000

static double gauge_outq(void *opaque) {
        ingest_t *ing = opaque;

        return ing->producer ? (double)ab_producer_outq_len(ing->producer) : 0;
}

static double gauge_inflight(void *opaque) {
        ingest_t *ing = opaque;

        return (double)atomic_load(&ing->inflight);
}

static int ready_cb(void *opaque, char *reason, size_t reason_size) {
        return ingest_ready(opaque, reason, reason_size);
}

int ingest_ready(ingest_t *ing, char *reason, size_t reason_size) {
        int ready;

        /* Draining: tell the load balancer before clients find out. */
        if (!atomic_load(&ing->accepting)) {
                if (reason) {
                        snprintf(reason, reason_size, "shutting down");
                }
                return 0;
        }
        pthread_mutex_lock(&ing->ready_lock);
        ready = ing->ready;
        if (!ready && reason) {
                snprintf(reason, reason_size, "%s", ing->ready_reason);
        }
        pthread_mutex_unlock(&ing->ready_lock);
        return ready;
}

const char *ingest_topic(ingest_t *ing, const ab_envelope_t *env, char *buf,
                         size_t buf_size) {
        size_t i;

        if (env->entry) {
                for (i = 0; i < ing->topic_cnt; i++) {
                        if (!strcmp(ab_catalog_prefix_get(ing->catalog, i),
                                    env->entry->prefix)) {
                                return ing->topics[i];
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
        json_t *item;
        ab_envelope_t env;
        ab_envelope_ctx_t ctx;
        ab_err_t err;

        item = json_pack("{s:s,s:s,s:o}", "source", "aetherbus-ingest", "type",
                         type, "payload", payload ? payload : json_object());
        if (!item) {
                ab_errstr_set(errstr, errstr_size, "cannot build %s", type);
                return AB_ERR_NOMEM;
        }
        if (tenant && *tenant) {
                json_object_set_new(item, "tenant", json_string(tenant));
        }
        memset(&ctx, 0, sizeof(ctx));
        memset(&env, 0, sizeof(env));
        ctx.catalog = ing->catalog;
        ctx.limits  = &ing->limits;
        ctx.form    = AB_FORM_BUS;
        err = ab_envelope_from_json(&env, item, &ctx, errstr, errstr_size);
        json_decref(item);
        if (err) {
                return err;
        }
        ab_envelope_set_received(&env, env.occurred_at_ms);
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
        for (i = 0; i < ing->topic_cnt; i++) {
                json_array_append_new(
                    prefixes,
                    json_pack("{s:s,s:s}", "prefix",
                              ab_catalog_prefix_get(ing->catalog, i), "topic",
                              ing->topics[i]));
        }
        doc = json_pack(
            "{s:i,s:[s,s],s:{s:[s,s,s,s,s],s:s},s:o,s:o,s:{s:s,s:s},s:o,"
            "s:{s:s,s:s,s:s,s:s}}",
            "schemaVersion", AB_ENVELOPE_SCHEMA_VERSION, "endpoints",
            "POST /events/ingest", "POST /bus/events", "sources", "business",
            "storefront", "admin", "api", "bot", "agent", "platform",
            "[a-z0-9][a-z0-9._-]{0,63}", "events", events, "prefixes", prefixes,
            "topics", "rejected", ing->topic_rejected, "deadletter", "",
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
        ab_catalog_topic(ing->conf->common.topic_prefix,
                         AB_CATALOG_TOPIC_DEADLETTER, topic, sizeof(topic));
        json_object_set_new(json_object_get(doc, "topics"), "deadletter",
                            json_string(topic));
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
        ing->m_security = ab_metrics_counter(
            ing->metrics, "security_events_total",
            "Authorization decisions recorded, by event type and outcome.",
            "type,outcome", errstr, errstr_size);
        ing->m_batch_size = ab_metrics_histogram(
            ing->metrics, "batch_size",
            "Events per accepted request body.", NULL, batch_bounds,
            sizeof(batch_bounds) / sizeof(batch_bounds[0]), errstr,
            errstr_size);
        if (!ing->m_accepted || !ing->m_rejected || !ing->m_failed ||
            !ing->m_security || !ing->m_batch_size ||
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
        ab_http_conf_t hc;
        const char *props[] = {"linger.ms", conf->linger_ms, NULL};
        size_t i;
        char topic[256];

        ing = calloc(1, sizeof(*ing));
        if (!ing) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        ing->conf = conf;
        pthread_mutex_init(&ing->ready_lock, NULL);
        snprintf(ing->ready_reason, sizeof(ing->ready_reason),
                 "Kafka not checked yet");
        atomic_init(&ing->accepting, 1);
        atomic_init(&ing->inflight, 0);
        if (gethostname(ing->host, sizeof(ing->host) - 1) != 0) {
                snprintf(ing->host, sizeof(ing->host), "unknown");
        }

        ab_envelope_limits_default(&ing->limits);
        ing->limits.max_id_len        = (size_t)conf->max_id_len;
        ing->limits.max_payload_bytes = conf->max_payload;
        ing->limits.max_batch         = (size_t)conf->max_batch;
        ing->limits.max_input_bytes   = conf->max_body;

        if (!(ing->catalog = ab_catalog_new(errstr, errstr_size)) ||
            !(ing->codec = ab_avro_codec_new(NULL, errstr, errstr_size)) ||
            metrics_init(ing, errstr, errstr_size) != AB_OK) {
                goto fail;
        }

        ing->topic_cnt = ab_catalog_prefix_count(ing->catalog);
        ing->topics    = calloc(ing->topic_cnt, sizeof(char *));
        if (!ing->topics) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                goto fail;
        }
        for (i = 0; i < ing->topic_cnt; i++) {
                if (ab_catalog_topic(conf->common.topic_prefix,
                                     ab_catalog_prefix_get(ing->catalog, i),
                                     topic, sizeof(topic)) != AB_OK ||
                    !(ing->topics[i] = strdup(topic))) {
                        ab_errstr_set(errstr, errstr_size,
                                      "TOPIC_PREFIX: \"%s%s\" is not a valid "
                                      "topic name",
                                      conf->common.topic_prefix,
                                      ab_catalog_prefix_get(ing->catalog, i));
                        goto fail;
                }
        }
        if (ab_catalog_topic(conf->common.topic_prefix,
                             AB_CATALOG_TOPIC_REJECTED, ing->topic_rejected,
                             sizeof(ing->topic_rejected)) != AB_OK) {
                ab_errstr_set(errstr, errstr_size,
                              "TOPIC_PREFIX: not a valid topic prefix");
                goto fail;
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
        if (!(ing->producer = ab_producer_new(&pc, errstr, errstr_size))) {
                goto fail;
        }
        if (!(ing->rbac = ingest_rbac_new(ing, errstr, errstr_size))) {
                goto fail;
        }
        if (!(ing->schema_json = schema_json(ing, &ing->schema_json_len, errstr,
                                             errstr_size))) {
                goto fail;
        }

        memset(&hc, 0, sizeof(hc));
        hc.service         = "ingest";
        hc.bind            = conf->bind;
        hc.port            = conf->common.port;
        hc.max_body        = conf->max_body;
        hc.max_connections = (unsigned)conf->http_max_connections;
        hc.timeout_s       = (unsigned)conf->http_timeout_s;
        hc.threads         = (unsigned)conf->http_threads;
        hc.retry_after_s   = (unsigned)conf->retry_after_s;
        hc.routes          = ingest_http_routes();
        hc.metrics         = ing->metrics;
        hc.ready           = ready_cb;
        hc.opaque          = ing;
        if (!(ing->http = ab_http_new(&hc, errstr, errstr_size))) {
                goto fail;
        }
        return ing;

fail:
        ingest_destroy(ing);
        return NULL;
}

/* Asks the cluster for every topic we write to; the reason names what is
 * missing so /readyz tells an operator what to create. */
static void check_ready(ingest_t *ing) {
        const char **topics;
        char reason[512];
        int ready;
        size_t i;

        topics = calloc(ing->topic_cnt + 1, sizeof(char *));
        if (!topics) {
                return;
        }
        for (i = 0; i < ing->topic_cnt; i++) {
                topics[i] = ing->topics[i];
        }
        topics[ing->topic_cnt] = ing->topic_rejected;
        reason[0]              = '\0';
        ready = ab_producer_ready(ing->producer, topics, ing->topic_cnt + 1,
                                  READY_TIMEOUT_MS, reason,
                                  sizeof(reason)) == AB_OK;
        free(topics);

        pthread_mutex_lock(&ing->ready_lock);
        if (ready != ing->ready ||
            (!ready && strcmp(reason, ing->ready_reason) != 0)) {
                if (ready) {
                        ab_info("kafka", "ready: %s answers with every topic",
                                ing->conf->common.kafka_brokers);
                } else {
                        ab_error("kafka", "not ready: %s", reason);
                }
        }
        ing->ready = ready;
        snprintf(ing->ready_reason, sizeof(ing->ready_reason), "%s",
                 ready ? "" : reason);
        pthread_mutex_unlock(&ing->ready_lock);
}

static void sleep_ms(int ms) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

        while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
                break; /* a signal: let the caller look at the run flag */
        }
}

/* Refreshes readiness until the drain starts (accepting drops to 0). */
static void *ready_loop(void *opaque) {
        ingest_t *ing = opaque;
        int slept;

        while (atomic_load(&ing->accepting)) {
                for (slept = 0;
                     atomic_load(&ing->accepting) && slept < READY_INTERVAL_MS;
                     slept += 100) {
                        sleep_ms(100);
                }
                if (atomic_load(&ing->accepting)) {
                        check_ready(ing);
                }
        }
        return NULL;
}

ab_err_t ingest_run(ingest_t *ing, volatile sig_atomic_t *run) {
        char errstr[512];
        pthread_t readier;
        int readier_ok;
        int waited = 0;
        ab_err_t err;
        ab_producer_stats_t st;

        check_ready(ing);
        if (ab_http_start(ing->http, errstr, sizeof(errstr)) != AB_OK) {
                ab_error("http", "cannot listen: %s", errstr);
                return AB_ERR_IO;
        }
        ab_info("http", "listening on %s:%d", ing->conf->bind,
                ab_http_port(ing->http));
        if (ingest_emit(ing, "core.startup", NULL,
                        json_pack("{s:s,s:s,s:s,s:i}", "service",
                                  "aetherbus-ingest", "version", AB_VERSION,
                                  "host", ing->host, "pid", (int)getpid()),
                        errstr, sizeof(errstr)) != AB_OK) {
                ab_warn("kafka", "cannot emit core.startup: %s", errstr);
        }

        /* Readiness runs beside this loop: a metadata request can block
         * for READY_TIMEOUT_MS, and SIGTERM must not wait for it. */
        readier_ok = pthread_create(&readier, NULL, ready_loop, ing) == 0;
        if (!readier_ok) {
                ab_warn("main", "no readiness thread: readiness frozen");
        }
        while (*run) {
                sleep_ms(100);
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
        atomic_store(&ing->accepting, 0);
        while (atomic_load(&ing->inflight) > 0 &&
               waited < ing->conf->shutdown_timeout_ms) {
                sleep_ms(50);
                waited += 50;
        }
        err = ab_producer_flush(ing->producer,
                                (int)(ing->conf->shutdown_timeout_ms > waited
                                          ? ing->conf->shutdown_timeout_ms - waited
                                          : 0));
        ab_http_stop(ing->http, 1000);
        if (readier_ok) {
                pthread_join(readier, NULL);
        }
        ab_producer_stats(ing->producer, &st);
        ab_info("main",
                "stopped: produced %llu, delivered %llu, failed %llu, "
                "outq_len %d",
                (unsigned long long)st.produced,
                (unsigned long long)st.delivered,
                (unsigned long long)st.failed, st.outq_len);
        return err;
}

void ingest_destroy(ingest_t *ing) {
        size_t i;

        if (!ing) {
                return;
        }
        ab_http_destroy(ing->http);
        ab_producer_destroy(ing->producer);
        ingest_rbac_destroy(ing->rbac);
        ab_avro_codec_destroy(ing->codec);
        ab_catalog_destroy(ing->catalog);
        for (i = 0; ing->topics && i < ing->topic_cnt; i++) {
                free(ing->topics[i]);
        }
        free(ing->topics);
        free(ing->schema_json);
        ab_metrics_destroy(ing->metrics);
        pthread_mutex_destroy(&ing->ready_lock);
        free(ing);
}
