/* aetherbus - Apache-2.0
 *
 * audit_http: the query API of the log, behind the shared admin guard:
 * GET /admin/events (filters, keyset pages in leaf order),
 * GET /admin/events/{id}, GET /admin/events/{id}/proof and GET
 * /admin/audit/consistency. /healthz,
 * /readyz and /metrics come from ab_http.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ab_time.h"
#include "audit.h"
#include "audit_proof.h"

#define LIMIT_DEFAULT 100
#define LIMIT_MAX 1000
#define FIELD_MAX 256

static int bad(ab_http_req_t *req, const char *msg, const char *value) {
        ab_http_respond_error(req, 400, msg, value ? ab_http_text(value)
                                                   : NULL);
        return -1;
}

/* A text filter: present means 1 to 256 bytes. */
static int text_param(ab_http_req_t *req, const char *name, const char **out) {
        const char *v = ab_http_req_query(req, name);
        char msg[96];

        if (!v) {
                return 0;
        }
        if (!*v || strlen(v) > FIELD_MAX) {
                snprintf(msg, sizeof(msg), "%s: must be 1 to %d bytes", name,
                         FIELD_MAX);
                return bad(req, msg, NULL);
        }
        *out = v;
        return 0;
}

static int status_param(ab_http_req_t *req, const char **out) {
        const char *v = ab_http_req_query(req, "status");

        if (!v) {
                return 0;
        }
        if ((*out = audit_store_status(v))) {
                return 0;
        }
        return bad(req, "status: must be one of accepted, rejected, deadletter",
                   v);
}

/* Decimal digits only, no sign, within [min, max]. */
static int parse_int(const char *v, int64_t min, int64_t max, int64_t *out) {
        char *end;
        long long n;

        if (!*v || *v < '0' || *v > '9') {
                return -1;
        }
        errno = 0;
        n     = strtoll(v, &end, 10);
        if (errno || *end || n < min || n > max) {
                return -1;
        }
        *out = n;
        return 0;
}

/* ISO-8601 with zone, or ms since the epoch. */
static int time_param(ab_http_req_t *req, const char *name, int64_t *out) {
        const char *v = ab_http_req_query(req, name);
        char msg[128];

        if (!v) {
                return 0;
        }
        if (ab_time_parse(v, out) == AB_OK && *out > 0) {
                return 0;
        }
        if (parse_int(v, 1, INT64_MAX, out) == 0) {
                return 0;
        }
        snprintf(msg, sizeof(msg),
                 "%s: not an ISO-8601 timestamp with zone nor ms since the "
                 "epoch",
                 name);
        return bad(req, msg, v);
}

static void h_list(ab_http_req_t *req, void *opaque) {
        audit_t *a = opaque;
        audit_query_t q;
        const char *v;
        char errstr[512], cur[32];
        int64_t n, next;
        json_t *items, *doc;

        if (strcmp(ab_http_req_method(req), "GET")) {
                ab_http_respond_not_allowed(req); /* HEAD arrives as GET */
                return;
        }
        if (!ab_auth_admin(a->auth, req)) {
                return;
        }
        memset(&q, 0, sizeof(q));
        q.after = -1;
        q.limit = LIMIT_DEFAULT;
        if (text_param(req, "companyId", &q.company_id) ||
            text_param(req, "name", &q.name) ||
            text_param(req, "prefix", &q.prefix) ||
            text_param(req, "source", &q.source) ||
            status_param(req, &q.status) ||
            time_param(req, "since", &q.since_ms) ||
            time_param(req, "until", &q.until_ms)) {
                return;
        }
        if (q.since_ms && q.until_ms && q.until_ms <= q.since_ms) {
                bad(req, "until: must be after since",
                    ab_http_req_query(req, "until"));
                return;
        }
        if ((v = ab_http_req_query(req, "limit"))) {
                if (parse_int(v, 1, LIMIT_MAX, &n)) {
                        bad(req, "limit: must be an integer from 1 to 1000", v);
                        return;
                }
                q.limit = (int)n;
        }
        if ((v = ab_http_req_query(req, "cursor"))) {
                if (parse_int(v, 0, INT64_MAX, &n)) {
                        bad(req, "cursor: not a cursor this API returned", v);
                        return;
                }
                q.after = n;
        }
        if (!(items = audit_store_query(a->store, &q, &next, errstr,
                                        sizeof(errstr)))) {
                ab_http_respond_error(req, 500, "cannot read the log",
                                      json_string(errstr));
                return;
        }
        /* The cursor is the last leaf index of the page: rows added
         * meanwhile come after it, so paging never skips nor repeats. */
        snprintf(cur, sizeof(cur), "%" PRId64, next);
        doc = json_pack("{s:o,s:o}", "items", items, "nextCursor",
                        next >= 0 ? json_string(cur) : json_null());
        ab_http_respond_json(req, 200, doc);
}

static void proof(ab_http_req_t *req, audit_t *a, json_t *row) {
        char errstr[512];
        json_t *doc;

        if (!(doc = audit_proof_doc(a->store, row, errstr, sizeof(errstr)))) {
                ab_http_respond_error(req, 500, "cannot build the proof",
                                      json_string(errstr));
                return;
        }
        ab_http_respond_json(req, 200, doc);
}

static void h_event(ab_http_req_t *req, void *opaque) {
        audit_t *a = opaque;
        const char *path = ab_http_req_path(req), *status = NULL;
        static const char base[] = "/admin/events/";
        char id[FIELD_MAX + 1], errstr[512];
        size_t len;
        int want_proof = 0;
        json_t *rows, *row;

        if (strcmp(ab_http_req_method(req), "GET")) {
                ab_http_respond_not_allowed(req);
                return;
        }
        if (!ab_auth_admin(a->auth, req)) {
                return;
        }
        path += sizeof(base) - 1;
        len = strlen(path);
        if (len > 6 && !strcmp(path + len - 6, "/proof")) {
                want_proof = 1;
                len -= 6;
        }
        if (!len || len > FIELD_MAX || memchr(path, '/', len)) {
                ab_http_respond_error(req, 404, "no such admin resource",
                                      ab_http_text(ab_http_req_path(req)));
                return;
        }
        memcpy(id, path, len);
        id[len] = '\0';
        if (status_param(req, &status)) {
                return;
        }
        if (!(rows = audit_store_get(a->store, id, errstr, sizeof(errstr)))) {
                ab_http_respond_error(req, 500, "cannot read the log",
                                      json_string(errstr));
                return;
        }
        if (!(row = audit_proof_pick(rows, status))) {
                json_decref(rows);
                ab_http_respond_error(req, 404, "no such event",
                                      ab_http_text(id));
                return;
        }
        if (want_proof) {
                proof(req, a, row);
        } else {
                ab_http_respond_json(req, 200, json_incref(row));
        }
        json_decref(rows);
}

/* A tree size parameter: decimal, 1 .. 2^63. */
static int size_param(ab_http_req_t *req, const char *name, uint64_t *vp) {
        const char *v = ab_http_req_query(req, name);
        char *end;
        unsigned long long n;

        if (!v) {
                return 0;
        }
        n = strtoull(v, &end, 10);
        if (!*v || *end || *v == '-' || n == 0 || n > (1ULL << 63)) {
                ab_http_respond_error(req, 400,
                                      name[0] == 'f'
                                          ? "from: must be a tree size >= 1"
                                          : "to: must be a tree size >= 1",
                                      ab_http_text(v));
                return -1;
        }
        *vp = n;
        return 0;
}

/* GET /admin/audit/consistency?from=N[&to=M]: RFC 9162 PROOF(N, D[M]),
 * M the current size when absent; a verifier holding the roots of both
 * trees (two checkpoints) checks the log only grew. */
static void h_consistency(ab_http_req_t *req, void *opaque) {
        audit_t *a = opaque;
        audit_merkle_proof_t pr;
        uint8_t root[AUDIT_HASH_LEN];
        char hx[2 * AUDIT_HASH_LEN + 1], errstr[512];
        uint64_t from = 0, to = 0;
        json_t *path;
        ab_err_t err;
        size_t i;

        if (strcmp(ab_http_req_method(req), "GET")) {
                ab_http_respond_not_allowed(req);
                return;
        }
        if (!ab_auth_admin(a->auth, req)) {
                return;
        }
        if (size_param(req, "from", &from) || size_param(req, "to", &to)) {
                return;
        }
        if (!from) {
                ab_http_respond_error(req, 400, "from: required", NULL);
                return;
        }
        if (!to && (err = audit_store_tree(a->store, &to, root))) {
                ab_http_respond_error(req, 500, "tree root",
                                      json_string(ab_err2str(err)));
                return;
        }
        if ((err = audit_store_consistency(a->store, from, to, &pr, errstr,
                                           sizeof(errstr)))) {
                ab_http_respond_error(req, err == AB_ERR_NOT_FOUND ? 404 : 500,
                                      err == AB_ERR_NOT_FOUND
                                          ? "no such tree size"
                                          : "cannot build the proof",
                                      json_string(errstr));
                return;
        }
        path = json_array();
        for (i = 0; i < pr.cnt; i++) {
                audit_merkle_hex(pr.hash[i], hx);
                json_array_append_new(path, json_string(hx));
        }
        ab_http_respond_json(req, 200,
                             json_pack("{s:I,s:I,s:o}", "from", (json_int_t)from,
                                       "to", (json_int_t)to, "consistencyPath",
                                       path));
}

static void h_stages(ab_http_req_t *req, void *opaque) {
        audit_t *a = opaque;

        ab_stage_respond(a->stage, a->auth, req);
}

static void h_admin(ab_http_req_t *req, void *opaque) {
        audit_t *a = opaque;

        if (strcmp(ab_http_req_method(req), "GET")) {
                ab_http_respond_not_allowed(req);
                return;
        }
        if (!ab_auth_admin(a->auth, req)) {
                return;
        }
        ab_http_respond_error(req, 404, "no such admin resource",
                              ab_http_text(ab_http_req_path(req)));
}

static const ab_http_route_t routes[] = {
    {.method = "GET", .path = "/admin/events", .handler = h_list},
    {.method = "GET", .path = "/admin/events/", .handler = h_event,
     .flags = AB_HTTP_PREFIX},
    {.method = "GET", .path = "/admin/audit/consistency",
     .handler = h_consistency},
    {.method = "GET", .path = "/admin/stages", .handler = h_stages},
    {.method = "GET", .path = "/admin/", .handler = h_admin,
     .flags = AB_HTTP_PREFIX},
    {.method = NULL},
};

const ab_http_route_t *audit_http_routes(void) {
        return routes;
}
