/* aetherbus - Apache-2.0
 *
 * ab_envelope: the canonical event envelope (spec 002). Parses an envelope
 * or an array of them from JSON, normalises the /bus/events form into it,
 * validates every field with a precise message, and serialises it back.
 * Routing and source rules come from ab_catalog; Avro lives in ab_avro.
 *
 * An envelope is a validated view over one normalised JSON object (env->doc)
 * that owns every string the view points to. Generated values (id,
 * occurredAt, receivedAt) are written into doc, so serialising doc gives the
 * normalised event, unknown top-level fields included (they are kept, never
 * an error). The struct is public because it is a plain record that every
 * service reads, like rd_kafka_message_t.
 */
#ifndef AB_ENVELOPE_H
#define AB_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ab_catalog.h"
#include "ab_err.h"
#include "ab_time.h"

#define AB_ENVELOPE_SCHEMA_VERSION 1

typedef struct ab_envelope_s {
        json_t *doc;            /**< owned reference; holds every string */
        const char *id;
        const char *name;
        int schema_version;
        const char *occurred_at;
        int64_t occurred_at_ms; /**< occurredAt as ms since the epoch */
        const char *source;
        const char *company_id; /**< NULL when absent */
        const char *subject_id; /**< NULL when absent */
        json_t *payload;        /**< borrowed from doc, always an object */
        int64_t received_at_ms; /**< 0 until ab_envelope_set_received() */
        const ab_catalog_entry_t *entry; /**< NULL for an allowed unknown prefix */
        char prefix[64];        /**< routing prefix ("commerce", "crm") */
        /** Who sent it (CloudEvents authcontext headers, not in the Avro
         *  value): set by ingest, NULL elsewhere; not owned. */
        const char *auth_type;
        const char *auth_id;
        /** The payload's JSON text, when known: as stored, for a record
         *  read by ab_avro_decode_view() (payload is NULL then); as the
         *  client sent it (compacted) in ingest, which ab_avro_encode()
         *  writes instead of re-printing payload. buf: the owned block
         *  holding a view's strings. NULL otherwise; not owned by env
         *  unless in buf. */
        const char *payload_json;
        size_t payload_json_len;
        char *buf;
} ab_envelope_t;

/** Limits are parameters, not constants: each service passes its own. */
typedef struct ab_envelope_limits_s {
        size_t max_id_len;        /**< default 128 */
        size_t max_payload_bytes; /**< serialised compact size; default 64 KiB */
        size_t max_batch;         /**< items per request; default 1000 */
        size_t max_input_bytes;   /**< whole JSON text; default 1 MiB */
        size_t max_depth;         /**< JSON nesting; default 32 */
} ab_envelope_limits_t;

/** Which request form an item came in. */
typedef enum {
        AB_FORM_INGEST, /**< POST /events/ingest: the envelope itself */
        AB_FORM_BUS,    /**< POST /bus/events: {source,type,payload,tenant?} */
} ab_form_t;

/** What validation needs besides the item itself. */
typedef struct ab_envelope_ctx_s {
        const ab_catalog_t *catalog;
        const ab_envelope_limits_t *limits;
        ab_form_t form;
        const char *tenant_header;    /**< x-tenant, or NULL (bus form) */
        const char *allowed_prefixes; /**< ALLOW_UNKNOWN_PREFIXES: "a,b" or "*" or NULL */
        int64_t now_ms;               /**< clock for generated occurredAt; 0 = real time */
} ab_envelope_ctx_t;

/** Fills \p limits with the defaults above. */
void ab_envelope_limits_default(ab_envelope_limits_t *limits);

/**
 * @brief Parses JSON text into a document, refusing input over
 *        limits->max_input_bytes (AB_ERR_TOO_LARGE, before any scan),
 *        nesting over limits->max_depth (AB_ERR_MALFORMED "JSON nested
 *        deeper than 32 levels", checked before jansson sees it, without
 *        recursion), duplicate object keys and malformed JSON
 *        (AB_ERR_MALFORMED with jansson's line and column). The top level
 *        must be an object or an array. \p limits NULL means the defaults;
 *        \p errp may be NULL.
 * @returns the new document (json_decref it) or NULL with errstr and *errp
 *          set to AB_ERR_MALFORMED or AB_ERR_TOO_LARGE.
 */
json_t *ab_envelope_json_parse(const char *text, size_t len,
                               const ab_envelope_limits_t *limits,
                               ab_err_t *errp, char *errstr,
                               size_t errstr_size);

/**
 * @brief Splits a parsed body into items: an array is its elements, an
 *        object is a batch of one. Anything else is AB_ERR_MALFORMED;
 *        more than limits->max_batch items is AB_ERR_TOO_LARGE; an empty
 *        array is AB_ERR_INVALID. Items themselves are not checked here:
 *        a non-object item fails ab_envelope_from_json() on its own
 *        ("item: must be an object") so the rest of the batch can pass.
 *        \p limits NULL means the defaults.
 * @returns AB_OK with *countp set.
 */
ab_err_t ab_envelope_batch_check(const json_t *body,
                                 const ab_envelope_limits_t *limits,
                                 size_t *countp, char *errstr,
                                 size_t errstr_size);

/** @returns item \p i of a body accepted by ab_envelope_batch_check(). */
json_t *ab_envelope_batch_item(json_t *body, size_t i);

/**
 * @brief Validates and normalises one item into \p env (zeroed by the
 *        caller or reused after ab_envelope_clear()). Validation happens
 *        before any change, so on error \p item is untouched (ingest
 *        forwards it as-is to events.rejected). On success env holds a
 *        reference to the normalised doc: \p item itself, completed in
 *        place (ingest form, no copy on the hot path), or a new object
 *        (bus form).
 *        The error names the field: "occurredAt: not an ISO-8601 timestamp
 *        with zone", "name: unknown event name \"Foo\"",
 *        "source: must be one of storefront|admin|api|bot|agent".
 *        Fields are checked in this order: schemaVersion, id, name (bus:
 *        type), occurredAt, source, (bus: tenant), companyId, subjectId,
 *        payload, (bus: the x-tenant header). Ingest form: id, name, schemaVersion, occurredAt, source
 *        and payload are required. Bus form: id, occurredAt and
 *        schemaVersion are optional (generated / 1), payload defaults to
 *        {}, companyId = tenant, else companyId, else x-tenant.
 *        Codes: AB_ERR_UNKNOWN (name), AB_ERR_UNSUPPORTED (schemaVersion
 *        above ours), AB_ERR_TOO_LARGE (payload), AB_ERR_INVALID (the rest).
 * @returns AB_OK, or an error with errstr; env is cleared on error.
 */
ab_err_t ab_envelope_from_json(ab_envelope_t *env, json_t *item,
                               const ab_envelope_ctx_t *ctx, char *errstr,
                               size_t errstr_size);

/** @brief Sets receivedAt (ms since the epoch) in the view and the doc. */
void ab_envelope_set_received(ab_envelope_t *env, int64_t received_at_ms);

/** Sources that name aetherbus's own services: only the bus writes them. */
#define AB_ENVELOPE_RESERVED_SOURCE "aetherbus-"

/** @returns 1 when \p source (case-insensitive) is one of the bus's own:
 *           a client sending it would forge the bus's security events. */
int ab_envelope_source_reserved(const char *source);

/**
 * @brief Builds one of a service's own platform events (security.*,
 *        core.*): the bus form {source, type, tenant?, payload}, validated
 *        as a client's item is (ctx->form is taken as AB_FORM_BUS), with
 *        receivedAt = occurredAt. \p payload is stolen (NULL: {}).
 * @returns as ab_envelope_from_json().
 */
ab_err_t ab_envelope_platform(ab_envelope_t *env, const ab_envelope_ctx_t *ctx,
                              const char *source, const char *type,
                              const char *tenant, json_t *payload,
                              char *errstr, size_t errstr_size);

/**
 * @brief Serialises the normalised envelope (compact JSON).
 * @returns a malloc'ed NUL-terminated string the caller frees, or NULL.
 */
char *ab_envelope_to_json(const ab_envelope_t *env);

/** @returns the Kafka key: companyId, else id. */
const char *ab_envelope_key(const ab_envelope_t *env);

/** @brief Drops the doc reference and zeroes \p env; safe twice. */
void ab_envelope_clear(ab_envelope_t *env);

#endif
