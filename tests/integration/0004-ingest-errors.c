/* aetherbus - Apache-2.0
 *
 * 0004-ingest-errors: aetherbus-ingest answers bad requests with the right
 * status and a JSON error, and keeps serving after each: 400 (malformed
 * JSON, a body of the wrong shape), 401 (EVENT_INGEST_TOKEN missing or
 * wrong; x-event-token and Authorization: Bearer both accepted), 413 (over
 * MAX_BODY_BYTES, over MAX_BATCH), 415 (not JSON), 404, 405. After every
 * refusal a valid event is answered 202 and found on its topic. RBAC's 403
 * is in 0005-ingest-rbac. Runs against both brokers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "ab_itest.h"

#define PARTITIONS 3
#define WAIT_MS    30000
#define TOKEN      "s3cret-token"

static ab_itest_broker_t *b;
static ab_itest_proc_t *svc;
static int port;
static char prefix[64];
static int serial;

static void start(const char *const *env) {
        svc = ab_itest_stack_start("aetherbus-ingest", PARTITIONS, env, WAIT_MS,
                                   &b, prefix, sizeof(prefix), &port);
}

/* The limits the 413 tests cross. */
static void start_limited(void) {
        static const char *const env[] = {"MAX_BODY_BYTES=2K", "MAX_BATCH=5",
                                          NULL};

        start(env);
}

static void teardown(void) {
        ab_itest_stack_stop(&svc, &b);
}

TestSuite(ingest_errors, .fini = teardown, .timeout = 120);

static long request(const char *method, const char *path,
                    const char *const *headers, const char *body,
                    ab_itest_http_t *res) {
        char url[512];

        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        ab_itest_http(method, url, headers, body, body ? strlen(body) : 0,
                      res);
        return res->status;
}

static long post_json(const char *path, const char *body,
                      const char *const *headers, ab_itest_http_t *res) {
        char url[512];

        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        return ab_itest_http_post_json(url, body, headers, res);
}

/* One valid event with a fresh id (into buf). */
static char *event(char *buf, size_t size, const char *id) {
        snprintf(buf, size,
                 "{\"id\":\"%s\",\"name\":\"ProductViewed\",\"schemaVersion\":"
                 "1,\"occurredAt\":\"2026-02-11T20:10:00.000Z\",\"source\":"
                 "\"storefront\",\"companyId\":\"c1\",\"payload\":"
                 "{\"productId\":\"p1\"}}",
                 id);
        return buf;
}

/* The answer is a JSON error object naming what went wrong. */
static void assert_error_body(const ab_itest_http_t *res, const char *what) {
        json_t *doc = ab_itest_http_json(res);

        cr_assert_not_null(doc, "%s: body is not JSON: %s", what, res->body);
        cr_assert(json_is_string(json_object_get(doc, "error")),
                  "%s: no \"error\" in %s", what, res->body);
        json_decref(doc);
}

/* The service still answers a valid event with 202 and it is in Kafka. */
static void assert_still_serves(const char *const *headers) {
        ab_itest_record_t *recs = NULL;
        ab_itest_http_t res;
        char topic[256];
        char body[512];
        char id[64];
        size_t n;

        snprintf(id, sizeof(id), "after-%d", ++serial);
        cr_assert_eq(post_json("/events/ingest", event(body, sizeof(body), id),
                               headers, &res),
                     202, "a valid event after the refusal: %ld %s",
                     res.status, res.body[0] ? res.body : res.error);
        ab_itest_http_clear(&res);
        snprintf(topic, sizeof(topic), "%scommerce", prefix);
        n = ab_itest_consume_all(b, topic, WAIT_MS, &recs);
        cr_assert_not_null(ab_itest_records_find(recs, n, "ce_id", id),
                           "%s not on %s after its 202", id, topic);
        ab_itest_records_free(recs, n);
}

Test(ingest_errors, malformed_json_answers_400_and_service_keeps_serving) {
        ab_itest_http_t res;

        start_limited();
        cr_assert_eq(post_json("/events/ingest", "{\"id\": \"x\",", NULL, &res),
                     400, "%s", res.body);
        assert_error_body(&res, "malformed JSON");
        ab_itest_http_clear(&res);
        assert_still_serves(NULL);
}

Test(ingest_errors, malformed_body_is_recorded_on_rejected_with_its_text) {
        ab_itest_record_t *recs = NULL;
        ab_itest_http_t res;
        char topic[256];
        char errstr[256];
        json_t *doc;
        const char *s;

        start_limited();
        cr_assert_eq(post_json("/events/ingest", "{\"id\": oops", NULL, &res),
                     400, "%s", res.body);
        ab_itest_http_clear(&res);
        snprintf(topic, sizeof(topic), "%srejected", prefix);
        cr_assert_eq(ab_itest_topic_wait_count(b, topic, 1, WAIT_MS), 1);
        cr_assert_eq(ab_itest_consume_all(b, topic, WAIT_MS, &recs), 1);
        doc = ab_itest_record_json(&recs[0], errstr, sizeof(errstr));
        cr_assert_not_null(doc, "%s", errstr);
        s = json_string_value(json_object_get(doc, "originalText"));
        cr_assert_str_eq(s ? s : "(none)", "{\"id\": oops");
        cr_assert_not_null(json_string_value(json_object_get(doc, "reason")));
        json_decref(doc);
        ab_itest_records_free(recs, 1);
}

Test(ingest_errors, body_of_wrong_shape_answers_400_and_service_keeps_serving) {
        ab_itest_http_t res;

        start_limited();
        cr_assert_eq(post_json("/events/ingest", "42", NULL, &res), 400, "%s",
                     res.body);
        assert_error_body(&res, "a number as body");
        ab_itest_http_clear(&res);
        assert_still_serves(NULL);
}

Test(ingest_errors, body_over_max_body_bytes_answers_413_and_keeps_serving) {
        ab_itest_http_t res;
        char *big;
        size_t len = 4096;

        start_limited();
        big = malloc(len + 1);
        cr_assert_not_null(big);
        /* valid JSON, only too long: the size alone is refused */
        memset(big, ' ', len);
        big[0]       = '[';
        big[len - 1] = ']';
        big[len]     = '\0';
        cr_assert_eq(post_json("/events/ingest", big, NULL, &res), 413,
                     "%ld %s", res.status, res.body[0] ? res.body : res.error);
        assert_error_body(&res, "body over MAX_BODY_BYTES");
        ab_itest_http_clear(&res);
        free(big);
        assert_still_serves(NULL);
}

Test(ingest_errors, batch_over_max_batch_answers_413_and_keeps_serving) {
        ab_itest_http_t res;
        char one[512];
        char body[4096];
        size_t of = 0;
        char id[32];
        int i;

        start_limited();
        body[of++] = '[';
        for (i = 0; i < 6; i++) {
                snprintf(id, sizeof(id), "batch-%d", i);
                of += (size_t)snprintf(body + of, sizeof(body) - of, "%s%s",
                                       i ? "," : "",
                                       event(one, sizeof(one), id));
        }
        snprintf(body + of, sizeof(body) - of, "]");
        cr_assert_lt(strlen(body), 2048, "the batch must fit MAX_BODY_BYTES");
        cr_assert_eq(post_json("/events/ingest", body, NULL, &res), 413, "%s",
                     res.body);
        assert_error_body(&res, "6 items over MAX_BATCH=5");
        ab_itest_http_clear(&res);
        assert_still_serves(NULL);
}

Test(ingest_errors, text_plain_answers_415_and_keeps_serving) {
        static const char *const hdrs[] = {"Content-Type: text/plain", NULL};
        ab_itest_http_t res;
        char body[512];

        start_limited();
        cr_assert_eq(request("POST", "/events/ingest", hdrs,
                             event(body, sizeof(body), "plain"), &res),
                     415, "%s", res.body);
        assert_error_body(&res, "text/plain");
        ab_itest_http_clear(&res);
        assert_still_serves(NULL);
}

Test(ingest_errors, unknown_path_answers_404_and_keeps_serving) {
        ab_itest_http_t res;

        start_limited();
        cr_assert_eq(request("GET", "/no/such/path", NULL, NULL, &res), 404,
                     "%s", res.body);
        assert_error_body(&res, "unknown path");
        ab_itest_http_clear(&res);
        assert_still_serves(NULL);
}

Test(ingest_errors, get_on_ingest_answers_405_with_allow_and_keeps_serving) {
        ab_itest_http_t res;
        char allow[128];

        start_limited();
        cr_assert_eq(request("GET", "/events/ingest", NULL, NULL, &res), 405,
                     "%s", res.body);
        assert_error_body(&res, "GET /events/ingest");
        cr_assert_eq(ab_itest_http_header(&res, "Allow", allow, sizeof(allow)),
                     0, "no Allow header");
        cr_assert_not_null(strstr(allow, "POST"), "Allow: %s", allow);
        ab_itest_http_clear(&res);
        assert_still_serves(NULL);
}

/* ---- EVENT_INGEST_TOKEN ---- */

static void start_token(void) {
        static const char *const env[] = {"EVENT_INGEST_TOKEN=" TOKEN, NULL};

        start(env);
}

Test(ingest_errors, missing_ingest_token_answers_401_and_keeps_serving) {
        static const char *const ok[] = {"x-event-token: " TOKEN, NULL};
        ab_itest_http_t res;
        char body[512];

        start_token();
        cr_assert_eq(post_json("/events/ingest",
                               event(body, sizeof(body), "no-token"), NULL,
                               &res),
                     401, "%s", res.body);
        assert_error_body(&res, "no token");
        ab_itest_http_clear(&res);
        assert_still_serves(ok);
}

Test(ingest_errors, wrong_ingest_token_answers_401) {
        static const char *const hdrs[] = {"x-event-token: " TOKEN "x", NULL};
        static const char *const bearer[] = {"Authorization: Bearer nope",
                                             NULL};
        ab_itest_http_t res;
        char body[512];

        start_token();
        cr_assert_eq(post_json("/events/ingest",
                               event(body, sizeof(body), "bad-token"), hdrs,
                               &res),
                     401, "x-event-token: %s", res.body);
        ab_itest_http_clear(&res);
        cr_assert_eq(post_json("/bus/events",
                               "{\"source\":\"peakpro\",\"type\":"
                               "\"crm.record.updated\"}",
                               bearer, &res),
                     401, "Bearer on /bus/events: %s", res.body);
        ab_itest_http_clear(&res);
}

Test(ingest_errors, right_x_event_token_is_accepted) {
        static const char *const hdrs[] = {"x-event-token: " TOKEN, NULL};

        start_token();
        assert_still_serves(hdrs);
}

Test(ingest_errors, right_bearer_token_is_accepted) {
        static const char *const hdrs[] = {"Authorization: Bearer " TOKEN,
                                           NULL};

        start_token();
        assert_still_serves(hdrs);
}

Test(ingest_errors, credentials_are_checked_before_the_content_type) {
        static const char *const hdrs[] = {"Content-Type: text/plain", NULL};
        ab_itest_http_t res;

        start_token();
        /* An anonymous client learns nothing about what else is wrong. */
        cr_assert_eq(request("POST", "/events/ingest", hdrs, "x", &res), 401,
                     "%s", res.body);
        ab_itest_http_clear(&res);
}

/* Settings that could never work stop the start with exit 2. */
static void assert_refused_at_start(const char *const *env,
                                    const char *needle) {
        ab_itest_proc_t *p;
        char *log;
        int rc;

        p = ab_itest_proc_start("aetherbus-ingest", NULL, env);
        rc = ab_itest_proc_wait_exit(p, WAIT_MS);
        log = ab_itest_proc_log(p);
        cr_assert_eq(rc, 2, "exit %d, log: %s", rc, log ? log : "");
        cr_assert_not_null(log && strstr(log, needle) ? log : NULL,
                           "no \"%s\" in: %s", needle, log ? log : "");
        free(log);
        ab_itest_proc_destroy(p);
}

Test(ingest_errors, a_payload_limit_over_message_max_bytes_is_refused_at_start) {
        static const char *const env[] = {"MAX_PAYLOAD_BYTES=4M",
                                          "MAX_BODY_BYTES=8M",
                                          "KAFKA_QUEUE_MAX_BYTES=64M", NULL};

        /* Such payloads would be answered 503 and retried forever. */
        assert_refused_at_start(env, "message.max.bytes");
}

Test(ingest_errors, an_id_limit_below_a_uuid_is_refused_at_start) {
        static const char *const env[] = {"MAX_ID_LENGTH=10", NULL};

        assert_refused_at_start(env, "MAX_ID_LENGTH");
}

Test(ingest_errors, empty_batch_is_recorded_on_rejected_with_the_parsed_body) {
        ab_itest_record_t *recs = NULL;
        ab_itest_http_t res;
        char topic[256];
        char errstr[256];
        json_t *doc;

        start_limited();
        /* Parsed fine, refused as a batch: by then the raw text has been
         * released, so the record carries the parsed body. */
        cr_assert_eq(post_json("/events/ingest", "[]", NULL, &res), 400, "%s",
                     res.body);
        ab_itest_http_clear(&res);
        snprintf(topic, sizeof(topic), "%srejected", prefix);
        cr_assert_eq(ab_itest_topic_wait_count(b, topic, 1, WAIT_MS), 1);
        cr_assert_eq(ab_itest_consume_all(b, topic, WAIT_MS, &recs), 1);
        doc = ab_itest_record_json(&recs[0], errstr, sizeof(errstr));
        cr_assert_not_null(doc, "%s", errstr);
        cr_assert(json_is_array(json_object_get(doc, "original")));
        json_decref(doc);
        ab_itest_records_free(recs, 1);
        assert_still_serves(NULL);
}

/* The bus's own events (security.*, core.startup) are told apart by their
 * aetherbus-* source: a client sending one, in either form, is refused per
 * item, the refusal recorded on rejected, and
 * nothing reaches the event's topic. */
Test(ingest_errors, a_client_cannot_send_the_bus_own_sources) {
        static const struct {
                const char *path, *body;
        } forged[] = {
            {"/events/ingest",
             "{\"id\":\"f1\",\"name\":\"security.rbac.denied\",\"schemaVersion\":1,"
             "\"occurredAt\":\"2026-02-11T20:10:00.000Z\",\"source\":"
             "\"aetherbus-ingest\",\"payload\":{}}"},
            {"/events/ingest",
             "{\"id\":\"f2\",\"name\":\"core.startup\",\"schemaVersion\":1,"
             "\"occurredAt\":\"2026-02-11T20:10:00.000Z\",\"source\":"
             "\"aetherbus-stats\",\"payload\":{}}"},
            {"/bus/events",
             "{\"source\":\"aetherbus-audit\",\"type\":\"security.config.changed\","
             "\"payload\":{}}"},
            {NULL, NULL},
        };
        static const char *const ops[] = {"x-ops: 1", NULL};
        ab_itest_http_t res;
        char topic[256];
        int i;

        start(NULL);
        for (i = 0; forged[i].path; i++) {
                cr_assert_eq(post_json(forged[i].path, forged[i].body, ops, &res),
                             403, "%s %s: %ld %s", forged[i].path, forged[i].body,
                             res.status, res.body);
                cr_assert(strstr(res.body, "reserved"), "%s", res.body);
                assert_error_body(&res, forged[i].path);
                ab_itest_http_clear(&res);
        }
        snprintf(topic, sizeof(topic), "%srejected", prefix);
        cr_assert_eq(ab_itest_topic_wait_count(b, topic, 3, WAIT_MS), 3);
        /* only ingest's own core.startup is on core, none on security */
        snprintf(topic, sizeof(topic), "%ssecurity", prefix);
        cr_assert_eq(ab_itest_topic_count(b, topic), 0);
        snprintf(topic, sizeof(topic), "%score", prefix);
        cr_assert_eq(ab_itest_topic_wait_count(b, topic, 1, WAIT_MS), 1,
                     "core holds more than ingest's own core.startup");
        assert_still_serves(NULL);
}

/* A rejected item whose record would pass message.max.bytes (an item
 * with a payload far over MAX_PAYLOAD_BYTES, in a body under
 * MAX_BODY_BYTES) is still written, cut to its head with its size and
 * digest; and the same class for an unparseable body over the text
 * limit. Checked by reading <prefix>rejected. */
Test(ingest_errors, a_rejection_too_large_for_kafka_is_written_cut) {
        ab_itest_record_t *recs = NULL;
        ab_itest_http_t res;
        char topic[256], errstr[256];
        size_t n = 1000 * 1000, i, got;
        char *body, *o;
        json_t *doc;
        int cut = 0, cut_text = 0;

        start(NULL);
        body = malloc(n + 512);
        o    = body + sprintf(body,
                              "{\"id\":\"big-1\",\"name\":\"ProductViewed\","
                              "\"schemaVersion\":1,\"occurredAt\":"
                              "\"2026-02-11T20:10:00.000Z\",\"source\":"
                              "\"storefront\",\"companyId\":\"c1\","
                              "\"payload\":{\"productId\":\"p1\",\"blob\":\"");
        memset(o, 'x', n);
        o += n;
        strcpy(o, "\"}}");
        cr_assert_eq(post_json("/events/ingest", body, NULL, &res), 400, "%.300s",
                     res.body);
        ab_itest_http_clear(&res);
        /* unparseable, same size: cut as text */
        body[n / 2] = '\0';
        cr_assert_eq(post_json("/events/ingest", body, NULL, &res), 400, "%.300s",
                     res.body);
        ab_itest_http_clear(&res);
        free(body);

        snprintf(topic, sizeof(topic), "%srejected", prefix);
        cr_assert_eq(ab_itest_topic_wait_count(b, topic, 2, WAIT_MS), 2);
        got = ab_itest_consume_all(b, topic, WAIT_MS, &recs);
        cr_assert_eq(got, 2);
        for (i = 0; i < got; i++) {
                doc = ab_itest_record_json(&recs[i], errstr, sizeof(errstr));
                cr_assert_not_null(doc, "%s", errstr);
                cr_assert_eq(json_is_true(json_object_get(doc, "truncated")), 1,
                             "%.300s", recs[i].value);
                cr_assert_eq(strlen(json_string_value(json_object_get(
                                 doc, "originalSha256"))),
                             64);
                if (json_object_get(doc, "index")) {
                        /* the item: its size is its compact JSON */
                        cut++;
                        cr_assert_gt(json_integer_value(json_object_get(
                                         doc, "originalSize")),
                                     (json_int_t)n);
                        cr_assert(strstr(json_string_value(json_object_get(
                                             doc, "originalText")),
                                         "\"id\":\"big-1\""));
                } else {
                        cut_text++;
                        cr_assert_eq(json_integer_value(json_object_get(
                                         doc, "originalSize")),
                                     (json_int_t)(n / 2));
                }
                json_decref(doc);
        }
        cr_assert_eq(cut, 1);
        cr_assert_eq(cut_text, 1);
        ab_itest_records_free(recs, got);
}

/* An event the broker refuses as too large after it was queued (the
 * topic's max.message.bytes is under the record, the producer's limit is
 * not): answered rejected, never failed, and its rejection is written
 * with the id and the broker's reason. Real Kafka only: the mock neither
 * takes topic configs nor checks sizes. */
Test(ingest_errors, an_event_the_broker_refuses_as_too_large_is_rejected_and_recorded) {
        ab_itest_record_t *recs = NULL;
        ab_itest_http_t res;
        char topic[256], errstr[256], *body, *o;
        json_t *doc;
        size_t got;

        ab_itest_require_kind("kafka", "topic configs and size checks need a "
                                       "real broker");
        start(NULL);
        snprintf(topic, sizeof(topic), "%scommerce", prefix);
        ab_itest_topic_config(b, topic, "max.message.bytes", "1024");
        body = malloc(8192);
        o    = body + sprintf(body,
                              "{\"id\":\"huge-1\",\"name\":\"ProductViewed\","
                              "\"schemaVersion\":1,\"occurredAt\":"
                              "\"2026-02-11T20:10:00.000Z\",\"source\":"
                              "\"storefront\",\"companyId\":\"c1\","
                              "\"payload\":{\"productId\":\"p1\",\"blob\":\"");
        /* not compressible: the broker checks the compressed batch */
        for (size_t i = 0, x = 12345; i < 4000; i++) {
                x    = x * 1103515245 + 12345;
                o[i] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                    [(x >> 16) % 62];
        }
        strcpy(o + 4000, "\"}}");
        cr_assert_eq(post_json("/events/ingest", body, NULL, &res), 400, "%s",
                     res.body);
        cr_assert(strstr(res.body, "\"status\":\"rejected\""), "%s", res.body);
        ab_itest_http_clear(&res);
        free(body);

        snprintf(topic, sizeof(topic), "%srejected", prefix);
        cr_assert_eq(ab_itest_topic_wait_count(b, topic, 1, WAIT_MS), 1);
        got = ab_itest_consume_all(b, topic, WAIT_MS, &recs);
        cr_assert_eq(got, 1);
        doc = ab_itest_record_json(&recs[0], errstr, sizeof(errstr));
        cr_assert_not_null(doc, "%s", errstr);
        cr_assert_str_eq(json_string_value(json_object_get(doc, "code")),
                         "TOO_LARGE", "%s", recs[0].value);
        cr_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(doc, "original"), "id")),
                         "huge-1", "%s", recs[0].value);
        cr_assert_eq(json_integer_value(json_object_get(doc, "index")), 0);
        json_decref(doc);
        ab_itest_records_free(recs, got);
}
