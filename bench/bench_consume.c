/* aetherbus - Apache-2.0
 *
 * aetherbus-bench-consume: the two halves of the consumer benchmarks
 * (bench/consumers drives them).
 *
 *   preload  writes N records ingest would write (Avro single-object,
 *            CloudEvents headers, key companyId, Kafka timestamp =
 *            receivedAt = now), each with its own id, over K tenants,
 *            round-robin over the topic's partitions.
 *   drain    the baseline: a bare librdkafka consumer assigned every
 *            partition of the topics from the beginning, reading until it
 *            has as many records as the watermarks said at start. No decoding:
 *            what a consumer service costs beyond this is its own.
 *
 * Each prints one machine-readable line:
 *   records=N seconds=S records_per_s=R [value_bytes=B]
 */
#include <getopt.h>
#include <inttypes.h>
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
#include "ab_time.h"

#define EVENT_FMT                                                            \
        "{\"id\":\"b-%012ld\",\"name\":\"ProductViewed\",\"schemaVersion\":1," \
        "\"occurredAt\":\"%s\",\"source\":\"storefront\","                    \
        "\"companyId\":\"c_%ld\",\"subjectId\":\"p1\","                      \
        "\"payload\":{\"productId\":\"p1\",\"sku\":\"SKU-001\","             \
        "\"referrer\":\"search\"}}"

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
                "Usage: %s preload|drain|follow -b HOST:PORT -t TOPIC [options]\n"
                "  -b, --brokers LIST   bootstrap servers (required)\n"
                "  -t, --topic NAME     topic (required; drain, follow: repeatable,\n"
                "                       every partition of each is read)\n"
                "  -d, --seconds S      follow: read new records for S seconds\n"
                "                       (default 30) and print their latency\n"
                "  -n, --count N        preload: records (default 1000000)\n"
                "  -k, --tenants K      preload: distinct companyIds "
                "(default 100000)\n"
                "  -h, --help           this text\n",
                argv0);
        return exitcode;
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *brokers,
                          char *errstr, size_t errstr_size) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();

        if (ab_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr,
                              errstr_size) ||
            (type == RD_KAFKA_PRODUCER
                 ? ab_kafka_conf_set(conf, "acks", "all", errstr, errstr_size) ||
                       ab_kafka_conf_set(conf, "linger.ms", "20", errstr,
                                         errstr_size) ||
                       ab_kafka_conf_set(conf, "batch.num.messages", "10000",
                                         errstr, errstr_size) ||
                       ab_kafka_conf_set(conf, "queue.buffering.max.messages",
                                         "1000000", errstr, errstr_size)
                 : ab_kafka_conf_set(conf, "group.id", "aetherbus-bench",
                                     errstr, errstr_size) ||
                       ab_kafka_conf_set(conf, "enable.auto.commit", "false",
                                         errstr, errstr_size))) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        if (type == RD_KAFKA_PRODUCER) {
                rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        }
        return rd_kafka_new(type, conf, errstr, errstr_size);
}

static int partitions_of(rd_kafka_t *rk, const char *topic) {
        const struct rd_kafka_metadata *md;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        int n = -1;

        if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == 0) {
                if (md->topic_cnt == 1 && !md->topics[0].err) {
                        n = md->topics[0].partition_cnt;
                }
                rd_kafka_metadata_destroy(md);
        }
        rd_kafka_topic_destroy(rkt);
        return n;
}

static int preload(const char *brokers, const char *topic, long count,
                   long tenants) {
        ab_catalog_t *cat;
        ab_avro_codec_t *codec;
        ab_envelope_ctx_t ctx;
        ab_envelope_limits_t limits;
        ab_envelope_t env;
        rd_kafka_headers_t *hdrs;
        rd_kafka_resp_err_t kerr;
        rd_kafka_t *rk;
        char errstr[512], text[1024], occurred[40], value[1024];
        size_t value_len = 0;
        int64_t received;
        int parts;
        double t0, t1;
        json_t *doc;
        ab_err_t err;
        long i;

        cat   = ab_catalog_new(errstr, sizeof(errstr));
        codec = cat ? ab_avro_codec_new(NULL, errstr, sizeof(errstr)) : NULL;
        rk    = codec ? client(RD_KAFKA_PRODUCER, brokers, errstr,
                               sizeof(errstr))
                      : NULL;
        if (!rk) {
                fprintf(stderr, "bench-consume: %s\n", errstr);
                return 1;
        }
        if ((parts = partitions_of(rk, topic)) < 1) {
                fprintf(stderr, "bench-consume: no topic %s\n", topic);
                return 1;
        }
        ab_envelope_limits_default(&limits);
        memset(&ctx, 0, sizeof(ctx));
        ctx.catalog = cat;
        ctx.limits  = &limits;
        ctx.form    = AB_FORM_INGEST;
        t0 = now_s();
        for (i = 0; i < count; i++) {
                received = ab_time_now_ms();
                ab_time_format(received - 1000, occurred, sizeof(occurred));
                snprintf(text, sizeof(text), EVENT_FMT, i, occurred,
                         i % tenants);
                memset(&env, 0, sizeof(env));
                doc = ab_envelope_json_parse(text, strlen(text), &limits, &err,
                                             errstr, sizeof(errstr));
                err = doc ? ab_envelope_from_json(&env, doc, &ctx, errstr,
                                                  sizeof(errstr))
                          : AB_ERR_MALFORMED;
                json_decref(doc);
                if (!err) {
                        ab_envelope_set_received(&env, received);
                        err = ab_avro_encode(codec, &env, value, sizeof(value),
                                             &value_len, errstr,
                                             sizeof(errstr));
                }
                if (err) {
                        fprintf(stderr, "bench-consume: event %ld: %s\n", i,
                                errstr);
                        return 1;
                }
                hdrs = ab_cloudevents_headers_new(&env);
                do {
                        kerr = rd_kafka_producev(
                            rk, RD_KAFKA_V_TOPIC(topic),
                            RD_KAFKA_V_PARTITION((int32_t)(i % parts)),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_KEY(env.company_id,
                                           strlen(env.company_id)),
                            RD_KAFKA_V_VALUE(value, value_len),
                            RD_KAFKA_V_TIMESTAMP(received),
                            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
                        if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                rd_kafka_poll(rk, 5);
                        }
                } while (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL);
                ab_envelope_clear(&env);
                if (kerr) {
                        rd_kafka_headers_destroy(hdrs);
                        fprintf(stderr, "bench-consume: produce: %s\n",
                                rd_kafka_err2str(kerr));
                        return 1;
                }
                rd_kafka_poll(rk, 0);
        }
        while (rd_kafka_outq_len(rk) > 0 && now_s() - t0 < 300) {
                rd_kafka_poll(rk, 10);
        }
        t1 = now_s();
        printf("records=%ld seconds=%.3f records_per_s=%.0f value_bytes=%zu "
               "failed=%ld\n",
               delivered, t1 - t0, (double)delivered / (t1 - t0), value_len,
               failed);
        rd_kafka_destroy(rk);
        ab_avro_codec_destroy(codec);
        ab_catalog_destroy(cat);
        return delivered == count ? 0 : 1;
}

/* Every partition of every topic, from the beginning to the high
 * watermarks seen at start. */
static int drain(const char *brokers, const char *const *topics,
                 int topic_cnt) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_topic_partition_t *tp;
        rd_kafka_message_t *msgs[1024];
        rd_kafka_queue_t *q;
        rd_kafka_t *rk;
        char errstr[512];
        int64_t lo, hi, want = 0, got = 0;
        int parts, i, t;
        ssize_t n, j;
        double t0, t1;

        if (!(rk = client(RD_KAFKA_CONSUMER, brokers, errstr, sizeof(errstr)))) {
                fprintf(stderr, "bench-consume: %s\n", errstr);
                return 1;
        }
        list = rd_kafka_topic_partition_list_new(64);
        for (t = 0; t < topic_cnt; t++) {
                if ((parts = partitions_of(rk, topics[t])) < 1) {
                        fprintf(stderr, "bench-consume: no topic %s\n", topics[t]);
                        return 1;
                }
                for (i = 0; i < parts; i++) {
                        if (rd_kafka_query_watermark_offsets(rk, topics[t], i, &lo,
                                                             &hi, 10000)) {
                                fprintf(stderr, "bench-consume: no watermarks\n");
                                return 1;
                        }
                        want += hi - lo;
                        tp = rd_kafka_topic_partition_list_add(list, topics[t], i);
                        tp->offset = RD_KAFKA_OFFSET_BEGINNING;
                        /* the goal of this partition rides in its opaque */
                        tp->opaque = (void *)(intptr_t)hi;
                }
        }
        t0 = now_s();
        rd_kafka_assign(rk, list);
        q = rd_kafka_queue_get_consumer(rk);
        while (got < want && now_s() - t0 < 600) {
                n = rd_kafka_consume_batch_queue(q, 100, msgs, 1024);
                for (j = 0; j < n; j++) {
                        if (!msgs[j]->err) {
                                got++;
                        }
                        rd_kafka_message_destroy(msgs[j]);
                }
        }
        t1 = now_s();
        printf("records=%" PRId64 " seconds=%.3f records_per_s=%.0f\n", got,
               t1 - t0, (double)got / (t1 - t0));
        rd_kafka_queue_destroy(q);
        rd_kafka_topic_partition_list_destroy(list);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return got >= want ? 0 : 1;
}

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

/* The baseline of bench/e2e: a bare consumer of the topics from their
 * ends, for \p seconds, measuring each record's age on arrival against
 * its timestamp (ingest's receivedAt, the moment before its 202). */
static int follow(const char *brokers, const char *const *topics,
                  int topic_cnt, double seconds) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_message_t *msgs[1024];
        rd_kafka_queue_t *q;
        rd_kafka_t *rk;
        char errstr[512];
        int64_t *lat = NULL, ts, now;
        size_t n_lat = 0, cap = 0;
        int parts, i, t;
        ssize_t n, j;
        double t0;
        struct timespec w;

        if (!(rk = client(RD_KAFKA_CONSUMER, brokers, errstr, sizeof(errstr)))) {
                fprintf(stderr, "bench-consume: %s\n", errstr);
                return 1;
        }
        list = rd_kafka_topic_partition_list_new(64);
        for (t = 0; t < topic_cnt; t++) {
                if ((parts = partitions_of(rk, topics[t])) < 1) {
                        fprintf(stderr, "bench-consume: no topic %s\n", topics[t]);
                        return 1;
                }
                for (i = 0; i < parts; i++) {
                        rd_kafka_topic_partition_list_add(list, topics[t], i)->offset =
                            RD_KAFKA_OFFSET_END;
                }
        }
        rd_kafka_assign(rk, list);
        q  = rd_kafka_queue_get_consumer(rk);
        t0 = now_s();
        printf("following\n");
        fflush(stdout);
        while (now_s() - t0 < seconds) {
                n = rd_kafka_consume_batch_queue(q, 100, msgs, 1024);
                clock_gettime(CLOCK_REALTIME, &w);
                now = (int64_t)w.tv_sec * 1000 + w.tv_nsec / 1000000;
                for (j = 0; j < n; j++) {
                        ts = rd_kafka_message_timestamp(msgs[j], NULL);
                        if (!msgs[j]->err && ts > 0) {
                                if (n_lat == cap) {
                                        cap = cap ? 2 * cap : 65536;
                                        lat = realloc(lat, cap * sizeof(*lat));
                                        if (!lat) {
                                                return 1;
                                        }
                                }
                                lat[n_lat++] = now - ts;
                        }
                        rd_kafka_message_destroy(msgs[j]);
                }
        }
        if (n_lat) {
                qsort(lat, n_lat, sizeof(*lat), cmp_i64);
                printf("records=%zu lat_p50_ms=%" PRId64 " lat_p99_ms=%" PRId64
                       " lat_max_ms=%" PRId64 "\n",
                       n_lat, lat[n_lat / 2], lat[(size_t)((double)n_lat * 0.99)],
                       lat[n_lat - 1]);
        } else {
                printf("records=0\n");
        }
        free(lat);
        rd_kafka_queue_destroy(q);
        rd_kafka_topic_partition_list_destroy(list);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return n_lat ? 0 : 1;
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
            {"brokers", required_argument, NULL, 'b'},
            {"topic", required_argument, NULL, 't'},
            {"count", required_argument, NULL, 'n'},
            {"tenants", required_argument, NULL, 'k'},
            {"seconds", required_argument, NULL, 'd'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *brokers = NULL, *topic = NULL, *mode;
        const char *topics[64];
        int topic_cnt = 0;
        long count = 1000000, tenants = 100000;
        double seconds = 30;
        int c;

        if (argc < 2 || argv[1][0] == '-') {
                return usage(argv[0], argc > 1 && !strcmp(argv[1], "-h") ? 0 : 2,
                             NULL);
        }
        mode = argv[1];
        optind = 2;
        while ((c = getopt_long(argc, argv, "b:t:n:k:d:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'b':
                        brokers = optarg;
                        break;
                case 't':
                        if (topic_cnt == 64) {
                                return usage(argv[0], 2, "at most 64 topics");
                        }
                        topic = topics[topic_cnt++] = optarg;
                        break;
                case 'n':
                        count = atol(optarg);
                        break;
                case 'k':
                        tenants = atol(optarg);
                        break;
                case 'd':
                        seconds = atof(optarg);
                        break;
                case 'h':
                        return usage(argv[0], 0, NULL);
                default:
                        return usage(argv[0], 2, NULL);
                }
        }
        if (!brokers || !topic) {
                return usage(argv[0], 2, "-b and -t are required");
        }
        if (count < 1 || tenants < 1) {
                return usage(argv[0], 2, "bad -n or -k");
        }
        if (!strcmp(mode, "preload")) {
                return preload(brokers, topic, count, tenants);
        }
        if (!strcmp(mode, "drain")) {
                return drain(brokers, topics, topic_cnt);
        }
        if (!strcmp(mode, "follow")) {
                return follow(brokers, topics, topic_cnt, seconds);
        }
        return usage(argv[0], 2, "mode must be preload, drain or follow");
}
