/* aetherbus - Apache-2.0
 *
 * 0016-sink: real aetherbus-ingest and aetherbus-sink on the broker under
 * test, and a recording HTTP sink inside the test (libmicrohttpd) that
 * parses every body as a JSON array and notes ids, Idempotency-Keys and
 * batch sizes, and can be told to fail. Events posted to ingest all reach
 * it, at least once, in per-key order and in batches within the limits;
 * a sink answering 503 for a while loses nothing; events it refuses with
 * 400 land on <prefix>deadletter with Kafka Connect's headers, exactly
 * those; a SIGKILLed sink restarted loses nothing; a batch closed by
 * linger, or one full, whose answer never came is sent again after a
 * SIGKILL with the same Idempotency-Key and events; SIGTERM exits 0.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <microhttpd.h>

#include "ab_itest.h"

#define PARTITIONS 3
#define WAIT_MS    30000
#define MAX_EVENTS 100
#define MAX_BYTES  (64 * 1024)
#define KEYS       7
#define NEV_MAX    4000

static ab_itest_broker_t *b;
static ab_itest_proc_t *ingest, *sink, *ingest2;
static int iport, sport, hport;
static char prefix[64], group[96];

/* What the recording sink saw. Criterion runs each test in a process of
 * its own, so this starts zeroed every time. */
static struct {
        pthread_mutex_t lock;
        struct MHD_Daemon *d;
        int64_t fail_until_ms;   /* 503 + Retry-After: 1 until then */
        int delay_ms;            /* sleep before each answer */
        int poison_ok;           /* the sink was fixed: poison is taken */
        int requests, ok, n503, n400, no_key, not_array, over_limit;
        int max_batch;
        size_t max_bytes;
        int delivered[NEV_MAX];  /* by event number, 2xx answers only */
        int distinct;
        int last_seq[KEYS];      /* per key: last first-delivered number */
        int order_violations;
        char first_violation[160];
        /* Idempotency-Key -> the batch it named the first time */
        struct {
                char key[128];
                char first_id[64];
                size_t count;
        } keys[1024];
        int key_cnt, key_mismatch;
        char first_mismatch[256];
        int deliveries;          /* our events in 2xx answers, dups too */
        /* by event number, the key it was first sent under: a sink that
         * dedupes by key takes an event sent again under another twice */
        char ev_key[NEV_MAX][96];
        int key_changes;
        char first_key_change[256];
        /* hold: the next request with our events gets no answer (until
         * released): it is what the sink had in flight when it died */
        int hold, held, released;
        int hold_min;            /* events the held request has at least */
        char held_key[128];
        int held_ev[MAX_EVENTS], held_n;
        int held_again, held_again_same; /* later requests with its key */
} rec = {.lock = PTHREAD_MUTEX_INITIALIZER};

typedef struct {
        char *buf;
        size_t len, cap;
} upload_t;

static int ev_number(const char *id) {
        int n;
        char tail;

        if (!id || sscanf(id, "ev-%d%c", &n, &tail) != 1 || n < 0 ||
            n >= NEV_MAX) {
                return -1;
        }
        return n;
}

/* A key sent again (a retry, a redelivery) must name the same events. */
static void note_key(const char *key, json_t *arr) {
        const char *id;
        size_t n = json_array_size(arr);
        int i;

        if (!key) {
                return;
        }
        id = json_string_value(json_object_get(json_array_get(arr, 0), "id"));
        for (i = 0; i < rec.key_cnt; i++) {
                if (strcmp(rec.keys[i].key, key)) {
                        continue;
                }
                if (rec.keys[i].count != n ||
                    strcmp(rec.keys[i].first_id, id ? id : "")) {
                        if (!rec.key_mismatch++) {
                                snprintf(rec.first_mismatch,
                                         sizeof(rec.first_mismatch),
                                         "%s: %zu events from %s, then %zu "
                                         "from %s",
                                         key, rec.keys[i].count,
                                         rec.keys[i].first_id, n, id);
                        }
                }
                return;
        }
        if (rec.key_cnt < (int)(sizeof(rec.keys) / sizeof(rec.keys[0]))) {
                snprintf(rec.keys[i].key, sizeof(rec.keys[i].key), "%s", key);
                snprintf(rec.keys[i].first_id, sizeof(rec.keys[i].first_id),
                         "%s", id ? id : "");
                rec.keys[i].count = n;
                rec.key_cnt++;
        }
}

/* Per event: the key it was first sent under, and whether a request
 * named by the held batch's key holds exactly its events. */
static void note_events(const char *key, json_t *arr) {
        json_t *item;
        size_t i;
        int n, same;

        if (!key) {
                return;
        }
        json_array_foreach(arr, i, item) {
                n = ev_number(json_string_value(json_object_get(item, "id")));
                if (n < 0) {
                        continue;
                }
                if (!rec.ev_key[n][0]) {
                        snprintf(rec.ev_key[n], sizeof(rec.ev_key[n]), "%s",
                                 key);
                } else if (strcmp(rec.ev_key[n], key) &&
                           !rec.key_changes++) {
                        snprintf(rec.first_key_change,
                                 sizeof(rec.first_key_change),
                                 "ev-%d under %s, then %s", n, rec.ev_key[n],
                                 key);
                }
        }
        if (rec.held && !strcmp(key, rec.held_key)) {
                rec.held_again++;
                same = json_array_size(arr) == (size_t)rec.held_n;
                for (i = 0; same && i < json_array_size(arr); i++) {
                        same = ev_number(json_string_value(json_object_get(
                                   json_array_get(arr, i), "id"))) ==
                               rec.held_ev[i];
                }
                rec.held_again_same += same;
        }
}

/* Holds this request when told to and it carries our events.
 * @returns 1 when held. */
static int hold_this(const char *key, json_t *arr) {
        size_t i;

        if (!rec.hold || rec.held || !key ||
            ev_number(json_string_value(json_object_get(
                json_array_get(arr, 0), "id"))) < 0 ||
            json_array_size(arr) > MAX_EVENTS ||
            json_array_size(arr) < (size_t)rec.hold_min) {
                return 0;
        }
        rec.held = 1;
        snprintf(rec.held_key, sizeof(rec.held_key), "%s", key);
        for (i = 0; i < json_array_size(arr); i++) {
                rec.held_ev[i] = ev_number(json_string_value(
                    json_object_get(json_array_get(arr, i), "id")));
        }
        rec.held_n = (int)json_array_size(arr);
        return 1;
}

/* The answer to one request, 0 for none (held); the caller holds the
 * lock. */
static unsigned judge(const char *body, size_t len, const char *key) {
        json_t *arr, *item, *payload;
        size_t i;
        int n, k;

        rec.requests++;
        if (!key || !*key) {
                rec.no_key++;
        }
        arr = json_loadb(body, len, 0, NULL);
        if (!json_is_array(arr)) {
                rec.not_array++;
                json_decref(arr);
                return 400;
        }
        note_key(key, arr);
        note_events(key, arr);
        if (hold_this(key, arr)) {
                json_decref(arr);
                return 0;
        }
        if (ab_itest_now_ms() < rec.fail_until_ms) {
                rec.n503++;
                json_decref(arr);
                return 503;
        }
        json_array_foreach(arr, i, item) {
                payload = json_object_get(item, "payload");
                if (!rec.poison_ok &&
                    json_is_true(json_object_get(payload, "poison"))) {
                        rec.n400++;
                        json_decref(arr);
                        return 400;
                }
        }
        rec.ok++;
        if ((int)json_array_size(arr) > rec.max_batch) {
                rec.max_batch = (int)json_array_size(arr);
        }
        if (len > rec.max_bytes) {
                rec.max_bytes = len;
        }
        if (json_array_size(arr) > MAX_EVENTS || len > MAX_BYTES) {
                rec.over_limit++;
        }
        json_array_foreach(arr, i, item) {
                n = ev_number(json_string_value(json_object_get(item, "id")));
                if (n < 0) {
                        continue; /* ingest's own platform events */
                }
                rec.deliveries++;
                if (rec.delivered[n]++) {
                        continue; /* a redelivery: order is about firsts */
                }
                rec.distinct++;
                k = n % KEYS;
                if (n < rec.last_seq[k] && !rec.order_violations++) {
                        snprintf(rec.first_violation,
                                 sizeof(rec.first_violation),
                                 "key %d: ev-%d arrived after ev-%d", k, n,
                                 rec.last_seq[k]);
                }
                if (n > rec.last_seq[k]) {
                        rec.last_seq[k] = n;
                }
        }
        json_decref(arr);
        return 200;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn,
                               const char *url, const char *method,
                               const char *version, const char *data,
                               size_t *data_size, void **con_cls) {
        upload_t *u = *con_cls;
        struct MHD_Response *resp;
        const char *key;
        enum MHD_Result ret;
        unsigned status;
        int delay, released;
        int64_t dl;
        char *nb;

        (void)cls;
        (void)url;
        (void)method;
        (void)version;
        if (!u) {
                if (!(u = calloc(1, sizeof(*u)))) {
                        return MHD_NO;
                }
                *con_cls = u;
                return MHD_YES;
        }
        if (*data_size) {
                if (u->len + *data_size > u->cap) {
                        u->cap = (u->len + *data_size) * 2;
                        if (!(nb = realloc(u->buf, u->cap))) {
                                return MHD_NO;
                        }
                        u->buf = nb;
                }
                memcpy(u->buf + u->len, data, *data_size);
                u->len += *data_size;
                *data_size = 0;
                return MHD_YES;
        }
        key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                          "Idempotency-Key");
        pthread_mutex_lock(&rec.lock);
        delay  = rec.delay_ms;
        status = judge(u->buf ? u->buf : "", u->len, key);
        pthread_mutex_unlock(&rec.lock);
        if (status == 0) {
                /* bounded: teardown releases it before stopping */
                dl = ab_itest_now_ms() + 60000;
                do {
                        usleep(10000);
                        pthread_mutex_lock(&rec.lock);
                        released = rec.released;
                        pthread_mutex_unlock(&rec.lock);
                } while (!released && ab_itest_now_ms() < dl);
                status = 503;
        }
        if (delay) {
                usleep((useconds_t)delay * 1000);
        }
        resp = MHD_create_response_from_buffer(
            status == 200 ? 2 : 16, status == 200 ? "{}" : "{\"error\":\"no\"}x",
            MHD_RESPMEM_PERSISTENT);
        if (status == 503) {
                MHD_add_response_header(resp, "Retry-After", "1");
        }
        ret = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
        upload_t *u = *con_cls;

        (void)cls;
        (void)conn;
        (void)toe;
        if (u) {
                free(u->buf);
                free(u);
                *con_cls = NULL;
        }
}

static void recorder_start(void) {
        int i;

        for (i = 0; i < 20 && !rec.d; i++) {
                hport = ab_itest_free_port();
                rec.d = MHD_start_daemon(
                    MHD_USE_THREAD_PER_CONNECTION |
                        MHD_USE_INTERNAL_POLLING_THREAD,
                    (uint16_t)hport, NULL, NULL, handler, NULL,
                    MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                    MHD_OPTION_END);
        }
        cr_assert_not_null(rec.d, "cannot start the recording sink");
}

static void teardown(void) {
        ab_itest_proc_destroy(sink);
        sink = NULL;
        ab_itest_proc_destroy(ingest2);
        ingest2 = NULL;
        ab_itest_stack_stop(&ingest, &b);
        pthread_mutex_lock(&rec.lock);
        rec.released = 1; /* a held request's thread ends */
        pthread_mutex_unlock(&rec.lock);
        if (rec.d) {
                MHD_stop_daemon(rec.d);
                rec.d = NULL;
        }
}

TestSuite(sink, .fini = teardown, .timeout = 120);

/* Odd event numbers are EmailSent from api instead of ProductViewed. */
static int mixed_names;

static void start_sink_env(const char *const *extra) {
        char url[96], grp[160];
        const char *env[16] = {url,
                             grp,
                             "SINK_BATCH_MAX_EVENTS=100",
                             "SINK_BATCH_MAX_BYTES=64K",
                             "SINK_LINGER_MS=200",
                             "SINK_RETRY_BASE_MS=100",
                             "SINK_RETRY_CAP_MS=1000",
                             "SINK_TIMEOUT_MS=5000",
                             "SHUTDOWN_TIMEOUT_MS=5000",
                             /* a SIGKILLed member leaves the group soon */
                             "SINK_SESSION_TIMEOUT_MS=6000",
                             NULL};
        size_t i = 0, n = 0;

        while (env[n]) {
                n++;
        }
        for (i = 0; extra && extra[i] && n < 15; i++) {
                env[n++] = extra[i];
        }
        env[n] = NULL;

        snprintf(url, sizeof(url), "EVENT_SINK_URL=http://127.0.0.1:%d/in",
                 hport);
        snprintf(grp, sizeof(grp), "SINK_GROUP_ID=%s", group);
        sink = ab_itest_service_start(b, "aetherbus-sink", prefix, env, &sport);
        if (ab_itest_http_wait_status(sport, "/readyz", 200, WAIT_MS) != 200) {
                ab_itest_proc_dump_log(sink);
                cr_assert_fail("sink never became ready");
        }
}

static void start_sink(void) {
        start_sink_env(NULL);
}

/* More settings of the ingest start() starts, or NULL. */
static const char *const *ingest_env;

/* Ingest and the recording sink, no aetherbus-sink yet. */
static void start_ingest(void) {
        ingest = ab_itest_stack_start("aetherbus-ingest", PARTITIONS,
                                      ingest_env, WAIT_MS, &b, prefix,
                                      sizeof(prefix), &iport);
        snprintf(group, sizeof(group), "%ssink", prefix);
        recorder_start();
}

static void start_env(const char *const *extra) {
        start_ingest();
        start_sink_env(extra);
}

static void start(void) {
        start_env(NULL);
}

/* Events from..to-1 through ingest, 100 a request; every event number
 * in \p poison_every's multiples (+ 7) carries the poison marker. */
static void post_events(int from, int to, int poison_every) {
        char url[128], *body;
        size_t cap = 256 * 200, len;
        ab_itest_http_t res;
        int n, end;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/events/ingest", iport);
        body = malloc(cap);
        cr_assert_not_null(body);
        for (n = from; n < to; n = end) {
                end = n + 100 < to ? n + 100 : to;
                len = (size_t)snprintf(body, cap, "[");
                for (; n < end; n++) {
                        len += (size_t)snprintf(
                            body + len, cap - len,
                            "%s{\"id\":\"ev-%d\",\"name\":\"%s\","
                            "\"schemaVersion\":1,\"occurredAt\":"
                            "\"2026-02-11T20:10:00.000Z\",\"source\":"
                            "\"%s\",\"companyId\":\"c%d\","
                            "\"payload\":{\"n\":%d,\"note\":\"q\\\"\\\\\"%s}}",
                            len > 1 ? "," : "", n,
                            mixed_names && n % 2 ? "EmailSent" : "ProductViewed",
                            mixed_names && n % 2 ? "api" : "storefront",
                            n % KEYS, n,
                            poison_every && n % poison_every == 7
                                ? ",\"poison\":true"
                                : "");
                        cr_assert_lt(len, cap - 512);
                }
                len += (size_t)snprintf(body + len, cap - len, "]");
                memset(&res, 0, sizeof(res));
                cr_assert_eq(ab_itest_http_post_json(url, body, NULL, &res),
                             202, "ingest: %ld %s", res.status, res.body);
                ab_itest_http_clear(&res);
        }
        free(body);
}

static int delivered_of(int from, int to, int skip_every) {
        int n, got = 0;

        pthread_mutex_lock(&rec.lock);
        for (n = from; n < to; n++) {
                if (skip_every && n % skip_every == 7) {
                        continue;
                }
                got += rec.delivered[n] > 0;
        }
        pthread_mutex_unlock(&rec.lock);
        return got;
}

static void wait_delivered(int from, int to, int skip_every, int timeout_ms) {
        int64_t dl = ab_itest_deadline(ab_itest_timeout(timeout_ms));
        int want = 0, n, got;

        for (n = from; n < to; n++) {
                want += !(skip_every && n % skip_every == 7);
        }
        while ((got = delivered_of(from, to, skip_every)) < want) {
                if (!ab_itest_tick(dl)) {
                        ab_itest_proc_dump_log(sink);
                        cr_assert_fail("%d of %d events reached the sink "
                                       "(%d requests, %d ok, %d 503, %d 400)",
                                       got, want, rec.requests, rec.ok,
                                       rec.n503, rec.n400);
                }
        }
}

static void check_batches(void) {
        pthread_mutex_lock(&rec.lock);
        cr_expect_eq(rec.no_key, 0, "%d requests without Idempotency-Key",
                     rec.no_key);
        cr_expect_eq(rec.not_array, 0, "%d bodies not a JSON array",
                     rec.not_array);
        cr_expect_eq(rec.over_limit, 0,
                     "%d batches over the limits (largest %d events, %zu "
                     "bytes)",
                     rec.over_limit, rec.max_batch, rec.max_bytes);
        cr_expect_eq(rec.order_violations, 0, "%d order violations, first: %s",
                     rec.order_violations, rec.first_violation);
        cr_expect_eq(rec.key_mismatch, 0,
                     "%d Idempotency-Keys named other events, first: %s",
                     rec.key_mismatch, rec.first_mismatch);
        pthread_mutex_unlock(&rec.lock);
}

/* No event was sent under two keys: every batch sent again (after a
 * crash or a takeover) was cut as before. Not for tests that bisect. */
static void check_keys_stable(void) {
        pthread_mutex_lock(&rec.lock);
        cr_expect_eq(rec.key_changes, 0,
                     "%d events sent again under another key, first: %s",
                     rec.key_changes, rec.first_key_change);
        pthread_mutex_unlock(&rec.lock);
}

/* The value of an unlabelled (or the first labelled) series of
 * aetherbus_sink_<name> on /metrics, -1 when absent. */
static double metric(const char *name, const char *labels) {
        char url[96], want[160], *p;
        ab_itest_http_t res;
        double v = -1;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", sport);
        snprintf(want, sizeof(want), "\naetherbus_sink_%s%s ", name,
                 labels ? labels : "");
        memset(&res, 0, sizeof(res));
        if (ab_itest_http_get(url, &res) == 200 &&
            (p = strstr(res.body, want))) {
                v = strtod(p + strlen(want), NULL);
        }
        ab_itest_http_clear(&res);
        return v;
}

/* The test sink sees a batch before the service has read its answer:
 * wait for the counter to get there. */
static double metric_wait(const char *name, const char *labels, double want) {
        int64_t dl = ab_itest_deadline(WAIT_MS);
        double v;

        while ((v = metric(name, labels)) < want && ab_itest_tick(dl)) {
        }
        return v;
}

/* The sum of the group's committed offsets over \p topic's partitions
 * (OffsetFetch, without joining the group). */
static int64_t committed_total(const char *topic) {
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[256];
        int64_t sum = 0;
        rd_kafka_t *rk;
        int i;

        cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers",
                                       ab_itest_broker_bootstrap(b), errstr,
                                       sizeof(errstr)),
                     RD_KAFKA_CONF_OK, "%s", errstr);
        cr_assert_eq(rd_kafka_conf_set(conf, "group.id", group, errstr,
                                       sizeof(errstr)),
                     RD_KAFKA_CONF_OK, "%s", errstr);
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        cr_assert_not_null(rk, "%s", errstr);
        parts = rd_kafka_topic_partition_list_new(PARTITIONS);
        for (i = 0; i < PARTITIONS; i++) {
                rd_kafka_topic_partition_list_add(parts, topic, i);
        }
        cr_assert_eq(rd_kafka_committed(rk, parts, 10000),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
        for (i = 0; i < parts->cnt; i++) {
                if (parts->elems[i].offset > 0) {
                        sum += parts->elems[i].offset;
                }
        }
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_destroy(rk);
        return sum;
}

static void stop_sink_cleanly(void) {
        int rc = ab_itest_proc_stop(sink, 15000);

        if (rc != 0) {
                ab_itest_proc_dump_log(sink);
        }
        cr_expect_eq(rc, 0, "SIGTERM: the sink exited %d", rc);
        ab_itest_proc_destroy(sink);
        sink = NULL;
}

Test(sink, every_event_arrives_in_key_order_within_the_batch_limits) {
        char topic[128];

        start();
        post_events(0, 2000, 0);
        wait_delivered(0, 2000, 0, WAIT_MS);
        check_batches();
        cr_expect_gt(rec.max_batch, 1, "events were batched");
        cr_expect_geq(metric_wait("events_delivered_total", NULL, 2000), 2000);
        cr_expect_geq(metric_wait("batches_total", "{outcome=\"ok\"}", 20), 20);
        cr_expect_geq(metric_wait("batch_duration_seconds_count", NULL, 20), 20);
        cr_expect_eq(metric("in_flight", NULL), 0);
        cr_expect_eq(rec.deliveries, 2000, "no redelivery without a failure");
        stop_sink_cleanly();
        /* SIGTERM committed everything delivered: the group's offsets are
         * the topic's ends, so a new member would send none of it again. */
        snprintf(topic, sizeof(topic), "%scommerce", prefix);
        cr_expect_eq(committed_total(topic), ab_itest_topic_count(b, topic));
        cr_expect_eq(committed_total(topic), 2000);
}

Test(sink, a_sink_answering_503_for_a_while_loses_nothing) {
        start();
        pthread_mutex_lock(&rec.lock);
        rec.fail_until_ms = ab_itest_now_ms() + 3000;
        pthread_mutex_unlock(&rec.lock);
        post_events(0, 600, 0);
        wait_delivered(0, 600, 0, WAIT_MS);
        cr_expect_gt(rec.n503, 0, "the sink was asked while it failed");
        cr_expect_geq(metric("retries_total", NULL), 1);
        cr_expect_geq(metric("batches_total", "{outcome=\"retry\"}"), 1);
        check_batches();
        stop_sink_cleanly();
}

Test(sink, refused_events_and_only_those_are_dead_lettered) {
        char dlq[128], errstr[256], want_id[32];
        ab_itest_record_t *recs = NULL;
        const ab_itest_record_t *r;
        json_t *doc, *orig;
        int poisoned[400] = {0}, n, i, dead = 0;
        size_t got, k;

        start();
        post_events(0, 400, 50);
        wait_delivered(0, 400, 50, WAIT_MS);
        snprintf(dlq, sizeof(dlq), "%sdeadletter", prefix);
        /* 400 events, every 50th + 7: 8 refused */
        cr_assert_eq(ab_itest_topic_wait_count(b, dlq, 8,
                                               ab_itest_timeout(WAIT_MS)),
                     8);
        got = ab_itest_consume(b, dlq, 8, ab_itest_timeout(WAIT_MS), &recs);
        cr_assert_eq(got, 8, "%zu dead letters read", got);
        for (k = 0; k < got; k++) {
                r   = &recs[k];
                doc = ab_itest_record_json(r, errstr, sizeof(errstr));
                cr_assert_not_null(doc, "%s", errstr);
                orig = json_object_get(doc, "original");
                n    = ev_number(json_string_value(json_object_get(orig, "id")));
                cr_assert(n >= 0 && n % 50 == 7, "dead letter of %s",
                          json_dumps(doc, JSON_COMPACT));
                cr_expect_eq(poisoned[n]++, 0, "ev-%d dead-lettered twice", n);
                cr_expect(json_is_true(json_object_get(
                    json_object_get(orig, "payload"), "poison")));
                snprintf(want_id, sizeof(want_id), "c%d", n % KEYS);
                cr_expect_str_eq(json_string_value(json_object_get(orig,
                                                                   "companyId")),
                                 want_id);
                cr_assert_not_null(ab_itest_record_header(
                    r, "__connect.errors.topic"));
                cr_expect(strncmp(ab_itest_record_header(
                                      r, "__connect.errors.topic"),
                                  prefix, strlen(prefix)) == 0,
                          "source topic %s",
                          ab_itest_record_header(r, "__connect.errors.topic"));
                cr_expect_not_null(ab_itest_record_header(
                    r, "__connect.errors.partition"));
                cr_expect_not_null(ab_itest_record_header(
                    r, "__connect.errors.offset"));
                cr_expect_str_eq(ab_itest_record_header(
                                     r, "__connect.errors.http.status"),
                                 "400");
                cr_expect_str_eq(ab_itest_record_header(
                                     r,
                                     "__connect.errors.exception.class.name"),
                                 "aetherbus.sink.HttpStatusException");
                cr_expect_not_null(ab_itest_record_header(
                    r, "__connect.errors.exception.message"));
                cr_expect_not_null(strstr(ab_itest_record_header(
                                              r, "__connect.errors.http.response"),
                                          "error"));
                json_decref(doc);
        }
        for (i = 0; i < 400; i++) {
                if (i % 50 == 7) {
                        dead++;
                        cr_expect_eq(poisoned[i], 1, "ev-%d not dead-lettered",
                                     i);
                        cr_expect_eq(rec.delivered[i], 0,
                                     "ev-%d was delivered", i);
                }
        }
        cr_expect_eq(dead, 8);
        cr_expect_eq(metric_wait("events_deadlettered_total", NULL, 8), 8);
        cr_expect_geq(metric_wait("batches_total", "{outcome=\"poison\"}", 8), 8);
        ab_itest_records_free(recs, got);
        check_batches();
        stop_sink_cleanly();
}

Test(sink, a_sigkilled_sink_restarted_loses_nothing) {
        int64_t dl;
        int at_kill;

        start();
        pthread_mutex_lock(&rec.lock);
        rec.delay_ms = 150; /* slow enough to be killed mid-stream */
        pthread_mutex_unlock(&rec.lock);
        post_events(0, 1500, 0);
        dl = ab_itest_deadline(ab_itest_timeout(WAIT_MS));
        while (delivered_of(0, 1500, 0) < 100) {
                cr_assert(ab_itest_tick(dl), "nothing reached the sink");
        }
        ab_itest_proc_kill(sink);
        ab_itest_proc_destroy(sink);
        sink    = NULL;
        at_kill = delivered_of(0, 1500, 0);
        cr_log_info("%d of 1500 delivered when the sink was killed", at_kill);
        pthread_mutex_lock(&rec.lock);
        rec.delay_ms = 0;
        pthread_mutex_unlock(&rec.lock);
        post_events(1500, 2000, 0);
        start_sink();
        wait_delivered(0, 2000, 0, 45000);
        check_batches();
        check_keys_stable();
        stop_sink_cleanly();
}

/* Posts events 0..to-1 (then starts the sink when none runs yet: it
 * reads them as a backlog), holds the first request of our events with
 * at least \p min_events, SIGKILLs the sink, posts to..to+more, restarts
 * the sink with \p env and checks the held batch came again as it was. */
static void kill_while_held(int min_events, int to, int more,
                            const char *const *env) {
        int64_t dl;
        int held;

        pthread_mutex_lock(&rec.lock);
        rec.hold     = 1;
        rec.hold_min = min_events;
        pthread_mutex_unlock(&rec.lock);
        post_events(0, to, 0);
        if (!sink) {
                start_sink();
        }
        dl = ab_itest_deadline(ab_itest_timeout(WAIT_MS));
        for (;;) {
                pthread_mutex_lock(&rec.lock);
                held = rec.held;
                pthread_mutex_unlock(&rec.lock);
                if (held) {
                        break;
                }
                if (!ab_itest_tick(dl)) {
                        ab_itest_proc_dump_log(sink);
                        cr_assert_fail("no batch of our events came");
                }
        }
        ab_itest_proc_kill(sink);
        ab_itest_proc_destroy(sink);
        sink = NULL;
        cr_log_info("held %s (%d events)", rec.held_key, rec.held_n);
        post_events(to, to + more, 0);
        pthread_mutex_lock(&rec.lock);
        rec.released = 1;
        pthread_mutex_unlock(&rec.lock);
        start_sink_env(env);
        wait_delivered(0, to + more, 0, 45000);
        pthread_mutex_lock(&rec.lock);
        cr_expect_geq(rec.held_again, 1, "%s was not sent again",
                      rec.held_key);
        cr_expect_eq(rec.held_again_same, rec.held_again,
                     "%s came again with other events", rec.held_key);
        pthread_mutex_unlock(&rec.lock);
        check_batches();
        check_keys_stable();
        stop_sink_cleanly();
}

/* The batch in flight when the sink died had closed by linger (3 or so
 * events a partition, far from 100). Re-read after the restart, more
 * events stand behind it, so a cut by linger again would take them in
 * and give it another key; its plan cuts it where it was. */
Test(sink, a_linger_batch_in_flight_at_a_sigkill_is_sent_again_the_same) {
        start();
        kill_while_held(1, 10, 30, NULL);
}

/* The batch in flight had closed full (100 events: read as a backlog).
 * The restarted sink reads it back in pieces (ingest wrote a record batch
 * per event, and max.partition.fetch.bytes=1 makes a fetch return one)
 * and lingers 1 ms: linger must not cut it between two fetches (it did:
 * 100-199 came again as 100-102). */
Test(sink, a_full_batch_in_flight_at_a_sigkill_is_sent_again_the_same) {
        static const char *const one[] = {"RDKAFKA_BATCH_NUM_MESSAGES=1",
                                          NULL};
        const char *const slow[] = {"SINK_LINGER_MS=1",
                                    "RDKAFKA_MAX_PARTITION_FETCH_BYTES=1",
                                    NULL};

        ingest_env = one;
        start_ingest();
        kill_while_held(MAX_EVENTS, 900, 100, slow);
}

Test(sink, retries_give_up_into_dead_letters_and_names_filter) {
        const char *const extra[] = {"SINK_MAX_RETRIES=1",
                                     "SINK_NAMES=Product*", NULL};
        ab_itest_record_t *recs = NULL;
        char dlq[128], errstr[256];
        int seen[30] = {0}, n, got_even;
        json_t *doc;
        int64_t dl;
        size_t got, k;

        start_env(extra);
        /* A sink that never recovers: each batch is tried twice, then its
         * events are dead-lettered as given up. */
        pthread_mutex_lock(&rec.lock);
        rec.fail_until_ms = ab_itest_now_ms() + 600000;
        pthread_mutex_unlock(&rec.lock);
        post_events(0, 30, 0);
        snprintf(dlq, sizeof(dlq), "%sdeadletter", prefix);
        cr_assert_eq(ab_itest_topic_wait_count(b, dlq, 30,
                                               ab_itest_timeout(WAIT_MS)),
                     30);
        got = ab_itest_consume(b, dlq, 30, ab_itest_timeout(WAIT_MS), &recs);
        cr_assert_eq(got, 30);
        for (k = 0; k < got; k++) {
                doc = ab_itest_record_json(&recs[k], errstr, sizeof(errstr));
                cr_assert_not_null(doc, "%s", errstr);
                n = ev_number(json_string_value(
                    json_object_get(json_object_get(doc, "original"), "id")));
                cr_assert(n >= 0 && n < 30);
                seen[n]++;
                cr_expect_str_eq(ab_itest_record_header(
                                     &recs[k],
                                     "__connect.errors.exception.class.name"),
                                 "aetherbus.sink.RetriesExhaustedException");
                cr_expect_str_eq(ab_itest_record_header(
                                     &recs[k], "__connect.errors.http.status"),
                                 "0");
                json_decref(doc);
        }
        for (n = 0; n < 30; n++) {
                cr_expect_eq(seen[n], 1, "ev-%d dead-lettered %d times", n,
                             seen[n]);
        }
        ab_itest_records_free(recs, got);
        cr_expect_geq(rec.n503, 2, "each batch was tried again");

        /* Healthy again: only the names SINK_NAMES lets through arrive,
         * and the others still count as done (no lag left). */
        pthread_mutex_lock(&rec.lock);
        rec.fail_until_ms = 0;
        pthread_mutex_unlock(&rec.lock);
        mixed_names = 1;
        post_events(100, 200, 0);
        dl = ab_itest_deadline(ab_itest_timeout(WAIT_MS));
        for (;;) {
                pthread_mutex_lock(&rec.lock);
                for (n = 100, got_even = 0; n < 200; n += 2) {
                        got_even += rec.delivered[n] > 0;
                }
                pthread_mutex_unlock(&rec.lock);
                if (got_even == 50) {
                        break;
                }
                cr_assert(ab_itest_tick(dl), "%d of 50 ProductViewed arrived",
                          got_even);
        }
        for (n = 101; n < 200; n += 2) {
                cr_expect_eq(rec.delivered[n], 0, "EmailSent ev-%d forwarded",
                             n);
        }
        cr_expect_geq(metric_wait("events_skipped_total", "{reason=\"name\"}", 50),
                      50);
        dl = ab_itest_deadline(ab_itest_timeout(10000));
        while (metric("consumer_lag_total", NULL) != 0) {
                cr_assert(ab_itest_tick(dl), "consumer lag stays %f",
                          metric("consumer_lag_total", NULL));
        }
        check_batches();
        stop_sink_cleanly();
}

/* aetherbus forwards to another aetherbus: the body is exactly what
 * POST /events/ingest takes. A second ingest on a prefix of its own is the
 * sink, and every forwarded event is on its topic, by id. The bus's own
 * events (core.startup, source aetherbus-ingest) are left out with
 * SINK_NAMES: a bus refuses aetherbus-* sources from its clients. */
Test(sink, a_second_aetherbus_ingest_as_the_sink_receives_every_event) {
        ab_itest_record_t *recs = NULL;
        char prefix2[64], url[128], grp[160], topic[256], id[32];
        const char *env[] = {url, grp, "SINK_NAMES=ProductViewed",
                             "SINK_LINGER_MS=200", NULL};
        int port2, i;
        size_t n;

        ingest = ab_itest_stack_start("aetherbus-ingest", PARTITIONS, NULL,
                                      WAIT_MS, &b, prefix, sizeof(prefix),
                                      &iport);
        ab_itest_prefix(prefix2, sizeof(prefix2));
        ab_itest_catalog_topics_create(b, prefix2, PARTITIONS);
        ingest2 = ab_itest_service_start(b, "aetherbus-ingest", prefix2, NULL,
                                         &port2);
        cr_assert_eq(ab_itest_http_wait_status(port2, "/readyz", 200, WAIT_MS),
                     200, "the second ingest never became ready");
        snprintf(url, sizeof(url),
                 "EVENT_SINK_URL=http://127.0.0.1:%d/events/ingest", port2);
        snprintf(grp, sizeof(grp), "SINK_GROUP_ID=%sfwd", prefix);
        sink = ab_itest_service_start(b, "aetherbus-sink", prefix, env, &sport);
        if (ab_itest_http_wait_status(sport, "/readyz", 200, WAIT_MS) != 200) {
                ab_itest_proc_dump_log(sink);
                cr_assert_fail("sink never became ready");
        }
        post_events(0, 300, 0);
        snprintf(topic, sizeof(topic), "%scommerce", prefix2);
        cr_assert_eq(ab_itest_topic_wait_count(b, topic, 300, WAIT_MS), 300,
                     "the second bus holds %lld of 300 events",
                     (long long)ab_itest_topic_count(b, topic));
        n = ab_itest_consume_all(b, topic, WAIT_MS, &recs);
        for (i = 0; i < 300; i++) {
                snprintf(id, sizeof(id), "ev-%d", i);
                cr_assert_not_null(ab_itest_records_find(recs, n, "ce_id", id),
                                   "%s did not reach the second bus", id);
        }
        ab_itest_records_free(recs, n);
        cr_assert_leq(metric("events_deadlettered_total", NULL), 0,
                      "the forwarded events were dead-lettered");
}

/* Two replicas in one group share the partitions; one is SIGKILLed while
 * the test sink is slow, the other takes its partitions over once the
 * session timeout (6 s here) expels it, and every event still arrives. */
Test(sink, two_replicas_share_the_partitions_and_one_takes_over) {
        ab_itest_proc_t *first, *second;
        char *log;
        int64_t dl;

        start();
        first = sink;
        start_sink(); /* same group */
        second = sink;
        /* the group rebalanced: the second replica got a share */
        dl = ab_itest_deadline(ab_itest_timeout(WAIT_MS));
        for (;;) {
                log = ab_itest_proc_log(second);
                if (strstr(log, "assigned ") && !strstr(log, "assigned 0 ")) {
                        free(log);
                        break;
                }
                free(log);
                cr_assert(ab_itest_tick(dl), "the second replica got no partition");
        }
        pthread_mutex_lock(&rec.lock);
        rec.delay_ms = 100;
        pthread_mutex_unlock(&rec.lock);
        post_events(0, 1500, 0);
        dl = ab_itest_deadline(ab_itest_timeout(WAIT_MS));
        while (delivered_of(0, 1500, 0) < 100) {
                cr_assert(ab_itest_tick(dl), "nothing reached the sink");
        }
        ab_itest_proc_kill(first);
        ab_itest_proc_destroy(first);
        pthread_mutex_lock(&rec.lock);
        rec.delay_ms = 0;
        pthread_mutex_unlock(&rec.lock);
        post_events(1500, 2000, 0);
        wait_delivered(0, 2000, 0, 60000);
        check_batches();
        check_keys_stable();
        stop_sink_cleanly();
}

/* Runs aetherbus-admin deadletter MODE on the test's prefix; its stdout
 * into *outp (free() it). @returns its exit status. */
static int admin_deadletter(const char *mode, char **outp) {
        char brokers[300], tprefix[100];
        ab_itest_proc_t *p;
        int rc;

        snprintf(brokers, sizeof(brokers), "KAFKA_BROKERS=%s",
                 ab_itest_broker_bootstrap(b));
        snprintf(tprefix, sizeof(tprefix), "TOPIC_PREFIX=%s", prefix);
        p = ab_itest_proc_start("aetherbus-admin",
                                (const char *const[]){"deadletter", mode, NULL},
                                (const char *const[]){brokers, tprefix, NULL});
        cr_assert(p);
        rc    = ab_itest_proc_wait_exit(p, WAIT_MS);
        *outp = ab_itest_file_read(ab_itest_proc_out_path(p));
        if (rc) {
                ab_itest_proc_dump_log(p);
        }
        ab_itest_proc_destroy(p);
        return rc;
}

/* The dead letters are listed by id with their source; once the sink is
 * fixed, a replay through their original topic delivers every one. */
Test(sink, deadletter_list_and_replay_deliver_them_once_the_sink_takes_them) {
        char *out, id[32];
        char topic[256];
        int n, i;

        start();
        post_events(0, 100, 20); /* ev-7, 27, 47, 67, 87 are poison */
        wait_delivered(0, 100, 20, WAIT_MS);
        snprintf(topic, sizeof(topic), "%sdeadletter", prefix);
        cr_assert_eq(ab_itest_topic_wait_count(b, topic, 5, WAIT_MS), 5);
        cr_assert_eq(admin_deadletter("list", &out), 0, "%s", out);
        for (i = 7, n = 0; i < 100; i += 20, n++) {
                snprintf(id, sizeof(id), "\"id\":\"ev-%d\"", i);
                cr_assert(strstr(out, id), "list lacks %s: %s", id, out);
        }
        cr_assert(strstr(out, "\"httpStatus\":400"), "%s", out);
        free(out);
        pthread_mutex_lock(&rec.lock);
        rec.poison_ok = 1;
        pthread_mutex_unlock(&rec.lock);
        cr_assert_eq(admin_deadletter("replay", &out), 0, "%s", out);
        cr_assert(strstr(out, "replayed 5 of 5"), "%s", out);
        free(out);
        wait_delivered(0, 100, 0, WAIT_MS);
}
