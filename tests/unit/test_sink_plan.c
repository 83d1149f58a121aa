/* aetherbus - Apache-2.0
 *
 * Unit tests of sink_plan's metadata form: what format writes parses back,
 * a buffer too small or a negative offset is refused, metadata that is not
 * a plan is no plan, and a plan that is garbage or ends before the
 * committed offset is refused rather than followed.
 */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "sink_plan.h"

Test(sink_plan, format_writes_the_last_offset_after_the_prefix) {
        char buf[SINK_PLAN_METADATA_MAX];

        cr_assert_eq(sink_plan_format(1234, buf, sizeof(buf)), AB_OK);
        cr_expect_str_eq(buf, "ab-batch-end=1234");
        cr_assert_eq(sink_plan_format(0, buf, sizeof(buf)), AB_OK);
        cr_expect_str_eq(buf, "ab-batch-end=0");
}

Test(sink_plan, the_largest_offset_fits_the_metadata_max) {
        char buf[SINK_PLAN_METADATA_MAX];
        int64_t last;

        cr_assert_eq(sink_plan_format(INT64_MAX, buf, sizeof(buf)), AB_OK);
        cr_assert_eq(sink_plan_parse(buf, strlen(buf), 0, &last), AB_OK);
        cr_expect_eq(last, INT64_MAX);
}

Test(sink_plan, format_refuses_a_negative_offset_or_a_short_buffer) {
        char buf[SINK_PLAN_METADATA_MAX] = "x";
        char small[8]                    = "x";

        cr_expect_eq(sink_plan_format(-1, buf, sizeof(buf)), AB_ERR_INVALID);
        cr_expect_str_eq(buf, "");
        cr_expect_eq(sink_plan_format(5, small, sizeof(small)),
                     AB_ERR_INVALID);
        cr_expect_str_eq(small, "");
        cr_expect_eq(sink_plan_format(5, small, 0), AB_ERR_INVALID);
}

Test(sink_plan, what_format_writes_parses_back) {
        static const int64_t offs[] = {0, 1, 9, 10, 99, 4096, 123456789012LL};
        char buf[SINK_PLAN_METADATA_MAX];
        int64_t last;
        size_t i;

        for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
                cr_assert_eq(sink_plan_format(offs[i], buf, sizeof(buf)),
                             AB_OK, "row %zu", i);
                cr_expect_eq(sink_plan_parse(buf, strlen(buf), 0, &last),
                             AB_OK, "row %zu", i);
                cr_expect_eq(last, offs[i], "row %zu", i);
        }
}

Test(sink_plan, the_metadata_need_not_be_nul_terminated) {
        const char md[] = "ab-batch-end=42XXXX";
        int64_t last;

        cr_assert_eq(sink_plan_parse(md, strlen("ab-batch-end=42"), 40, &last),
                     AB_OK);
        cr_expect_eq(last, 42);
}

Test(sink_plan, metadata_that_is_not_a_plan_is_no_plan) {
        static const char *const mds[] = {"", "ab-batch", "ab-batch-en=1",
                                          "AB-BATCH-END=1", "kafka-connect:7",
                                          " ab-batch-end=1"};
        int64_t last = 0;
        size_t i;

        cr_expect_eq(sink_plan_parse(NULL, 0, 0, &last), AB_ERR_NOT_FOUND);
        cr_expect_eq(last, -1);
        for (i = 0; i < sizeof(mds) / sizeof(mds[0]); i++) {
                last = 0;
                cr_expect_eq(sink_plan_parse(mds[i], strlen(mds[i]), 0, &last),
                             AB_ERR_NOT_FOUND, "row %zu: %s", i, mds[i]);
                cr_expect_eq(last, -1, "row %zu", i);
        }
}

Test(sink_plan, a_plan_that_is_garbage_is_refused) {
        static const char *const mds[] = {
            "ab-batch-end=",    "ab-batch-end=-1",  "ab-batch-end=+1",
            "ab-batch-end=1x",  "ab-batch-end= 1",  "ab-batch-end=1 ",
            "ab-batch-end=0x10", "ab-batch-end=1,2",
            "ab-batch-end=9223372036854775808", /* INT64_MAX + 1 */
            "ab-batch-end=99999999999999999999"};
        int64_t last = 0;
        size_t i;

        for (i = 0; i < sizeof(mds) / sizeof(mds[0]); i++) {
                last = 0;
                cr_expect_eq(sink_plan_parse(mds[i], strlen(mds[i]), 0, &last),
                             AB_ERR_MALFORMED, "row %zu: %s", i, mds[i]);
                cr_expect_eq(last, -1, "row %zu", i);
        }
}

Test(sink_plan, a_plan_ending_before_the_committed_offset_is_refused) {
        int64_t last = 0;

        cr_expect_eq(sink_plan_parse("ab-batch-end=9", 14, 10, &last),
                     AB_ERR_MALFORMED);
        cr_expect_eq(last, -1);
        /* a batch of one event starts and ends at the committed offset */
        cr_expect_eq(sink_plan_parse("ab-batch-end=10", 15, 10, &last), AB_OK);
        cr_expect_eq(last, 10);
}
