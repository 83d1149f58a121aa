/* aetherbus - Apache-2.0
 *
 * ab_time: the wall clock of receivedAt and generated occurredAt, RFC 3339
 * timestamps with a zone <-> ms since the epoch (proleptic Gregorian), and
 * random (v4) UUIDs for generated ids. Nothing here knows the envelope.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "ab_time.h"

int64_t ab_time_now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ab_time_mono_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Time: RFC 3339 with a zone, ms since the epoch, proleptic Gregorian.
 */

/* Howard Hinnant's days_from_civil: days since 1970-01-01. */
static int64_t days_from_civil(int64_t y, int m, int d) {
        int64_t era;
        int64_t yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *yp, int *mp, int *dp) {
        int64_t era, doe, yoe, doy, mo;

        z += 719468;
        era = (z >= 0 ? z : z - 146096) / 146097;
        doe = z - era * 146097;
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mo = (5 * doy + 2) / 153;
        *dp = (int)(doy - (153 * mo + 2) / 5 + 1);
        *mp = (int)(mo < 10 ? mo + 3 : mo - 9);
        *yp = yoe + era * 400 + (*mp <= 2);
}

/* Reads exactly \p n digits; stops at NUL, so never reads past it. */
static int num(const char *s, int n, int *out) {
        int i, v = 0;

        for (i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9') {
                        return -1;
                }
                v = v * 10 + (s[i] - '0');
        }
        *out = v;
        return 0;
}

static int days_in_month(int y, int m) {
        static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                      31, 31, 30, 31, 30, 31};

        if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) {
                return 29;
        }
        return mdays[m - 1];
}

ab_err_t ab_time_parse(const char *s, int64_t *msp) {
        int y, mo, d, h, mi, sec, ms = 0, oh = 0, om = 0, sign = 0, i;
        const char *p;

        if (!s || num(s, 4, &y) || s[4] != '-' || num(s + 5, 2, &mo) ||
            s[7] != '-' || num(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
            num(s + 11, 2, &h) || s[13] != ':' || num(s + 14, 2, &mi) ||
            s[16] != ':' || num(s + 17, 2, &sec)) {
                return AB_ERR_INVALID;
        }
        if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
            mi > 59 || sec > 59) {
                return AB_ERR_INVALID;
        }
        p = s + 19;
        if (*p == '.') {
                p++;
                for (i = 0; p[i] >= '0' && p[i] <= '9'; i++) {
                        if (i == 9) {
                                return AB_ERR_INVALID;
                        }
                        if (i < 3) {
                                ms = ms * 10 + (p[i] - '0');
                        }
                }
                if (i == 0) {
                        return AB_ERR_INVALID;
                }
                for (; i < 3; i++) {
                        ms *= 10;
                }
                while (*p >= '0' && *p <= '9') {
                        p++;
                }
        }
        if (*p == 'Z' || *p == 'z') {
                p++;
        } else if (*p == '+' || *p == '-') {
                sign = *p == '+' ? 1 : -1;
                if (num(p + 1, 2, &oh) || p[3] != ':' || num(p + 4, 2, &om) ||
                    oh > 23 || om > 59) {
                        return AB_ERR_INVALID;
                }
                p += 6;
        } else {
                return AB_ERR_INVALID;
        }
        if (*p != '\0') {
                return AB_ERR_INVALID;
        }
        *msp = days_from_civil(y, mo, d) * 86400000 +
               ((int64_t)h * 3600 + mi * 60 + sec) * 1000 + ms -
               (int64_t)sign * (oh * 60 + om) * 60000;
        return AB_OK;
}

void ab_time_format(int64_t ms, char *out, size_t out_size) {
        int64_t days, rem, y;
        int m, d;

        days = ms / 86400000;
        rem = ms % 86400000;
        if (rem < 0) {
                rem += 86400000;
                days--;
        }
        civil_from_days(days, &y, &m, &d);
        snprintf(out, out_size, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 (long long)y, m, d, (int)(rem / 3600000),
                 (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
                 (int)(rem % 1000));
}

/*
 * Ids
 */

/* Used only when getrandom() fails outright (no entropy syscall). */
static void weak_random(unsigned char *b, size_t n) {
        static atomic_uint_fast64_t counter;
        struct timespec ts;
        uint64_t x;
        size_t i;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
            (uint64_t)(uintptr_t)b ^
            atomic_fetch_add(&counter, 0x9e3779b97f4a7c15ULL);
        for (i = 0; i < n; i++) {
                if (i % 8 == 0) {
                        /* splitmix64 */
                        x += 0x9e3779b97f4a7c15ULL;
                        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
                        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
                        x ^= x >> 31;
                }
                b[i] = (unsigned char)(x >> (8 * (i % 8)));
        }
}

void ab_time_uuid(char *out, size_t out_size) {
        static const char hex[] = "0123456789abcdef";
        unsigned char b[16];
        size_t got = 0, i, o = 0;
        ssize_t r;

        if (out_size < 37) {
                if (out_size > 0) {
                        out[0] = '\0';
                }
                return;
        }
        while (got < sizeof(b)) {
                r = getrandom(b + got, sizeof(b) - got, 0);
                if (r < 0) {
                        if (errno == EINTR) {
                                continue;
                        }
                        weak_random(b + got, sizeof(b) - got);
                        break;
                }
                got += (size_t)r;
        }
        b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
        b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
        for (i = 0; i < sizeof(b); i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10) {
                        out[o++] = '-';
                }
                out[o++] = hex[b[i] >> 4];
                out[o++] = hex[b[i] & 0x0f];
        }
        out[o] = '\0';
}
