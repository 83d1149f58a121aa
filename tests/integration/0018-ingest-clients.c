/* aetherbus - Apache-2.0
 *
 * 0018-ingest-clients: per-client API keys (INGEST_CLIENTS_FILE) against
 * the real aetherbus-ingest. An unknown key is 401 before the body; a name
 * outside a client's allow list is 403 (207 per item in a mixed batch) and
 * its rejected record names the client; a client over its rate gets 429
 * with Retry-After while another client is unaffected; every accepted
 * record carries the client in CloudEvents' authcontext headers
 * (ce_authtype, ce_authid), checked by event id on the topic; SIGHUP
 * swaps the table without a restart (a bad file keeps the old one); the
 * file and the shared token together are a configuration error. Runs
 * against both brokers.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/sha.h>

#include "ab_itest.h"

#define PARTITIONS 1
#define WAIT_MS    30000

static ab_itest_broker_t *b;
static ab_itest_proc_t *svc;
static int port;
static char prefix[64];
static char clients_path[512];

static void teardown(void) {
        ab_itest_stack_stop(&svc, &b);
        if (clients_path[0]) {
                unlink(clients_path);
        }
}

TestSuite(ingest_clients, .fini = teardown, .timeout = 120);

static void hex_of(const char *key, char out[65]) {
        unsigned char md[SHA256_DIGEST_LENGTH];
        int i;

        SHA256((const unsigned char *)key, strlen(key), md);
        for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
                snprintf(out + 2 * i, 3, "%02x", md[i]);
        }
}

/* shop: commerce only, ample rate; slow: anything, 1 request/s, burst 2. */
static void write_clients(const char *extra) {
        char h1[65], h2[65];
        FILE *fp;

        hex_of("shop-key-1", h1);
        hex_of("slow-key-2", h2);
        fp = fopen(clients_path, "w");
        cr_assert_not_null(fp);
        fprintf(fp,
                "[{\"name\":\"shop\",\"keySha256\":\"%s\","
                "\"allow\":[\"commerce.\"],\"ratePerSec\":1000,\"burst\":1000},"
                "{\"name\":\"slow\",\"keySha256\":\"%s\",\"allow\":[\"*\"],"
                "\"ratePerSec\":0.2,\"burst\":2}%s]",
                h1, h2, extra ? extra : "");
        fclose(fp);
}

static void start(void) {
        char env_file[600];
        const char *env[] = {env_file, NULL};

        snprintf(clients_path, sizeof(clients_path), "%s/clients-%d.json",
                 ab_itest_tmpdir(), (int)getpid());
        write_clients(NULL);
        snprintf(env_file, sizeof(env_file), "INGEST_CLIENTS_FILE=%s",
                 clients_path);
        svc = ab_itest_stack_start("aetherbus-ingest", PARTITIONS, env, WAIT_MS,
                                   &b, prefix, sizeof(prefix), &port);
}

static const char *topic(const char *p) {
        static char buf[4][256];
        static int i;

        i = (i + 1) % 4;
        snprintf(buf[i], sizeof(buf[i]), "%s%s", prefix, p);
        return buf[i];
}

static char *event(const char *id, const char *name) {
        static char buf[4][512];
        static int i;

        i = (i + 1) % 4;
        snprintf(buf[i], sizeof(buf[i]),
                 "{\"id\":\"%s\",\"name\":\"%s\",\"schemaVersion\":1,"
                 "\"occurredAt\":\"2026-02-11T20:10:00.000Z\","
                 "\"source\":\"storefront\",\"companyId\":\"c1\","
                 "\"payload\":{\"productId\":\"p1\",\"sku\":\"S-1\","
                 "\"orderId\":\"o1\",\"total\":1,\"currency\":\"EUR\","
                 "\"leadId\":\"l1\",\"email\":\"a@b.c\"}}",
                 id, name);
        return buf[i];
}

static long post(const char *key, const char *body, ab_itest_http_t *res) {
        char url[256], auth[256];
        const char *hdrs[3] = {"Content-Type: application/json", NULL, NULL};

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/events/ingest", port);
        if (key) {
                snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
                hdrs[1] = auth;
        }
        ab_itest_http("POST", url, hdrs, body, strlen(body), res);
        return res->status;
}

static json_t *body_json(const ab_itest_http_t *res) {
        json_t *doc = json_loads(res->body ? res->body : "", 0, NULL);

        cr_assert_not_null(doc, "not JSON: %s", res->body);
        return doc;
}

/* The record of event \p id on \p t, by its ce_id header. */
static ab_itest_record_t *find(ab_itest_record_t *recs, size_t n,
                               const char *id) {
        return (ab_itest_record_t *)ab_itest_records_find(recs, n, "ce_id", id);
}

Test(ingest_clients, an_unknown_or_missing_key_is_401_and_nothing_is_written) {
        static const char *const bad[] = {
            NULL, "", "shop-key-", "shop-key-1x", "SHOP-KEY-1",
            /* the digest itself is no key */
            "e0b4d4bb67e1c3a2c6e5d8e7f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3",
        };
        ab_itest_http_t res;
        size_t i;

        start();
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                cr_assert_eq(post(bad[i], event("k1", "ProductViewed"), &res),
                             401, "key %s: %ld %s", bad[i] ? bad[i] : "(none)",
                             res.status, res.body);
                json_decref(body_json(&res));
                ab_itest_http_clear(&res);
        }
        cr_assert_eq(post("shop-key-1", event("k2", "ProductViewed"), &res),
                     202, "%s", res.body);
        ab_itest_http_clear(&res);
        /* only k2 arrived: a 401 produces nothing, not even a rejection */
        cr_assert_eq(ab_itest_topic_wait_count(b, topic("commerce"), 1, WAIT_MS), 1);
        cr_assert_eq(ab_itest_topic_count(b, topic("rejected")), 0);
}

Test(ingest_clients, a_name_outside_the_allow_list_is_403_and_recorded_with_the_client) {
        ab_itest_record_t *recs = NULL;
        ab_itest_record_t *r;
        ab_itest_http_t res;
        json_t *doc, *results;
        char errstr[256];
        size_t n;

        start();
        /* wholly forbidden: 403, not 400 */
        cr_assert_eq(post("shop-key-1", event("f1", "DashboardViewed"), &res), 403,
                     "%s", res.body);
        cr_assert(strstr(res.body, "not allowed for client \\\"shop\\\""), "%s",
                  res.body);
        ab_itest_http_clear(&res);
        /* mixed: 207, per item */
        cr_assert_eq(post("shop-key-1",
                          "[" "{\"id\":\"f2\",\"name\":\"ProductViewed\","
                          "\"schemaVersion\":1,\"occurredAt\":"
                          "\"2026-02-11T20:10:00.000Z\",\"source\":\"storefront\","
                          "\"companyId\":\"c1\",\"payload\":{\"productId\":"
                          "\"p1\",\"sku\":\"S\"}},"
                          "{\"id\":\"f3\",\"name\":\"DashboardViewed\","
                          "\"schemaVersion\":1,\"occurredAt\":"
                          "\"2026-02-11T20:10:00.000Z\",\"source\":\"storefront\","
                          "\"companyId\":\"c1\",\"payload\":{}}]",
                          &res),
                     207, "%s", res.body);
        doc     = body_json(&res);
        results = json_object_get(doc, "results");
        cr_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(results, 0), "status")),
                         "accepted", "%s", res.body);
        cr_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(results, 1), "status")),
                         "rejected", "%s", res.body);
        json_decref(doc);
        ab_itest_http_clear(&res);

        /* f2 arrived with the client in its headers */
        cr_assert_eq(ab_itest_topic_wait_count(b, topic("commerce"), 1, WAIT_MS), 1);
        n = ab_itest_consume_all(b, topic("commerce"), WAIT_MS, &recs);
        r = find(recs, n, "f2");
        cr_assert_not_null(r, "f2 not on %s", topic("commerce"));
        cr_assert_str_eq(ab_itest_record_header(r, "ce_authid"), "shop");
        cr_assert_str_eq(ab_itest_record_header(r, "ce_authtype"), "api_key");
        ab_itest_records_free(recs, n);

        /* f1 and f3 are each on rejected, naming the client */
        cr_assert_eq(ab_itest_topic_wait_count(b, topic("rejected"), 2, WAIT_MS), 2);
        n = ab_itest_consume_all(b, topic("rejected"), WAIT_MS, &recs);
        cr_assert_eq(n, 2);
        for (size_t i = 0; i < n; i++) {
                json_t *orig;

                doc = ab_itest_record_json(&recs[i], errstr, sizeof(errstr));
                cr_assert_not_null(doc, "%s", errstr);
                cr_assert_str_eq(json_string_value(json_object_get(doc, "client")),
                                 "shop");
                cr_assert_str_eq(json_string_value(json_object_get(doc, "code")),
                                 "FORBIDDEN");
                orig = json_object_get(doc, "original");
                cr_assert_str_eq(json_string_value(json_object_get(orig, "name")),
                                 "DashboardViewed");
                cr_assert_str_eq(ab_itest_record_header(&recs[i], "ce_authid"),
                                 "shop");
                json_decref(doc);
        }
        ab_itest_records_free(recs, n);
}

Test(ingest_clients, a_client_over_its_rate_gets_429_and_others_do_not) {
        ab_itest_http_t res;
        char id[32], value[32];
        int i, limited = 0, accepted = 0;
        json_t *doc;

        start();
        /* burst 2 at 0.2/s: the third request within a second is over */
        for (i = 0; i < 4; i++) {
                snprintf(id, sizeof(id), "r%d", i);
                if (post("slow-key-2", event(id, "ProductViewed"), &res) == 429) {
                        limited++;
                        cr_assert_eq(ab_itest_http_header(&res, "Retry-After",
                                                          value, sizeof(value)),
                                     0, "429 without Retry-After");
                        cr_assert(atoi(value) >= 1, "Retry-After: %s", value);
                        doc = body_json(&res);
                        cr_assert(json_integer_value(json_object_get(
                                      json_object_get(doc, "detail"),
                                      "retryAfterSeconds")) >= 1,
                                  "%s", res.body);
                        json_decref(doc);
                } else {
                        cr_assert_eq(res.status, 202, "%s", res.body);
                        accepted++;
                }
                ab_itest_http_clear(&res);
        }
        cr_assert_eq(accepted, 2, "burst is 2, %d accepted", accepted);
        cr_assert_eq(limited, 2);
        /* shop has its own bucket */
        for (i = 0; i < 20; i++) {
                snprintf(id, sizeof(id), "s%d", i);
                cr_assert_eq(post("shop-key-1", event(id, "ProductViewed"), &res),
                             202, "%s", res.body);
                ab_itest_http_clear(&res);
        }
        cr_assert_eq(ab_itest_topic_wait_count(b, topic("commerce"), 22, WAIT_MS), 22);
}

Test(ingest_clients, sighup_reloads_the_table_and_a_bad_file_keeps_the_old_one) {
        ab_itest_http_t res;
        char h3[65], extra[256], url[128];
        FILE *fp;
        pid_t pid;

        start();
        pid = ab_itest_proc_pid(svc);
        cr_assert_eq(post("new-key-3", event("h1", "ProductViewed"), &res), 401);
        ab_itest_http_clear(&res);

        hex_of("new-key-3", h3);
        snprintf(extra, sizeof(extra),
                 ",{\"name\":\"new\",\"keySha256\":\"%s\",\"allow\":[\"*\"],"
                 "\"ratePerSec\":100,\"burst\":100}",
                 h3);
        write_clients(extra);
        cr_assert_eq(ab_itest_proc_signal(svc, SIGHUP), 0);
        cr_assert_eq(ab_itest_proc_wait_log(svc, "reloaded 3 clients", WAIT_MS),
                     0, "no reload in the log");
        cr_assert_eq(post("new-key-3", event("h2", "ProductViewed"), &res), 202,
                     "%s", res.body);
        ab_itest_http_clear(&res);

        /* a broken file: logged, counted, the table stays */
        fp = fopen(clients_path, "w");
        cr_assert_not_null(fp);
        fputs("[{\"name\":", fp);
        fclose(fp);
        cr_assert_eq(ab_itest_proc_signal(svc, SIGHUP), 0);
        cr_assert_eq(ab_itest_proc_wait_log(svc, "reload failed", WAIT_MS), 0);
        cr_assert_eq(post("new-key-3", event("h3", "ProductViewed"), &res), 202,
                     "%s", res.body);
        ab_itest_http_clear(&res);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
        cr_assert_eq(ab_itest_http_get(url, &res), 200);
        cr_assert(strstr(res.body,
                         "aetherbus_ingest_clients_reloads_total{result=\"failed\"} 1\n"),
                  "%s", res.body);
        cr_assert(strstr(res.body,
                         "aetherbus_ingest_clients_reloads_total{result=\"ok\"} 1\n"),
                  "%s", res.body);
        ab_itest_http_clear(&res);

        /* same process all along, still serving */
        cr_assert(ab_itest_proc_alive(svc));
        cr_assert_eq(ab_itest_proc_pid(svc), pid);
        cr_assert_eq(ab_itest_topic_wait_count(b, topic("commerce"), 2, WAIT_MS), 2);
}

Test(ingest_clients, the_file_and_the_shared_token_together_are_refused) {
        char env_file[600];
        const char *args[] = {NULL};
        const char *env[]  = {env_file, "EVENT_INGEST_TOKEN=t0k", NULL};
        ab_itest_proc_t *p;
        char *log;

        snprintf(clients_path, sizeof(clients_path), "%s/clients-%d.json",
                 ab_itest_tmpdir(), (int)getpid());
        write_clients(NULL);
        snprintf(env_file, sizeof(env_file), "INGEST_CLIENTS_FILE=%s",
                 clients_path);
        p = ab_itest_proc_start("aetherbus-ingest", args, env);
        cr_assert_not_null(p);
        cr_assert_eq(ab_itest_proc_wait_exit(p, WAIT_MS), 2);
        log = ab_itest_proc_log(p);
        cr_assert(log && strstr(log, "set one, not both"), "%s", log);
        free(log);
        ab_itest_proc_destroy(p);
}
