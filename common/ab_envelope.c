/* aetherbus - Apache-2.0
 *
 * ab_envelope: JSON text -> bounded document -> validated, normalised
 * envelope view (spec 002), for both request forms, plus the envelope's
 * time and id helpers. Name/prefix/source rules are asked of ab_catalog;
 * Avro, Kafka and HTTP stay out of this file.
 *
 * Hot path rules: the ingest form is validated in place and the view points
 * into the item (no copy, no strdup); the payload size limit is computed by
 * walking the document (json_dumpb would allocate for its loop check); the
 * only allocations per ingest event are receivedAt's.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "ab_envelope.h"

/* companyId, subjectId, tenant, x-tenant: at most this many bytes. */
#define REF_MAX_LEN 256
/* An allowed unknown dotted name: at most this many bytes. */
#define NAME_MAX_LEN 255
/* Frames of the payload size walk; deeper documents use json_dumpb(). */
#define WALK_DEPTH 64
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

        if (errstr && errstr_size > 0) {
                va_start(ap, fmt);
                vsnprintf(errstr, errstr_size, fmt, ap);
                va_end(ap);
        }
        return err;
}

void ab_envelope_limits_default(ab_envelope_limits_t *limits) {
        *limits = default_limits;
}

/*
 * Parsing
 */

/* Whether brackets nest deeper than \p max, strings skipped, no recursion.
 * Table-driven: the common byte costs one load and one test. */
static int too_deep(const char *s, size_t len, size_t max) {
        static const unsigned char cls[256] = {
                ['"'] = 1, ['['] = 2, ['{'] = 2, [']'] = 3, ['}'] = 3,
        };
        const unsigned char *u = (const unsigned char *)s;
        size_t i = 0, depth = 0;

        while (i < len) {
                switch (cls[u[i++]]) {
                case 1: /* skip the string, escapes included */
                        while (i < len && u[i] != '"') {
                                i += u[i] == '\\' ? 2 : 1;
                        }
                        i++;
                        break;
                case 2:
                        if (++depth > max) {
                                return 1;
                        }
                        break;
                case 3:
                        if (depth > 0) {
                                depth--;
                        }
                        break;
                default:
                        break;
                }
        }
        return 0;
}

/*
 * Fast path of ab_envelope_json_parse(): a strict parser for the common
 * case that builds exactly the tree json_loadb(JSON_REJECT_DUPLICATES)
 * builds (same types, values, strings and key order). It handles plain
 * well-formed JSON; on anything else (every error, a duplicate key, an
 * escaped key, \u0000, a lone surrogate, an integer of 19 or more digits,
 * a real that overflows, invalid UTF-8) it gives up and jansson parses the
 * text itself, so errors and edge cases stay exactly jansson's.
 * Why: jansson's lexer makes a few calls per input byte (read, UTF-8
 * check, buffer append) and copies every string twice; this one scans
 * strings in bulk and copies them once (json_stringn_nocheck).
 */
#define FP_DEPTH 512

typedef struct {
        const unsigned char *p;
        const unsigned char *end;
        char *buf; /* strings with escapes, decoded; grown on demand */
        size_t cap;
        int depth;
} fp_t;

/* Bytes that stand for themselves inside a string: 0x20..0x7f but the
 * quote and the backslash. */
static const unsigned char fp_plain[256] = {
        [0x20 ... 0x21] = 1,
        [0x23 ... 0x5B] = 1,
        [0x5D ... 0x7F] = 1,
};

static json_t *fp_value(fp_t *fp);

static void fp_ws(fp_t *fp) {
        while (fp->p < fp->end && (*fp->p == ' ' || *fp->p == '\n' ||
                                   *fp->p == '\r' || *fp->p == '\t')) {
                fp->p++;
        }
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0:
 * jansson's rules (no overlong forms, no surrogates, <= U+10FFFF). */
size_t ab_envelope_utf8_seq(const unsigned char *p,
                            const unsigned char *end) {
        uint32_t v;
        size_t i, n;

        if (*p >= 0xC2 && *p <= 0xDF) {
                n = 2;
                v = *p & 0x1F;
        } else if (*p >= 0xE0 && *p <= 0xEF) {
                n = 3;
                v = *p & 0x0F;
        } else if (*p >= 0xF0 && *p <= 0xF4) {
                n = 4;
                v = *p & 0x07;
        } else {
                return 0;
        }
        if ((size_t)(end - p) < n) {
                return 0;
        }
        for (i = 1; i < n; i++) {
                if (p[i] < 0x80 || p[i] > 0xBF) {
                        return 0;
                }
                v = (v << 6) | (p[i] & 0x3F);
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) ||
            (n == 3 && v < 0x800) || (n == 4 && v < 0x10000)) {
                return 0;
        }
        return n;
}

/* Four hex digits at p (p + 4 <= end checked by the caller), or -1. */
static int32_t fp_hex4(const unsigned char *p) {
        int32_t v = 0;
        int i;

        for (i = 0; i < 4; i++) {
                v <<= 4;
                if (p[i] >= '0' && p[i] <= '9') {
                        v |= p[i] - '0';
                } else if (p[i] >= 'a' && p[i] <= 'f') {
                        v |= p[i] - 'a' + 10;
                } else if (p[i] >= 'A' && p[i] <= 'F') {
                        v |= p[i] - 'A' + 10;
                } else {
                        return -1;
                }
        }
        return v;
}

/* The rest of a string with escapes, from p (at a backslash), appended
 * to the \p of bytes already in fp->buf. */
static int fp_unescape(fp_t *fp, const unsigned char *p, size_t of,
                       const char **sp, size_t *lenp) {
        const unsigned char *end = fp->end;
        char *b                  = fp->buf;
        int32_t cp, lo;
        size_t n;

        while (p < end) {
                if (*p == '"') {
                        *sp   = b;
                        *lenp = of;
                        fp->p = p + 1;
                        return 0;
                }
                if (*p != '\\') {
                        if (*p < 0x20) {
                                return -1;
                        }
                        if (*p < 0x80) {
                                b[of++] = (char)*p++;
                                continue;
                        }
                        if (!(n = ab_envelope_utf8_seq(p, end))) {
                                return -1;
                        }
                        memcpy(b + of, p, n);
                        of += n;
                        p += n;
                        continue;
                }
                if (end - p < 2) {
                        return -1;
                }
                switch (p[1]) {
                case '"':
                case '\\':
                case '/':
                        b[of++] = (char)p[1];
                        break;
                case 'b':
                        b[of++] = '\b';
                        break;
                case 'f':
                        b[of++] = '\f';
                        break;
                case 'n':
                        b[of++] = '\n';
                        break;
                case 'r':
                        b[of++] = '\r';
                        break;
                case 't':
                        b[of++] = '\t';
                        break;
                case 'u':
                        if (end - p < 6 || (cp = fp_hex4(p + 2)) <= 0 ||
                            (cp >= 0xDC00 && cp <= 0xDFFF)) {
                                return -1; /* \u0000, lone low surrogate */
                        }
                        if (cp >= 0xD800 && cp <= 0xDBFF) {
                                if (end - p < 12 || p[6] != '\\' ||
                                    p[7] != 'u' ||
                                    (lo = fp_hex4(p + 8)) < 0xDC00 ||
                                    lo > 0xDFFF) {
                                        return -1;
                                }
                                cp = 0x10000 + ((cp - 0xD800) << 10) +
                                     (lo - 0xDC00);
                                p += 6;
                        }
                        if (cp < 0x80) {
                                b[of++] = (char)cp;
                        } else if (cp < 0x800) {
                                b[of++] = (char)(0xC0 | (cp >> 6));
                                b[of++] = (char)(0x80 | (cp & 0x3F));
                        } else if (cp < 0x10000) {
                                b[of++] = (char)(0xE0 | (cp >> 12));
                                b[of++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                                b[of++] = (char)(0x80 | (cp & 0x3F));
                        } else {
                                b[of++] = (char)(0xF0 | (cp >> 18));
                                b[of++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                                b[of++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                                b[of++] = (char)(0x80 | (cp & 0x3F));
                        }
                        p += 4;
                        break;
                default:
                        return -1;
                }
                p += 2;
        }
        return -1;
}

/* A string's bytes, after its opening quote: in the input when it has no
 * escape, else decoded into fp->buf (only when \p escapes). */
static int fp_string(fp_t *fp, const char **sp, size_t *lenp, int escapes) {
        const unsigned char *start = fp->p, *p = fp->p, *end = fp->end;
        size_t n, need;
        char *nb;

        for (;;) {
                while (p < end && fp_plain[*p]) {
                        p++;
                }
                if (p >= end) {
                        return -1;
                }
                if (*p == '"') {
                        *sp   = (const char *)start;
                        *lenp = (size_t)(p - start);
                        fp->p = p + 1;
                        return 0;
                }
                if (*p < 0x80) {
                        break; /* a backslash or a control character */
                }
                if (!(n = ab_envelope_utf8_seq(p, end))) {
                        return -1;
                }
                p += n;
        }
        if (*p != '\\' || !escapes) {
                return -1;
        }
        /* Decoded, a string is never longer than its text. */
        need = (size_t)(end - start);
        if (need > fp->cap) {
                if (!(nb = realloc(fp->buf, need))) {
                        return -1;
                }
                fp->buf = nb;
                fp->cap = need;
        }
        memcpy(fp->buf, start, (size_t)(p - start));
        return fp_unescape(fp, p, (size_t)(p - start), sp, lenp);
}

static int fp_digit(const unsigned char *p, const unsigned char *end) {
        return p < end && *p >= '0' && *p <= '9';
}

/* A number as jansson's lexer reads it: an integer without '.', 'e' or
 * 'E' (up to 18 digits here, so it cannot overflow), else a real. */
static json_t *fp_number(fp_t *fp) {
        const unsigned char *p = fp->p, *end = fp->end, *start = fp->p;
        const unsigned char *digits;
        char tmp[64];
        char *tend;
        int64_t iv = 0;
        double dv;

        if (*p == '-') {
                p++;
        }
        digits = p;
        if (!fp_digit(p, end)) {
                return NULL;
        }
        if (*p == '0') {
                p++;
                if (fp_digit(p, end)) {
                        return NULL;
                }
        } else {
                while (fp_digit(p, end)) {
                        p++;
                }
        }
        if (p >= end || (*p != '.' && *p != 'e' && *p != 'E')) {
                if (p - digits > 18) {
                        return NULL;
                }
                for (; digits < p; digits++) {
                        iv = iv * 10 + (*digits - '0');
                }
                fp->p = p;
                return json_integer(*start == '-' ? -iv : iv);
        }
        if (*p == '.') {
                p++;
                if (!fp_digit(p, end)) {
                        return NULL;
                }
                while (fp_digit(p, end)) {
                        p++;
                }
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
                p++;
                if (p < end && (*p == '+' || *p == '-')) {
                        p++;
                }
                if (!fp_digit(p, end)) {
                        return NULL;
                }
                while (fp_digit(p, end)) {
                        p++;
                }
        }
        if ((size_t)(p - start) >= sizeof(tmp)) {
                return NULL;
        }
        memcpy(tmp, start, (size_t)(p - start));
        tmp[p - start] = '\0';
        errno          = 0;
        dv             = strtod(tmp, &tend);
        if (tend != tmp + (p - start) ||
            ((dv == HUGE_VAL || dv == -HUGE_VAL) && errno == ERANGE)) {
                return NULL;
        }
        fp->p = p;
        return json_real(dv);
}

/* A duplicate key replaces the first value (jansson's set), so the object
 * ends up with fewer members than were set: then jansson parses it, and
 * says "duplicate object key". Cheaper than a lookup per key. */
static json_t *fp_object(fp_t *fp) {
        json_t *obj, *v;
        const char *k;
        size_t kl;
        size_t members = 0;

        fp->p++;
        if (!(obj = json_object())) {
                return NULL;
        }
        fp_ws(fp);
        if (fp->p < fp->end && *fp->p == '}') {
                fp->p++;
                return obj;
        }
        for (;;) {
                fp_ws(fp);
                if (fp->p >= fp->end || *fp->p != '"') {
                        break;
                }
                fp->p++;
                if (fp_string(fp, &k, &kl, 0) != 0) {
                        break;
                }
                fp_ws(fp);
                if (fp->p >= fp->end || *fp->p != ':') {
                        break;
                }
                fp->p++;
                if (!(v = fp_value(fp)) ||
                    json_object_setn_new_nocheck(obj, k, kl, v) != 0) {
                        break;
                }
                members++;
                fp_ws(fp);
                if (fp->p < fp->end && *fp->p == ',') {
                        fp->p++;
                        continue;
                }
                if (fp->p < fp->end && *fp->p == '}' &&
                    json_object_size(obj) == members) {
                        fp->p++;
                        return obj;
                }
                break;
        }
        json_decref(obj);
        return NULL;
}

static json_t *fp_array(fp_t *fp) {
        json_t *arr, *v;

        fp->p++;
        if (!(arr = json_array())) {
                return NULL;
        }
        fp_ws(fp);
        if (fp->p < fp->end && *fp->p == ']') {
                fp->p++;
                return arr;
        }
        for (;;) {
                if (!(v = fp_value(fp)) || json_array_append_new(arr, v) != 0) {
                        break;
                }
                fp_ws(fp);
                if (fp->p < fp->end && *fp->p == ',') {
                        fp->p++;
                        continue;
                }
                if (fp->p < fp->end && *fp->p == ']') {
                        fp->p++;
                        return arr;
                }
                break;
        }
        json_decref(arr);
        return NULL;
}

static json_t *fp_value(fp_t *fp) {
        const char *s;
        size_t n;
        json_t *v;

        fp_ws(fp);
        if (fp->p >= fp->end) {
                return NULL;
        }
        switch (*fp->p) {
        case '{':
        case '[':
                if (++fp->depth > FP_DEPTH) {
                        return NULL;
                }
                v = *fp->p == '{' ? fp_object(fp) : fp_array(fp);
                fp->depth--;
                return v;
        case '"':
                fp->p++;
                return fp_string(fp, &s, &n, 1) ? NULL
                                                 : json_stringn_nocheck(s, n);
        case 't':
                if (fp->end - fp->p >= 4 && !memcmp(fp->p, "true", 4)) {
                        fp->p += 4;
                        return json_true();
                }
                return NULL;
        case 'f':
                if (fp->end - fp->p >= 5 && !memcmp(fp->p, "false", 5)) {
                        fp->p += 5;
                        return json_false();
                }
                return NULL;
        case 'n':
                if (fp->end - fp->p >= 4 && !memcmp(fp->p, "null", 4)) {
                        fp->p += 4;
                        return json_null();
                }
                return NULL;
        default:
                return fp_number(fp);
        }
}

/* The document of \p text, or NULL when jansson must parse it. */
static json_t *fast_parse(const char *text, size_t len) {
        fp_t fp;
        json_t *doc;

        memset(&fp, 0, sizeof(fp));
        fp.p   = (const unsigned char *)text;
        fp.end = fp.p + len;
        fp_ws(&fp);
        if (fp.p >= fp.end || (*fp.p != '{' && *fp.p != '[')) {
                return NULL;
        }
        doc = fp_value(&fp);
        if (doc) {
                fp_ws(&fp);
                if (fp.p != fp.end) {
                        json_decref(doc);
                        doc = NULL;
                }
        }
        free(fp.buf);
        return doc;
}

json_t *ab_envelope_json_parse(const char *text, size_t len,
                               const ab_envelope_limits_t *limits,
                               ab_err_t *errp, char *errstr,
                               size_t errstr_size) {
        json_error_t jerr;
        json_t *doc;
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
        if (!text) {
                text = "";
                len = 0;
        }
        if (too_deep(text, len, limits->max_depth)) {
                *errp = fail(AB_ERR_MALFORMED, errstr, errstr_size,
                             "JSON nested deeper than %zu levels",
                             limits->max_depth);
                return NULL;
        }
        /* Duplicate keys are refused: two "name" members would let a
         * validator and a downstream reader see different events. */
        doc = fast_parse(text, len);
        if (doc) {
                *errp = AB_OK;
                return doc;
        }
        doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc) {
                *errp = fail(AB_ERR_MALFORMED, errstr, errstr_size,
                             "JSON: %s at line %d, column %d", jerr.text,
                             jerr.line, jerr.column);
                return NULL;
        }
        *errp = AB_OK;
        return doc;
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
 * Compact serialised size, exactly as json_dumpb(JSON_COMPACT) counts it
 * (checked against it by the unit tests and the fuzzer).
 */

static size_t str_size(const char *s, size_t len) {
        size_t i, n = len + 2;

        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c >= 0x20 && c != '"' && c != '\\') {
                        continue;
                }
                switch (c) {
                case '"':
                case '\\':
                case '\b':
                case '\f':
                case '\n':
                case '\r':
                case '\t':
                        n += 1;
                        break;
                default:
                        n += 5; /* \u00XX */
                        break;
                }
        }
        return n;
}

static size_t int_size(json_int_t v) {
        uint64_t u;
        size_t n = 1;

        if (v < 0) {
                n++;
                u = (uint64_t)0 - (uint64_t)v;
        } else {
                u = (uint64_t)v;
        }
        while (u >= 10) {
                u /= 10;
                n++;
        }
        return n;
}

/* jansson's jsonp_dtostr(): "%.17g", ".0" when integral, exponent without
 * '+' and leading zeros. */
static size_t real_size(double v) {
        char buf[100];
        char *e;
        size_t n;
        int ret;

        ret = snprintf(buf, sizeof(buf), "%.17g", v);
        if (ret < 0 || (size_t)ret >= sizeof(buf)) {
                return 0;
        }
        n = (size_t)ret;
        if (!strpbrk(buf, ".,e")) {
                n += 2;
        }
        e = strchr(buf, 'e');
        if (e) {
                e++;
                if (*e == '-') {
                        e++;
                } else {
                        n--; /* '+' */
                }
                while (*e == '0' && e[1]) {
                        n--;
                        e++;
                }
        }
        return n;
}

/* Longest real jansson writes: "-1.2345678901234567e-308". */
#define REAL_MAX_LEN 24

static size_t scalar_size(const json_t *v, int exact) {
        switch (json_typeof(v)) {
        case JSON_STRING:
                return str_size(json_string_value(v), json_string_length(v));
        case JSON_INTEGER:
                return int_size(json_integer_value(v));
        case JSON_REAL:
                return exact ? real_size(json_real_value(v)) : REAL_MAX_LEN;
        case JSON_TRUE:
        case JSON_NULL:
                return 4;
        case JSON_FALSE:
                return 5;
        default:
                return 0;
        }
}

static size_t key_size(void *iter) {
        return str_size(json_object_iter_key(iter),
                        json_object_iter_key_len(iter)) +
               1;
}

/* Iterative walk with a fixed stack: no allocation, no recursion. Not
 * \p exact: reals count REAL_MAX_LEN (an upper bound, no printf). */
static size_t json_size(const json_t *root, int exact) {
        struct {
                json_t *json;
                void *iter;
                size_t idx;
        } st[WALK_DEPTH];
        size_t top = 0, n = 0;
        json_t *v = (json_t *)root;
        int descend = 1;

        for (;;) {
                if (descend) {
                        if (json_is_object(v) && json_object_size(v) > 0) {
                                if (top == WALK_DEPTH) {
                                        goto deep;
                                }
                                st[top].json = v;
                                st[top].iter = json_object_iter(v);
                                n += 1 + key_size(st[top].iter);
                                v = json_object_iter_value(st[top].iter);
                                top++;
                                continue;
                        }
                        if (json_is_array(v) && json_array_size(v) > 0) {
                                if (top == WALK_DEPTH) {
                                        goto deep;
                                }
                                st[top].json = v;
                                st[top].idx = 0;
                                n += 1;
                                v = json_array_get(v, 0);
                                top++;
                                continue;
                        }
                        n += json_is_object(v) || json_is_array(v)
                                 ? 2
                                 : scalar_size(v, exact);
                }
                /* v is done: move to its next sibling or close parents */
                descend = 0;
                while (top > 0 && !descend) {
                        if (json_is_object(st[top - 1].json)) {
                                st[top - 1].iter = json_object_iter_next(
                                    st[top - 1].json, st[top - 1].iter);
                                if (st[top - 1].iter) {
                                        n += 1 + key_size(st[top - 1].iter);
                                        v = json_object_iter_value(
                                            st[top - 1].iter);
                                        descend = 1;
                                }
                        } else if (++st[top - 1].idx <
                                   json_array_size(st[top - 1].json)) {
                                n += 1;
                                v = json_array_get(st[top - 1].json,
                                                   st[top - 1].idx);
                                descend = 1;
                        }
                        if (!descend) {
                                n += 1;
                                top--;
                        }
                }
                if (!descend) {
                        return n;
                }
        }

deep:
        n = json_dumpb(root, NULL, 0, JSON_COMPACT);
        return n ? n : SIZE_MAX;
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
        size = json_size(f->payload, 0);
        if (size > lim->max_payload_bytes) {
                size = json_size(f->payload, 1);
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
        memset(env, 0, sizeof(*env));
}
