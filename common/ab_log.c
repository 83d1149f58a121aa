/* aetherbus - Apache-2.0
 *
 * ab_log: JSON-lines logger on stderr. Owns the line format and escaping;
 * what to log and when stays with the callers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ab_log.h"

volatile int ab_log_level_current = AB_LOG_INFO;

static const char *svc_name = "aetherbus";
static int out_fd           = STDERR_FILENO;

static const char *names[] = {"error", "warn", "info", "debug"};

void ab_log_init(const char *service, ab_log_level_t level) {
        if (service) {
                svc_name = service;
        }
        ab_log_level_current = (int)level;
}

void ab_log_set_level(ab_log_level_t level) {
        ab_log_level_current = (int)level;
}

void ab_log_set_fd(int fd) {
        out_fd = fd < 0 ? STDERR_FILENO : fd;
}

const char *ab_log_level_name(ab_log_level_t level) {
        if ((int)level < 0 || (int)level > AB_LOG_DEBUG) {
                return "?";
        }
        return names[level];
}

ab_err_t ab_log_level_parse(const char *s, ab_log_level_t *levelp) {
        int i;

        if (!s) {
                return AB_ERR_INVALID;
        }
        for (i = 0; i <= AB_LOG_DEBUG; i++) {
                if (!strcasecmp(s, names[i])) {
                        *levelp = (ab_log_level_t)i;
                        return AB_OK;
                }
        }
        if (!strcasecmp(s, "warning")) {
                *levelp = AB_LOG_WARN;
                return AB_OK;
        }
        return AB_ERR_INVALID;
}

/* Appends s JSON-escaped; stops (truncating) rather than overflow. */
static size_t escape(char *out, size_t of, size_t size, const char *s) {
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p;

        for (p = (const unsigned char *)s; *p && of + 7 < size; p++) {
                switch (*p) {
                case '"':
                        out[of++] = '\\';
                        out[of++] = '"';
                        break;
                case '\\':
                        out[of++] = '\\';
                        out[of++] = '\\';
                        break;
                case '\n':
                        out[of++] = '\\';
                        out[of++] = 'n';
                        break;
                case '\r':
                        out[of++] = '\\';
                        out[of++] = 'r';
                        break;
                case '\t':
                        out[of++] = '\\';
                        out[of++] = 't';
                        break;
                default:
                        if (*p < 0x20) {
                                out[of++] = '\\';
                                out[of++] = 'u';
                                out[of++] = '0';
                                out[of++] = '0';
                                out[of++] = hex[*p >> 4];
                                out[of++] = hex[*p & 0xf];
                        } else {
                                out[of++] = (char)*p;
                        }
                }
        }
        return of;
}

void ab_log_write(ab_log_level_t level, const char *comp, const char *fmt, ...) {
        char msg[2048];
        char line[4608];
        char ts[40];
        struct timespec now;
        struct tm tm;
        size_t of;
        ssize_t r;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

        of = (size_t)snprintf(line, sizeof(line),
                              "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\","
                              "\"svc\":\"%s\",\"comp\":\"",
                              ts, now.tv_nsec / 1000000,
                              ab_log_level_name(level), svc_name);
        of = escape(line, of, sizeof(line) - 16, comp ? comp : "-");
        memcpy(line + of, "\",\"msg\":\"", 9);
        of += 9;
        of = escape(line, of, sizeof(line) - 4, msg);
        memcpy(line + of, "\"}\n", 3);
        of += 3;

        /* One write() per line keeps lines whole across threads. */
        r = write(out_fd, line, of);
        (void)r;
}
