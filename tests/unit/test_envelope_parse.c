/* aetherbus - Apache-2.0
 *
 * Unit tests of ab_envelope_json_parse()'s fast path: for every input it
 * must give what json_loadb(JSON_REJECT_DUPLICATES) gives, the same
 * document (types, values, key order) or the same error text. One table of
 * tricky inputs (numbers, escapes, surrogates, UTF-8, duplicates,
 * whitespace, trailing data) and the schema fixtures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "ab_envelope.h"

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
        got  = ab_envelope_json_parse(text, len, NULL, &err, errstr,
                                      sizeof(errstr));
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

Test(envelope_parse, gives_the_document_or_error_jansson_gives) {
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

Test(envelope_parse, gives_jansson_s_document_for_a_nul_byte) {
        static const char text[] = "[\"a\0b\"]";

        same_as_jansson(text, sizeof(text) - 1, 0);
}

Test(envelope_parse, gives_jansson_s_documents_for_the_fixtures) {
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
