/* aetherbus - Apache-2.0
 *
 * 0013-ingest-slowloris: connections that trickle their headers cannot
 * lock aetherbus-ingest's clients out. Each one is closed at the header
 * deadline (HTTP_HEADER_TIMEOUT_MS, 2 s here) however often it sends a
 * line; one address holds at most HTTP_MAX_CONNECTIONS_PER_IP of them; at
 * HTTP_MAX_CONNECTIONS a new connection takes the place of the one that
 * has waited longest for its headers, so slow clients from many addresses
 * reconnecting as fast as they are cut do not keep the slots; and when
 * every connection has a request under way (stalled bodies, cut at
 * HTTP_BODY_TIMEOUT_MS) a new one is closed at once instead of waiting in
 * the listen backlog. Meanwhile a well-behaved client from
 * another address (127.0.0.2) is served every time, and the service keeps
 * serving afterwards. Scaled down from the 1,100 connections to
 * what a CI machine runs in seconds. Runs against both brokers.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ab_itest.h"
#include "ab_itest_raw.h"

#define WAIT_MS    30000
#define HEADER_MS  2000
#define TRICKLE_MS 500
#define SLOTS_MAX  256

static ab_itest_broker_t *b;
static ab_itest_proc_t *svc;
static int port;
static char prefix[64];

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

TestSuite(ingest_slowloris, .fini = teardown, .timeout = 60);

static void start(const char *max_conns, const char *per_ip) {
        char a[64], c[64];
        const char *env[] = {a, c, "HTTP_HEADER_TIMEOUT_MS=2s",
                             "HTTP_BODY_TIMEOUT_MS=2s", "HTTP_TIMEOUT_S=30",
                             "HTTP_THREADS=2", NULL};

        snprintf(a, sizeof(a), "HTTP_MAX_CONNECTIONS=%s", max_conns);
        snprintf(c, sizeof(c), "HTTP_MAX_CONNECTIONS_PER_IP=%s", per_ip);
        svc = ab_itest_stack_start("aetherbus-ingest", 1, env, WAIT_MS, &b,
                                   prefix, sizeof(prefix), &port);
}

/* One event from a well-behaved client at \p src on a fresh connection.
 * @returns the status (0: no answer; the connection was refused). */
static int good_post(const char *src, int n) {
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
                      "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                      bl, body);
        if ((fd = ab_itest_raw_connect_from(src, port)) < 0) {
                return 0;
        }
        ab_itest_raw_exchange(fd, req, (size_t)rl, 0, 2000, 10000, 0, &res);
        st = res.status;
        ab_itest_raw_clear(&res);
        close(fd);
        return st;
}

/* A slow client: the request line and Host, then a header line every
 * TRICKLE_MS, never the blank line. */
struct slow {
        int fd;       /* -1: closed */
        int64_t t0;   /* connected, ms */
        int64_t next; /* next line due */
        int lines;
};

static int slow_open(struct slow *s, const char *src) {
        static const char head[] =
            "POST /events/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\n";

        s->fd    = ab_itest_raw_connect_from(src, port);
        s->t0    = ab_itest_now_ms();
        s->next  = s->t0 + TRICKLE_MS;
        s->lines = 0;
        if (s->fd < 0) {
                return -1;
        }
        (void)!send(s->fd, head, sizeof(head) - 1, MSG_NOSIGNAL);
        return 0;
}

/* Sends the lines due; @returns the lifetime in ms when the server
 * closed it, else -1. */
static int64_t slow_step(struct slow *s) {
        char line[64];
        int64_t now = ab_itest_now_ms(), life;

        if (s->fd < 0) {
                return -1;
        }
        if (now >= s->next) {
                snprintf(line, sizeof(line), "X-Slow-%d: y\r\n", s->lines++);
                (void)!send(s->fd, line, strlen(line), MSG_NOSIGNAL);
                s->next = now + TRICKLE_MS;
        }
        if (!ab_itest_raw_wait_close(s->fd, 0)) {
                return -1;
        }
        life = ab_itest_now_ms() - s->t0;
        close(s->fd);
        s->fd   = -1;
        s->next = ab_itest_now_ms() + TRICKLE_MS; /* reconnect then */
        return life;
}

static void slow_close_all(struct slow *s, int n) {
        int i;

        for (i = 0; i < n; i++) {
                if (s[i].fd >= 0) {
                        close(s[i].fd);
                        s[i].fd = -1;
                }
        }
}

struct good {
        atomic_int stop;
        int sent;
        int ok;
        int other[8]; /* first statuses that were not 202 */
};

static void *good_main(void *arg) {
        struct good *g = arg;
        int st;

        /* 20 requests spread over the attack (one every 250 ms). */
        for (g->sent = 0; g->sent < 20; g->sent++) {
                st = good_post("127.0.0.2", g->sent);
                if (st == 202) {
                        g->ok++;
                } else if (g->sent - g->ok <= 8) {
                        g->other[g->sent - g->ok - 1] = st;
                }
                usleep(250 * 1000);
        }
        return NULL;
}

static int metric_at_least(const char *series, long want) {
        char url[256];
        ab_itest_http_t res;
        const char *p, *q;
        long v = -1;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
        ab_itest_http_get(url, &res);
        /* The sample line, not the # HELP line naming the same. */
        for (p = res.body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
                if (*p != '#' && (q = strstr(p, series)) &&
                    (!strchr(p, '\n') || q < strchr(p, '\n'))) {
                        v = strtol(q + strlen(series), NULL, 10);
                        break;
                }
        }
        ab_itest_http_clear(&res);
        return v >= want;
}

Test(ingest_slowloris, slow_headers_are_cut_at_the_deadline_and_a_good_client_is_served) {
        static struct slow s[SLOTS_MAX];
        struct good g;
        pthread_t t;
        int64_t life, end, longest = 0, shortest = INT64_MAX;
        int i, held, refused = 0, at_deadline = 0, attempts = 130;

        /* Room for 150: one address holds 100 of them at most. */
        start("150", "100");
        for (i = 0; i < attempts; i++) {
                cr_assert_eq(slow_open(&s[i], "127.0.0.1"), 0,
                             "connect: %s", strerror(errno));
        }
        usleep(300 * 1000);
        for (i = 0, held = 0; i < attempts; i++) {
                if (ab_itest_raw_wait_close(s[i].fd, 0)) {
                        close(s[i].fd);
                        s[i].fd = -1;
                        refused++;
                } else {
                        held++;
                }
        }
        cr_assert_eq(held, 100, "%d slow connections held, want 100", held);
        cr_assert_eq(refused, 30, "%d refused over the per-address cap",
                     refused);

        memset(&g, 0, sizeof(g));
        cr_assert_eq(pthread_create(&t, NULL, good_main, &g), 0);
        /* The attacker keeps trickling, and reconnects whatever is cut,
         * for as long as the good client runs (about 5 s). */
        end = ab_itest_now_ms() + 6000;
        while (ab_itest_now_ms() < end) {
                for (i = 0; i < attempts; i++) {
                        if (s[i].fd < 0) {
                                if (ab_itest_now_ms() >= s[i].next) {
                                        slow_open(&s[i], "127.0.0.1");
                                }
                                continue;
                        }
                        if ((life = slow_step(&s[i])) < 0) {
                                continue;
                        }
                        if (life < 1000) {
                                refused++; /* over the cap again */
                                continue;
                        }
                        at_deadline++;
                        longest  = life > longest ? life : longest;
                        shortest = life < shortest ? life : shortest;
                }
                usleep(10 * 1000);
        }
        pthread_join(t, NULL);
        slow_close_all(s, attempts);
        cr_log_info("slowloris: %d cut at the deadline (%lld..%lld ms "
                    "after connecting), %d refused; good client %d/%d",
                    at_deadline, (long long)shortest, (long long)longest,
                    refused, g.ok, g.sent);
        cr_assert_eq(g.ok, 20, "good client: %d of %d got 202 (then %d %d)",
                     g.ok, g.sent, g.other[0], g.other[1]);
        /* In 6 s a held one is cut twice, less when a reconnect lost its
         * slot to one that was over the cap. */
        cr_assert_geq(at_deadline, 150, "only %d cut at the deadline",
                      at_deadline);
        cr_assert_geq(shortest, HEADER_MS - 100, "cut early: %lld ms",
                      (long long)shortest);
        cr_assert_leq(longest, HEADER_MS + 1000, "cut late: %lld ms",
                      (long long)longest);
        cr_assert(metric_at_least(
                      "http_connections_timed_out_total{phase=\"headers\"} ",
                      150));
        cr_assert(metric_at_least(
                      "http_connections_refused_total{reason=\"per_ip\"} ",
                      30));
        /* Afterwards, the attacker's own address is served too. */
        usleep(300 * 1000);
        for (i = 0; i < 5; i++) {
                cr_assert_eq(good_post("127.0.0.1", 100 + i), 202);
        }
        stop_clean();
}

Test(ingest_slowloris, over_the_connection_limit_a_connection_is_closed_at_once) {
        static const char stalled[] =
            "POST /events/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[";
        static int fds[60];
        char src[32];
        int64_t t0;
        int i, fd, refused = 0;

        start("60", "1000");
        /* 60 stalled uploads, from 20 addresses, fill every slot with a
         * request under way: nothing to make room with. */
        for (i = 0; i < 60; i++) {
                snprintf(src, sizeof(src), "127.0.1.%d", 1 + i % 20);
                fds[i] = ab_itest_raw_connect_from(src, port);
                cr_assert_geq(fds[i], 0);
                cr_assert_eq(send(fds[i], stalled, sizeof(stalled) - 1,
                                  MSG_NOSIGNAL),
                             (ssize_t)sizeof(stalled) - 1);
        }
        usleep(300 * 1000);
        for (i = 0; i < 60; i++) {
                cr_assert(!ab_itest_raw_wait_close(fds[i], 0),
                          "upload %d refused under the limit", i);
        }
        /* 20 more: each closed at once, none left waiting. */
        for (i = 0; i < 20; i++) {
                t0 = ab_itest_now_ms();
                fd = ab_itest_raw_connect_from("127.0.0.3", port);
                cr_assert_geq(fd, 0);
                (void)!send(fd, "GET /healthz HTTP/1.1\r\n", 23,
                            MSG_NOSIGNAL);
                if (ab_itest_raw_wait_close(fd, 1000) &&
                    ab_itest_now_ms() - t0 < 1000) {
                        refused++;
                }
                close(fd);
        }
        cr_assert_eq(refused, 20, "%d of 20 over the limit closed at once",
                     refused);
        /* A good client is refused too, but at once: it can retry. */
        t0 = ab_itest_now_ms();
        cr_assert_eq(good_post("127.0.0.2", 0), 0);
        cr_assert_lt(ab_itest_now_ms() - t0, 1000, "refusal hung");
        /* The body deadline (2 s) frees the slots; then it is served. */
        for (i = 0; i < 60; i++) {
                cr_assert(ab_itest_raw_wait_close(fds[i], 3000),
                          "stalled upload %d kept past the body deadline",
                          i);
                close(fds[i]);
        }
        for (i = 0; i < 5; i++) {
                cr_assert_eq(good_post("127.0.0.2", 1 + i), 202);
        }
        cr_assert(metric_at_least(
                      "http_connections_refused_total{reason=\"limit\"} ",
                      21));
        cr_assert(metric_at_least(
                      "http_connections_timed_out_total{phase=\"body\"} ",
                      60));
        stop_clean();
}

Test(ingest_slowloris, slow_clients_from_many_addresses_give_their_places_to_new_ones) {
        static struct slow s[SLOTS_MAX];
        struct good g;
        pthread_t t;
        char src[32];
        int64_t end, life;
        int i, n = 100, cut = 0;

        /* 100 slow clients from 100 addresses, 60 slots, none over its
         * address's cap: refusing would leave the good client out. */
        start("60", "64");
        for (i = 0; i < n; i++) {
                snprintf(src, sizeof(src), "127.0.2.%d", 1 + i);
                cr_assert_eq(slow_open(&s[i], src), 0);
        }
        memset(&g, 0, sizeof(g));
        cr_assert_eq(pthread_create(&t, NULL, good_main, &g), 0);
        /* They reconnect at once whenever cut, for about 5 s. */
        end = ab_itest_now_ms() + 5500;
        while (ab_itest_now_ms() < end) {
                for (i = 0; i < n; i++) {
                        if (s[i].fd < 0) {
                                snprintf(src, sizeof(src), "127.0.2.%d",
                                         1 + i);
                                slow_open(&s[i], src);
                                continue;
                        }
                        if ((life = slow_step(&s[i])) >= 0) {
                                cut++;
                        }
                }
                usleep(5 * 1000);
        }
        pthread_join(t, NULL);
        slow_close_all(s, n);
        cr_log_info("100 slow clients from 100 addresses on 60 slots: cut "
                    "%d times; good client %d/%d",
                    cut, g.ok, g.sent);
        cr_assert_eq(g.ok, 20, "good client: %d of %d got 202 (then %d %d)",
                     g.ok, g.sent, g.other[0], g.other[1]);
        cr_assert(metric_at_least("http_connections_evicted_total ", 20));
        stop_clean();
}

Test(ingest_slowloris, one_address_holds_at_most_its_cap) {
        static struct slow s[SLOTS_MAX];
        int i, refused = 0;

        start("200", "10");
        for (i = 0; i < 15; i++) {
                cr_assert_eq(slow_open(&s[i], "127.0.0.1"), 0);
                usleep(20 * 1000); /* in order: the first 10 get in */
        }
        usleep(300 * 1000);
        for (i = 0; i < 15; i++) {
                if (ab_itest_raw_wait_close(s[i].fd, 0)) {
                        cr_assert_geq(i, 10, "connection %d refused", i);
                        refused++;
                }
        }
        cr_assert_eq(refused, 5, "%d of the 5 over the cap refused",
                     refused);
        /* Another address is not held back by them. */
        for (i = 0; i < 5; i++) {
                cr_assert_eq(good_post("127.0.0.2", i), 202);
        }
        slow_close_all(s, 15);
        usleep(300 * 1000);
        cr_assert_eq(good_post("127.0.0.1", 10), 202);
        stop_clean();
}
