/* aetherbus - Apache-2.0
 *
 * audit_wal: checkpoints the EventLog's write-ahead log on a thread and
 * a connection of its own, so the writer does not copy the WAL into the
 * database and sync it inside a commit (SQLite's autocheckpoint does it
 * in the committing thread). Bounded: when the log outgrows four times
 * the start size (the thread cannot keep up, or a passive checkpoint
 * never finds the log quiet), the writer checkpoints it itself, as
 * SQLite's autocheckpoint would.
 */
#ifndef AUDIT_WAL_H
#define AUDIT_WAL_H

#include <stdint.h>

#include <sqlite3.h>

#include "ab_err.h"

typedef struct audit_wal_s audit_wal_t;

/** What the checkpointer did, since it started. */
typedef struct audit_wal_stats_s {
        uint64_t checkpoints;  /**< by the thread */
        uint64_t inline_checkpoints; /**< by the writer, over the bound */
        int frames;            /**< WAL frames after the last commit */
} audit_wal_stats_t;

/**
 * @brief Takes over the checkpoints of \p writer's database \p path
 *        (WAL mode): turns its autocheckpoint off and starts the thread,
 *        which checkpoints (PASSIVE) once a commit leaves \p pages
 *        frames or more in the log.
 * @returns the checkpointer (audit_wal_stop() before closing \p writer),
 *          or NULL with errstr.
 */
audit_wal_t *audit_wal_start(sqlite3 *writer, const char *path, int pages,
                             char *errstr, size_t errstr_size);

void audit_wal_stats(audit_wal_t *w, audit_wal_stats_t *st);

/** @brief Stops the thread and closes its connection; \p writer gets its
 *         autocheckpoint back (its close then checkpoints the rest). */
void audit_wal_stop(audit_wal_t *w);

#endif
