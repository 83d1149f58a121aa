/* aetherbus - Apache-2.0
 *
 * Unit tests for ab_metrics: exposition format, escaping, registration
 * rules, bounded label sets, concurrent updates, histogram buckets.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ab_metrics.h"

static ab_metrics_t *reg;
static char errstr[256];

static void setup(void) {
        reg = ab_metrics_new("test", errstr, sizeof(errstr));
        cr_assert(reg, "%s", errstr);
}

static void teardown(void) {
        ab_metrics_destroy(reg);
}

TestSuite(metrics, .init = setup, .fini = teardown);

static char *render(void) {
        char *buf;
        size_t len;

        cr_assert_eq(ab_metrics_render(reg, &buf, &len), AB_OK);
        cr_assert_eq(strlen(buf), len);
        return buf;
}

Test(metrics, renders_exact_exposition_format) {
        static const double b[] = {0.1, 0.5, 1};
        ab_metric_t *c;
        ab_metric_t *g;
        ab_metric_t *l;
        ab_metric_t *h;
        char *out;

        c = ab_metrics_counter(reg, "events_total", "Events seen.", NULL,
                               errstr, sizeof(errstr));
        g = ab_metrics_gauge(reg, "queue_depth", "Queue depth.", NULL, errstr,
                             sizeof(errstr));
        l = ab_metrics_counter(reg, "http_requests_total", "Requests.",
                               "route, status", errstr, sizeof(errstr));
        h = ab_metrics_histogram(reg, "latency_seconds", "Latency.", "route",
                                 b, 3, errstr, sizeof(errstr));
        cr_assert(c && g && l && h, "%s", errstr);

        ab_metric_add(c, 41);
        ab_metric_inc(c);
        ab_metric_set(g, 2.5);
        ab_metric_gauge_add(g, -1);
        ab_metric_inc(AB_METRIC_WITH(l, "/a", "200"));
        ab_metric_add(AB_METRIC_WITH(l, "/b", "503"), 3);
        ab_metric_inc(AB_METRIC_WITH(l, "/a", "200"));
        ab_metric_observe(AB_METRIC_WITH(h, "/a"), 0.05);
        ab_metric_observe(AB_METRIC_WITH(h, "/a"), 0.5);
        ab_metric_observe(AB_METRIC_WITH(h, "/a"), 7);

        out = render();
        cr_assert_str_eq(
            out,
            "# HELP aetherbus_test_events_total Events seen.\n"
            "# TYPE aetherbus_test_events_total counter\n"
            "aetherbus_test_events_total 42\n"
            "# HELP aetherbus_test_queue_depth Queue depth.\n"
            "# TYPE aetherbus_test_queue_depth gauge\n"
            "aetherbus_test_queue_depth 1.5\n"
            "# HELP aetherbus_test_http_requests_total Requests.\n"
            "# TYPE aetherbus_test_http_requests_total counter\n"
            "aetherbus_test_http_requests_total{route=\"/a\",status=\"200\"} "
            "2\n"
            "aetherbus_test_http_requests_total{route=\"/b\",status=\"503\"} "
            "3\n"
            "# HELP aetherbus_test_latency_seconds Latency.\n"
            "# TYPE aetherbus_test_latency_seconds histogram\n"
            "aetherbus_test_latency_seconds_bucket{route=\"/a\",le=\"0.1\"} "
            "1\n"
            "aetherbus_test_latency_seconds_bucket{route=\"/a\",le=\"0.5\"} "
            "2\n"
            "aetherbus_test_latency_seconds_bucket{route=\"/a\",le=\"1\"} 2\n"
            "aetherbus_test_latency_seconds_bucket{route=\"/a\",le=\"+Inf\"} "
            "3\n"
            "aetherbus_test_latency_seconds_sum{route=\"/a\"} 7.55\n"
            "aetherbus_test_latency_seconds_count{route=\"/a\"} 3\n");
        free(out);
}

Test(metrics, escapes_help_and_label_values) {
        ab_metric_t *m;
        char *out;

        m = ab_metrics_counter(reg, "x_total", "Back\\slash\nnewline \"q\".",
                               "v", errstr, sizeof(errstr));
        cr_assert(m, "%s", errstr);
        ab_metric_inc(AB_METRIC_WITH(m, "a\"b\\c\nd"));
        out = render();
        cr_assert_str_eq(out,
                         "# HELP aetherbus_test_x_total Back\\\\slash\\nnewline "
                         "\"q\".\n"
                         "# TYPE aetherbus_test_x_total counter\n"
                         "aetherbus_test_x_total{v=\"a\\\"b\\\\c\\nd\"} 1\n");
        free(out);
}

Test(metrics, unlabelled_histogram_uses_default_buckets) {
        ab_metric_t *h;
        char *out;

        h = ab_metrics_histogram(reg, "d_seconds", "D.", NULL, NULL, 0, errstr,
                                 sizeof(errstr));
        cr_assert(h, "%s", errstr);
        ab_metric_observe(h, 0.0005); /* le is inclusive */
        ab_metric_observe(h, 100);
        out = render();
        cr_assert(strstr(out, "aetherbus_test_d_seconds_bucket{le=\"0.0005\"} "
                              "1\n"),
                  "%s", out);
        cr_assert(strstr(out, "aetherbus_test_d_seconds_bucket{le=\"10\"} 1\n"),
                  "%s", out);
        cr_assert(strstr(out,
                         "aetherbus_test_d_seconds_bucket{le=\"+Inf\"} 2\n"),
                  "%s", out);
        cr_assert(strstr(out, "aetherbus_test_d_seconds_count 2\n"), "%s",
                  out);
        free(out);
}

Test(metrics, histogram_bucket_edges_are_inclusive) {
        static const double b[] = {1, 2, 4};
        static const struct {
                double v;
                int bucket; /* index of the first bucket counting it */
        } rows[] = {{0, 0}, {1, 0}, {1.0000001, 1}, {2, 1},
                    {3, 2}, {4, 2}, {4.5, 3},       {-1, 0}};
        ab_metric_t *h;
        char want[128];
        char *out;
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                ab_metrics_destroy(reg);
                reg = ab_metrics_new("test", errstr, sizeof(errstr));
                h   = ab_metrics_histogram(reg, "h", "H.", NULL, b, 3, errstr,
                                           sizeof(errstr));
                cr_assert(h, "%s", errstr);
                ab_metric_observe(h, rows[i].v);
                out = render();
                snprintf(want, sizeof(want),
                         "aetherbus_test_h_bucket{le=\"%s\"} 1\n",
                         (const char *[]){"1", "2", "4",
                                          "+Inf"}[rows[i].bucket]);
                cr_assert(strstr(out, want), "row %zu: want %s in %s", i, want,
                          out);
                if (rows[i].bucket > 0) {
                        snprintf(want, sizeof(want),
                                 "aetherbus_test_h_bucket{le=\"%s\"} 0\n",
                                 (const char *[]){"1", "2",
                                                  "4"}[rows[i].bucket - 1]);
                        cr_assert(strstr(out, want), "row %zu: want %s in %s",
                                  i, want, out);
                }
                free(out);
        }
}

Test(metrics, same_registration_returns_same_handle) {
        ab_metric_t *a;
        ab_metric_t *b;

        a = ab_metrics_counter(reg, "r_total", "R.", "x", errstr,
                               sizeof(errstr));
        b = ab_metrics_counter(reg, "r_total", "R again.", "x", errstr,
                               sizeof(errstr));
        cr_assert(a && a == b);
}

Test(metrics, rejects_bad_registrations) {
        static const struct {
                const char *name;
                const char *labels;
                const char *err;
        } rows[] = {
            {"bad-name", NULL,
             "metrics: bad metric name \"aetherbus_test_bad-name\""},
            {"ok_total", "a,a", "aetherbus_test_ok_total: duplicate label "
                                "\"a\""},
            {"ok_total", "__x", "aetherbus_test_ok_total: bad label name "
                                "\"__x\""},
            {"ok_total", "1x", "aetherbus_test_ok_total: bad label name "
                               "\"1x\""},
        };
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                errstr[0] = '\0';
                cr_assert_null(ab_metrics_counter(reg, rows[i].name, "h",
                                                  rows[i].labels, errstr,
                                                  sizeof(errstr)),
                               "row %zu", i);
                cr_assert_str_eq(errstr, rows[i].err, "row %zu", i);
        }
        cr_assert(ab_metrics_counter(reg, "c_total", "C.", "a", errstr,
                                     sizeof(errstr)));
        cr_assert_null(ab_metrics_gauge(reg, "c_total", "C.", "a", errstr,
                                        sizeof(errstr)));
        cr_assert_str_eq(errstr,
                         "aetherbus_test_c_total: already registered with "
                         "another type, labels or buckets");
        cr_assert_null(ab_metrics_histogram(reg, "h", "H.", "le", NULL, 0,
                                            errstr, sizeof(errstr)));
        cr_assert_null(ab_metrics_new("bad-svc", errstr, sizeof(errstr)));
}

Test(metrics, label_set_is_bounded_and_null_is_safe) {
        ab_metric_t *m;
        ab_metric_t *s;
        char v[16];
        int i;

        m = ab_metrics_counter(reg, "b_total", "B.", "v", errstr,
                               sizeof(errstr));
        cr_assert(m);
        for (i = 0; i < AB_METRICS_MAX_SERIES; i++) {
                snprintf(v, sizeof(v), "%d", i);
                cr_assert(AB_METRIC_WITH(m, v), "series %d", i);
        }
        s = AB_METRIC_WITH(m, "one-too-many");
        cr_assert_null(s);
        ab_metric_inc(s); /* no-op */
        /* Existing ones still resolve. */
        cr_assert(AB_METRIC_WITH(m, "0"));
        /* Wrong value counts. */
        cr_assert_null(AB_METRIC_WITH(m, "a", "b"));
        cr_assert_null(ab_metric_with(m, (const char *const[]){NULL}));
        /* Updates to the family handle itself are ignored. */
        ab_metric_inc(m);
        cr_assert_eq(ab_metric_value(m), 0);
}

Test(metrics, gauge_fn_requires_a_function) {
        cr_assert_null(ab_metrics_gauge_fn(reg, "fn_value", "F.", NULL, NULL,
                                           errstr, sizeof(errstr)));
        cr_assert_str_eq(errstr, "metrics: gauge function required");
}

static double read_double(void *opaque) {
        return *(double *)opaque;
}

Test(metrics, gauge_fn_value) {
        static double val = 1048576;
        char *out;

        cr_assert(ab_metrics_gauge_fn(reg, "rss_bytes", "RSS.", read_double,
                                      &val, errstr, sizeof(errstr)));
        out = render();
        cr_assert(strstr(out, "aetherbus_test_rss_bytes 1048576\n"), "%s",
                  out);
        free(out);
}

#define THREADS 8
#define ITERS   100000

static ab_metric_t *shared_c;
static ab_metric_t *shared_l;
static ab_metric_t *shared_h;
static ab_metric_t *shared_g;

static void *hammer(void *arg) {
        char v[8];
        int i;

        for (i = 0; i < ITERS; i++) {
                ab_metric_inc(shared_c);
                /* Lookup every time, creating the series concurrently. */
                snprintf(v, sizeof(v), "%d", i % 4);
                ab_metric_inc(AB_METRIC_WITH(shared_l, v));
                ab_metric_observe(shared_h, 1.0);
                ab_metric_gauge_add(shared_g, 1.0);
        }
        (void)arg;
        return NULL;
}

Test(metrics, concurrent_updates_sum_exactly) {
        pthread_t t[THREADS];
        char want[128];
        char *out;
        int i;

        shared_c = ab_metrics_counter(reg, "c_total", "C.", NULL, errstr,
                                      sizeof(errstr));
        shared_l = ab_metrics_counter(reg, "l_total", "L.", "k", errstr,
                                      sizeof(errstr));
        shared_h = ab_metrics_histogram(reg, "h", "H.", NULL, NULL, 0, errstr,
                                        sizeof(errstr));
        shared_g = ab_metrics_gauge(reg, "g", "G.", NULL, errstr,
                                    sizeof(errstr));
        for (i = 0; i < THREADS; i++) {
                pthread_create(&t[i], NULL, hammer, NULL);
        }
        for (i = 0; i < THREADS; i++) {
                pthread_join(t[i], NULL);
        }
        cr_assert_eq(ab_metric_value(shared_c), THREADS * ITERS);
        cr_assert_eq(ab_metric_value(shared_g), THREADS * ITERS);
        for (i = 0; i < 4; i++) {
                snprintf(want, sizeof(want), "%d", i);
                cr_assert_eq(ab_metric_value(AB_METRIC_WITH(shared_l, want)),
                             THREADS * ITERS / 4, "series %d", i);
        }
        out = render();
        snprintf(want, sizeof(want), "aetherbus_test_h_count %d\n",
                 THREADS * ITERS);
        cr_assert(strstr(out, want), "%s", out);
        snprintf(want, sizeof(want), "aetherbus_test_h_sum %d\n",
                 THREADS * ITERS);
        cr_assert(strstr(out, want), "%s", out);
        /* Four series, each created once. */
        cr_assert_eq(strstr(strstr(out, "l_total{k=\"3\"}") + 1,
                            "l_total{k=\"3\"}"),
                     NULL);
        free(out);
}
