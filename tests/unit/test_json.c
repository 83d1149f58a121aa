/* aetherbus - Apache-2.0
 *
 * Unit tests of ab_json. The parser's fast path: for every input it
 * must give what json_loadb(JSON_REJECT_DUPLICATES) gives, the same
 * document (types, values, key order) or the same error text. One table of
 * tricky inputs (numbers, escapes, surrogates, UTF-8, duplicates,
 * whitespace, trailing data) and the schema fixtures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "ab_json.h"

#define FIXTURES AB_SCHEMA_DIR "/fixtures/"

/* The document as text; integers and reals print differently (1 vs 1.0),
 * so equal texts mean equal types too. */
static char *dump(const json_t *doc) {
        return json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Checks one input against jansson; row names the failing row. */
static void same_as_jansson(const char *text, size_t len, int row) {
        json_error_t jerr;
        json_t *want, *got;
        char errstr[512] = "";
        char want_err[512];
        ab_err_t err;
        char *a, *b;

        want = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        got  = ab_json_parse(text, len, 32, &err, errstr, sizeof(errstr));
        if (!want) {
                snprintf(want_err, sizeof(want_err),
                         "JSON: %s at line %d, column %d", jerr.text,
                         jerr.line, jerr.column);
                cr_assert_null(got, "row %d: jansson refuses it (%s)", row,
                               want_err);
                cr_assert_eq(err, AB_ERR_MALFORMED, "row %d", row);
                cr_assert_str_eq(errstr, want_err, "row %d", row);
                return;
        }
        cr_assert_not_null(got, "row %d: jansson accepts it, got %s", row,
                           errstr);
        a = dump(want);
        b = dump(got);
        cr_assert_str_eq(b, a, "row %d", row);
        free(a);
        free(b);
        json_decref(want);
        json_decref(got);
}

Test(json, parse_gives_the_document_or_error_jansson_gives) {
        static const char *const rows[] = {
            "{}", "[]", " \t\r\n{ } \n", "[1,2,3]", "[ 1 , 2 ]",
            "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}",
            "{\"z\":1,\"a\":2,\"m\":3}", /* key order kept */
            /* numbers */
            "[0]", "[-0]", "[-1]", "[123456789012345678]",
            "[-123456789012345678]", "[1234567890123456789]",
            "[9223372036854775807]", "[9223372036854775808]",
            "[-9223372036854775808]", "[-9223372036854775809]",
            "[1.5]", "[-0.0]", "[1e5]", "[1E+5]", "[1e-5]", "[2.5e-3]",
            "[1e400]", "[-1e400]", "[1e-400]", "[0.1]", "[129.9]",
            "[01]", "[-]", "[1.]", "[.5]", "[1e]", "[1e+]", "[+1]",
            "[1.5.5]", "[0x10]", "[1 2]", "[Infinity]", "[NaN]",
            "[12345678901234567890123456789012345678901234567890123456789"
            "0123456789.5]",
            /* literals */
            "[true]", "[tru]", "[truex]", "[nul]", "[falsey]", "[True]",
            /* strings and escapes */
            "[\"\"]", "[\"plain\"]", "[\"a\\\"b\"]", "[\"a\\\\b\"]",
            "[\"a\\/b\"]", "[\"\\b\\f\\n\\r\\t\"]", "[\"\\u0041\"]",
            "[\"\\u00e9\"]", "[\"\\u20AC\"]", "[\"\\uD83D\\uDE00\"]",
            "[\"\\u0000\"]", "[\"a\\u0000b\"]", "[\"\\uD83D\"]",
            "[\"\\uDE00\"]", "[\"\\uD83Dx\"]", "[\"\\uD83D\\u0041\"]",
            "[\"\\u12\"]", "[\"\\uZZZZ\"]", "[\"\\x\"]", "[\"\\\"]",
            "[\"a\tb\"]", "[\"a\nb\"]", "[\"a\x01\"]", "[\"unterminated]",
            /* UTF-8 */
            "[\"caf\xc3\xa9\"]", "[\"\xe2\x82\xac\"]",
            "[\"\xf0\x9f\x98\x80\"]", "[\"\xc3\"]", "[\"\xc0\xaf\"]",
            "[\"\xe0\x80\xaf\"]", "[\"\xed\xa0\x80\"]",
            "[\"\xf4\x90\x80\x80\"]", "[\"\xff\"]", "[\"\x80\"]",
            "[\"\xf0\x9f\x98\"]", "{\"caf\xc3\xa9\":1}", "[\xc3\xa9]",
            /* keys */
            "{\"a\":1,\"a\":2}", "{\"a\\u0062\":1}", "{\"a\\u0062\":1,\"ab\":2}",
            "{\"\":1}", "{\"a\\\"\":1}", "{a:1}", "{\"a\" 1}", "{\"a\":}",
            "{\"a\":1,}", "[1,]", "{,}", "[,]", "{\"a\":1 \"b\":2}",
            "{\"x\":{\"a\":1,\"a\":1}}",
            /* top level and trailing data */
            "", " ", "1", "\"s\"", "true", "null", "{}x", "{} {}", "[]]",
            "{", "[", "{\"a\":[1,2}", "[{]}",
        };
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                same_as_jansson(rows[i], strlen(rows[i]), (int)i);
        }
}

Test(json, parse_gives_jansson_s_document_for_a_nul_byte) {
        static const char text[] = "[\"a\0b\"]";

        same_as_jansson(text, sizeof(text) - 1, 0);
}

Test(json, parse_gives_jansson_s_documents_for_the_fixtures) {
        static const char *const files[] = {
            "spec-example.json", "v1-events.json",   "bus-examples.json",
            "invalid-envelopes.json", "v2-event.json",
        };
        char path[512];
        char *text;
        size_t i, len;
        long n;
        FILE *f;

        for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                snprintf(path, sizeof(path), FIXTURES "%s", files[i]);
                f = fopen(path, "rb");
                cr_assert_not_null(f, "%s", path);
                fseek(f, 0, SEEK_END);
                n = ftell(f);
                fseek(f, 0, SEEK_SET);
                text = malloc((size_t)n + 1);
                len  = fread(text, 1, (size_t)n, f);
                fclose(f);
                same_as_jansson(text, len, (int)i);
                free(text);
        }
}

/*
 * Writer
 */

/* Documents whose compact text has every rule of jansson's writer. */
static const char *const dump_rows[] = {
        "{}",
        "[]",
        "{\"a\":[]}",
        "{\"a\":{},\"b\":[{},[],[[]]]}",
        "{\"r\":[0.1,1e300,-0.0,1.5e-7,2.5,100.0,1e22,1e21,-1e-300,"
        "123456789.125,5e-324,1.7976931348623157e308,0.30000000000000004]}",
        "{\"i\":[0,-1,9,10,-10,9223372036854775807,"
        "-9223372036854775808,1000000]}",
        "{\"s\":\"\\u0001\\u001f\\u007f\\b\\f\\n\\r\\t\\\"\\\\/\"}",
        "{\"u\":\"\\u00e9\\u4e2d\\ud83d\\ude00\",\"\\u00e9k\\n\":1}",
        "{\"t\":true,\"f\":false,\"n\":null}",
        "[1,\"x\",[2,{\"k\":[3.5]}],{}]",
        "{\"deep\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
};

Test(json, dump_writes_what_json_dumpb_writes) {
        char want[1024], got[1024];
        size_t i, n, m;
        json_t *doc;

        for (i = 0; i < sizeof(dump_rows) / sizeof(dump_rows[0]); i++) {
                doc = json_loads(dump_rows[i], 0, NULL);
                cr_assert_not_null(doc, "row %zu", i);
                n = json_dumpb(doc, want, sizeof(want), JSON_COMPACT);
                memset(got, 0, sizeof(got));
                m = ab_json_dump(doc, got, sizeof(got), 0);
                cr_assert_eq(m, n, "row %zu", i);
                cr_assert_eq(memcmp(got, want, n), 0, "row %zu: %.*s", i,
                             (int)m, got);
                json_decref(doc);
        }
}

Test(json, dump_counts_the_size_when_out_of_room) {
        char want[1024], got[1024];
        size_t i, n;
        json_t *doc;

        for (i = 0; i < sizeof(dump_rows) / sizeof(dump_rows[0]); i++) {
                doc = json_loads(dump_rows[i], 0, NULL);
                n   = json_dumpb(doc, want, sizeof(want), JSON_COMPACT);
                cr_assert_eq(ab_json_dump(doc, NULL, 0, 0), n, "row %zu", i);
                cr_assert_eq(ab_json_dump(doc, got, n - 1, 0), n, "row %zu",
                             i);
                cr_assert_geq(ab_json_dump(doc, NULL, 0, AB_JSON_BOUND), n,
                              "row %zu", i);
                json_decref(doc);
        }
}

Test(json, dump_is_exact_past_its_stack_depth) {
        json_t *doc = json_array(), *inner = doc, *next;
        char *want, *got;
        size_t i, n;

        for (i = 0; i < 100; i++) {
                next = json_object();
                json_array_append_new(inner, next);
                inner = json_object();
                json_object_set_new(next, "k", inner);
        }
        want = json_dumps(doc, JSON_COMPACT);
        n    = strlen(want);
        got  = malloc(n);
        cr_assert_eq(ab_json_dump(doc, NULL, 0, 0), n);
        cr_assert_eq(ab_json_dump(doc, got, n, 0), n);
        cr_assert_eq(memcmp(got, want, n), 0);
        free(got);
        free(want);
        json_decref(doc);
}

Test(json, dump_refuses_what_json_dumpb_refuses) {
        json_t *doc = json_object(), *s = json_integer(1);

        /* invalid UTF-8 (json_stringn_nocheck does not check) */
        json_object_set_new(doc, "s", json_stringn_nocheck("\xc3(", 2));
        cr_assert_eq(json_dumpb(doc, NULL, 0, JSON_COMPACT), 0);
        cr_assert_eq(ab_json_dump(doc, NULL, 0, 0), 0);
        /* a scalar without JSON_ENCODE_ANY */
        cr_assert_eq(ab_json_dump(s, NULL, 0, 0), 0);
        json_decref(s);
        json_decref(doc);
}

Test(json, dump_string_writes_what_jansson_writes_for_a_string) {
        static const char *const cases[] = {
            "", "plain", "q\"uote", "back\\slash", "nl\n tab\t cr\r",
            "\x01\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
            "slash/ bs\b ff\f",
        };
        char buf[128], *want;
        size_t i, n;
        json_t *s;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                s    = json_string(cases[i]);
                want = json_dumps(s, JSON_ENCODE_ANY | JSON_COMPACT);
                cr_assert_not_null(want);
                n = ab_json_dump_string(cases[i], strlen(cases[i]), buf,
                                        sizeof(buf));
                cr_expect_eq(n, strlen(want), "case %zu", i);
                cr_expect_eq(memcmp(buf, want, n), 0, "case %zu: %.*s", i,
                             (int)n, buf);
                /* sized without a buffer, and written only within size */
                cr_expect_eq(ab_json_dump_string(cases[i], strlen(cases[i]),
                                                 NULL, 0),
                             n);
                memset(buf, 'Z', sizeof(buf));
                cr_expect_eq(ab_json_dump_string(cases[i], strlen(cases[i]),
                                                 buf, 1),
                             n);
                cr_expect_eq(buf[1], 'Z', "case %zu: wrote past size", i);
                free(want);
                json_decref(s);
        }
        cr_expect_eq(ab_json_dump_string("bad \xc3(", 6, buf, sizeof(buf)), 0,
                     "invalid UTF-8");
        cr_expect_eq(ab_json_dump_string(NULL, 0, buf, sizeof(buf)), 0);
}

/* Plain bytes are skipped eight at a time: an escape or a multi-byte
 * character is written as jansson writes it wherever it sits. */
Test(json, dump_string_escapes_at_every_position) {
        static const char *const ins[] = {"\"", "\\", "\x01", "\x1f", "\n",
                                          "\x7f", " ", "~", "\xc3\xa9",
                                          "\xf0\x9f\x98\x80"};
        char str[32], buf[256], *want;
        size_t r, pos, n, len;
        json_t *s;

        for (r = 0; r < sizeof(ins) / sizeof(ins[0]); r++) {
                for (pos = 0; pos + strlen(ins[r]) <= 24; pos++) {
                        memset(str, 'a', 24);
                        memcpy(str + pos, ins[r], strlen(ins[r]));
                        str[24] = '\0';
                        len     = 24;
                        s       = json_string(str);
                        cr_assert_not_null(s, "row %zu at %zu", r, pos);
                        want = json_dumps(s, JSON_ENCODE_ANY | JSON_COMPACT);
                        cr_assert_not_null(want);
                        n = ab_json_dump_string(str, len, buf, sizeof(buf));
                        cr_expect_eq(n, strlen(want), "row %zu at %zu", r, pos);
                        cr_expect_eq(memcmp(buf, want, n), 0,
                                     "row %zu at %zu: %.*s", r, pos, (int)n,
                                     buf);
                        free(want);
                        json_decref(s);
                }
        }
        memset(str, 'a', 24);
        str[13] = '\xff';
        cr_expect_eq(ab_json_dump_string(str, 24, buf, sizeof(buf)), 0,
                     "invalid UTF-8 past the first word");
}

/* The member text is the client's bytes, compacted: numbers and escapes
 * as sent; the tree of the same text, re-parsed, is the parsed member. */
static void member_case(const char *body, size_t cnt, const char *const *want) {
        ab_json_text_t texts[8];
        size_t len = strlen(body), i;
        char *buf = strdup(body);
        json_t *doc, *item, *mine, *tree;

        /* compacted in place: the texts point into the rewritten copy */
        cr_assert_eq(ab_json_member_texts(buf, len, "payload", texts, cnt),
                     AB_OK, "%s", body);
        doc = json_loads(body, JSON_DECODE_ANY, NULL);
        cr_assert_not_null(doc);
        for (i = 0; i < cnt; i++) {
                if (!want[i]) {
                        cr_expect_null(texts[i].p, "%s: item %zu", body, i);
                        continue;
                }
                cr_assert_not_null(texts[i].p, "%s: item %zu", body, i);
                cr_assert(texts[i].p >= buf && texts[i].p + texts[i].len <= buf + len);
                cr_expect_eq(texts[i].len, strlen(want[i]), "%s: item %zu: %.*s",
                             body, i, (int)texts[i].len, texts[i].p);
                cr_expect_eq(memcmp(texts[i].p, want[i], texts[i].len), 0,
                             "%s: item %zu: %.*s", body, i, (int)texts[i].len,
                             texts[i].p);
                item = json_is_array(doc) ? json_array_get(doc, i) : doc;
                tree = json_object_get(item, "payload");
                mine = json_loadb(texts[i].p, texts[i].len, JSON_DECODE_ANY, NULL);
                cr_expect(json_equal(mine, tree), "%s: item %zu", body, i);
                json_decref(mine);
        }
        json_decref(doc);
        free(buf);
}

Test(json, member_texts_keep_numbers_and_escapes_as_sent) {
        static const char *const w1[] = {"{\"amount\":19.99,\"n\":[1e2,0.10,-0,1E-7]}"};
        static const char *const w2[] = {"{\"s\":\"a\\u00e9\\/b\\\"}\"}", NULL,
                                         "12345678901234567.50"};
        static const char *const w3[] = {"{\"x\":{\"payload\":1}}"};
        static const char *const w4[] = {NULL, "[]", NULL};

        member_case("{\"id\":\"a\",\"payload\" : { \"amount\" : 19.99 ,\n"
                    "\"n\":[ 1e2, 0.10 ,-0,1E-7 ] } }",
                    1, w1);
        /* a key written with escapes is the same key */
        member_case("[{\"p\\u0061yload\":{\"s\":\"a\\u00e9\\/b\\\"}\"}},"
                    " {\"payloadx\":1, \"xpayload\":2},"
                    "{\"payload\":12345678901234567.50}]",
                    3, w2);
        /* only the item's own member, not a nested one */
        member_case("{\"payload\":{\"x\":{\"payload\":1}}}", 1, w3);
        /* items that are not objects, and empty containers */
        member_case("[42, {\"payload\":[]}, \"payload\"]", 3, w4);
}

Test(json, member_texts_refuse_what_is_not_a_body_and_stay_in_bounds) {
        static const char *const bad[] = {
            "", "{", "[", "{\"payload\":", "{\"payload\":[1,2}", "{\"a\" 1}",
            "{\"payload\":\"abc}", "[{\"payload\":1},", "{\"payload\":]}",
            "{\"p\\u00", "\"just a string\"", "[1 2", "{\"payload\":{\"a\":\"\\",
        };
        ab_json_text_t t[2];
        char *copy;
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                /* exactly the bytes: a scan past them is ASan's to see */
                copy = malloc(strlen(bad[i]) + 1);
                memcpy(copy, bad[i], strlen(bad[i]) + 1);
                cr_expect_eq(ab_json_member_texts(copy, strlen(bad[i]), "payload",
                                                  t, 2),
                             AB_ERR_MALFORMED, "%s", bad[i]);
                cr_expect_null(t[0].p, "%s", bad[i]);
                free(copy);
        }
}
