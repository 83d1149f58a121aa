/* aetherbus - Apache-2.0
 *
 * 0010-ingest-utf8: bytes that are not valid UTF-8, wherever a client puts
 * them (a string escape, a key, a value, the path, a header), are the
 * client's fault: a 4xx whose body is JSON that parses, never a 5xx or an
 * empty body, and every refused body still makes its record on
 * <prefix>rejected. Error texts quote such bytes as \xNN (ab_errstr_set).
 * Runs against both brokers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "ab_itest.h"
#include "ab_itest_raw.h"

#define PARTITIONS 1
#define WAIT_MS    30000
#define ADMIN      "adm1n-token"

static ab_itest_broker_t *b;
static ab_itest_proc_t *svc;
static int port;
static char prefix[64];

static void start(void) {
        static const char *const env[] = {"ADMIN_TOKEN=" ADMIN, NULL};

        svc = ab_itest_stack_start("aetherbus-ingest", PARTITIONS, env,
                                   WAIT_MS, &b, prefix, sizeof(prefix), &port);
}

static void teardown(void) {
        ab_itest_stack_stop(&svc, &b);
}

TestSuite(ingest_utf8, .init = start, .fini = teardown, .timeout = 180);

/* One request with exact bytes: method, path and extra header lines
 * ("Name: value\r\n"...) as given, the body with its Content-Length. */
static int send_raw(const char *method, const char *path, const char *hdrs,
                    const char *body, ab_itest_raw_t *res) {
        char *req;
        size_t blen = body ? strlen(body) : 0, cap;
        int n, rc;

        cap = strlen(path) + (hdrs ? strlen(hdrs) : 0) + blen + 256;
        req = malloc(cap);
        cr_assert_not_null(req);
        n = snprintf(req, cap,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     method, path, hdrs ? hdrs : "", blen);
        cr_assert(n > 0 && (size_t)n + blen < cap);
        memcpy(req + n, body ? body : "", blen);
        rc = ab_itest_raw_request(port, req, (size_t)n + blen, 0, res);
        free(req);
        return rc;
}

/* A 4xx (not 5xx) whose body is the shared JSON error format. */
static void assert_client_error(const ab_itest_raw_t *res, int want,
                                const char *what) {
        json_error_t jerr;
        json_t *doc;

        cr_assert(res->complete, "%s: no whole answer: %s", what, res->error);
        cr_assert_eq(res->status, want, "%s: status %d, body %s", what,
                     res->status, res->body);
        doc = json_loadb(res->body, res->body_len, 0, &jerr);
        cr_assert_not_null(doc, "%s: body is not JSON (%s): %s", what,
                           jerr.text, res->body);
        cr_assert(json_is_string(json_object_get(doc, "error")),
                  "%s: no \"error\" in %s", what, res->body);
        json_decref(doc);
}

static const struct {
        const char *what;
        const char *body;
} bodies[] = {
    /* the parser quotes the byte after a backslash: half of a sequence */
    {"escape of a 2-byte sequence", "{\"a\":\"\\\xC3\xA9\"}"},
    {"escape of a 3-byte sequence", "{\"a\":\"\\\xE2\x82\xAC\"}"},
    {"escape of a 4-byte sequence", "{\"a\":\"\\\xF0\x9F\x98\x80\"}"},
    {"escape of a bare 0xFF", "{\"a\":\"\\\xFF\"}"},
    {"bad \\u escape before a sequence", "{\"a\":\"\\u12\xC3\xA9\"}"},
    {"escape in a key", "{\"\\\xC3\xA9\":1}"},
    {"truncated sequence in a key", "{\"\xC3\":1}"},
    {"lone continuation byte in a value", "{\"id\":\"a\x80z\"}"},
    {"truncated 3-byte sequence", "{\"id\":\"\xE2\x82\"}"},
    {"truncated 4-byte sequence", "{\"id\":\"\xF0\x9F\x98\"}"},
    {"sequence cut by the end of the body", "{\"id\":\"\xC3"},
    {"overlong slash", "{\"id\":\"\xC0\xAF\"}"},
    {"overlong 3-byte NUL", "{\"id\":\"\xE0\x80\x80\"}"},
    {"overlong 4-byte", "{\"id\":\"\xF0\x80\x80\xAF\"}"},
    {"UTF-8 encoded high surrogate", "{\"id\":\"\xED\xA0\x80\"}"},
    {"UTF-8 encoded low surrogate", "{\"id\":\"\xED\xBF\xBF\"}"},
    {"above U+10FFFF", "{\"id\":\"\xF4\x90\x80\x80\"}"},
    {"a sequence as a token", "{\"a\":\xC3\xA9}"},
    {"a bare 0xFE as a token", "[\xFE]"},
    {"a lone surrogate escape", "{\"id\":\"\\uD800\"}"},
};

Test(ingest_utf8, invalid_utf8_anywhere_in_a_body_is_a_400_with_json) {
        static const char *paths[] = {"/events/ingest", "/bus/events"};
        static const char *hdrs[]  = {
            "Content-Type: application/json\r\n",
            "Content-Type: application/json\r\nx-ops: 1\r\n"};
        ab_itest_raw_t res;
        char topic[256], what[160];
        size_t i, k, sent = 0;

        for (k = 0; k < 2; k++) {
                for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
                        snprintf(what, sizeof(what), "%s: %s", paths[k],
                                 bodies[i].what);
                        send_raw("POST", paths[k], hdrs[k], bodies[i].body,
                                 &res);
                        assert_client_error(&res, 400, what);
                        ab_itest_raw_clear(&res);
                        sent++;
                }
        }
        /* Each refused body was recorded, none lost to a record that could
         * not be built. */
        snprintf(topic, sizeof(topic), "%srejected", prefix);
        cr_assert_eq(ab_itest_topic_wait_count(b, topic, (int64_t)sent,
                                               WAIT_MS),
                     (int64_t)sent, "records on %s", topic);
}

/* A valid document whose error text quotes a long value: the text is cut
 * at its buffer's end, which must not split a sequence. */
Test(ingest_utf8, a_long_quoted_value_cut_in_the_error_text_is_a_400_with_json) {
        char body[8192], what[64];
        ab_itest_raw_t res;
        size_t of, n;

        for (n = 100; n <= 1200; n += 367) {
                of = (size_t)snprintf(body, sizeof(body),
                                      "{\"id\":\"x\",\"name\":\"");
                while (of < n * 2 + 20) {
                        memcpy(body + of, "\xC3\xA9", 2); /* é */
                        of += 2;
                }
                snprintf(body + of, sizeof(body) - of,
                         "\",\"schemaVersion\":1,\"occurredAt\":"
                         "\"2026-02-11T20:10:00Z\",\"source\":\"api\","
                         "\"payload\":{}}");
                snprintf(what, sizeof(what), "name of %zu bytes", of);
                send_raw("POST", "/events/ingest",
                         "Content-Type: application/json\r\n", body, &res);
                assert_client_error(&res, 400, what);
                ab_itest_raw_clear(&res);
        }
}

Test(ingest_utf8, invalid_utf8_in_the_path_is_a_4xx_with_json) {
        static const struct {
                const char *path;
                int want;
        } cases[] = {
            {"/events/%FF", 404},
            {"/no/%C3", 404},
            {"/events/ingest%ED%A0%80", 404},
            {"/" "\xC3", 404},
        };
        ab_itest_raw_t res;
        size_t i;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                send_raw("GET", cases[i].path, NULL, NULL, &res);
                assert_client_error(&res, cases[i].want, cases[i].path);
                ab_itest_raw_clear(&res);
        }
        /* an admin path, answered by the admin guard's route */
        send_raw("GET", "/admin/%FF\xC3",
                 "x-ops: 1\r\nx-admin-token: " ADMIN "\r\n", NULL, &res);
        assert_client_error(&res, 404, "GET /admin/%FF");
        ab_itest_raw_clear(&res);
        /* the same on a method the path does not allow */
        send_raw("DELETE", "/admin/%FF", NULL, NULL, &res);
        assert_client_error(&res, 405, "DELETE /admin/%FF");
        ab_itest_raw_clear(&res);
}

Test(ingest_utf8, invalid_utf8_in_headers_is_never_a_5xx) {
        ab_itest_raw_t res;
        json_t *doc;

        send_raw("POST", "/events/ingest", "Content-Type: text/\xFF\xC3\r\n",
                 "{}", &res);
        assert_client_error(&res, 415, "Content-Type not UTF-8");
        doc = json_loads(res.body, 0, NULL);
        cr_assert_str_eq(json_string_value(json_object_get(doc, "detail")),
                         "text/\\xFF\\xC3", "%s", res.body);
        json_decref(doc);
        ab_itest_raw_clear(&res);

        /* a tenant that is not UTF-8 on a valid bus event */
        send_raw("POST", "/bus/events",
                 "Content-Type: application/json\r\nx-ops: 1\r\n"
                 "x-tenant: t\xFF\xED\xA0\x80\r\n",
                 "{\"source\":\"peakpro\",\"type\":\"crm.record.updated\","
                 "\"payload\":{\"record_id\":\"r1\"}}",
                 &res);
        cr_assert(res.complete, "%s", res.error);
        cr_assert(res.status >= 200 && res.status < 500, "status %d: %s",
                  res.status, res.body);
        doc = json_loads(res.body, 0, NULL);
        cr_assert_not_null(doc, "not JSON: %s", res.body);
        json_decref(doc);
        ab_itest_raw_clear(&res);
        /* ... and its rejection is written, the tenant's bytes kept */
        {
                ab_itest_record_t *recs = NULL;
                char topic[256], errstr[256];
                size_t got;

                snprintf(topic, sizeof(topic), "%srejected", prefix);
                cr_assert_eq(ab_itest_topic_wait_count(b, topic, 1, WAIT_MS), 1);
                got = ab_itest_consume_all(b, topic, WAIT_MS, &recs);
                cr_assert_eq(got, 1);
                doc = ab_itest_record_json(&recs[0], errstr, sizeof(errstr));
                cr_assert_not_null(doc, "%s", errstr);
                cr_assert_str_eq(json_string_value(json_object_get(doc, "tenant")),
                                 "t\\xFF\\xED\\xA0\\x80", "%s", recs[0].value);
                /* the Kafka key is the tenant's own bytes */
                cr_assert(recs[0].key_len == 5 &&
                          !memcmp(recs[0].key, "t\xFF\xED\xA0\x80", 5));
                json_decref(doc);
                ab_itest_records_free(recs, got);
        }
}

Test(ingest_utf8, put_admin_rbac_with_a_bad_escape_is_a_400_with_json) {
        ab_itest_raw_t res;
        json_t *doc;
        const char *detail;

        send_raw("PUT", "/admin/rbac",
                 "Content-Type: application/json\r\nx-ops: 1\r\n"
                 "x-admin-token: " ADMIN "\r\n",
                 "{\"mode\":\"\\\xC3\xA9\"}", &res);
        assert_client_error(&res, 400, "PUT /admin/rbac");
        doc    = json_loads(res.body, 0, NULL);
        detail = json_string_value(json_object_get(doc, "detail"));
        /* the parser's text survives, its bad byte as \xNN */
        cr_assert_not_null(detail && strstr(detail, "\\xC3") ? detail : NULL,
                           "%s", res.body);
        json_decref(doc);
        ab_itest_raw_clear(&res);
}
