/* aetherbus - Apache-2.0
 *
 * 0005-ingest-rbac: who may call aetherbus-ingest and what it records. The
 * x-ops RBAC of /bus/events and /admin/... in its three modes (enforce:
 * 403, audit: through but recorded, off), the security.rbac.denied and
 * security.rbac.allowed records on <prefix>security (decoded: tenant,
 * path, enforced), their per-tenant rate limit, and PUT /admin/rbac
 * guarded by ADMIN_TOKEN with its security.config.changed record. Topics
 * have one partition here, so the order of records on <prefix>security is
 * the order they were produced in. Runs against both brokers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "ab_itest.h"

#define PARTITIONS 1
#define WAIT_MS    30000
#define ADMIN      "adm1n-token"
#define BUS_EVENT                                                        \
        "{\"source\":\"peakpro\",\"type\":\"crm.record.updated\","      \
        "\"payload\":{\"record_id\":\"rec_501\"}}"

static ab_itest_broker_t *b;
static ab_itest_proc_t *svc;
static int port;
static char prefix[64];

static void start(const char *const *env) {
        svc = ab_itest_stack_start("aetherbus-ingest", PARTITIONS, env, WAIT_MS,
                                   &b, prefix, sizeof(prefix), &port);
}

static void teardown(void) {
        ab_itest_stack_stop(&svc, &b);
}

TestSuite(ingest_rbac, .fini = teardown, .timeout = 120);

static const char *topic(const char *p) {
        static char buf[4][256];
        static int i;

        i = (i + 1) % 4;
        snprintf(buf[i], sizeof(buf[i]), "%s%s", prefix, p);
        return buf[i];
}

static long request(const char *method, const char *path,
                    const char *const *headers, const char *body,
                    ab_itest_http_t *res) {
        const char *hdrs[16];
        char url[512];
        size_t n = 0;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        if (body) {
                hdrs[n++] = "Content-Type: application/json";
        }
        while (headers && *headers && n < 15) {
                hdrs[n++] = *headers++;
        }
        hdrs[n] = NULL;
        ab_itest_http(method, url, hdrs, body, body ? strlen(body) : 0, res);
        return res->status;
}

/* POST /bus/events as tenant (may be NULL), with or without x-ops. */
static long bus(const char *tenant, int ops, ab_itest_http_t *res) {
        const char *hdrs[3];
        char th[160];
        size_t n = 0;

        if (tenant) {
                snprintf(th, sizeof(th), "x-tenant: %s", tenant);
                hdrs[n++] = th;
        }
        if (ops) {
                hdrs[n++] = "x-ops: 1";
        }
        hdrs[n] = NULL;
        return request("POST", "/bus/events", hdrs, BUS_EVENT, res);
}

static int64_t wall_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Budgets are per wall-clock minute: start a flood early in one, so it
 * all falls inside it. */
static void within_one_minute(void) {
        int64_t dl = ab_itest_deadline(15000);

        while (wall_ms() % 60000 > 50000) {
                cr_assert(ab_itest_tick(dl), "clock did not pass a minute");
        }
}

static json_t *decode(const ab_itest_record_t *rec) {
        char errstr[512];
        json_t *doc = ab_itest_record_json(rec, errstr, sizeof(errstr));

        cr_assert_not_null(doc, "record %s@%lld: %s", rec->topic,
                           (long long)rec->offset, errstr);
        return doc;
}

static const char *jstr(const json_t *o, const char *key) {
        const char *s = json_string_value(json_object_get(o, key));

        return s ? s : "(none)";
}

/* Waits for exactly want records on <prefix>security and decodes them. */
static json_t *security_records(int64_t want) {
        ab_itest_record_t *recs = NULL;
        json_t *arr             = json_array();
        int64_t n;
        size_t got;
        size_t i;

        n = ab_itest_topic_wait_count(b, topic("security"), want, WAIT_MS);
        cr_assert_eq(n, want, "%s holds %lld records, expected %lld",
                     topic("security"), (long long)n, (long long)want);
        got = ab_itest_consume_all(b, topic("security"), WAIT_MS, &recs);
        cr_assert_eq(got, (size_t)want, "read %zu of %lld security records",
                     got, (long long)want);
        for (i = 0; i < got; i++) {
                json_array_append_new(arr, decode(&recs[i]));
        }
        ab_itest_records_free(recs, got);
        return arr;
}

/* The client event of a 2xx /bus/events call arrived on <prefix>crm. */
static void assert_crm_arrived(int64_t want) {
        cr_assert_eq(ab_itest_topic_wait_count(b, topic("crm"), want, WAIT_MS),
                     want, "%s does not hold %lld records", topic("crm"),
                     (long long)want);
}

Test(ingest_rbac, no_x_ops_in_enforce_mode_answers_403_and_records_a_denial) {
        ab_itest_http_t res;
        json_t *recs, *doc, *payload;

        start(NULL);
        cr_assert_eq(bus("t1", 0, &res), 403, "%s", res.body);
        ab_itest_http_clear(&res);
        recs    = security_records(1);
        doc     = json_array_get(recs, 0);
        payload = json_object_get(doc, "payload");
        cr_assert_str_eq(jstr(doc, "name"), "security.rbac.denied");
        cr_assert_str_eq(jstr(doc, "source"), "aetherbus-ingest");
        cr_assert_str_eq(jstr(doc, "companyId"), "t1");
        cr_assert_str_eq(jstr(payload, "path"), "/bus/events");
        cr_assert_str_eq(jstr(payload, "method"), "POST");
        cr_assert(json_is_true(json_object_get(payload, "enforced")),
                  "enforced is not true");
        json_decref(recs);
        /* the refused event is not on its topic; x-ops lets the next in */
        cr_assert_eq(ab_itest_topic_count(b, topic("crm")), 0);
        cr_assert_eq(bus("t1", 1, &res), 202, "%s", res.body);
        ab_itest_http_clear(&res);
        assert_crm_arrived(1);
}

Test(ingest_rbac, audit_mode_lets_the_request_in_and_records_an_unenforced_denial) {
        static const char *const env[] = {"RBAC_MODE=audit", NULL};
        ab_itest_http_t res;
        json_t *recs, *doc;

        start(env);
        cr_assert_eq(bus("t2", 0, &res), 202, "%s", res.body);
        ab_itest_http_clear(&res);
        assert_crm_arrived(1);
        recs = security_records(1);
        doc  = json_array_get(recs, 0);
        cr_assert_str_eq(jstr(doc, "name"), "security.rbac.denied");
        cr_assert_str_eq(jstr(doc, "companyId"), "t2");
        cr_assert(json_is_false(json_object_get(
                      json_object_get(doc, "payload"), "enforced")),
                  "enforced is not false in audit mode");
        json_decref(recs);
}

Test(ingest_rbac, rbac_off_accepts_bus_events_without_x_ops) {
        static const char *const env[] = {"RBAC_MODE=off", NULL};
        ab_itest_http_t res;

        start(env);
        cr_assert_eq(bus("t3", 0, &res), 202, "%s", res.body);
        ab_itest_http_clear(&res);
        assert_crm_arrived(1);
}

Test(ingest_rbac, audit_tenant_with_x_ops_records_rbac_allowed) {
        static const char *const env[] = {"RBAC_AUDIT_TENANTS=t8,t9", NULL};
        ab_itest_http_t res;
        json_t *recs, *doc;

        start(env);
        cr_assert_eq(bus("t9", 1, &res), 202, "%s", res.body);
        ab_itest_http_clear(&res);
        assert_crm_arrived(1);
        recs = security_records(1);
        doc  = json_array_get(recs, 0);
        cr_assert_str_eq(jstr(doc, "name"), "security.rbac.allowed");
        cr_assert_str_eq(jstr(doc, "companyId"), "t9");
        cr_assert_str_eq(jstr(json_object_get(doc, "payload"), "path"),
                         "/bus/events");
        json_decref(recs);
}

Test(ingest_rbac, denial_records_are_rate_limited_per_tenant) {
        static const char *const env[] = {"RBAC_EVENTS_PER_MIN=3", NULL};
        ab_itest_http_t res;
        json_t *recs;
        char metric[256];
        size_t i;

        start(env);
        within_one_minute();
        for (i = 0; i < 10; i++) {
                cr_assert_eq(bus("flood", 0, &res), 403, "denial %zu: %s", i,
                             res.body);
                ab_itest_http_clear(&res);
        }
        /* Every decision is made and produced before its 403: once the
         * other tenant's record is on this one-partition topic, nothing of
         * the flood can come after it. */
        cr_assert_eq(bus("other", 0, &res), 403, "%s", res.body);
        ab_itest_http_clear(&res);
        recs = security_records(4);
        for (i = 0; i < 3; i++) {
                cr_assert_str_eq(jstr(json_array_get(recs, i), "companyId"),
                                 "flood", "record %zu", i);
        }
        cr_assert_str_eq(jstr(json_array_get(recs, 3), "companyId"), "other");
        cr_assert_eq(ab_itest_topic_count(b, topic("security")), 4,
                     "more security records after the other tenant's");
        json_decref(recs);

        request("GET", "/metrics", NULL, NULL, &res);
        snprintf(metric, sizeof(metric),
                 "\naetherbus_ingest_security_events_total{type=\"security."
                 "rbac.denied\",outcome=\"suppressed\"} 7\n");
        cr_assert_not_null(strstr(res.body, metric),
                           "no%.*s in /metrics", (int)strlen(metric) - 1,
                           metric);
        ab_itest_http_clear(&res);
}

Test(ingest_rbac, all_tenants_together_are_capped_at_ten_budgets) {
        static const char *const env[] = {"RBAC_EVENTS_PER_MIN=2", NULL};
        ab_itest_http_t res;
        char tenant[32];
        char metric[256];
        size_t i;

        start(env);
        within_one_minute();
        /* A client rotating x-tenant: each tenant is under its own budget,
         * all of them together are not. */
        for (i = 0; i < 30; i++) {
                snprintf(tenant, sizeof(tenant), "rot%zu", i);
                cr_assert_eq(bus(tenant, 0, &res), 403, "denial %zu: %s", i,
                             res.body);
                ab_itest_http_clear(&res);
        }
        /* Decisions are counted before each 403: 20 sent, 10 suppressed,
         * so no more than 20 records can ever arrive. */
        request("GET", "/metrics", NULL, NULL, &res);
        snprintf(metric, sizeof(metric),
                 "\naetherbus_ingest_security_events_total{type=\"security."
                 "rbac.denied\",outcome=\"suppressed\"} 10\n");
        cr_assert_not_null(strstr(res.body, metric), "no%.*s in /metrics",
                           (int)strlen(metric) - 1, metric);
        ab_itest_http_clear(&res);
        json_decref(security_records(20));
}

Test(ingest_rbac, an_overlong_tenant_header_is_recorded_by_its_digest) {
        static char th[400];
        const char *hdrs[] = {th, NULL};
        ab_itest_http_t res;
        json_t *recs, *doc;

        start(NULL);
        memcpy(th, "x-tenant: ", 10);
        memset(th + 10, 'T', 300);
        th[310] = '\0';
        cr_assert_eq(request("POST", "/bus/events", hdrs, BUS_EVENT, &res), 403,
                     "%s", res.body);
        ab_itest_http_clear(&res);
        /* The denial is still recorded: hiding it took only a long header. */
        recs = security_records(1);
        doc  = json_array_get(recs, 0);
        cr_assert_eq(strncmp(jstr(doc, "companyId"), "sha256:", 7), 0, "%s",
                     jstr(doc, "companyId"));
        cr_assert(json_is_true(json_object_get(json_object_get(doc, "payload"),
                                               "tenantDigested")));
        json_decref(recs);
}

Test(ingest_rbac, admin_paths_need_x_ops_in_enforce_mode) {
        static const char *const ops[] = {"x-ops: 1", NULL};
        ab_itest_http_t res;

        start(NULL);
        cr_assert_eq(request("GET", "/admin/rbac", NULL, NULL, &res), 403,
                     "%s", res.body);
        ab_itest_http_clear(&res);
        cr_assert_eq(request("GET", "/admin/rbac", ops, NULL, &res), 200,
                     "%s", res.body);
        cr_assert_not_null(strstr(res.body, "\"enforce\""), "%s", res.body);
        ab_itest_http_clear(&res);
}

Test(ingest_rbac, admin_rbac_put_with_a_wrong_token_answers_401) {
        static const char *const env[] = {"ADMIN_TOKEN=" ADMIN, NULL};
        static const char *const hdrs[] = {"x-ops: 1",
                                           "x-admin-token: wrong", NULL};
        static const char *const ops[] = {"x-ops: 1", NULL};
        ab_itest_http_t res;

        start(env);
        cr_assert_eq(request("PUT", "/admin/rbac", hdrs, "{\"mode\":\"off\"}",
                             &res),
                     401, "%s", res.body);
        ab_itest_http_clear(&res);
        cr_assert_eq(request("PUT", "/admin/rbac", ops, "{\"mode\":\"off\"}",
                             &res),
                     401, "no token: %s", res.body);
        ab_itest_http_clear(&res);
        /* nothing changed: a request without x-ops is still refused */
        cr_assert_eq(bus("t4", 0, &res), 403, "%s", res.body);
        ab_itest_http_clear(&res);
}

Test(ingest_rbac, admin_rbac_put_with_the_token_changes_mode_and_records_it) {
        static const char *const env[] = {"ADMIN_TOKEN=" ADMIN, NULL};
        static const char *const hdrs[] = {
            "x-ops: 1", "x-tenant: ops-team",
            "Authorization: Bearer " ADMIN, NULL};
        ab_itest_http_t res;
        json_t *resp, *want, *recs, *doc, *payload;

        start(env);
        cr_assert_eq(request("PUT", "/admin/rbac", hdrs,
                             "{\"mode\":\"audit\"}", &res),
                     200, "%s", res.body);
        resp = ab_itest_http_json(&res);
        want = json_pack("{s:s,s:s}", "mode", "audit", "previous", "enforce");
        cr_assert(resp && json_equal(resp, want), "answer %s", res.body);
        ab_itest_http_clear(&res);

        recs    = security_records(1);
        doc     = json_array_get(recs, 0);
        payload = json_object_get(doc, "payload");
        cr_assert_str_eq(jstr(doc, "name"), "security.config.changed");
        cr_assert_str_eq(jstr(doc, "source"), "aetherbus-ingest");
        cr_assert_str_eq(jstr(payload, "setting"), "RBAC_MODE");
        cr_assert_str_eq(jstr(payload, "from"), "enforce");
        cr_assert_str_eq(jstr(payload, "to"), "audit");
        json_decref(recs);

        /* the new mode is in effect */
        cr_assert_eq(bus("t5", 0, &res), 202, "%s", res.body);
        ab_itest_http_clear(&res);
        assert_crm_arrived(1);
        json_decref(want);
        json_decref(resp);
}

Test(ingest_rbac, admin_rbac_put_without_admin_token_configured_answers_403) {
        static const char *const hdrs[] = {"x-ops: 1",
                                           "x-admin-token: anything", NULL};
        ab_itest_http_t res;

        start(NULL);
        cr_assert_eq(request("PUT", "/admin/rbac", hdrs, "{\"mode\":\"off\"}",
                             &res),
                     403, "%s", res.body);
        ab_itest_http_clear(&res);
        cr_assert_eq(bus("t6", 0, &res), 403, "mode changed anyway: %s",
                     res.body);
        ab_itest_http_clear(&res);
}
