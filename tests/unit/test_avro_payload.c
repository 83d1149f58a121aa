/* aetherbus - Apache-2.0
 *
 * Unit tests of ab_avro_encode()'s payload writer: the payload field must
 * hold exactly the text json_dumpb(payload, JSON_COMPACT) writes (reals,
 * integers, escapes, UTF-8, key order, nesting), length-prefixed, for
 * small and large payloads (the in-place guess and the move).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "ab_avro.h"
#include "ab_catalog.h"
#include "ab_envelope.h"

static ab_catalog_t *cat;
static ab_avro_codec_t *codec;
static ab_envelope_limits_t limits;

static void setup(void) {
        char errstr[256] = "";

        cat = ab_catalog_new(errstr, sizeof(errstr));
        cr_assert_not_null(cat, "%s", errstr);
        codec = ab_avro_codec_new(NULL, errstr, sizeof(errstr));
        cr_assert_not_null(codec, "%s", errstr);
        ab_envelope_limits_default(&limits);
}

static void teardown(void) {
        ab_avro_codec_destroy(codec);
        ab_catalog_destroy(cat);
}

TestSuite(avro_payload, .init = setup, .fini = teardown);

static size_t zigzag_varint(size_t n, unsigned char *out) {
        uint64_t v = (uint64_t)n << 1;
        size_t i   = 0;

        while (v >= 0x80) {
                out[i++] = (unsigned char)(v | 0x80);
                v >>= 7;
        }
        out[i++] = (unsigned char)v;
        return i;
}

/* Encodes an envelope around \p payload_text and checks that the record
 * holds varint(len) + json_dumpb(payload). */
static void payload_as_jansson(const char *payload_text, int row) {
        char item[70000];
        char errstr[256] = "";
        ab_envelope_ctx_t ctx;
        ab_envelope_t env;
        json_t *doc;
        char *want;
        unsigned char *rec, *pat;
        size_t want_len, len, vl;
        unsigned char varint[10];
        ab_err_t err;

        snprintf(item, sizeof(item),
                 "{\"id\":\"e1\",\"name\":\"ProductViewed\",\"schemaVersion\":1,"
                 "\"occurredAt\":\"2026-02-11T20:10:00.000Z\",\"source\":"
                 "\"storefront\",\"payload\":%s}",
                 payload_text);
        doc = ab_envelope_json_parse(item, strlen(item), &limits, &err, errstr,
                                     sizeof(errstr));
        cr_assert_not_null(doc, "row %d: %s", row, errstr);
        memset(&ctx, 0, sizeof(ctx));
        memset(&env, 0, sizeof(env));
        ctx.catalog = cat;
        ctx.limits  = &limits;
        ctx.form    = AB_FORM_INGEST;
        cr_assert_eq(ab_envelope_from_json(&env, doc, &ctx, errstr,
                                           sizeof(errstr)),
                     AB_OK, "row %d: %s", row, errstr);
        json_decref(doc);
        ab_envelope_set_received(&env, 1770840600000LL);

        want     = json_dumps(env.payload, JSON_COMPACT);
        want_len = strlen(want);
        vl       = zigzag_varint(want_len, varint);
        pat      = malloc(vl + want_len);
        memcpy(pat, varint, vl);
        memcpy(pat + vl, want, want_len);

        /* A buffer that is too small first: the size must be exact. */
        rec = malloc(1);
        err = ab_avro_encode(codec, &env, (char *)rec, 1, &len, errstr,
                             sizeof(errstr));
        cr_assert_eq(err, AB_ERR_TOO_LARGE, "row %d", row);
        free(rec);
        rec = malloc(len);
        cr_assert_eq(ab_avro_encode(codec, &env, (char *)rec, len, &len,
                                    errstr, sizeof(errstr)),
                     AB_OK, "row %d: %s", row, errstr);
        cr_assert_not_null(memmem(rec, len, pat, vl + want_len),
                           "row %d: payload is not %s", row, want);
        free(rec);
        free(pat);
        free(want);
        ab_envelope_clear(&env);
}

Test(avro_payload, holds_the_text_json_dumpb_writes) {
        static const char *const rows[] = {
            "{}",
            "{\"productId\":\"p1\",\"sku\":\"SKU-001\"}",
            "{\"z\":1,\"a\":2,\"m\":[]}",
            "{\"total\":129.9,\"n\":-0.0,\"big\":1e300,\"small\":1e-300,"
            "\"e\":2.5e-7,\"i\":1.0,\"neg\":-12345678901234,\"zero\":0,"
            "\"max\":9223372036854775807,\"min\":-9223372036854775808}",
            "{\"x\":0.1,\"y\":100000000000000000000.0,\"z\":123456789.125}",
            "{\"t\":true,\"f\":false,\"n\":null,\"a\":[1,[2,[3,{}]]]}",
            "{\"s\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\"}",
            "{\"caf\\u00e9\":\"\\u20ac \\ud83d\\ude00 \xc3\xa9\"}",
            "{\"k\\n\\\"ey\":\"v\"}",
        };
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                payload_as_jansson(rows[i], (int)i);
        }
}

Test(avro_payload, holds_the_text_json_dumpb_writes_when_large) {
        static char text[60000];
        size_t of = 0;
        int i;

        of += (size_t)sprintf(text + of, "{\"items\":[");
        for (i = 0; i < 800; i++) {
                of += (size_t)sprintf(text + of, "%s{\"sku\":\"SKU-%04d\",\"qty\":%d,"
                                                 "\"price\":%d.%02d}",
                                      i ? "," : "", i, i, i, i % 100);
        }
        sprintf(text + of, "]}");
        payload_as_jansson(text, 0);
}

Test(avro_payload, holds_the_text_json_dumpb_writes_when_deep) {
        static char text[4096];
        size_t of = 0;
        int i;

        /* Nested to the parser's depth limit. */
        for (i = 0; i < 31; i++) {
                of += (size_t)sprintf(text + of, "{\"a\":");
        }
        of += (size_t)sprintf(text + of, "1");
        for (i = 0; i < 31; i++) {
                text[of++] = '}';
        }
        text[of] = '\0';
        payload_as_jansson(text, 0);
}
