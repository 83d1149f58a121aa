/* aetherbus - Apache-2.0
 *
 * Unit tests of sink_retry: the class of every status the issue lists and
 * of curl errors, full-jitter bounds over many draws (and that the draws
 * really spread), Retry-After in both forms, its cap and garbage.
 */
#include <stdint.h>

#include <criterion/criterion.h>
#include <curl/curl.h>

#include "sink_retry.h"

/* Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example. */
#define RFC_DATE_MS 784111777000LL

Test(sink_retry, two_hundreds_are_ok) {
        cr_expect_eq(sink_retry_classify(200, 0), SINK_RETRY_OK);
        cr_expect_eq(sink_retry_classify(201, 0), SINK_RETRY_OK);
        cr_expect_eq(sink_retry_classify(202, 0), SINK_RETRY_OK);
        cr_expect_eq(sink_retry_classify(204, 0), SINK_RETRY_OK);
        cr_expect_eq(sink_retry_classify(299, 0), SINK_RETRY_OK);
}

Test(sink_retry, every_listed_status_is_retryable) {
        static const long retry[] = {408, 429, 500, 502, 503, 504};
        size_t i;

        for (i = 0; i < sizeof(retry) / sizeof(retry[0]); i++) {
                cr_expect_eq(sink_retry_classify(retry[i], 0),
                             SINK_RETRY_RETRY, "%ld", retry[i]);
        }
}

Test(sink_retry, every_other_4xx_is_poison) {
        long s;

        for (s = 400; s <= 499; s++) {
                if (s == 408 || s == 429) {
                        continue;
                }
                cr_expect_eq(sink_retry_classify(s, 0), SINK_RETRY_POISON,
                             "%ld", s);
        }
}

Test(sink_retry, curl_errors_are_retryable_whatever_the_status) {
        cr_expect_eq(sink_retry_classify(0, CURLE_COULDNT_CONNECT),
                     SINK_RETRY_RETRY);
        cr_expect_eq(sink_retry_classify(0, CURLE_OPERATION_TIMEDOUT),
                     SINK_RETRY_RETRY);
        cr_expect_eq(sink_retry_classify(0, CURLE_COULDNT_RESOLVE_HOST),
                     SINK_RETRY_RETRY);
        cr_expect_eq(sink_retry_classify(0, CURLE_RECV_ERROR),
                     SINK_RETRY_RETRY);
        /* A timeout after the headers of a 400 arrived still says nothing
         * about the events. */
        cr_expect_eq(sink_retry_classify(400, CURLE_OPERATION_TIMEDOUT),
                     SINK_RETRY_RETRY);
        cr_expect_eq(sink_retry_classify(200, CURLE_PARTIAL_FILE),
                     SINK_RETRY_RETRY);
}

Test(sink_retry, other_statuses_are_the_sinks_fault_not_poison) {
        cr_expect_eq(sink_retry_classify(0, 0), SINK_RETRY_RETRY);
        cr_expect_eq(sink_retry_classify(301, 0), SINK_RETRY_RETRY);
        cr_expect_eq(sink_retry_classify(501, 0), SINK_RETRY_RETRY);
        cr_expect_eq(sink_retry_classify(505, 0), SINK_RETRY_RETRY);
        cr_expect_str_eq(sink_retry_class_name(SINK_RETRY_POISON), "poison");
        cr_expect_str_eq(sink_retry_class_name(SINK_RETRY_RETRY), "retry");
        cr_expect_str_eq(sink_retry_class_name(SINK_RETRY_OK), "ok");
}

Test(sink_retry, backoff_stays_within_full_jitter_bounds) {
        uint64_t rng = 42;
        unsigned attempt;
        int64_t d, hi, max_seen;
        int i, low_half;

        for (attempt = 0; attempt < 12; attempt++) {
                hi = (int64_t)100 << attempt;
                if (hi > 5000) {
                        hi = 5000;
                }
                max_seen = 0;
                low_half = 0;
                for (i = 0; i < 5000; i++) {
                        d = sink_retry_backoff(attempt, 100, 5000, &rng);
                        cr_assert(d >= 0 && d <= hi,
                                  "attempt %u: %lld outside [0, %lld]",
                                  attempt, (long long)d, (long long)hi);
                        if (d > max_seen) {
                                max_seen = d;
                        }
                        low_half += d < hi / 2;
                }
                /* Full jitter: the whole range is used, evenly. */
                cr_expect_geq(max_seen, hi * 95 / 100, "attempt %u", attempt);
                cr_expect(low_half > 2000 && low_half < 3000,
                          "attempt %u: %d of 5000 below half", attempt,
                          low_half);
        }
}

Test(sink_retry, backoff_never_overflows_and_respects_the_cap) {
        uint64_t rng = 7;
        int i;

        for (i = 0; i < 1000; i++) {
                cr_assert_leq(sink_retry_backoff(1000000u, 200, 30000, &rng),
                              30000);
                cr_assert_leq(sink_retry_backoff(63, INT64_MAX / 2,
                                                 INT64_MAX / 2, &rng),
                              INT64_MAX / 2);
                cr_assert_geq(sink_retry_backoff(63, INT64_MAX / 2,
                                                 INT64_MAX / 2, &rng),
                              0);
        }
        cr_expect_eq(sink_retry_backoff(3, 0, 1000, &rng), 0);
        cr_expect_eq(sink_retry_backoff(3, 100, 0, &rng), 0);
        /* base above cap: the cap bounds every attempt */
        cr_expect_leq(sink_retry_backoff(0, 9000, 1000, &rng), 1000);
}

Test(sink_retry, same_seed_same_draws) {
        uint64_t a = 12345, b = 12345;
        int i;

        for (i = 0; i < 100; i++) {
                cr_assert_eq(sink_retry_backoff(5, 100, 10000, &a),
                             sink_retry_backoff(5, 100, 10000, &b));
        }
}

Test(sink_retry, retry_after_delta_seconds) {
        cr_expect_eq(sink_retry_after_ms("0", 0, 60000), 0);
        cr_expect_eq(sink_retry_after_ms("3", 0, 60000), 3000);
        cr_expect_eq(sink_retry_after_ms("  120 ", 0, 600000), 120000);
        cr_expect_eq(sink_retry_after_ms("7\r\n", 0, 60000), 7000);
        /* bounded by the cap, however large */
        cr_expect_eq(sink_retry_after_ms("3600", 0, 60000), 60000);
        cr_expect_eq(sink_retry_after_ms("99999999999999999999999999", 0,
                                         60000),
                     60000);
}

Test(sink_retry, retry_after_imf_fixdate) {
        const char *d = "Sun, 06 Nov 1994 08:49:37 GMT";

        cr_expect_eq(sink_retry_after_ms(d, RFC_DATE_MS - 5000, 60000), 5000);
        cr_expect_eq(sink_retry_after_ms(d, RFC_DATE_MS - 500, 60000), 500);
        /* in the past: go now */
        cr_expect_eq(sink_retry_after_ms(d, RFC_DATE_MS + 1000, 60000), 0);
        cr_expect_eq(sink_retry_after_ms(d, RFC_DATE_MS, 60000), 0);
        /* far in the future: the cap */
        cr_expect_eq(sink_retry_after_ms(d, RFC_DATE_MS - 86400000LL, 60000),
                     60000);
        /* leap day and the end of a year */
        cr_expect_eq(sink_retry_after_ms("Thu, 29 Feb 2024 00:00:00 GMT",
                                         1709164800000LL - 2000, 60000),
                     2000);
        cr_expect_eq(sink_retry_after_ms("Thu, 31 Dec 2026 23:59:59 GMT",
                                         1798761599000LL - 1000, 60000),
                     1000);
}

Test(sink_retry, retry_after_garbage_is_ignored) {
        static const char *const bad[] = {
                "",
                "   ",
                "soon",
                "-1",
                "1.5",
                "3 s",
                "0x10",
                "Sun, 06 Nov 1994 08:49:37 UTC",
                "Sunday, 06-Nov-94 08:49:37 GMT", /* RFC 850: obsolete */
                "Sun Nov  6 08:49:37 1994",       /* asctime: obsolete */
                "Sun, 6 Nov 1994 08:49:37 GMT",
                "Sun, 06 Nov 1994 24:00:00 GMT",
                "Sun, 31 Apr 1994 08:49:37 GMT",
                "Tue, 29 Feb 2100 08:49:37 GMT",
                "Foo, 06 Nov 1994 08:49:37 GMT",
                "Sun, 06 Xyz 1994 08:49:37 GMT",
                "Sun, 06 Nov 1994 08:49:37 GMTX",
        };
        size_t i;

        cr_expect_eq(sink_retry_after_ms(NULL, 0, 60000), -1);
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                cr_expect_eq(sink_retry_after_ms(bad[i], RFC_DATE_MS - 1000,
                                                 60000),
                             -1, "\"%s\"", bad[i]);
        }
}

Test(sink_retry, delay_prefers_retry_after_over_backoff) {
        uint64_t rng = 1;
        int i;

        cr_expect_eq(sink_retry_delay_ms(9, 100, 30000, 2500, &rng), 2500);
        cr_expect_eq(sink_retry_delay_ms(0, 100, 30000, 0, &rng), 0);
        for (i = 0; i < 100; i++) {
                cr_assert_leq(sink_retry_delay_ms(2, 100, 30000, -1, &rng),
                              400);
        }
}
