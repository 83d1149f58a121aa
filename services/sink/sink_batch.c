/* aetherbus - Apache-2.0
 *
 * sink_batch: the body is built in place, "[" then each event's compact
 * JSON after a comma, so closing it is one byte and a request never
 * copies it. Events come as views (ab_avro_decode_view()): the strings
 * are escaped by ab_json_dump_string() and the payload text is spliced in
 * as stored, straight into the free room of the buffer, with no JSON tree
 * built. The exact length comes back either way, so the byte limit is
 * checked before the event counts and nothing is written twice unless
 * the buffer has to grow. The buffer starts at 4 KiB, so an idle
 * partition's batch stays small, and then grows to the size the batch is
 * expected to reach, up to the byte limit.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ab_json.h"
#include "sink_batch.h"

/* Where one event sits in the body. */
typedef struct {
        int64_t offset;
        int64_t received_at_ms; /* the stage counters' minute */
        size_t start;
        size_t len;
} ev_t;

struct sink_batch_s {
        char *topic;
        int32_t partition;
        sink_batch_limits_t limits;
        char *buf;    /* "[e1,e2,...": always room for the closing ']' */
        size_t len;   /* bytes in buf, without the ']' */
        size_t cap;
        ev_t *evs;
        size_t cnt;
        size_t evs_cap;
        int64_t first_add_ms;
        int closed;
};

/* The first allocation; doubles from there. */
#define BATCH_INITIAL_CAP 4096

sink_batch_t *sink_batch_new(const char *topic, int32_t partition,
                             const sink_batch_limits_t *limits, char *errstr,
                             size_t errstr_size) {
        sink_batch_t *b;

        if (!topic || !*topic) {
                ab_errstr_set(errstr, errstr_size, "batch: no topic");
                return NULL;
        }
        b = calloc(1, sizeof(*b));
        if (!b) {
                ab_errstr_set(errstr, errstr_size, "batch: out of memory");
                return NULL;
        }
        if (limits) {
                b->limits = *limits;
        }
        if (!b->limits.max_events) {
                b->limits.max_events = SINK_BATCH_MAX_EVENTS_DEF;
        }
        if (!b->limits.max_bytes) {
                b->limits.max_bytes = SINK_BATCH_MAX_BYTES_DEF;
        }
        if (b->limits.linger_ms <= 0) {
                b->limits.linger_ms = SINK_LINGER_MS_DEF;
        }
        /* "[]" is the smallest body; a limit below it could hold nothing. */
        if (b->limits.max_bytes < 2) {
                b->limits.max_bytes = 2;
        }
        b->partition = partition;
        b->topic     = strdup(topic);
        b->cap       = b->limits.max_bytes < BATCH_INITIAL_CAP
                           ? b->limits.max_bytes
                           : BATCH_INITIAL_CAP;
        b->buf       = malloc(b->cap);
        if (!b->topic || !b->buf) {
                sink_batch_destroy(b);
                ab_errstr_set(errstr, errstr_size, "batch: out of memory");
                return NULL;
        }
        b->buf[0] = '[';
        b->len    = 1;
        return b;
}

void sink_batch_destroy(sink_batch_t *b) {
        if (!b) {
                return;
        }
        free(b->topic);
        free(b->buf);
        free(b->evs);
        free(b);
}

/* Past the first room, the buffer grows to what the batch is expected to
 * reach at max_events events of the average size so far (doubling from 4
 * KiB to a 115 KiB body copied each byte once more on the way: a few
 * percent of the loop). */
static int grow_buf(sink_batch_t *b, size_t need) {
        size_t ncap = b->cap * 2, est;
        char *nbuf;

        if (b->cnt) {
                est = (b->len / b->cnt + 1) * b->limits.max_events + 2;
                if (est > ncap) {
                        ncap = est;
                }
        }
        if (ncap > b->limits.max_bytes) {
                ncap = b->limits.max_bytes;
        }
        if (ncap < need) {
                ncap = need;
        }
        nbuf = realloc(b->buf, ncap);
        if (!nbuf) {
                return -1;
        }
        b->buf = nbuf;
        b->cap = ncap;
        return 0;
}

static int grow_evs(sink_batch_t *b) {
        size_t ncap = b->evs_cap ? b->evs_cap * 2 : 16;
        ev_t *nevs;

        if (ncap > b->limits.max_events) {
                ncap = b->limits.max_events;
        }
        nevs = realloc(b->evs, ncap * sizeof(*nevs));
        if (!nevs) {
                return -1;
        }
        b->evs     = nevs;
        b->evs_cap = ncap;
        return 0;
}

/* A bounded writer: bytes land only while they fit, the length is
 * counted regardless (ab_json_dump()'s contract), so one pass sizes the
 * event and, when it fits, writes it. */
typedef struct {
        char *p;
        size_t size;
        size_t len;
        int bad;
} vw_t;

static void vw_raw(vw_t *w, const char *s, size_t n) {
        if (w->len + n <= w->size) {
                memcpy(w->p + w->len, s, n);
        }
        w->len += n;
}

/* A key and its string value; the key is a literal (its length known). */
#define VW_STR(w, key, s) vw_str((w), (key), sizeof(key) - 1, (s))

static void vw_str(vw_t *w, const char *key, size_t klen, const char *s) {
        size_t n;

        vw_raw(w, key, klen);
        n = ab_json_dump_string(s, s ? strlen(s) : 0,
                                w->len < w->size ? w->p + w->len : NULL,
                                w->len < w->size ? w->size - w->len : 0);
        if (!n) {
                w->bad = 1;
        }
        w->len += n;
}

/* ",\"schemaVersion\":" and the number in decimal, as "%d" writes it
 * (snprintf was a fifth of the cost of writing an event). */
static void vw_schema_version(vw_t *w, int v) {
        static const char key[] = ",\"schemaVersion\":";
        char num[16], *p = num + sizeof(num);
        unsigned int u = v < 0 ? 0u - (unsigned int)v : (unsigned int)v;

        vw_raw(w, key, sizeof(key) - 1);
        do {
                *--p = (char)('0' + u % 10);
                u /= 10;
        } while (u);
        if (v < 0) {
                *--p = '-';
        }
        vw_raw(w, p, (size_t)(num + sizeof(num) - p));
}

/* The envelope in the ingest form, the fields in POST /events/ingest's
 * order; the payload is the record's own JSON text. */
static size_t view_write(const ab_envelope_t *env, char *buf, size_t size) {
        vw_t w = {buf, buf ? size : 0, 0, 0};

        if (!env->id || !env->name || !env->occurred_at || !env->source ||
            !env->payload_json || !env->payload_json_len) {
                return 0;
        }
        VW_STR(&w, "{\"id\":", env->id);
        VW_STR(&w, ",\"name\":", env->name);
        vw_schema_version(&w, env->schema_version);
        VW_STR(&w, ",\"occurredAt\":", env->occurred_at);
        VW_STR(&w, ",\"source\":", env->source);
        if (env->company_id) {
                VW_STR(&w, ",\"companyId\":", env->company_id);
        }
        if (env->subject_id) {
                VW_STR(&w, ",\"subjectId\":", env->subject_id);
        }
        vw_raw(&w, ",\"payload\":", 11);
        vw_raw(&w, env->payload_json, env->payload_json_len);
        vw_raw(&w, "}", 1);
        return w.bad ? 0 : w.len;
}

int sink_batch_full(const sink_batch_t *b) {
        return b->cnt >= b->limits.max_events ||
               b->len + 1 >= b->limits.max_bytes;
}

ab_err_t sink_batch_add(sink_batch_t *b, int64_t offset,
                        const ab_envelope_t *env, int64_t now_ms,
                        char *errstr, size_t errstr_size) {
        size_t sep = b->cnt ? 1 : 0;
        size_t room, n, need;

        if (b->closed || sink_batch_full(b)) {
                ab_errstr_set(errstr, errstr_size, "batch: %s",
                              b->closed ? "closed" : "full");
                return AB_ERR_INVALID;
        }
        if (b->cnt && offset <= b->evs[b->cnt - 1].offset) {
                ab_errstr_set(errstr, errstr_size,
                              "batch: offset %" PRId64
                              " is not above the last one (%" PRId64 ")",
                              offset, b->evs[b->cnt - 1].offset);
                return AB_ERR_INVALID;
        }
        if (!env || !env->payload_json) {
                ab_errstr_set(errstr, errstr_size,
                              "batch: offset %" PRId64 ": not an envelope "
                              "view",
                              offset);
                return AB_ERR_INVALID;
        }
        if (b->cnt == b->evs_cap && grow_evs(b) == -1) {
                ab_errstr_set(errstr, errstr_size, "batch: out of memory");
                return AB_ERR_NOMEM;
        }

        /* Room for the event between the separator and the ']'. */
        room = b->cap >= b->len + sep + 1 ? b->cap - b->len - sep - 1 : 0;
        n    = view_write(env, b->buf + b->len + sep, room);
        if (n == 0) {
                ab_errstr_set(errstr, errstr_size,
                              "batch: offset %" PRId64
                              ": envelope cannot be serialised",
                              offset);
                return AB_ERR_INVALID;
        }
        need = b->len + sep + n + 1;
        if (need > b->limits.max_bytes && b->cnt > 0) {
                ab_errstr_set(errstr, errstr_size,
                              "batch: event of %zu bytes does not fit "
                              "(%zu of %zu used)",
                              n, b->len + 1, b->limits.max_bytes);
                return AB_ERR_TOO_LARGE;
        }
        if (n > room) {
                /* Here need <= max_bytes, or this is the first event and
                 * it goes alone whatever its size. */
                if (grow_buf(b, need) == -1) {
                        ab_errstr_set(errstr, errstr_size,
                                      "batch: out of memory");
                        return AB_ERR_NOMEM;
                }
                room = b->cap - b->len - sep - 1;
                if (view_write(env, b->buf + b->len + sep, room) != n) {
                        ab_errstr_set(errstr, errstr_size,
                                      "batch: offset %" PRId64
                                      ": envelope changed while serialised",
                                      offset);
                        return AB_ERR_INTERNAL;
                }
        }
        if (sep) {
                b->buf[b->len] = ',';
        }
        b->evs[b->cnt].offset = offset;
        b->evs[b->cnt].received_at_ms = env->received_at_ms;
        b->evs[b->cnt].start  = b->len + sep;
        b->evs[b->cnt].len    = n;
        if (b->cnt == 0) {
                b->first_add_ms = now_ms;
        }
        b->cnt++;
        b->len += sep + n;
        return AB_OK;
}

int sink_batch_due(const sink_batch_t *b, int64_t now_ms) {
        return sink_batch_due_in(b, now_ms) == 0;
}

int64_t sink_batch_due_in(const sink_batch_t *b, int64_t now_ms) {
        int64_t left;

        if (!b->cnt) {
                return -1;
        }
        left = b->first_add_ms + b->limits.linger_ms - now_ms;
        return left > 0 ? left : 0;
}

const char *sink_batch_body(sink_batch_t *b, size_t *lenp) {
        if (!b->cnt) {
                *lenp = 0;
                return NULL;
        }
        b->closed         = 1;
        b->buf[b->len]    = ']';
        *lenp             = b->len + 1;
        return b->buf;
}

size_t sink_batch_count(const sink_batch_t *b) {
        return b->cnt;
}

size_t sink_batch_size(const sink_batch_t *b) {
        return b->len + 1;
}

int64_t sink_batch_first(const sink_batch_t *b) {
        return b->cnt ? b->evs[0].offset : -1;
}

int64_t sink_batch_last(const sink_batch_t *b) {
        return b->cnt ? b->evs[b->cnt - 1].offset : -1;
}

const char *sink_batch_topic(const sink_batch_t *b) {
        return b->topic;
}

int32_t sink_batch_partition(const sink_batch_t *b) {
        return b->partition;
}

ab_err_t sink_batch_key(const sink_batch_t *b, char *buf, size_t size) {
        int r;

        if (!b->cnt) {
                return AB_ERR_INVALID;
        }
        r = snprintf(buf, size, "%s/%" PRId32 "/%" PRId64 "-%" PRId64,
                     b->topic, b->partition, b->evs[0].offset,
                     b->evs[b->cnt - 1].offset);
        return r < 0 || (size_t)r >= size ? AB_ERR_INVALID : AB_OK;
}

ab_err_t sink_batch_event(const sink_batch_t *b, size_t i, int64_t *offsetp,
                          const char **jsonp, size_t *lenp) {
        if (i >= b->cnt) {
                return AB_ERR_NOT_FOUND;
        }
        *offsetp = b->evs[i].offset;
        *jsonp   = b->buf + b->evs[i].start;
        *lenp    = b->evs[i].len;
        return AB_OK;
}

int64_t sink_batch_received(const sink_batch_t *b, size_t i) {
        return i < b->cnt ? b->evs[i].received_at_ms : 0;
}

/* A closed batch of events [from, to) of \p b, bytes copied. */
static sink_batch_t *sub_batch(const sink_batch_t *b, size_t from, size_t to,
                               char *errstr, size_t errstr_size) {
        sink_batch_t *s;
        size_t i, need = 1;

        s = sink_batch_new(b->topic, b->partition, &b->limits, errstr,
                           errstr_size);
        if (!s) {
                return NULL;
        }
        for (i = from; i < to; i++) {
                need += b->evs[i].len + 1;
        }
        if ((need > s->cap && grow_buf(s, need) == -1) ||
            !(s->evs = malloc((to - from) * sizeof(*s->evs)))) {
                sink_batch_destroy(s);
                ab_errstr_set(errstr, errstr_size, "batch: out of memory");
                return NULL;
        }
        s->evs_cap = to - from;
        for (i = from; i < to; i++) {
                if (s->cnt) {
                        s->buf[s->len++] = ',';
                }
                memcpy(s->buf + s->len, b->buf + b->evs[i].start,
                       b->evs[i].len);
                s->evs[s->cnt].offset = b->evs[i].offset;
                s->evs[s->cnt].received_at_ms = b->evs[i].received_at_ms;
                s->evs[s->cnt].start  = s->len;
                s->evs[s->cnt].len    = b->evs[i].len;
                s->len += b->evs[i].len;
                s->cnt++;
        }
        s->first_add_ms = b->first_add_ms;
        s->closed       = 1;
        return s;
}

ab_err_t sink_batch_split(const sink_batch_t *b, sink_batch_t **leftp,
                          sink_batch_t **rightp, char *errstr,
                          size_t errstr_size) {
        size_t half = b->cnt / 2;
        sink_batch_t *l, *r;

        if (b->cnt < 2) {
                ab_errstr_set(errstr, errstr_size,
                              "batch: %zu event(s) cannot be split", b->cnt);
                return AB_ERR_INVALID;
        }
        l = sub_batch(b, 0, half, errstr, errstr_size);
        if (!l) {
                return AB_ERR_NOMEM;
        }
        r = sub_batch(b, half, b->cnt, errstr, errstr_size);
        if (!r) {
                sink_batch_destroy(l);
                return AB_ERR_NOMEM;
        }
        *leftp  = l;
        *rightp = r;
        return AB_OK;
}
