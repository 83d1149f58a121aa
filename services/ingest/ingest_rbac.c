/* aetherbus - Apache-2.0
 *
 * ingest_rbac: what only ingest decides about callers: the ingest token on
 * the event routes and PUT /admin/rbac, the run-time switch of the RBAC
 * mode. The token check, the admin guard and the x-ops rule themselves are
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
        ab_auth_token_init(&ing->ingest_token, ing->conf->ingest_token);
        ing->auth = ab_service_auth_new(&ing->conf->svc, ing->metrics, emit, ing,
                                        errstr, errstr_size);
        return ing->auth ? AB_OK : AB_ERR_NOMEM;
}

int ingest_rbac_check_token(ingest_t *ing, ab_http_req_t *req) {
        if (!ing->conf->ingest_token) {
                return 1;
        }
        if (ab_auth_token_check(&ing->ingest_token, req, "x-event-token")) {
                return 1;
        }
        ab_auth_count(ing->auth, "token", "denied");
        ab_http_respond_error(req, 401, "missing or invalid event token",
                              json_string("send x-event-token or "
                                          "Authorization: Bearer"));
        return 0;
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
