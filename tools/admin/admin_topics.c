/* aetherbus - Apache-2.0
 *
 * admin_topics: the topic set the catalog needs and its provisioning.
 * Reads partition and replica counts from metadata, creates only what is
 * missing (rd_kafka_CreateTopics) and never alters an existing topic: a
 * topic with fewer partitions than asked, or a --config value that differs
 * (rd_kafka_DescribeConfigs), is reported as a mismatch. Keep option
 * parsing and exit codes out of this file (main.c).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "ab_catalog.h"
#include "ab_err.h"
#include "admin_topics.h"

#define TOPIC_SIZE  256 /* Kafka topic names are at most 249 chars */
#define CONFIG_MAX  64
#define NOTE_SIZE   512
#define POLL_MS     100
#define QUEUE_SLACK 5000 /* an Admin result comes by request_timeout */

typedef enum {
        ST_MISSING,
        ST_EXISTS,
        ST_CREATED,
        ST_FAILED,
} state_t;

typedef struct {
        char name[TOPIC_SIZE];
        state_t state;
        int found;      /* in the last metadata */
        int ready;      /* found, no topic error, every partition has a leader */
        int partitions; /* from the last metadata */
        int replicas;   /* of partition 0 */
        int mismatch;
        char note[NOTE_SIZE];
} want_t;

struct admin_topics_s {
        want_t *wants;
        size_t cnt;
        int partitions;
        int replication_factor;
        char *ckeys[CONFIG_MAX];
        char *cvals[CONFIG_MAX];
        size_t ccnt;
};

/* What one metadata read says about the cluster. */
typedef struct {
        int broker_cnt;
        int32_t controller;
        int has_controller;
        char origin[TOPIC_SIZE];
} cluster_t;

admin_topics_t *admin_topics_new(const ab_catalog_t *cat,
                                 const char *topic_prefix, char *errstr,
                                 size_t errstr_size) {
        admin_topics_t *at;
        ab_catalog_topics_t t;
        size_t i;

        if (ab_catalog_topics_init(&t, cat, topic_prefix, errstr,
                                   errstr_size) != AB_OK) {
                return NULL;
        }
        at = calloc(1, sizeof(*at));
        if (!at || !(at->wants = calloc(t.cnt, sizeof(*at->wants)))) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                ab_catalog_topics_clear(&t);
                admin_topics_destroy(at);
                return NULL;
        }
        at->partitions         = 3;
        at->replication_factor = -1;
        for (i = 0; i < t.cnt; i++) {
                snprintf(at->wants[i].name, sizeof(at->wants[i].name), "%s",
                         t.names[i]);
        }
        at->cnt = t.cnt;
        ab_catalog_topics_clear(&t);
        return at;
}

void admin_topics_destroy(admin_topics_t *at) {
        size_t i;

        if (!at) {
                return;
        }
        for (i = 0; i < at->ccnt; i++) {
                free(at->ckeys[i]);
                free(at->cvals[i]);
        }
        free(at->wants);
        free(at);
}

size_t admin_topics_count(const admin_topics_t *at) {
        return at->cnt;
}

void admin_topics_set_layout(admin_topics_t *at, int partitions,
                             int replication_factor) {
        at->partitions         = partitions;
        at->replication_factor = replication_factor;
}

ab_err_t admin_topics_add_config(admin_topics_t *at, const char *kv,
                                 char *errstr, size_t errstr_size) {
        const char *eq;

        eq = strchr(kv, '=');
        if (!eq || eq == kv) {
                ab_errstr_set(errstr, errstr_size,
                              "--config \"%s\": expected key=value", kv);
                return AB_ERR_INVALID;
        }
        if (at->ccnt == CONFIG_MAX) {
                ab_errstr_set(errstr, errstr_size,
                              "--config: at most %d settings", CONFIG_MAX);
                return AB_ERR_TOO_LARGE;
        }
        at->ckeys[at->ccnt] = strndup(kv, (size_t)(eq - kv));
        at->cvals[at->ccnt] = strdup(eq + 1);
        if (!at->ckeys[at->ccnt] || !at->cvals[at->ccnt]) {
                free(at->ckeys[at->ccnt]);
                free(at->cvals[at->ccnt]);
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return AB_ERR_NOMEM;
        }
        at->ccnt++;
        return AB_OK;
}

static ab_err_t kerr(rd_kafka_resp_err_t err) {
        return err == RD_KAFKA_RESP_ERR__TIMED_OUT ? AB_ERR_TIMEOUT
                                                   : AB_ERR_KAFKA;
}

/* One metadata read: fills found/partitions/replicas/ready of every want
 * and what the cluster looks like. */
static ab_err_t readmd(admin_topics_t *at, rd_kafka_t *rk, int timeout_ms,
                       cluster_t *cl, char *errstr, size_t errstr_size) {
        const struct rd_kafka_metadata *md;
        const rd_kafka_metadata_topic_t *mt;
        rd_kafka_resp_err_t err;
        want_t *w;
        size_t i;
        int t;
        int p;

        err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
        if (err) {
                ab_errstr_set(errstr, errstr_size,
                              "cannot read cluster metadata: %s",
                              rd_kafka_err2str(err));
                return kerr(err);
        }
        memset(cl, 0, sizeof(*cl));
        cl->broker_cnt = md->broker_cnt;
        cl->controller = rd_kafka_controllerid(rk, 0);
        for (t = 0; t < md->broker_cnt; t++) {
                if (md->brokers[t].id == cl->controller) {
                        cl->has_controller = 1;
                }
        }
        ab_errstr_set(cl->origin, sizeof(cl->origin), "%s",
                      md->orig_broker_name ? md->orig_broker_name : "?");

        for (i = 0; i < at->cnt; i++) {
                w             = &at->wants[i];
                w->found      = 0;
                w->ready      = 0;
                w->partitions = 0;
                w->replicas   = 0;
                for (t = 0; t < md->topic_cnt; t++) {
                        mt = &md->topics[t];
                        if (strcmp(mt->topic, w->name) ||
                            mt->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                                continue;
                        }
                        w->found      = 1;
                        w->partitions = mt->partition_cnt;
                        w->replicas   = mt->partition_cnt > 0
                                            ? mt->partitions[0].replica_cnt
                                            : 0;
                        w->ready      = !mt->err && mt->partition_cnt > 0;
                        for (p = 0; p < mt->partition_cnt; p++) {
                                if (mt->partitions[p].leader < 0) {
                                        w->ready = 0;
                                }
                        }
                }
        }
        rd_kafka_metadata_destroy(md);
        return AB_OK;
}

static int width(const admin_topics_t *at) {
        size_t i;
        size_t w = 5;

        for (i = 0; i < at->cnt; i++) {
                if (strlen(at->wants[i].name) > w) {
                        w = strlen(at->wants[i].name);
                }
        }
        return (int)w;
}

static void header(FILE *out, const cluster_t *cl) {
        if (cl->has_controller) {
                fprintf(out, "# cluster: %d broker(s), controller %d, "
                             "metadata from %s\n",
                        cl->broker_cnt, (int)cl->controller, cl->origin);
        } else {
                fprintf(out, "# cluster: %d broker(s), no controller, "
                             "metadata from %s\n",
                        cl->broker_cnt, cl->origin);
        }
}

ab_err_t admin_topics_list(admin_topics_t *at, rd_kafka_t *rk, int timeout_ms,
                           FILE *out, size_t *missing_cntp, char *errstr,
                           size_t errstr_size) {
        cluster_t cl;
        const want_t *w;
        ab_err_t err;
        size_t missing = 0;
        size_t i;
        int wd;

        err = readmd(at, rk, timeout_ms, &cl, errstr, errstr_size);
        if (err) {
                return err;
        }
        wd = width(at);
        header(out, &cl);
        fprintf(out, "%-*s  %-8s  %10s  %8s\n", wd, "TOPIC", "STATUS",
                "PARTITIONS", "REPLICAS");
        for (i = 0; i < at->cnt; i++) {
                w = &at->wants[i];
                if (w->found) {
                        fprintf(out, "%-*s  %-8s  %10d  %8d\n", wd, w->name,
                                "exists", w->partitions, w->replicas);
                } else {
                        fprintf(out, "%-*s  %-8s  %10s  %8s\n", wd, w->name,
                                "missing", "-", "-");
                        missing++;
                }
        }
        fprintf(out, "%zu topics needed: %zu exist, %zu missing\n", at->cnt,
                at->cnt - missing, missing);
        *missing_cntp = missing;
        return AB_OK;
}

static want_t *find(admin_topics_t *at, const char *name) {
        size_t i;

        for (i = 0; i < at->cnt; i++) {
                if (!strcmp(at->wants[i].name, name)) {
                        return &at->wants[i];
                }
        }
        return NULL;
}

/* Waits for one Admin API result on rkqu; NULL with errstr on timeout. */
static rd_kafka_event_t *result(rd_kafka_queue_t *rkqu, int timeout_ms,
                                const char *what, ab_err_t *errp,
                                char *errstr, size_t errstr_size) {
        rd_kafka_event_t *rkev;

        rkev = rd_kafka_queue_poll(rkqu, timeout_ms + QUEUE_SLACK);
        if (!rkev) {
                ab_errstr_set(errstr, errstr_size, "%s: no result in %d ms",
                              what, timeout_ms + QUEUE_SLACK);
                *errp = AB_ERR_TIMEOUT;
                return NULL;
        }
        if (rd_kafka_event_error(rkev)) {
                ab_errstr_set(errstr, errstr_size, "%s: %s", what,
                              rd_kafka_event_error_string(rkev));
                *errp = kerr(rd_kafka_event_error(rkev));
                rd_kafka_event_destroy(rkev);
                return NULL;
        }
        *errp = AB_OK;
        return rkev;
}

static rd_kafka_AdminOptions_t *options(rd_kafka_t *rk, rd_kafka_admin_op_t op,
                                        int timeout_ms) {
        rd_kafka_AdminOptions_t *opts;
        char ignore[256];

        opts = rd_kafka_AdminOptions_new(rk, op);
        rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, ignore,
                                                  sizeof(ignore));
        if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS) {
                /* the broker answers once the topics are made */
                rd_kafka_AdminOptions_set_operation_timeout(
                    opts, timeout_ms, ignore, sizeof(ignore));
        }
        return opts;
}

/* Creates every ST_MISSING want: ST_CREATED, ST_FAILED (note says why) or
 * ST_EXISTS when another client made it meanwhile. */
static ab_err_t create(admin_topics_t *at, rd_kafka_t *rk, int timeout_ms,
                       char *errstr, size_t errstr_size) {
        rd_kafka_NewTopic_t **nts;
        rd_kafka_AdminOptions_t *opts = NULL;
        rd_kafka_queue_t *rkqu        = NULL;
        rd_kafka_event_t *rkev        = NULL;
        const rd_kafka_CreateTopics_result_t *res;
        const rd_kafka_topic_result_t **trs;
        rd_kafka_resp_err_t rerr;
        char why[NOTE_SIZE];
        ab_err_t err = AB_OK;
        want_t *w;
        size_t cnt = 0;
        size_t tcnt;
        size_t i;
        size_t c;

        nts = calloc(at->cnt, sizeof(*nts));
        if (!nts) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return AB_ERR_NOMEM;
        }
        for (i = 0; i < at->cnt; i++) {
                w = &at->wants[i];
                if (w->state != ST_MISSING) {
                        continue;
                }
                nts[cnt] = rd_kafka_NewTopic_new(w->name, at->partitions,
                                                 at->replication_factor, why,
                                                 sizeof(why));
                for (c = 0; nts[cnt] && c < at->ccnt; c++) {
                        rerr = rd_kafka_NewTopic_set_config(
                            nts[cnt], at->ckeys[c], at->cvals[c]);
                        if (rerr) {
                                ab_errstr_set(why, sizeof(why),
                                              "config %s: %s", at->ckeys[c],
                                              rd_kafka_err2str(rerr));
                                rd_kafka_NewTopic_destroy(nts[cnt]);
                                nts[cnt] = NULL;
                        }
                }
                if (!nts[cnt]) {
                        w->state = ST_FAILED;
                        memcpy(w->note, why, sizeof(w->note));
                        continue;
                }
                cnt++;
        }
        if (cnt == 0) {
                goto done;
        }

        rkqu = rd_kafka_queue_new(rk);
        opts = options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms);
        rd_kafka_CreateTopics(rk, nts, cnt, opts, rkqu);
        rkev = result(rkqu, timeout_ms, "CreateTopics", &err, errstr,
                      errstr_size);
        if (!rkev) {
                goto done;
        }
        res = rd_kafka_event_CreateTopics_result(rkev);
        trs = res ? rd_kafka_CreateTopics_result_topics(res, &tcnt) : NULL;
        for (i = 0; trs && i < tcnt; i++) {
                w = find(at, rd_kafka_topic_result_name(trs[i]));
                if (!w) {
                        continue;
                }
                rerr = rd_kafka_topic_result_error(trs[i]);
                if (!rerr) {
                        w->state = ST_CREATED;
                } else if (rerr == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                        w->state = ST_EXISTS;
                } else {
                        w->state = ST_FAILED;
                        ab_errstr_set(w->note, sizeof(w->note), "%s",
                                      rd_kafka_topic_result_error_string(
                                          trs[i])
                                          ? rd_kafka_topic_result_error_string(
                                                trs[i])
                                          : rd_kafka_err2str(rerr));
                }
        }
        for (i = 0; i < at->cnt; i++) {
                w = &at->wants[i];
                if (w->state == ST_MISSING) {
                        w->state = ST_FAILED;
                        ab_errstr_set(w->note, sizeof(w->note),
                                      "not in the CreateTopics result");
                }
        }

done:
        if (rkev) {
                rd_kafka_event_destroy(rkev);
        }
        if (opts) {
                rd_kafka_AdminOptions_destroy(opts);
        }
        if (rkqu) {
                rd_kafka_queue_destroy(rkqu);
        }
        for (i = 0; i < cnt; i++) {
                rd_kafka_NewTopic_destroy(nts[i]);
        }
        free(nts);
        return err;
}

static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Bounded poll until every created topic is in the metadata with a leader
 * for each partition, so the next client (a test, a service) sees it. */
static ab_err_t settle(admin_topics_t *at, rd_kafka_t *rk, int timeout_ms,
                       cluster_t *cl, char *errstr, size_t errstr_size) {
        struct timespec pause = {0, POLL_MS * 1000000L};
        int64_t deadline      = now_ms() + timeout_ms;
        const want_t *w;
        ab_err_t err;
        size_t pending;
        size_t i;

        for (;;) {
                err = readmd(at, rk, timeout_ms, cl, errstr, errstr_size);
                if (err) {
                        return err;
                }
                pending = 0;
                for (i = 0; i < at->cnt; i++) {
                        w = &at->wants[i];
                        if ((w->state == ST_CREATED && !w->ready) ||
                            (w->state == ST_EXISTS && !w->found)) {
                                pending++;
                        }
                }
                if (pending == 0) {
                        return AB_OK;
                }
                if (now_ms() >= deadline) {
                        ab_errstr_set(errstr, errstr_size,
                                      "%zu topic(s) not ready in the metadata "
                                      "after %d ms",
                                      pending, timeout_ms);
                        return AB_ERR_TIMEOUT;
                }
                nanosleep(&pause, NULL);
        }
}

/* Marks w as a mismatch and appends a reason to its note. */
static void mismatch(want_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void mismatch(want_t *w, const char *fmt, ...) {
        size_t len = strlen(w->note);
        va_list ap;

        w->mismatch = 1;
        if (len > 0 && len + 2 < sizeof(w->note)) {
                memcpy(w->note + len, "; ", 3);
                len += 2;
        }
        va_start(ap, fmt);
        vsnprintf(w->note + len, sizeof(w->note) - len, fmt, ap);
        va_end(ap);
}

/* Compares the asked configs with those of the existing topics. A failure
 * here is reported on every topic it concerns, not fatal: creating was the
 * job and it is done. */
static void compare(admin_topics_t *at, rd_kafka_t *rk, int timeout_ms) {
        rd_kafka_ConfigResource_t **crs;
        rd_kafka_AdminOptions_t *opts = NULL;
        rd_kafka_queue_t *rkqu        = NULL;
        rd_kafka_event_t *rkev        = NULL;
        const rd_kafka_DescribeConfigs_result_t *res;
        const rd_kafka_ConfigResource_t **rcrs;
        const rd_kafka_ConfigEntry_t **ents;
        const char *val;
        char why[NOTE_SIZE];
        ab_err_t err;
        want_t *w;
        size_t cnt = 0;
        size_t rcnt;
        size_t ecnt;
        size_t i;
        size_t c;
        size_t e;

        crs = calloc(at->cnt, sizeof(*crs));
        if (!crs) {
                return;
        }
        for (i = 0; i < at->cnt; i++) {
                if (at->wants[i].state == ST_EXISTS) {
                        crs[cnt++] = rd_kafka_ConfigResource_new(
                            RD_KAFKA_RESOURCE_TOPIC, at->wants[i].name);
                }
        }
        if (cnt == 0) {
                free(crs);
                return;
        }
        rkqu = rd_kafka_queue_new(rk);
        opts = options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout_ms);
        rd_kafka_DescribeConfigs(rk, crs, cnt, opts, rkqu);
        rkev = result(rkqu, timeout_ms, "DescribeConfigs", &err, why,
                      sizeof(why));
        res  = rkev ? rd_kafka_event_DescribeConfigs_result(rkev) : NULL;
        rcrs = res ? rd_kafka_DescribeConfigs_result_resources(res, &rcnt)
                   : NULL;
        if (!rcrs) {
                for (i = 0; i < at->cnt; i++) {
                        w = &at->wants[i];
                        if (w->state == ST_EXISTS) {
                                mismatch(w, "configs not compared: %s",
                                         rkev ? "no result" : why);
                        }
                }
                goto done;
        }
        for (i = 0; i < rcnt; i++) {
                w = find(at, rd_kafka_ConfigResource_name(rcrs[i]));
                if (!w) {
                        continue;
                }
                if (rd_kafka_ConfigResource_error(rcrs[i])) {
                        mismatch(w, "configs not compared: %s",
                                 rd_kafka_ConfigResource_error_string(rcrs[i]));
                        continue;
                }
                ents = rd_kafka_ConfigResource_configs(rcrs[i], &ecnt);
                for (c = 0; c < at->ccnt; c++) {
                        val = NULL;
                        for (e = 0; e < ecnt; e++) {
                                if (!strcmp(rd_kafka_ConfigEntry_name(ents[e]),
                                            at->ckeys[c])) {
                                        val = rd_kafka_ConfigEntry_value(
                                            ents[e]);
                                        val = val ? val : "(hidden)";
                                }
                        }
                        if (!val) {
                                mismatch(w, "config %s unknown to the broker",
                                         at->ckeys[c]);
                        } else if (strcmp(val, at->cvals[c])) {
                                mismatch(w, "config %s is %s, not %s",
                                         at->ckeys[c], val, at->cvals[c]);
                        }
                }
        }

done:
        if (rkev) {
                rd_kafka_event_destroy(rkev);
        }
        if (opts) {
                rd_kafka_AdminOptions_destroy(opts);
        }
        if (rkqu) {
                rd_kafka_queue_destroy(rkqu);
        }
        for (i = 0; i < cnt; i++) {
                rd_kafka_ConfigResource_destroy(crs[i]);
        }
        free(crs);
}

static void report(const admin_topics_t *at, FILE *out) {
        const want_t *w;
        size_t created = 0, existing = 0, mismatched = 0, failed = 0;
        size_t i;
        int wd;

        wd = width(at);
        for (i = 0; i < at->cnt; i++) {
                w = &at->wants[i];
                switch (w->state) {
                case ST_CREATED:
                        created++;
                        fprintf(out, "%-*s  created, %d partition%s\n", wd,
                                w->name, w->partitions,
                                w->partitions == 1 ? "" : "s");
                        break;
                case ST_EXISTS:
                        existing++;
                        mismatched += w->mismatch ? 1 : 0;
                        fprintf(out, "%-*s  exists, %d partition%s%s%s%s\n",
                                wd, w->name, w->partitions,
                                w->partitions == 1 ? "" : "s",
                                w->mismatch ? ", mismatch: " : "", w->note,
                                w->mismatch ? "; not changed" : "");
                        break;
                default:
                        failed++;
                        fprintf(out, "%-*s  FAILED: %s\n", wd, w->name,
                                w->note);
                        break;
                }
        }
        fprintf(out, "created %zu, existing %zu, mismatched %zu, failed %zu\n",
                created, existing, mismatched, failed);
}

ab_err_t admin_topics_create(admin_topics_t *at, rd_kafka_t *rk,
                             int timeout_ms, FILE *out, size_t *failed_cntp,
                             char *errstr, size_t errstr_size) {
        cluster_t cl;
        want_t *w;
        ab_err_t err;
        size_t missing = 0;
        size_t failed  = 0;
        size_t i;

        err = readmd(at, rk, timeout_ms, &cl, errstr, errstr_size);
        if (err) {
                return err;
        }
        header(out, &cl);
        for (i = 0; i < at->cnt; i++) {
                w        = &at->wants[i];
                w->state = w->found ? ST_EXISTS : ST_MISSING;
                missing += w->found ? 0 : 1;
        }
        if (missing > 0 && !cl.has_controller) {
                ab_errstr_set(errstr, errstr_size,
                              "%zu of %zu topics are missing and the cluster "
                              "reports no controller (id %d is none of its "
                              "brokers), so the Admin API cannot create "
                              "them; librdkafka's mock cluster "
                              "(aetherbus-devbroker) is such a cluster: it "
                              "has no CreateTopics and makes a topic on "
                              "first use",
                              missing, at->cnt, (int)cl.controller);
                return AB_ERR_UNSUPPORTED;
        }
        err = create(at, rk, timeout_ms, errstr, errstr_size);
        if (err) {
                return err;
        }
        /* read back what was made (and what a concurrent creator made) */
        err = settle(at, rk, timeout_ms, &cl, errstr, errstr_size);
        if (err) {
                return err;
        }
        for (i = 0; i < at->cnt; i++) {
                w = &at->wants[i];
                if (w->state == ST_EXISTS && w->partitions < at->partitions) {
                        mismatch(w, "fewer than the %d asked",
                                 at->partitions);
                }
        }
        if (at->ccnt > 0 && cl.has_controller) {
                compare(at, rk, timeout_ms);
        } else if (at->ccnt > 0) {
                for (i = 0; i < at->cnt; i++) {
                        if (at->wants[i].state == ST_EXISTS) {
                                mismatch(&at->wants[i],
                                         "configs not compared: the cluster "
                                         "has no controller");
                        }
                }
        }
        report(at, out);
        for (i = 0; i < at->cnt; i++) {
                failed += at->wants[i].state == ST_FAILED ? 1 : 0;
        }
        *failed_cntp = failed;
        return AB_OK;
}
