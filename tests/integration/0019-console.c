/* aetherbus - Apache-2.0
 *
 * 0019-console: the operator's console in a real browser. Real ingest,
 * stats (with STATS_AUDIT_URL and STATS_INGEST_URL) and audit on the
 * broker under test; Debian's headless chromium driven over its DevTools
 * protocol (--remote-debugging-pipe: NUL-framed JSON on fds 3 and 4, so
 * no websocket client is needed). The test signs in through the page's
 * own form, then reads the DOM: the chart has points for both posted
 * prefixes, the failures list shows each invalid event with its reason,
 * and a search (#q=<id>) finds a posted id with its inclusion proof
 * verified by the page (Web Crypto). Screenshots go to
 * AB_CONSOLE_SHOTS (default <build>/console-screenshots). Without the
 * credential the page and its data are 401/403.
 *
 * Skipped, saying so, only when no chromium binary exists
 * (scripts/deps.sh installs it).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "ab_itest.h"
#include "ab_time.h"

#define PARTITIONS 2
#define WAIT_MS 30000
#define ADMIN "console-admin-token"
#define ORIGIN "console.test/log"

static ab_itest_broker_t *b;
static ab_itest_proc_t *ingest, *audit, *stats;
static int iport, aport, sport;
static char prefix[64];

/* ------------------------------------------------------------------ */
/* A browser over the DevTools protocol                                */
/* ------------------------------------------------------------------ */

typedef struct browser_s {
        pid_t pid;
        int wfd, rfd;    /* our ends of the child's fds 3 and 4 */
        char *buf;       /* bytes read, not yet a whole message */
        size_t len, size;
        int next_id;
        char session[128];
} browser_t;

static browser_t *br;

static const char *chromium_path(void) {
        static const char *const paths[] = {"/usr/bin/chromium",
                                            "/usr/lib/chromium/chromium",
                                            "/usr/bin/chromium-browser", NULL};
        const char *env = getenv("AB_CHROMIUM");
        int i;

        if (env && *env) {
                return access(env, X_OK) == 0 ? env : NULL;
        }
        for (i = 0; paths[i]; i++) {
                if (access(paths[i], X_OK) == 0) {
                        return paths[i];
                }
        }
        return NULL;
}

static void teardown(void) {
        if (br) {
                kill(br->pid, SIGKILL);
                waitpid(br->pid, NULL, 0);
                close(br->wfd);
                close(br->rfd);
                free(br->buf);
                free(br);
                br = NULL;
        }
        ab_itest_proc_destroy(stats);
        ab_itest_proc_destroy(audit);
        stats = audit = NULL;
        ab_itest_stack_stop(&ingest, &b);
}

TestSuite(console, .fini = teardown, .timeout = 240);

static void cdp_write(const char *msg) {
        size_t len = strlen(msg) + 1, of = 0; /* with its NUL frame */
        ssize_t n;

        while (of < len) {
                n = write(br->wfd, msg + of, len - of);
                if (n < 0 && errno == EINTR) {
                        continue;
                }
                cr_assert_gt(n, 0, "write to chromium: %s", strerror(errno));
                of += (size_t)n;
        }
}

/* The next whole message, or NULL when none came by \p deadline. */
static json_t *cdp_read(int64_t deadline) {
        struct pollfd pfd;
        char *nul;
        json_t *msg;
        ssize_t n;
        int left;

        for (;;) {
                if (br->len && (nul = memchr(br->buf, '\0', br->len))) {
                        msg = json_loadb(br->buf, (size_t)(nul - br->buf), 0,
                                         NULL);
                        br->len -= (size_t)(nul - br->buf) + 1;
                        memmove(br->buf, nul + 1, br->len);
                        cr_assert(msg, "chromium sent something not JSON");
                        return msg;
                }
                left = (int)(deadline - ab_itest_now_ms());
                if (left <= 0) {
                        return NULL;
                }
                pfd.fd     = br->rfd;
                pfd.events = POLLIN;
                if (poll(&pfd, 1, left) <= 0) {
                        continue;
                }
                if (br->size - br->len < 65536) {
                        br->size = br->size * 2 + 65536;
                        cr_assert((br->buf = realloc(br->buf, br->size)));
                }
                n = read(br->rfd, br->buf + br->len, br->size - br->len);
                cr_assert_gt(n, 0, "chromium closed its pipe");
                br->len += (size_t)n;
        }
}

/* Sends \p method with \p params (stolen; NULL: none) to the page
 * session (or the browser when \p browser_level) and waits for its
 * answer. @returns the result (json_decref() it); aborts on an error. */
static json_t *cdp(const char *method, json_t *params, int browser_level) {
        int64_t deadline = ab_itest_deadline(WAIT_MS);
        json_t *req, *msg, *res;
        char *text;
        int id = ++br->next_id;

        req = json_pack("{s:i,s:s,s:o}", "id", id, "method", method, "params",
                        params ? params : json_object());
        if (!browser_level && br->session[0]) {
                json_object_set_new(req, "sessionId", json_string(br->session));
        }
        text = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        cdp_write(text);
        free(text);
        while ((msg = cdp_read(deadline))) {
                if (json_integer_value(json_object_get(msg, "id")) == id) {
                        break;
                }
                json_decref(msg); /* an event */
        }
        cr_assert(msg, "chromium never answered %s", method);
        if (json_object_get(msg, "error")) {
                text = json_dumps(json_object_get(msg, "error"), 0);
                cr_assert_fail("%s: %s", method, text);
        }
        res = json_incref(json_object_get(msg, "result"));
        json_decref(msg);
        return res;
}

static void browser_start(void) {
        const char *bin = chromium_path();
        char profile[600];
        int to_child[2], from_child[2];
        json_t *r;

        snprintf(profile, sizeof(profile), "%s/%schromium", ab_itest_tmpdir(),
                 prefix);
        cr_assert(bin);
        cr_assert((br = calloc(1, sizeof(*br))));
        cr_assert_eq(pipe(to_child), 0);
        cr_assert_eq(pipe(from_child), 0);
        br->pid = fork();
        cr_assert_geq(br->pid, 0);
        if (br->pid == 0) {
                char logpath[700], datadir[700];
                int in, out, log, fd;

                snprintf(logpath, sizeof(logpath), "%s.log", profile);
                snprintf(datadir, sizeof(datadir), "--user-data-dir=%s",
                         profile);
                /* fds 3 and 4 are the protocol: move the pipes there
                 * (by way of high numbers, whatever they were). */
                in  = fcntl(to_child[0], F_DUPFD, 100);
                out = fcntl(from_child[1], F_DUPFD, 100);
                dup2(in, 3);
                dup2(out, 4);
                if ((log = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >=
                    0) {
                        dup2(log, 1);
                        dup2(log, 2);
                }
                for (fd = 5; fd < 1024; fd++) {
                        close(fd);
                }
                /* Offline, no sandbox (tests may run as root), no
                 * first-run or background traffic. */
                execl(bin, bin, "--headless", "--no-sandbox", "--disable-gpu",
                      "--disable-dev-shm-usage", "--no-first-run",
                      "--no-default-browser-check", "--disable-extensions",
                      "--disable-background-networking",
                      "--disable-component-update", "--disable-sync",
                      "--disable-features=Translate,MediaRouter",
                      "--password-store=basic", "--use-mock-keychain",
                      datadir, "--remote-debugging-pipe",
                      "--window-size=1280,1600", (char *)NULL);
                _exit(127);
        }
        close(to_child[0]);
        close(from_child[1]);
        br->wfd = to_child[1];
        br->rfd = from_child[0];
        fcntl(br->wfd, F_SETFD, FD_CLOEXEC);
        fcntl(br->rfd, F_SETFD, FD_CLOEXEC);
        r = cdp("Target.createTarget", json_pack("{s:s}", "url", "about:blank"),
                1);
        const char *target = json_string_value(json_object_get(r, "targetId"));
        cr_assert(target);
        json_t *a = cdp("Target.attachToTarget",
                        json_pack("{s:s,s:b}", "targetId", target, "flatten", 1),
                        1);
        json_decref(r);
        snprintf(br->session, sizeof(br->session), "%s",
                 json_string_value(json_object_get(a, "sessionId")));
        json_decref(a);
        json_decref(cdp("Page.enable", NULL, 0));
        json_decref(cdp("Emulation.setDeviceMetricsOverride",
                        json_pack("{s:i,s:i,s:f,s:b}", "width", 1280, "height",
                                  1600, "deviceScaleFactor", 1.0, "mobile", 0),
                        0));
}

/* Evaluates \p expr in the page. @returns its value as a string ("" when
 * not a string; malloc'ed). */
static char *eval(const char *expr) {
        json_t *r = cdp("Runtime.evaluate",
                        json_pack("{s:s,s:b,s:b}", "expression", expr,
                                  "returnByValue", 1, "awaitPromise", 1),
                        0);
        const char *s =
            json_string_value(json_object_get(json_object_get(r, "result"),
                                              "value"));
        char *out = strdup(s ? s : "");

        json_decref(r);
        return out;
}

/* Polls \p expr (a JS expression giving a boolean) until it is true.
 * @returns 1, or 0 after \p timeout_ms. */
static int eval_until(const char *expr, int timeout_ms) {
        char js[4096], *v;
        int64_t dl = ab_itest_deadline(ab_itest_timeout(timeout_ms));
        int ok;

        snprintf(js, sizeof(js), "(function(){try{return (%s)?'1':'0'}catch(e){return '0'}})()",
                 expr);
        do {
                v  = eval(js);
                ok = !strcmp(v, "1");
                free(v);
                if (ok) {
                        return 1;
                }
                usleep(100 * 1000);
        } while (ab_itest_now_ms() < dl);
        return 0;
}

/* A real key press (not a synthetic click): what a keyboard user does. */
static void press_enter(void) {
        json_decref(cdp("Input.dispatchKeyEvent",
                        json_pack("{s:s,s:s,s:s,s:i,s:s}", "type", "keyDown",
                                  "key", "Enter", "code", "Enter",
                                  "windowsVirtualKeyCode", 13, "text", "\r"),
                        0));
        json_decref(cdp("Input.dispatchKeyEvent",
                        json_pack("{s:s,s:s,s:s,s:i}", "type", "keyUp", "key",
                                  "Enter", "code", "Enter",
                                  "windowsVirtualKeyCode", 13),
                        0));
}

/* Every form control has a label, and the text of the page's parts
 * meets WCAG AA contrast (4.5:1) against the background it sits on. */
static const char a11y_js[] =
    "(function(){"
    "var bad=[];"
    "document.querySelectorAll('input,select,textarea').forEach(function(i){"
    "if(!i.labels||!i.labels.length){bad.push('unlabelled #'+i.id)}});"
    "function rgb(s){var m=s.match(/[\\d.]+/g).map(Number);return m.length>3?m:m.concat([1])}"
    "function lum(c){var a=c.slice(0,3).map(function(v){v/=255;return v<=0.03928?v/12.92:Math.pow((v+0.055)/1.055,2.4)});"
    "return 0.2126*a[0]+0.7152*a[1]+0.0722*a[2]}"
    "function bg(e){for(;e;e=e.parentElement){var c=rgb(getComputedStyle(e).backgroundColor);if(c[3]>0.5){return c}}return [255,255,255,1]}"
    "document.querySelectorAll('h1,h2,th,td,label,.pill,.note,button,#status,.legend li,dd,dt').forEach(function(e){"
    "if(!e.textContent.trim()||!e.offsetParent&&e.tagName!=='BODY'){return}"
    "var f=lum(rgb(getComputedStyle(e).color)),b=lum(bg(e)),r=(Math.max(f,b)+0.05)/(Math.min(f,b)+0.05);"
    "if(r<4.5){bad.push(e.tagName+'.'+e.className+' '+r.toFixed(2)+' '+e.textContent.trim().slice(0,20))}});"
    "return bad.join(' | ')})()";

static void navigate(const char *url) {
        json_decref(cdp("Page.navigate", json_pack("{s:s}", "url", url), 0));
}

static void shots_dir(char *out, size_t size) {
        const char *env = getenv("AB_CONSOLE_SHOTS");

        if (env && *env) {
                snprintf(out, size, "%s", env);
        } else {
                snprintf(out, size, "%s/../console-screenshots", AB_BIN_DIR);
        }
        mkdir(out, 0755);
}

static void screenshot(const char *name) {
        char dir[600], path[700];
        json_t *r;
        const char *data;
        unsigned char *png;
        size_t len;
        int n;
        FILE *f;

        shots_dir(dir, sizeof(dir));
        r    = cdp("Page.captureScreenshot", json_pack("{s:s}", "format", "png"),
                   0);
        data = json_string_value(json_object_get(r, "data"));
        cr_assert(data);
        len = strlen(data);
        cr_assert((png = malloc(len)));
        n = EVP_DecodeBlock(png, (const unsigned char *)data, (int)len);
        cr_assert_gt(n, 8);
        /* EVP_DecodeBlock counts the padding as bytes: drop them. */
        while (len && data[len - 1] == '=') {
                len--;
                n--;
        }
        snprintf(path, sizeof(path), "%s/%s.png", dir, name);
        cr_assert((f = fopen(path, "wb")), "%s", path);
        cr_assert_eq(fwrite(png, 1, (size_t)n, f), (size_t)n);
        fclose(f);
        free(png);
        json_decref(r);
        fprintf(stderr, "console: screenshot %s\n", path);
}

/* ------------------------------------------------------------------ */
/* The services                                                        */
/* ------------------------------------------------------------------ */

static void start(void) {
        char db[512], key[512], env_db[600], env_key[600], env_audit[128],
            env_ingest[128];
        ab_itest_proc_t *kg;

        ingest = ab_itest_stack_start("aetherbus-ingest", PARTITIONS, NULL,
                                      WAIT_MS, &b, prefix, sizeof(prefix),
                                      &iport);
        snprintf(db, sizeof(db), "%s/%saudit.db", ab_itest_tmpdir(), prefix);
        snprintf(key, sizeof(key), "%s/%skey", ab_itest_tmpdir(), prefix);
        snprintf(env_db, sizeof(env_db), "AUDIT_DB_PATH=%s", db);
        snprintf(env_key, sizeof(env_key), "AUDIT_SIGNING_KEY=%s", key);
        kg = ab_itest_proc_start(
            "aetherbus-audit",
            (const char *const[]){"keygen", "--name", ORIGIN, "--out", key,
                                  NULL},
            NULL);
        cr_assert(kg);
        cr_assert_eq(ab_itest_proc_wait_exit(kg, WAIT_MS), 0, "keygen failed");
        ab_itest_proc_destroy(kg);
        audit = ab_itest_service_start(
            b, "aetherbus-audit", prefix,
            (const char *const[]){"ADMIN_TOKEN=" ADMIN, env_db, env_key,
                                  "AUDIT_ORIGIN=" ORIGIN,
                                  "AUDIT_CHECKPOINT_INTERVAL=300ms", NULL},
            &aport);
        snprintf(env_audit, sizeof(env_audit),
                 "STATS_AUDIT_URL=http://127.0.0.1:%d", aport);
        snprintf(env_ingest, sizeof(env_ingest),
                 "STATS_INGEST_URL=http://127.0.0.1:%d", iport);
        stats = ab_itest_service_start(
            b, "aetherbus-stats", prefix,
            (const char *const[]){"ADMIN_TOKEN=" ADMIN, env_audit, env_ingest,
                                  NULL},
            &sport);
        cr_assert_eq(ab_itest_http_wait_status(aport, "/readyz", 200, WAIT_MS),
                     200, "audit never became ready");
        cr_assert_eq(ab_itest_http_wait_status(sport, "/readyz", 200, WAIT_MS),
                     200, "stats never became ready");
}

static void post_one(const char *id, const char *name, const char *source,
                     const char *occurred, int expect) {
        char url[128], body[1024];
        ab_itest_http_t res;

        snprintf(body, sizeof(body),
                 "{\"id\":\"%s\",\"name\":\"%s\",\"schemaVersion\":1,"
                 "%s%s%s\"source\":\"%s\",\"companyId\":\"acme\","
                 "\"payload\":{\"n\":\"%s\"}}",
                 id, name, occurred ? "\"occurredAt\":\"" : "",
                 occurred ? occurred : "", occurred ? "\"," : "", source, id);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/events/ingest", iport);
        cr_assert_eq(ab_itest_http_post_json(url, body, NULL, &res), expect,
                     "%s: %s", id, res.body);
        ab_itest_http_clear(&res);
}

static long status_of(const char *path, const char *const *headers) {
        char url[512];
        ab_itest_http_t res;
        long st;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", sport, path);
        cr_assert_eq(ab_itest_http("GET", url, headers, NULL, 0, &res), 0,
                     "%s: %s", path, res.error);
        st = res.status;
        ab_itest_http_clear(&res);
        return st;
}

/* SIGTERM: stats must end cleanly (under AB_SANITIZE a leak or a
 * sanitizer report is a non-zero exit). */
static void stop_stats(void) {
        int rc = ab_itest_proc_stop(stats, ab_itest_timeout(10000));

        if (rc != 0) {
                ab_itest_proc_dump_log(stats);
        }
        cr_expect_eq(rc, 0, "stats exited with %d", rc);
        ab_itest_proc_destroy(stats);
        stats = NULL;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static long login(const char *token, const char *origin, char *cookie,
                  size_t cookie_size) {
        char url[128], body[256], host[64], org[128];
        const char *hdrs[] = {
            "Content-Type: application/x-www-form-urlencoded", host,
            origin ? org : NULL, NULL};
        ab_itest_http_t res;
        long st;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/admin/console/login",
                 sport);
        snprintf(host, sizeof(host), "Host: 127.0.0.1:%d", sport);
        snprintf(org, sizeof(org), "Origin: %s", origin ? origin : "");
        snprintf(body, sizeof(body), "token=%s", token);
        cr_assert_eq(ab_itest_http("POST", url, hdrs, body, strlen(body), &res),
                     0, "%s", res.error);
        st = res.status;
        if (cookie && ab_itest_http_header(&res, "Set-Cookie", cookie,
                                           cookie_size)) {
                cookie[0] = '\0';
        }
        ab_itest_http_clear(&res);
        return st;
}

/* The sign-in: a wrong token is the form again, another site's form is
 * refused, the right one is an HttpOnly SameSite=Strict cookie that
 * opens the page and its data (and nothing more: x-ops it implies, the
 * token it holds). */
static void login_checks(void) {
        char cookie[512], hdr[600], origin[64];
        const char *with[] = {hdr, NULL};

        cr_expect_eq(login("wrong", NULL, NULL, 0), 401);
        cr_expect_eq(login(ADMIN, "http://evil.example", NULL, 0), 403);
        snprintf(origin, sizeof(origin), "http://127.0.0.1:%d", sport);
        cr_assert_eq(login(ADMIN, origin, cookie, sizeof(cookie)), 303);
        cr_expect(strstr(cookie, "HttpOnly") && strstr(cookie, "SameSite=Strict") &&
                      strstr(cookie, "Path=/admin"),
                  "%s", cookie);
        cookie[strcspn(cookie, ";")] = '\0';
        snprintf(hdr, sizeof(hdr), "Cookie: %s", cookie);
        cr_expect_eq(status_of("/admin/console", with), 200);
        cr_expect_eq(status_of("/admin/events/stats", with), 200);
        cr_expect_eq(status_of("/admin/console/audit/events?limit=1", with), 200);
        /* Not configured here: said so, not an error page. */
        cr_expect_eq(status_of("/admin/console/sink/readyz", with), 404);
}

Test(console, refuses_without_the_admin_credential) {
        static const char *const paths[] = {
            "/admin/console", "/admin/events/stats",
            "/admin/console/audit/events?status=rejected",
            "/admin/console/audit/events/x/proof", "/admin/console/ingest/metrics",
            NULL};
        const char *wrong_cookie[] = {"Cookie: ab_admin=6e6f7065", "x-ops: 1",
                                      NULL};
        const char *no_ops[]       = {"x-admin-token: " ADMIN, NULL};
        const char *good[]         = {"x-admin-token: " ADMIN, "x-ops: 1", NULL};
        int i;

        start();
        for (i = 0; paths[i]; i++) {
                cr_expect_eq(status_of(paths[i], NULL), 401, "%s", paths[i]);
                cr_expect_eq(status_of(paths[i], wrong_cookie), 401, "%s",
                             paths[i]);
                /* The token without x-ops: the RBAC rule (enforce). */
                cr_expect_eq(status_of(paths[i], no_ops), 403, "%s", paths[i]);
        }
        cr_expect_eq(status_of("/admin/console", good), 200);
        login_checks();
        cr_expect_eq(status_of("/admin/console/audit/readyz", good), 200);
        /* Only the fixed read-only set is proxied. */
        cr_expect_eq(status_of("/admin/console/audit/admin/audit/consistency",
                               good),
                     404);
        stop_stats();
}

Test(console, shows_traffic_failures_and_a_verified_proof) {
        char occurred[40], url[256], js[1024], *v;
        static const char *const bad[] = {"bad-unknown-1", "bad-unknown-2",
                                          "bad-nodate-1"};
        int i;

        if (!chromium_path()) {
                fprintf(stderr, "SKIP: chromium not installed "
                                "(scripts/deps.sh installs it)\n");
                cr_skip_test("chromium not installed");
        }
        start();
        ab_time_format(ab_time_now_ms() - 1000, occurred, sizeof(occurred));
        for (i = 0; i < 6; i++) {
                char id[32];

                snprintf(id, sizeof(id), "con-%d", i);
                post_one(id, i < 4 ? "OrderCreated" : "EmailSent",
                         i < 4 ? "storefront" : "api", occurred, 202);
        }
        browser_start();

        /* Sign in through the page: the 401 is the form. */
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/admin/console", sport);
        navigate(url);
        cr_assert(eval_until("document.getElementById('token')", 15000),
                  "no sign-in form");
        free(eval("document.getElementById('token').value='" ADMIN "';"
                  "document.getElementById('login').submit();''"));
        cr_assert(eval_until("document.getElementById('chart')", 15000),
                  "the console did not open after signing in");

        /* Traffic: both prefixes drawn, with their counts. */
        cr_assert(eval_until(
                      "+document.querySelector('#chart g.series[data-prefix=commerce]').dataset.sum==4 &&"
                      "+document.querySelector('#chart g.series[data-prefix=messaging]').dataset.sum==2 &&"
                      "document.querySelectorAll('#chart g.series[data-prefix=commerce] rect.point').length>0 &&"
                      "document.querySelectorAll('#chart g.series[data-prefix=messaging] rect.point').length>0",
                      20000),
                  "chart: %s",
                  eval("JSON.stringify([...document.querySelectorAll('#chart g.series')].map(g=>g.dataset))"));
        cr_assert(eval_until("document.querySelector('#health-rows tr[data-what=audit] .ok') && "
                             "document.querySelector('#health-rows tr[data-what=ingest] .ok')",
                             10000),
                  "health: %s",
                  eval("document.getElementById('health-rows').innerText"));
        screenshot("console-light");

        /* Failures: two unknown names and one without occurredAt. */
        post_one(bad[0], "NoSuchEvent", "api", occurred, 400);
        post_one(bad[1], "NoSuchEvent", "api", occurred, 400);
        post_one(bad[2], "OrderCreated", "storefront", NULL, 400);
        ab_itest_produce_deadletter(b, prefix, "con-1", "OrderCreated", "storefront",
                                    "acme", occurred);
        for (i = 0; i < 3; i++) {
                snprintf(js, sizeof(js),
                         "(function(){var r=document.querySelector('#failure-rows tr.failure[data-id=\"%s\"]');"
                         "return r && r.dataset.status==='rejected' && "
                         "r.querySelector('.reason').textContent.indexOf('%s')>=0})()",
                         bad[i], i < 2 ? "NoSuchEvent" : "occurredAt");
                cr_assert(eval_until(js, 20000), "failure %s: %s", bad[i],
                          eval("document.getElementById('failure-rows').innerText"));
        }
        cr_assert(eval_until("(function(){var r=document.querySelector('#failure-rows tr.failure[data-id=\"con-1\"]');"
                             "return r && r.dataset.status==='deadletter' && "
                             "r.querySelector('.reason').textContent.indexOf('the sink answered 400')>=0})()",
                             20000),
                  "dead letter: %s",
                  eval("document.getElementById('failure-rows').innerText"));
        cr_assert(eval_until("+document.getElementById('t-failures').textContent>=4 && "
                             "document.querySelector('#health-rows tr[data-what^=dead] .pill').textContent==='1'",
                             20000),
                  "failures %s, health: %s",
                  eval("document.getElementById('t-failures').textContent"),
                  eval("document.getElementById('health-rows').innerText"));
        /* The original opens from the list. */
        screenshot("console-failures");
        /* With the keyboard: focus the row's button, press Enter. */
        free(eval("document.querySelector('#failure-rows button[data-id=\"bad-nodate-1\"]').focus();''"));
        press_enter();
        cr_assert(eval_until("document.getElementById('dlg').open && "
                             "JSON.parse(document.getElementById('dlg-body').textContent).id==='bad-nodate-1'",
                             10000));
        screenshot("console-original");
        free(eval("document.getElementById('dlg').close();''"));

        /* Find an event: #q=<id> prefills the search and runs it. */
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/admin/console#q=con-4",
                 sport);
        navigate("about:blank");
        navigate(url);
        cr_assert(eval_until("document.querySelector('#find-out .event[data-id=\"con-4\"] [data-k=proof]')"
                             ".dataset.verified==='true'",
                             20000),
                  "proof: %s",
                  (v = eval("document.getElementById('find-out').innerText")));
        v = eval("document.querySelector('#find-out [data-k=topic]').textContent");
        cr_expect(strstr(v, "messaging") != NULL, "topic %s", v);
        free(v);
        v = eval("document.querySelector('#find-out [data-k=offset]').textContent");
        cr_expect(*v >= '0' && *v <= '9', "offset %s", v);
        free(v);
        v = eval("document.querySelector('#find-out [data-k=proof]').textContent");
        cr_expect(strstr(v, "hashed here") && (strstr(v, "checkpoint " ORIGIN) != NULL ||
                      strstr(v, "current root") != NULL),
                  "proof text %s", v);
        free(v);
        cr_assert_eq(0, 0);
        v = eval(a11y_js);
        cr_expect_str_empty(v, "accessibility: %s", v);
        free(v);
        screenshot("console-search");

        /* A link to another event on the open page (hashchange): the
         * dead-lettered one says the sink gave up. */
        free(eval("location.hash='#q=con-1';''"));
        cr_assert(eval_until("document.querySelector('#find-out .event[data-id=\"con-1\"] [data-k=sink]')"
                             ".textContent.indexOf('gave up')===0 && "
                             "document.querySelector('#find-out .event[data-id=\"con-1\"] [data-k=proof]')"
                             ".dataset.verified==='true'",
                             20000),
                  "con-1: %s", eval("document.getElementById('find-out').innerText"));

        /* A phone: one column, nothing wider than the screen. */
        json_decref(cdp("Emulation.setDeviceMetricsOverride",
                        json_pack("{s:i,s:i,s:f,s:b}", "width", 390, "height",
                                  1600, "deviceScaleFactor", 1.0, "mobile", 1),
                        0));
        cr_assert(eval_until("document.documentElement.scrollWidth<=392", 5000),
                  "wider than a phone: %s",
                  eval("String(document.documentElement.scrollWidth)+' '+"
                       "[...document.querySelectorAll('body *')].filter(e=>e.getBoundingClientRect().right>391)"
                       ".slice(-3).map(e=>e.tagName+'.'+e.className+':'+e.textContent.slice(0,40)).join(' | ')"));
        screenshot("console-phone");

        /* Dark mode keeps the contrast too. */
        json_decref(cdp("Emulation.setEmulatedMedia",
                        json_pack("{s:[{s:s,s:s}]}", "features", "name",
                                  "prefers-color-scheme", "value", "dark"),
                        0));
        v = eval(a11y_js);
        cr_expect_str_empty(v, "accessibility (dark): %s", v);
        free(v);
        screenshot("console-phone-dark");
        stop_stats();
}
