/* aetherbus - Apache-2.0
 *
 * Unit tests of ab_time: the RFC 3339 parser (accepted and refused forms),
 * the formatter and the round trip, and the v4 UUIDs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "ab_time.h"

/* 2026-02-11T20:10:00.000Z */
#define NOW_MS 1770840600000LL

static int is_uuid_v4(const char *s) {
        size_t i;

        if (!s || strlen(s) != 36) {
                return 0;
        }
        for (i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-') {
                                return 0;
                        }
                } else if (!strchr("0123456789abcdef", s[i])) {
                        return 0;
                }
        }
        return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}


/*
 * Time
 */

Test(time, parse_accepts_rfc3339_with_zone) {
        static const struct {
                const char *s;
                int64_t ms;
        } rows[] = {
                {"2026-02-11T20:10:00.000Z", NOW_MS},
                {"2026-02-11T20:10:00Z", NOW_MS},
                {"2026-02-11t20:10:00z", NOW_MS},
                {"2026-02-11T21:10:00+01:00", NOW_MS},
                {"2026-02-11T15:10:00-05:00", NOW_MS},
                {"2026-02-11T20:10:00-00:00", NOW_MS},
                {"2026-02-11T20:10:00.1Z", NOW_MS + 100},
                {"2026-02-11T20:10:00.12Z", NOW_MS + 120},
                {"2026-02-11T20:10:00.123456789Z", NOW_MS + 123},
                {"2026-02-11T23:30:00+23:59", 1770766260000LL},
                {"1970-01-01T00:00:00Z", 0},
                {"1969-12-31T23:59:59.999Z", -1},
                {"2000-02-29T12:00:00Z", 951825600000LL},
                {"2024-02-29T00:00:00+00:00", 1709164800000LL},
                {"2026-03-01T00:00:00Z", 1772323200000LL},
                {"1900-03-01T00:00:00Z", -2203891200000LL},
                {"0000-01-01T00:00:00Z", -62167219200000LL},
                {"9999-12-31T23:59:59.999Z", 253402300799999LL},
        };
        int64_t ms;
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                ms = 42;
                cr_assert_eq(ab_time_parse(rows[i].s, &ms), AB_OK,
                             "row %zu: %s", i, rows[i].s);
                cr_assert_eq(ms, rows[i].ms, "row %zu: %s: %lld", i,
                             rows[i].s, (long long)ms);
        }
}

Test(time, parse_rejects_anything_else) {
        static const char *const rows[] = {
                "",
                "2026",
                "2026-02-11",
                "2026-02-11T20:10:00",
                "2026-02-11T20:10:00.000",
                "2026-02-11T20:10Z",
                "2026-2-11T20:10:00Z",
                "2026-02-11T20:10:00.Z",
                "2026-02-11T20:10:00.1234567890Z",
                "2026-02-11T20:10:00+01",
                "2026-02-11T20:10:00+0100",
                "2026-02-11T20:10:00+1:00",
                "2026-02-11T20:10:00+24:00",
                "2026-02-11T20:10:00+01:60",
                "2026-02-11T20:10:60Z",
                "2026-02-11T20:60:00Z",
                "2026-02-11T24:00:00Z",
                "2026-00-11T00:00:00Z",
                "2026-13-11T00:00:00Z",
                "2026-02-00T00:00:00Z",
                "2026-02-29T00:00:00Z",
                "2100-02-29T00:00:00Z",
                "2026-04-31T00:00:00Z",
                "2026-01-32T00:00:00Z",
                "2026-02-11T20:10:00Z ",
                " 2026-02-11T20:10:00Z",
                "2026-02-11 20:10:00Z",
                "2026-02-11X20:10:00Z",
                "+2026-02-11T20:10:00Z",
                "-2026-02-11T20:10:00Z",
                "2026-02-11T20:10:00+01:00Z",
                "2026-02-11T20:10:00ZZ",
                "2026-02-11T20:10:00 Z",
                "2026-02-11T20:10:00.5",
                "20260211T201000Z",
                "2026-02-11T20:10:00UTC",
                "Wed, 11 Feb 2026 20:10:00 GMT",
                "1770840600000",
        };
        int64_t ms = 42;
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                cr_assert_eq(ab_time_parse(rows[i], &ms),
                             AB_ERR_INVALID, "row %zu: \"%s\"", i, rows[i]);
        }
        cr_assert_eq(ab_time_parse(NULL, &ms), AB_ERR_INVALID);
        cr_assert_eq(ms, 42);
}

Test(time, format_writes_utc_milliseconds) {
        static const struct {
                int64_t ms;
                const char *s;
        } rows[] = {
                {NOW_MS, "2026-02-11T20:10:00.000Z"},
                {0, "1970-01-01T00:00:00.000Z"},
                {-1, "1969-12-31T23:59:59.999Z"},
                {951825600123LL, "2000-02-29T12:00:00.123Z"},
                {253402300799999LL, "9999-12-31T23:59:59.999Z"},
                {-62167219200000LL, "0000-01-01T00:00:00.000Z"},
        };
        char out[32];
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                ab_time_format(rows[i].ms, out, sizeof(out));
                cr_assert_str_eq(out, rows[i].s, "row %zu", i);
        }
}

Test(time, format_then_parse_round_trips_across_years) {
        char out[32];
        int64_t ms, back;

        /* a stride that lands on every hour, day and leap year over time */
        for (ms = -62167219200000LL; ms <= 253402300799999LL;
             ms += 86399999LL * 37) {
                ab_time_format(ms, out, sizeof(out));
                cr_assert_eq(ab_time_parse(out, &back), AB_OK, "%s",
                             out);
                cr_assert_eq(back, ms, "%s", out);
        }
}

Test(time, generates_distinct_uuid_v4_ids) {
        enum { N = 2000 };
        static char ids[N][37];
        size_t i, j;

        for (i = 0; i < N; i++) {
                ab_time_uuid(ids[i], sizeof(ids[i]));
                cr_assert(is_uuid_v4(ids[i]), "row %zu: %s", i, ids[i]);
        }
        for (i = 0; i < N; i++) {
                for (j = i + 1; j < N; j++) {
                        cr_assert_str_neq(ids[i], ids[j], "rows %zu %zu", i,
                                          j);
                }
        }
}

Test(time, uuid_into_a_short_buffer_writes_an_empty_string) {
        char out[36] = "x";

        ab_time_uuid(out, sizeof(out));
        cr_assert_str_eq(out, "");
}
