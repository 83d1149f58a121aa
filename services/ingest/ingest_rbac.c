/* aetherbus - Apache-2.0
 *
 * ingest_rbac: what only ingest decides about callers: the ingest token
 * or the per-client keys (ingest_clients) on the event routes, their rate
 * and its reload, PUT /admin/rbac, the run-time switch of the RBAC mode. The token check, the admin guard and the x-ops rule themselves are
 * ab_auth's, shared with every service.
 */
#include <stdio.h>
#include <string.h>

#include "ab_log.h"
#include "ingest.h"

/* ab_auth's emit callback: security events are ingest's own platform
 * events, through the same validation and topic routing. */
static ab_err_t emit(void *opaque, const char *type, const char *tenant,
                     json_t *payload, char *errstr, size_t errstr_size) {
        return ingest_emit(opaque, type, tenant, payload, errstr, errstr_size);
}

ab_err_t ingest_rbac_init(ingest_t *ing, char *errstr, size_t errstr_size) {
        ingest_clients_t *tbl;

        ab_auth_token_init(&ing->ingest_token, ing->conf->ingest_token);
        ing->auth = ab_service_auth_new(&ing->conf->svc, ing->metrics, emit, ing,
                                        errstr, errstr_size);
        if (!ing->auth) {
                return AB_ERR_NOMEM;
        }
        if (!(ing->m_clients = ab_metrics_counter(
                  ing->metrics, "client_requests_total",
                  "Event requests by client of INGEST_CLIENTS_FILE and "
                  "outcome (allowed, rate_limited); unknown keys are "
                  "security_events_total{type=\"token\"}.",
                  "client,outcome", errstr, errstr_size)) ||
            !(ing->m_reloads = ab_metrics_counter(
                  ing->metrics, "clients_reloads_total",
                  "Reloads of INGEST_CLIENTS_FILE on SIGHUP, by result; a "
                  "failed one keeps the previous table.",
                  "result", errstr, errstr_size))) {
                return AB_ERR_NOMEM;
        }
        if (!ing->conf->clients_file) {
                return AB_OK;
        }
        if (!(tbl = ingest_clients_load(ing->conf->clients_file, errstr,
                                        errstr_size))) {
                return AB_ERR_INVALID;
        }
        ab_info("clients", "%zu clients from %s", ingest_clients_count(tbl),
                ing->conf->clients_file);
        if (!(ing->clients = ingest_clients_holder_new(tbl))) {
                ingest_clients_destroy(tbl);
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return AB_ERR_NOMEM;
        }
        return AB_OK;
}

void ingest_rbac_reload(ingest_t *ing) {
        ingest_clients_t *tbl;
        char errstr[512];

        if (!ing->clients) {
                ab_info("clients", "SIGHUP: no INGEST_CLIENTS_FILE to reload");
                return;
        }
        if (!(tbl = ingest_clients_load(ing->conf->clients_file, errstr,
                                        sizeof(errstr)))) {
                /* A typo in the file must not lock every client out. */
                ab_error("clients", "reload failed, keeping the previous "
                         "clients: %s", errstr);
                ab_metric_inc(AB_METRIC_WITH(ing->m_reloads, "failed"));
                return;
        }
        ab_info("clients", "reloaded %zu clients from %s",
                ingest_clients_count(tbl), ing->conf->clients_file);
        ingest_clients_swap(ing->clients, tbl);
        ab_metric_inc(AB_METRIC_WITH(ing->m_reloads, "ok"));
}

static void deny_token(ingest_t *ing, ab_http_req_t *req) {
        ab_auth_count(ing->auth, "token", "denied");
        ab_http_respond_error(req, 401, "missing or invalid event token",
                              json_string("send x-event-token or "
                                          "Authorization: Bearer"));
}

int ingest_rbac_check_token(ingest_t *ing, ab_http_req_t *req) {
        ingest_clients_t *tbl;
        const ingest_client_t *c;
        unsigned retry;
        int ok;

        if (ing->clients) {
                /* Headers only: the bucket is taken once per request,
                 * before a byte of the body is read. */
                tbl = ingest_clients_get(ing->clients);
                c   = ingest_clients_match(tbl, ab_auth_presented(req, "x-event-token"));
                if (!c) {
                        ingest_clients_put(ing->clients, tbl);
                        deny_token(ing, req);
                        return 0;
                }
                ok = ingest_client_take(c, ab_time_mono_ms(), &retry);
                ab_metric_inc(AB_METRIC_WITH(ing->m_clients,
                                             ingest_client_name(c),
                                             ok ? "allowed" : "rate_limited"));
                if (!ok) {
                        ab_http_req_set_retry_after(req, retry);
                        ab_http_respond_error(
                            req, 429, "client over its rate limit",
                            json_pack("{s:s,s:i}", "client",
                                      ingest_client_name(c),
                                      "retryAfterSeconds", (int)retry));
                }
                ingest_clients_put(ing->clients, tbl);
                return ok;
        }
        if (!ing->conf->ingest_token) {
                return 1;
        }
        if (ab_auth_token_check(&ing->ingest_token, req, "x-event-token")) {
                return 1;
        }
        deny_token(ing, req);
        return 0;
}

const ingest_client_t *ingest_rbac_client(ingest_t *ing, ab_http_req_t *req,
                                          ingest_clients_t **tblp) {
        const ingest_client_t *c;

        *tblp = ingest_clients_get(ing->clients);
        c     = ingest_clients_match(*tblp, ab_auth_presented(req, "x-event-token"));
        if (!c) {
                /* The key was dropped by a reload since the headers. */
                ingest_clients_put(ing->clients, *tblp);
                *tblp = NULL;
                deny_token(ing, req);
        }
        return c;
}

void ingest_rbac_admin(ab_http_req_t *req, void *opaque) {
        ingest_t *ing = opaque;
        const char *body;
        size_t len;
        json_t *doc, *mode_j;
        json_error_t jerr;
        int mode, old;
        char errstr[256];
        char digest[80];

        /* By name, each method: HEAD arrives as GET (ab_http), and
         * anything else must never reach the code that changes the mode. */
        if (!strcmp(ab_http_req_method(req), "GET")) {
                ab_http_respond_json(req, 200,
                                     json_pack("{s:s}", "mode",
                                               ab_auth_mode_name(
                                                   ab_auth_mode(ing->auth))));
                return;
        }
        if (strcmp(ab_http_req_method(req), "PUT")) {
                ab_http_respond_not_allowed(req);
                return;
        }
        if (!ab_auth_has_admin_token(ing->auth)) {
                ab_http_respond_error(req, 403,
                                      "run-time RBAC changes are disabled",
                                      json_string("ADMIN_TOKEN is not set"));
                return;
        }
        body = ab_http_req_body(req, &len);
        doc  = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc) {
                /* jansson quotes the bad bytes: made valid UTF-8 here. */
                ab_errstr_set(errstr, sizeof(errstr), "%s", jerr.text);
                ab_http_respond_error(req, 400, "malformed JSON",
                                      json_string(errstr));
                return;
        }
        mode_j = json_object_get(doc, "mode");
        if (!json_is_string(mode_j) ||
            ab_auth_mode_parse(json_string_value(mode_j), &mode)) {
                json_decref(doc);
                ab_http_respond_error(req, 400,
                                      "mode: must be one of off|audit|enforce",
                                      NULL);
                return;
        }
        json_decref(doc);
        old = ab_auth_set_mode(ing->auth, mode);
        ab_info("rbac", "RBAC mode changed from %s to %s by %s",
                ab_auth_mode_name(old), ab_auth_mode_name(mode),
                ab_http_req_remote(req) ? ab_http_req_remote(req) : "?");
        /* Never budgeted: a configuration change is always recorded. */
        if (ingest_emit(ing, "security.config.changed",
                        ab_auth_tenant_for_event(
                            ab_http_req_header(req, "x-tenant"), digest,
                            sizeof(digest)),
                        json_pack("{s:s,s:s,s:s,s:s?}", "setting", "RBAC_MODE",
                                  "from", ab_auth_mode_name(old), "to",
                                  ab_auth_mode_name(mode), "remote",
                                  ab_http_req_remote(req)),
                        errstr, sizeof(errstr))) {
                ab_warn("rbac", "cannot emit security.config.changed: %s",
                        errstr);
        }
        ab_http_respond_json(req, 200,
                             json_pack("{s:s,s:s}", "mode",
                                       ab_auth_mode_name(mode), "previous",
                                       ab_auth_mode_name(old)));
}
