/* aetherbus - Apache-2.0
 *
 * ab_time: wall clock in ms, RFC 3339 parse/format, v4 UUIDs.
 */
#ifndef AB_TIME_H
#define AB_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "ab_err.h"

/**
 * @brief Parses an RFC 3339 timestamp that carries a zone ("Z" or
 *        "+hh:mm"), with optional fractional seconds (1 to 9 digits, kept
 *        to the millisecond). 'T' and 'Z' may be lower case; ranges are
 *        checked (leap days included; a leap second :60 is refused).
 * @returns AB_OK with *msp set, or AB_ERR_INVALID.
 */
ab_err_t ab_time_parse(const char *s, int64_t *msp);

/** @brief Formats \p ms as "YYYY-MM-DDThh:mm:ss.sssZ" into out (>= 25). */
void ab_time_format(int64_t ms, char *out, size_t out_size);

/** @returns the wall clock in ms since the epoch: the clock of receivedAt
 *           and of a generated occurredAt. */
int64_t ab_time_now_ms(void);

/** @returns a monotonic clock in ms (rates and timeouts: a wall-clock
 *           step must not refill or drain a bucket). */
int64_t ab_time_mono_ms(void);

/** @brief Writes a random (v4) UUID, 36 chars + NUL, into out (>= 37). */
void ab_time_uuid(char *out, size_t out_size);

#endif
