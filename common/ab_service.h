/* aetherbus - Apache-2.0
 *
 * ab_service: the runtime every aetherbus service shares. Owns the HTTP and
 * shutdown settings (one set of config rows), the HTTP server with the
 * shared /healthz, /readyz and /metrics, the readiness cache refreshed on a
 * thread of its own (so SIGTERM is never stuck behind a metadata request),
 * the signal handling and the order of a graceful stop.
 *
 * What stays out: what a service does between start and stop (its poll or
 * consume loop), what makes it ready (its check callback) and its routes.
 */
#ifndef AB_SERVICE_H
#define AB_SERVICE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "ab_auth.h"
#include "ab_conf.h"
#include "ab_err.h"
#include "ab_http.h"
#include "ab_metrics.h"

/** The HTTP and shutdown settings every service has; embed as a member
 *  of the service's conf struct and list AB_SERVICE_CONF_ROWS. */
typedef struct ab_service_conf_common_s {
        char *bind;
        char *admin_token;
        int rbac_mode;             /**< ab_auth_rbac_mode_t */
        char *rbac_audit_tenants;
        int rbac_events_per_min;
        int http_threads;
        int http_max_connections;
        int http_max_connections_per_ip;
        int http_timeout_s;
        int64_t http_header_timeout_ms;
        int64_t http_body_timeout_ms;
        size_t http_body_budget;
        int retry_after_s;
        int64_t shutdown_timeout_ms;
} ab_service_conf_common_t;

/* clang-format off */
#define AB_SERVICE_CONF_ROWS(ctype, member, threads_def)                        \
        {.env = "BIND_ADDRESS", .flag = "bind", .type = AB_CONF_STR,           \
         .def = "0.0.0.0", .offset = offsetof(ctype, member.bind),             \
         .help = "Numeric address the HTTP server listens on."},               \
        {.env = "ADMIN_TOKEN", .flag = "admin-token", .type = AB_CONF_STR,     \
         .offset = offsetof(ctype, member.admin_token),                        \
         .flags = AB_CONF_SECRET,                                              \
         .help = "When set, every /admin/... route requires it (x-admin-token "  \
                 "or Authorization: Bearer); ingest also needs it for PUT "    \
                 "/admin/rbac."},                                              \
        {.env = "RBAC_MODE", .flag = "rbac-mode", .type = AB_CONF_ENUM,        \
         .def = "enforce", .values = "off|audit|enforce",                      \
         .offset = offsetof(ctype, member.rbac_mode),                          \
         .help = "x-ops check on /bus/events and /admin/*: enforce answers "   \
                 "403, audit lets the request through but records it."},       \
        {.env = "RBAC_AUDIT_TENANTS", .flag = "rbac-audit-tenants",            \
         .type = AB_CONF_STR,                                                  \
         .offset = offsetof(ctype, member.rbac_audit_tenants),                 \
         .help = "Comma-separated tenants whose allowed requests also emit "   \
                 "security.rbac.allowed."},                                    \
        {.env = "RBAC_EVENTS_PER_MIN", .flag = "rbac-events-per-min",          \
         .type = AB_CONF_INT, .def = "60", .min = 1, .max = 100000,            \
         .offset = offsetof(ctype, member.rbac_events_per_min),                \
         .help = "At most this many security.rbac.* events per tenant and "    \
                 "minute; the rest are counted and reported as suppressed."},  \
        {.env = "HTTP_THREADS", .flag = "http-threads", .type = AB_CONF_INT,   \
         .def = threads_def, .min = 0, .max = 64,                              \
         .offset = offsetof(ctype, member.http_threads),                       \
         .help = "HTTP worker threads; 0 = one per CPU."},                     \
        {.env = "HTTP_MAX_CONNECTIONS", .flag = "http-max-connections",        \
         .type = AB_CONF_INT, .def = "1024", .min = 1, .max = 100000,          \
         .offset = offsetof(ctype, member.http_max_connections),               \
         .help = "Concurrent connections; beyond it a new one replaces the "   \
                 "one waiting longest for its headers, or is closed at once "  \
                 "when every one has a request under way."},                   \
        {.env = "HTTP_MAX_CONNECTIONS_PER_IP",                                 \
         .flag = "http-max-connections-per-ip", .type = AB_CONF_INT,           \
         .def = "64", .min = 1, .max = 100000,                                 \
         .offset = offsetof(ctype, member.http_max_connections_per_ip),        \
         .help = "Concurrent connections from one client address; beyond it "  \
                 "a new one is closed at once."},                              \
        {.env = "HTTP_TIMEOUT_S", .flag = "http-timeout-s",                    \
         .type = AB_CONF_INT, .def = "30", .min = 1, .max = 3600,              \
         .offset = offsetof(ctype, member.http_timeout_s),                     \
         .help = "A connection with no traffic either way is closed after "    \
                 "this."},                                                     \
        {.env = "HTTP_HEADER_TIMEOUT_MS", .flag = "http-header-timeout-ms",    \
         .type = AB_CONF_DURATION, .def = "10s", .min = 100, .max = 3600000,   \
         .offset = offsetof(ctype, member.http_header_timeout_ms),             \
         .help = "A request's headers must all be in by then, counted from "   \
                 "the connection or the end of the previous request, "         \
                 "however they trickle; else the connection is closed."},      \
        {.env = "HTTP_BODY_TIMEOUT_MS", .flag = "http-body-timeout-ms",        \
         .type = AB_CONF_DURATION, .def = "60s", .min = 100, .max = 3600000,   \
         .offset = offsetof(ctype, member.http_body_timeout_ms),               \
         .help = "A request's whole body must be in by then, counted from "    \
                 "the end of its headers; else the connection is closed."},    \
        {.env = "HTTP_BODY_BUDGET_BYTES", .flag = "http-body-budget-bytes",    \
         .type = AB_CONF_SIZE, .def = "64M", .min = 1024,                      \
         .max = 16LL * 1024 * 1024 * 1024,                                     \
         .offset = offsetof(ctype, member.http_body_budget),                   \
         .help = "Bytes that the bodies still being received may hold in "     \
                 "all (by Content-Length); beyond, 503 with Retry-After."},    \
        {.env = "RETRY_AFTER_S", .flag = "retry-after-s",                      \
         .type = AB_CONF_INT, .def = "1", .min = 1, .max = 3600,               \
         .offset = offsetof(ctype, member.retry_after_s),                      \
         .help = "Retry-After sent with 503 answers."},                        \
        {.env = "SHUTDOWN_TIMEOUT_MS", .flag = "shutdown-timeout-ms",          \
         .type = AB_CONF_DURATION, .def = "20s", .min = 0, .max = 600000,      \
         .offset = offsetof(ctype, member.shutdown_timeout_ms),                \
         .help = "On SIGTERM, how long in-flight work gets to finish."}
/* clang-format on */

/**
 * @brief Checks the shared settings (cross-field rules); call from the
 *        service's finalize().
 * @returns AB_OK or AB_ERR_INVALID naming the setting.
 */
ab_err_t ab_service_conf_check(const ab_service_conf_common_t *sc,
                               char *errstr, size_t errstr_size);

/**
 * @brief The shared admin guard of a service from its shared settings
 *        (ADMIN_TOKEN, RBAC_MODE, ...): the same rule on every admin route.
 * @returns ab_auth_new()'s guard (ab_auth_destroy()), or NULL with errstr.
 */
ab_auth_t *ab_service_auth_new(const ab_service_conf_common_t *sc,
                               ab_metrics_t *metrics, ab_auth_emit_cb_t *emit,
                               void *opaque, char *errstr, size_t errstr_size);

/**
 * Readiness of the service: 1 when ready, else 0 with the reason. Runs on
 * the readiness thread and may block (a metadata request), never on a
 * request thread.
 */
typedef int(ab_service_check_cb_t)(void *opaque, char *reason,
                                   size_t reason_size);

typedef struct ab_service_def_s {
        const char *name;                 /**< "stats": logs, metrics */
        const ab_conf_common_t *common;   /**< port, brokers */
        const ab_service_conf_common_t *sc;
        size_t max_body;                  /**< 0: ab_http's default */
        const ab_http_route_t *routes;
        ab_metrics_t *metrics;            /**< not owned */
        ab_service_check_cb_t *check;     /**< NULL: always ready */
        int check_interval_ms;            /**< 0: 2000 */
        void *opaque;                     /**< handlers' and check's */
} ab_service_def_t;

typedef struct ab_service_s ab_service_t;

/**
 * @brief Builds the HTTP server (bound, not serving yet).
 * @returns the runtime (ab_service_destroy()) or NULL with errstr.
 */
ab_service_t *ab_service_new(const ab_service_def_t *def, char *errstr,
                             size_t errstr_size);

/**
 * @brief Checks readiness once, starts serving and the readiness thread.
 * @returns AB_OK or AB_ERR_IO with errstr.
 */
ab_err_t ab_service_start(ab_service_t *svc, char *errstr,
                          size_t errstr_size);

/**
 * @returns 1 when ready, else 0 with the reason: the cached answer of the
 *          check callback, and 0 ("shutting down") once the drain began.
 *          Cheap; any thread.
 */
int ab_service_ready(ab_service_t *svc, char *reason, size_t reason_size);

/** @brief Refreshes readiness now, on the caller's thread. */
void ab_service_check_now(ab_service_t *svc);

/** @returns 1 until ab_service_drain() was called. */
int ab_service_accepting(ab_service_t *svc);

/**
 * @brief Begins the drain: /readyz answers 503 at once so the load
 *        balancer moves away, and the readiness thread ends.
 */
void ab_service_drain(ab_service_t *svc);

/**
 * @brief Stops serving (waits up to \p timeout_ms for requests in flight)
 *        and joins the readiness thread. Calls ab_service_drain() first
 *        if needed.
 */
void ab_service_stop(ab_service_t *svc, int timeout_ms);

/** @brief Stops if needed and frees; NULL is a no-op. */
void ab_service_destroy(ab_service_t *svc);

/** @returns the HTTP server (owned by \p svc). */
ab_http_t *ab_service_http(ab_service_t *svc);

/** @returns the shared settings given to ab_service_new(). */
const ab_service_conf_common_t *ab_service_conf(const ab_service_t *svc);

/**
 * @brief Installs SIGINT/SIGTERM handlers that set *\p run to 0, and
 *        ignores SIGPIPE. The flag is the only global a service has.
 */
void ab_service_signals(volatile sig_atomic_t *run);

/**
 * @brief Installs a SIGHUP handler that sets *\p reload to 1; the
 *        service's main loop reloads what it can and clears it. Without
 *        it SIGHUP keeps its default (terminate).
 */
void ab_service_reload_signal(volatile sig_atomic_t *reload);

/**
 * @brief Sleeps \p ms, returning early on a signal so the caller looks
 *        at its run flag.
 */
void ab_service_sleep_ms(int ms);

/** @returns the host name (for platform events), "unknown" on failure. */
const char *ab_service_host(const ab_service_t *svc);

#endif
