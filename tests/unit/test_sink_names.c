/* aetherbus - Apache-2.0
 *
 * Unit tests of SINK_NAMES matching (sink_name_match()): exact names,
 * "prefix*" items, spaces and empty items, and the empty list that
 * passes everything.
 */
#include <criterion/criterion.h>

#include "sink.h"

Test(sink_names, an_empty_list_passes_everything) {
        cr_expect(sink_name_match(NULL, "OrderCreated"));
        cr_expect(sink_name_match("", "OrderCreated"));
}

Test(sink_names, names_match_exactly) {
        const char *l = "OrderCreated,EmailSent";

        cr_expect(sink_name_match(l, "OrderCreated"));
        cr_expect(sink_name_match(l, "EmailSent"));
        cr_expect_not(sink_name_match(l, "Order"));
        cr_expect_not(sink_name_match(l, "OrderCreatedX"));
        cr_expect_not(sink_name_match(l, "ProductViewed"));
        cr_expect_not(sink_name_match(l, NULL));
}

Test(sink_names, a_star_makes_a_prefix) {
        const char *l = "crm.*, Order*";

        cr_expect(sink_name_match(l, "crm.record.updated"));
        cr_expect(sink_name_match(l, "OrderCreated"));
        cr_expect(sink_name_match(l, "Order"));
        cr_expect_not(sink_name_match(l, "crm"));
        cr_expect_not(sink_name_match(l, "core.startup"));
        cr_expect(sink_name_match("*", "anything"));
}

Test(sink_names, spaces_and_empty_items_are_ignored) {
        const char *l = " ,, EmailSent , ,ProductViewed,";

        cr_expect(sink_name_match(l, "EmailSent"));
        cr_expect(sink_name_match(l, "ProductViewed"));
        cr_expect_not(sink_name_match(l, ""));
        cr_expect_not(sink_name_match(l, " EmailSent"));
}
