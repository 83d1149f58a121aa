/* aetherbus - Apache-2.0
 *
 * ab_auth: who may call what, the same way on every service. Owns the
 * constant-time token check (x-<name>-token or Authorization: Bearer), the
 * admin guard of every /admin/... route (ADMIN_TOKEN when set, then the x-ops
 * RBAC rule in its three modes), and the per-tenant budget that keeps a
 * flood of denials from becoming a flood of security.* events.
 *
 * What stays out: how a security event reaches Kafka (the service's emit
 * callback: each service is its own event source) and what a route does
 * once allowed.
 */
#ifndef AB_AUTH_H
#define AB_AUTH_H

#include <jansson.h>
#include <stddef.h>

#include "ab_err.h"
#include "ab_http.h"
#include "ab_metrics.h"

/** RBAC modes (RBAC_MODE). */
typedef enum {
        AB_AUTH_RBAC_OFF = 0, /**< x-ops not required */
        AB_AUTH_RBAC_AUDIT,   /**< not required, a missing one is recorded */
        AB_AUTH_RBAC_ENFORCE, /**< required: 403 without x-ops: 1 */
} ab_auth_rbac_mode_t;

/** The RBAC_MODE values, in enum order, as an AB_CONF_ENUM "values". */
#define AB_AUTH_RBAC_MODES "off|audit|enforce"

/**
 * Emits one security event (security.rbac.denied, .allowed, ...) as the
 * service's own. \p tenant may be NULL; \p payload is stolen.
 * @returns AB_OK or an error with errstr (the decision is then counted as
 *          "lost").
 */
typedef ab_err_t(ab_auth_emit_cb_t)(void *opaque, const char *type,
                                    const char *tenant, json_t *payload,
                                    char *errstr, size_t errstr_size);

typedef struct ab_auth_conf_s {
        const char *admin_token;   /**< ADMIN_TOKEN, NULL: not required */
        int rbac_mode;             /**< ab_auth_rbac_mode_t */
        const char *audit_tenants; /**< comma list whose passes are recorded */
        int events_per_min;        /**< security events per tenant, minute */
        ab_metrics_t *metrics;     /**< registers security_events_total */
        ab_auth_emit_cb_t *emit;   /**< may be NULL: decisions only counted */
        void *opaque;              /**< first argument of emit */
} ab_auth_conf_t;

typedef struct ab_auth_s ab_auth_t;

/** A secret kept only as its SHA-256 digest. */
typedef struct ab_auth_token_s {
        int set;
        unsigned char sha[32];
} ab_auth_token_t;

/**
 * @returns the credential \p req presents: header \p hdr (e.g.
 *          "x-event-token"), else the token of Authorization: Bearer, else
 *          NULL. Owned by the request.
 */
const char *ab_auth_presented(ab_http_req_t *req, const char *hdr);

/** @brief Keeps \p secret's digest in \p tok; NULL leaves it unset. */
void ab_auth_token_init(ab_auth_token_t *tok, const char *secret);

/**
 * @brief Whether \p req presents \p tok in header \p header (e.g.
 *        "x-event-token") or as Authorization: Bearer. Both sides are
 *        hashed first so the comparison is constant-time whatever the
 *        lengths.
 * @returns 1 when it matches, 0 otherwise (also when \p tok is unset).
 */
int ab_auth_token_check(const ab_auth_token_t *tok, ab_http_req_t *req,
                        const char *header);

/**
 * @returns a new guard (ab_auth_destroy()), or NULL with errstr.
 */
ab_auth_t *ab_auth_new(const ab_auth_conf_t *conf, char *errstr,
                       size_t errstr_size);

/** @brief Frees \p auth; NULL is a no-op. */
void ab_auth_destroy(ab_auth_t *auth);

/**
 * @brief The x-ops rule for \p req in the current mode. Records denials
 *        (and audited passes, and passes of audit tenants) as security
 *        events, within the per-tenant budget. \p tenant may be NULL.
 * @returns 1 when the request may go on, else 0 after answering 403.
 */
int ab_auth_rbac(ab_auth_t *auth, ab_http_req_t *req, const char *tenant);

/**
 * @brief The guard of every /admin/... route: the admin token when one is
 *        configured (401 otherwise), then ab_auth_rbac() with the
 *        request's x-tenant.
 * @returns 1 when the request may go on, else 0 after answering.
 */
int ab_auth_admin(ab_auth_t *auth, ab_http_req_t *req);

/**
 * @brief Whether \p req carries the admin token. Without a configured
 *        token nobody does.
 */
int ab_auth_admin_token(ab_auth_t *auth, ab_http_req_t *req);

/**
 * @brief Whether \p secret is the configured admin token, compared in
 *        constant time like the headers (for a credential that arrives
 *        another way: the console's session cookie). \p secret may be
 *        NULL. Without a configured token nothing matches.
 */
int ab_auth_admin_secret(ab_auth_t *auth, const char *secret);

/** @returns 1 when an admin token is configured. */
int ab_auth_has_admin_token(const ab_auth_t *auth);

/** @returns the current mode. */
int ab_auth_mode(ab_auth_t *auth);

/** @brief Switches the mode at run time. @returns the previous mode. */
int ab_auth_set_mode(ab_auth_t *auth, int mode);

/** @returns "off", "audit" or "enforce" ("?" otherwise). */
const char *ab_auth_mode_name(int mode);

/** @returns AB_OK with *modep set, or AB_ERR_INVALID. */
ab_err_t ab_auth_mode_parse(const char *s, int *modep);

/**
 * @brief Records one security decision the caller made itself (a denied
 *        token, a configuration change) through the same budget and emit
 *        callback. \p payload is stolen.
 * @returns AB_OK, AB_ERR_UNAVAILABLE when the budget suppressed it, or the
 *          emit callback's error.
 */
ab_err_t ab_auth_record(ab_auth_t *auth, const char *type, const char *tenant,
                        json_t *payload, char *errstr, size_t errstr_size);

/** @brief Counts a decision in security_events_total{type,outcome}. */
void ab_auth_count(ab_auth_t *auth, const char *type, const char *outcome);

/**
 * @returns \p tenant when an envelope can carry it as companyId (at most
 *          256 bytes of UTF-8), else "sha256:<hex>" written to \p buf
 *          (at least 72 bytes): a client-supplied value never hides the
 *          record of what it did. NULL stays NULL.
 */
const char *ab_auth_tenant_for_event(const char *tenant, char *buf,
                                     size_t buf_size);

#endif
