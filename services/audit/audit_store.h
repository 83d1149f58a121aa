/* aetherbus - Apache-2.0
 *
 * audit_store: the durable EventLog in SQLite. Owns the schema and its
 * migrations, the lock that keeps a second instance off the same file,
 * one row per event (accepted, rejected or dead-lettered), the conflicts
 * of an id seen again with other content, the consume positions and the
 * Merkle state, all written in ONE transaction per batch so a crash at
 * any point leaves rows, positions and tree agreeing. Also the queries
 * of the admin API, proofs, checkpoints and the offline verify.
 *
 * A row is identified by (id, status): the same id may be rejected first
 * and accepted later, or accepted and then dead-lettered; each is a fact
 * of its own. Its leaf is audit_store_leaf_data() of every stored column.
 *
 * Threads: one writer (the consume loop) and any number of readers (HTTP
 * threads); a mutex serialises them over one connection.
 */
#ifndef AUDIT_STORE_H
#define AUDIT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ab_err.h"
#include "audit_merkle.h"
#include "audit_wal.h"

#define AUDIT_STORE_SCHEMA_VERSION 2

typedef struct audit_store_s audit_store_t;

/** One event row; strings may be NULL but id, status and topic. */
typedef struct audit_event_s {
        const char *id;
        const char *name;
        const char *prefix;
        const char *source;
        const char *company_id;
        const char *subject_id;
        int schema_version;      /**< 0: unknown (some rejected items) */
        const char *occurred_at; /**< ISO-8601 as sent */
        int64_t received_at_ms;  /**< 0: unknown */
        const char *topic;
        int32_t partition;
        int64_t offset;
        const char *payload;     /**< JSON text */
        size_t payload_len;
        const char *status;      /**< accepted|rejected|deadletter */
        const char *reason;
        /** audit_store_leaf_hash() of this event, computed by the caller
         *  off the writer's thread; NULL: the write computes it. */
        const uint8_t *leaf_hash;
} audit_event_t;

/**
 * @returns the row status \p status names ("accepted", "rejected",
 *          "deadletter"; a static string), or NULL for anything else (also
 *          NULL): the one list the store, the API and the tools check.
 */
const char *audit_store_status(const char *status);

/** What audit_store_write() did with one event. */
typedef enum {
        AUDIT_STORE_WRITTEN = 0, /**< a new row and leaf */
        AUDIT_STORE_DUPLICATE,   /**< same (id, status), same content */
        AUDIT_STORE_CONFLICT,    /**< same (id, status), other content */
} audit_store_outcome_t;

/** A consume position: the next offset to read. */
typedef struct audit_store_pos_s {
        const char *topic;
        int32_t partition;
        int64_t next;
} audit_store_pos_t;

/** audit_store_open() flags. */
#define AUDIT_STORE_READONLY 0x1 /**< no lock, no migration, no writes
                                      (verify next to a running service) */

/**
 * @brief Opens (creates, migrates) \p path and takes its lock
 *        (<path>.lock): a second opener gets AB_ERR_UNAVAILABLE saying
 *        another instance holds it.
 * @returns the store or NULL with errstr (*errp the code; may be NULL).
 */
audit_store_t *audit_store_open(const char *path, int flags, ab_err_t *errp,
                                char *errstr, size_t errstr_size);

void audit_store_close(audit_store_t *s);

/**
 * @brief Writes \p ev_cnt events (outcomes into \p out, may be NULL) and
 *        \p pos_cnt positions (never moved backwards), and the Merkle
 *        state, in one transaction. On error nothing is written and the
 *        in-memory tree is as before.
 */
ab_err_t audit_store_write(audit_store_t *s, const audit_event_t *ev,
                           size_t ev_cnt, audit_store_outcome_t *out,
                           const audit_store_pos_t *pos, size_t pos_cnt,
                           char *errstr, size_t errstr_size);

/** @returns AB_OK with *nextp, or AB_ERR_NOT_FOUND (never read). */
ab_err_t audit_store_position(audit_store_t *s, const char *topic,
                              int32_t partition, int64_t *nextp);

/** Counters since the file was created. */
typedef struct audit_store_stats_s {
        uint64_t tree_size;
        uint64_t conflicts;
        audit_wal_stats_t wal;  /**< since the open; zero: read-only */
} audit_store_stats_t;

void audit_store_stats(audit_store_t *s, audit_store_stats_t *st);

/** @brief The tree as committed (size and root). */
ab_err_t audit_store_tree(audit_store_t *s, uint64_t *sizep,
                          uint8_t root[AUDIT_HASH_LEN]);

/**
 * @brief The bytes a row's leaf hashes: version 0x01, then each column
 *        as a 4-byte big-endian length and its bytes (0xFFFFFFFF: NULL),
 *        numbers as decimal text. \p *bufp is malloc'ed.
 */
ab_err_t audit_store_leaf_data(const audit_event_t *ev, uint8_t **bufp,
                               size_t *lenp);

/** @brief SHA-256(0x00 || audit_store_leaf_data()): the row's leaf. */
ab_err_t audit_store_leaf_hash(const audit_event_t *ev,
                               uint8_t out[AUDIT_HASH_LEN]);

/**
 * @brief audit_store_leaf_data() of the stored row at leaf \p index (what
 *        a verifier hashes itself instead of trusting the leaf hash).
 * @returns AB_OK with \p *bufp malloc'ed, AB_ERR_NOT_FOUND, or an error
 *          with errstr.
 */
ab_err_t audit_store_leaf_at(audit_store_t *s, uint64_t index, uint8_t **bufp,
                             size_t *lenp, char *errstr, size_t errstr_size);

/** The shortest retention: a row pruned younger than this was not
 *  pruned by retention (verify says so). */
#define AUDIT_STORE_RETENTION_MIN_MS 86400000

/**
 * @brief Retention on (\p on): the index of the rows still holding a
 *        payload, by receipt, is built (once: a while on a large log) so
 *        each audit_store_prune() reads only what it prunes; off, it is
 *        dropped (one index less per insert).
 */
ab_err_t audit_store_retention(audit_store_t *s, int on, char *errstr,
                               size_t errstr_size);

/** What one audit_store_prune() did. */
typedef struct audit_store_prune_s {
        uint64_t rows;      /**< rows whose payload went */
        uint64_t conflicts; /**< conflict copies whose payload went */
        int more;           /**< stopped at max_rows: call again */
} audit_store_prune_t;

/**
 * @brief Retention (after audit_store_retention(s, 1)): in one
 *        transaction, replaces the payload of up to \p max_rows rows (0:
 *        1000) received before \p cutoff_ms by its SHA-256, keeping the
 *        row, its leaf hash and every other column, so proofs, verify and
 *        duplicate detection still hold; conflict copies that old lose
 *        their payload too. A row of unknown receipt is kept whole.
 * @returns AB_OK with \p res, or an error with errstr (nothing changed).
 */
ab_err_t audit_store_prune(audit_store_t *s, int64_t cutoff_ms,
                           size_t max_rows, audit_store_prune_t *res,
                           char *errstr, size_t errstr_size);

/** Query filters; NULL / 0 fields do not filter. */
typedef struct audit_query_s {
        const char *company_id;
        const char *name;
        const char *prefix;
        const char *source;
        const char *status;
        int64_t since_ms;    /**< receivedAt >= */
        int64_t until_ms;    /**< receivedAt < (0: none) */
        int64_t after;       /**< leaf index > (cursor); -1: from the start */
        int limit;
} audit_query_t;

/**
 * @brief Rows matching \p q in leaf order, as JSON objects; *nextp the
 *        last leaf index when more may follow, else -1.
 * @returns a new array or NULL with errstr.
 */
json_t *audit_store_query(audit_store_t *s, const audit_query_t *q,
                          int64_t *nextp, char *errstr, size_t errstr_size);

/**
 * @brief The rows of event \p id (one per status), oldest first.
 * @returns a new array (empty when unknown) or NULL with errstr.
 */
json_t *audit_store_get(audit_store_t *s, const char *id, char *errstr,
                        size_t errstr_size);

/**
 * @brief Inclusion proof of leaf \p index in the tree of \p size (0: the
 *        current size), from stored nodes; *leafp its leaf hash.
 */
ab_err_t audit_store_proof(audit_store_t *s, uint64_t index, uint64_t size,
                           audit_merkle_proof_t *proof,
                           uint8_t leaf[AUDIT_HASH_LEN], char *errstr,
                           size_t errstr_size);

/**
 * @brief Consistency proof from the tree of \p size1 to the tree of
 *        \p size2 (0 < size1 <= size2 <= the current size), from stored
 *        nodes.
 * @returns AB_OK, AB_ERR_NOT_FOUND when a size is out of range.
 */
ab_err_t audit_store_consistency(audit_store_t *s, uint64_t size1,
                                 uint64_t size2, audit_merkle_proof_t *proof,
                                 char *errstr, size_t errstr_size);

/** @brief Stores a checkpoint \p note of the tree at \p size. */
ab_err_t audit_store_checkpoint_add(audit_store_t *s, uint64_t size,
                                    const uint8_t root[AUDIT_HASH_LEN],
                                    const char *note, char *errstr,
                                    size_t errstr_size);

/**
 * @brief The latest checkpoint: *notep malloc'ed, *sizep its tree size,
 *        \p root its root hash.
 * @returns AB_OK or AB_ERR_NOT_FOUND.
 */
ab_err_t audit_store_checkpoint_latest(audit_store_t *s, char **notep,
                                       uint64_t *sizep,
                                       uint8_t root[AUDIT_HASH_LEN],
                                       char *errstr, size_t errstr_size);

/**
 * @brief Recomputes every leaf from its row and the tree from the
 *        leaves, and compares with the stored hashes and state, the
 *        latest stored checkpoint and, when \p anchor_root is not NULL, a
 *        tree head from outside the database (\p anchor_size leaves, e.g.
 *        a checkpoint read back from Kafka): the one check a rewritten or
 *        rolled-back database cannot pass.
 *        A pruned row's leaf cannot be recomputed: its stored hash is
 *        taken (the roots still catch it changed or removed), and \p
 *        *prunedp (may be NULL) counts them.
 * @returns AB_OK, or AB_ERR_INVALID with errstr naming the first row
 *          (leaf index and id) or the tree head that does not match.
 */
ab_err_t audit_store_verify(audit_store_t *s, uint64_t anchor_size,
                            const uint8_t *anchor_root, uint64_t *sizep,
                            uint64_t *prunedp, char *errstr,
                            size_t errstr_size);

#endif
