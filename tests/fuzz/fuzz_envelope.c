/* aetherbus - Apache-2.0
 *
 * fuzz_envelope: libFuzzer entry for ab_envelope. The input is a request
 * body: it goes through ab_envelope_json_parse(), the batch check, and
 * ab_envelope_from_json() for every item in both forms (ingest; bus with
 * x-tenant and ALLOW_UNKNOWN_PREFIXES=*; ingest with a prefix list).
 * Besides "no crash, no leak, no UB" it checks the module's promises:
 * errors leave the item untouched and the envelope cleared, an accepted
 * envelope is complete, routable and serialises to JSON that parses back,
 * the payload limit is exact (json_dumpb agrees), and time formatting
 * round-trips through the parser. The fast parser behind
 * ab_envelope_json_parse() (ab_json_parse()) must agree with jansson
 * (json_loadb with JSON_REJECT_DUPLICATES) on every input: same verdict,
 * equal trees. The
 * compact writer ab_json_dump() must write json_dumpb(JSON_COMPACT)'s
 * bytes for every parsed body, count the same size without a buffer and
 * with one a byte short, and never count less with AB_JSON_BOUND.
 * ab_json_member_texts() finds each item's payload text in every body the
 * parser took, and that text parses to the item's payload tree. Any input
 * at all leaves it within its buffer.
 * A broken promise is abort().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ab_envelope.h"
#include "ab_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
        do {                                                                   \
                if (!(cond)) {                                                 \
                        abort();                                               \
                }                                                              \
        } while (0)

static ab_catalog_t *cat;

/* Every item's payload text, as sent, is its payload: same tree. */
static void run_member_texts(const uint8_t *data, size_t size, json_t *body) {
        ab_json_text_t t[8];
        size_t cnt = json_is_array(body) ? json_array_size(body) : 1, i;
        char *buf = malloc(size + 1);
        json_t *item, *tree, *mine;

        CHECK(buf != NULL);
        memcpy(buf, data, size);
        if (cnt > 8) {
                cnt = 8;
        }
        CHECK(ab_json_member_texts(buf, size, "payload", t, cnt) == AB_OK);
        for (i = 0; i < cnt; i++) {
                item = json_is_array(body) ? json_array_get(body, i) : body;
                tree = json_is_object(item) ? json_object_get(item, "payload")
                                            : NULL;
                CHECK(!tree == !t[i].p);
                if (tree) {
                        CHECK(t[i].p >= buf && t[i].p + t[i].len <= buf + size);
                        mine = json_loadb(t[i].p, t[i].len, JSON_DECODE_ANY, NULL);
                        CHECK(mine && json_equal(mine, tree));
                        json_decref(mine);
                }
        }
        free(buf);
}

static void run_item(json_t *item, ab_form_t form, const char *tenant,
                     const char *allow) {
        ab_envelope_limits_t lim;
        ab_envelope_ctx_t ctx = {
                .catalog = cat,
                .limits = &lim,
                .form = form,
                .tenant_header = tenant,
                .allowed_prefixes = allow,
                .now_ms = 1770840600000LL,
        };
        ab_envelope_t env = {0};
        char errstr[256] = "", topic[300], *before, *after, *out;
        json_t *back;
        int64_t ms;
        size_t psize;
        ab_err_t err;

        ab_envelope_limits_default(&lim);
        before = json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY);
        err = ab_envelope_from_json(&env, item, &ctx, errstr, sizeof(errstr));
        if (err != AB_OK) {
                after = json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY);
                CHECK(before && after && !strcmp(before, after));
                CHECK(env.doc == NULL && env.id == NULL);
                CHECK(errstr[0] != '\0');
                free(before);
                free(after);
                return;
        }
        free(before);
        CHECK(env.doc && env.id && env.name && env.occurred_at &&
              env.source && json_is_object(env.payload));
        CHECK(strlen(env.id) >= 1 && strlen(env.id) <= lim.max_id_len);
        CHECK(env.schema_version == AB_ENVELOPE_SCHEMA_VERSION);
        CHECK(env.entry == NULL || !strcmp(env.entry->name, env.name));
        CHECK(env.entry != NULL || allow != NULL);
        CHECK(ab_catalog_topic("events.", env.prefix, topic, sizeof(topic)) ==
              AB_OK);
        CHECK(ab_catalog_check_source(env.entry ? env.entry->family
                                                : AB_FAMILY_PLATFORM,
                                      env.source, NULL, 0) == AB_OK);
        CHECK(ab_time_parse(env.occurred_at, &ms) == AB_OK &&
              ms == env.occurred_at_ms);
        CHECK(ab_envelope_key(&env) != NULL);
        psize = json_dumpb(env.payload, NULL, 0, JSON_COMPACT);
        CHECK(psize >= 2 && psize <= lim.max_payload_bytes);
        ab_envelope_set_received(&env, 1770840600123LL);
        out = ab_envelope_to_json(&env);
        CHECK(out != NULL);
        back = json_loads(out, JSON_REJECT_DUPLICATES, NULL);
        CHECK(back != NULL);
        CHECK(json_integer_value(json_object_get(back, "receivedAt")) ==
              1770840600123LL);
        json_decref(back);
        free(out);
        ab_envelope_clear(&env);

        /* the payload limit is exact: one byte less is refused */
        if (json_object_get(item, "payload")) {
                lim.max_payload_bytes = psize - 1;
                err = ab_envelope_from_json(&env, item, &ctx, errstr,
                                            sizeof(errstr));
                CHECK(err == AB_ERR_TOO_LARGE);
                CHECK(!strncmp(errstr, "payload: ", 9));
        }
}

static void run_time(const uint8_t *data, size_t size) {
        char s[64], out[40];
        int64_t ms, back;

        if (size >= sizeof(s)) {
                return;
        }
        memcpy(s, data, size);
        s[size] = '\0';
        if (ab_time_parse(s, &ms) != AB_OK) {
                return;
        }
        ab_time_format(ms, out, sizeof(out));
        CHECK(ab_time_parse(out, &back) == AB_OK && back == ms);
}

/* ab_json_dump() against json_dumpb(JSON_COMPACT) on one document. */
static void run_dump(const json_t *doc) {
        char *want, *got;
        size_t n;

        n = json_dumpb(doc, NULL, 0, JSON_COMPACT);
        CHECK(ab_json_dump(doc, NULL, 0, 0) == n);
        CHECK(ab_json_dump(doc, NULL, 0, AB_JSON_BOUND) >= n);
        if (n == 0) {
                return;
        }
        want = malloc(n);
        got  = malloc(n);
        CHECK(want && got);
        CHECK(json_dumpb(doc, want, n, JSON_COMPACT) == n);
        CHECK(ab_json_dump(doc, got, n, 0) == n);
        CHECK(memcmp(want, got, n) == 0);
        CHECK(ab_json_dump(doc, got, n - 1, 0) == n);
        free(want);
        free(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ab_envelope_limits_t lim;
        char errstr[256] = "";
        json_t *body, *item, *ref;
        size_t n, i;
        ab_err_t err;

        if (!cat) {
                cat = ab_catalog_new(errstr, sizeof(errstr));
                CHECK(cat != NULL);
        }
        run_time(data, size);
        {
                /* any bytes: within them, never a crash */
                ab_json_text_t t[2];
                char *copy = malloc(size + 1);

                CHECK(copy != NULL);
                memcpy(copy, data, size);
                ab_json_member_texts(copy, size, "payload", t, 2);
                free(copy);
        }
        ab_envelope_limits_default(&lim);
        body = ab_envelope_json_parse((const char *)data, size, &lim, &err,
                                      errstr, sizeof(errstr));
        ref  = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES,
                          NULL);
        if (!body) {
                CHECK(err == AB_ERR_MALFORMED || err == AB_ERR_TOO_LARGE);
                CHECK(errstr[0] != '\0');
                /* Refused by our own limits (depth, size, top-level type)
                 * or by jansson; never a text both would take. */
                CHECK(!ref || err == AB_ERR_TOO_LARGE ||
                      strstr(errstr, "nested") ||
                      !(json_is_array(ref) || json_is_object(ref)));
                json_decref(ref);
                return 0;
        }
        CHECK(err == AB_OK);
        CHECK(ref != NULL && json_equal(body, ref));
        json_decref(ref);
        run_dump(body);
        run_member_texts(data, size, body);
        if (ab_envelope_batch_check(body, &lim, &n, errstr, sizeof(errstr)) ==
            AB_OK) {
                CHECK(n >= 1 && n <= lim.max_batch);
                for (i = 0; i < n; i++) {
                        item = ab_envelope_batch_item(body, i);
                        CHECK(item != NULL);
                        run_item(item, AB_FORM_INGEST, NULL, NULL);
                        run_item(item, AB_FORM_BUS, "tenant-h", "*");
                        run_item(item, AB_FORM_INGEST, NULL, "crm, inventory");
                }
                CHECK(ab_envelope_batch_item(body, n) == NULL);
        }
        json_decref(body);
        return 0;
}
