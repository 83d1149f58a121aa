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

/* With ALLOW_UNKNOWN_PREFIXES=* the prefixes outside the catalog are
 * bounded (MAX_UNKNOWN_PREFIXES) and never the failure topics' names: a
 * client cannot write Avro where consumers expect failure records, nor
 * grow ingest by a topic handle per made-up prefix. */
Test(ingest_topics, unknown_prefixes_are_bounded_and_never_the_failure_topics) {
        static const char *const env[] = {"ALLOW_UNKNOWN_PREFIXES=*",
                                          "MAX_UNKNOWN_PREFIXES=2", NULL};
        static const struct {
                const char *name;
                long status;
                const char *says;
        } rows[] = {
            {"zz1.thing.done", 202, NULL},
            {"zz2.thing.done", 202, NULL},
            {"zz1.other.done", 202, NULL},  /* zz1 again: no new prefix */
            {"zz3.thing.done", 400, "MAX_UNKNOWN_PREFIXES"},
            {"rejected.thing", 400, "reserved"},
            {"deadletter.thing", 400, "reserved"},
            {"audit-checkpoints.thing", 400, "reserved"},
            {NULL, 0, NULL},
        };
        const char *topics[3];
        char names[3][128], url[128], body[512];
        ab_itest_http_t res;
        int i;

        b = ab_itest_broker_start();
        ab_itest_prefix(prefix, sizeof(prefix));
        ab_itest_catalog_topics_create(b, prefix, PARTITIONS);
        for (i = 0; i < 3; i++) {
                snprintf(names[i], sizeof(names[i]), "%szz%d", prefix, i + 1);
                topics[i] = names[i];
        }
        ab_itest_topics_create(b, topics, 3, PARTITIONS);
        svc = ab_itest_service_start(b, "aetherbus-ingest", prefix, env, &port);
        cr_assert_eq(ab_itest_http_wait_status(port, "/readyz", 200, WAIT_MS),
                     200, "ingest never became ready");
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/events/ingest", port);
        for (i = 0; rows[i].name; i++) {
                snprintf(body, sizeof(body),
                         "{\"id\":\"u-%d\",\"name\":\"%s\",\"schemaVersion\":1,"
                         "\"occurredAt\":\"2026-02-11T20:10:00.000Z\","
                         "\"source\":\"wms\",\"payload\":{}}",
                         i, rows[i].name);
                cr_assert_eq(ab_itest_http_post_json(url, body, NULL, &res),
                             rows[i].status, "%s: %ld %s", rows[i].name,
                             res.status, res.body);
                if (rows[i].says) {
                        cr_assert(strstr(res.body, rows[i].says), "%s: %s",
                                  rows[i].name, res.body);
                }
                ab_itest_http_clear(&res);
        }
        cr_assert_eq(ab_itest_topic_wait_count(b, names[0], 2, WAIT_MS), 2);
        cr_assert_eq(ab_itest_topic_count(b, names[2]), 0);
}
