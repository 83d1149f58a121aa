/* aetherbus - Apache-2.0
 *
 * aetherbus-bench-sinkd: the HTTP sink of the sink benchmark, in C so
 * that what is measured is aetherbus-sink, not the receiver. Answers
 * every POST 200 at once and counts the events in it (the "id" keys of the
 * ingest form: the benchmark's payloads have none of their own), the
 * requests and the bytes; GET /count answers
 *   events=N requests=R bytes=B first_ms=T0 last_ms=T1
 * (wall clock of the first and the last request), so the benchmark times
 * the flow from the first event to the last, not the group join.
 * With -L (bench/e2e) it also keeps, for every event whose payload carries
 * "sentMs" (aetherbus-bench-load -s), the ms from then to its arrival;
 * GET /latency answers  lat_n=N lat_p50_ms=.. lat_p99_ms=.. lat_max_ms=..
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

static atomic_uint_fast64_t events, requests, bytes;
static _Atomic int64_t first_ms, last_ms;
static volatile sig_atomic_t run = 1;

static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define KEYLEN 5 /* strlen("\"id\":") */

struct tail {
        char b[KEYLEN];
        size_t n;
        char *body; /* -L: the whole body, scanned once complete */
        size_t len, cap;
};

#define LAT_MAX (4 * 1024 * 1024)
static int lat_mode;
static int32_t *lat;
static atomic_size_t lat_n;

static int cmp_i32(const void *a, const void *b) {
        int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

        return x < y ? -1 : x > y;
}

/* Every "sentMs":N of a complete body: one latency sample each. */
static void lat_scan(const char *p, size_t n, int64_t now) {
        static const char key[] = "\"sentMs\":";
        const char *end = p + n, *q;
        size_t i;

        while (p < end && (q = memmem(p, (size_t)(end - p), key, sizeof(key) - 1))) {
                q += sizeof(key) - 1;
                if ((i = atomic_fetch_add(&lat_n, 1)) < LAT_MAX) {
                        lat[i] = (int32_t)(now - strtoll(q, NULL, 10));
                }
                p = q;
        }
}

static void lat_answer(char *buf, size_t size) {
        size_t n = atomic_load(&lat_n), i;
        int32_t *c;

        n = n < LAT_MAX ? n : LAT_MAX;
        if (!n || !(c = malloc(n * sizeof(*c)))) {
                snprintf(buf, size, "lat_n=0\n");
                return;
        }
        for (i = 0; i < n; i++) {
                c[i] = lat[i];
        }
        qsort(c, n, sizeof(*c), cmp_i32);
        snprintf(buf, size,
                 "lat_n=%zu lat_p50_ms=%d lat_p99_ms=%d lat_max_ms=%d\n", n,
                 c[n / 2], c[(size_t)((double)n * 0.99)], c[n - 1]);
        free(c);
}

static void completed(void *cls, struct MHD_Connection *conn, void **state,
                      enum MHD_RequestTerminationCode code) {
        (void)cls;
        (void)conn;
        (void)code;
        if (*state) {
                free(((struct tail *)*state)->body);
        }
        free(*state);
        *state = NULL;
}

static uint64_t count_ids(const char *p, size_t n) {
        static const char key[] = "\"id\":";
        const char *end = p + n, *q;
        uint64_t c = 0;

        while (p < end && (q = memmem(p, (size_t)(end - p), key, sizeof(key) - 1))) {
                c++;
                p = q + sizeof(key) - 1;
        }
        return c;
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status,
                              const char *text) {
        struct MHD_Response *r;
        enum MHD_Result ret;

        r = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                            MHD_RESPMEM_MUST_COPY);
        if (!r) {
                return MHD_NO;
        }
        ret = MHD_queue_response(conn, status, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn,
                               const char *url, const char *method,
                               const char *version, const char *data,
                               size_t *size, void **state) {
        char buf[256];
        int64_t t, zero = 0;

        (void)cls;
        (void)version;
        if (!strcmp(method, "GET") && !strcmp(url, "/latency")) {
                lat_answer(buf, sizeof(buf));
                return answer(conn, 200, buf);
        }
        if (!strcmp(method, "GET")) {
                snprintf(buf, sizeof(buf),
                         "events=%" PRIuFAST64 " requests=%" PRIuFAST64
                         " bytes=%" PRIuFAST64 " first_ms=%" PRId64
                         " last_ms=%" PRId64 "\n",
                         atomic_load(&events), atomic_load(&requests),
                         atomic_load(&bytes), atomic_load(&first_ms),
                         atomic_load(&last_ms));
                return answer(conn, 200, buf);
        }
        if (!*state) {
                /* headers only: the body follows; the state keeps the last
                 * bytes of a chunk, where a key may be cut in two */
                if (!(*state = calloc(1, sizeof(struct tail)))) {
                        return MHD_NO;
                }
                return MHD_YES;
        }
        if (*size) {
                struct tail *t = *state;
                char seam[2 * KEYLEN];
                size_t head = *size < KEYLEN - 1 ? *size : KEYLEN - 1;

                memcpy(seam, t->b, t->n);
                memcpy(seam + t->n, data, head);
                atomic_fetch_add(&events, count_ids(seam, t->n + head) +
                                              count_ids(data, *size));
                t->n = *size < KEYLEN - 1 ? *size : KEYLEN - 1;
                memcpy(t->b, data + *size - t->n, t->n);
                if (lat_mode) {
                        if (t->len + *size > t->cap) {
                                size_t cap = (t->len + *size) * 2;
                                char *nb   = realloc(t->body, cap);

                                if (!nb) {
                                        return MHD_NO;
                                }
                                t->body = nb;
                                t->cap  = cap;
                        }
                        memcpy(t->body + t->len, data, *size);
                        t->len += *size;
                }
                atomic_fetch_add(&bytes, *size);
                *size = 0;
                return MHD_YES;
        }
        t = now_ms();
        if (lat_mode && ((struct tail *)*state)->body) {
                lat_scan(((struct tail *)*state)->body, ((struct tail *)*state)->len, t);
                ((struct tail *)*state)->len = 0;
        }
        atomic_compare_exchange_strong(&first_ms, &zero, t);
        atomic_store(&last_ms, t);
        atomic_fetch_add(&requests, 1);
        return answer(conn, 200, "{}");
}

static void on_signal(int sig) {
        (void)sig;
        run = 0;
}

int main(int argc, char **argv) {
        struct MHD_Daemon *d;
        int port = 0, c;

        while ((c = getopt(argc, argv, "p:Lh")) != -1) {
                switch (c) {
                case 'p':
                        port = atoi(optarg);
                        break;
                case 'L':
                        lat_mode = 1;
                        break;
                default:
                        fprintf(stderr, "Usage: %s -p PORT [-L]\n", argv[0]);
                        return c == 'h' ? 0 : 2;
                }
        }
        if (port <= 0 || port > 65535) {
                fprintf(stderr, "%s: -p PORT is required\n", argv[0]);
                return 2;
        }
        if (lat_mode && !(lat = malloc(LAT_MAX * sizeof(*lat)))) {
                fprintf(stderr, "%s: out of memory\n", argv[0]);
                return 1;
        }
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
                             (uint16_t)port, NULL, NULL, handler, NULL,
                             MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                             MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                             MHD_OPTION_END);
        if (!d) {
                fprintf(stderr, "%s: cannot listen on %d\n", argv[0], port);
                return 1;
        }
        while (run) {
                pause();
        }
        MHD_stop_daemon(d);
        return 0;
}
