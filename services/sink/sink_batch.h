/* aetherbus - Apache-2.0
 *
 * sink_batch: one batch of events of one partition, on its way to
 * EVENT_SINK_URL. Owns the request body (a JSON array of envelopes in the
 * ingest form, exactly what POST /events/ingest accepts), the limits that
 * close a batch (events, bytes; linger with the caller's clock), the
 * offset range the batch covers, its Idempotency-Key and the split into
 * halves that bisects a batch the sink refuses.
 *
 * One batch = one partition's offsets in consume order, so the key names
 * a range that a redelivery after a crash reproduces exactly.
 *
 * What stays out: HTTP (sink_client), retry decisions (sink_retry) and
 * offsets commit (the service, through ab_consume_done_at()).
 */
#ifndef SINK_BATCH_H
#define SINK_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "ab_envelope.h"
#include "ab_err.h"

#define SINK_BATCH_MAX_EVENTS_DEF 500
#define SINK_BATCH_MAX_BYTES_DEF  (1024 * 1024)
#define SINK_LINGER_MS_DEF        1000

/** Longest Idempotency-Key: topic (<= 249) + partition + two offsets. */
#define SINK_BATCH_KEY_MAX 320

/** What closes a batch; zero fields take the defaults above. */
typedef struct sink_batch_limits_s {
        size_t max_events; /**< SINK_BATCH_MAX_EVENTS */
        size_t max_bytes;  /**< SINK_BATCH_MAX_BYTES: whole body, brackets
                                and commas included */
        int64_t linger_ms; /**< SINK_LINGER_MS, from the first add */
} sink_batch_limits_t;

typedef struct sink_batch_s sink_batch_t;

/**
 * @brief A new empty batch for \p topic / \p partition (copied).
 *        \p limits NULL means the defaults.
 * @returns the batch (sink_batch_destroy()), or NULL with errstr.
 */
sink_batch_t *sink_batch_new(const char *topic, int32_t partition,
                             const sink_batch_limits_t *limits, char *errstr,
                             size_t errstr_size);

/**
 * @brief Appends the event read at \p offset: \p env is a view of
 *        ab_avro_decode_view() (strings set, the payload as JSON text in
 *        payload_json), written in the ingest form, compact: id, name,
 *        schemaVersion, occurredAt, source, companyId and subjectId when
 *        set, then payload spliced in as its text (receivedAt is left
 *        out: the sink's side is POST /events/ingest's form). \p now_ms starts the linger clock on the first
 *        event. The byte limit is checked before anything is appended, so
 *        a batch never grows past it; the one exception is an event larger
 *        than max_bytes on its own: it is taken into an empty batch and
 *        goes as a batch of one (refusing it would wedge the partition;
 *        the sink answers 413 and bisecting dead-letters it).
 * @returns AB_OK (appended; see sink_batch_full()); AB_ERR_TOO_LARGE when
 *          the event does not fit (the batch is unchanged: send it and
 *          add the event to a new one); AB_ERR_INVALID when the batch is
 *          closed or full, the offset is not above the last one, or the
 *          envelope is not a view (no payload text) or holds a string
 *          that is not UTF-8; AB_ERR_NOMEM. errstr says which.
 */
ab_err_t sink_batch_add(sink_batch_t *b, int64_t offset,
                        const ab_envelope_t *env, int64_t now_ms,
                        char *errstr, size_t errstr_size);

/** @returns 1 when the batch holds max_events, or its body reached
 *           max_bytes (an oversized single event included). */
int sink_batch_full(const sink_batch_t *b);

/** @returns 1 when the batch is not empty and \p now_ms is linger_ms or
 *           more past its first add. */
int sink_batch_due(const sink_batch_t *b, int64_t now_ms);

/** @returns ms from \p now_ms until the batch is due (0 when due), or -1
 *           when empty: the caller's poll timeout. */
int64_t sink_batch_due_in(const sink_batch_t *b, int64_t now_ms);

/**
 * @brief Closes the batch (no more adds) and gives its body: "[e1,...]".
 *        The bytes stay valid until the batch is destroyed; calling it
 *        again gives the same bytes.
 * @returns the body, *lenp its length; NULL when the batch is empty.
 */
const char *sink_batch_body(sink_batch_t *b, size_t *lenp);

/** @returns the number of events. */
size_t sink_batch_count(const sink_batch_t *b);

/** @returns the bytes of the body so far, the closing ']' included (what
 *           sink_batch_body() gives once closed); 2 when empty. */
size_t sink_batch_size(const sink_batch_t *b);

/** @returns the offset of the first / last event, -1 when empty. */
int64_t sink_batch_first(const sink_batch_t *b);
int64_t sink_batch_last(const sink_batch_t *b);

const char *sink_batch_topic(const sink_batch_t *b);
int32_t sink_batch_partition(const sink_batch_t *b);

/**
 * @brief The Idempotency-Key: "<topic>/<partition>/<first>-<last>", the
 *        same for the same range on every replica and after a restart.
 *        A sub-batch of a split has the key of its own range.
 * @returns AB_OK, or AB_ERR_INVALID when empty or \p size is too small.
 */
ab_err_t sink_batch_key(const sink_batch_t *b, char *buf, size_t size);

/**
 * @brief Event \p i: its offset and its compact JSON (not NUL-terminated,
 *        valid while the batch is), for dead-lettering one event.
 * @returns AB_OK, or AB_ERR_NOT_FOUND when i >= count.
 */
ab_err_t sink_batch_event(const sink_batch_t *b, size_t i, int64_t *offsetp,
                          const char **jsonp, size_t *lenp);

/** @returns event \p i's receivedAt (ms), 0 when unknown or i >= count. */
int64_t sink_batch_received(const sink_batch_t *b, size_t i);

/**
 * @brief Splits a batch of two or more events into two new batches: the
 *        first half (count / 2 events) and the rest, each with its own
 *        offset range and key and the same limits, closed. \p b is left
 *        as it was (the caller destroys it). Bisecting is a loop over a
 *        list of pending batches on the caller's side, never recursion.
 * @returns AB_OK, AB_ERR_INVALID (fewer than two events) or AB_ERR_NOMEM.
 */
ab_err_t sink_batch_split(const sink_batch_t *b, sink_batch_t **leftp,
                          sink_batch_t **rightp, char *errstr,
                          size_t errstr_size);

/** @brief Frees \p b; NULL is a no-op. */
void sink_batch_destroy(sink_batch_t *b);

#endif
