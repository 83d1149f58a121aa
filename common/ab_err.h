/* aetherbus - Apache-2.0
 *
 * ab_err: the one error code type of the project, its descriptions and the
 * one mapping from an error to an HTTP status. Every call that can fail
 * returns an ab_err_t and fills the caller's errstr (librdkafka style).
 */
#ifndef AB_ERR_H
#define AB_ERR_H

#include <stdarg.h>
#include <stddef.h>

typedef enum {
        AB_OK = 0,
        AB_ERR_MALFORMED,     /**< input cannot be parsed (400) */
        AB_ERR_INVALID,       /**< parsed but a value is wrong (400) */
        AB_ERR_UNKNOWN,       /**< unknown name or key (400) */
        AB_ERR_UNSUPPORTED,   /**< e.g. schemaVersion newer than ours (400) */
        AB_ERR_TOO_LARGE,     /**< over a size or count limit (413) */
        AB_ERR_MEDIA_TYPE,    /**< body is not JSON (415) */
        AB_ERR_UNAUTHORIZED,  /**< missing or wrong token (401) */
        AB_ERR_FORBIDDEN,     /**< RBAC denial (403) */
        AB_ERR_NOT_FOUND,     /**< no such route or object (404) */
        AB_ERR_METHOD,        /**< method not allowed (405) */
        AB_ERR_UNAVAILABLE,   /**< Kafka cannot take more right now (503) */
        AB_ERR_TIMEOUT,       /**< a bounded wait ran out (503) */
        AB_ERR_KAFKA,         /**< a Kafka client error (502/503) */
        AB_ERR_NOMEM,         /**< allocation failed (500) */
        AB_ERR_IO,            /**< file or socket error (500) */
        AB_ERR_INTERNAL,      /**< a bug (500) */
        AB_ERR__CNT
} ab_err_t;

/** @returns a human description of \p err, never NULL. */
const char *ab_err2str(ab_err_t err);

/** @returns the symbolic name (\"MALFORMED\") of \p err, never NULL. */
const char *ab_err2name(ab_err_t err);

/** @returns the HTTP status a request failing with \p err answers. */
int ab_err2http(ab_err_t err);

/**
 * @brief Formats into errstr like snprintf; safe with errstr_size 0.
 *        The text is always valid UTF-8 (see ab_err_utf8_clean()): error
 *        texts quote what clients sent and end up in JSON answers and
 *        records, which jansson refuses to build from invalid UTF-8.
 */
void ab_errstr_set(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** @brief ab_errstr_set() with a va_list. */
void ab_errstr_vset(char *errstr, size_t errstr_size, const char *fmt,
                    va_list ap) __attribute__((format(printf, 3, 0)));

/**
 * @brief Copies \p len bytes of \p src into \p dst as valid UTF-8: every
 *        byte that does not start a valid sequence (jansson's rules: no
 *        overlong forms, no surrogates, at most U+10FFFF) and every NUL
 *        becomes the four characters \xNN. Stops before a sequence or
 *        escape that would not fit, so a cut never splits one.
 *        \p dst and \p src may not overlap.
 * @returns the length written (dst is NUL-terminated when dst_size > 0).
 */
size_t ab_err_utf8_clean(char *dst, size_t dst_size, const char *src,
                         size_t len);

/**
 * @brief Length of the valid UTF-8 sequence at \p p (lead byte >= 0x80,
 *        \p end bounds it) by jansson's rules: no overlong forms, no
 *        surrogates, at most U+10FFFF.
 * @returns 2..4, or 0 when the bytes are not valid UTF-8.
 */
size_t ab_err_utf8_seq(const unsigned char *p, const unsigned char *end);

/** @returns 1 when the \p len bytes of \p s are valid UTF-8 without a NUL,
 *           else 0. */
int ab_err_utf8_valid(const char *s, size_t len);

#endif
