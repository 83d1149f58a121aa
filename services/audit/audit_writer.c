/* aetherbus - Apache-2.0
 *
 * audit_writer: the writer thread, see audit_writer.h. On one thread,
 * decoding and building rows (about a quarter of the time) and SQLite
 * (the rest, its fsync included) took turns: 86-94k rows/s where the
 * store alone writes 120-127k; with the writer on its own thread the
 * two overlap on the two cores.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ab_log.h"
#include "ab_time.h"
#include "audit_writer.h"

#define RETRY_MS 1000

struct audit_writer_s {
        audit_store_t *store;
        ab_metric_t *m_txn;
        ab_metric_t *m_errors;
        volatile sig_atomic_t *run;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;  /* job, done and quit changes */
        audit_batch_t *job;   /* in flight */
        int written;          /* job is written, wait() may take it */
        int quit;
};

/* Sleeps up to ms unless the writer is told to quit. Locked. */
static void pause_ms(audit_writer_t *w, int ms) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        while (!w->quit &&
               pthread_cond_timedwait(&w->cond, &w->lock, &ts) != ETIMEDOUT) {
        }
}

static void write_one(audit_writer_t *w, audit_batch_t *b) {
        char errstr[512];
        int64_t t0;

        for (;;) {
                t0     = ab_time_now_ms();
                b->err = audit_store_write(w->store, b->ev, b->ev_cnt, b->out,
                                           b->pos, b->pos_cnt, errstr,
                                           sizeof(errstr));
                ab_metric_observe(w->m_txn,
                                  (double)(ab_time_now_ms() - t0) / 1000.0);
                if (!b->err) {
                        return;
                }
                ab_metric_inc(w->m_errors);
                ab_error("audit", "cannot write %zu rows: %s (retrying)",
                         b->ev_cnt, errstr);
                pthread_mutex_lock(&w->lock);
                if (*w->run && !w->quit) {
                        pause_ms(w, RETRY_MS);
                }
                if (!*w->run || w->quit) {
                        pthread_mutex_unlock(&w->lock);
                        return;
                }
                pthread_mutex_unlock(&w->lock);
        }
}

static void *writer_main(void *arg) {
        audit_writer_t *w = arg;
        audit_batch_t *b;

        /* top -H and perf tell it from the consume thread */
        pthread_setname_np(pthread_self(), "audit-writer");
        pthread_mutex_lock(&w->lock);
        for (;;) {
                while (!w->quit && (!w->job || w->written)) {
                        pthread_cond_wait(&w->cond, &w->lock);
                }
                if (!w->job || w->written) {
                        break; /* quit with nothing to write */
                }
                b = w->job;
                pthread_mutex_unlock(&w->lock);
                write_one(w, b);
                pthread_mutex_lock(&w->lock);
                w->written = 1;
                pthread_cond_broadcast(&w->cond);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

audit_writer_t *audit_writer_new(audit_store_t *store, ab_metric_t *m_txn,
                                 ab_metric_t *m_errors,
                                 volatile sig_atomic_t *run, char *errstr,
                                 size_t errstr_size) {
        audit_writer_t *w;
        int rc;

        if (!(w = calloc(1, sizeof(*w)))) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        w->store    = store;
        w->m_txn    = m_txn;
        w->m_errors = m_errors;
        w->run      = run;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        if ((rc = pthread_create(&w->thread, NULL, writer_main, w))) {
                ab_errstr_set(errstr, errstr_size,
                              "cannot start the writer thread: %s",
                              strerror(rc));
                pthread_cond_destroy(&w->cond);
                pthread_mutex_destroy(&w->lock);
                free(w);
                return NULL;
        }
        return w;
}

void audit_writer_submit(audit_writer_t *w, audit_batch_t *b) {
        pthread_mutex_lock(&w->lock);
        w->job     = b;
        w->written = 0;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
}

audit_batch_t *audit_writer_wait(audit_writer_t *w) {
        audit_batch_t *b;

        pthread_mutex_lock(&w->lock);
        while (w->job && !w->written) {
                pthread_cond_wait(&w->cond, &w->lock);
        }
        b      = w->job;
        w->job = NULL;
        pthread_mutex_unlock(&w->lock);
        return b;
}

void audit_writer_destroy(audit_writer_t *w) {
        if (!w) {
                return;
        }
        pthread_mutex_lock(&w->lock);
        w->quit = 1;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
}
