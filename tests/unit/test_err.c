/* aetherbus - Apache-2.0
 *
 * Unit tests of ab_err: the table (every code has a name, a description
 * and a status), and error texts that stay valid UTF-8 whatever they
 * quote: the sanitiser on each kind of bad byte, truncation that never
 * splits a sequence, and agreement with jansson and ab_json_utf8_seq.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "ab_err.h"
#include "ab_json.h"

/* errstr is valid UTF-8 by jansson's own judgement. */
static void assert_json_ok(const char *errstr) {
        json_t *j = json_string(errstr);

        cr_assert_not_null(j, "jansson refuses \"%s\"", errstr);
        json_decref(j);
}

Test(err, every_code_has_a_name_a_description_and_a_status) {
        int e;

        for (e = 0; e < AB_ERR__CNT; e++) {
                cr_assert_neq(strcmp(ab_err2name((ab_err_t)e), "?"), 0,
                              "code %d has no name", e);
                cr_assert_neq(strcmp(ab_err2str((ab_err_t)e),
                                     "Unknown error code"),
                              0, "code %d has no description", e);
                cr_assert(ab_err2http((ab_err_t)e) >= 200 &&
                              ab_err2http((ab_err_t)e) < 600,
                          "code %d", e);
        }
        cr_assert_str_eq(ab_err2name(AB_ERR__CNT), "?");
        cr_assert_eq(ab_err2http(AB_ERR_MALFORMED), 400);
}

/* Each bad input, quoted by an error text, comes out as \xNN. */
Test(err, invalid_utf8_in_a_quoted_text_becomes_hex_escapes) {
        static const struct {
                const char *in;
                const char *want;
        } cases[] = {
            /* the parser's text for {"a":"\é"}: a cut 2-byte sequence */
            {"invalid escape near '\"\\\xC3'", "invalid escape near '\"\\\\xC3'"},
            {"lone continuation \x80 byte", "lone continuation \\x80 byte"},
            {"truncated 3-byte \xE2\x82 end", "truncated 3-byte \\xE2\\x82 end"},
            {"truncated 4-byte \xF0\x9F\x98", "truncated 4-byte \\xF0\\x9F\\x98"},
            {"overlong slash \xC0\xAF", "overlong slash \\xC0\\xAF"},
            {"overlong 3 \xE0\x80\xAF", "overlong 3 \\xE0\\x80\\xAF"},
            {"overlong 4 \xF0\x80\x80\xAF", "overlong 4 \\xF0\\x80\\x80\\xAF"},
            {"surrogate \xED\xA0\x80", "surrogate \\xED\\xA0\\x80"},
            {"low surrogate \xED\xBF\xBF", "low surrogate \\xED\\xBF\\xBF"},
            {"above U+10FFFF \xF4\x90\x80\x80",
             "above U+10FFFF \\xF4\\x90\\x80\\x80"},
            {"not a lead \xF8\x88\x80\x80\x80",
             "not a lead \\xF8\\x88\\x80\\x80\\x80"},
            {"\xFF\xFE", "\\xFF\\xFE"},
            /* valid text is left alone, controls included */
            {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 tab\t",
             "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 tab\t"},
        };
        char errstr[256];
        size_t i;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                ab_errstr_set(errstr, sizeof(errstr), "%s", cases[i].in);
                cr_assert_str_eq(errstr, cases[i].want, "case %zu", i);
                assert_json_ok(errstr);
                /* the same through a format with other arguments */
                ab_errstr_set(errstr, sizeof(errstr), "field %d: %s", 7,
                              cases[i].in);
                cr_assert(!strncmp(errstr, "field 7: ", 9), "%s", errstr);
                cr_assert_str_eq(errstr + 9, cases[i].want, "case %zu", i);
                assert_json_ok(errstr);
        }
}

Test(err, truncation_never_splits_a_sequence_or_an_escape) {
        const char *in = "\xC3\xA9\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xFF"
                         "\xC3\xA9";
        char big[64];
        char errstr[64];
        size_t size, len;

        ab_errstr_set(big, sizeof(big), "%s", in);
        cr_assert_str_eq(big, "\xC3\xA9\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"
                              "\\xFF\xC3\xA9");
        /* Every buffer size gives a valid prefix of the full text. */
        for (size = 1; size <= sizeof(errstr); size++) {
                memset(errstr, 'Z', sizeof(errstr));
                ab_errstr_set(errstr, size, "%s", in);
                len = strlen(errstr);
                cr_assert_lt(len, size, "size %zu", size);
                cr_assert(ab_err_utf8_valid(errstr, len), "size %zu: %s",
                          size, errstr);
                cr_assert(!strncmp(errstr, big, len), "size %zu: %s is not "
                          "a prefix of %s", size, errstr, big);
                assert_json_ok(errstr);
        }
        /* size 0 and NULL are no-ops */
        errstr[0] = 'Q';
        ab_errstr_set(errstr, 0, "%s", in);
        cr_assert_eq(errstr[0], 'Q');
        ab_errstr_set(NULL, 10, "%s", in);
}

Test(err, a_long_text_over_the_stack_copy_is_cleaned_too) {
        size_t n = 3000, i;
        char *in, *out;

        in  = malloc(n + 1);
        out = malloc(4 * n + 1);
        cr_assert(in && out);
        for (i = 0; i < n; i++) {
                in[i] = (char)(i % 3 ? 'a' : 0xFF);
        }
        in[n] = '\0';
        ab_errstr_set(out, 4 * n + 1, "%s", in);
        cr_assert_eq(strlen(out), n / 3 * 4 + (n - n / 3), "%zu",
                     strlen(out));
        cr_assert(!strncmp(out, "\\xFFaa\\xFF", 10), "%.16s", out);
        assert_json_ok(out);
        free(in);
        free(out);
}

Test(err, clean_escapes_a_nul_and_stops_at_the_buffer_end) {
        char out[16];

        cr_assert_eq(ab_err_utf8_clean(out, sizeof(out), "a\0b", 3), 6);
        cr_assert_str_eq(out, "a\\x00b");
        cr_assert_eq(ab_err_utf8_clean(out, 4, "ab\xFF", 3), 2);
        cr_assert_str_eq(out, "ab");
        cr_assert_eq(ab_err_utf8_clean(out, 0, "ab", 2), 0);
        cr_assert(!ab_err_utf8_valid("a\0b", 3));
        cr_assert(ab_err_utf8_valid("", 0));
}

/* ab_err's rules are ab_json_utf8_seq's (and jansson's) for every lead
 * byte and every second byte, with the rest of a sequence filled in. */
Test(err, validity_agrees_with_ab_json_and_jansson) {
        unsigned char s[4];
        unsigned a, b;
        size_t n, k;
        json_t *j;
        int mine, theirs, jans;

        for (a = 0x80; a <= 0xFF; a++) {
                for (b = 0; b <= 0xFF; b++) {
                        for (k = 2; k <= 4; k++) {
                                s[0] = (unsigned char)a;
                                s[1] = (unsigned char)b;
                                s[2] = 0x80 | (unsigned char)(b & 0x3F);
                                s[3] = 0xBF;
                                mine = ab_err_utf8_valid((char *)s, k);
                                n    = ab_json_utf8_seq(s, s + k);
                                theirs = n == k;
                                j      = json_stringn((char *)s, k);
                                jans   = j != NULL;
                                json_decref(j);
                                cr_assert_eq(mine, jans,
                                             "%02x %02x len %zu: ab_err %d "
                                             "jansson %d",
                                             a, b, k, mine, jans);
                                if (b >= 0x80) {
                                        cr_assert_eq(mine, theirs,
                                                     "%02x %02x len %zu", a,
                                                     b, k);
                                }
                        }
                }
        }
}
