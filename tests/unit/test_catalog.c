/* aetherbus - Apache-2.0
 *
 * Unit tests of ab_catalog: the embedded catalog holds every name of both
 * specs and routes each one as DESIGN.md says; the source rules, topic
 * naming and the strict catalog JSON validation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "ab_catalog.h"

static ab_catalog_t *cat;

static void setup(void) {
        char errstr[256] = "";

        cat = ab_catalog_new(errstr, sizeof(errstr));
        cr_assert_not_null(cat, "embedded catalog: %s", errstr);
}

static void teardown(void) {
        ab_catalog_destroy(cat);
        cat = NULL;
}

TestSuite(catalog, .init = setup, .fini = teardown);

/* Every name of spec 002 (v1) and spec 000 (dotted), with its route. */
static const struct {
        const char *name;
        const char *prefix;
        ab_family_t family;
} names[] = {
        {"OrderCreated", "commerce", AB_FAMILY_BUSINESS},
        {"CheckoutStarted", "commerce", AB_FAMILY_BUSINESS},
        {"ProductViewed", "commerce", AB_FAMILY_BUSINESS},
        {"CartUpdated", "commerce", AB_FAMILY_BUSINESS},
        {"EmailSent", "messaging", AB_FAMILY_BUSINESS},
        {"PromoApplied", "commerce", AB_FAMILY_BUSINESS},
        {"FeatureUsageEvent", "usage", AB_FAMILY_BUSINESS},
        {"BotCommand", "bot", AB_FAMILY_BUSINESS},
        {"AgentHeartbeat", "agent", AB_FAMILY_BUSINESS},
        {"DashboardViewed", "usage", AB_FAMILY_BUSINESS},
        {"core.startup", "core", AB_FAMILY_PLATFORM},
        {"core.restart", "core", AB_FAMILY_PLATFORM},
        {"core.persistence.restore", "core", AB_FAMILY_PLATFORM},
        {"core.replication.degraded", "core", AB_FAMILY_PLATFORM},
        {"core.replication.recovered", "core", AB_FAMILY_PLATFORM},
        {"core.scheduler.auto_pause", "core", AB_FAMILY_PLATFORM},
        {"core.scheduler.auto_recover", "core", AB_FAMILY_PLATFORM},
        {"scheduler.import.requested", "scheduler", AB_FAMILY_PLATFORM},
        {"scheduler.import.completed", "scheduler", AB_FAMILY_PLATFORM},
        {"scheduler.import.failed", "scheduler", AB_FAMILY_PLATFORM},
        {"scheduler.schedule.created", "scheduler", AB_FAMILY_PLATFORM},
        {"scheduler.schedule.paused", "scheduler", AB_FAMILY_PLATFORM},
        {"scheduler.schedule.resumed", "scheduler", AB_FAMILY_PLATFORM},
        {"scheduler.schedule.deleted", "scheduler", AB_FAMILY_PLATFORM},
        {"crm.record.created", "crm", AB_FAMILY_PLATFORM},
        {"crm.record.updated", "crm", AB_FAMILY_PLATFORM},
        {"crm.record.deleted", "crm", AB_FAMILY_PLATFORM},
        {"crm.attachment.added", "crm", AB_FAMILY_PLATFORM},
        {"crm.sync.started", "crm", AB_FAMILY_PLATFORM},
        {"crm.sync.completed", "crm", AB_FAMILY_PLATFORM},
        {"crm.sync.failed", "crm", AB_FAMILY_PLATFORM},
        {"crm.sync.autosync.enabled", "crm", AB_FAMILY_PLATFORM},
        {"crm.sync.autosync.disabled", "crm", AB_FAMILY_PLATFORM},
        {"policy.claim.created", "policy", AB_FAMILY_PLATFORM},
        {"policy.claim.updated", "policy", AB_FAMILY_PLATFORM},
        {"policy.claim.closed", "policy", AB_FAMILY_PLATFORM},
        {"policy.compliance.flagged", "policy", AB_FAMILY_PLATFORM},
        {"policy.docs.attached", "policy", AB_FAMILY_PLATFORM},
        {"finance.invoice.created", "finance", AB_FAMILY_PLATFORM},
        {"finance.invoice.synced", "finance", AB_FAMILY_PLATFORM},
        {"finance.invoice.paid", "finance", AB_FAMILY_PLATFORM},
        {"finance.charge.failed", "finance", AB_FAMILY_PLATFORM},
        {"finance.export.completed", "finance", AB_FAMILY_PLATFORM},
        {"ops.local.run.requested", "ops", AB_FAMILY_PLATFORM},
        {"ops.local.run.completed", "ops", AB_FAMILY_PLATFORM},
        {"ops.local.run.failed", "ops", AB_FAMILY_PLATFORM},
        {"security.rbac.denied", "security", AB_FAMILY_PLATFORM},
        {"security.rbac.allowed", "security", AB_FAMILY_PLATFORM},
        {"security.config.changed", "security", AB_FAMILY_PLATFORM},
};
#define N_NAMES (sizeof(names) / sizeof(names[0]))

static char *read_file(const char *path, size_t *lenp) {
        FILE *fp = fopen(path, "rb");
        char *buf;
        long len;

        cr_assert_not_null(fp, "cannot open %s", path);
        fseek(fp, 0, SEEK_END);
        len = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        buf = malloc((size_t)len + 1);
        cr_assert_eq(fread(buf, 1, (size_t)len, fp), (size_t)len);
        buf[len] = '\0';
        fclose(fp);
        *lenp = (size_t)len;
        return buf;
}

Test(catalog, holds_all_49_names_of_both_specs) {
        cr_assert_eq(N_NAMES, 49);
        cr_assert_eq(ab_catalog_count(cat), 49, "count %zu",
                     ab_catalog_count(cat));
}

Test(catalog, finds_every_spec_name_with_its_prefix_and_family) {
        const ab_catalog_entry_t *e;
        size_t i;

        for (i = 0; i < N_NAMES; i++) {
                e = ab_catalog_find(cat, names[i].name);
                cr_assert_not_null(e, "row %zu: %s not found", i,
                                   names[i].name);
                cr_assert_str_eq(e->name, names[i].name, "row %zu", i);
                cr_assert_str_eq(e->prefix, names[i].prefix,
                                 "row %zu: %s routes to %s", i, names[i].name,
                                 e->prefix);
                cr_assert_eq(e->family, names[i].family, "row %zu: %s", i,
                             names[i].name);
                cr_assert(e->description && *e->description,
                          "row %zu: no description", i);
        }
}

Test(catalog, routes_every_name_to_events_dot_prefix_topic) {
        const ab_catalog_entry_t *e;
        char topic[256], want[256];
        size_t i;

        for (i = 0; i < N_NAMES; i++) {
                e = ab_catalog_find(cat, names[i].name);
                cr_assert_not_null(e, "row %zu", i);
                cr_assert_eq(ab_catalog_topic("events.", e->prefix, topic,
                                              sizeof(topic)),
                             AB_OK, "row %zu", i);
                snprintf(want, sizeof(want), "events.%s", names[i].prefix);
                cr_assert_str_eq(topic, want, "row %zu: %s", i, names[i].name);
        }
}

Test(catalog, dotted_names_route_to_their_first_segment) {
        const ab_catalog_entry_t *e;
        char seg[64];
        size_t i;

        for (i = 0; i < ab_catalog_count(cat); i++) {
                e = ab_catalog_get(cat, i);
                if (e->family != AB_FAMILY_PLATFORM) {
                        continue;
                }
                cr_assert_eq(ab_catalog_dotted_prefix(e->name, seg,
                                                      sizeof(seg)),
                             AB_OK, "entry %zu", i);
                cr_assert_str_eq(seg, e->prefix, "entry %zu: %s", i, e->name);
        }
}

Test(catalog, get_walks_entries_in_catalog_order) {
        size_t i;

        for (i = 0; i < N_NAMES; i++) {
                cr_assert_str_eq(ab_catalog_get(cat, i)->name, names[i].name,
                                 "row %zu", i);
        }
        cr_assert_null(ab_catalog_get(cat, N_NAMES));
}

Test(catalog, lists_twelve_distinct_prefixes_in_first_seen_order) {
        static const char *const want[] = {
                "commerce", "messaging", "usage", "bot",     "agent",  "core",
                "scheduler", "crm",      "policy", "finance", "ops", "security",
        };
        size_t i, n = sizeof(want) / sizeof(want[0]);

        cr_assert_eq(ab_catalog_prefix_count(cat), n, "got %zu",
                     ab_catalog_prefix_count(cat));
        for (i = 0; i < n; i++) {
                cr_assert_str_eq(ab_catalog_prefix_get(cat, i), want[i],
                                 "row %zu", i);
        }
        cr_assert_null(ab_catalog_prefix_get(cat, n));
}

Test(catalog, find_returns_null_for_names_not_in_catalog) {
        static const char *const bad[] = {
                "Foo", "productviewed", "PRODUCTVIEWED", "ProductViewed ",
                "crm.record", "crm.record.updated.x", "", "crm",
        };
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                cr_assert_null(ab_catalog_find(cat, bad[i]), "row %zu: %s", i,
                               bad[i]);
        }
        cr_assert_null(ab_catalog_find(cat, NULL));
}

Test(catalog, embedded_catalog_is_schemas_catalog_json) {
        size_t len;
        char *file = read_file(AB_SCHEMA_DIR "/catalog.json", &len);

        cr_assert_eq(strlen(ab_schema_catalog_json), len);
        cr_assert_eq(memcmp(ab_schema_catalog_json, file, len), 0);
        free(file);
}

Test(catalog, dotted_prefix_takes_the_first_segment) {
        static const struct {
                const char *name;
                size_t out_size;
                ab_err_t err;
                const char *want;
        } rows[] = {
                {"crm.record.updated", 64, AB_OK, "crm"},
                {"a.b", 64, AB_OK, "a"},
                {"inventory.stock.low", 64, AB_OK, "inventory"},
                {"Ops_2-x.y", 64, AB_OK, "Ops_2-x"},
                {"crm.record.updated", 4, AB_OK, "crm"},
                {"crm.record.updated", 3, AB_ERR_INVALID, NULL},
                {"OrderCreated", 64, AB_ERR_INVALID, NULL},
                {".crm", 64, AB_ERR_INVALID, NULL},
                {"", 64, AB_ERR_INVALID, NULL},
                {"cr m.x", 64, AB_ERR_INVALID, NULL},
                {"cr/m.x", 64, AB_ERR_INVALID, NULL},
        };
        char out[64];
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                cr_assert_eq(ab_catalog_dotted_prefix(rows[i].name, out,
                                                      rows[i].out_size),
                             rows[i].err, "row %zu: %s", i, rows[i].name);
                if (rows[i].want) {
                        cr_assert_str_eq(out, rows[i].want, "row %zu", i);
                }
        }
        cr_assert_eq(ab_catalog_dotted_prefix(NULL, out, sizeof(out)),
                     AB_ERR_INVALID);
}

Test(catalog, checks_sources_per_family) {
        static const struct {
                ab_family_t family;
                const char *source;
                const char *error; /* NULL: accepted */
        } rows[] = {
                {AB_FAMILY_BUSINESS, "storefront", NULL},
                {AB_FAMILY_BUSINESS, "admin", NULL},
                {AB_FAMILY_BUSINESS, "api", NULL},
                {AB_FAMILY_BUSINESS, "bot", NULL},
                {AB_FAMILY_BUSINESS, "agent", NULL},
                {AB_FAMILY_BUSINESS, "Storefront",
                 "must be one of storefront|admin|api|bot|agent"},
                {AB_FAMILY_BUSINESS, "web",
                 "must be one of storefront|admin|api|bot|agent"},
                {AB_FAMILY_BUSINESS, "peakpro",
                 "must be one of storefront|admin|api|bot|agent"},
                {AB_FAMILY_BUSINESS, "",
                 "must be one of storefront|admin|api|bot|agent"},
                {AB_FAMILY_BUSINESS, NULL,
                 "must be one of storefront|admin|api|bot|agent"},
                {AB_FAMILY_PLATFORM, "command-center", NULL},
                {AB_FAMILY_PLATFORM, "peakpro", NULL},
                {AB_FAMILY_PLATFORM, "policypal", NULL},
                {AB_FAMILY_PLATFORM, "storefront", NULL},
                {AB_FAMILY_PLATFORM, "a", NULL},
                {AB_FAMILY_PLATFORM, "0x.svc_v2-eu", NULL},
                {AB_FAMILY_PLATFORM,
                 "p123456789012345678901234567890123456789012345678901234567890123",
                 NULL},
                {AB_FAMILY_PLATFORM,
                 "p1234567890123456789012345678901234567890123456789012345678901234",
                 "must match [a-z0-9][a-z0-9._-]{0,63}"},
                {AB_FAMILY_PLATFORM, "PeakPro",
                 "must match [a-z0-9][a-z0-9._-]{0,63}"},
                {AB_FAMILY_PLATFORM, "-peakpro",
                 "must match [a-z0-9][a-z0-9._-]{0,63}"},
                {AB_FAMILY_PLATFORM, ".peakpro",
                 "must match [a-z0-9][a-z0-9._-]{0,63}"},
                {AB_FAMILY_PLATFORM, "command center",
                 "must match [a-z0-9][a-z0-9._-]{0,63}"},
                {AB_FAMILY_PLATFORM, "",
                 "must match [a-z0-9][a-z0-9._-]{0,63}"},
                {AB_FAMILY_PLATFORM, NULL,
                 "must match [a-z0-9][a-z0-9._-]{0,63}"},
        };
        char errstr[128];
        size_t i;
        ab_err_t err;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                errstr[0] = '\0';
                err = ab_catalog_check_source(rows[i].family, rows[i].source,
                                              errstr, sizeof(errstr));
                if (!rows[i].error) {
                        cr_assert_eq(err, AB_OK, "row %zu: %s: %s", i,
                                     rows[i].source, errstr);
                } else {
                        cr_assert_eq(err, AB_ERR_INVALID, "row %zu", i);
                        cr_assert_str_eq(errstr, rows[i].error, "row %zu", i);
                }
        }
}

Test(catalog, builds_and_validates_topic_names) {
        static const struct {
                const char *topic_prefix;
                const char *prefix;
                size_t out_size;
                ab_err_t err;
                const char *want;
        } rows[] = {
                {"events.", "commerce", 256, AB_OK, "events.commerce"},
                {"events.", AB_CATALOG_TOPIC_REJECTED, 256, AB_OK,
                 "events.rejected"},
                {"events.", AB_CATALOG_TOPIC_DEADLETTER, 256, AB_OK,
                 "events.deadletter"},
                {"prod-EU_1.events.", "crm", 256, AB_OK,
                 "prod-EU_1.events.crm"},
                {"", "crm", 256, AB_OK, "crm"},
                {NULL, "crm", 256, AB_OK, "crm"},
                {"events.", "crm", 11, AB_OK, "events.crm"},
                {"events.", "crm", 10, AB_ERR_INVALID, NULL},
                {"events/", "crm", 256, AB_ERR_INVALID, NULL},
                {"events.", "c rm", 256, AB_ERR_INVALID, NULL},
                {"events.", "crm\xc3\xa9", 256, AB_ERR_INVALID, NULL},
                {"", "", 256, AB_ERR_INVALID, NULL},
                {"", ".", 256, AB_ERR_INVALID, NULL},
                {"", "..", 256, AB_ERR_INVALID, NULL},
                {"events.", NULL, 256, AB_ERR_INVALID, NULL},
        };
        char out[300], longp[260];
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                cr_assert_eq(ab_catalog_topic(rows[i].topic_prefix,
                                              rows[i].prefix, out,
                                              rows[i].out_size),
                             rows[i].err, "row %zu", i);
                if (rows[i].want) {
                        cr_assert_str_eq(out, rows[i].want, "row %zu", i);
                }
        }
        /* 249 characters is the Kafka maximum */
        memset(longp, 'a', 245);
        longp[245] = '\0';
        cr_assert_eq(ab_catalog_topic(longp, "abcd", out, sizeof(out)), AB_OK);
        cr_assert_eq(strlen(out), 249);
        cr_assert_eq(ab_catalog_topic(longp, "abcde", out, sizeof(out)),
                     AB_ERR_INVALID);
}

Test(catalog, loads_a_minimal_catalog_from_json) {
        static const char json[] =
            "{\"version\":1,\"events\":[{\"name\":\"inv.stock.low\","
            "\"prefix\":\"inv\",\"family\":\"platform\"},"
            "{\"name\":\"Ping\",\"prefix\":\"bot\",\"family\":\"business\","
            "\"description\":\"ping\"}]}";
        char errstr[256] = "";
        ab_catalog_t *c;

        c = ab_catalog_new_from_json(json, strlen(json), errstr,
                                     sizeof(errstr));
        cr_assert_not_null(c, "%s", errstr);
        cr_assert_eq(ab_catalog_count(c), 2);
        cr_assert_str_eq(ab_catalog_find(c, "inv.stock.low")->prefix, "inv");
        cr_assert_str_eq(ab_catalog_find(c, "inv.stock.low")->description,
                         "");
        cr_assert_eq(ab_catalog_find(c, "Ping")->family, AB_FAMILY_BUSINESS);
        cr_assert_eq(ab_catalog_prefix_count(c), 2);
        ab_catalog_destroy(c);
}

Test(catalog, rejects_bad_catalog_json_naming_the_bad_entry) {
#define EV(x) "{\"version\":1,\"events\":[" x "]}"
#define OK1 "{\"name\":\"a.b\",\"prefix\":\"a\",\"family\":\"platform\"}"
        static const struct {
                const char *json;
                const char *error;
        } rows[] = {
                {"", "catalog: '[' or '{' expected near end of file at line "
                     "1, column 0"},
                {"{\"version\":1,", "catalog: string or '}' expected near "
                                    "end of file at line 1, column 13"},
                {"[]", "catalog: must be a JSON object"},
                {"{\"events\":[" OK1 "]}", "catalog: version: must be 1"},
                {"{\"version\":2,\"events\":[" OK1 "]}",
                 "catalog: version: must be 1"},
                {"{\"version\":1}", "catalog: events: must be a non-empty "
                                    "array"},
                {EV(""), "catalog: events: must be a non-empty array"},
                {"{\"version\":1,\"events\":{}}",
                 "catalog: events: must be a non-empty array"},
                {"{\"version\":1,\"version\":1,\"events\":[" OK1 "]}",
                 "catalog: duplicate object key near '\"version\"' at line "
                 "1, column 22"},
                {EV(OK1 ",7"), "catalog: events[1]: must be an object"},
                {EV("{\"prefix\":\"a\",\"family\":\"platform\"}"),
                 "catalog: events[0]: name: required"},
                {EV("{\"name\":\"\",\"prefix\":\"a\",\"family\":\"platform\"}"),
                 "catalog: events[0] (\"\"): name: must be a non-empty "
                 "string"},
                {EV(OK1 ",{\"name\":\"a.c\",\"family\":\"platform\"}"),
                 "catalog: events[1] (\"a.c\"): prefix: required"},
                {EV("{\"name\":\"a.c\",\"prefix\":3,\"family\":\"platform\"}"),
                 "catalog: events[0] (\"a.c\"): prefix: must be a non-empty "
                 "string"},
                {EV("{\"name\":\"a.c\",\"prefix\":\"a\"}"),
                 "catalog: events[0] (\"a.c\"): family: required"},
                {EV("{\"name\":\"a.c\",\"prefix\":\"a\",\"family\":"
                    "\"other\"}"),
                 "catalog: events[0] (\"a.c\"): family: must be business or "
                 "platform"},
                {EV("{\"name\":\"a.c\",\"prefix\":\"a\",\"family\":"
                    "\"platform\",\"description\":5}"),
                 "catalog: events[0] (\"a.c\"): description: must be a "
                 "non-empty string"},
                {EV("{\"name\":\"a.c\",\"prefix\":\"a\",\"family\":"
                    "\"platform\",\"prefx\":\"a\"}"),
                 "catalog: events[0] (\"a.c\"): unknown key \"prefx\""},
                {EV("{\"name\":\"a.c\",\"prefix\":\"A\",\"family\":"
                    "\"platform\"}"),
                 "catalog: events[0] (\"a.c\"): prefix: must match "
                 "[a-z0-9][a-z0-9_-]{0,62}"},
                {EV("{\"name\":\"a.c\",\"prefix\":\"b\",\"family\":"
                    "\"platform\"}"),
                 "catalog: events[0] (\"a.c\"): prefix: \"b\" is not the "
                 "name's first segment"},
                {EV("{\"name\":\"ac\",\"prefix\":\"ac\",\"family\":"
                    "\"platform\"}"),
                 "catalog: events[0] (\"ac\"): name: a platform name must "
                 "be dotted lowercase segments"},
                {EV("{\"name\":\"a..c\",\"prefix\":\"a\",\"family\":"
                    "\"platform\"}"),
                 "catalog: events[0] (\"a..c\"): name: a platform name must "
                 "be dotted lowercase segments"},
                {EV("{\"name\":\"orderCreated\",\"prefix\":\"commerce\","
                    "\"family\":\"business\"}"),
                 "catalog: events[0] (\"orderCreated\"): name: a business "
                 "name must match [A-Z][A-Za-z0-9]*"},
                {EV(OK1 ",{\"name\":\"X\",\"prefix\":\"x\",\"family\":"
                        "\"business\"}," OK1),
                 "catalog: events[2] (\"a.b\"): duplicate name"},
                {"{\"version\":1,\"families\":[],\"events\":[" OK1 "]}",
                 "catalog: families: must be an object"},
                {"{\"version\":1,\"families\":{\"business\":{\"sources\":"
                 "[\"web\"]}},\"events\":[" OK1 "]}",
                 "catalog: families.business.sources: must be "
                 "[\"storefront\",\"admin\",\"api\",\"bot\",\"agent\"] "
                 "(built in)"},
                {"{\"version\":1,\"families\":{\"platform\":{"
                 "\"sourcePattern\":\".*\"}},\"events\":[" OK1 "]}",
                 "catalog: families.platform.sourcePattern: must be "
                 "\"[a-z0-9][a-z0-9._-]{0,63}\" (built in)"},
        };
#undef EV
#undef OK1
        char errstr[512];
        ab_catalog_t *c;
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                errstr[0] = '\0';
                c = ab_catalog_new_from_json(rows[i].json,
                                             strlen(rows[i].json), errstr,
                                             sizeof(errstr));
                cr_assert_null(c, "row %zu accepted", i);
                cr_assert_str_eq(errstr, rows[i].error, "row %zu", i);
        }
}

Test(catalog, rejects_null_catalog_text) {
        char errstr[128] = "";

        cr_assert_null(ab_catalog_new_from_json(NULL, 0, errstr,
                                                sizeof(errstr)));
        cr_assert_str_eq(errstr, "catalog: no JSON text");
}

Test(catalog, destroy_null_is_a_noop) {
        ab_catalog_destroy(NULL);
}

Test(catalog, embedded_envelope_schema_is_a_record) {
        cr_assert_not_null(strstr(ab_schema_envelope_avsc, "\"Envelope\""));
}
