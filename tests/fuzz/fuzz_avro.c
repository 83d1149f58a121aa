/* aetherbus - Apache-2.0
 *
 * fuzz_avro: libFuzzer-style target for the Avro decoder. Any byte string
 * must yield AB_OK or a clean error, never a crash, a leak or undefined
 * behaviour. The codec reads the embedded v1 envelope and also knows a v2
 * writer schema, so the resolution path is fuzzed too. Seeds live in
 * tests/fuzz/corpus/avro/ (framed v1 and v2 records).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ab_avro.h"

/* schemas/fixtures/envelope.v2.avsc, inlined so the target needs no files */
static const char v2_schema[] =
    "{\"type\":\"record\",\"name\":\"Envelope\",\"namespace\":\"io.aetherbus.v1\","
    "\"fields\":[{\"name\":\"id\",\"type\":\"string\"},"
    "{\"name\":\"name\",\"type\":\"string\"},"
    "{\"name\":\"schemaVersion\",\"type\":\"int\"},"
    "{\"name\":\"occurredAt\",\"type\":\"string\"},"
    "{\"name\":\"source\",\"type\":\"string\"},"
    "{\"name\":\"companyId\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"subjectId\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"payload\",\"type\":\"string\"},"
    "{\"name\":\"receivedAt\",\"type\":{\"type\":\"long\","
    "\"logicalType\":\"timestamp-millis\"}},"
    "{\"name\":\"traceId\",\"type\":[\"null\",\"string\"],\"default\":null}]}";

static ab_avro_codec_t *codec;

static void codec_init(void) {
        char errstr[256];

        codec = ab_avro_codec_new(NULL, errstr, sizeof(errstr));
        if (!codec || ab_avro_codec_add_schema(codec, v2_schema, errstr, sizeof(errstr))) {
                abort();
        }
}

static int opt_eq(const char *a, const char *b) {
        return (!a && !b) || (a && b && !strcmp(a, b));
}

static void view_same(const ab_envelope_t *v, const ab_envelope_t *e) {
        json_t *p;

        if (!opt_eq(v->id, e->id) || !opt_eq(v->name, e->name) ||
            !opt_eq(v->occurred_at, e->occurred_at) ||
            !opt_eq(v->source, e->source) ||
            !opt_eq(v->company_id, e->company_id) ||
            !opt_eq(v->subject_id, e->subject_id) ||
            v->schema_version != e->schema_version ||
            v->received_at_ms != e->received_at_ms ||
            v->occurred_at_ms != e->occurred_at_ms) {
                abort();
        }
        p = json_loadb(v->payload_json, v->payload_json_len, 0, NULL);
        if (!p || !json_equal(p, e->payload)) {
                abort();
        }
        json_decref(p);
}

/* avro-c's path keeps strings with a NUL inside (cut short in C); the
 * view refuses them. Only then may the view fail where it succeeds. */
static int has_nul_string(const ab_envelope_t *e) {
        static const char *const keys[] = {"id", "name", "occurredAt", "source",
                                           "companyId", "subjectId"};
        json_t *v;
        size_t i;

        for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                v = json_object_get(e->doc, keys[i]);
                if (json_is_string(v) &&
                    strlen(json_string_value(v)) != json_string_length(v)) {
                        return 1;
                }
        }
        return 0;
}

static int view_payload_is_object(const ab_envelope_t *v) {
        json_t *p = json_loadb(v->payload_json, v->payload_json_len, 0, NULL);
        int ok    = json_is_object(p);

        json_decref(p);
        return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ab_envelope_t env, view;
        char errstr[256];
        json_t *doc = NULL;

        if (!codec) {
                codec_init();
        }
        if (ab_avro_decode(codec, data, size, &doc, errstr, sizeof(errstr)) == AB_OK) {
                if (!json_is_object(json_object_get(doc, "payload"))) {
                        abort();
                }
                json_decref(doc);
        } else if (doc) {
                abort();
        }
        if (ab_avro_decode_view(codec, data, size, &view, errstr,
                                sizeof(errstr)) == AB_OK) {
                if (!view.id || !view.name || !view.source || !view.payload_json) {
                        abort();
                }
        } else if (view.buf || view.doc) {
                abort();
        }
        if (ab_avro_decode_envelope(codec, data, size, &env, errstr, sizeof(errstr)) ==
            AB_OK) {
                if (!env.id || !env.name || !env.source || !env.payload) {
                        abort();
                }
                /* The direct view reads what avro-c reads: the same fields
                 * and a payload text that parses to the same tree, unless
                 * a string holds a NUL (the view refuses those). */
                if (view.id) {
                        view_same(&view, &env);
                } else if (!has_nul_string(&env)) {
                        abort();
                }
                ab_envelope_clear(&env);
        } else if (view.id && view_payload_is_object(&view)) {
                abort(); /* the view took what the full decoder refused */
        }
        ab_envelope_clear(&view);
        return 0;
}
