/* aetherbus - Apache-2.0
 *
 * ab_json: JSON text <-> jansson documents on the hot path. A bounded
 * parser (depth checked before any recursion, a fast path that builds
 * exactly jansson's tree, jansson itself for everything else) and one
 * compact writer that writes exactly json_dumpb(JSON_COMPACT)'s bytes and
 * counts on when out of room, so the payload size check is the writer
 * with no buffer. What stays out: what the documents mean (ab_envelope)
 * and how they are framed (ab_avro).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ab_json.h"

/*
 * UTF-8
 */

size_t ab_json_utf8_seq(const unsigned char *p, const unsigned char *end) {
        return ab_err_utf8_seq(p, end);
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
 * Fast path of ab_json_parse(): a strict parser for the common
 * case that builds exactly the tree json_loadb(JSON_REJECT_DUPLICATES)
 * builds (same types, values, strings and key order). It handles plain
 * well-formed JSON; on anything else (every error, a duplicate key, an
 * escaped key, \u0000, a lone surrogate, an integer of 19 or more digits,
 * a real that overflows, invalid UTF-8) it gives up and jansson parses the
 * text itself, so errors and edge cases stay exactly jansson's.
 * Why: jansson's lexer makes a few calls per input byte (read, UTF-8
 * check, buffer append) and copies every string twice; this one scans
 * strings in bulk and copies them once (json_stringn_nocheck).
 * Recursive, but bounded: ab_json_parse() runs too_deep() first, so it
 * never nests deeper than max_depth, and FP_DEPTH caps it whatever
 * max_depth a caller passes.
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
                        if (!(n = ab_json_utf8_seq(p, end))) {
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
                if (!(n = ab_json_utf8_seq(p, end))) {
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


json_t *ab_json_parse(const char *text, size_t len, size_t max_depth,
                      ab_err_t *errp, char *errstr, size_t errstr_size) {
        json_error_t jerr;
        json_t *doc;
        ab_err_t dummy;

        if (!errp) {
                errp = &dummy;
        }
        if (!text) {
                text = "";
                len  = 0;
        }
        if (too_deep(text, len, max_depth)) {
                *errp = AB_ERR_MALFORMED;
                ab_errstr_set(errstr, errstr_size,
                              "JSON nested deeper than %zu levels", max_depth);
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
                *errp = AB_ERR_MALFORMED;
                ab_errstr_set(errstr, errstr_size,
                              "JSON: %s at line %d, column %d", jerr.text,
                              jerr.line, jerr.column);
                return NULL;
        }
        *errp = AB_OK;
        return doc;
}

/*
 * Compact writer: the bytes and the return of json_dumpb(JSON_COMPACT)
 * (checked against it by test_json.c and the fuzz targets), without
 * jansson's callback per token and code point. Iterative with a fixed
 * stack of WR_DEPTH frames: no allocation, no recursion; a deeper
 * document (or a loop in it) goes to jansson, as do reals printed with a
 * locale's decimal comma.
 */
#define WR_DEPTH 64

typedef struct {
        char *p;
        size_t size;
        size_t len;
} wr_t;

static inline void wr_put(wr_t *w, const void *s, size_t n) {
        if (w->len + n <= w->size) {
                memcpy(w->p + w->len, s, n);
        }
        w->len += n;
}

static inline void wr_ch(wr_t *w, char c) {
        if (w->len < w->size) {
                w->p[w->len] = c;
        }
        w->len++;
}

/* Bytes written as they are: 0x20..0x7f but the quote and the backslash. */
static const unsigned char wr_plain[256] = {
        [0x20 ... 0x21] = 1,
        [0x23 ... 0x5B] = 1,
        [0x5D ... 0x7F] = 1,
};

#define WR_ONES  0x0101010101010101ULL
#define WR_HIGHS 0x8080808080808080ULL

/* The end of the run of plain bytes at s: eight at a time while no byte
 * of the word is 0x80 or above, below 0x20, '"' or '\\' (the exact
 * zero-byte tests of "Bit Twiddling Hacks"), then byte by byte. Strings
 * are mostly plain: the sink writes six per event. */
static inline const unsigned char *wr_plain_run(const unsigned char *s,
                                                const unsigned char *end) {
        uint64_t v, q, b;

        while (end - s >= 8) {
                memcpy(&v, s, 8);
                q = v ^ (WR_ONES * '"');
                b = v ^ (WR_ONES * '\\');
                if ((v | ((v - WR_ONES * 0x20) & ~v) |
                     ((q - WR_ONES) & ~q) | ((b - WR_ONES) & ~b)) &
                    WR_HIGHS) {
                        break;
                }
                s += 8;
        }
        while (s < end && wr_plain[*s]) {
                s++;
        }
        return s;
}

/* jansson's dump_string(): '"', '\\' and control characters escaped;
 * invalid UTF-8 fails, as it does in jansson. */
static int wr_string(wr_t *w, const char *str, size_t len) {
        static const char hex[] = "0123456789ABCDEF";
        const unsigned char *s = (const unsigned char *)str, *end = s + len;
        const unsigned char *run;
        char esc[6];
        size_t n;

        wr_ch(w, '"');
        while (s < end) {
                run = s;
                s   = wr_plain_run(s, end);
                wr_put(w, run, (size_t)(s - run));
                if (s >= end) {
                        break;
                }
                if (*s >= 0x80) {
                        if (!(n = ab_json_utf8_seq(s, end))) {
                                return -1;
                        }
                        wr_put(w, s, n);
                        s += n;
                        continue;
                }
                esc[0] = '\\';
                n      = 2;
                switch (*s) {
                case '"':
                case '\\':
                        esc[1] = (char)*s;
                        break;
                case '\b':
                        esc[1] = 'b';
                        break;
                case '\f':
                        esc[1] = 'f';
                        break;
                case '\n':
                        esc[1] = 'n';
                        break;
                case '\r':
                        esc[1] = 'r';
                        break;
                case '\t':
                        esc[1] = 't';
                        break;
                default:
                        esc[1] = 'u';
                        esc[2] = '0';
                        esc[3] = '0';
                        esc[4] = hex[*s >> 4];
                        esc[5] = hex[*s & 0xF];
                        n      = 6;
                        break;
                }
                wr_put(w, esc, n);
                s++;
        }
        wr_ch(w, '"');
        return 0;
}

/* jansson's jsonp_dtostr() with its default precision: "%.17g", ".0"
 * when integral, the exponent without '+' and leading zeros. */
static int wr_real(wr_t *w, double v) {
        char buf[100];
        char *start, *end;
        size_t length;
        int ret;

        ret = snprintf(buf, sizeof(buf), "%.17g", v);
        if (ret < 0 || (size_t)ret >= sizeof(buf) - 3 || strchr(buf, ',')) {
                return -1;
        }
        length = (size_t)ret;
        if (!strchr(buf, '.') && !strchr(buf, 'e')) {
                buf[length++] = '.';
                buf[length++] = '0';
                buf[length]   = '\0';
        }
        if ((start = strchr(buf, 'e'))) {
                start++;
                end = start + 1;
                if (*start == '-') {
                        start++;
                }
                while (*end == '0') {
                        end++;
                }
                if (end != start) {
                        memmove(start, end, length - (size_t)(end - buf));
                        length -= (size_t)(end - start);
                }
        }
        wr_put(w, buf, length);
        return 0;
}

/* Longest real jansson writes: "-1.2345678901234567e-308". */
#define REAL_MAX_LEN 24

static int wr_scalar(wr_t *w, const json_t *v, int flags) {
        char buf[24];
        char *e;
        uint64_t u;
        json_int_t iv;

        switch (json_typeof(v)) {
        case JSON_STRING:
                return wr_string(w, json_string_value(v),
                                 json_string_length(v));
        case JSON_INTEGER:
                iv = json_integer_value(v);
                u  = iv < 0 ? (uint64_t)0 - (uint64_t)iv : (uint64_t)iv;
                e  = buf + sizeof(buf);
                do {
                        *--e = (char)('0' + u % 10);
                        u /= 10;
                } while (u);
                if (iv < 0) {
                        *--e = '-';
                }
                wr_put(w, e, (size_t)(buf + sizeof(buf) - e));
                return 0;
        case JSON_REAL:
                if (flags & AB_JSON_BOUND) {
                        w->len += REAL_MAX_LEN;
                        return 0;
                }
                return wr_real(w, json_real_value(v));
        case JSON_TRUE:
                wr_put(w, "true", 4);
                return 0;
        case JSON_FALSE:
                wr_put(w, "false", 5);
                return 0;
        case JSON_NULL:
                wr_put(w, "null", 4);
                return 0;
        default:
                return -1;
        }
}

/* The key and ':' at iter, after ',' unless it is the first member. */
static int wr_key(wr_t *w, void *iter, int first) {
        if (!first) {
                wr_ch(w, ',');
        }
        if (wr_string(w, json_object_iter_key(iter),
                      json_object_iter_key_len(iter))) {
                return -1;
        }
        wr_ch(w, ':');
        return 0;
}

/* 0: written (or counted); -1: jansson must do it (or fail). */
static int wr_value(wr_t *w, const json_t *root, int flags) {
        struct {
                json_t *json;
                void *iter;
                size_t idx;
        } st[WR_DEPTH];
        size_t top = 0;
        json_t *v  = (json_t *)root;
        int descend = 1;

        for (;;) {
                if (descend) {
                        if (json_is_object(v) && json_object_size(v) > 0) {
                                if (top == WR_DEPTH) {
                                        return -1;
                                }
                                st[top].json = v;
                                st[top].iter = json_object_iter(v);
                                wr_ch(w, '{');
                                if (wr_key(w, st[top].iter, 1)) {
                                        return -1;
                                }
                                v = json_object_iter_value(st[top].iter);
                                top++;
                                continue;
                        }
                        if (json_is_array(v) && json_array_size(v) > 0) {
                                if (top == WR_DEPTH) {
                                        return -1;
                                }
                                st[top].json = v;
                                st[top].idx  = 0;
                                wr_ch(w, '[');
                                v = json_array_get(v, 0);
                                top++;
                                continue;
                        }
                        if (json_is_object(v)) {
                                wr_put(w, "{}", 2);
                        } else if (json_is_array(v)) {
                                wr_put(w, "[]", 2);
                        } else if (wr_scalar(w, v, flags)) {
                                return -1;
                        }
                }
                /* v is done: on to its next sibling, or close parents */
                descend = 0;
                while (top > 0 && !descend) {
                        if (json_is_object(st[top - 1].json)) {
                                st[top - 1].iter = json_object_iter_next(
                                    st[top - 1].json, st[top - 1].iter);
                                if (st[top - 1].iter) {
                                        if (wr_key(w, st[top - 1].iter, 0)) {
                                                return -1;
                                        }
                                        v = json_object_iter_value(
                                            st[top - 1].iter);
                                        descend = 1;
                                } else {
                                        wr_ch(w, '}');
                                }
                        } else if (++st[top - 1].idx <
                                   json_array_size(st[top - 1].json)) {
                                wr_ch(w, ',');
                                v = json_array_get(st[top - 1].json,
                                                   st[top - 1].idx);
                                descend = 1;
                        } else {
                                wr_ch(w, ']');
                        }
                        if (!descend) {
                                top--;
                        }
                }
                if (!descend) {
                        return 0;
                }
        }
}

size_t ab_json_dump(const json_t *json, char *buf, size_t size, int flags) {
        wr_t w = {buf, buf ? size : 0, 0};
        size_t n;

        if (!json_is_object(json) && !json_is_array(json)) {
                return 0; /* json_dumpb without JSON_ENCODE_ANY */
        }
        if (flags & AB_JSON_BOUND) {
                w.size = 0;
        }
        if (wr_value(&w, json, flags) == 0) {
                return w.len;
        }
        n = json_dumpb(json, w.size ? buf : NULL, w.size, JSON_COMPACT);
        return n;
}

size_t ab_json_dump_string(const char *str, size_t len, char *buf,
                           size_t size) {
        wr_t w = {buf, buf ? size : 0, 0};

        if (!str || wr_string(&w, str, len) == -1) {
                return 0;
        }
        return w.len;
}

/* ---- member texts ------------------------------------------------------ */

/* A scan of a body: r reads; w writes the member being kept, in place
 * (NULL while skipping). w never passes r: compaction only shrinks. */
typedef struct mt_s {
        char *r, *end;
        char *w;
} mt_t;

static void mt_ws(mt_t *m) {
        while (m->r < m->end && (*m->r == ' ' || *m->r == '\t' ||
                                 *m->r == '\n' || *m->r == '\r')) {
                m->r++;
        }
}

/* Keeps the n bytes at m->r (a token) and moves past them. */
static void mt_keep(mt_t *m, size_t n) {
        if (m->w) {
                if (m->w != m->r) {
                        memmove(m->w, m->r, n);
                }
                m->w += n;
        }
        m->r += n;
}

/* The end of the string at p (on its '"'), or NULL: the first quote not
 * escaped, i.e. after an even run of backslashes (memchr: strings are
 * most of a body's bytes). */
static const char *mt_string_end(const char *p, const char *end) {
        const char *q, *b;

        for (p++; p < end; p = q + 1) {
                if (!(q = memchr(p, '"', (size_t)(end - p)))) {
                        return NULL;
                }
                for (b = q; b > p && b[-1] == '\\'; b--) {
                }
                if ((q - b) % 2 == 0) {
                        return q + 1;
                }
        }
        return NULL;
}

static int mt_delim(char c) {
        switch (c) {
        case ' ': case '\t': case '\n': case '\r': case ',': case ':':
        case '[': case ']': case '{': case '}': case '"':
                return 1;
        default:
                return 0;
        }
}

/* One value from m->r, kept compact when m->w is set. Nesting is a
 * counter, never a recursion. */
static int mt_value(mt_t *m) {
        const char *q;
        long depth = 0;

        do {
                mt_ws(m);
                if (m->r >= m->end) {
                        return -1;
                }
                switch (*m->r) {
                case '"':
                        if (!(q = mt_string_end(m->r, m->end))) {
                                return -1;
                        }
                        mt_keep(m, (size_t)(q - m->r));
                        break;
                case '{':
                case '[':
                        depth++;
                        mt_keep(m, 1);
                        break;
                case ',':
                case ':':
                        mt_keep(m, 1);
                        break;
                case '}':
                case ']':
                        if (--depth < 0) {
                                return -1;
                        }
                        mt_keep(m, 1);
                        break;
                default:
                        for (q = m->r; q < m->end && !mt_delim(*q); q++) {
                        }
                        mt_keep(m, (size_t)(q - m->r));
                        break;
                }
        } while (depth > 0);
        return 0;
}

/* Whether the key string at m->r (on its '"') decodes to \p key; moves
 * past it. */
static int mt_key_is(mt_t *m, const char *key, int *matchp) {
        const char *q = mt_string_end(m->r, m->end), *s;
        size_t klen = strlen(key), i = 0;
        int32_t cp;

        if (!q) {
                return -1;
        }
        *matchp = 1;
        for (s = m->r + 1; s < q - 1 && *matchp; s++, i++) {
                char c = *s;

                if (c == '\\') {
                        s++;
                        switch (*s) {
                        case 'b': c = '\b'; break;
                        case 'f': c = '\f'; break;
                        case 'n': c = '\n'; break;
                        case 'r': c = '\r'; break;
                        case 't': c = '\t'; break;
                        case 'u':
                                cp = q - s >= 6 ? fp_hex4((const unsigned char *)s + 1)
                                                : -1;
                                /* beyond ASCII it is no key of ours */
                                c  = cp > 0 && cp < 0x80 ? (char)cp : '\0';
                                s += 4;
                                break;
                        default: c = *s; break;
                        }
                }
                *matchp = i < klen && c && c == key[i];
        }
        *matchp = *matchp && i == klen;
        m->r    = (char *)q;
        return 0;
}

/* The members of the object at m->r: \p t gets key's value. */
static int mt_object(mt_t *m, const char *key, ab_json_text_t *t) {
        int match;
        char *start;

        m->r++; /* '{' */
        for (;;) {
                mt_ws(m);
                if (m->r < m->end && *m->r == '}') {
                        m->r++;
                        return 0;
                }
                if (m->r >= m->end || *m->r != '"' || mt_key_is(m, key, &match)) {
                        return -1;
                }
                mt_ws(m);
                if (m->r >= m->end || *m->r++ != ':') {
                        return -1;
                }
                mt_ws(m);
                start = m->r;
                m->w  = match && t ? start : NULL;
                if (mt_value(m)) {
                        m->w = NULL;
                        return -1;
                }
                if (m->w) {
                        t->p   = start;
                        t->len = (size_t)(m->w - start);
                        m->w   = NULL;
                }
                mt_ws(m);
                if (m->r < m->end && *m->r == ',') {
                        m->r++;
                } else if (m->r >= m->end || *m->r != '}') {
                        return -1;
                }
        }
}

ab_err_t ab_json_member_texts(char *text, size_t len, const char *key,
                              ab_json_text_t *texts, size_t cnt) {
        mt_t m = {text, text + len, NULL};
        size_t i;
        int rc = -1;

        memset(texts, 0, cnt * sizeof(*texts));
        if (!text) {
                return AB_ERR_MALFORMED;
        }
        mt_ws(&m);
        if (m.r < m.end && *m.r == '{') {
                rc = mt_object(&m, key, cnt ? &texts[0] : NULL);
        } else if (m.r < m.end && *m.r == '[') {
                m.r++;
                rc = 0;
                for (i = 0; !rc; i++) {
                        mt_ws(&m);
                        if (m.r >= m.end || *m.r == ']') {
                                break;
                        }
                        rc = *m.r == '{' ? mt_object(&m, key, i < cnt ? &texts[i] : NULL)
                                         : mt_value(&m);
                        mt_ws(&m);
                        if (!rc && m.r < m.end && *m.r == ',') {
                                m.r++;
                        }
                }
                rc = rc || m.r >= m.end ? -1 : 0;
        }
        if (rc) {
                memset(texts, 0, cnt * sizeof(*texts));
                return AB_ERR_MALFORMED;
        }
        return AB_OK;
}
