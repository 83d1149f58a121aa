/* aetherbus - Apache-2.0
 *
 * ab_avro: the Avro codec of the Kafka record value. It owns the Parsing
 * Canonical Form and CRC-64-AVRO fingerprint of a schema (avro-c 1.11.1 has
 * neither), the single-object framing (0xC3 0x01 + 8-byte little-endian
 * fingerprint + Avro binary body), a direct envelope encoder for the hot
 * path, and a decoder that resolves records written with other (newer or
 * older) envelope schemas through avro-c's resolved readers.
 *
 * What stays out: envelope validation and the catalog (ab_envelope,
 * ab_catalog), Kafka (ab_kafka). A codec never validates a name or a
 * source; it only moves bytes and JSON.
 */
#ifndef AB_AVRO_H
#define AB_AVRO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ab_envelope.h"
#include "ab_err.h"

/** The two magic bytes of Avro single-object encoding. */
#define AB_AVRO_MAGIC0 0xC3
#define AB_AVRO_MAGIC1 0x01
/** Magic + fingerprint: the bytes before the Avro body. */
#define AB_AVRO_HEADER_SIZE 10
/** CRC-64-AVRO of zero bytes, the Rabin fingerprint's seed. */
#define AB_AVRO_FP_EMPTY UINT64_C(0xc15d213aa4d7a795)

typedef struct ab_avro_codec_s ab_avro_codec_t;

/**
 * @brief CRC-64-AVRO (Rabin) fingerprint of \p len bytes at \p data, as the
 *        Avro specification defines it. \p data may be NULL when len is 0.
 * @returns the fingerprint; AB_AVRO_FP_EMPTY for zero bytes.
 */
uint64_t ab_avro_crc64(const void *data, size_t len);

/**
 * @brief Parsing Canonical Form of a JSON schema text (NUL-terminated):
 *        primitives in simple form, fullnames, only name, type, fields,
 *        symbols, items, values, size kept and in that order, no
 *        whitespace. Logical types reduce to their underlying type.
 * @returns AB_OK with *pcfp set to a malloc'ed NUL-terminated string the
 *          caller free()s; AB_ERR_MALFORMED (not JSON) or AB_ERR_INVALID
 *          (not a schema) with errstr, *pcfp untouched.
 */
ab_err_t ab_avro_canonical_form(const char *schema, char **pcfp, char *errstr,
                                size_t errstr_size);

/**
 * @brief CRC-64-AVRO of the Parsing Canonical Form of \p schema.
 * @returns AB_OK with *fpp set, or the errors of ab_avro_canonical_form().
 */
ab_err_t ab_avro_fingerprint(const char *schema, uint64_t *fpp, char *errstr,
                             size_t errstr_size);

/**
 * @brief Writes the single-object header (magic + little-endian \p fp)
 *        into \p out, which has room for AB_AVRO_HEADER_SIZE bytes.
 */
void ab_avro_header_write(uint64_t fp, void *out);

/**
 * @brief Reads the single-object header of a framed record.
 * @returns AB_OK with *fpp set; AB_ERR_MALFORMED with errstr when \p len
 *          is shorter than the header or the magic is wrong.
 */
ab_err_t ab_avro_header_read(const void *data, size_t len, uint64_t *fpp,
                             char *errstr, size_t errstr_size);

/**
 * @brief Creates a codec for a reader (and encoder) schema: \p schema is
 *        the JSON text of a record holding the nine envelope fields, or
 *        NULL for the embedded schemas/envelope.avsc. The schema itself is
 *        the first known writer schema. Extra fields are allowed when they
 *        are null, boolean, int, long, float, double or string, or a union
 *        of null and one of these; encode takes them from env->doc by name.
 *        The codec is immutable once shared: encode and decode may run on
 *        many threads at once; ab_avro_codec_add_schema() may not.
 * @returns a new codec (ab_avro_codec_destroy() it), or NULL with errstr.
 */
ab_avro_codec_t *ab_avro_codec_new(const char *schema, char *errstr,
                                   size_t errstr_size);

/**
 * @brief Registers another writer schema (JSON text), found by its
 *        fingerprint when decoding, e.g. a newer envelope that added
 *        optional fields. Writer-only fields are dropped on decode;
 *        reader fields the writer lacks take the reader's default. The
 *        two must resolve (same record name, compatible field types, no
 *        recursive types). Registering a known fingerprint again is a
 *        no-op. Call before the codec is shared between threads.
 * @returns AB_OK; AB_ERR_MALFORMED / AB_ERR_INVALID (not a schema, does
 *          not resolve against the reader) or AB_ERR_UNSUPPORTED, with
 *          errstr; the codec is unchanged on error.
 */
ab_err_t ab_avro_codec_add_schema(ab_avro_codec_t *codec, const char *schema,
                                  char *errstr, size_t errstr_size);

/** @brief Frees \p codec; NULL is a no-op. */
void ab_avro_codec_destroy(ab_avro_codec_t *codec);

/** @returns the fingerprint of the codec's reader (encoder) schema. */
uint64_t ab_avro_codec_fingerprint(const ab_avro_codec_t *codec);

/**
 * @brief Encodes \p env as a framed record with the codec's schema into the
 *        caller's buffer (no allocation): id, name, occurredAt, source
 *        (non-NULL), schemaVersion, companyId/subjectId (NULL is the null
 *        branch), payload (an object, written as compact JSON text),
 *        received_at_ms, and extra fields from env->doc.
 * @returns AB_OK with *lenp the record size; AB_ERR_TOO_LARGE with *lenp
 *          the exact size needed when \p out_size is too small (grow the
 *          buffer and call again); AB_ERR_INVALID with errstr naming the
 *          field when env lacks a value the schema needs.
 */
ab_err_t ab_avro_encode(const ab_avro_codec_t *codec, const ab_envelope_t *env,
                        char *out, size_t out_size, size_t *lenp,
                        char *errstr, size_t errstr_size);

/**
 * @brief Decodes a framed record into a new JSON object with the reader
 *        schema's fields under their JSON names, in schema order: id,
 *        name, schemaVersion, occurredAt, source, companyId and subjectId
 *        (left out when null), payload (parsed back into an object),
 *        receivedAt (integer), then any extra reader fields; null values
 *        are left out. Fields only the writer knows are dropped.
 *        Safe on any input.
 * @returns AB_OK with *docp set (the caller json_decref()s it);
 *          AB_ERR_MALFORMED (bad magic, truncated or corrupt body, payload
 *          not a JSON object), AB_ERR_UNKNOWN (fingerprint of no known
 *          writer schema) or AB_ERR_NOMEM, with errstr; *docp untouched.
 */
ab_err_t ab_avro_decode(const ab_avro_codec_t *codec, const void *data,
                        size_t len, json_t **docp, char *errstr,
                        size_t errstr_size);

/**
 * @brief Decodes a framed record into \p env (zeroed or cleared by the
 *        caller) without catalog validation: env->doc is the document of
 *        ab_avro_decode() and owns every string, the string fields point
 *        into it, payload is borrowed from it, occurred_at_ms is parsed,
 *        entry is NULL and prefix is empty. Release with
 *        ab_envelope_clear().
 * @returns AB_OK; the errors of ab_avro_decode(), or AB_ERR_INVALID when
 *          occurredAt is not a timestamp with zone; env is zeroed on error.
 */
ab_err_t ab_avro_decode_envelope(const ab_avro_codec_t *codec,
                                 const void *data, size_t len,
                                 ab_envelope_t *env, char *errstr,
                                 size_t errstr_size);

/**
 * @brief Decodes a framed record into a view for consumers: every string
 *        field, occurredAt_ms and receivedAt, and the payload as the JSON
 *        text stored in the record (env->payload_json; env->payload is
 *        NULL: a consumer that needs the tree parses it, one that forwards
 *        or stores the text does not). A record in the codec's own schema
 *        is read directly, one allocation, no avro-c, no jansson; any
 *        other known writer goes through ab_avro_decode_envelope() and its
 *        payload is written back as compact text. Strings are checked as
 *        jansson checks them (UTF-8, no embedded NUL); the payload text is
 *        not parsed here.
 * @returns as ab_avro_decode_envelope(); ab_envelope_clear() frees env.
 */
ab_err_t ab_avro_decode_view(const ab_avro_codec_t *codec, const void *data,
                             size_t len, ab_envelope_t *env, char *errstr,
                             size_t errstr_size);

#endif
