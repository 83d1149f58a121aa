/* aetherbus - Apache-2.0
 *
 * aetherbus-bench-encode: ingest's per-event CPU path without HTTP or
 * Kafka, for a repeatable instruction count under callgrind (bench/ingest
 * measures the service as a whole, with the noise of a shared machine).
 * One iteration is what ingest does for one request body: parse, split,
 * validate and normalise each item, set receivedAt, encode the Avro value
 * and build the CloudEvents headers. Two bodies: the wrk benchmark's 100
 * events, and 100 events whose payloads carry reals, escapes, non-ASCII
 * text and nesting (the writer's slower branches).
 *   valgrind --tool=callgrind aetherbus-bench-encode -b wrk -n 60
 * minus the same with -n 10, divided by 50 * 100, is the instruction
 * count per event without the start-up. Prints, per body:
 *   body=NAME iterations=N events=N value_bytes=B
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ab_avro.h"
#include "ab_catalog.h"
#include "ab_cloudevents.h"
#include "ab_envelope.h"
#include "ab_json.h"
#include "ab_kafka.h"

#define EVENTS 100

#define EVENT_WRK                                                            \
        "{\"id\":\"w-%03d\",\"name\":\"ProductViewed\",\"schemaVersion\":1," \
        "\"occurredAt\":\"2026-02-11T20:10:00.000Z\",\"source\":"            \
        "\"storefront\",\"companyId\":\"c_%d\",\"subjectId\":\"p1\","       \
        "\"payload\":{\"productId\":\"p1\",\"sku\":\"SKU-001\","             \
        "\"referrer\":\"search\"}}"

#define EVENT_MIXED                                                          \
        "{\"id\":\"m-%03d\",\"name\":\"OrderCreated\",\"schemaVersion\":1,"  \
        "\"occurredAt\":\"2026-02-11T20:10:00.123+01:00\",\"source\":"       \
        "\"api\",\"companyId\":\"c_%d\",\"payload\":{\"orderId\":\"o-1\","   \
        "\"total\":129.95,\"tax\":1.5e-3,\"items\":[{\"sku\":\"A\\\"1\","    \
        "\"qty\":2,\"price\":19.99},{\"sku\":\"B\\\\2\",\"qty\":1,"          \
        "\"price\":90}],\"note\":\"caf\\u00e9 \\u2014 tab\\there\","        \
        "\"city\":\"Z\xc3\xbcrich\",\"gift\":false,\"coupon\":null}}"

static char *body_new(const char *fmt) {
        size_t cap = EVENTS * 1024, len = 0;
        char *b = malloc(cap);
        int k;

        if (!b) {
                return NULL;
        }
        b[len++] = '[';
        for (k = 0; k < EVENTS; k++) {
                len += (size_t)snprintf(b + len, cap - len, "%s", k ? "," : "");
                len += (size_t)snprintf(b + len, cap - len, fmt, k, k % 16);
        }
        b[len++] = ']';
        b[len]   = '\0';
        return b;
}

static ab_json_text_t texts_buf[EVENTS];
static char body_buf[1 << 20];

static int run(const char *name, const char *text, ab_catalog_t *cat,
               ab_avro_codec_t *codec, long iterations) {
        ab_envelope_limits_t limits;
        ab_envelope_ctx_t ctx;
        ab_envelope_t env;
        rd_kafka_headers_t *hdrs;
        char value[4096], errstr[512];
        size_t n, i, len, bytes = 0;
        json_t *body;
        ab_err_t err;
        long it;
        ab_json_text_t *texts = NULL;
        char *pbuf = NULL;

        ab_envelope_limits_default(&limits);
        memset(&ctx, 0, sizeof(ctx));
        ctx.catalog = cat;
        ctx.limits  = &limits;
        ctx.form    = AB_FORM_INGEST;
        ctx.now_ms  = 1770840600000LL;
        memset(&env, 0, sizeof(env));
        /* Outside the heap: a 25 KiB buffer among the trees' chunks
         * changes how glibc coalesces them (malloc_consolidate on every
         * free of a body, +6k instructions/event) and would measure that
         * instead of the scan. The server's receive buffer is its own. */
        texts = texts_buf;
        pbuf  = body_buf;
        if (strlen(text) >= sizeof(body_buf)) {
                fprintf(stderr, "%s: body over %zu bytes\n", name,
                        sizeof(body_buf));
                return -1;
        }
        for (it = 0; it < iterations; it++) {
                body = ab_envelope_json_parse(text, strlen(text), &limits,
                                              &err, errstr, sizeof(errstr));
                if (!body || ab_envelope_batch_check(body, &limits, &n, errstr,
                                                     sizeof(errstr))) {
                        fprintf(stderr, "%s: %s\n", name, errstr);
                        return -1;
                }
                /* As ingest_publish: each payload's text as sent,
                 * compacted in place in the body (here a copy, as the
                 * server's receive buffer is). */
                memcpy(pbuf, text, strlen(text) + 1);
                if (n > EVENTS ||
                    ab_json_member_texts(pbuf, strlen(text), "payload", texts,
                                         n)) {
                        fprintf(stderr, "%s: no payload texts\n", name);
                        return -1;
                }
                for (i = 0; i < n; i++) {
                        err = ab_envelope_from_json(
                            &env, ab_envelope_batch_item(body, i), &ctx,
                            errstr, sizeof(errstr));
                        if (!err) {
                                env.payload_json     = texts[i].p;
                                env.payload_json_len = texts[i].len;
                                ab_envelope_set_received(&env, ctx.now_ms);
                                err = ab_avro_encode(codec, &env, value,
                                                     sizeof(value), &len,
                                                     errstr, sizeof(errstr));
                        }
                        if (err || !(hdrs = ab_cloudevents_headers_new(&env))) {
                                fprintf(stderr, "%s: item %zu: %s\n", name, i,
                                        errstr);
                                return -1;
                        }
                        rd_kafka_headers_destroy(hdrs);
                        bytes += len;
                        ab_envelope_clear(&env);
                }
                json_decref(body);
        }
        printf("body=%s iterations=%ld events=%ld value_bytes=%zu\n", name,
               iterations, iterations * EVENTS, bytes / (size_t)(iterations * EVENTS));
        return 0;
}

int main(int argc, char **argv) {
        char errstr[512];
        ab_catalog_t *cat;
        ab_avro_codec_t *codec;
        char *wrk, *mixed;
        const char *which = "all";
        long iterations = 200;
        int opt, rc = 1;

        while ((opt = getopt(argc, argv, "b:n:h")) != -1) {
                switch (opt) {
                case 'b':
                        which = optarg;
                        break;
                case 'n':
                        iterations = strtol(optarg, NULL, 10);
                        break;
                default:
                        fprintf(opt == 'h' ? stdout : stderr,
                                "Usage: %s [-b wrk|mixed|all] [-n ITERATIONS]\n",
                                argv[0]);
                        return opt == 'h' ? 0 : 2;
                }
        }
        if (iterations < 1) {
                fprintf(stderr, "%s: -n must be >= 1\n", argv[0]);
                return 2;
        }
        if (strcmp(which, "wrk") && strcmp(which, "mixed") &&
            strcmp(which, "all")) {
                fprintf(stderr, "%s: -b must be wrk, mixed or all\n", argv[0]);
                return 2;
        }
        cat   = ab_catalog_new(errstr, sizeof(errstr));
        codec = cat ? ab_avro_codec_new(NULL, errstr, sizeof(errstr)) : NULL;
        wrk   = body_new(EVENT_WRK);
        mixed = body_new(EVENT_MIXED);
        if (!codec || !wrk || !mixed) {
                fprintf(stderr, "%s: %s\n", argv[0], codec ? "no memory" : errstr);
        } else if ((!strcmp(which, "mixed") ||
                    run("wrk", wrk, cat, codec, iterations) == 0) &&
                   (!strcmp(which, "wrk") ||
                    run("mixed", mixed, cat, codec, iterations) == 0)) {
                rc = 0;
        }
        free(wrk);
        free(mixed);
        ab_avro_codec_destroy(codec);
        ab_catalog_destroy(cat);
        return rc;
}
