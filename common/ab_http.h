/* aetherbus - Apache-2.0
 *
 * ab_http: the HTTP server every service runs, on libmicrohttpd. Owns
 * listening, the route table (HEAD served by GET routes, 405 + Allow),
 * request bodies (one buffer, size-limited; a 413 the client can always
 * read, then a lingering close), the framing it refuses (400: see
 * bad_framing() in ab_http.c), responses and the shared JSON error
 * format, asynchronous answers from
 * other threads (suspend/resume), the connection limits (in all, per
 * client address: refused at once) and the deadlines of a request's
 * headers and body (total, not idle), graceful stop, /healthz, /readyz,
 * /metrics, the access log and the per-route request metrics.
 * What a route does stays with the service (<svc>_http.c).
 *
 * Threads: handlers run on the server's threads and must not block; a
 * handler that waits for something (a Kafka delivery report) calls
 * ab_http_req_suspend() and answers later from any thread.
 */
#ifndef AB_HTTP_H
#define AB_HTTP_H

#include <jansson.h>
#include <stddef.h>

#include "ab_err.h"
#include "ab_metrics.h"

typedef struct ab_http_s ab_http_t;
typedef struct ab_http_req_s ab_http_req_t;

/**
 * A route handler. It answers with one ab_http_respond*() call before
 * returning, or calls ab_http_req_suspend() and answers later (from any
 * thread). Returning without either answers 500.
 * \p opaque is ab_http_conf_t.opaque.
 */
typedef void(ab_http_handler_t)(ab_http_req_t *req, void *opaque);

/** Route flags. */
#define AB_HTTP_PREFIX 0x1 /**< path matches every path starting with it */

/** One route; a row with method == NULL ends a table. Strings must outlive
 *  the server. The first exact match wins, then the longest prefix. */
typedef struct ab_http_route_s {
        const char *method; /**< "GET", "POST", ...; GET also serves HEAD */
        const char *path;   /**< "/events/ingest" */
        ab_http_handler_t *handler;
        int flags;          /**< AB_HTTP_PREFIX */
        size_t max_body;    /**< 0: ab_http_conf_t.max_body */
        /** Runs with the headers, before a byte of the body is read or
         *  held (credentials: an anonymous client must not make the
         *  server buffer its upload). It answers to refuse (a 401: the
         *  connection is then closed, lingering, when a body was
         *  announced) or returns without an answer to go on. It must not
         *  suspend; ab_http_req_body() is "" in it. May be NULL. */
        ab_http_handler_t *check;
} ab_http_route_t;

/** Threading model. */
typedef enum {
        /** `threads` single-threaded epoll daemons, each on its own
         *  SO_REUSEPORT listening socket, so the kernel spreads connections
         *  evenly; suspend/resume supported. Default (measured fastest and
         *  steadiest for many small keep-alive requests). ab_http_new()
         *  first checks the port is free, as SO_REUSEPORT alone would share
         *  it with another process of the same user. */
        AB_HTTP_EPOLL_REUSEPORT = 0,
        /** libmicrohttpd's own pool: `threads` epoll workers sharing one
         *  listening socket (whichever wakes first accepts, so a burst of
         *  connections can land on one worker); suspend/resume supported. */
        AB_HTTP_EPOLL_SHARED,
        /** One thread per connection (poll); no suspend/resume: for tools
         *  and comparison only. */
        AB_HTTP_THREAD_PER_CONNECTION,
} ab_http_threading_t;

/**
 * Server configuration; zero fields take the defaults shown.
 * A plain struct (not opaque) so services fill it with designated
 * initializers; ab_http_new() copies it.
 */
typedef struct ab_http_conf_s {
        const char *service;      /**< "ingest": logs, metric names */
        const char *bind;         /**< numeric address, "0.0.0.0"; "::" ok */
        int port;                 /**< 0: ephemeral (see ab_http_port()) */
        size_t max_body;          /**< bytes per request body, 1 MiB */
        unsigned max_connections; /**< 1024 in all the threads; beyond,
                                       a new one takes the place of the
                                       one that has waited longest for a
                                       request's headers, or is closed at
                                       once when each has a request under
                                       way */
        unsigned max_connections_per_ip; /**< 64: beyond, a new one from
                                       that address is closed at once */
        unsigned timeout_s;       /**< idle connection timeout, 30 s
                                       (no byte in either direction) */
        unsigned header_timeout_ms; /**< 10 s: a request's headers must
                                       be in by then, counted from the
                                       accept or the end of the previous
                                       request, however they trickle
                                       (else the connection is closed) */
        unsigned body_timeout_ms; /**< 60 s: the whole body, counted from
                                       the end of the headers */
        size_t body_budget;       /**< 64 MiB: bytes all unfinished
                                       bodies together may hold (by their
                                       Content-Length); beyond, 503 with
                                       Retry-After and close */
        ab_http_threading_t threading;
        unsigned threads;         /**< daemons/workers; 0: online CPUs,
                                       at most 16 */
        unsigned retry_after_s;   /**< Retry-After on 503 answers, 1 s */
        /** Routes (copied); the free /healthz, /readyz and /metrics follow
         *  them, so a service may override those paths. May be NULL. */
        const ab_http_route_t *routes;
        /** Registry for the http_* metrics and GET /metrics; NULL: the
         *  server makes its own. Not owned; must outlive the server. */
        ab_metrics_t *metrics;
        /** GET /readyz: returns 1 when ready, else 0 with a reason in
         *  \p reason. NULL: always ready. Runs on a server thread. */
        int (*ready)(void *opaque, char *reason, size_t reason_size);
        void *opaque;             /**< passed to handlers and ready() */
        void *ready_opaque;       /**< passed to ready() instead; may be NULL */
} ab_http_conf_t;

/**
 * @brief Creates a server, binds and listens (so ab_http_port() is known)
 *        but serves nothing until ab_http_start().
 * @returns the server (free with ab_http_destroy()), or NULL with errstr
 *          filled (bad address, port in use, bad route table).
 */
ab_http_t *ab_http_new(const ab_http_conf_t *conf, char *errstr,
                       size_t errstr_size);

/** @brief Starts serving on the server's threads.
 *  @returns AB_OK, or AB_ERR_IO with errstr filled. */
ab_err_t ab_http_start(ab_http_t *srv, char *errstr, size_t errstr_size);

/** @returns the port the server listens on (the real one for port 0). */
int ab_http_port(const ab_http_t *srv);

/**
 * @brief Graceful stop: stops accepting, answers keep-alive clients with
 *        "Connection: close", waits up to \p timeout_ms for requests in
 *        flight (suspended ones included), answers whatever is still
 *        suspended with 503 "shutting down", then stops the threads.
 *        A late ab_http_respond*() on such a request is dropped safely
 *        (it never touches the server), even after ab_http_destroy().
 * @returns AB_OK, or AB_ERR_TIMEOUT when requests were cut short.
 *          Idempotent.
 */
ab_err_t ab_http_stop(ab_http_t *srv, int timeout_ms);

/** @brief Stops (5 s bound) if needed and frees the server; NULL is a
 *         no-op. */
void ab_http_destroy(ab_http_t *srv);

/** @returns the registry /metrics renders (the one given, or the
 *           server's own). */
ab_metrics_t *ab_http_metrics(ab_http_t *srv);

/*
 * Request accessors. The returned strings belong to the request and stay
 * valid until it is answered; call them from the handler, or while the
 * request is suspended, never after the answer.
 */

/** @returns the method of the route that runs ("GET"), never NULL: "GET"
 *           for a HEAD request too, whose answer ab_http sends without
 *           its body. A handler serving several methods compares it with
 *           each one it serves and answers anything else with
 *           ab_http_respond_not_allowed(). */
const char *ab_http_req_method(const ab_http_req_t *req);

/** @returns the decoded path without the query ("/events/ingest"). */
const char *ab_http_req_path(const ab_http_req_t *req);

/** @returns the decoded query argument \p name, "" when present without a
 *           value, NULL when absent. */
const char *ab_http_req_query(const ab_http_req_t *req, const char *name);

/** @returns the header \p name (case-insensitive), or NULL. */
const char *ab_http_req_header(const ab_http_req_t *req, const char *name);

/**
 * @brief The whole request body, NUL-terminated for convenience.
 * @param lenp set to the length (may be NULL).
 * @returns the body, never NULL ("" when there is none). Owned by the
 *          request.
 */
const char *ab_http_req_body(const ab_http_req_t *req, size_t *lenp);

/**
 * @brief The body as ab_http_req_body() gives it, writable: a handler may
 *        rewrite it in place (ingest compacts payload texts in it) until
 *        it releases it. NULL (*lenp 0) when there is none.
 */
char *ab_http_req_body_writable(ab_http_req_t *req, size_t *lenp);

/**
 * @brief Drops the body once the handler has parsed it, so a request held
 *        for a long time (suspended) does not hold its body too: bounded
 *        memory when Kafka is slow. Call on the handler's thread, before
 *        it returns; ab_http_req_body() answers "" afterwards.
 */
void ab_http_req_body_release(ab_http_req_t *req);

/** @returns the client's IP address as text ("127.0.0.1", "::1"). */
const char *ab_http_req_remote(ab_http_req_t *req);

/**
 * @brief Overrides Retry-After (seconds) for this request's 503 answer.
 */
void ab_http_req_set_retry_after(ab_http_req_t *req, unsigned seconds);

/**
 * @brief Makes the answer asynchronous. Call it in the handler BEFORE
 *        handing \p req to another thread, then return. Exactly one
 *        ab_http_respond*() must follow, from any thread (the handler's
 *        included); it releases the caller's hold, after which \p req must
 *        not be used. The connection is parked (no thread, no polling)
 *        until then. If the client went away or the server was stopped
 *        meanwhile, that answer is dropped safely.
 * @returns AB_OK, or AB_ERR_UNSUPPORTED (AB_HTTP_THREAD_PER_CONNECTION, or
 *          called twice): then answer synchronously.
 */
ab_err_t ab_http_req_suspend(ab_http_req_t *req);

/*
 * Responses. Thread-safe for a suspended request; otherwise call from the
 * handler. The first answer wins: a second one returns AB_ERR_INVALID and
 * is dropped (a suspended request's hold is still released). A 503 gets
 * Retry-After unless \p headers has one.
 */

/**
 * @brief Answers with a body (copied).
 * @param content_type may be NULL (no Content-Type).
 * @param headers NULL-terminated name/value pairs, or NULL.
 * @returns AB_OK, AB_ERR_INVALID (already answered: dropped), AB_ERR_NOMEM.
 */
ab_err_t ab_http_respond(ab_http_req_t *req, int status,
                         const char *content_type, const void *body,
                         size_t len, const char *const *headers);

/** @brief Answers application/json with \p json serialised compactly.
 *         Steals the reference to \p json (even on failure).
 *  @returns as ab_http_respond(). */
ab_err_t ab_http_respond_json(ab_http_req_t *req, int status, json_t *json);

/**
 * @brief Answers 405 with the Allow header of the request's path, the
 *        answer ab_http gives itself to a method no route serves.
 * @returns as ab_http_respond().
 */
ab_err_t ab_http_respond_not_allowed(ab_http_req_t *req);

/**
 * @brief A JSON string for an answer made of what a client sent (a path,
 *        a header, a query argument): invalid UTF-8 bytes become \xNN
 *        (ab_err_utf8_clean()), where json_string() would give NULL.
 * @returns the string, or NULL only when \p s is NULL or out of memory.
 */
json_t *ab_http_text(const char *s);

/**
 * @brief Answers the shared error format {"error":error,"detail":detail}.
 *        \p error may be anything (it is made valid UTF-8).
 * @param detail a string, object or array, or NULL for null; stolen.
 * @returns as ab_http_respond().
 */
ab_err_t ab_http_respond_error(ab_http_req_t *req, int status,
                               const char *error, json_t *detail);

#endif
