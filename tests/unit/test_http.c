/* aetherbus - Apache-2.0
 *
 * Unit tests for ab_http: a server on an ephemeral port driven with
 * libcurl (and raw sockets where curl is too polite): routing, 404/405,
 * 413 by Content-Length and by chunked body, the JSON error format, the
 * free routes, asynchronous answers from other threads, a client leaving
 * while its request is suspended, graceful stop, slow clients. After each
 * bad request the server must still answer.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ab_http.h"
#include "ab_log.h"

#define LIMIT 1024

typedef struct {
        CURLcode rc;
        long status;
        char *body;
        size_t len;
        char hdrs[4096];
        size_t hlen;
} resp_t;

static ab_http_t *srv;
static int port;
static char errstr[256];

/* ---- test handlers ---- */

static atomic_int ready_flag = 1;
static _Atomic(ab_http_req_t *) parked;
static atomic_int second_answer = -1;

static void h_hello(ab_http_req_t *req, void *opaque) {
        (void)opaque;
        ab_http_respond(req, 200, "text/plain", "hello", 5, NULL);
}

static void h_echo(ab_http_req_t *req, void *opaque) {
        const char *b;
        size_t n;

        (void)opaque;
        b = ab_http_req_body(req, &n);
        ab_http_respond(req, 200, "application/octet-stream", b, n, NULL);
}

static void h_inspect(ab_http_req_t *req, void *opaque) {
        const char *q[] = {"x", "y", "z", "e"};
        json_t *o;
        size_t n;
        size_t i;
        const char *v;

        (void)opaque;
        o = json_object();
        json_object_set_new(o, "method", json_string(ab_http_req_method(req)));
        json_object_set_new(o, "path", json_string(ab_http_req_path(req)));
        for (i = 0; i < 4; i++) {
                v = ab_http_req_query(req, q[i]);
                json_object_set_new(o, q[i], v ? json_string(v) : json_null());
        }
        v = ab_http_req_header(req, "x-TEST");
        json_object_set_new(o, "hdr", v ? json_string(v) : json_null());
        json_object_set_new(o, "remote", json_string(ab_http_req_remote(req)));
        ab_http_req_body(req, &n);
        json_object_set_new(o, "len", json_integer((json_int_t)n));
        ab_http_respond_json(req, 200, o);
}

/* Async: handed to a worker thread, like a Kafka delivery report. */
static pthread_mutex_t wq_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wq_cond  = PTHREAD_COND_INITIALIZER;
static ab_http_req_t *wq[256];
static int wq_n;
static int wq_quit;
static pthread_t worker;
static int worker_on;

static void *worker_main(void *arg) {
        ab_http_req_t *req;

        (void)arg;
        pthread_mutex_lock(&wq_lock);
        for (;;) {
                while (!wq_n && !wq_quit) {
                        pthread_cond_wait(&wq_cond, &wq_lock);
                }
                if (!wq_n && wq_quit) {
                        break;
                }
                req = wq[--wq_n];
                pthread_mutex_unlock(&wq_lock);
                ab_http_respond_json(req, 202, json_pack("{s:i}", "accepted",
                                                         1));
                pthread_mutex_lock(&wq_lock);
        }
        pthread_mutex_unlock(&wq_lock);
        return NULL;
}

static void h_async(ab_http_req_t *req, void *opaque) {
        (void)opaque;
        if (ab_http_req_suspend(req) != AB_OK) {
                ab_http_respond(req, 200, "text/plain", "sync", 4, NULL);
                return;
        }
        pthread_mutex_lock(&wq_lock);
        wq[wq_n++] = req;
        pthread_cond_signal(&wq_cond);
        pthread_mutex_unlock(&wq_lock);
}

static void *answer_now(void *arg) {
        ab_http_respond(arg, 200, "text/plain", "early", 5, NULL);
        return NULL;
}

/* The answer lands from another thread before the handler returns. */
static void h_early(ab_http_req_t *req, void *opaque) {
        pthread_t t;

        (void)opaque;
        cr_assert_eq(ab_http_req_suspend(req), AB_OK);
        cr_assert_eq(ab_http_req_suspend(req), AB_ERR_UNSUPPORTED);
        pthread_create(&t, NULL, answer_now, req);
        pthread_join(t, NULL);
}

static void h_park(ab_http_req_t *req, void *opaque) {
        (void)opaque;
        cr_assert_eq(ab_http_req_suspend(req), AB_OK);
        atomic_store(&parked, req);
}

static void h_unavail(ab_http_req_t *req, void *opaque) {
        (void)opaque;
        if (ab_http_req_query(req, "ra")) {
                ab_http_req_set_retry_after(
                    req, (unsigned)atoi(ab_http_req_query(req, "ra")));
        }
        ab_http_respond_error(req, 503, "unavailable",
                              json_pack("{s:s}", "queue", "full"));
}

static void h_detail(ab_http_req_t *req, void *opaque) {
        const char *k;
        json_t *d;

        (void)opaque;
        k = ab_http_req_query(req, "kind");
        if (!strcmp(k, "str")) {
                d = json_string("x");
        } else if (!strcmp(k, "obj")) {
                d = json_pack("{s:s}", "field", "name");
        } else if (!strcmp(k, "arr")) {
                d = json_pack("[i,i]", 1, 2);
        } else {
                d = NULL;
        }
        ab_http_respond_error(req, 400, "bad request", d);
}

static void h_silent(ab_http_req_t *req, void *opaque) {
        (void)req;
        (void)opaque;
}

static void h_twice(ab_http_req_t *req, void *opaque) {
        (void)opaque;
        ab_http_respond(req, 200, "text/plain", "one", 3, NULL);
        atomic_store(&second_answer,
                     (int)ab_http_respond(req, 201, "text/plain", "two", 3,
                                          NULL));
}

static void h_prefix(ab_http_req_t *req, void *opaque) {
        (void)opaque;
        ab_http_respond(req, 200, "text/plain", ab_http_req_path(req),
                        strlen(ab_http_req_path(req)),
                        (const char *const[]){"X-Route", "prefix", NULL});
}

static int ready(void *opaque, char *reason, size_t size) {
        (void)opaque;
        if (atomic_load(&ready_flag)) {
                return 1;
        }
        snprintf(reason, size, "kafka down");
        return 0;
}

/* One handler for GET and PUT, deciding by method as services do. */
static void h_method(ab_http_req_t *req, void *opaque) {
        const char *m = ab_http_req_method(req);

        (void)opaque;
        if (strcmp(m, "GET") && strcmp(m, "PUT")) {
                ab_http_respond_not_allowed(req);
                return;
        }
        ab_http_respond(req, 200, "text/plain", m, strlen(m),
                        (const char *const[]){"X-Method", m, NULL});
}

/* A route check: without x-ok, 401 before the body. */
static atomic_int check_suspend = -1;

static void c_guard(ab_http_req_t *req, void *opaque) {
        (void)opaque;
        atomic_store(&check_suspend, (int)ab_http_req_suspend(req));
        if (!ab_http_req_header(req, "x-ok")) {
                ab_http_respond_error(req, 401, "no token", NULL);
        }
}

static const ab_http_route_t routes[] = {
    {.method = "POST", .path = "/guarded", .handler = h_echo,
     .check = c_guard},
    {.method = "GET", .path = "/method", .handler = h_method},
    {.method = "PUT", .path = "/method", .handler = h_method},
    {.method = "GET", .path = "/hello", .handler = h_hello},
    {.method = "POST", .path = "/echo", .handler = h_echo},
    {.method = "POST", .path = "/big", .handler = h_echo, .max_body = 4096},
    {.method = "GET", .path = "/inspect", .handler = h_inspect},
    {.method = "POST", .path = "/async", .handler = h_async},
    {.method = "GET", .path = "/early", .handler = h_early},
    {.method = "GET", .path = "/park", .handler = h_park},
    {.method = "GET", .path = "/unavail", .handler = h_unavail},
    {.method = "GET", .path = "/detail", .handler = h_detail},
    {.method = "GET", .path = "/silent", .handler = h_silent},
    {.method = "GET", .path = "/twice", .handler = h_twice},
    {.method = "GET", .path = "/pfx/", .handler = h_prefix,
     .flags = AB_HTTP_PREFIX},
    {0},
};

static void start_with(ab_http_conf_t conf) {
        conf.service  = "test";
        conf.bind     = conf.bind ? conf.bind : "127.0.0.1";
        conf.max_body = conf.max_body ? conf.max_body : LIMIT;
        conf.routes   = routes;
        conf.ready    = ready;
        srv           = ab_http_new(&conf, errstr, sizeof(errstr));
        cr_assert(srv, "%s", errstr);
        cr_assert_eq(ab_http_start(srv, errstr, sizeof(errstr)), AB_OK, "%s",
                     errstr);
        port = ab_http_port(srv);
}

static void setup(void) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        ab_log_set_level(AB_LOG_WARN);
        pthread_create(&worker, NULL, worker_main, NULL);
        worker_on = 1;
        start_with((ab_http_conf_t){.threads = 2});
}

static void teardown(void) {
        ab_http_destroy(srv);
        srv = NULL;
        if (worker_on) {
                pthread_mutex_lock(&wq_lock);
                wq_quit = 1;
                pthread_cond_signal(&wq_cond);
                pthread_mutex_unlock(&wq_lock);
                pthread_join(worker, NULL);
        }
        curl_global_cleanup();
}

TestSuite(http, .init = setup, .fini = teardown, .timeout = 60);

/* ---- client helpers ---- */

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
        resp_t *r;

        r       = ud;
        r->body = realloc(r->body, r->len + sz * n + 1);
        memcpy(r->body + r->len, p, sz * n);
        r->len += sz * n;
        r->body[r->len] = '\0';
        return sz * n;
}

static size_t on_hdr(char *p, size_t sz, size_t n, void *ud) {
        resp_t *r;
        size_t k;

        r = ud;
        k = sz * n;
        if (r->hlen + k < sizeof(r->hdrs)) {
                memcpy(r->hdrs + r->hlen, p, k);
                r->hlen += k;
                r->hdrs[r->hlen] = '\0';
        }
        return k;
}

typedef struct {
        const char *data;
        size_t len;
        size_t of;
} src_t;

static size_t on_read(char *buf, size_t sz, size_t n, void *ud) {
        src_t *s;
        size_t k;

        s = ud;
        k = s->len - s->of < sz * n ? s->len - s->of : sz * n;
        /* Small pieces so the chunked body arrives over several calls. */
        if (k > 700) {
                k = 700;
        }
        memcpy(buf, s->data + s->of, k);
        s->of += k;
        return k;
}

static CURL *easy(resp_t *r, const char *method, const char *path,
                  struct curl_slist *h, long timeout_ms) {
        char url[256];
        CURL *c;

        memset(r, 0, sizeof(*r));
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        c = curl_easy_init();
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (!strcmp(method, "HEAD")) {
                curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        }
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_hdr);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
        return c;
}

/* One request; body NULL for none; chunked sends it chunked. */
static resp_t http_ex(const char *method, const char *path, const char *body,
                      size_t len, const char *const *hdrs, int chunked,
                      long timeout_ms) {
        struct curl_slist *h;
        resp_t r;
        src_t src;
        CURL *c;
        int i;

        h = NULL;
        for (i = 0; hdrs && hdrs[i]; i++) {
                h = curl_slist_append(h, hdrs[i]);
        }
        if (chunked) {
                h = curl_slist_append(h, "Transfer-Encoding: chunked");
        }
        c = easy(&r, method, path, h, timeout_ms);
        if (body && chunked) {
                src = (src_t){body, len, 0};
                curl_easy_setopt(c, CURLOPT_POST, 1L);
                curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
                curl_easy_setopt(c, CURLOPT_READDATA, &src);
        } else if (body) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                                 (curl_off_t)len);
        }
        r.rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        curl_easy_cleanup(c);
        curl_slist_free_all(h);
        return r;
}

static resp_t http(const char *method, const char *path) {
        return http_ex(method, path, NULL, 0, NULL, 0, 10000);
}

static void resp_free(resp_t *r) {
        free(r->body);
        r->body = NULL;
}

/* Value of header name in r (case-insensitive), or NULL. */
static const char *hdr(resp_t *r, const char *name, char *out, size_t size) {
        const char *p;
        size_t n;

        n = strlen(name);
        for (p = r->hdrs; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1
                                                       : NULL) {
                if (!strncasecmp(p, name, n) && p[n] == ':') {
                        p += n + 1;
                        while (*p == ' ') {
                                p++;
                        }
                        snprintf(out, size, "%.*s", (int)strcspn(p, "\r\n"),
                                 p);
                        return out;
                }
        }
        return NULL;
}

static void assert_alive(void) {
        resp_t r;

        r = http("GET", "/hello");
        cr_assert_eq(r.rc, CURLE_OK, "server gone: %s",
                     curl_easy_strerror(r.rc));
        cr_assert_eq(r.status, 200);
        cr_assert_str_eq(r.body, "hello");
        resp_free(&r);
}

/* Checks {"error":error,"detail":detail_json} exactly. */
static void assert_error(resp_t *r, long status, const char *error,
                         const char *detail_json) {
        json_error_t je;
        json_t *o;
        json_t *want;
        char ct[128];

        cr_assert_eq(r->status, status, "status %ld, body %s", r->status,
                     r->body ? r->body : "");
        cr_assert(hdr(r, "Content-Type", ct, sizeof(ct)));
        cr_assert_str_eq(ct, "application/json");
        o = json_loadb(r->body ? r->body : "", r->len, 0, &je);
        cr_assert(o, "not JSON: %s", r->body ? r->body : "");
        cr_assert_eq(json_object_size(o), 2, "%s", r->body);
        cr_assert_str_eq(json_string_value(json_object_get(o, "error")),
                         error);
        want = json_loads(detail_json, JSON_DECODE_ANY, &je);
        cr_assert(want);
        cr_assert(json_equal(json_object_get(o, "detail"), want), "%s",
                  r->body);
        json_decref(want);
        json_decref(o);
}

static int raw_connect(void) {
        struct sockaddr_in sa;
        struct timeval tv = {10, 0};
        int fd;

        fd = socket(AF_INET, SOCK_STREAM, 0);
        memset(&sa, 0, sizeof(sa));
        sa.sin_family      = AF_INET;
        sa.sin_port        = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        return fd;
}

/* Reads until EOF/timeout; returns bytes read. */
static size_t raw_read(int fd, char *buf, size_t size) {
        size_t of;
        ssize_t n;

        of = 0;
        while (of + 1 < size && (n = read(fd, buf + of, size - 1 - of)) > 0) {
                of += (size_t)n;
        }
        buf[of] = '\0';
        return of;
}

static ab_http_req_t *wait_parked(void) {
        ab_http_req_t *req;
        struct timespec ms = {0, 1000000L};
        int i;

        for (i = 0; i < 5000 && !(req = atomic_load(&parked)); i++) {
                nanosleep(&ms, NULL);
        }
        cr_assert(req, "request never reached the handler");
        return req;
}

/* ---- tests ---- */

Test(http, listens_on_an_ephemeral_port) {
        cr_assert_gt(port, 0);
        assert_alive();
}

Test(http, routes_get_post_and_head) {
        resp_t r;
        char v[64];

        r = http_ex("POST", "/echo", "ping", 4, NULL, 0, 10000);
        cr_assert_eq(r.status, 200);
        cr_assert_str_eq(r.body, "ping");
        cr_assert_str_eq(hdr(&r, "Content-Type", v, sizeof(v)),
                         "application/octet-stream");
        resp_free(&r);

        r = http("HEAD", "/hello");
        cr_assert_eq(r.status, 200);
        cr_assert_eq(r.len, 0);
        resp_free(&r);

        r = http_ex("POST", "/echo", "", 0, NULL, 0, 10000);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(r.len, 0);
        resp_free(&r);
}

Test(http, head_runs_the_get_handler_which_sees_get) {
        resp_t r;
        char v[64];

        r = http("HEAD", "/method");
        cr_assert_eq(r.status, 200);
        cr_assert_eq(r.len, 0, "HEAD answered a body");
        cr_assert_str_eq(hdr(&r, "X-Method", v, sizeof(v)), "GET");
        cr_assert_str_eq(hdr(&r, "Content-Length", v, sizeof(v)), "3");
        resp_free(&r);
        r = http_ex("PUT", "/method", "x", 1, NULL, 0, 10000);
        cr_assert_eq(r.status, 200);
        cr_assert_str_eq(r.body, "PUT");
        resp_free(&r);
        r = http("DELETE", "/method");
        assert_error(&r, 405, "method not allowed",
                     "\"/method allows GET, PUT, HEAD\"");
        cr_assert_str_eq(hdr(&r, "Allow", v, sizeof(v)), "GET, PUT, HEAD");
        resp_free(&r);
        assert_alive();
}

Test(http, prefix_route_matches_below_its_path) {
        resp_t r;
        char v[64];

        r = http("GET", "/pfx/a/b");
        cr_assert_eq(r.status, 200);
        cr_assert_str_eq(r.body, "/pfx/a/b");
        cr_assert_str_eq(hdr(&r, "X-Route", v, sizeof(v)), "prefix");
        resp_free(&r);
        r = http("GET", "/pfx");
        assert_error(&r, 404, "not found", "\"/pfx\"");
        resp_free(&r);
}

Test(http, unknown_path_is_404_json) {
        resp_t r;

        r = http("GET", "/nope");
        assert_error(&r, 404, "not found", "\"/nope\"");
        resp_free(&r);
        r = http_ex("POST", "/nope", "body", 4, NULL, 0, 10000);
        assert_error(&r, 404, "not found", "\"/nope\"");
        resp_free(&r);
        assert_alive();
}

Test(http, wrong_method_is_405_with_allow) {
        resp_t r;
        char v[64];

        r = http_ex("POST", "/hello", "x", 1, NULL, 0, 10000);
        assert_error(&r, 405, "method not allowed",
                     "\"/hello allows GET, HEAD\"");
        cr_assert_str_eq(hdr(&r, "Allow", v, sizeof(v)), "GET, HEAD");
        resp_free(&r);

        r = http("DELETE", "/echo");
        assert_error(&r, 405, "method not allowed", "\"/echo allows POST\"");
        cr_assert_str_eq(hdr(&r, "Allow", v, sizeof(v)), "POST");
        resp_free(&r);
        assert_alive();
}

Test(http, body_over_limit_by_content_length_is_413) {
        static char big[LIMIT + 500];
        resp_t r;

        memset(big, 'a', sizeof(big));
        /* Without Expect: answered at once, the body read and dropped by
         * the lingering close. */
        r = http_ex("POST", "/echo", big, sizeof(big),
                    (const char *const[]){"Expect:", NULL}, 0, 10000);
        assert_error(&r, 413, "payload too large",
                     "\"request body is over 1024 bytes\"");
        resp_free(&r);
        assert_alive();

        /* With Expect: 100-continue: refused before the upload. */
        r = http_ex("POST", "/echo", big, sizeof(big),
                    (const char *const[]){"Expect: 100-continue", NULL}, 0,
                    10000);
        assert_error(&r, 413, "payload too large",
                    "\"request body is over 1024 bytes\"");
        resp_free(&r);
        assert_alive();

        /* Exactly at the limit passes; a route may raise its own limit. */
        r = http_ex("POST", "/echo", big, LIMIT,
                    (const char *const[]){"Expect:", NULL}, 0, 10000);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(r.len, LIMIT);
        resp_free(&r);
        r = http_ex("POST", "/big", big, sizeof(big),
                    (const char *const[]){"Expect:", NULL}, 0, 10000);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(r.len, sizeof(big));
        resp_free(&r);
}

Test(http, huge_content_length_is_refused_without_reading_the_body) {
        char buf[2048];
        const char *q;
        int fd;

        fd = raw_connect();
        q  = "POST /echo HTTP/1.1\r\nHost: x\r\n"
             "Content-Length: 100000000\r\n\r\n";
        cr_assert_eq(write(fd, q, strlen(q)), (ssize_t)strlen(q));
        raw_read(fd, buf, sizeof(buf));
        close(fd);
        cr_assert(!strncmp(buf, "HTTP/1.1 413", 12), "%s", buf);
        cr_assert(strstr(buf, "{\"error\":\"payload too large\""), "%s", buf);
        assert_alive();
}

Test(http, chunked_body_over_limit_is_413) {
        static char big[4 * LIMIT];
        resp_t r;

        memset(big, 'b', sizeof(big));
        r = http_ex("POST", "/echo", big, 1000, NULL, 1, 10000);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(r.len, 1000);
        resp_free(&r);

        r = http_ex("POST", "/echo", big, sizeof(big), NULL, 1, 10000);
        assert_error(&r, 413, "payload too large",
                     "\"request body is over 1024 bytes\"");
        resp_free(&r);
        assert_alive();
}

Test(http, endless_chunked_body_is_cut_off) {
        char *big;
        resp_t r;
        size_t n;

        n   = 3 * 1024 * 1024;
        big = malloc(n);
        memset(big, 'c', n);
        r = http_ex("POST", "/echo", big, n, NULL, 1, 20000);
        /* Either refused (413) or the connection closed mid-upload. */
        cr_assert(r.rc != CURLE_OK || r.status == 413, "rc %d status %ld",
                  r.rc, r.status);
        resp_free(&r);
        free(big);
        assert_alive();
}

Test(http, error_detail_may_be_string_object_array_or_null) {
        static const struct {
                const char *q;
                const char *detail;
        } rows[] = {
            {"/detail?kind=str", "\"x\""},
            {"/detail?kind=obj", "{\"field\":\"name\"}"},
            {"/detail?kind=arr", "[1,2]"},
            {"/detail?kind=none", "null"},
        };
        resp_t r;
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                r = http("GET", rows[i].q);
                assert_error(&r, 400, "bad request", rows[i].detail);
                resp_free(&r);
        }
        r = http("GET", "/detail?kind=none");
        cr_assert_str_eq(r.body, "{\"error\":\"bad request\",\"detail\":null}");
        resp_free(&r);
}

Test(http, healthz_is_ok) {
        resp_t r;

        r = http("GET", "/healthz");
        cr_assert_eq(r.status, 200);
        cr_assert_str_eq(r.body, "{\"status\":\"ok\"}");
        resp_free(&r);
}

Test(http, readyz_follows_the_callback) {
        resp_t r;
        char v[16];

        r = http("GET", "/readyz");
        cr_assert_eq(r.status, 200);
        cr_assert_str_eq(r.body, "{\"status\":\"ready\"}");
        resp_free(&r);

        atomic_store(&ready_flag, 0);
        r = http("GET", "/readyz");
        assert_error(&r, 503, "not ready", "\"kafka down\"");
        cr_assert_str_eq(hdr(&r, "Retry-After", v, sizeof(v)), "1");
        resp_free(&r);
        assert_alive();
}

/* Polls /metrics until it contains every line of want (the counters are
 * updated when MHD reports completion, just after the client has read). */
static char *metrics_with(const char *const *want) {
        struct timespec ms = {0, 5000000L};
        resp_t r;
        char ct[128];
        int i;
        int k;
        int ok;

        for (i = 0; i < 400; i++) {
                r = http("GET", "/metrics");
                cr_assert_eq(r.status, 200);
                cr_assert_str_eq(hdr(&r, "Content-Type", ct, sizeof(ct)),
                                 "text/plain; version=0.0.4; charset=utf-8");
                for (ok = 1, k = 0; want[k]; k++) {
                        ok &= strstr(r.body, want[k]) != NULL;
                }
                if (ok) {
                        return r.body;
                }
                if (i == 399) {
                        cr_assert_fail("missing metrics in:\n%s", r.body);
                }
                resp_free(&r);
                nanosleep(&ms, NULL);
        }
        return NULL;
}

Test(http, metrics_count_requests_by_route_and_status) {
        char *m;

        assert_alive();
        assert_alive();
        resp_free(&(resp_t){.body = http("GET", "/nope").body});
        resp_free(&(resp_t){.body = http_ex("POST", "/hello", "x", 1, NULL, 0,
                                            10000)
                                        .body});
        m = metrics_with((const char *const[]){
            "# TYPE aetherbus_test_http_requests_total counter\n",
            "aetherbus_test_http_requests_total{route=\"/hello\","
            "status=\"200\"} 2\n",
            "aetherbus_test_http_requests_total{route=\"unmatched\","
            "status=\"404\"} 1\n",
            "aetherbus_test_http_requests_total{route=\"/hello\","
            "status=\"405\"} 1\n",
            "# TYPE aetherbus_test_http_request_duration_seconds histogram\n",
            "aetherbus_test_http_request_duration_seconds_count{route=\"/"
            "hello\"} 3\n",
            "aetherbus_test_http_request_duration_seconds_bucket{route=\"/"
            "hello\",le=\"+Inf\"} 3\n",
            "aetherbus_test_http_request_duration_seconds_count{route=\""
            "unmatched\"} 1\n",
            NULL});
        free(m);
}

Test(http, accessors_see_method_path_query_headers_remote) {
        json_error_t je;
        json_t *o;
        json_t *want;
        resp_t r;

        r = http_ex("GET", "/inspect?x=1&y&e=a%20b", NULL, 0,
                    (const char *const[]){"X-Test: v", NULL}, 0, 10000);
        cr_assert_eq(r.status, 200);
        o    = json_loads(r.body, 0, &je);
        want = json_pack("{s:s,s:s,s:s,s:s,s:n,s:s,s:s,s:s,s:i}", "method",
                         "GET", "path", "/inspect", "x", "1", "y", "", "z",
                         "e", "a b", "hdr", "v", "remote", "127.0.0.1", "len",
                         0);
        cr_assert(json_equal(o, want), "%s", r.body);
        json_decref(o);
        json_decref(want);
        resp_free(&r);
}

Test(http, unavailable_carries_retry_after) {
        resp_t r;
        char v[16];

        r = http("GET", "/unavail");
        assert_error(&r, 503, "unavailable", "{\"queue\":\"full\"}");
        cr_assert_str_eq(hdr(&r, "Retry-After", v, sizeof(v)), "1");
        resp_free(&r);
        r = http("GET", "/unavail?ra=7");
        cr_assert_str_eq(hdr(&r, "Retry-After", v, sizeof(v)), "7");
        resp_free(&r);
        assert_alive();
}

Test(http, handler_without_answer_is_500) {
        resp_t r;

        ab_log_set_level(AB_LOG_ERROR - 1); /* expected error, keep quiet */
        r = http("GET", "/silent");
        assert_error(&r, 500, "internal error", "\"handler gave no answer\"");
        resp_free(&r);
        assert_alive();
}

Test(http, second_answer_is_refused) {
        resp_t r;

        r = http("GET", "/twice");
        cr_assert_eq(r.status, 200);
        cr_assert_str_eq(r.body, "one");
        cr_assert_eq(atomic_load(&second_answer), AB_ERR_INVALID);
        resp_free(&r);
}

Test(http, async_answer_from_another_thread) {
        resp_t r;

        r = http_ex("POST", "/async", "{}", 2, NULL, 0, 10000);
        cr_assert_eq(r.status, 202);
        cr_assert_str_eq(r.body, "{\"accepted\":1}");
        resp_free(&r);
        assert_alive();
}

Test(http, async_answer_before_the_handler_returns) {
        resp_t r;

        r = http("GET", "/early");
        cr_assert_eq(r.status, 200);
        cr_assert_str_eq(r.body, "early");
        resp_free(&r);
}

Test(http, many_concurrent_async_requests) {
        enum { N = 64 };
        static resp_t rs[N];
        CURL *c[N];
        CURLM *m;
        CURLMsg *msg;
        int running;
        int left;
        int i;
        int done;
        long st;

        m = curl_multi_init();
        for (i = 0; i < N; i++) {
                c[i] = easy(&rs[i], "POST", "/async", NULL, 20000);
                curl_easy_setopt(c[i], CURLOPT_POSTFIELDS, "{}");
                curl_multi_add_handle(m, c[i]);
        }
        done = 0;
        do {
                curl_multi_perform(m, &running);
                while ((msg = curl_multi_info_read(m, &left))) {
                        if (msg->msg == CURLMSG_DONE) {
                                cr_assert_eq(msg->data.result, CURLE_OK);
                                curl_easy_getinfo(msg->easy_handle,
                                                  CURLINFO_RESPONSE_CODE, &st);
                                cr_assert_eq(st, 202);
                                done++;
                        }
                }
                if (running) {
                        curl_multi_poll(m, NULL, 0, 1000, NULL);
                }
        } while (running);
        cr_assert_eq(done, N);
        for (i = 0; i < N; i++) {
                cr_assert_str_eq(rs[i].body, "{\"accepted\":1}");
                curl_multi_remove_handle(m, c[i]);
                curl_easy_cleanup(c[i]);
                resp_free(&rs[i]);
        }
        curl_multi_cleanup(m);
}

Test(http, client_leaving_while_suspended_is_safe) {
        ab_http_req_t *req;
        resp_t r;

        r = http_ex("GET", "/park", NULL, 0, NULL, 0, 300);
        cr_assert_eq(r.rc, CURLE_OPERATION_TIMEDOUT);
        resp_free(&r);
        req = wait_parked();
        /* The client is gone; the answer is accepted and dropped on send. */
        cr_assert_eq(ab_http_respond(req, 200, "text/plain", "late", 4, NULL),
                     AB_OK);
        assert_alive();
        atomic_store(&parked, NULL);
        assert_alive();
}

static void *park_client(void *arg) {
        resp_t *r;

        r  = arg;
        *r = http("GET", "/park");
        return NULL;
}

Test(http, stop_answers_suspended_requests_with_503) {
        ab_http_req_t *req;
        pthread_t t;
        resp_t r;

        pthread_create(&t, NULL, park_client, &r);
        req = wait_parked();
        ab_log_set_level(AB_LOG_ERROR);
        cr_assert_eq(ab_http_stop(srv, 100), AB_ERR_TIMEOUT);
        pthread_join(t, NULL);
        assert_error(&r, 503,
                     "shutting down before this request's outcome was known: "
                     "its events may or may not have been accepted; resend "
                     "them with the same ids",
                     "{\"outcomeKnown\":false}");
        resp_free(&r);
        /* The late answer is dropped, even after the server is gone. */
        ab_http_destroy(srv);
        srv = NULL;
        cr_assert_eq(ab_http_respond(req, 202, NULL, NULL, 0, NULL),
                     AB_ERR_INVALID);
}

static void *answer_soon(void *arg) {
        struct timespec d = {0, 100000000L}; /* a slow delivery report */

        (void)arg;
        nanosleep(&d, NULL);
        ab_http_respond(wait_parked(), 202, "text/plain", "ok", 2, NULL);
        return NULL;
}

Test(http, stop_waits_for_requests_in_flight) {
        pthread_t c;
        pthread_t a;
        resp_t r;
        char v[16];

        pthread_create(&c, NULL, park_client, &r);
        wait_parked();
        pthread_create(&a, NULL, answer_soon, NULL);
        cr_assert_eq(ab_http_stop(srv, 10000), AB_OK);
        pthread_join(a, NULL);
        pthread_join(c, NULL);
        cr_assert_eq(r.status, 202);
        cr_assert_str_eq(r.body, "ok");
        cr_assert_str_eq(hdr(&r, "Connection", v, sizeof(v)), "close");
        resp_free(&r);
        /* No longer listening. */
        r = http("GET", "/hello");
        cr_assert_eq(r.rc, CURLE_COULDNT_CONNECT);
        resp_free(&r);
}

Test(http, slow_client_is_timed_out) {
        struct timespec t0;
        struct timespec t1;
        char buf[256];
        int fd;

        ab_http_destroy(srv);
        start_with((ab_http_conf_t){.threads = 1, .timeout_s = 1});
        fd = raw_connect();
        cr_assert_eq(write(fd, "GET /hello HTTP/1.1\r\nHo", 23), 23);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        raw_read(fd, buf, sizeof(buf)); /* returns at close (or 10 s) */
        clock_gettime(CLOCK_MONOTONIC, &t1);
        close(fd);
        cr_assert_lt(t1.tv_sec - t0.tv_sec, 5, "slow client kept open");
        assert_alive();
}

static double ms_since(const struct timespec *t0) {
        struct timespec t1;

        clock_gettime(CLOCK_MONOTONIC, &t1);
        return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
               (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* A connection from \p src (an address of 127/8) to the server. */
static int raw_connect_from(const char *src) {
        struct sockaddr_in sa;
        struct timeval tv = {10, 0};
        int fd;

        fd = socket(AF_INET, SOCK_STREAM, 0);
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        cr_assert_eq(inet_pton(AF_INET, src, &sa.sin_addr), 1);
        cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        sa.sin_port        = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        return fd;
}

/* Holds a slot with an answered keep-alive request. */
static int hold_slot(const char *src) {
        static const char get[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
        char buf[512];
        int fd;

        fd = src ? raw_connect_from(src) : raw_connect();
        cr_assert_eq(write(fd, get, strlen(get)), (ssize_t)strlen(get));
        cr_assert_gt(read(fd, buf, sizeof(buf)), 0);
        return fd;
}

/* Whether the server closed \p fd (EOF or reset) within \p ms, without
 * answering anything. */
static int refused_within(int fd, int ms) {
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        char buf[512];
        ssize_t n;

        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        n = read(fd, buf, sizeof(buf));
        return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* Holds a slot with a body under way: 10 of 100 bytes sent. */
static int hold_body(void) {
        static const char head[] = "POST /echo HTTP/1.1\r\nHost: x\r\n"
                                   "Content-Length: 100\r\n\r\n0123456789";
        int fd;

        fd = raw_connect();
        cr_assert_eq(write(fd, head, strlen(head)), (ssize_t)strlen(head));
        return fd;
}

Test(http, connection_limit_refuses_extra_connections_at_once) {
        static const char get[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
        struct timespec t0;
        char buf[512];
        char rest[90];
        int fds[2];
        int fd;
        int i;

        ab_http_destroy(srv);
        /* Two daemons: the limit is one for both, not one per daemon. */
        start_with((ab_http_conf_t){.threads = 2, .max_connections = 2});
        for (i = 0; i < 2; i++) {
                fds[i] = hold_body();
        }
        usleep(100 * 1000);
        /* Both slots hold requests under way: a third client is closed at
         * once, not left waiting in the listen backlog ... */
        for (i = 0; i < 5; i++) {
                clock_gettime(CLOCK_MONOTONIC, &t0);
                fd = raw_connect();
                (void)!write(fd, get, strlen(get));
                cr_assert(refused_within(fd, 2000),
                          "connection %d over the limit not refused", i);
                cr_assert_lt(ms_since(&t0), 1000, "refused late");
                close(fd);
        }
        /* ... and once a slot frees, the next one is served. */
        memset(rest, 'r', sizeof(rest));
        cr_assert_eq(write(fds[0], rest, sizeof(rest)), (ssize_t)sizeof(rest));
        cr_assert_gt(read(fds[0], buf, sizeof(buf)), 0);
        close(fds[0]);
        usleep(200 * 1000);
        fd = raw_connect();
        cr_assert_eq(write(fd, get, strlen(get)), (ssize_t)strlen(get));
        cr_assert_gt(read(fd, buf, sizeof(buf) - 1), 12);
        cr_assert(!strncmp(buf, "HTTP/1.1 200", 12), "%s", buf);
        close(fd);
        close(fds[1]);
}

Test(http, connection_limit_evicts_the_longest_waiting_for_headers) {
        static const char get[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
        char buf[512];
        int body, idle, slow, fd;

        ab_http_destroy(srv);
        start_with((ab_http_conf_t){.threads = 2, .max_connections = 3});
        body = hold_body();          /* a request under way: kept */
        idle = hold_slot(NULL);      /* an idle keep-alive: waits longest */
        usleep(50 * 1000);
        slow = raw_connect();        /* headers trickling */
        cr_assert_eq(write(slow, "GET /hello HTTP/1.1\r\n", 21), 21);
        usleep(100 * 1000);
        /* Full: a newcomer takes the idle one's place and is served. */
        fd = raw_connect();
        cr_assert_eq(write(fd, get, strlen(get)), (ssize_t)strlen(get));
        cr_assert_gt(read(fd, buf, sizeof(buf) - 1), 12);
        cr_assert(!strncmp(buf, "HTTP/1.1 200", 12), "%s", buf);
        cr_assert(refused_within(idle, 1000), "idle keep-alive kept");
        close(idle);
        /* Now the newcomer is the idle one, but the slow one has waited
         * longer: it goes next. */
        usleep(50 * 1000);
        close(hold_slot(NULL));
        cr_assert(refused_within(slow, 1000), "slow headers kept");
        close(slow);
        /* The body under way was never the one to go. */
        cr_assert(!refused_within(body, 100), "a request under way cut");
        close(body);
        close(fd);
}

Test(http, per_address_limit_refuses_that_address_only) {
        int fds[3];
        int fd;
        int i;

        ab_http_destroy(srv);
        start_with((ab_http_conf_t){.threads = 2, .max_connections = 100,
                                    .max_connections_per_ip = 3});
        for (i = 0; i < 3; i++) {
                fds[i] = hold_slot("127.0.0.1");
        }
        fd = raw_connect_from("127.0.0.1");
        cr_assert(refused_within(fd, 2000), "4th from 127.0.0.1 served");
        close(fd);
        /* Another address still gets in, three times too. */
        for (i = 0; i < 3; i++) {
                close(hold_slot("127.0.0.2"));
        }
        fd = hold_slot("127.0.0.2");
        close(fd);
        /* A closed connection gives its address's slot back. */
        close(fds[0]);
        usleep(200 * 1000);
        fds[0] = hold_slot("127.0.0.1");
        for (i = 0; i < 3; i++) {
                close(fds[i]);
        }
        usleep(200 * 1000); /* the server sees the closes */
        assert_alive();
}

Test(http, header_deadline_is_total_however_lines_trickle) {
        struct timespec t0;
        char buf[64];
        int fd;
        int i;
        int open;

        ab_http_destroy(srv);
        start_with((ab_http_conf_t){.threads = 1, .timeout_s = 30,
                                    .header_timeout_ms = 600});
        fd = raw_connect();
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cr_assert_eq(write(fd, "GET /hello HTTP/1.1\r\n", 21), 21);
        /* A line every 100 ms resets any idle timeout; not this one. */
        open = 1;
        for (i = 0; i < 40 && open; i++) {
                usleep(100 * 1000);
                snprintf(buf, sizeof(buf), "X-%d: y\r\n", i);
                open = send(fd, buf, strlen(buf), MSG_NOSIGNAL) > 0 &&
                       !refused_within(fd, 1);
        }
        cr_assert(!open || refused_within(fd, 1000), "trickling kept it");
        cr_assert_gt(ms_since(&t0), 500, "closed before the deadline");
        cr_assert_lt(ms_since(&t0), 2000, "closed late");
        close(fd);
        /* An idle keep-alive connection counts as a request not come. */
        fd = hold_slot(NULL);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cr_assert(refused_within(fd, 3000), "idle keep-alive kept");
        cr_assert_lt(ms_since(&t0), 2000);
        close(fd);
        assert_alive();
}

Test(http, body_deadline_is_total_however_bytes_trickle) {
        static const char head[] = "POST /echo HTTP/1.1\r\nHost: x\r\n"
                                   "Content-Length: 100\r\n\r\n";
        struct timespec t0;
        int fd;
        int i;
        int open;

        ab_http_destroy(srv);
        start_with((ab_http_conf_t){.threads = 1, .timeout_s = 30,
                                    .body_timeout_ms = 600});
        fd = raw_connect();
        cr_assert_eq(write(fd, head, strlen(head)), (ssize_t)strlen(head));
        clock_gettime(CLOCK_MONOTONIC, &t0);
        open = 1;
        for (i = 0; i < 40 && open; i++) {
                usleep(100 * 1000);
                open = send(fd, "x", 1, MSG_NOSIGNAL) > 0 &&
                       !refused_within(fd, 1);
        }
        cr_assert(!open || refused_within(fd, 1000), "trickling kept it");
        cr_assert_gt(ms_since(&t0), 500, "closed before the deadline");
        cr_assert_lt(ms_since(&t0), 2000, "closed late");
        close(fd);
        assert_alive();
}

Test(http, thread_per_connection_mode_answers_synchronously) {
        resp_t r;

        ab_http_destroy(srv);
        start_with((ab_http_conf_t){
            .threading = AB_HTTP_THREAD_PER_CONNECTION});
        r = http_ex("POST", "/async", "{}", 2, NULL, 0, 10000);
        cr_assert_eq(r.status, 200);
        cr_assert_str_eq(r.body, "sync");
        resp_free(&r);
        assert_alive();
}

Test(http, shared_pool_mode_suspends_and_stops) {
        ab_http_req_t *req;
        pthread_t t;
        resp_t r;

        ab_http_destroy(srv);
        start_with((ab_http_conf_t){.threading = AB_HTTP_EPOLL_SHARED,
                                    .threads   = 2});
        r = http_ex("POST", "/async", "{}", 2, NULL, 0, 10000);
        cr_assert_eq(r.status, 202);
        resp_free(&r);
        pthread_create(&t, NULL, park_client, &r);
        req = wait_parked();
        ab_log_set_level(AB_LOG_ERROR);
        cr_assert_eq(ab_http_stop(srv, 50), AB_ERR_TIMEOUT);
        pthread_join(t, NULL);
        assert_error(&r, 503,
                     "shutting down before this request's outcome was known: "
                     "its events may or may not have been accepted; resend "
                     "them with the same ids",
                     "{\"outcomeKnown\":false}");
        resp_free(&r);
        cr_assert_eq(ab_http_respond(req, 202, NULL, NULL, 0, NULL),
                     AB_ERR_INVALID);
}

Test(http, access_log_at_debug_level) {
        struct timespec ms = {0, 5000000L};
        char buf[8192];
        FILE *fp;
        size_t n;
        int i;

        fp = tmpfile();
        ab_log_set_fd(fileno(fp));
        ab_log_set_level(AB_LOG_DEBUG);
        assert_alive();
        for (i = 0; i < 400; i++) {
                rewind(fp);
                n      = fread(buf, 1, sizeof(buf) - 1, fp);
                buf[n] = '\0';
                if (strstr(buf, "GET /hello 200 ")) {
                        break;
                }
                nanosleep(&ms, NULL);
        }
        ab_log_set_level(AB_LOG_WARN);
        ab_log_set_fd(-1);
        fclose(fp);
        cr_assert(strstr(buf, "\"comp\":\"http\",\"msg\":\"GET /hello 200 "),
                  "%s", buf);
        cr_assert(strstr(buf, "ms 127.0.0.1\"}"), "%s", buf);
}

Test(http, bad_configs_fail_cleanly) {
        ab_http_conf_t c;
        ab_http_t *s2;
        char e[256];

        c = (ab_http_conf_t){.bind = "not-an-ip", .routes = routes};
        cr_assert_null(ab_http_new(&c, e, sizeof(e)));
        cr_assert(!strncmp(e, "http: bad bind address \"not-an-ip\"", 34), "%s",
                  e);

        c = (ab_http_conf_t){.bind = "127.0.0.1", .port = port};
        cr_assert_null((s2 = ab_http_new(&c, e, sizeof(e))));
        cr_assert(strstr(e, "cannot listen on 127.0.0.1 port"), "%s", e);

        c = (ab_http_conf_t){
            .bind   = "127.0.0.1",
            .routes = (const ab_http_route_t[]){
                {.method = "GET", .path = "x", .handler = h_hello}, {0}}};
        cr_assert_null(ab_http_new(&c, e, sizeof(e)));
        cr_assert_str_eq(e, "http: route 0 needs a method, a path starting "
                            "with / and a handler");
        assert_alive();
}

/* Reads one answer (headers and what came of the body) from \p fd. */
static size_t read_answer(int fd, char *buf, size_t size, int ms) {
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        return raw_read(fd, buf, size);
}

Test(http, route_check_answers_before_the_body) {
        static const char head[] = "POST /guarded HTTP/1.1\r\nHost: x\r\n"
                                   "Content-Length: 1000\r\n\r\n";
        static const char ok[] = "POST /guarded HTTP/1.1\r\nHost: x\r\n"
                                 "x-ok: 1\r\nContent-Length: 5\r\n"
                                 "Connection: close\r\n\r\nabcde";
        char buf[2048];
        int fd;

        /* Announced 1000 bytes, sent none: the 401 comes anyway, and the
         * connection is closed after it. */
        fd = raw_connect();
        cr_assert_eq(write(fd, head, strlen(head)), (ssize_t)strlen(head));
        read_answer(fd, buf, sizeof(buf), 3000);
        cr_assert(!strncmp(buf, "HTTP/1.1 401", 12), "%s", buf);
        cr_assert(strstr(buf, "\"no token\""), "%s", buf);
        cr_assert(strcasestr(buf, "Connection: close"), "%s", buf);
        close(fd);
        cr_assert_eq(atomic_load(&check_suspend), AB_ERR_UNSUPPORTED,
                     "a check could suspend");
        /* Let through, the handler gets the body. */
        fd = raw_connect();
        cr_assert_eq(write(fd, ok, strlen(ok)), (ssize_t)strlen(ok));
        read_answer(fd, buf, sizeof(buf), 3000);
        cr_assert(!strncmp(buf, "HTTP/1.1 200", 12), "%s", buf);
        cr_assert(strstr(buf, "\r\n\r\nabcde"), "%s", buf);
        close(fd);
        assert_alive();
}

Test(http, body_budget_answers_503_and_frees_as_bodies_end) {
        static const char head[] = "POST /echo HTTP/1.1\r\nHost: x\r\n"
                                   "Content-Length: 1000\r\n"
                                   "Connection: close\r\n\r\n";
        static const char chunked[] =
            "POST /echo HTTP/1.1\r\nHost: x\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            "64\r\n";
        char body[1000];
        char buf[4096];
        char ra[32];
        int held[2];
        int fd;
        int i;

        memset(body, 'b', sizeof(body));
        ab_http_destroy(srv);
        start_with((ab_http_conf_t){.threads = 2, .body_budget = 2048,
                                    .retry_after_s = 7});
        /* Two stalled uploads of 1000 bytes hold 2000 of 2048. */
        for (i = 0; i < 2; i++) {
                held[i] = raw_connect();
                cr_assert_eq(write(held[i], head, strlen(head)),
                             (ssize_t)strlen(head));
                cr_assert_eq(write(held[i], body, 10), 10);
        }
        usleep(100 * 1000);
        /* A third is refused with its headers: 503, Retry-After, close. */
        fd = raw_connect();
        cr_assert_eq(write(fd, head, strlen(head)), (ssize_t)strlen(head));
        read_answer(fd, buf, sizeof(buf), 3000);
        cr_assert(!strncmp(buf, "HTTP/1.1 503", 12), "%s", buf);
        cr_assert(strstr(buf, "\"server busy\""), "%s", buf);
        cr_assert(strstr(buf, "Retry-After: 7\r\n"), "%s", buf);
        close(fd);
        /* A chunked body past the 48 bytes left: 503 midway. */
        fd = raw_connect();
        cr_assert_eq(write(fd, chunked, strlen(chunked)),
                     (ssize_t)strlen(chunked));
        cr_assert_eq(write(fd, body, 100), 100);
        (void)!write(fd, "\r\n0\r\n\r\n", 7);
        read_answer(fd, buf, sizeof(buf), 3000);
        cr_assert(!strncmp(buf, "HTTP/1.1 503", 12), "%s", buf);
        snprintf(ra, sizeof(ra), "Retry-After: 7\r\n");
        cr_assert(strstr(buf, ra), "%s", buf);
        close(fd);
        /* One upload ends: its budget is back for the next one. */
        cr_assert_eq(write(held[0], body + 10, 990), 990);
        read_answer(held[0], buf, sizeof(buf), 3000);
        cr_assert(!strncmp(buf, "HTTP/1.1 200", 12), "%s", buf);
        close(held[0]);
        fd = raw_connect();
        cr_assert_eq(write(fd, head, strlen(head)), (ssize_t)strlen(head));
        cr_assert_eq(write(fd, body, 1000), 1000);
        read_answer(fd, buf, sizeof(buf), 3000);
        cr_assert(!strncmp(buf, "HTTP/1.1 200", 12), "%s", buf);
        close(fd);
        /* A client that leaves mid-body gives its budget back too. */
        close(held[1]);
        usleep(200 * 1000);
        for (i = 0; i < 2; i++) {
                held[i] = raw_connect();
                cr_assert_eq(write(held[i], head, strlen(head)),
                             (ssize_t)strlen(head));
                cr_assert_eq(write(held[i], body, 1000), 1000);
                read_answer(held[i], buf, sizeof(buf), 3000);
                cr_assert(!strncmp(buf, "HTTP/1.1 200", 12), "%d: %s", i,
                          buf);
                close(held[i]);
        }
        assert_alive();
}
