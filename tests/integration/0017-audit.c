/* aetherbus - Apache-2.0
 *
 * 0017-audit: real aetherbus-ingest and aetherbus-audit on the broker
 * under test, with the log's SQLite file in the test's temporary
 * directory, read back here with sqlite3. Valid and invalid events
 * through ingest and a dead letter are each one row with the right
 * status; a retry is a duplicate, not a row; a SIGKILLed audit resumes
 * from its database and every event is still there exactly once; the
 * query API filters and pages in leaf order behind the admin guard, and
 * its inclusion proofs check against the signed checkpoint's root;
 * changing one byte of a stored payload makes `aetherbus-audit verify`
 * fail naming that row; a second audit on the same file refuses to
 * start.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <unistd.h>
#include <sqlite3.h>

#include "ab_catalog.h"
#include "ab_itest.h"
#include "ab_time.h"

#define PARTITIONS 2
#define WAIT_MS    30000
#define ADMIN      "audit-admin-token"
#define ORIGIN     "audit.test/log"

static ab_itest_broker_t *b;
static ab_itest_proc_t *ingest, *audit;
static int iport, aport;
static void prove_matches(json_t *api, const char *id);
static void proof_verifies(json_t *doc, const char *id);
static char prefix[64], db[512], key[512], env_db[600], env_key[600];
static char occurred[40]; /* one per test: a retry is the same event */
static char vkey[256];     /* the log's verifier key, from keygen */
static const char *audit_extra[3]; /* more settings of audit, NULL-ended */

static void teardown(void) {
        ab_itest_proc_destroy(audit);
        audit = NULL;
        memset(audit_extra, 0, sizeof(audit_extra));
        ab_itest_stack_stop(&ingest, &b);
}

TestSuite(audit, .fini = teardown, .timeout = 180);

static int64_t wall_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start_audit(void) {
        const char *env[] = {"ADMIN_TOKEN=" ADMIN,
                             env_db,
                             env_key,
                             "AUDIT_ORIGIN=" ORIGIN,
                             "AUDIT_CHECKPOINT_INTERVAL=300ms",
                             "AUDIT_SESSION_TIMEOUT_MS=6000",
                             audit_extra[0],
                             audit_extra[1],
                             NULL};

        audit = ab_itest_service_start(b, "aetherbus-audit", prefix, env,
                                       &aport);
        if (ab_itest_http_wait_status(aport, "/readyz", 200, WAIT_MS) != 200) {
                ab_itest_proc_dump_log(audit);
                cr_assert_fail("audit never became ready");
        }
}

/* The verifier key of the signing key in \p path, derived here with
 * OpenSSL from the note format ("PRIVATE+KEY+name+hash+b64(1||seed)" to
 * "name+hash+b64(1||pub)"), not taken from the binary under test. */
static void vkey_of(const char *path) {
        unsigned char raw[64], pub[33], b64[64];
        char *text, *p, *q, *r;
        size_t publen = 32;
        EVP_PKEY *k;
        int n;

        cr_assert((text = ab_itest_file_read(path)), "%s", path);
        cr_assert(!strncmp(text, "PRIVATE+KEY+", 12), "%s", text);
        p = text + 12;
        cr_assert((q = strchr(p, '+')) && (r = strchr(q + 1, '+')));
        r[strcspn(r, "\r\n")] = '\0';
        n = EVP_DecodeBlock(raw, (const unsigned char *)r + 1,
                            (int)strlen(r + 1));
        cr_assert(n >= 33 && raw[0] == 1, "bad key %s", r + 1);
        cr_assert((k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
                                                    raw + 1, 32)));
        pub[0] = 1;
        cr_assert(EVP_PKEY_get_raw_public_key(k, pub + 1, &publen) == 1);
        EVP_PKEY_free(k);
        EVP_EncodeBlock(b64, pub, 33);
        *r = '\0';
        snprintf(vkey, sizeof(vkey), "%s+%s", p, (char *)b64);
        free(text);
}

static void start(void) {
        ab_time_format(wall_ms() - 1000, occurred, sizeof(occurred));
        ingest = ab_itest_stack_start("aetherbus-ingest", PARTITIONS, NULL,
                                      WAIT_MS, &b, prefix, sizeof(prefix),
                                      &iport);
        snprintf(db, sizeof(db), "%s/%saudit.db", ab_itest_tmpdir(), prefix);
        snprintf(key, sizeof(key), "%s/%skey", ab_itest_tmpdir(), prefix);
        snprintf(env_db, sizeof(env_db), "AUDIT_DB_PATH=%s", db);
        snprintf(env_key, sizeof(env_key), "AUDIT_SIGNING_KEY=%s", key);
        ab_itest_audit_keygen(ORIGIN, key);
        vkey_of(key);
        start_audit();
}


static void post_one(const char *id, const char *name, const char *source,
                     const char *company, int expect) {
        char url[128], body[1024];
        ab_itest_http_t res;

        snprintf(body, sizeof(body),
                 "{\"id\":\"%s\",\"name\":\"%s\",\"schemaVersion\":1,"
                 "\"occurredAt\":\"%s\",\"source\":\"%s\","
                 "\"companyId\":\"%s\",\"payload\":{\"n\":\"%s\"}}",
                 id, name, occurred, source, company, id);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/events/ingest", iport);
        cr_assert_eq(ab_itest_http_post_json(url, body, NULL, &res), expect,
                     "%s: %s", id, res.body);
        ab_itest_http_clear(&res);
}

/* 6 accepted (st-0..5: 4 OrderCreated/storefront, 2 EmailSent/api,
 * companies c0/c1 alternating) and 3 rejected (bad-1..3). */
static void post_mix(void) {
        char id[32];
        int i;

        for (i = 0; i < 6; i++) {
                snprintf(id, sizeof(id), "st-%d", i);
                post_one(id, i < 4 ? "OrderCreated" : "EmailSent",
                         i < 4 ? "storefront" : "api", i % 2 ? "c1" : "c0",
                         202);
        }
        post_one("bad-1", "NoSuchEvent", "api", "c0", 400);
        post_one("bad-2", "NoSuchEvent", "api", "c0", 400);
        post_one("bad-3", "OrderCreated", "nowhere", "c1", 400);
}

/* An integer from the log's database (the service runs: WAL readers
 * are fine; a reader that meets a checkpoint of the WAL asks again). */
static int64_t q_int(const char *sql) {
        int64_t deadline = ab_itest_deadline(5000), n = -1;
        char err[256] = "";
        sqlite3 *h;
        sqlite3_stmt *st;
        int rc;

        do {
                cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY,
                                             NULL),
                             SQLITE_OK, "%s", db);
                sqlite3_busy_timeout(h, 5000);
                if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
                        rc = sqlite3_step(st);
                        if (rc == SQLITE_ROW) {
                                n = sqlite3_column_int64(st, 0);
                        } else {
                                snprintf(err, sizeof(err), "%s",
                                         sqlite3_errmsg(h));
                        }
                        sqlite3_finalize(st);
                } else {
                        snprintf(err, sizeof(err), "%s", sqlite3_errmsg(h));
                }
                sqlite3_close(h);
        } while (n < 0 && ab_itest_tick(deadline));
        cr_assert_geq(n, 0, "%s: %s", sql, err);
        return n;
}

static int64_t rows_of(const char *id, const char *status) {
        char sql[256];

        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM events WHERE id = '%s' AND status = "
                 "'%s'",
                 id, status);
        return q_int(sql);
}

static void wait_rows(const char *where, int64_t want) {
        int64_t deadline = ab_itest_deadline(WAIT_MS), n;
        char sql[256];

        snprintf(sql, sizeof(sql), "SELECT count(*) FROM events WHERE %s",
                 where);
        while ((n = q_int(sql)) != want) {
                if (!ab_itest_tick(deadline)) {
                        ab_itest_proc_dump_log(audit);
                        cr_assert_fail("%s: %lld rows, want %lld", where,
                                       (long long)n, (long long)want);
                }
        }
}

static void wait_rows_geq(const char *where, int64_t want) {
        int64_t deadline = ab_itest_deadline(WAIT_MS), n;
        char sql[256];

        snprintf(sql, sizeof(sql), "SELECT count(*) FROM events WHERE %s",
                 where);
        while ((n = q_int(sql)) < want) {
                cr_assert(ab_itest_tick(deadline), "%s: %lld rows, want %lld",
                          where, (long long)n, (long long)want);
        }
}

static void assert_mix_once(void) {
        char id[32];
        int i;

        for (i = 0; i < 6; i++) {
                snprintf(id, sizeof(id), "st-%d", i);
                cr_assert_eq(rows_of(id, "accepted"), 1, "%s", id);
        }
        cr_assert_eq(q_int("SELECT count(*) FROM events WHERE id LIKE 'st-%' "
                           "AND status != 'accepted'"),
                     0);
        for (i = 1; i <= 3; i++) {
                snprintf(id, sizeof(id), "bad-%d", i);
                cr_assert_eq(rows_of(id, "rejected"), 1, "%s", id);
                cr_assert_eq(rows_of(id, "accepted"), 0, "%s", id);
        }
}

static json_t *get(const char *path, const char *const *hdrs, long *statusp) {
        char url[512];
        ab_itest_http_t res;
        json_t *doc;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", aport, path);
        memset(&res, 0, sizeof(res));
        ab_itest_http("GET", url, hdrs, NULL, 0, &res);
        *statusp = res.status;
        doc      = ab_itest_http_json(&res);
        ab_itest_http_clear(&res);
        return doc;
}

static const char *const OPS[] = {"x-ops: 1", "Authorization: Bearer " ADMIN,
                                  NULL};

/* /metrics of the restarted audit: the conflict counted, the tree the
 * whole log, rows and transaction times there. */
static void assert_metrics(void) {
        char url[128], want[96];
        ab_itest_http_t res;
        int64_t deadline = ab_itest_deadline(WAIT_MS);
        int ok;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", aport);
        snprintf(want, sizeof(want), "aetherbus_audit_tree_size %lld\n",
                 (long long)q_int("SELECT count(*) FROM events"));
        do {
                memset(&res, 0, sizeof(res));
                cr_assert_eq(ab_itest_http_get(url, &res), 200);
                ok = strstr(res.body, "aetherbus_audit_conflicts_total 1\n") &&
                     strstr(res.body, want) &&
                     strstr(res.body,
                            "aetherbus_audit_rows_written_total{status=") &&
                     strstr(res.body, "aetherbus_audit_transaction_seconds_bucket");
                if (!ok && !ab_itest_tick(deadline)) {
                        cr_assert_fail("metrics lack %s or the conflict: %s",
                                       want, res.body);
                }
                ab_itest_http_clear(&res);
        } while (!ok);
}

Test(audit, every_event_is_one_row_with_its_status_and_survives_sigkill) {
        int64_t deadline;
        char id[32];
        int i;

        start();
        post_mix();
        wait_rows("id LIKE 'st-%' OR id LIKE 'bad-%'", 9);
        assert_mix_once();
        /* ingest's core.startup is an event of the bus too */
        wait_rows_geq("name = 'core.startup'", 1);
        /* a retry of st-0 (another receivedAt, another offset) */
        post_one("st-0", "OrderCreated", "storefront", "c0", 202);
        /* kill while more arrive: the database, not the group, says
         * where to resume */
        for (i = 6; i < 12; i++) {
                snprintf(id, sizeof(id), "st-%d", i);
                post_one(id, "OrderCreated", "api", "c2", 202);
        }
        ab_itest_proc_kill(audit);
        ab_itest_proc_destroy(audit);
        audit = NULL;
        for (i = 12; i < 15; i++) {
                snprintf(id, sizeof(id), "st-%d", i);
                post_one(id, "OrderCreated", "api", "c2", 202);
        }
        start_audit();
        wait_rows("id LIKE 'st-%'", 15);
        assert_mix_once();
        for (i = 0; i < 15; i++) {
                snprintf(id, sizeof(id), "st-%d", i);
                cr_assert_eq(rows_of(id, "accepted"), 1, "%s", id);
        }
        cr_assert_eq(q_int("SELECT count(*) FROM conflicts"), 0);
        /* the same id with other content is kept aside, never over the
         * logged row */
        post_one("st-1", "EmailSent", "api", "c1", 202);
        deadline = ab_itest_deadline(WAIT_MS);
        while (q_int("SELECT count(*) FROM conflicts WHERE id = 'st-1'") != 1) {
                cr_assert(ab_itest_tick(deadline), "no conflict recorded");
        }
        cr_assert_eq(rows_of("st-1", "accepted"), 1);
        cr_assert_eq(q_int("SELECT count(*) FROM events WHERE id = 'st-1' "
                           "AND name = 'OrderCreated'"),
                     1);
        assert_metrics();
        /* rows, tree and positions agree */
        cr_assert_eq(q_int("SELECT count(*) FROM events"),
                     q_int("SELECT max(leaf_index) + 1 FROM events"));
        cr_assert_geq(q_int("SELECT count(*) FROM positions"), 1);
}

/* RFC 9162 §2.1.3.2, for the proof the API answers. */
static void hash_node(const uint8_t *l, const uint8_t *r, uint8_t *out) {
        uint8_t buf[65];

        buf[0] = 1;
        memcpy(buf + 1, l, 32);
        memcpy(buf + 33, r, 32);
        SHA256(buf, sizeof(buf), out);
}

static void leaf_data_hashes_to(json_t *doc, const uint8_t *leaf,
                                const char *id);

static void unhex(const char *s, uint8_t *out) {
        unsigned v;
        int i;

        cr_assert(s && strlen(s) == 64, "hash %s", s ? s : "(null)");
        for (i = 0; i < 32; i++) {
                cr_assert_eq(sscanf(s + 2 * i, "%2x", &v), 1);
                out[i] = (uint8_t)v;
        }
}

static int verify_inclusion(uint64_t index, uint64_t size, const uint8_t *leaf,
                            json_t *path, const uint8_t *root) {
        uint64_t fn = index, sn = size - 1;
        uint8_t r[32], p[32];
        size_t i;

        memcpy(r, leaf, 32);
        for (i = 0; i < json_array_size(path); i++) {
                if (sn == 0) {
                        return 0;
                }
                unhex(json_string_value(json_array_get(path, i)), p);
                if ((fn & 1) || fn == sn) {
                        hash_node(p, r, r);
                        while (!(fn & 1) && fn) {
                                fn >>= 1;
                                sn >>= 1;
                        }
                } else {
                        hash_node(r, p, r);
                }
                fn >>= 1;
                sn >>= 1;
        }
        return sn == 0 && !memcmp(r, root, 32);
}

/* The signed note the API serves is also a record of
 * <prefix>audit-checkpoints, keyed by origin, byte for byte: the copy
 * outside the database. */
static void checkpoint_is_on_its_topic(const char *note) {
        ab_itest_record_t *recs = NULL;
        char topic[256];
        int64_t deadline;
        size_t n, i;
        int found = 0;

        cr_assert_eq(ab_catalog_topic(prefix,
                                      AB_CATALOG_TOPIC_AUDIT_CHECKPOINTS,
                                      topic, sizeof(topic)),
                     AB_OK);
        deadline = ab_itest_deadline(WAIT_MS);
        while (!found) {
                n = ab_itest_consume_all(b, topic, 2000, &recs);
                for (i = 0; i < n && !found; i++) {
                        cr_assert(recs[i].key &&
                                      recs[i].key_len == strlen(ORIGIN) &&
                                      !memcmp(recs[i].key, ORIGIN,
                                              recs[i].key_len),
                                  "checkpoint record %zu not keyed by origin",
                                  i);
                        found = recs[i].value_len == strlen(note) &&
                                !memcmp(recs[i].value, note, strlen(note));
                }
                ab_itest_records_free(recs, n);
                recs = NULL;
                cr_assert(found || ab_itest_tick(deadline),
                          "checkpoint not on %s: %s", topic, note);
        }
}

Test(audit, the_query_api_filters_pages_and_proves) {
        static const char *const bad[] = {
            "?status=maybe", "status", "?limit=0", "limit",
            "?limit=x",      "limit",  "?cursor=-1", "cursor",
            "?since=yesterday", "since", "?companyId=", "companyId",
            NULL};
        char path[256], cursor[32] = "";
        json_t *doc, *items, *it;
        int64_t deadline;
        long status;
        size_t i;
        int seen, pages;

        start();
        /* a record that is no event is skipped, not in the way */
        snprintf(path, sizeof(path), "%scommerce", prefix);
        ab_itest_produce(b, path, "k", "\xc3\x01garbage", 9, NULL);
        post_mix();
        /* what the sink writes when it gives up on st-4 */
        ab_itest_produce_deadletter(b, prefix, "st-4", "EmailSent", "api", "c0",
                                    occurred);
        wait_rows("id LIKE 'st-%' OR id LIKE 'bad-%'", 10);

        /* the guard is the shared one */
        doc = get("/admin/events", (const char *const[]){"x-ops: 1", NULL},
                  &status);
        cr_assert_eq(status, 401);
        json_decref(doc);
        doc = get("/admin/events",
                  (const char *const[]){"Authorization: Bearer " ADMIN, NULL},
                  &status);
        cr_assert_eq(status, 403);
        json_decref(doc);
        /* the denial is recorded as audit's own security event */
        snprintf(path, sizeof(path), "%ssecurity", prefix);
        cr_assert_geq(ab_itest_topic_wait_count(b, path, 1, WAIT_MS), 1,
                      "no security.rbac.denied on %s", path);

        /* c0 has st-0, st-2, st-4 accepted, bad-1, bad-2 rejected and
         * st-4 dead-lettered: pages of 2, in leaf order, each row once */
        seen  = 0;
        pages = 0;
        do {
                snprintf(path, sizeof(path),
                         "/admin/events?companyId=c0&limit=2%s%s",
                         cursor[0] ? "&cursor=" : "", cursor);
                doc = get(path, OPS, &status);
                cr_assert_eq(status, 200, "%s", path);
                items = json_object_get(doc, "items");
                cr_assert_leq(json_array_size(items), 2);
                json_array_foreach(items, i, it) {
                        cr_assert_str_eq(json_string_value(json_object_get(
                                             it, "companyId")),
                                         "c0");
                        seen++;
                }
                cursor[0] = '\0';
                if (json_is_string(json_object_get(doc, "nextCursor"))) {
                        snprintf(cursor, sizeof(cursor), "%s",
                                 json_string_value(
                                     json_object_get(doc, "nextCursor")));
                }
                json_decref(doc);
                cr_assert_lt(++pages, 10);
        } while (cursor[0]);
        cr_assert_eq(seen, 6, "c0: %d rows", seen);

        doc = get("/admin/events?status=rejected", OPS, &status);
        cr_assert_eq(status, 200);
        cr_assert_eq(json_array_size(json_object_get(doc, "items")), 3);
        json_decref(doc);
        /* bad-3 is an OrderCreated too: its prefix is the catalog's */
        doc = get("/admin/events?prefix=commerce", OPS, &status);
        cr_assert_eq(status, 200);
        cr_assert_eq(json_array_size(json_object_get(doc, "items")), 5, "%s",
                     json_dumps(doc, JSON_COMPACT));
        json_decref(doc);
        doc = get("/admin/events?prefix=commerce&status=accepted&source="
                  "storefront",
                  OPS, &status);
        cr_assert_eq(status, 200);
        cr_assert_eq(json_array_size(json_object_get(doc, "items")), 4, "%s",
                     json_dumps(doc, JSON_COMPACT));
        json_decref(doc);
        /* st-4 and st-5, and st-4 once more as a dead letter */
        doc = get("/admin/events?name=EmailSent&source=api", OPS, &status);
        cr_assert_eq(status, 200);
        cr_assert_eq(json_array_size(json_object_get(doc, "items")), 3, "%s",
                     json_dumps(doc, JSON_COMPACT));
        json_decref(doc);
        doc = get("/admin/events?until=2000-01-01T00:00:00Z&since=1", OPS,
                  &status);
        cr_assert_eq(status, 200);
        cr_assert_eq(json_array_size(json_object_get(doc, "items")), 0);
        json_decref(doc);

        for (i = 0; bad[i]; i += 2) {
                snprintf(path, sizeof(path), "/admin/events%s", bad[i]);
                doc = get(path, OPS, &status);
                cr_assert_eq(status, 400, "%s answered %ld", path, status);
                cr_assert(strstr(json_string_value(json_object_get(doc,
                                                                   "error")),
                                 bad[i + 1]),
                          "%s: %s", path, json_dumps(doc, JSON_COMPACT));
                json_decref(doc);
        }

        doc = get("/admin/events/st-3", OPS, &status);
        cr_assert_eq(status, 200);
        cr_assert_str_eq(json_string_value(json_object_get(doc, "status")),
                         "accepted");
        cr_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(doc, "payload"), "n")),
                         "st-3");
        /* every column of the envelope */
        cr_assert_str_eq(json_string_value(json_object_get(doc, "name")),
                         "OrderCreated");
        cr_assert_str_eq(json_string_value(json_object_get(doc, "prefix")),
                         "commerce");
        cr_assert_str_eq(json_string_value(json_object_get(doc, "source")),
                         "storefront");
        cr_assert_str_eq(json_string_value(json_object_get(doc, "companyId")),
                         "c1");
        cr_assert_eq(json_integer_value(json_object_get(doc, "schemaVersion")),
                     1);
        cr_assert_str_eq(json_string_value(json_object_get(doc, "occurredAt")),
                         occurred);
        cr_assert(json_is_string(json_object_get(doc, "receivedAt")), "%s",
                  json_dumps(doc, JSON_COMPACT));
        snprintf(path, sizeof(path), "%scommerce", prefix);
        cr_assert_str_eq(json_string_value(json_object_get(doc, "topic")),
                         path);
        json_decref(doc);
        doc = get("/admin/events/bad-3", OPS, &status);
        cr_assert_eq(status, 200);
        cr_assert_str_eq(json_string_value(json_object_get(doc, "status")),
                         "rejected");
        json_decref(doc);
        doc = get("/admin/events/st-4?status=deadletter", OPS, &status);
        cr_assert_eq(status, 200);
        cr_assert_str_eq(json_string_value(json_object_get(doc, "reason")),
                         "HTTP_400: the sink answered 400");
        json_decref(doc);
        doc = get("/admin/events/st-4", OPS, &status);
        cr_assert_eq(status, 200);
        cr_assert_str_eq(json_string_value(json_object_get(doc, "status")),
                         "accepted");
        json_decref(doc);
        doc = get("/admin/events?status=deadletter", OPS, &status);
        cr_assert_eq(status, 200);
        cr_assert_eq(json_array_size(json_object_get(doc, "items")), 1);
        json_decref(doc);
        doc = get("/admin/events/no-such-id", OPS, &status);
        cr_assert_eq(status, 404);
        json_decref(doc);

        /* the proof leads to the signed checkpoint's root once one
         * covers the leaf (every 300 ms here) */
        deadline = ab_itest_deadline(WAIT_MS);
        for (;;) {
                doc = get("/admin/events/st-1/proof", OPS, &status);
                cr_assert_eq(status, 200);
                if (json_is_string(json_object_get(doc, "checkpoint"))) {
                        break;
                }
                json_decref(doc);
                cr_assert(ab_itest_tick(deadline), "no checkpoint came");
        }
        cr_assert(strstr(json_string_value(json_object_get(doc, "checkpoint")),
                         ORIGIN "\n"));
        checkpoint_is_on_its_topic(
            json_string_value(json_object_get(doc, "checkpoint")));
        snprintf(path, sizeof(path), "c2sp.org/tlog-proof@v1\nindex %lld\n",
                 (long long)json_integer_value(
                     json_object_get(doc, "leafIndex")));
        cr_assert(json_is_string(json_object_get(doc, "tlogProof")) &&
                      !strncmp(json_string_value(
                                   json_object_get(doc, "tlogProof")),
                               path, strlen(path)),
                  "%s", json_dumps(doc, JSON_COMPACT));
        proof_verifies(doc, "st-1");
        prove_matches(doc, "st-1");
        json_decref(doc);
        cr_assert_geq(q_int("SELECT count(*) FROM checkpoints"), 1);
}

/* "aetherbus-audit prove ID" on the database next to the running service
 * prints the API's proof: the same leaf, and a path that verifies on its
 * own (it may be against a newer checkpoint than the API's was). */
static void prove_matches(json_t *api, const char *id) {
        ab_itest_proc_t *p;
        json_error_t jerr;
        json_t *doc;
        char *log;

        p = ab_itest_proc_start(
            "aetherbus-audit",
            (const char *const[]){"prove", id, "--db", db, NULL}, NULL);
        cr_assert(p);
        if (ab_itest_proc_wait_exit(p, WAIT_MS) != 0) {
                log = ab_itest_proc_log(p);
                cr_assert_fail("prove failed: %s", log);
        }
        doc = json_load_file(ab_itest_proc_out_path(p), 0, &jerr);
        cr_assert(doc, "prove printed no JSON: %s", jerr.text);
        cr_assert_eq(json_integer_value(json_object_get(doc, "leafIndex")),
                     json_integer_value(json_object_get(api, "leafIndex")));
        cr_assert_str_eq(json_string_value(json_object_get(doc, "leafHash")),
                         json_string_value(json_object_get(api, "leafHash")));
        cr_assert_str_eq(json_string_value(json_object_get(doc, "leafData")),
                         json_string_value(json_object_get(api, "leafData")));
        cr_assert(json_is_string(json_object_get(doc, "tlogProof")),
                  "prove: no tlog-proof: %s", json_dumps(doc, JSON_COMPACT));
        proof_verifies(doc, id);
        json_decref(doc);
        ab_itest_proc_destroy(p);

        /* an unknown id: exit 1, saying so */
        p = ab_itest_proc_start(
            "aetherbus-audit",
            (const char *const[]){"prove", "no-such-id", "--db", db, NULL},
            NULL);
        cr_assert(p);
        cr_assert_eq(ab_itest_proc_wait_exit(p, WAIT_MS), 1);
        log = ab_itest_proc_log(p);
        cr_assert(strstr(log, "no event no-such-id"), "%s", log);
        free(log);
        ab_itest_proc_destroy(p);
}

/* The proof's leafData is the row's leaf: SHA-256(0x00 || leafData) is
 * its leaf hash (computed here with OpenSSL), and it starts with the
 * version byte and the id (the first column). */
static void leaf_data_hashes_to(json_t *doc, const uint8_t *leaf,
                                const char *id) {
        const char *b64 = json_string_value(json_object_get(doc, "leafData"));
        unsigned char *raw, *msg, sha[SHA256_DIGEST_LENGTH];
        size_t len, idlen = strlen(id);
        int n;

        cr_assert(b64, "no leafData: %s", json_dumps(doc, JSON_COMPACT));
        len = strlen(b64);
        cr_assert((raw = malloc(len)) && (msg = malloc(len + 1)));
        n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
        cr_assert_gt(n, 0);
        while (len && b64[len - 1] == '=') {
                len--;
                n--;
        }
        msg[0] = 0x00;
        memcpy(msg + 1, raw, (size_t)n);
        SHA256(msg, (size_t)n + 1, sha);
        cr_assert(!memcmp(sha, leaf, sizeof(sha)),
                  "leafData does not hash to leafHash");
        cr_assert(n > (int)(5 + idlen) && raw[0] == 0x01 &&
                      raw[4] == (unsigned char)idlen &&
                      !memcmp(raw + 5, id, idlen),
                  "leafData does not start with id %s", id);
        free(raw);
        free(msg);
}

/* \p doc, a proof from the API or prove, verifies: its leaf hash is the
 * hash of its leafData (holding \p id; NULL: a pruned row, no leafData)
 * and the path leads from it to its root. */
static void proof_verifies(json_t *doc, const char *id) {
        uint8_t leaf[SHA256_DIGEST_LENGTH], root[SHA256_DIGEST_LENGTH];

        unhex(json_string_value(json_object_get(doc, "leafHash")), leaf);
        if (id) {
                leaf_data_hashes_to(doc, leaf, id);
        }
        unhex(json_string_value(json_object_get(doc, "rootHash")), root);
        cr_assert(verify_inclusion(
                      (uint64_t)json_integer_value(
                          json_object_get(doc, "leafIndex")),
                      (uint64_t)json_integer_value(
                          json_object_get(doc, "treeSize")),
                      leaf, json_object_get(doc, "inclusionPath"), root),
                  "the proof does not verify: %s",
                  json_dumps(doc, JSON_COMPACT));
}

static int run_verify_args(const char *const *args, char **logp) {
        ab_itest_proc_t *v;
        int rc;

        v = ab_itest_proc_start("aetherbus-audit", args, NULL);
        cr_assert(v);
        rc    = ab_itest_proc_wait_exit(v, WAIT_MS);
        *logp = ab_itest_proc_log(v);
        ab_itest_proc_destroy(v);
        return rc;
}

static int run_verify(char **logp) {
        return run_verify_args((const char *const[]){"verify", "--db", db, NULL},
                               logp);
}

/* A second audit on the same file refuses to start, saying why. */
static void second_instance_is_refused(void) {
        char brokers[300], pfx[100], port[32];
        ab_itest_proc_t *p;
        char *log;

        snprintf(brokers, sizeof(brokers), "KAFKA_BROKERS=%s",
                 ab_itest_broker_bootstrap(b));
        snprintf(pfx, sizeof(pfx), "TOPIC_PREFIX=%s", prefix);
        snprintf(port, sizeof(port), "PORT=%d", ab_itest_free_port());
        p = ab_itest_proc_start(
            "aetherbus-audit", NULL,
            (const char *const[]){brokers, pfx, port, env_db, NULL});
        cr_assert(p);
        cr_assert_eq(ab_itest_proc_wait_exit(p, WAIT_MS), 2,
                     "a second audit on %s did not refuse", db);
        log = ab_itest_proc_log(p);
        cr_assert(strstr(log, "in use by another aetherbus-audit"), "%s", log);
        free(log);
        ab_itest_proc_destroy(p);
}

Test(audit, verify_names_the_row_whose_payload_changed) {
        char *log, sql[256];
        sqlite3 *h;
        int64_t leaf;

        start();
        post_mix();
        wait_rows("id LIKE 'st-%' OR id LIKE 'bad-%'", 9);
        /* verify reads next to the running service */
        cr_assert_eq(run_verify(&log), 0, "%s", log);
        free(log);
        second_instance_is_refused();
        cr_assert_eq(ab_itest_proc_stop(audit, WAIT_MS), 0,
                     "audit did not stop cleanly");
        ab_itest_proc_destroy(audit);
        audit = NULL;
        leaf  = q_int("SELECT leaf_index FROM events WHERE id = 'st-2'");
        cr_assert_geq(leaf, 0);
        /* one byte: "st-2" becomes "st-3" inside the payload */
        cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
        cr_assert_eq(sqlite3_exec(h,
                                  "UPDATE events SET payload = "
                                  "replace(payload, 'st-2', 'st-3') "
                                  "WHERE id = 'st-2'",
                                  NULL, NULL, NULL),
                     SQLITE_OK, "%s", sqlite3_errmsg(h));
        cr_assert_eq(sqlite3_changes(h), 1);
        sqlite3_close(h);
        cr_assert_eq(run_verify(&log), 1, "%s", log);
        snprintf(sql, sizeof(sql), "leaf %lld (id st-2", (long long)leaf);
        cr_assert(strstr(log, sql), "verify said: %s", log);
        free(log);
}

/* The value of aetherbus_audit_<series> on /metrics, -1 when absent. */
static double audit_metric(const char *series) {
        char url[128], want[160], *p;
        ab_itest_http_t res;
        double v = -1;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", aport);
        snprintf(want, sizeof(want), "\naetherbus_audit_%s ", series);
        memset(&res, 0, sizeof(res));
        if (ab_itest_http_get(url, &res) == 200 && (p = strstr(res.body, want))) {
                v = strtod(p + strlen(want), NULL);
        }
        ab_itest_http_clear(&res);
        return v;
}

/* Replaying the topics from their first offset (the positions the log
 * resumes from forgotten, as a reset of the group's offsets would do
 * without the database) adds no row: every record is a duplicate of the
 * row it made, by id and content, and the tree stays the same size. */
Test(audit, a_replay_from_the_beginning_adds_no_row) {
        int64_t rows, dl;
        sqlite3 *h;

        start();
        post_mix();
        wait_rows("id LIKE 'st-%' OR id LIKE 'bad-%'", 9);
        wait_rows_geq("name = 'core.startup'", 1);
        cr_assert_eq(ab_itest_proc_signal(audit, SIGTERM), 0);
        cr_assert_eq(ab_itest_proc_wait_exit(audit, WAIT_MS), 0);
        ab_itest_proc_destroy(audit);
        audit = NULL;
        rows = q_int("SELECT count(*) FROM events");
        cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
        cr_assert_eq(sqlite3_exec(h, "DELETE FROM positions", NULL, NULL, NULL),
                     SQLITE_OK, "%s", sqlite3_errmsg(h));
        sqlite3_close(h);
        start_audit();
        /* every record read again, each one a duplicate */
        dl = ab_itest_deadline(WAIT_MS);
        while (audit_metric("duplicates_total") < (double)rows) {
                cr_assert(ab_itest_tick(dl), "%g duplicates of %lld rows",
                          audit_metric("duplicates_total"), (long long)rows);
        }
        cr_assert_eq(q_int("SELECT count(*) FROM events"), rows);
        cr_assert_eq(q_int("SELECT count(*) FROM conflicts"), 0);
        assert_mix_once();
}

#define STREAM_EVENTS 600

static void *stream(void *arg) {
        char url[128], *body;
        size_t cap = 64 * 1024, len;
        ab_itest_http_t res;
        int n, end, *failed = arg;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/events/ingest", iport);
        body = malloc(cap);
        for (n = 0; body && n < STREAM_EVENTS; n = end) {
                end = n + 20;
                len = (size_t)snprintf(body, cap, "[");
                for (; n < end; n++) {
                        len += (size_t)snprintf(
                            body + len, cap - len,
                            "%s{\"id\":\"sk-%d\",\"name\":\"OrderCreated\","
                            "\"schemaVersion\":1,\"occurredAt\":\"%s\","
                            "\"source\":\"api\",\"companyId\":\"c%d\","
                            "\"payload\":{\"n\":%d}}",
                            len > 1 ? "," : "", n, occurred, n % 5, n);
                }
                snprintf(body + len, cap - len, "]");
                memset(&res, 0, sizeof(res));
                if (ab_itest_http_post_json(url, body, NULL, &res) != 202) {
                        (*failed)++;
                }
                ab_itest_http_clear(&res);
                nanosleep(&(struct timespec){0, 50000000L}, NULL);
        }
        free(body);
        return NULL;
}

/* SIGKILL audit three times while events stream in: after the last
 * restart every event is there exactly once and verify passes. */
Test(audit, repeated_sigkills_while_events_stream_lose_and_duplicate_nothing) {
        pthread_t t;
        char *log;
        int failed = 0, k;

        start();
        cr_assert_eq(pthread_create(&t, NULL, stream, &failed), 0);
        for (k = 0; k < 3; k++) {
                nanosleep(&(struct timespec){0, 400000000L}, NULL);
                ab_itest_proc_kill(audit);
                ab_itest_proc_destroy(audit);
                audit = NULL;
                start_audit();
        }
        pthread_join(t, NULL);
        cr_assert_eq(failed, 0, "%d requests of the stream were not 202", failed);
        wait_rows("id LIKE 'sk-%'", STREAM_EVENTS);
        cr_assert_eq(q_int("SELECT count(DISTINCT id) FROM events WHERE id LIKE "
                           "'sk-%'"),
                     STREAM_EVENTS);
        cr_assert_eq(q_int("SELECT count(*) FROM conflicts"), 0);
        cr_assert_eq(run_verify(&log), 0, "%s", log);
        free(log);
}

/* RFC 9162 2.1.4.2, written here again (not the service's code): does
 * path prove the tree of size2 with root2 extends size1 with root1? */
static int verify_consistency(uint64_t size1, uint64_t size2,
                              const uint8_t *root1, const uint8_t *root2,
                              json_t *path) {
        uint8_t fr[32], sr[32], c[32];
        uint64_t fn, sn;
        size_t i = 0, n = json_array_size(path);

        if (size1 == size2) {
                return n == 0 && !memcmp(root1, root2, 32);
        }
        if (!(size1 & (size1 - 1))) { /* a power of two: prepend first_hash */
                memcpy(fr, root1, 32);
        } else {
                if (n == 0) {
                        return 0;
                }
                unhex(json_string_value(json_array_get(path, i++)), fr);
        }
        memcpy(sr, fr, 32);
        fn = size1 - 1;
        sn = size2 - 1;
        while (fn & 1) {
                fn >>= 1;
                sn >>= 1;
        }
        for (; i < n; i++) {
                if (sn == 0) {
                        return 0;
                }
                unhex(json_string_value(json_array_get(path, i)), c);
                if ((fn & 1) || fn == sn) {
                        hash_node(c, fr, fr);
                        hash_node(c, sr, sr);
                        while (!(fn & 1) && fn) {
                                fn >>= 1;
                                sn >>= 1;
                        }
                } else {
                        hash_node(sr, c, sr);
                }
                fn >>= 1;
                sn >>= 1;
        }
        return sn == 0 && !memcmp(fr, root1, 32) && !memcmp(sr, root2, 32);
}

/* (treeSize, rootHash) of the tree an event's proof is against. */
static uint64_t tree_of(const char *id, uint8_t root[32]) {
        char path[128];
        json_t *doc;
        uint64_t size;
        long status;

        snprintf(path, sizeof(path), "/admin/events/%s/proof", id);
        doc = get(path, OPS, &status);
        cr_assert_eq(status, 200);
        size = (uint64_t)json_integer_value(json_object_get(doc, "treeSize"));
        unhex(json_string_value(json_object_get(doc, "rootHash")), root);
        json_decref(doc);
        return size;
}

/* The log only grows: a consistency proof between two tree sizes checks
 * against both roots, a tampered one does not, and bad sizes are 400 or
 * 404 naming the parameter. */
Test(audit, a_consistency_proof_shows_the_log_only_grew) {
        uint8_t r1[32], r2[32];
        uint64_t s1, s2;
        char path[128], id[32];
        json_t *doc, *p;
        long status;
        int i;

        start();
        post_mix();
        wait_rows("id LIKE 'st-%' OR id LIKE 'bad-%'", 9);
        s1 = tree_of("st-0", r1);
        for (i = 20; i < 27; i++) {
                snprintf(id, sizeof(id), "st-%d", i);
                post_one(id, "OrderCreated", "api", "c3", 202);
        }
        wait_rows_geq("id LIKE 'st-2_'", 7);
        s2 = tree_of("st-26", r2);
        cr_assert_gt(s2, s1);
        snprintf(path, sizeof(path), "/admin/audit/consistency?from=%llu&to=%llu",
                 (unsigned long long)s1, (unsigned long long)s2);
        doc = get(path, OPS, &status);
        cr_assert_eq(status, 200, "%s", json_dumps(doc, JSON_COMPACT));
        p = json_object_get(doc, "consistencyPath");
        cr_assert(verify_consistency(s1, s2, r1, r2, p),
                  "%llu -> %llu does not verify: %s", (unsigned long long)s1,
                  (unsigned long long)s2, json_dumps(doc, JSON_COMPACT));
        /* a root that is not the log's fails */
        r1[0] ^= 1;
        cr_assert(!verify_consistency(s1, s2, r1, r2, p));
        json_decref(doc);
        doc = get("/admin/audit/consistency?from=0", OPS, &status);
        cr_assert_eq(status, 400);
        json_decref(doc);
        doc = get("/admin/audit/consistency?to=3", OPS, &status);
        cr_assert_eq(status, 400);
        json_decref(doc);
        snprintf(path, sizeof(path), "/admin/audit/consistency?from=%llu",
                 (unsigned long long)(s2 + 1000));
        doc = get(path, OPS, &status);
        cr_assert_eq(status, 404);
        json_decref(doc);
        doc = get("/admin/audit/consistency?from=1", NULL, &status);
        cr_assert_eq(status, 401);
        json_decref(doc);
}

/* A rolled-back database (a consistent copy from before the last rows)
 * passes its own verify: only a checkpoint kept outside it, read back
 * from <prefix>audit-checkpoints, shows the loss; a checkpoint whose
 * bytes were changed is refused by its signature. */
Test(audit, a_rolled_back_database_fails_against_the_checkpoint_on_kafka) {
        ab_itest_record_t *recs = NULL;
        char copy[600], cpf[600], topic[256], sql[700], id[32], *log;
        const ab_itest_record_t *last = NULL;
        uint64_t best = 0, sz;
        sqlite3 *h;
        size_t n, i;
        FILE *fp;
        int j;

        start();
        post_mix();
        wait_rows("id LIKE 'st-%' OR id LIKE 'bad-%'", 9);
        snprintf(copy, sizeof(copy), "%s.old", db);
        snprintf(cpf, sizeof(cpf), "%s.checkpoint", db);
        unlink(copy);
        cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
        snprintf(sql, sizeof(sql), "VACUUM INTO '%s'", copy);
        cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK, "%s",
                     sqlite3_errmsg(h));
        sqlite3_close(h);
        for (j = 30; j < 35; j++) {
                snprintf(id, sizeof(id), "st-%d", j);
                post_one(id, "OrderCreated", "api", "c3", 202);
        }
        wait_rows_geq("id LIKE 'st-3_'", 5);
        /* SIGTERM signs and publishes a checkpoint of every row */
        cr_assert_eq(ab_itest_proc_stop(audit, WAIT_MS), 0);
        ab_itest_proc_destroy(audit);
        audit = NULL;
        cr_assert_eq(ab_catalog_topic(prefix,
                                      AB_CATALOG_TOPIC_AUDIT_CHECKPOINTS,
                                      topic, sizeof(topic)),
                     AB_OK);
        n = ab_itest_consume_all(b, topic, 5000, &recs);
        for (i = 0; i < n; i++) {
                /* body: origin, size, root */
                const char *nl = memchr(recs[i].value, '\n', recs[i].value_len);

                cr_assert(nl);
                sz = strtoull(nl + 1, NULL, 10);
                if (sz >= best) {
                        best = sz;
                        last = &recs[i];
                }
        }
        cr_assert(last, "no checkpoint on %s", topic);
        cr_assert_eq((int64_t)best, q_int("SELECT count(*) FROM events"),
                     "the last checkpoint on Kafka does not cover every row");
        cr_assert((fp = fopen(cpf, "wb")));
        cr_assert_eq(fwrite(last->value, 1, last->value_len, fp),
                     last->value_len);
        fclose(fp);

        cr_assert_eq(run_verify_args((const char *const[]){"verify", "--db",
                                                           copy, NULL},
                                     &log),
                     0, "the copy is consistent in itself: %s", log);
        free(log);
        cr_assert_eq(run_verify_args(
                         (const char *const[]){"verify", "--db", copy,
                                               "--checkpoint", cpf, "--vkey",
                                               vkey, NULL},
                         &log),
                     1, "%s", log);
        cr_assert(strstr(log, "rolled back"), "verify said: %s", log);
        free(log);
        cr_assert_eq(run_verify_args(
                         (const char *const[]){"verify", "--db", db,
                                               "--checkpoint", cpf, "--vkey",
                                               vkey, NULL},
                         &log),
                     0, "%s", log);
        free(log);
        /* one byte of the signed body (the tree size's last digit) */
        cr_assert((fp = fopen(cpf, "r+b")));
        {
                const char *nl = memchr(last->value, '\n', last->value_len);
                const char *end = memchr(nl + 1, '\n',
                                         last->value_len -
                                             (size_t)(nl + 1 - last->value));
                long at = (long)(end - 1 - last->value);

                cr_assert_eq(fseek(fp, at, SEEK_SET), 0);
                cr_assert_eq(fputc(end[-1] == '9' ? '8' : end[-1] + 1, fp),
                             end[-1] == '9' ? '8' : end[-1] + 1);
        }
        fclose(fp);
        cr_assert_eq(run_verify_args(
                         (const char *const[]){"verify", "--db", db,
                                               "--checkpoint", cpf, "--vkey",
                                               vkey, NULL},
                         &log),
                     1, "a changed checkpoint passed: %s", log);
        cr_assert(strstr(log, "checkpoint"), "verify said: %s", log);
        free(log);
        ab_itest_records_free(recs, n);
        unlink(copy);
        unlink(cpf);
}

static void old_event(const char *id, int64_t received) {
        char topic[128], body[512];

        snprintf(topic, sizeof(topic), "%scommerce", prefix);
        snprintf(body, sizeof(body),
                 "{\"id\":\"%s\",\"name\":\"OrderCreated\","
                 "\"schemaVersion\":1,\"occurredAt\":\"%s\","
                 "\"source\":\"storefront\",\"companyId\":\"c0\","
                 "\"payload\":{\"n\":\"%s\"}}",
                 id, occurred, id);
        ab_itest_produce_event_at(b, topic, body, received);
}

static void metric_is(const char *line) {
        int64_t deadline = ab_itest_deadline(WAIT_MS);
        ab_itest_http_t res;
        char url[128];
        int ok;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", aport);
        do {
                memset(&res, 0, sizeof(res));
                cr_assert_eq(ab_itest_http_get(url, &res), 200);
                ok = strstr(res.body, line) != NULL;
                if (!ok && !ab_itest_tick(deadline)) {
                        cr_assert_fail("metrics lack %s: %s", line, res.body);
                }
                ab_itest_http_clear(&res);
        } while (!ok);
}

/* Retention: rows received longer ago than AUDIT_RETENTION_DAYS lose
 * their payload and keep everything else: the API says "pruned", the
 * proof still verifies from the kept leaf hash, verify passes and says
 * how many it took on trust, and a redelivery of a pruned event is still
 * a duplicate (its payload's digest), by id. Younger rows keep theirs. */
Test(audit, retention_prunes_old_payloads_and_keeps_their_proofs) {
        int64_t old = wall_ms() - 3 * 86400000LL;
        ab_itest_proc_t *vp;
        char id[16], *log;
        json_t *doc;
        long status;
        int i;

        audit_extra[0] = "AUDIT_RETENTION_DAYS=1";
        audit_extra[1] = "AUDIT_RETENTION_INTERVAL=300ms";
        start();
        for (i = 0; i < 5; i++) {
                snprintf(id, sizeof(id), "old-%d", i);
                old_event(id, old + i);
        }
        post_one("new-1", "OrderCreated", "storefront", "c0", 202);
        wait_rows("id LIKE 'old-%' AND pruned_at IS NOT NULL AND payload IS "
                  "NULL AND length(payload_sha256) = 32",
                  5);
        wait_rows("id = 'new-1' AND pruned_at IS NULL AND payload IS NOT NULL",
                  1);
        metric_is("aetherbus_audit_rows_pruned_total 5\n");

        doc = get("/admin/events/old-2", OPS, &status);
        cr_assert_eq(status, 200);
        cr_assert(json_is_true(json_object_get(doc, "pruned")) &&
                      json_is_string(json_object_get(doc, "prunedAt")) &&
                      json_is_null(json_object_get(doc, "payload")),
                  "%s", json_dumps(doc, JSON_COMPACT));
        json_decref(doc);
        doc = get("/admin/events/new-1", OPS, &status);
        cr_assert_eq(status, 200);
        cr_assert(!json_object_get(doc, "pruned") &&
                      json_is_object(json_object_get(doc, "payload")),
                  "%s", json_dumps(doc, JSON_COMPACT));
        json_decref(doc);

        doc = get("/admin/events/old-2/proof", OPS, &status);
        cr_assert_eq(status, 200);
        cr_assert(json_is_true(json_object_get(doc, "pruned")) &&
                      !json_object_get(doc, "leafData"),
                  "%s", json_dumps(doc, JSON_COMPACT));
        proof_verifies(doc, NULL);
        json_decref(doc);

        vp = ab_itest_proc_start(
            "aetherbus-audit",
            (const char *const[]){"verify", "--db", db, NULL}, NULL);
        cr_assert(vp);
        if (ab_itest_proc_wait_exit(vp, WAIT_MS) != 0) {
                log = ab_itest_proc_log(vp);
                cr_assert_fail("verify failed: %s", log);
        }
        log = ab_itest_file_read(ab_itest_proc_out_path(vp));
        cr_assert(log && strstr(log, "5 of them pruned"), "verify said: %s",
                  log);
        free(log);
        ab_itest_proc_destroy(vp);

        /* old-1 once more, then a new event behind it: once new-2 is in,
         * old-1 was read again and added nothing */
        old_event("old-1", old + 1);
        post_one("new-2", "OrderCreated", "storefront", "c0", 202);
        wait_rows("id = 'new-2'", 1);
        cr_assert_eq(q_int("SELECT count(*) FROM events WHERE id = 'old-1'"), 1);
        cr_assert_eq(q_int("SELECT count(*) FROM conflicts"), 0);
        metric_is("aetherbus_audit_duplicates_total 1\n");
}
