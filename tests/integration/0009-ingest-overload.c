/* aetherbus - Apache-2.0
 *
 * 0009-ingest-overload: requests held for Kafka are capped
 * (MAX_INFLIGHT_REQUESTS), so a slow Kafka makes ingest answer 503 with
 * Retry-After instead of growing memory; the held request still gets its
 * 202 and its event is in Kafka. The devbroker's control channel makes the
 * broker slow ("rtt"); a real broker cannot be slowed from here, which the
 * kafka run says by name.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "ab_itest.h"

#define WAIT_MS 30000
#define EVENT(id)                                                              \
        "{\"id\":\"" id "\",\"name\":\"ProductViewed\",\"schemaVersion\":1,"   \
        "\"occurredAt\":\"2026-02-11T20:10:00.000Z\",\"source\":\"storefront\"," \
        "\"companyId\":\"c1\",\"payload\":{\"p\":1}}"

static ab_itest_broker_t *b;
static ab_itest_proc_t *svc;
static int port;
static char prefix[64];

static void teardown(void) {
        ab_itest_stack_stop(&svc, &b);
}

TestSuite(ingest_overload, .fini = teardown, .timeout = 120);

static long post(const char *body, ab_itest_http_t *res) {
        char url[256];

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/events/ingest", port);
        return ab_itest_http_post_json(url, body, NULL, res);
}

static void *held(void *arg) {
        ab_itest_http_t *res = arg;

        post(EVENT("held-1"), res);
        return NULL;
}

/* Polls /metrics until requests_waiting reads want. */
static int waiting_is(int want, int timeout_ms) {
        char url[256], line[128];
        ab_itest_http_t res;
        int64_t dl = ab_itest_deadline(timeout_ms);
        int ok;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
        snprintf(line, sizeof(line), "\naetherbus_ingest_requests_waiting %d\n",
                 want);
        do {
                ab_itest_http_get(url, &res);
                ok = res.body && strstr(res.body, line) != NULL;
                ab_itest_http_clear(&res);
                if (ok) {
                        return 1;
                }
        } while (ab_itest_tick(dl));
        return 0;
}

Test(ingest_overload, requests_over_the_inflight_cap_get_503_while_kafka_is_slow) {
        static const char *const env[] = {"MAX_INFLIGHT_REQUESTS=1", NULL};
        ab_itest_http_t first, second;
        char reply[256], topic[256], retry[32];
        pthread_t t;

        ab_itest_require_kind("devbroker",
                              "slows the broker with the devbroker's rtt "
                              "control; a real broker cannot be slowed from "
                              "the test");
        svc = ab_itest_stack_start("aetherbus-ingest", 1, env, WAIT_MS, &b,
                                   prefix, sizeof(prefix), &port);
        /* Under the readiness check's 3 s, so the service stays ready. */
        cr_assert_eq(ab_itest_broker_control(b, "rtt 1 1500", reply,
                                             sizeof(reply)),
                     0, "rtt: %s", reply);
        memset(&first, 0, sizeof(first));
        cr_assert_eq(pthread_create(&t, NULL, held, &first), 0);
        cr_assert(waiting_is(1, WAIT_MS), "the first request was never held");

        cr_assert_eq(post(EVENT("refused-1"), &second), 503, "%s", second.body);
        cr_assert(strstr(second.body, "too many requests"), "%s", second.body);
        cr_assert(ab_itest_http_header(&second, "Retry-After", retry,
                                       sizeof(retry)) == 0,
                  "no Retry-After");
        ab_itest_http_clear(&second);

        ab_itest_broker_control(b, "rtt 1 0", reply, sizeof(reply));
        pthread_join(t, NULL);
        cr_assert_eq(first.status, 202, "%s", first.body);
        ab_itest_http_clear(&first);
        snprintf(topic, sizeof(topic), "%scommerce", prefix);
        cr_assert_eq(ab_itest_topic_wait_count(b, topic, 1, WAIT_MS), 1);

        /* The cap is on requests held, not a state: the next one is fine. */
        cr_assert_eq(post(EVENT("after-1"), &second), 202, "%s", second.body);
        ab_itest_http_clear(&second);
}
