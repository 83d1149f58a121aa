/* aetherbus - Apache-2.0
 *
 * sink_retry: what an answer of the sink means for a batch, and how long
 * to wait before trying again. Owns the classification (send on, retry
 * the same batch, or bisect it because it holds an event the sink
 * refuses), exponential backoff with full jitter, and the Retry-After
 * header (delta-seconds and IMF-fixdate).
 *
 * Pure functions over plain values: no clock, no random source of its own
 * (the caller passes both), so every decision is reproducible in a test.
 */
#ifndef SINK_RETRY_H
#define SINK_RETRY_H

#include <stdint.h>

#define SINK_RETRY_BASE_MS_DEF 200
#define SINK_RETRY_CAP_MS_DEF  30000
/** Longest Retry-After honoured (a sink asking for an hour gets this). */
#define SINK_RETRY_AFTER_CAP_MS_DEF 60000

typedef enum {
        SINK_RETRY_OK = 0, /**< delivered: the batch is done */
        SINK_RETRY_RETRY,  /**< not delivered, not the events' fault:
                                send the same batch again later */
        SINK_RETRY_POISON, /**< the sink refuses what the batch holds:
                                bisect, dead-letter a refused single event */
} sink_retry_class_t;

/**
 * @brief Classifies one attempt. \p curl_code is the CURLcode of the
 *        transfer (0 = CURLE_OK); when it is not 0 there is no usable
 *        answer and the attempt is RETRY whatever \p status says
 *        (connection refused, DNS, timeout, reset, TLS: none of them
 *        says anything about the events). Otherwise by \p status: 2xx OK;
 *        408, 429, 500, 502, 503, 504 RETRY; any other 4xx POISON. Every
 *        other status (1xx, 3xx as curl does not follow redirects, 501,
 *        505...) is RETRY: it is the sink or its configuration that is
 *        wrong, and dead-lettering events for it would lose them.
 */
sink_retry_class_t sink_retry_classify(long status, int curl_code);

/** @returns "ok", "retry" or "poison". */
const char *sink_retry_class_name(sink_retry_class_t cls);

/**
 * @brief The next random number of a splitmix64 stream; \p state is the
 *        caller's (seed it from the clock and the pid, or fix it in a
 *        test). Not for anything secret.
 */
uint64_t sink_retry_rand(uint64_t *state);

/**
 * @brief Full-jitter backoff: uniform in [0, min(cap, base * 2^attempt)]
 *        ms. \p attempt counts the failures so far, from 0. Never
 *        overflows, whatever \p attempt; \p base_ms or \p cap_ms <= 0
 *        give 0.
 */
int64_t sink_retry_backoff(unsigned attempt, int64_t base_ms, int64_t cap_ms,
                           uint64_t *rng);

/**
 * @brief Parses a Retry-After value: delta-seconds (1*DIGIT) or an
 *        IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), surrounding
 *        spaces allowed. A date in the past is 0. The delay is bounded by
 *        \p cap_ms.
 * @returns the delay in ms, or -1 when \p value is NULL, empty or anything
 *          else (garbage is ignored, the caller falls back to backoff).
 */
int64_t sink_retry_after_ms(const char *value, int64_t now_ms,
                            int64_t cap_ms);

/**
 * @brief The wait before the next attempt: the sink's Retry-After when it
 *        gave one (\p retry_after_ms >= 0, already bounded by
 *        sink_retry_after_ms()), else sink_retry_backoff().
 */
int64_t sink_retry_delay_ms(unsigned attempt, int64_t base_ms,
                            int64_t cap_ms, int64_t retry_after_ms,
                            uint64_t *rng);

#endif
