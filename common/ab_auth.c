/* aetherbus - Apache-2.0
 *
 * ab_auth: tokens, the admin guard and the x-ops RBAC rule shared by every
 * service, with the per-tenant budget of the security events that record
 * decisions. Moved here from ingest so stats, sink and audit guard their
 * /admin/... routes exactly as ingest does.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "ab_auth.h"
#include "ab_envelope.h"
#include "ab_time.h"
#include "ab_log.h"

#define SLOTS      512 /* tenants tracked at once; the oldest is reused */
#define TENANT_MAX 128
#define TENANT_EVENT_MAX 256 /* longest companyId an envelope takes */
/* All tenants together get this many times one tenant's budget, so a
 * client rotating x-tenant cannot turn denials into a flood. */
#define GLOBAL_FACTOR 10

static const char *modes[] = {"off", "audit", "enforce"};

typedef struct slot_s {
        char tenant[TENANT_MAX]; /* "" = requests without a tenant */
        int used;
        int64_t window;          /* minute the counts belong to */
        int sent;
        int suppressed;          /* dropped since the last event sent */
        int64_t last_ms;
} slot_t;

struct ab_auth_s {
        atomic_int mode;
        ab_auth_token_t admin;
        int per_min;
        ab_auth_emit_cb_t *emit;
        void *opaque;
        ab_metric_t *m_security; /* {type,outcome} */
        char **audit_tenants;
        size_t audit_cnt;
        pthread_mutex_t lock;
        int64_t g_window; /* minute of g_sent */
        int g_sent;
        slot_t slots[SLOTS];
};

const char *ab_auth_mode_name(int mode) {
        if (mode < 0 || mode > AB_AUTH_RBAC_ENFORCE) {
                return "?";
        }
        return modes[mode];
}

ab_err_t ab_auth_mode_parse(const char *s, int *modep) {
        int i;

        for (i = 0; s && i <= AB_AUTH_RBAC_ENFORCE; i++) {
                if (!strcmp(s, modes[i])) {
                        *modep = i;
                        return AB_OK;
                }
        }
        return AB_ERR_INVALID;
}

void ab_auth_token_init(ab_auth_token_t *tok, const char *secret) {
        memset(tok, 0, sizeof(*tok));
        if (secret) {
                SHA256((const unsigned char *)secret, strlen(secret), tok->sha);
                tok->set = 1;
        }
}

/* x-<name>-token, else Authorization: Bearer <token>. */
const char *ab_auth_presented(ab_http_req_t *req, const char *hdr) {
        const char *v = ab_http_req_header(req, hdr);

        if (v) {
                return v;
        }
        v = ab_http_req_header(req, "Authorization");
        if (v && !strncasecmp(v, "Bearer ", 7)) {
                v += 7;
                while (*v == ' ') {
                        v++;
                }
                return v;
        }
        return NULL;
}

int ab_auth_token_check(const ab_auth_token_t *tok, ab_http_req_t *req,
                        const char *header) {
        unsigned char sha[SHA256_DIGEST_LENGTH];
        const char *got = ab_auth_presented(req, header);

        if (!tok->set || !got) {
                return 0;
        }
        /* Hashing both sides first makes the comparison constant-time
         * whatever the lengths, so neither length nor prefix leaks. */
        SHA256((const unsigned char *)got, strlen(got), sha);
        return CRYPTO_memcmp(sha, tok->sha, sizeof(sha)) == 0;
}

ab_auth_t *ab_auth_new(const ab_auth_conf_t *conf, char *errstr,
                       size_t errstr_size) {
        ab_auth_t *auth;
        const char *list = conf->audit_tenants;
        char *copy, *tok, *save = NULL;

        auth = calloc(1, sizeof(*auth));
        if (!auth) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        atomic_init(&auth->mode, conf->rbac_mode);
        pthread_mutex_init(&auth->lock, NULL);
        ab_auth_token_init(&auth->admin, conf->admin_token);
        auth->per_min = conf->events_per_min > 0 ? conf->events_per_min : 60;
        auth->emit    = conf->emit;
        auth->opaque  = conf->opaque;
        if (conf->metrics &&
            !(auth->m_security = ab_metrics_counter(
                  conf->metrics, "security_events_total",
                  "Authorization decisions recorded, by event type and "
                  "outcome.",
                  "type,outcome", errstr, errstr_size))) {
                ab_auth_destroy(auth);
                return NULL;
        }
        if (list && *list) {
                copy                = strdup(list);
                auth->audit_tenants = calloc(strlen(list) / 2 + 2, sizeof(char *));
                if (!copy || !auth->audit_tenants) {
                        free(copy);
                        ab_auth_destroy(auth);
                        ab_errstr_set(errstr, errstr_size, "out of memory");
                        return NULL;
                }
                for (tok = strtok_r(copy, ",", &save); tok;
                     tok = strtok_r(NULL, ",", &save)) {
                        while (*tok == ' ') {
                                tok++;
                        }
                        if (*tok &&
                            !(auth->audit_tenants[auth->audit_cnt++] = strdup(tok))) {
                                free(copy);
                                ab_auth_destroy(auth);
                                ab_errstr_set(errstr, errstr_size, "out of memory");
                                return NULL;
                        }
                }
                free(copy);
        }
        return auth;
}

void ab_auth_destroy(ab_auth_t *auth) {
        size_t i;

        if (!auth) {
                return;
        }
        for (i = 0; i < auth->audit_cnt; i++) {
                free(auth->audit_tenants[i]);
        }
        free(auth->audit_tenants);
        pthread_mutex_destroy(&auth->lock);
        free(auth);
}

int ab_auth_mode(ab_auth_t *auth) {
        return atomic_load(&auth->mode);
}

int ab_auth_set_mode(ab_auth_t *auth, int mode) {
        return atomic_exchange(&auth->mode, mode);
}

int ab_auth_has_admin_token(const ab_auth_t *auth) {
        return auth->admin.set;
}

void ab_auth_count(ab_auth_t *auth, const char *type, const char *outcome) {
        if (auth->m_security) {
                ab_metric_inc(AB_METRIC_WITH(auth->m_security, type, outcome));
        }
}

/* Takes one event from the tenant's budget for this minute.
 * @returns 1 to send (with *suppressedp = what was dropped before), 0 to
 *          drop. */
static int budget(ab_auth_t *auth, const char *tenant, int *suppressedp) {
        uint64_t h = 1469598103934665603ULL;
        const char *p;
        slot_t *s, *victim = NULL;
        int64_t now = ab_time_now_ms(), minute = now / 60000;
        size_t i, idx;
        int ok;

        tenant = tenant ? tenant : "";
        for (p = tenant; *p; p++) {
                h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        }
        pthread_mutex_lock(&auth->lock);
        /* Linear probing over a few slots, then reuse the stalest. */
        for (i = 0; i < 8; i++) {
                idx = (size_t)((h + i) % SLOTS);
                s   = &auth->slots[idx];
                if (s->used && !strncmp(s->tenant, tenant, TENANT_MAX - 1)) {
                        victim = s;
                        break;
                }
                if (!s->used) {
                        victim = s;
                        break;
                }
                if (!victim || s->last_ms < victim->last_ms) {
                        victim = s;
                }
        }
        s = victim;
        if (!s->used || strncmp(s->tenant, tenant, TENANT_MAX - 1)) {
                memset(s, 0, sizeof(*s));
                s->used = 1;
                snprintf(s->tenant, sizeof(s->tenant), "%s", tenant);
        }
        s->last_ms = now;
        if (s->window != minute) {
                s->window = minute;
                s->sent   = 0;
        }
        if (auth->g_window != minute) {
                auth->g_window = minute;
                auth->g_sent   = 0;
        }
        ok = s->sent < auth->per_min &&
             auth->g_sent < auth->per_min * GLOBAL_FACTOR;
        if (ok) {
                s->sent++;
                auth->g_sent++;
                *suppressedp  = s->suppressed;
                s->suppressed = 0;
        } else {
                s->suppressed++;
        }
        pthread_mutex_unlock(&auth->lock);
        return ok;
}

const char *ab_auth_tenant_for_event(const char *tenant, char *buf,
                                     size_t buf_size) {
        unsigned char sha[SHA256_DIGEST_LENGTH];
        json_t *probe;
        size_t i, of;

        if (!tenant) {
                return NULL;
        }
        if (strlen(tenant) <= TENANT_EVENT_MAX &&
            (probe = json_string(tenant))) {
                json_decref(probe);
                return tenant;
        }
        SHA256((const unsigned char *)tenant, strlen(tenant), sha);
        of = (size_t)snprintf(buf, buf_size, "sha256:");
        for (i = 0; i < sizeof(sha) && of + 3 <= buf_size; i++) {
                of += (size_t)snprintf(buf + of, buf_size - of, "%02x", sha[i]);
        }
        return buf;
}

ab_err_t ab_auth_record(ab_auth_t *auth, const char *type, const char *tenant,
                        json_t *payload, char *errstr, size_t errstr_size) {
        int suppressed = 0;
        char digest[80];
        const char *t;

        if (!budget(auth, tenant, &suppressed)) {
                json_decref(payload);
                ab_auth_count(auth, type, "suppressed");
                ab_errstr_set(errstr, errstr_size,
                              "security event budget spent for this minute");
                return AB_ERR_UNAVAILABLE;
        }
        t = ab_auth_tenant_for_event(tenant, digest, sizeof(digest));
        if (payload) {
                json_object_set_new(payload, "suppressed",
                                    json_integer(suppressed));
                json_object_set_new(payload, "tenantDigested",
                                    json_boolean(t && t != tenant));
        }
        if (!auth->emit) {
                json_decref(payload);
                return AB_OK;
        }
        return auth->emit(auth->opaque, type, t, payload, errstr, errstr_size);
}

static void decision(ab_auth_t *auth, ab_http_req_t *req, const char *type,
                     const char *tenant, const char *reason, int enforced) {
        json_t *payload;
        char errstr[256];
        const char *outcome = strstr(type, "denied") ? "denied" : "allowed";
        ab_err_t err;

        payload = json_pack("{s:o,s:s,s:s,s:s,s:b,s:s?}", "path",
                            ab_http_text(ab_http_req_path(req)), "method",
                            ab_http_req_method(req), "reason", reason, "mode",
                            ab_auth_mode_name(ab_auth_mode(auth)), "enforced",
                            enforced, "remote", ab_http_req_remote(req));
        err = ab_auth_record(auth, type, tenant, payload, errstr,
                             sizeof(errstr));
        if (err == AB_ERR_UNAVAILABLE) {
                return; /* counted as suppressed */
        }
        if (err) {
                ab_warn("rbac", "cannot emit %s: %s", type, errstr);
                ab_auth_count(auth, type, "lost");
                return;
        }
        ab_auth_count(auth, type, outcome);
}

static int audit_tenant(ab_auth_t *auth, const char *tenant) {
        size_t i;

        for (i = 0; tenant && i < auth->audit_cnt; i++) {
                if (!strcmp(auth->audit_tenants[i], tenant)) {
                        return 1;
                }
        }
        return 0;
}

int ab_auth_rbac(ab_auth_t *auth, ab_http_req_t *req, const char *tenant) {
        const char *ops = ab_http_req_header(req, "x-ops");
        int mode        = ab_auth_mode(auth);
        int has_ops     = ops && !strcmp(ops, "1");

        if (mode == AB_AUTH_RBAC_OFF || has_ops) {
                if (audit_tenant(auth, tenant)) {
                        decision(auth, req, "security.rbac.allowed", tenant,
                                 has_ops ? "x-ops present" : "rbac off", 0);
                }
                return 1;
        }
        if (mode == AB_AUTH_RBAC_AUDIT) {
                decision(auth, req, "security.rbac.denied", tenant,
                         "x-ops missing (audit mode: allowed)", 0);
                return 1;
        }
        decision(auth, req, "security.rbac.denied", tenant, "x-ops missing", 1);
        ab_http_respond_error(req, 403, "forbidden: x-ops: 1 required",
                              ab_http_text(ab_http_req_path(req)));
        return 0;
}

int ab_auth_admin_token(ab_auth_t *auth, ab_http_req_t *req) {
        return ab_auth_token_check(&auth->admin, req, "x-admin-token");
}

int ab_auth_admin_secret(ab_auth_t *auth, const char *secret) {
        unsigned char sha[SHA256_DIGEST_LENGTH];

        if (!auth->admin.set || !secret) {
                return 0;
        }
        SHA256((const unsigned char *)secret, strlen(secret), sha);
        return CRYPTO_memcmp(sha, auth->admin.sha, sizeof(sha)) == 0;
}

int ab_auth_admin(ab_auth_t *auth, ab_http_req_t *req) {
        const char *tenant = ab_http_req_header(req, "x-tenant");

        if (auth->admin.set && !ab_auth_admin_token(auth, req)) {
                ab_auth_count(auth, "admin_token", "denied");
                ab_http_respond_error(req, 401, "missing or invalid admin token",
                                      json_string("send x-admin-token or "
                                                  "Authorization: Bearer"));
                return 0;
        }
        return ab_auth_rbac(auth, req, tenant && *tenant ? tenant : NULL);
}
