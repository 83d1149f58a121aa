/* aetherbus - Apache-2.0
 *
 * 0015-stats: real aetherbus-ingest and aetherbus-stats on the broker
 * under test. N valid and M invalid events through ingest appear in GET
 * /admin/events/stats as total N and failures M by reason, with exact
 * breakdowns by name and source and the lag of the events' timestamps;
 * the same id twice counts once; a garbage record is counted as
 * undecodable while the service keeps answering; the admin guard is the
 * shared one; a SIGKILLed stats rebuilds the same totals from Kafka.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "ab_envelope.h"
#include "ab_time.h"
#include "ab_itest.h"

#define PARTITIONS 3
#define WAIT_MS    30000
#define ADMIN      "stats-admin-token"

static ab_itest_broker_t *b;
static ab_itest_proc_t *ingest, *stats;
static int iport, sport;
static char prefix[64];

static void teardown(void) {
        ab_itest_proc_destroy(stats);
        stats = NULL;
        ab_itest_stack_stop(&ingest, &b);
}

TestSuite(stats, .fini = teardown, .timeout = 180);

static void start_stats(const char *const *env) {
        stats = ab_itest_service_start(b, "aetherbus-stats", prefix, env, &sport);
        if (ab_itest_http_wait_status(sport, "/readyz", 200, WAIT_MS) != 200) {
                ab_itest_proc_dump_log(stats);
                cr_assert_fail("stats never became ready");
        }
}

static void start(const char *const *stats_env) {
        ingest = ab_itest_stack_start("aetherbus-ingest", PARTITIONS, NULL,
                                      WAIT_MS, &b, prefix, sizeof(prefix),
                                      &iport);
        start_stats(stats_env);
}

static long post(const char *body, ab_itest_http_t *res) {
        char url[128];

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/events/ingest", iport);
        return ab_itest_http_post_json(url, body, NULL, res);
}

static json_t *get_stats(const char *query, const char *const *hdrs,
                         long *statusp) {
        char url[256];
        ab_itest_http_t res;
        json_t *doc;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/admin/events/stats%s",
                 sport, query ? query : "");
        memset(&res, 0, sizeof(res));
        ab_itest_http("GET", url, hdrs, NULL, 0, &res);
        *statusp = res.status;
        doc      = ab_itest_http_json(&res);
        ab_itest_http_clear(&res);
        return doc;
}

static const char *topic_commerce(void) {
        static char t[256];

        snprintf(t, sizeof(t), "%scommerce", prefix);
        return t;
}

static const char *const OPS[] = {"x-ops: 1", "Authorization: Bearer " ADMIN,
                                  NULL};

/* Polls until total and failures reach the wanted values. Ingest's own
 * core.startup is one accepted event of the window too. */
static json_t *wait_totals(const char *query, json_int_t total,
                           json_int_t failures) {
        int64_t deadline = ab_itest_deadline(WAIT_MS);
        json_t *doc = NULL;
        long status;

        do {
                json_decref(doc);
                doc = get_stats(query, OPS, &status);
                cr_assert_eq(status, 200, "stats answered %ld", status);
                if (json_integer_value(json_object_get(doc, "total")) == total &&
                    json_integer_value(json_object_get(doc, "failures")) ==
                        failures) {
                        return doc;
                }
        } while (ab_itest_tick(deadline));
        cr_assert_fail("stats: want total %lld failures %lld, got %s",
                       (long long)total, (long long)failures,
                       json_dumps(doc, JSON_COMPACT));
        return NULL;
}

static void iso(int64_t ms, char *out, size_t n) {
        ab_time_format(ms, out, n);
}

static int64_t wall_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 4 OrderCreated from storefront, 2 EmailSent from api, occurred 2 s
 * before now; 3 invalid items (unknown name x2, bad source x1). */
static void post_mix(void) {
        char occurred[40], body[4096];
        ab_itest_http_t res;
        int i;

        iso(wall_ms() - 2000, occurred, sizeof(occurred));
        for (i = 0; i < 6; i++) {
                snprintf(body, sizeof(body),
                         "{\"id\":\"st-%d\",\"name\":\"%s\",\"schemaVersion\":1,"
                         "\"occurredAt\":\"%s\",\"source\":\"%s\","
                         "\"companyId\":\"c%d\",\"payload\":{}}",
                         i, i < 4 ? "OrderCreated" : "EmailSent", occurred,
                         i < 4 ? "storefront" : "api", i % 2);
                cr_assert_eq(post(body, &res), 202, "%s", res.body);
                ab_itest_http_clear(&res);
        }
        snprintf(body, sizeof(body),
                 "[{\"id\":\"bad-1\",\"name\":\"NoSuchEvent\",\"schemaVersion\":1,"
                 "\"occurredAt\":\"%s\",\"source\":\"api\",\"payload\":{}},"
                 "{\"id\":\"bad-2\",\"name\":\"NoSuchEvent\",\"schemaVersion\":1,"
                 "\"occurredAt\":\"%s\",\"source\":\"api\",\"payload\":{}},"
                 "{\"id\":\"bad-3\",\"name\":\"OrderCreated\",\"schemaVersion\":1,"
                 "\"occurredAt\":\"%s\",\"source\":\"nowhere\",\"payload\":{}}]",
                 occurred, occurred, occurred);
        cr_assert_eq(post(body, &res), 400, "%s", res.body);
        ab_itest_http_clear(&res);
}

static json_int_t jint(json_t *doc, const char *a, const char *b2) {
        json_t *v = json_object_get(doc, a);

        if (b2) {
                v = json_object_get(v, b2);
        }
        return json_integer_value(v);
}

Test(stats, counts_totals_failures_breakdowns_and_lag_of_what_ingest_took) {
        json_t *doc, *name, *source;
        double avg;

        start((const char *const[]){"ADMIN_TOKEN=" ADMIN, NULL});
        post_mix();
        doc    = wait_totals(NULL, 7, 3);
        name   = json_object_get(json_object_get(doc, "breakdown"), "name");
        source = json_object_get(json_object_get(doc, "breakdown"), "source");
        cr_assert_eq(json_integer_value(json_object_get(name, "OrderCreated")), 4);
        cr_assert_eq(json_integer_value(json_object_get(name, "EmailSent")), 2);
        cr_assert_eq(json_integer_value(json_object_get(source, "storefront")), 4);
        cr_assert_eq(json_integer_value(json_object_get(source, "api")), 2);
        cr_assert_eq(json_integer_value(json_object_get(
                         json_object_get(doc, "failuresByReason"),
                         "rejected:INVALID")) +
                         json_integer_value(json_object_get(
                             json_object_get(doc, "failuresByReason"),
                             "rejected:UNKNOWN")),
                     3, "%s", json_dumps(doc, JSON_COMPACT));
        /* Six events occurred 2 s before they were received (give or
         * take the post), core.startup at its receipt: 6 x 2 s / 7. */
        avg = json_real_value(json_object_get(doc, "avgLagMs"));
        cr_assert(avg >= 6 * 1900 / 7.0 && avg < 6 * 10000 / 7.0,
                  "avgLagMs %f", avg);
        cr_assert_str_eq(json_string_value(json_object_get(doc, "window")), "1h");
        json_decref(doc);

        /* filters */
        doc = wait_totals("?name=EmailSent&window=5m", 2, 0);
        json_decref(doc);
        doc = wait_totals("?prefix=commerce", 4, 0);
        json_decref(doc);
}

Test(stats, the_same_id_posted_twice_is_counted_once) {
        char occurred[40], body[1024];
        ab_itest_http_t res;
        json_t *doc;
        int64_t deadline;
        int i;

        start(NULL);
        iso(wall_ms(), occurred, sizeof(occurred));
        snprintf(body, sizeof(body),
                 "{\"id\":\"dup-1\",\"name\":\"OrderCreated\",\"schemaVersion\":1,"
                 "\"occurredAt\":\"%s\",\"source\":\"api\",\"payload\":{}}",
                 occurred);
        for (i = 0; i < 2; i++) {
                cr_assert_eq(post(body, &res), 202, "%s", res.body);
                ab_itest_http_clear(&res);
        }
        /* Both copies are in Kafka before stats is asked. */
        cr_assert_eq(ab_itest_topic_wait_count(b, topic_commerce(), 2, WAIT_MS),
                     2);
        deadline = ab_itest_deadline(WAIT_MS);
        doc      = NULL;
        do {
                json_decref(doc);
                doc = wait_totals(NULL, 2, 0);
        } while (jint(doc, "counters", "duplicates") != 1 &&
                 ab_itest_tick(deadline));
        cr_assert_eq(jint(doc, "counters", "duplicates"), 1, "%s",
                     json_dumps(doc, JSON_COMPACT));
        json_decref(doc);
}

Test(stats, a_garbage_record_is_undecodable_and_the_service_keeps_serving) {
        char topic[256];
        json_t *doc;
        long status;
        int64_t deadline;

        start(NULL);
        snprintf(topic, sizeof(topic), "%scommerce", prefix);
        ab_itest_produce(b, topic, "k", "\xc3\x01garbage", 9, NULL);
        deadline = ab_itest_deadline(WAIT_MS);
        do {
                doc = get_stats(NULL, OPS, &status);
                cr_assert_eq(status, 200);
                if (jint(doc, "counters", "undecodable") == 1) {
                        break;
                }
                json_decref(doc);
                doc = NULL;
        } while (ab_itest_tick(deadline));
        cr_assert(doc, "garbage record never counted as undecodable");
        json_decref(doc);
        post_mix();
        json_decref(wait_totals(NULL, 7, 3));
}

Test(stats, admin_guard_is_401_without_the_token_and_403_without_x_ops) {
        static const char *const token_only[] = {"Authorization: Bearer " ADMIN,
                                                 NULL};
        static const char *const bad[] = {"?window=2h", "?name=NoSuch",
                                          "?companyId=", NULL};
        ab_itest_record_t *recs = NULL;
        json_t *doc, *denial;
        long status;
        char topic[256], errstr[256];
        size_t n;
        int i, found;

        start((const char *const[]){"ADMIN_TOKEN=" ADMIN, NULL});
        doc = get_stats(NULL, (const char *const[]){"x-ops: 1", NULL}, &status);
        cr_assert_eq(status, 401);
        json_decref(doc);
        doc = get_stats(NULL, token_only, &status);
        cr_assert_eq(status, 403);
        json_decref(doc);
        /* the denial is recorded like ingest's, as stats' own event */
        snprintf(topic, sizeof(topic), "%ssecurity", prefix);
        cr_assert_geq(ab_itest_topic_wait_count(b, topic, 1, WAIT_MS), 1,
                      "no security.rbac.denied on %s", topic);
        n = ab_itest_consume_all(b, topic, WAIT_MS, &recs);
        for (i = 0, found = 0; i < (int)n; i++) {
                denial = ab_itest_record_json(&recs[i], errstr, sizeof(errstr));
                cr_assert_not_null(denial, "%s", errstr);
                if (!strcmp(json_string_value(json_object_get(denial, "name")),
                            "security.rbac.denied") &&
                    !strcmp(json_string_value(json_object_get(denial, "source")),
                            "aetherbus-stats")) {
                        found = 1;
                        cr_assert_str_eq(
                            json_string_value(json_object_get(
                                json_object_get(denial, "payload"), "path")),
                            "/admin/events/stats");
                }
                json_decref(denial);
        }
        ab_itest_records_free(recs, n);
        cr_assert(found, "no security.rbac.denied from aetherbus-stats");
        for (i = 0; bad[i]; i++) {
                doc = get_stats(bad[i], OPS, &status);
                cr_assert_eq(status, 400, "%s answered %ld", bad[i], status);
                cr_assert(json_is_string(json_object_get(doc, "error")));
                json_decref(doc);
        }
}

Test(stats, sigkill_and_restart_rebuilds_the_same_totals) {
        start((const char *const[]){"ADMIN_TOKEN=" ADMIN, NULL});
        post_mix();
        json_decref(wait_totals(NULL, 7, 3));
        ab_itest_proc_kill(stats);
        ab_itest_proc_destroy(stats);
        stats = NULL;
        start_stats((const char *const[]){"ADMIN_TOKEN=" ADMIN, NULL});
        json_decref(wait_totals(NULL, 7, 3));
}

Test(stats, events_older_than_the_hour_fall_out) {
        char offset[64];

        start(NULL);
        post_mix();
        json_decref(wait_totals(NULL, 7, 3));
        ab_itest_proc_kill(stats);
        ab_itest_proc_destroy(stats);
        stats = NULL;
        /* Move the window's clock 61 minutes ahead instead of waiting. */
        snprintf(offset, sizeof(offset), "STATS_CLOCK_OFFSET_MS=%d", 61 * 60000);
        start_stats((const char *const[]){offset, NULL});
        json_decref(wait_totals(NULL, 0, 0));
}

/* On the real Kafka the rebuild starts at the window by timestamp lookup:
 * records stamped two hours ago are never even read, which the
 * undecodable counter shows (garbage counts whatever its time). The
 * devbroker answers no timestamp lookup: it reads from the beginning and
 * counts them, and both answer the same totals. */
Test(stats, the_rebuild_reads_nothing_older_than_the_window) {
        int64_t two_hours_ago = wall_ms() - 2 * 3600000;
        json_int_t want;
        json_t *doc;
        int i;

        ingest = ab_itest_stack_start("aetherbus-ingest", PARTITIONS, NULL,
                                      WAIT_MS, &b, prefix, sizeof(prefix),
                                      &iport);
        for (i = 0; i < 5; i++) {
                ab_itest_produce_at(b, topic_commerce(), "old", "\xc3\x01old",
                                    5, NULL, two_hours_ago);
        }
        post_mix();
        start_stats(NULL);
        doc  = wait_totals(NULL, 7, 3);
        want = strcmp(ab_itest_kind(), "kafka") ? 5 : 0;
        cr_assert_eq(jint(doc, "counters", "undecodable"), want,
                     "%s: %lld old records read, want %lld", ab_itest_kind(),
                     (long long)jint(doc, "counters", "undecodable"),
                     (long long)want);
        if (!want) {
                cr_assert(ab_itest_proc_wait_log(stats, "timestamp lookup", 1000) == 0,
                          "stats did not say it used the timestamp lookup");
        }
        json_decref(doc);
}
