/* aetherbus - Apache-2.0
 *
 * 0014-ingest-stalled-uploads: uploads that announce a big body and stall
 * cannot make aetherbus-ingest hold memory for them. Without the event
 * token they get 401 from their headers, before a byte of the body is
 * read; with it, only HTTP_BODY_BUDGET_BYTES of bodies are held at once
 * (by Content-Length) and the rest get 503 with Retry-After from their
 * headers; the held ones send 90% of their body and stall.
 * While 300 of each are held, a well-behaved client is served every time
 * and ingest's RSS stays under RSS_BOUND_KB; afterwards it keeps serving
 * and gives the memory back. Runs against both brokers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ab_itest.h"
#include "ab_itest_raw.h"

#define WAIT_MS      30000
#define TOKEN        "stalled-upload-token"
#define STALLED      300
#define ANNOUNCED    1000000         /* Content-Length of each upload */
#define SENT         (900 * 1000)    /* what a held one sends, then stalls */
#define BUDGET       (8 * 1024 * 1024)
#define HELD_WANT    (BUDGET / ANNOUNCED) /* 8 fit in the budget */
#define RSS_BOUND_KB (80 * 1024)
/* Under ASan, its shadow memory and its quarantine of freed blocks are
 * RSS too: the figures are logged, not checked. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_CHECKED 0
#else
#define RSS_CHECKED 1
#endif

static ab_itest_broker_t *b;
static ab_itest_proc_t *svc;
static int port;
static char prefix[64];

static void start(void) {
        static const char *const env[] = {
            "EVENT_INGEST_TOKEN=" TOKEN, "HTTP_BODY_BUDGET_BYTES=8M",
            "MAX_BODY_BYTES=1M", "HTTP_MAX_CONNECTIONS=1000",
            "HTTP_MAX_CONNECTIONS_PER_IP=1000", "HTTP_BODY_TIMEOUT_MS=60s",
            "HTTP_THREADS=2", NULL};

        svc = ab_itest_stack_start("aetherbus-ingest", 1, env, WAIT_MS, &b,
                                   prefix, sizeof(prefix), &port);
}

/* A clean exit after all that: sanitizer runs report there too. */
static void stop_clean(void) {
        int st = ab_itest_proc_stop(svc, ab_itest_timeout(15000));

        if (st != 0) {
                ab_itest_proc_dump_log(svc);
        }
        cr_assert_eq(st, 0, "ingest exited with %d", st);
}

static void teardown(void) {
        ab_itest_stack_stop(&svc, &b);
}

TestSuite(ingest_stalled, .init = start, .fini = teardown, .timeout = 60);

/* One event with the token from 127.0.0.2. @returns the status. */
static int good_post(int n) {
        char body[512], req[1024];
        ab_itest_raw_t res;
        int fd, st, bl, rl;

        bl = snprintf(body, sizeof(body),
                      "{\"id\":\"good-%d-%d\",\"name\":\"ProductViewed\","
                      "\"schemaVersion\":1,"
                      "\"occurredAt\":\"2026-02-11T20:10:00.000Z\","
                      "\"source\":\"storefront\",\"companyId\":\"c1\","
                      "\"payload\":{\"p\":1}}",
                      (int)getpid(), n);
        rl = snprintf(req, sizeof(req),
                      "POST /events/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Content-Type: application/json\r\n"
                      "x-event-token: " TOKEN "\r\n"
                      "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                      bl, body);
        if ((fd = ab_itest_raw_connect_from("127.0.0.2", port)) < 0) {
                return 0;
        }
        ab_itest_raw_exchange(fd, req, (size_t)rl, 0, 2000, 10000, 0, &res);
        st = res.status;
        ab_itest_raw_clear(&res);
        close(fd);
        return st;
}

static int good_batch(int from, int n) {
        int i, ok = 0;

        for (i = 0; i < n; i++) {
                ok += good_post(from + i) == 202;
        }
        return ok;
}

/* The head of an upload of ANNOUNCED bytes, with the token or not. */
static int upload_head(char *out, size_t size, int token) {
        return snprintf(out, size,
                        "POST /events/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Content-Type: application/json\r\n%s"
                        "Content-Length: %d\r\n\r\n",
                        token ? "x-event-token: " TOKEN "\r\n" : "",
                        ANNOUNCED);
}

/* Writes \p n bytes on the non-blocking \p fd within 5 s.
 * @returns 0 or -1. */
static int send_all(int fd, const char *p, size_t n) {
        int64_t dl = ab_itest_deadline(5000);
        ssize_t w;

        while (n > 0) {
                if ((w = send(fd, p, n, MSG_NOSIGNAL)) > 0) {
                        p += w;
                        n -= (size_t)w;
                } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                        return -1;
                } else if (!ab_itest_tick(dl)) {
                        return -1;
                }
        }
        return 0;
}

/* Reads what answer came on \p fd within \p ms without writing anything.
 * @returns its status, 0 when none came. */
static int answer_of(int fd, int ms, char *ra, size_t ra_size) {
        ab_itest_raw_t res;
        int st;

        ab_itest_raw_exchange(fd, NULL, 0, 0, 0, ms, 0, &res);
        st = res.status;
        if (ra && ab_itest_raw_header(&res, "Retry-After", ra, ra_size)) {
                ra[0] = '\0';
        }
        ab_itest_raw_clear(&res);
        return st;
}

Test(ingest_stalled, uploads_without_the_token_get_401_before_their_body) {
        static int fds[STALLED];
        char head[512];
        long rss0, rss1;
        int i, hl, st, got401 = 0;

        rss0 = ab_itest_proc_rss_kb(svc);
        hl   = upload_head(head, sizeof(head), 0);
        for (i = 0; i < STALLED; i++) {
                fds[i] = ab_itest_raw_connect(port);
                cr_assert_geq(fds[i], 0, "connect: %s", strerror(errno));
                cr_assert_eq(send(fds[i], head, (size_t)hl, MSG_NOSIGNAL), hl);
        }
        /* No body byte sent: the answer comes from the headers alone. */
        for (i = 0; i < STALLED; i++) {
                if ((st = answer_of(fds[i], 3000, NULL, 0)) == 401) {
                        got401++;
                }
        }
        rss1 = ab_itest_proc_rss_kb(svc);
        cr_log_info("no token: %d of %d got 401 from their headers; ingest "
                    "RSS %ld -> %ld KiB",
                    got401, STALLED, rss0, rss1);
        cr_assert_eq(got401, STALLED, "%d of %d got 401", got401, STALLED);
        cr_assert(!RSS_CHECKED || rss1 < RSS_BOUND_KB, "RSS %ld KiB", rss1);
        cr_assert_eq(good_batch(0, 20), 20);
        for (i = 0; i < STALLED; i++) {
                close(fds[i]);
        }
        cr_assert_eq(good_batch(20, 5), 5);
        stop_clean();
}

Test(ingest_stalled, stalled_uploads_past_the_body_budget_get_503_and_memory_stays_bounded) {
        static int fds[STALLED], is_held[STALLED];
        static char chunk[SENT];
        char head[512], ra[32];
        long rss0, rss_held, rss_after;
        int i, hl, st, held = 0, busy = 0, other = 0, ok;
        int64_t dl;

        memset(chunk, ' ', sizeof(chunk));
        chunk[0] = '[';
        rss0     = ab_itest_proc_rss_kb(svc);
        hl       = upload_head(head, sizeof(head), 1);
        for (i = 0; i < STALLED; i++) {
                fds[i] = ab_itest_raw_connect(port);
                cr_assert_geq(fds[i], 0, "connect: %s", strerror(errno));
                cr_assert_eq(send(fds[i], head, (size_t)hl, MSG_NOSIGNAL), hl);
        }
        for (i = 0; i < STALLED; i++) {
                st = answer_of(fds[i], i < 2 * HELD_WANT ? 1000 : 200, ra,
                               sizeof(ra));
                if ((is_held[i] = st == 0)) {
                        /* 90% of the body, then nothing: stalled. */
                        cr_assert_eq(send_all(fds[i], chunk, sizeof(chunk)),
                                     0, "upload %d: the server stopped "
                                        "reading",
                                     i);
                        held++;
                } else if (st == 503 && ra[0]) {
                        busy++;
                } else {
                        other++;
                }
        }
        /* While they are held, the good client is served. */
        usleep(200 * 1000);
        for (i = 0; i < STALLED; i++) {
                cr_assert(!is_held[i] || !ab_itest_raw_wait_close(fds[i], 0),
                          "held upload %d closed", i);
        }
        ok       = good_batch(0, 20);
        rss_held = ab_itest_proc_rss_kb(svc);
        cr_log_info("with token: %d held, %d got 503 with Retry-After, %d "
                    "else; good client %d/20; ingest RSS %ld KiB before, "
                    "%ld KiB while held",
                    held, busy, other, ok, rss0, rss_held);
        cr_assert_eq(held, HELD_WANT, "%d uploads held, want %d", held,
                     HELD_WANT);
        cr_assert_eq(busy, STALLED - HELD_WANT, "%d got 503", busy);
        cr_assert_eq(ok, 20, "good client: %d of 20", ok);
        cr_assert(!RSS_CHECKED || rss_held < RSS_BOUND_KB,
                  "RSS %ld KiB while held", rss_held);
        /* And what it grew by is the budget's worth, with some slack. */
        cr_assert(!RSS_CHECKED || rss_held - rss0 < BUDGET / 1024 + 16 * 1024,
                  "RSS grew by %ld KiB", rss_held - rss0);

        /* The clients leave: the budget and the memory come back. */
        for (i = 0; i < STALLED; i++) {
                close(fds[i]);
        }
        cr_assert_eq(good_batch(20, 20), 20);
        for (dl = ab_itest_deadline(5000);
             (rss_after = ab_itest_proc_rss_kb(svc)) > rss0 + 16 * 1024 &&
             RSS_CHECKED &&
             ab_itest_tick(dl);) {
        }
        cr_log_info("after: ingest RSS %ld KiB", rss_after);
        cr_assert(!RSS_CHECKED || rss_after < rss0 + 16 * 1024,
                  "RSS %ld KiB, was %ld before", rss_after, rss0);
        /* The whole budget is free again: 8 whole uploads fit at once. */
        for (i = 0; i < HELD_WANT; i++) {
                fds[i] = ab_itest_raw_connect(port);
                cr_assert_eq(send(fds[i], head, (size_t)hl, MSG_NOSIGNAL), hl);
        }
        for (i = 0; i < HELD_WANT; i++) {
                cr_assert_eq(answer_of(fds[i], 300, NULL, 0), 0,
                             "upload %d refused with the budget free", i);
                close(fds[i]);
        }
        stop_clean();
}
