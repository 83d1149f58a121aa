/* aetherbus - Apache-2.0
 *
 * audit_writer: the thread that writes batches into the EventLog, so
 * the consume thread reads, decodes and builds the next batch while
 * SQLite writes and syncs this one. One batch is in flight at a time,
 * and the caller gets it back from audit_writer_wait() only after its
 * transaction committed (or was given up): marking its offsets done
 * after that keeps the order "SQLite commit, then Kafka offsets" of a
 * single thread.
 */
#ifndef AUDIT_WRITER_H
#define AUDIT_WRITER_H

#include <signal.h>
#include <stddef.h>

#include "ab_err.h"
#include "ab_metrics.h"
#include "audit_store.h"

/** One transaction's worth: what audit_store_write() takes. The writer
 *  reads ev and pos and fills out and err; the caller must not touch
 *  any of it (nor what ev points to) while the batch is in flight. */
typedef struct audit_batch_s {
        const audit_event_t *ev;
        size_t ev_cnt;
        audit_store_outcome_t *out; /**< ev_cnt entries */
        const audit_store_pos_t *pos;
        size_t pos_cnt;
        ab_err_t err;               /**< AB_OK: committed */
} audit_batch_t;

typedef struct audit_writer_s audit_writer_t;

/**
 * @brief Starts the writer thread over \p store. A failed transaction
 *        is logged, counted in \p m_errors and retried every second
 *        while \p *run holds and the writer is not destroyed; then the
 *        batch comes back with its error (not done: read again on
 *        restart). Each try's time goes to \p m_txn.
 * @returns the writer (audit_writer_destroy()), or NULL with errstr.
 */
audit_writer_t *audit_writer_new(audit_store_t *store, ab_metric_t *m_txn,
                                 ab_metric_t *m_errors,
                                 volatile sig_atomic_t *run, char *errstr,
                                 size_t errstr_size);

/** @brief Hands \p b to the writer; none may be in flight. */
void audit_writer_submit(audit_writer_t *w, audit_batch_t *b);

/**
 * @brief Waits until the batch in flight is written.
 * @returns it, or NULL when none was in flight.
 */
audit_batch_t *audit_writer_wait(audit_writer_t *w);

/** @brief Gives up retrying, waits for the batch in flight and stops. */
void audit_writer_destroy(audit_writer_t *w);

#endif
