/* aetherbus - Apache-2.0
 *
 * ab_err: description table and HTTP mapping for ab_err_t, and the one
 * place error texts are made (ab_errstr_set), which keeps them valid
 * UTF-8 whatever they quote. Keep the table in enum order; a unit test
 * walks every code.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ab_err.h"

static const struct {
        const char *name;
        const char *desc;
        int http;
} errs[AB_ERR__CNT] = {
    [AB_OK]               = {"OK", "Success", 200},
    [AB_ERR_MALFORMED]    = {"MALFORMED", "Malformed input", 400},
    [AB_ERR_INVALID]      = {"INVALID", "Invalid value", 400},
    [AB_ERR_UNKNOWN]      = {"UNKNOWN", "Unknown name", 400},
    [AB_ERR_UNSUPPORTED]  = {"UNSUPPORTED", "Unsupported version", 400},
    [AB_ERR_TOO_LARGE]    = {"TOO_LARGE", "Too large", 413},
    [AB_ERR_MEDIA_TYPE]   = {"MEDIA_TYPE", "Unsupported media type", 415},
    [AB_ERR_UNAUTHORIZED] = {"UNAUTHORIZED", "Unauthorized", 401},
    [AB_ERR_FORBIDDEN]    = {"FORBIDDEN", "Forbidden", 403},
    [AB_ERR_NOT_FOUND]    = {"NOT_FOUND", "Not found", 404},
    [AB_ERR_METHOD]       = {"METHOD", "Method not allowed", 405},
    [AB_ERR_UNAVAILABLE]  = {"UNAVAILABLE", "Service unavailable", 503},
    [AB_ERR_TIMEOUT]      = {"TIMEOUT", "Timed out", 503},
    [AB_ERR_KAFKA]        = {"KAFKA", "Kafka error", 503},
    [AB_ERR_NOMEM]        = {"NOMEM", "Out of memory", 500},
    [AB_ERR_IO]           = {"IO", "I/O error", 500},
    [AB_ERR_INTERNAL]     = {"INTERNAL", "Internal error", 500},
};

static int valid(ab_err_t err) {
        return (int)err >= 0 && err < AB_ERR__CNT && errs[err].name;
}

const char *ab_err2str(ab_err_t err) {
        return valid(err) ? errs[err].desc : "Unknown error code";
}

const char *ab_err2name(ab_err_t err) {
        return valid(err) ? errs[err].name : "?";
}

int ab_err2http(ab_err_t err) {
        return valid(err) ? errs[err].http : 500;
}

/* Here rather than in ab_json because ab_err is below every other module;
 * ab_json_utf8_seq is this function. */
size_t ab_err_utf8_seq(const unsigned char *p, const unsigned char *end) {
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

int ab_err_utf8_valid(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *)s, *end = p + len;
        size_t n;

        while (p < end) {
                if (*p >= 0x20 && *p < 0x80) {
                        p++;
                        continue;
                }
                if (*p == 0) {
                        return 0;
                }
                if (*p < 0x80) {
                        p++;
                        continue;
                }
                if (!(n = ab_err_utf8_seq(p, end))) {
                        return 0;
                }
                p += n;
        }
        return 1;
}

size_t ab_err_utf8_clean(char *dst, size_t dst_size, const char *src,
                         size_t len) {
        static const char hex[] = "0123456789ABCDEF";
        const unsigned char *p = (const unsigned char *)src, *end = p + len;
        size_t o = 0, n;

        if (dst_size == 0) {
                return 0;
        }
        while (p < end) {
                n = *p && *p < 0x80 ? 1 : *p ? ab_err_utf8_seq(p, end) : 0;
                if (n) {
                        if (o + n >= dst_size) {
                                break;
                        }
                        memcpy(dst + o, p, n);
                        o += n;
                        p += n;
                        continue;
                }
                if (o + 4 >= dst_size) {
                        break;
                }
                dst[o++] = '\\';
                dst[o++] = 'x';
                dst[o++] = hex[*p >> 4];
                dst[o++] = hex[*p & 0xF];
                p++;
        }
        dst[o] = '\0';
        return o;
}

/* Length of s without a multi-byte sequence that snprintf's truncation
 * cut at its end: that is our cut, not the caller's bad byte. */
static size_t uncut(const char *s, size_t len) {
        const unsigned char *u = (const unsigned char *)s;
        size_t i = len, need;

        while (i > 0 && len - i < 3 && u[i - 1] >= 0x80 && u[i - 1] <= 0xBF) {
                i--;
        }
        if (i == 0 || u[i - 1] < 0xC2 || u[i - 1] > 0xF4) {
                return len;
        }
        need = u[i - 1] >= 0xF0 ? 4 : u[i - 1] >= 0xE0 ? 3 : 2;
        return len - (i - 1) < need ? i - 1 : len;
}

void ab_errstr_vset(char *errstr, size_t errstr_size, const char *fmt,
                    va_list ap) {
        char stackbuf[1024];
        char *copy;
        size_t len, i;
        int rc;

        if (!errstr || errstr_size == 0) {
                return;
        }
        rc = vsnprintf(errstr, errstr_size, fmt, ap);
        if (rc < 0) {
                errstr[0] = '\0';
                return;
        }
        len = strlen(errstr); /* a %s may have held a NUL: it ends here */
        if ((size_t)rc >= errstr_size) {
                len = uncut(errstr, len);
                errstr[len] = '\0';
        }
        if (ab_err_utf8_valid(errstr, len)) {
                return;
        }
        copy = len < sizeof(stackbuf) ? stackbuf : malloc(len + 1);
        if (!copy) {
                /* No room to grow: bad bytes become '?' in place. */
                for (i = 0; i < len; i++) {
                        if ((unsigned char)errstr[i] >= 0x80) {
                                errstr[i] = '?';
                        }
                }
                return;
        }
        memcpy(copy, errstr, len);
        ab_err_utf8_clean(errstr, errstr_size, copy, len);
        if (copy != stackbuf) {
                free(copy);
        }
}

void ab_errstr_set(char *errstr, size_t errstr_size, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        ab_errstr_vset(errstr, errstr_size, fmt, ap);
        va_end(ap);
}
