/* aetherbus - Apache-2.0
 *
 * ingest_http: the routes of aetherbus-ingest and the checks every ingest
 * request passes in order (content type, token, RBAC, Kafka readiness)
 * before ingest_publish takes the body. /healthz, /readyz and /metrics come
 * from ab_http.
 */
#include <string.h>
#include <strings.h>

#include "ab_log.h"
#include "ingest.h"

/* application/json, with or without parameters, or any +json type. */
static int is_json(const char *ct) {
        size_t n;
        const char *semi;

        if (!ct) {
                return 0;
        }
        while (*ct == ' ') {
                ct++;
        }
        semi = strchr(ct, ';');
        n    = semi ? (size_t)(semi - ct) : strlen(ct);
        while (n > 0 && ct[n - 1] == ' ') {
                n--;
        }
        if (n == 16 && !strncasecmp(ct, "application/json", 16)) {
                return 1;
        }
        return n > 5 && !strncasecmp(ct + n - 5, "+json", 5) &&
               !strncasecmp(ct, "application/", 12);
}

static int is_true(const char *v) {
        return v && (!strcmp(v, "1") || !strcasecmp(v, "true"));
}

/* Each handler checks the method it serves itself, whatever the route
 * table says: a route added for another method must not run it. */
static int method_is(ab_http_req_t *req, const char *method) {
        if (!strcmp(ab_http_req_method(req), method)) {
                return 1;
        }
        ab_http_respond_not_allowed(req);
        return 0;
}

static void publish_as(ab_http_req_t *req, ingest_t *ing, ab_form_t form,
                       const ingest_client_t *client) {
        const char *tenant;
        char reason[512];

        if (!ab_service_accepting(ing->svc)) {
                ab_http_req_set_retry_after(req, (unsigned)ing->conf->svc.retry_after_s);
                ab_http_respond_error(req, 503, "shutting down", NULL);
                return;
        }
        /* Credentials first: an anonymous client learns nothing else.
         * check_token saw them (and took the rate token) with the
         * headers; this is for a route added without it. */
        if (!ing->clients && !ingest_rbac_check_token(ing, req)) {
                return;
        }
        if (!is_json(ab_http_req_header(req, "Content-Type"))) {
                ab_http_respond_error(
                    req, 415, "Content-Type must be application/json",
                    ab_http_text(ab_http_req_header(req, "Content-Type")
                                     ? ab_http_req_header(req, "Content-Type")
                                     : "(none)"));
                return;
        }
        tenant = ab_http_req_header(req, "x-tenant");
        if (tenant && !*tenant) {
                tenant = NULL;
        }
        if (form == AB_FORM_BUS && !ab_auth_rbac(ing->auth, req, tenant)) {
                return;
        }
        if (!ingest_ready(ing, reason, sizeof(reason))) {
                ab_http_req_set_retry_after(req, (unsigned)ing->conf->svc.retry_after_s);
                ab_http_respond_error(req, 503, "Kafka is not available",
                                      json_string(reason));
                return;
        }
        if (atomic_load(&ing->inflight) >= ing->conf->max_inflight) {
                ab_http_req_set_retry_after(req, (unsigned)ing->conf->svc.retry_after_s);
                ab_http_respond_error(
                    req, 503, "too many requests waiting for Kafka",
                    json_integer(ing->conf->max_inflight));
                return;
        }
        ingest_publish(ing, req, form, tenant, client,
                       is_true(ab_http_req_query(req, "async")));
}

static void publish(ab_http_req_t *req, ingest_t *ing, ab_form_t form) {
        ingest_clients_t *tbl = NULL;
        const ingest_client_t *client = NULL;

        if (!method_is(req, "POST")) {
                return;
        }
        /* The client and its table stay referenced for the whole request:
         * a reload meanwhile frees neither. */
        if (ing->clients && !(client = ingest_rbac_client(ing, req, &tbl))) {
                return;
        }
        publish_as(req, ing, form, client);
        ingest_clients_put(ing->clients, tbl);
}

static void h_ingest(ab_http_req_t *req, void *opaque) {
        publish(req, opaque, AB_FORM_INGEST);
}

static void h_bus(ab_http_req_t *req, void *opaque) {
        publish(req, opaque, AB_FORM_BUS);
}

static void h_schema(ab_http_req_t *req, void *opaque) {
        ingest_t *ing = opaque;

        if (!method_is(req, "GET")) {
                return;
        }
        ab_http_respond(req, 200, "application/json", ing->schema_json,
                        ing->schema_json_len, NULL);
}

static void h_admin(ab_http_req_t *req, void *opaque) {
        ingest_t *ing = opaque;

        if (!method_is(req, "GET") || !ab_auth_admin(ing->auth, req)) {
                return;
        }
        ab_http_respond_error(req, 404, "no such admin resource",
                              ab_http_text(ab_http_req_path(req)));
}

static void h_stages(ab_http_req_t *req, void *opaque) {
        ingest_t *ing = opaque;

        ab_stage_respond(ing->stage, ing->auth, req);
}

static void h_admin_rbac(ab_http_req_t *req, void *opaque) {
        ingest_t *ing = opaque;

        if (!ab_auth_admin(ing->auth, req)) {
                return;
        }
        ingest_rbac_admin(req, opaque);
}

/* ab_http runs it with the headers, before the body: an upload without
 * the token is answered 401 before any of it is read or held. publish()
 * checks again, for a route added without it. */
static void check_token(ab_http_req_t *req, void *opaque) {
        ingest_rbac_check_token(opaque, req);
}

static const ab_http_route_t routes[] = {
    {.method = "POST", .path = "/events/ingest", .handler = h_ingest,
     .check = check_token},
    {.method = "POST", .path = "/bus/events", .handler = h_bus,
     .check = check_token},
    {.method = "GET", .path = "/events/schema", .handler = h_schema},
    {.method = "GET", .path = "/admin/rbac", .handler = h_admin_rbac},
    {.method = "GET", .path = "/admin/stages", .handler = h_stages},
    {.method = "PUT", .path = "/admin/rbac", .handler = h_admin_rbac,
     .max_body = 4096},
    {.method = "GET", .path = "/admin/", .handler = h_admin,
     .flags = AB_HTTP_PREFIX},
    {.method = NULL},
};

const ab_http_route_t *ingest_http_routes(void) {
        return routes;
}
