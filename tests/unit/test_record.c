/* aetherbus - Apache-2.0
 *
 * Unit tests of ab_record: a rejection is always writable. Client text
 * that is not UTF-8 (tenant, reason, body) is kept byte by byte as \xNN;
 * an original too large for Kafka is cut to its head with its size and
 * SHA-256; an unparseable body over the text limit is flagged the same
 * way; the client is carried in the value and in ce_authid; encode and
 * decode agree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/sha.h>

#include "ab_cloudevents.h"
#include "ab_record.h"

static json_t *encode(const ab_record_failure_t *f, size_t *lenp) {
        char errstr[256];
        char *val = ab_record_failure_encode(f, lenp, errstr, sizeof(errstr));
        json_t *doc;

        cr_assert_not_null(val, "%s", errstr);
        doc = json_loads(val, 0, NULL);
        cr_assert_not_null(doc, "not JSON: %s", val);
        free(val);
        return doc;
}

static void sha_hex(const void *p, size_t n, char out[65]) {
        unsigned char md[SHA256_DIGEST_LENGTH];
        int i;

        SHA256(p, n, md);
        for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
                snprintf(out + 2 * i, 3, "%02x", md[i]);
        }
}

Test(record, text_that_is_not_utf8_is_kept_as_escapes) {
        ab_record_failure_t f;
        json_t *doc;
        size_t len;

        ab_record_failure_init(&f, AB_RECORD_REJECTED);
        f.reason            = "bad \xC3";
        f.tenant            = "t\xFF\xED\xA0\x80";
        f.original_text     = "{\"a\":\"\xE9\"}";
        f.original_text_len = strlen(f.original_text);
        doc                 = encode(&f, &len);
        cr_assert_str_eq(json_string_value(json_object_get(doc, "tenant")),
                         "t\\xFF\\xED\\xA0\\x80");
        cr_assert_str_eq(json_string_value(json_object_get(doc, "reason")),
                         "bad \\xC3");
        cr_assert_str_eq(json_string_value(json_object_get(doc, "originalText")),
                         "{\"a\":\"\\xE9\"}");
        cr_assert_null(json_object_get(doc, "truncated"));
        json_decref(doc);
}

Test(record, an_original_too_large_for_kafka_is_cut_with_size_and_digest) {
        ab_record_failure_t f;
        json_t *orig, *doc;
        char *big, *dump, hex[65];
        size_t len, n = 200000;

        big = malloc(n + 1);
        memset(big, 'x', n);
        big[n] = '\0';
        orig   = json_pack("{s:s,s:s}", "id", "e1", "blob", big);
        dump   = json_dumps(orig, JSON_COMPACT);
        sha_hex(dump, strlen(dump), hex);

        ab_record_failure_init(&f, AB_RECORD_REJECTED);
        f.reason   = "payload: too large";
        f.code     = "TOO_LARGE";
        f.client   = "shop";
        f.original = orig;
        f.max_len  = 100000;
        doc        = encode(&f, &len);
        cr_assert(len <= f.max_len, "%zu > %zu", len, f.max_len);
        cr_assert_null(json_object_get(doc, "original"));
        cr_assert_eq(json_is_true(json_object_get(doc, "truncated")), 1);
        cr_assert_eq(json_integer_value(json_object_get(doc, "originalSize")),
                     (json_int_t)strlen(dump));
        cr_assert_str_eq(json_string_value(json_object_get(doc, "originalSha256")),
                         hex);
        cr_assert_eq(json_string_length(json_object_get(doc, "originalText")),
                     AB_RECORD_TEXT_MAX);
        cr_assert_eq(strncmp(json_string_value(json_object_get(doc, "originalText")),
                             dump, AB_RECORD_TEXT_MAX), 0);
        cr_assert_str_eq(json_string_value(json_object_get(doc, "client")), "shop");
        json_decref(doc);

        /* under the bound the original is kept whole */
        f.max_len = 1000000;
        doc       = encode(&f, &len);
        cr_assert(json_equal(json_object_get(doc, "original"), orig));
        cr_assert_null(json_object_get(doc, "truncated"));
        json_decref(doc);
        json_decref(orig);
        free(dump);
        free(big);
}

Test(record, a_long_unparseable_body_is_flagged_as_cut) {
        ab_record_failure_t f;
        json_t *doc;
        char body[3 * AB_RECORD_TEXT_MAX], hex[65];
        size_t len;

        memset(body, '{', sizeof(body));
        sha_hex(body, sizeof(body), hex);
        ab_record_failure_init(&f, AB_RECORD_REJECTED);
        f.reason            = "malformed JSON";
        f.original_text     = body;
        f.original_text_len = sizeof(body);
        doc                 = encode(&f, &len);
        cr_assert_eq(json_string_length(json_object_get(doc, "originalText")),
                     AB_RECORD_TEXT_MAX);
        cr_assert_eq(json_is_true(json_object_get(doc, "truncated")), 1);
        cr_assert_eq(json_integer_value(json_object_get(doc, "originalSize")),
                     (json_int_t)sizeof(body));
        cr_assert_str_eq(json_string_value(json_object_get(doc, "originalSha256")),
                         hex);
        json_decref(doc);
}

Test(record, the_client_round_trips_and_is_a_header) {
        ab_record_failure_t f, g;
        rd_kafka_headers_t *hdrs;
        const void *v;
        size_t vlen;
        char errstr[256];
        char *val;
        size_t len;
        json_t *doc;

        ab_record_failure_init(&f, AB_RECORD_REJECTED);
        f.reason = "r";
        f.client = "shop";
        f.tenant = "c1";
        val      = ab_record_failure_encode(&f, &len, errstr, sizeof(errstr));
        cr_assert_not_null(val, "%s", errstr);
        cr_assert_eq(ab_record_failure_decode(AB_RECORD_REJECTED, val, len, &doc,
                                              &g, errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert_str_eq(g.client, "shop");
        cr_assert_str_eq(g.tenant, "c1");
        json_decref(doc);
        free(val);

        hdrs = ab_record_failure_headers(&f);
        cr_assert_eq(rd_kafka_header_get_last(hdrs, AB_CLOUDEVENTS_H_AUTHID, &v,
                                              &vlen),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
        cr_assert_eq(vlen, 4);
        cr_assert_eq(memcmp(v, "shop", 4), 0);
        rd_kafka_headers_destroy(hdrs);
}
