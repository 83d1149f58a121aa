/* aetherbus - Apache-2.0
 *
 * ab_service: HTTP server, readiness cache and thread, signals and the
 * graceful stop shared by every service. Moved here from ingest so each
 * service's main.c is its config table, its context and its handlers.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ab_log.h"
#include "ab_service.h"

#define CHECK_INTERVAL_MS 2000

struct ab_service_s {
        ab_service_def_t def;
        ab_http_t *http;
        pthread_mutex_t lock;
        int ready;
        char reason[512];
        atomic_int accepting;
        pthread_t checker;
        int checker_ok;
        int stopped;
        char host[256];
};

static volatile sig_atomic_t *runp;
static volatile sig_atomic_t *reloadp;

static void on_hup(int sig) {
        (void)sig;
        if (reloadp) {
                *reloadp = 1;
        }
}

void ab_service_reload_signal(volatile sig_atomic_t *reload) {
        struct sigaction sa;

        reloadp = reload;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_hup;
        /* No SA_RESTART: the main loop's sleep ends and it reloads now. */
        sigaction(SIGHUP, &sa, NULL);
}

static void on_signal(int sig) {
        (void)sig;
        if (runp) {
                *runp = 0;
        }
}

void ab_service_signals(volatile sig_atomic_t *run) {
        struct sigaction sa;

        runp = run;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
}

void ab_service_sleep_ms(int ms) {
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

        /* A signal ends the sleep: the caller looks at its run flag. */
        (void)nanosleep(&ts, NULL);
}

ab_err_t ab_service_conf_check(const ab_service_conf_common_t *sc,
                               char *errstr, size_t errstr_size) {
        if (sc->admin_token && !*sc->admin_token) {
                ab_errstr_set(errstr, errstr_size,
                              "ADMIN_TOKEN: must not be empty when set");
                return AB_ERR_INVALID;
        }
        return AB_OK;
}

ab_auth_t *ab_service_auth_new(const ab_service_conf_common_t *sc,
                               ab_metrics_t *metrics, ab_auth_emit_cb_t *emit,
                               void *opaque, char *errstr, size_t errstr_size) {
        ab_auth_conf_t ac;

        memset(&ac, 0, sizeof(ac));
        ac.admin_token    = sc->admin_token;
        ac.rbac_mode      = sc->rbac_mode;
        ac.audit_tenants  = sc->rbac_audit_tenants;
        ac.events_per_min = sc->rbac_events_per_min;
        ac.metrics        = metrics;
        ac.emit           = emit;
        ac.opaque         = opaque;
        return ab_auth_new(&ac, errstr, errstr_size);
}

static int ready_cb(void *opaque, char *reason, size_t reason_size) {
        return ab_service_ready(opaque, reason, reason_size);
}

/* /metrics says what /readyz says: an alert on flapping readiness
 * (deploy/prometheus) reads <service>_ready. */
static double gauge_ready(void *opaque) {
        return ab_service_ready(opaque, NULL, 0) ? 1.0 : 0.0;
}

ab_service_t *ab_service_new(const ab_service_def_t *def, char *errstr,
                             size_t errstr_size) {
        ab_service_t *svc;
        ab_http_conf_t hc;

        svc = calloc(1, sizeof(*svc));
        if (!svc) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        svc->def = *def;
        pthread_mutex_init(&svc->lock, NULL);
        atomic_init(&svc->accepting, 1);
        snprintf(svc->reason, sizeof(svc->reason), "not checked yet");
        if (!def->check) {
                svc->ready = 1;
        }
        if (gethostname(svc->host, sizeof(svc->host) - 1) != 0) {
                snprintf(svc->host, sizeof(svc->host), "unknown");
        }

        if (def->metrics &&
            !ab_metrics_gauge_fn(def->metrics, "ready",
                                 "1 while /readyz answers 200, else 0.",
                                 gauge_ready, svc, errstr, errstr_size)) {
                ab_service_destroy(svc);
                return NULL;
        }
        memset(&hc, 0, sizeof(hc));
        hc.service         = def->name;
        hc.bind            = def->sc->bind;
        hc.port            = def->common->port;
        hc.max_body        = def->max_body;
        hc.max_connections = (unsigned)def->sc->http_max_connections;
        hc.max_connections_per_ip =
            (unsigned)def->sc->http_max_connections_per_ip;
        hc.timeout_s         = (unsigned)def->sc->http_timeout_s;
        hc.header_timeout_ms = (unsigned)def->sc->http_header_timeout_ms;
        hc.body_timeout_ms   = (unsigned)def->sc->http_body_timeout_ms;
        hc.body_budget       = def->sc->http_body_budget;
        hc.threads         = (unsigned)def->sc->http_threads;
        hc.retry_after_s   = (unsigned)def->sc->retry_after_s;
        hc.routes          = def->routes;
        hc.metrics         = def->metrics;
        hc.ready           = ready_cb;
        hc.opaque          = def->opaque;
        hc.ready_opaque    = svc;
        if (!(svc->http = ab_http_new(&hc, errstr, errstr_size))) {
                ab_service_destroy(svc);
                return NULL;
        }
        return svc;
}

void ab_service_check_now(ab_service_t *svc) {
        char reason[512];
        int ready;

        if (!svc->def.check) {
                return;
        }
        reason[0] = '\0';
        ready     = svc->def.check(svc->def.opaque, reason, sizeof(reason));
        pthread_mutex_lock(&svc->lock);
        if (ready != svc->ready ||
            (!ready && strcmp(reason, svc->reason) != 0)) {
                if (ready) {
                        ab_info("main", "ready: %s", svc->def.name);
                } else {
                        ab_error("main", "not ready: %s", reason);
                }
        }
        svc->ready = ready;
        snprintf(svc->reason, sizeof(svc->reason), "%s", ready ? "" : reason);
        pthread_mutex_unlock(&svc->lock);
}

int ab_service_ready(ab_service_t *svc, char *reason, size_t reason_size) {
        int ready;

        /* Draining: tell the load balancer before clients find out. */
        if (!atomic_load(&svc->accepting)) {
                if (reason) {
                        snprintf(reason, reason_size, "shutting down");
                }
                return 0;
        }
        pthread_mutex_lock(&svc->lock);
        ready = svc->ready;
        if (!ready && reason) {
                snprintf(reason, reason_size, "%s", svc->reason);
        }
        pthread_mutex_unlock(&svc->lock);
        return ready;
}

int ab_service_accepting(ab_service_t *svc) {
        return atomic_load(&svc->accepting);
}

static void *check_loop(void *opaque) {
        ab_service_t *svc = opaque;
        int interval = svc->def.check_interval_ms > 0 ? svc->def.check_interval_ms
                                                      : CHECK_INTERVAL_MS;
        int slept;

        while (atomic_load(&svc->accepting)) {
                for (slept = 0; atomic_load(&svc->accepting) && slept < interval;
                     slept += 100) {
                        ab_service_sleep_ms(100);
                }
                if (atomic_load(&svc->accepting)) {
                        ab_service_check_now(svc);
                }
        }
        return NULL;
}

ab_err_t ab_service_start(ab_service_t *svc, char *errstr,
                          size_t errstr_size) {
        ab_service_check_now(svc);
        if (ab_http_start(svc->http, errstr, errstr_size) != AB_OK) {
                return AB_ERR_IO;
        }
        ab_info("http", "listening on %s:%d", svc->def.sc->bind,
                ab_http_port(svc->http));
        /* Readiness runs beside the service's loop: a metadata request can
         * block for seconds, and SIGTERM must not wait for it. */
        if (svc->def.check) {
                svc->checker_ok =
                    pthread_create(&svc->checker, NULL, check_loop, svc) == 0;
                if (!svc->checker_ok) {
                        ab_warn("main", "no readiness thread: readiness frozen");
                }
        }
        return AB_OK;
}

void ab_service_drain(ab_service_t *svc) {
        atomic_store(&svc->accepting, 0);
}

void ab_service_stop(ab_service_t *svc, int timeout_ms) {
        if (svc->stopped) {
                return;
        }
        svc->stopped = 1;
        ab_service_drain(svc);
        ab_http_stop(svc->http, timeout_ms);
        if (svc->checker_ok) {
                pthread_join(svc->checker, NULL);
                svc->checker_ok = 0;
        }
}

void ab_service_destroy(ab_service_t *svc) {
        if (!svc) {
                return;
        }
        if (svc->http) {
                ab_service_stop(svc, 1000);
        }
        ab_http_destroy(svc->http);
        pthread_mutex_destroy(&svc->lock);
        free(svc);
}

ab_http_t *ab_service_http(ab_service_t *svc) {
        return svc->http;
}

const ab_service_conf_common_t *ab_service_conf(const ab_service_t *svc) {
        return svc->def.sc;
}

const char *ab_service_host(const ab_service_t *svc) {
        return svc->host;
}
