/* aetherbus - Apache-2.0
 *
 * ab_itest_raw: HTTP/1.1 over a bare TCP socket for the tests that need
 * what libcurl will not do: exact request bytes (bad framing, bytes that
 * are not UTF-8, HEAD), a client that keeps writing a body the server
 * refused, reading the whole answer and seeing whether the server closed
 * the connection afterwards. Every call is bounded in time.
 */
#ifndef AB_ITEST_RAW_H
#define AB_ITEST_RAW_H

#include <stddef.h>

/** One answer read off a raw connection. */
typedef struct ab_itest_raw_s {
        int status;        /**< 0 when no status line came */
        char *head;        /**< status line and headers, NUL-terminated */
        char *body;        /**< NUL-terminated; "" when none */
        size_t body_len;
        int complete;      /**< the whole answer came (by Content-Length,
                                chunked framing, or the close) */
        int closed;        /**< the server closed (FIN or reset) after it */
        size_t sent;       /**< request bytes the server took */
        char error[256];   /**< why something is missing */
} ab_itest_raw_t;

/** @returns a connected TCP socket to 127.0.0.1:\p port, or -1. */
int ab_itest_raw_connect(int port);

/** @returns a non-blocking TCP socket to 127.0.0.1:\p port bound to the
 *           source address \p src (any of 127/8: a client address of its
 *           own for per-address limits), or -1. */
int ab_itest_raw_connect_from(const char *src, int port);

/**
 * @brief Waits up to \p ms for the server to close \p fd (EOF or reset),
 *        dropping whatever it sends.
 * @returns 1 when it closed, 0 when it is still open.
 */
int ab_itest_raw_wait_close(int fd, int ms);

/**
 * @brief Writes \p req on \p fd while reading the answer, the way a client
 *        that sends a big body and watches for an early answer does:
 *        writing stops when the server stops taking bytes (reset, broken
 *        pipe, or nothing taken for \p stall_ms); reading goes on until a
 *        whole answer came or \p timeout_ms passed. \p head_only: the
 *        answer to a HEAD (no body whatever Content-Length says).
 *        Then waits up to \p close_ms for the server to close.
 * @returns 0 when a whole answer came, else -1 (res->error says why).
 *          ab_itest_raw_clear() \p res afterwards in either case.
 */
int ab_itest_raw_exchange(int fd, const void *req, size_t len, int head_only,
                          int stall_ms, int timeout_ms, int close_ms,
                          ab_itest_raw_t *res);

/**
 * @brief One request on a fresh connection (ab_itest_raw_exchange() with
 *        a 2 s stall, 10 s timeout and a 500 ms close wait), then closes.
 * @returns as ab_itest_raw_exchange().
 */
int ab_itest_raw_request(int port, const void *req, size_t len,
                         int head_only, ab_itest_raw_t *res);

/** @brief ab_itest_raw_request() of a NUL-terminated \p req. */
int ab_itest_raw_requests(int port, const char *req, int head_only,
                          ab_itest_raw_t *res);

/**
 * @brief Finds header \p name (case-insensitive) in \p res->head.
 * @returns 0 with the trimmed value in \p out, or -1.
 */
int ab_itest_raw_header(const ab_itest_raw_t *res, const char *name,
                        char *out, size_t out_size);

/** @brief Frees what \p res holds and zeroes it. */
void ab_itest_raw_clear(ab_itest_raw_t *res);

#endif
