/* aetherbus - Apache-2.0
 *
 * test_stats_window: the hour of aetherbus-stats with an injected clock.
 * Records are made by hand (no broker): the window's edges, late and
 * future events, clock skew, duplicates inside and outside the horizon,
 * a replay in the order of a rebuild, failures by reason, breakdowns and
 * filters, and bounded tables under a million tenants.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "ab_catalog.h"
#include "stats_window.h"

/* 2026-12-02T10:00:30Z: mid-minute, so +-30 s stays in the minute. */
#define T0 1796205630000LL
#define MIN 60000LL

static ab_catalog_t *cat;
static stats_window_t *w;

static void setup(void) {
        stats_window_conf_t wc;
        char errstr[256];

        cat = ab_catalog_new(errstr, sizeof(errstr));
        cr_assert_not_null(cat, "%s", errstr);
        stats_window_conf_init(&wc);
        w = stats_window_new(cat, &wc);
        cr_assert_not_null(w);
}

static void teardown(void) {
        stats_window_destroy(w);
        ab_catalog_destroy(cat);
}

TestSuite(stats_window, .init = setup, .fini = teardown);

static void add_event(const char *id, const char *name, const char *source,
                      const char *company, int64_t received, int64_t occurred,
                      int64_t now) {
        ab_consume_rec_t rec;

        memset(&rec, 0, sizeof(rec));
        rec.kind               = AB_CONSUME_ACCEPTED;
        rec.timestamp_ms       = received;
        rec.env.id             = id;
        rec.env.name           = name;
        rec.env.source         = source;
        rec.env.company_id     = company;
        rec.env.received_at_ms = received;
        rec.env.occurred_at_ms = occurred;
        stats_window_add(w, &rec, now);
}

static void add_failure(ab_consume_kind_t kind, const char *code,
                        int64_t received, int64_t now) {
        ab_consume_rec_t rec;

        memset(&rec, 0, sizeof(rec));
        rec.kind                = kind;
        rec.timestamp_ms        = received;
        rec.fail.code           = code;
        rec.fail.reason         = "test";
        rec.fail.received_at_ms = received;
        stats_window_add(w, &rec, now);
}

static json_t *query(int minutes, const char *name, const char *prefix,
                     const char *company, int64_t now) {
        stats_query_t q;
        json_t *doc;

        memset(&q, 0, sizeof(q));
        q.minutes    = minutes;
        q.name       = name;
        q.prefix     = prefix;
        q.company_id = company;
        doc          = stats_window_query(w, &q, now);
        cr_assert_not_null(doc);
        return doc;
}

static json_int_t total(int minutes, int64_t now) {
        json_t *doc     = query(minutes, NULL, NULL, NULL, now);
        json_int_t n    = json_integer_value(json_object_get(doc, "total"));

        json_decref(doc);
        return n;
}

static json_int_t at(json_t *doc, const char *a, const char *b,
                     const char *c) {
        json_t *v = json_object_get(doc, a);

        if (b) {
                v = json_object_get(v, b);
        }
        if (c) {
                v = json_object_get(v, c);
        }
        return json_integer_value(v);
}

static void ev(const char *id, int64_t received, int64_t now) {
        add_event(id, "OrderCreated", "storefront", "c1", received,
                  received - 250, now);
}

Test(stats_window, events_fall_out_when_the_clock_passes_the_hour) {
        ev("a", T0, T0);
        ev("b", T0 - 30 * MIN, T0);
        cr_assert_eq(total(60, T0), 2);
        cr_assert_eq(total(15, T0), 1, "5m/15m windows hold only the recent");
        cr_assert_eq(total(60, T0 + 30 * MIN), 1, "b is older than the hour");
        cr_assert_eq(total(60, T0 + 59 * MIN), 1);
        cr_assert_eq(total(60, T0 + 60 * MIN), 0, "a fell out after 60 min");
}

Test(stats_window, late_and_future_events_are_classified_not_counted) {
        stats_counters_t c;

        ev("old", T0 - 61 * MIN, T0);            /* older than the hour */
        ev("near-future", T0 + 2 * MIN, T0);     /* inside the allowance */
        ev("far-future", T0 + 6 * MIN, T0);      /* beyond 5 min */
        stats_window_counters(w, &c);
        cr_assert_eq(c.late, 1);
        cr_assert_eq(c.future, 1);
        cr_assert_eq(total(60, T0), 1, "near-future counts now");
        cr_assert_eq(c.records, 3);
}

Test(stats_window, occurred_after_received_is_clock_skew_not_negative_lag) {
        json_t *doc;
        stats_counters_t c;

        add_event("s", "OrderCreated", "storefront", "c1", T0, T0 + 10000, T0);
        add_event("l", "OrderCreated", "storefront", "c1", T0, T0 - 4000, T0);
        stats_window_counters(w, &c);
        cr_assert_eq(c.skewed, 1);
        doc = query(60, NULL, NULL, NULL, T0);
        cr_assert_eq(at(doc, "eventLagMs", "count", NULL), 1);
        cr_assert_float_eq(json_number_value(json_object_get(doc, "avgLagMs")),
                           4000.0, 0.5);
        cr_assert_eq(at(doc, "total", NULL, NULL), 2);
        json_decref(doc);
}

Test(stats_window, a_retry_inside_the_horizon_counts_once_outside_twice) {
        stats_counters_t c;

        ev("r", T0, T0);
        ev("r", T0 + 10000, T0 + 10000);         /* same minute */
        ev("r", T0 + 3 * MIN, T0 + 3 * MIN);     /* 3 minutes later */
        ev("r", T0 + 6 * MIN, T0 + 6 * MIN);     /* beyond 5 minutes */
        stats_window_counters(w, &c);
        cr_assert_eq(c.duplicates, 2);
        cr_assert_eq(total(60, T0 + 6 * MIN), 2);
}

Test(stats_window, a_rebuild_replaying_the_hour_answers_what_the_live_window_did) {
        stats_window_conf_t wc;
        stats_window_t *live = w, *rebuilt;
        json_t *a, *b;
        char id[32];
        int i;

        /* Live: 300 events over 50 minutes, each id retried 2 minutes
         * later once in three, seen as they came. */
        for (i = 0; i < 300; i++) {
                snprintf(id, sizeof(id), "e%d", i);
                ev(id, T0 + i * 10000, T0 + i * 10000);
                if (i % 3 == 0) {
                        ev(id, T0 + i * 10000 + 2 * MIN, T0 + i * 10000 + 2 * MIN);
                }
        }
        stats_window_conf_init(&wc);
        rebuilt = stats_window_new(cat, &wc);
        cr_assert_not_null(rebuilt);
        /* Rebuilt: the same records read later, in offset order. */
        w = rebuilt;
        for (i = 0; i < 300; i++) {
                snprintf(id, sizeof(id), "e%d", i);
                ev(id, T0 + i * 10000, T0 + 55 * MIN);
                if (i % 3 == 0) {
                        ev(id, T0 + i * 10000 + 2 * MIN, T0 + 55 * MIN);
                }
        }
        w = live;
        a = query(60, NULL, NULL, NULL, T0 + 55 * MIN);
        w = rebuilt;
        b = query(60, NULL, NULL, NULL, T0 + 55 * MIN);
        w = live;
        cr_assert_eq(at(a, "total", NULL, NULL), 300);
        cr_assert_eq(at(b, "total", NULL, NULL), 300);
        cr_assert(json_equal(json_object_get(a, "series"),
                             json_object_get(b, "series")),
                  "per-minute series differ after a rebuild");
        json_decref(a);
        json_decref(b);
        stats_window_destroy(rebuilt);
}

Test(stats_window, failures_by_reason_breakdowns_and_filters) {
        json_t *doc;

        add_event("1", "OrderCreated", "storefront", "c1", T0, T0 - 100, T0);
        add_event("2", "OrderCreated", "api", "c2", T0, T0 - 100, T0);
        add_event("3", "EmailSent", "api", "c2", T0, T0 - 100, T0);
        add_failure(AB_CONSUME_REJECTED, "UNKNOWN", T0, T0);
        add_failure(AB_CONSUME_REJECTED, "UNKNOWN", T0, T0);
        add_failure(AB_CONSUME_DEADLETTER, "HTTP_400", T0, T0);
        doc = query(60, NULL, NULL, NULL, T0);
        cr_assert_eq(at(doc, "total", NULL, NULL), 3);
        cr_assert_eq(at(doc, "failures", NULL, NULL), 3);
        cr_assert_eq(at(doc, "failuresByReason", "rejected:UNKNOWN", NULL), 2);
        cr_assert_eq(at(doc, "failuresByReason", "deadletter:HTTP_400", NULL), 1);
        cr_assert_eq(at(doc, "breakdown", "name", "OrderCreated"), 2);
        cr_assert_eq(at(doc, "breakdown", "name", "EmailSent"), 1);
        cr_assert_eq(at(doc, "breakdown", "source", "api"), 2);
        cr_assert_eq(at(doc, "breakdown", "topTenants", "c2"), 2);
        json_decref(doc);
        doc = query(60, "EmailSent", NULL, NULL, T0);
        cr_assert_eq(at(doc, "total", NULL, NULL), 1);
        json_decref(doc);
        doc = query(60, NULL, NULL, "c1", T0);
        cr_assert_eq(at(doc, "total", NULL, NULL), 1);
        json_decref(doc);
}

Test(stats_window, a_million_tenants_and_sources_stay_in_bounded_tables) {
        char id[32], tenant[32], source[32];
        json_t *doc;
        int i;

        for (i = 0; i < 200000; i++) {
                snprintf(id, sizeof(id), "m%d", i);
                snprintf(tenant, sizeof(tenant), "t%d", i % 3 ? i : 7);
                snprintf(source, sizeof(source), "s%d", i % 1000);
                add_event(id, "OrderCreated", source, tenant, T0, T0 - 10, T0);
        }
        doc = query(60, NULL, NULL, NULL, T0);
        cr_assert_eq(at(doc, "total", NULL, NULL), 200000);
        cr_assert_leq(json_object_size(json_object_get(
                          json_object_get(doc, "breakdown"), "topTenants")),
                      32);
        cr_assert_leq(json_object_size(json_object_get(
                          json_object_get(doc, "breakdown"), "source")),
                      33);
        /* the heavy hitter (a third of the events) is found and first */
        cr_assert_geq(at(doc, "breakdown", "topTenants", "t7"), 66667);
        cr_assert_eq(at(doc, "breakdown", "source", "other"), 200000 - 32 * 200);
        json_decref(doc);
}
