/* aetherbus - Apache-2.0
 *
 * sink_client: the HTTP side of aetherbus-sink. Owns a libcurl multi
 * handle with SINK_CONCURRENCY slots (one easy handle each, kept for the
 * life of the client so connections are reused: the multi handle's
 * connection cache keeps them alive between requests), the request
 * (POST, Content-Type: application/json, Authorization: Bearer
 * EVENT_SINK_TOKEN when set, Idempotency-Key, optional Content-Encoding:
 * gzip, SINK_TIMEOUT_MS for the whole transfer) and what comes back: the
 * status, Retry-After, a bounded UTF-8-safe excerpt of the answer or the
 * curl error text, and the classification of sink_retry.
 *
 * What stays out: what a batch is (sink_batch), when to try again
 * (sink_retry, the service) and dead-lettering (the service).
 *
 * Threads: a client belongs to one thread (libcurl's multi handle rule);
 * the bodies handed to it must stay valid until their request completes.
 */
#ifndef SINK_CLIENT_H
#define SINK_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "ab_err.h"
#include "sink_retry.h"

#define SINK_TIMEOUT_MS_DEF   10000
#define SINK_CONCURRENCY_DEF  4
#define SINK_CONCURRENCY_MAX  64
/** Longest answer excerpt kept (bytes of sanitised UTF-8, NUL apart). */
#define SINK_CLIENT_EXCERPT_MAX 512

/** Settings; zero fields take the defaults shown. */
typedef struct sink_client_conf_s {
        const char *url;          /**< EVENT_SINK_URL, http or https */
        const char *token;        /**< EVENT_SINK_TOKEN; NULL/"" = none */
        int timeout_ms;           /**< SINK_TIMEOUT_MS, whole transfer */
        int connect_timeout_ms;   /**< 0: timeout_ms */
        int concurrency;          /**< SINK_CONCURRENCY slots */
        int gzip;                 /**< SINK_GZIP: compress bodies */
        int64_t retry_after_cap_ms; /**< SINK_RETRY_AFTER_CAP_MS_DEF */
} sink_client_conf_t;

/** What one request gave. */
typedef struct sink_client_result_s {
        long status;              /**< HTTP status, 0 when none */
        int curl_code;            /**< CURLcode, 0 = the transfer worked */
        sink_retry_class_t cls;   /**< sink_retry_classify() of the two */
        int64_t retry_after_ms;   /**< bounded delay, -1 when absent */
        /** The start of the answer body, invalid UTF-8 as '?', control
         *  characters as spaces; NUL-terminated. */
        char excerpt[SINK_CLIENT_EXCERPT_MAX + 1];
        /** curl's error text when curl_code != 0, else "". */
        char error[256];
        size_t body_bytes;        /**< bytes sent (after gzip) */
        int64_t elapsed_ms;       /**< submit to completion */
        void *opaque;             /**< sink_client_submit()'s */
} sink_client_result_t;

typedef struct sink_client_s sink_client_t;

/** Called by sink_client_perform() for every request that completed. */
typedef void(sink_client_done_cb_t)(const sink_client_result_t *res,
                                    void *cb_opaque);

/**
 * @brief Creates the client: checks the URL scheme, builds the slots.
 * @returns the client (sink_client_destroy()), or NULL with errstr.
 */
sink_client_t *sink_client_new(const sink_client_conf_t *conf, char *errstr,
                               size_t errstr_size);

/** @returns the number of free slots. */
int sink_client_free_slots(const sink_client_t *c);

/** @returns the number of requests in flight. */
int sink_client_in_flight(const sink_client_t *c);

/**
 * @brief Starts one POST of \p body (\p len bytes; not copied unless
 *        gzipped, so it must stay valid until the request completes) with
 *        \p idempotency_key, on a free slot. \p opaque comes back in the
 *        result.
 * @returns AB_OK; AB_ERR_UNAVAILABLE when every slot is busy; AB_ERR_NOMEM
 *          or AB_ERR_INTERNAL (gzip, curl setup) with errstr.
 */
ab_err_t sink_client_submit(sink_client_t *c, const char *body, size_t len,
                            const char *idempotency_key, void *opaque,
                            char *errstr, size_t errstr_size);

/**
 * @brief Moves the transfers on, waiting up to \p timeout_ms for
 *        something to happen when nothing is ready, and calls \p cb for
 *        each request that completed (its slot is free again when cb
 *        runs).
 * @returns the number of requests completed, or -1 when the multi
 *          handle itself failed (out of memory; the transfers stay).
 */
int sink_client_perform(sink_client_t *c, int timeout_ms,
                        sink_client_done_cb_t *cb, void *cb_opaque);

/**
 * @brief Synchronous POST: submit, then perform until it completed. The
 *        other slots' requests go on meanwhile; their completions are
 *        passed to \p cb (may be NULL when nothing else is in flight).
 * @returns AB_OK with \p res filled (whatever the answer), or the errors
 *          of sink_client_submit().
 */
ab_err_t sink_client_post(sink_client_t *c, const char *body, size_t len,
                          const char *idempotency_key,
                          sink_client_result_t *res,
                          sink_client_done_cb_t *cb, void *cb_opaque,
                          char *errstr, size_t errstr_size);

/**
 * @brief Copies at most \p max bytes of \p in into \p out (size > max) as
 *        valid UTF-8: bytes that do not start a valid sequence become
 *        '?', control characters spaces, a sequence that would cross
 *        \p max is left out. Always NUL-terminates.
 * @returns the bytes written.
 */
size_t sink_client_sanitize(const char *in, size_t len, char *out,
                            size_t max);

/** @brief Aborts what is in flight (no callbacks) and frees; NULL ok. */
void sink_client_destroy(sink_client_t *c);

#endif
