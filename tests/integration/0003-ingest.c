/* aetherbus - Apache-2.0
 *
 * 0003-ingest: aetherbus-ingest end to end on its good paths, against the
 * broker under test (devbroker or the real Kafka): the spec's example and
 * the /bus/events form land Avro-encoded, keyed and with CloudEvents
 * headers on their topics; partial and fully invalid batches answer 207 and
 * 400 with per-item results and feed <prefix>rejected; ?async=1; the schema
 * document; health, readiness and metrics; core.startup; a clean SIGTERM.
 * Every test starts its own broker, topic prefix and service, and checks
 * what really arrived in Kafka.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "ab_avro.h"
#include "ab_catalog.h"
#include "ab_envelope.h"
#include "ab_itest.h"

#define PARTITIONS 3
#define WAIT_MS    30000
#define UUID_V4_RE                                                       \
        "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"      \
        "[0-9a-f]{12}$"

static ab_itest_broker_t *b;
static ab_itest_proc_t *svc;
static int port;
static char prefix[64];

/* Broker, the catalog's topics under a fresh prefix, a ready service. */
static void start(const char *const *env) {
        svc = ab_itest_stack_start("aetherbus-ingest", PARTITIONS, env, WAIT_MS,
                                   &b, prefix, sizeof(prefix), &port);
}

static void teardown(void) {
        ab_itest_stack_stop(&svc, &b);
}

TestSuite(ingest, .fini = teardown, .timeout = 180);

static int64_t wall_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *topic(const char *p) {
        static char buf[4][256];
        static int i;

        i = (i + 1) % 4;
        snprintf(buf[i], sizeof(buf[i]), "%s%s", prefix, p);
        return buf[i];
}

static long post(const char *path, const char *body,
                 const char *const *headers, ab_itest_http_t *res) {
        char url[512];

        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        return ab_itest_http_post_json(url, body, headers, res);
}

static long get(const char *path, ab_itest_http_t *res) {
        char url[512];

        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        return ab_itest_http_get(url, res);
}

static json_t *body_json(const ab_itest_http_t *res) {
        json_t *doc = ab_itest_http_json(res);

        cr_assert_not_null(doc, "response body is not JSON: %s", res->body);
        return doc;
}

/* Waits until topic t holds want records, reads them all. */
static size_t read_topic(const char *t, int64_t want,
                         ab_itest_record_t **recsp) {
        int64_t n = ab_itest_topic_wait_count(b, t, want, WAIT_MS);
        size_t got;

        cr_assert_eq(n, want, "%s on %s holds %lld records, expected %lld", t,
                     ab_itest_broker_kind(b), (long long)n, (long long)want);
        got = ab_itest_consume_all(b, t, WAIT_MS, recsp);
        cr_assert_eq(got, (size_t)want, "read %zu of %lld records of %s",
                     got, (long long)want, t);
        return got;
}

static json_t *decode(const ab_itest_record_t *rec) {
        char errstr[512];
        json_t *doc = ab_itest_record_json(rec, errstr, sizeof(errstr));

        cr_assert_not_null(doc, "record %s@%lld: %s", rec->topic,
                           (long long)rec->offset, errstr);
        return doc;
}

static const char *jstr(const json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

static char *envelope(const char *id, const char *name, const char *company) {
        char *s = NULL;

        cr_assert(asprintf(&s,
                           "{\"id\":\"%s\",\"name\":\"%s\",\"schemaVersion\":1,"
                           "\"occurredAt\":\"2026-02-11T20:10:00.000Z\","
                           "\"source\":\"storefront\",\"companyId\":\"%s\","
                           "\"payload\":{\"n\":1}}",
                           id, name, company) > 0);
        return s;
}

Test(ingest, spec_example_lands_on_commerce_avro_encoded_with_ce_headers) {
        static const char *const hdr_want[][2] = {
            {"ce_specversion", "1.0"},  {"ce_id", "evt_123"},
            {"ce_type", "ProductViewed"}, {"ce_source", "storefront"},
            {"ce_time", "2026-02-11T20:10:00.000Z"}, {"ce_subject", "p1"},
            {"content-type", "application/avro"},
        };
        ab_itest_record_t *recs = NULL;
        ab_itest_http_t res;
        json_t *example, *resp, *want, *doc;
        json_error_t jerr;
        char *text;
        int64_t t0, t1, received;
        const char *v;
        size_t i;

        start(NULL);
        example = json_load_file(AB_SCHEMA_DIR "/fixtures/spec-example.json",
                                 0, &jerr);
        cr_assert_not_null(example, "spec-example.json: %s", jerr.text);
        text = json_dumps(example, JSON_COMPACT);
        t0   = wall_ms();
        cr_assert_eq(post("/events/ingest", text, NULL, &res), 202, "%s",
                     res.body);
        t1   = wall_ms();
        resp = body_json(&res);
        want = json_pack("{s:i,s:[s]}", "accepted", 1, "ids", "evt_123");
        cr_assert(json_equal(resp, want), "answer %s", res.body);

        read_topic(topic("commerce"), 1, &recs);
        cr_assert_str_eq(recs[0].key ? recs[0].key : "(null)", "c1");
        doc = decode(&recs[0]);
        received = json_integer_value(json_object_get(doc, "receivedAt"));
        cr_assert(received >= t0 - 1000 && received <= t1 + 1000,
                  "receivedAt %lld outside the request [%lld, %lld]",
                  (long long)received, (long long)t0, (long long)t1);
        json_object_del(doc, "receivedAt");
        free(text);
        text = json_dumps(doc, JSON_COMPACT);
        cr_assert(json_equal(doc, example), "decoded %s", text);
        for (i = 0; i < sizeof(hdr_want) / sizeof(hdr_want[0]); i++) {
                v = ab_itest_record_header(&recs[0], hdr_want[i][0]);
                cr_assert_str_eq(v ? v : "(missing)", hdr_want[i][1],
                                 "header %s", hdr_want[i][0]);
        }
        free(text);
        json_decref(doc);
        json_decref(want);
        json_decref(resp);
        json_decref(example);
        ab_itest_records_free(recs, 1);
        ab_itest_http_clear(&res);
}

/* Stats seeks by time (rd_kafka_offsets_for_times) to rebuild its window:
 * the record's timestamp must be when the event was accepted. */
Test(ingest, record_timestamp_is_the_event_s_received_at) {
        ab_itest_record_t *recs = NULL;
        ab_itest_http_t res;
        json_t *example, *doc;
        json_error_t jerr;
        char *text;

        start(NULL);
        example = json_load_file(AB_SCHEMA_DIR "/fixtures/spec-example.json",
                                 0, &jerr);
        cr_assert_not_null(example, "spec-example.json: %s", jerr.text);
        /* an occurredAt far from now, so it cannot pass for receivedAt */
        json_object_set_new(example, "occurredAt",
                            json_string("2020-01-01T00:00:00.000Z"));
        text = json_dumps(example, JSON_COMPACT);
        cr_assert_eq(post("/events/ingest", text, NULL, &res), 202, "%s",
                     res.body);

        read_topic(topic("commerce"), 1, &recs);
        doc = decode(&recs[0]);
        cr_assert_eq(recs[0].timestamp,
                     json_integer_value(json_object_get(doc, "receivedAt")),
                     "record timestamp %lld", (long long)recs[0].timestamp);
        free(text);
        json_decref(doc);
        json_decref(example);
        ab_itest_records_free(recs, 1);
        ab_itest_http_clear(&res);
}

Test(ingest, bus_event_gets_tenant_as_company_and_a_generated_uuid) {
        static const char *const hdrs[] = {"x-tenant: t1", "x-ops: 1", NULL};
        ab_itest_record_t *recs = NULL;
        ab_itest_http_t res;
        json_t *resp, *doc, *payload;
        const char *id;
        int64_t ms;
        regex_t re;

        start(NULL);
        cr_assert_eq(post("/bus/events",
                          "{\"source\":\"peakpro\",\"type\":"
                          "\"crm.record.updated\",\"payload\":"
                          "{\"record_id\":\"rec_501\"}}",
                          hdrs, &res),
                     202, "%s", res.body);
        resp = body_json(&res);
        cr_assert_eq(json_integer_value(json_object_get(resp, "accepted")), 1,
                     "%s", res.body);
        id = json_string_value(json_array_get(json_object_get(resp, "ids"), 0));
        cr_assert_not_null(id, "no id in %s", res.body);
        cr_assert_eq(regcomp(&re, UUID_V4_RE, REG_EXTENDED | REG_NOSUB), 0);
        cr_assert_eq(regexec(&re, id, 0, NULL, 0), 0,
                     "generated id %s is not a v4 UUID", id);
        regfree(&re);

        read_topic(topic("crm"), 1, &recs);
        cr_assert_str_eq(recs[0].key ? recs[0].key : "(null)", "t1");
        doc = decode(&recs[0]);
        cr_assert_str_eq(jstr(doc, "id"), id);
        cr_assert_str_eq(jstr(doc, "companyId"), "t1");
        cr_assert_str_eq(jstr(doc, "name"), "crm.record.updated");
        cr_assert_str_eq(jstr(doc, "source"), "peakpro");
        cr_assert_eq(json_integer_value(json_object_get(doc, "schemaVersion")),
                     1);
        cr_assert_eq(ab_time_parse(jstr(doc, "occurredAt"), &ms),
                     AB_OK, "generated occurredAt %s", jstr(doc, "occurredAt"));
        payload = json_pack("{s:s}", "record_id", "rec_501");
        cr_assert(json_equal(json_object_get(doc, "payload"), payload));
        cr_assert_str_eq(ab_itest_record_header(&recs[0], "ce_id"), id);
        json_decref(payload);
        json_decref(doc);
        json_decref(resp);
        ab_itest_records_free(recs, 1);
        ab_itest_http_clear(&res);
}

Test(ingest, partial_batch_answers_207_and_sends_the_invalid_items_to_rejected) {
        /* an item per row; error: the start of its rejection reason */
        static const struct {
                const char *id;
                const char *name;
                const char *topic;
                const char *error;
        } rows[] = {
            {"b0", "ProductViewed", "commerce", NULL},
            {"b1", "NoSuchEvent", NULL, "name: unknown event name"},
            {"b2", "EmailSent", "messaging", NULL},
            {"b3", NULL, NULL, "schemaVersion: required"},
            {"b4", "FeatureUsageEvent", "usage", NULL},
        };
        ab_itest_record_t *recs = NULL;
        ab_itest_http_t res;
        json_t *body, *resp, *results, *r, *doc, *item;
        char *text, *s;
        const char *err;
        json_int_t idx;
        size_t i, n;

        start(NULL);
        body = json_array();
        for (i = 0; i < 5; i++) {
                s = envelope(rows[i].id,
                             rows[i].name ? rows[i].name : "ProductViewed",
                             "acme");
                item = json_loads(s, 0, NULL);
                cr_assert_not_null(item, "row %zu: %s", i, s);
                free(s);
                if (!rows[i].name) {
                        /* row 3: valid but for the missing field */
                        json_object_del(item, "schemaVersion");
                }
                json_array_append_new(body, item);
        }
        text = json_dumps(body, JSON_COMPACT);
        cr_assert_eq(post("/events/ingest", text, NULL, &res), 207, "%s",
                     res.body);
        resp = body_json(&res);
        cr_assert_eq(json_integer_value(json_object_get(resp, "accepted")), 3,
                     "%s", res.body);
        cr_assert_eq(json_integer_value(json_object_get(resp, "rejected")), 2,
                     "%s", res.body);
        results = json_object_get(resp, "results");
        cr_assert_eq(json_array_size(results), 5, "%s", res.body);
        for (i = 0; i < 5; i++) {
                r = json_array_get(results, i);
                cr_assert_eq(json_integer_value(json_object_get(r, "index")),
                             (json_int_t)i, "row %zu: %s", i, res.body);
                cr_assert_str_eq(jstr(r, "id"), rows[i].id, "row %zu", i);
                cr_assert_str_eq(jstr(r, "status"),
                                 rows[i].error ? "rejected" : "accepted",
                                 "row %zu", i);
                if (rows[i].error) {
                        err = jstr(r, "error");
                        cr_assert(err && strstr(err, rows[i].error),
                                  "row %zu: error %s, expected %s", i,
                                  err ? err : "(none)", rows[i].error);
                }
        }

        for (i = 0; i < 5; i++) {
                if (rows[i].error) {
                        continue;
                }
                n = read_topic(topic(rows[i].topic), 1, &recs);
                doc = decode(&recs[0]);
                cr_assert_str_eq(jstr(doc, "id"), rows[i].id, "row %zu", i);
                cr_assert_str_eq(jstr(doc, "name"), rows[i].name);
                json_decref(doc);
                ab_itest_records_free(recs, n);
        }

        n = read_topic(topic("rejected"), 2, &recs);
        for (i = 0; i < n; i++) {
                doc = decode(&recs[i]);
                idx = json_integer_value(json_object_get(doc, "index"));
                cr_assert(idx == 1 || idx == 3, "rejected record index %lld",
                          (long long)idx);
                cr_assert(jstr(doc, "reason") &&
                              strstr(jstr(doc, "reason"), rows[idx].error),
                          "index %lld: reason %s", (long long)idx,
                          jstr(doc, "reason") ? jstr(doc, "reason") : "-");
                cr_assert(json_equal(json_object_get(doc, "original"),
                                     json_array_get(body, (size_t)idx)),
                          "index %lld: original differs from what was sent",
                          (long long)idx);
                cr_assert_str_eq(jstr(doc, "path"), "/events/ingest");
                cr_assert_str_eq(jstr(doc, "tenant"), "acme");
                cr_assert(json_is_integer(json_object_get(doc, "receivedAt")));
                json_decref(doc);
        }
        ab_itest_records_free(recs, n);
        json_decref(resp);
        json_decref(body);
        free(text);
        ab_itest_http_clear(&res);
}

Test(ingest, all_invalid_batch_answers_400_with_results_and_feeds_rejected) {
        ab_itest_record_t *recs = NULL;
        ab_itest_http_t res;
        json_t *resp, *results, *doc;
        size_t i, n;

        start(NULL);
        cr_assert_eq(post("/events/ingest",
                          "[{\"id\":\"x1\",\"name\":\"ProductViewed\"},"
                          "42,{\"id\":\"x3\",\"name\":\"NoSuchEvent\","
                          "\"schemaVersion\":1,\"occurredAt\":"
                          "\"2026-02-11T20:10:00.000Z\",\"source\":"
                          "\"storefront\",\"payload\":{}}]",
                          NULL, &res),
                     400, "%s", res.body);
        resp = body_json(&res);
        cr_assert_eq(json_integer_value(json_object_get(resp, "accepted")), 0);
        cr_assert_eq(json_integer_value(json_object_get(resp, "rejected")), 3);
        results = json_object_get(resp, "results");
        cr_assert_eq(json_array_size(results), 3, "%s", res.body);
        for (i = 0; i < 3; i++) {
                cr_assert_str_eq(jstr(json_array_get(results, i), "status"),
                                 "rejected", "item %zu: %s", i, res.body);
                cr_assert_not_null(jstr(json_array_get(results, i), "error"),
                                   "item %zu has no error: %s", i, res.body);
        }
        n = read_topic(topic("rejected"), 3, &recs);
        for (i = 0; i < n; i++) {
                doc = decode(&recs[i]);
                cr_assert_not_null(jstr(doc, "reason"));
                cr_assert(json_is_integer(json_object_get(doc, "index")));
                cr_assert_not_null(json_object_get(doc, "original"));
                json_decref(doc);
        }
        ab_itest_records_free(recs, n);
        json_decref(resp);
        ab_itest_http_clear(&res);
}

Test(ingest, async_answers_202_not_durable_and_the_event_arrives) {
        ab_itest_record_t *recs = NULL;
        ab_itest_http_t res;
        json_t *resp;
        char *ev;

        start(NULL);
        ev = envelope("async-1", "OrderCreated", "c9");
        cr_assert_eq(post("/events/ingest?async=1", ev, NULL, &res), 202,
                     "%s", res.body);
        resp = body_json(&res);
        cr_assert(json_is_false(json_object_get(resp, "durable")),
                  "no \"durable\":false in %s", res.body);
        cr_assert_str_eq(
            json_string_value(json_array_get(json_object_get(resp, "ids"), 0)),
            "async-1");
        read_topic(topic("commerce"), 1, &recs);
        cr_assert_str_eq(ab_itest_record_header(&recs[0], "ce_id"), "async-1");
        ab_itest_records_free(recs, 1);
        json_decref(resp);
        free(ev);
        ab_itest_http_clear(&res);
}

Test(ingest, schema_lists_every_catalog_event_with_topic_and_the_avro_schema) {
        ab_itest_http_t res;
        ab_catalog_t *cat;
        json_t *doc, *events, *e, *avsc;
        json_error_t jerr;
        char errstr[256];
        char want[256];
        size_t i;

        start(NULL);
        cr_assert_eq(get("/events/schema", &res), 200, "%s", res.body);
        doc = body_json(&res);
        cr_assert_eq(json_integer_value(json_object_get(doc, "schemaVersion")),
                     1, "%s", res.body);
        cat = ab_catalog_new(errstr, sizeof(errstr));
        cr_assert_not_null(cat, "%s", errstr);
        events = json_object_get(doc, "events");
        cr_assert_eq(json_array_size(events), ab_catalog_count(cat),
                     "%zu events listed, the catalog has %zu",
                     json_array_size(events), ab_catalog_count(cat));
        cr_assert_eq(json_array_size(events), 49);
        for (i = 0; i < json_array_size(events); i++) {
                e = json_array_get(events, i);
                cr_assert_not_null(jstr(e, "name"), "event %zu", i);
                cr_assert_not_null(jstr(e, "prefix"), "event %zu", i);
                snprintf(want, sizeof(want), "%s%s", prefix, jstr(e, "prefix"));
                cr_assert_str_eq(jstr(e, "topic") ? jstr(e, "topic") : "-",
                                 want, "event %zu (%s)", i, jstr(e, "name"));
        }
        avsc = json_load_file(AB_SCHEMA_DIR "/envelope.avsc", 0, &jerr);
        cr_assert_not_null(avsc, "envelope.avsc: %s", jerr.text);
        cr_assert(json_equal(json_object_get(doc, "avro"), avsc),
                  "\"avro\" is not schemas/envelope.avsc");
        json_decref(avsc);
        ab_catalog_destroy(cat);
        json_decref(doc);
        ab_itest_http_clear(&res);
}

Test(ingest, healthz_and_readyz_answer_200) {
        ab_itest_http_t res;

        start(NULL);
        cr_assert_eq(get("/healthz", &res), 200, "%s", res.body);
        ab_itest_http_clear(&res);
        cr_assert_eq(get("/readyz", &res), 200, "%s", res.body);
        ab_itest_http_clear(&res);
}

Test(ingest, metrics_count_an_accepted_event_by_topic) {
        ab_itest_http_t res;
        char line[512];
        char *ev;
        const char *p;
        int found = 0;

        start(NULL);
        ev = envelope("m-1", "OrderCreated", "c1");
        cr_assert_eq(post("/events/ingest", ev, NULL, &res), 202, "%s",
                     res.body);
        ab_itest_http_clear(&res);
        cr_assert_eq(get("/metrics", &res), 200);
        snprintf(line, sizeof(line),
                 "aetherbus_ingest_events_accepted_total{topic=\"%s\"} 1\n",
                 topic("commerce"));
        /* a whole line: the name, not a longer name that ends with it */
        for (p = res.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1
                                                        : NULL) {
                if (!strncmp(p, line, strlen(line))) {
                        found = 1;
                }
        }
        cr_assert(found, "no line \"%.*s\" in /metrics:\n%.3000s",
                  (int)strlen(line) - 1, line, res.body);
        free(ev);
        ab_itest_http_clear(&res);
}

Test(ingest, emits_core_startup_with_its_pid) {
        ab_itest_record_t *recs = NULL;
        json_t *doc, *payload;

        start(NULL);
        read_topic(topic("core"), 1, &recs);
        doc = decode(&recs[0]);
        cr_assert_str_eq(jstr(doc, "name"), "core.startup");
        cr_assert_str_eq(jstr(doc, "source"), "aetherbus-ingest");
        payload = json_object_get(doc, "payload");
        cr_assert_eq(json_integer_value(json_object_get(payload, "pid")),
                     (json_int_t)ab_itest_proc_pid(svc), "payload pid");
        cr_assert_str_eq(jstr(payload, "service"), "aetherbus-ingest");
        cr_assert_str_eq(ab_itest_record_header(&recs[0], "ce_type"),
                         "core.startup");
        json_decref(doc);
        ab_itest_records_free(recs, 1);
}

Test(ingest, sigterm_while_idle_exits_0) {
        start(NULL);
        cr_assert_eq(ab_itest_proc_stop(svc, WAIT_MS), 0,
                     "exit status after SIGTERM");
}

/* Payload numbers reach Kafka as the client wrote them (the parsed tree
 * would re-print 19.99 as 19.989999999999998): the stored payload text of
 * each event, read back by id, keeps every digit, exponent and escape, in
 * both request forms and in a batch; whitespace between tokens goes. */
Test(ingest, payload_numbers_and_escapes_arrive_as_sent) {
        static const struct {
                const char *id, *payload, *stored;
        } cases[] = {
            {"num-1", "{ \"amount\" : 19.99, \"rate\": 0.10 }",
             "{\"amount\":19.99,\"rate\":0.10}"},
            {"num-2", "{\"e\":1E2,\"tiny\":1e-7,\"neg\":-0.0,\"i\":100}",
             "{\"e\":1E2,\"tiny\":1e-7,\"neg\":-0.0,\"i\":100}"},
            {"num-3", "{\"long\":3.141592653589793238462643383279,\"s\":\"caf\\u00e9 \\/\"}",
             "{\"long\":3.141592653589793238462643383279,\"s\":\"caf\\u00e9 \\/\"}"},
        };
        ab_itest_record_t *recs = NULL;
        ab_itest_http_t res;
        ab_avro_codec_t *codec;
        ab_envelope_t env;
        char body[2048], errstr[256];
        const ab_itest_record_t *r;
        size_t i, o = 0, got;

        start(NULL);
        o += (size_t)snprintf(body + o, sizeof(body) - o, "[");
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                o += (size_t)snprintf(
                    body + o, sizeof(body) - o,
                    "%s{\"id\":\"%s\",\"name\":\"ProductViewed\","
                    "\"schemaVersion\":1,\"occurredAt\":"
                    "\"2026-02-11T20:10:00.000Z\",\"source\":\"storefront\","
                    "\"companyId\":\"c1\",\"payload\":%s}",
                    i ? ",\n " : "", cases[i].id, cases[i].payload);
        }
        snprintf(body + o, sizeof(body) - o, "]");
        cr_assert_eq(post("/events/ingest", body, NULL, &res), 202, "%s", res.body);
        ab_itest_http_clear(&res);

        codec = ab_avro_codec_new(NULL, errstr, sizeof(errstr));
        cr_assert_not_null(codec, "%s", errstr);
        got = read_topic(topic("commerce"), 3, &recs);
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                r = ab_itest_records_find(recs, got, "ce_id", cases[i].id);
                cr_assert_not_null(r, "%s not on the topic", cases[i].id);
                memset(&env, 0, sizeof(env));
                cr_assert_eq(ab_avro_decode_view(codec, r->value, r->value_len,
                                                 &env, errstr, sizeof(errstr)),
                             AB_OK, "%s", errstr);
                cr_assert_eq(env.payload_json_len, strlen(cases[i].stored),
                             "%s: %.*s", cases[i].id, (int)env.payload_json_len,
                             env.payload_json);
                cr_assert_eq(memcmp(env.payload_json, cases[i].stored,
                                    env.payload_json_len),
                             0, "%s: %.*s", cases[i].id,
                             (int)env.payload_json_len, env.payload_json);
                ab_envelope_clear(&env);
        }
        ab_itest_records_free(recs, got);

        /* the bus form too */
        cr_assert_eq(post("/bus/events",
                          "{\"source\":\"peakpro\",\"type\":\"crm.record.updated\","
                          "\"payload\":{\"record_id\":\"r1\",\"value\":19.99}}",
                          (const char *const[]){"x-ops: 1", "x-tenant: t1", NULL},
                          &res),
                     202, "%s", res.body);
        ab_itest_http_clear(&res);
        got = read_topic(topic("crm"), 1, &recs);
        memset(&env, 0, sizeof(env));
        cr_assert_eq(ab_avro_decode_view(codec, recs[0].value, recs[0].value_len,
                                         &env, errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert(env.payload_json_len == 32 &&
                      !memcmp(env.payload_json,
                              "{\"record_id\":\"r1\",\"value\":19.99}", 32),
                  "%.*s", (int)env.payload_json_len, env.payload_json);
        ab_envelope_clear(&env);
        ab_itest_records_free(recs, got);
        ab_avro_codec_destroy(codec);
}

/* The README's promise on unknown top-level fields: accepted (202), and
 * the record holds the schema's fields only. */
Test(ingest, unknown_top_level_fields_are_accepted_and_not_written) {
        ab_itest_record_t *recs = NULL;
        ab_itest_http_t res;
        json_t *doc;
        size_t got;

        start(NULL);
        cr_assert_eq(post("/events/ingest",
                          "{\"id\":\"u-1\",\"name\":\"ProductViewed\","
                          "\"schemaVersion\":1,\"occurredAt\":"
                          "\"2026-02-11T20:10:00.000Z\",\"source\":\"storefront\","
                          "\"companyId\":\"c1\",\"payload\":{\"productId\":\"p\"},"
                          "\"traceId\":\"4bf92f35\",\"x\":{\"y\":[1]}}",
                          NULL, &res),
                     202, "%s", res.body);
        ab_itest_http_clear(&res);
        got = read_topic(topic("commerce"), 1, &recs);
        doc = decode(&recs[0]);
        cr_assert_str_eq(json_string_value(json_object_get(doc, "id")), "u-1");
        cr_assert_null(json_object_get(doc, "traceId"));
        cr_assert_null(json_object_get(doc, "x"));
        json_decref(doc);
        ab_itest_records_free(recs, got);
}
