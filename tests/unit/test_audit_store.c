/* aetherbus - Apache-2.0
 *
 * Unit tests of audit_store on a real SQLite file in a temporary
 * directory: a replayed batch adds nothing, the same id with other
 * content is a conflict and never overwrites, positions survive a reopen
 * and never move back, a second opener is refused while the first holds
 * the file, the tree survives a reopen and proves its leaves, and verify
 * names the row whose content was changed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "audit_store.h"

static char dir[64], path[128];

static void setup(void) {
        strcpy(dir, "/tmp/test_audit_store.XXXXXX");
        cr_assert(mkdtemp(dir), "mkdtemp");
        snprintf(path, sizeof(path), "%s/audit.db", dir);
}

static void teardown(void) {
        char cmd[160];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        cr_assert_eq(system(cmd), 0);
}

TestSuite(audit_store, .init = setup, .fini = teardown);

static audit_store_t *open_store(void) {
        char errstr[512];
        audit_store_t *s;

        s = audit_store_open(path, 0, NULL, errstr, sizeof(errstr));
        cr_assert(s, "open: %s", errstr);
        return s;
}

static audit_event_t event(const char *id, const char *payload,
                           int64_t offset) {
        audit_event_t e;

        memset(&e, 0, sizeof(e));
        e.id             = id;
        e.name           = "OrderCreated";
        e.prefix         = "commerce";
        e.source         = "api";
        e.company_id     = "c1";
        e.schema_version = 1;
        e.occurred_at    = "2026-01-01T00:00:00.000Z";
        e.received_at_ms = 1767225600000 + offset;
        e.topic          = "events.commerce";
        e.partition      = 0;
        e.offset         = offset;
        e.payload        = payload;
        e.payload_len    = strlen(payload);
        e.status         = "accepted";
        return e;
}

static void write_ok(audit_store_t *s, const audit_event_t *ev, size_t n,
                     audit_store_outcome_t *out) {
        char errstr[512];
        audit_store_pos_t p = {"events.commerce", 0, 0};
        size_t i;

        for (i = 0; i < n; i++) {
                if (ev[i].offset + 1 > p.next) {
                        p.next = ev[i].offset + 1;
                }
        }
        cr_assert_eq(audit_store_write(s, ev, n, out, &p, 1, errstr,
                                       sizeof(errstr)),
                     AB_OK, "write: %s", errstr);
}

static int64_t count(const char *sql) {
        sqlite3 *db;
        sqlite3_stmt *st;
        int64_t n = -1;

        cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
        cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK,
                     "%s", sqlite3_errmsg(db));
        if (sqlite3_step(st) == SQLITE_ROW) {
                n = sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        return n;
}

/* Runs \p q on the file from outside the store (a tamperer, an old
 * release). */
static void sql(const char *q) {
        sqlite3 *db;

        cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
        cr_assert_eq(sqlite3_exec(db, q, NULL, NULL, NULL), SQLITE_OK, "%s: %s",
                     q, sqlite3_errmsg(db));
        sqlite3_close(db);
}

Test(audit_store, a_replayed_batch_adds_nothing) {
        audit_event_t ev[3];
        audit_store_outcome_t out[3];
        audit_store_stats_t st;
        audit_store_t *s;

        ev[0] = event("e-1", "{\"a\":1}", 0);
        ev[1] = event("e-2", "{\"a\":2}", 1);
        ev[2] = event("e-1", "{\"a\":1}", 0); /* twice in one batch */
        s     = open_store();
        write_ok(s, ev, 3, out);
        cr_assert_eq(out[0], AUDIT_STORE_WRITTEN);
        cr_assert_eq(out[1], AUDIT_STORE_WRITTEN);
        cr_assert_eq(out[2], AUDIT_STORE_DUPLICATE);
        /* redelivered after a crash, and a retry ingest received again
         * (another offset and receivedAt, same event) */
        ev[2] = event("e-2", "{\"a\":2}", 7);
        write_ok(s, ev, 3, out);
        cr_assert_eq(out[0], AUDIT_STORE_DUPLICATE);
        cr_assert_eq(out[1], AUDIT_STORE_DUPLICATE);
        cr_assert_eq(out[2], AUDIT_STORE_DUPLICATE);
        audit_store_stats(s, &st);
        cr_assert_eq(st.tree_size, 2);
        cr_assert_eq(st.conflicts, 0);
        audit_store_close(s);
        cr_assert_eq(count("SELECT count(*) FROM events"), 2);
        cr_assert_eq(count("SELECT count(*) FROM events WHERE id = 'e-1'"), 1);
}

Test(audit_store, the_same_id_with_other_content_is_a_conflict) {
        audit_event_t ev[2];
        audit_store_outcome_t out[2];
        audit_store_stats_t st;
        audit_store_t *s;
        json_t *rows;
        char errstr[256];

        ev[0] = event("e-1", "{\"a\":1}", 0);
        s     = open_store();
        write_ok(s, ev, 1, out);
        ev[0] = event("e-1", "{\"a\":999}", 1);
        /* the same id rejected is a fact of its own, not a conflict */
        ev[1]        = event("e-1", "{\"a\":999}", 2);
        ev[1].status = "rejected";
        ev[1].reason = "INVALID: payload";
        write_ok(s, ev, 2, out);
        cr_assert_eq(out[0], AUDIT_STORE_CONFLICT);
        cr_assert_eq(out[1], AUDIT_STORE_WRITTEN);
        audit_store_stats(s, &st);
        cr_assert_eq(st.conflicts, 1);
        cr_assert_eq(st.tree_size, 2);
        rows = audit_store_get(s, "e-1", errstr, sizeof(errstr));
        cr_assert(rows, "%s", errstr);
        cr_assert_eq(json_array_size(rows), 2);
        /* never overwritten */
        cr_assert_eq(json_integer_value(json_object_get(
                         json_object_get(json_array_get(rows, 0), "payload"),
                         "a")),
                     1);
        cr_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(rows, 1), "status")),
                         "rejected");
        json_decref(rows);
        audit_store_close(s);
        cr_assert_eq(count("SELECT count(*) FROM conflicts WHERE id = 'e-1' "
                           "AND payload = '{\"a\":999}' AND leaf_index = 0"),
                     1);
        s = open_store();
        audit_store_stats(s, &st);
        cr_assert_eq(st.conflicts, 1, "the count survives a reopen");
        audit_store_close(s);
}

Test(audit_store, positions_round_trip_and_never_move_back) {
        audit_store_pos_t p[2] = {{"events.commerce", 0, 10},
                                  {"events.rejected", 3, 5}};
        char errstr[512];
        audit_store_t *s;
        int64_t next = -1;

        s = open_store();
        cr_assert_eq(audit_store_position(s, "events.commerce", 0, &next),
                     AB_ERR_NOT_FOUND);
        cr_assert_eq(audit_store_write(s, NULL, 0, NULL, p, 2, errstr,
                                       sizeof(errstr)),
                     AB_OK, "%s", errstr);
        p[0].next = 4; /* an older batch committed late: ignored */
        cr_assert_eq(audit_store_write(s, NULL, 0, NULL, p, 1, errstr,
                                       sizeof(errstr)),
                     AB_OK, "%s", errstr);
        audit_store_close(s);
        s = open_store();
        cr_assert_eq(audit_store_position(s, "events.commerce", 0, &next),
                     AB_OK);
        cr_assert_eq(next, 10);
        cr_assert_eq(audit_store_position(s, "events.rejected", 3, &next),
                     AB_OK);
        cr_assert_eq(next, 5);
        cr_assert_eq(audit_store_position(s, "events.rejected", 2, &next),
                     AB_ERR_NOT_FOUND);
        audit_store_close(s);
}

Test(audit_store, a_second_opener_is_refused_while_the_first_holds_it) {
        audit_store_t *s, *s2;
        ab_err_t err = AB_OK;
        char errstr[512] = "";

        s  = open_store();
        s2 = audit_store_open(path, 0, &err, errstr, sizeof(errstr));
        cr_assert_null(s2);
        cr_assert_eq(err, AB_ERR_UNAVAILABLE);
        cr_assert(strstr(errstr, "in use by another aetherbus-audit"), "%s",
                  errstr);
        /* verify reads next to a running service */
        s2 = audit_store_open(path, AUDIT_STORE_READONLY, &err, errstr,
                              sizeof(errstr));
        cr_assert(s2, "read-only open: %s", errstr);
        audit_store_close(s2);
        audit_store_close(s);
        s = open_store();
        audit_store_close(s);
}

/* Every inclusion proof at every size, and every consistency proof to
 * the last: the store keeps only subtrees of 16 leaves and up, and
 * rebuilds the levels below from leaf hashes (N spans three levels of
 * kept nodes and ragged edges). */
#define N 70
Test(audit_store, the_tree_survives_a_reopen_and_proves_every_leaf) {
        static audit_event_t ev[N];
        static char ids[N][16], pl[N][32];
        static uint8_t roots[N + 1][AUDIT_HASH_LEN];
        audit_merkle_proof_t proof;
        audit_merkle_t m;
        uint8_t root[AUDIT_HASH_LEN], leaf[AUDIT_HASH_LEN];
        uint64_t size, i, k;
        char errstr[512];
        audit_store_t *s;

        for (i = 0; i < N; i++) {
                snprintf(ids[i], sizeof(ids[i]), "e-%d", (int)i);
                snprintf(pl[i], sizeof(pl[i]), "{\"i\":%d}", (int)i);
                ev[i] = event(ids[i], pl[i], (int64_t)i);
        }
        s = open_store();
        write_ok(s, ev, 20, NULL);
        write_ok(s, ev + 20, 17, NULL);
        audit_store_close(s);
        s = open_store();
        write_ok(s, ev + 37, N - 37, NULL);
        cr_assert_eq(audit_store_tree(s, &size, root), AB_OK);
        cr_assert_eq(size, N);
        /* the roots of every prefix, from the leaves alone */
        audit_merkle_init(&m);
        audit_merkle_root(&m, roots[0]);
        for (i = 0; i < N; i++) {
                cr_assert_eq(audit_store_proof(s, i, 0, &proof, leaf, errstr,
                                               sizeof(errstr)),
                             AB_OK, "proof %d: %s", (int)i, errstr);
                cr_assert_eq(audit_merkle_append(&m, leaf, errstr,
                                                 sizeof(errstr)),
                             AB_OK);
                audit_merkle_root(&m, roots[i + 1]);
        }
        cr_assert_eq(memcmp(roots[N], root, AUDIT_HASH_LEN), 0);
        for (k = 1; k <= N; k++) {
                for (i = 0; i < k; i++) {
                        cr_assert_eq(audit_store_proof(s, i, k, &proof, leaf,
                                                       errstr, sizeof(errstr)),
                                     AB_OK, "proof %d@%d: %s", (int)i, (int)k,
                                     errstr);
                        cr_assert_eq(audit_merkle_verify_inclusion(
                                         i, k, leaf, proof.hash[0], proof.cnt,
                                         roots[k], errstr, sizeof(errstr)),
                                     AB_OK, "leaf %d@%d: %s", (int)i, (int)k,
                                     errstr);
                }
                cr_assert_eq(audit_store_consistency(s, k, N, &proof, errstr,
                                                     sizeof(errstr)),
                             AB_OK, "%d..%d: %s", (int)k, N, errstr);
                cr_assert_eq(audit_merkle_verify_consistency(
                                 k, N, roots[k], root, proof.hash[0],
                                 proof.cnt, errstr, sizeof(errstr)),
                             AB_OK, "%d..%d: %s", (int)k, N, errstr);
        }
        cr_assert_eq(audit_store_verify(s, 0, NULL, &size, NULL, errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        audit_store_close(s);
}
#undef N

/* A tree head from outside: its root at its size must be the rows'; one
 * larger than the rows means rows are gone. */
Test(audit_store, verify_checks_a_tree_head_from_outside) {
        static audit_event_t ev[9];
        static char ids[9][16];
        uint8_t root5[AUDIT_HASH_LEN];
        char errstr[512];
        audit_store_t *s;
        uint64_t size;
        int i;

        for (i = 0; i < 9; i++) {
                snprintf(ids[i], sizeof(ids[i]), "e-%d", i);
                ev[i] = event(ids[i], "{}", i);
        }
        s = open_store();
        write_ok(s, ev, 5, NULL);
        cr_assert_eq(audit_store_tree(s, &size, root5), AB_OK);
        cr_assert_eq(size, 5);
        write_ok(s, ev + 5, 4, NULL);
        cr_assert_eq(audit_store_verify(s, 5, root5, &size, NULL, errstr,
                                        sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert_eq(size, 9);
        root5[7] ^= 0x40;
        cr_assert_eq(audit_store_verify(s, 5, root5, &size, NULL, errstr,
                                        sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert(strstr(errstr, "the checkpoint given (5 leaves)"), "%s",
                  errstr);
        cr_assert_eq(audit_store_verify(s, 12, root5, &size, NULL, errstr,
                                        sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert(strstr(errstr, "rolled back"), "%s", errstr);
        audit_store_close(s);
}

Test(audit_store, verify_names_the_row_whose_content_changed) {
        audit_event_t ev[3];
        char errstr[512];
        audit_store_t *s;
        uint64_t size;

        ev[0] = event("e-0", "{\"a\":0}", 0);
        ev[1] = event("e-1", "{\"a\":1}", 1);
        ev[2] = event("e-2", "{\"a\":2}", 2);
        s     = open_store();
        write_ok(s, ev, 3, NULL);
        audit_store_close(s);
        sql("UPDATE events SET payload = '{\"a\":7}' WHERE id = 'e-1'");
        s = audit_store_open(path, AUDIT_STORE_READONLY, NULL, errstr,
                             sizeof(errstr));
        cr_assert(s, "%s", errstr);
        cr_assert_eq(audit_store_verify(s, 0, NULL, &size, NULL, errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert(strstr(errstr, "leaf 1 (id e-1"), "%s", errstr);
        audit_store_close(s);
}

Test(audit_store, query_filters_and_pages_in_leaf_order) {
        static audit_event_t ev[10];
        static char ids[10][16];
        audit_query_t q;
        char errstr[512];
        audit_store_t *s;
        json_t *page;
        int64_t next;
        int i, seen = 0;

        for (i = 0; i < 10; i++) {
                snprintf(ids[i], sizeof(ids[i]), "q-%d", i);
                ev[i]            = event(ids[i], "{}", i);
                ev[i].company_id = i % 2 ? "odd" : "even";
        }
        s = open_store();
        write_ok(s, ev, 10, NULL);
        memset(&q, 0, sizeof(q));
        q.company_id = "odd";
        q.after      = -1;
        q.limit      = 2;
        do {
                page = audit_store_query(s, &q, &next, errstr, sizeof(errstr));
                cr_assert(page, "%s", errstr);
                for (i = 0; i < (int)json_array_size(page); i++) {
                        cr_assert_str_eq(
                            json_string_value(json_object_get(
                                json_array_get(page, (size_t)i), "id")),
                            ids[2 * seen + 1]);
                        seen++;
                }
                json_decref(page);
                q.after = next;
        } while (next >= 0);
        cr_assert_eq(seen, 5);
        /* a time window alone, [since, until) on receivedAt */
        memset(&q, 0, sizeof(q));
        q.after    = -1;
        q.since_ms = 1767225600000 + 3;
        q.until_ms = 1767225600000 + 6;
        page       = audit_store_query(s, &q, &next, errstr, sizeof(errstr));
        cr_assert(page, "%s", errstr);
        cr_assert_eq(json_array_size(page), 3);
        cr_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(page, 0), "id")),
                         "q-3");
        cr_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(page, 2), "id")),
                         "q-5");
        cr_assert_eq(next, -1);
        json_decref(page);
        audit_store_close(s);
}

Test(audit_store, verify_checks_the_latest_checkpoint_root) {
        audit_event_t ev[3];
        uint8_t root[AUDIT_HASH_LEN], bad[AUDIT_HASH_LEN];
        char errstr[512], *note = NULL;
        audit_store_t *s;
        uint64_t size, cp_size = 0;

        ev[0] = event("e-0", "{}", 0);
        ev[1] = event("e-1", "{}", 1);
        ev[2] = event("e-2", "{}", 2);
        s     = open_store();
        write_ok(s, ev, 2, NULL);
        cr_assert_eq(audit_store_tree(s, &size, root), AB_OK);
        cr_assert_eq(audit_store_checkpoint_add(s, size, root, "note\n",
                                                errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        write_ok(s, ev + 2, 1, NULL);
        cr_assert_eq(audit_store_verify(s, 0, NULL, &size, NULL, errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert_eq(size, 3);
        cr_assert_eq(audit_store_checkpoint_latest(s, &note, &cp_size, bad,
                                                   errstr, sizeof(errstr)),
                     AB_OK);
        cr_assert_eq(cp_size, 2);
        cr_assert_str_eq(note, "note\n");
        cr_assert(memcmp(bad, root, AUDIT_HASH_LEN) == 0);
        free(note);
        /* a checkpoint the rows do not give */
        bad[0] ^= 1;
        cr_assert_eq(audit_store_checkpoint_add(s, 3, bad, "note\n", errstr,
                                                sizeof(errstr)),
                     AB_OK);
        cr_assert_eq(audit_store_verify(s, 0, NULL, &size, NULL, errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert(strstr(errstr, "checkpoint"), "%s", errstr);
        audit_store_close(s);
}

static void prune_ok(audit_store_t *s, int64_t cutoff, size_t max,
                     audit_store_prune_t *res) {
        char errstr[512];

        cr_assert_eq(audit_store_prune(s, cutoff, max, res, errstr,
                                       sizeof(errstr)),
                     AB_OK, "prune: %s", errstr);
}

static void verify_ok(audit_store_t *s, uint64_t rows, uint64_t pruned) {
        char errstr[512];
        uint64_t size = 0, n = 0;

        cr_assert_eq(audit_store_verify(s, 0, NULL, &size, &n, errstr,
                                        sizeof(errstr)),
                     AB_OK, "verify: %s", errstr);
        cr_assert_eq(size, rows);
        cr_assert_eq(n, pruned, "%llu pruned rows, want %llu",
                     (unsigned long long)n, (unsigned long long)pruned);
}

/* Ten rows received 1 ms apart from T, row 3 of unknown receipt, with
 * retention on: a cutoff of T + 6 prunes rows 0-2 and 4-5, keeps row 3
 * (its age is unknown) and every younger one. */
static audit_store_t *ten_rows(audit_event_t *ev, char pl[][16]) {
        static char ids[10][8];
        char errstr[512];
        audit_store_t *s;
        int i;

        for (i = 0; i < 10; i++) {
                snprintf(ids[i], sizeof(ids[i]), "r-%d", i);
                snprintf(pl[i], 16, "{\"n\":%d}", i);
                ev[i] = event(ids[i], pl[i], i);
        }
        ev[3].received_at_ms = 0;
        s = open_store();
        write_ok(s, ev, 10, NULL);
        cr_assert_eq(audit_store_retention(s, 1, errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        return s;
}

Test(audit_store, retention_prunes_payloads_and_keeps_proofs_and_dedupe) {
        audit_event_t ev[10], again[2];
        audit_store_outcome_t out[2];
        audit_store_prune_t res;
        audit_merkle_proof_t pr;
        uint8_t leaf[AUDIT_HASH_LEN], root[AUDIT_HASH_LEN], before[AUDIT_HASH_LEN];
        char pl[10][16], errstr[512], other[] = "{\"n\":99}";
        const int64_t t = 1767225600000;
        audit_store_t *s;
        uint64_t size;
        uint8_t *data;
        size_t len;
        json_t *rows, *row;

        s = ten_rows(ev, pl);
        cr_assert_eq(audit_store_tree(s, &size, before), AB_OK);
        prune_ok(s, t + 6, 0, &res);
        cr_assert_eq(res.rows, 5, "pruned %llu", (unsigned long long)res.rows);
        cr_assert_eq(res.more, 0);
        cr_assert_eq(count("SELECT count(*) FROM events WHERE payload IS NULL "
                           "AND pruned_at IS NOT NULL AND leaf_index < 6 AND "
                           "leaf_index != 3 AND length(payload_sha256) = 32"),
                     5);
        cr_assert_eq(count("SELECT count(*) FROM events WHERE payload IS NOT "
                           "NULL AND pruned_at IS NULL AND (leaf_index >= 6 "
                           "OR leaf_index = 3)"),
                     5);
        /* the tree is what it was; verify takes the pruned hashes */
        cr_assert_eq(audit_store_tree(s, &size, root), AB_OK);
        cr_assert(!memcmp(root, before, sizeof(root)));
        verify_ok(s, 10, 5);
        /* an old proof still holds: the path from the kept leaf hash */
        cr_assert_eq(audit_store_proof(s, 2, 10, &pr, leaf, errstr,
                                       sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert_eq(audit_merkle_verify_inclusion(2, 10, leaf, pr.hash[0], pr.cnt, root,
                                                   errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        /* its bytes are gone, and said to be */
        cr_assert_eq(audit_store_leaf_at(s, 2, &data, &len, errstr,
                                         sizeof(errstr)),
                     AB_ERR_NOT_FOUND);
        cr_assert(strstr(errstr, "pruned"), "%s", errstr);
        rows = audit_store_get(s, "r-2", errstr, sizeof(errstr));
        cr_assert(rows && json_array_size(rows) == 1, "%s", errstr);
        row = json_array_get(rows, 0);
        cr_assert(json_is_true(json_object_get(row, "pruned")));
        cr_assert(json_is_string(json_object_get(row, "prunedAt")));
        cr_assert(json_is_null(json_object_get(row, "payload")));
        cr_assert_str_eq(json_string_value(json_object_get(row, "name")),
                         "OrderCreated");
        json_decref(rows);
        /* a redelivery of a pruned event is known by the payload's digest;
         * other content under its id is still a conflict */
        again[0] = ev[1];
        again[1] = event("r-2", other, 2);
        write_ok(s, again, 2, out);
        cr_assert_eq(out[0], AUDIT_STORE_DUPLICATE);
        cr_assert_eq(out[1], AUDIT_STORE_CONFLICT);
        /* the conflict's copy ages too */
        prune_ok(s, t + 6, 0, &res);
        cr_assert_eq(res.rows, 0);
        cr_assert_eq(res.conflicts, 1);
        cr_assert_eq(count("SELECT count(*) FROM conflicts WHERE payload IS "
                           "NULL"),
                     1);
        /* bounded steps: 3 rows at a time, then the last, then none */
        prune_ok(s, t + 100, 3, &res);
        cr_assert(res.rows == 3 && res.more == 1, "%llu rows, more %d",
                  (unsigned long long)res.rows, res.more);
        prune_ok(s, t + 100, 3, &res);
        cr_assert(res.rows == 1 && res.more == 0);
        prune_ok(s, t + 100, 3, &res);
        cr_assert(res.rows == 0 && res.more == 0);
        audit_store_close(s);
        /* and across a reopen; row 3 still whole */
        s = open_store();
        verify_ok(s, 10, 9);
        audit_store_close(s);
}

Test(audit_store, verify_refuses_a_pruned_mark_no_prune_set) {
        audit_event_t ev[10];
        audit_store_prune_t res;
        char pl[10][16], errstr[512];
        audit_store_t *s;
        uint64_t size;

        s = ten_rows(ev, pl);
        prune_ok(s, 1767225600000 + 6, 0, &res);
        audit_store_close(s);
        /* a changed payload hidden behind a pruned mark on a row then
         * younger than any retention */
        sql("UPDATE events SET payload = NULL, pruned_at = received_at + 5 "
            "WHERE leaf_index = 8");
        s = audit_store_open(path, AUDIT_STORE_READONLY, NULL, errstr,
                             sizeof(errstr));
        cr_assert(s, "%s", errstr);
        cr_assert_eq(audit_store_verify(s, 0, NULL, &size, NULL, errstr,
                                        sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert(strstr(errstr, "leaf 8 (id r-8") &&
                      strstr(errstr, "marked pruned"),
                  "%s", errstr);
        audit_store_close(s);
        /* a pruned row that holds a payload again */
        sql("UPDATE events SET payload = '{\"n\":8}', pruned_at = NULL "
            "WHERE leaf_index = 8");
        sql("UPDATE events SET payload = '{\"n\":7}' WHERE leaf_index = 1");
        s = audit_store_open(path, AUDIT_STORE_READONLY, NULL, errstr,
                             sizeof(errstr));
        cr_assert(s, "%s", errstr);
        cr_assert_eq(audit_store_verify(s, 0, NULL, &size, NULL, errstr,
                                        sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert(strstr(errstr, "leaf 1 (id r-1"), "%s", errstr);
        audit_store_close(s);
}

/* A database of schema 1 (before retention) is migrated on open and its
 * rows still verify. Made by taking version 2's additions back out. */
Test(audit_store, a_version_1_database_is_migrated_and_verifies) {
        audit_event_t ev[10];
        char pl[10][16], errstr[512];
        audit_store_prune_t res;
        audit_store_t *s;

        s = ten_rows(ev, pl);
        audit_store_close(s);
        sql("DROP INDEX events_unpruned;"
            "ALTER TABLE events DROP COLUMN pruned_at;"
            "ALTER TABLE events DROP COLUMN payload_sha256;"
            "DELETE FROM schema_version WHERE version = 2;");
        cr_assert_eq(count("SELECT max(version) FROM schema_version"), 1);
        s = open_store();
        cr_assert_eq(count("SELECT max(version) FROM schema_version"), 2);
        verify_ok(s, 10, 0);
        cr_assert_eq(audit_store_retention(s, 1, errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        prune_ok(s, 1767225600000 + 6, 0, &res);
        cr_assert_eq(res.rows, 5);
        verify_ok(s, 10, 5);
        /* retention off: the index goes */
        cr_assert_eq(audit_store_retention(s, 0, errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert_eq(count("SELECT count(*) FROM sqlite_master WHERE name = "
                           "'events_unpruned'"),
                     0);
        audit_store_close(s);
}

static void hex32(const uint8_t *h, char out[65]) {
        int i;

        for (i = 0; i < 32; i++) {
                snprintf(out + 2 * i, 3, "%02x", h[i]);
        }
}

/* The canonical row and its hash are what existing files were signed
 * with: a table of rows (numbers at their edges, NULLs) and the leaf
 * hashes the first release stored for them, computed outside the code
 * from the documented layout (audit_store_leaf_data()). */
Test(audit_store, leaf_hashes_are_the_ones_existing_files_hold) {
        static const struct {
                audit_event_t ev;
                const char *leaf;
        } rows[] = {
            {{"e-1", "OrderCreated", "commerce", "api", "c1", NULL, 1,
              "2026-01-01T00:00:00.000Z", 1767225600000, "events.commerce", 0,
              0, "{\"a\":1}", 7, "accepted", NULL, NULL},
             "efbbb0bd069d205ba90118b4efbaf87d8695d0ef80c7bbdd792ec8e9565a87a6"},
            {{"kafka:t:2:-1", NULL, NULL, NULL, NULL, NULL, 0, NULL, INT64_MIN,
              "events.rejected", INT32_MAX, INT64_MAX, NULL, 0, "rejected",
              "E: bad", NULL},
             "74f1fb944ec381e0f936c6e343f6a57b14db3339f9304e8a1374c8e7f0a5e941"},
        };
        audit_merkle_proof_t proof;
        audit_store_outcome_t out[2];
        audit_event_t ev[2];
        uint8_t leaf[AUDIT_HASH_LEN];
        char errstr[512], hx[65];
        audit_store_t *s;
        size_t i;

        for (i = 0; i < 2; i++) {
                ev[i] = rows[i].ev;
        }
        /* the service hashes on its consume thread: the same leaf */
        cr_assert_eq(audit_store_leaf_hash(&ev[0], leaf), AB_OK);
        hex32(leaf, hx);
        cr_assert_str_eq(hx, rows[0].leaf);
        ev[0].leaf_hash = leaf;
        s = open_store();
        /* no positions: write_ok() would take offset + 1 of INT64_MAX */
        cr_assert_eq(audit_store_write(s, ev, 2, out, NULL, 0, errstr,
                                       sizeof(errstr)),
                     AB_OK, "write: %s", errstr);
        for (i = 0; i < 2; i++) {
                cr_assert_eq(out[i], AUDIT_STORE_WRITTEN, "row %zu", i);
                cr_assert_eq(audit_store_proof(s, i, 0, &proof, leaf, errstr,
                                               sizeof(errstr)),
                             AB_OK, "row %zu: %s", i, errstr);
                hex32(leaf, hx);
                cr_assert_str_eq(hx, rows[i].leaf, "row %zu", i);
        }
        audit_store_close(s);
}

/* The writer's connection skips SQLite's CHECK on status (a temporary
 * b-tree per row): the store refuses the same values itself. */
Test(audit_store, a_status_outside_the_three_is_refused) {
        audit_store_pos_t p = {"events.commerce", 0, 9};
        audit_event_t ev[2];
        audit_store_stats_t st;
        char errstr[512] = "";
        audit_store_t *s;
        int64_t next = -1;

        ev[0]        = event("e-1", "{}", 0);
        ev[1]        = event("e-2", "{}", 1);
        ev[1].status = "undecodable";
        s            = open_store();
        cr_assert_eq(audit_store_write(s, ev, 2, NULL, &p, 1, errstr,
                                       sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert(strstr(errstr, "e-2: status \"undecodable\""), "%s", errstr);
        audit_store_stats(s, &st);
        cr_assert_eq(st.tree_size, 0, "nothing of the batch is kept");
        cr_assert_eq(audit_store_position(s, "events.commerce", 0, &next),
                     AB_ERR_NOT_FOUND);
        audit_store_close(s);
        cr_assert_eq(count("SELECT count(*) FROM events"), 0);
}

/* Rows go in by multi-row INSERTs of up to 64: a batch over several of
 * them, with events seen twice while their first row still waits. */
Test(audit_store, a_large_batch_keeps_each_event_once_in_order) {
        static audit_event_t ev[150];
        static audit_store_outcome_t out[150];
        static char ids[150][16];
        audit_store_stats_t st;
        char errstr[512];
        audit_store_t *s;
        uint64_t size;
        int i;

        for (i = 0; i < 140; i++) {
                snprintf(ids[i], sizeof(ids[i]), "e-%d", i);
                ev[i] = event(ids[i], "{\"v\":1}", i);
        }
        for (i = 140; i < 150; i++) {
                /* e-130..e-139 wait in the last INSERT, e-5.. are in */
                ev[i] = event(ids[i % 2 ? 130 + i - 140 : i - 135],
                              i % 4 == 1 ? "{\"v\":2}" : "{\"v\":1}", i);
        }
        s = open_store();
        write_ok(s, ev, 150, out);
        for (i = 0; i < 150; i++) {
                cr_assert_eq(out[i],
                             i < 140        ? AUDIT_STORE_WRITTEN
                             : i % 4 == 1 ? AUDIT_STORE_CONFLICT
                                          : AUDIT_STORE_DUPLICATE,
                             "event %d: outcome %d", i, (int)out[i]);
        }
        audit_store_stats(s, &st);
        cr_assert_eq(st.tree_size, 140);
        cr_assert_eq(st.conflicts, 3);
        cr_assert_eq(audit_store_verify(s, 0, NULL, &size, NULL, errstr,
                                        sizeof(errstr)),
                     AB_OK, "%s", errstr);
        audit_store_close(s);
        cr_assert_eq(count("SELECT count(*) FROM events WHERE leaf_index = "
                           "kafka_offset"),
                     140, "leaf order is batch order");
        cr_assert_eq(count("SELECT count(*) FROM conflicts c JOIN events e "
                           "ON e.leaf_index = c.leaf_index AND e.id = c.id"),
                     3, "each conflict names its row");
}
