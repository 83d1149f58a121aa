/* aetherbus - Apache-2.0
 *
 * 0012-ingest-framing: what aetherbus-ingest does with a request body it
 * will not take, and with framing it must refuse itself. A body over
 * MAX_BODY_BYTES, by Content-Length (just over, 1 MiB over, 20 MiB over)
 * or chunked, always gets a 413 JSON answer the client can read, whether
 * it writes its whole body first or keeps writing while it reads. Framing
 * RFC 9110/9112 leave us to refuse is a 400 and a close: Content-Length
 * with Transfer-Encoding, two different Content-Lengths, a
 * Transfer-Encoding other than chunked, an encoded / or NUL in the path
 * (an encoded NUL in the query too), a NUL in a header value. The service
 * keeps serving after each. Runs against both brokers.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "ab_itest.h"
#include "ab_itest_raw.h"

#define PARTITIONS 1
#define WAIT_MS    30000
#define MAX_BODY   (1024 * 1024) /* MAX_BODY_BYTES' default */
#define MIB        (1024 * 1024)

static ab_itest_broker_t *b;
static ab_itest_proc_t *svc;
static int port;
static char prefix[64];
static int serial;

static void start(void) {
        svc = ab_itest_stack_start("aetherbus-ingest", PARTITIONS, NULL,
                                   WAIT_MS, &b, prefix, sizeof(prefix), &port);
}

static void teardown(void) {
        ab_itest_stack_stop(&svc, &b);
}

TestSuite(ingest_framing, .init = start, .fini = teardown, .timeout = 240);

/* A request: head, then \p body_len bytes of a JSON array of blanks, as
 * is (Content-Length) or in 64 KiB chunks. malloc'ed, length in *lenp. */
static char *big_request(size_t body_len, int chunked, size_t *lenp) {
        size_t cap = body_len + body_len / 1024 + 4096, of, n, i;
        char *r;

        r = malloc(cap);
        cr_assert_not_null(r);
        of = (size_t)snprintf(r, cap,
                              "POST /events/ingest HTTP/1.1\r\n"
                              "Host: 127.0.0.1\r\n"
                              "Content-Type: application/json\r\n");
        if (chunked) {
                of += (size_t)snprintf(r + of, cap - of,
                                       "Transfer-Encoding: chunked\r\n\r\n");
        } else {
                of += (size_t)snprintf(r + of, cap - of,
                                       "Content-Length: %zu\r\n\r\n",
                                       body_len);
        }
        for (i = 0; i < body_len; i += n) {
                n = body_len - i > 65536 ? 65536 : body_len - i;
                if (chunked) {
                        of += (size_t)snprintf(r + of, cap - of, "%zx\r\n", n);
                }
                memset(r + of, ' ', n);
                if (i == 0) {
                        r[of] = '[';
                }
                of += n;
                if (chunked) {
                        memcpy(r + of, "\r\n", 2);
                        of += 2;
                }
        }
        if (chunked) {
                of += (size_t)snprintf(r + of, cap - of, "0\r\n\r\n");
        }
        cr_assert_lt(of, cap);
        *lenp = of;
        return r;
}

/* A client that writes everything before it reads a byte (stops when the
 * server refuses more bytes for 3 s, or resets). */
static size_t write_all_first(int fd, const char *p, size_t len) {
        struct pollfd pfd;
        size_t sent = 0;
        ssize_t w;
        int64_t last = ab_itest_now_ms();

        while (sent < len && ab_itest_now_ms() - last < 3000) {
                pfd.fd     = fd;
                pfd.events = POLLOUT;
                if (poll(&pfd, 1, 50) <= 0) {
                        continue;
                }
                w = send(fd, p + sent, len - sent, MSG_NOSIGNAL);
                if (w > 0) {
                        sent += (size_t)w;
                        last = ab_itest_now_ms();
                } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                        break;
                }
        }
        return sent;
}

static void assert_413(const ab_itest_raw_t *res, const char *what) {
        json_t *doc;

        cr_assert(res->complete, "%s: no whole answer: %s", what, res->error);
        cr_assert_eq(res->status, 413, "%s: %d %s", what, res->status,
                     res->body);
        doc = json_loadb(res->body, res->body_len, 0, NULL);
        cr_assert_not_null(doc, "%s: body is not JSON: %s", what, res->body);
        cr_assert_str_eq(json_string_value(json_object_get(doc, "error")),
                         "payload too large", "%s: %s", what, res->body);
        json_decref(doc);
        cr_assert(res->closed, "%s: the connection stayed open", what);
}

/* The service answers health and takes a valid event afterwards. */
static void assert_still_serves(void) {
        ab_itest_http_t res;
        char url[128], body[512];

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", port);
        cr_assert_eq(ab_itest_http_get(url, &res), 200, "%s", res.error);
        ab_itest_http_clear(&res);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/events/ingest", port);
        snprintf(body, sizeof(body),
                 "{\"id\":\"after-%d\",\"name\":\"ProductViewed\","
                 "\"schemaVersion\":1,\"occurredAt\":"
                 "\"2026-02-11T20:10:00.000Z\",\"source\":\"storefront\","
                 "\"companyId\":\"c1\",\"payload\":{\"productId\":\"p1\"}}",
                 ++serial);
        cr_assert_eq(ab_itest_http_post_json(url, body, NULL, &res), 202,
                     "%ld %s", res.status, res.body[0] ? res.body : res.error);
        ab_itest_http_clear(&res);
}

static const struct {
        const char *what;
        size_t len;
        int chunked;
} over[] = {
    {"Content-Length 1 byte over", MAX_BODY + 1, 0},
    {"Content-Length 1 MiB over", MAX_BODY + MIB, 0},
    {"Content-Length 20 MiB over", MAX_BODY + 20 * MIB, 0},
    {"chunked 1 byte over", MAX_BODY + 1, 1},
    {"chunked 1 MiB over", MAX_BODY + MIB, 1},
    {"chunked 20 MiB over", MAX_BODY + 20 * MIB, 1},
};

/* The client keeps writing its body while it reads: it must get the
 * whole 413 whatever the size. */
Test(ingest_framing, oversized_body_is_a_readable_413_while_the_client_writes) {
        ab_itest_raw_t res;
        char *req;
        size_t len, i;
        int fd;

        for (i = 0; i < sizeof(over) / sizeof(over[0]); i++) {
                req = big_request(over[i].len, over[i].chunked, &len);
                fd  = ab_itest_raw_connect(port);
                cr_assert(fd >= 0);
                ab_itest_raw_exchange(fd, req, len, 0, 3000, 20000, 2000,
                                      &res);
                close(fd);
                free(req);
                assert_413(&res, over[i].what);
                ab_itest_raw_clear(&res);
                assert_still_serves();
        }
}

/* A client that writes everything before it reads (most simple clients
 * without Expect: 100-continue): within the bound the server reads and
 * drops (a few MiB), the 413 is still there to read. */
Test(ingest_framing, oversized_body_is_a_readable_413_after_the_client_wrote_it) {
        ab_itest_raw_t res;
        char *req;
        size_t len, sent, i;
        int fd;

        for (i = 0; i < sizeof(over) / sizeof(over[0]); i++) {
                if (over[i].len > MAX_BODY + 4 * MIB) {
                        continue; /* over the drain bound: see above */
                }
                req = big_request(over[i].len, over[i].chunked, &len);
                fd  = ab_itest_raw_connect(port);
                cr_assert(fd >= 0);
                sent = write_all_first(fd, req, len);
                cr_assert_eq(sent, len, "%s: the server took %zu of %zu "
                             "bytes", over[i].what, sent, len);
                ab_itest_raw_exchange(fd, NULL, 0, 0, 3000, 10000, 2000,
                                      &res);
                close(fd);
                free(req);
                assert_413(&res, over[i].what);
                ab_itest_raw_clear(&res);
        }
        assert_still_serves();
}

/* Expect: 100-continue: the 413 comes instead of the 100, before the
 * body. */
Test(ingest_framing, oversized_body_with_expect_is_refused_before_it) {
        ab_itest_raw_t res;
        char req[512];

        snprintf(req, sizeof(req),
                 "POST /events/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Content-Type: application/json\r\n"
                 "Expect: 100-continue\r\nContent-Length: %d\r\n\r\n",
                 MAX_BODY + 1);
        ab_itest_raw_requests(port, req, 0, &res);
        assert_413(&res, "Expect: 100-continue");
        ab_itest_raw_clear(&res);
        assert_still_serves();
}

/* A body at the limit is still taken (and refused as JSON, 400, not as
 * a size). */
Test(ingest_framing, body_at_the_limit_is_not_a_413) {
        ab_itest_raw_t res;
        char *req;
        size_t len;

        req = big_request(MAX_BODY, 0, &len);
        ab_itest_raw_request(port, req, len, 0, &res);
        free(req);
        cr_assert(res.complete, "%s", res.error);
        cr_assert_eq(res.status, 400, "%d %s", res.status, res.body);
        ab_itest_raw_clear(&res);
}

/* ---- framing refused ---- */

static void assert_400_closed(const ab_itest_raw_t *res, const char *what) {
        json_t *doc;

        cr_assert(res->complete, "%s: no whole answer: %s", what, res->error);
        cr_assert_eq(res->status, 400, "%s: %d %s", what, res->status,
                     res->body);
        doc = json_loadb(res->body, res->body_len, 0, NULL);
        cr_assert_not_null(doc, "%s: body is not JSON: %s", what, res->body);
        cr_assert(json_is_string(json_object_get(doc, "error")), "%s: %s",
                  what, res->body);
        json_decref(doc);
        cr_assert(res->closed, "%s: the connection stayed open", what);
}

#define EVT                                                                   \
        "{\"id\":\"smuggle\",\"name\":\"ProductViewed\",\"schemaVersion\":1," \
        "\"occurredAt\":\"2026-02-11T20:10:00Z\",\"source\":\"api\","         \
        "\"payload\":{}}"

/* Request bytes with an explicit length (they may hold NULs). */
typedef struct {
        const char *what;
        const char *req;
        size_t len;
} raw_case_t;

#define RAW(what, s) {what, s, sizeof(s) - 1}

static const raw_case_t refused[] = {
    RAW("Content-Length and Transfer-Encoding",
        "POST /events/ingest HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    RAW("Transfer-Encoding and Content-Length",
        "POST /events/ingest HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        "Content-Length: 3\r\n\r\n0\r\n\r\n"),
    RAW("Content-Length and Transfer-Encoding on a GET",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    RAW("two different Content-Lengths",
        "POST /events/ingest HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n"
        "Content-Length: 3\r\n\r\n{}x"),
    RAW("two different Content-Lengths, not adjacent",
        "POST /events/ingest HTTP/1.1\r\nContent-Length: 0\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"),
    RAW("Transfer-Encoding gzip",
        "POST /events/ingest HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: gzip\r\n\r\n"),
    RAW("Transfer-Encoding chunked, gzip",
        "POST /events/ingest HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\n"
        "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
    RAW("two Transfer-Encoding headers",
        "POST /events/ingest HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    RAW("%2F in the path", "GET /events%2Fschema HTTP/1.1\r\nHost: x\r\n\r\n"),
    RAW("%2f in the path", "GET /admin%2frbac HTTP/1.1\r\nHost: x\r\n\r\n"),
    RAW("%2F in a POST path",
        "POST /events%2Fingest HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"),
    RAW("%00 in the path", "GET /healthz%00.json HTTP/1.1\r\nHost: x\r\n\r\n"),
    RAW("%00 at the end of the path",
        "GET /events/schema%00 HTTP/1.1\r\nHost: x\r\n\r\n"),
    RAW("%00 in the query",
        "GET /events/schema?x=a%00b HTTP/1.1\r\nHost: x\r\n\r\n"),
    RAW("NUL inside a header value",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nx-tenant: a\0b\r\n"
        "Accept: */*\r\n\r\n"),
    RAW("NUL inside the last header value",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nx-tenant: a\0b\r\n\r\n"),
    RAW("NUL ending a header value",
        "GET /healthz HTTP/1.1\r\nx-tenant: a\0\r\nHost: x\r\n\r\n"),
    RAW("NUL inside the Host value",
        "GET /healthz HTTP/1.1\r\nHost: x\0y\r\nAccept: */*\r\n\r\n"),
    RAW("NUL in Content-Type of an event",
        "POST /events/ingest HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\0; x\r\nContent-Length: 2\r\n\r\n"
        "{}"),
};

Test(ingest_framing, framing_we_must_refuse_is_a_400_and_a_close) {
        ab_itest_raw_t res;
        size_t i;

        for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
                ab_itest_raw_request(port, refused[i].req, refused[i].len, 0,
                                     &res);
                assert_400_closed(&res, refused[i].what);
                ab_itest_raw_clear(&res);
        }
        assert_still_serves();
}

/* What is close to those but fine is not refused. */
static const struct {
        raw_case_t c;
        int want;
} allowed[] = {
    {RAW("the same Content-Length twice",
         "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
         "Content-Length: 0\r\nConnection: close\r\n\r\n"),
     200},
    {RAW("%2F in the query",
         "GET /healthz?x=a%2Fb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
         "\r\n"),
     200},
    {RAW("a double-encoded %2F is just text",
         "GET /events%252Fschema HTTP/1.1\r\nHost: x\r\n"
         "Connection: close\r\n\r\n"),
     404},
    {RAW("an empty header value",
         "GET /healthz HTTP/1.1\r\nHost: x\r\nx-tenant:\r\n"
         "Connection: close\r\n\r\n"),
     200},
    {RAW("blanks after a header value",
         "GET /healthz HTTP/1.1\r\nx-tenant: t \t \r\nHost: x  \r\n"
         "Connection: close\r\n\r\n"),
     200},
    {RAW("bare LF line ends",
         "GET /healthz HTTP/1.1\nHost: x\nx-tenant: t\nConnection: close\n\n"),
     200},
    {RAW("chunked alone",
         "POST /events/ingest HTTP/1.1\r\nHost: x\r\n"
         "Content-Type: application/json\r\nTransfer-Encoding: Chunked\r\n"
         "Connection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
     400 /* {} is not an event, but it was read */},
};

Test(ingest_framing, framing_that_is_fine_is_not_refused) {
        ab_itest_raw_t res;
        size_t i;

        for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
                ab_itest_raw_request(port, allowed[i].c.req, allowed[i].c.len,
                                     0, &res);
                cr_assert(res.complete, "%s: %s", allowed[i].c.what,
                          res.error);
                cr_assert_eq(res.status, allowed[i].want, "%s: %d %s",
                             allowed[i].c.what, res.status, res.body);
                ab_itest_raw_clear(&res);
        }
}

/* A smuggling attempt: the refused request's would-be body, a request of
 * its own, must never run on that connection. */
Test(ingest_framing, a_body_behind_refused_framing_is_not_a_request) {
        static const char req[] =
            "POST /events/ingest HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nContent-Length: 4\r\n"
            "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            "POST /events/ingest HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nContent-Length: 121\r\n\r\n" EVT;
        ab_itest_raw_t res;
        char topic[256];

        ab_itest_raw_request(port, req, sizeof(req) - 1, 0, &res);
        assert_400_closed(&res, "CL + TE with a request behind");
        ab_itest_raw_clear(&res);
        assert_still_serves(); /* one event, after-N */
        snprintf(topic, sizeof(topic), "%scommerce", prefix);
        cr_assert_eq(ab_itest_topic_wait_count(b, topic, 1, WAIT_MS), 1,
                     "the smuggled event reached %s", topic);
}
