/* aetherbus - Apache-2.0
 *
 * ab_err: description table and HTTP mapping for ab_err_t. Keep the table
 * in enum order; a unit test walks every code.
 */
#include <stdarg.h>
#include <stdio.h>

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

void ab_errstr_set(char *errstr, size_t errstr_size, const char *fmt, ...) {
        va_list ap;

        if (!errstr || errstr_size == 0) {
                return;
        }
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
}
