/* aetherbus - Apache-2.0
 *
 * audit_wal: the WAL checkpointer, see audit_wal.h. In the writer, the
 * checkpoint (every 10,000 pages: the database pages of ~80 MiB of log
 * written back and synced) was 6 % of its CPU and most of its waits on
 * the disk; here it overlaps the commits. A passive checkpoint takes no
 * lock the writer waits for, so the writer is never held up by it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ab_log.h"
#include "audit_wal.h"

/* Over this many times the start size the writer checkpoints itself. */
#define BOUND 4

struct audit_wal_s {
        sqlite3 *writer;
        sqlite3 *db;          /* the thread's */
        int pages;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int frames;           /* after the last commit */
        /* of the log as the last checkpoint left it: the next starts
         * `pages` later, so a page several commits wrote goes back once
         * (a restarted log starts again from 0) */
        int backfilled;
        int due;              /* a checkpoint is wanted */
        int quit;
        uint64_t checkpoints;
        uint64_t inline_checkpoints;
};

/* After each commit of the writer, on its thread, no lock held. */
static int wal_hook(void *opaque, sqlite3 *db, const char *name,
                    int frames) {
        audit_wal_t *w = opaque;
        int inline_ckpt = 0;

        /* the log restarts at the next commit once all of it is back in
         * the database; BUSY: the thread is checkpointing, ask again at
         * the next commit */
        if (frames >= BOUND * w->pages) {
                inline_ckpt = sqlite3_wal_checkpoint_v2(
                                  db, name, SQLITE_CHECKPOINT_PASSIVE, NULL,
                                  NULL) == SQLITE_OK;
        }
        pthread_mutex_lock(&w->lock);
        if (frames < w->frames || inline_ckpt) {
                w->backfilled = 0; /* the log restarted, or will */
        }
        w->frames = frames;
        if (inline_ckpt) {
                w->inline_checkpoints++;
        } else if (frames >= w->backfilled + w->pages && !w->due) {
                w->due = 1;
                pthread_cond_signal(&w->cond);
        }
        pthread_mutex_unlock(&w->lock);
        return SQLITE_OK;
}

static void *wal_main(void *arg) {
        audit_wal_t *w = arg;
        int rc, log = 0, done = 0;

        pthread_setname_np(pthread_self(), "audit-wal");
        pthread_mutex_lock(&w->lock);
        for (;;) {
                while (!w->quit && !w->due) {
                        pthread_cond_wait(&w->cond, &w->lock);
                }
                if (w->quit) {
                        break;
                }
                pthread_mutex_unlock(&w->lock);
                rc = sqlite3_wal_checkpoint_v2(w->db, "main",
                                               SQLITE_CHECKPOINT_PASSIVE,
                                               &log, &done);
                if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
                        /* the next commit over the size asks again; the
                         * writer's bound keeps the log from growing on */
                        ab_warn("audit", "WAL checkpoint: %s",
                                sqlite3_errmsg(w->db));
                }
                pthread_mutex_lock(&w->lock);
                w->due = 0;
                w->checkpoints++;
                if (rc == SQLITE_OK && done <= w->frames) {
                        w->backfilled = done;
                }
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

audit_wal_t *audit_wal_start(sqlite3 *writer, const char *path, int pages,
                             char *errstr, size_t errstr_size) {
        audit_wal_t *w;
        int rc;

        if (!(w = calloc(1, sizeof(*w)))) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        w->writer = writer;
        w->pages  = pages > 0 ? pages : 1;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        if (sqlite3_open_v2(path, &w->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                            NULL) != SQLITE_OK) {
                ab_errstr_set(errstr, errstr_size,
                              "%s: checkpoint connection: %s", path,
                              w->db ? sqlite3_errmsg(w->db) : "out of memory");
                goto fail;
        }
        /* a checkpoint must not be this connection's autocheckpoint */
        sqlite3_wal_autocheckpoint(w->db, 0);
        /* a connection that never read the file does not know it is in
         * WAL mode: its checkpoints would do nothing (log -1) */
        if (sqlite3_exec(w->db, "SELECT count(*) FROM sqlite_schema", NULL,
                         NULL, NULL) != SQLITE_OK) {
                ab_errstr_set(errstr, errstr_size,
                              "%s: checkpoint connection: %s", path,
                              sqlite3_errmsg(w->db));
                goto fail;
        }
        if ((rc = pthread_create(&w->thread, NULL, wal_main, w))) {
                ab_errstr_set(errstr, errstr_size,
                              "cannot start the checkpoint thread: %s",
                              strerror(rc));
                goto fail;
        }
        /* replaces the autocheckpoint hook of the writer */
        sqlite3_wal_hook(writer, wal_hook, w);
        return w;

fail:
        sqlite3_close(w->db);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
}

void audit_wal_stats(audit_wal_t *w, audit_wal_stats_t *st) {
        pthread_mutex_lock(&w->lock);
        st->checkpoints        = w->checkpoints;
        st->inline_checkpoints = w->inline_checkpoints;
        st->frames             = w->frames;
        pthread_mutex_unlock(&w->lock);
}

void audit_wal_stop(audit_wal_t *w) {
        if (!w) {
                return;
        }
        sqlite3_wal_hook(w->writer, NULL, NULL);
        sqlite3_wal_autocheckpoint(w->writer, w->pages);
        pthread_mutex_lock(&w->lock);
        w->quit = 1;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        sqlite3_close(w->db);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
}
