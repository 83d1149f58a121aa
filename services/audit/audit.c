/* aetherbus - Apache-2.0
 *
 * audit: builds and runs aetherbus-audit. Replicas share the consumer
 * group aetherbus-audit over every topic of the bus (rejected and
 * deadletter included); the database, not the group, says where each
 * partition resumes (on_assign sets the start from its positions
 * table), so what was committed to SQLite is never read twice as new
 * and what was not is read again. Each batch (a poll, and the polls
 * after it that find records waiting, up to BATCH) is one SQLite
 * transaction (rows, positions, tree), which the writer thread commits
 * while this one reads and builds the next; only after its commit are
 * the offsets marked done for Kafka.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ab_emit.h"
#include "ab_log.h"
#include "ab_time.h"
#include "audit.h"

/* Records per SQLite transaction: several polls (ab_consume_poll() hands
 * out at most POLL at a time) while more are waiting. Each commit
 * rewrites the tail pages of the table and of every index and syncs
 * the log: 1,024 a commit wrote 40 % fewer WAL frames than 256, 4,096
 * a quarter less again (bench-auditstore -b), for ~6 MB of batches. */
#define POLL 256
#define BATCH 4096
#define START_TIMEOUT_MS 5000

/* What one batch allocated for its rows (ids, payload texts). */
typedef struct {
        char *owned[2 * BATCH];
        size_t cnt;
} scratch_t;

static char *keep(scratch_t *sc, char *p) {
        if (p && sc->cnt < sizeof(sc->owned) / sizeof(sc->owned[0])) {
                sc->owned[sc->cnt++] = p;
                return p;
        }
        free(p);
        return NULL;
}

static void scratch_clear(scratch_t *sc) {
        size_t i;

        for (i = 0; i < sc->cnt; i++) {
                free(sc->owned[i]);
        }
        sc->cnt = 0;
}

/* A batch on its way to the log: the records read (their memory backs
 * the rows' strings), the rows and positions built from them, and what
 * building them allocated. Two of them: the writer holds one while the
 * consume loop fills the other. */
struct audit_slot_s {
        ab_consume_rec_t recs[BATCH];
        size_t n;
        audit_event_t ev[BATCH];
        uint8_t leaf[BATCH][AUDIT_HASH_LEN];
        audit_store_outcome_t out[BATCH];
        audit_store_pos_t pos[BATCH];
        scratch_t sc;
        audit_batch_t batch;
};

static void slot_clear(audit_slot_t *s) {
        size_t i;

        for (i = 0; i < s->n; i++) {
                ab_consume_rec_clear(&s->recs[i]);
        }
        s->n = 0;
        scratch_clear(&s->sc);
}

static void delivered(const ab_delivery_t *dr, void *opaque);
static void drain(audit_t *a);

static int check(void *opaque, char *reason, size_t reason_size) {
        audit_t *a = opaque;

        if (!a->consuming) {
                snprintf(reason, reason_size, "not reading Kafka yet");
                return 0;
        }
        return 1;
}

static ab_err_t metrics_init(audit_t *a, char *errstr, size_t errstr_size) {
        static const double txn_bounds[] = {0.001, 0.0025, 0.005, 0.01,
                                            0.025, 0.05,   0.1,   0.25,
                                            0.5,   1,      2.5,   10};

        if (!(a->m_rows = ab_metrics_counter(
                  a->metrics, "rows_written_total",
                  "Rows added to the log, by status", "status", errstr,
                  errstr_size)) ||
            !(a->m_dups = ab_metrics_counter(
                  a->metrics, "duplicates_total",
                  "Records whose (id, status) was already logged with the "
                  "same content (redeliveries, retries)",
                  NULL, errstr, errstr_size)) ||
            !(a->m_conflicts = ab_metrics_counter(
                  a->metrics, "conflicts_total",
                  "Records whose (id, status) was already logged with other "
                  "content: kept in the conflicts table, never overwriting",
                  NULL, errstr, errstr_size)) ||
            !(a->m_undecodable = ab_metrics_counter(
                  a->metrics, "undecodable_total",
                  "Records that are neither an envelope nor a failure "
                  "record: skipped",
                  NULL, errstr, errstr_size)) ||
            !(a->m_txn = ab_metrics_histogram(
                  a->metrics, "transaction_seconds",
                  "Time of one batch's SQLite transaction on the writer "
                  "thread, commit included",
                  NULL, txn_bounds, sizeof(txn_bounds) / sizeof(txn_bounds[0]),
                  errstr, errstr_size)) ||
            !(a->m_tree = ab_metrics_gauge(a->metrics, "tree_size",
                                           "Leaves of the Merkle tree", NULL,
                                           errstr, errstr_size)) ||
            !(a->m_checkpoints = ab_metrics_counter(
                  a->metrics, "checkpoints_total",
                  "Signed checkpoints stored", NULL, errstr, errstr_size)) ||
            !(a->m_cp_published = ab_metrics_counter(
                  a->metrics, "checkpoints_published_total",
                  "Signed checkpoints written to the checkpoint topic, by "
                  "delivery result (ok, failed)",
                  "result", errstr, errstr_size)) ||
            !(a->m_errors = ab_metrics_counter(
                  a->metrics, "transaction_errors_total",
                  "Transactions that failed and were retried", NULL, errstr,
                  errstr_size)) ||
            !(a->m_pruned = ab_metrics_counter(
                  a->metrics, "rows_pruned_total",
                  "Rows whose payload retention (AUDIT_RETENTION_DAYS) "
                  "replaced by its SHA-256",
                  NULL, errstr, errstr_size)) ||
            !(a->m_prune_errors = ab_metrics_counter(
                  a->metrics, "prune_errors_total",
                  "Retention passes that failed (retried a minute later)",
                  NULL, errstr, errstr_size)) ||
            !(a->m_wal = ab_metrics_gauge(
                  a->metrics, "wal_pages",
                  "Pages in SQLite's write-ahead log after the last commit "
                  "(checkpointed from 10,000 on)",
                  NULL, errstr, errstr_size)) ||
            !(a->m_wal_ckpt = ab_metrics_counter(
                  a->metrics, "wal_checkpoints_total",
                  "Checkpoints of the write-ahead log, by who ran them: "
                  "checkpointer (its thread, every 10,000 pages), writer "
                  "(at 40,000 pages: under steady writes the log only "
                  "restarts after one of these)",
                  "by", errstr, errstr_size))) {
                return AB_ERR_INTERNAL;
        }
        return AB_OK;
}

/* The database says where to resume; a partition it never saw starts
 * at the beginning whatever the group committed (a new database is
 * filled from all Kafka still holds). */
static void on_assign(void *opaque, rd_kafka_topic_partition_list_t *parts) {
        audit_t *a = opaque;
        int64_t next;
        int i;

        drain(a);
        for (i = 0; i < parts->cnt; i++) {
                if (audit_store_position(a->store, parts->elems[i].topic,
                                         parts->elems[i].partition,
                                         &next) == AB_OK) {
                        ab_consume_set_offset(parts, parts->elems[i].topic,
                                              parts->elems[i].partition, next);
                } else {
                        ab_consume_set_offset(parts, parts->elems[i].topic,
                                              parts->elems[i].partition,
                                              RD_KAFKA_OFFSET_BEGINNING);
                }
        }
}

/* What was written is marked done before the wrapper commits. */
static void on_revoke(void *opaque,
                      const rd_kafka_topic_partition_list_t *parts,
                      int lost) {
        (void)parts;
        (void)lost;
        drain(opaque);
}

audit_t *audit_new(const audit_conf_t *conf, char *errstr,
                   size_t errstr_size) {
        audit_store_stats_t sst;
        ab_producer_conf_t pc;
        ab_service_def_t def;
        uint8_t root[AUDIT_HASH_LEN];
        char *note = NULL;
        audit_t *a;

        a = calloc(1, sizeof(*a));
        if (!a) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        a->conf = conf;
        if (!(a->catalog = ab_catalog_new(errstr, errstr_size)) ||
            !(a->codec = ab_avro_codec_new(NULL, errstr, errstr_size)) ||
            ab_catalog_topics_init(&a->topics, a->catalog,
                                   conf->common.topic_prefix, errstr,
                                   errstr_size) != AB_OK ||
            !(a->metrics = ab_metrics_new("audit", errstr, errstr_size)) ||
            metrics_init(a, errstr, errstr_size) != AB_OK ||
            !(a->stage = ab_stage_new(a->metrics, "audit", "audited",
                                      a->catalog, 0, errstr, errstr_size))) {
                goto fail;
        }
        if (!(a->store = audit_store_open(conf->db_path, 0, NULL, errstr,
                                          errstr_size))) {
                goto fail;
        }
        if (!(a->slot[0] = calloc(1, sizeof(*a->slot[0]))) ||
            !(a->slot[1] = calloc(1, sizeof(*a->slot[1])))) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                goto fail;
        }
        if (conf->retention_days) {
                ab_info("audit", "retention: payloads of rows received over "
                                 "%d day(s) ago are replaced by their "
                                 "SHA-256 (indexing the log for it once)",
                        conf->retention_days);
        }
        if (audit_store_retention(a->store, conf->retention_days > 0, errstr,
                                  errstr_size)) {
                goto fail;
        }
        if (conf->signing_key && *conf->signing_key) {
                if (!(a->signer = audit_signer_load(conf->signing_key, errstr,
                                                    errstr_size))) {
                        goto fail;
                }
                if (strcmp(audit_signer_name(a->signer), conf->origin)) {
                        ab_warn("audit", "the signing key is named \"%s\", "
                                         "the origin is \"%s\": verifiers "
                                         "usually expect them equal",
                                audit_signer_name(a->signer), conf->origin);
                }
        }
        audit_store_stats(a->store, &sst);
        ab_metric_set(a->m_tree, (double)sst.tree_size);
        if (audit_store_checkpoint_latest(a->store, &note, &a->checkpoint_size,
                                          root, errstr, errstr_size) != AB_OK) {
                a->checkpoint_size = 0;
        }
        free(note);
        errstr[0] = '\0';
        ab_info("audit", "%s: %" PRIu64 " rows, %" PRIu64 " conflicts; "
                         "checkpoints %s",
                conf->db_path, sst.tree_size, sst.conflicts,
                a->signer ? "signed" : "off (no AUDIT_SIGNING_KEY)");
        a->last_checkpoint_ms = ab_time_now_ms();
        ab_producer_conf_init(&pc);
        pc.brokers     = conf->common.kafka_brokers;
        pc.poll_thread = 1;
        pc.dr_cb       = delivered;
        pc.opaque      = a;
        if (!(a->producer = ab_producer_new(&pc, errstr, errstr_size))) {
                goto fail;
        }
        a->emitter.producer     = a->producer;
        a->emitter.codec        = a->codec;
        a->emitter.catalog      = a->catalog;
        a->emitter.topic_prefix = conf->common.topic_prefix;
        a->emitter.source       = "aetherbus-audit";
        if (!(a->auth = ab_service_auth_new(&conf->svc, a->metrics, ab_emit,
                                              &a->emitter, errstr,
                                              errstr_size))) {
                goto fail;
        }
        memset(&def, 0, sizeof(def));
        def.name              = "audit";
        def.common            = &conf->common;
        def.sc                = &conf->svc;
        def.routes            = audit_http_routes();
        def.metrics           = a->metrics;
        def.check             = check;
        def.check_interval_ms = 500;
        def.opaque            = a;
        if (!(a->svc = ab_service_new(&def, errstr, errstr_size))) {
                goto fail;
        }
        return a;

fail:
        audit_destroy(a);
        return NULL;
}

static ab_consume_t *consume_new(audit_t *a, char *errstr,
                                 size_t errstr_size) {
        ab_consume_conf_t cc;

        memset(&cc, 0, sizeof(cc));
        cc.brokers            = a->conf->common.kafka_brokers;
        cc.group_id           = AUDIT_GROUP_ID;
        cc.topics             = (const char *const *)a->topics.names;
        cc.topic_cnt          = a->topics.event_cnt;
        cc.topic_prefix       = a->conf->common.topic_prefix;
        cc.codec              = a->codec;
        cc.metrics            = a->metrics;
        cc.session_timeout_ms = (int)a->conf->session_timeout_ms;
        cc.on_assign          = on_assign;
        cc.on_revoke          = on_revoke;
        cc.opaque             = a;
        return ab_consume_new(&cc, errstr, errstr_size);
}

/*
 * Records to rows
 */

static const char *jstr(json_t *o, const char *k) {
        return json_string_value(json_object_get(o, k));
}

/* The routing prefix: the catalog's for a known name, else the topic's
 * (an allowed unknown prefix); the view leaves both unset. */
static const char *prefix_of(audit_t *a, const ab_consume_rec_t *r) {
        const ab_envelope_t *env = &r->env;
        const ab_catalog_entry_t *e;
        size_t tl = strlen(a->conf->common.topic_prefix);

        if (env->entry) {
                return env->entry->prefix;
        }
        if (env->name && (e = ab_catalog_find(a->catalog, env->name))) {
                return e->prefix;
        }
        if (env->prefix[0]) {
                return env->prefix;
        }
        if (!strncmp(r->topic, a->conf->common.topic_prefix, tl) &&
            r->topic[tl]) {
                return r->topic + tl;
        }
        return NULL;
}

static int from_accepted(audit_t *a, const ab_consume_rec_t *r,
                         audit_event_t *ev) {
        const ab_envelope_t *env = &r->env;

        ev->id             = env->id;
        ev->name           = env->name;
        ev->prefix         = prefix_of(a, r);
        ev->source         = env->source;
        ev->company_id     = env->company_id;
        ev->subject_id     = env->subject_id;
        ev->schema_version = env->schema_version;
        ev->occurred_at    = env->occurred_at;
        ev->received_at_ms = env->received_at_ms;
        ev->payload        = env->payload_json;
        ev->payload_len    = env->payload_json_len;
        ev->status         = "accepted";
        return ev->id ? 0 : -1;
}

/* A failure record: the item or event it carries says what it was; a
 * record without an id (an unparseable body) is named by its position,
 * the same every time it is redelivered. */
static int from_failure(audit_t *a, const ab_consume_rec_t *r,
                        audit_event_t *ev, scratch_t *sc) {
        const ab_record_failure_t *f = &r->fail;
        const ab_catalog_entry_t *e;
        json_t *o = f->original;
        const char *v;
        char buf[512];
        int64_t ms;

        ev->status = ab_consume_kind_name(r->kind);
        if (json_is_object(o)) {
                ev->id          = jstr(o, "id");
                ev->name        = jstr(o, "name");
                ev->source      = jstr(o, "source");
                ev->company_id  = jstr(o, "companyId");
                ev->subject_id  = jstr(o, "subjectId");
                ev->occurred_at = jstr(o, "occurredAt");
                if (json_is_integer(json_object_get(o, "schemaVersion"))) {
                        ev->schema_version = (int)json_integer_value(
                            json_object_get(o, "schemaVersion"));
                }
                if (ev->name && (e = ab_catalog_find(a->catalog, ev->name))) {
                        ev->prefix = e->prefix;
                }
        }
        if (!ev->company_id) {
                ev->company_id = f->tenant;
        }
        if (!ev->id) {
                snprintf(buf, sizeof(buf), "kafka:%s:%" PRId32 ":%" PRId64,
                         r->topic, r->partition, r->offset);
                if (!(ev->id = keep(sc, strdup(buf)))) {
                        return -1;
                }
        }
        ev->received_at_ms = f->received_at_ms > 0 ? f->received_at_ms : 0;
        if (!ev->received_at_ms && json_is_object(o) &&
            (v = jstr(o, "receivedAt")) && ab_time_parse(v, &ms) == AB_OK) {
                ev->received_at_ms = ms;
        }
        if (!ev->received_at_ms && r->timestamp_ms > 0) {
                ev->received_at_ms = r->timestamp_ms;
        }
        if (o) {
                ev->payload = keep(sc, json_dumps(o, JSON_COMPACT |
                                                         JSON_ENCODE_ANY));
        } else if (f->original_text) {
                json_t *t = json_stringn(f->original_text,
                                         f->original_text_len);

                ev->payload =
                    t ? keep(sc, json_dumps(t, JSON_ENCODE_ANY)) : NULL;
                json_decref(t);
        }
        ev->payload_len = ev->payload ? strlen(ev->payload) : 0;
        if (f->code && *f->code) {
                snprintf(buf, sizeof(buf), "%s: %s", f->code, f->reason);
                ev->reason = keep(sc, strdup(buf));
        } else {
                ev->reason = f->reason;
        }
        return 0;
}

static void pos_add(audit_store_pos_t *pos, size_t *cntp,
                    const ab_consume_rec_t *r) {
        size_t i;

        for (i = 0; i < *cntp; i++) {
                if (pos[i].partition == r->partition &&
                    !strcmp(pos[i].topic, r->topic)) {
                        if (r->offset + 1 > pos[i].next) {
                                pos[i].next = r->offset + 1;
                        }
                        return;
                }
        }
        pos[*cntp].topic     = r->topic;
        pos[*cntp].partition = r->partition;
        pos[*cntp].next      = r->offset + 1;
        (*cntp)++;
}

/* The stage counter, after the SQLite commit: events only (failure
 * records are not the events topics' records). */
static void count_audited(audit_t *a, const audit_event_t *ev) {
        if (strcmp(ev->status, "accepted")) {
                return;
        }
        ab_stage_count(a->stage, 0,
                       ab_stage_topic_prefix(ev->topic,
                                             a->conf->common.topic_prefix),
                       ev->received_at_ms, 1);
}

/* The rows and positions of a slot's records, for one transaction. */
static void rows_build(audit_t *a, audit_slot_t *s) {
        audit_event_t *ev = s->ev;
        ab_consume_rec_t *recs = s->recs;
        size_t i, ev_cnt = 0, pos_cnt = 0;
        int ok;

        for (i = 0; i < s->n; i++) {
                pos_add(s->pos, &pos_cnt, &recs[i]);
                memset(&ev[ev_cnt], 0, sizeof(ev[ev_cnt]));
                ev[ev_cnt].topic     = recs[i].topic;
                ev[ev_cnt].partition = recs[i].partition;
                ev[ev_cnt].offset    = recs[i].offset;
                switch (recs[i].kind) {
                case AB_CONSUME_ACCEPTED:
                        ok = from_accepted(a, &recs[i], &ev[ev_cnt]) == 0;
                        break;
                case AB_CONSUME_REJECTED:
                case AB_CONSUME_DEADLETTER:
                        ok = from_failure(a, &recs[i], &ev[ev_cnt], &s->sc) ==
                             0;
                        break;
                default:
                        ok = 0;
                        break;
                }
                /* hashed here, not on the writer's thread: a leaf hash
                 * was 7 % of the writer's time */
                if (ok && audit_store_leaf_hash(&ev[ev_cnt],
                                                s->leaf[ev_cnt]) == AB_OK) {
                        ev[ev_cnt].leaf_hash = s->leaf[ev_cnt];
                }
                if (ok) {
                        ev_cnt++;
                } else {
                        ab_metric_inc(a->m_undecodable);
                        ab_debug("audit", "%s [%" PRId32 "] @%" PRId64
                                          ": skipped: %s",
                                 recs[i].topic, recs[i].partition,
                                 recs[i].offset,
                                 recs[i].error[0] ? recs[i].error
                                                  : "no id");
                }
        }
        s->batch.ev      = ev;
        s->batch.ev_cnt  = ev_cnt;
        s->batch.out     = s->out;
        s->batch.pos     = s->pos;
        s->batch.pos_cnt = pos_cnt;
        s->batch.err     = AB_OK;
}

/* After the writer is done with a slot: counts its outcomes and, only
 * if its transaction committed, marks its offsets done for Kafka. */
static ab_err_t rows_done(audit_t *a, audit_slot_t *s) {
        const audit_event_t *ev = s->ev;
        audit_store_stats_t sst;
        ab_err_t err = s->batch.err;
        size_t i;

        if (err) {
                slot_clear(s); /* not done: read again on restart */
                return err;
        }
        for (i = 0; i < s->batch.ev_cnt; i++) {
                switch (s->out[i]) {
                case AUDIT_STORE_WRITTEN:
                        ab_metric_inc(AB_METRIC_WITH(a->m_rows, ev[i].status));
                        count_audited(a, &ev[i]);
                        break;
                case AUDIT_STORE_DUPLICATE:
                        /* the record's event is in the log: audited */
                        ab_metric_inc(a->m_dups);
                        count_audited(a, &ev[i]);
                        break;
                case AUDIT_STORE_CONFLICT:
                        ab_metric_inc(a->m_conflicts);
                        ab_warn("audit",
                                "conflict: %s (%s) at %s [%" PRId32
                                "] @%" PRId64 " differs from the logged row",
                                ev[i].id, ev[i].status, ev[i].topic,
                                ev[i].partition, ev[i].offset);
                        break;
                }
        }
        for (i = 0; i < s->batch.pos_cnt; i++) {
                /* a partition revoked meanwhile is its new owner's; the
                 * database already holds the rows */
                ab_consume_done_at(a->consume, s->pos[i].topic,
                                   s->pos[i].partition, s->pos[i].next - 1);
        }
        slot_clear(s);
        audit_store_stats(a->store, &sst);
        ab_metric_set(a->m_tree, (double)sst.tree_size);
        ab_metric_set(a->m_wal, (double)sst.wal.frames);
        ab_metric_add(AB_METRIC_WITH(a->m_wal_ckpt, "checkpointer"),
                      sst.wal.checkpoints - a->wal_seen.checkpoints);
        ab_metric_add(AB_METRIC_WITH(a->m_wal_ckpt, "writer"),
                      sst.wal.inline_checkpoints -
                          a->wal_seen.inline_checkpoints);
        a->wal_seen = sst.wal;
        return AB_OK;
}

/* Waits for the slot in flight and finishes it: before the next
 * submit, before a rebalance (so positions read from the database and
 * offsets committed on revoke include it) and before stopping. A
 * failure is kept in a->write_err for the loop. */
static void drain(audit_t *a) {
        audit_slot_t *s = a->inflight;

        if (!s) {
                return;
        }
        audit_writer_wait(a->writer);
        a->inflight = NULL;
        if (rows_done(a, s) != AB_OK) {
                a->write_err = AB_ERR_IO;
        }
}

/* Tells checkpoint records from the security events sharing the producer. */
static char checkpoint_record;

static void delivered(const ab_delivery_t *dr, void *opaque) {
        audit_t *a = opaque;

        if (dr->msg_opaque != &checkpoint_record) {
                return;
        }
        if (dr->err == AB_OK) {
                ab_metric_inc(AB_METRIC_WITH(a->m_cp_published, "ok"));
                return;
        }
        /* The database still holds it, and the next checkpoint covers
         * this one: an outside copy is late, not lost. */
        ab_metric_inc(AB_METRIC_WITH(a->m_cp_published, "failed"));
        ab_error("audit", "checkpoint not written to %s: %s", dr->topic,
                 dr->errstr ? dr->errstr : ab_err2str(dr->err));
}

/* A copy outside the database, so rewriting the database cannot hide a
 * change: keyed by origin, so one partition holds them in order. */
static void checkpoint_publish(audit_t *a, const audit_checkpoint_t *cp,
                               const char *note, size_t len) {
        char errstr[256];
        ab_err_t err;

        err = ab_producer_produce(a->producer, a->topics.checkpoints,
                                  cp->origin, strlen(cp->origin), note, len,
                                  NULL, 0, &checkpoint_record, errstr,
                                  sizeof(errstr));
        if (err != AB_OK) {
                ab_metric_inc(AB_METRIC_WITH(a->m_cp_published, "failed"));
                ab_error("audit", "checkpoint of %" PRIu64 " not queued for "
                                  "%s: %s", cp->size, a->topics.checkpoints,
                         errstr);
        }
}

ab_err_t audit_checkpoint_now(audit_t *a, char *errstr, size_t errstr_size) {
        audit_checkpoint_t cp;
        char *note = NULL;
        size_t len;
        ab_err_t err;

        if (!a->signer) {
                return AB_OK;
        }
        memset(&cp, 0, sizeof(cp));
        snprintf(cp.origin, sizeof(cp.origin), "%s", a->conf->origin);
        if ((err = audit_store_tree(a->store, &cp.size, cp.root))) {
                ab_errstr_set(errstr, errstr_size, "tree root: %s",
                              ab_err2str(err));
                return err;
        }
        if (cp.size == 0 || cp.size == a->checkpoint_size) {
                return AB_OK;
        }
        if ((err = audit_checkpoint_sign(a->signer, &cp, &note, &len, errstr,
                                         errstr_size)) ||
            (err = audit_store_checkpoint_add(a->store, cp.size, cp.root, note,
                                              errstr, errstr_size))) {
                free(note);
                return err;
        }
        checkpoint_publish(a, &cp, note, len);
        free(note);
        a->checkpoint_size = cp.size;
        ab_metric_inc(a->m_checkpoints);
        ab_info("audit", "checkpoint of %" PRIu64 " leaves signed", cp.size);
        return AB_OK;
}

/* Retention, between polls: steps of PRUNE_STEP rows (one short
 * transaction each, the writer waits at most that long) for at most
 * PRUNE_BUDGET_MS, then back to the stream; a backlog goes on at the
 * next tick, otherwise the next pass is AUDIT_RETENTION_INTERVAL later. */
#define PRUNE_STEP 1000
#define PRUNE_BUDGET_MS 100

static void prune_tick(audit_t *a, int64_t now) {
        audit_store_prune_t res;
        char errstr[512];
        int64_t cutoff, start = now;
        uint64_t rows = 0;
        int more = 0;

        if (!a->conf->retention_days || now < a->next_prune_ms) {
                return;
        }
        cutoff = now - (int64_t)a->conf->retention_days * 86400000;
        do {
                if (audit_store_prune(a->store, cutoff, PRUNE_STEP, &res,
                                      errstr, sizeof(errstr)) != AB_OK) {
                        ab_error("audit", "retention: %s", errstr);
                        ab_metric_inc(a->m_prune_errors);
                        more = 0;
                        break;
                }
                rows += res.rows;
                ab_metric_add(a->m_pruned, res.rows);
                more = res.more;
        } while (more && ab_time_now_ms() - start < PRUNE_BUDGET_MS);
        a->next_prune_ms = more ? 0 : now + a->conf->retention_interval_ms;
        if (rows) {
                ab_info("audit", "retention: %" PRIu64 " row(s) received "
                                 "over %d day(s) ago pruned (payload "
                                 "replaced by its SHA-256)%s",
                        rows, a->conf->retention_days,
                        more ? ", more to go" : "");
        }
}

static void checkpoint_tick(audit_t *a, int64_t now) {
        char errstr[512];

        if (now - a->last_checkpoint_ms < a->conf->checkpoint_interval_ms) {
                return;
        }
        a->last_checkpoint_ms = now;
        if (audit_checkpoint_now(a, errstr, sizeof(errstr)) != AB_OK) {
                ab_error("audit", "checkpoint: %s", errstr);
        }
}

ab_err_t audit_run(audit_t *a, volatile sig_atomic_t *run) {
        audit_slot_t *s;
        ab_consume_t *c;
        char errstr[512];
        ab_err_t ret = AB_OK;
        size_t m;

        if (ab_service_start(a->svc, errstr, sizeof(errstr)) != AB_OK) {
                ab_error("http", "cannot listen: %s", errstr);
                return AB_ERR_IO;
        }
        if (!(a->writer = audit_writer_new(a->store, a->m_txn, a->m_errors,
                                           run, errstr, sizeof(errstr)))) {
                ab_error("audit", "%s", errstr);
                return AB_ERR_INTERNAL;
        }
        /* Topics may not exist yet: keep trying, /readyz says why. */
        while (*run && !a->consume) {
                c = consume_new(a, errstr, sizeof(errstr));
                if (c && ab_consume_start(c, START_TIMEOUT_MS, errstr,
                                          sizeof(errstr)) == AB_OK) {
                        a->consume = c;
                        break;
                }
                ab_warn("kafka", "cannot read the topics yet: %s", errstr);
                ab_consume_destroy(c);
                ab_service_sleep_ms(1000);
        }
        a->consuming = a->consume != NULL;
        /* While the writer holds one slot, the other is filled and its
         * rows built; the poll does not wait then, so a slow trickle
         * does not hold back the marks of what is written. */
        while (*run && !a->write_err) {
                s    = a->slot[a->cur];
                s->n = ab_consume_poll(a->consume, s->recs, POLL,
                                       a->inflight ? 0 : 100);
                while (s->n && s->n + POLL <= BATCH &&
                       (m = ab_consume_poll(a->consume, s->recs + s->n, POLL,
                                            0))) {
                        s->n += m;
                }
                if (s->n) {
                        rows_build(a, s);
                }
                drain(a);
                if (a->write_err) {
                        slot_clear(s);
                        break;
                }
                /* the writer is idle: the store is the loop's */
                checkpoint_tick(a, ab_time_now_ms());
                prune_tick(a, ab_time_now_ms());
                if (s->n) {
                        a->inflight = s;
                        a->cur ^= 1;
                        audit_writer_submit(a->writer, &s->batch);
                }
                if (ab_consume_fatal(a->consume, errstr, sizeof(errstr))) {
                        ab_error("kafka", "fatal consumer error: %s", errstr);
                        ret = AB_ERR_KAFKA;
                        break;
                }
        }
        drain(a);
        if (a->write_err && !ret) {
                ret = a->write_err;
        }
        ab_info("main", "stopping");
        ab_service_drain(a->svc);
        if (audit_checkpoint_now(a, errstr, sizeof(errstr)) != AB_OK) {
                ab_error("audit", "final checkpoint: %s", errstr);
        }
        if (a->consume &&
            ab_consume_commit(a->consume, 0, errstr, sizeof(errstr)) != AB_OK) {
                /* harmless: the database says where to resume */
                ab_warn("kafka", "final commit: %s", errstr);
        }
        ab_service_stop(a->svc, 1000);
        ab_producer_flush(a->producer, 2000);
        return ret;
}

void audit_destroy(audit_t *a) {
        if (!a) {
                return;
        }
        ab_service_destroy(a->svc);
        audit_writer_destroy(a->writer);
        if (a->slot[0]) {
                slot_clear(a->slot[0]);
        }
        if (a->slot[1]) {
                slot_clear(a->slot[1]);
        }
        free(a->slot[0]);
        free(a->slot[1]);
        ab_consume_destroy(a->consume);
        ab_producer_destroy(a->producer);
        ab_auth_destroy(a->auth);
        audit_signer_destroy(a->signer);
        audit_store_close(a->store);
        ab_catalog_topics_clear(&a->topics);
        ab_stage_destroy(a->stage);
        ab_metrics_destroy(a->metrics);
        ab_avro_codec_destroy(a->codec);
        ab_catalog_destroy(a->catalog);
        free(a);
}
