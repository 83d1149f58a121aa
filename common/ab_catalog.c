/* aetherbus - Apache-2.0
 *
 * ab_catalog: the event catalog. Parses and strictly validates the catalog
 * JSON (schemas/catalog.json, embedded at build time), answers name ->
 * entry lookups with a binary search over a sorted index, lists the routing
 * prefixes, and owns the source rules and topic naming. Envelope field
 * validation stays in ab_envelope; nothing here knows about Kafka clients.
 *
 * Every string an entry points to is owned by the parsed JSON document the
 * catalog keeps, so the catalog makes no copies.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ab_catalog.h"

/* Longest routing prefix: it must fit ab_envelope_t.prefix[64]. */
#define PREFIX_MAX 63
/* Longest catalog name (ce_type header, Avro string). */
#define NAME_MAX_LEN 255
/* Longest Kafka topic name. */
#define TOPIC_MAX 249
/* Longest platform source slug: [a-z0-9][a-z0-9._-]{0,63}. */
#define SLUG_MAX 64

struct ab_catalog_s {
        json_t *root;                      /* owns every string below */
        ab_catalog_entry_t *entries;       /* catalog order */
        const ab_catalog_entry_t **sorted; /* by name, for bsearch */
        size_t count;
        const char **prefixes; /* distinct, first-seen order */
        size_t prefix_count;
};

/* The business sources (spec 002). The catalog's families.business.sources
 * must list exactly these: the rule is code, the catalog documents it. */
static const char *const business_sources[] = {
        "storefront", "admin", "api", "bot", "agent",
};
#define BUSINESS_SOURCES_MSG "storefront|admin|api|bot|agent"
#define SLUG_PATTERN "[a-z0-9][a-z0-9._-]{0,63}"

static const char *const entry_keys[] = {
        "name", "prefix", "family", "description",
};

static int is_lower_digit(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_topic_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* A routing prefix: [a-z0-9][a-z0-9_-]{0,62} (no dot: it is a segment). */
static int prefix_ok(const char *s) {
        size_t i;

        if (!is_lower_digit(s[0])) {
                return 0;
        }
        for (i = 1; s[i]; i++) {
                if (!is_lower_digit(s[i]) && s[i] != '_' && s[i] != '-') {
                        return 0;
                }
        }
        return i <= PREFIX_MAX;
}

/* A business name: [A-Z][A-Za-z0-9]*, at most NAME_MAX_LEN. */
static int business_name_ok(const char *s) {
        size_t i;

        if (!(s[0] >= 'A' && s[0] <= 'Z')) {
                return 0;
        }
        for (i = 1; s[i]; i++) {
                if (!((s[i] >= 'a' && s[i] <= 'z') ||
                      (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9'))) {
                        return 0;
                }
        }
        return i <= NAME_MAX_LEN;
}

/* A platform name: dot-separated non-empty segments of [a-z0-9_-], at
 * least two of them, at most NAME_MAX_LEN. */
static int platform_name_ok(const char *s) {
        size_t i, seglen = 0, dots = 0;

        for (i = 0; s[i]; i++) {
                if (s[i] == '.') {
                        if (seglen == 0) {
                                return 0;
                        }
                        dots++;
                        seglen = 0;
                } else if (is_lower_digit(s[i]) || s[i] == '_' ||
                           s[i] == '-') {
                        seglen++;
                } else {
                        return 0;
                }
        }
        return dots > 0 && seglen > 0 && i <= NAME_MAX_LEN;
}

static int cmp_entry(const void *a, const void *b) {
        const ab_catalog_entry_t *const *ea = a;
        const ab_catalog_entry_t *const *eb = b;

        return strcmp((*ea)->name, (*eb)->name);
}

static int cmp_key(const void *key, const void *elem) {
        const ab_catalog_entry_t *const *e = elem;

        return strcmp(key, (*e)->name);
}

/* Reads string member \p key of entry \p i; required unless optional. */
static int entry_str(json_t *obj, size_t i, const char *key, int optional,
                     const char **outp, char *errstr, size_t errstr_size) {
        json_t *v = json_object_get(obj, key);
        const char *name = json_string_value(json_object_get(obj, "name"));

        if (!v && optional) {
                *outp = "";
                return 0;
        }
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            strlen(json_string_value(v)) != json_string_length(v)) {
                ab_errstr_set(errstr, errstr_size,
                              "catalog: events[%zu]%s%s%s: %s: %s", i,
                              name ? " (\"" : "", name ? name : "",
                              name ? "\")" : "", key,
                              v ? "must be a non-empty string" : "required");
                return -1;
        }
        *outp = json_string_value(v);
        return 0;
}

static int check_families(json_t *root, char *errstr, size_t errstr_size) {
        json_t *fam = json_object_get(root, "families");
        json_t *biz, *plat, *srcs, *pat;
        size_t i, n = sizeof(business_sources) / sizeof(business_sources[0]);

        if (!fam) {
                return 0;
        }
        if (!json_is_object(fam)) {
                ab_errstr_set(errstr, errstr_size,
                              "catalog: families: must be an object");
                return -1;
        }
        biz = json_object_get(fam, "business");
        srcs = biz ? json_object_get(biz, "sources") : NULL;
        if (biz) {
                if (!json_is_array(srcs) || json_array_size(srcs) != n) {
                        goto bad_sources;
                }
                for (i = 0; i < n; i++) {
                        const char *s =
                            json_string_value(json_array_get(srcs, i));

                        if (!s || strcmp(s, business_sources[i])) {
                                goto bad_sources;
                        }
                }
        }
        plat = json_object_get(fam, "platform");
        pat = plat ? json_object_get(plat, "sourcePattern") : NULL;
        if (plat && (!json_is_string(pat) ||
                     strcmp(json_string_value(pat), SLUG_PATTERN))) {
                ab_errstr_set(errstr, errstr_size,
                              "catalog: families.platform.sourcePattern: "
                              "must be \"" SLUG_PATTERN "\" (built in)");
                return -1;
        }
        return 0;

bad_sources:
        ab_errstr_set(errstr, errstr_size,
                      "catalog: families.business.sources: must be "
                      "[\"storefront\",\"admin\",\"api\",\"bot\",\"agent\"] "
                      "(built in)");
        return -1;
}

/* Validates entry \p i and fills \p e. */
static int load_entry(json_t *obj, size_t i, ab_catalog_entry_t *e,
                      char *errstr, size_t errstr_size) {
        const char *family, *key;
        json_t *v;
        size_t k, nkeys = sizeof(entry_keys) / sizeof(entry_keys[0]);
        char seg[PREFIX_MAX + 1];

        if (!json_is_object(obj)) {
                ab_errstr_set(errstr, errstr_size,
                              "catalog: events[%zu]: must be an object", i);
                return -1;
        }
        if (entry_str(obj, i, "name", 0, &e->name, errstr, errstr_size) ||
            entry_str(obj, i, "prefix", 0, &e->prefix, errstr,
                      errstr_size) ||
            entry_str(obj, i, "family", 0, &family, errstr, errstr_size) ||
            entry_str(obj, i, "description", 1, &e->description, errstr,
                      errstr_size)) {
                return -1;
        }
        json_object_foreach(obj, key, v) {
                for (k = 0; k < nkeys; k++) {
                        if (!strcmp(key, entry_keys[k])) {
                                break;
                        }
                }
                if (k == nkeys) {
                        ab_errstr_set(errstr, errstr_size,
                                      "catalog: events[%zu] (\"%s\"): "
                                      "unknown key \"%.64s\"",
                                      i, e->name, key);
                        return -1;
                }
        }
        if (!prefix_ok(e->prefix)) {
                ab_errstr_set(errstr, errstr_size,
                              "catalog: events[%zu] (\"%s\"): prefix: must "
                              "match [a-z0-9][a-z0-9_-]{0,62}",
                              i, e->name);
                return -1;
        }
        if (!strcmp(family, "business")) {
                e->family = AB_FAMILY_BUSINESS;
                if (!business_name_ok(e->name)) {
                        ab_errstr_set(errstr, errstr_size,
                                      "catalog: events[%zu] (\"%s\"): name: "
                                      "a business name must match "
                                      "[A-Z][A-Za-z0-9]*",
                                      i, e->name);
                        return -1;
                }
        } else if (!strcmp(family, "platform")) {
                e->family = AB_FAMILY_PLATFORM;
                if (!platform_name_ok(e->name)) {
                        ab_errstr_set(errstr, errstr_size,
                                      "catalog: events[%zu] (\"%s\"): name: "
                                      "a platform name must be dotted "
                                      "lowercase segments",
                                      i, e->name);
                        return -1;
                }
                if (ab_catalog_dotted_prefix(e->name, seg, sizeof(seg)) ||
                    strcmp(seg, e->prefix)) {
                        ab_errstr_set(errstr, errstr_size,
                                      "catalog: events[%zu] (\"%s\"): "
                                      "prefix: \"%s\" is not the name's "
                                      "first segment",
                                      i, e->name, e->prefix);
                        return -1;
                }
        } else {
                ab_errstr_set(errstr, errstr_size,
                              "catalog: events[%zu] (\"%s\"): family: must be "
                              "business or platform",
                              i, e->name);
                return -1;
        }
        return 0;
}

ab_catalog_t *ab_catalog_new(char *errstr, size_t errstr_size) {
        return ab_catalog_new_from_json(ab_schema_catalog_json,
                                        strlen(ab_schema_catalog_json),
                                        errstr, errstr_size);
}

ab_catalog_t *ab_catalog_new_from_json(const char *json, size_t len,
                                       char *errstr, size_t errstr_size) {
        ab_catalog_t *cat;
        json_t *events, *version;
        json_error_t jerr;
        const ab_catalog_entry_t *dup;
        size_t i, j;

        cat = calloc(1, sizeof(*cat));
        if (!cat) {
                ab_errstr_set(errstr, errstr_size, "catalog: out of memory");
                return NULL;
        }
        if (!json) {
                ab_errstr_set(errstr, errstr_size, "catalog: no JSON text");
                goto fail;
        }
        cat->root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!cat->root) {
                ab_errstr_set(errstr, errstr_size,
                              "catalog: %s at line %d, column %d", jerr.text,
                              jerr.line, jerr.column);
                goto fail;
        }
        if (!json_is_object(cat->root)) {
                ab_errstr_set(errstr, errstr_size,
                              "catalog: must be a JSON object");
                goto fail;
        }
        version = json_object_get(cat->root, "version");
        if (!json_is_integer(version) || json_integer_value(version) != 1) {
                ab_errstr_set(errstr, errstr_size,
                              "catalog: version: must be 1");
                goto fail;
        }
        if (check_families(cat->root, errstr, errstr_size)) {
                goto fail;
        }
        events = json_object_get(cat->root, "events");
        if (!json_is_array(events) || json_array_size(events) == 0) {
                ab_errstr_set(errstr, errstr_size,
                              "catalog: events: must be a non-empty array");
                goto fail;
        }
        cat->count = json_array_size(events);
        cat->entries = calloc(cat->count, sizeof(*cat->entries));
        cat->sorted = calloc(cat->count, sizeof(*cat->sorted));
        cat->prefixes = calloc(cat->count, sizeof(*cat->prefixes));
        if (!cat->entries || !cat->sorted || !cat->prefixes) {
                ab_errstr_set(errstr, errstr_size, "catalog: out of memory");
                goto fail;
        }
        for (i = 0; i < cat->count; i++) {
                if (load_entry(json_array_get(events, i), i, &cat->entries[i],
                               errstr, errstr_size)) {
                        goto fail;
                }
                cat->sorted[i] = &cat->entries[i];
                for (j = 0; j < cat->prefix_count; j++) {
                        if (!strcmp(cat->prefixes[j],
                                    cat->entries[i].prefix)) {
                                break;
                        }
                }
                if (j == cat->prefix_count) {
                        cat->prefixes[cat->prefix_count++] =
                            cat->entries[i].prefix;
                }
        }
        qsort(cat->sorted, cat->count, sizeof(*cat->sorted), cmp_entry);
        for (i = 1; i < cat->count; i++) {
                if (!strcmp(cat->sorted[i - 1]->name, cat->sorted[i]->name)) {
                        dup = cat->sorted[i] > cat->sorted[i - 1]
                                  ? cat->sorted[i]
                                  : cat->sorted[i - 1];
                        ab_errstr_set(errstr, errstr_size,
                                      "catalog: events[%zu] (\"%s\"): "
                                      "duplicate name",
                                      (size_t)(dup - cat->entries), dup->name);
                        goto fail;
                }
        }
        return cat;

fail:
        ab_catalog_destroy(cat);
        return NULL;
}

void ab_catalog_destroy(ab_catalog_t *cat) {
        if (!cat) {
                return;
        }
        free(cat->entries);
        free(cat->sorted);
        free(cat->prefixes);
        json_decref(cat->root);
        free(cat);
}

const ab_catalog_entry_t *ab_catalog_find(const ab_catalog_t *cat,
                                          const char *name) {
        const ab_catalog_entry_t *const *e;

        if (!name) {
                return NULL;
        }
        e = bsearch(name, cat->sorted, cat->count, sizeof(*cat->sorted),
                    cmp_key);
        return e ? *e : NULL;
}

size_t ab_catalog_count(const ab_catalog_t *cat) {
        return cat->count;
}

const ab_catalog_entry_t *ab_catalog_get(const ab_catalog_t *cat, size_t i) {
        return i < cat->count ? &cat->entries[i] : NULL;
}

size_t ab_catalog_prefix_count(const ab_catalog_t *cat) {
        return cat->prefix_count;
}

const char *ab_catalog_prefix_get(const ab_catalog_t *cat, size_t i) {
        return i < cat->prefix_count ? cat->prefixes[i] : NULL;
}

ab_err_t ab_catalog_dotted_prefix(const char *name, char *out,
                                  size_t out_size) {
        const char *dot;
        size_t i, len;

        if (!name || !(dot = strchr(name, '.'))) {
                return AB_ERR_INVALID;
        }
        len = (size_t)(dot - name);
        if (len == 0 || len >= out_size) {
                return AB_ERR_INVALID;
        }
        for (i = 0; i < len; i++) {
                if (!is_topic_char(name[i]) || name[i] == '.') {
                        return AB_ERR_INVALID;
                }
        }
        memcpy(out, name, len);
        out[len] = '\0';
        return AB_OK;
}

ab_err_t ab_catalog_check_source(ab_family_t family, const char *source,
                                 char *errstr, size_t errstr_size) {
        size_t i, n = sizeof(business_sources) / sizeof(business_sources[0]);

        if (family == AB_FAMILY_BUSINESS) {
                for (i = 0; source && i < n; i++) {
                        if (!strcmp(source, business_sources[i])) {
                                return AB_OK;
                        }
                }
                ab_errstr_set(errstr, errstr_size,
                              "must be one of " BUSINESS_SOURCES_MSG);
                return AB_ERR_INVALID;
        }
        if (source && is_lower_digit(source[0])) {
                for (i = 1; i < SLUG_MAX && source[i]; i++) {
                        if (!is_lower_digit(source[i]) && source[i] != '.' &&
                            source[i] != '_' && source[i] != '-') {
                                break;
                        }
                }
                if (!source[i]) {
                        return AB_OK;
                }
        }
        ab_errstr_set(errstr, errstr_size, "must match " SLUG_PATTERN);
        return AB_ERR_INVALID;
}

ab_err_t ab_catalog_topic(const char *topic_prefix, const char *prefix,
                          char *out, size_t out_size) {
        size_t plen, len, i;

        if (!topic_prefix) {
                topic_prefix = "";
        }
        if (!prefix) {
                return AB_ERR_INVALID;
        }
        plen = strlen(topic_prefix);
        len = plen + strlen(prefix);
        if (len == 0 || len > TOPIC_MAX || len >= out_size) {
                return AB_ERR_INVALID;
        }
        memcpy(out, topic_prefix, plen);
        memcpy(out + plen, prefix, len - plen + 1);
        for (i = 0; i < len; i++) {
                if (!is_topic_char(out[i])) {
                        out[0] = '\0';
                        return AB_ERR_INVALID;
                }
        }
        if (!strcmp(out, ".") || !strcmp(out, "..")) {
                out[0] = '\0';
                return AB_ERR_INVALID;
        }
        return AB_OK;
}

ab_err_t ab_catalog_topics_init(ab_catalog_topics_t *t, const ab_catalog_t *cat,
                                const char *topic_prefix, char *errstr,
                                size_t errstr_size) {
        static const char *const system[AB_CATALOG_SYSTEM_TOPICS] = {
            AB_CATALOG_TOPIC_REJECTED, AB_CATALOG_TOPIC_DEADLETTER,
            AB_CATALOG_TOPIC_AUDIT_CHECKPOINTS};
        char name[256];
        const char *sfx;
        size_t i;

        memset(t, 0, sizeof(*t));
        t->prefix_cnt = ab_catalog_prefix_count(cat);
        t->cnt        = t->prefix_cnt + AB_CATALOG_SYSTEM_TOPICS;
        t->names      = calloc(t->cnt + 1, sizeof(char *));
        if (!t->names) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return AB_ERR_NOMEM;
        }
        for (i = 0; i < t->cnt; i++) {
                sfx = i < t->prefix_cnt ? ab_catalog_prefix_get(cat, i)
                                        : system[i - t->prefix_cnt];
                if (ab_catalog_topic(topic_prefix, sfx, name, sizeof(name)) !=
                    AB_OK) {
                        ab_errstr_set(errstr, errstr_size,
                                      "topic prefix \"%s\" + \"%s\" is not a "
                                      "legal Kafka topic name ([a-zA-Z0-9._-], "
                                      "at most 249 chars)",
                                      topic_prefix ? topic_prefix : "", sfx);
                        ab_catalog_topics_clear(t);
                        return AB_ERR_INVALID;
                }
                if (!(t->names[i] = strdup(name))) {
                        ab_errstr_set(errstr, errstr_size, "out of memory");
                        ab_catalog_topics_clear(t);
                        return AB_ERR_NOMEM;
                }
        }
        t->rejected   = t->names[t->prefix_cnt];
        t->deadletter  = t->names[t->prefix_cnt + 1];
        t->checkpoints = t->names[t->prefix_cnt + 2];
        t->event_cnt   = t->prefix_cnt + 2;
        return AB_OK;
}

void ab_catalog_topics_clear(ab_catalog_topics_t *t) {
        size_t i;

        for (i = 0; t->names && i < t->cnt; i++) {
                free(t->names[i]);
        }
        free(t->names);
        memset(t, 0, sizeof(*t));
}

ssize_t ab_catalog_topics_find(const ab_catalog_topics_t *t, const char *topic) {
        size_t i;

        for (i = 0; i < t->cnt; i++) {
                if (!strcmp(t->names[i], topic)) {
                        return (ssize_t)i;
                }
        }
        return -1;
}
