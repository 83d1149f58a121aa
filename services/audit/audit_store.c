/* aetherbus - Apache-2.0
 *
 * audit_store: the durable EventLog in SQLite (see audit_store.h). WAL
 * with synchronous=FULL: a commit is on disk when audit_store_write()
 * returns, which is what lets the service mark the Kafka offsets done
 * only then. The leaf index is the row's rowid, so insertion order, the
 * keyset cursor and the tree are one and the same sequence.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <openssl/sha.h>
#include <sqlite3.h>

#include "ab_time.h"
#include "audit_store.h"

/* What a write sets; a read adds whether retention pruned the row. */
#define COLS_WRITTEN                                                           \
        "leaf_index, id, name, prefix, source, company_id, subject_id, "       \
        "schema_version, occurred_at, received_at, kafka_topic, "              \
        "kafka_partition, kafka_offset, payload, status, reason, leaf_hash"
#define COLS COLS_WRITTEN ", pruned_at"
#define COL_CNT 17

/* New rows and tree nodes wait in the store and go in with multi-row
 * INSERTs of up to ROWS_MAX rows (one statement of each power of two),
 * not a statement per row: each statement opens and closes a cursor on
 * the table and each of its 7 indexes. */
#define ROWS_LOG 7
#define ROWS_MAX (1 << (ROWS_LOG - 1))
#define NODES_MAX (2 * ROWS_MAX)
/* merkle_nodes holds the subtrees of 16 leaves and up: one row for 8
 * leaves where every level was one per leaf, the writer's costliest
 * insert after the events' (18 % of bench-auditstore's time). What
 * proofs need below is rebuilt from leaf hashes. Files written before
 * keep their lower levels, unread. */
#define NODE_LEVEL_MIN 4
/* A checkpoint every 10,000 WAL pages (80 MiB at 8 KiB), not SQLite's
 * 1,000: the companyId index takes each row on another page, so a batch
 * of 1,024 rows dirtied ~1,000 pages and every commit ran a checkpoint;
 * ten commits' pages now go back once, the pages they share once (41k
 * -> 72k rows/s on the service, 12 partitions, at 4 KiB pages). On the
 * audit_wal thread, not in the commit. */
#define WAL_PAGES 10000

/* Migration N brings the schema from version N - 1 to N; never edit one
 * that shipped, add the next. */
static const char *const migrations[AUDIT_STORE_SCHEMA_VERSION + 1] = {
    NULL,
    "CREATE TABLE events ("
    " leaf_index INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL, name TEXT, prefix TEXT, source TEXT,"
    " company_id TEXT, subject_id TEXT, schema_version INTEGER,"
    " occurred_at TEXT, received_at INTEGER,"
    " kafka_topic TEXT NOT NULL, kafka_partition INTEGER NOT NULL,"
    " kafka_offset INTEGER NOT NULL, payload TEXT,"
    " status TEXT NOT NULL"
    "  CHECK (status IN ('accepted', 'rejected', 'deadletter')),"
    " reason TEXT, leaf_hash BLOB NOT NULL,"
    " UNIQUE (id, status));"
    /* Each filter with the leaf order: a range scan, then the cursor. */
    "CREATE INDEX events_company ON events (company_id, leaf_index);"
    "CREATE INDEX events_name ON events (name, leaf_index);"
    "CREATE INDEX events_prefix ON events (prefix, leaf_index);"
    "CREATE INDEX events_source ON events (source, leaf_index);"
    "CREATE INDEX events_status ON events (status, leaf_index);"
    "CREATE INDEX events_received ON events (received_at);"
    "CREATE TABLE conflicts ("
    " seq INTEGER PRIMARY KEY, id TEXT NOT NULL, status TEXT NOT NULL,"
    " leaf_index INTEGER NOT NULL, kafka_topic TEXT NOT NULL,"
    " kafka_partition INTEGER NOT NULL, kafka_offset INTEGER NOT NULL,"
    " received_at INTEGER, payload TEXT, reason TEXT,"
    " detected_at INTEGER NOT NULL);"
    "CREATE TABLE positions ("
    " kafka_topic TEXT NOT NULL, kafka_partition INTEGER NOT NULL,"
    " next_offset INTEGER NOT NULL,"
    " PRIMARY KEY (kafka_topic, kafka_partition)) WITHOUT ROWID;"
    "CREATE TABLE merkle_state ("
    " k INTEGER PRIMARY KEY CHECK (k = 0), state BLOB NOT NULL);"
    /* Level >= 1 only: the leaves are events.leaf_hash. */
    "CREATE TABLE merkle_nodes ("
    " level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,"
    " PRIMARY KEY (level, idx)) WITHOUT ROWID;"
    "CREATE TABLE checkpoints ("
    " seq INTEGER PRIMARY KEY, tree_size INTEGER NOT NULL,"
    " root BLOB NOT NULL, note TEXT NOT NULL, created_at INTEGER NOT NULL);",
    /* 2: retention. A pruned row keeps its leaf hash and, instead of its
     * payload, the payload's SHA-256: enough to tell a redelivery of it
     * (same content) from a conflict without keeping the content. */
    "ALTER TABLE events ADD COLUMN pruned_at INTEGER;"
    "ALTER TABLE events ADD COLUMN payload_sha256 BLOB;",
};

enum {
        ST_FIND = 0,
        ST_CONFLICT,
        ST_POS_PUT,
        ST_POS_GET,
        ST_STATE_PUT,
        ST_LEAF_GET,
        ST_NODE_GET,
        ST__CNT
};

static const char *const stmt_sql[ST__CNT] = {
    "SELECT leaf_index, name, prefix, source, company_id, subject_id,"
    " schema_version, occurred_at, payload, reason, pruned_at,"
    " payload_sha256 FROM events WHERE id = ?1 AND status = ?2",
    "INSERT INTO conflicts (id, status, leaf_index, kafka_topic,"
    " kafka_partition, kafka_offset, received_at, payload, reason,"
    " detected_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    "INSERT INTO positions (kafka_topic, kafka_partition, next_offset)"
    " VALUES (?1, ?2, ?3) ON CONFLICT (kafka_topic, kafka_partition)"
    " DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
    "SELECT next_offset FROM positions"
    " WHERE kafka_topic = ?1 AND kafka_partition = ?2",
    "INSERT OR REPLACE INTO merkle_state (k, state) VALUES (0, ?1)",
    "SELECT leaf_hash FROM events WHERE leaf_index = ?1",
    "SELECT hash FROM merkle_nodes WHERE level = ?1 AND idx = ?2",
};

/* A row found new, waiting for its INSERT (ev is the caller's). */
typedef struct {
        const audit_event_t *ev;
        int64_t leaf;
        uint8_t hash[AUDIT_HASH_LEN];
} pend_row_t;

/* A tree node an append completed, waiting for its INSERT. */
typedef struct {
        unsigned level;
        uint64_t idx;
        uint8_t hash[AUDIT_HASH_LEN];
} pend_node_t;

struct audit_store_s {
        sqlite3 *db;
        sqlite3_stmt *st[ST__CNT];
        sqlite3_stmt *rows_st[ROWS_LOG];  /* 2^k events, prepared on use */
        sqlite3_stmt *nodes_st[ROWS_LOG]; /* 2^k merkle_nodes */
        pend_row_t rows[ROWS_MAX];
        size_t row_cnt;
        /* (id, status) of rows[] -> index + 1: a second record of an
         * event waiting must see the first (flushed, then found) */
        uint8_t row_slot[2 * ROWS_MAX];
        pend_node_t nodes[NODES_MAX];
        size_t node_cnt;
        pthread_mutex_t lock;
        audit_wal_t *wal;  /* the writer's checkpoints */
        audit_merkle_t m;  /* as committed, outside audit_store_write() */
        uint64_t conflicts;
        int lock_fd;
        int readonly;
        char path[4096];
};

static void sql_sha256(sqlite3_context *ctx, int argc, sqlite3_value **argv);

static ab_err_t db_err(audit_store_t *s, const char *what, char *errstr,
                       size_t errstr_size) {
        ab_errstr_set(errstr, errstr_size, "%s: %s: %s", s->path, what,
                      sqlite3_errmsg(s->db));
        return AB_ERR_IO;
}

static ab_err_t exec(audit_store_t *s, const char *sql, char *errstr,
                     size_t errstr_size) {
        char *msg = NULL;

        if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
                ab_errstr_set(errstr, errstr_size, "%s: %.80s: %s", s->path,
                              sql, msg ? msg : sqlite3_errmsg(s->db));
                sqlite3_free(msg);
                return AB_ERR_IO;
        }
        return AB_OK;
}

/* flock(), not fcntl(): its lock belongs to the open file, so a second
 * open in the same process is refused too (the unit test's case). */
static ab_err_t take_lock(audit_store_t *s, char *errstr,
                          size_t errstr_size) {
        char lpath[4200];

        snprintf(lpath, sizeof(lpath), "%s.lock", s->path);
        s->lock_fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (s->lock_fd < 0) {
                ab_errstr_set(errstr, errstr_size, "%s: %s", lpath,
                              strerror(errno));
                return AB_ERR_IO;
        }
        if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
                if (errno == EWOULDBLOCK) {
                        ab_errstr_set(errstr, errstr_size,
                                      "%s is in use by another aetherbus-audit "
                                      "(lock %s is held): one instance per "
                                      "database",
                                      s->path, lpath);
                        return AB_ERR_UNAVAILABLE;
                }
                ab_errstr_set(errstr, errstr_size, "%s: flock: %s", lpath,
                              strerror(errno));
                return AB_ERR_IO;
        }
        return AB_OK;
}

static ab_err_t schema_version(audit_store_t *s, int *vp, char *errstr,
                               size_t errstr_size) {
        sqlite3_stmt *st;
        int rc;

        *vp = 0;
        if (sqlite3_prepare_v2(s->db,
                               "SELECT max(version) FROM schema_version", -1,
                               &st, NULL) != SQLITE_OK) {
                return db_err(s, "schema version", errstr, errstr_size);
        }
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *vp = sqlite3_column_int(st, 0);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
                return db_err(s, "schema version", errstr, errstr_size);
        }
        return AB_OK;
}

static ab_err_t migrate(audit_store_t *s, char *errstr, size_t errstr_size) {
        char sql[64];
        ab_err_t err;
        int v;

        if (!s->readonly &&
            (err = exec(s,
                        "CREATE TABLE IF NOT EXISTS schema_version "
                        "(version INTEGER NOT NULL)",
                        errstr, errstr_size))) {
                return err;
        }
        if ((err = schema_version(s, &v, errstr, errstr_size))) {
                return err;
        }
        if (v > AUDIT_STORE_SCHEMA_VERSION) {
                ab_errstr_set(errstr, errstr_size,
                              "%s: schema version %d is newer than this "
                              "aetherbus-audit's (%d)",
                              s->path, v, AUDIT_STORE_SCHEMA_VERSION);
                return AB_ERR_UNSUPPORTED;
        }
        if (s->readonly) {
                if (v != AUDIT_STORE_SCHEMA_VERSION) {
                        ab_errstr_set(errstr, errstr_size,
                                      "%s: schema version %d, want %d (start "
                                      "the service once to migrate)",
                                      s->path, v, AUDIT_STORE_SCHEMA_VERSION);
                        return AB_ERR_UNSUPPORTED;
                }
                return AB_OK;
        }
        for (v = v + 1; v <= AUDIT_STORE_SCHEMA_VERSION; v++) {
                snprintf(sql, sizeof(sql),
                         "INSERT INTO schema_version VALUES (%d)", v);
                if ((err = exec(s, "BEGIN IMMEDIATE", errstr, errstr_size))) {
                        return err;
                }
                if ((err = exec(s, migrations[v], errstr, errstr_size)) ||
                    (err = exec(s, sql, errstr, errstr_size)) ||
                    (err = exec(s, "COMMIT", errstr, errstr_size))) {
                        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                        return err;
                }
        }
        return AB_OK;
}

static ab_err_t load_state(audit_store_t *s, char *errstr,
                           size_t errstr_size) {
        sqlite3_stmt *st;
        ab_err_t err = AB_OK;
        int64_t rows = 0;
        int rc;

        audit_merkle_init(&s->m);
        if (sqlite3_prepare_v2(s->db,
                               "SELECT state FROM merkle_state WHERE k = 0",
                               -1, &st, NULL) != SQLITE_OK) {
                return db_err(s, "merkle state", errstr, errstr_size);
        }
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                err = audit_merkle_state_read(
                    &s->m, sqlite3_column_blob(st, 0),
                    (size_t)sqlite3_column_bytes(st, 0), errstr, errstr_size);
        } else if (rc != SQLITE_DONE) {
                err = db_err(s, "merkle state", errstr, errstr_size);
        }
        sqlite3_finalize(st);
        if (err) {
                return err;
        }
        if (sqlite3_prepare_v2(s->db,
                               "SELECT (SELECT count(*) FROM events),"
                               " (SELECT count(*) FROM conflicts)",
                               -1, &st, NULL) != SQLITE_OK) {
                return db_err(s, "counts", errstr, errstr_size);
        }
        if (sqlite3_step(st) == SQLITE_ROW) {
                rows         = sqlite3_column_int64(st, 0);
                s->conflicts = (uint64_t)sqlite3_column_int64(st, 1);
        }
        sqlite3_finalize(st);
        /* Rows and state are written together: a mismatch is damage. */
        if ((uint64_t)rows != s->m.size) {
                ab_errstr_set(errstr, errstr_size,
                              "%s: %" PRId64 " rows but a tree of %" PRIu64
                              " leaves: the file was changed behind the "
                              "service (run verify)",
                              s->path, rows, s->m.size);
                return AB_ERR_INVALID;
        }
        return AB_OK;
}

/* SQLite's allocation statistics take a global mutex around every
 * malloc and free (5 % of the write path, callgrind); nothing here reads
 * them. Only possible before SQLite initialises: when something in the
 * process used SQLite first, the call fails and changes nothing. */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_setup(void) {
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

audit_store_t *audit_store_open(const char *path, int flags, ab_err_t *errp,
                                char *errstr, size_t errstr_size) {
        audit_store_t *s;
        ab_err_t err = AB_ERR_IO;
        int i, oflags;

        pthread_once(&sqlite_once, sqlite_setup);
        if (!(s = calloc(1, sizeof(*s)))) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                err = AB_ERR_NOMEM;
                goto fail0;
        }
        s->lock_fd  = -1;
        s->readonly = !!(flags & AUDIT_STORE_READONLY);
        pthread_mutex_init(&s->lock, NULL);
        if (strlen(path) >= sizeof(s->path)) {
                ab_errstr_set(errstr, errstr_size, "database path too long");
                err = AB_ERR_INVALID;
                goto fail;
        }
        strcpy(s->path, path);
        if (!s->readonly && (err = take_lock(s, errstr, errstr_size))) {
                goto fail;
        }
        oflags = s->readonly ? SQLITE_OPEN_READONLY
                             : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
        if (sqlite3_open_v2(path, &s->db, oflags | SQLITE_OPEN_NOMUTEX,
                            NULL) != SQLITE_OK) {
                err = db_err(s, "open", errstr, errstr_size);
                goto fail;
        }
        sqlite3_busy_timeout(s->db, 5000);
        sqlite3_extended_result_codes(s->db, 1);
        /* 8 KiB pages for a new file (an existing one keeps its own):
         * half the b-tree pages to walk and split per row; writing 1M
         * preload events went from 100-104k to 120-127k rows/s
         * (bench-auditstore, 1,024 a transaction; 16 and 32 KiB were
         * slower again, 2 KiB as 4). Must precede WAL mode. */
        if (!s->readonly &&
            (err = exec(s, "PRAGMA page_size = 8192", errstr, errstr_size))) {
                goto fail;
        }
        if (!s->readonly &&
            ((err = exec(s, "PRAGMA journal_mode = WAL", errstr,
                         errstr_size)) ||
             (err = exec(s, "PRAGMA synchronous = FULL", errstr,
                         errstr_size)) ||
             /* The statement journal of the tree nodes' multi-row
              * INSERT OR REPLACE (a few pages) in memory, not a file
              * created and unlinked in /var/tmp every transaction. */
             (err = exec(s, "PRAGMA temp_store = MEMORY", errstr,
                         errstr_size)))) {
                goto fail;
        }
        if ((err = migrate(s, errstr, errstr_size))) {
                goto fail;
        }
        if (sqlite3_create_function(s->db, "ab_sha256", 1,
                                    SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                    sql_sha256, NULL, NULL) != SQLITE_OK) {
                err = db_err(s, "ab_sha256", errstr, errstr_size);
                goto fail;
        }
        /* After the migrations, which keep their CHECKs: SQLite 3.40
         * evaluates the events.status CHECK (an IN list of three) by
         * building a temporary b-tree for every row inserted, a quarter
         * of the write path (callgrind). write_event() checks the same
         * list itself; other connections (sqlite3, tools) still have
         * the CHECK. */
        if (!s->readonly &&
            (err = exec(s, "PRAGMA ignore_check_constraints = ON", errstr,
                        errstr_size))) {
                goto fail;
        }
        for (i = 0; i < ST__CNT; i++) {
                if (s->readonly && i != ST_POS_GET && i != ST_LEAF_GET &&
                    i != ST_NODE_GET && i != ST_FIND) {
                        continue;
                }
                if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1,
                                       SQLITE_PREPARE_PERSISTENT, &s->st[i],
                                       NULL) != SQLITE_OK) {
                        err = db_err(s, "prepare", errstr, errstr_size);
                        goto fail;
                }
        }
        if (!s->readonly &&
            !(s->wal = audit_wal_start(s->db, path, WAL_PAGES, errstr,
                                       errstr_size))) {
                err = AB_ERR_INTERNAL;
                goto fail;
        }
        /* state and row count of one commit (a service may be writing) */
        if ((err = exec(s, "BEGIN", errstr, errstr_size))) {
                goto fail;
        }
        err = load_state(s, errstr, errstr_size);
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
        if (err) {
                goto fail;
        }
        return s;

fail:
        audit_store_close(s);
fail0:
        if (errp) {
                *errp = err;
        }
        return NULL;
}

void audit_store_close(audit_store_t *s) {
        int i;

        if (!s) {
                return;
        }
        audit_wal_stop(s->wal); /* first: the writer's close is the last */
        for (i = 0; i < ST__CNT; i++) {
                sqlite3_finalize(s->st[i]);
        }
        for (i = 0; i < ROWS_LOG; i++) {
                sqlite3_finalize(s->rows_st[i]);
                sqlite3_finalize(s->nodes_st[i]);
        }
        if (s->db) {
                sqlite3_close(s->db);
        }
        if (s->lock_fd >= 0) {
                close(s->lock_fd); /* releases the flock */
        }
        pthread_mutex_destroy(&s->lock);
        free(s);
}

/*
 * Leaf data
 */

/* The leaf bytes being built: in the caller's buffer until they outgrow
 * it (a row's leaf is ~250 bytes, so the write path never allocates),
 * then on the heap. */
typedef struct {
        uint8_t *buf;
        size_t len, size;
        int heap, oom;
} wbuf_t;

static void put(wbuf_t *w, const void *p, size_t n, int null) {
        uint32_t l = null ? 0xFFFFFFFFu : (uint32_t)n;
        uint8_t *nb;
        size_t need = w->len + 4 + (null ? 0 : n);

        if (w->oom) {
                return;
        }
        if (need > w->size) {
                size_t ns = w->size ? w->size : 256;

                while (ns < need) {
                        ns *= 2;
                }
                if (w->heap) {
                        nb = realloc(w->buf, ns);
                } else if ((nb = malloc(ns))) {
                        memcpy(nb, w->buf, w->len);
                }
                if (!nb) {
                        w->oom = 1;
                        return;
                }
                w->buf  = nb;
                w->size = ns;
                w->heap = 1;
        }
        w->buf[w->len++] = (uint8_t)(l >> 24);
        w->buf[w->len++] = (uint8_t)(l >> 16);
        w->buf[w->len++] = (uint8_t)(l >> 8);
        w->buf[w->len++] = (uint8_t)l;
        if (!null && n) {
                memcpy(w->buf + w->len, p, n);
                w->len += n;
        }
}

static void put_str(wbuf_t *w, const char *s) {
        put(w, s, s ? strlen(s) : 0, !s);
}

/* Decimal as "%" PRId64 writes it; snprintf() was a tenth of the leaf. */
static void put_int(wbuf_t *w, int64_t v, int null) {
        char num[24];
        char *p = num + sizeof(num);
        uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

        do {
                *--p = (char)('0' + u % 10);
                u /= 10;
        } while (u);
        if (v < 0) {
                *--p = '-';
        }
        put(w, p, (size_t)(num + sizeof(num) - p), null);
}

/* audit_store_leaf_data() into \p w (version byte first). */
static void leaf_build(wbuf_t *w, const audit_event_t *ev) {
        w->buf[0] = 0x01;
        w->len    = 1;
        put_str(w, ev->id);
        put_str(w, ev->name);
        put_str(w, ev->prefix);
        put_str(w, ev->source);
        put_str(w, ev->company_id);
        put_str(w, ev->subject_id);
        put_int(w, ev->schema_version, ev->schema_version == 0);
        put_str(w, ev->occurred_at);
        put_int(w, ev->received_at_ms, ev->received_at_ms == 0);
        put_str(w, ev->topic);
        put_int(w, ev->partition, 0);
        put_int(w, ev->offset, 0);
        put(w, ev->payload, ev->payload_len, !ev->payload);
        put_str(w, ev->status);
        put_str(w, ev->reason);
}

ab_err_t audit_store_leaf_data(const audit_event_t *ev, uint8_t **bufp,
                               size_t *lenp) {
        wbuf_t w;

        memset(&w, 0, sizeof(w));
        if (!(w.buf = malloc(256))) {
                return AB_ERR_NOMEM;
        }
        w.size = 256;
        w.heap = 1;
        leaf_build(&w, ev);
        if (w.oom) {
                free(w.buf);
                return AB_ERR_NOMEM;
        }
        *bufp = w.buf;
        *lenp = w.len;
        return AB_OK;
}

ab_err_t audit_store_leaf_hash(const audit_event_t *ev,
                               uint8_t out[AUDIT_HASH_LEN]) {
        uint8_t stack[1024];
        wbuf_t w;
        ab_err_t err;

        memset(&w, 0, sizeof(w));
        w.buf  = stack;
        w.size = sizeof(stack);
        leaf_build(&w, ev);
        if (w.oom) {
                return AB_ERR_NOMEM;
        }
        err = audit_merkle_leaf_hash(w.buf, w.len, out);
        if (w.heap) {
                free(w.buf);
        }
        return err;
}

/*
 * Writing
 */

static void bind_text(sqlite3_stmt *st, int i, const char *s) {
        if (s) {
                sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
        } else {
                sqlite3_bind_null(st, i);
        }
}

static void bind_int(sqlite3_stmt *st, int i, int64_t v, int null) {
        if (null) {
                sqlite3_bind_null(st, i);
        } else {
                sqlite3_bind_int64(st, i, v);
        }
}

static int col_eq(sqlite3_stmt *st, int i, const char *s, size_t len) {
        if (sqlite3_column_type(st, i) == SQLITE_NULL) {
                return s == NULL;
        }
        if (!s) {
                return 0;
        }
        return (size_t)sqlite3_column_bytes(st, i) == len &&
               !memcmp(sqlite3_column_text(st, i), s, len);
}

static int str_eq(sqlite3_stmt *st, int i, const char *s) {
        return col_eq(st, i, s, s ? strlen(s) : 0);
}

/* A pruned row's payload against its digest (NULL: it had none). */
static int pruned_payload_eq(sqlite3_stmt *st, int i, const audit_event_t *ev) {
        uint8_t md[SHA256_DIGEST_LENGTH];

        if (sqlite3_column_type(st, i) == SQLITE_NULL) {
                return ev->payload == NULL;
        }
        if (!ev->payload ||
            sqlite3_column_bytes(st, i) != SHA256_DIGEST_LENGTH) {
                return 0;
        }
        SHA256((const unsigned char *)ev->payload, ev->payload_len, md);
        return !memcmp(sqlite3_column_blob(st, i), md, sizeof(md));
}

/* What the client said: a retry that ingest received again (another
 * receivedAt, another offset) is the same event. */
static int same_content(sqlite3_stmt *st, const audit_event_t *ev) {
        int64_t sv = sqlite3_column_type(st, 6) == SQLITE_NULL
                         ? 0
                         : sqlite3_column_int64(st, 6);

        return str_eq(st, 1, ev->name) && str_eq(st, 2, ev->prefix) &&
               str_eq(st, 3, ev->source) && str_eq(st, 4, ev->company_id) &&
               str_eq(st, 5, ev->subject_id) && sv == ev->schema_version &&
               str_eq(st, 7, ev->occurred_at) &&
               (sqlite3_column_type(st, 10) == SQLITE_NULL
                    ? col_eq(st, 8, ev->payload, ev->payload_len)
                    : pruned_payload_eq(st, 11, ev)) &&
               str_eq(st, 9, ev->reason);
}

/* The INSERT of \p cnt rows of \p tuple ("(?, ?)"), prepared on first
 * use and kept: \p cache[k] holds the one of 2^k rows. */
static sqlite3_stmt *multi_stmt(audit_store_t *s, sqlite3_stmt **cache,
                                size_t cnt, const char *head,
                                const char *tuple) {
        size_t k = (size_t)__builtin_ctzll(cnt), i, len, tl = strlen(tuple);
        char *sql;
        int rc;

        if (cache[k]) {
                return cache[k];
        }
        len = strlen(head);
        if (!(sql = malloc(len + cnt * (tl + 1) + 1))) {
                return NULL;
        }
        memcpy(sql, head, len);
        for (i = 0; i < cnt; i++) {
                if (i) {
                        sql[len++] = ',';
                }
                memcpy(sql + len, tuple, tl);
                len += tl;
        }
        sql[len] = '\0';
        rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                &cache[k], NULL);
        free(sql);
        return rc == SQLITE_OK ? cache[k] : NULL;
}

/* The largest power of two <= min(n, ROWS_MAX). */
static size_t chunk(size_t n) {
        if (n >= ROWS_MAX) {
                return ROWS_MAX;
        }
        return (size_t)1 << (63 - __builtin_clzll(n));
}

/* Inserts the waiting nodes. OR REPLACE: as the single-row put was. */
static int nodes_flush(audit_store_t *s) {
        sqlite3_stmt *st;
        size_t i = 0, j, n;
        int b, rc;

        while (i < s->node_cnt) {
                n  = chunk(s->node_cnt - i);
                st = multi_stmt(s, s->nodes_st, n,
                                "INSERT OR REPLACE INTO merkle_nodes (level, "
                                "idx, hash) VALUES ",
                                "(?,?,?)");
                if (!st) {
                        return -1;
                }
                for (j = 0, b = 1; j < n; j++, i++) {
                        sqlite3_bind_int(st, b++, (int)s->nodes[i].level);
                        sqlite3_bind_int64(st, b++, (int64_t)s->nodes[i].idx);
                        sqlite3_bind_blob(st, b++, s->nodes[i].hash,
                                          AUDIT_HASH_LEN, SQLITE_STATIC);
                }
                rc = sqlite3_step(st);
                sqlite3_reset(st);
                if (rc != SQLITE_DONE) {
                        return -1;
                }
        }
        s->node_cnt = 0;
        return 0;
}

static int node_put(void *opaque, unsigned level, uint64_t index,
                    const uint8_t hash[AUDIT_HASH_LEN]) {
        audit_store_t *s = opaque;
        pend_node_t *n;

        if (level < NODE_LEVEL_MIN) {
                return 0; /* the row's leaf_hash, or rebuilt from those */
        }
        if (s->node_cnt == NODES_MAX && nodes_flush(s)) {
                return -1;
        }
        n        = &s->nodes[s->node_cnt++];
        n->level = level;
        n->idx   = index;
        memcpy(n->hash, hash, AUDIT_HASH_LEN);
        return 0;
}

static ab_err_t write_conflict(audit_store_t *s, const audit_event_t *ev,
                               int64_t leaf_index, char *errstr,
                               size_t errstr_size) {
        sqlite3_stmt *st = s->st[ST_CONFLICT];
        int rc;

        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        bind_text(st, 1, ev->id);
        bind_text(st, 2, ev->status);
        sqlite3_bind_int64(st, 3, leaf_index);
        bind_text(st, 4, ev->topic);
        sqlite3_bind_int(st, 5, ev->partition);
        sqlite3_bind_int64(st, 6, ev->offset);
        bind_int(st, 7, ev->received_at_ms, ev->received_at_ms == 0);
        if (ev->payload) {
                sqlite3_bind_text(st, 8, ev->payload, (int)ev->payload_len,
                                  SQLITE_STATIC);
        }
        bind_text(st, 9, ev->reason);
        sqlite3_bind_int64(st, 10, ab_time_now_ms());
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
                return db_err(s, "insert conflict", errstr, errstr_size);
        }
        return AB_OK;
}

/* The events.status CHECK's list, which the writer's connection does
 * not run (audit_store_open()), and the API's and the tools' choices. */
static const char *const statuses[] = {"accepted", "rejected", "deadletter",
                                       NULL};

const char *audit_store_status(const char *status) {
        int i;

        for (i = 0; status && statuses[i]; i++) {
                if (!strcmp(status, statuses[i])) {
                        return statuses[i];
                }
        }
        return NULL;
}

static void bind_str(sqlite3_stmt *st, int i, const char *s, size_t len) {
        if (s) {
                sqlite3_bind_text(st, i, s, (int)len, SQLITE_STATIC);
        } else {
                sqlite3_bind_null(st, i);
        }
}

/* One row of COLS_WRITTEN from parameter \p b on: every one bound, NULLs too
 * (the statement is reused without clearing). */
static void bind_row(sqlite3_stmt *st, int b, const pend_row_t *r) {
        const audit_event_t *ev = r->ev;

        sqlite3_bind_int64(st, b++, r->leaf);
        bind_text(st, b++, ev->id);
        bind_text(st, b++, ev->name);
        bind_text(st, b++, ev->prefix);
        bind_text(st, b++, ev->source);
        bind_text(st, b++, ev->company_id);
        bind_text(st, b++, ev->subject_id);
        bind_int(st, b++, ev->schema_version, ev->schema_version == 0);
        bind_text(st, b++, ev->occurred_at);
        bind_int(st, b++, ev->received_at_ms, ev->received_at_ms == 0);
        bind_text(st, b++, ev->topic);
        sqlite3_bind_int(st, b++, ev->partition);
        sqlite3_bind_int64(st, b++, ev->offset);
        bind_str(st, b++, ev->payload, ev->payload_len);
        bind_text(st, b++, ev->status);
        bind_text(st, b++, ev->reason);
        sqlite3_bind_blob(st, b++, r->hash, AUDIT_HASH_LEN, SQLITE_STATIC);
}

/* Inserts the waiting rows. OR ROLLBACK: write_event() found each one
 * new, so a constraint failing is an error that ends the transaction
 * anyway, and a multi-row statement that cannot abort alone needs no
 * statement journal. */
static ab_err_t rows_flush(audit_store_t *s, char *errstr,
                           size_t errstr_size) {
        static const char tuple[] = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
        sqlite3_stmt *st;
        size_t i = 0, j, n;
        int rc;

        while (i < s->row_cnt) {
                n  = chunk(s->row_cnt - i);
                st = multi_stmt(s, s->rows_st, n,
                                "INSERT OR ROLLBACK INTO events (" COLS_WRITTEN
                                ") VALUES ",
                                tuple);
                if (!st) {
                        return db_err(s, "prepare insert", errstr,
                                      errstr_size);
                }
                for (j = 0; j < n; j++, i++) {
                        bind_row(st, (int)(j * COL_CNT) + 1, &s->rows[i]);
                }
                rc = sqlite3_step(st);
                sqlite3_reset(st);
                if (rc != SQLITE_DONE) {
                        return db_err(s, "insert event", errstr, errstr_size);
                }
        }
        s->row_cnt = 0;
        memset(s->row_slot, 0, sizeof(s->row_slot));
        return AB_OK;
}

static size_t row_key(const audit_event_t *ev) {
        const unsigned char *p;
        uint32_t h = 2166136261u;

        for (p = (const unsigned char *)ev->id; *p; p++) {
                h = (h ^ *p) * 16777619u;
        }
        h = (h ^ 0xFF) * 16777619u;
        for (p = (const unsigned char *)ev->status; *p; p++) {
                h = (h ^ *p) * 16777619u;
        }
        return h & (sizeof(((audit_store_t *)0)->row_slot) - 1);
}

/* Whether (id, status) of \p ev waits in rows[]; else \p *slotp is
 * where it would go. */
static int row_waits(audit_store_t *s, const audit_event_t *ev,
                     size_t *slotp) {
        size_t k = row_key(ev), mask = sizeof(s->row_slot) - 1;
        const audit_event_t *o;

        for (; s->row_slot[k]; k = (k + 1) & mask) {
                o = s->rows[s->row_slot[k] - 1].ev;
                if (!strcmp(o->id, ev->id) && !strcmp(o->status, ev->status)) {
                        return 1;
                }
        }
        *slotp = k;
        return 0;
}

static ab_err_t write_event(audit_store_t *s, const audit_event_t *ev,
                            audit_store_outcome_t *outp, char *errstr,
                            size_t errstr_size) {
        sqlite3_stmt *st = s->st[ST_FIND];
        pend_row_t *r;
        size_t slot = 0;
        int64_t leaf;
        ab_err_t err;
        int rc;

        if (!ev->id || !ev->topic) {
                ab_errstr_set(errstr, errstr_size, "an event without %s",
                              ev->id ? "topic" : "id");
                return AB_ERR_INVALID;
        }
        if (ev->payload_len > INT32_MAX) {
                ab_errstr_set(errstr, errstr_size, "%s: payload too large",
                              ev->id);
                return AB_ERR_TOO_LARGE;
        }
        if (!audit_store_status(ev->status)) {
                ab_errstr_set(errstr, errstr_size,
                              "%s: status \"%s\" is not accepted, rejected "
                              "or deadletter",
                              ev->id, ev->status ? ev->status : "(null)");
                return AB_ERR_INVALID;
        }
        if (row_waits(s, ev, &slot)) {
                /* the same event twice in one batch: the first goes in,
                 * the second is then a duplicate or a conflict of it */
                if ((err = rows_flush(s, errstr, errstr_size))) {
                        return err;
                }
                row_waits(s, ev, &slot);
        }
        sqlite3_reset(st);
        bind_text(st, 1, ev->id);
        bind_text(st, 2, ev->status);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                leaf = sqlite3_column_int64(st, 0);
                if (same_content(st, ev)) {
                        *outp = AUDIT_STORE_DUPLICATE;
                        sqlite3_reset(st);
                        return AB_OK;
                }
                sqlite3_reset(st);
                *outp = AUDIT_STORE_CONFLICT;
                if ((err = write_conflict(s, ev, leaf, errstr, errstr_size))) {
                        return err;
                }
                s->conflicts++;
                return AB_OK;
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
                return db_err(s, "find", errstr, errstr_size);
        }
        r = &s->rows[s->row_cnt];
        if (ev->leaf_hash) {
                memcpy(r->hash, ev->leaf_hash, AUDIT_HASH_LEN);
        } else if ((err = audit_store_leaf_hash(ev, r->hash))) {
                ab_errstr_set(errstr, errstr_size, "leaf hash: %s",
                              ab_err2str(err));
                return err;
        }
        r->ev   = ev;
        r->leaf = (int64_t)s->m.size;
        if ((err = audit_merkle_append_store(&s->m, r->hash, node_put, s,
                                             errstr, errstr_size))) {
                if (err == AB_ERR_IO) {
                        return db_err(s, "insert node", errstr, errstr_size);
                }
                return err;
        }
        s->row_slot[slot] = (uint8_t)(++s->row_cnt);
        *outp             = AUDIT_STORE_WRITTEN;
        if (s->row_cnt == ROWS_MAX) {
                return rows_flush(s, errstr, errstr_size);
        }
        return AB_OK;
}

static ab_err_t write_pos(audit_store_t *s, const audit_store_pos_t *p,
                          char *errstr, size_t errstr_size) {
        sqlite3_stmt *st = s->st[ST_POS_PUT];
        int rc;

        sqlite3_reset(st);
        bind_text(st, 1, p->topic);
        sqlite3_bind_int(st, 2, p->partition);
        sqlite3_bind_int64(st, 3, p->next);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? AB_OK
                                 : db_err(s, "position", errstr, errstr_size);
}

static ab_err_t write_state(audit_store_t *s, char *errstr,
                            size_t errstr_size) {
        uint8_t buf[AUDIT_MERKLE_STATE_MAX];
        sqlite3_stmt *st = s->st[ST_STATE_PUT];
        size_t len;
        ab_err_t err;
        int rc;

        if ((err = audit_merkle_state_write(&s->m, buf, sizeof(buf), &len,
                                            errstr, errstr_size))) {
                return err;
        }
        sqlite3_reset(st);
        sqlite3_bind_blob(st, 1, buf, (int)len, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? AB_OK
                                 : db_err(s, "merkle state", errstr,
                                          errstr_size);
}

ab_err_t audit_store_write(audit_store_t *s, const audit_event_t *ev,
                           size_t ev_cnt, audit_store_outcome_t *out,
                           const audit_store_pos_t *pos, size_t pos_cnt,
                           char *errstr, size_t errstr_size) {
        audit_merkle_t saved;
        audit_store_outcome_t o = AUDIT_STORE_WRITTEN;
        uint64_t conflicts;
        ab_err_t err = AB_OK;
        size_t i;

        if (s->readonly) {
                ab_errstr_set(errstr, errstr_size, "%s: opened read-only",
                              s->path);
                return AB_ERR_INVALID;
        }
        if (!ev_cnt && !pos_cnt) {
                return AB_OK;
        }
        pthread_mutex_lock(&s->lock);
        saved     = s->m;
        conflicts = s->conflicts;
        if ((err = exec(s, "BEGIN IMMEDIATE", errstr, errstr_size))) {
                goto done;
        }
        for (i = 0; i < ev_cnt && !err; i++) {
                err = write_event(s, &ev[i], &o, errstr, errstr_size);
                if (out) {
                        out[i] = o;
                }
        }
        if (!err) {
                err = rows_flush(s, errstr, errstr_size);
        }
        if (!err && nodes_flush(s)) {
                err = db_err(s, "insert node", errstr, errstr_size);
        }
        for (i = 0; i < pos_cnt && !err; i++) {
                err = write_pos(s, &pos[i], errstr, errstr_size);
        }
        if (!err && s->m.size != saved.size) {
                err = write_state(s, errstr, errstr_size);
        }
        if (!err) {
                err = exec(s, "COMMIT", errstr, errstr_size);
        }
        if (err) {
                /* also when OR ROLLBACK has ended it already */
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
                s->m         = saved;
                s->conflicts = conflicts;
                s->row_cnt   = 0;
                s->node_cnt  = 0;
                memset(s->row_slot, 0, sizeof(s->row_slot));
        }
done:
        pthread_mutex_unlock(&s->lock);
        return err;
}

ab_err_t audit_store_position(audit_store_t *s, const char *topic,
                              int32_t partition, int64_t *nextp) {
        sqlite3_stmt *st = s->st[ST_POS_GET];
        ab_err_t err = AB_ERR_NOT_FOUND;
        int rc;

        pthread_mutex_lock(&s->lock);
        sqlite3_reset(st);
        bind_text(st, 1, topic);
        sqlite3_bind_int(st, 2, partition);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *nextp = sqlite3_column_int64(st, 0);
                err    = AB_OK;
        } else if (rc != SQLITE_DONE) {
                err = AB_ERR_IO;
        }
        sqlite3_reset(st);
        pthread_mutex_unlock(&s->lock);
        return err;
}

void audit_store_stats(audit_store_t *s, audit_store_stats_t *st) {
        pthread_mutex_lock(&s->lock);
        st->tree_size = s->m.size;
        st->conflicts = s->conflicts;
        pthread_mutex_unlock(&s->lock);
        memset(&st->wal, 0, sizeof(st->wal));
        if (s->wal) {
                audit_wal_stats(s->wal, &st->wal);
        }
}

ab_err_t audit_store_tree(audit_store_t *s, uint64_t *sizep,
                          uint8_t root[AUDIT_HASH_LEN]) {
        ab_err_t err;

        pthread_mutex_lock(&s->lock);
        *sizep = s->m.size;
        err    = audit_merkle_root(&s->m, root);
        pthread_mutex_unlock(&s->lock);
        return err;
}

/*
 * Retention
 */

/* ab_sha256(x): the payload digest a pruned row keeps (NULL stays NULL). */
static void sql_sha256(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
        uint8_t md[SHA256_DIGEST_LENGTH];
        const void *p;
        int n;

        (void)argc;
        if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
                sqlite3_result_null(ctx);
                return;
        }
        p = sqlite3_value_blob(argv[0]);
        n = sqlite3_value_bytes(argv[0]);
        SHA256(p ? p : (const void *)"", (size_t)n, md);
        sqlite3_result_blob(ctx, md, sizeof(md), SQLITE_TRANSIENT);
}

/* Only while retention is on: the rows still holding a payload, by
 * receipt, so a pass reads just what it prunes (rows arrive across
 * partitions, old and new interleaved: a walk in leaf order would stop
 * at the first young row or rescan the pruned ones). Off, the index is
 * dropped: one index less on every insert. */
ab_err_t audit_store_retention(audit_store_t *s, int on, char *errstr,
                               size_t errstr_size) {
        ab_err_t err;

        pthread_mutex_lock(&s->lock);
        err = exec(s,
                   on ? "CREATE INDEX IF NOT EXISTS events_unpruned ON events "
                        "(received_at) WHERE pruned_at IS NULL"
                      : "DROP INDEX IF EXISTS events_unpruned",
                   errstr, errstr_size);
        pthread_mutex_unlock(&s->lock);
        return err;
}

ab_err_t audit_store_prune(audit_store_t *s, int64_t cutoff_ms,
                           size_t max_rows, audit_store_prune_t *res,
                           char *errstr, size_t errstr_size) {
        static const char *const sql[] = {
            "UPDATE events SET payload_sha256 = ab_sha256(payload),"
            " payload = NULL, pruned_at = ?3 WHERE leaf_index IN"
            " (SELECT leaf_index FROM events INDEXED BY events_unpruned"
            "  WHERE pruned_at IS NULL AND received_at < ?1 LIMIT ?2)",
            /* A conflicting copy's payload ages like the rows' (not in
             * the tree: nothing to keep of it). Conflicts are few. */
            "UPDATE conflicts SET payload = NULL WHERE payload IS NOT NULL"
            " AND received_at < ?1",
        };
        sqlite3_stmt *st = NULL;
        uint64_t n[2] = {0, 0};
        ab_err_t err;
        size_t i;

        memset(res, 0, sizeof(*res));
        if (s->readonly) {
                ab_errstr_set(errstr, errstr_size, "%s: opened read-only",
                              s->path);
                return AB_ERR_INVALID;
        }
        if (!max_rows) {
                max_rows = 1000;
        }
        pthread_mutex_lock(&s->lock);
        if ((err = exec(s, "BEGIN IMMEDIATE", errstr, errstr_size))) {
                goto done;
        }
        for (i = 0; i < 2; i++) {
                if (sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL) !=
                    SQLITE_OK) {
                        err = db_err(s, "prune", errstr, errstr_size);
                        goto rollback;
                }
                sqlite3_bind_int64(st, 1, cutoff_ms);
                if (i == 0) {
                        sqlite3_bind_int64(st, 2, (sqlite3_int64)max_rows);
                        sqlite3_bind_int64(st, 3, ab_time_now_ms());
                }
                if (sqlite3_step(st) != SQLITE_DONE) {
                        err = db_err(s, "prune", errstr, errstr_size);
                        goto rollback;
                }
                n[i] = (uint64_t)sqlite3_changes(s->db);
                sqlite3_finalize(st);
                st = NULL;
        }
        if ((err = exec(s, "COMMIT", errstr, errstr_size))) {
                goto rollback;
        }
        res->rows      = n[0];
        res->conflicts = n[1];
        res->more      = n[0] == max_rows;
        goto done;
rollback:
        sqlite3_finalize(st);
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
done:
        pthread_mutex_unlock(&s->lock);
        return err;
}

/*
 * Reading
 */

static json_t *col_json_str(sqlite3_stmt *st, int i) {
        if (sqlite3_column_type(st, i) == SQLITE_NULL) {
                return json_null();
        }
        return json_stringn((const char *)sqlite3_column_text(st, i),
                            (size_t)sqlite3_column_bytes(st, i));
}

/* One row of COLS as the API shows it. */
static json_t *row_json(sqlite3_stmt *st) {
        char ts[40], hx[2 * AUDIT_HASH_LEN + 1];
        json_t *o, *payload = NULL;
        const char *p;

        o = json_object();
        if (!o) {
                return NULL;
        }
        json_object_set_new(o, "leafIndex",
                            json_integer(sqlite3_column_int64(st, 0)));
        json_object_set_new(o, "id", col_json_str(st, 1));
        json_object_set_new(o, "name", col_json_str(st, 2));
        json_object_set_new(o, "prefix", col_json_str(st, 3));
        json_object_set_new(o, "source", col_json_str(st, 4));
        json_object_set_new(o, "companyId", col_json_str(st, 5));
        json_object_set_new(o, "subjectId", col_json_str(st, 6));
        json_object_set_new(o, "schemaVersion",
                            sqlite3_column_type(st, 7) == SQLITE_NULL
                                ? json_null()
                                : json_integer(sqlite3_column_int64(st, 7)));
        json_object_set_new(o, "occurredAt", col_json_str(st, 8));
        if (sqlite3_column_type(st, 9) == SQLITE_NULL) {
                json_object_set_new(o, "receivedAt", json_null());
        } else {
                ab_time_format(sqlite3_column_int64(st, 9), ts, sizeof(ts));
                json_object_set_new(o, "receivedAt", json_string(ts));
        }
        json_object_set_new(o, "topic", col_json_str(st, 10));
        json_object_set_new(o, "partition",
                            json_integer(sqlite3_column_int64(st, 11)));
        json_object_set_new(o, "offset",
                            json_integer(sqlite3_column_int64(st, 12)));
        if (sqlite3_column_type(st, 13) != SQLITE_NULL) {
                p       = (const char *)sqlite3_column_text(st, 13);
                payload = json_loadb(p, (size_t)sqlite3_column_bytes(st, 13),
                                     JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
                if (!payload) {
                        payload = col_json_str(st, 13);
                }
        }
        json_object_set_new(o, "payload", payload ? payload : json_null());
        json_object_set_new(o, "status", col_json_str(st, 14));
        json_object_set_new(o, "reason", col_json_str(st, 15));
        if (sqlite3_column_bytes(st, 16) == AUDIT_HASH_LEN) {
                audit_merkle_hex(sqlite3_column_blob(st, 16), hx);
                json_object_set_new(o, "leafHash", json_string(hx));
        }
        if (sqlite3_column_type(st, 17) != SQLITE_NULL) {
                ab_time_format(sqlite3_column_int64(st, 17), ts, sizeof(ts));
                json_object_set_new(o, "pruned", json_true());
                json_object_set_new(o, "prunedAt", json_string(ts));
        }
        return o;
}

json_t *audit_store_query(audit_store_t *s, const audit_query_t *q,
                          int64_t *nextp, char *errstr, size_t errstr_size) {
        char sql[1024];
        size_t len;
        sqlite3_stmt *st = NULL;
        json_t *arr, *o;
        int n = 0, rc, b = 1, limit;
        int64_t last = -1;

        *nextp = -1;
        limit  = q->limit > 0 ? q->limit : 100;
        /* A time window alone: without statistics the planner would walk
         * the whole rowid range; the receivedAt index reads only the
         * window (then sorts it in leaf order). Any equality filter's
         * index (value, leaf_index) is better still. */
        len = (size_t)snprintf(
            sql, sizeof(sql), "SELECT " COLS " FROM events%s WHERE "
                              "leaf_index > ?",
            (q->since_ms || q->until_ms) && !q->company_id && !q->name &&
                    !q->prefix && !q->source && !q->status
                ? " INDEXED BY events_received"
                : "");
#define ADD(cond, clause)                                                      \
        if (cond) {                                                            \
                len += (size_t)snprintf(sql + len, sizeof(sql) - len,          \
                                        " AND " clause);                       \
        }
        ADD(q->company_id, "company_id = ?");
        ADD(q->name, "name = ?");
        ADD(q->prefix, "prefix = ?");
        ADD(q->source, "source = ?");
        ADD(q->status, "status = ?");
        ADD(q->since_ms, "received_at >= ?");
        ADD(q->until_ms, "received_at < ?");
#undef ADD
        snprintf(sql + len, sizeof(sql) - len,
                 " ORDER BY leaf_index LIMIT ?");
        if (!(arr = json_array())) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        pthread_mutex_lock(&s->lock);
        if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
                db_err(s, "query", errstr, errstr_size);
                goto fail;
        }
        sqlite3_bind_int64(st, b++, q->after);
        if (q->company_id) {
                bind_text(st, b++, q->company_id);
        }
        if (q->name) {
                bind_text(st, b++, q->name);
        }
        if (q->prefix) {
                bind_text(st, b++, q->prefix);
        }
        if (q->source) {
                bind_text(st, b++, q->source);
        }
        if (q->status) {
                bind_text(st, b++, q->status);
        }
        if (q->since_ms) {
                sqlite3_bind_int64(st, b++, q->since_ms);
        }
        if (q->until_ms) {
                sqlite3_bind_int64(st, b++, q->until_ms);
        }
        /* one more than asked: whether a next page exists */
        sqlite3_bind_int(st, b++, limit + 1);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (n == limit) {
                        *nextp = last;
                        break;
                }
                last = sqlite3_column_int64(st, 0);
                if (!(o = row_json(st)) || json_array_append_new(arr, o)) {
                        ab_errstr_set(errstr, errstr_size, "out of memory");
                        goto fail;
                }
                n++;
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
                db_err(s, "query", errstr, errstr_size);
                goto fail;
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->lock);
        return arr;
fail:
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->lock);
        json_decref(arr);
        return NULL;
}

json_t *audit_store_get(audit_store_t *s, const char *id, char *errstr,
                        size_t errstr_size) {
        sqlite3_stmt *st = NULL;
        json_t *arr, *o;
        int rc;

        if (!(arr = json_array())) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        pthread_mutex_lock(&s->lock);
        if (sqlite3_prepare_v2(s->db,
                               "SELECT " COLS " FROM events WHERE id = ?1 "
                               "ORDER BY leaf_index",
                               -1, &st, NULL) != SQLITE_OK) {
                db_err(s, "get", errstr, errstr_size);
                goto fail;
        }
        bind_text(st, 1, id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (!(o = row_json(st)) || json_array_append_new(arr, o)) {
                        ab_errstr_set(errstr, errstr_size, "out of memory");
                        goto fail;
                }
        }
        if (rc != SQLITE_DONE) {
                db_err(s, "get", errstr, errstr_size);
                goto fail;
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->lock);
        return arr;
fail:
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->lock);
        json_decref(arr);
        return NULL;
}

static int node_get(void *opaque, unsigned level, uint64_t index,
                    uint8_t out[AUDIT_HASH_LEN]);

/* A node below NODE_LEVEL_MIN: the hash of its 2^level leaves, read
 * again (at most 8: a proof reads at most 15 leaves more). Locked. */
static int node_rebuild(audit_store_t *s, unsigned level, uint64_t index,
                        uint8_t out[AUDIT_HASH_LEN]) {
        uint8_t h[1 << (NODE_LEVEL_MIN - 1)][AUDIT_HASH_LEN];
        size_t n = (size_t)1 << level, i;

        for (i = 0; i < n; i++) {
                if (node_get(s, 0, (index << level) + i, h[i])) {
                        return -1;
                }
        }
        for (; n > 1; n /= 2) {
                for (i = 0; i < n / 2; i++) {
                        if (audit_merkle_node_hash(h[2 * i], h[2 * i + 1],
                                                   h[i])) {
                                return -1;
                        }
                }
        }
        memcpy(out, h[0], AUDIT_HASH_LEN);
        return 0;
}

/* Called with the lock held. */
static int node_get(void *opaque, unsigned level, uint64_t index,
                    uint8_t out[AUDIT_HASH_LEN]) {
        audit_store_t *s = opaque;
        sqlite3_stmt *st;
        int rc, ret = -1;

        if (level > 0 && level < NODE_LEVEL_MIN) {
                return node_rebuild(s, level, index, out);
        }
        if (level == 0) {
                st = s->st[ST_LEAF_GET];
                sqlite3_reset(st);
                sqlite3_bind_int64(st, 1, (int64_t)index);
        } else {
                st = s->st[ST_NODE_GET];
                sqlite3_reset(st);
                sqlite3_bind_int(st, 1, (int)level);
                sqlite3_bind_int64(st, 2, (int64_t)index);
        }
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == AUDIT_HASH_LEN) {
                memcpy(out, sqlite3_column_blob(st, 0), AUDIT_HASH_LEN);
                ret = 0;
        }
        sqlite3_reset(st);
        return ret;
}

ab_err_t audit_store_proof(audit_store_t *s, uint64_t index, uint64_t size,
                           audit_merkle_proof_t *proof,
                           uint8_t leaf[AUDIT_HASH_LEN], char *errstr,
                           size_t errstr_size) {
        ab_err_t err;

        pthread_mutex_lock(&s->lock);
        if (!size) {
                size = s->m.size;
        }
        if (index >= size || size > s->m.size) {
                ab_errstr_set(errstr, errstr_size,
                              "leaf %" PRIu64 " is not in a tree of %" PRIu64,
                              index, size);
                err = AB_ERR_NOT_FOUND;
        } else if (node_get(s, 0, index, leaf)) {
                err = db_err(s, "leaf", errstr, errstr_size);
        } else {
                err = audit_merkle_inclusion_proof_nodes(
                    index, size, node_get, s, proof, errstr, errstr_size);
        }
        pthread_mutex_unlock(&s->lock);
        return err;
}

ab_err_t audit_store_consistency(audit_store_t *s, uint64_t size1,
                                 uint64_t size2, audit_merkle_proof_t *proof,
                                 char *errstr, size_t errstr_size) {
        ab_err_t err;

        pthread_mutex_lock(&s->lock);
        if (!size1 || size1 > size2 || size2 > s->m.size) {
                ab_errstr_set(errstr, errstr_size,
                              "no consistency proof from %" PRIu64 " to %" PRIu64
                              " in a tree of %" PRIu64,
                              size1, size2, s->m.size);
                err = AB_ERR_NOT_FOUND;
        } else {
                err = audit_merkle_consistency_proof_nodes(
                    size1, size2, node_get, s, proof, errstr, errstr_size);
        }
        pthread_mutex_unlock(&s->lock);
        return err;
}

ab_err_t audit_store_checkpoint_add(audit_store_t *s, uint64_t size,
                                    const uint8_t root[AUDIT_HASH_LEN],
                                    const char *note, char *errstr,
                                    size_t errstr_size) {
        sqlite3_stmt *st = NULL;
        ab_err_t err = AB_OK;

        pthread_mutex_lock(&s->lock);
        if (sqlite3_prepare_v2(s->db,
                               "INSERT INTO checkpoints (tree_size, root, "
                               "note, created_at) VALUES (?1, ?2, ?3, ?4)",
                               -1, &st, NULL) != SQLITE_OK) {
                err = db_err(s, "checkpoint", errstr, errstr_size);
        } else {
                sqlite3_bind_int64(st, 1, (int64_t)size);
                sqlite3_bind_blob(st, 2, root, AUDIT_HASH_LEN, SQLITE_STATIC);
                bind_text(st, 3, note);
                sqlite3_bind_int64(st, 4, ab_time_now_ms());
                if (sqlite3_step(st) != SQLITE_DONE) {
                        err = db_err(s, "checkpoint", errstr, errstr_size);
                }
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->lock);
        return err;
}

ab_err_t audit_store_checkpoint_latest(audit_store_t *s, char **notep,
                                       uint64_t *sizep,
                                       uint8_t root[AUDIT_HASH_LEN],
                                       char *errstr, size_t errstr_size) {
        sqlite3_stmt *st = NULL;
        ab_err_t err = AB_ERR_NOT_FOUND;
        int rc;

        *notep = NULL;
        pthread_mutex_lock(&s->lock);
        if (sqlite3_prepare_v2(s->db,
                               "SELECT note, tree_size, root FROM checkpoints "
                               "ORDER BY seq DESC LIMIT 1",
                               -1, &st, NULL) != SQLITE_OK) {
                err = db_err(s, "checkpoint", errstr, errstr_size);
        } else if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                *notep = strdup((const char *)sqlite3_column_text(st, 0));
                *sizep = (uint64_t)sqlite3_column_int64(st, 1);
                err    = *notep ? AB_OK : AB_ERR_NOMEM;
                if (sqlite3_column_bytes(st, 2) == AUDIT_HASH_LEN) {
                        memcpy(root, sqlite3_column_blob(st, 2),
                               AUDIT_HASH_LEN);
                } else {
                        memset(root, 0, AUDIT_HASH_LEN);
                }
        } else if (rc != SQLITE_DONE) {
                err = db_err(s, "checkpoint", errstr, errstr_size);
        } else {
                ab_errstr_set(errstr, errstr_size, "no checkpoint yet");
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->lock);
        return err;
}

/* The latest checkpoint's size and root (size 0: none); lock held. */
static ab_err_t checkpoint_latest(audit_store_t *s, uint64_t *sizep,
                                  uint8_t root[AUDIT_HASH_LEN], char *errstr,
                                  size_t errstr_size) {
        sqlite3_stmt *st;
        ab_err_t err = AB_OK;
        int rc;

        *sizep = 0;
        if (sqlite3_prepare_v2(s->db,
                               "SELECT tree_size, root FROM checkpoints "
                               "ORDER BY seq DESC LIMIT 1",
                               -1, &st, NULL) != SQLITE_OK) {
                return db_err(s, "checkpoint", errstr, errstr_size);
        }
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 1) == AUDIT_HASH_LEN) {
                *sizep = (uint64_t)sqlite3_column_int64(st, 0);
                memcpy(root, sqlite3_column_blob(st, 1), AUDIT_HASH_LEN);
        } else if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
                err = db_err(s, "checkpoint", errstr, errstr_size);
        }
        sqlite3_finalize(st);
        return err;
}

static const char *col_str(sqlite3_stmt *st, int i) {
        return sqlite3_column_type(st, i) == SQLITE_NULL
                   ? NULL
                   : (const char *)sqlite3_column_text(st, i);
}

/* The event of a COLS row, borrowing the statement's strings. */
static void ev_from_row(sqlite3_stmt *st, audit_event_t *ev) {
        memset(ev, 0, sizeof(*ev));
        ev->id             = col_str(st, 1);
        ev->name           = col_str(st, 2);
        ev->prefix         = col_str(st, 3);
        ev->source         = col_str(st, 4);
        ev->company_id     = col_str(st, 5);
        ev->subject_id     = col_str(st, 6);
        ev->schema_version = sqlite3_column_int(st, 7);
        ev->occurred_at    = col_str(st, 8);
        ev->received_at_ms = sqlite3_column_int64(st, 9);
        ev->topic          = col_str(st, 10);
        ev->partition      = sqlite3_column_int(st, 11);
        ev->offset         = sqlite3_column_int64(st, 12);
        ev->payload        = col_str(st, 13);
        ev->payload_len    = (size_t)sqlite3_column_bytes(st, 13);
        ev->status         = col_str(st, 14);
        ev->reason         = col_str(st, 15);
}

ab_err_t audit_store_leaf_at(audit_store_t *s, uint64_t index, uint8_t **bufp,
                             size_t *lenp, char *errstr, size_t errstr_size) {
        sqlite3_stmt *st = NULL;
        audit_event_t ev;
        ab_err_t err;
        int rc;

        pthread_mutex_lock(&s->lock);
        if (sqlite3_prepare_v2(s->db,
                               "SELECT " COLS " FROM events WHERE leaf_index "
                               "= ?1",
                               -1, &st, NULL) != SQLITE_OK) {
                err = db_err(s, "leaf", errstr, errstr_size);
                goto done;
        }
        sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_type(st, 17) != SQLITE_NULL) {
                ab_errstr_set(errstr, errstr_size,
                              "leaf %" PRIu64 " was pruned: only its hash "
                              "is kept",
                              index);
                err = AB_ERR_NOT_FOUND;
        } else if (rc == SQLITE_ROW) {
                ev_from_row(st, &ev);
                if ((err = audit_store_leaf_data(&ev, bufp, lenp))) {
                        ab_errstr_set(errstr, errstr_size, "leaf data: %s",
                                      ab_err2str(err));
                }
        } else if (rc == SQLITE_DONE) {
                ab_errstr_set(errstr, errstr_size, "no leaf %" PRIu64, index);
                err = AB_ERR_NOT_FOUND;
        } else {
                err = db_err(s, "leaf", errstr, errstr_size);
        }
done:
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->lock);
        return err;
}

/* The root at \p size leaves of \p m, when \p m has just reached it,
 * against \p root. */
static ab_err_t head_check(const audit_merkle_t *m, uint64_t size,
                           const uint8_t *root, const char *what,
                           char *errstr, size_t errstr_size) {
        uint8_t hash[AUDIT_HASH_LEN];
        ab_err_t err;

        if (!root || m->size != size) {
                return AB_OK;
        }
        if ((err = audit_merkle_root(m, hash))) {
                return err;
        }
        if (memcmp(hash, root, AUDIT_HASH_LEN)) {
                ab_errstr_set(errstr, errstr_size,
                              "%s (%" PRIu64 " leaves) signed another root "
                              "than the rows give",
                              what, size);
                return AB_ERR_INVALID;
        }
        return AB_OK;
}

ab_err_t audit_store_verify(audit_store_t *s, uint64_t anchor_size,
                            const uint8_t *anchor_root, uint64_t *sizep,
                            uint64_t *prunedp, char *errstr,
                            size_t errstr_size) {
        sqlite3_stmt *st = NULL;
        audit_merkle_t m;
        audit_event_t ev;
        uint8_t hash[AUDIT_HASH_LEN], want[AUDIT_HASH_LEN];
        uint8_t cp_root[AUDIT_HASH_LEN];
        uint64_t cp_size = 0, pruned = 0;
        ab_err_t err = AB_OK;
        int64_t idx;
        int rc;

        audit_merkle_init(&m);
        pthread_mutex_lock(&s->lock);
        /* One read transaction: rows, state and checkpoint of one commit,
         * whatever a running service adds meanwhile. */
        if ((err = exec(s, "BEGIN", errstr, errstr_size))) {
                pthread_mutex_unlock(&s->lock);
                return err;
        }
        if ((err = load_state(s, errstr, errstr_size)) ||
            (err = checkpoint_latest(s, &cp_size, cp_root, errstr,
                                     errstr_size))) {
                goto done;
        }
        if (cp_size > s->m.size) {
                ab_errstr_set(errstr, errstr_size,
                              "the latest checkpoint has %" PRIu64
                              " leaves, the tree only %" PRIu64,
                              cp_size, s->m.size);
                err = AB_ERR_INVALID;
                goto done;
        }
        if (sqlite3_prepare_v2(s->db,
                               "SELECT " COLS " FROM events ORDER BY "
                               "leaf_index",
                               -1, &st, NULL) != SQLITE_OK) {
                err = db_err(s, "verify", errstr, errstr_size);
                goto done;
        }
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                idx = sqlite3_column_int64(st, 0);
                ev_from_row(st, &ev);
                if ((uint64_t)idx != m.size) {
                        ab_errstr_set(errstr, errstr_size,
                                      "row leaf %" PRId64 " (id %s): expected "
                                      "leaf %" PRIu64 " (a row is missing)",
                                      idx, ev.id ? ev.id : "?", m.size);
                        err = AB_ERR_INVALID;
                        goto done;
                }
                if (sqlite3_column_type(st, 17) != SQLITE_NULL) {
                        /* Pruned: only the hash is left to go on. The
                         * root still catches a changed or removed leaf;
                         * a mark no prune could have set (on a row less
                         * than a day old then, or with a payload left)
                         * is tampering that would hide a changed row. */
                        if (sqlite3_column_type(st, 9) == SQLITE_NULL ||
                            sqlite3_column_int64(st, 17) -
                                    sqlite3_column_int64(st, 9) <
                                AUDIT_STORE_RETENTION_MIN_MS ||
                            sqlite3_column_type(st, 13) != SQLITE_NULL ||
                            sqlite3_column_bytes(st, 16) != AUDIT_HASH_LEN) {
                                ab_errstr_set(errstr, errstr_size,
                                              "row leaf %" PRId64 " (id %s, "
                                              "%s): marked pruned, but no "
                                              "prune left it so",
                                              idx, ev.id ? ev.id : "?",
                                              ev.status ? ev.status : "?");
                                err = AB_ERR_INVALID;
                                goto done;
                        }
                        memcpy(hash, sqlite3_column_blob(st, 16),
                               AUDIT_HASH_LEN);
                        pruned++;
                } else if ((err = audit_store_leaf_hash(&ev, hash))) {
                        ab_errstr_set(errstr, errstr_size, "leaf hash: %s",
                                      ab_err2str(err));
                        goto done;
                } else if (sqlite3_column_bytes(st, 16) != AUDIT_HASH_LEN ||
                    memcmp(sqlite3_column_blob(st, 16), hash,
                           AUDIT_HASH_LEN)) {
                        ab_errstr_set(errstr, errstr_size,
                                      "row leaf %" PRId64 " (id %s, %s): its "
                                      "content does not match its leaf hash",
                                      idx, ev.id ? ev.id : "?",
                                      ev.status ? ev.status : "?");
                        err = AB_ERR_INVALID;
                        goto done;
                }
                if ((err = audit_merkle_append(&m, hash, errstr,
                                               errstr_size))) {
                        goto done;
                }
                if ((err = head_check(&m, cp_size, cp_size ? cp_root : NULL,
                                      "the latest checkpoint", errstr,
                                      errstr_size)) ||
                    (err = head_check(&m, anchor_size, anchor_root,
                                      "the checkpoint given", errstr,
                                      errstr_size))) {
                        goto done;
                }
        }
        if (rc != SQLITE_DONE) {
                err = db_err(s, "verify", errstr, errstr_size);
                goto done;
        }
        if (anchor_root && anchor_size > m.size) {
                ab_errstr_set(errstr, errstr_size,
                              "the checkpoint given has %" PRIu64
                              " leaves, the rows only %" PRIu64
                              " (rows were removed or the database rolled "
                              "back)",
                              anchor_size, m.size);
                err = AB_ERR_INVALID;
                goto done;
        }
        if (m.size != s->m.size) {
                ab_errstr_set(errstr, errstr_size,
                              "%" PRIu64 " rows but the stored tree has %" PRIu64
                              " leaves",
                              m.size, s->m.size);
                err = AB_ERR_INVALID;
                goto done;
        }
        if ((err = audit_merkle_root(&m, hash)) ||
            (err = audit_merkle_root(&s->m, want))) {
                goto done;
        }
        if (memcmp(hash, want, AUDIT_HASH_LEN)) {
                ab_errstr_set(errstr, errstr_size,
                              "the rows' root differs from the stored tree's");
                err = AB_ERR_INVALID;
                goto done;
        }
        *sizep = m.size;
        if (prunedp) {
                *prunedp = pruned;
        }
done:
        sqlite3_finalize(st);
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
        pthread_mutex_unlock(&s->lock);
        return err;
}
