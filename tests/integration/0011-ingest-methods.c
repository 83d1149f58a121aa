/* aetherbus - Apache-2.0
 *
 * 0011-ingest-methods: every route of aetherbus-ingest decides by method.
 * HEAD on each GET route answers what GET answers (status, Content-Type,
 * Content-Length) without a body, on a connection that stays usable, and
 * never changes state: HEAD /admin/rbac, even with a body, leaves the
 * RBAC mode alone. Methods no route serves answer 405 with Allow. Runs
 * against both brokers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "ab_itest.h"
#include "ab_itest_raw.h"

#define PARTITIONS 1
#define WAIT_MS    30000
#define ADMIN      "adm1n-token"
#define AUTH       "x-ops: 1\r\nx-admin-token: " ADMIN "\r\n"

static ab_itest_broker_t *b;
static ab_itest_proc_t *svc;
static int port;
static char prefix[64];

static void start(void) {
        static const char *const env[] = {"ADMIN_TOKEN=" ADMIN,
                                          "RBAC_MODE=enforce", NULL};

        svc = ab_itest_stack_start("aetherbus-ingest", PARTITIONS, env,
                                   WAIT_MS, &b, prefix, sizeof(prefix), &port);
}

static void teardown(void) {
        ab_itest_stack_stop(&svc, &b);
}

TestSuite(ingest_methods, .init = start, .fini = teardown, .timeout = 120);

/* One keep-alive request on \p fd; the answer must be whole and nothing
 * may follow it (a HEAD that leaked its body would). */
static void exchange(int fd, const char *method, const char *path,
                     const char *hdrs, const char *body, ab_itest_raw_t *res) {
        char req[2048];
        int n;

        if (body) {
                n = snprintf(req, sizeof(req),
                             "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s"
                             "Content-Type: application/json\r\n"
                             "Content-Length: %zu\r\n\r\n%s",
                             method, path, hdrs ? hdrs : "", strlen(body),
                             body);
        } else {
                n = snprintf(req, sizeof(req),
                             "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n",
                             method, path, hdrs ? hdrs : "");
        }
        cr_assert(n > 0 && (size_t)n < sizeof(req));
        ab_itest_raw_exchange(fd, req, (size_t)n, !strcmp(method, "HEAD"),
                              2000, 10000, 300, res);
        cr_assert(res->complete, "%s %s: %s", method, path, res->error);
        cr_assert_eq(res->error[0], '\0', "%s %s: %s", method, path,
                     res->error);
}

static const char *mode_now(char *out, size_t size) {
        ab_itest_raw_t res;
        json_t *doc;
        int fd;

        fd = ab_itest_raw_connect(port);
        cr_assert(fd >= 0);
        exchange(fd, "GET", "/admin/rbac", AUTH, NULL, &res);
        close(fd);
        cr_assert_eq(res.status, 200, "%s", res.body);
        doc = json_loads(res.body, 0, NULL);
        cr_assert_not_null(doc, "%s", res.body);
        snprintf(out, size, "%s",
                 json_string_value(json_object_get(doc, "mode"))
                     ? json_string_value(json_object_get(doc, "mode"))
                     : "(none)");
        json_decref(doc);
        ab_itest_raw_clear(&res);
        return out;
}

Test(ingest_methods, head_on_every_get_route_answers_as_get_without_a_body) {
        static const struct {
                const char *path;
                const char *hdrs;
                int same_length; /* /metrics changes between requests */
        } routes[] = {
            {"/events/schema", NULL, 1},
            {"/admin/rbac", AUTH, 1},
            {"/admin/rbac", NULL, 1},       /* 401 */
            {"/admin/rbac", "x-admin-token: " ADMIN "\r\n", 1}, /* 403 */
            {"/admin/nothing", AUTH, 1},    /* 404 of the admin guard */
            {"/healthz", NULL, 1},
            {"/readyz", NULL, 1},
            {"/metrics", NULL, 0},
            {"/no/such/path", NULL, 1},     /* 404 */
            {"/events/ingest", NULL, 1},    /* 405: POST only */
        };
        static const char *const same[] = {"Content-Type", "Allow",
                                           "Retry-After"};
        ab_itest_raw_t get, head;
        char gv[256], hv[256];
        size_t i, k;
        int fd;

        /* One connection for all: each HEAD answer must end where its
         * headers end, or the next answer would be misread. */
        fd = ab_itest_raw_connect(port);
        cr_assert(fd >= 0);
        for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
                exchange(fd, "GET", routes[i].path, routes[i].hdrs, NULL,
                         &get);
                exchange(fd, "HEAD", routes[i].path, routes[i].hdrs, NULL,
                         &head);
                cr_assert_eq(head.status, get.status, "HEAD %s: %d, GET %d",
                             routes[i].path, head.status, get.status);
                cr_assert_eq(head.body_len, 0, "HEAD %s has a body",
                             routes[i].path);
                for (k = 0; k < sizeof(same) / sizeof(same[0]); k++) {
                        int g = ab_itest_raw_header(&get, same[k], gv,
                                                    sizeof(gv));
                        int h = ab_itest_raw_header(&head, same[k], hv,
                                                    sizeof(hv));

                        cr_assert_eq(g, h, "HEAD %s: %s present %d vs %d",
                                     routes[i].path, same[k], h, g);
                        if (!g) {
                                cr_assert_str_eq(hv, gv, "HEAD %s: %s",
                                                 routes[i].path, same[k]);
                        }
                }
                cr_assert_eq(ab_itest_raw_header(&head, "Content-Length", hv,
                                                 sizeof(hv)),
                             0, "HEAD %s: no Content-Length", routes[i].path);
                if (routes[i].same_length) {
                        cr_assert_eq(strtoul(hv, NULL, 10), get.body_len,
                                     "HEAD %s: Content-Length %s, GET body "
                                     "%zu",
                                     routes[i].path, hv, get.body_len);
                }
                ab_itest_raw_clear(&get);
                ab_itest_raw_clear(&head);
        }
        close(fd);
}

Test(ingest_methods, head_on_admin_rbac_never_changes_the_mode) {
        static const char *const bodies[] = {NULL, "{\"mode\":\"off\"}",
                                             "{\"mode\":\"audit\"}"};
        ab_itest_raw_t res;
        char mode[32];
        size_t i;
        int fd;

        cr_assert_str_eq(mode_now(mode, sizeof(mode)), "enforce");
        fd = ab_itest_raw_connect(port);
        cr_assert(fd >= 0);
        for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
                exchange(fd, "HEAD", "/admin/rbac", AUTH, bodies[i], &res);
                cr_assert_eq(res.status, 200, "HEAD with %s: %d",
                             bodies[i] ? bodies[i] : "no body", res.status);
                ab_itest_raw_clear(&res);
                cr_assert_str_eq(mode_now(mode, sizeof(mode)), "enforce",
                                 "HEAD with %s changed the mode",
                                 bodies[i] ? bodies[i] : "no body");
        }
        close(fd);
        /* PUT still does (the one method that may). */
        fd = ab_itest_raw_connect(port);
        cr_assert(fd >= 0);
        exchange(fd, "PUT", "/admin/rbac", AUTH, "{\"mode\":\"audit\"}", &res);
        cr_assert_eq(res.status, 200, "PUT: %d %s", res.status, res.body);
        ab_itest_raw_clear(&res);
        close(fd);
        cr_assert_str_eq(mode_now(mode, sizeof(mode)), "audit");
}

Test(ingest_methods, methods_no_route_serves_answer_405_with_allow) {
        static const struct {
                const char *method;
                const char *path;
                const char *allow; /* must be listed */
        } cases[] = {
            {"POST", "/admin/rbac", "PUT"},   {"DELETE", "/admin/rbac", "GET"},
            {"PATCH", "/admin/rbac", "PUT"},  {"OPTIONS", "/admin/rbac", "GET"},
            {"TRACE", "/admin/rbac", "GET"},  {"get", "/admin/rbac", "GET"},
            {"FOO", "/admin/rbac", "GET"},    {"PUT", "/events/schema", "GET"},
            {"DELETE", "/events/ingest", "POST"},
            {"HEAD", "/bus/events", "POST"},  {"PUT", "/admin/x", "GET"},
            {"POST", "/healthz", "GET"},
        };
        ab_itest_raw_t res;
        char allow[128], mode[32];
        size_t i;
        int fd;

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                /* a refusal with a body closes: one connection each */
                fd = ab_itest_raw_connect(port);
                cr_assert(fd >= 0);
                exchange(fd, cases[i].method, cases[i].path, AUTH,
                         "{\"mode\":\"off\"}", &res);
                close(fd);
                cr_assert_eq(res.status, 405, "%s %s: %d %s", cases[i].method,
                             cases[i].path, res.status, res.body);
                cr_assert_eq(ab_itest_raw_header(&res, "Allow", allow,
                                                 sizeof(allow)),
                             0, "%s %s: no Allow", cases[i].method,
                             cases[i].path);
                cr_assert_not_null(strstr(allow, cases[i].allow),
                                   "%s %s: Allow: %s", cases[i].method,
                                   cases[i].path, allow);
                if (strcmp(cases[i].method, "HEAD")) {
                        json_t *doc = json_loads(res.body, 0, NULL);

                        cr_assert_not_null(doc, "%s %s: not JSON: %s",
                                           cases[i].method, cases[i].path,
                                           res.body);
                        json_decref(doc);
                }
                ab_itest_raw_clear(&res);
        }
        cr_assert_str_eq(mode_now(mode, sizeof(mode)), "enforce");
}
