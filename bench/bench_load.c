/* aetherbus - Apache-2.0
 *
 * aetherbus-bench-load: a small open-loop HTTP load generator for the
 * latency-at-a-given-rate scenario of bench/ingest (wrk cannot limit its
 * rate, and wrk2 is not packaged here). Request i is due at t0 + i/rate;
 * it goes out on the first idle keep-alive connection, and its latency is
 * measured from when it was due, not from when it was sent, so a stalled
 * server is charged for the queueing it causes (no coordinated omission,
 * like wrk2). One thread, epoll, one request in flight per connection.
 * Bodies are the benchmark event (ingest form) with a unique id each.
 * Prints one machine-readable line:
 *   requests=N ok2xx=N non2xx=N errors=N late=N seconds=S rps=R
 *   p50_ms=.. p90_ms=.. p99_ms=.. p999_ms=.. max_ms=..
 * late counts requests still waiting for a connection at the end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define EVENT_FMT                                                            \
        "{\"id\":\"L%u-%09lu-%03d\",\"name\":\"ProductViewed\","             \
        "\"schemaVersion\":1,\"occurredAt\":\"2026-02-11T20:10:00.000Z\","   \
        "\"source\":\"storefront\",\"companyId\":\"c_%d\",\"subjectId\":"    \
        "\"p1\",\"payload\":{\"productId\":\"p1\",\"sku\":\"SKU-001\","      \
        "\"referrer\":\"search\"}}"

/* The same with the wall-clock ms the request was built at, for
 * bench/e2e: a consumer of the event computes its latency from it. */
#define EVENT_FMT_STAMPED                                                    \
        "{\"id\":\"L%u-%09lu-%03d\",\"name\":\"ProductViewed\","             \
        "\"schemaVersion\":1,\"occurredAt\":\"2026-02-11T20:10:00.000Z\","   \
        "\"source\":\"storefront\",\"companyId\":\"c_%d\",\"subjectId\":"    \
        "\"p1\",\"payload\":{\"productId\":\"p1\",\"sku\":\"SKU-001\","      \
        "\"referrer\":\"search\",\"sentMs\":%lld}}"

static int stamp; /* -s: EVENT_FMT_STAMPED */

static long long wall_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct conn_s {
        int fd;
        int busy;
        int64_t due_ns; /* when the request in flight was due */
        char *out;
        size_t out_len, out_of;
        char in[65536];
        size_t in_len;
} conn_t;

static int64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

static int usage(const char *argv0, int exitcode, const char *reason) {
        FILE *out = exitcode ? stderr : stdout;

        if (reason) {
                fprintf(out, "%s: %s\n\n", argv0, reason);
        }
        fprintf(out,
                "Usage: %s -a HOST:PORT -r RATE [options]\n"
                "Open-loop load at a fixed request rate; latency from when "
                "each request was due.\n\n"
                "  -a, --addr HOST:PORT  IPv4 server address (required)\n"
                "  -r, --rate N          requests per second (required)\n"
                "  -c, --connections N   keep-alive connections (default 64)\n"
                "  -d, --duration S      seconds (default 10)\n"
                "  -e, --events N        events per request (default 1)\n"
                "  -p, --path PATH       default /events/ingest\n"
                "  -s, --stamp           payload carries sentMs (wall clock)\n"
                "  -h, --help            this text\n",
                argv0);
        return exitcode;
}

static int conn_open(conn_t *c, const struct sockaddr_in *sin, int ep) {
        struct epoll_event ev;
        int one = 1;

        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (c->fd < 0 ||
            connect(c->fd, (const struct sockaddr *)sin, sizeof(*sin)) != 0) {
                return -1;
        }
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        memset(&ev, 0, sizeof(ev));
        ev.events   = EPOLLIN;
        ev.data.ptr = c;
        return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Builds request number seq into c->out. */
static void build_request(conn_t *c, unsigned run, unsigned long seq,
                          int events, const char *path, const char *host) {
        static char body[1 << 20];
        size_t blen = 0;
        int i, r;

        if (events > 1) {
                body[blen++] = '[';
        }
        for (i = 0; i < events; i++) {
                if (stamp) {
                        r = snprintf(body + blen, sizeof(body) - blen,
                                     "%s" EVENT_FMT_STAMPED, i ? "," : "", run,
                                     seq, i,
                                     (int)((seq * 7 + (unsigned long)i) % 16),
                                     wall_ms());
                } else {
                        r = snprintf(body + blen, sizeof(body) - blen,
                                     "%s" EVENT_FMT, i ? "," : "", run, seq, i,
                                     (int)((seq * 7 + (unsigned long)i) % 16));
                }
                blen += (size_t)r;
        }
        if (events > 1) {
                body[blen++] = ']';
        }
        r = snprintf(c->out, 1 << 20,
                     "POST %s HTTP/1.1\r\nHost: %s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     path, host, blen);
        memcpy(c->out + r, body, blen);
        c->out_len = (size_t)r + blen;
        c->out_of  = 0;
}

/* Writes what it can; returns -1 on a broken connection. */
static int conn_flush(conn_t *c) {
        ssize_t w;

        while (c->out_of < c->out_len) {
                w = write(c->fd, c->out + c->out_of, c->out_len - c->out_of);
                if (w < 0) {
                        return errno == EAGAIN ? 0 : -1;
                }
                c->out_of += (size_t)w;
        }
        return 0;
}

/* Status of a complete response in c->in, 0 when incomplete, -1 bad. */
static int conn_response(conn_t *c) {
        char *hend, *cl;
        size_t need;
        int status;

        c->in[c->in_len] = '\0';
        hend = strstr(c->in, "\r\n\r\n");
        if (!hend) {
                return 0;
        }
        if (sscanf(c->in, "HTTP/1.%*d %d", &status) != 1) {
                return -1;
        }
        cl = strcasestr(c->in, "\r\nContent-Length:");
        if (!cl || cl > hend) {
                return -1;
        }
        need = (size_t)(hend + 4 - c->in) + strtoul(cl + 17, NULL, 10);
        if (c->in_len < need) {
                return 0;
        }
        c->in_len = 0; /* one request in flight: nothing follows */
        return status;
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
            {"addr", required_argument, NULL, 'a'},
            {"rate", required_argument, NULL, 'r'},
            {"connections", required_argument, NULL, 'c'},
            {"duration", required_argument, NULL, 'd'},
            {"events", required_argument, NULL, 'e'},
            {"path", required_argument, NULL, 'p'},
            {"stamp", no_argument, NULL, 's'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *addr = NULL, *path = "/events/ingest";
        double rate = 0, duration = 10;
        int nconn = 64, events = 1;
        struct sockaddr_in sin;
        char host[64];
        char *colon;
        conn_t *conns;
        int ep, c, i, n;
        int64_t t0, now, end, due;
        unsigned long next = 0, sent = 0, done = 0, ok = 0, non2xx = 0,
                      errors = 0;
        int64_t *lat;
        size_t lat_cap, lat_n = 0;
        unsigned run;
        long late;
        struct epoll_event evs[256];

        while ((c = getopt_long(argc, argv, "a:r:c:d:e:p:sh", longopts,
                                NULL)) != -1) {
                switch (c) {
                case 'a':
                        addr = optarg;
                        break;
                case 'r':
                        rate = atof(optarg);
                        break;
                case 'c':
                        nconn = atoi(optarg);
                        break;
                case 'd':
                        duration = atof(optarg);
                        break;
                case 'e':
                        events = atoi(optarg);
                        break;
                case 'p':
                        path = optarg;
                        break;
                case 's':
                        stamp = 1;
                        break;
                case 'h':
                        return usage(argv[0], 0, NULL);
                default:
                        return usage(argv[0], 2, NULL);
                }
        }
        if (!addr || rate <= 0 || nconn < 1 || nconn > 10000 ||
            duration <= 0 || events < 1 || events > 1000) {
                return usage(argv[0], 2, "need -a and -r; bad value");
        }
        snprintf(host, sizeof(host), "%s", addr);
        colon = strrchr(host, ':');
        if (!colon) {
                return usage(argv[0], 2, "-a HOST:PORT");
        }
        *colon = '\0';
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port   = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
                return usage(argv[0], 2, "-a: IPv4 address expected");
        }

        ep      = epoll_create1(0);
        conns   = calloc((size_t)nconn, sizeof(*conns));
        lat_cap = (size_t)(rate * duration * 1.1) + 16;
        lat     = malloc(lat_cap * sizeof(*lat));
        if (ep < 0 || !conns || !lat) {
                fprintf(stderr, "bench-load: out of memory\n");
                return 1;
        }
        for (i = 0; i < nconn; i++) {
                conns[i].out = malloc(1 << 20);
                if (!conns[i].out || conn_open(&conns[i], &sin, ep) != 0) {
                        fprintf(stderr, "bench-load: connect %s: %s\n", addr,
                                strerror(errno));
                        return 1;
                }
        }
        run = (unsigned)getpid();

        t0  = now_ns();
        end = t0 + (int64_t)(duration * 1e9);
        for (;;) {
                now = now_ns();
                /* Send every due request that finds an idle connection. */
                while (now < end) {
                        due = t0 + (int64_t)((double)next * 1e9 / rate);
                        if (due > now) {
                                break;
                        }
                        for (i = 0; i < nconn && conns[i].busy; i++) {
                        }
                        if (i == nconn) {
                                break; /* all busy: it waits, still due */
                        }
                        build_request(&conns[i], run, next, events, path,
                                      addr);
                        conns[i].busy   = 1;
                        conns[i].due_ns = due;
                        if (conn_flush(&conns[i]) != 0) {
                                errors++;
                                return 1;
                        }
                        next++;
                        sent++;
                }
                if (now >= end && done == sent) {
                        break;
                }
                if (now >= end + 10 * 1000000000LL) {
                        break; /* answers that never came are errors */
                }
                due = t0 + (int64_t)((double)next * 1e9 / rate);
                n   = epoll_wait(ep, evs, 256,
                                 now >= end ? 100
                                            : (int)((due - now) / 1000000));
                for (i = 0; i < n; i++) {
                        conn_t *cn = evs[i].data.ptr;
                        ssize_t r;
                        int st;

                        if (cn->out_of < cn->out_len && conn_flush(cn) != 0) {
                                fprintf(stderr, "bench-load: write failed\n");
                                return 1;
                        }
                        r = read(cn->fd, cn->in + cn->in_len,
                                 sizeof(cn->in) - 1 - cn->in_len);
                        if (r <= 0) {
                                if (r < 0 && errno == EAGAIN) {
                                        continue;
                                }
                                fprintf(stderr,
                                        "bench-load: connection closed\n");
                                return 1;
                        }
                        cn->in_len += (size_t)r;
                        st = conn_response(cn);
                        if (st == 0) {
                                continue;
                        }
                        if (st < 0) {
                                errors++;
                                fprintf(stderr, "bench-load: bad response\n");
                                return 1;
                        }
                        if (st >= 200 && st < 300) {
                                ok++;
                        } else {
                                non2xx++;
                        }
                        if (lat_n < lat_cap) {
                                lat[lat_n++] = now_ns() - cn->due_ns;
                        }
                        cn->busy = 0;
                        done++;
                }
        }
        now = now_ns();
        qsort(lat, lat_n, sizeof(*lat), cmp_i64);
#define PCT(p) (lat_n ? (double)lat[(size_t)((double)(lat_n - 1) * (p))] / 1e6 : 0)
        late = (long)((double)(end - t0) * rate / 1e9) - (long)sent;
        printf("requests=%lu ok2xx=%lu non2xx=%lu errors=%lu late=%ld "
               "seconds=%.3f rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f "
               "p999_ms=%.3f max_ms=%.3f\n",
               done, ok, non2xx, errors + (sent - done),
               late > 0 ? late : 0,
               (double)(now - t0) / 1e9, (double)done / ((double)(end - t0) / 1e9),
               PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.999),
               lat_n ? (double)lat[lat_n - 1] / 1e6 : 0);
        for (i = 0; i < nconn; i++) {
                close(conns[i].fd);
                free(conns[i].out);
        }
        free(conns);
        free(lat);
        close(ep);
        return 0;
}
