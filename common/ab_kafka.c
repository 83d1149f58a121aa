/* aetherbus - Apache-2.0
 *
 * ab_kafka: client configuration, the producer wrapper and the consumer
 * wrapper over librdkafka. Owns the settings we force (acks=all,
 * idempotence, manual offsets), the RDKAFKA_ passthrough, the routing of
 * librdkafka's logs and errors, the topic handle cache and the rebalance
 * policy. Keep record contents (Avro, topic choice) and retry policy out
 * of this file.
 */
#include <ctype.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "ab_kafka.h"
#include "ab_log.h"

#define COMP "kafka"

extern char **environ;

/* Defaults every client gets; props and the environment may override. */
static const char *const client_defaults[] = {
    "log.connection.close", "false",
    NULL,
};

static const char *const producer_defaults[] = {
    "partitioner", "murmur2_random", /* same key -> partition as Java */
    NULL,
};

/* Set last: the delivery guarantees do not depend on the environment. */
static const char *const producer_forced[] = {
    "acks", "all",
    "enable.idempotence", "true",
    NULL,
};

static const char *const consumer_forced[] = {
    "enable.auto.commit", "false",
    "enable.auto.offset.store", "false",
    NULL,
};

/* One cached topic handle of a producer. */
struct ptopic {
        char *name;
        rd_kafka_topic_t *rkt;
};

/* The first member of both wrappers: their error_cb reads it through the
 * opaque. */
typedef struct wrap_flags_s {
        atomic_int fatal;
        atomic_int all_down; /* since _ALL_BROKERS_DOWN, until an answer */
} wrap_flags_t;

struct ab_producer_s {
        wrap_flags_t flags; /* first */
        rd_kafka_t *rk;
        ab_delivery_cb_t *dr_cb;
        void *opaque;
        pthread_rwlock_t lock; /* topics */
        int lock_init;
        struct ptopic *topics;
        size_t topic_cnt;
        size_t topic_size;
        pthread_t thread;
        int thread_started;
        atomic_int stop;
        atomic_uint_fast64_t produced;
        atomic_uint_fast64_t delivered;
        atomic_uint_fast64_t failed;
        atomic_uint_fast64_t queue_full;
};

struct ab_consumer_s {
        wrap_flags_t flags; /* first, as in ab_producer_s */
        rd_kafka_t *rk;
        int has_group;
        atomic_int paused;
        void (*on_assign)(void *, rd_kafka_topic_partition_list_t *);
        void (*on_revoke)(void *, const rd_kafka_topic_partition_list_t *, int);
        void *opaque;
};

/* ------------------------------------------------------------------ */
/* Configuration                                                       */
/* ------------------------------------------------------------------ */

ab_err_t ab_kafka_env2prop(const char *name, char *prop, size_t prop_size) {
        size_t plen = strlen(AB_KAFKA_ENV_PREFIX);
        const char *s;
        size_t i;

        if (!name || strncmp(name, AB_KAFKA_ENV_PREFIX, plen) != 0 ||
            !prop || prop_size == 0) {
                return AB_ERR_INVALID;
        }
        s = name + plen;
        for (i = 0; s[i] && s[i] != '='; i++) {
                if (i + 1 >= prop_size) {
                        prop[0] = '\0';
                        return AB_ERR_INVALID;
                }
                prop[i] = s[i] == '_' ? '.'
                                      : (char)tolower((unsigned char)s[i]);
        }
        prop[i] = '\0';
        if (i == 0 || prop[0] == '.' || prop[i - 1] == '.') {
                return AB_ERR_INVALID;
        }
        return AB_OK;
}

ab_err_t ab_kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
                           const char *value, char *errstr,
                           size_t errstr_size) {
        char buf[512];
        rd_kafka_conf_res_t res;

        res = rd_kafka_conf_set(conf, name, value, buf, sizeof(buf));
        if (res == RD_KAFKA_CONF_OK) {
                return AB_OK;
        }
        ab_errstr_set(errstr, errstr_size, "%s: %s", name, buf);
        return res == RD_KAFKA_CONF_UNKNOWN ? AB_ERR_UNKNOWN : AB_ERR_INVALID;
}

ab_err_t ab_kafka_conf_env(rd_kafka_conf_t *conf, char *const *envp,
                           char *errstr, size_t errstr_size) {
        char prop[256];
        char why[512];
        const char *eq;
        char *const *e;
        ab_err_t err;

        for (e = envp ? envp : environ; e && *e; e++) {
                if (strncmp(*e, AB_KAFKA_ENV_PREFIX,
                            strlen(AB_KAFKA_ENV_PREFIX)) != 0) {
                        continue;
                }
                eq = strchr(*e, '=');
                if (!eq || ab_kafka_env2prop(*e, prop, sizeof(prop)) != AB_OK) {
                        ab_errstr_set(errstr, errstr_size,
                                      "%.*s: names no librdkafka property",
                                      (int)(eq ? eq - *e : (long)strlen(*e)),
                                      *e);
                        return AB_ERR_INVALID;
                }
                err = ab_kafka_conf_set(conf, prop, eq + 1, why, sizeof(why));
                if (err != AB_OK) {
                        ab_errstr_set(errstr, errstr_size, "%.*s: %s",
                                      (int)(eq - *e), *e, why);
                        return err;
                }
        }
        return AB_OK;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf) {
        ab_log_level_t lvl;

        if (level <= LOG_ERR) {
                lvl = AB_LOG_ERROR;
        } else if (level == LOG_WARNING) {
                lvl = AB_LOG_WARN;
        } else if (level <= LOG_INFO) {
                lvl = AB_LOG_INFO;
        } else {
                lvl = AB_LOG_DEBUG;
        }
        AB_LOG(lvl, COMP, "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

static void log_error(rd_kafka_t *rk, int err, const char *reason) {
        char buf[512];
        rd_kafka_resp_err_t orig;

        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
                ab_error(COMP, "%s: fatal error %s: %s", rd_kafka_name(rk),
                         rd_kafka_err2name(orig), buf);
                return;
        }
        ab_warn(COMP, "%s: %s: %s", rd_kafka_name(rk),
                rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* error_cb of plain configurations: log only. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
        (void)opaque;
        log_error(rk, err, reason);
}

/* error_cb of the wrappers: the opaque starts with their flags. */
static void wrap_error_cb(rd_kafka_t *rk, int err, const char *reason,
                          void *opaque) {
        wrap_flags_t *f = opaque;

        if (f && err == RD_KAFKA_RESP_ERR__FATAL) {
                atomic_store(&f->fatal, 1);
        }
        if (f && err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
                atomic_store(&f->all_down, 1);
        }
        log_error(rk, err, reason);
}

void ab_kafka_conf_logging(rd_kafka_conf_t *conf) {
        rd_kafka_conf_set_log_cb(conf, log_cb);
        rd_kafka_conf_set_error_cb(conf, error_cb);
}

static ab_err_t set_pairs(rd_kafka_conf_t *conf, const char *const *kv,
                          char *errstr, size_t errstr_size) {
        ab_err_t err;

        for (; kv && kv[0]; kv += 2) {
                if (!kv[1]) {
                        ab_errstr_set(errstr, errstr_size,
                                      "%s: property without a value", kv[0]);
                        return AB_ERR_INVALID;
                }
                err = ab_kafka_conf_set(conf, kv[0], kv[1], errstr,
                                        errstr_size);
                if (err != AB_OK) {
                        return err;
                }
        }
        return AB_OK;
}

/* Layers, later wins: our defaults, the wrapper's defaults, brokers, the
 * caller's settings, the environment, then what the wrapper forces. */
static rd_kafka_conf_t *conf_build(const char *brokers,
                                   const char *const *wrapper_defaults,
                                   const char *const *settings,
                                   const char *const *props,
                                   const char *const *forced, char *errstr,
                                   size_t errstr_size) {
        rd_kafka_conf_t *conf;

        conf = rd_kafka_conf_new();
        ab_kafka_conf_logging(conf);
        if (set_pairs(conf, client_defaults, errstr, errstr_size) != AB_OK ||
            set_pairs(conf, wrapper_defaults, errstr, errstr_size) != AB_OK ||
            (brokers && ab_kafka_conf_set(conf, "bootstrap.servers", brokers,
                                          errstr, errstr_size) != AB_OK) ||
            set_pairs(conf, settings, errstr, errstr_size) != AB_OK ||
            set_pairs(conf, props, errstr, errstr_size) != AB_OK ||
            ab_kafka_conf_env(conf, NULL, errstr, errstr_size) != AB_OK ||
            set_pairs(conf, forced, errstr, errstr_size) != AB_OK) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        return conf;
}

rd_kafka_conf_t *ab_kafka_conf_new(const char *brokers,
                                   const char *const *props, char *errstr,
                                   size_t errstr_size) {
        return conf_build(brokers, NULL, NULL, props, NULL, errstr,
                          errstr_size);
}

ab_err_t ab_kafka_err2ab(rd_kafka_resp_err_t err) {
        switch (err) {
        case RD_KAFKA_RESP_ERR_NO_ERROR:
                return AB_OK;
        case RD_KAFKA_RESP_ERR__QUEUE_FULL:
                return AB_ERR_UNAVAILABLE;
        case RD_KAFKA_RESP_ERR__TIMED_OUT:
        case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
        case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
                return AB_ERR_TIMEOUT;
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
                return AB_ERR_TOO_LARGE;
        default:
                return AB_ERR_KAFKA;
        }
}

static const rd_kafka_metadata_topic_t *
md_topic(const struct rd_kafka_metadata *md, const char *name) {
        int i;

        for (i = 0; i < md->topic_cnt; i++) {
                if (!strcmp(md->topics[i].topic, name)) {
                        return &md->topics[i];
                }
        }
        return NULL;
}

ab_err_t ab_kafka_ready(rd_kafka_t *rk, const char *const *topics,
                        size_t topic_cnt, int timeout_ms, char *errstr,
                        size_t errstr_size) {
        const struct rd_kafka_metadata *md = NULL;
        const rd_kafka_metadata_topic_t *mt;
        rd_kafka_resp_err_t err;
        ab_err_t ret = AB_OK;
        size_t i;

        err = rd_kafka_metadata(rk, topics && topic_cnt > 0, NULL, &md,
                                timeout_ms);
        if (err) {
                ab_errstr_set(errstr, errstr_size, "Kafka not reachable: %s",
                              rd_kafka_err2str(err));
                return AB_ERR_UNAVAILABLE;
        }
        if (md->broker_cnt == 0) {
                ab_errstr_set(errstr, errstr_size,
                              "Kafka not reachable: no brokers in metadata");
                ret = AB_ERR_UNAVAILABLE;
        }
        for (i = 0; ret == AB_OK && topics && i < topic_cnt; i++) {
                mt = md_topic(md, topics[i]);
                if (!mt || mt->err || mt->partition_cnt == 0) {
                        ab_errstr_set(errstr, errstr_size,
                                      "topic %s does not exist", topics[i]);
                        ret = AB_ERR_NOT_FOUND;
                }
        }
        rd_kafka_metadata_destroy(md);
        return ret;
}

/* "topic[0],topic[1]" into out, truncated with "...". */
static void parts_str(const rd_kafka_topic_partition_list_t *parts,
                      char *out, size_t size) {
        size_t of = 0;
        int i;
        int r;

        out[0] = '\0';
        for (i = 0; parts && i < parts->cnt; i++) {
                r = snprintf(out + of, size - of, "%s%s[%d]", i ? "," : "",
                             parts->elems[i].topic, parts->elems[i].partition);
                if (r < 0 || (size_t)r >= size - of) {
                        if (size > 4) {
                                strcpy(out + size - 4, "...");
                        }
                        return;
                }
                of += (size_t)r;
        }
}

/* ------------------------------------------------------------------ */
/* Producer                                                            */
/* ------------------------------------------------------------------ */

void ab_producer_conf_init(ab_producer_conf_t *pc) {
        memset(pc, 0, sizeof(*pc));
        pc->linger_ms = -1;
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m,
                      void *opaque) {
        ab_producer_t *p = opaque;
        ab_delivery_t dr;

        (void)rk;
        if (m->err) {
                atomic_fetch_add(&p->failed, 1);
        } else {
                atomic_fetch_add(&p->delivered, 1);
        }
        if (!p->dr_cb) {
                if (m->err) {
                        ab_warn(COMP, "delivery to %s [%d] failed: %s",
                                rd_kafka_topic_name(m->rkt), m->partition,
                                rd_kafka_err2str(m->err));
                }
                return;
        }
        dr.msg_opaque = m->_private;
        dr.err        = ab_kafka_err2ab(m->err);
        dr.kafka_err  = m->err;
        dr.errstr     = m->err ? rd_kafka_err2str(m->err) : NULL;
        dr.topic      = rd_kafka_topic_name(m->rkt);
        dr.partition  = m->partition;
        dr.offset     = m->offset;
        p->dr_cb(&dr, p->opaque);
}

static void *poll_main(void *arg) {
        ab_producer_t *p = arg;

        while (!atomic_load(&p->stop)) {
                rd_kafka_poll(p->rk, 100);
        }
        return NULL;
}

/* The numeric settings of pc as name, value pairs in kv (NULL-terminated),
 * their text in vals; unset ones are left out. */
static const char *const *producer_numeric(const ab_producer_conf_t *pc,
                                           char vals[][16],
                                           const char **kv) {
        static const char *const names[] = {
            "linger.ms", "batch.num.messages", "batch.size",
            "queue.buffering.max.messages", "queue.buffering.max.kbytes",
            "message.timeout.ms",
        };
        int v[6];
        size_t i;
        size_t n = 0;

        v[0] = pc->linger_ms;
        v[1] = pc->batch_num_messages > 0 ? pc->batch_num_messages : -1;
        v[2] = pc->batch_size > 0 ? pc->batch_size : -1;
        v[3] = pc->queue_max_messages > 0 ? pc->queue_max_messages : -1;
        v[4] = pc->queue_max_kbytes > 0 ? pc->queue_max_kbytes : -1;
        v[5] = pc->delivery_timeout_ms > 0 ? pc->delivery_timeout_ms : -1;
        for (i = 0; i < 6; i++) {
                if (v[i] < 0) {
                        continue;
                }
                snprintf(vals[i], 16, "%d", v[i]);
                kv[n++] = names[i];
                kv[n++] = vals[i];
        }
        kv[n] = NULL;
        return kv;
}

ab_producer_t *ab_producer_new(const ab_producer_conf_t *pc, char *errstr,
                               size_t errstr_size) {
        char vals[6][16];
        const char *numeric[13];
        const char *const *kv;
        char buf[512];
        rd_kafka_conf_t *conf;
        ab_producer_t *p;

        if (!pc || !pc->brokers || !*pc->brokers) {
                ab_errstr_set(errstr, errstr_size,
                              "producer: no brokers configured");
                return NULL;
        }
        p = calloc(1, sizeof(*p));
        if (!p) {
                ab_errstr_set(errstr, errstr_size, "producer: out of memory");
                return NULL;
        }
        p->dr_cb  = pc->dr_cb;
        p->opaque = pc->opaque;
        if (pthread_rwlock_init(&p->lock, NULL) != 0) {
                ab_errstr_set(errstr, errstr_size, "producer: lock init");
                ab_producer_destroy(p);
                return NULL;
        }
        p->lock_init = 1;

        kv   = producer_numeric(pc, vals, numeric);
        conf = conf_build(pc->brokers, producer_defaults, kv, pc->props,
                          producer_forced, errstr, errstr_size);
        if (!conf) {
                ab_producer_destroy(p);
                return NULL;
        }
        rd_kafka_conf_set_error_cb(conf, wrap_error_cb);
        rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
        rd_kafka_conf_set_opaque(conf, p);

        p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, buf, sizeof(buf));
        if (!p->rk) {
                rd_kafka_conf_destroy(conf);
                ab_errstr_set(errstr, errstr_size, "producer: %s", buf);
                ab_producer_destroy(p);
                return NULL;
        }
        if (pc->poll_thread) {
                if (pthread_create(&p->thread, NULL, poll_main, p) != 0) {
                        ab_errstr_set(errstr, errstr_size,
                                      "producer: cannot start poll thread");
                        ab_producer_destroy(p);
                        return NULL;
                }
                p->thread_started = 1;
        }
        ab_debug(COMP, "%s: producer for %s", rd_kafka_name(p->rk),
                 pc->brokers);
        return p;
}

void ab_producer_destroy(ab_producer_t *p) {
        size_t i;
        int left;

        if (!p) {
                return;
        }
        if (p->thread_started) {
                atomic_store(&p->stop, 1);
                pthread_join(p->thread, NULL);
        }
        if (p->rk) {
                if (rd_kafka_outq_len(p->rk) > 0) {
                        /* Failed delivery reports release the opaques. */
                        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE |
                                                  RD_KAFKA_PURGE_F_INFLIGHT);
                        rd_kafka_flush(p->rk, 2000);
                        left = rd_kafka_outq_len(p->rk);
                        if (left > 0) {
                                ab_warn(COMP, "%s: destroyed with outq_len %d",
                                        rd_kafka_name(p->rk), left);
                        }
                }
                for (i = 0; i < p->topic_cnt; i++) {
                        rd_kafka_topic_destroy(p->topics[i].rkt);
                }
                rd_kafka_destroy(p->rk);
        }
        for (i = 0; i < p->topic_cnt; i++) {
                free(p->topics[i].name);
        }
        free(p->topics);
        if (p->lock_init) {
                pthread_rwlock_destroy(&p->lock);
        }
        free(p);
}

static rd_kafka_topic_t *ptopic_find(ab_producer_t *p, const char *name) {
        size_t i;

        for (i = 0; i < p->topic_cnt; i++) {
                if (!strcmp(p->topics[i].name, name)) {
                        return p->topics[i].rkt;
                }
        }
        return NULL;
}

/* The cached handle for name, created on first use. */
static rd_kafka_topic_t *ptopic_get(ab_producer_t *p, const char *name,
                                    char *errstr, size_t errstr_size) {
        rd_kafka_topic_t *rkt;
        struct ptopic *nt;
        size_t nsize;
        char *dup;

        pthread_rwlock_rdlock(&p->lock);
        rkt = ptopic_find(p, name);
        pthread_rwlock_unlock(&p->lock);
        if (rkt) {
                return rkt;
        }

        pthread_rwlock_wrlock(&p->lock);
        rkt = ptopic_find(p, name);
        if (rkt) {
                goto done;
        }
        if (p->topic_cnt == p->topic_size) {
                nsize = p->topic_size ? p->topic_size * 2 : 16;
                nt    = realloc(p->topics, nsize * sizeof(*nt));
                if (!nt) {
                        ab_errstr_set(errstr, errstr_size, "out of memory");
                        goto done;
                }
                p->topics     = nt;
                p->topic_size = nsize;
        }
        dup = strdup(name);
        if (!dup) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                goto done;
        }
        rkt = rd_kafka_topic_new(p->rk, name, NULL);
        if (!rkt) {
                ab_errstr_set(errstr, errstr_size, "topic %s: %s", name,
                              rd_kafka_err2str(rd_kafka_last_error()));
                free(dup);
                goto done;
        }
        p->topics[p->topic_cnt].name = dup;
        p->topics[p->topic_cnt].rkt  = rkt;
        p->topic_cnt++;
done:
        pthread_rwlock_unlock(&p->lock);
        return rkt;
}

ab_err_t ab_producer_produce(ab_producer_t *p, const char *topic,
                             const void *key, size_t key_len,
                             const void *value, size_t value_len,
                             rd_kafka_headers_t *hdrs, int64_t timestamp_ms,
                             void *msg_opaque, char *errstr,
                             size_t errstr_size) {
        rd_kafka_topic_t *rkt;
        rd_kafka_resp_err_t err;

        if (!topic || !*topic) {
                ab_errstr_set(errstr, errstr_size, "no topic");
                return AB_ERR_INVALID;
        }
        rkt = ptopic_get(p, topic, errstr, errstr_size);
        if (!rkt) {
                return AB_ERR_KAFKA;
        }
        if (hdrs) {
                err = rd_kafka_producev(
                    p->rk, RD_KAFKA_V_RKT(rkt),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_KEY(key, key ? key_len : 0),
                    RD_KAFKA_V_VALUE((void *)value, value_len),
                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_TIMESTAMP(timestamp_ms),
                    RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
        } else {
                err = rd_kafka_producev(
                    p->rk, RD_KAFKA_V_RKT(rkt),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_KEY(key, key ? key_len : 0),
                    RD_KAFKA_V_VALUE((void *)value, value_len),
                    RD_KAFKA_V_TIMESTAMP(timestamp_ms),
                    RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
        }
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                atomic_fetch_add(&p->produced, 1);
                return AB_OK;
        }
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                atomic_fetch_add(&p->queue_full, 1);
                ab_errstr_set(errstr, errstr_size,
                              "producer queue full (outq_len %d)",
                              rd_kafka_outq_len(p->rk));
                return AB_ERR_UNAVAILABLE;
        }
        ab_errstr_set(errstr, errstr_size, "produce to %s: %s", topic,
                      rd_kafka_err2str(err));
        return ab_kafka_err2ab(err);
}

int ab_producer_poll(ab_producer_t *p, int timeout_ms) {
        return rd_kafka_poll(p->rk, timeout_ms);
}

ab_err_t ab_producer_flush(ab_producer_t *p, int timeout_ms) {
        rd_kafka_resp_err_t err;
        int left;

        err  = rd_kafka_flush(p->rk, timeout_ms);
        left = rd_kafka_outq_len(p->rk);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && left == 0) {
                ab_debug(COMP, "%s: flushed", rd_kafka_name(p->rk));
                return AB_OK;
        }
        ab_warn(COMP, "%s: flush gave up after %d ms: outq_len %d",
                rd_kafka_name(p->rk), timeout_ms, left);
        return AB_ERR_TIMEOUT;
}

ab_err_t ab_producer_ready(ab_producer_t *p, const char *const *topics,
                           size_t topic_cnt, int timeout_ms, char *errstr,
                           size_t errstr_size) {
        ab_err_t err = ab_kafka_ready(p->rk, topics, topic_cnt, timeout_ms,
                                      errstr, errstr_size);

        if (err != AB_ERR_UNAVAILABLE) {
                atomic_store(&p->flags.all_down, 0); /* it answered */
        } else if (!atomic_load(&p->flags.all_down)) {
                /* Connected but not answering in time: slow, not gone. */
                ab_errstr_set(errstr, errstr_size,
                              "Kafka slow: no metadata answer within %d ms "
                              "(brokers connected)",
                              timeout_ms);
                err = AB_ERR_TIMEOUT;
        }
        return err;
}

int ab_producer_outq_len(ab_producer_t *p) {
        return rd_kafka_outq_len(p->rk);
}

void ab_producer_stats(ab_producer_t *p, ab_producer_stats_t *st) {
        st->produced   = atomic_load(&p->produced);
        st->delivered  = atomic_load(&p->delivered);
        st->failed     = atomic_load(&p->failed);
        st->queue_full = atomic_load(&p->queue_full);
        st->outq_len   = rd_kafka_outq_len(p->rk);
}

static ab_err_t fatal_of(rd_kafka_t *rk, atomic_int *flag, char *errstr,
                         size_t errstr_size) {
        char buf[512];
        rd_kafka_resp_err_t err;

        err = rd_kafka_fatal_error(rk, buf, sizeof(buf));
        if (!err && !atomic_load(flag)) {
                return AB_OK;
        }
        ab_errstr_set(errstr, errstr_size, "fatal Kafka error %s: %s",
                      rd_kafka_err2name(err), err ? buf : "(unknown)");
        return AB_ERR_KAFKA;
}

ab_err_t ab_producer_fatal(ab_producer_t *p, char *errstr,
                           size_t errstr_size) {
        return fatal_of(p->rk, &p->flags.fatal, errstr, errstr_size);
}

rd_kafka_t *ab_producer_handle(ab_producer_t *p) {
        return p->rk;
}

/* ------------------------------------------------------------------ */
/* Consumer                                                            */
/* ------------------------------------------------------------------ */

void ab_consumer_conf_init(ab_consumer_conf_t *cc) {
        memset(cc, 0, sizeof(*cc));
        cc->auto_offset_reset = "earliest";
}

/* Commits what is stored for the current assignment, synchronously. */
static void commit_stored(rd_kafka_t *rk) {
        rd_kafka_resp_err_t err;

        err = rd_kafka_commit(rk, NULL, 0);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
                ab_warn(COMP, "%s: commit on revoke failed: %s",
                        rd_kafka_name(rk), rd_kafka_err2str(err));
        }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
        ab_consumer_t *c = opaque;
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t ret = RD_KAFKA_RESP_ERR_NO_ERROR;
        char desc[512];
        int coop;

        coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
        parts_str(parts, desc, sizeof(desc));
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                ab_info(COMP, "%s: assigned %d partition(s): %s",
                        rd_kafka_name(rk), parts->cnt, desc);
                if (c->on_assign) {
                        c->on_assign(c->opaque, parts);
                }
                if (coop) {
                        error = rd_kafka_incremental_assign(rk, parts);
                } else {
                        ret = rd_kafka_assign(rk, parts);
                }
                if (!error && !ret && atomic_load(&c->paused)) {
                        rd_kafka_pause_partitions(rk, parts);
                }
        } else {
                ab_info(COMP, "%s: %s %d partition(s): %s", rd_kafka_name(rk),
                        rd_kafka_assignment_lost(rk) ? "lost" : "revoked",
                        parts->cnt, desc);
                if (c->on_revoke) {
                        c->on_revoke(c->opaque, parts,
                                     rd_kafka_assignment_lost(rk));
                }
                if (!rd_kafka_assignment_lost(rk)) {
                        commit_stored(rk);
                }
                if (coop) {
                        error = rd_kafka_incremental_unassign(rk, parts);
                } else {
                        ret = rd_kafka_assign(rk, NULL);
                }
        }
        if (error) {
                ab_error(COMP, "%s: rebalance: %s", rd_kafka_name(rk),
                         rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        } else if (ret) {
                ab_error(COMP, "%s: rebalance: %s", rd_kafka_name(rk),
                         rd_kafka_err2str(ret));
        }
}

static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets,
                      void *opaque) {
        int i;

        (void)opaque;
        if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
                return;
        }
        if (err) {
                ab_warn(COMP, "%s: offset commit failed: %s",
                        rd_kafka_name(rk), rd_kafka_err2str(err));
                return;
        }
        for (i = 0; offsets && i < offsets->cnt; i++) {
                if (offsets->elems[i].err) {
                        ab_warn(COMP, "%s: offset commit %s [%d]: %s",
                                rd_kafka_name(rk), offsets->elems[i].topic,
                                offsets->elems[i].partition,
                                rd_kafka_err2str(offsets->elems[i].err));
                }
        }
}

ab_consumer_t *ab_consumer_new(const ab_consumer_conf_t *cc, char *errstr,
                               size_t errstr_size) {
        const char *defaults[9];
        char group[96];
        char timeout[16];
        char buf[512];
        rd_kafka_conf_t *conf;
        ab_consumer_t *c;
        struct timespec ts;
        size_t n = 0;

        if (!cc || !cc->brokers || !*cc->brokers) {
                ab_errstr_set(errstr, errstr_size,
                              "consumer: no brokers configured");
                return NULL;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                ab_errstr_set(errstr, errstr_size, "consumer: out of memory");
                return NULL;
        }
        /* The prefetch queue is most of a consumer's memory: librdkafka's
         * 100,000 messages / 64 MiB took aetherbus-stats to 92 MB RSS
         * draining 1M events; 20,000 / 8 MiB keeps it under 40 MB and, with
         * ab_consume's broker wake-ups, drained faster (1.8 s, not 2.3). */
        defaults[n++] = "queued.min.messages";
        defaults[n++] = "20000";
        defaults[n++] = "queued.max.messages.kbytes";
        defaults[n++] = "8192";
        if (cc->auto_offset_reset) {
                defaults[n++] = "auto.offset.reset";
                defaults[n++] = cc->auto_offset_reset;
        }
        if (cc->session_timeout_ms > 0) {
                snprintf(timeout, sizeof(timeout), "%d",
                         cc->session_timeout_ms);
                defaults[n++] = "session.timeout.ms";
                defaults[n++] = timeout;
        }
        defaults[n] = NULL;

        conf = conf_build(cc->brokers, NULL, defaults, cc->props,
                          consumer_forced, errstr, errstr_size);
        if (!conf) {
                ab_consumer_destroy(c);
                return NULL;
        }
        /* librdkafka serves a consumer's queue only with a group id; in
         * assign mode the private group is never joined nor committed. */
        c->has_group = cc->group_id != NULL;
        c->on_assign = cc->on_assign;
        c->on_revoke = cc->on_revoke;
        c->opaque    = cc->opaque;
        if (!c->has_group) {
                clock_gettime(CLOCK_REALTIME, &ts);
                snprintf(group, sizeof(group), "aetherbus-assign-%ld-%lx",
                         (long)getpid(),
                         (unsigned long)(ts.tv_nsec ^ (long)(uintptr_t)c));
        }
        if (ab_kafka_conf_set(conf, "group.id",
                              c->has_group ? cc->group_id : group, errstr,
                              errstr_size) != AB_OK) {
                rd_kafka_conf_destroy(conf);
                ab_consumer_destroy(c);
                return NULL;
        }
        rd_kafka_conf_set_error_cb(conf, wrap_error_cb);
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
        rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
        rd_kafka_conf_set_opaque(conf, c);

        c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, buf, sizeof(buf));
        if (!c->rk) {
                rd_kafka_conf_destroy(conf);
                ab_errstr_set(errstr, errstr_size, "consumer: %s", buf);
                ab_consumer_destroy(c);
                return NULL;
        }
        rd_kafka_poll_set_consumer(c->rk);
        ab_debug(COMP, "%s: consumer for %s, group %s", rd_kafka_name(c->rk),
                 cc->brokers, c->has_group ? cc->group_id : "(none)");
        return c;
}

void ab_consumer_destroy(ab_consumer_t *c) {
        rd_kafka_resp_err_t err;

        if (!c) {
                return;
        }
        if (c->rk) {
                err = rd_kafka_consumer_close(c->rk);
                if (err) {
                        ab_warn(COMP, "%s: close: %s", rd_kafka_name(c->rk),
                                rd_kafka_err2str(err));
                }
                rd_kafka_destroy(c->rk);
        }
        free(c);
}

ab_err_t ab_consumer_subscribe(ab_consumer_t *c, const char *const *topics,
                               size_t topic_cnt, char *errstr,
                               size_t errstr_size) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;
        size_t i;

        if (!c->has_group) {
                ab_errstr_set(errstr, errstr_size,
                              "subscribe needs a consumer group");
                return AB_ERR_INVALID;
        }
        if (!topics || topic_cnt == 0) {
                ab_errstr_set(errstr, errstr_size, "no topics to subscribe");
                return AB_ERR_INVALID;
        }
        list = rd_kafka_topic_partition_list_new((int)topic_cnt);
        for (i = 0; i < topic_cnt; i++) {
                rd_kafka_topic_partition_list_add(list, topics[i],
                                                  RD_KAFKA_PARTITION_UA);
        }
        err = rd_kafka_subscribe(c->rk, list);
        rd_kafka_topic_partition_list_destroy(list);
        if (err) {
                ab_errstr_set(errstr, errstr_size, "subscribe: %s",
                              rd_kafka_err2str(err));
                return AB_ERR_KAFKA;
        }
        return AB_OK;
}

/* Adds every partition of mt to list at offset. */
static void add_partitions(rd_kafka_topic_partition_list_t *list,
                           const rd_kafka_metadata_topic_t *mt,
                           int64_t offset) {
        int i;

        for (i = 0; i < mt->partition_cnt; i++) {
                rd_kafka_topic_partition_list_add(list, mt->topic,
                                                  mt->partitions[i].id)
                    ->offset = offset;
        }
}

/* Adds what pattern (a name or a '^' regex) selects in md. */
static ab_err_t select_topics(rd_kafka_topic_partition_list_t *list,
                              const struct rd_kafka_metadata *md,
                              const char *pattern, int64_t offset,
                              char *errstr, size_t errstr_size) {
        const rd_kafka_metadata_topic_t *mt;
        regex_t re;
        int i;

        if (pattern[0] != '^') {
                mt = md_topic(md, pattern);
                if (!mt || mt->err || mt->partition_cnt == 0) {
                        ab_errstr_set(errstr, errstr_size,
                                      "topic %s does not exist", pattern);
                        return AB_ERR_NOT_FOUND;
                }
                add_partitions(list, mt, offset);
                return AB_OK;
        }
        if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
                ab_errstr_set(errstr, errstr_size, "bad topic regex %s",
                              pattern);
                return AB_ERR_INVALID;
        }
        for (i = 0; i < md->topic_cnt; i++) {
                mt = &md->topics[i];
                if (mt->err || !strncmp(mt->topic, "__", 2) ||
                    regexec(&re, mt->topic, 0, NULL, 0) != 0) {
                        continue;
                }
                add_partitions(list, mt, offset);
        }
        regfree(&re);
        return AB_OK;
}

ab_err_t ab_consumer_assign_all(ab_consumer_t *c, const char *const *topics,
                                size_t topic_cnt, int64_t offset,
                                int timeout_ms, char *errstr,
                                size_t errstr_size) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;
        ab_err_t ret = AB_OK;
        size_t i;

        if (!topics || topic_cnt == 0) {
                ab_errstr_set(errstr, errstr_size, "no topics to assign");
                return AB_ERR_INVALID;
        }
        err = rd_kafka_metadata(c->rk, 1, NULL, &md, timeout_ms);
        if (err) {
                ab_errstr_set(errstr, errstr_size, "metadata: %s",
                              rd_kafka_err2str(err));
                return ab_kafka_err2ab(err) == AB_ERR_TIMEOUT
                           ? AB_ERR_UNAVAILABLE
                           : AB_ERR_KAFKA;
        }
        list = rd_kafka_topic_partition_list_new(16);
        for (i = 0; ret == AB_OK && i < topic_cnt; i++) {
                ret = select_topics(list, md, topics[i], offset, errstr,
                                    errstr_size);
        }
        rd_kafka_metadata_destroy(md);
        if (ret == AB_OK) {
                err = rd_kafka_assign(c->rk, list);
                if (err) {
                        ab_errstr_set(errstr, errstr_size, "assign: %s",
                                      rd_kafka_err2str(err));
                        ret = AB_ERR_KAFKA;
                } else if (atomic_load(&c->paused) && list->cnt > 0) {
                        rd_kafka_pause_partitions(c->rk, list);
                }
        }
        if (ret == AB_OK) {
                ab_info(COMP, "%s: assigned %d partition(s) without a group",
                        rd_kafka_name(c->rk), list->cnt);
        }
        rd_kafka_topic_partition_list_destroy(list);
        return ret;
}

ab_err_t ab_consumer_poll(ab_consumer_t *c, int timeout_ms,
                          rd_kafka_message_t **msgp, char *errstr,
                          size_t errstr_size) {
        rd_kafka_message_t *m;
        ab_err_t err;

        *msgp = NULL;
        m     = rd_kafka_consumer_poll(c->rk, timeout_ms);
        if (!m) {
                return AB_OK;
        }
        if (!m->err) {
                *msgp = m;
                return AB_OK;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                rd_kafka_message_destroy(m);
                return AB_OK;
        }
        if (m->rkt) {
                ab_errstr_set(errstr, errstr_size, "consume %s [%d]: %s",
                              rd_kafka_topic_name(m->rkt), m->partition,
                              rd_kafka_message_errstr(m));
        } else {
                ab_errstr_set(errstr, errstr_size, "consume: %s",
                              rd_kafka_message_errstr(m));
        }
        err = ab_kafka_err2ab(m->err);
        rd_kafka_message_destroy(m);
        return err;
}

/* A one-partition list: msg's partition at offset + 1. */
static rd_kafka_topic_partition_list_t *
msg_offsets(const rd_kafka_message_t *msg) {
        rd_kafka_topic_partition_list_t *list;

        list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, rd_kafka_topic_name(msg->rkt),
                                          msg->partition)
            ->offset = msg->offset + 1;
        return list;
}

ab_err_t ab_consumer_store(ab_consumer_t *c, const rd_kafka_message_t *msg,
                           char *errstr, size_t errstr_size) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;

        list = msg_offsets(msg);
        err  = rd_kafka_offsets_store(c->rk, list);
        if (!err) {
                err = list->elems[0].err;
        }
        rd_kafka_topic_partition_list_destroy(list);
        if (err) {
                ab_errstr_set(errstr, errstr_size, "store offset %s [%d]: %s",
                              rd_kafka_topic_name(msg->rkt), msg->partition,
                              rd_kafka_err2str(err));
                return AB_ERR_KAFKA;
        }
        return AB_OK;
}

static ab_err_t commit(ab_consumer_t *c,
                       const rd_kafka_topic_partition_list_t *offsets,
                       int async, char *errstr, size_t errstr_size) {
        rd_kafka_resp_err_t err;

        if (!c->has_group) {
                ab_errstr_set(errstr, errstr_size,
                              "commit needs a consumer group");
                return AB_ERR_INVALID;
        }
        err = rd_kafka_commit(c->rk, offsets, async);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
                ab_errstr_set(errstr, errstr_size, "commit: %s",
                              rd_kafka_err2str(err));
                return ab_kafka_err2ab(err);
        }
        return AB_OK;
}

ab_err_t ab_consumer_commit(ab_consumer_t *c, int async, char *errstr,
                            size_t errstr_size) {
        return commit(c, NULL, async, errstr, errstr_size);
}

ab_err_t ab_consumer_commit_message(ab_consumer_t *c,
                                    const rd_kafka_message_t *msg, int async,
                                    char *errstr, size_t errstr_size) {
        rd_kafka_topic_partition_list_t *list;
        ab_err_t err;

        if (!c->has_group) {
                return commit(c, NULL, async, errstr, errstr_size);
        }
        err = ab_consumer_store(c, msg, errstr, errstr_size);
        if (err != AB_OK) {
                return err;
        }
        list = msg_offsets(msg);
        err  = commit(c, list, async, errstr, errstr_size);
        rd_kafka_topic_partition_list_destroy(list);
        return err;
}

ab_err_t
ab_consumer_commit_offsets(ab_consumer_t *c,
                           const rd_kafka_topic_partition_list_t *offsets,
                           int async, char *errstr, size_t errstr_size) {
        if (!offsets || offsets->cnt == 0) {
                ab_errstr_set(errstr, errstr_size, "no offsets to commit");
                return AB_ERR_INVALID;
        }
        return commit(c, offsets, async, errstr, errstr_size);
}

static ab_err_t pause_resume(ab_consumer_t *c, int pause, char *errstr,
                             size_t errstr_size) {
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_resp_err_t err;

        atomic_store(&c->paused, pause);
        err = rd_kafka_assignment(c->rk, &parts);
        if (!err && parts->cnt > 0) {
                err = pause ? rd_kafka_pause_partitions(c->rk, parts)
                            : rd_kafka_resume_partitions(c->rk, parts);
        }
        if (parts) {
                rd_kafka_topic_partition_list_destroy(parts);
        }
        if (err) {
                ab_errstr_set(errstr, errstr_size, "%s: %s",
                              pause ? "pause" : "resume",
                              rd_kafka_err2str(err));
                return AB_ERR_KAFKA;
        }
        ab_info(COMP, "%s: %s", rd_kafka_name(c->rk),
                pause ? "paused" : "resumed");
        return AB_OK;
}

ab_err_t ab_consumer_pause(ab_consumer_t *c, char *errstr,
                           size_t errstr_size) {
        return pause_resume(c, 1, errstr, errstr_size);
}

ab_err_t ab_consumer_resume(ab_consumer_t *c, char *errstr,
                            size_t errstr_size) {
        return pause_resume(c, 0, errstr, errstr_size);
}

int ab_consumer_assignment_count(ab_consumer_t *c) {
        rd_kafka_topic_partition_list_t *parts = NULL;
        int n = 0;

        if (rd_kafka_assignment(c->rk, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                n = parts->cnt;
        }
        if (parts) {
                rd_kafka_topic_partition_list_destroy(parts);
        }
        return n;
}

ab_err_t ab_consumer_fatal(ab_consumer_t *c, char *errstr,
                           size_t errstr_size) {
        return fatal_of(c->rk, &c->flags.fatal, errstr, errstr_size);
}

rd_kafka_t *ab_consumer_handle(ab_consumer_t *c) {
        return c->rk;
}
