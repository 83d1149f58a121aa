/* aetherbus - Apache-2.0
 *
 * ingest_rbac: who may call what. The ingest token (constant-time
 * comparison), the x-ops RBAC of /bus/events and /admin/... in its three
 * modes, the security.* events that record decisions, and the per-tenant
 * rate limit that keeps a flood of denials from flooding Kafka.
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

#include "ab_log.h"
#include "ingest.h"

#define SLOTS    512 /* tenants tracked at once; the oldest is reused */
#define TENANT_MAX 128
#define TENANT_EVENT_MAX 256 /* longest companyId an envelope takes */
/* All tenants together get this many times one tenant's budget, so a
 * client rotating x-tenant cannot turn denials into a flood. */
#define GLOBAL_FACTOR 10

typedef struct slot_s {
        char tenant[TENANT_MAX]; /* "" = requests without a tenant */
        int used;
        int64_t window;          /* minute the counts belong to */
        int sent;
        int suppressed;          /* dropped since the last event sent */
        int64_t last_ms;
} slot_t;

struct ingest_rbac_s {
        ingest_t *ing;
        atomic_int mode;
        unsigned char token_sha[SHA256_DIGEST_LENGTH];
        unsigned char admin_sha[SHA256_DIGEST_LENGTH];
        char **audit_tenants;
        size_t audit_cnt;
        pthread_mutex_t lock;
        int64_t g_window; /* minute of g_sent */
        int g_sent;
        slot_t slots[SLOTS];
};

ingest_rbac_t *ingest_rbac_new(ingest_t *ing, char *errstr,
                               size_t errstr_size) {
        ingest_rbac_t *rbac;
        const char *list = ing->conf->rbac_audit_tenants;
        char *copy, *tok, *save = NULL;

        rbac = calloc(1, sizeof(*rbac));
        if (!rbac) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        rbac->ing = ing;
        atomic_init(&rbac->mode, ing->conf->rbac_mode);
        pthread_mutex_init(&rbac->lock, NULL);
        if (ing->conf->ingest_token) {
                SHA256((const unsigned char *)ing->conf->ingest_token,
                       strlen(ing->conf->ingest_token), rbac->token_sha);
        }
        if (ing->conf->admin_token) {
                SHA256((const unsigned char *)ing->conf->admin_token,
                       strlen(ing->conf->admin_token), rbac->admin_sha);
        }
        if (list && *list) {
                copy = strdup(list);
                rbac->audit_tenants = calloc(strlen(list) / 2 + 2, sizeof(char *));
                if (!copy || !rbac->audit_tenants) {
                        free(copy);
                        ingest_rbac_destroy(rbac);
                        ab_errstr_set(errstr, errstr_size, "out of memory");
                        return NULL;
                }
                for (tok = strtok_r(copy, ",", &save); tok;
                     tok = strtok_r(NULL, ",", &save)) {
                        while (*tok == ' ') {
                                tok++;
                        }
                        if (*tok &&
                            !(rbac->audit_tenants[rbac->audit_cnt++] = strdup(tok))) {
                                free(copy);
                                ingest_rbac_destroy(rbac);
                                ab_errstr_set(errstr, errstr_size, "out of memory");
                                return NULL;
                        }
                }
                free(copy);
        }
        return rbac;
}

void ingest_rbac_destroy(ingest_rbac_t *rbac) {
        size_t i;

        if (!rbac) {
                return;
        }
        for (i = 0; i < rbac->audit_cnt; i++) {
                free(rbac->audit_tenants[i]);
        }
        free(rbac->audit_tenants);
        pthread_mutex_destroy(&rbac->lock);
        free(rbac);
}

int ingest_rbac_mode(ingest_t *ing) {
        return atomic_load(&ing->rbac->mode);
}

/* Hashing both sides first makes the comparison constant-time whatever
 * the lengths, so neither length nor prefix leaks through timing. */
static int token_equal(const unsigned char *want_sha, const char *got) {
        unsigned char sha[SHA256_DIGEST_LENGTH];

        if (!got) {
                return 0;
        }
        SHA256((const unsigned char *)got, strlen(got), sha);
        return CRYPTO_memcmp(sha, want_sha, sizeof(sha)) == 0;
}

/* x-<name>-token, else Authorization: Bearer <token>. */
static const char *presented(ab_http_req_t *req, const char *hdr) {
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

int ingest_rbac_check_token(ingest_t *ing, ab_http_req_t *req) {
        if (!ing->conf->ingest_token) {
                return 1;
        }
        if (token_equal(ing->rbac->token_sha, presented(req, "x-event-token"))) {
                return 1;
        }
        ab_metric_inc(AB_METRIC_WITH(ing->m_security, "token", "denied"));
        ab_http_respond_error(req, 401, "missing or invalid event token",
                              json_string("send x-event-token or "
                                          "Authorization: Bearer"));
        return 0;
}

/* Takes one event from the tenant's budget for this minute.
 * @returns 1 to send (with *suppressedp = what was dropped before), 0 to
 *          drop. */
static int budget(ingest_rbac_t *rbac, const char *tenant, int *suppressedp) {
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
        pthread_mutex_lock(&rbac->lock);
        /* Linear probing over a few slots, then reuse the stalest. */
        for (i = 0; i < 8; i++) {
                idx = (size_t)((h + i) % SLOTS);
                s   = &rbac->slots[idx];
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
        if (rbac->g_window != minute) {
                rbac->g_window = minute;
                rbac->g_sent   = 0;
        }
        ok = s->sent < rbac->ing->conf->rbac_events_per_min &&
             rbac->g_sent < rbac->ing->conf->rbac_events_per_min * GLOBAL_FACTOR;
        if (ok) {
                s->sent++;
                rbac->g_sent++;
                *suppressedp  = s->suppressed;
                s->suppressed = 0;
        } else {
                s->suppressed++;
        }
        pthread_mutex_unlock(&rbac->lock);
        return ok;
}

/* A tenant header the envelope cannot carry (too long, not UTF-8) must
 * not hide the request's record: it is recorded by its digest. */
static const char *tenant_for_event(const char *tenant, char *buf,
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

static void record(ingest_t *ing, ab_http_req_t *req, const char *type,
                   const char *tenant, const char *reason, int enforced) {
        int suppressed = 0;
        json_t *payload;
        char errstr[256];
        char digest[80];
        const char *outcome = strstr(type, "denied") ? "denied" : "allowed";
        const char *t;

        if (!budget(ing->rbac, tenant, &suppressed)) {
                ab_metric_inc(AB_METRIC_WITH(ing->m_security, type, "suppressed"));
                return;
        }
        t       = tenant_for_event(tenant, digest, sizeof(digest));
        payload = json_pack("{s:s,s:s,s:s,s:s,s:b,s:s?,s:i,s:b}", "path",
                            ab_http_req_path(req), "method",
                            ab_http_req_method(req), "reason", reason, "mode",
                            ingest_rbac_mode_name(ingest_rbac_mode(ing)),
                            "enforced", enforced, "remote",
                            ab_http_req_remote(req), "suppressed", suppressed,
                            "tenantDigested", t && t != tenant);
        if (ingest_emit(ing, type, t, payload, errstr, sizeof(errstr))) {
                ab_warn("rbac", "cannot emit %s: %s", type, errstr);
                ab_metric_inc(AB_METRIC_WITH(ing->m_security, type, "lost"));
                return;
        }
        ab_metric_inc(AB_METRIC_WITH(ing->m_security, type, outcome));
}

static int audit_tenant(ingest_rbac_t *rbac, const char *tenant) {
        size_t i;

        for (i = 0; tenant && i < rbac->audit_cnt; i++) {
                if (!strcmp(rbac->audit_tenants[i], tenant)) {
                        return 1;
                }
        }
        return 0;
}

int ingest_rbac_check(ingest_t *ing, ab_http_req_t *req, const char *tenant) {
        const char *ops = ab_http_req_header(req, "x-ops");
        int mode        = ingest_rbac_mode(ing);
        int has_ops     = ops && !strcmp(ops, "1");

        if (mode == INGEST_RBAC_OFF || has_ops) {
                if (audit_tenant(ing->rbac, tenant)) {
                        record(ing, req, "security.rbac.allowed", tenant,
                               has_ops ? "x-ops present" : "rbac off", 0);
                }
                return 1;
        }
        if (mode == INGEST_RBAC_AUDIT) {
                record(ing, req, "security.rbac.denied", tenant,
                       "x-ops missing (audit mode: allowed)", 0);
                return 1;
        }
        record(ing, req, "security.rbac.denied", tenant, "x-ops missing", 1);
        ab_http_respond_error(req, 403, "forbidden: x-ops: 1 required",
                              json_string(ab_http_req_path(req)));
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

        if (!strcmp(ab_http_req_method(req), "GET")) {
                ab_http_respond_json(req, 200,
                                     json_pack("{s:s}", "mode",
                                               ingest_rbac_mode_name(
                                                   ingest_rbac_mode(ing))));
                return;
        }
        if (!ing->conf->admin_token) {
                ab_http_respond_error(req, 403,
                                      "run-time RBAC changes are disabled",
                                      json_string("ADMIN_TOKEN is not set"));
                return;
        }
        if (!token_equal(ing->rbac->admin_sha, presented(req, "x-admin-token"))) {
                ab_metric_inc(AB_METRIC_WITH(ing->m_security, "admin_token", "denied"));
                ab_http_respond_error(req, 401, "missing or invalid admin token",
                                      json_string("send x-admin-token or "
                                                  "Authorization: Bearer"));
                return;
        }
        body = ab_http_req_body(req, &len);
        doc  = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc) {
                ab_http_respond_error(req, 400, "malformed JSON",
                                      json_string(jerr.text));
                return;
        }
        mode_j = json_object_get(doc, "mode");
        if (!json_is_string(mode_j) ||
            ingest_rbac_mode_parse(json_string_value(mode_j), &mode)) {
                json_decref(doc);
                ab_http_respond_error(req, 400,
                                      "mode: must be one of off|audit|enforce",
                                      NULL);
                return;
        }
        json_decref(doc);
        old = atomic_exchange(&ing->rbac->mode, mode);
        ab_info("rbac", "RBAC mode changed from %s to %s by %s",
                ingest_rbac_mode_name(old), ingest_rbac_mode_name(mode),
                ab_http_req_remote(req) ? ab_http_req_remote(req) : "?");
        if (ingest_emit(ing, "security.config.changed",
                        ab_http_req_header(req, "x-tenant"),
                        json_pack("{s:s,s:s,s:s,s:s?}", "setting", "RBAC_MODE",
                                  "from", ingest_rbac_mode_name(old), "to",
                                  ingest_rbac_mode_name(mode), "remote",
                                  ab_http_req_remote(req)),
                        errstr, sizeof(errstr))) {
                ab_warn("rbac", "cannot emit security.config.changed: %s",
                        errstr);
        }
        ab_http_respond_json(req, 200,
                             json_pack("{s:s,s:s}", "mode",
                                       ingest_rbac_mode_name(mode), "previous",
                                       ingest_rbac_mode_name(old)));
}
