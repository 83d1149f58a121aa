/* aetherbus - Apache-2.0
 *
 * 0006-ingest-outage: aetherbus-ingest while its Kafka goes away and comes
 * back (issue 11). Two clients send one event per request the whole time;
 * while the broker is down /readyz and POST answer 503 with Retry-After,
 * once it is back 202 again, and every event answered 2xx before, during
 * or after the outage is on its topic, checked by id. On the devbroker the
 * outage is its control channel's "down"/"up"; on the real Kafka a private
 * broker (tools/kafka/kafka.sh, not the shared fixture that other tests
 * use) is stopped and started again on the same ports with its data
 * (stop --keep, start --resume). Each variant says by name which broker
 * it needs.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "ab_itest.h"

#define PARTITIONS  3
#define WAIT_MS     60000
#define SENDERS     2
#define SENDER_CAP  20000
#define BEFORE_OK   20  /* 2xx seen before the outage */
#define AFTER_OK    20  /* 2xx seen after it */

typedef struct sender_s {
        pthread_t thread;
        int idx;
        int running; /* created, not joined yet */
        size_t n;
        char (*ids)[32];
        long *status;
        int *retry_after; /* a 503 carried Retry-After */
} sender_t;

static ab_itest_broker_t *b;
static ab_itest_proc_t *svc;
static int port;
static char prefix[64];
static char kdir[512]; /* private real broker's state, "" when none */
static atomic_int stop_senders;
static atomic_int ok_total;
static sender_t senders[SENDERS];

/* kafka.sh MODE [OPT] on this test's private broker. */
static int kafka_sh(const char *mode, const char *opt, char *brokers,
                    size_t brokers_size) {
        return ab_itest_kafka_sh(kdir, mode, opt, brokers, brokers_size);
}

static void teardown(void) {
        int i;

        atomic_store(&stop_senders, 1);
        for (i = 0; i < SENDERS; i++) {
                if (senders[i].running) {
                        pthread_join(senders[i].thread, NULL);
                }
                free(senders[i].ids);
                free(senders[i].status);
                free(senders[i].retry_after);
        }
        memset(senders, 0, sizeof(senders));
        ab_itest_proc_destroy(svc);
        svc = NULL;
        ab_itest_broker_stop(b);
        b = NULL;
        if (kdir[0]) {
                kafka_sh("stop", NULL, NULL, 0);
                kdir[0] = '\0';
        }
}

TestSuite(ingest_outage, .fini = teardown, .timeout = 300);

static void event(char *buf, size_t size, const char *id) {
        snprintf(buf, size,
                 "{\"id\":\"%s\",\"name\":\"OrderCreated\",\"schemaVersion\":"
                 "1,\"occurredAt\":\"2026-02-11T20:10:00.000Z\",\"source\":"
                 "\"api\",\"companyId\":\"c%d\",\"payload\":{\"n\":1}}",
                 id, (int)(strlen(id) % 7));
}

/* One client: one event per request until told to stop. No asserts off
 * the test's thread: the outcome of every request is recorded. */
static void *sender_main(void *arg) {
        sender_t *s            = arg;
        struct timespec pace   = {0, 10 * 1000000};
        ab_itest_http_t res;
        char url[128];
        char body[512];
        char ra[32];

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/events/ingest", port);
        while (!atomic_load(&stop_senders) && s->n < SENDER_CAP) {
                snprintf(s->ids[s->n], sizeof(s->ids[s->n]), "out-%d-%zu",
                         s->idx, s->n);
                event(body, sizeof(body), s->ids[s->n]);
                ab_itest_http_post_json(url, body, NULL, &res);
                s->status[s->n]      = res.status;
                s->retry_after[s->n] = res.status == 503 &&
                                       ab_itest_http_header(&res, "Retry-After",
                                                            ra, sizeof(ra)) == 0;
                if (res.status >= 200 && res.status < 300) {
                        atomic_fetch_add(&ok_total, 1);
                }
                s->n++;
                ab_itest_http_clear(&res);
                nanosleep(&pace, NULL); /* pacing the client, not a wait */
        }
        return NULL;
}

static void senders_start(void) {
        int i;

        atomic_store(&stop_senders, 0);
        atomic_store(&ok_total, 0);
        for (i = 0; i < SENDERS; i++) {
                senders[i].idx         = i;
                senders[i].ids         = calloc(SENDER_CAP, sizeof(*senders[i].ids));
                senders[i].status      = calloc(SENDER_CAP, sizeof(long));
                senders[i].retry_after = calloc(SENDER_CAP, sizeof(int));
                cr_assert(senders[i].ids && senders[i].status &&
                          senders[i].retry_after);
                cr_assert_eq(pthread_create(&senders[i].thread, NULL,
                                            sender_main, &senders[i]),
                             0);
                senders[i].running = 1;
        }
}

static void wait_ok(int want, const char *phase) {
        int64_t dl = ab_itest_deadline(WAIT_MS);

        while (atomic_load(&ok_total) < want) {
                cr_assert(ab_itest_tick(dl),
                          "%s: only %d of %d requests answered 2xx", phase,
                          atomic_load(&ok_total), want);
        }
}

static long post_one(const char *id, ab_itest_http_t *res) {
        char url[128];
        char body[512];

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/events/ingest", port);
        event(body, sizeof(body), id);
        return ab_itest_http_post_json(url, body, NULL, res);
}

/* The whole scenario; down()/up() make and end the outage. */
static void run_outage(void (*down)(void), void (*up)(void)) {
        ab_itest_record_t *recs = NULL;
        const char **ok_ids;
        const char *missing;
        ab_itest_http_t res;
        char topic[256];
        char ra[32];
        size_t ok_cnt = 0, n503 = 0, nrecs, nmissing, i, j;
        long status;
        json_t *doc;
        int at_up;

        ab_itest_prefix(prefix, sizeof(prefix));
        ab_itest_catalog_topics_create(b, prefix, PARTITIONS);
        svc = ab_itest_service_start(b, "aetherbus-ingest", prefix, NULL,
                                     &port);
        cr_assert_eq(ab_itest_http_wait_status(port, "/readyz", 200, WAIT_MS),
                     200, "ingest never became ready");
        senders_start();
        wait_ok(BEFORE_OK, "before the outage");

        down();
        status = ab_itest_http_wait_status(port, "/readyz", 503, WAIT_MS);
        cr_assert_eq(status, 503, "/readyz still %ld with the broker down",
                     status);
        cr_assert_eq(post_one("during-outage", &res), 503,
                     "POST with the broker down: %ld %s", res.status,
                     res.body);
        cr_assert_eq(ab_itest_http_header(&res, "Retry-After", ra, sizeof(ra)),
                     0, "503 without Retry-After");
        doc = ab_itest_http_json(&res);
        cr_assert(doc && json_is_string(json_object_get(doc, "error")),
                  "503 body %s", res.body);
        json_decref(doc);
        ab_itest_http_clear(&res);

        up();
        status = ab_itest_http_wait_status(port, "/readyz", 200, WAIT_MS);
        cr_assert_eq(status, 200, "/readyz still %ld with the broker back",
                     status);
        cr_assert_eq(post_one("after-outage", &res), 202,
                     "POST with the broker back: %ld %s", res.status,
                     res.body[0] ? res.body : res.error);
        ab_itest_http_clear(&res);
        at_up = atomic_load(&ok_total);
        wait_ok(at_up + AFTER_OK, "after the outage");
        atomic_store(&stop_senders, 1);
        for (i = 0; i < SENDERS; i++) {
                pthread_join(senders[i].thread, NULL);
                senders[i].running = 0;
        }

        /* every answer was 2xx or 503 with Retry-After: no hang, no 500 */
        ok_ids = calloc(SENDERS * SENDER_CAP + 1, sizeof(*ok_ids));
        cr_assert_not_null(ok_ids);
        ok_ids[ok_cnt++] = "after-outage";
        for (i = 0; i < SENDERS; i++) {
                for (j = 0; j < senders[i].n; j++) {
                        status = senders[i].status[j];
                        if (status >= 200 && status < 300) {
                                ok_ids[ok_cnt++] = senders[i].ids[j];
                                continue;
                        }
                        cr_assert_eq(status, 503, "%s answered %ld",
                                     senders[i].ids[j], status);
                        cr_assert(senders[i].retry_after[j],
                                  "%s: 503 without Retry-After",
                                  senders[i].ids[j]);
                        n503++;
                }
        }
        cr_log_info("%s: %zu requests answered 2xx, %zu answered 503",
                    ab_itest_broker_kind(b), ok_cnt, n503);

        snprintf(topic, sizeof(topic), "%scommerce", prefix);
        cr_assert_geq(ab_itest_topic_wait_count(b, topic, (int64_t)ok_cnt,
                                                WAIT_MS),
                      (int64_t)ok_cnt, "%s holds fewer records than 2xx answers",
                      topic);
        nrecs    = ab_itest_consume_all(b, topic, WAIT_MS, &recs);
        nmissing = ab_itest_records_missing(recs, nrecs, "ce_id", ok_ids,
                                            ok_cnt, &missing);
        cr_assert_eq(nmissing, 0,
                     "%zu of %zu events answered 2xx are not on %s (first: "
                     "%s; %zu records read)",
                     nmissing, ok_cnt, topic, missing ? missing : "-", nrecs);
        ab_itest_records_free(recs, nrecs);
        free(ok_ids);
}

/* ---- devbroker: the control channel ---- */

static void devbroker_down(void) {
        char reply[256];

        cr_assert_eq(ab_itest_broker_control(b, "down", reply, sizeof(reply)),
                     0, "devbroker down: %s", reply);
}

static void devbroker_up(void) {
        char reply[256];

        cr_assert_eq(ab_itest_broker_control(b, "up", reply, sizeof(reply)),
                     0, "devbroker up: %s", reply);
}

Test(ingest_outage, devbroker_down_gives_503_then_202_and_keeps_every_2xx) {
        ab_itest_require_kind("devbroker",
                              "takes the devbroker down through its control "
                              "channel; the kafka run stops a private real "
                              "broker instead "
                              "(kafka_stopped_gives_503_then_202_and_keeps_"
                              "every_2xx)");
        b = ab_itest_broker_start();
        run_outage(devbroker_down, devbroker_up);
}

/* A broker slower than the readiness probe (4 s per request, the probe
 * waits 3) but inside KAFKA_DELIVERY_TIMEOUT_MS is slow, not gone: /readyz
 * stays 200, the log says "Kafka slow", and an event still answers 202
 * and is on its topic. Only the devbroker can add latency to a broker. */
Test(ingest_outage, a_slow_broker_is_slow_not_unreachable) {
        ab_itest_record_t *recs = NULL;
        ab_itest_http_t res;
        char reply[256], cmd[64], topic[256], url[128];
        size_t n;
        int id;

        ab_itest_require_kind("devbroker", "adds round-trip time through the "
                                           "devbroker's control channel");
        b = ab_itest_broker_start();
        ab_itest_prefix(prefix, sizeof(prefix));
        ab_itest_catalog_topics_create(b, prefix, PARTITIONS);
        svc = ab_itest_service_start(b, "aetherbus-ingest", prefix, NULL,
                                     &port);
        cr_assert_eq(ab_itest_http_wait_status(port, "/readyz", 200, WAIT_MS),
                     200, "ingest never became ready");
        for (id = 1; id <= 3; id++) {
                snprintf(cmd, sizeof(cmd), "rtt %d 4000", id);
                ab_itest_broker_control(b, cmd, reply, sizeof(reply));
        }
        cr_assert_eq(ab_itest_proc_wait_log(svc, "Kafka slow", 20000), 0,
                     "the probe never timed out against the slow broker");
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", port);
        cr_assert_eq(ab_itest_http_get(url, &res), 200,
                     "a slow broker made ingest unready: %s", res.body);
        ab_itest_http_clear(&res);
        cr_assert_eq(post_one("while-slow", &res), 202, "POST while slow: %ld %s",
                     res.status, res.body[0] ? res.body : res.error);
        ab_itest_http_clear(&res);
        for (id = 1; id <= 3; id++) {
                snprintf(cmd, sizeof(cmd), "rtt %d 0", id);
                ab_itest_broker_control(b, cmd, reply, sizeof(reply));
        }
        snprintf(topic, sizeof(topic), "%scommerce", prefix);
        n = ab_itest_consume_all(b, topic, WAIT_MS, &recs);
        cr_assert_not_null(ab_itest_records_find(recs, n, "ce_id", "while-slow"),
                           "while-slow not on %s after its 202", topic);
        ab_itest_records_free(recs, n);
}

static void *post_held(void *arg) {
        post_one("held-at-stop", arg);
        return NULL;
}

/* A request still waiting for Kafka when ingest stops is answered 503
 * saying its outcome is unknown (its events may still be delivered while
 * the producer flushes), never that they failed. */
Test(ingest_outage, a_request_held_at_shutdown_says_its_outcome_is_unknown) {
        static const char *const env[] = {"SHUTDOWN_TIMEOUT_MS=1000", NULL};
        ab_itest_http_t res;
        char reply[256], cmd[64];
        pthread_t t;
        json_t *doc;
        int id;

        ab_itest_require_kind("devbroker", "holds a request by slowing the "
                                           "devbroker down");
        b = ab_itest_broker_start();
        ab_itest_prefix(prefix, sizeof(prefix));
        ab_itest_catalog_topics_create(b, prefix, PARTITIONS);
        svc = ab_itest_service_start(b, "aetherbus-ingest", prefix, env, &port);
        cr_assert_eq(ab_itest_http_wait_status(port, "/readyz", 200, WAIT_MS),
                     200, "ingest never became ready");
        /* slow, not down: ingest stays ready and holds the request */
        for (id = 1; id <= 3; id++) {
                snprintf(cmd, sizeof(cmd), "rtt %d 10000", id);
                ab_itest_broker_control(b, cmd, reply, sizeof(reply));
        }
        memset(&res, 0, sizeof(res));
        cr_assert_eq(pthread_create(&t, NULL, post_held, &res), 0);
        /* let the request in: it then waits for Kafka's acknowledgement */
        nanosleep(&(struct timespec){0, 500000000L}, NULL);
        cr_assert_eq(ab_itest_proc_signal(svc, SIGTERM), 0);
        pthread_join(t, NULL);
        cr_assert_eq(res.status, 503, "held request at stop: %ld %s",
                     res.status, res.body);
        doc = ab_itest_http_json(&res);
        cr_assert(doc && json_is_false(json_object_get(
                             json_object_get(doc, "detail"), "outcomeKnown")),
                  "the 503 does not say the outcome is unknown: %s", res.body);
        cr_assert(strstr(json_string_value(json_object_get(doc, "error")),
                         "may or may not"),
                  "%s", res.body);
        json_decref(doc);
        ab_itest_http_clear(&res);
}

/* ---- real Kafka: a private broker, stopped and started again ---- */

static void kafka_stop(void) {
        cr_assert_eq(kafka_sh("stop", "--keep", NULL, 0), 0,
                     "kafka.sh stop --keep %s", kdir);
}

static void kafka_resume(void) {
        char brokers[256] = "";

        cr_assert_eq(kafka_sh("start", "--resume", brokers, sizeof(brokers)),
                     0, "kafka.sh start --resume %s", kdir);
        cr_assert_str_eq(brokers, ab_itest_broker_bootstrap(b),
                         "the broker came back on another address");
}

Test(ingest_outage, kafka_stopped_gives_503_then_202_and_keeps_every_2xx) {
        char brokers[256] = "";

        ab_itest_require_kind("kafka",
                              "stops and restarts a real Kafka broker; the "
                              "devbroker run takes the mock down instead "
                              "(devbroker_down_gives_503_then_202_and_keeps_"
                              "every_2xx)");
        snprintf(kdir, sizeof(kdir), "%s/kafka-outage", ab_itest_tmpdir());
        cr_assert_eq(kafka_sh("start", NULL, brokers, sizeof(brokers)), 0,
                     "cannot start a private Kafka in %s", kdir);
        cr_assert(brokers[0], "kafka.sh printed no BROKERS=");
        /* the harness takes an existing cluster from KAFKA_BROKERS */
        setenv("KAFKA_BROKERS", brokers, 1);
        b = ab_itest_broker_start();
        run_outage(kafka_stop, kafka_resume);
}
