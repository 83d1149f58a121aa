/* aetherbus - Apache-2.0
 *
 * 0007-ingest-topics: aetherbus-ingest started before its topics exist
 * (issue 11). It must not hang or accept events it cannot write: /readyz
 * answers 503 naming a missing topic, POST answers 503 with Retry-After
 * and that reason, the log says it at start-up; once the topics are
 * created it becomes ready and accepts events within a bounded time. The
 * real Kafka runs with auto.create.topics.enable=false like production;
 * the devbroker (librdkafka's mock) auto-creates a topic only when a
 * client produces to it (core.startup makes <prefix>core there), never on
 * readiness's metadata request, so the test runs on both brokers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "ab_catalog.h"
#include "ab_itest.h"

#define PARTITIONS 3
#define WAIT_MS    30000
#define EVENT                                                            \
        "{\"id\":\"late-1\",\"name\":\"OrderCreated\",\"schemaVersion\":1,"  \
        "\"occurredAt\":\"2026-02-11T20:10:00.000Z\",\"source\":\"api\","  \
        "\"companyId\":\"c1\",\"payload\":{}}"

static ab_itest_broker_t *b;
static ab_itest_proc_t *svc;
static int port;
static char prefix[64];

/* A service whose topic prefix has no topics (yet). */
static void start(void) {
        b = ab_itest_broker_start();
        ab_itest_prefix(prefix, sizeof(prefix));
        svc = ab_itest_service_start(b, "aetherbus-ingest", prefix, NULL,
                                     &port);
}

static void teardown(void) {
        ab_itest_stack_stop(&svc, &b);
}

TestSuite(ingest_topics, .fini = teardown, .timeout = 120);

static long post(ab_itest_http_t *res) {
        char url[128];

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/events/ingest", port);
        return ab_itest_http_post_json(url, EVENT, NULL, res);
}

/* The "detail" of an error body names a topic of our prefix. */
static void assert_names_missing_topic(const ab_itest_http_t *res,
                                       const char *what) {
        json_t *doc = ab_itest_http_json(res);
        const char *detail;

        cr_assert_not_null(doc, "%s: body is not JSON: %s", what, res->body);
        detail = json_string_value(json_object_get(doc, "detail"));
        cr_assert(detail && strstr(detail, prefix) &&
                      strstr(detail, "does not exist"),
                  "%s does not name a missing %s* topic: %s", what, prefix,
                  res->body);
        json_decref(doc);
}

/* The catalog's topics that do not exist yet (see the top of the file). */
static void create_missing_topics(void) {
        char names[64][256];
        const char *missing[64];
        ab_catalog_t *cat;
        char errstr[256];
        size_t cnt, i, n = 0;

        cat = ab_catalog_new(errstr, sizeof(errstr));
        cr_assert_not_null(cat, "%s", errstr);
        cnt = ab_catalog_prefix_count(cat);
        cr_assert_leq(cnt + 2, 64);
        for (i = 0; i < cnt + 2; i++) {
                cr_assert_eq(ab_catalog_topic(
                                 prefix,
                                 i < cnt ? ab_catalog_prefix_get(cat, i)
                                 : i == cnt ? AB_CATALOG_TOPIC_REJECTED
                                            : AB_CATALOG_TOPIC_DEADLETTER,
                                 names[i], sizeof(names[i])),
                             AB_OK);
                if (ab_itest_topic_count_now(b, names[i]) < 0) {
                        missing[n++] = names[i];
                }
        }
        ab_catalog_destroy(cat);
        cr_assert_gt(n, 0, "every topic exists already");
        ab_itest_topics_create(b, missing, n, PARTITIONS);
}

Test(ingest_topics, missing_topics_give_503_naming_one_until_created) {
        ab_itest_http_t res;
        char url[128];
        char ra[32];

        start();
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", port);
        cr_assert_eq(ab_itest_http_get(url, &res), 503, "/readyz: %ld %s",
                     res.status, res.body);
        assert_names_missing_topic(&res, "/readyz");
        ab_itest_http_clear(&res);

        cr_assert_eq(post(&res), 503, "POST: %ld %s", res.status, res.body);
        cr_assert_eq(ab_itest_http_header(&res, "Retry-After", ra, sizeof(ra)),
                     0, "503 without Retry-After");
        assert_names_missing_topic(&res, "POST /events/ingest");
        ab_itest_http_clear(&res);

        create_missing_topics();
        cr_assert_eq(ab_itest_http_wait_status(port, "/readyz", 200, WAIT_MS),
                     200, "not ready %d ms after the topics were created",
                     ab_itest_timeout(WAIT_MS));
        cr_assert_eq(post(&res), 202, "POST once ready: %ld %s", res.status,
                     res.body);
        ab_itest_http_clear(&res);
        snprintf(url, sizeof(url), "%scommerce", prefix);
        cr_assert_eq(ab_itest_topic_wait_count(b, url, 1, WAIT_MS), 1,
                     "the event is not on %s", url);
}

Test(ingest_topics, missing_topic_is_logged_at_startup) {
        char needle[128];

        start();
        snprintf(needle, sizeof(needle), "topic %s", prefix);
        cr_assert_eq(ab_itest_proc_wait_log(svc, needle, 10000), 0,
                     "no log line names a missing %s* topic", prefix);
}
