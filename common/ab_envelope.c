/* aetherbus - Apache-2.0
 *
 * ab_envelope: JSON text -> bounded document -> validated, normalised
 * envelope view (spec 002), for both request forms. Name/prefix/source
 * rules are asked of ab_catalog; JSON text and its size of ab_json; the
 * clock, timestamps and generated ids of ab_time. Avro, Kafka and HTTP
 * stay out of this file.
 *
 * Hot path rules: the ingest form is validated in place and the view points
 * into the item (no copy, no strdup); the payload size limit is counted by
 * ab_json_dump() without a buffer (json_dumpb would allocate for its loop
 * check); the only allocations per ingest event are receivedAt's.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ab_envelope.h"
#include "ab_json.h"

/* companyId, subjectId, tenant, x-tenant: at most this many bytes. */
#define REF_MAX_LEN 256
/* An allowed unknown dotted name: at most this many bytes. */
#define NAME_MAX_LEN 255
/* Length check disabled (the field's own rule reports a bad value). */
#define NO_LEN SIZE_MAX

static const ab_envelope_limits_t default_limits = {
        .max_id_len = 128,
        .max_payload_bytes = 64 * 1024,
        .max_batch = 1000,
        .max_input_bytes = 1024 * 1024,
        .max_depth = 32,
};

/* What validation found in one item; json values are borrowed from it. */
typedef struct {
        json_t *id, *name, *occurred, *source, *company, *subject, *payload;
        const ab_catalog_entry_t *entry;
        ab_family_t family;
        int version;
        int64_t occurred_ms;
        char prefix[sizeof(((ab_envelope_t *)0)->prefix)];
} fields_t;

/* Keys the bus form consumes or sets; every other key is carried over. */
static const char *const bus_reserved[] = {
        "id",        "name",      "type",    "schemaVersion", "occurredAt",
        "source",    "companyId", "tenant",  "subjectId",     "payload",
        "receivedAt",
};

static ab_err_t fail(ab_err_t err, char *errstr, size_t errstr_size,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static ab_err_t fail(ab_err_t err, char *errstr, size_t errstr_size,
                     const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        ab_errstr_vset(errstr, errstr_size, fmt, ap);
        va_end(ap);
        return err;
}

void ab_envelope_limits_default(ab_envelope_limits_t *limits) {
        *limits = default_limits;
}

/*
 * Parsing
 */

json_t *ab_envelope_json_parse(const char *text, size_t len,
                               const ab_envelope_limits_t *limits,
                               ab_err_t *errp, char *errstr,
                               size_t errstr_size) {
        ab_err_t dummy;

        if (!errp) {
                errp = &dummy;
        }
        if (!limits) {
                limits = &default_limits;
        }
        if (len > limits->max_input_bytes) {
                *errp = fail(AB_ERR_TOO_LARGE, errstr, errstr_size,
                             "body: %zu bytes is over the limit of %zu bytes",
                             len, limits->max_input_bytes);
                return NULL;
        }
        return ab_json_parse(text, len, limits->max_depth, errp, errstr,
                             errstr_size);
}

ab_err_t ab_envelope_batch_check(const json_t *body,
                                 const ab_envelope_limits_t *limits,
                                 size_t *countp, char *errstr,
                                 size_t errstr_size) {
        size_t n;

        if (!limits) {
                limits = &default_limits;
        }
        *countp = 0;
        if (json_is_object(body)) {
                *countp = 1;
                return AB_OK;
        }
        if (!json_is_array(body)) {
                return fail(AB_ERR_MALFORMED, errstr, errstr_size,
                            "body: must be a JSON object or array");
        }
        n = json_array_size(body);
        if (n == 0) {
                return fail(AB_ERR_INVALID, errstr, errstr_size,
                            "body: empty array");
        }
        if (n > limits->max_batch) {
                return fail(AB_ERR_TOO_LARGE, errstr, errstr_size,
                            "body: %zu items is over the batch limit of %zu",
                            n, limits->max_batch);
        }
        *countp = n;
        return AB_OK;
}

json_t *ab_envelope_batch_item(json_t *body, size_t i) {
        if (json_is_array(body)) {
                return json_array_get(body, i);
        }
        return i == 0 && json_is_object(body) ? body : NULL;
}

/*
 * Field rules
 */

/* Writes at most 64 printable ASCII bytes of \p s, others as '?'. */
static void quote(const char *s, char *out, size_t out_size) {
        size_t i, o = 0;

        for (i = 0; s[i] && o + 4 < out_size; i++) {
                if (i == 64) {
                        memcpy(out + o, "...", 3);
                        o += 3;
                        break;
                }
                out[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
        }
        out[o] = '\0';
}

/* A string member: absent (or null when optional) gives *vp NULL. */
static ab_err_t get_str(json_t *obj, const char *key, const char *label,
                        size_t max, int required, json_t **vp, char *errstr,
                        size_t errstr_size) {
        json_t *v = json_object_get(obj, key);
        size_t len;

        *vp = NULL;
        if (!v) {
                return required ? fail(AB_ERR_INVALID, errstr, errstr_size,
                                       "%s: required", label)
                                : AB_OK;
        }
        if (!required && json_is_null(v)) {
                return AB_OK;
        }
        if (!json_is_string(v)) {
                return fail(AB_ERR_INVALID, errstr, errstr_size,
                            "%s: must be a string", label);
        }
        len = json_string_length(v);
        if (strlen(json_string_value(v)) != len) {
                return fail(AB_ERR_INVALID, errstr, errstr_size,
                            "%s: must not contain NUL", label);
        }
        if (max != NO_LEN && (len == 0 || len > max)) {
                return fail(AB_ERR_INVALID, errstr, errstr_size,
                            "%s: must be 1..%zu bytes", label, max);
        }
        *vp = v;
        return AB_OK;
}

/* Whether \p prefix is in the comma list \p allowed ("*" allows all). */
static int prefix_allowed(const char *allowed, const char *prefix) {
        const char *p = allowed, *end;
        size_t plen = strlen(prefix), len;

        while (*p) {
                while (*p == ' ' || *p == ',') {
                        p++;
                }
                end = p;
                while (*end && *end != ',' && *end != ' ') {
                        end++;
                }
                len = (size_t)(end - p);
                if ((len == 1 && *p == '*') ||
                    (len == plen && len > 0 && !memcmp(p, prefix, len))) {
                        return 1;
                }
                p = end;
        }
        return 0;
}

/* An unknown dotted name we could route: segments of [A-Za-z0-9_-]. */
static int dotted_name_ok(const char *s) {
        size_t i, seg = 0;

        for (i = 0; s[i]; i++) {
                if (s[i] == '.') {
                        if (seg == 0) {
                                return 0;
                        }
                        seg = 0;
                } else if ((s[i] >= 'a' && s[i] <= 'z') ||
                           (s[i] >= 'A' && s[i] <= 'Z') ||
                           (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
                           s[i] == '-') {
                        seg++;
                } else {
                        return 0;
                }
        }
        return seg > 0 && i <= NAME_MAX_LEN;
}

static ab_err_t check_name(fields_t *f, const char *label,
                           const ab_envelope_ctx_t *ctx, char *errstr,
                           size_t errstr_size) {
        const char *name = json_string_value(f->name);
        char q[72];

        f->entry = ab_catalog_find(ctx->catalog, name);
        if (f->entry) {
                f->family = f->entry->family;
                /* catalog prefixes are at most 63 bytes */
                memcpy(f->prefix, f->entry->prefix,
                       strlen(f->entry->prefix) + 1);
                return AB_OK;
        }
        if (ctx->allowed_prefixes && dotted_name_ok(name) &&
            ab_catalog_dotted_prefix(name, f->prefix, sizeof(f->prefix)) ==
                AB_OK &&
            prefix_allowed(ctx->allowed_prefixes, f->prefix)) {
                /* Their topics hold the bus's failure records and audit's
                 * signed checkpoints: never a client's Avro. */
                if (!strcmp(f->prefix, AB_CATALOG_TOPIC_REJECTED) ||
                    !strcmp(f->prefix, AB_CATALOG_TOPIC_DEADLETTER) ||
                    !strcmp(f->prefix, AB_CATALOG_TOPIC_AUDIT_CHECKPOINTS)) {
                        quote(name, q, sizeof(q));
                        f->prefix[0] = '\0';
                        return fail(AB_ERR_INVALID, errstr, errstr_size,
                                    "%s: \"%s\": the prefix of the bus's "
                                    "failure topics is reserved",
                                    label, q);
                }
                f->family = AB_FAMILY_PLATFORM;
                return AB_OK;
        }
        f->prefix[0] = '\0';
        quote(name, q, sizeof(q));
        return fail(AB_ERR_UNKNOWN, errstr, errstr_size,
                    "%s: unknown event name \"%s\"", label, q);
}

static ab_err_t check_version(json_t *item, int required, fields_t *f,
                              char *errstr, size_t errstr_size) {
        json_t *v = json_object_get(item, "schemaVersion");
        json_int_t n;

        if (!v) {
                f->version = AB_ENVELOPE_SCHEMA_VERSION;
                return required ? fail(AB_ERR_INVALID, errstr, errstr_size,
                                       "schemaVersion: required")
                                : AB_OK;
        }
        if (!json_is_integer(v)) {
                return fail(AB_ERR_INVALID, errstr, errstr_size,
                            "schemaVersion: must be an integer");
        }
        n = json_integer_value(v);
        if (n < 1) {
                return fail(AB_ERR_INVALID, errstr, errstr_size,
                            "schemaVersion: must be >= 1");
        }
        if (n > AB_ENVELOPE_SCHEMA_VERSION) {
                return fail(AB_ERR_UNSUPPORTED, errstr, errstr_size,
                            "schemaVersion: %" JSON_INTEGER_FORMAT
                            " is newer than this server's %d",
                            n, AB_ENVELOPE_SCHEMA_VERSION);
        }
        f->version = (int)n;
        return AB_OK;
}

/* Validates \p item without changing it. Field order: schemaVersion
 * first (a newer event is judged by its version, not by v1 rules), then
 * the envelope's own order. */
static ab_err_t check(json_t *item, const ab_envelope_ctx_t *ctx,
                      const ab_envelope_limits_t *lim, fields_t *f,
                      char *errstr, size_t errstr_size) {
        int bus = ctx->form == AB_FORM_BUS;
        json_t *company;
        ab_err_t err;
        size_t size;
        char why[128];

        if ((err = check_version(item, !bus, f, errstr, errstr_size)) ||
            (err = get_str(item, "id", "id", lim->max_id_len, !bus, &f->id,
                           errstr, errstr_size)) ||
            (err = get_str(item, bus ? "type" : "name", bus ? "type" : "name",
                           NO_LEN, 1, &f->name, errstr, errstr_size)) ||
            (err = check_name(f, bus ? "type" : "name", ctx, errstr,
                              errstr_size)) ||
            (err = get_str(item, "occurredAt", "occurredAt", NO_LEN, !bus,
                           &f->occurred, errstr, errstr_size))) {
                return err;
        }
        if (f->occurred &&
            ab_time_parse(json_string_value(f->occurred),
                                   &f->occurred_ms) != AB_OK) {
                return fail(AB_ERR_INVALID, errstr, errstr_size,
                            "occurredAt: not an ISO-8601 timestamp with zone");
        }
        if ((err = get_str(item, "source", "source", NO_LEN, 1, &f->source,
                           errstr, errstr_size))) {
                return err;
        }
        if (ab_catalog_check_source(f->family, json_string_value(f->source),
                                    why, sizeof(why)) != AB_OK) {
                return fail(AB_ERR_INVALID, errstr, errstr_size,
                            "source: %s", why);
        }
        if (bus && (err = get_str(item, "tenant", "tenant", REF_MAX_LEN, 0,
                                  &f->company, errstr, errstr_size))) {
                return err;
        }
        if ((err = get_str(item, "companyId", "companyId", REF_MAX_LEN, 0,
                           &company, errstr, errstr_size)) ||
            (err = get_str(item, "subjectId", "subjectId", REF_MAX_LEN, 0,
                           &f->subject, errstr, errstr_size))) {
                return err;
        }
        if (!f->company) {
                f->company = company;
        }
        f->payload = json_object_get(item, "payload");
        if (!f->payload) {
                return bus ? AB_OK
                           : fail(AB_ERR_INVALID, errstr, errstr_size,
                                  "payload: required object");
        }
        if (!json_is_object(f->payload)) {
                return fail(AB_ERR_INVALID, errstr, errstr_size,
                            "payload: must be an object");
        }
        /* A bound first: reals are printed only when it is over. */
        size = ab_json_dump(f->payload, NULL, 0, AB_JSON_BOUND);
        if (size > lim->max_payload_bytes) {
                size = ab_json_dump(f->payload, NULL, 0, 0);
        }
        if (size == 0) {
                size = SIZE_MAX; /* cannot be written: never accepted */
        }
        if (size > lim->max_payload_bytes) {
                return fail(AB_ERR_TOO_LARGE, errstr, errstr_size,
                            "payload: %zu bytes is over the limit of %zu "
                            "bytes",
                            size, lim->max_payload_bytes);
        }
        return AB_OK;
}

static int is_reserved(const char *key) {
        size_t i;

        for (i = 0; i < sizeof(bus_reserved) / sizeof(bus_reserved[0]); i++) {
                if (!strcmp(key, bus_reserved[i])) {
                        return 1;
                }
        }
        return 0;
}

/* Builds the normalised bus-form doc; values are shared with \p item. */
static ab_err_t build_bus(json_t *item, const ab_envelope_ctx_t *ctx,
                          fields_t *f, json_t **docp, char *errstr,
                          size_t errstr_size) {
        json_t *doc, *hdr = NULL, *v;
        const char *key;
        char buf[40];
        int64_t now;
        int rc = 0;

        *docp = NULL;
        if (!f->company && ctx->tenant_header && *ctx->tenant_header) {
                if (strlen(ctx->tenant_header) > REF_MAX_LEN) {
                        return fail(AB_ERR_INVALID, errstr, errstr_size,
                                    "x-tenant: must be 1..%d bytes",
                                    REF_MAX_LEN);
                }
                hdr = json_string(ctx->tenant_header);
                if (!hdr) {
                        return fail(AB_ERR_INVALID, errstr, errstr_size,
                                    "x-tenant: must be UTF-8");
                }
        }
        doc = json_object();
        if (!doc) {
                json_decref(hdr);
                return fail(AB_ERR_NOMEM, errstr, errstr_size,
                            "out of memory");
        }
        if (f->id) {
                rc |= json_object_set(doc, "id", f->id);
        } else {
                ab_time_uuid(buf, sizeof(buf));
                rc |= json_object_set_new(doc, "id", json_string(buf));
        }
        rc |= json_object_set(doc, "name", f->name);
        rc |= json_object_set_new(doc, "schemaVersion",
                                  json_integer(f->version));
        if (f->occurred) {
                rc |= json_object_set(doc, "occurredAt", f->occurred);
        } else {
                now = ctx->now_ms ? ctx->now_ms : ab_time_now_ms();
                ab_time_format(now, buf, sizeof(buf));
                f->occurred_ms = now;
                rc |= json_object_set_new(doc, "occurredAt", json_string(buf));
        }
        rc |= json_object_set(doc, "source", f->source);
        if (f->company) {
                rc |= json_object_set(doc, "companyId", f->company);
        } else if (hdr) {
                rc |= json_object_set(doc, "companyId", hdr);
        }
        if (f->subject) {
                rc |= json_object_set(doc, "subjectId", f->subject);
        }
        if (f->payload) {
                rc |= json_object_set(doc, "payload", f->payload);
        } else {
                rc |= json_object_set_new(doc, "payload", json_object());
        }
        json_object_foreach(item, key, v) {
                if (!is_reserved(key)) {
                        rc |= json_object_set(doc, key, v);
                }
        }
        json_decref(hdr);
        if (rc) {
                json_decref(doc);
                return fail(AB_ERR_NOMEM, errstr, errstr_size,
                            "out of memory");
        }
        /* point the view at the doc's values */
        f->id = json_object_get(doc, "id");
        f->occurred = json_object_get(doc, "occurredAt");
        f->company = json_object_get(doc, "companyId");
        f->payload = json_object_get(doc, "payload");
        *docp = doc;
        return AB_OK;
}

ab_err_t ab_envelope_from_json(ab_envelope_t *env, json_t *item,
                               const ab_envelope_ctx_t *ctx, char *errstr,
                               size_t errstr_size) {
        const ab_envelope_limits_t *lim;
        fields_t f;
        json_t *doc;
        ab_err_t err;

        ab_envelope_clear(env);
        if (!ctx || !ctx->catalog) {
                return fail(AB_ERR_INTERNAL, errstr, errstr_size,
                            "internal: no catalog");
        }
        lim = ctx->limits ? ctx->limits : &default_limits;
        if (!json_is_object(item)) {
                return fail(AB_ERR_INVALID, errstr, errstr_size,
                            "item: must be an object");
        }
        memset(&f, 0, sizeof(f));
        err = check(item, ctx, lim, &f, errstr, errstr_size);
        if (err) {
                return err;
        }
        if (ctx->form == AB_FORM_BUS) {
                err = build_bus(item, ctx, &f, &doc, errstr, errstr_size);
                if (err) {
                        return err;
                }
        } else {
                doc = json_incref(item);
        }
        env->doc = doc;
        env->id = json_string_value(f.id);
        env->name = json_string_value(f.name);
        env->schema_version = f.version;
        env->occurred_at = json_string_value(f.occurred);
        env->occurred_at_ms = f.occurred_ms;
        env->source = json_string_value(f.source);
        env->company_id = json_string_value(f.company);
        env->subject_id = json_string_value(f.subject);
        env->payload = f.payload;
        env->received_at_ms = 0;
        env->entry = f.entry;
        memcpy(env->prefix, f.prefix, sizeof(env->prefix));
        return AB_OK;
}

int ab_envelope_source_reserved(const char *source) {
        return source && !strncasecmp(source, AB_ENVELOPE_RESERVED_SOURCE,
                                      strlen(AB_ENVELOPE_RESERVED_SOURCE));
}

ab_err_t ab_envelope_platform(ab_envelope_t *env, const ab_envelope_ctx_t *ctx,
                              const char *source, const char *type,
                              const char *tenant, json_t *payload,
                              char *errstr, size_t errstr_size) {
        ab_envelope_ctx_t bus = *ctx;
        json_t *item;
        ab_err_t err;

        memset(env, 0, sizeof(*env));
        item = json_pack("{s:s,s:s,s:o}", "source", source, "type", type,
                         "payload", payload ? payload : json_object());
        if (!item) {
                ab_errstr_set(errstr, errstr_size, "cannot build %s", type);
                return AB_ERR_NOMEM;
        }
        if (tenant && *tenant) {
                json_object_set_new(item, "tenant", json_string(tenant));
        }
        bus.form = AB_FORM_BUS;
        err      = ab_envelope_from_json(env, item, &bus, errstr, errstr_size);
        json_decref(item);
        if (!err) {
                ab_envelope_set_received(env, env->occurred_at_ms);
        }
        return err;
}

void ab_envelope_set_received(ab_envelope_t *env, int64_t received_at_ms) {
        json_t *v;

        env->received_at_ms = received_at_ms;
        if (!env->doc) {
                return;
        }
        v = json_object_get(env->doc, "receivedAt");
        if (json_is_integer(v) && v->refcount == 1) {
                json_integer_set(v, received_at_ms);
                return;
        }
        json_object_set_new(env->doc, "receivedAt",
                            json_integer(received_at_ms));
}

char *ab_envelope_to_json(const ab_envelope_t *env) {
        return env->doc ? json_dumps(env->doc, JSON_COMPACT) : NULL;
}

const char *ab_envelope_key(const ab_envelope_t *env) {
        return env->company_id ? env->company_id : env->id;
}

void ab_envelope_clear(ab_envelope_t *env) {
        json_decref(env->doc);
        free(env->buf);
        memset(env, 0, sizeof(*env));
}
