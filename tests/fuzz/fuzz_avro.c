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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ab_envelope_t env;
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
        if (ab_avro_decode_envelope(codec, data, size, &env, errstr, sizeof(errstr)) ==
            AB_OK) {
                if (!env.id || !env.name || !env.source || !env.payload) {
                        abort();
                }
                ab_envelope_clear(&env);
        }
        return 0;
}
