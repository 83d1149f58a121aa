/* aetherbus - Apache-2.0
 *
 * sink: the forwarding loop of aetherbus-sink. Owns the state of each
 * partition (one open batch, the closed ones waiting behind it, at most
 * one of them in flight so a key's events arrive in order), what an
 * answer does to a batch (done, retried after a backoff with the
 * partition paused, bisected, dead-lettered), the offsets marked done
 * (only once delivered or dead-lettered: at-least-once), the plans that
 * make a batch closed by linger replay with the same range after a crash
 * (sink_plan), readiness, the metrics and the drain on SIGTERM.
 *
 * Everything runs on the thread of sink_run(): the consumer, the HTTP
 * client's callbacks and the dead-letter producer's delivery reports
 * (polled here, no poll thread), so the state needs no lock. The
 * readiness check on ab_service's thread reads two atomics and asks the
 * producer's cluster.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ab_json.h"
#include "ab_log.h"
#include "ab_record.h"
#include "ab_time.h"
#include "sink.h"
#include "sink_plan.h"

#define COMP "sink"
#define POLL_MAX 256
#define WAIT_MAX_MS 100
/* Records taken between two turns of curl while a poll is worked through:
 * a body larger than the socket buffer (16 KiB to start with on Linux)
 * leaves over several turns and an answer is read in one, so serving curl
 * once per poll of 256 records held every request a poll's decoding and
 * rendering per turn (with the backlog marks below, 4.2 ms a request on
 * average on Kafka; 1.1-1.5 ms with this). */
#define PERFORM_EVERY 32
/* The backlog of closed batches a partition is paused at (count or
 * bytes, the one in flight included) and resumed below (both). A pause
 * drops what librdkafka prefetched for the partition; after the resume it
 * is fetched again, and the partition's batches run dry meanwhile. Pausing at two batches and resuming at one did that once per
 * batch while the consumer ran ahead (37 cycles for 81 batches on the
 * devbroker); at four and two, 92-188 cycles for 1M events on Kafka
 * (219-239k events/s); at these marks 0-1 (284-290k). Batches of the
 * defaults (500 events) are ~115 KB: the count binds; 1 MiB ones stop at
 * the bytes. */
#define PENDING_MAX 16
#define PENDING_RESUME 8
#define PENDING_BYTES_MAX (4 * 1024 * 1024)
#define PENDING_BYTES_RESUME (2 * 1024 * 1024)
#define START_TIMEOUT_MS 10000
#define DLQ_RETRY_MS 1000
#define DLQ_CODE_MAX 32
#define PLAN_FETCH_TIMEOUT_MS 10000
#define PLAN_RETRY_MS 1000
#define PLAN_BATCH 64

typedef struct part_s part_t;

/* Whether a batch's range must be written down (sink_plan) before it is
 * sent, so that after a crash it is re-read as the same batch. */
typedef enum {
        JOB_PLAN_NONE = 0, /* closed by count or bytes: a fresh cut from
                              its first offset ends where it does */
        JOB_PLAN_NEEDED,   /* closed by time (linger, drain) or a half of
                              a split: commit its plan first */
        JOB_PLAN_COMMITTED,
} job_plan_t;

/* One closed batch and what is left to do for it. */
typedef struct job_s {
        struct job_s *next;
        sink_batch_t *b;
        part_t *part;
        int64_t done_to;  /* offset marked done when the job is: its last
                             event, or a skipped record after it */
        int orphan;       /* its partition was revoked meanwhile: the
                             answer is dropped, the new owner redoes it */
        job_plan_t plan;
        /* dead-lettering */
        size_t dlq_next;  /* next event to produce */
        int dlq_pending;  /* delivery reports awaited */
        int dlq_failed;
        int64_t dlq_retry_ms;
        int dlq_status;
        char dlq_code[DLQ_CODE_MAX];
        char dlq_reason[256];
        char dlq_excerpt[SINK_CLIENT_EXCERPT_MAX + 1];
} job_t;

typedef enum {
        P_IDLE = 0, /* the head job (if any) may be sent */
        P_SENDING,  /* the head job is in flight */
        P_BACKOFF,  /* the head job waits until next_ms */
        P_DLQ,      /* the head job's events go to the dead-letter topic */
} pstate_t;

struct part_s {
        char *topic;
        int32_t partition;
        int assigned;
        sink_batch_t *open;
        int64_t open_skip;   /* a skipped offset after open's events, -1 */
        job_t *head, *tail;
        size_t njobs;
        pstate_t state;
        unsigned attempt;    /* failures of the head job so far */
        int64_t next_ms;
        int paused;
        int64_t next_offset; /* below it: already taken (a refetch), -1 */
        /* The committed plan of the first batch after an assignment,
         * looked up when the partition's first record is taken. */
        int plan_known;
        int64_t plan_start, plan_end; /* -1: none (or used) */
        int64_t open_end; /* open follows the plan: it closes at this
                             offset and not by linger; -1 */
};

/* Stage indexes, in the order ab_stage_new() names them. */
#define STAGE_SUNK         0
#define STAGE_DEADLETTERED 1
#define STAGE_FILTERED     2

struct sink_s {
        const sink_conf_t *conf;
        ab_catalog_t *catalog;
        ab_avro_codec_t *codec;
        ab_catalog_topics_t topics;
        char *pattern;
        ab_metrics_t *metrics;
        ab_producer_t *producer;
        ab_consume_t *consume;
        sink_client_t *client;
        ab_service_t *svc;
        sink_batch_limits_t limits;
        part_t **parts;
        size_t part_cnt;
        size_t part_last;    /* part_get()'s last hit */
        size_t rr;
        job_t *orphans;      /* revoked while in flight, until answered */
        uint64_t rng;
        atomic_int joined;
        ab_metric_t *m_batches; /* {outcome} */
        ab_metric_t *m_delivered;
        ab_metric_t *m_dead;
        ab_metric_t *m_skipped; /* {reason} */
        ab_metric_t *m_retries;
        ab_metric_t *m_inflight;
        ab_metric_t *m_latency;
        ab_stage_t *stage; /* "sunk,deadlettered", per prefix and minute */
        ab_auth_t *auth;   /* GET /admin/stages */
};

/* The clock batches linger by and backoffs wait on. */
static int64_t mono_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sink_name_match(const char *names, const char *name) {
        const char *p = names, *e;
        size_t n;

        if (!names || !*names) {
                return 1;
        }
        if (!name) {
                return 0;
        }
        while (*p) {
                while (*p == ' ' || *p == ',') {
                        p++;
                }
                e = p;
                while (*e && *e != ',') {
                        e++;
                }
                n = (size_t)(e - p);
                while (n && p[n - 1] == ' ') {
                        n--;
                }
                if (n && p[n - 1] == '*') {
                        if (!strncmp(name, p, n - 1)) {
                                return 1;
                        }
                } else if (n && strlen(name) == n && !strncmp(name, p, n)) {
                        return 1;
                }
                p = e;
        }
        return 0;
}

/* ------------------------------------------------------------------ */
/* Partitions and jobs                                                 */
/* ------------------------------------------------------------------ */

static void job_free(job_t *j) {
        if (j) {
                sink_batch_destroy(j->b);
                free(j);
        }
}

static part_t *part_get(sink_t *sk, const char *topic, int32_t partition,
                        int create) {
        part_t **np, *p;
        size_t i;

        /* Records come in runs per partition: the last one found first. */
        if (sk->part_last < sk->part_cnt) {
                p = sk->parts[sk->part_last];
                if (p->partition == partition && !strcmp(p->topic, topic)) {
                        return p;
                }
        }
        for (i = 0; i < sk->part_cnt; i++) {
                p = sk->parts[i];
                if (p->partition == partition && !strcmp(p->topic, topic)) {
                        sk->part_last = i;
                        return p;
                }
        }
        if (!create) {
                return NULL;
        }
        np = realloc(sk->parts, (sk->part_cnt + 1) * sizeof(*np));
        if (!np) {
                return NULL;
        }
        sk->parts = np;
        if (!(p = calloc(1, sizeof(*p))) || !(p->topic = strdup(topic))) {
                free(p);
                return NULL;
        }
        p->partition   = partition;
        p->open_skip   = -1;
        p->next_offset = -1;
        p->plan_start  = -1;
        p->plan_end    = -1;
        p->open_end    = -1;
        sk->parts[sk->part_cnt++] = p;
        return p;
}

static void mark_done(sink_t *sk, part_t *p, int64_t offset) {
        if (sk->consume && ab_consume_done_at(sk->consume, p->topic,
                                              p->partition, offset) != AB_OK) {
                ab_debug(COMP, "%s [%" PRId32 "] @%" PRId64
                               ": no longer ours, not stored",
                         p->topic, p->partition, offset);
        }
}

static void set_paused(sink_t *sk, part_t *p, int pause) {
        if (p->paused == pause) {
                return;
        }
        if (ab_consume_pause_partition(sk->consume, p->topic, p->partition,
                                       pause) != AB_OK) {
                ab_warn(COMP, "cannot %s %s [%" PRId32 "]",
                        pause ? "pause" : "resume", p->topic, p->partition);
                return;
        }
        p->paused = pause;
}

/* Fetching waits while the head batch is being retried (nothing new
 * piles up behind a sink that is down) or the backlog is full, and starts
 * again once the backlog is down to the resume marks. */
static void update_pause(sink_t *sk, part_t *p) {
        size_t bytes = 0;
        job_t *j;

        for (j = p->head; j; j = j->next) {
                bytes += sink_batch_size(j->b);
        }
        if (p->attempt > 0 || p->njobs >= PENDING_MAX ||
            bytes >= PENDING_BYTES_MAX) {
                set_paused(sk, p, 1);
        } else if (p->njobs <= PENDING_RESUME &&
                   bytes <= PENDING_BYTES_RESUME) {
                set_paused(sk, p, 0);
        }
}

/* Drops a partition's state; what is in flight finishes as an orphan. */
static void part_reset(sink_t *sk, part_t *p) {
        job_t *j, *next;

        set_paused(sk, p, 0);
        p->paused = 0;
        sink_batch_destroy(p->open);
        p->open = NULL;
        for (j = p->head; j; j = next) {
                next = j->next;
                if ((j == p->head && p->state == P_SENDING) ||
                    j->dlq_pending > 0) {
                        j->orphan = 1;
                        j->next   = sk->orphans;
                        sk->orphans = j;
                } else {
                        job_free(j);
                }
        }
        p->head = p->tail = NULL;
        p->njobs       = 0;
        p->state       = P_IDLE;
        p->attempt     = 0;
        p->open_skip   = -1;
        p->next_offset = -1;
        p->plan_known  = 0;
        p->plan_start  = -1;
        p->plan_end    = -1;
        p->open_end    = -1;
}

static void orphan_free(sink_t *sk, job_t *j) {
        job_t **pp;

        for (pp = &sk->orphans; *pp; pp = &(*pp)->next) {
                if (*pp == j) {
                        *pp = j->next;
                        break;
                }
        }
        job_free(j);
}

static void pop_head(part_t *p) {
        job_t *j = p->head;

        p->head = j->next;
        if (!p->head) {
                p->tail = NULL;
        }
        p->njobs--;
        job_free(j);
        p->state   = P_IDLE;
        p->attempt = 0;
}

static void on_assign(void *opaque, rd_kafka_topic_partition_list_t *parts) {
        sink_t *sk = opaque;
        part_t *p;
        int i;

        for (i = 0; i < parts->cnt; i++) {
                p = part_get(sk, parts->elems[i].topic,
                             parts->elems[i].partition, 1);
                if (!p) {
                        ab_error(COMP, "out of memory tracking %s [%" PRId32
                                       "]",
                                 parts->elems[i].topic,
                                 parts->elems[i].partition);
                        continue;
                }
                part_reset(sk, p);
                p->assigned = 1;
        }
        atomic_store(&sk->joined, 1);
}

static void on_revoke(void *opaque,
                      const rd_kafka_topic_partition_list_t *parts, int lost) {
        sink_t *sk = opaque;
        part_t *p;
        int i;

        (void)lost;
        /* Offsets are stored as batches complete: nothing to add here;
         * what is not done is the next owner's to send again. */
        for (i = 0; i < parts->cnt; i++) {
                p = part_get(sk, parts->elems[i].topic,
                             parts->elems[i].partition, 0);
                if (p) {
                        part_reset(sk, p);
                        p->assigned = 0;
                }
        }
}

/* The open batch becomes the tail job. \p by_limit: it closed at
 * SINK_BATCH_MAX_EVENTS or _BYTES, which a re-read cuts the same way;
 * anything else (linger, drain) depends on timing. */
static ab_err_t close_open(sink_t *sk, part_t *p, int by_limit) {
        job_t *j;

        (void)sk;
        if (!p->open) {
                return AB_OK;
        }
        if (!(j = calloc(1, sizeof(*j)))) {
                return AB_ERR_NOMEM;
        }
        j->b       = p->open;
        j->part    = p;
        j->done_to = sink_batch_last(p->open);
        if (p->open_end >= 0) {
                /* Re-read by its plan: what is committed names it. */
                j->plan = sink_batch_last(p->open) == p->open_end
                              ? JOB_PLAN_COMMITTED
                              : JOB_PLAN_NEEDED;
        } else {
                j->plan = by_limit ? JOB_PLAN_NONE : JOB_PLAN_NEEDED;
        }
        p->open_end = -1;
        if (p->open_skip > j->done_to) {
                j->done_to = p->open_skip;
        }
        if (p->tail) {
                p->tail->next = j;
        } else {
                p->head = j;
        }
        p->tail = j;
        p->njobs++;
        p->open      = NULL;
        p->open_skip = -1;
        return AB_OK;
}

/* A record the sink does not forward still moves the offsets on, once
 * everything before it is done. */
static void skip(sink_t *sk, part_t *p, int64_t offset, const char *reason) {
        ab_metric_inc(AB_METRIC_WITH(sk->m_skipped, reason));
        if (p->open) {
                p->open_skip = offset;
        } else if (p->tail) {
                p->tail->done_to = offset;
        } else {
                mark_done(sk, p, offset);
        }
}

/* The consumer of the group, whose commits carry the plans. */
static rd_kafka_t *group_rk(sink_t *sk) {
        return ab_consumer_handle(ab_consume_consumer(sk->consume));
}

/* Once per assignment: whether the partition's first batch was sent
 * before (by a crashed or revoked owner) and where it ended. */
static void plan_lookup(sink_t *sk, part_t *p) {
        char errstr[256];
        int64_t start, end;

        p->plan_known = 1;
        if (sink_plan_fetch(group_rk(sk), p->topic, p->partition,
                            PLAN_FETCH_TIMEOUT_MS, &start, &end, errstr,
                            sizeof(errstr)) != AB_OK) {
                ab_warn(COMP, "%s; its first batch is cut as usual (after a "
                              "crash it may carry another key)",
                        errstr);
                return;
        }
        if (end >= 0) {
                p->plan_start = start;
                p->plan_end   = end;
        }
}

/* A new batch at \p offset: the first after the assignment follows the
 * plan when it starts where the plan does. */
static void plan_open(part_t *p, int64_t offset) {
        if (p->plan_end < 0) {
                return;
        }
        if (offset == p->plan_start) {
                p->open_end = p->plan_end;
                ab_info(COMP, "%s [%" PRId32 "] @%" PRId64 "-%" PRId64
                              ": sent before, cut at the same offsets",
                        p->topic, p->partition, p->plan_start, p->plan_end);
        } else {
                ab_info(COMP, "%s [%" PRId32 "]: plan @%" PRId64 "-%" PRId64
                              " not followed, the first event is @%" PRId64,
                        p->topic, p->partition, p->plan_start, p->plan_end,
                        offset);
        }
        p->plan_start = p->plan_end = -1;
}

/* Closes a batch cut by its plan once \p offset reaches its end (or,
 * \p past, goes beyond it: that offset was not read, a gap). */
static void plan_close(sink_t *sk, part_t *p, int64_t offset, int past) {
        if (!p->open) {
                p->open_end = -1;
                return;
        }
        if (p->open_end >= 0 &&
            (past ? offset > p->open_end : offset >= p->open_end) &&
            close_open(sk, p, 0) != AB_OK) {
                ab_error(COMP, "out of memory closing a batch of %s [%" PRId32
                               "]",
                         p->topic, p->partition);
        }
}

static void take(sink_t *sk, ab_consume_rec_t *rec, int64_t now) {
        char errstr[256] = "";
        part_t *p;
        ab_err_t err;

        p = part_get(sk, rec->topic, rec->partition, 0);
        if (!p || !p->assigned) {
                return; /* not ours (any more): its owner reads it */
        }
        if (p->next_offset >= 0 && rec->offset < p->next_offset) {
                return; /* fetched again after a resume: already taken */
        }
        p->next_offset = rec->offset + 1;
        if (!p->plan_known) {
                plan_lookup(sk, p);
        }
        plan_close(sk, p, rec->offset, 1);
        if (rec->kind != AB_CONSUME_ACCEPTED) {
                skip(sk, p, rec->offset, ab_consume_kind_name(rec->kind));
                goto out;
        }
        if (!sink_name_match(sk->conf->names, rec->env.name)) {
                /* Not forwarded by choice (SINK_EVENT_NAMES): handled,
                 * so reconcile does not take it for a loss. */
                ab_stage_count(sk->stage, STAGE_FILTERED,
                               ab_stage_topic_prefix(
                                   rec->topic, sk->conf->common.topic_prefix),
                               rec->env.received_at_ms > 0
                                   ? rec->env.received_at_ms
                                   : rec->timestamp_ms,
                               1);
                skip(sk, p, rec->offset, "name");
                goto out;
        }
        if (!p->open) {
                plan_open(p, rec->offset);
        }
        if (!p->open && !(p->open = sink_batch_new(p->topic, p->partition,
                                                   &sk->limits, errstr,
                                                   sizeof(errstr)))) {
                goto fail;
        }
        err = sink_batch_add(p->open, rec->offset, &rec->env, now, errstr,
                             sizeof(errstr));
        if (err == AB_ERR_TOO_LARGE) {
                if (close_open(sk, p, 1) != AB_OK ||
                    !(p->open = sink_batch_new(p->topic, p->partition,
                                               &sk->limits, errstr,
                                               sizeof(errstr)))) {
                        goto fail;
                }
                err = sink_batch_add(p->open, rec->offset, &rec->env, now,
                                     errstr, sizeof(errstr));
        }
        if (err != AB_OK) {
                goto fail;
        }
        if (sink_batch_full(p->open) && close_open(sk, p, 1) != AB_OK) {
                ab_error(COMP, "out of memory closing a batch of %s [%" PRId32
                               "]",
                         p->topic, p->partition);
        }
        goto out;

fail:
        /* Only an envelope the batch cannot write (or no memory) gets
         * here; it is counted and passed over rather than wedging the
         * partition. An open batch it would have started goes too. */
        if (p->open && !sink_batch_count(p->open)) {
                sink_batch_destroy(p->open);
                p->open      = NULL;
                p->open_skip = -1;
        }
        ab_error(COMP, "%s [%" PRId32 "] @%" PRId64 ": cannot batch: %s",
                 p->topic, p->partition, rec->offset,
                 errstr[0] ? errstr : "out of memory");
        skip(sk, p, rec->offset, "unwritable");
out:
        plan_close(sk, p, rec->offset, 0);
}

/* ------------------------------------------------------------------ */
/* Dead letters                                                        */
/* ------------------------------------------------------------------ */

static ab_err_t dlq_produce(sink_t *sk, job_t *j, size_t i, char *errstr,
                            size_t errstr_size) {
        ab_record_failure_t f;
        rd_kafka_headers_t *hdrs;
        const char *json, *key;
        char *value;
        size_t len, vlen;
        json_t *orig;
        int64_t off;
        ab_err_t err;

        if (sink_batch_event(j->b, i, &off, &json, &len) != AB_OK) {
                ab_errstr_set(errstr, errstr_size, "no event %zu", i);
                return AB_ERR_INTERNAL;
        }
        orig = ab_json_parse(json, len, 64, NULL, errstr, errstr_size);
        if (!orig) {
                return AB_ERR_INTERNAL;
        }
        ab_record_failure_init(&f, AB_RECORD_DEADLETTER);
        f.reason        = j->dlq_reason;
        f.code          = j->dlq_code;
        f.tenant        = json_string_value(json_object_get(orig, "companyId"));
        f.original      = orig;
        f.src_topic     = j->part->topic;
        f.src_partition = j->part->partition;
        f.src_offset    = off;
        f.http_status   = j->dlq_status;
        f.response      = j->dlq_excerpt[0] ? j->dlq_excerpt : NULL;
        f.failed_at_ms  = ab_time_now_ms();
        if (!(value = ab_record_failure_encode(&f, &vlen, errstr,
                                               errstr_size))) {
                json_decref(orig);
                return AB_ERR_INTERNAL;
        }
        hdrs = ab_record_failure_headers(&f);
        key  = f.tenant ? f.tenant
                        : json_string_value(json_object_get(orig, "id"));
        err  = ab_producer_produce(sk->producer, sk->topics.deadletter, key,
                                   key ? strlen(key) : 0, value, vlen, hdrs, 0,
                                   j, errstr, errstr_size);
        if (err == AB_ERR_TOO_LARGE) {
                /* An event near the batch limit does not fit a record
                 * with its context: keep its first KiB as text rather
                 * than wedge the partition. */
                free(value);
                f.original          = NULL;
                f.original_text     = json;
                f.original_text_len = len;
                value = ab_record_failure_encode(&f, &vlen, errstr,
                                                 errstr_size);
                err   = value ? ab_producer_produce(
                                    sk->producer, sk->topics.deadletter, key,
                                    key ? strlen(key) : 0, value, vlen, hdrs,
                                    0, j, errstr, errstr_size)
                              : AB_ERR_INTERNAL;
        }
        if (err != AB_OK) {
                rd_kafka_headers_destroy(hdrs);
        }
        free(value);
        json_decref(orig);
        return err;
}

/* The minute an event counts in; every receivedAt <= 0 (unknown) is one
 * bucket of its own, as ab_stage_count() treats them alike. */
static int64_t stage_minute(int64_t received_at_ms) {
        return received_at_ms > 0 ? received_at_ms / AB_STAGE_MINUTE_MS
                                  : INT64_MIN;
}

/* The stage counters, once a batch is durable at the sink or in the
 * dead-letter topic: each event by its receivedAt minute, one call per
 * run of events in the same minute (a call per event, each taking the
 * stage lock, cost ~230 instructions an event). */
static void count_stage(sink_t *sk, const sink_batch_t *b, int stage) {
        const char *prefix;
        size_t i, run = 0, n = sink_batch_count(b);
        int64_t first = 0;

        prefix = ab_stage_topic_prefix(sink_batch_topic(b),
                                       sk->conf->common.topic_prefix);
        for (i = 0; i < n; i++) {
                if (run && stage_minute(sink_batch_received(b, i)) !=
                               stage_minute(first)) {
                        ab_stage_count(sk->stage, stage, prefix, first, run);
                        run = 0;
                }
                if (!run) {
                        first = sink_batch_received(b, i);
                }
                run++;
        }
        if (run) {
                ab_stage_count(sk->stage, stage, prefix, first, run);
        }
}

static void h_stages(ab_http_req_t *req, void *opaque) {
        sink_t *sk = opaque;

        ab_stage_respond(sk->stage, sk->auth, req);
}

static void h_admin(ab_http_req_t *req, void *opaque) {
        sink_t *sk = opaque;

        if (strcmp(ab_http_req_method(req), "GET")) {
                ab_http_respond_not_allowed(req);
                return;
        }
        if (!ab_auth_admin(sk->auth, req)) {
                return;
        }
        ab_http_respond_error(req, 404, "no such admin resource",
                              json_string(ab_http_req_path(req)));
}

static const ab_http_route_t routes[] = {
    {.method = "GET", .path = "/admin/stages", .handler = h_stages},
    {.method = "GET", .path = "/admin/", .handler = h_admin,
     .flags = AB_HTTP_PREFIX},
    {.method = NULL},
};

static void dlq_finish(sink_t *sk, part_t *p) {
        job_t *j = p->head;

        if (j->dlq_failed) {
                /* Some record did not make it: all of them again (the
                 * topic may hold a duplicate, never a gap). */
                j->dlq_next     = 0;
                j->dlq_failed   = 0;
                j->dlq_retry_ms = mono_ms() + DLQ_RETRY_MS;
                return;
        }
        ab_metric_add(sk->m_dead, sink_batch_count(j->b));
        count_stage(sk, j->b, STAGE_DEADLETTERED);
        mark_done(sk, p, j->done_to);
        pop_head(p);
}

/* Produces what is left of the head job's dead letters. */
static void dlq_step(sink_t *sk, part_t *p, int64_t now) {
        job_t *j = p->head;
        char errstr[256];
        ab_err_t err;

        if (now < j->dlq_retry_ms) {
                return;
        }
        while (j->dlq_next < sink_batch_count(j->b)) {
                err = dlq_produce(sk, j, j->dlq_next, errstr, sizeof(errstr));
                if (err != AB_OK) {
                        if (err != AB_ERR_UNAVAILABLE) {
                                ab_error(COMP, "dead letter of %s [%" PRId32
                                               "]: %s",
                                         p->topic, p->partition, errstr);
                        }
                        j->dlq_retry_ms = now + (err == AB_ERR_UNAVAILABLE
                                                     ? 50
                                                     : DLQ_RETRY_MS);
                        return;
                }
                j->dlq_pending++;
                j->dlq_next++;
        }
        if (!j->dlq_pending) {
                dlq_finish(sk, p);
        }
}

static void dlq_begin(sink_t *sk, part_t *p, const sink_client_result_t *res,
                      int status, const char *code, const char *reason) {
        job_t *j = p->head;

        ab_warn(COMP, "dead-lettering %zu event(s) of %s [%" PRId32
                      "] @%" PRId64 "-%" PRId64 ": %s",
                sink_batch_count(j->b), p->topic, p->partition,
                sink_batch_first(j->b), sink_batch_last(j->b), reason);
        j->dlq_next     = 0;
        j->dlq_pending  = 0;
        j->dlq_failed   = 0;
        j->dlq_retry_ms = 0;
        j->dlq_status   = status;
        snprintf(j->dlq_code, sizeof(j->dlq_code), "%s", code);
        snprintf(j->dlq_reason, sizeof(j->dlq_reason), "%s", reason);
        snprintf(j->dlq_excerpt, sizeof(j->dlq_excerpt), "%s",
                 res->curl_code ? res->error : res->excerpt);
        p->state = P_DLQ;
        dlq_step(sk, p, mono_ms());
}

static void on_delivery(const ab_delivery_t *dr, void *opaque) {
        sink_t *sk = opaque;
        job_t *j   = dr->msg_opaque;

        if (!j) {
                return;
        }
        j->dlq_pending--;
        if (dr->err != AB_OK) {
                ab_warn(COMP, "dead letter not delivered: %s",
                        dr->errstr ? dr->errstr : "?");
                j->dlq_failed++;
        }
        if (j->orphan) {
                if (j->dlq_pending <= 0) {
                        orphan_free(sk, j);
                }
                return;
        }
        if (j->part->head == j && j->part->state == P_DLQ &&
            j->dlq_pending == 0 && j->dlq_next == sink_batch_count(j->b)) {
                dlq_finish(sk, j->part);
        }
}

/* ------------------------------------------------------------------ */
/* Sending                                                             */
/* ------------------------------------------------------------------ */

static void on_result(const sink_client_result_t *res, void *opaque) {
        sink_t *sk = opaque;
        job_t *j   = res->opaque, *l = NULL, *r = NULL;
        part_t *p;
        char errstr[256], reason[256];
        sink_batch_t *lb, *rb;
        int64_t delay;

        ab_metric_gauge_add(sk->m_inflight, -1);
        ab_metric_observe(sk->m_latency, (double)res->elapsed_ms / 1000.0);
        ab_metric_inc(AB_METRIC_WITH(sk->m_batches,
                                     sink_retry_class_name(res->cls)));
        if (j->orphan) {
                orphan_free(sk, j);
                return;
        }
        p = j->part;
        switch (res->cls) {
        case SINK_RETRY_OK:
                ab_metric_add(sk->m_delivered, sink_batch_count(j->b));
                count_stage(sk, j->b, STAGE_SUNK);
                mark_done(sk, p, j->done_to);
                pop_head(p);
                break;
        case SINK_RETRY_RETRY:
                ab_metric_inc(sk->m_retries);
                p->attempt++;
                if (res->curl_code) {
                        snprintf(reason, sizeof(reason), "%s", res->error);
                } else {
                        snprintf(reason, sizeof(reason), "HTTP %ld",
                                 res->status);
                }
                if (sk->conf->max_retries > 0 &&
                    p->attempt > (unsigned)sk->conf->max_retries) {
                        char why[300];

                        snprintf(why, sizeof(why),
                                 "gave up after %u attempts: %s", p->attempt,
                                 reason);
                        /* ab_record: status 0 says no answer was final */
                        dlq_begin(sk, p, res, 0, "RETRIES_EXHAUSTED", why);
                        break;
                }
                delay = sink_retry_delay_ms(p->attempt - 1,
                                            sk->conf->retry_base_ms,
                                            sk->conf->retry_cap_ms,
                                            res->retry_after_ms, &sk->rng);
                ab_warn(COMP, "%s [%" PRId32 "] @%" PRId64 "-%" PRId64
                              ": %s; attempt %u again in %" PRId64 " ms",
                        p->topic, p->partition, sink_batch_first(j->b),
                        sink_batch_last(j->b), reason, p->attempt + 1, delay);
                p->next_ms = mono_ms() + delay;
                p->state   = P_BACKOFF;
                break;
        case SINK_RETRY_POISON:
                if (sink_batch_count(j->b) < 2) {
                        snprintf(reason, sizeof(reason),
                                 "the sink refused the event: HTTP %ld",
                                 res->status);
                        snprintf(errstr, sizeof(errstr), "HTTP_%ld",
                                 res->status);
                        dlq_begin(sk, p, res, (int)res->status, errstr,
                                  reason);
                        break;
                }
                /* Bisect: the halves take the head's place, in order. */
                lb = rb = NULL;
                if (sink_batch_split(j->b, &lb, &rb, errstr,
                                     sizeof(errstr)) != AB_OK ||
                    !(l = calloc(1, sizeof(*l))) ||
                    !(r = calloc(1, sizeof(*r)))) {
                        free(l);
                        sink_batch_destroy(lb);
                        sink_batch_destroy(rb);
                        ab_error(COMP, "cannot split a batch of %s [%" PRId32
                                       "]: out of memory; retrying it",
                                 p->topic, p->partition);
                        p->attempt++;
                        p->next_ms = mono_ms() + 1000;
                        p->state   = P_BACKOFF;
                        break;
                }
                l->b       = lb;
                l->part    = p;
                l->done_to = sink_batch_last(lb);
                l->plan    = JOB_PLAN_NEEDED; /* ranges no cut makes */
                r->b       = rb;
                r->part    = p;
                r->done_to = j->done_to;
                r->plan    = JOB_PLAN_NEEDED;
                l->next    = r;
                r->next    = j->next;
                p->head    = l;
                if (p->tail == j) {
                        p->tail = r;
                }
                p->njobs++;
                job_free(j);
                p->state   = P_IDLE;
                p->attempt = 0;
                break;
        }
        update_pause(sk, p);
}

static int submit(sink_t *sk, part_t *p) {
        char key[SINK_BATCH_KEY_MAX], errstr[256];
        job_t *j = p->head;
        const char *body;
        size_t len;
        ab_err_t err;

        body = sink_batch_body(j->b, &len);
        if (!body || sink_batch_key(j->b, key, sizeof(key)) != AB_OK) {
                ab_error(COMP, "%s [%" PRId32 "]: empty batch", p->topic,
                         p->partition);
                pop_head(p);
                return 0;
        }
        if (j->plan == JOB_PLAN_NEEDED) {
                return 0; /* plan_heads() first */
        }
        err = sink_client_submit(sk->client, body, len, key, j, errstr,
                                 sizeof(errstr));
        if (err == AB_ERR_UNAVAILABLE) {
                return -1; /* every slot busy */
        }
        if (err != AB_OK) {
                ab_error(COMP, "%s: %s", key, errstr);
                p->attempt++;
                p->next_ms = mono_ms() + 1000;
                p->state   = P_BACKOFF;
                return 0;
        }
        ab_metric_gauge_add(sk->m_inflight, 1);
        p->state = P_SENDING;
        return 0;
}

/* Whether the partition is read up to the high watermark of its last
 * fetch. Linger closes a batch only then: a batch closed by count or
 * bytes the first time is, when re-read after a crash (all of it in
 * Kafka already, but perhaps fetched in pieces), cut the same way rather
 * than by linger between two fetches. Unknown (no fetch yet) counts as
 * read up. */
static int caught_up(sink_t *sk, part_t *p) {
        int64_t lo, hi;

        if (rd_kafka_get_watermark_offsets(group_rk(sk), p->topic,
                                           p->partition, &lo, &hi) ||
            hi < 0) {
                return 1;
        }
        return p->next_offset >= hi;
}

/* Commits the plans of the head batches about to be sent that need one,
 * PLAN_BATCH partitions an OffsetCommit (batches whose linger ran out
 * together cost one round trip). A head is done with everything before
 * it, so its first offset may be committed. Blocking, so that no commit
 * of stored offsets (empty metadata) is sent between a plan and its
 * reply, to land after it and wipe it. A plan that fails is tried again
 * after PLAN_RETRY_MS; its batch waits (sent without it, it could come
 * back with another key). */
static void plan_heads(sink_t *sk) {
        sink_plan_t plans[PLAN_BATCH];
        part_t *pp[PLAN_BATCH];
        char errstr[256];
        size_t i = 0, n, k;
        part_t *p;

        while (i < sk->part_cnt) {
                for (n = 0; i < sk->part_cnt && n < PLAN_BATCH; i++) {
                        p = sk->parts[i];
                        if (!p->assigned || p->state != P_IDLE || !p->head ||
                            p->head->plan != JOB_PLAN_NEEDED) {
                                continue;
                        }
                        plans[n].topic     = p->topic;
                        plans[n].partition = p->partition;
                        plans[n].first     = sink_batch_first(p->head->b);
                        plans[n].last      = sink_batch_last(p->head->b);
                        pp[n++]            = p;
                }
                if (!n) {
                        continue;
                }
                if (sink_plan_commit(group_rk(sk), plans, n, errstr,
                                     sizeof(errstr)) != AB_OK) {
                        ab_warn(COMP, "%s; the batch is sent once it is",
                                errstr);
                }
                for (k = 0; k < n; k++) {
                        if (plans[k].err == AB_OK) {
                                pp[k]->head->plan = JOB_PLAN_COMMITTED;
                        } else {
                                pp[k]->next_ms = mono_ms() + PLAN_RETRY_MS;
                                pp[k]->state   = P_BACKOFF;
                        }
                }
        }
}

/* Closes due batches, ends backoffs, moves dead letters on and hands
 * the partitions' head batches to free slots, round-robin. */
static void tick(sink_t *sk, int64_t now, int draining) {
        size_t i, n = sk->part_cnt;
        part_t *p;

        for (i = 0; i < n; i++) {
                p = sk->parts[i];
                if (!p->assigned) {
                        continue;
                }
                /* A batch cut by its plan waits for its last offset,
                 * even when draining: sent shorter it would carry a key
                 * of its own; left unsent, the next owner cuts it. */
                if (p->open && p->open_end < 0 &&
                    (draining ||
                     (sink_batch_due(p->open, now) && caught_up(sk, p))) &&
                    close_open(sk, p, 0) != AB_OK) {
                        ab_error(COMP, "out of memory closing a batch");
                }
                if (p->state == P_BACKOFF && now >= p->next_ms) {
                        p->state = P_IDLE;
                }
                if (p->state == P_DLQ && p->head) {
                        dlq_step(sk, p, now);
                }
                update_pause(sk, p);
        }
        plan_heads(sk);
        for (i = 0; i < n && sink_client_free_slots(sk->client) > 0; i++) {
                p = sk->parts[(sk->rr + i) % n];
                if (p->assigned && p->state == P_IDLE && p->head &&
                    submit(sk, p) == -1) {
                        break;
                }
        }
        sk->rr = n ? (sk->rr + 1) % n : 0;
}

/* How long the loop may wait: the next batch due or backoff ending. */
static int next_wait(sink_t *sk, int64_t now) {
        int64_t w = WAIT_MAX_MS, d;
        size_t i;
        part_t *p;

        for (i = 0; i < sk->part_cnt; i++) {
                p = sk->parts[i];
                if (!p->assigned) {
                        continue;
                }
                /* due but not read up: the records coming end the wait */
                if (p->open && p->open_end < 0 &&
                    (d = sink_batch_due_in(p->open, now)) >= 0 && d < w &&
                    (d > 0 || caught_up(sk, p))) {
                        w = d;
                }
                if (p->state == P_BACKOFF && p->next_ms - now < w) {
                        w = p->next_ms - now;
                }
                if (p->state == P_DLQ) {
                        w = w > 10 ? 10 : w;
                }
        }
        return w > 0 ? (int)w : 0;
}

static int work_left(sink_t *sk) {
        size_t i;

        if (sink_client_in_flight(sk->client) > 0) {
                return 1;
        }
        for (i = 0; i < sk->part_cnt; i++) {
                if (sk->parts[i]->assigned &&
                    (sk->parts[i]->head ||
                     (sk->parts[i]->open && sk->parts[i]->open_end < 0))) {
                        return 1;
                }
        }
        return 0;
}

/* ------------------------------------------------------------------ */
/* Service                                                             */
/* ------------------------------------------------------------------ */

static int check(void *opaque, char *reason, size_t reason_size) {
        sink_t *sk = opaque;
        const char *t = sk->topics.deadletter;
        char errstr[256];

        if (!atomic_load(&sk->joined)) {
                snprintf(reason, reason_size,
                         "the consumer has not joined its group yet");
                return 0;
        }
        if (ab_producer_ready(sk->producer, &t, 1, 2000, errstr,
                              sizeof(errstr)) != AB_OK) {
                snprintf(reason, reason_size, "dead-letter producer: %s",
                         errstr);
                return 0;
        }
        return 1;
}

static ab_err_t metrics_init(sink_t *sk, char *errstr, size_t errstr_size) {
        if (!(sk->m_batches = ab_metrics_counter(
                  sk->metrics, "batches_total",
                  "Batch requests answered, by outcome (ok, retry, poison).",
                  "outcome", errstr, errstr_size)) ||
            !(sk->m_delivered = ab_metrics_counter(
                  sk->metrics, "events_delivered_total",
                  "Events the sink accepted (a redelivery counts again).",
                  NULL, errstr, errstr_size)) ||
            !(sk->m_dead = ab_metrics_counter(
                  sk->metrics, "events_deadlettered_total",
                  "Events written to the dead-letter topic.", NULL, errstr,
                  errstr_size)) ||
            !(sk->m_skipped = ab_metrics_counter(
                  sk->metrics, "events_skipped_total",
                  "Records not forwarded, by reason (name: SINK_NAMES; "
                  "rejected, deadletter, undecodable: not an event).",
                  "reason", errstr, errstr_size)) ||
            !(sk->m_retries = ab_metrics_counter(
                  sk->metrics, "retries_total",
                  "Batch attempts that will be tried again.", NULL, errstr,
                  errstr_size)) ||
            !(sk->m_inflight = ab_metrics_gauge(
                  sk->metrics, "in_flight",
                  "Batch requests in flight.", NULL, errstr, errstr_size)) ||
            !(sk->m_latency = ab_metrics_histogram(
                  sk->metrics, "batch_duration_seconds",
                  "Batch request latency, submit to answer.", NULL, NULL, 0,
                  errstr, errstr_size))) {
                return AB_ERR_INTERNAL;
        }
        return AB_OK;
}

sink_t *sink_new(const sink_conf_t *conf, char *errstr, size_t errstr_size) {
        sink_client_conf_t ccf;
        ab_producer_conf_t pc;
        ab_service_def_t def;
        sink_t *sk;
        size_t n;

        if (!(sk = calloc(1, sizeof(*sk)))) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        sk->conf = conf;
        atomic_init(&sk->joined, 0);
        sk->rng = (uint64_t)mono_ms() ^ ((uint64_t)getpid() << 32);
        sk->limits.max_events = (size_t)conf->max_events;
        sk->limits.max_bytes  = conf->max_bytes;
        sk->limits.linger_ms  = conf->linger_ms;
        if (!(sk->catalog = ab_catalog_new(errstr, errstr_size)) ||
            !(sk->codec = ab_avro_codec_new(NULL, errstr, errstr_size)) ||
            ab_catalog_topics_init(&sk->topics, sk->catalog,
                                   conf->common.topic_prefix, errstr,
                                   errstr_size) != AB_OK ||
            !(sk->metrics = ab_metrics_new("sink", errstr, errstr_size)) ||
            metrics_init(sk, errstr, errstr_size) != AB_OK ||
            !(sk->stage = ab_stage_new(sk->metrics, "sink", "sunk,deadlettered,filtered",
                                       sk->catalog, 0, errstr, errstr_size)) ||
            !(sk->auth = ab_service_auth_new(&conf->svc, sk->metrics, NULL,
                                             NULL, errstr, errstr_size))) {
                goto fail;
        }
        if (conf->topics && *conf->topics) {
                n = strlen(conf->topics) + 2;
                if (!(sk->pattern = malloc(n))) {
                        ab_errstr_set(errstr, errstr_size, "out of memory");
                        goto fail;
                }
                snprintf(sk->pattern, n, "%s%s",
                         conf->topics[0] == '^' ? "" : "^", conf->topics);
        }
        memset(&ccf, 0, sizeof(ccf));
        ccf.url         = conf->url;
        ccf.token       = conf->token;
        ccf.timeout_ms  = (int)conf->timeout_ms;
        ccf.concurrency = conf->concurrency;
        ccf.gzip        = conf->gzip;
        if (!(sk->client = sink_client_new(&ccf, errstr, errstr_size))) {
                goto fail;
        }
        ab_producer_conf_init(&pc);
        pc.brokers = conf->common.kafka_brokers;
        pc.dr_cb   = on_delivery;
        pc.opaque  = sk;
        if (!(sk->producer = ab_producer_new(&pc, errstr, errstr_size))) {
                goto fail;
        }
        memset(&def, 0, sizeof(def));
        def.name    = "sink";
        def.common  = &conf->common;
        def.sc      = &conf->svc;
        def.metrics = sk->metrics;
        def.routes  = routes;
        def.check   = check;
        def.check_interval_ms = 500;
        def.opaque  = sk;
        if (!(sk->svc = ab_service_new(&def, errstr, errstr_size))) {
                goto fail;
        }
        return sk;

fail:
        sink_destroy(sk);
        return NULL;
}

static ab_consume_t *consume_new(sink_t *sk, char *errstr,
                                 size_t errstr_size) {
        ab_consume_conf_t cc;
        const char *pat[1];

        memset(&cc, 0, sizeof(cc));
        cc.brokers  = sk->conf->common.kafka_brokers;
        cc.group_id = sk->conf->group_id;
        if (sk->pattern) {
                pat[0]       = sk->pattern;
                cc.topics    = pat;
                cc.topic_cnt = 1;
        } else {
                /* The catalog's topics: never rejected nor deadletter. */
                cc.topics    = (const char *const *)sk->topics.names;
                cc.topic_cnt = sk->topics.prefix_cnt;
        }
        cc.topic_prefix = sk->conf->common.topic_prefix;
        cc.session_timeout_ms = (int)sk->conf->session_timeout_ms;
        cc.codec        = sk->codec;
        cc.metrics      = sk->metrics;
        cc.on_assign    = on_assign;
        cc.on_revoke    = on_revoke;
        cc.opaque       = sk;
        return ab_consume_new(&cc, errstr, errstr_size);
}

static void drain(sink_t *sk) {
        int64_t deadline = mono_ms() + sk->conf->svc.shutdown_timeout_ms;
        char errstr[256];
        int64_t now;

        ab_service_drain(sk->svc);
        ab_info(COMP, "stopping: sending what is batched (at most %" PRId64
                      " ms)",
                sk->conf->svc.shutdown_timeout_ms);
        while ((now = mono_ms()) < deadline && work_left(sk)) {
                tick(sk, now, 1);
                if (sink_client_in_flight(sk->client) > 0) {
                        sink_client_perform(sk->client, 20, on_result, sk);
                } else {
                        ab_service_sleep_ms(10);
                }
                ab_producer_poll(sk->producer, 0);
        }
        if (work_left(sk)) {
                ab_warn(COMP, "shutdown timeout: undelivered batches are "
                              "left to the next owner");
        }
        ab_producer_flush(sk->producer, 2000);
        if (ab_consume_commit(sk->consume, 0, errstr, sizeof(errstr)) !=
            AB_OK) {
                ab_warn(COMP, "final commit: %s", errstr);
        }
}

ab_err_t sink_run(sink_t *sk, volatile sig_atomic_t *run) {
        ab_consume_rec_t recs[POLL_MAX];
        ab_consume_t *c;
        char errstr[512];
        size_t n, i;
        int64_t now;
        int wait;

        if (ab_service_start(sk->svc, errstr, sizeof(errstr)) != AB_OK) {
                ab_error("http", "cannot listen: %s", errstr);
                return AB_ERR_IO;
        }
        while (*run && !sk->consume) {
                c = consume_new(sk, errstr, sizeof(errstr));
                if (c && ab_consume_start(c, START_TIMEOUT_MS, errstr,
                                          sizeof(errstr)) == AB_OK) {
                        sk->consume = c;
                        break;
                }
                ab_warn("kafka", "cannot subscribe yet: %s", errstr);
                ab_consume_destroy(c);
                ab_service_sleep_ms(1000);
        }
        ab_info(COMP, "forwarding to %s as group %s", sk->conf->url,
                sk->conf->group_id);
        while (*run) {
                now  = mono_ms();
                wait = next_wait(sk, now);
                if (sink_client_in_flight(sk->client) > 0) {
                        n = ab_consume_poll(sk->consume, recs, POLL_MAX, 0);
                        sink_client_perform(sk->client, n ? 0 : wait,
                                            on_result, sk);
                } else {
                        n = ab_consume_poll(sk->consume, recs, POLL_MAX,
                                            wait);
                }
                now = mono_ms();
                for (i = 0; i < n; i++) {
                        take(sk, &recs[i], now);
                        ab_consume_rec_clear(&recs[i]);
                        if ((i + 1) % PERFORM_EVERY == 0 &&
                            sink_client_in_flight(sk->client) > 0) {
                                sink_client_perform(sk->client, 0, on_result,
                                                    sk);
                        }
                }
                ab_producer_poll(sk->producer, 0);
                tick(sk, now, 0);
                if (sink_client_in_flight(sk->client) > 0) {
                        /* what tick() submitted leaves now, not after the
                         * next poll's records */
                        sink_client_perform(sk->client, 0, on_result, sk);
                }
                if (ab_consume_fatal(sk->consume, errstr, sizeof(errstr))) {
                        ab_error("kafka", "fatal consumer error: %s", errstr);
                        break;
                }
        }
        if (sk->consume) {
                drain(sk);
        }
        ab_service_stop(sk->svc, 1000);
        return AB_OK;
}

void sink_destroy(sink_t *sk) {
        job_t *j, *next;
        size_t i;

        if (!sk) {
                return;
        }
        ab_service_destroy(sk->svc);
        /* The purge's delivery reports and the revoke of the close still
         * find their partitions and jobs. */
        ab_producer_destroy(sk->producer);
        sk->producer = NULL;
        ab_consume_destroy(sk->consume);
        sk->consume = NULL;
        sink_client_destroy(sk->client);
        for (i = 0; i < sk->part_cnt; i++) {
                sink_batch_destroy(sk->parts[i]->open);
                for (j = sk->parts[i]->head; j; j = next) {
                        next = j->next;
                        job_free(j);
                }
                free(sk->parts[i]->topic);
                free(sk->parts[i]);
        }
        free(sk->parts);
        for (j = sk->orphans; j; j = next) {
                next = j->next;
                job_free(j);
        }
        free(sk->pattern);
        ab_catalog_topics_clear(&sk->topics);
        ab_stage_destroy(sk->stage);
        ab_auth_destroy(sk->auth);
        ab_metrics_destroy(sk->metrics);
        ab_avro_codec_destroy(sk->codec);
        ab_catalog_destroy(sk->catalog);
        free(sk);
}
