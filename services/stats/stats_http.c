/* aetherbus - Apache-2.0
 *
 * stats_http: GET /admin/events/stats, behind the shared admin guard (or
 * the console's session cookie), and its parameters; the console's routes
 * (stats_console.c). /healthz, /readyz and /metrics come from ab_http.
 */
#include <string.h>

#include "stats.h"

static void h_stats(ab_http_req_t *req, void *opaque) {
        stats_t *st = opaque;
        stats_query_t q;
        const char *window, *v;
        json_t *doc;
        int64_t lag;

        if (strcmp(ab_http_req_method(req), "GET")) {
                ab_http_respond_not_allowed(req); /* HEAD arrives as GET */
                return;
        }
        if (!stats_console_guard(st, req)) {
                return;
        }
        memset(&q, 0, sizeof(q));
        q.minutes = 60;
        window    = ab_http_req_query(req, "window");
        if (window) {
                if (!strcmp(window, "5m")) {
                        q.minutes = 5;
                } else if (!strcmp(window, "15m")) {
                        q.minutes = 15;
                } else if (!strcmp(window, "1h") || !strcmp(window, "60m")) {
                        q.minutes = 60;
                } else {
                        ab_http_respond_error(req, 400,
                                              "window: must be one of 5m, 15m, 1h",
                                              json_string(window));
                        return;
                }
        }
        if ((v = ab_http_req_query(req, "name"))) {
                if (!ab_catalog_find(st->catalog, v)) {
                        ab_http_respond_error(req, 400,
                                              "name: not an event name of the "
                                              "catalog",
                                              json_string(v));
                        return;
                }
                q.name = v;
        }
        if ((v = ab_http_req_query(req, "prefix"))) {
                q.prefix = v;
                if (!*v || strlen(v) > 63) {
                        ab_http_respond_error(req, 400,
                                              "prefix: must be 1 to 63 characters",
                                              NULL);
                        return;
                }
        }
        if ((v = ab_http_req_query(req, "companyId"))) {
                if (!*v || strlen(v) > 256) {
                        ab_http_respond_error(req, 400,
                                              "companyId: must be 1 to 256 "
                                              "characters",
                                              NULL);
                        return;
                }
                q.company_id = v;
        }
        doc = stats_window_query(st->window, &q, stats_now_ms(st));
        lag = atomic_load(&st->lag);
        if (doc) {
                /* Records in Kafka not read yet: how current the figures are. */
                json_object_set_new(doc, "consumerLag",
                                    lag >= 0 ? json_integer((json_int_t)lag)
                                             : json_null());
        }
        ab_http_respond_json(req, 200, doc);
}

static void h_stages(ab_http_req_t *req, void *opaque) {
        stats_t *st = opaque;

        ab_stage_respond(st->stage, st->auth, req);
}

static void h_admin(ab_http_req_t *req, void *opaque) {
        stats_t *st = opaque;

        if (strcmp(ab_http_req_method(req), "GET")) {
                ab_http_respond_not_allowed(req);
                return;
        }
        if (!stats_console_guard(st, req)) {
                return;
        }
        ab_http_respond_error(req, 404, "no such admin resource",
                              json_string(ab_http_req_path(req)));
}

static const ab_http_route_t routes[] = {
    {.method = "GET", .path = "/admin/events/stats", .handler = h_stats},
    {.method = "GET", .path = "/admin/console", .handler = stats_console_page},
    {.method = "POST", .path = "/admin/console/login",
     .handler = stats_console_login, .max_body = 4096},
    {.method = "POST", .path = "/admin/console/logout",
     .handler = stats_console_logout, .max_body = 4096},
    {.method = "GET", .path = "/admin/console/", .handler = stats_console_proxy,
     .flags = AB_HTTP_PREFIX},
    {.method = "GET", .path = "/admin/stages", .handler = h_stages},
    {.method = "GET", .path = "/admin/", .handler = h_admin,
     .flags = AB_HTTP_PREFIX},
    {.method = NULL},
};

const ab_http_route_t *stats_http_routes(void) {
        return routes;
}
