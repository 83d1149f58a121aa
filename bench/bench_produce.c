/* aetherbus - Apache-2.0
 *
 * aetherbus-bench-produce: the raw produce ceiling that bench/ingest
 * compares the service against. A bare librdkafka producer (acks=all,
 * idempotence, linger.ms=5) sends N copies of the records ingest would
 * write for the benchmark's events: the same envelope validated with the
 * catalog, the same Avro single-object value (ab_avro_encode), key and
 * CloudEvents headers, cycling over the benchmark's tenants. It waits for
 * every delivery report and prints one machine-readable line:
 *   events=N delivered=N failed=N seconds=S events_per_s=R value_bytes=B
 * What stays out: HTTP, JSON parsing per event, per-request bookkeeping.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "ab_avro.h"
#include "ab_catalog.h"
#include "ab_cloudevents.h"
#include "ab_envelope.h"
#include "ab_kafka.h"

#define MAX_TENANTS 64

/* The event of the bench/wrk scripts, with a same-length id. */
#define EVENT_FMT                                                            \
        "{\"id\":\"c0-%09d\",\"name\":\"ProductViewed\",\"schemaVersion\":1," \
        "\"occurredAt\":\"2026-02-11T20:10:00.000Z\",\"source\":"            \
        "\"storefront\",\"companyId\":\"c_%d\",\"subjectId\":\"p1\","       \
        "\"payload\":{\"productId\":\"p1\",\"sku\":\"SKU-001\","             \
        "\"referrer\":\"search\"}}"

typedef struct rec_s {
        char value[1024];
        size_t value_len;
        char key[32];
        ab_envelope_t env;
} rec_t;

static long delivered, failed;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
        (void)rk;
        (void)opaque;
        if (m->err) {
                failed++;
        } else {
                delivered++;
        }
}

static double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(const char *argv0, int exitcode, const char *reason) {
        FILE *out = exitcode ? stderr : stdout;

        if (reason) {
                fprintf(out, "%s: %s\n\n", argv0, reason);
        }
        fprintf(out,
                "Usage: %s -b HOST:PORT [options]\n"
                "Produces N copies of ingest's records for the benchmark "
                "event (acks=all,\nidempotence) and prints events/s once "
                "every delivery report is in.\n\n"
                "  -b, --brokers LIST   bootstrap servers (required)\n"
                "  -t, --topic NAME     topic (default events.commerce)\n"
                "  -n, --count N        records (default 300000)\n"
                "  -k, --tenants K      distinct keys (default 16, max %d)\n"
                "  -X NAME=VALUE        librdkafka property (repeatable; "
                "default linger.ms=5)\n"
                "  -H, --no-headers     leave the CloudEvents headers out "
                "(diagnostic only)\n"
                "  -h, --help           this text\n",
                argv0, MAX_TENANTS);
        return exitcode;
}

static int build_recs(rec_t *recs, int tenants, char *errstr,
                      size_t errstr_size) {
        ab_catalog_t *cat;
        ab_avro_codec_t *codec;
        ab_envelope_ctx_t ctx;
        ab_envelope_limits_t limits;
        char text[1024];
        json_t *doc;
        int i;
        ab_err_t err = AB_OK;

        cat   = ab_catalog_new(errstr, errstr_size);
        codec = cat ? ab_avro_codec_new(NULL, errstr, errstr_size) : NULL;
        if (!codec) {
                ab_catalog_destroy(cat);
                return -1;
        }
        ab_envelope_limits_default(&limits);
        memset(&ctx, 0, sizeof(ctx));
        ctx.catalog = cat;
        ctx.limits  = &limits;
        ctx.form    = AB_FORM_INGEST;
        for (i = 0; i < tenants && !err; i++) {
                snprintf(text, sizeof(text), EVENT_FMT, i, i);
                doc = ab_envelope_json_parse(text, strlen(text), &limits, &err,
                                             errstr, errstr_size);
                if (!doc) {
                        break;
                }
                err = ab_envelope_from_json(&recs[i].env, doc, &ctx, errstr,
                                            errstr_size);
                json_decref(doc); /* env holds its own reference */
                if (err) {
                        break;
                }
                ab_envelope_set_received(&recs[i].env, 1770840600000LL);
                err = ab_avro_encode(codec, &recs[i].env, recs[i].value,
                                     sizeof(recs[i].value), &recs[i].value_len,
                                     errstr, errstr_size);
                snprintf(recs[i].key, sizeof(recs[i].key), "%s",
                         ab_envelope_key(&recs[i].env));
        }
        ab_avro_codec_destroy(codec);
        ab_catalog_destroy(cat);
        return err || i < tenants ? -1 : 0;
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
            {"brokers", required_argument, NULL, 'b'},
            {"topic", required_argument, NULL, 't'},
            {"count", required_argument, NULL, 'n'},
            {"tenants", required_argument, NULL, 'k'},
            {"no-headers", no_argument, NULL, 'H'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *brokers = NULL;
        const char *topic   = "events.commerce";
        long count          = 300000;
        int tenants         = 16;
        char *props[64];
        int nprops = 0;
        int no_headers = 0;
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        rd_kafka_topic_t *rkt;
        rd_kafka_resp_err_t err;
        rec_t *recs;
        char errstr[512];
        double t0, t1;
        long i;
        int c, r;

        while ((c = getopt_long(argc, argv, "b:t:n:k:X:Hh", longopts, NULL)) !=
               -1) {
                switch (c) {
                case 'b':
                        brokers = optarg;
                        break;
                case 't':
                        topic = optarg;
                        break;
                case 'n':
                        count = atol(optarg);
                        break;
                case 'k':
                        tenants = atoi(optarg);
                        break;
                case 'X':
                        if (nprops == 64 || !strchr(optarg, '=')) {
                                return usage(argv[0], 2, "bad -X");
                        }
                        props[nprops++] = optarg;
                        break;
                case 'H':
                        no_headers = 1;
                        break;
                case 'h':
                        return usage(argv[0], 0, NULL);
                default:
                        return usage(argv[0], 2, NULL);
                }
        }
        if (!brokers) {
                return usage(argv[0], 2, "-b is required");
        }
        if (count < 1 || tenants < 1 || tenants > MAX_TENANTS) {
                return usage(argv[0], 2, "bad -n or -k");
        }

        recs = calloc((size_t)tenants, sizeof(*recs));
        if (!recs || build_recs(recs, tenants, errstr, sizeof(errstr))) {
                fprintf(stderr, "bench-produce: %s\n", errstr);
                return 1;
        }

        conf = rd_kafka_conf_new();
        if (ab_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr,
                              sizeof(errstr)) ||
            ab_kafka_conf_set(conf, "acks", "all", errstr, sizeof(errstr)) ||
            ab_kafka_conf_set(conf, "enable.idempotence", "true", errstr,
                              sizeof(errstr)) ||
            ab_kafka_conf_set(conf, "linger.ms", "5", errstr,
                              sizeof(errstr)) ||
            ab_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000",
                              errstr, sizeof(errstr))) {
                fprintf(stderr, "bench-produce: %s\n", errstr);
                return 1;
        }
        for (r = 0; r < nprops; r++) {
                char *eq = strchr(props[r], '=');

                *eq = '\0';
                if (ab_kafka_conf_set(conf, props[r], eq + 1, errstr,
                                      sizeof(errstr))) {
                        fprintf(stderr, "bench-produce: %s\n", errstr);
                        return 2;
                }
        }
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "bench-produce: %s\n", errstr);
                return 1;
        }
        rkt = rd_kafka_topic_new(rk, topic, NULL);

        /* Connect and learn the topic before the clock starts. */
        {
                const struct rd_kafka_metadata *md;

                if (rd_kafka_metadata(rk, 0, rkt, &md, 10000)) {
                        fprintf(stderr, "bench-produce: no metadata from %s\n",
                                brokers);
                        return 1;
                }
                rd_kafka_metadata_destroy(md);
        }

        t0 = now_s();
        for (i = 0; i < count; i++) {
                rec_t *rec = &recs[i % tenants];
                rd_kafka_headers_t *hdrs =
                    no_headers ? NULL : ab_cloudevents_headers_new(&rec->env);

                for (;;) {
                        err = rd_kafka_producev(
                            rk, RD_KAFKA_V_RKT(rkt),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_KEY(rec->key, strlen(rec->key)),
                            RD_KAFKA_V_VALUE(rec->value, rec->value_len),
                            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
                        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                break;
                        }
                        rd_kafka_poll(rk, 1);
                }
                if (err) {
                        fprintf(stderr, "bench-produce: produce: %s\n",
                                rd_kafka_err2str(err));
                        rd_kafka_headers_destroy(hdrs);
                        return 1;
                }
                rd_kafka_poll(rk, 0);
        }
        while (rd_kafka_outq_len(rk) > 0 && now_s() - t0 < 120) {
                rd_kafka_poll(rk, 10);
        }
        t1 = now_s();

        printf("events=%ld delivered=%ld failed=%ld seconds=%.3f "
               "events_per_s=%.0f value_bytes=%zu\n",
               count, delivered, failed, t1 - t0,
               (double)delivered / (t1 - t0), recs[0].value_len);

        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        for (r = 0; r < tenants; r++) {
                ab_envelope_clear(&recs[r].env);
        }
        free(recs);
        return delivered == count ? 0 : 1;
}
