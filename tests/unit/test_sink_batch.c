/* aetherbus - Apache-2.0
 *
 * Unit tests of sink_batch: the event and byte limits (checked before an
 * event is appended, the exact boundary, an oversized event alone), the
 * body (a JSON array of exactly the envelopes' compact JSON), linger with
 * an injected clock, offsets and keys, and splitting for the bisect down
 * to single events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "ab_avro.h"
#include "ab_envelope.h"
#include "ab_json.h"
#include "sink_batch.h"

#define TOPIC "events.commerce"

/* What ab_consume hands the sink: a view (ab_avro_decode_view()) of a
 * record ab_avro_encode() wrote, and the ingest-form document the batch
 * must write for it (the view has no tree of its own). */
typedef struct {
        ab_envelope_t v;
        json_t *doc;
} tev_t;

static ab_avro_codec_t *codec(void) {
        static ab_avro_codec_t *c;
        char errstr[256] = "";

        if (!c) {
                c = ab_avro_codec_new(NULL, errstr, sizeof(errstr));
                cr_assert_not_null(c, "%s", errstr);
        }
        return c;
}

/* Encodes \p doc (an ingest-form envelope) and decodes it as a view. */
static tev_t mkview(json_t *doc) {
        ab_envelope_t enc;
        char errstr[256] = "", *rec;
        size_t size = 1024, len = 0;
        ab_err_t err;
        tev_t t;

        memset(&enc, 0, sizeof(enc));
        enc.doc            = doc;
        enc.id             = json_string_value(json_object_get(doc, "id"));
        enc.name           = json_string_value(json_object_get(doc, "name"));
        enc.schema_version = 1;
        enc.occurred_at = json_string_value(json_object_get(doc, "occurredAt"));
        enc.source      = json_string_value(json_object_get(doc, "source"));
        enc.company_id  = json_string_value(json_object_get(doc, "companyId"));
        enc.subject_id  = json_string_value(json_object_get(doc, "subjectId"));
        enc.payload     = json_object_get(doc, "payload");
        enc.received_at_ms = 1770840600000LL;
        for (;;) {
                rec = malloc(size);
                cr_assert_not_null(rec);
                err = ab_avro_encode(codec(), &enc, rec, size, &len, errstr,
                                     sizeof(errstr));
                if (err != AB_ERR_TOO_LARGE) {
                        break;
                }
                free(rec);
                size = len;
        }
        cr_assert_eq(err, AB_OK, "encode: %s", errstr);
        memset(&t, 0, sizeof(t));
        cr_assert_eq(ab_avro_decode_view(codec(), rec, len, &t.v, errstr,
                                         sizeof(errstr)),
                     AB_OK, "decode: %s", errstr);
        free(rec);
        cr_assert_null(t.v.doc);
        cr_assert_not_null(t.v.payload_json);
        t.doc = doc;
        return t;
}

/* An event whose payload carries a string of \p pad bytes. */
static tev_t mkenv(int n, size_t pad) {
        char id[32], *fill;
        json_t *doc;

        snprintf(id, sizeof(id), "evt_%d", n);
        fill = malloc(pad + 1);
        cr_assert_not_null(fill);
        memset(fill, 'x', pad);
        fill[pad] = '\0';
        doc = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:{s:s}}", "id", id,
                        "name", "ProductViewed", "schemaVersion", 1,
                        "occurredAt", "2026-02-11T20:10:00.000Z", "source",
                        "storefront", "companyId", "c1", "payload", "pad",
                        fill);
        free(fill);
        cr_assert_not_null(doc);
        return mkview(doc);
}

static void tev_clear(tev_t *t) {
        ab_envelope_clear(&t->v);
        json_decref(t->doc);
        t->doc = NULL;
}

static size_t json_len(const tev_t *env) {
        return ab_json_dump(env->doc, NULL, 0, 0);
}

static void add_ok(sink_batch_t *b, int64_t off, int pad, int64_t now) {
        tev_t env = mkenv((int)off, (size_t)pad);
        char errstr[256] = "";

        cr_assert_eq(sink_batch_add(b, off, &env.v, now, errstr,
                                    sizeof(errstr)),
                     AB_OK, "offset %lld: %s", (long long)off, errstr);
        tev_clear(&env);
}

static json_t *body_json(sink_batch_t *b) {
        char errstr[256] = "";
        const char *body;
        size_t len;
        json_t *arr;

        body = sink_batch_body(b, &len);
        cr_assert_not_null(body);
        arr = ab_json_parse(body, len, 32, NULL, errstr, sizeof(errstr));
        cr_assert_not_null(arr, "body is not JSON: %s", errstr);
        cr_assert(json_is_array(arr));
        return arr;
}

Test(sink_batch, closes_at_max_events) {
        sink_batch_limits_t lim = {.max_events = 3};
        tev_t env = mkenv(9, 10);
        char errstr[256] = "";
        sink_batch_t *b;

        b = sink_batch_new(TOPIC, 2, &lim, errstr, sizeof(errstr));
        cr_assert_not_null(b, "%s", errstr);
        add_ok(b, 10, 10, 0);
        add_ok(b, 11, 10, 0);
        cr_expect_not(sink_batch_full(b));
        add_ok(b, 12, 10, 0);
        cr_expect(sink_batch_full(b));
        cr_expect_eq(sink_batch_add(b, 13, &env.v, 0, errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_expect_eq(sink_batch_count(b), 3);
        tev_clear(&env);
        sink_batch_destroy(b);
}

Test(sink_batch, defaults_are_the_issues) {
        char errstr[256] = "";
        sink_batch_t *b = sink_batch_new(TOPIC, 0, NULL, errstr, sizeof(errstr));
        int64_t i;

        cr_assert_not_null(b);
        for (i = 0; i < 499; i++) {
                add_ok(b, i, 1, 0);
        }
        cr_expect_not(sink_batch_full(b));
        add_ok(b, 499, 1, 0);
        cr_expect(sink_batch_full(b));
        cr_expect_eq(sink_batch_due_in(b, 0), 1000);
        sink_batch_destroy(b);
}

Test(sink_batch, byte_limit_is_checked_before_appending) {
        sink_batch_limits_t lim = {.max_bytes = 1000};
        tev_t env = mkenv(0, 100);
        char errstr[256] = "";
        size_t ev = json_len(&env), len, n = 0;
        const char *body;
        sink_batch_t *b, *next;
        ab_err_t err;

        b = sink_batch_new(TOPIC, 0, &lim, errstr, sizeof(errstr));
        cr_assert_not_null(b);
        for (;;) {
                tev_t e = mkenv((int)n, 100);

                err = sink_batch_add(b, (int64_t)n, &e.v, 0, errstr,
                                     sizeof(errstr));
                tev_clear(&e);
                if (err != AB_OK) {
                        break;
                }
                n++;
        }
        cr_assert_eq(err, AB_ERR_TOO_LARGE, "%s", errstr);
        /* As many as fit in "[" + n * ev + (n - 1) commas + "]". */
        cr_expect_eq(n, (1000 - 1) / (ev + 1));
        cr_expect_eq(sink_batch_count(b), n);
        body = sink_batch_body(b, &len);
        cr_expect_leq(len, 1000);
        cr_expect_eq(len, 2 + n * ev + (n - 1));
        cr_expect_eq(body[len - 1], ']');

        /* The refused event opens the next batch. */
        next = sink_batch_new(TOPIC, 0, &lim, errstr, sizeof(errstr));
        cr_assert_not_null(next);
        cr_expect_eq(sink_batch_add(next, (int64_t)n, &env.v, 0, errstr,
                                    sizeof(errstr)),
                     AB_OK);
        cr_expect_eq(sink_batch_first(next), (int64_t)n);
        tev_clear(&env);
        sink_batch_destroy(next);
        sink_batch_destroy(b);
}

Test(sink_batch, body_may_reach_the_limit_exactly) {
        tev_t a = mkenv(1, 50), c = mkenv(2, 50);
        size_t ev = json_len(&a), len;
        /* "[" a "," c "]" */
        sink_batch_limits_t lim = {.max_bytes = 2 * ev + 3};
        char errstr[256] = "";
        sink_batch_t *b;

        cr_assert_eq(json_len(&c), ev);
        b = sink_batch_new(TOPIC, 0, &lim, errstr, sizeof(errstr));
        cr_assert_not_null(b);
        cr_assert_eq(sink_batch_add(b, 1, &a.v, 0, errstr, sizeof(errstr)),
                     AB_OK);
        cr_assert_eq(sink_batch_add(b, 2, &c.v, 0, errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_expect(sink_batch_full(b));
        cr_expect_not_null(sink_batch_body(b, &len));
        cr_expect_eq(len, lim.max_bytes);
        sink_batch_destroy(b);

        lim.max_bytes--;
        b = sink_batch_new(TOPIC, 0, &lim, errstr, sizeof(errstr));
        cr_assert_not_null(b);
        cr_assert_eq(sink_batch_add(b, 1, &a.v, 0, errstr, sizeof(errstr)),
                     AB_OK);
        cr_expect_eq(sink_batch_add(b, 2, &c.v, 0, errstr, sizeof(errstr)),
                     AB_ERR_TOO_LARGE);
        cr_expect_eq(sink_batch_count(b), 1);
        sink_batch_destroy(b);
        tev_clear(&a);
        tev_clear(&c);
}

Test(sink_batch, oversized_event_goes_alone) {
        sink_batch_limits_t lim = {.max_bytes = 256};
        tev_t big = mkenv(5, 5000), small = mkenv(6, 1);
        char errstr[256] = "";
        const char *body;
        size_t len;
        sink_batch_t *b;
        json_t *arr;

        b = sink_batch_new(TOPIC, 0, &lim, errstr, sizeof(errstr));
        cr_assert_not_null(b);
        cr_assert_eq(sink_batch_add(b, 5, &big.v, 0, errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_expect(sink_batch_full(b));
        cr_expect_eq(sink_batch_add(b, 6, &small.v, 0, errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        body = sink_batch_body(b, &len);
        cr_assert_not_null(body);
        cr_expect_eq(len, json_len(&big) + 2);
        arr = body_json(b);
        cr_expect_eq(json_array_size(arr), 1);
        cr_expect(json_equal(json_array_get(arr, 0), big.doc));
        json_decref(arr);
        sink_batch_destroy(b);

        /* Into a batch that already holds something it does not fit. */
        b = sink_batch_new(TOPIC, 0, &lim, errstr, sizeof(errstr));
        cr_assert_not_null(b);
        add_ok(b, 4, 1, 0);
        cr_expect_eq(sink_batch_add(b, 5, &big.v, 0, errstr, sizeof(errstr)),
                     AB_ERR_TOO_LARGE);
        sink_batch_destroy(b);
        tev_clear(&big);
        tev_clear(&small);
}

Test(sink_batch, body_is_the_envelopes_exact_compact_json) {
        char errstr[256] = "", *expect, *one;
        tev_t env[4];
        size_t len, elen = 1;
        const char *body;
        sink_batch_t *b;
        json_t *arr;
        int i;

        b = sink_batch_new(TOPIC, 1, NULL, errstr, sizeof(errstr));
        cr_assert_not_null(b);
        expect = calloc(1, 8192);
        cr_assert_not_null(expect);
        expect[0] = '[';
        for (i = 0; i < 4; i++) {
                env[i] = mkenv(i, (size_t)(i * 300)); /* past 4 KiB: grows */
                cr_assert_eq(sink_batch_add(b, 100 + i, &env[i].v, 0, errstr,
                                            sizeof(errstr)),
                             AB_OK, "%s", errstr);
                one = json_dumps(env[i].doc, JSON_COMPACT);
                cr_assert_not_null(one);
                if (i) {
                        expect[elen++] = ',';
                }
                memcpy(expect + elen, one, strlen(one));
                elen += strlen(one);
                free(one);
        }
        expect[elen++] = ']';
        body = sink_batch_body(b, &len);
        cr_assert_eq(len, elen);
        cr_expect_eq(memcmp(body, expect, len), 0);
        /* Twice: the same bytes, and no more adds. */
        cr_expect_eq(sink_batch_body(b, &len), body);
        cr_expect_eq(len, elen);
        cr_expect_eq(sink_batch_add(b, 200, &env[0].v, 0, errstr,
                                    sizeof(errstr)),
                     AB_ERR_INVALID);
        arr = body_json(b);
        cr_assert_eq(json_array_size(arr), 4);
        for (i = 0; i < 4; i++) {
                cr_expect(json_equal(json_array_get(arr, (size_t)i),
                                     env[i].doc));
                tev_clear(&env[i]);
        }
        json_decref(arr);
        free(expect);
        sink_batch_destroy(b);
}

Test(sink_batch, offsets_must_go_up) {
        tev_t env = mkenv(1, 1);
        char errstr[256] = "";
        sink_batch_t *b = sink_batch_new(TOPIC, 0, NULL, errstr, sizeof(errstr));

        cr_assert_not_null(b);
        add_ok(b, 50, 1, 0);
        cr_expect_eq(sink_batch_add(b, 50, &env.v, 0, errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_expect_eq(sink_batch_add(b, 49, &env.v, 0, errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        /* A gap (a skipped undecodable record) is fine. */
        add_ok(b, 53, 1, 0);
        cr_expect_eq(sink_batch_first(b), 50);
        cr_expect_eq(sink_batch_last(b), 53);
        tev_clear(&env);
        cr_expect_eq(sink_batch_add(b, 60, &env.v, 0, errstr, sizeof(errstr)),
                     AB_ERR_INVALID, "an envelope that is not a view is refused");
        sink_batch_destroy(b);
}

Test(sink_batch, linger_runs_from_the_first_add) {
        sink_batch_limits_t lim = {.linger_ms = 1000};
        char errstr[256] = "";
        sink_batch_t *b = sink_batch_new(TOPIC, 0, &lim, errstr, sizeof(errstr));

        cr_assert_not_null(b);
        cr_expect_eq(sink_batch_due_in(b, 5000), -1);
        cr_expect_not(sink_batch_due(b, 999999));
        add_ok(b, 1, 1, 5000);
        add_ok(b, 2, 1, 5900);
        cr_expect_eq(sink_batch_due_in(b, 5000), 1000);
        cr_expect_eq(sink_batch_due_in(b, 5999), 1);
        cr_expect_not(sink_batch_due(b, 5999));
        cr_expect(sink_batch_due(b, 6000));
        cr_expect_eq(sink_batch_due_in(b, 7000), 0);
        sink_batch_destroy(b);
}

Test(sink_batch, key_names_the_offset_range_deterministically) {
        char errstr[256] = "", k1[SINK_BATCH_KEY_MAX], k2[SINK_BATCH_KEY_MAX];
        sink_batch_t *a = sink_batch_new(TOPIC, 7, NULL, errstr, sizeof(errstr));
        sink_batch_t *b = sink_batch_new(TOPIC, 7, NULL, errstr, sizeof(errstr));
        sink_batch_t *c = sink_batch_new(TOPIC, 8, NULL, errstr, sizeof(errstr));

        cr_assert(a && b && c);
        cr_expect_eq(sink_batch_key(a, k1, sizeof(k1)), AB_ERR_INVALID);
        add_ok(a, 100, 1, 0);
        add_ok(a, 101, 1, 0);
        /* different contents and clocks, same range: same key */
        add_ok(b, 100, 7, 33);
        add_ok(b, 101, 9, 34);
        add_ok(c, 100, 1, 0);
        add_ok(c, 101, 1, 0);
        cr_assert_eq(sink_batch_key(a, k1, sizeof(k1)), AB_OK);
        cr_assert_eq(sink_batch_key(b, k2, sizeof(k2)), AB_OK);
        cr_expect_str_eq(k1, "events.commerce/7/100-101");
        cr_expect_str_eq(k1, k2);
        cr_assert_eq(sink_batch_key(c, k2, sizeof(k2)), AB_OK);
        cr_expect_str_neq(k1, k2);
        add_ok(a, 102, 1, 0);
        cr_assert_eq(sink_batch_key(a, k1, sizeof(k1)), AB_OK);
        cr_expect_str_eq(k1, "events.commerce/7/100-102");
        cr_expect_eq(sink_batch_key(a, k1, 10), AB_ERR_INVALID);
        sink_batch_destroy(a);
        sink_batch_destroy(b);
        sink_batch_destroy(c);
}

Test(sink_batch, split_gives_halves_with_their_own_ranges) {
        char errstr[256] = "", key[SINK_BATCH_KEY_MAX];
        sink_batch_t *b, *l = NULL, *r = NULL;
        const char *json;
        json_t *arr, *orig;
        size_t len, i;
        int64_t off;

        b = sink_batch_new(TOPIC, 3, NULL, errstr, sizeof(errstr));
        cr_assert_not_null(b);
        for (i = 0; i < 5; i++) {
                add_ok(b, 10 + (int64_t)i * 2, (int)i, 0);
        }
        orig = body_json(b);
        cr_assert_eq(sink_batch_split(b, &l, &r, errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_expect_eq(sink_batch_count(l), 2);
        cr_expect_eq(sink_batch_count(r), 3);
        cr_expect_eq(sink_batch_first(l), 10);
        cr_expect_eq(sink_batch_last(l), 12);
        cr_expect_eq(sink_batch_first(r), 14);
        cr_expect_eq(sink_batch_last(r), 18);
        cr_expect_eq(sink_batch_partition(r), 3);
        cr_expect_str_eq(sink_batch_topic(r), TOPIC);
        cr_assert_eq(sink_batch_key(l, key, sizeof(key)), AB_OK);
        cr_expect_str_eq(key, "events.commerce/3/10-12");
        cr_assert_eq(sink_batch_key(r, key, sizeof(key)), AB_OK);
        cr_expect_str_eq(key, "events.commerce/3/14-18");

        arr = body_json(l);
        cr_assert_eq(json_array_size(arr), 2);
        for (i = 0; i < 2; i++) {
                cr_expect(json_equal(json_array_get(arr, i),
                                     json_array_get(orig, i)));
        }
        json_decref(arr);
        arr = body_json(r);
        cr_assert_eq(json_array_size(arr), 3);
        for (i = 0; i < 3; i++) {
                cr_expect(json_equal(json_array_get(arr, i),
                                     json_array_get(orig, i + 2)));
        }
        json_decref(arr);
        /* Each event is reachable with its offset. */
        cr_assert_eq(sink_batch_event(r, 1, &off, &json, &len), AB_OK);
        cr_expect_eq(off, 16);
        arr = ab_json_parse(json, len, 32, NULL, errstr, sizeof(errstr));
        cr_assert_not_null(arr, "%s", errstr);
        cr_expect(json_equal(arr, json_array_get(orig, 3)));
        json_decref(arr);
        cr_expect_eq(sink_batch_event(r, 3, &off, &json, &len),
                     AB_ERR_NOT_FOUND);
        /* The original is untouched. */
        cr_expect_eq(sink_batch_count(b), 5);
        json_decref(orig);
        sink_batch_destroy(l);
        sink_batch_destroy(r);
        sink_batch_destroy(b);
}

Test(sink_batch, bisect_down_to_single_events_covers_each_once) {
        sink_batch_t *stack[64], *b, *l, *r;
        char errstr[256] = "";
        int seen[37] = {0}, depth = 0, singles = 0;
        const char *json;
        size_t len;
        int64_t off;
        int i;

        b = sink_batch_new(TOPIC, 0, NULL, errstr, sizeof(errstr));
        cr_assert_not_null(b);
        for (i = 0; i < 37; i++) {
                add_ok(b, i, 3, 0);
        }
        /* The caller's loop: a stack of pending batches, no recursion. */
        stack[depth++] = b;
        while (depth) {
                b = stack[--depth];
                if (sink_batch_count(b) == 1) {
                        cr_assert_eq(sink_batch_event(b, 0, &off, &json, &len),
                                     AB_OK);
                        cr_assert_eq(sink_batch_first(b), off);
                        cr_assert_eq(sink_batch_last(b), off);
                        seen[off]++;
                        singles++;
                        sink_batch_destroy(b);
                        continue;
                }
                cr_assert_eq(sink_batch_split(b, &l, &r, errstr, sizeof(errstr)),
                             AB_OK);
                cr_assert_eq(sink_batch_count(l) + sink_batch_count(r),
                             sink_batch_count(b));
                cr_assert_lt(depth + 2, 64);
                stack[depth++] = r;
                stack[depth++] = l;
                sink_batch_destroy(b);
        }
        cr_expect_eq(singles, 37);
        for (i = 0; i < 37; i++) {
                cr_expect_eq(seen[i], 1, "offset %d seen %d times", i, seen[i]);
        }
}

Test(sink_batch, a_single_event_cannot_be_split) {
        char errstr[256] = "";
        sink_batch_t *b = sink_batch_new(TOPIC, 0, NULL, errstr, sizeof(errstr));
        sink_batch_t *l = NULL, *r = NULL;
        size_t len;

        cr_assert_not_null(b);
        cr_expect_null(sink_batch_body(b, &len));
        cr_expect_eq(len, 0);
        cr_expect_eq(sink_batch_split(b, &l, &r, errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        add_ok(b, 1, 1, 0);
        cr_expect_eq(sink_batch_split(b, &l, &r, errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_expect_null(l);
        cr_expect_null(r);
        cr_expect_null(sink_batch_new("", 0, NULL, errstr, sizeof(errstr)));
        sink_batch_destroy(b);
}

Test(sink_batch, strings_are_escaped_and_the_payload_spliced_as_stored) {
        char errstr[256] = "", *expect;
        const char *body;
        json_t *doc, *arr;
        sink_batch_t *b;
        size_t len;
        tev_t t;

        /* Quotes, a backslash, control characters, non-ASCII, a subjectId,
         * and a nested payload whose text must come back byte for byte. */
        doc = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:{s:[i,s,{s:b}],s:s}}",
                        "id", "q\"uo\\te\n\t\x01", "name", "ProductViewed",
                        "schemaVersion", 1, "occurredAt",
                        "2026-02-11T20:10:00.000Z", "source", "storefront",
                        "companyId", "c\xc3\xa9", "subjectId", "s/\x7f",
                        "payload", "a", 1, "two", "k", 1, "z",
                        "\xe2\x82\xac \"x\"");
        cr_assert_not_null(doc);
        t = mkview(doc);
        b = sink_batch_new(TOPIC, 0, NULL, errstr, sizeof(errstr));
        cr_assert_not_null(b);
        cr_assert_eq(sink_batch_add(b, 1, &t.v, 0, errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        body = sink_batch_body(b, &len);
        expect = json_dumps(t.doc, JSON_COMPACT);
        cr_assert_not_null(expect);
        cr_expect_eq(len, strlen(expect) + 2);
        cr_expect_eq(memcmp(body + 1, expect, strlen(expect)), 0, "%.*s",
                     (int)len, body);
        arr = body_json(b);
        cr_expect(json_equal(json_array_get(arr, 0), t.doc));
        json_decref(arr);
        free(expect);
        sink_batch_destroy(b);
        tev_clear(&t);
}

/* schemaVersion is written by hand, not by snprintf: the digits "%d"
 * gives, the sign and the extremes included. */
Test(sink_batch, schema_version_is_written_as_printf_does) {
        static const int versions[] = {0, 1, 9, 10, 99, 1000000, -1,
                                       2147483647, -2147483647 - 1};
        char errstr[256] = "", want[40];
        const char *body;
        sink_batch_t *b;
        size_t i, len;
        tev_t t;

        for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
                t = mkenv((int)i, 0);
                t.v.schema_version = versions[i];
                b = sink_batch_new(TOPIC, 0, NULL, errstr, sizeof(errstr));
                cr_assert_not_null(b);
                cr_assert_eq(sink_batch_add(b, 1, &t.v, 0, errstr,
                                            sizeof(errstr)),
                             AB_OK, "row %zu: %s", i, errstr);
                body = sink_batch_body(b, &len);
                snprintf(want, sizeof(want), ",\"schemaVersion\":%d,",
                         versions[i]);
                cr_expect_not_null(memmem(body, len, want, strlen(want)),
                                   "row %zu: %.*s", i, (int)len, body);
                sink_batch_destroy(b);
                tev_clear(&t);
        }
}

/* The size a backlog is measured by is the body's, before and after it
 * is closed. */
Test(sink_batch, size_is_the_length_of_the_body) {
        char errstr[256] = "";
        const char *body;
        sink_batch_t *b;
        size_t len, before;
        tev_t t[2];
        int i;

        b = sink_batch_new(TOPIC, 0, NULL, errstr, sizeof(errstr));
        cr_assert_not_null(b);
        cr_expect_eq(sink_batch_size(b), 2, "empty: []");
        for (i = 0; i < 2; i++) {
                t[i] = mkenv(i, 0);
                cr_assert_eq(sink_batch_add(b, i, &t[i].v, 0, errstr,
                                            sizeof(errstr)),
                             AB_OK, "%s", errstr);
        }
        before = sink_batch_size(b);
        body   = sink_batch_body(b, &len);
        cr_assert_not_null(body);
        cr_expect_eq(before, len, "open: the body it will be");
        cr_expect_eq(sink_batch_size(b), len, "closed");
        sink_batch_destroy(b);
        tev_clear(&t[0]);
        tev_clear(&t[1]);
}
