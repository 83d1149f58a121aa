/* aetherbus - Apache-2.0
 *
 * ab_consume: batch reads, decoding by topic, at-least-once offset
 * bookkeeping, the timestamp start position, catch-up progress and lag
 * metrics shared by the consumer services.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ab_catalog.h"
#include "ab_consume.h"
#include "ab_log.h"
#include "ab_time.h"

#define COMP "consume"
#define LAG_INTERVAL_MS 2000
#define COMMIT_INTERVAL_MS 1000
#define MAX_PARTS 4096

/* The consuming thread writes a partition's positions; the readiness
 * thread (ab_consume_caught_up) and the waker read them: atomics. */
typedef struct part_s {
        char *topic;
        int32_t partition;
        _Atomic int64_t target; /* log end at start: the catch-up goal (-1: none) */
        _Atomic int64_t done;   /* next offset whose work is not durable, -1 */
        _Atomic int64_t read;   /* next offset to read, -1 unknown */
        atomic_int assigned;
        ab_metric_t *m_lag;
        ab_metric_t *m_rec[AB_CONSUME_UNDECODABLE + 1]; /* by kind, cached */
} part_t;

struct ab_consume_s {
        ab_consume_conf_t conf;
        ab_consumer_t *consumer;
        rd_kafka_t *rk;
        rd_kafka_queue_t *queue;
        char *topic_rejected;
        char *topic_deadletter;
        char **topics;
        part_t *parts;
        size_t part_cnt;
        size_t last_part; /* cache: records come in runs per partition */
        int64_t last_lag_ms;
        int64_t last_commit_ms;
        pthread_t waker;
        int waker_started;
        atomic_int waker_stop;
        atomic_int want_wake;
        atomic_int assign_gen;
        pthread_mutex_t parts_lock; /* parts' array against the waker */
        int stored_since_commit;
        ab_metric_t *m_records; /* {topic,kind} */
        ab_metric_t *m_lag;     /* {topic,partition} */
        ab_metric_t *m_lag_total;
        ab_metric_t *m_errors;  /* {reason} */
        ab_metric_t *m_catchup;
        _Atomic int64_t lag_total; /* as of the last refresh, -1 before */
        int64_t assigned_ms;    /* assign mode: when reading began */
        atomic_int caught_up;
};

const char *ab_consume_kind_name(ab_consume_kind_t kind) {
        static const char *const names[] = {"accepted", "rejected",
                                            "deadletter", "undecodable"};

        return kind <= AB_CONSUME_UNDECODABLE ? names[kind] : "?";
}

static part_t *part_find(ab_consume_t *c, const char *topic,
                         int32_t partition, int create) {
        size_t i;
        part_t *p, *np;
        char pbuf[16];

        if (c->last_part < c->part_cnt) {
                p = &c->parts[c->last_part];
                if (p->partition == partition && !strcmp(p->topic, topic)) {
                        return p;
                }
        }
        for (i = 0; i < c->part_cnt; i++) {
                p = &c->parts[i];
                if (p->partition == partition && !strcmp(p->topic, topic)) {
                        c->last_part = i;
                        return p;
                }
        }
        if (!create || c->part_cnt >= MAX_PARTS) {
                return NULL;
        }
        pthread_mutex_lock(&c->parts_lock);
        np = realloc(c->parts, (c->part_cnt + 1) * sizeof(*np));
        if (np) {
                c->parts = np;
        }
        pthread_mutex_unlock(&c->parts_lock);
        if (!np) {
                return NULL;
        }
        p = &c->parts[c->part_cnt];
        memset(p, 0, sizeof(*p));
        if (!(p->topic = strdup(topic))) {
                return NULL;
        }
        p->partition = partition;
        p->target    = -1;
        p->done      = -1;
        p->read      = -1;
        if (c->m_lag) {
                snprintf(pbuf, sizeof(pbuf), "%" PRId32, partition);
                p->m_lag = AB_METRIC_WITH(c->m_lag, topic, pbuf);
        }
        c->last_part = c->part_cnt;
        pthread_mutex_lock(&c->parts_lock);
        c->part_cnt++;
        pthread_mutex_unlock(&c->parts_lock);
        return p;
}

static void on_assign(void *opaque, rd_kafka_topic_partition_list_t *parts) {
        ab_consume_t *c = opaque;
        part_t *p;
        int i;

        for (i = 0; i < parts->cnt; i++) {
                p = part_find(c, parts->elems[i].topic,
                              parts->elems[i].partition, 1);
                if (p) {
                        p->assigned = 1;
                        p->done     = -1;
                        p->read     = -1;
                }
        }
        atomic_fetch_add(&c->assign_gen, 1);
        if (c->conf.on_assign) {
                c->conf.on_assign(c->conf.opaque, parts);
        }
}

static void on_revoke(void *opaque,
                      const rd_kafka_topic_partition_list_t *parts, int lost) {
        ab_consume_t *c = opaque;
        part_t *p;
        int i;

        /* The service stores what it finished first, then the wrapper
         * commits: what is not done is the next owner's to redo. */
        if (c->conf.on_revoke) {
                c->conf.on_revoke(c->conf.opaque, parts, lost);
        }
        for (i = 0; i < parts->cnt; i++) {
                p = part_find(c, parts->elems[i].topic,
                              parts->elems[i].partition, 0);
                if (p) {
                        p->assigned = 0;
                        if (p->m_lag) {
                                ab_metric_set(p->m_lag, 0);
                        }
                }
        }
}

static ab_err_t metrics_init(ab_consume_t *c, char *errstr,
                             size_t errstr_size) {
        ab_metrics_t *reg = c->conf.metrics;

        if (!reg) {
                return AB_OK;
        }
        c->m_records = ab_metrics_counter(
            reg, "consumer_records_total",
            "Records read, by topic and what they decoded to (accepted, "
            "rejected, deadletter, undecodable).",
            "topic,kind", errstr, errstr_size);
        c->m_lag = ab_metrics_gauge(
            reg, "consumer_lag",
            "Records on the partition not yet durably processed (log end - "
            "done).",
            "topic,partition", errstr, errstr_size);
        c->m_lag_total = ab_metrics_gauge(
            reg, "consumer_lag_total",
            "Sum of consumer_lag over the assignment.", NULL, errstr,
            errstr_size);
        c->m_errors = ab_metrics_counter(
            reg, "consumer_errors_total",
            "Consumer errors reported by librdkafka, by error name.",
            "reason", errstr, errstr_size);
        c->m_catchup = ab_metrics_gauge(
            reg, "consumer_catchup_seconds",
            "Without a group: how long reading the partitions to the ends "
            "they had at start took (0 until it is done).",
            NULL, errstr, errstr_size);
        return c->m_records && c->m_lag && c->m_lag_total && c->m_errors &&
                       c->m_catchup
                   ? AB_OK
                   : AB_ERR_INTERNAL;
}

ab_consume_t *ab_consume_new(const ab_consume_conf_t *conf, char *errstr,
                             size_t errstr_size) {
        ab_consume_t *c;
        ab_consumer_conf_t cc;
        char topic[256];
        size_t i;

        c = calloc(1, sizeof(*c));
        if (!c) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        c->conf      = *conf;
        c->last_part = (size_t)-1;
        pthread_mutex_init(&c->parts_lock, NULL);
        atomic_init(&c->lag_total, -1);
        c->topics    = calloc(conf->topic_cnt + 1, sizeof(char *));
        if (!c->topics) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                goto fail;
        }
        for (i = 0; i < conf->topic_cnt; i++) {
                if (!(c->topics[i] = strdup(conf->topics[i]))) {
                        ab_errstr_set(errstr, errstr_size, "out of memory");
                        goto fail;
                }
        }
        c->conf.topics = (const char *const *)c->topics;
        if (ab_catalog_topic(conf->topic_prefix, AB_CATALOG_TOPIC_REJECTED,
                             topic, sizeof(topic)) != AB_OK ||
            !(c->topic_rejected = strdup(topic)) ||
            ab_catalog_topic(conf->topic_prefix, AB_CATALOG_TOPIC_DEADLETTER,
                             topic, sizeof(topic)) != AB_OK ||
            !(c->topic_deadletter = strdup(topic))) {
                ab_errstr_set(errstr, errstr_size,
                              "TOPIC_PREFIX: not a valid topic prefix");
                goto fail;
        }
        if (metrics_init(c, errstr, errstr_size) != AB_OK) {
                goto fail;
        }
        ab_consumer_conf_init(&cc);
        cc.brokers            = conf->brokers;
        cc.group_id           = conf->group_id;
        cc.session_timeout_ms = conf->session_timeout_ms;
        cc.props              = conf->props;
        cc.on_assign          = on_assign;
        cc.on_revoke          = on_revoke;
        cc.opaque             = c;
        if (!(c->consumer = ab_consumer_new(&cc, errstr, errstr_size))) {
                goto fail;
        }
        c->rk    = ab_consumer_handle(c->consumer);
        c->queue = rd_kafka_queue_get_consumer(c->rk);
        return c;

fail:
        ab_consume_destroy(c);
        return NULL;
}

/* One ListOffsets round for every partition of list at once: ts is a
 * timestamp, or RD_KAFKA_OFFSET_BEGINNING / _END for the watermarks.
 * librdkafka sends one request per leader; asking per partition instead
 * (rd_kafka_query_watermark_offsets) is a round trip each, 42 partitions
 * times three lookups, which took over 20 s on a loaded broker. Returns a
 * copy of list with the answers in .offset (-1 where there is none). */
static rd_kafka_topic_partition_list_t *
list_offsets_once(ab_consume_t *c,
                  const rd_kafka_topic_partition_list_t *list, int64_t ts,
                  int timeout_ms, rd_kafka_resp_err_t *errp) {
        rd_kafka_topic_partition_list_t *out;
        int i;

        out = rd_kafka_topic_partition_list_copy(list);
        for (i = 0; i < out->cnt; i++) {
                out->elems[i].offset = ts;
                out->elems[i].err    = 0;
        }
        *errp = rd_kafka_offsets_for_times(c->rk, out, timeout_ms);
        for (i = 0; i < out->cnt; i++) {
                if (*errp && !out->elems[i].err) {
                        out->elems[i].err = *errp;
                }
                if (out->elems[i].err) {
                        out->elems[i].offset = -1;
                }
        }
        return out;
}

/* A lookup answer that is a moment's: a new topic's leaders are being
 * elected, a leader moves, a request times out. */
static int lookup_retriable(rd_kafka_resp_err_t err) {
        switch (err) {
        case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
        case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        case RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:
        case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
        case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
        case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION: /* metadata not in yet */
        case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
        case RD_KAFKA_RESP_ERR__TIMED_OUT:
        case RD_KAFKA_RESP_ERR__TRANSPORT:
                return 1;
        default:
                return 0;
        }
}

#define LOOKUP_TRIES 4
#define LOOKUP_BACKOFF_MS 250

/* list_offsets_once(), asked again (up to LOOKUP_TRIES times,
 * LOOKUP_BACKOFF_MS apart) while a partition's answer is a retriable
 * error: a partition whose lookup fails reads more than it needs (its
 * beginning), which a rebuild under load on the real Kafka did
 * (kafka.0015 read the 5 records two hours old it must skip). */
static rd_kafka_topic_partition_list_t *
list_offsets(ab_consume_t *c, const rd_kafka_topic_partition_list_t *list,
             int64_t ts, int timeout_ms, rd_kafka_resp_err_t *errp) {
        rd_kafka_topic_partition_list_t *out;
        int try, i, again;

        for (try = 1;; try++) {
                out   = list_offsets_once(c, list, ts, timeout_ms, errp);
                again = 0;
                for (i = 0; i < out->cnt && !again; i++) {
                        again = lookup_retriable(out->elems[i].err);
                }
                if (!again || try == LOOKUP_TRIES) {
                        return out;
                }
                ab_debug(COMP, "offset lookup: %s [%" PRId32 "]: %s: "
                               "asking again",
                         out->elems[i - 1].topic, out->elems[i - 1].partition,
                         rd_kafka_err2str(out->elems[i - 1].err));
                rd_kafka_topic_partition_list_destroy(out);
                usleep(LOOKUP_BACKOFF_MS * 1000);
        }
}

/* One partition's start from its timestamp lookup. Reading too much
 * costs a replay the time filter drops; reading too little loses counts,
 * so every doubt reads more. A failed lookup (a leader moving, a topic
 * just created) starts at the beginning. No record inside the window
 * starts at the high watermark read before the lookup, never at the
 * logical end: that is resolved when fetching starts and skipped every
 * record written in between (a rebuild once missed ingest's core.startup
 * that way). */
static int64_t at_position(const rd_kafka_topic_partition_t *at,
                           const rd_kafka_topic_partition_t *hi) {
        if (at->err) {
                ab_warn(COMP, "%s [%" PRId32 "]: timestamp lookup failed "
                              "(%s): reading it from the beginning",
                        at->topic, at->partition, rd_kafka_err2str(at->err));
                return RD_KAFKA_OFFSET_BEGINNING;
        }
        if (at->offset >= 0) {
                return at->offset;
        }
        return hi->offset >= 0 ? hi->offset : RD_KAFKA_OFFSET_BEGINNING;
}

/* Where each partition starts: the first offset with a timestamp >=
 * start_ms, the end where there is none, the beginning when the broker
 * cannot look timestamps up (the service filters by time while it
 * replays). lo/hi are the watermarks. Asked for timestamp 0, a real broker
 * names each non-empty partition's first offset; librdkafka 2.0.2's mock
 * does not, which is how a broker without lookups is told apart. */
static void start_positions(ab_consume_t *c,
                            rd_kafka_topic_partition_list_t *list,
                            const rd_kafka_topic_partition_list_t *lo,
                            const rd_kafka_topic_partition_list_t *hi,
                            int timeout_ms) {
        rd_kafka_topic_partition_list_t *probe = NULL, *at = NULL;
        rd_kafka_resp_err_t err;
        int i, ok;

        probe = list_offsets(c, list, 0, timeout_ms, &err);
        ok    = !err;
        for (i = 0; ok && i < list->cnt; i++) {
                if (hi->elems[i].offset > lo->elems[i].offset &&
                    probe->elems[i].offset != lo->elems[i].offset) {
                        ok = 0;
                }
        }
        if (ok) {
                at = list_offsets(c, list, c->conf.start_ms, timeout_ms, &err);
                ok = !err;
        }
        if (!ok) {
                ab_info(COMP, "no timestamp lookup (%s): reading from the "
                              "beginning",
                        err ? rd_kafka_err2str(err) : "the broker answers -1");
                for (i = 0; i < list->cnt; i++) {
                        list->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
                }
        } else {
                for (i = 0; i < list->cnt; i++) {
                        list->elems[i].offset = at_position(&at->elems[i],
                                                            &hi->elems[i]);
                }
                ab_info(COMP, "starting at the first records of the window "
                              "(timestamp lookup)");
        }
        if (probe) {
                rd_kafka_topic_partition_list_destroy(probe);
        }
        if (at) {
                rd_kafka_topic_partition_list_destroy(at);
        }
}

/* librdkafka 2.0.2 stops fetching a partition once the local queue holds
 * queued.min.messages and looks again only when its broker thread wakes,
 * up to a second later (2.1 added fetch.queue.backoff.ms for this). A
 * consumer slower than its broker stalled that long at every refill:
 * 1M records took 5-7 s instead of 2, and with a 5,000-message queue 116
 * s instead of 18. Any request queued for a broker thread wakes it; a
 * watermark query of one partition per leader is the cheapest one that
 * changes nothing (pause/resume would purge the prefetched records). The
 * consuming thread asks for one while records flow, at most every 20 ms
 * (50 small requests a second per leader broker, none when idle). */
#define WAKE_INTERVAL_MS 20
#define WAKE_TARGETS 64
#define WAKE_REFRESH_MS 30000

typedef struct wake_target_s {
        char topic[256];
        int32_t partition;
        int32_t leader;
} wake_target_t;

static int assigned_locked(ab_consume_t *c, const char *topic, int32_t part) {
        size_t i;

        for (i = 0; i < c->part_cnt; i++) {
                if (c->parts[i].assigned && c->parts[i].partition == part &&
                    !strcmp(c->parts[i].topic, topic)) {
                        return 1;
                }
        }
        return 0;
}

/* One assigned partition per leader broker, from fresh metadata of each
 * topic read (at most a few dozen topics: one request each). */
static size_t wake_targets(ab_consume_t *c, wake_target_t *t) {
        const struct rd_kafka_metadata *md;
        const rd_kafka_metadata_partition_t *mp;
        rd_kafka_topic_t *rkt;
        const char *topic;
        size_t i, k, n = 0;
        int j, seen;

        for (i = 0; c->topics[i] && n < WAKE_TARGETS &&
                    !atomic_load(&c->waker_stop);
             i++) {
                topic = c->topics[i];
                if (topic[0] == '^' || !(rkt = rd_kafka_topic_new(c->rk, topic, NULL))) {
                        continue; /* a pattern: its topics are not known here */
                }
                if (rd_kafka_metadata(c->rk, 0, rkt, &md, 2000) == 0) {
                        for (j = 0; md->topic_cnt == 1 &&
                                    j < md->topics[0].partition_cnt && n < WAKE_TARGETS;
                             j++) {
                                mp = &md->topics[0].partitions[j];
                                for (k = 0, seen = 0; k < n; k++) {
                                        seen |= t[k].leader == mp->leader;
                                }
                                pthread_mutex_lock(&c->parts_lock);
                                seen |= !assigned_locked(c, topic, mp->id);
                                pthread_mutex_unlock(&c->parts_lock);
                                if (!seen) {
                                        snprintf(t[n].topic, sizeof(t[n].topic), "%s",
                                                 topic);
                                        t[n].partition = mp->id;
                                        t[n].leader    = mp->leader;
                                        n++;
                                }
                        }
                        rd_kafka_metadata_destroy(md);
                }
                rd_kafka_topic_destroy(rkt);
        }
        return n;
}

static void *waker_main(void *arg) {
        ab_consume_t *c = arg;
        wake_target_t *t;
        int64_t lo, hi, refreshed = 0;
        size_t n = 0, i;
        int gen = -1;

        if (!(t = calloc(WAKE_TARGETS, sizeof(*t)))) {
                return NULL;
        }
        while (!atomic_load(&c->waker_stop)) {
                if (atomic_exchange(&c->want_wake, 0)) {
                        if (gen != atomic_load(&c->assign_gen) ||
                            ab_time_now_ms() - refreshed > WAKE_REFRESH_MS) {
                                gen       = atomic_load(&c->assign_gen);
                                n         = wake_targets(c, t);
                                refreshed = ab_time_now_ms();
                        }
                        for (i = 0; i < n && !atomic_load(&c->waker_stop); i++) {
                                rd_kafka_query_watermark_offsets(
                                    c->rk, t[i].topic, t[i].partition, &lo, &hi,
                                    500);
                        }
                }
                usleep(WAKE_INTERVAL_MS * 1000);
        }
        free(t);
        return NULL;
}

static void waker_start(ab_consume_t *c) {
        if (!c->waker_started &&
            pthread_create(&c->waker, NULL, waker_main, c) == 0) {
                c->waker_started = 1;
        }
}

ab_err_t ab_consume_start(ab_consume_t *c, int timeout_ms, char *errstr,
                          size_t errstr_size) {
        rd_kafka_topic_partition_list_t *list = NULL, *lo = NULL, *hi = NULL;
        rd_kafka_resp_err_t err, lerr = 0, herr = 0;
        ab_err_t ret;
        int64_t from, total = 0;
        part_t *p;
        int i;

        c->last_commit_ms = ab_time_now_ms();
        if (c->conf.group_id) {
                waker_start(c);
                return ab_consumer_subscribe(c->consumer, c->conf.topics,
                                             c->conf.topic_cnt, errstr,
                                             errstr_size);
        }
        ret = ab_consumer_assign_all(c->consumer, c->conf.topics,
                                     c->conf.topic_cnt,
                                     RD_KAFKA_OFFSET_BEGINNING, timeout_ms,
                                     errstr, errstr_size);
        if (ret) {
                return ret;
        }
        if (rd_kafka_assignment(c->rk, &list) || !list) {
                ab_errstr_set(errstr, errstr_size, "no assignment");
                return AB_ERR_KAFKA;
        }
        /* Offset lookups wait behind a fetch long-poll (fetch.wait.max.ms)
         * on the same broker connection: stop fetching until the start
         * positions are known. */
        rd_kafka_assign(c->rk, NULL);
        lo = list_offsets(c, list, RD_KAFKA_OFFSET_BEGINNING, timeout_ms, &lerr);
        hi = list_offsets(c, list, RD_KAFKA_OFFSET_END, timeout_ms, &herr);
        if (lerr || herr) {
                /* Without the watermarks there is no catch-up goal; let the
                 * caller retry rather than report ready too early. */
                ab_errstr_set(errstr, errstr_size, "cannot read the "
                              "partitions' offsets: %s",
                              rd_kafka_err2str(lerr ? lerr : herr));
                ret = AB_ERR_KAFKA;
                goto done;
        }
        if (c->conf.start_ms > 0) {
                start_positions(c, list, lo, hi, timeout_ms);
        }
        for (i = 0; i < list->cnt; i++) {
                p = part_find(c, list->elems[i].topic,
                              list->elems[i].partition, 1);
                if (!p) {
                        continue;
                }
                p->assigned = 1;
                if (hi->elems[i].offset < 0) {
                        ab_warn(COMP, "%s [%" PRId32 "]: no high watermark "
                                      "(%s): no catch-up goal",
                                hi->elems[i].topic, hi->elems[i].partition,
                                rd_kafka_err2str(hi->elems[i].err));
                        continue; /* no answer: no goal, counts as caught up */
                }
                p->target = hi->elems[i].offset;
                /* Where reading starts counts as read: a partition started
                 * at its end (nothing inside the window) is caught up
                 * without a record. */
                from = list->elems[i].offset >= 0 ? list->elems[i].offset
                       : list->elems[i].offset == RD_KAFKA_OFFSET_END
                           ? hi->elems[i].offset
                           : lo->elems[i].offset;
                p->read = from;
                total += from >= 0 && p->target > from ? p->target - from : 0;
        }
        atomic_fetch_add(&c->assign_gen, 1);
        waker_start(c);
        c->assigned_ms = ab_time_now_ms();
        err = rd_kafka_assign(c->rk, list);
        if (err) {
                ab_errstr_set(errstr, errstr_size, "assign: %s",
                              rd_kafka_err2str(err));
                ret = AB_ERR_KAFKA;
                goto done;
        }
        ab_info(COMP, "reading %zu partition(s) from %s; about %" PRId64
                      " records to catch up",
                c->part_cnt,
                c->conf.start_ms > 0 ? "a timestamp" : "the beginning", total);
        ret = AB_OK;
done:
        rd_kafka_topic_partition_list_destroy(list);
        if (lo) {
                rd_kafka_topic_partition_list_destroy(lo);
        }
        if (hi) {
                rd_kafka_topic_partition_list_destroy(hi);
        }
        return ret;
}

void ab_consume_set_offset(rd_kafka_topic_partition_list_t *parts,
                           const char *topic, int32_t partition,
                           int64_t offset) {
        rd_kafka_topic_partition_t *tp;

        tp = rd_kafka_topic_partition_list_find(parts, topic, partition);
        if (tp) {
                tp->offset = offset;
        }
}

void ab_consume_decode(ab_consume_t *c, const char *topic, const void *value,
                       size_t len, ab_consume_rec_t *rec) {
        ab_err_t err;
        ab_record_kind_t fk;

        rec->topic     = topic;
        rec->value     = value;
        rec->value_len = len;
        if (!value || len == 0) {
                rec->kind = AB_CONSUME_UNDECODABLE;
                snprintf(rec->error, sizeof(rec->error), "empty value");
                return;
        }
        if (!strcmp(topic, c->topic_rejected) ||
            !strcmp(topic, c->topic_deadletter)) {
                fk  = !strcmp(topic, c->topic_rejected) ? AB_RECORD_REJECTED
                                                        : AB_RECORD_DEADLETTER;
                err = ab_record_failure_decode(fk, value, len, &rec->fail_doc,
                                               &rec->fail, rec->error,
                                               sizeof(rec->error));
                rec->kind = err ? AB_CONSUME_UNDECODABLE
                                : fk == AB_RECORD_REJECTED ? AB_CONSUME_REJECTED
                                                           : AB_CONSUME_DEADLETTER;
                return;
        }
        err = ab_avro_decode_view(c->conf.codec, value, len, &rec->env,
                                  rec->error, sizeof(rec->error));
        rec->kind = err ? AB_CONSUME_UNDECODABLE : AB_CONSUME_ACCEPTED;
}

void ab_consume_rec_clear(ab_consume_rec_t *rec) {
        ab_envelope_clear(&rec->env);
        json_decref(rec->fail_doc);
        if (rec->msg) {
                rd_kafka_message_destroy(rec->msg);
        }
        memset(rec, 0, sizeof(*rec));
}

static int64_t lag_refresh(ab_consume_t *c) {
        int64_t lo, hi, base, lag, total = 0;
        part_t *p;
        size_t i;

        for (i = 0; i < c->part_cnt; i++) {
                p = &c->parts[i];
                if (!p->assigned) {
                        continue;
                }
                lo = hi = -1;
                if (rd_kafka_get_watermark_offsets(c->rk, p->topic, p->partition,
                                                   &lo, &hi) ||
                    hi < 0) {
                        continue;
                }
                base = p->done >= 0 ? p->done : p->read >= 0 ? p->read : lo;
                lag  = hi > base ? hi - base : 0;
                total += lag;
                if (p->m_lag) {
                        ab_metric_set(p->m_lag, (double)lag);
                }
        }
        if (c->m_lag_total) {
                ab_metric_set(c->m_lag_total, (double)total);
        }
        atomic_store(&c->lag_total, total);
        return total;
}

size_t ab_consume_poll(ab_consume_t *c, ab_consume_rec_t *recs, size_t max,
                       int timeout_ms) {
        rd_kafka_message_t **msgs;
        rd_kafka_message_t *stack[256];
        ssize_t n;
        size_t i, out = 0;
        rd_kafka_message_t *m;
        ab_consume_rec_t *rec;
        part_t *p;
        int64_t now = ab_time_now_ms();
        char errstr[256];

        if (max > 256) {
                max = 256;
        }
        msgs = stack;
        n    = rd_kafka_consume_batch_queue(c->queue, timeout_ms, msgs, max);
        for (i = 0; n > 0 && i < (size_t)n; i++) {
                m = msgs[i];
                if (m->err) {
                        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                                ab_warn(COMP, "consume %s [%d]: %s",
                                        m->rkt ? rd_kafka_topic_name(m->rkt) : "-",
                                        m->partition,
                                        rd_kafka_message_errstr(m));
                                if (c->m_errors) {
                                        ab_metric_inc(AB_METRIC_WITH(
                                            c->m_errors, rd_kafka_err2name(m->err)));
                                }
                        }
                        rd_kafka_message_destroy(m);
                        continue;
                }
                rec = &recs[out++];
                memset(rec, 0, sizeof(*rec));
                rec->msg          = m;
                rec->partition    = m->partition;
                rec->offset       = m->offset;
                rec->timestamp_ms = rd_kafka_message_timestamp(m, NULL);
                rec->key          = m->key;
                rec->key_len      = m->key_len;
                ab_consume_decode(c, rd_kafka_topic_name(m->rkt), m->payload,
                                  m->len, rec);
                if (rec->kind == AB_CONSUME_UNDECODABLE) {
                        ab_warn(COMP, "undecodable record %s [%d] @%" PRId64
                                      ": %s",
                                rec->topic, rec->partition, rec->offset,
                                rec->error);
                }
                if ((p = part_find(c, rec->topic, rec->partition, 0))) {
                        p->read = rec->offset + 1;
                }
                if (c->m_records) {
                        /* a label lookup per record showed in profiles */
                        if (p && !p->m_rec[rec->kind]) {
                                p->m_rec[rec->kind] = AB_METRIC_WITH(
                                    c->m_records, rec->topic,
                                    ab_consume_kind_name(rec->kind));
                        }
                        ab_metric_inc(p ? p->m_rec[rec->kind]
                                        : AB_METRIC_WITH(c->m_records, rec->topic,
                                                         ab_consume_kind_name(
                                                             rec->kind)));
                }
        }
        if (n < 0) {
                ab_consume_fatal(c, errstr, sizeof(errstr));
        }
        if (c->conf.group_id && c->stored_since_commit &&
            now - c->last_commit_ms >= COMMIT_INTERVAL_MS) {
                if (ab_consume_commit(c, 1, errstr, sizeof(errstr))) {
                        ab_warn(COMP, "commit: %s", errstr);
                }
        }
        if (now - c->last_lag_ms >= LAG_INTERVAL_MS) {
                c->last_lag_ms = now;
                lag_refresh(c);
        }
        /* While records flow, keep the broker threads looking: the queue
         * goes under the threshold between two wakes, not after the last
         * record (idle: no wakes, no requests). */
        if (n > 0) {
                atomic_store(&c->want_wake, 1);
        }
        if (!atomic_load(&c->caught_up) && !c->conf.group_id) {
                ab_consume_caught_up(c, NULL, 0);
        }
        return out;
}

ab_err_t ab_consume_done_at(ab_consume_t *c, const char *topic,
                            int32_t partition, int64_t offset) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;
        part_t *p;

        p = part_find(c, topic, partition, 0);
        if (p && offset + 1 > p->done) {
                p->done = offset + 1;
        }
        if (!c->conf.group_id) {
                return AB_OK;
        }
        list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, topic, partition)->offset =
            offset + 1;
        err = rd_kafka_offsets_store(c->rk, list);
        if (!err && list->elems[0].err) {
                err = list->elems[0].err;
        }
        rd_kafka_topic_partition_list_destroy(list);
        if (err) {
                /* _STATE: the partition went to another member, which
                 * redoes the work from the last commit. */
                ab_debug(COMP, "store %s [%d] @%" PRId64 ": %s", topic,
                         partition, offset, rd_kafka_err2str(err));
                return AB_ERR_KAFKA;
        }
        c->stored_since_commit = 1;
        return AB_OK;
}

ab_err_t ab_consume_done(ab_consume_t *c, const ab_consume_rec_t *rec) {
        return ab_consume_done_at(c, rec->topic, rec->partition, rec->offset);
}

ab_err_t ab_consume_commit(ab_consume_t *c, int async, char *errstr,
                           size_t errstr_size) {
        c->last_commit_ms      = ab_time_now_ms();
        c->stored_since_commit = 0;
        if (!c->conf.group_id) {
                return AB_OK;
        }
        return ab_consumer_commit(c->consumer, async, errstr, errstr_size);
}

ab_err_t ab_consume_pause_partition(ab_consume_t *c, const char *topic,
                                    int32_t partition, int pause) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;

        list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, topic, partition);
        err = pause ? rd_kafka_pause_partitions(c->rk, list)
                    : rd_kafka_resume_partitions(c->rk, list);
        rd_kafka_topic_partition_list_destroy(list);
        if (!err && !pause) {
                /* A resumed partition is fetched again only when its
                 * broker thread wakes (the stall of the waker's comment);
                 * when every other partition is paused or drained no
                 * record flows to ask for that wake. The sink pauses a
                 * partition with a backlog: pausing at four batches, it
                 * forwarded 136-143k events/s without this, 219-239k
                 * with it. */
                atomic_store(&c->want_wake, 1);
        }
        return err ? AB_ERR_KAFKA : AB_OK;
}

int ab_consume_caught_up(ab_consume_t *c, char *progress,
                         size_t progress_size) {
        int64_t want = 0, got = 0;
        size_t i, done = 0, cnt = 0;
        part_t *p;
        int64_t pos;

        if (c->conf.group_id) {
                return 1;
        }
        for (i = 0; i < c->part_cnt; i++) {
                p = &c->parts[i];
                if (!p->assigned) {
                        continue;
                }
                cnt++;
                pos = p->read;
                if (p->target <= 0 || pos >= p->target) {
                        done++;
                        continue;
                }
                want += p->target;
                got += pos > 0 ? pos : 0;
        }
        if (progress) {
                snprintf(progress, progress_size,
                         "catching up: %zu of %zu partitions read to their "
                         "end, %" PRId64 " records to go",
                         done, cnt, want - got);
        }
        if (done == cnt && !atomic_exchange(&c->caught_up, 1)) {
                ab_info(COMP, "caught up: %zu partition(s) read to their end "
                              "in %.3f s",
                        cnt, (double)(ab_time_now_ms() - c->assigned_ms) / 1000.0);
                if (c->m_catchup) {
                        ab_metric_set(c->m_catchup,
                                      (double)(ab_time_now_ms() - c->assigned_ms) /
                                          1000.0);
                }
        }
        return done == cnt;
}

int64_t ab_consume_lag(const ab_consume_t *c) {
        return atomic_load(&c->lag_total);
}

ab_err_t ab_consume_fatal(ab_consume_t *c, char *errstr, size_t errstr_size) {
        return ab_consumer_fatal(c->consumer, errstr, errstr_size);
}

ab_consumer_t *ab_consume_consumer(ab_consume_t *c) {
        return c->consumer;
}

void ab_consume_destroy(ab_consume_t *c) {
        char errstr[256];
        size_t i;

        if (!c) {
                return;
        }
        if (c->waker_started) {
                atomic_store(&c->waker_stop, 1);
                pthread_join(c->waker, NULL);
        }
        if (c->consumer && c->conf.group_id &&
            ab_consume_commit(c, 0, errstr, sizeof(errstr)) != AB_OK) {
                ab_warn(COMP, "final commit: %s", errstr);
        }
        if (c->queue) {
                rd_kafka_queue_destroy(c->queue);
        }
        ab_consumer_destroy(c->consumer);
        for (i = 0; i < c->part_cnt; i++) {
                free(c->parts[i].topic);
        }
        free(c->parts);
        for (i = 0; c->topics && c->topics[i]; i++) {
                free(c->topics[i]);
        }
        free(c->topics);
        free(c->topic_rejected);
        free(c->topic_deadletter);
        pthread_mutex_destroy(&c->parts_lock);
        free(c);
}
