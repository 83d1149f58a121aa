/* aetherbus - Apache-2.0
 *
 * Unit tests of ab_envelope: the fixtures (spec example, a v1 event of
 * every catalog name, the bus examples, the invalid table with the exact
 * error of each row), bus normalisation, the JSON limits (depth, size,
 * batch), and the payload size rule (time: test_time.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "ab_envelope.h"

#define FIXTURES AB_SCHEMA_DIR "/fixtures/"
/* 2026-02-11T20:10:00.000Z, the spec example's occurredAt */
#define NOW_MS 1770840600000LL

static ab_catalog_t *cat;
static ab_envelope_limits_t lim;

static void setup(void) {
        char errstr[256] = "";

        cat = ab_catalog_new(errstr, sizeof(errstr));
        cr_assert_not_null(cat, "catalog: %s", errstr);
        ab_envelope_limits_default(&lim);
}

static void teardown(void) {
        ab_catalog_destroy(cat);
        cat = NULL;
}

TestSuite(envelope, .init = setup, .fini = teardown);

static ab_envelope_ctx_t mkctx(ab_form_t form) {
        ab_envelope_ctx_t ctx = {
                .catalog = cat,
                .limits = &lim,
                .form = form,
                .now_ms = NOW_MS,
        };
        return ctx;
}

/* The item must validate; the failure message is the validator's. */
static void accept(ab_envelope_t *env, json_t *item,
                   const ab_envelope_ctx_t *ctx) {
        char errstr[256];

        cr_assert_eq(ab_envelope_from_json(env, item, ctx, errstr,
                                           sizeof(errstr)),
                     AB_OK, "%s", errstr);
}

static json_t *load(const char *file) {
        json_error_t jerr;
        char path[512];
        json_t *j;

        snprintf(path, sizeof(path), FIXTURES "%s", file);
        j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        cr_assert_not_null(j, "%s: %s (line %d)", path, jerr.text, jerr.line);
        return j;
}

static json_t *text(const char *s) {
        json_error_t jerr;
        json_t *j = json_loads(s, 0, &jerr);

        cr_assert_not_null(j, "%s: %s", s, jerr.text);
        return j;
}

static char *repeat(char c, size_t n) {
        char *s = malloc(n + 1);

        cr_assert_not_null(s);
        memset(s, c, n);
        s[n] = '\0';
        return s;
}

/* Whether \p s looks like a lowercase v4 UUID. */
static int is_uuid_v4(const char *s) {
        size_t i;

        if (!s || strlen(s) != 36) {
                return 0;
        }
        for (i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-') {
                                return 0;
                        }
                } else if (!strchr("0123456789abcdef", s[i])) {
                        return 0;
                }
        }
        return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

/*
 * Fixtures
 */

Test(envelope, accepts_the_spec_002_example) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_t env = {0};
        json_t *item = load("spec-example.json");

        accept(&env, item, &ctx);
        cr_assert_str_eq(env.id, "evt_123");
        cr_assert_str_eq(env.name, "ProductViewed");
        cr_assert_eq(env.schema_version, 1);
        cr_assert_str_eq(env.occurred_at, "2026-02-11T20:10:00.000Z");
        cr_assert_eq(env.occurred_at_ms, NOW_MS);
        cr_assert_str_eq(env.source, "storefront");
        cr_assert_str_eq(env.company_id, "c1");
        cr_assert_str_eq(env.subject_id, "p1");
        cr_assert_str_eq(json_string_value(json_object_get(env.payload,
                                                           "sku")),
                         "SKU-001");
        cr_assert_eq(env.received_at_ms, 0);
        cr_assert_not_null(env.entry);
        cr_assert_str_eq(env.entry->name, "ProductViewed");
        cr_assert_str_eq(env.prefix, "commerce");
        cr_assert_str_eq(ab_envelope_key(&env), "c1");
        ab_envelope_clear(&env);
        json_decref(item);
}

Test(envelope, accepts_every_v1_fixture_event) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_t env = {0};
        json_t *arr = load("v1-events.json");
        char errstr[256];
        size_t i;

        cr_assert(json_is_array(arr));
        for (i = 0; i < json_array_size(arr); i++) {
                errstr[0] = '\0';
                cr_assert_eq(ab_envelope_from_json(&env,
                                                   json_array_get(arr, i),
                                                   &ctx, errstr,
                                                   sizeof(errstr)),
                             AB_OK, "row %zu: %s", i, errstr);
                ab_envelope_clear(&env);
        }
        json_decref(arr);
}

Test(envelope, v1_fixture_has_one_event_of_every_catalog_name) {
        json_t *arr = load("v1-events.json");
        const char *name;
        size_t i, j, hits;

        cr_assert_eq(json_array_size(arr), ab_catalog_count(cat));
        for (i = 0; i < ab_catalog_count(cat); i++) {
                hits = 0;
                for (j = 0; j < json_array_size(arr); j++) {
                        name = json_string_value(json_object_get(
                            json_array_get(arr, j), "name"));
                        hits += name && !strcmp(name,
                                                ab_catalog_get(cat, i)->name);
                }
                cr_assert_eq(hits, 1, "catalog entry %zu (%s): %zu events", i,
                             ab_catalog_get(cat, i)->name, hits);
        }
        json_decref(arr);
}

Test(envelope, routes_every_v1_fixture_to_its_catalog_prefix) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_t env = {0};
        json_t *arr = load("v1-events.json");
        const ab_catalog_entry_t *e;
        char errstr[256];
        size_t i;

        for (i = 0; i < json_array_size(arr); i++) {
                cr_assert_eq(ab_envelope_from_json(&env,
                                                   json_array_get(arr, i),
                                                   &ctx, errstr,
                                                   sizeof(errstr)),
                             AB_OK, "row %zu: %s", i, errstr);
                e = ab_catalog_find(cat, env.name);
                cr_assert_eq(env.entry, e, "row %zu", i);
                cr_assert_str_eq(env.prefix, e->prefix, "row %zu", i);
                ab_envelope_clear(&env);
        }
        json_decref(arr);
}

Test(envelope, accepts_every_bus_example) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_BUS);
        ab_envelope_t env = {0};
        json_t *arr = load("bus-examples.json");
        char errstr[256];
        size_t i;

        cr_assert_gt(json_array_size(arr), 0);
        for (i = 0; i < json_array_size(arr); i++) {
                errstr[0] = '\0';
                cr_assert_eq(ab_envelope_from_json(&env,
                                                   json_array_get(arr, i),
                                                   &ctx, errstr,
                                                   sizeof(errstr)),
                             AB_OK, "row %zu: %s", i, errstr);
                ab_envelope_clear(&env);
        }
        json_decref(arr);
}

/* Runs row \p i of invalid-envelopes.json; returns the error. */
static ab_err_t run_invalid_row(json_t *row, size_t i, ab_envelope_t *env,
                                char *errstr, size_t errstr_size) {
        ab_envelope_limits_t rl;
        ab_envelope_ctx_t ctx;
        json_t *limits = json_object_get(row, "limits");
        const char *form = json_string_value(json_object_get(row, "form"));

        ab_envelope_limits_default(&rl);
        if (json_object_get(limits, "max_id_len")) {
                rl.max_id_len = (size_t)json_integer_value(
                    json_object_get(limits, "max_id_len"));
        }
        if (json_object_get(limits, "max_payload_bytes")) {
                rl.max_payload_bytes = (size_t)json_integer_value(
                    json_object_get(limits, "max_payload_bytes"));
        }
        ctx = mkctx(form && !strcmp(form, "bus") ? AB_FORM_BUS
                                                  : AB_FORM_INGEST);
        ctx.limits = &rl;
        ctx.tenant_header =
            json_string_value(json_object_get(row, "tenant"));
        ctx.allowed_prefixes =
            json_string_value(json_object_get(row, "allow"));
        cr_assert_not_null(json_object_get(row, "item"), "row %zu", i);
        return ab_envelope_from_json(env, json_object_get(row, "item"), &ctx,
                                     errstr, errstr_size);
}

Test(envelope, rejects_every_invalid_fixture_with_its_exact_error) {
        json_t *rows = load("invalid-envelopes.json");
        ab_envelope_t env = {0};
        json_t *row;
        char errstr[256];
        ab_err_t err;
        size_t i;

        cr_assert_gt(json_array_size(rows), 50);
        json_array_foreach(rows, i, row) {
                errstr[0] = '\0';
                err = run_invalid_row(row, i, &env, errstr, sizeof(errstr));
                cr_assert_neq(err, AB_OK, "row %zu accepted", i);
                cr_assert_str_eq(errstr,
                                 json_string_value(
                                     json_object_get(row, "error")),
                                 "row %zu", i);
                cr_assert_str_eq(ab_err2name(err),
                                 json_string_value(
                                     json_object_get(row, "code")),
                                 "row %zu: %s", i, errstr);
                cr_assert_null(env.doc, "row %zu", i);
        }
        json_decref(rows);
}

Test(envelope, leaves_a_rejected_item_untouched) {
        json_t *rows = load("invalid-envelopes.json");
        ab_envelope_t env = {0};
        json_t *row;
        char *before, *after, errstr[256];
        size_t i;

        json_array_foreach(rows, i, row) {
                before = json_dumps(json_object_get(row, "item"),
                                    JSON_COMPACT | JSON_ENCODE_ANY);
                run_invalid_row(row, i, &env, errstr, sizeof(errstr));
                after = json_dumps(json_object_get(row, "item"),
                                   JSON_COMPACT | JSON_ENCODE_ANY);
                cr_assert_str_eq(after, before, "row %zu", i);
                free(before);
                free(after);
        }
        json_decref(rows);
}

/*
 * Ingest form
 */

#define ENV_HEAD "{\"id\":\"evt_1\",\"schemaVersion\":1,"
#define PV "\"name\":\"ProductViewed\",\"source\":\"storefront\","
#define AT "\"occurredAt\":\"2026-02-11T20:10:00.000Z\","

Test(envelope, accepts_valid_edge_cases) {
        static const struct {
                const char *json;
                const char *allow;
                const char *prefix;
                int64_t ms;
        } rows[] = {
                {ENV_HEAD PV AT "\"payload\":{}}", NULL, "commerce", NOW_MS},
                {ENV_HEAD PV "\"occurredAt\":\"2026-02-11T21:10:00+01:00\","
                             "\"payload\":{}}",
                 NULL, "commerce", NOW_MS},
                {ENV_HEAD PV "\"occurredAt\":\"2026-02-11t20:10:00z\","
                             "\"payload\":{}}",
                 NULL, "commerce", NOW_MS},
                {ENV_HEAD PV "\"occurredAt\":\"2026-02-11T20:10:00.5-00:00\","
                             "\"payload\":{}}",
                 NULL, "commerce", NOW_MS + 500},
                {ENV_HEAD PV AT "\"companyId\":null,\"subjectId\":null,"
                                "\"payload\":{}}",
                 NULL, "commerce", NOW_MS},
                {ENV_HEAD PV AT "\"traceId\":\"abc\",\"extra\":{\"a\":[1]},"
                                "\"receivedAt\":\"soon\",\"payload\":{}}",
                 NULL, "commerce", NOW_MS},
                {ENV_HEAD "\"name\":\"inventory.stock.low\",\"source\":"
                          "\"wms\"," AT "\"payload\":{}}",
                 "*", "inventory", NOW_MS},
                {ENV_HEAD "\"name\":\"inventory.stock.low\",\"source\":"
                          "\"wms\"," AT "\"payload\":{}}",
                 " crm , inventory", "inventory", NOW_MS},
                {ENV_HEAD "\"name\":\"crm.record.archived\",\"source\":"
                          "\"peakpro\"," AT "\"payload\":{}}",
                 "crm", "crm", NOW_MS},
                {ENV_HEAD "\"name\":\"crm.record.updated\",\"source\":"
                          "\"storefront\"," AT "\"payload\":{}}",
                 NULL, "crm", NOW_MS},
                {ENV_HEAD "\"name\":\"AgentHeartbeat\",\"source\":\"agent\","
                          "\"occurredAt\":\"2024-02-29T00:00:00Z\","
                          "\"payload\":{\"a\":{\"b\":[1,2.5,true,null]}}}",
                 NULL, "agent", 1709164800000LL},
        };
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_t env = {0};
        char errstr[256];
        json_t *item;
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                item = text(rows[i].json);
                ctx.allowed_prefixes = rows[i].allow;
                errstr[0] = '\0';
                cr_assert_eq(ab_envelope_from_json(&env, item, &ctx, errstr,
                                                   sizeof(errstr)),
                             AB_OK, "row %zu: %s", i, errstr);
                cr_assert_str_eq(env.prefix, rows[i].prefix, "row %zu", i);
                cr_assert_eq(env.occurred_at_ms, rows[i].ms, "row %zu", i);
                ab_envelope_clear(&env);
                json_decref(item);
        }
}

Test(envelope, accepts_id_and_company_id_at_their_length_limits) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_t env = {0};
        char *id = repeat('i', 128), *co = repeat('c', 256);
        json_t *item = load("spec-example.json");

        json_object_set_new(item, "id", json_string(id));
        json_object_set_new(item, "companyId", json_string(co));
        accept(&env, item, &ctx);
        ab_envelope_clear(&env);
        json_decref(item);
        free(id);
        free(co);
}

Test(envelope, allowed_unknown_prefix_has_no_catalog_entry) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_t env = {0};
        json_t *item = text(ENV_HEAD "\"name\":\"inventory.stock.low\","
                                     "\"source\":\"wms\"," AT
                                     "\"payload\":{}}");

        ctx.allowed_prefixes = "inventory";
        accept(&env, item, &ctx);
        cr_assert_null(env.entry);
        cr_assert_str_eq(env.prefix, "inventory");
        ab_envelope_clear(&env);
        json_decref(item);
}

Test(envelope, unknown_prefixes_never_name_the_failure_topics) {
        static const char *const names[] = {"rejected.x", "deadletter.x.y",
                                            "audit-checkpoints.x", NULL};
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_t env = {0};
        char body[256], errstr[256];
        json_t *item;
        int i;

        ctx.allowed_prefixes = "*";
        for (i = 0; names[i]; i++) {
                snprintf(body, sizeof(body),
                         ENV_HEAD "\"name\":\"%s\",\"source\":\"wms\"," AT
                                  "\"payload\":{}}",
                         names[i]);
                item = text(body);
                cr_assert_eq(ab_envelope_from_json(&env, item, &ctx, errstr,
                                                   sizeof(errstr)),
                             AB_ERR_INVALID, "%s", names[i]);
                cr_assert(strstr(errstr, "reserved"), "%s", errstr);
                json_decref(item);
        }
}

Test(envelope, rejects_future_schema_version) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_t env = {0};
        json_t *item = load("spec-example.json");
        char errstr[256];

        json_object_set_new(item, "schemaVersion",
                            json_integer(AB_ENVELOPE_SCHEMA_VERSION + 1));
        cr_assert_eq(ab_envelope_from_json(&env, item, &ctx, errstr,
                                           sizeof(errstr)),
                     AB_ERR_UNSUPPORTED);
        cr_assert_str_eq(errstr,
                         "schemaVersion: 2 is newer than this server's 1");
        json_decref(item);
}

Test(envelope, keeps_unknown_top_level_fields) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_t env = {0};
        json_t *item = load("spec-example.json"), *back;
        char *out;

        json_object_set_new(item, "traceId", json_string("4bf92f35"));
        json_object_set_new(item, "v2Field", json_pack("{s:i}", "n", 1));
        accept(&env, item, &ctx);
        out = ab_envelope_to_json(&env);
        back = text(out);
        cr_assert_str_eq(json_string_value(json_object_get(back, "traceId")),
                         "4bf92f35");
        cr_assert_eq(json_integer_value(json_object_get(
                         json_object_get(back, "v2Field"), "n")),
                     1);
        free(out);
        json_decref(back);
        ab_envelope_clear(&env);
        json_decref(item);
}

Test(envelope, ingest_form_views_point_into_the_item_without_copy) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_t env = {0};
        json_t *item = load("spec-example.json");

        accept(&env, item, &ctx);
        cr_assert_eq(env.doc, item);
        cr_assert_eq(item->refcount, 2);
        cr_assert_eq(env.id, json_string_value(json_object_get(item, "id")));
        cr_assert_eq(env.name,
                     json_string_value(json_object_get(item, "name")));
        cr_assert_eq(env.payload, json_object_get(item, "payload"));
        ab_envelope_clear(&env);
        cr_assert_eq(item->refcount, 1);
        json_decref(item);
}

Test(envelope, rejects_non_object_items) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_t env = {0};
        json_t *items[] = {json_array(), json_integer(1), json_string("x"),
                           json_null(), NULL};
        char errstr[256];
        size_t i;

        for (i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
                cr_assert_eq(ab_envelope_from_json(&env, items[i], &ctx,
                                                   errstr, sizeof(errstr)),
                             AB_ERR_INVALID, "row %zu", i);
                cr_assert_str_eq(errstr, "item: must be an object",
                                 "row %zu", i);
                json_decref(items[i]);
        }
}

Test(envelope, clears_a_reused_envelope_on_error) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_t env = {0};
        json_t *good = load("spec-example.json");
        json_t *bad = text("{\"schemaVersion\":1}");
        char errstr[256];

        cr_assert_eq(ab_envelope_from_json(&env, good, &ctx, errstr,
                                           sizeof(errstr)),
                     AB_OK);
        cr_assert_neq(ab_envelope_from_json(&env, bad, &ctx, errstr,
                                            sizeof(errstr)),
                      AB_OK);
        cr_assert_null(env.doc);
        cr_assert_null(env.id);
        cr_assert_eq(good->refcount, 1);
        json_decref(good);
        json_decref(bad);
}

Test(envelope, without_catalog_is_an_internal_error) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_t env = {0};
        json_t *item = load("spec-example.json");
        char errstr[256];

        ctx.catalog = NULL;
        cr_assert_eq(ab_envelope_from_json(&env, item, &ctx, errstr,
                                           sizeof(errstr)),
                     AB_ERR_INTERNAL);
        json_decref(item);
}

/*
 * Bus form
 */

static json_t *bus_example(size_t i) {
        json_t *arr = load("bus-examples.json");
        json_t *item = json_incref(json_array_get(arr, i));

        json_decref(arr);
        cr_assert_not_null(item);
        return item;
}

Test(envelope, normalises_the_spec_000_bus_example) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_BUS);
        ab_envelope_t env = {0};
        json_t *item = bus_example(0);

        accept(&env, item, &ctx);
        cr_assert_neq(env.doc, item);
        cr_assert_str_eq(env.name, "scheduler.import.completed");
        cr_assert_str_eq(json_string_value(json_object_get(env.doc, "name")),
                         "scheduler.import.completed");
        cr_assert_null(json_object_get(env.doc, "type"));
        cr_assert_null(json_object_get(env.doc, "tenant"));
        cr_assert_str_eq(env.company_id, "acme");
        cr_assert_str_eq(
            json_string_value(json_object_get(env.doc, "companyId")), "acme");
        cr_assert_eq(env.schema_version, 1);
        cr_assert_eq(json_integer_value(json_object_get(env.doc,
                                                        "schemaVersion")),
                     1);
        cr_assert_str_eq(env.source, "command-center");
        cr_assert_null(env.subject_id);
        cr_assert_eq(env.payload, json_object_get(item, "payload"));
        cr_assert_str_eq(env.prefix, "scheduler");
        cr_assert_not_null(env.entry);
        ab_envelope_clear(&env);
        json_decref(item);
}

Test(envelope, bus_form_generates_a_uuid_v4_id_when_absent) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_BUS);
        ab_envelope_t env = {0};
        json_t *item = bus_example(0);

        accept(&env, item, &ctx);
        cr_assert(is_uuid_v4(env.id), "id %s", env.id);
        cr_assert_str_eq(json_string_value(json_object_get(env.doc, "id")),
                         env.id);
        ab_envelope_clear(&env);
        json_decref(item);
}

Test(envelope, bus_form_generates_occurred_at_from_the_clock) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_BUS);
        ab_envelope_t env = {0};
        json_t *item = bus_example(0);

        ctx.now_ms = NOW_MS + 7;
        accept(&env, item, &ctx);
        cr_assert_str_eq(env.occurred_at, "2026-02-11T20:10:00.007Z");
        cr_assert_str_eq(
            json_string_value(json_object_get(env.doc, "occurredAt")),
            "2026-02-11T20:10:00.007Z");
        cr_assert_eq(env.occurred_at_ms, NOW_MS + 7);
        ab_envelope_clear(&env);
        json_decref(item);
}

Test(envelope, bus_form_with_zero_clock_uses_real_time) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_BUS);
        ab_envelope_t env = {0};
        json_t *item = bus_example(0);
        struct timespec ts;
        int64_t before, after;

        ctx.now_ms = 0;
        clock_gettime(CLOCK_REALTIME, &ts);
        before = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        accept(&env, item, &ctx);
        clock_gettime(CLOCK_REALTIME, &ts);
        after = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        cr_assert_geq(env.occurred_at_ms, before);
        cr_assert_leq(env.occurred_at_ms, after);
        ab_envelope_clear(&env);
        json_decref(item);
}

Test(envelope, bus_form_keeps_a_given_id_and_occurred_at) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_BUS);
        ab_envelope_t env = {0};
        json_t *item = bus_example(3);

        accept(&env, item, &ctx);
        cr_assert_str_eq(env.id, "b5d1e0a2-7c1f-4f5e-9a31-2f0c8d6e4b17");
        cr_assert_str_eq(env.occurred_at, "2026-02-11T21:10:00+01:00");
        cr_assert_eq(env.occurred_at_ms, NOW_MS);
        ab_envelope_clear(&env);
        json_decref(item);
}

Test(envelope, bus_body_tenant_wins_over_x_tenant_header) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_BUS);
        ab_envelope_t env = {0};
        json_t *item = bus_example(0);

        ctx.tenant_header = "from-header";
        accept(&env, item, &ctx);
        cr_assert_str_eq(env.company_id, "acme");
        ab_envelope_clear(&env);
        json_decref(item);
}

Test(envelope, bus_x_tenant_header_fills_company_id_when_tenant_absent) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_BUS);
        ab_envelope_t env = {0};
        json_t *item = bus_example(1);

        ctx.tenant_header = "t-42";
        accept(&env, item, &ctx);
        cr_assert_str_eq(env.company_id, "t-42");
        cr_assert_str_eq(
            json_string_value(json_object_get(env.doc, "companyId")), "t-42");
        cr_assert_str_eq(ab_envelope_key(&env), "t-42");
        ab_envelope_clear(&env);
        json_decref(item);
}

Test(envelope, bus_tenant_wins_over_company_id_in_the_body) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_BUS);
        ab_envelope_t env = {0};
        json_t *item = bus_example(0);

        json_object_set_new(item, "companyId", json_string("other"));
        accept(&env, item, &ctx);
        cr_assert_str_eq(env.company_id, "acme");
        ab_envelope_clear(&env);
        json_decref(item);
}

Test(envelope, bus_without_tenant_or_header_is_keyed_by_id) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_BUS);
        ab_envelope_t env = {0};
        json_t *item = bus_example(1);

        ctx.tenant_header = "";
        accept(&env, item, &ctx);
        cr_assert_null(env.company_id);
        cr_assert_null(json_object_get(env.doc, "companyId"));
        cr_assert_eq(ab_envelope_key(&env), env.id);
        ab_envelope_clear(&env);
        json_decref(item);
}

Test(envelope, bus_rejects_an_x_tenant_header_that_is_not_utf8) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_BUS);
        ab_envelope_t env = {0};
        json_t *item = bus_example(1);
        char errstr[256];

        ctx.tenant_header = "t\xff";
        cr_assert_eq(ab_envelope_from_json(&env, item, &ctx, errstr,
                                           sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert_str_eq(errstr, "x-tenant: must be UTF-8");
        json_decref(item);
}

Test(envelope, bus_payload_defaults_to_an_empty_object) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_BUS);
        ab_envelope_t env = {0};
        json_t *item = bus_example(5);

        cr_assert_null(json_object_get(item, "payload"));
        accept(&env, item, &ctx);
        cr_assert(json_is_object(env.payload));
        cr_assert_eq(json_object_size(env.payload), 0);
        cr_assert_eq(env.payload, json_object_get(env.doc, "payload"));
        ab_envelope_clear(&env);
        json_decref(item);
}

Test(envelope, bus_keeps_unknown_fields_and_leaves_the_item_unchanged) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_BUS);
        ab_envelope_t env = {0};
        json_t *item = bus_example(4);
        char *before, *after;

        before = json_dumps(item, JSON_COMPACT);
        accept(&env, item, &ctx);
        cr_assert_str_eq(
            json_string_value(json_object_get(env.doc, "traceId")),
            "4bf92f3577b34da6a3ce929d0e0e4736");
        after = json_dumps(item, JSON_COMPACT);
        cr_assert_str_eq(after, before);
        free(before);
        free(after);
        ab_envelope_clear(&env);
        json_decref(item);
}

Test(envelope, bus_business_name_takes_a_business_source) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_BUS);
        ab_envelope_t env = {0};
        json_t *item = bus_example(6);

        accept(&env, item, &ctx);
        cr_assert_str_eq(env.name, "OrderCreated");
        cr_assert_str_eq(env.prefix, "commerce");
        ab_envelope_clear(&env);
        json_decref(item);
}

/*
 * receivedAt, serialisation, key
 */

Test(envelope, set_received_writes_received_at_into_the_doc) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_t env = {0};
        json_t *item = load("spec-example.json");
        char errstr[256];

        cr_assert_eq(ab_envelope_from_json(&env, item, &ctx, errstr,
                                           sizeof(errstr)),
                     AB_OK);
        ab_envelope_set_received(&env, NOW_MS + 250);
        cr_assert_eq(env.received_at_ms, NOW_MS + 250);
        cr_assert_eq(json_integer_value(json_object_get(env.doc,
                                                        "receivedAt")),
                     NOW_MS + 250);
        ab_envelope_set_received(&env, NOW_MS + 251);
        cr_assert_eq(json_integer_value(json_object_get(env.doc,
                                                        "receivedAt")),
                     NOW_MS + 251);
        ab_envelope_clear(&env);
        json_decref(item);
}

Test(envelope, set_received_replaces_a_client_received_at) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_t env = {0};
        json_t *item = load("spec-example.json");
        char errstr[256];

        json_object_set_new(item, "receivedAt", json_string("yesterday"));
        cr_assert_eq(ab_envelope_from_json(&env, item, &ctx, errstr,
                                           sizeof(errstr)),
                     AB_OK);
        ab_envelope_set_received(&env, 5);
        cr_assert_eq(json_integer_value(json_object_get(env.doc,
                                                        "receivedAt")),
                     5);
        ab_envelope_clear(&env);
        json_decref(item);
}

Test(envelope, to_json_serialises_the_normalised_doc) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_BUS);
        ab_envelope_t env = {0};
        json_t *item = bus_example(0), *back;
        char errstr[256], *out;

        cr_assert_eq(ab_envelope_from_json(&env, item, &ctx, errstr,
                                           sizeof(errstr)),
                     AB_OK);
        ab_envelope_set_received(&env, NOW_MS);
        out = ab_envelope_to_json(&env);
        cr_assert_not_null(out);
        cr_assert_null(strchr(out, '\n'));
        back = text(out);
        cr_assert(json_equal(back, env.doc));
        cr_assert_eq(json_integer_value(json_object_get(back, "receivedAt")),
                     NOW_MS);
        cr_assert_str_eq(json_string_value(json_object_get(back, "name")),
                         "scheduler.import.completed");
        json_decref(back);
        free(out);
        ab_envelope_clear(&env);
        json_decref(item);
}

Test(envelope, key_is_company_id_else_id) {
        ab_envelope_t env = {0};

        env.id = "evt_1";
        cr_assert_str_eq(ab_envelope_key(&env), "evt_1");
        env.company_id = "c1";
        cr_assert_str_eq(ab_envelope_key(&env), "c1");
}

Test(envelope, clear_twice_is_safe) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_t env = {0};
        json_t *item = load("spec-example.json");
        char errstr[256];

        cr_assert_eq(ab_envelope_from_json(&env, item, &ctx, errstr,
                                           sizeof(errstr)),
                     AB_OK);
        ab_envelope_clear(&env);
        ab_envelope_clear(&env);
        cr_assert_null(env.doc);
        cr_assert_null(ab_envelope_to_json(&env));
        json_decref(item);
}

Test(envelope, limits_default_to_the_documented_values) {
        ab_envelope_limits_t l;

        ab_envelope_limits_default(&l);
        cr_assert_eq(l.max_id_len, 128);
        cr_assert_eq(l.max_payload_bytes, 64 * 1024);
        cr_assert_eq(l.max_batch, 1000);
        cr_assert_eq(l.max_input_bytes, 1024 * 1024);
        cr_assert_eq(l.max_depth, 32);
}

/*
 * Payload size limit
 */

/* Accepts \p item (ingest) with the payload limit at \p limit. */
static ab_err_t with_payload_limit(json_t *item, size_t limit) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_limits_t l = lim;
        ab_envelope_t env = {0};
        char errstr[256];
        ab_err_t err;

        l.max_payload_bytes = limit;
        ctx.limits = &l;
        err = ab_envelope_from_json(&env, item, &ctx, errstr, sizeof(errstr));
        ab_envelope_clear(&env);
        return err;
}

Test(envelope, payload_limit_is_exact_for_every_fixture_event) {
        json_t *arr = load("v1-events.json"), *item;
        size_t i, size;

        json_array_foreach(arr, i, item) {
                size = json_dumpb(json_object_get(item, "payload"), NULL, 0,
                                  JSON_COMPACT);
                cr_assert_eq(with_payload_limit(item, size), AB_OK,
                             "row %zu", i);
                cr_assert_eq(with_payload_limit(item, size - 1),
                             AB_ERR_TOO_LARGE, "row %zu", i);
        }
        json_decref(arr);
}

Test(envelope, payload_size_matches_jansson_for_tricky_values) {
        static const char *const payloads[] = {
                "{}",
                "{\"a\":[]}",
                "{\"a\":{},\"b\":[{},[],[[]]]}",
                "{\"r\":[0.1,1e300,-0.0,1.5e-7,2.5,100.0,1e22,1e21,-1e-300,"
                "123456789.125,5e-324,1.7976931348623157e308,0.30000000000000004]}",
                "{\"i\":[0,-1,9,10,-10,9223372036854775807,"
                "-9223372036854775808,1000000]}",
                "{\"s\":\"\\u0001\\u001f\\u007f\\b\\f\\n\\r\\t\\\"\\\\/\"}",
                "{\"u\":\"\\u00e9\\u4e2d\\ud83d\\ude00\",\"\\u00e9k\\n\":1}",
                "{\"t\":true,\"f\":false,\"n\":null}",
                "{\"deep\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
        };
        json_t *item, *payload;
        size_t i, size;

        for (i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
                item = load("spec-example.json");
                payload = text(payloads[i]);
                json_object_set_new(item, "payload", payload);
                size = json_dumpb(payload, NULL, 0, JSON_COMPACT);
                cr_assert_gt(size, 0, "row %zu", i);
                cr_assert_eq(with_payload_limit(item, size), AB_OK,
                             "row %zu", i);
                cr_assert_eq(with_payload_limit(item, size - 1),
                             AB_ERR_TOO_LARGE, "row %zu (%zu bytes)", i,
                             size);
                json_decref(item);
        }
}

Test(envelope, payload_size_is_exact_past_the_walk_depth) {
        json_t *item = load("spec-example.json"), *payload, *inner;
        size_t i, size;

        payload = json_object();
        inner = payload;
        for (i = 0; i < 100; i++) {
                json_t *next = json_object();

                json_object_set_new(inner, "k", next);
                inner = next;
        }
        json_object_set_new(item, "payload", payload);
        size = json_dumpb(payload, NULL, 0, JSON_COMPACT);
        cr_assert_eq(with_payload_limit(item, size), AB_OK);
        cr_assert_eq(with_payload_limit(item, size - 1), AB_ERR_TOO_LARGE);
        json_decref(item);
}

Test(envelope, rejects_a_payload_over_the_default_64k_limit) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_t env = {0};
        json_t *item = load("spec-example.json");
        char *big = repeat('x', 64 * 1024), errstr[256];

        json_object_set_new(item, "payload", json_pack("{s:s}", "b", big));
        cr_assert_eq(ab_envelope_from_json(&env, item, &ctx, errstr,
                                           sizeof(errstr)),
                     AB_ERR_TOO_LARGE);
        cr_assert_str_eq(errstr, "payload: 65544 bytes is over the limit of "
                                 "65536 bytes");
        free(big);
        json_decref(item);
}

/*
 * JSON text limits
 */

static json_t *parse(const char *s, size_t len, ab_err_t *errp, char *errstr,
                     size_t errstr_size) {
        return ab_envelope_json_parse(s, len, &lim, errp, errstr, errstr_size);
}

Test(envelope, json_parse_accepts_an_object_and_an_array) {
        static const char *const ok[] = {
                "{}", "[]", " [ {\"a\" : 1} ] \n", "[{\"s\":\"[[[[\"}]",
        };
        char errstr[256];
        ab_err_t err;
        json_t *doc;
        size_t i;

        for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                doc = parse(ok[i], strlen(ok[i]), &err, errstr,
                            sizeof(errstr));
                cr_assert_not_null(doc, "row %zu: %s", i, errstr);
                cr_assert_eq(err, AB_OK, "row %zu", i);
                json_decref(doc);
        }
}

Test(envelope, json_parse_rejects_malformed_json_with_line_and_column) {
        static const struct {
                const char *text;
                const char *error;
        } rows[] = {
                {"", "JSON: '[' or '{' expected near end of file at line 1, "
                     "column 0"},
                {"42", "JSON: '[' or '{' expected near '42' at line 1, "
                       "column 2"},
                {"{\"a\":}", "JSON: unexpected token near '}' at line 1, "
                             "column 6"},
                {"[1,2", "JSON: ']' expected near end of file at line 1, "
                         "column 4"},
                {"{\n  \"a\": tru\n}", "JSON: invalid token near 'tru' at "
                                       "line 2, column 10"},
                {"[1] x", "JSON: end of file expected near 'x' at line 1, "
                          "column 5"},
                {"{\"a\":1,\"a\":2}", "JSON: duplicate object key near "
                                      "'\"a\"' at line 1, column 10"},
                {"[\"a\\u0000b\"]", "JSON: \\u0000 is not allowed without "
                                    "JSON_ALLOW_NUL near '\"a\\u0000b\"' "
                                    "at line 1, column 11"},
                {"[\"\xff\"]", "JSON: unable to decode byte 0xff near '\"' "
                               "at line 1, column 2"},
                {"[\"abc", "JSON: premature end of input near '\"abc' at "
                           "line 1, column 5"},
        };
        char errstr[256];
        ab_err_t err;
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                errstr[0] = '\0';
                cr_assert_null(parse(rows[i].text, strlen(rows[i].text), &err,
                                     errstr, sizeof(errstr)),
                               "row %zu", i);
                cr_assert_eq(err, AB_ERR_MALFORMED, "row %zu", i);
                cr_assert_str_eq(errstr, rows[i].error, "row %zu", i);
        }
}

static char *nested(size_t depth, const char *open, const char *close) {
        size_t ol = strlen(open), cl = strlen(close), i;
        char *s = malloc(depth * (ol + cl) + 1), *p = s;

        cr_assert_not_null(s);
        for (i = 0; i < depth; i++, p += ol) {
                memcpy(p, open, ol);
        }
        for (i = 0; i < depth; i++, p += cl) {
                memcpy(p, close, cl);
        }
        *p = '\0';
        return s;
}

Test(envelope, json_parse_refuses_10000_nested_arrays, .timeout = 30) {
        char *s = nested(10000, "[", "]"), errstr[256];
        ab_err_t err;

        cr_assert_null(parse(s, strlen(s), &err, errstr, sizeof(errstr)));
        cr_assert_eq(err, AB_ERR_MALFORMED);
        cr_assert_str_eq(errstr, "JSON nested deeper than 32 levels");
        free(s);
}

Test(envelope, json_parse_refuses_10000_nested_objects, .timeout = 30) {
        char *s = nested(10000, "{\"a\":", "}"), errstr[256];
        ab_err_t err;

        cr_assert_null(parse(s, strlen(s), &err, errstr, sizeof(errstr)));
        cr_assert_eq(err, AB_ERR_MALFORMED);
        cr_assert_str_eq(errstr, "JSON nested deeper than 32 levels");
        free(s);
}

Test(envelope, json_parse_refuses_unclosed_10000_deep_input, .timeout = 30) {
        char *s = repeat('[', 10000), errstr[256];
        ab_err_t err;

        cr_assert_null(parse(s, strlen(s), &err, errstr, sizeof(errstr)));
        cr_assert_eq(err, AB_ERR_MALFORMED);
        free(s);
}

Test(envelope, json_parse_accepts_nesting_at_the_depth_limit) {
        char *ok = nested(32, "[", "]"), *deep = nested(33, "[", "]");
        char errstr[256];
        ab_err_t err;
        json_t *doc;

        doc = parse(ok, strlen(ok), &err, errstr, sizeof(errstr));
        cr_assert_not_null(doc, "%s", errstr);
        json_decref(doc);
        cr_assert_null(parse(deep, strlen(deep), &err, errstr,
                             sizeof(errstr)));
        cr_assert_str_eq(errstr, "JSON nested deeper than 32 levels");
        free(ok);
        free(deep);
}

Test(envelope, json_parse_ignores_brackets_inside_strings) {
        char *inner = repeat('[', 5000), *s, errstr[256];
        ab_err_t err;
        json_t *doc;

        s = malloc(strlen(inner) + 16);
        sprintf(s, "[\"\\\"%s\"]", inner);
        doc = parse(s, strlen(s), &err, errstr, sizeof(errstr));
        cr_assert_not_null(doc, "%s", errstr);
        json_decref(doc);
        free(s);
        free(inner);
}

Test(envelope, json_parse_with_a_raised_depth_limit_still_refuses_10000,
     .timeout = 30) {
        char *s = nested(10000, "[", "]"), errstr[256];
        ab_envelope_limits_t l = lim;
        ab_err_t err;

        l.max_depth = 1000000;
        cr_assert_null(ab_envelope_json_parse(s, strlen(s), &l, &err, errstr,
                                              sizeof(errstr)));
        cr_assert_eq(err, AB_ERR_MALFORMED);
        cr_assert_not_null(strstr(errstr, "maximum parsing depth"), "%s",
                           errstr);
        free(s);
}

Test(envelope, json_parse_refuses_a_50mb_input_as_too_large,
     .timeout = 10) {
        size_t len = 50 * 1024 * 1024;
        char *s = repeat('[', len), errstr[256];
        ab_err_t err;

        cr_assert_null(parse(s, len, &err, errstr, sizeof(errstr)));
        cr_assert_eq(err, AB_ERR_TOO_LARGE);
        cr_assert_str_eq(errstr, "body: 52428800 bytes is over the limit of "
                                 "1048576 bytes");
        free(s);
}

Test(envelope, json_parse_refuses_one_byte_over_the_input_limit) {
        ab_envelope_limits_t l = lim;
        char errstr[256];
        ab_err_t err;
        json_t *doc;

        l.max_input_bytes = 8;
        doc = ab_envelope_json_parse("[1,2,3] ", 8, &l, &err, errstr,
                                     sizeof(errstr));
        cr_assert_not_null(doc);
        json_decref(doc);
        cr_assert_null(ab_envelope_json_parse("[1,2,3]  ", 9, &l, &err,
                                              errstr, sizeof(errstr)));
        cr_assert_eq(err, AB_ERR_TOO_LARGE);
}

/*
 * Batches
 */

Test(envelope, batch_check_rejects_an_empty_array) {
        json_t *body = json_array();
        char errstr[256];
        size_t n = 7;

        cr_assert_eq(ab_envelope_batch_check(body, &lim, &n, errstr,
                                             sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert_str_eq(errstr, "body: empty array");
        cr_assert_eq(n, 0);
        json_decref(body);
}

Test(envelope, batch_check_rejects_more_than_max_batch_items) {
        json_t *body = json_array();
        char errstr[256];
        size_t i, n;

        for (i = 0; i < 1001; i++) {
                json_array_append_new(body, json_object());
        }
        cr_assert_eq(ab_envelope_batch_check(body, &lim, &n, errstr,
                                             sizeof(errstr)),
                     AB_ERR_TOO_LARGE);
        cr_assert_str_eq(errstr,
                         "body: 1001 items is over the batch limit of 1000");
        json_array_remove(body, 0);
        cr_assert_eq(ab_envelope_batch_check(body, &lim, &n, errstr,
                                             sizeof(errstr)),
                     AB_OK);
        cr_assert_eq(n, 1000);
        json_decref(body);
}

Test(envelope, batch_check_treats_an_object_as_a_batch_of_one) {
        json_t *body = load("spec-example.json");
        char errstr[256];
        size_t n;

        cr_assert_eq(ab_envelope_batch_check(body, &lim, &n, errstr,
                                             sizeof(errstr)),
                     AB_OK);
        cr_assert_eq(n, 1);
        cr_assert_eq(ab_envelope_batch_item(body, 0), body);
        cr_assert_null(ab_envelope_batch_item(body, 1));
        json_decref(body);
}

Test(envelope, batch_check_rejects_a_scalar_body) {
        json_t *bodies[] = {json_integer(1), json_string("x"), json_null(),
                            NULL};
        char errstr[256];
        size_t i, n;

        for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
                cr_assert_eq(ab_envelope_batch_check(bodies[i], &lim, &n,
                                                     errstr, sizeof(errstr)),
                             AB_ERR_MALFORMED, "row %zu", i);
                cr_assert_str_eq(errstr,
                                 "body: must be a JSON object or array",
                                 "row %zu", i);
                json_decref(bodies[i]);
        }
}

Test(envelope, batch_non_object_items_fail_one_by_one) {
        ab_envelope_ctx_t ctx = mkctx(AB_FORM_INGEST);
        ab_envelope_t env = {0};
        json_t *body = text("[{\"x\":1},1,\"s\",[],null]");
        char errstr[256];
        size_t i, n;

        cr_assert_eq(ab_envelope_batch_check(body, &lim, &n, errstr,
                                             sizeof(errstr)),
                     AB_OK);
        cr_assert_eq(n, 5);
        for (i = 1; i < n; i++) {
                cr_assert_eq(ab_envelope_from_json(
                                 &env, ab_envelope_batch_item(body, i), &ctx,
                                 errstr, sizeof(errstr)),
                             AB_ERR_INVALID, "item %zu", i);
                cr_assert_str_eq(errstr, "item: must be an object",
                                 "item %zu", i);
        }
        cr_assert_null(ab_envelope_batch_item(body, n));
        json_decref(body);
}
