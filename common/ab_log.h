/* aetherbus - Apache-2.0
 *
 * ab_log: the one logger. Every message is one JSON line on stderr:
 * {"ts":"...","level":"info","svc":"ingest","comp":"kafka","msg":"..."}.
 * The macros test the level before formatting anything, so a disabled
 * debug line costs one comparison. Never log payloads or tokens.
 */
#ifndef AB_LOG_H
#define AB_LOG_H

#include <stddef.h>

#include "ab_err.h"

typedef enum {
        AB_LOG_ERROR = 0,
        AB_LOG_WARN  = 1,
        AB_LOG_INFO  = 2,
        AB_LOG_DEBUG = 3,
} ab_log_level_t;

extern volatile int ab_log_level_current;

/** @brief Sets the service name printed on every line (static string). */
void ab_log_init(const char *service, ab_log_level_t level);

/** @brief Changes the level at run time. */
void ab_log_set_level(ab_log_level_t level);

/**
 * @brief Parses "error|warn|info|debug" (case-insensitive).
 * @returns AB_OK or AB_ERR_INVALID.
 */
ab_err_t ab_log_level_parse(const char *s, ab_log_level_t *levelp);

/** @returns "error", "warn", "info" or "debug". */
const char *ab_log_level_name(ab_log_level_t level);

/**
 * @brief Writes one line. \p comp names the component ("kafka", "http").
 *        The message is JSON-escaped; the line is written with one write()
 *        so concurrent threads never interleave.
 */
void ab_log_write(ab_log_level_t level, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * @brief Redirects output (tests); fd -1 restores stderr.
 */
void ab_log_set_fd(int fd);

#define AB_LOG(level, comp, ...)                                               \
        do {                                                                   \
                if ((int)(level) <= ab_log_level_current) {                    \
                        ab_log_write(level, comp, __VA_ARGS__);                \
                }                                                              \
        } while (0)

#define ab_error(comp, ...) AB_LOG(AB_LOG_ERROR, comp, __VA_ARGS__)
#define ab_warn(comp, ...)  AB_LOG(AB_LOG_WARN, comp, __VA_ARGS__)
#define ab_info(comp, ...)  AB_LOG(AB_LOG_INFO, comp, __VA_ARGS__)
#define ab_debug(comp, ...) AB_LOG(AB_LOG_DEBUG, comp, __VA_ARGS__)

#endif
