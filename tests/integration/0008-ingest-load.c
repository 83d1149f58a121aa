/* aetherbus - Apache-2.0
 *
 * 0008-ingest-load: nothing answered 2xx is ever lost. Correctness under
 * concurrent load at a small scale (issue 12: 4 clients x 250 requests of
 * 1-20 events, checked by high watermark per topic and by id), and the
 * graceful SIGTERM drain in the middle of such a burst (exit 0, every
 * 2xx-answered event on its topic). No speed is asserted. Runs against
 * both brokers.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "ab_itest.h"

#define PARTITIONS 3
#define WAIT_MS    60000
#define CLIENTS    4
#define NAMES      3

/* One business event name per topic, so each topic's count is known. */
static const char *const names[NAMES] = {"OrderCreated", "EmailSent",
                                         "FeatureUsageEvent"};
static const char *const prefixes[NAMES] = {"commerce", "messaging",
                                            "usage"};

typedef struct client_s {
        pthread_t thread;
        int running;
        int idx;
        int requests;     /* how many to send */
        int max_events;   /* per request: 1..max_events */
        int stop_on_gone; /* stop at the first request with no answer */
        /* results, read once the thread is joined */
        int sent;
        int non2xx;
        long first_non2xx;
        char first_body[256];
        char (*ids)[40]; /* events answered 2xx */
        size_t id_cnt;
        size_t per_topic[NAMES];
} client_t;

static ab_itest_broker_t *b;
static ab_itest_proc_t *svc;
static int port;
static char prefix[64];
static client_t clients[CLIENTS];
static atomic_int ok_requests;

static void start(void) {
        svc = ab_itest_stack_start("aetherbus-ingest", PARTITIONS, NULL, WAIT_MS,
                                   &b, prefix, sizeof(prefix), &port);
}

static void clients_join(void) {
        int i;

        for (i = 0; i < CLIENTS; i++) {
                if (clients[i].running) {
                        pthread_join(clients[i].thread, NULL);
                        clients[i].running = 0;
                }
        }
}

static void teardown(void) {
        int i;

        clients_join();
        for (i = 0; i < CLIENTS; i++) {
                free(clients[i].ids);
        }
        memset(clients, 0, sizeof(clients));
        ab_itest_stack_stop(&svc, &b);
}

TestSuite(ingest_load, .fini = teardown, .timeout = 240);

/* One request: k events into body; their ids and name indexes out. */
static void batch(client_t *c, int req, int k, unsigned *seed, char *body,
                  size_t size, char (*ids)[40], int *which) {
        size_t of = 0;
        int i;

        of += (size_t)snprintf(body + of, size - of, "[");
        for (i = 0; i < k; i++) {
                which[i] = (int)(rand_r(seed) % NAMES);
                snprintf(ids[i], sizeof(ids[i]), "ld-%d-%d-%d", c->idx, req,
                         i);
                of += (size_t)snprintf(
                    body + of, size - of,
                    "%s{\"id\":\"%s\",\"name\":\"%s\",\"schemaVersion\":1,"
                    "\"occurredAt\":\"2026-02-11T20:10:00.000Z\",\"source\":"
                    "\"api\",\"companyId\":\"co%d\",\"payload\":{\"seq\":%d}}",
                    i ? "," : "", ids[i], names[which[i]],
                    (int)(rand_r(seed) % 16), i);
        }
        snprintf(body + of, size - of, "]");
}

/* A client: no asserts off the test's thread, every outcome recorded. */
static void *client_main(void *arg) {
        client_t *c   = arg;
        unsigned seed = 0x5eed0000u + (unsigned)c->idx;
        char ids[32][40];
        int which[32];
        ab_itest_http_t res;
        char url[128];
        char body[8192];
        long status;
        int k;
        int i;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/events/ingest", port);
        for (c->sent = 0; c->sent < c->requests; c->sent++) {
                k = 1 + (int)(rand_r(&seed) % (unsigned)c->max_events);
                batch(c, c->sent, k, &seed, body, sizeof(body), ids, which);
                status = ab_itest_http_post_json(url, body, NULL, &res);
                /* Only 202 means every event is in: a 207 would have
                 * rejected some of these valid events. */
                if (status == 202) {
                        for (i = 0; i < k; i++) {
                                memcpy(c->ids[c->id_cnt++], ids[i],
                                       sizeof(ids[i]));
                                c->per_topic[which[i]]++;
                        }
                        atomic_fetch_add(&ok_requests, 1);
                } else if (c->non2xx++ == 0) {
                        c->first_non2xx = res.status;
                        snprintf(c->first_body, sizeof(c->first_body), "%s",
                                 res.body[0] ? res.body : res.error);
                }
                ab_itest_http_clear(&res);
                if (status == 0 && c->stop_on_gone) {
                        c->sent++;
                        break;
                }
        }
        return NULL;
}

static void clients_start(int requests, int max_events, int stop_on_gone) {
        int i;

        atomic_store(&ok_requests, 0);
        for (i = 0; i < CLIENTS; i++) {
                clients[i].idx          = i;
                clients[i].requests     = requests;
                clients[i].max_events   = max_events;
                clients[i].stop_on_gone = stop_on_gone;
                clients[i].ids =
                    calloc((size_t)requests * (size_t)max_events,
                           sizeof(*clients[i].ids));
                cr_assert_not_null(clients[i].ids);
                cr_assert_eq(pthread_create(&clients[i].thread, NULL,
                                            client_main, &clients[i]),
                             0);
                clients[i].running = 1;
        }
}

/* Every event answered 2xx is on its topic, by ce_id; a sample decodes
 * to the same id. @returns the number of 2xx events. */
static size_t assert_all_2xx_in_kafka(int exact_counts) {
        ab_itest_record_t *recs = NULL;
        const char **ids;
        const char *missing;
        char errstr[256];
        char topic[256];
        size_t want, total = 0, nrecs, nmissing, i, j, n;
        int64_t have;
        json_t *doc;
        int t;

        for (i = 0; i < CLIENTS; i++) {
                total += clients[i].id_cnt;
        }
        ids = calloc(total + 1, sizeof(*ids));
        cr_assert_not_null(ids);
        for (t = 0; t < NAMES; t++) {
                snprintf(topic, sizeof(topic), "%s%s", prefix, prefixes[t]);
                want = 0;
                n    = 0;
                for (i = 0; i < CLIENTS; i++) {
                        want += clients[i].per_topic[t];
                }
                have = ab_itest_topic_wait_count(b, topic, (int64_t)want,
                                                 WAIT_MS);
                if (exact_counts && have != (int64_t)want) {
                        /* Say which events are missing, and what the
                         * service logged, before failing: a loss must be
                         * diagnosable from one CI log. */
                        nrecs = ab_itest_consume_all(b, topic, WAIT_MS, &recs);
                        for (i = 0, n = 0; i < CLIENTS; i++) {
                                for (j = 0; j < clients[i].id_cnt; j++) {
                                        ids[n++] = clients[i].ids[j];
                                }
                        }
                        nmissing = ab_itest_records_missing(
                            recs, nrecs, "ce_id", ids, n, &missing);
                        ab_itest_proc_dump_log(svc);
                        cr_assert_fail("%s: high watermarks count %lld, %zu "
                                       "events were answered 2xx; %zu "
                                       "records read, %zu of all 2xx ids "
                                       "absent here, e.g. %s",
                                       topic, (long long)have, want, nrecs,
                                       nmissing, missing ? missing : "-");
                } else if (!exact_counts) {
                        cr_assert_geq(have, (int64_t)want,
                                      "%s: high watermarks count %lld, %zu "
                                      "events were answered 2xx",
                                      topic, (long long)have, want);
                }
                nrecs = ab_itest_consume_all(b, topic, WAIT_MS, &recs);
                cr_assert_eq((int64_t)nrecs, have, "read %zu of %lld from %s",
                             nrecs, (long long)have, topic);
                for (i = 0; i < CLIENTS; i++) {
                        for (j = 0; j < clients[i].id_cnt; j++) {
                                ids[n++] = clients[i].ids[j];
                        }
                }
                /* ids of every topic: only those of this topic can match,
                 * so count the misses against this topic's share */
                nmissing = ab_itest_records_missing(recs, nrecs, "ce_id", ids,
                                                    n, &missing);
                cr_assert_eq(n - nmissing, want,
                             "%s: %zu of the %zu events answered 2xx for it "
                             "are there",
                             topic, n - nmissing, want);
                for (i = 0; i < nrecs; i += 97) {
                        doc = ab_itest_record_json(&recs[i], errstr,
                                                   sizeof(errstr));
                        cr_assert_not_null(doc, "%s", errstr);
                        cr_assert_str_eq(
                            json_string_value(json_object_get(doc, "id")),
                            ab_itest_record_header(&recs[i], "ce_id"));
                        json_decref(doc);
                }
                ab_itest_records_free(recs, nrecs);
                recs = NULL;
        }
        free(ids);
        return total;
}

Test(ingest_load, concurrent_batches_lose_no_event_answered_2xx) {
        size_t events;
        int i;

        start();
        clients_start(250, 20, 0);
        clients_join();
        for (i = 0; i < CLIENTS; i++) {
                cr_assert_eq(clients[i].non2xx, 0,
                             "client %d: %d requests not 2xx, first %ld %s", i,
                             clients[i].non2xx, clients[i].first_non2xx,
                             clients[i].first_body);
        }
        events = assert_all_2xx_in_kafka(1);
        cr_log_info("%s: %d requests, %zu events, all in Kafka",
                    ab_itest_broker_kind(b), CLIENTS * 250, events);
}

Test(ingest_load, sigterm_during_a_burst_exits_0_and_keeps_every_2xx_event) {
        int64_t dl;
        int refused = 0;
        int status;
        int i;

        start();
        clients_start(400, 5, 1);
        dl = ab_itest_deadline(WAIT_MS);
        while (atomic_load(&ok_requests) < 50) {
                cr_assert(ab_itest_tick(dl), "only %d requests answered 2xx",
                          atomic_load(&ok_requests));
        }
        cr_assert_eq(ab_itest_proc_signal(svc, SIGTERM), 0);
        status = ab_itest_proc_wait_exit(svc, WAIT_MS);
        if (status != 0) {
                ab_itest_proc_dump_log(svc);
        }
        cr_assert_eq(status, 0, "exit status after SIGTERM mid-burst");
        clients_join();
        for (i = 0; i < CLIENTS; i++) {
                cr_assert(clients[i].non2xx == 0 ||
                              clients[i].first_non2xx == 503 ||
                              clients[i].first_non2xx == 0,
                          "client %d: first refusal %ld %s", i,
                          clients[i].first_non2xx, clients[i].first_body);
                refused += clients[i].non2xx;
        }
        cr_log_info("%s: %zu events answered 2xx before the drain ended, "
                    "%d requests refused after SIGTERM",
                    ab_itest_broker_kind(b), assert_all_2xx_in_kafka(0),
                    refused);
}
