/* aetherbus - Apache-2.0
 *
 * 0020-reconcile: the real ingest, stats, sink (to the benchmarks' sink,
 * answering at once) and audit on the broker under test, and
 * `aetherbus-admin reconcile` over them. Events of two prefixes
 * posted by id reach audit (each looked up by id); reconcile is then
 * silent and exits 0, having compared figures. A record on an events
 * topic that no stage can read (written straight to Kafka, not an
 * envelope) is a loss reconcile names by prefix and minute, exit 1; that
 * needs offsets by time, so it runs on the real Kafka only (the devbroker
 * cannot look offsets up by time: reconcile says so and takes ingest's
 * figures). A service given but not answering is exit 3, a bad option
 * exit 2.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "ab_itest.h"
#include "ab_time.h"

#define PARTITIONS 2
#define WAIT_MS    30000
#define RUN_MS     20000
#define ADMIN      "reconcile-admin-token"
#define PER_PREFIX 6
#define MAX_ARGS   32

static ab_itest_broker_t *b;
static ab_itest_proc_t *ingest, *stats, *audit, *sink, *sinkd;
static int iport, sport, aport, kport, dport;
static char prefix[64], env_db[600];

typedef struct {
        int status;
        char *out;
        char *err;
} run_t;

static void teardown(void) {
        ab_itest_proc_destroy(stats);
        ab_itest_proc_destroy(audit);
        ab_itest_proc_destroy(sink);
        ab_itest_proc_destroy(sinkd);
        stats = audit = sink = sinkd = NULL;
        ab_itest_stack_stop(&ingest, &b);
}

TestSuite(reconcile, .fini = teardown, .timeout = 120);

static char env_url[128], env_grp[128];

static ab_itest_proc_t *start_service(const char *bin, int *portp) {
        const char *env[] = {"ADMIN_TOKEN=" ADMIN, env_db, env_url, env_grp,
                             "SINK_LINGER_MS=100", NULL};
        ab_itest_proc_t *p;

        p = ab_itest_service_start(b, bin, prefix, env, portp);
        if (ab_itest_http_wait_status(*portp, "/readyz", 200, WAIT_MS) != 200) {
                ab_itest_proc_dump_log(p);
                cr_assert_fail("%s never became ready", bin);
        }
        return p;
}

/* The stack, with ingest restarted after the consumers: it then counts
 * from after their start, so even without offsets by time (devbroker)
 * every minute is comparable. */
static void start(void) {
        const char *env[] = {"ADMIN_TOKEN=" ADMIN, NULL};
        char dp[16];

        ingest = ab_itest_stack_start("aetherbus-ingest", PARTITIONS, env,
                                      WAIT_MS, &b, prefix, sizeof(prefix),
                                      &iport);
        snprintf(env_db, sizeof(env_db), "AUDIT_DB_PATH=%s/%saudit.db",
                 ab_itest_tmpdir(), prefix);
        /* the sink forwards to the benchmarks' sink, which answers 200 at
         * once (bench/bench_sinkd.c) */
        dport = ab_itest_free_port();
        snprintf(dp, sizeof(dp), "%d", dport);
        snprintf(env_url, sizeof(env_url),
                 "EVENT_SINK_URL=http://127.0.0.1:%d/in", dport);
        snprintf(env_grp, sizeof(env_grp), "SINK_GROUP_ID=%ssink", prefix);
        sinkd = ab_itest_proc_start("aetherbus-bench-sinkd",
                                    (const char *const[]){"-p", dp, NULL},
                                    NULL);
        cr_assert(sinkd, "cannot spawn aetherbus-bench-sinkd (AB_BENCH=ON)");
        cr_assert_eq(ab_itest_wait_port("127.0.0.1", dport, WAIT_MS), 0,
                     "the test sink does not listen");
        stats = start_service("aetherbus-stats", &sport);
        sink  = start_service("aetherbus-sink", &kport);
        audit = start_service("aetherbus-audit", &aport);
        cr_assert_eq(ab_itest_proc_stop(ingest, WAIT_MS), 0);
        ab_itest_proc_destroy(ingest);
        ingest = start_service("aetherbus-ingest", &iport);
}

static void post(const char *id, const char *name, const char *source) {
        char url[128], body[512], occurred[40];
        ab_itest_http_t res;

        ab_time_format(ab_time_now_ms() - 1000, occurred, sizeof(occurred));
        snprintf(body, sizeof(body),
                 "{\"id\":\"%s\",\"name\":\"%s\",\"schemaVersion\":1,"
                 "\"occurredAt\":\"%s\",\"source\":\"%s\","
                 "\"payload\":{\"n\":1}}",
                 id, name, occurred, source);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/events/ingest", iport);
        cr_assert_eq(ab_itest_http_post_json(url, body, NULL, &res), 202,
                     "%s: %s", id, res.body);
        ab_itest_http_clear(&res);
}

/* Waits until audit's log has event \p id (its query API, by id). */
static void wait_audited(const char *id) {
        const char *hdr[] = {"x-ops: 1", "x-admin-token: " ADMIN, NULL};
        char url[256];
        ab_itest_http_t res;
        int64_t deadline;
        long st;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/admin/events/%s",
                 aport, id);
        deadline = ab_itest_deadline(WAIT_MS);
        do {
                ab_itest_http("GET", url, hdr, NULL, 0, &res);
                st = res.status;
                ab_itest_http_clear(&res);
        } while (st != 200 && ab_itest_tick(deadline));
        cr_assert_eq(st, 200, "%s never reached audit", id);
}

/* PER_PREFIX OrderCreated (commerce) and PER_PREFIX EmailSent
 * (messaging), then each one looked up in audit's log by id. */
static void post_and_audit(void) {
        char id[128];
        int i;

        for (i = 0; i < 2 * PER_PREFIX; i++) {
                snprintf(id, sizeof(id), "%src-%d", prefix, i);
                post(id, i < PER_PREFIX ? "OrderCreated" : "EmailSent", "api");
        }
        for (i = 0; i < 2 * PER_PREFIX; i++) {
                snprintf(id, sizeof(id), "%src-%d", prefix, i);
                wait_audited(id);
        }
}

/* The sum of stage \p stage for \p pfx on the service at \p port. */
static int64_t stage_sum(int port, const char *stage, const char *pfx) {
        const char *hdr[] = {"x-ops: 1", "x-admin-token: " ADMIN, NULL};
        char url[128];
        ab_itest_http_t res;
        json_t *doc, *m;
        int64_t n = 0;
        size_t i;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/admin/stages", port);
        ab_itest_http("GET", url, hdr, NULL, 0, &res);
        cr_assert_eq(res.status, 200, "%s: %s", url, res.body);
        cr_assert((doc = ab_itest_http_json(&res)), "%s", res.body);
        json_array_foreach(json_object_get(doc, "minutes"), i, m) {
                if (!strcmp(json_string_value(json_object_get(m, "stage")),
                            stage) &&
                    !strcmp(json_string_value(json_object_get(m, "prefix")),
                            pfx)) {
                        n += json_integer_value(json_object_get(m, "count"));
                }
        }
        json_decref(doc);
        ab_itest_http_clear(&res);
        return n;
}

/* Waits until stats has read everything audit has (stats has no by-id
 * lookup; its stage figures are what reconcile reads). */
static void wait_stats(int64_t want) {
        int64_t deadline = ab_itest_deadline(WAIT_MS), n = 0, k = 0;

        do {
                n = stage_sum(sport, "consumed", "commerce") +
                    stage_sum(sport, "consumed", "messaging");
                k = stage_sum(kport, "sunk", "commerce") +
                    stage_sum(kport, "sunk", "messaging");
        } while ((n < want || k < want) && ab_itest_tick(deadline));
        cr_assert_geq(n, want, "stats consumed %lld of %lld", (long long)n,
                      (long long)want);
        cr_assert_geq(k, want, "the sink delivered %lld of %lld",
                      (long long)k, (long long)want);
}

static void reconcile(run_t *r, const char *const *extra) {
        char ing[64], sta[64], aud[64], snk[64];
        const char *args[MAX_ARGS];
        const char *env[] = {"ADMIN_TOKEN=" ADMIN, NULL};
        ab_itest_proc_t *p;
        size_t n = 0;

        snprintf(ing, sizeof(ing), "http://127.0.0.1:%d", iport);
        snprintf(sta, sizeof(sta), "http://127.0.0.1:%d", sport);
        snprintf(aud, sizeof(aud), "http://127.0.0.1:%d", aport);
        snprintf(snk, sizeof(snk), "http://127.0.0.1:%d", kport);
        args[n++] = "-b";
        args[n++] = ab_itest_broker_bootstrap(b);
        args[n++] = "--topic-prefix";
        args[n++] = prefix;
        args[n++] = "reconcile";
        args[n++] = "--since";
        args[n++] = "10m";
        args[n++] = "--grace";
        args[n++] = "0";
        args[n++] = "--ingest";
        args[n++] = ing;
        args[n++] = "--stats";
        args[n++] = sta;
        args[n++] = "--audit";
        args[n++] = aud;
        args[n++] = "--sink";
        args[n++] = snk;
        while (extra && *extra && n < MAX_ARGS - 1) {
                args[n++] = *extra++;
        }
        args[n] = NULL;
        p = ab_itest_proc_start("aetherbus-admin", args, env);
        cr_assert_not_null(p, "cannot spawn aetherbus-admin");
        r->status = ab_itest_proc_wait_exit(p, ab_itest_timeout(RUN_MS));
        r->out    = ab_itest_file_read(ab_itest_proc_out_path(p));
        r->err    = ab_itest_proc_log(p);
        ab_itest_proc_destroy(p);
        cr_assert_neq(r->status, -1, "reconcile did not exit");
        if (!r->out) {
                r->out = strdup("");
        }
        if (!r->err) {
                r->err = strdup("");
        }
}

static void run_clear(run_t *r) {
        free(r->out);
        free(r->err);
        memset(r, 0, sizeof(*r));
}

Test(reconcile, clean_run_is_silent_and_exits_0) {
        run_t r;

        start();
        post_and_audit();
        wait_stats(2 * PER_PREFIX);
        cr_assert_eq(stage_sum(iport, "accepted", "commerce"), PER_PREFIX);
        cr_assert_eq(stage_sum(aport, "audited", "messaging"), PER_PREFIX);

        reconcile(&r, NULL);
        cr_assert_eq(r.status, 0, "exit %d\nstdout:\n%s\nstderr:\n%s",
                     r.status, r.out, r.err);
        cr_assert_str_empty(r.out, "a clean run printed:\n%s", r.out);
        cr_assert(strstr(r.err, " 0 missing"), "%s", r.err);
        /* it did compare: stats and audit, for every catalog prefix */
        cr_assert(!strstr(r.err, " 0 figures compared"), "%s", r.err);
        cr_assert(!strstr(r.err, "not given"), "%s", r.err);
        if (ab_itest_broker_is_devbroker(b)) {
                cr_assert(strstr(r.err, "does not look offsets up by time"),
                          "%s", r.err);
        }
        run_clear(&r);
}

Test(reconcile, record_no_stage_read_is_reported_and_exits_1) {
        char topic[128], minute[40], ts[40];
        const char *line;
        int64_t at;
        run_t r;

        ab_itest_require_kind("kafka", "needs offsets by time (ListOffsets "
                                       "by timestamp), which the devbroker "
                                       "cannot answer");
        start();
        post_and_audit();
        wait_stats(2 * PER_PREFIX);

        /* Accepted by Kafka, but not an envelope: every consumer skips it
         * as undecodable, so it is missing at stats and at audit. */
        snprintf(topic, sizeof(topic), "%scommerce", prefix);
        at = ab_time_now_ms();
        ab_itest_produce_at(b, topic, "k", "not an envelope", 15, NULL, at);
        ab_time_format(at, ts, sizeof(ts));
        snprintf(minute, sizeof(minute), "%.16sZ", ts);
        /* stats and audit have read past it when their lag is gone: one
         * more event by id through the whole pipeline */
        post("after-loss", "EmailSent", "api");
        wait_audited("after-loss");
        wait_stats(2 * PER_PREFIX + 1);

        reconcile(&r, NULL);
        cr_assert_eq(r.status, 1, "exit %d\nstdout:\n%s\nstderr:\n%s",
                     r.status, r.out, r.err);
        cr_assert((line = strstr(r.out, "\ncommerce ")), "%s", r.out);
        cr_assert(strstr(line, "audit missing 1"), "%s", r.out);
        cr_assert(strstr(line, "stats missing 1"), "%s", r.out);
        cr_assert(strstr(line, "sink missing 1"), "%s", r.out);
        /* the row is the record's minute */
        cr_assert(!strncmp(line + 1 + 17, minute, strlen(minute)),
                  "not minute %s:\n%s", minute, r.out);
        cr_assert(!strstr(r.out, "messaging "), "%s", r.out);
        run_clear(&r);
}

Test(reconcile, a_service_not_answering_is_exit_3_a_bad_option_exit_2) {
        const char *dead[] = {"--sink", "http://127.0.0.1:1", NULL};
        /* a later --sink wins */
        const char *bad[]  = {"--grace", "soon", NULL};
        run_t r;

        start();
        reconcile(&r, dead);
        cr_assert_eq(r.status, 3, "exit %d: %s", r.status, r.err);
        cr_assert(strstr(r.err, "127.0.0.1:1"), "%s", r.err);
        run_clear(&r);
        reconcile(&r, bad);
        cr_assert_eq(r.status, 2, "exit %d: %s", r.status, r.err);
        cr_assert(strstr(r.err, "--grace"), "%s", r.err);
        run_clear(&r);
}
