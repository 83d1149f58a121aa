/* aetherbus - Apache-2.0
 *
 * Unit tests of ab_stage: counts land in the minute of receivedAt, per
 * stage and prefix; the JSON keeps only minutes from `since`; a minute
 * older than the ring or far ahead counts in the totals only; unknown
 * prefixes beyond AB_STAGE_MAX_OTHER share "_other"; the topic prefix
 * helper leaves the system topics out; /metrics carries the totals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "ab_catalog.h"
#include "ab_stage.h"
#include "ab_time.h"

static ab_catalog_t *cat;
static ab_metrics_t *reg;
static ab_stage_t *st;

static void setup(void) {
        char errstr[256];

        cr_assert((cat = ab_catalog_new(errstr, sizeof(errstr))), "%s", errstr);
        cr_assert((reg = ab_metrics_new("sink", errstr, sizeof(errstr))), "%s",
                  errstr);
        cr_assert((st = ab_stage_new(reg, "sink", "sunk,deadlettered", cat, 0,
                                     errstr, sizeof(errstr))),
                  "%s", errstr);
}

static void teardown(void) {
        ab_stage_destroy(st);
        ab_metrics_destroy(reg);
        ab_catalog_destroy(cat);
}

TestSuite(stage, .init = setup, .fini = teardown);

/* The count of (stage, prefix, minuteMs) in the JSON, -1 when absent. */
static int64_t count_of(json_t *doc, const char *stage, const char *prefix,
                        int64_t minute_ms) {
        json_t *m;
        size_t i;

        json_array_foreach(json_object_get(doc, "minutes"), i, m) {
                if (!strcmp(json_string_value(json_object_get(m, "stage")),
                            stage) &&
                    !strcmp(json_string_value(json_object_get(m, "prefix")),
                            prefix) &&
                    json_integer_value(json_object_get(m, "minuteMs")) ==
                        minute_ms) {
                        return json_integer_value(json_object_get(m, "count"));
                }
        }
        return -1;
}

Test(stage, counts_in_the_minute_of_received_at_per_stage_and_prefix) {
        int64_t now = ab_time_now_ms(), m0 = (now / 60000 - 3) * 60000;
        json_t *doc;

        ab_stage_count(st, 0, "commerce", m0 + 1, 1);
        ab_stage_count(st, 0, "commerce", m0 + 59999, 2);
        ab_stage_count(st, 0, "commerce", m0 + 60000, 1);
        ab_stage_count(st, 1, "commerce", m0 + 5, 4);
        ab_stage_count(st, 0, "messaging", m0 + 5, 7);
        doc = ab_stage_json(st, 0);
        cr_assert_eq(count_of(doc, "sunk", "commerce", m0), 3);
        cr_assert_eq(count_of(doc, "sunk", "commerce", m0 + 60000), 1);
        cr_assert_eq(count_of(doc, "deadlettered", "commerce", m0), 4);
        cr_assert_eq(count_of(doc, "sunk", "messaging", m0), 7);
        cr_assert_eq(count_of(doc, "deadlettered", "messaging", m0), -1);
        cr_assert_str_eq(json_string_value(json_object_get(doc, "service")),
                         "sink");
        cr_assert_eq(json_integer_value(json_object_get(doc, "minutesKept")),
                     AB_STAGE_MINUTES);
        json_decref(doc);
        /* since: only the minutes that begin at or after it */
        doc = ab_stage_json(st, m0 + 1);
        cr_assert_eq(count_of(doc, "sunk", "commerce", m0), -1);
        cr_assert_eq(count_of(doc, "sunk", "commerce", m0 + 60000), 1);
        json_decref(doc);
}

Test(stage, out_of_the_ring_counts_in_totals_only) {
        int64_t now = ab_time_now_ms();
        char *text;
        json_t *doc;

        ab_stage_count(st, 0, "commerce", now - (AB_STAGE_MINUTES + 1) * 60000LL, 2);
        ab_stage_count(st, 0, "commerce", now + 3600000, 3);
        ab_stage_count(st, 0, "commerce", 0, 1);
        ab_stage_count(st, 0, "commerce", now, 1);
        ab_stage_count(st, 5, "commerce", now, 1); /* no such stage */
        ab_stage_count(st, 0, NULL, now, 1);      /* not an events topic */
        doc = ab_stage_json(st, 0);
        cr_assert_eq(json_integer_value(json_object_get(doc, "outOfWindow")), 6);
        cr_assert_eq(json_array_size(json_object_get(doc, "minutes")), 1);
        json_decref(doc);
        cr_assert_eq(ab_metrics_render(reg, &text, NULL), AB_OK);
        cr_assert(strstr(text, "aetherbus_sink_stage_events_total{stage=\"sunk\","
                               "prefix=\"commerce\"} 7\n"),
                  "%s", text);
        free(text);
}

Test(stage, unknown_prefixes_beyond_the_cap_share_other) {
        int64_t now = ab_time_now_ms(), m = now / 60000 * 60000;
        char name[32];
        json_t *doc;
        int i;

        for (i = 0; i < AB_STAGE_MAX_OTHER + 5; i++) {
                snprintf(name, sizeof(name), "x%d", i);
                ab_stage_count(st, 0, name, now, 1);
        }
        doc = ab_stage_json(st, 0);
        cr_assert_eq(count_of(doc, "sunk", "x0", m), 1);
        cr_assert_eq(count_of(doc, "sunk", "x15", m), 1);
        cr_assert_eq(count_of(doc, "sunk", "x16", m), -1);
        cr_assert_eq(count_of(doc, "sunk", "_other", m), 5);
        json_decref(doc);
}

Test(stage, topic_prefix_leaves_system_topics_out) {
        static const struct {
                const char *topic;
                const char *want;
        } rows[] = {
            {"events.commerce", "commerce"},
            {"events.rejected", NULL},
            {"events.deadletter", NULL},
            {"events.audit-checkpoints", NULL},
            {"events.", NULL},
            {"other.commerce", NULL},
        };
        const char *got;
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                got = ab_stage_topic_prefix(rows[i].topic, "events.");
                if (rows[i].want) {
                        cr_assert(got && !strcmp(got, rows[i].want),
                                  "row %zu: %s", i, got ? got : "NULL");
                } else {
                        cr_assert_null(got, "row %zu: %s", i, got);
                }
        }
}

Test(stage, a_bad_stage_list_is_refused) {
        char errstr[256];

        cr_assert_null(ab_stage_new(NULL, "x", "", cat, 0, errstr,
                                    sizeof(errstr)));
        cr_assert_null(ab_stage_new(NULL, "x", "a,,b", cat, 0, errstr,
                                    sizeof(errstr)));
        cr_assert_null(ab_stage_new(NULL, "x", "a,b,c,d,e", cat, 0, errstr,
                                    sizeof(errstr)));
}
