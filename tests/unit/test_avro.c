/* aetherbus - Apache-2.0
 *
 * Unit tests of ab_avro: canonical form and fingerprint against the Avro
 * test vectors and Python's avro package, direct encoder bytes against
 * avro-c's own writer, round trips of every fixture, schema evolution in
 * both directions, and clean errors on broken input.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <avro.h>
#include <criterion/criterion.h>

#include "ab_avro.h"
#include "ab_catalog.h"
#include "ab_envelope.h"

#define FIXTURES AB_SCHEMA_DIR "/fixtures/"
#define RECEIVED_AT INT64_C(1770840600123)

/* The fingerprint of schemas/envelope.avsc, cross-checked with Python. */
#define ENVELOPE_FP UINT64_C(0x913ea7b1b31daa10)

static ab_catalog_t *cat;
static ab_envelope_limits_t limits;

static void setup(void) {
        char errstr[256];

        cat = ab_catalog_new(errstr, sizeof(errstr));
        cr_assert(cat, "catalog: %s", errstr);
        ab_envelope_limits_default(&limits);
}

static void teardown(void) {
        ab_catalog_destroy(cat);
        cat = NULL;
}

TestSuite(avro, .init = setup, .fini = teardown);

static char *slurp(const char *path) {
        FILE *fp;
        char *buf;
        long n;

        if (!(fp = fopen(path, "rb"))) {
                return NULL;
        }
        fseek(fp, 0, SEEK_END);
        n = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        buf = malloc((size_t)n + 1);
        cr_assert(buf);
        cr_assert_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
        buf[n] = '\0';
        fclose(fp);
        return buf;
}

static ab_avro_codec_t *codec_file(const char *path) {
        ab_avro_codec_t *codec;
        char errstr[256], *text;

        text = path ? slurp(path) : NULL;
        cr_assert(!path || text, "cannot read %s", path);
        codec = ab_avro_codec_new(text, errstr, sizeof(errstr));
        cr_assert(codec, "codec %s: %s", path ? path : "(embedded)", errstr);
        free(text);
        return codec;
}

static void codec_learn(ab_avro_codec_t *codec, const char *path) {
        char errstr[256], *text;
        ab_err_t err;

        text = slurp(path);
        cr_assert(text, "cannot read %s", path);
        err = ab_avro_codec_add_schema(codec, text, errstr, sizeof(errstr));
        cr_assert_eq(err, AB_OK, "add %s: %s", path, errstr);
        free(text);
}

/* Every fixture envelope: the spec example, one per catalog name, v2. */
static json_t *fixtures(void) {
        static const char *const fallback =
            "[{\"id\":\"evt_1\",\"name\":\"OrderCreated\",\"schemaVersion\":1,"
            "\"occurredAt\":\"2026-02-11T08:00:00.000Z\",\"source\":\"api\","
            "\"payload\":{\"orderId\":\"o1\"}}]";
        json_t *all, *js;

        all = json_array();
        js = json_load_file(FIXTURES "spec-example.json", 0, NULL);
        if (js) {
                json_array_append_new(all, js);
        }
        js = json_load_file(FIXTURES "v1-events.json", 0, NULL);
        if (!js) {
                js = json_loads(fallback, 0, NULL);
        }
        cr_assert(json_is_array(js));
        json_array_extend(all, js);
        json_decref(js);
        js = json_load_file(FIXTURES "v2-event.json", 0, NULL);
        cr_assert(js, "v2-event.json");
        json_array_append_new(all, js);
        return all;
}

/* Validates and normalises an item like ingest does, then stamps it. */
static void env_parse(json_t *item, ab_envelope_t *env) {
        ab_envelope_ctx_t ctx = {cat, &limits, AB_FORM_INGEST, NULL, NULL, RECEIVED_AT};
        char errstr[256];
        ab_err_t err;

        memset(env, 0, sizeof(*env));
        err = ab_envelope_from_json(env, item, &ctx, errstr, sizeof(errstr));
        cr_assert_eq(err, AB_OK, "%s", errstr);
        ab_envelope_set_received(env, RECEIVED_AT);
}

static size_t encode(const ab_avro_codec_t *codec, const ab_envelope_t *env,
                     char *out, size_t size) {
        char errstr[256];
        size_t len = 0;
        ab_err_t err;

        err = ab_avro_encode(codec, env, out, size, &len, errstr, sizeof(errstr));
        cr_assert_eq(err, AB_OK, "encode %s: %s", env->id, errstr);
        return len;
}

static json_t *decode_ok(const ab_avro_codec_t *codec, const void *data, size_t len) {
        char errstr[256];
        json_t *doc = NULL;
        ab_err_t err;

        err = ab_avro_decode(codec, data, len, &doc, errstr, sizeof(errstr));
        cr_assert_eq(err, AB_OK, "decode: %s", errstr);
        return doc;
}

/* What a reader with \p fields sees of \p doc: those keys, nulls left out. */
static json_t *expected(const json_t *doc, const char *const *fields) {
        json_t *exp = json_object(), *v;

        for (; *fields; fields++) {
                v = json_object_get(doc, *fields);
                if (v && !json_is_null(v)) {
                        json_object_set(exp, *fields, v);
                }
        }
        return exp;
}

static const char *const v1_fields[] = {"id", "name", "schemaVersion", "occurredAt",
                                        "source", "companyId", "subjectId",
                                        "payload", "receivedAt", NULL};
static void assert_doc(json_t *got, json_t *exp, const char *what, size_t row) {
        char *g, *e;

        if (!json_equal(got, exp)) {
                g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
                e = json_dumps(exp, JSON_COMPACT | JSON_SORT_KEYS);
                cr_expect_fail("%s row %zu:\n got %s\nwant %s", what, row, g, e);
                free(g);
                free(e);
        }
}

/*
 * Canonical form and fingerprint
 */

/* Vectors of the Avro project's share/test/data/schema-tests.txt (the Java
 * implementation verifies them); fingerprints are its signed decimals. */
static const struct {
        const char *schema;
        const char *canonical;
        int64_t fp;
} vectors[] = {
    {"\"null\"", "\"null\"", INT64_C(7195948357588979594)},
    {"{\"type\":\"null\"}", "\"null\"", INT64_C(7195948357588979594)},
    {"\"boolean\"", "\"boolean\"", INT64_C(-6970731678124411036)},
    {"\"int\"", "\"int\"", INT64_C(8247732601305521295)},
    {"{\"type\":\"long\"}", "\"long\"", INT64_C(-3434872931120570953)},
    {"\"float\"", "\"float\"", INT64_C(5583340709985441680)},
    {"\"double\"", "\"double\"", INT64_C(-8181574048448539266)},
    {"\"bytes\"", "\"bytes\"", INT64_C(5746618253357095269)},
    {"{\"type\":\"string\"}", "\"string\"", INT64_C(-8142146995180207161)},
    {"[  ]", "[]", INT64_C(-1241056759729112623)},
    {"[ \"int\"  ]", "[\"int\"]", INT64_C(-5232228896498058493)},
    {"[ \"int\" , {\"type\":\"boolean\"} ]", "[\"int\",\"boolean\"]",
     INT64_C(5392556393470105090)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", INT64_C(-4824392279771201922)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"namespace\":\"x.y\"}",
     "{\"name\":\"x.y.foo\",\"type\":\"record\",\"fields\":[]}",
     INT64_C(5916914534497305771)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"a.b.foo\", \"namespace\":\"x.y\"}",
     "{\"name\":\"a.b.foo\",\"type\":\"record\",\"fields\":[]}",
     INT64_C(-4616218487480524110)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"doc\":\"foo\", "
     "\"aliases\":[\"foo\",\"bar\"]}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", INT64_C(-4824392279771201922)},
    {"{\"fields\":[{\"type\":{\"type\":\"boolean\"}, \"name\":\"f1\"}], \"type\":\"record\", "
     "\"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":\"boolean\"}]}",
     INT64_C(7843277075252814651)},
    {"{ \"fields\":[{\"type\":\"boolean\", \"aliases\":[], \"name\":\"f1\", \"default\":\"true\"},\n"
     "            {\"order\":\"descending\",\"name\":\"f2\",\"doc\":\"Hello\",\"type\":\"int\"}],\n"
     "  \"type\":\"record\", \"name\":\"foo\"\n}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":\"boolean\"},"
     "{\"name\":\"f2\",\"type\":\"int\"}]}",
     INT64_C(-4860222112080293046)},
    {"{\"type\":\"enum\", \"name\":\"foo\", \"symbols\":[\"A1\"]}",
     "{\"name\":\"foo\",\"type\":\"enum\",\"symbols\":[\"A1\"]}", INT64_C(-6342190197741309591)},
    {"{\"namespace\":\"x.y.z\", \"type\":\"enum\", \"name\":\"foo\", \"doc\":\"foo bar\", "
     "\"symbols\":[\"A1\", \"A2\"]}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"enum\",\"symbols\":[\"A1\",\"A2\"]}",
     INT64_C(-4448647247586288245)},
    {"{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}",
     "{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}", INT64_C(1756455273707447556)},
    {"{\"namespace\":\"x.y.z\", \"type\":\"fixed\", \"name\":\"foo\", \"doc\":\"foo bar\", "
     "\"size\":32}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"fixed\",\"size\":32}", INT64_C(-3064184465700546786)},
    {"{ \"items\":{\"type\":\"null\"}, \"type\":\"array\"}",
     "{\"type\":\"array\",\"items\":\"null\"}", INT64_C(-589620603366471059)},
    {"{ \"values\":\"string\", \"type\":\"map\"}", "{\"type\":\"map\",\"values\":\"string\"}",
     INT64_C(-8732877298790414990)},
    {"  {\"name\":\"PigValue\",\"type\":\"record\",\n"
     "   \"fields\":[{\"name\":\"value\", \"type\":[\"null\", \"int\", \"long\", \"PigValue\"]}]}",
     "{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":[{\"name\":\"value\",\"type\":"
     "[\"null\",\"int\",\"long\",\"PigValue\"]}]}",
     INT64_C(-1759257747318642341)},
};

Test(avro, crc64_of_nothing_is_the_empty_fingerprint) {
        cr_assert_eq(ab_avro_crc64(NULL, 0), AB_AVRO_FP_EMPTY);
        cr_assert_eq(ab_avro_crc64("", 0), UINT64_C(0xc15d213aa4d7a795));
}

Test(avro, canonical_form_and_fingerprint_match_the_spec_vectors) {
        char errstr[256], *pcf;
        uint64_t fp;
        size_t i;

        for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
                cr_assert_eq(ab_avro_canonical_form(vectors[i].schema, &pcf, errstr,
                                                    sizeof(errstr)),
                             AB_OK, "row %zu: %s", i, errstr);
                cr_expect_str_eq(pcf, vectors[i].canonical, "row %zu", i);
                cr_expect_eq(ab_avro_crc64(pcf, strlen(pcf)), (uint64_t)vectors[i].fp,
                             "row %zu: crc64 of the canonical form", i);
                free(pcf);
                cr_assert_eq(ab_avro_fingerprint(vectors[i].schema, &fp, errstr,
                                                 sizeof(errstr)),
                             AB_OK, "row %zu: %s", i, errstr);
                cr_expect_eq(fp, (uint64_t)vectors[i].fp, "row %zu: %016" PRIx64, i, fp);
        }
}

Test(avro, canonical_form_reduces_logical_types_and_nested_namespaces) {
        static const struct {
                const char *schema;
                const char *canonical;
        } rows[] = {
            {"{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}", "\"long\""},
            {"{\"type\":\"bytes\",\"logicalType\":\"decimal\",\"precision\":4}", "\"bytes\""},
            {"{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a.b\",\"fields\":["
             "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\"]}},"
             "{\"name\":\"f\",\"type\":\"E\",\"default\":\"X\"},"
             "{\"name\":\"g\",\"type\":{\"type\":\"fixed\",\"name\":\"c.F\",\"size\":2}},"
             "{\"name\":\"h\",\"type\":{\"type\":\"map\",\"values\":\"c.F\"}}]}",
             "{\"name\":\"a.b.R\",\"type\":\"record\",\"fields\":["
             "{\"name\":\"e\",\"type\":{\"name\":\"a.b.E\",\"type\":\"enum\",\"symbols\":[\"X\"]}},"
             "{\"name\":\"f\",\"type\":\"a.b.E\"},"
             "{\"name\":\"g\",\"type\":{\"name\":\"c.F\",\"type\":\"fixed\",\"size\":2}},"
             "{\"name\":\"h\",\"type\":{\"type\":\"map\",\"values\":\"c.F\"}}]}"},
            {"\"caf\\u00e9\"", "\"café\""},
        };
        char errstr[256], *pcf;
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                cr_assert_eq(ab_avro_canonical_form(rows[i].schema, &pcf, errstr,
                                                    sizeof(errstr)),
                             AB_OK, "row %zu: %s", i, errstr);
                cr_expect_str_eq(pcf, rows[i].canonical, "row %zu", i);
                free(pcf);
        }
}

Test(avro, canonical_form_refuses_what_is_not_a_schema) {
        static const struct {
                const char *schema;
                ab_err_t err;
        } rows[] = {
            {"{", AB_ERR_MALFORMED},
            {"", AB_ERR_MALFORMED},
            {"42", AB_ERR_INVALID},
            {"{\"name\":\"x\"}", AB_ERR_INVALID},
            {"{\"type\":\"record\",\"fields\":[]}", AB_ERR_INVALID},
            {"{\"type\":\"record\",\"name\":\"r\",\"fields\":{}}", AB_ERR_INVALID},
            {"{\"type\":\"record\",\"name\":\"r\",\"fields\":[{\"name\":\"a\"}]}",
             AB_ERR_INVALID},
            {"{\"type\":\"enum\",\"name\":\"e\",\"symbols\":[1]}", AB_ERR_INVALID},
            {"{\"type\":\"fixed\",\"name\":\"f\",\"size\":\"3\"}", AB_ERR_INVALID},
            {"{\"type\":\"array\"}", AB_ERR_INVALID},
        };
        char errstr[256], *pcf = NULL;
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                errstr[0] = '\0';
                cr_expect_eq(ab_avro_canonical_form(rows[i].schema, &pcf, errstr,
                                                    sizeof(errstr)),
                             rows[i].err, "row %zu", i);
                cr_expect(errstr[0], "row %zu: errstr set", i);
                cr_expect_null(pcf, "row %zu", i);
        }
}

Test(avro, envelope_fingerprint_is_stable) {
        ab_avro_codec_t *codec = codec_file(NULL);
        char errstr[256];
        uint64_t fp;

        cr_assert_eq(ab_avro_fingerprint(ab_schema_envelope_avsc, &fp, errstr,
                                         sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_expect_eq(fp, ENVELOPE_FP, "envelope.avsc fingerprint %016" PRIx64, fp);
        cr_expect_eq(ab_avro_codec_fingerprint(codec), ENVELOPE_FP);
        ab_avro_codec_destroy(codec);
}

/*
 * Python's avro package as an independent implementation. Its 1.11.1
 * canonical form keeps {"type":"long"} for a logical type where the spec
 * (and Java) say "long"; the script undoes exactly that, then computes
 * CRC-64-AVRO by the spec's own algorithm.
 */
static const char py_script[] =
    "import datetime, io, json, struct, sys\n"
    "import avro.io, avro.schema\n"
    "EMPTY = 0xc15d213aa4d7a795\n"
    "T = []\n"
    "for i in range(256):\n"
    "    fp = i\n"
    "    for _ in range(8):\n"
    "        fp = (fp >> 1) ^ (EMPTY & -(fp & 1))\n"
    "    T.append(fp)\n"
    "def crc(b):\n"
    "    fp = EMPTY\n"
    "    for c in b:\n"
    "        fp = (fp >> 8) ^ T[(fp ^ c) & 0xff]\n"
    "    return fp\n"
    "PRIM = {'null','boolean','int','long','float','double','bytes','string'}\n"
    "def fix(o):\n"
    "    if isinstance(o, dict):\n"
    "        if set(o) == {'type'} and o['type'] in PRIM:\n"
    "            return o['type']\n"
    "        return {k: fix(v) for k, v in o.items()}\n"
    "    if isinstance(o, list):\n"
    "        return [fix(v) for v in o]\n"
    "    return o\n"
    "text = open(sys.argv[1]).read()\n"
    "s = avro.schema.parse(text)\n"
    "pcf = json.dumps(fix(json.loads(s.canonical_form)), separators=(',', ':'),\n"
    "                 ensure_ascii=False)\n"
    "fp = crc(pcf.encode())\n"
    "print(pcf)\n"
    "print('%016x' % fp)\n"
    "rec = {'id': 'evt_py_1', 'name': 'ProductViewed', 'schemaVersion': 1,\n"
    "       'occurredAt': '2026-02-11T20:10:00.000Z', 'source': 'storefront',\n"
    "       'companyId': 'c1', 'subjectId': None,\n"
    "       'payload': json.dumps({'productId': 'p1', 'sku': 'SKU-001'}),\n"
    "       'receivedAt': datetime.datetime(2026, 2, 11, 20, 10, 0, 123000,\n"
    "                                       tzinfo=datetime.timezone.utc)}\n"
    "buf = io.BytesIO()\n"
    "avro.io.DatumWriter(s).write(rec, avro.io.BinaryEncoder(buf))\n"
    "print((b'\\xc3\\x01' + struct.pack('<Q', fp) + buf.getvalue()).hex())\n";

/* Runs py_script on \p schema_path; fills up to 3 output lines. */
static int python_run(const char *schema_path, char lines[3][4096]) {
        static const char *const pythons[] = {"/usr/bin/python3", "python3"};
        char script[] = "/tmp/ab_test_avro_XXXXXX", cmd[512];
        const char *py = NULL;
        FILE *fp;
        size_t i;
        int fd, n = 0;

        for (i = 0; i < sizeof(pythons) / sizeof(pythons[0]) && !py; i++) {
                snprintf(cmd, sizeof(cmd), "%s -c 'import avro.io' >/dev/null 2>&1",
                         pythons[i]);
                if (system(cmd) == 0) {
                        py = pythons[i];
                }
        }
        if (!py) {
                return -1;
        }
        fd = mkstemp(script);
        cr_assert(fd >= 0);
        cr_assert_eq(write(fd, py_script, sizeof(py_script) - 1),
                     (ssize_t)sizeof(py_script) - 1);
        close(fd);
        snprintf(cmd, sizeof(cmd), "%s %s %s", py, script, schema_path);
        fp = popen(cmd, "r");
        cr_assert(fp, "popen %s", cmd);
        while (n < 3 && fgets(lines[n], 4096, fp)) {
                lines[n][strcspn(lines[n], "\n")] = '\0';
                n++;
        }
        cr_assert_eq(pclose(fp), 0, "%s failed", cmd);
        unlink(script);
        cr_assert_eq(n, 3, "python printed %d lines", n);
        return 0;
}

Test(avro, fingerprint_matches_python_avro) {
        static const char *const files[] = {AB_SCHEMA_DIR "/envelope.avsc",
                                            FIXTURES "envelope.v2.avsc"};
        char lines[3][4096], errstr[256], *text, *pcf, hex[17];
        uint64_t fp;
        size_t i;

        for (i = 0; i < 2; i++) {
                if (python_run(files[i], lines)) {
                        cr_skip_test("no python3 with the avro package (python3-avro)");
                }
                text = slurp(files[i]);
                cr_assert_eq(ab_avro_canonical_form(text, &pcf, errstr, sizeof(errstr)),
                             AB_OK, "%s", errstr);
                cr_expect_str_eq(pcf, lines[0], "%s: canonical form", files[i]);
                cr_assert_eq(ab_avro_fingerprint(text, &fp, errstr, sizeof(errstr)), AB_OK);
                snprintf(hex, sizeof(hex), "%016" PRIx64, fp);
                cr_expect_str_eq(hex, lines[1], "%s: fingerprint", files[i]);
                if (i == 0) {
                        cr_expect_eq(fp, ENVELOPE_FP);
                }
                free(pcf);
                free(text);
        }
}

Test(avro, decodes_a_record_python_avro_wrote) {
        char lines[3][4096];
        unsigned char bin[2048];
        ab_avro_codec_t *codec;
        json_t *doc, *exp;
        size_t i, n;
        unsigned x;

        if (python_run(AB_SCHEMA_DIR "/envelope.avsc", lines)) {
                cr_skip_test("no python3 with the avro package (python3-avro)");
        }
        n = strlen(lines[2]) / 2;
        cr_assert(n < sizeof(bin));
        for (i = 0; i < n; i++) {
                cr_assert_eq(sscanf(lines[2] + 2 * i, "%2x", &x), 1);
                bin[i] = (unsigned char)x;
        }
        codec = codec_file(NULL);
        doc = decode_ok(codec, bin, n);
        exp = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:{s:s, s:s}, s:I}", "id", "evt_py_1",
                        "name", "ProductViewed", "schemaVersion", 1, "occurredAt",
                        "2026-02-11T20:10:00.000Z", "source", "storefront", "companyId",
                        "c1", "payload", "productId", "p1", "sku", "SKU-001", "receivedAt",
                        (json_int_t)RECEIVED_AT);
        assert_doc(doc, exp, "python record", 0);
        json_decref(doc);
        json_decref(exp);
        ab_avro_codec_destroy(codec);
}

/*
 * The direct encoder against avro-c's generic writer
 */

static void ref_set(avro_value_t *fv, avro_schema_t fs, const json_t *v) {
        avro_value_t br;
        size_t i;

        if (is_avro_union(fs)) {
                for (i = 0; i < avro_schema_union_size(fs); i++) {
                        if (is_avro_null(avro_schema_union_branch(fs, (int)i)) ==
                            (!v || json_is_null(v))) {
                                break;
                        }
                }
                cr_assert_eq(avro_value_set_branch(fv, (int)i, &br), 0);
                ref_set(&br, avro_schema_union_branch(fs, (int)i), v);
                return;
        }
        switch (avro_typeof(fs)) {
        case AVRO_NULL:
                cr_assert_eq(avro_value_set_null(fv), 0);
                break;
        case AVRO_STRING:
                cr_assert_eq(avro_value_set_string_len(fv, json_string_value(v),
                                                       json_string_length(v) + 1),
                             0);
                break;
        case AVRO_INT32:
                cr_assert_eq(avro_value_set_int(fv, (int32_t)json_integer_value(v)), 0);
                break;
        case AVRO_INT64:
                cr_assert_eq(avro_value_set_long(fv, json_integer_value(v)), 0);
                break;
        default:
                cr_assert_fail("type not used by the fixtures");
        }
}

/* avro_value_write() of the same record through the generic interface. */
static size_t ref_encode(const char *schema_text, const ab_envelope_t *env,
                         unsigned char *out, size_t size) {
        avro_value_iface_t *iface;
        avro_schema_t schema;
        avro_writer_t writer;
        avro_value_t rec, fv;
        json_t *src;
        char *payload, errstr[256];
        const char *name;
        uint64_t fp;
        size_t i, len;

        cr_assert_eq(avro_schema_from_json_length(schema_text, strlen(schema_text), &schema), 0);
        cr_assert_eq(ab_avro_fingerprint(schema_text, &fp, errstr, sizeof(errstr)), AB_OK);
        iface = avro_generic_class_from_schema(schema);
        cr_assert_eq(avro_generic_value_new(iface, &rec), 0);
        payload = json_dumps(env->payload, JSON_COMPACT);
        src = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s?, s:s?, s:s, s:I}", "id", env->id,
                        "name", env->name, "schemaVersion", env->schema_version,
                        "occurredAt", env->occurred_at, "source", env->source, "companyId",
                        env->company_id, "subjectId", env->subject_id, "payload", payload,
                        "receivedAt", (json_int_t)env->received_at_ms);
        cr_assert(src);
        for (i = 0; i < avro_schema_record_size(schema); i++) {
                name = avro_schema_record_field_name(schema, (int)i);
                cr_assert_eq(avro_value_get_by_index(&rec, i, &fv, NULL), 0);
                ref_set(&fv, avro_schema_record_field_get_by_index(schema, (int)i),
                        json_object_get(src, name) ? json_object_get(src, name)
                                                   : json_object_get(env->doc, name));
        }
        ab_avro_header_write(fp, out);
        writer = avro_writer_memory((char *)out + AB_AVRO_HEADER_SIZE,
                                    (int64_t)(size - AB_AVRO_HEADER_SIZE));
        cr_assert_eq(avro_value_write(writer, &rec), 0, "%s", avro_strerror());
        len = AB_AVRO_HEADER_SIZE + (size_t)avro_writer_tell(writer);
        avro_writer_free(writer);
        avro_value_decref(&rec);
        avro_value_iface_decref(iface);
        avro_schema_decref(schema);
        json_decref(src);
        free(payload);
        return len;
}

Test(avro, direct_encoder_writes_the_bytes_avro_c_writes) {
        static const char *const schemas[] = {NULL, FIXTURES "envelope.v2.avsc"};
        unsigned char mine[8192], ref[8192];
        ab_avro_codec_t *codec;
        ab_envelope_t env;
        json_t *all, *item;
        char *text;
        size_t s, i, n, rn;

        for (s = 0; s < 2; s++) {
                text = schemas[s] ? slurp(schemas[s]) : strdup(ab_schema_envelope_avsc);
                codec = codec_file(schemas[s]);
                all = fixtures();
                json_array_foreach(all, i, item) {
                        env_parse(item, &env);
                        n = encode(codec, &env, (char *)mine, sizeof(mine));
                        rn = ref_encode(text, &env, ref, sizeof(ref));
                        cr_expect_eq(n, rn, "schema %zu row %zu (%s): %zu vs %zu bytes", s, i,
                                     env.id, n, rn);
                        cr_expect(n == rn && !memcmp(mine, ref, n),
                                  "schema %zu row %zu (%s): bytes differ", s, i, env.id);
                        ab_envelope_clear(&env);
                }
                cr_assert_gt(i, 2, "fixtures loaded");
                json_decref(all);
                ab_avro_codec_destroy(codec);
                free(text);
        }
}

Test(avro, encoder_matches_avro_c_on_edge_values) {
        static const struct {
                int64_t received;
                int version;
                size_t payload_len; /* length of a string inside payload */
        } rows[] = {
            {0, 0, 0},          {-1, -1, 50},         {63, 1, 51},
            {64, 2, 8180},      {INT64_MAX, INT32_MAX, 8200},
            {INT64_MIN, INT32_MIN, 70000},
        };
        static unsigned char mine[100000], ref[100000];
        ab_avro_codec_t *codec = codec_file(NULL);
        ab_envelope_t env;
        json_t *payload;
        char *big;
        size_t i, n, rn;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                big = malloc(rows[i].payload_len + 1);
                memset(big, 'x', rows[i].payload_len);
                big[rows[i].payload_len] = '\0';
                payload = json_pack("{s:s}", "k", big);
                memset(&env, 0, sizeof(env));
                env.id = "";
                env.name = "n";
                env.occurred_at = "2026-02-11T20:10:00Z";
                env.source = "api";
                env.subject_id = i % 2 ? "s\xc3\xa9" : NULL;
                env.payload = payload;
                env.schema_version = rows[i].version;
                env.received_at_ms = rows[i].received;
                n = encode(codec, &env, (char *)mine, sizeof(mine));
                rn = ref_encode(ab_schema_envelope_avsc, &env, ref, sizeof(ref));
                cr_expect(n == rn && !memcmp(mine, ref, n), "row %zu: bytes differ", i);
                json_decref(payload);
                free(big);
        }
        ab_avro_codec_destroy(codec);
}

Test(avro, encode_reports_the_size_it_needs) {
        ab_avro_codec_t *codec = codec_file(NULL);
        char full[4096], small[4096], errstr[256];
        ab_envelope_t env;
        json_t *all, *item;
        size_t i, n, need, size;
        ab_err_t err;

        all = fixtures();
        json_array_foreach(all, i, item) {
                env_parse(item, &env);
                n = encode(codec, &env, full, sizeof(full));
                for (size = 0; size < n; size++) {
                        need = 0;
                        err = ab_avro_encode(codec, &env, size ? small : NULL, size, &need,
                                             errstr, sizeof(errstr));
                        cr_assert_eq(err, AB_ERR_TOO_LARGE, "row %zu size %zu", i, size);
                        cr_assert_eq(need, n, "row %zu size %zu: hint", i, size);
                }
                memset(small, 0xee, sizeof(small));
                cr_assert_eq(encode(codec, &env, small, n), n);
                cr_assert(!memcmp(small, full, n), "row %zu: exact-size buffer", i);
                ab_envelope_clear(&env);
        }
        json_decref(all);
        ab_avro_codec_destroy(codec);
}

Test(avro, encode_refuses_an_envelope_missing_a_field) {
        ab_avro_codec_t *codec = codec_file(NULL);
        ab_envelope_t env = {0};
        char buf[256], errstr[256];
        size_t len;

        env.name = "OrderCreated";
        env.occurred_at = "2026-02-11T20:10:00Z";
        env.source = "api";
        env.payload = json_object();
        cr_expect_eq(ab_avro_encode(codec, &env, buf, sizeof(buf), &len, errstr,
                                    sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_expect_str_eq(errstr, "id: missing");
        env.id = "x";
        json_decref(env.payload);
        env.payload = NULL;
        cr_expect_eq(ab_avro_encode(codec, &env, buf, sizeof(buf), &len, errstr,
                                    sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_expect_str_eq(errstr, "payload: not a JSON object");
        ab_avro_codec_destroy(codec);
}

/*
 * Round trips and evolution
 */

Test(avro, every_fixture_round_trips) {
        ab_avro_codec_t *codec = codec_file(NULL);
        ab_envelope_t env, back;
        char buf[8192], errstr[256];
        json_t *all, *item, *doc, *exp;
        size_t i, n;

        all = fixtures();
        json_array_foreach(all, i, item) {
                env_parse(item, &env);
                n = encode(codec, &env, buf, sizeof(buf));
                doc = decode_ok(codec, buf, n);
                exp = expected(env.doc, v1_fields);
                assert_doc(doc, exp, "round trip", i);
                json_decref(doc);
                json_decref(exp);

                cr_assert_eq(ab_avro_decode_envelope(codec, buf, n, &back, errstr,
                                                     sizeof(errstr)),
                             AB_OK, "row %zu: %s", i, errstr);
                cr_expect_str_eq(back.id, env.id, "row %zu", i);
                cr_expect_str_eq(back.name, env.name, "row %zu", i);
                cr_expect_eq(back.schema_version, env.schema_version, "row %zu", i);
                cr_expect_str_eq(back.occurred_at, env.occurred_at, "row %zu", i);
                cr_expect_eq(back.occurred_at_ms, env.occurred_at_ms, "row %zu", i);
                cr_expect_str_eq(back.source, env.source, "row %zu", i);
                cr_expect((!back.company_id && !env.company_id) ||
                              (back.company_id && env.company_id &&
                               !strcmp(back.company_id, env.company_id)),
                          "row %zu: companyId", i);
                cr_expect((!back.subject_id && !env.subject_id) ||
                              (back.subject_id && env.subject_id &&
                               !strcmp(back.subject_id, env.subject_id)),
                          "row %zu: subjectId", i);
                cr_expect(json_equal(back.payload, env.payload), "row %zu: payload", i);
                cr_expect_eq(back.received_at_ms, RECEIVED_AT, "row %zu", i);
                cr_expect_null(back.entry, "row %zu", i);
                cr_expect_eq(back.prefix[0], '\0', "row %zu", i);
                ab_envelope_clear(&back);
                ab_envelope_clear(&env);
        }
        json_decref(all);
        ab_avro_codec_destroy(codec);
}

Test(avro, v1_reader_reads_v2_data_without_the_new_field) {
        ab_avro_codec_t *v1 = codec_file(NULL), *v2 = codec_file(FIXTURES "envelope.v2.avsc");
        char buf[8192], errstr[256];
        json_t *item, *doc, *exp;
        ab_envelope_t env;
        size_t n;

        codec_learn(v1, FIXTURES "envelope.v2.avsc");
        item = json_load_file(FIXTURES "v2-event.json", 0, NULL);
        cr_assert(item);
        env_parse(item, &env);
        n = encode(v2, &env, buf, sizeof(buf));
        cr_assert_neq(ab_avro_codec_fingerprint(v1), ab_avro_codec_fingerprint(v2));

        doc = decode_ok(v2, buf, n);
        cr_expect_str_eq(json_string_value(json_object_get(doc, "traceId")),
                         "4bf92f3577b34da6a3ce929d0e0e4736", "v2 reader keeps traceId");
        json_decref(doc);

        doc = decode_ok(v1, buf, n);
        exp = expected(env.doc, v1_fields);
        assert_doc(doc, exp, "v1 reads v2", 0);
        cr_expect_null(json_object_get(doc, "traceId"));
        json_decref(doc);
        json_decref(exp);

        /* a v1 codec that never saw the v2 schema cannot read it */
        ab_avro_codec_destroy(v1);
        v1 = codec_file(NULL);
        cr_expect_eq(ab_avro_decode(v1, buf, n, &doc, errstr, sizeof(errstr)), AB_ERR_UNKNOWN);
        ab_envelope_clear(&env);
        json_decref(item);
        ab_avro_codec_destroy(v1);
        ab_avro_codec_destroy(v2);
}

Test(avro, v2_reader_reads_v1_data_with_the_default) {
        ab_avro_codec_t *v1 = codec_file(NULL), *v2 = codec_file(FIXTURES "envelope.v2.avsc");
        char buf[8192];
        json_t *all, *item, *doc, *exp;
        ab_envelope_t env;
        size_t i, n;

        codec_learn(v2, AB_SCHEMA_DIR "/envelope.avsc");
        all = fixtures();
        json_array_foreach(all, i, item) {
                env_parse(item, &env);
                n = encode(v1, &env, buf, sizeof(buf));
                doc = decode_ok(v2, buf, n);
                exp = expected(env.doc, v1_fields); /* traceId: default null, left out */
                assert_doc(doc, exp, "v2 reads v1", i);
                json_decref(doc);
                json_decref(exp);
                ab_envelope_clear(&env);
        }
        json_decref(all);
        ab_avro_codec_destroy(v1);
        ab_avro_codec_destroy(v2);
}

Test(avro, v2_reader_fills_a_non_null_default) {
        static const char v3[] =
            "{\"type\":\"record\",\"name\":\"Envelope\",\"namespace\":\"io.aetherbus.v1\","
            "\"fields\":[{\"name\":\"id\",\"type\":\"string\"},"
            "{\"name\":\"name\",\"type\":\"string\"},"
            "{\"name\":\"schemaVersion\",\"type\":\"int\"},"
            "{\"name\":\"occurredAt\",\"type\":\"string\"},"
            "{\"name\":\"source\",\"type\":\"string\"},"
            "{\"name\":\"companyId\",\"type\":[\"null\",\"string\"],\"default\":null},"
            "{\"name\":\"subjectId\",\"type\":[\"null\",\"string\"],\"default\":null},"
            "{\"name\":\"payload\",\"type\":\"string\"},"
            "{\"name\":\"receivedAt\",\"type\":\"long\"},"
            "{\"name\":\"region\",\"type\":\"string\",\"default\":\"eu\"},"
            "{\"name\":\"attempt\",\"type\":\"long\",\"default\":1}]}";
        ab_avro_codec_t *v1 = codec_file(NULL), *r;
        char buf[8192], errstr[256];
        json_t *item, *doc;
        ab_envelope_t env;
        size_t n;

        r = ab_avro_codec_new(v3, errstr, sizeof(errstr));
        cr_assert(r, "%s", errstr);
        codec_learn(r, AB_SCHEMA_DIR "/envelope.avsc");
        item = json_load_file(FIXTURES "spec-example.json", 0, NULL);
        cr_assert(item);
        env_parse(item, &env);
        n = encode(v1, &env, buf, sizeof(buf));
        doc = decode_ok(r, buf, n);
        cr_expect_str_eq(json_string_value(json_object_get(doc, "region")), "eu");
        cr_expect_eq(json_integer_value(json_object_get(doc, "attempt")), 1);
        cr_expect_str_eq(json_string_value(json_object_get(doc, "id")), "evt_123");
        json_decref(doc);
        ab_envelope_clear(&env);
        json_decref(item);
        ab_avro_codec_destroy(r);
        ab_avro_codec_destroy(v1);
}

Test(avro, add_schema_refuses_writers_that_do_not_resolve) {
        /* each row replaces the v1 fields with these */
        static const struct {
                const char *fields;
                ab_err_t err;
        } rows[] = {
            /* payload became an int: incompatible type */
            {"{\"name\":\"id\",\"type\":\"string\"},{\"name\":\"name\",\"type\":\"string\"},"
             "{\"name\":\"schemaVersion\",\"type\":\"int\"},"
             "{\"name\":\"occurredAt\",\"type\":\"string\"},"
             "{\"name\":\"source\",\"type\":\"string\"},"
             "{\"name\":\"companyId\",\"type\":[\"null\",\"string\"]},"
             "{\"name\":\"subjectId\",\"type\":[\"null\",\"string\"]},"
             "{\"name\":\"payload\",\"type\":\"int\"},{\"name\":\"receivedAt\",\"type\":\"long\"}",
             AB_ERR_INVALID},
            /* no id, and the reader has no default for it */
            {"{\"name\":\"name\",\"type\":\"string\"},"
             "{\"name\":\"schemaVersion\",\"type\":\"int\"},"
             "{\"name\":\"occurredAt\",\"type\":\"string\"},"
             "{\"name\":\"source\",\"type\":\"string\"},"
             "{\"name\":\"payload\",\"type\":\"string\"},{\"name\":\"receivedAt\",\"type\":\"long\"}",
             AB_ERR_INVALID},
            /* companyId became a plain int */
            {"{\"name\":\"id\",\"type\":\"string\"},{\"name\":\"name\",\"type\":\"string\"},"
             "{\"name\":\"schemaVersion\",\"type\":\"int\"},"
             "{\"name\":\"occurredAt\",\"type\":\"string\"},"
             "{\"name\":\"source\",\"type\":\"string\"},"
             "{\"name\":\"companyId\",\"type\":[\"null\",\"int\"]},"
             "{\"name\":\"subjectId\",\"type\":[\"null\",\"string\"]},"
             "{\"name\":\"payload\",\"type\":\"string\"},{\"name\":\"receivedAt\",\"type\":\"long\"}",
             AB_ERR_INVALID},
        };
        ab_avro_codec_t *codec = codec_file(NULL);
        char schema[2048], errstr[256];
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                snprintf(schema, sizeof(schema),
                         "{\"type\":\"record\",\"name\":\"Envelope\","
                         "\"namespace\":\"io.aetherbus.v1\",\"fields\":[%s]}",
                         rows[i].fields);
                errstr[0] = '\0';
                cr_expect_eq(ab_avro_codec_add_schema(codec, schema, errstr, sizeof(errstr)),
                             rows[i].err, "row %zu: %s", i, errstr);
                cr_expect(errstr[0], "row %zu: errstr", i);
        }
        cr_expect_eq(ab_avro_codec_add_schema(codec, "{\"type\":\"record\",\"name\":\"Other\","
                                                     "\"fields\":[]}",
                                              errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_expect_eq(ab_avro_codec_add_schema(codec, "not json", errstr, sizeof(errstr)),
                     AB_ERR_MALFORMED);
        /* the embedded schema is known already: a no-op */
        cr_expect_eq(ab_avro_codec_add_schema(codec, ab_schema_envelope_avsc, errstr,
                                              sizeof(errstr)),
                     AB_OK);
        ab_avro_codec_destroy(codec);
}

Test(avro, codec_new_refuses_a_schema_that_is_not_an_envelope) {
        static const char *const rows[] = {
            "\"string\"",
            "{\"type\":\"record\",\"name\":\"E\",\"fields\":[{\"name\":\"id\",\"type\":\"string\"}]}",
            "{\"type\":\"record\",\"name\":\"E\",\"fields\":[{\"name\":\"x\",\"type\":"
            "{\"type\":\"array\",\"items\":\"int\"}}]}",
            "{\"type\":\"record\",\"name\":\"E\",\"fields\":[{\"name\":\"id\",\"type\":\"int\"}]}",
            "{",
        };
        char errstr[256];
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                errstr[0] = '\0';
                cr_expect_null(ab_avro_codec_new(rows[i], errstr, sizeof(errstr)), "row %zu", i);
                cr_expect(errstr[0], "row %zu: errstr", i);
        }
}

/*
 * Broken input
 */

typedef struct {
        unsigned char p[512];
        size_t len;
} bytes_t;

static void b_raw(bytes_t *b, const void *s, size_t n) {
        cr_assert(b->len + n <= sizeof(b->p));
        memcpy(b->p + b->len, s, n);
        b->len += n;
}

static void b_long(bytes_t *b, int64_t v) {
        uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);

        while (z >= 0x80) {
                b->p[b->len++] = (unsigned char)(z | 0x80);
                z >>= 7;
        }
        b->p[b->len++] = (unsigned char)z;
}

static void b_str(bytes_t *b, const char *s) {
        b_long(b, (int64_t)strlen(s));
        b_raw(b, s, strlen(s));
}

/* A v1 body by hand: \p id raw, \p id_len bytes (may be invalid UTF-8
 * or hold a NUL), \p payload text. */
static void b_record_n(bytes_t *b, const char *id, size_t id_len,
                       const char *payload) {
        ab_avro_header_write(ENVELOPE_FP, b->p);
        b->len = AB_AVRO_HEADER_SIZE;
        b_long(b, (int64_t)id_len);
        b_raw(b, id, id_len);
        b_str(b, "OrderCreated");
        b_long(b, 1);
        b_str(b, "2026-02-11T20:10:00Z");
        b_str(b, "api");
        b_long(b, 0);
        b_long(b, 1);
        b_str(b, "s1");
        b_str(b, payload);
        b_long(b, RECEIVED_AT);
}

static void b_record(bytes_t *b, const char *id, const char *payload) {
        b_record_n(b, id, strlen(id), payload);
}

Test(avro, decode_refuses_broken_records_cleanly) {
        static const unsigned char huge_len[] = {0xfe, 0xff, 0xff, 0xff, 0xff,
                                                 0xff, 0xff, 0xff, 0xff, 0x01};
        static const unsigned char long_varint[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                    0xff, 0xff, 0xff, 0xff, 0x01};
        ab_avro_codec_t *codec = codec_file(NULL);
        struct {
                const char *what;
                bytes_t b;
                ab_err_t err;
        } rows[14];
        char errstr[256];
        json_t *doc;
        size_t i, k = 0;

        memset(rows, 0, sizeof(rows));
        rows[k].what = "empty";
        rows[k++].err = AB_ERR_MALFORMED;

        rows[k].what = "one byte";
        b_raw(&rows[k].b, "\xc3", 1);
        rows[k++].err = AB_ERR_MALFORMED;

        rows[k].what = "bad magic";
        b_record(&rows[k].b, "evt", "{}");
        rows[k].b.p[1] = 0x02;
        rows[k++].err = AB_ERR_MALFORMED;

        rows[k].what = "JSON, not Avro";
        b_raw(&rows[k].b, "{\"id\":\"evt_123\"}", 16);
        rows[k++].err = AB_ERR_MALFORMED;

        rows[k].what = "unknown fingerprint";
        b_record(&rows[k].b, "evt", "{}");
        rows[k].b.p[5] ^= 0x40;
        rows[k++].err = AB_ERR_UNKNOWN;

        rows[k].what = "header only";
        ab_avro_header_write(ENVELOPE_FP, rows[k].b.p);
        rows[k].b.len = AB_AVRO_HEADER_SIZE;
        rows[k++].err = AB_ERR_MALFORMED;

        rows[k].what = "trailing byte";
        b_record(&rows[k].b, "evt", "{}");
        b_raw(&rows[k].b, "\0", 1);
        rows[k++].err = AB_ERR_MALFORMED;

        rows[k].what = "string length 2^62";
        ab_avro_header_write(ENVELOPE_FP, rows[k].b.p);
        rows[k].b.len = AB_AVRO_HEADER_SIZE;
        b_raw(&rows[k].b, huge_len, sizeof(huge_len));
        rows[k++].err = AB_ERR_MALFORMED;

        rows[k].what = "negative string length";
        ab_avro_header_write(ENVELOPE_FP, rows[k].b.p);
        rows[k].b.len = AB_AVRO_HEADER_SIZE;
        b_long(&rows[k].b, -3);
        b_raw(&rows[k].b, "abc", 3);
        rows[k++].err = AB_ERR_MALFORMED;

        rows[k].what = "11-byte varint";
        ab_avro_header_write(ENVELOPE_FP, rows[k].b.p);
        rows[k].b.len = AB_AVRO_HEADER_SIZE;
        b_raw(&rows[k].b, long_varint, sizeof(long_varint));
        rows[k++].err = AB_ERR_MALFORMED;

        rows[k].what = "union branch 2 of 2";
        b_record(&rows[k].b, "evt", "{}");
        /* companyId's branch byte sits after id, name, version, time, source */
        rows[k].b.p[AB_AVRO_HEADER_SIZE + 4 + 13 + 1 + 21 + 4] = 0x04;
        rows[k++].err = AB_ERR_MALFORMED;

        rows[k].what = "id not UTF-8";
        b_record(&rows[k].b, "ev\xff", "{}");
        rows[k++].err = AB_ERR_MALFORMED;

        rows[k].what = "payload an array";
        b_record(&rows[k].b, "evt", "[1]");
        rows[k++].err = AB_ERR_MALFORMED;

        rows[k].what = "payload not JSON";
        b_record(&rows[k].b, "evt", "{\"a\":");
        rows[k++].err = AB_ERR_MALFORMED;

        for (i = 0; i < k; i++) {
                doc = NULL;
                errstr[0] = '\0';
                cr_expect_eq(ab_avro_decode(codec, rows[i].b.p, rows[i].b.len, &doc, errstr,
                                            sizeof(errstr)),
                             rows[i].err, "row %zu (%s): %s", i, rows[i].what, errstr);
                cr_expect_null(doc, "row %zu (%s)", i, rows[i].what);
                cr_expect(errstr[0], "row %zu (%s): errstr", i, rows[i].what);
        }
        /* the hand-made record itself is fine */
        b_record(&rows[0].b, "evt", "{}");
        doc = decode_ok(codec, rows[0].b.p, rows[0].b.len);
        json_decref(doc);
        ab_avro_codec_destroy(codec);
}

/* The view checks strings eight bytes at a time: a bad byte, a NUL or a
 * multi-byte character is found wherever it sits in the word or after. */
Test(avro, view_checks_every_byte_of_a_string) {
        static const struct {
                const char *what;
                const char *bytes;
                size_t n;
                ab_err_t err;
        } rows[] = {
            {"0xff", "\xff", 1, AB_ERR_MALFORMED},
            {"NUL", "\0", 1, AB_ERR_MALFORMED},
            {"0x80", "\x80", 1, AB_ERR_MALFORMED},
            {"truncated e-acute", "\xc3", 1, AB_ERR_MALFORMED},
            {"e-acute", "\xc3\xa9", 2, AB_OK},
            {"euro", "\xe2\x82\xac", 3, AB_OK},
            {"DEL", "\x7f", 1, AB_OK},
            {"control", "\x01", 1, AB_OK},
        };
        ab_avro_codec_t *codec = codec_file(NULL);
        char id[25], errstr[256];
        ab_envelope_t env;
        bytes_t b;
        size_t r, pos;
        ab_err_t err;

        for (r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
                for (pos = 0; pos + rows[r].n <= 24; pos++) {
                        memset(id, 'a', 24);
                        memcpy(id + pos, rows[r].bytes, rows[r].n);
                        id[24] = '\0';
                        b_record_n(&b, id, 24, "{}");
                        errstr[0] = '\0';
                        err = ab_avro_decode_view(codec, b.p, b.len, &env,
                                                  errstr, sizeof(errstr));
                        cr_expect_eq(err, rows[r].err, "row %zu (%s) at %zu: %s",
                                     r, rows[r].what, pos, errstr);
                        if (err == AB_OK) {
                                cr_expect_eq(memcmp(env.id, id, 25), 0,
                                             "row %zu (%s) at %zu", r,
                                             rows[r].what, pos);
                        }
                        ab_envelope_clear(&env);
                }
        }
        ab_avro_codec_destroy(codec);
}

Test(avro, every_truncation_of_a_record_is_malformed) {
        ab_avro_codec_t *codec = codec_file(NULL);
        char buf[8192], errstr[256];
        json_t *item, *doc;
        ab_envelope_t env;
        size_t n, cut;

        item = json_load_file(FIXTURES "v2-event.json", 0, NULL);
        cr_assert(item);
        env_parse(item, &env);
        n = encode(codec, &env, buf, sizeof(buf));
        for (cut = 0; cut < n; cut++) {
                doc = NULL;
                cr_expect_eq(ab_avro_decode(codec, buf, cut, &doc, errstr, sizeof(errstr)),
                             AB_ERR_MALFORMED, "cut at %zu of %zu", cut, n);
                cr_expect_null(doc);
        }
        ab_envelope_clear(&env);
        json_decref(item);
        ab_avro_codec_destroy(codec);
}

Test(avro, decode_survives_random_corruption) {
        ab_avro_codec_t *codec = codec_file(NULL);
        char buf[8192], bad[8192], errstr[256];
        ab_envelope_t env;
        json_t *all, *item, *doc;
        uint32_t seed = 12345;
        size_t i, n, round, flips;

        codec_learn(codec, FIXTURES "envelope.v2.avsc");
        all = fixtures();
        json_array_foreach(all, i, item) {
                env_parse(item, &env);
                n = encode(codec, &env, buf, sizeof(buf));
                for (round = 0; round < 200; round++) {
                        memcpy(bad, buf, n);
                        for (flips = 0; flips < 1 + round % 4; flips++) {
                                seed = seed * 1103515245u + 12345u;
                                /* keep the header: exercise the body */
                                bad[AB_AVRO_HEADER_SIZE +
                                    (seed >> 8) % (n - AB_AVRO_HEADER_SIZE)] ^=
                                    (char)(1u << ((seed >> 4) & 7));
                        }
                        doc = NULL;
                        if (ab_avro_decode(codec, bad, n, &doc, errstr, sizeof(errstr)) ==
                            AB_OK) {
                                cr_assert(json_is_object(doc));
                                cr_assert(json_is_object(json_object_get(doc, "payload")));
                                json_decref(doc);
                        } else {
                                cr_assert_null(doc);
                        }
                }
                ab_envelope_clear(&env);
        }
        json_decref(all);
        ab_avro_codec_destroy(codec);
}

/*
 * One codec, many threads
 */

typedef struct {
        const ab_avro_codec_t *codec;
        const ab_envelope_t *env;
        int failures;
} worker_t;

static void *worker(void *arg) {
        worker_t *wk = arg;
        char buf[4096], errstr[256];
        json_t *doc;
        size_t len;
        int i;

        for (i = 0; i < 2000; i++) {
                if (ab_avro_encode(wk->codec, wk->env, buf, sizeof(buf), &len, errstr,
                                   sizeof(errstr)) ||
                    ab_avro_decode(wk->codec, buf, len, &doc, errstr, sizeof(errstr))) {
                        wk->failures++;
                        continue;
                }
                if (strcmp(json_string_value(json_object_get(doc, "id")), wk->env->id)) {
                        wk->failures++;
                }
                json_decref(doc);
        }
        return NULL;
}

Test(avro, one_codec_serves_many_threads) {
        ab_avro_codec_t *codec = codec_file(FIXTURES "envelope.v2.avsc");
        pthread_t th[4];
        worker_t wk[4];
        ab_envelope_t env[4];
        json_t *all;
        int i;

        codec_learn(codec, AB_SCHEMA_DIR "/envelope.avsc");
        all = fixtures();
        for (i = 0; i < 4; i++) {
                env_parse(json_array_get(all, (size_t)i), &env[i]);
                wk[i].codec = codec;
                wk[i].env = &env[i];
                wk[i].failures = 0;
                cr_assert_eq(pthread_create(&th[i], NULL, worker, &wk[i]), 0);
        }
        for (i = 0; i < 4; i++) {
                pthread_join(th[i], NULL);
                cr_expect_eq(wk[i].failures, 0, "thread %d", i);
                ab_envelope_clear(&env[i]);
        }
        json_decref(all);
        ab_avro_codec_destroy(codec);
}
