/* aetherbus - Apache-2.0
 *
 * ab_json: the bounded JSON parser and the one compact writer of the hot
 * path, both exactly jansson's (same trees, same bytes), faster. What the
 * documents mean stays in ab_envelope.
 */
#ifndef AB_JSON_H
#define AB_JSON_H

#include <stddef.h>

#include <jansson.h>

#include "ab_err.h"

/** ab_json_dump(): count an upper bound instead of the exact length
 *  (reals as their longest form, no printf); nothing is written. */
#define AB_JSON_BOUND 0x1

/**
 * @brief Parses JSON text as json_loadb(JSON_REJECT_DUPLICATES) does:
 *        the same document, or the same error. Nesting deeper than
 *        \p max_depth is refused first, by a scan without recursion
 *        (AB_ERR_MALFORMED "JSON nested deeper than 32 levels"), so
 *        neither parser recurses deeper than that. Plain well-formed
 *        JSON takes a fast path; anything else goes to jansson, so errors
 *        read "JSON: <jansson's text> at line L, column C". The top level
 *        must be an object or an array (jansson without JSON_DECODE_ANY);
 *        \p text NULL is empty; \p errp may be NULL.
 * @returns the new document (json_decref it), or NULL with errstr and
 *          *errp AB_ERR_MALFORMED.
 */
json_t *ab_json_parse(const char *text, size_t len, size_t max_depth,
                      ab_err_t *errp, char *errstr, size_t errstr_size);

/**
 * @brief json_dumpb(json, buf, size, JSON_COMPACT): the same bytes and the
 *        same return. The text is written only when it fits (no NUL);
 *        when \p size is too small the length needed is still counted, so
 *        \p buf NULL and \p size 0 give the size. With AB_JSON_BOUND in
 *        \p flags the result is an upper bound of it, computed without
 *        formatting reals, and nothing is written.
 * @returns the length of the compact text, or 0 when json is not an
 *          object or array or cannot be written (invalid UTF-8, a loop).
 */
size_t ab_json_dump(const json_t *json, char *buf, size_t size, int flags);

/**
 * @brief One JSON string: \p str (\p len bytes) quoted and escaped as
 *        ab_json_dump() writes a string value, for callers that splice
 *        JSON text together (the sink writes envelope views). Written
 *        only as far as \p size allows; the length is counted anyway, so
 *        \p buf NULL and \p size 0 give the size.
 * @returns the length of the quoted text, or 0 when \p str is NULL or
 *          not valid UTF-8.
 */
size_t ab_json_dump_string(const char *str, size_t len, char *buf,
                           size_t size);

/** A piece of JSON text: \p p NULL when absent. */
typedef struct ab_json_text_s {
        const char *p;
        size_t len;
} ab_json_text_t;

/**
 * @brief The text of member \p key (an ASCII name) of each item of a body
 *        that ab_json_parse() accepted: of the top-level object (texts[0])
 *        or of each object of a top-level array (texts[i]), exactly as the
 *        client wrote it with the whitespace between tokens dropped:
 *        numbers keep their digits ("19.99", "1e2", "0.10") and strings
 *        their escapes, where the parsed tree would re-print them. Keys
 *        written with escapes are decoded before comparing. Each text is
 *        compacted in place: \p text is rewritten within the spans of
 *        those members, and is no JSON to parse again afterwards. No copy,
 *        no allocation, no recursion (nesting is counted). An item that
 *        is not an object or lacks the member gets {NULL, 0}; items past
 *        \p cnt are skipped.
 * @returns AB_OK, or AB_ERR_MALFORMED when \p text is not a body the
 *          parser accepted (every text is then {NULL, 0}).
 */
ab_err_t ab_json_member_texts(char *text, size_t len, const char *key,
                              ab_json_text_t *texts, size_t cnt);

/**
 * @brief Length of the valid UTF-8 sequence at \p p (lead byte >= 0x80,
 *        \p end bounds it) by jansson's rules: no overlong forms, no
 *        surrogates, at most U+10FFFF. The parser and the writer accept
 *        exactly what jansson does through it.
 * @returns 2..4, or 0 when the bytes are not valid UTF-8.
 */
size_t ab_json_utf8_seq(const unsigned char *p, const unsigned char *end);

#endif
