/* aetherbus - Apache-2.0
 *
 * stats_console: the operator's console, one embedded page
 * (console/console.html) served at GET /admin/console, its sign-in, and
 * the few read-only GETs of the other services it shows, proxied so the
 * browser only ever talks to this origin. What the page draws stays in
 * the page; what the figures are stays in stats_window.c.
 *
 * Why a cookie. The admin guard is a header (x-admin-token or Bearer,
 * then x-ops: 1), and a browser sends no custom header when it navigates.
 * So POST /admin/console/login takes the admin token from a form and
 * answers with a cookie holding it (HttpOnly: the page's script never
 * sees the token; SameSite=Strict: no other site's page makes the browser
 * send it, which is the CSRF defence of these read-only GETs; Path=/admin;
 * Secure behind TLS). The cookie counts only when it equals ADMIN_TOKEN,
 * and then it stands for both halves of the guard: whoever proves the
 * admin secret is the operator x-ops asserts. Without ADMIN_TOKEN there
 * is nothing to sign in with, and the page follows the header rule alone
 * (a gateway that sets x-ops, or RBAC_MODE=off). Without a credential
 * GET /admin/console is a 401 whose body is the sign-in form (no data),
 * and every data route a 401 or 403 as before.
 *
 * Why a proxy. The audit log (search, proofs, failures) lives in
 * aetherbus-audit on another port; the page may fetch its own origin only
 * (connect-src 'self'). Serving the page from audit too would split the
 * console in two, so this service forwards a fixed list of GETs (see
 * upstream_path()) to STATS_AUDIT_URL, STATS_INGEST_URL and
 * STATS_SINK_URL with the
 * caller's credential, a timeout and a bound on the body, on a thread of
 * its own (handlers must not block).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "ab_log.h"
#include "stats.h"

extern const char stats_console_html[];
extern const char stats_console_login_html[];

#define COOKIE "ab_admin"
#define TOKEN_MAX 512               /* longer admin tokens: headers only */
#define SESSION_S 28800             /* 8 h, a shift */
#define PROXY_TIMEOUT_MS 5000
#define PROXY_CONNECT_MS 2000
#define PROXY_BODY_MAX (4 << 20)    /* audit pages are at most 1,000 rows */
#define PROXY_INFLIGHT_MAX 16
#define ID_MAX 256

/* The page's script and styles are inline (one file, no build step), so
 * 'unsafe-inline' there; everything else is this origin only, which is
 * also what keeps its fetch() same-origin. */
static const char *const page_headers[] = {
    "Content-Security-Policy",
    "default-src 'none'; script-src 'unsafe-inline'; style-src "
    "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action "
    "'self'; base-uri 'none'; frame-ancestors 'none'",
    "Cache-Control", "no-store",
    "X-Content-Type-Options", "nosniff",
    /* same-origin, not no-referrer: with no-referrer a browser sends
     * "Origin: null" on the sign-in form, which same_origin() refuses. */
    "Referrer-Policy", "same-origin",
    "X-Frame-Options", "DENY",
    NULL};

static void respond_page(ab_http_req_t *req, int status, const char *html) {
        ab_http_respond(req, status, "text/html; charset=utf-8", html,
                        strlen(html), page_headers);
}

static int hexval(int c) {
        if (c >= '0' && c <= '9') {
                return c - '0';
        }
        c = tolower(c);
        return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The cookie \p name of the Cookie header, hex-decoded into \p out.
 * @returns 0, or -1 when absent, malformed or too long. */
static int cookie_get(ab_http_req_t *req, const char *name, char *out,
                      size_t out_size) {
        const char *h = ab_http_req_header(req, "Cookie"), *p, *v;
        size_t nlen = strlen(name), n = 0;
        int hi, lo;

        for (p = h; p && *p;) {
                while (*p == ' ' || *p == ';') {
                        p++;
                }
                if (!strncmp(p, name, nlen) && p[nlen] == '=') {
                        for (v = p + nlen + 1; *v && *v != ';'; v += 2) {
                                hi = hexval((unsigned char)v[0]);
                                lo = v[1] ? hexval((unsigned char)v[1]) : -1;
                                /* No control byte may come out: the
                                 * token goes into a header upstream. */
                                if (hi < 0 || lo < 0 || n + 1 >= out_size ||
                                    hi * 16 + lo < 0x20 ||
                                    hi * 16 + lo == 0x7f) {
                                        return -1;
                                }
                                out[n++] = (char)(hi * 16 + lo);
                        }
                        out[n] = '\0';
                        return n ? 0 : -1;
                }
                p = strchr(p, ';');
        }
        return -1;
}

/* 1 when the request carries a session cookie equal to ADMIN_TOKEN. */
static int cookie_ok(stats_t *st, ab_http_req_t *req, char *tok,
                     size_t tok_size) {
        return ab_auth_has_admin_token(st->auth) &&
               cookie_get(req, COOKIE, tok, tok_size) == 0 &&
               ab_auth_admin_secret(st->auth, tok);
}

int stats_console_guard(stats_t *st, ab_http_req_t *req) {
        char tok[TOKEN_MAX];

        if (cookie_ok(st, req, tok, sizeof(tok))) {
                return 1;
        }
        return ab_auth_admin(st->auth, req);
}

void stats_console_page(ab_http_req_t *req, void *opaque) {
        stats_t *st = opaque;
        char tok[TOKEN_MAX];

        if (strcmp(ab_http_req_method(req), "GET")) {
                ab_http_respond_not_allowed(req);
                return;
        }
        if (cookie_ok(st, req, tok, sizeof(tok))) {
                respond_page(req, 200, stats_console_html);
                return;
        }
        /* A browser without a session gets the sign-in form as the body
         * of the 401; the JSON clients' headers go through the guard. */
        if (ab_auth_has_admin_token(st->auth) &&
            !ab_auth_admin_token(st->auth, req)) {
                ab_auth_count(st->auth, "admin_token", "denied");
                respond_page(req, 401, stats_console_login_html);
                return;
        }
        if (!ab_auth_admin(st->auth, req)) {
                return;
        }
        respond_page(req, 200, stats_console_html);
}

/* The value of \p name in an application/x-www-form-urlencoded body,
 * decoded into \p out. @returns 0 or -1. */
static int form_get(const char *body, const char *name, char *out,
                    size_t out_size) {
        size_t nlen = strlen(name), n = 0;
        const char *p = body, *v;
        int hi, lo;

        while (p && *p) {
                if (!strncmp(p, name, nlen) && p[nlen] == '=') {
                        for (v = p + nlen + 1; *v && *v != '&'; v++) {
                                if (n + 1 >= out_size) {
                                        return -1;
                                }
                                if (*v == '+') {
                                        out[n++] = ' ';
                                } else if (*v == '%' &&
                                           (hi = hexval((unsigned char)v[1])) >= 0 &&
                                           (lo = hexval((unsigned char)v[2])) >= 0) {
                                        out[n++] = (char)(hi * 16 + lo);
                                        v += 2;
                                } else {
                                        out[n++] = *v;
                                }
                        }
                        out[n] = '\0';
                        return memchr(out, '\0', n) ? -1 : 0;
                }
                if ((p = strchr(p, '&'))) {
                        p++;
                }
        }
        return -1;
}

/* Secure when the client reached us over TLS (a terminating ingress
 * says so); a plain-HTTP localhost would never send a Secure cookie. */
static const char *secure_attr(ab_http_req_t *req) {
        const char *proto = ab_http_req_header(req, "X-Forwarded-Proto");

        return proto && !strcasecmp(proto, "https") ? "; Secure" : "";
}

/* A browser names the page a form was posted from; one of another site
 * is refused (login and logout CSRF). No Origin: not a browser form. */
static int same_origin(ab_http_req_t *req) {
        const char *origin = ab_http_req_header(req, "Origin");
        const char *host   = ab_http_req_header(req, "Host");
        const char *rest;

        if (!origin) {
                return 1;
        }
        if (!strncmp(origin, "http://", 7)) {
                rest = origin + 7;
        } else if (!strncmp(origin, "https://", 8)) {
                rest = origin + 8;
        } else {
                return 0;
        }
        if (host && !strcasecmp(rest, host)) {
                return 1;
        }
        ab_http_respond_error(req, 403, "cross-site form refused",
                              ab_http_text(origin));
        return 0;
}

void stats_console_login(ab_http_req_t *req, void *opaque) {
        stats_t *st = opaque;
        char tok[TOKEN_MAX], cookie[2 * TOKEN_MAX + 160], *c;
        const char *body = ab_http_req_body(req, NULL);
        const char *hdrs[] = {"Location", "/admin/console", "Set-Cookie", cookie,
                              "Cache-Control", "no-store", NULL};
        size_t i;

        if (strcmp(ab_http_req_method(req), "POST")) {
                ab_http_respond_not_allowed(req);
                return;
        }
        if (!same_origin(req)) {
                return;
        }
        if (!ab_auth_has_admin_token(st->auth)) {
                ab_http_respond_error(req, 403,
                                      "console sign-in needs ADMIN_TOKEN",
                                      NULL);
                return;
        }
        if (form_get(body, "token", tok, sizeof(tok)) ||
            !ab_auth_admin_secret(st->auth, tok)) {
                ab_auth_count(st->auth, "admin_token", "denied");
                respond_page(req, 401, stats_console_login_html);
                return;
        }
        /* Hex keeps any token byte inside the cookie grammar. */
        c = cookie + snprintf(cookie, sizeof(cookie), COOKIE "=");
        for (i = 0; tok[i]; i++) {
                c += sprintf(c, "%02x", (unsigned char)tok[i]);
        }
        snprintf(c, sizeof(cookie) - (size_t)(c - cookie),
                 "; Path=/admin; Max-Age=%d; HttpOnly; SameSite=Strict%s",
                 SESSION_S, secure_attr(req));
        ab_auth_count(st->auth, "admin_token", "allowed");
        /* 303: the browser follows with a GET of the page. */
        ab_http_respond(req, 303, NULL, "", 0, hdrs);
}

void stats_console_logout(ab_http_req_t *req, void *opaque) {
        char cookie[160];
        const char *hdrs[] = {"Location", "/admin/console", "Set-Cookie", cookie,
                              "Cache-Control", "no-store", NULL};

        (void)opaque;
        if (strcmp(ab_http_req_method(req), "POST")) {
                ab_http_respond_not_allowed(req);
                return;
        }
        if (!same_origin(req)) {
                return;
        }
        snprintf(cookie, sizeof(cookie),
                 COOKIE "=; Path=/admin; Max-Age=0; HttpOnly; "
                        "SameSite=Strict%s",
                 secure_attr(req));
        ab_http_respond(req, 303, NULL, "", 0, hdrs);
}

/*
 * The proxy
 */

typedef struct job_s {
        stats_t *st;
        ab_http_req_t *req;
        char *url;
        struct curl_slist *hdrs;
        char *body;
        size_t len;
        int too_big;
} job_t;

static void job_free(job_t *j) {
        if (!j) {
                return;
        }
        free(j->url);
        curl_slist_free_all(j->hdrs);
        free(j->body);
        free(j);
}

/* The audit list's filters; anything else is dropped, not forwarded. */
static const char *const list_params[] = {"companyId", "name", "prefix",
                                          "source", "status", "since",
                                          "until", "limit", "cursor", NULL};
static const char *const event_params[] = {"status", NULL};

/* Maps the console path (after /admin/console/) to the upstream's base
 * URL and path. @returns the params allowed, or NULL when the path is
 * not one the console reads (404), with *basep NULL when the service it
 * names is not configured. */
static const char *const *upstream_path(stats_t *st, const char *sub,
                                        const char **basep, char *path,
                                        size_t path_size) {
        static const char *const none[] = {NULL};
        static const char ev[] = "audit/events/";
        const char *id, *end;
        char *esc;
        size_t len;
        int proof = 0;

        *basep = NULL;
        if (!strcmp(sub, "audit/readyz") || !strcmp(sub, "ingest/readyz") ||
            !strcmp(sub, "ingest/metrics") || !strcmp(sub, "sink/readyz")) {
                *basep = sub[0] == 'a'   ? st->conf->audit_url
                         : sub[0] == 's' ? st->conf->sink_url
                                         : st->conf->ingest_url;
                snprintf(path, path_size, "%s", strchr(sub, '/'));
                return none;
        }
        if (!strcmp(sub, "audit/events")) {
                *basep = st->conf->audit_url;
                snprintf(path, path_size, "/admin/events");
                return list_params;
        }
        if (strncmp(sub, ev, sizeof(ev) - 1)) {
                return NULL;
        }
        id  = sub + sizeof(ev) - 1;
        len = strlen(id);
        if (len > 6 && !strcmp(id + len - 6, "/proof")) {
                proof = 1;
                len -= 6;
        }
        end = memchr(id, '/', len);
        if (!len || len > ID_MAX || end) {
                return NULL;
        }
        /* The path arrived decoded: encode the id again for upstream. */
        if (!(esc = curl_easy_escape(NULL, id, (int)len))) {
                return NULL;
        }
        snprintf(path, path_size, "/admin/events/%s%s", esc,
                 proof ? "/proof" : "");
        curl_free(esc);
        *basep = st->conf->audit_url;
        return event_params;
}

static size_t on_body(char *p, size_t size, size_t n, void *opaque) {
        job_t *j = opaque;
        size_t add = size * n;
        char *nb;

        if (j->len + add > PROXY_BODY_MAX) {
                j->too_big = 1;
                return 0; /* aborts the transfer */
        }
        if (!(nb = realloc(j->body, j->len + add + 1))) {
                return 0;
        }
        j->body = nb;
        memcpy(j->body + j->len, p, add);
        j->len += add;
        j->body[j->len] = '\0';
        return add;
}

static void *proxy_run(void *arg) {
        job_t *j = arg;
        CURL *c;
        CURLcode rc;
        long status = 0;
        char *ct = NULL, ctype[128] = "application/json";
        stats_t *st = j->st;

        if (!(c = curl_easy_init())) {
                ab_http_respond_error(j->req, 500, "out of memory", NULL);
                goto done;
        }
        curl_easy_setopt(c, CURLOPT_URL, j->url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, j->hdrs);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, j);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)PROXY_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)PROXY_CONNECT_MS);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
                         (curl_off_t)PROXY_BODY_MAX);
        rc = curl_easy_perform(c);
        if (rc != CURLE_OK) {
                ab_warn("console", "upstream GET failed: %s",
                        curl_easy_strerror(rc));
                ab_http_respond_error(
                    j->req, 502,
                    j->too_big ? "upstream answer too large"
                               : "upstream unreachable",
                    json_string(curl_easy_strerror(rc)));
                goto done;
        }
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK &&
            ct && strlen(ct) < sizeof(ctype) && !strpbrk(ct, "\r\n")) {
                snprintf(ctype, sizeof(ctype), "%s", ct);
        }
        /* The upstream's own status (its 401/403/404 included) and body. */
        ab_http_respond(j->req, status >= 200 && status <= 599 ? (int)status
                                                                : 502,
                        ctype, j->body ? j->body : "", j->len, NULL);
done:
        curl_easy_cleanup(c);
        job_free(j);
        atomic_fetch_sub(&st->console_inflight, 1);
        return NULL;
}

/* Appends ?k=v&... of the allowed \p params present in \p req. */
static int add_query(ab_http_req_t *req, const char *const *params,
                     char *url, size_t url_size) {
        size_t of = strlen(url);
        const char *v;
        char *esc;
        int first = 1, n;

        for (; *params; params++) {
                if (!(v = ab_http_req_query(req, *params))) {
                        continue;
                }
                if (!(esc = curl_easy_escape(NULL, v, 0))) {
                        return -1;
                }
                n = snprintf(url + of, url_size - of, "%c%s=%s",
                             first ? '?' : '&', *params, esc);
                curl_free(esc);
                if (n < 0 || (size_t)n >= url_size - of) {
                        return -1;
                }
                of += (size_t)n;
                first = 0;
        }
        return 0;
}

/* The credential the caller was let in with, for the upstream's guard:
 * the cookie's token, or its own headers. */
static struct curl_slist *credential(stats_t *st, ab_http_req_t *req) {
        struct curl_slist *l = NULL, *n;
        char tok[TOKEN_MAX], line[TOKEN_MAX + 40];
        const char *v;
        int session = cookie_ok(st, req, tok, sizeof(tok));

        if (session) {
                snprintf(line, sizeof(line), "x-admin-token: %s", tok);
        } else if ((v = ab_http_req_header(req, "x-admin-token")) &&
                   strlen(v) < TOKEN_MAX) {
                snprintf(line, sizeof(line), "x-admin-token: %s", v);
        } else if ((v = ab_http_req_header(req, "Authorization")) &&
                   strlen(v) < TOKEN_MAX) {
                snprintf(line, sizeof(line), "Authorization: %s", v);
        } else {
                line[0] = '\0';
        }
        l = line[0] ? curl_slist_append(NULL, line) : NULL;
        v = ab_http_req_header(req, "x-ops");
        if (session || (v && !strcmp(v, "1"))) {
                if ((n = curl_slist_append(l, "x-ops: 1"))) {
                        l = n;
                }
        }
        if ((v = ab_http_req_header(req, "x-tenant")) && strlen(v) < 256) {
                snprintf(line, sizeof(line), "x-tenant: %s", v);
                if ((n = curl_slist_append(l, line))) {
                        l = n;
                }
        }
        /* Never a 100-continue round trip, never a compressed body. */
        if ((n = curl_slist_append(l, "Accept: application/json, text/plain"))) {
                l = n;
        }
        return l;
}

void stats_console_proxy(ab_http_req_t *req, void *opaque) {
        stats_t *st = opaque;
        static const char base_path[] = "/admin/console/";
        const char *const *params;
        const char *base, *sub = ab_http_req_path(req) + sizeof(base_path) - 1;
        char path[ID_MAX * 3 + 64], url[4096];
        pthread_attr_t attr;
        pthread_t tid;
        job_t *j;
        size_t blen;

        if (strcmp(ab_http_req_method(req), "GET")) {
                ab_http_respond_not_allowed(req);
                return;
        }
        if (!stats_console_guard(st, req)) {
                return;
        }
        if (!(params = upstream_path(st, sub, &base, path, sizeof(path)))) {
                ab_http_respond_error(req, 404, "no such admin resource",
                                      ab_http_text(ab_http_req_path(req)));
                return;
        }
        if (!base) {
                ab_http_respond_error(req, 404, "not configured",
                                      json_string(sub[0] == 'a'   ? "STATS_AUDIT_URL"
                                                  : sub[0] == 's' ? "STATS_SINK_URL"
                                                                  : "STATS_INGEST_URL"));
                return;
        }
        blen = strlen(base);
        while (blen && base[blen - 1] == '/') {
                blen--;
        }
        if ((size_t)snprintf(url, sizeof(url), "%.*s%s", (int)blen, base,
                             path) >= sizeof(url) ||
            add_query(req, params, url, sizeof(url))) {
                ab_http_respond_error(req, 414, "query too long", NULL);
                return;
        }
        if (atomic_fetch_add(&st->console_inflight, 1) >= PROXY_INFLIGHT_MAX) {
                atomic_fetch_sub(&st->console_inflight, 1);
                ab_http_respond_error(req, 503, "console proxy busy", NULL);
                return;
        }
        if (!(j = calloc(1, sizeof(*j))) || !(j->url = strdup(url))) {
                job_free(j);
                atomic_fetch_sub(&st->console_inflight, 1);
                ab_http_respond_error(req, 500, "out of memory", NULL);
                return;
        }
        j->st   = st;
        j->req  = req;
        j->hdrs = credential(st, req);
        if (ab_http_req_suspend(req) != AB_OK) {
                j->req = req;
                proxy_run(j); /* thread-per-connection: answer here */
                return;
        }
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&tid, &attr, proxy_run, j)) {
                pthread_attr_destroy(&attr);
                job_free(j);
                atomic_fetch_sub(&st->console_inflight, 1);
                ab_http_respond_error(req, 503, "console proxy busy", NULL);
                return;
        }
        pthread_attr_destroy(&attr);
}

void stats_console_drain(stats_t *st, int timeout_ms) {
        struct timespec ts = {0, 10 * 1000000};
        int waited;

        for (waited = 0; atomic_load(&st->console_inflight) > 0 &&
                         waited < timeout_ms;
             waited += 10) {
                nanosleep(&ts, NULL);
        }
}
