/* aetherbus - Apache-2.0
 *
 * ab_http: libmicrohttpd server wrapper. Owns the listen socket, the
 * connection limits and deadlines (see "connections" below), routing,
 * body accumulation, refusals before the body (413, framing) and the
 * lingering close after them, response building, the suspend/resume
 * protocol for asynchronous answers, graceful stop, the free routes and
 * the http_* metrics. Keep service logic (auth, JSON shapes of a route) out of here.
 *
 * Request lifetime. An ab_http_req_t is reference counted: MHD holds one
 * reference from the first access-handler call to MHD_OPTION_NOTIFY_COMPLETED,
 * and ab_http_req_suspend() adds one for the asynchronous answerer, which
 * its ab_http_respond*() call drops. The last one out frees the request,
 * or, on the server thread, parks it (with its body buffer) in the
 * connection for the next request, so keep-alive traffic allocates no
 * request. The answerer never touches the server once the request was
 * answered or completed, so a late answer after ab_http_stop() is safe.
 *
 * State machine (req->lock):
 *   NEW -> HANDLER (handler runs) -> DONE (answer queued)
 *   HANDLER -> ASYNC (suspend called) -> SUSPENDED (handler returned,
 *   MHD_suspend_connection) -> RESUMING (answer stored by the answerer or by
 *   ab_http_stop(), MHD_resume_connection) -> DONE (queued on the server
 *   thread). An answer that arrives while still ASYNC is queued when the
 *   handler returns, without suspending. Lock order: server lock, then a
 *   request lock; MHD_suspend_connection() runs under the request lock (on
 *   the server thread), no MHD function runs under the server lock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ab_http.h"
#include "ab_log.h"

#define BODY_INIT   4096
#define RETAIN_MAX  (64 * 1024)   /* body buffer a connection keeps */
/* Lingering close (nginx's lingering_close): a connection closed while
 * its client may still be sending (a refused body) is half-closed after
 * the answer and read and dropped for a while before the close, since
 * closing with unread bytes sends a reset that can destroy the answer
 * before the client read it. Bounded in connections, bytes and time;
 * past a bound the socket is just closed. */
#define LINGER_SLOTS   256
#define LINGER_BYTES   (8 * 1024 * 1024)
#define LINGER_MS      5000 /* in all */
#define LINGER_IDLE_MS 2000 /* with nothing to read */
#define SEND_MS        1000 /* to write an answer behind MHD's back */
#define MAX_THREADS 16
#define TICK_MS     100  /* deadlines are enforced to this resolution */
/* Bodies at or over this are mmap'ed and unmapped when freed. glibc's
 * threshold otherwise climbs after the first big free (up to 32 MiB), and
 * from then on a burst of large uploads stays in the arenas for good. */
#define MMAP_BODY   (128 * 1024)

#define CT_JSON "application/json"
#define CT_PROM "text/plain; version=0.0.4; charset=utf-8"
#define BUSY_DETAIL \
        "the bodies being uploaded hold all the memory set aside for them"
#define BODY_NOMEM \
        "{\"error\":\"internal error\",\"detail\":\"the answer could not be built\"}"

enum { R_NEW = 0, R_HANDLER, R_ASYNC, R_SUSPENDED, R_RESUMING, R_DONE };

struct route {
        ab_http_route_t r;
        size_t plen;
        ab_metric_t *dur; /* duration series of this route */
};

/* Where a connection stands, for the deadline tick. */
enum { C_HEAD = 0, C_BODY, C_BUSY };

struct conn_ctx {
        ab_http_req_t *spare;
        int linger;        /* closed with the client's body unread */
        const char *bad_uri; /* the raw URI of the request read last */
        /* Read by the tick (lingerer thread) under srv->clock; written
         * by the connection's server thread, the atomics without it. */
        struct conn_ctx *prev;
        struct conn_ctx *next;
        int fd;
        int counted;       /* in srv->nconns and the address table */
        int expired;       /* the tick shut it down */
        atomic_int phase;  /* C_* */
        atomic_ullong deadline; /* ns; 0: none */
        unsigned char ip[16];
};

/* Connections per client address: open addressing, linear probing,
 * backward-shift deletion; n == 0 is an empty slot. Sized twice the
 * connection limit, so it never fills. */
struct ip_slot {
        unsigned char ip[16];
        unsigned n;
};

struct linger_slot {
        int fd;       /* -1: free */
        size_t bytes; /* read and dropped */
        uint64_t end; /* ns: close by then */
        uint64_t idle;
};

struct lingerer {
        pthread_t thread;
        int on;
        int epfd;
        atomic_int quit;
        pthread_mutex_t lock;
        struct linger_slot slot[LINGER_SLOTS];
        void (*tick)(void *arg); /* every TICK_MS, on the thread */
        void *tick_arg;
};

struct ab_http_req_s {
        ab_http_t *srv;
        struct MHD_Connection *conn; /* NULL once completed */
        struct conn_ctx *cc;
        const struct route *route;
        const char *method;   /* as sent: logs */
        const char *routed;   /* the route's: "GET" for a HEAD */
        const char *path;
        char *body;
        size_t len;
        size_t cap;
        size_t limit;
        size_t reserved;      /* of srv->body_held: this body's budget */
        int checking;         /* the route's check runs */
        int reject;           /* status answered without a handler */
        const char *why;      /* a 400's detail */
        int status;           /* status queued */
        uint64_t t0;          /* ns, monotonic */
        unsigned retry_after;
        pthread_mutex_t lock;
        int state;
        int held;             /* the answerer's reference is out */
        int linked;           /* on srv->held (server lock) */
        struct MHD_Response *resp; /* stored answer, not yet queued */
        int resp_status;
        atomic_int refcnt;
        char addr[INET6_ADDRSTRLEN];
        ab_http_req_t *prev;
        ab_http_req_t *next;
};

struct ab_http_s {
        ab_http_conf_t conf;
        char service[32];
        struct route *routes;
        size_t nroutes;
        struct MHD_Daemon *d[MAX_THREADS];
        int lfd[MAX_THREADS];
        int nd; /* daemons (and listen sockets) */
        int port;
        int started;
        int stopped;
        atomic_int stopping;
        atomic_int forcing;
        atomic_long inflight;
        atomic_int nsuspended;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        ab_http_req_t *held; /* requests with ab_http_req_suspend() */
        ab_metrics_t *metrics;
        int own_metrics;
        ab_metric_t *m_req;
        ab_metric_t *m_dur;
        ab_metric_t *dur_unmatched;
        ab_metric_t *m_refused_limit;
        ab_metric_t *m_refused_ip;
        ab_metric_t *m_timeout_head;
        ab_metric_t *m_timeout_body;
        ab_metric_t *m_evicted;
        ab_metric_t *m_budget;
        struct lingerer lg;
        /* Connections (what MHD's own limits do not give: one limit for
         * all the daemons, refused at once instead of left in the listen
         * backlog, and deadlines that trickled bytes do not reset). */
        pthread_mutex_t clock;
        struct conn_ctx *conns;
        unsigned nconns;
        struct ip_slot *ips;
        size_t nips; /* a power of two */
        atomic_size_t body_held; /* bytes reserved by unfinished bodies */
};

static const double dur_buckets[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10,
};

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- lingering close ---- */

static void linger_close(struct lingerer *lg, struct linger_slot *sl) {
        epoll_ctl(lg->epfd, EPOLL_CTL_DEL, sl->fd, NULL);
        close(sl->fd);
        sl->fd = -1;
}

static void *linger_main(void *arg) {
        struct lingerer *lg = arg;
        struct epoll_event ev[32];
        struct linger_slot *sl;
        static char sink[65536]; /* only ever written: shared is fine */
        uint64_t now, next_tick;
        ssize_t r;
        int n, i;

        next_tick = 0;
        while (!atomic_load(&lg->quit)) {
                n = epoll_wait(lg->epfd, ev, 32, TICK_MS);
                if (lg->tick && now_ns() >= next_tick) {
                        next_tick = now_ns() + TICK_MS * 1000000ull;
                        lg->tick(lg->tick_arg);
                }
                pthread_mutex_lock(&lg->lock);
                now = now_ns();
                for (i = 0; i < n; i++) {
                        sl = &lg->slot[ev[i].data.u32];
                        if (sl->fd < 0) {
                                continue;
                        }
                        while ((r = read(sl->fd, sink, sizeof(sink))) > 0) {
                                sl->bytes += (size_t)r;
                                sl->idle = now + LINGER_IDLE_MS * 1000000ull;
                                if (sl->bytes > LINGER_BYTES) {
                                        break;
                                }
                        }
                        /* EOF: the client is done; an error: it is gone. */
                        if (r == 0 || (r < 0 && errno != EAGAIN &&
                                       errno != EINTR) ||
                            sl->bytes > LINGER_BYTES) {
                                linger_close(lg, sl);
                        }
                }
                for (i = 0; i < LINGER_SLOTS; i++) {
                        sl = &lg->slot[i];
                        if (sl->fd >= 0 && (now > sl->end || now > sl->idle)) {
                                linger_close(lg, sl);
                        }
                }
                pthread_mutex_unlock(&lg->lock);
        }
        pthread_mutex_lock(&lg->lock);
        for (i = 0; i < LINGER_SLOTS; i++) {
                if (lg->slot[i].fd >= 0) {
                        linger_close(lg, &lg->slot[i]);
                }
        }
        pthread_mutex_unlock(&lg->lock);
        return NULL;
}

static int linger_start(struct lingerer *lg) {
        int i;

        for (i = 0; i < LINGER_SLOTS; i++) {
                lg->slot[i].fd = -1;
        }
        pthread_mutex_init(&lg->lock, NULL);
        atomic_store(&lg->quit, 0);
        if ((lg->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
                return -1;
        }
        if (pthread_create(&lg->thread, NULL, linger_main, lg)) {
                close(lg->epfd);
                lg->epfd = -1;
                return -1;
        }
        lg->on = 1;
        return 0;
}

static void linger_stop(struct lingerer *lg) {
        if (!lg->on) {
                return;
        }
        atomic_store(&lg->quit, 1);
        pthread_join(lg->thread, NULL);
        close(lg->epfd);
        pthread_mutex_destroy(&lg->lock);
        lg->on = 0;
}

/* Takes over \p fd, which MHD is about to close: a duplicate keeps the
 * socket open (so no reset) while the client's bytes are read. */
static void linger_add(struct lingerer *lg, int fd) {
        struct epoll_event ev;
        struct linger_slot *sl;
        uint64_t now;
        int dfd, i;

        if (!lg->on || atomic_load(&lg->quit) ||
            (dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
                return;
        }
        shutdown(dfd, SHUT_WR); /* MHD did, unless it could not */
        pthread_mutex_lock(&lg->lock);
        for (i = 0; i < LINGER_SLOTS && lg->slot[i].fd >= 0; i++) {
        }
        sl = i < LINGER_SLOTS ? &lg->slot[i] : NULL;
        memset(&ev, 0, sizeof(ev));
        ev.events   = EPOLLIN | EPOLLRDHUP;
        ev.data.u32 = (uint32_t)i;
        if (sl && !epoll_ctl(lg->epfd, EPOLL_CTL_ADD, dfd, &ev)) {
                now       = now_ns();
                sl->fd    = dfd;
                sl->bytes = 0;
                sl->end   = now + LINGER_MS * 1000000ull;
                sl->idle  = now + LINGER_IDLE_MS * 1000000ull;
                dfd       = -1;
        }
        pthread_mutex_unlock(&lg->lock);
        if (dfd >= 0) {
                close(dfd); /* every slot busy: a plain close */
        }
}

static void linger_mark(ab_http_req_t *req) {
        if (req->cc) {
                req->cc->linger = 1;
        }
}

/* ---- connections: limits and deadlines ----
 *
 * MHD 0.9.75's own limits do not hold a slowloris off: over
 * MHD_OPTION_CONNECTION_LIMIT an epoll daemon stops polling its listening
 * socket, so new clients wait in the backlog behind the slow ones; its
 * limits are per daemon while SO_REUSEPORT spreads one client's
 * connections over all of them; and its timeout is an idle one, reset by
 * every byte. So ab_http counts connections itself, for all daemons at
 * once: over a limit a connection is refused in the accept policy callback
 * (MHD closes it before it allocates anything) or, when two daemons raced
 * past the check, shut down as it starts; at the connection limit it
 * first takes the place of the connection that has waited longest for its
 * headers (see admit()). Each connection carries one
 * deadline for the phase it is in: the headers (from the accept, or from
 * the end of the previous request, so an idle keep-alive connection is
 * held no longer than a slow one), then the body (from the end of the
 * headers), none while a handler or the answer has it. The lingerer
 * thread's tick shuts down a connection past its deadline; MHD then reads
 * the EOF and closes it on its own thread. No answer is sent (nginx
 * neither): MHD may be about to write one itself. */

static void ip_key(const struct sockaddr *sa, unsigned char key[16]) {
        memset(key, 0, 16);
        if (sa && sa->sa_family == AF_INET) {
                key[10] = 0xff; /* v4-mapped, as a dual-stack socket sees */
                key[11] = 0xff;
                memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr,
                       4);
        } else if (sa && sa->sa_family == AF_INET6) {
                memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr,
                       16);
        }
}

static size_t ip_hash(const unsigned char *k, size_t mask) {
        uint64_t h = 1469598103934665603ull; /* FNV-1a */
        int i;

        for (i = 0; i < 16; i++) {
                h ^= k[i];
                h *= 1099511628211ull;
        }
        return (size_t)(h ^ (h >> 32)) & mask;
}

/* srv->clock held: the slot of \p ip, or the empty one it would take. */
static struct ip_slot *ip_find(ab_http_t *srv, const unsigned char *ip) {
        size_t mask = srv->nips - 1, i;

        for (i = ip_hash(ip, mask);
             srv->ips[i].n && memcmp(srv->ips[i].ip, ip, 16);
             i = (i + 1) & mask) {
        }
        return &srv->ips[i];
}

/* srv->clock held. */
static void ip_del(ab_http_t *srv, const unsigned char *ip) {
        struct ip_slot *sl = ip_find(srv, ip);
        size_t mask = srv->nips - 1, i, j, h;

        if (!sl->n || --sl->n) {
                return;
        }
        /* Backward shift: an entry after the hole moves into it when the
         * hole lies between its home slot and where it is. */
        i = (size_t)(sl - srv->ips);
        for (j = (i + 1) & mask; srv->ips[j].n; j = (j + 1) & mask) {
                h = ip_hash(srv->ips[j].ip, mask);
                if (((j - h) & mask) >= ((j - i) & mask)) {
                        srv->ips[i]   = srv->ips[j];
                        srv->ips[j].n = 0;
                        i             = j;
                }
        }
}

/* srv->clock held: the connection that has waited longest for its
 * request's headers, or NULL. */
static struct conn_ctx *oldest_waiting(ab_http_t *srv) {
        struct conn_ctx *cc, *best = NULL;
        uint64_t d, bd = 0;

        for (cc = srv->conns; cc; cc = cc->next) {
                if (!cc->counted || cc->expired ||
                    atomic_load(&cc->phase) != C_HEAD ||
                    !(d = atomic_load(&cc->deadline))) {
                        continue;
                }
                if (!best || d < bd) {
                        best = cc;
                        bd   = d;
                }
        }
        return best;
}

/* srv->clock held: whether one more connection from \p ip fits; if not,
 * *whyp is the counter to bump. At the connection limit it fits in the
 * place of the connection that has waited longest for its headers (set
 * in *victimp; idle keep-alive ones included): refusing would let slow
 * clients from enough addresses, reconnecting as fast as they are cut,
 * keep every slot (measured: 2 of 20 requests served in 50 s against
 * 1,100 of them from 1,100 addresses). A client that sends its request
 * at once is past its headers in a moment, so the newcomers evict the
 * slow ones, not each other. Only when every connection has a request
 * under way is a new one refused. */
static int admit(ab_http_t *srv, const unsigned char *ip, ab_metric_t **whyp,
                 struct conn_ctx **victimp) {
        *victimp = NULL;
        if (ip_find(srv, ip)->n >= srv->conf.max_connections_per_ip) {
                *whyp = srv->m_refused_ip;
                return 0;
        }
        if (srv->nconns >= srv->conf.max_connections &&
            !(*victimp = oldest_waiting(srv))) {
                *whyp = srv->m_refused_limit;
                return 0;
        }
        return 1;
}

/* MHD's accept policy callback: MHD closes a refused socket at once. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr,
                                 socklen_t addrlen) {
        ab_http_t *srv = cls;
        struct conn_ctx *victim;
        ab_metric_t *why = NULL;
        unsigned char ip[16];
        int ok;

        (void)addrlen;
        ip_key(addr, ip);
        pthread_mutex_lock(&srv->clock);
        ok = admit(srv, ip, &why, &victim); /* evicted in conn_start() */
        pthread_mutex_unlock(&srv->clock);
        if (!ok) {
                ab_metric_inc(why);
                ab_debug("http", "connection refused: over %s",
                         why == srv->m_refused_ip ? "the per-address limit"
                                                  : "the connection limit");
        }
        return ok ? MHD_YES : MHD_NO;
}

static void conn_deadline(struct conn_ctx *cc, int phase, unsigned ms) {
        if (!cc) {
                return;
        }
        atomic_store(&cc->phase, phase);
        atomic_store(&cc->deadline,
                     ms ? now_ns() + (uint64_t)ms * 1000000ull : 0);
}

/* MHD_CONNECTION_NOTIFY_STARTED: counts the connection in (the count the
 * accept policy checked), evicting the one admit() names, or shuts it
 * down when another daemon took the last slot meanwhile. */
static struct conn_ctx *conn_start(ab_http_t *srv,
                                   struct MHD_Connection *conn) {
        const union MHD_ConnectionInfo *ci;
        ab_metric_t *why = NULL;
        struct conn_ctx *cc, *victim;
        struct ip_slot *sl;
        int fd;

        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        fd = ci ? ci->connect_fd : -1;
        if (!(cc = calloc(1, sizeof(*cc)))) {
                if (fd >= 0) {
                        shutdown(fd, SHUT_RDWR); /* untracked: not served */
                }
                return NULL;
        }
        cc->fd = fd;
        ci     = MHD_get_connection_info(conn,
                                         MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        ip_key(ci ? ci->client_addr : NULL, cc->ip);
        conn_deadline(cc, C_HEAD, srv->conf.header_timeout_ms);
        pthread_mutex_lock(&srv->clock);
        if (admit(srv, cc->ip, &why, &victim)) {
                if (victim) {
                        /* Its place is taken now; MHD closes it on the
                         * EOF (the list keeps its fd open till then). */
                        victim->expired = 1;
                        victim->counted = 0;
                        srv->nconns--;
                        ip_del(srv, victim->ip);
                        shutdown(victim->fd, SHUT_RDWR);
                        ab_metric_inc(srv->m_evicted);
                }
                srv->nconns++;
                sl = ip_find(srv, cc->ip);
                if (!sl->n) {
                        memcpy(sl->ip, cc->ip, 16);
                }
                sl->n++;
                cc->counted = 1;
        } else {
                cc->expired = 1;
        }
        cc->next = srv->conns;
        if (srv->conns) {
                srv->conns->prev = cc;
        }
        srv->conns = cc;
        pthread_mutex_unlock(&srv->clock);
        if (!cc->counted) {
                ab_metric_inc(why);
                if (fd >= 0) {
                        shutdown(fd, SHUT_RDWR);
                }
        }
        return cc;
}

/* MHD_CONNECTION_NOTIFY_CLOSED, before MHD closes the socket. */
static void conn_end(ab_http_t *srv, struct conn_ctx *cc) {
        pthread_mutex_lock(&srv->clock);
        if (cc->prev) {
                cc->prev->next = cc->next;
        } else {
                srv->conns = cc->next;
        }
        if (cc->next) {
                cc->next->prev = cc->prev;
        }
        if (cc->counted) {
                srv->nconns--;
                ip_del(srv, cc->ip);
        }
        pthread_mutex_unlock(&srv->clock);
}

/* Lingerer thread, every TICK_MS. The lock keeps every fd on the list
 * open (conn_end() runs before MHD closes it). */
static void conn_tick(void *arg) {
        ab_http_t *srv = arg;
        struct conn_ctx *cc;
        uint64_t now, d;

        now = now_ns();
        pthread_mutex_lock(&srv->clock);
        for (cc = srv->conns; cc; cc = cc->next) {
                d = atomic_load(&cc->deadline);
                if (!d || now < d || cc->expired || cc->fd < 0) {
                        continue;
                }
                cc->expired = 1;
                ab_metric_inc(atomic_load(&cc->phase) == C_BODY
                                  ? srv->m_timeout_body
                                  : srv->m_timeout_head);
                shutdown(cc->fd, SHUT_RDWR);
        }
        pthread_mutex_unlock(&srv->clock);
}

/* ---- the body budget ---- */

/* Reserves \p n more bytes for \p req's body. @returns 0, or -1 when
 * that would take unfinished bodies over the budget. */
static int budget_take(ab_http_req_t *req, size_t n) {
        ab_http_t *srv = req->srv;
        size_t cur;

        cur = atomic_load(&srv->body_held);
        do {
                if (n > srv->conf.body_budget - cur) {
                        ab_metric_inc(srv->m_budget);
                        return -1;
                }
        } while (!atomic_compare_exchange_weak(&srv->body_held, &cur, cur + n));
        req->reserved += n;
        return 0;
}

static void budget_give(ab_http_req_t *req) {
        if (req->reserved) {
                atomic_fetch_sub(&req->srv->body_held, req->reserved);
                req->reserved = 0;
        }
}

/* ---- request objects ---- */

static void req_free(ab_http_req_t *req) {
        if (req->resp) {
                MHD_destroy_response(req->resp);
        }
        pthread_mutex_destroy(&req->lock);
        free(req->body);
        free(req);
}

/* Drops one reference; the last one frees, or parks the request in its
 * connection when \p park (server thread, connection still open). */
static void req_unref(ab_http_req_t *req, int park) {
        struct conn_ctx *cc;

        cc = req->cc;
        if (atomic_fetch_sub_explicit(&req->refcnt, 1, memory_order_acq_rel) !=
            1) {
                return;
        }
        if (park && cc && !cc->spare && req->cap <= RETAIN_MAX &&
            !req->resp) {
                cc->spare = req;
                return;
        }
        req_free(req);
}

static ab_http_req_t *req_get(ab_http_t *srv, struct MHD_Connection *conn) {
        const union MHD_ConnectionInfo *ci;
        struct conn_ctx *cc;
        ab_http_req_t *req;

        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        cc = ci ? ci->socket_context : NULL;
        if (cc && cc->spare) {
                req       = cc->spare;
                cc->spare = NULL;
        } else {
                if (!(req = calloc(1, sizeof(*req)))) {
                        return NULL;
                }
                pthread_mutex_init(&req->lock, NULL);
        }
        req->srv         = srv;
        req->conn        = conn;
        req->cc          = cc;
        req->route       = NULL;
        req->routed      = NULL;
        req->len         = 0;
        req->reserved    = 0;
        req->checking    = 0;
        req->reject      = 0;
        req->why         = NULL;
        req->status      = 0;
        req->state       = R_NEW;
        req->held        = 0;
        req->linked      = 0;
        req->resp        = NULL;
        req->retry_after = srv->conf.retry_after_s;
        req->addr[0]     = '\0';
        req->prev        = NULL;
        req->next        = NULL;
        if (req->body) {
                req->body[0] = '\0';
        }
        atomic_store_explicit(&req->refcnt, 1, memory_order_relaxed);
        return req;
}

/* ---- responses ---- */

static struct MHD_Response *build(const ab_http_req_t *req, int status,
                                  const char *ctype, void *body, size_t len,
                                  enum MHD_ResponseMemoryMode mode,
                                  const char *const *headers) {
        struct MHD_Response *r;
        char ra[16];
        int has_ra;
        int i;

        if (!(r = MHD_create_response_from_buffer(len, body, mode))) {
                if (mode == MHD_RESPMEM_MUST_FREE) {
                        free(body);
                }
                return NULL;
        }
        has_ra = 0;
        if (ctype && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                             ctype) != MHD_YES) {
                goto fail;
        }
        for (i = 0; headers && headers[i] && headers[i + 1]; i += 2) {
                if (!strcasecmp(headers[i], MHD_HTTP_HEADER_RETRY_AFTER)) {
                        has_ra = 1;
                }
                if (MHD_add_response_header(r, headers[i], headers[i + 1]) !=
                    MHD_YES) {
                        goto fail;
                }
        }
        if ((status == MHD_HTTP_SERVICE_UNAVAILABLE ||
             status == MHD_HTTP_TOO_MANY_REQUESTS) && !has_ra) {
                snprintf(ra, sizeof(ra), "%u", req->retry_after);
                if (MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER,
                                            ra) != MHD_YES) {
                        goto fail;
                }
        }
        return r;
fail:
        MHD_destroy_response(r);
        return NULL;
}

json_t *ab_http_text(const char *s) {
        json_t *j;
        char *buf;
        size_t len;

        if (!s) {
                return NULL;
        }
        len = strlen(s);
        if (ab_err_utf8_valid(s, len)) {
                return json_stringn_nocheck(s, len);
        }
        if (len > SIZE_MAX / 4 - 1 || !(buf = malloc(4 * len + 1))) {
                return NULL;
        }
        len = ab_err_utf8_clean(buf, 4 * len + 1, s, len);
        j   = json_stringn_nocheck(buf, len);
        free(buf);
        return j;
}

static json_t *error_json(const char *error, json_t *detail) {
        return json_pack("{s:o, s:o}", "error",
                         ab_http_text(error ? error : "error"), "detail",
                         detail ? detail : json_null());
}

static struct MHD_Response *build_json(const ab_http_req_t *req, int status,
                                       json_t *json,
                                       const char *const *headers) {
        char *s;

        s = json ? json_dumps(json, JSON_COMPACT) : NULL;
        json_decref(json);
        if (!s) {
                return NULL;
        }
        return build(req, status, CT_JSON, s, strlen(s), MHD_RESPMEM_MUST_FREE,
                     headers);
}

static struct MHD_Response *build_error(const ab_http_req_t *req, int status,
                                        const char *error, json_t *detail) {
        return build_json(req, status, error_json(error, detail), NULL);
}

/* Server thread: hands \p r to MHD. */
static enum MHD_Result queue(ab_http_req_t *req, int status,
                             struct MHD_Response *r) {
        enum MHD_Result ret;

        if (!r) {
                return MHD_NO;
        }
        if (atomic_load_explicit(&req->srv->stopping, memory_order_relaxed)) {
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION,
                                        "close");
        }
        ret = MHD_queue_response(req->conn, (unsigned)status, r);
        MHD_destroy_response(r);
        req->status = status;
        return ret;
}

/* Any thread: stores the answer, resumes a suspended connection, drops the
 * answerer's hold. Never touches the server unless it resumes, which
 * ab_http_stop() waits for (nsuspended). */
static ab_err_t answer(ab_http_req_t *req, int status, struct MHD_Response *r) {
        struct MHD_Connection *conn;
        ab_http_t *srv;
        ab_err_t err;
        int resume;
        int release;

        resume  = 0;
        release = 0;
        pthread_mutex_lock(&req->lock);
        if (req->held) {
                req->held = 0;
                release   = 1;
        }
        if (req->resp || req->state == R_DONE || req->state == R_RESUMING ||
            req->state == R_NEW) {
                err = AB_ERR_INVALID;
        } else if (r) {
                req->resp        = r;
                req->resp_status = status;
                r                = NULL;
                err              = AB_OK;
                if (req->state == R_SUSPENDED) {
                        req->state = R_RESUMING;
                        resume     = 1;
                }
        } else {
                err = AB_ERR_NOMEM;
                /* Still owe an answer: a fixed one, still in the shared
                 * error format a client parses. */
                if ((req->resp = MHD_create_response_from_buffer(
                         sizeof(BODY_NOMEM) - 1, (void *)BODY_NOMEM,
                         MHD_RESPMEM_PERSISTENT)) &&
                    MHD_add_response_header(req->resp,
                                            MHD_HTTP_HEADER_CONTENT_TYPE,
                                            CT_JSON) != MHD_YES) {
                        MHD_destroy_response(req->resp);
                        req->resp = NULL;
                }
                if (req->resp) {
                        req->resp_status = 500;
                        if (req->state == R_SUSPENDED) {
                                req->state = R_RESUMING;
                                resume     = 1;
                        }
                }
        }
        conn = req->conn;
        srv  = req->srv;
        pthread_mutex_unlock(&req->lock);
        if (r) {
                MHD_destroy_response(r);
        }
        if (resume) {
                MHD_resume_connection(conn);
                atomic_fetch_sub(&srv->nsuspended, 1);
        }
        if (release) {
                req_unref(req, 0);
        }
        return err;
}

ab_err_t ab_http_respond(ab_http_req_t *req, int status,
                         const char *content_type, const void *body,
                         size_t len, const char *const *headers) {
        return answer(req, status,
                      build(req, status, content_type, (void *)body, len,
                            MHD_RESPMEM_MUST_COPY, headers));
}

ab_err_t ab_http_respond_json(ab_http_req_t *req, int status, json_t *json) {
        return answer(req, status, build_json(req, status, json, NULL));
}

ab_err_t ab_http_respond_error(ab_http_req_t *req, int status,
                               const char *error, json_t *detail) {
        return answer(req, status, build_error(req, status, error, detail));
}

static ab_err_t respond_static(ab_http_req_t *req, int status,
                               const char *ctype, const char *body) {
        return answer(req, status,
                      build(req, status, ctype, (void *)body, strlen(body),
                            MHD_RESPMEM_PERSISTENT, NULL));
}

void ab_http_req_set_retry_after(ab_http_req_t *req, unsigned seconds) {
        req->retry_after = seconds;
}

ab_err_t ab_http_req_suspend(ab_http_req_t *req) {
        ab_http_t *srv;

        srv = req->srv;
        if (srv->conf.threading == AB_HTTP_THREAD_PER_CONNECTION) {
                return AB_ERR_UNSUPPORTED;
        }
        pthread_mutex_lock(&req->lock);
        if (req->state != R_HANDLER || req->resp || req->checking) {
                pthread_mutex_unlock(&req->lock);
                return AB_ERR_UNSUPPORTED;
        }
        req->state = R_ASYNC;
        req->held  = 1;
        atomic_fetch_add_explicit(&req->refcnt, 1, memory_order_relaxed);
        pthread_mutex_unlock(&req->lock);

        pthread_mutex_lock(&srv->lock);
        req->linked = 1;
        req->next   = srv->held;
        if (srv->held) {
                srv->held->prev = req;
        }
        srv->held = req;
        pthread_mutex_unlock(&srv->lock);
        return AB_OK;
}

/* ---- accessors ---- */

const char *ab_http_req_method(const ab_http_req_t *req) {
        return req->routed ? req->routed : req->method;
}

const char *ab_http_req_path(const ab_http_req_t *req) {
        return req->path;
}

const char *ab_http_req_query(const ab_http_req_t *req, const char *name) {
        const char *v;

        v = NULL;
        if (!req->conn ||
            MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND,
                                          name, strlen(name), &v,
                                          NULL) != MHD_YES) {
                return NULL;
        }
        return v ? v : "";
}

const char *ab_http_req_header(const ab_http_req_t *req, const char *name) {
        if (!req->conn) {
                return NULL;
        }
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *ab_http_req_body(const ab_http_req_t *req, size_t *lenp) {
        if (lenp) {
                *lenp = req->len;
        }
        return req->body && req->len ? req->body : "";
}

char *ab_http_req_body_writable(ab_http_req_t *req, size_t *lenp) {
        if (lenp) {
                *lenp = req->body ? req->len : 0;
        }
        return req->body && req->len ? req->body : NULL;
}

void ab_http_req_body_release(ab_http_req_t *req) {
        /* A body a connection would not keep anyway goes now rather than
         * when a suspended request is finally answered. */
        if (req->cap > RETAIN_MAX) {
                free(req->body);
                req->body = NULL;
                req->cap  = 0;
        }
        req->len = 0;
}

const char *ab_http_req_remote(ab_http_req_t *req) {
        const union MHD_ConnectionInfo *ci;
        const struct sockaddr *sa;

        if (req->addr[0] || !req->conn) {
                return req->addr;
        }
        ci = MHD_get_connection_info(req->conn,
                                     MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!ci || !(sa = ci->client_addr)) {
                return req->addr;
        }
        if (sa->sa_family == AF_INET) {
                inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
                          req->addr, sizeof(req->addr));
        } else if (sa->sa_family == AF_INET6) {
                inet_ntop(AF_INET6,
                          &((const struct sockaddr_in6 *)sa)->sin6_addr,
                          req->addr, sizeof(req->addr));
        }
        return req->addr;
}

/* ---- routing ---- */

static int method_ok(const ab_http_route_t *r, const char *method) {
        return !strcmp(r->method, method) ||
               (!strcmp(method, "HEAD") && !strcmp(r->method, "GET"));
}

/* 0 no match, else a score: exact beats any prefix, longer prefix wins. */
static size_t path_score(const struct route *rt, const char *path) {
        if (rt->r.flags & AB_HTTP_PREFIX) {
                return strncmp(path, rt->r.path, rt->plen) ? 0 : rt->plen;
        }
        return strcmp(path, rt->r.path) ? 0 : SIZE_MAX;
}

/* Sets *statusp to 0 (dispatch), 404 or 405; returns the route matched (for
 * 405 a route of the path, for labels). */
static const struct route *match(const ab_http_t *srv, const char *path,
                                 const char *method, int *statusp) {
        const struct route *best;
        const struct route *any;
        size_t bs;
        size_t as;
        size_t s;
        size_t i;

        best = NULL;
        any  = NULL;
        bs   = 0;
        as   = 0;
        for (i = 0; i < srv->nroutes; i++) {
                if (!(s = path_score(&srv->routes[i], path))) {
                        continue;
                }
                if (s > as) {
                        as  = s;
                        any = &srv->routes[i];
                }
                if (s > bs && method_ok(&srv->routes[i].r, method)) {
                        bs   = s;
                        best = &srv->routes[i];
                }
        }
        *statusp = best ? 0 : any ? 405 : 404;
        return best ? best : any;
}

/* "GET, HEAD, POST" for every route matching path. */
static void allow_header(const ab_http_t *srv, const char *path, char *out,
                         size_t size) {
        const char *m;
        size_t of;
        size_t i;
        int get;

        of     = 0;
        out[0] = '\0';
        get    = 0;
        for (i = 0; i < srv->nroutes; i++) {
                if (!path_score(&srv->routes[i], path)) {
                        continue;
                }
                m = srv->routes[i].r.method;
                if (strstr(out, m)) {
                        continue;
                }
                get |= !strcmp(m, "GET");
                of += (size_t)snprintf(out + of, size - of, "%s%s",
                                       of ? ", " : "", m);
                if (of >= size) {
                        return;
                }
        }
        if (get && !strstr(out, "HEAD") && of < size) {
                snprintf(out + of, size - of, ", HEAD");
        }
}

static struct MHD_Response *build_reject(ab_http_req_t *req) {
        const char *h[3];
        char allow[128];
        char msg[160];

        switch (req->reject) {
        case 404:
                return build_error(req, 404, "not found",
                                   ab_http_text(req->path));
        case 405:
                allow_header(req->srv, req->path, allow, sizeof(allow));
                h[0] = MHD_HTTP_HEADER_ALLOW;
                h[1] = allow;
                h[2] = NULL;
                snprintf(msg, sizeof(msg), "%s allows %s", req->route->r.path,
                         allow);
                return build_json(req, 405,
                                  error_json("method not allowed",
                                             ab_http_text(msg)),
                                  h);
        case 400:
                return build_error(req, 400, "bad request",
                                   json_string(req->why ? req->why : ""));
        case 503:
                return build_error(req, 503, "server busy",
                                   json_string(BUSY_DETAIL));
        default:
                snprintf(msg, sizeof(msg), "request body is over %zu bytes",
                         req->limit);
                return build_error(req, 413, "payload too large",
                                   json_string(msg));
        }
}

ab_err_t ab_http_respond_not_allowed(ab_http_req_t *req) {
        req->reject = 405;
        return answer(req, 405, build_reject(req));
}

/* ---- MHD callbacks ---- */

/* Answers a refusal before the body is read, with the connection closed
 * after it: MHD does not read a body it was not asked for, the lingering
 * close does, so the client reads the answer whatever it still sends. */
static enum MHD_Result refuse_now(ab_http_req_t *req) {
        struct MHD_Response *r;

        req->state = R_DONE;
        budget_give(req);
        conn_deadline(req->cc, C_BUSY, 0);
        linger_mark(req);
        if ((r = build_reject(req)) &&
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") !=
                MHD_YES) {
                MHD_destroy_response(r);
                r = NULL;
        }
        return queue(req, req->reject, r);
}

/* Writes \p n bytes on the connection's socket within SEND_MS. */
static int send_all(ab_http_req_t *req, const char *p, size_t n) {
        const union MHD_ConnectionInfo *ci;
        struct pollfd pfd;
        uint64_t end;
        ssize_t w;

        ci = MHD_get_connection_info(req->conn,
                                     MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci) {
                return -1;
        }
        end = now_ns() + SEND_MS * 1000000ull;
        while (n > 0) {
                w = send(ci->connect_fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w > 0) {
                        p += w;
                        n -= (size_t)w;
                        continue;
                }
                if (w < 0 && errno != EAGAIN && errno != EINTR) {
                        return -1;
                }
                pfd.fd     = ci->connect_fd;
                pfd.events = POLLOUT;
                if (now_ns() > end || poll(&pfd, 1, 50) < 0) {
                        return -1;
                }
        }
        return 0;
}

/* A chunked body went over the limit (413) or the body budget (503).
 * MHD queues an answer only before the body or once all of it came, which
 * may be never, so the answer is written here, behind MHD's back (it has
 * sent nothing for this request and sends nothing more: MHD_NO closes the
 * connection, lingering). */
static enum MHD_Result refuse_midway(ab_http_req_t *req) {
        char head[256];
        char msg[96];
        char ra[48];
        char *body;
        json_t *j;
        int hl;

        req->state  = R_DONE;
        req->status = req->reject;
        budget_give(req);
        conn_deadline(req->cc, C_BUSY, 0);
        linger_mark(req);
        ra[0] = '\0';
        if (req->reject == 503) {
                j = error_json("server busy", json_string(BUSY_DETAIL));
                snprintf(ra, sizeof(ra), "Retry-After: %u\r\n",
                         req->retry_after);
        } else {
                snprintf(msg, sizeof(msg), "request body is over %zu bytes",
                         req->limit);
                j = error_json("payload too large", json_string(msg));
        }
        body = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!body) {
                return MHD_NO;
        }
        hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %s\r\n"
                      "Connection: close\r\n%s"
                      "Content-Type: " CT_JSON "\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      req->reject == 503 ? "503 Service Unavailable"
                                         : "413 Content Too Large",
                      ra, strlen(body));
        if (hl > 0 && (size_t)hl < sizeof(head) &&
            !send_all(req, head, (size_t)hl)) {
                send_all(req, body, strlen(body));
        }
        free(body);
        return MHD_NO;
}

/* MHD_OPTION_URI_LOG_CALLBACK: the one place the URI is seen before MHD
 * decodes it. An encoded / in the path would let "/admin%2Frbac" name
 * another resource to a proxy than to us, and an encoded NUL cuts the
 * decoded text short: both are refused (on_headers). Returns NULL, the
 * request's con_cls as before. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn) {
        const union MHD_ConnectionInfo *ci;
        struct conn_ctx *cc;
        const char *bad = NULL, *p;
        int query = 0;

        (void)cls;
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (!ci || !(cc = ci->socket_context)) {
                return NULL;
        }
        for (p = uri; *p && !bad; p++) {
                if (*p == '?') {
                        query = 1;
                } else if (*p == '%' && p[1] == '0' && p[2] == '0') {
                        bad = "an encoded NUL (%00) in the URI";
                } else if (*p == '%' && !query && p[1] == '2' &&
                           (p[2] == 'F' || p[2] == 'f')) {
                        bad = "an encoded / (%2F) in the path";
                }
        }
        cc->bad_uri = bad;
        return NULL;
}

/* The request's headers, in the order they came. */
#define HDRS_MAX 128
struct hdrs {
        const char *key[HDRS_MAX];
        const char *val[HDRS_MAX];
        int n;
        int over;
};

static enum MHD_Result hdr_collect(void *cls, enum MHD_ValueKind kind,
                                   const char *key, const char *value) {
        struct hdrs *h = cls;

        (void)kind;
        if (h->n == HDRS_MAX) {
                h->over = 1;
                return MHD_NO;
        }
        h->key[h->n]   = key;
        h->val[h->n++] = value ? value : "";
        return MHD_YES;
}

/* Whether a header value held a NUL, which MHD 0.9.75 does not refuse:
 * it cuts the value there (the part after it is silently dropped). Its
 * values point into its read buffer, where each line's CR LF (or LF) is
 * overwritten with NULs, so between the end of a value and the next
 * line's name there are one or two NULs and nothing else; a NUL inside
 * the value leaves its rest there, or one NUL too many. The last value
 * is followed by its line end and the blank line's, all NULs. Values
 * that are not where the next line suggests (folded lines, which RFC
 * 9112 lets a server refuse anyway) are checked as far as that goes. */
static int hdr_has_nul(const struct hdrs *h) {
        const char *end, *next;
        int i;

        for (i = 0; i < h->n; i++) {
                end  = h->val[i] + strlen(h->val[i]);
                next = i + 1 < h->n ? h->key[i + 1] : NULL;
                if (!next) {
                        if (end[1] != '\0') {
                                return 1;
                        }
                        continue;
                }
                if (next <= end || next - end > 64) {
                        continue; /* not adjacent: cannot tell */
                }
                if (next - end > 2) {
                        return 1;
                }
                for (; end < next; end++) {
                        if (*end) {
                                return 1;
                        }
                }
        }
        return 0;
}

/* Framing we refuse ourselves (RFC 9112 6.1, 6.3; 400 and close): a
 * Transfer-Encoding other than chunked, one together with a
 * Content-Length (which one frames the body is where request smuggling
 * lives), two different Content-Lengths, a NUL in a header value, an
 * encoded / or NUL in the URI. MHD takes the first Content-Length and
 * lets Transfer-Encoding win, silently. */
static const char *bad_framing(ab_http_req_t *req, const char *cl,
                               const char *te) {
        struct hdrs h;
        const char *bad;
        int i;

        if (req->cc && (bad = req->cc->bad_uri)) {
                req->cc->bad_uri = NULL;
                return bad;
        }
        if (te && strcasecmp(te, "chunked")) {
                return "Transfer-Encoding must be chunked";
        }
        if (te && cl) {
                return "both Content-Length and Transfer-Encoding";
        }
        h.n    = 0;
        h.over = 0;
        MHD_get_connection_values(req->conn, MHD_HEADER_KIND, hdr_collect,
                                  &h);
        for (i = 0; cl && i < h.n; i++) {
                if (!strcasecmp(h.key[i], MHD_HTTP_HEADER_CONTENT_LENGTH) &&
                    strcmp(h.val[i], cl)) {
                        return "two different Content-Length headers";
                }
        }
        for (i = 0; te && i < h.n; i++) {
                if (!strcasecmp(h.key[i], MHD_HTTP_HEADER_TRANSFER_ENCODING) &&
                    h.val[i] != te) {
                        return "two Transfer-Encoding headers";
                }
        }
        if (!h.over && hdr_has_nul(&h)) {
                return "a NUL in a header value";
        }
        return NULL;
}

/* Runs the route's check with the headers. @returns 1 when it answered
 * (queued, *retp MHD's verdict), else 0 to go on. The answer closes the
 * connection: a body may be on its way that nothing will read but the
 * lingering close. */
static int run_check(ab_http_t *srv, ab_http_req_t *req,
                     enum MHD_Result *retp) {
        struct MHD_Response *r;
        int status;

        pthread_mutex_lock(&req->lock);
        req->state    = R_HANDLER; /* so that it may answer */
        req->checking = 1;
        pthread_mutex_unlock(&req->lock);
        req->route->r.check(req, srv->conf.opaque);
        pthread_mutex_lock(&req->lock);
        r             = req->resp;
        status        = req->resp_status;
        req->resp     = NULL;
        req->state    = r ? R_DONE : R_NEW;
        req->checking = 0;
        pthread_mutex_unlock(&req->lock);
        if (!r) {
                return 0;
        }
        conn_deadline(req->cc, C_BUSY, 0);
        linger_mark(req);
        if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") !=
            MHD_YES) {
                MHD_destroy_response(r);
                r = NULL;
        }
        *retp = queue(req, status, r);
        return 1;
}

static enum MHD_Result on_headers(ab_http_t *srv, ab_http_req_t *req) {
        enum MHD_Result ret;
        const char *cl;
        const char *te;
        unsigned long long n;
        char *end;
        char *nb;

        conn_deadline(req->cc, C_BODY, srv->conf.body_timeout_ms);
        req->route = match(srv, req->path, req->method, &req->reject);
        /* A HEAD runs the GET handler, which sees "GET": a handler that
         * serves several methods cannot mistake it for another one (MHD
         * sends a HEAD's headers without the body). */
        req->routed = req->route && !req->reject ? req->route->r.method
                                                 : req->method;
        req->limit = req->route && req->route->r.max_body
                         ? req->route->r.max_body
                         : srv->conf.max_body;
        cl = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
        te = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                         MHD_HTTP_HEADER_TRANSFER_ENCODING);
        if ((req->why = bad_framing(req, cl, te))) {
                req->reject = 400;
                return refuse_now(req);
        }
        if (req->reject) {
                /* 404, 405: without a body answered on the final call,
                 * the connection kept; with one, now. */
                return te || (cl && strcmp(cl, "0")) ? refuse_now(req)
                                                     : MHD_YES;
        }
        /* Credentials before the body: refused, not a byte of it is
         * read or held. */
        if (req->route->r.check && run_check(srv, req, &ret)) {
                return ret;
        }
        if (!cl) {
                return MHD_YES;
        }
        errno = 0;
        n     = strtoull(cl, &end, 10);
        if (errno || end == cl || *end) {
                return MHD_YES; /* MHD refuses malformed lengths itself */
        }
        if (n > req->limit) {
                /* Expect: 100-continue or not, the client hears the 413
                 * before it sends the body (or while it does). */
                req->reject = 413;
                return refuse_now(req);
        }
        /* The whole announced length is reserved now: a stalled upload
         * holds its budget from its first byte to its last. */
        if (n && budget_take(req, (size_t)n)) {
                req->reject = 503;
                return refuse_now(req);
        }
        if (n + 1 > req->cap) {
                if (!(nb = realloc(req->body, n + 1))) {
                        return MHD_NO;
                }
                req->body = nb;
                req->cap  = n + 1;
        }
        return MHD_YES;
}

static enum MHD_Result on_data(ab_http_req_t *req, const char *data,
                               size_t n) {
        size_t need;
        size_t ncap;
        char *nb;

        if (req->reject) {
                return MHD_YES; /* refused before its body: not reached */
        }
        if (n > req->limit - req->len) {
                req->reject = 413;
                req->len    = 0;
                return refuse_midway(req);
        }
        /* A chunked body reserves as it comes. */
        if (req->len + n > req->reserved &&
            budget_take(req, req->len + n - req->reserved)) {
                req->reject = 503;
                req->len    = 0;
                return refuse_midway(req);
        }
        need = req->len + n + 1;
        if (need > req->cap) {
                ncap = req->cap ? req->cap : BODY_INIT;
                while (ncap < need) {
                        ncap *= 2;
                }
                if (ncap > req->limit + 1 && need <= req->limit + 1) {
                        ncap = req->limit + 1;
                }
                if (!(nb = realloc(req->body, ncap))) {
                        return MHD_NO;
                }
                req->body = nb;
                req->cap  = ncap;
        }
        memcpy(req->body + req->len, data, n);
        req->len += n;
        req->body[req->len] = '\0';
        return MHD_YES;
}

static enum MHD_Result on_final(ab_http_t *srv, ab_http_req_t *req) {
        struct MHD_Response *r;
        int status;

        pthread_mutex_lock(&req->lock);
        if (req->state == R_RESUMING) {
                r          = req->resp;
                status     = req->resp_status;
                req->resp  = NULL;
                req->state = R_DONE;
                pthread_mutex_unlock(&req->lock);
                return queue(req, status, r);
        }
        if (req->state != R_NEW) {
                /* Called again without news (should not happen). */
                pthread_mutex_unlock(&req->lock);
                return MHD_YES;
        }
        req->state = R_HANDLER;
        pthread_mutex_unlock(&req->lock);
        /* The body is whole: from here on it is the handler's (ingest
         * bounds what it holds with MAX_INFLIGHT_REQUESTS). */
        budget_give(req);
        conn_deadline(req->cc, C_BUSY, 0);

        if (req->reject) {
                req->state = R_DONE;
                return queue(req, req->reject, build_reject(req));
        }

        req->route->r.handler(req, srv->conf.opaque);

        pthread_mutex_lock(&req->lock);
        if (req->resp) {
                r          = req->resp;
                status     = req->resp_status;
                req->resp  = NULL;
                req->state = R_DONE;
                pthread_mutex_unlock(&req->lock);
                return queue(req, status, r);
        }
        if (req->state == R_ASYNC &&
            !atomic_load(&srv->forcing)) {
                atomic_fetch_add(&srv->nsuspended, 1);
                MHD_suspend_connection(req->conn);
                req->state = R_SUSPENDED;
                pthread_mutex_unlock(&req->lock);
                return MHD_YES;
        }
        status     = req->state == R_ASYNC ? 503 : 500;
        req->state = R_DONE;
        pthread_mutex_unlock(&req->lock);
        if (status == 503) {
                return queue(req, 503,
                             build_error(req, 503, "shutting down", NULL));
        }
        ab_error("http", "%s %s: handler returned without an answer",
                 req->method, req->path);
        return queue(req, 500,
                     build_error(req, 500, "internal error",
                                 json_string("handler gave no answer")));
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn,
                                 const char *url, const char *method,
                                 const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls) {
        ab_http_t *srv;
        ab_http_req_t *req;
        size_t n;

        (void)version;
        srv = cls;
        req = *con_cls;
        if (!req) {
                if (!(req = req_get(srv, conn))) {
                        return MHD_NO;
                }
                *con_cls    = req;
                req->t0     = now_ns();
                req->method = method;
                req->path   = url;
                atomic_fetch_add(&srv->inflight, 1);
                return on_headers(srv, req);
        }
        if (*upload_data_size) {
                n                 = *upload_data_size;
                *upload_data_size = 0;
                return on_data(req, upload_data, n);
        }
        return on_final(srv, req);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe) {
        ab_http_t *srv;
        ab_http_req_t *req;
        const char *route;
        char st[16];
        double secs;

        (void)conn;
        srv = cls;
        req = *con_cls;
        if (!req) {
                return;
        }
        *con_cls = NULL;
        budget_give(req);
        /* The next request's headers are due from now. */
        if (req->cc) {
                conn_deadline(req->cc, C_HEAD, srv->conf.header_timeout_ms);
        }

        secs  = (double)(now_ns() - req->t0) / 1e9;
        route = req->route ? req->route->r.path : "unmatched";
        if (req->status) {
                snprintf(st, sizeof(st), "%d", req->status);
        } else {
                snprintf(st, sizeof(st), "aborted");
        }
        ab_metric_inc(AB_METRIC_WITH(srv->m_req, route, st));
        ab_metric_observe(req->route ? req->route->dur : srv->dur_unmatched,
                          secs);
        ab_debug("http", "%s %s %s %.3fms %s%s", req->method, req->path, st,
                 secs * 1e3, ab_http_req_remote(req),
                 toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                                                            : " (cut short)");

        pthread_mutex_lock(&req->lock);
        req->state = R_DONE;
        req->conn  = NULL;
        if (req->resp) { /* resumed but never served (daemon shutdown) */
                MHD_destroy_response(req->resp);
                req->resp = NULL;
        }
        pthread_mutex_unlock(&req->lock);

        pthread_mutex_lock(&srv->lock);
        if (req->linked) {
                if (req->prev) {
                        req->prev->next = req->next;
                } else {
                        srv->held = req->next;
                }
                if (req->next) {
                        req->next->prev = req->prev;
                }
                req->linked = 0;
        }
        if (atomic_fetch_sub(&srv->inflight, 1) == 1 &&
            atomic_load(&srv->stopping)) {
                pthread_cond_broadcast(&srv->cond);
        }
        pthread_mutex_unlock(&srv->lock);
        req_unref(req, 1);
}

static void on_conn(void *cls, struct MHD_Connection *conn,
                    void **socket_context,
                    enum MHD_ConnectionNotificationCode toe) {
        const union MHD_ConnectionInfo *ci;
        ab_http_t *srv = cls;
        struct conn_ctx *cc;

        if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
                *socket_context = conn_start(srv, conn);
                return;
        }
        if ((cc = *socket_context)) {
                conn_end(srv, cc);
                if (cc->linger && (ci = MHD_get_connection_info(
                                       conn, MHD_CONNECTION_INFO_CONNECTION_FD))) {
                        linger_add(&srv->lg, ci->connect_fd);
                }
                if (cc->spare) {
                        req_free(cc->spare);
                }
                free(cc);
                *socket_context = NULL;
        }
}

static void on_log(void *cls, const char *fmt, va_list ap) {
        char msg[512];
        size_t n;

        (void)cls;
        if (ab_log_level_current < AB_LOG_DEBUG) {
                return;
        }
        vsnprintf(msg, sizeof(msg), fmt, ap);
        n = strlen(msg);
        while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
                msg[--n] = '\0';
        }
        ab_debug("http", "libmicrohttpd: %s", msg);
}

/* ---- free routes ---- */

static void h_healthz(ab_http_req_t *req, void *opaque) {
        (void)opaque;
        respond_static(req, 200, CT_JSON, "{\"status\":\"ok\"}");
}

static void h_readyz(ab_http_req_t *req, void *opaque) {
        char reason[256];

        reason[0] = '\0';
        if (!req->srv->conf.ready ||
            req->srv->conf.ready(req->srv->conf.ready_opaque
                                     ? req->srv->conf.ready_opaque
                                     : opaque,
                                 reason, sizeof(reason))) {
                respond_static(req, 200, CT_JSON, "{\"status\":\"ready\"}");
                return;
        }
        ab_http_respond_error(req, 503, "not ready",
                              json_string(reason[0] ? reason : "not ready"));
}

static void h_metrics(ab_http_req_t *req, void *opaque) {
        char *buf;
        size_t len;

        (void)opaque;
        if (ab_metrics_render(req->srv->metrics, &buf, &len) != AB_OK) {
                ab_http_respond_error(req, 500, "internal error",
                                      json_string("out of memory"));
                return;
        }
        answer(req, 200,
               build(req, 200, CT_PROM, buf, len, MHD_RESPMEM_MUST_FREE,
                     NULL));
}

static const ab_http_route_t free_routes[] = {
    {.method = "GET", .path = "/healthz", .handler = h_healthz},
    {.method = "GET", .path = "/readyz", .handler = h_readyz},
    {.method = "GET", .path = "/metrics", .handler = h_metrics},
};

/* ---- server ---- */

/* One listening socket on ai (port from ai), SO_REUSEPORT when asked. */
static int listen_one(const struct addrinfo *ai, int reuseport) {
        int one;
        int zero;
        int fd;

        one  = 1;
        zero = 0;
        fd   = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                      0);
        if (fd < 0) {
                return -1;
        }
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
            (reuseport &&
             setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
            (ai->ai_family == AF_INET6 &&
             setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero))) ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 1024)) {
                close(fd);
                return -1;
        }
        return fd;
}

/* Opens srv->nd listening sockets on the same port (the first one picks
 * it when the port is 0). */
static int listen_on(ab_http_t *srv, char *errstr, size_t errstr_size) {
        struct addrinfo hints;
        struct addrinfo *ai;
        struct sockaddr_storage ss;
        socklen_t sl;
        char ps[16];
        int rc;
        int i;

        memset(&hints, 0, sizeof(hints));
        hints.ai_family   = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags    = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
        for (i = 0; i < srv->nd; i++) {
                snprintf(ps, sizeof(ps), "%d", i ? srv->port : srv->conf.port);
                if ((rc = getaddrinfo(srv->conf.bind, ps, &hints, &ai))) {
                        ab_errstr_set(errstr, errstr_size,
                                      "http: bad bind address \"%s\": %s",
                                      srv->conf.bind, gai_strerror(rc));
                        return -1;
                }
                /* SO_REUSEPORT would happily share the port with another
                 * process: first check it is free with a plain bind. */
                if (i == 0 && srv->nd > 1 && srv->conf.port &&
                    (rc = listen_one(ai, 0)) >= 0) {
                        close(rc);
                } else if (i == 0 && srv->nd > 1 && srv->conf.port) {
                        freeaddrinfo(ai);
                        ab_errstr_set(errstr, errstr_size,
                                      "http: cannot listen on %s port %d: %s",
                                      srv->conf.bind, srv->conf.port,
                                      strerror(errno));
                        return -1;
                }
                srv->lfd[i] = listen_one(ai, srv->nd > 1);
                freeaddrinfo(ai);
                if (srv->lfd[i] < 0) {
                        ab_errstr_set(errstr, errstr_size,
                                      "http: cannot listen on %s port %d: %s",
                                      srv->conf.bind,
                                      i ? srv->port : srv->conf.port,
                                      strerror(errno));
                        return -1;
                }
                if (i) {
                        continue;
                }
                sl = sizeof(ss);
                if (getsockname(srv->lfd[0], (struct sockaddr *)&ss, &sl)) {
                        ab_errstr_set(errstr, errstr_size,
                                      "http: getsockname: %s",
                                      strerror(errno));
                        return -1;
                }
                srv->port =
                    ntohs(ss.ss_family == AF_INET6
                              ? ((struct sockaddr_in6 *)&ss)->sin6_port
                              : ((struct sockaddr_in *)&ss)->sin_port);
        }
        return 0;
}

static ab_err_t add_routes(ab_http_t *srv, const ab_http_route_t *routes,
                           size_t n, char *errstr, size_t errstr_size) {
        char e[256];
        size_t i;
        size_t k;
        struct route *rt;

        for (i = 0; i < n; i++) {
                if (!routes[i].method || !routes[i].path ||
                    routes[i].path[0] != '/' || !routes[i].handler) {
                        ab_errstr_set(errstr, errstr_size,
                                      "http: route %zu needs a method, a "
                                      "path starting with / and a handler",
                                      srv->nroutes);
                        return AB_ERR_INVALID;
                }
                rt       = &srv->routes[srv->nroutes];
                rt->r    = routes[i];
                rt->plen = strlen(routes[i].path);
                /* One duration series per distinct path. */
                for (k = 0; k < srv->nroutes; k++) {
                        if (!strcmp(srv->routes[k].r.path, rt->r.path)) {
                                rt->dur = srv->routes[k].dur;
                        }
                }
                if (!rt->dur && !(rt->dur = AB_METRIC_WITH(srv->m_dur,
                                                          rt->r.path))) {
                        snprintf(e, sizeof(e), "http: too many routes");
                        ab_errstr_set(errstr, errstr_size, "%s", e);
                        return AB_ERR_INVALID;
                }
                srv->nroutes++;
        }
        return AB_OK;
}

ab_http_t *ab_http_new(const ab_http_conf_t *conf, char *errstr,
                       size_t errstr_size) {
        pthread_condattr_t ca;
        ab_metric_t *m;
        ab_http_t *srv;
        size_t n;
        long cpus;
        int i;

        if (!(srv = calloc(1, sizeof(*srv)))) {
                ab_errstr_set(errstr, errstr_size, "http: out of memory");
                return NULL;
        }
        for (i = 0; i < MAX_THREADS; i++) {
                srv->lfd[i] = -1;
        }
        srv->conf = *conf;
        pthread_mutex_init(&srv->lock, NULL);
        pthread_mutex_init(&srv->clock, NULL);
        atomic_init(&srv->body_held, 0);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&srv->cond, &ca);
        pthread_condattr_destroy(&ca);
        snprintf(srv->service, sizeof(srv->service), "%s",
                 conf->service ? conf->service : "");
        srv->conf.service = srv->service;
        if (!srv->conf.bind) {
                srv->conf.bind = "0.0.0.0";
        }
        if (!srv->conf.max_body) {
                srv->conf.max_body = 1024 * 1024;
        }
        if (!srv->conf.max_connections) {
                srv->conf.max_connections = 1024;
        }
        if (!srv->conf.max_connections_per_ip) {
                srv->conf.max_connections_per_ip = 64;
        }
        if (!srv->conf.timeout_s) {
                srv->conf.timeout_s = 30;
        }
        if (!srv->conf.header_timeout_ms) {
                srv->conf.header_timeout_ms = 10000;
        }
        if (!srv->conf.body_timeout_ms) {
                srv->conf.body_timeout_ms = 60000;
        }
        if (!srv->conf.body_budget) {
                srv->conf.body_budget = 64 * 1024 * 1024;
        }
        if (srv->conf.max_connections > 1000000) {
                srv->conf.max_connections = 1000000;
        }
        for (srv->nips = 16; srv->nips < 2 * (size_t)srv->conf.max_connections;
             srv->nips *= 2) {
        }
        if (!(srv->ips = calloc(srv->nips, sizeof(*srv->ips)))) {
                ab_errstr_set(errstr, errstr_size, "http: out of memory");
                goto fail;
        }
        if (!srv->conf.retry_after_s) {
                srv->conf.retry_after_s = 1;
        }
        if (!srv->conf.threads) {
                cpus              = sysconf(_SC_NPROCESSORS_ONLN);
                srv->conf.threads = cpus < 1 ? 1 : (unsigned)cpus;
        }
        if (srv->conf.threads > MAX_THREADS) {
                srv->conf.threads = MAX_THREADS;
        }
        srv->nd = srv->conf.threading == AB_HTTP_EPOLL_REUSEPORT
                      ? (int)srv->conf.threads
                      : 1;
        if ((unsigned)srv->conf.threading >
            (unsigned)AB_HTTP_THREAD_PER_CONNECTION) {
                ab_errstr_set(errstr, errstr_size, "http: bad threading mode");
                goto fail;
        }
        if (srv->conf.port < 0 || srv->conf.port > 65535) {
                ab_errstr_set(errstr, errstr_size, "http: bad port %d",
                              srv->conf.port);
                goto fail;
        }

        if ((srv->metrics = conf->metrics) == NULL) {
                if (!(srv->metrics =
                          ab_metrics_new(conf->service, errstr, errstr_size))) {
                        goto fail;
                }
                srv->own_metrics = 1;
        }
        if (!(srv->m_req = ab_metrics_counter(
                  srv->metrics, "http_requests_total",
                  "HTTP requests answered, by route and status.",
                  "route,status", errstr, errstr_size)) ||
            !(srv->m_dur = ab_metrics_histogram(
                  srv->metrics, "http_request_duration_seconds",
                  "Time from request headers to the end of the answer, by "
                  "route.",
                  "route", dur_buckets,
                  sizeof(dur_buckets) / sizeof(dur_buckets[0]), errstr,
                  errstr_size)) ||
            !(srv->dur_unmatched = AB_METRIC_WITH(srv->m_dur, "unmatched"))) {
                goto fail;
        }
        if (!(m = ab_metrics_counter(
                  srv->metrics, "http_connections_refused_total",
                  "Connections closed as they came: over the connection "
                  "limit (limit) or the per-address one (per_ip).",
                  "reason", errstr, errstr_size)) ||
            !(srv->m_refused_limit = AB_METRIC_WITH(m, "limit")) ||
            !(srv->m_refused_ip = AB_METRIC_WITH(m, "per_ip")) ||
            !(m = ab_metrics_counter(
                  srv->metrics, "http_connections_timed_out_total",
                  "Connections closed at the header or the body deadline.",
                  "phase", errstr, errstr_size)) ||
            !(srv->m_timeout_head = AB_METRIC_WITH(m, "headers")) ||
            !(srv->m_timeout_body = AB_METRIC_WITH(m, "body")) ||
            !(srv->m_evicted = ab_metrics_counter(
                  srv->metrics, "http_connections_evicted_total",
                  "Connections waiting for a request's headers closed at "
                  "the connection limit to make room for a new one.",
                  NULL, errstr, errstr_size)) ||
            !(srv->m_budget = ab_metrics_counter(
                  srv->metrics, "http_body_budget_refused_total",
                  "Requests answered 503 as their body would have taken "
                  "unfinished bodies over the body budget.",
                  NULL, errstr, errstr_size))) {
                goto fail;
        }

        for (n = 0; conf->routes && conf->routes[n].method; n++) {
        }
        if (!(srv->routes = calloc(n + 3, sizeof(*srv->routes)))) {
                ab_errstr_set(errstr, errstr_size, "http: out of memory");
                goto fail;
        }
        if (add_routes(srv, conf->routes, n, errstr, errstr_size) != AB_OK ||
            add_routes(srv, free_routes, 3, errstr, errstr_size) != AB_OK) {
                goto fail;
        }
        if (listen_on(srv, errstr, errstr_size)) {
                goto fail;
        }
        return srv;
fail:
        ab_http_destroy(srv);
        return NULL;
}

ab_err_t ab_http_start(ab_http_t *srv, char *errstr, size_t errstr_size) {
        static const char *names[] = {"epoll daemons on SO_REUSEPORT",
                                      "epoll threads on one socket",
                                      "thread per connection"};
        unsigned flags;
        unsigned pool;
        unsigned limit;
        int i;

        if (srv->started) {
                ab_errstr_set(errstr, errstr_size, "http: already started");
                return AB_ERR_INVALID;
        }
        switch (srv->conf.threading) {
        case AB_HTTP_THREAD_PER_CONNECTION:
                flags = MHD_USE_THREAD_PER_CONNECTION |
                        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                        MHD_USE_ITC;
                pool  = 1;
                break;
        case AB_HTTP_EPOLL_SHARED:
                flags = MHD_USE_EPOLL_INTERNAL_THREAD |
                        MHD_ALLOW_SUSPEND_RESUME;
                pool  = srv->conf.threads;
                break;
        default:
                flags = MHD_USE_EPOLL_INTERNAL_THREAD |
                        MHD_ALLOW_SUSPEND_RESUME;
                pool  = 1;
                break;
        }
        flags |= MHD_USE_ERROR_LOG;
        /* Process-wide, and meant so: see MMAP_BODY. */
        if (!mallopt(M_MMAP_THRESHOLD, MMAP_BODY)) {
                ab_warn("http", "mallopt(M_MMAP_THRESHOLD) failed: freed "
                                "bodies may stay in the heap");
        }
        srv->lg.tick     = conn_tick;
        srv->lg.tick_arg = srv;
        if (linger_start(&srv->lg)) {
                ab_errstr_set(errstr, errstr_size,
                              "http: cannot start the lingering-close "
                              "thread: %s",
                              strerror(errno));
                return AB_ERR_IO;
        }
        /* Our own count refuses first (see conn_start()); MHD's limit only
         * backs it up, above it, since at its limit MHD leaves clients in
         * the backlog. MHD splits it over a pool's workers. */
        limit = (srv->conf.max_connections + 64) * pool;
        for (i = 0; i < srv->nd; i++) {
                srv->d[i] = MHD_start_daemon(
                    flags, 0, on_accept, srv, on_access, srv,
                    MHD_OPTION_EXTERNAL_LOGGER, on_log, srv,
                    MHD_OPTION_LISTEN_SOCKET, srv->lfd[i],
                    MHD_OPTION_CONNECTION_LIMIT, limit,
                    MHD_OPTION_CONNECTION_TIMEOUT, srv->conf.timeout_s,
                    MHD_OPTION_THREAD_POOL_SIZE, pool,
                    MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
                    MHD_OPTION_NOTIFY_CONNECTION, on_conn, srv,
                    MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
                    MHD_OPTION_END);
                if (!srv->d[i]) {
                        ab_errstr_set(errstr, errstr_size,
                                      "http: cannot start libmicrohttpd on "
                                      "port %d",
                                      srv->port);
                        while (i-- > 0) {
                                MHD_stop_daemon(srv->d[i]);
                                srv->d[i] = NULL;
                        }
                        linger_stop(&srv->lg);
                        return AB_ERR_IO;
                }
        }
        srv->started = 1;
        ab_info("http", "listening on %s port %d (%u %s)", srv->conf.bind,
                srv->port, srv->nd > 1 ? (unsigned)srv->nd : pool,
                names[srv->conf.threading]);
        return AB_OK;
}

int ab_http_port(const ab_http_t *srv) {
        return srv->port;
}

ab_metrics_t *ab_http_metrics(ab_http_t *srv) {
        return srv->metrics;
}

static void deadline_after(struct timespec *ts, int ms) {
        clock_gettime(CLOCK_MONOTONIC, ts);
        ts->tv_sec += ms / 1000;
        ts->tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts->tv_nsec >= 1000000000L) {
                ts->tv_sec++;
                ts->tv_nsec -= 1000000000L;
        }
}

/* Waits (server lock held) until nothing is in flight or the deadline. */
static int wait_idle(ab_http_t *srv, int ms) {
        struct timespec ts;

        deadline_after(&ts, ms);
        while (atomic_load(&srv->inflight) > 0) {
                if (pthread_cond_timedwait(&srv->cond, &srv->lock, &ts) ==
                    ETIMEDOUT) {
                        break;
                }
        }
        return atomic_load(&srv->inflight) == 0;
}

/* Answers 503 to every suspended request and resumes it. */
static void force_answers(ab_http_t *srv) {
        struct MHD_Connection **conns;
        struct MHD_Response *r;
        ab_http_req_t *req;
        size_t cnt;
        size_t n;
        size_t i;

        pthread_mutex_lock(&srv->lock);
        for (cnt = 0, req = srv->held; req; req = req->next) {
                cnt++;
        }
        conns = calloc(cnt ? cnt : 1, sizeof(*conns));
        n     = 0;
        for (req = srv->held; req && conns; req = req->next) {
                pthread_mutex_lock(&req->lock);
                /* The handler still waits for its outcome (Kafka's
                 * acknowledgement): nobody knows it, and saying "failed"
                 * would be a lie when the events arrive after all. */
                if (req->state == R_SUSPENDED && !req->resp &&
                    (r = build_error(
                         req, 503,
                         "shutting down before this request's outcome was "
                         "known: its events may or may not have been "
                         "accepted; resend them with the same ids",
                         json_pack("{s:b}", "outcomeKnown", 0)))) {
                        req->resp        = r;
                        req->resp_status = 503;
                        req->state       = R_RESUMING;
                        conns[n++]       = req->conn;
                }
                pthread_mutex_unlock(&req->lock);
        }
        pthread_mutex_unlock(&srv->lock);
        for (i = 0; i < n; i++) {
                MHD_resume_connection(conns[i]);
                atomic_fetch_sub(&srv->nsuspended, 1);
        }
        free(conns);
        if (n) {
                ab_warn("http", "stop: answered %zu pending requests with 503",
                        n);
        }
}

ab_err_t ab_http_stop(ab_http_t *srv, int timeout_ms) {
        struct timespec ms1 = {0, 1000000L};
        ab_err_t err;
        int idle;
        int i;

        if (!srv->started || srv->stopped) {
                return AB_OK;
        }
        err = AB_OK;
        atomic_store(&srv->stopping, 1);
        for (i = 0; i < srv->nd; i++) {
                MHD_quiesce_daemon(srv->d[i]); /* our lfd, closed later */
        }

        pthread_mutex_lock(&srv->lock);
        idle = wait_idle(srv, timeout_ms < 0 ? 0 : timeout_ms);
        pthread_mutex_unlock(&srv->lock);
        /* From here on nothing new is suspended (keep-alive clients may
         * still send requests): they and any leftover get 503. */
        atomic_store(&srv->forcing, 1);
        force_answers(srv);
        if (!idle) {
                err = AB_ERR_TIMEOUT;
                pthread_mutex_lock(&srv->lock);
                wait_idle(srv, 1000);
                pthread_mutex_unlock(&srv->lock);
        }
        /* A resume an answerer has decided on is nanoseconds away; MHD
         * must not be stopped with a connection still suspended. */
        while (atomic_load(&srv->nsuspended) > 0) {
                force_answers(srv);
                nanosleep(&ms1, NULL);
        }
        for (i = 0; i < srv->nd; i++) {
                MHD_stop_daemon(srv->d[i]);
                srv->d[i] = NULL;
                close(srv->lfd[i]);
                srv->lfd[i] = -1;
        }
        linger_stop(&srv->lg); /* after MHD: its last closes linger too */
        srv->stopped = 1;
        ab_info("http", "stopped%s",
                err == AB_OK ? "" : " (requests were cut short)");
        return err;
}

void ab_http_destroy(ab_http_t *srv) {
        int i;

        if (!srv) {
                return;
        }
        if (srv->started) {
                ab_http_stop(srv, 5000);
        }
        for (i = 0; i < MAX_THREADS; i++) {
                if (srv->lfd[i] >= 0) {
                        close(srv->lfd[i]);
                }
        }
        if (srv->own_metrics) {
                ab_metrics_destroy(srv->metrics);
        }
        free(srv->routes);
        free(srv->ips);
        pthread_cond_destroy(&srv->cond);
        pthread_mutex_destroy(&srv->clock);
        pthread_mutex_destroy(&srv->lock);
        free(srv);
}
