/* aetherbus - Apache-2.0
 *
 * sink_retry: classification, full-jitter backoff (AWS architecture
 * blog's "full jitter": many sinks' clients retrying at once spread out
 * instead of hammering a recovering sink in waves) and Retry-After.
 * The HTTP-date is parsed by hand: strptime() follows the locale and
 * timegm() is not C11; the civil-to-days conversion is Howard Hinnant's.
 */
#include <stddef.h>
#include <string.h>

#include "sink_retry.h"

sink_retry_class_t sink_retry_classify(long status, int curl_code) {
        if (curl_code != 0) {
                return SINK_RETRY_RETRY;
        }
        if (status >= 200 && status <= 299) {
                return SINK_RETRY_OK;
        }
        switch (status) {
        case 408:
        case 429:
        case 500:
        case 502:
        case 503:
        case 504:
                return SINK_RETRY_RETRY;
        default:
                break;
        }
        if (status >= 400 && status <= 499) {
                return SINK_RETRY_POISON;
        }
        return SINK_RETRY_RETRY;
}

const char *sink_retry_class_name(sink_retry_class_t cls) {
        switch (cls) {
        case SINK_RETRY_OK:
                return "ok";
        case SINK_RETRY_RETRY:
                return "retry";
        case SINK_RETRY_POISON:
                return "poison";
        }
        return "unknown";
}

uint64_t sink_retry_rand(uint64_t *state) {
        uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

int64_t sink_retry_backoff(unsigned attempt, int64_t base_ms, int64_t cap_ms,
                           uint64_t *rng) {
        int64_t hi;

        if (base_ms <= 0 || cap_ms <= 0) {
                return 0;
        }
        /* base * 2^attempt, saturating at cap without overflowing. */
        if (base_ms >= cap_ms || attempt >= 62 ||
            base_ms > (cap_ms >> attempt)) {
                hi = cap_ms;
        } else {
                hi = base_ms << attempt;
        }
        return (int64_t)(sink_retry_rand(rng) % ((uint64_t)hi + 1));
}

int64_t sink_retry_delay_ms(unsigned attempt, int64_t base_ms,
                            int64_t cap_ms, int64_t retry_after_ms,
                            uint64_t *rng) {
        if (retry_after_ms >= 0) {
                return retry_after_ms;
        }
        return sink_retry_backoff(attempt, base_ms, cap_ms, rng);
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
        int64_t era;
        unsigned yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = (unsigned)(y - era * 400);
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t)doe - 719468;
}

/* n decimal digits at s, or -1. */
static int digits(const char *s, int n) {
        int v = 0, i;

        for (i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9') {
                        return -1;
                }
                v = v * 10 + (s[i] - '0');
        }
        return v;
}

/* IMF-fixdate (RFC 9110 5.6.7), exactly 29 bytes, as ms since the epoch;
 * -1 when it is not one. */
static int64_t imf_fixdate(const char *s, size_t len) {
        static const char *const wdays[] = {"Mon", "Tue", "Wed", "Thu",
                                            "Fri", "Sat", "Sun"};
        static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
                                             "May", "Jun", "Jul", "Aug",
                                             "Sep", "Oct", "Nov", "Dec"};
        static const unsigned mdays[] = {31, 29, 31, 30, 31, 30,
                                         31, 31, 30, 31, 30, 31};
        int day, year, hh, mm, ss, i, ok = 0;
        unsigned mon = 0;

        if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' ||
            s[11] != ' ' || s[16] != ' ' || s[19] != ':' || s[22] != ':' ||
            s[25] != ' ' || memcmp(s + 26, "GMT", 3) != 0) {
                return -1;
        }
        for (i = 0; i < 7; i++) {
                ok |= memcmp(s, wdays[i], 3) == 0;
        }
        for (i = 0; i < 12 && !mon; i++) {
                if (memcmp(s + 8, months[i], 3) == 0) {
                        mon = (unsigned)i + 1;
                }
        }
        day  = digits(s + 5, 2);
        year = digits(s + 12, 4);
        hh   = digits(s + 17, 2);
        mm   = digits(s + 20, 2);
        ss   = digits(s + 23, 2);
        if (!ok || !mon || day < 1 || year < 0 || hh < 0 || hh > 23 ||
            mm < 0 || mm > 59 || ss < 0 || ss > 60 ||
            (unsigned)day > mdays[mon - 1]) {
                return -1;
        }
        if (mon == 2 && day == 29 &&
            !(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))) {
                return -1;
        }
        return (days_from_civil(year, mon, (unsigned)day) * 86400 +
                hh * 3600 + mm * 60 + ss) *
               1000;
}

int64_t sink_retry_after_ms(const char *value, int64_t now_ms,
                            int64_t cap_ms) {
        const char *s, *e;
        int64_t v = 0, at;
        size_t len, i;

        if (!value) {
                return -1;
        }
        s = value;
        while (*s == ' ' || *s == '\t') {
                s++;
        }
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
                         e[-1] == '\n')) {
                e--;
        }
        len = (size_t)(e - s);
        if (len == 0) {
                return -1;
        }
        if (cap_ms < 0) {
                cap_ms = 0;
        }
        if (s[0] >= '0' && s[0] <= '9') {
                for (i = 0; i < len; i++) {
                        if (s[i] < '0' || s[i] > '9') {
                                return -1;
                        }
                        /* Saturate: a huge number is just "the cap". */
                        if (v <= cap_ms) {
                                v = v * 10 + (s[i] - '0');
                        }
                }
                return v > cap_ms / 1000 ? cap_ms : v * 1000;
        }
        at = imf_fixdate(s, len);
        if (at < 0) {
                return -1;
        }
        if (at <= now_ms) {
                return 0;
        }
        return at - now_ms > cap_ms ? cap_ms : at - now_ms;
}
