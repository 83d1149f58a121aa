/* aetherbus - Apache-2.0
 *
 * admin_deadletter: list and replay <prefix>deadletter, see the header.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ab_avro.h"
#include "ab_cloudevents.h"
#include "ab_envelope.h"
#include "ab_kafka.h"
#include "ab_record.h"
#include "ab_time.h"
#include "admin_deadletter.h"

#define MAX_PARTS 1024

typedef struct run_s {
        const ab_catalog_t *cat;
        const admin_dlq_filter_t *filter;
        ab_avro_codec_t *codec;
        rd_kafka_t *producer;
        FILE *out;
        size_t matched, produced, failed;
        int delivered, undelivered;
} run_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
        run_t *r = opaque;

        (void)rk;
        if (m->err) {
                r->undelivered++;
        } else {
                r->delivered++;
        }
}

static rd_kafka_t *client(const rd_kafka_conf_t *base, rd_kafka_type_t type,
                          run_t *r, char *errstr, size_t errstr_size) {
        rd_kafka_conf_t *conf = rd_kafka_conf_dup(base);
        char buf[512];
        rd_kafka_t *rk;

        if (type == RD_KAFKA_CONSUMER
                ? ab_kafka_conf_set(conf, "group.id", "aetherbus-admin-deadletter",
                                    errstr, errstr_size) ||
                      ab_kafka_conf_set(conf, "enable.auto.commit", "false",
                                        errstr, errstr_size)
                : ab_kafka_conf_set(conf, "acks", "all", errstr, errstr_size) ||
                      ab_kafka_conf_set(conf, "enable.idempotence", "true",
                                        errstr, errstr_size)) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        if (type == RD_KAFKA_PRODUCER) {
                rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
                rd_kafka_conf_set_opaque(conf, r);
        }
        if (!(rk = rd_kafka_new(type, conf, buf, sizeof(buf)))) {
                rd_kafka_conf_destroy(conf);
                ab_errstr_set(errstr, errstr_size, "%s", buf);
        }
        return rk;
}

static int name_matches(const char *pattern, const char *name) {
        size_t n;

        if (!pattern) {
                return 1;
        }
        if (!name) {
                return 0;
        }
        n = strlen(pattern);
        if (n > 0 && pattern[n - 1] == '*') {
                return !strncmp(pattern, name, n - 1);
        }
        return !strcmp(pattern, name);
}

/* Produces the event of a dead letter again to the topic it came from. */
static void replay_one(run_t *r, const ab_record_failure_t *f) {
        ab_envelope_limits_t limits;
        ab_envelope_ctx_t ctx;
        ab_envelope_t env;
        rd_kafka_headers_t *hdrs;
        rd_kafka_resp_err_t kerr;
        char value[1 << 17], errstr[256];
        size_t len;
        const char *key;
        ab_err_t err;

        ab_envelope_limits_default(&limits);
        memset(&ctx, 0, sizeof(ctx));
        ctx.catalog = r->cat;
        ctx.limits  = &limits;
        ctx.form    = AB_FORM_INGEST;
        if (!f->src_topic || !f->original ||
            (err = ab_envelope_from_json(&env, f->original, &ctx, errstr,
                                         sizeof(errstr)))) {
                fprintf(stderr, "aetherbus-admin: cannot replay %s@%" PRId64
                                ": %s\n",
                        f->src_topic ? f->src_topic : "?", f->src_offset,
                        f->original ? errstr : "no event in the record");
                r->failed++;
                return;
        }
        ab_envelope_set_received(&env, ab_time_now_ms());
        if ((err = ab_avro_encode(r->codec, &env, value, sizeof(value), &len,
                                  errstr, sizeof(errstr)))) {
                fprintf(stderr, "aetherbus-admin: cannot encode %s: %s\n",
                        env.id, errstr);
                ab_envelope_clear(&env);
                r->failed++;
                return;
        }
        key  = ab_envelope_key(&env);
        hdrs = ab_cloudevents_headers_new(&env);
        kerr = rd_kafka_producev(r->producer, RD_KAFKA_V_TOPIC(f->src_topic),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_KEY(key, strlen(key)),
                                 RD_KAFKA_V_VALUE(value, len),
                                 RD_KAFKA_V_TIMESTAMP(env.received_at_ms),
                                 RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (kerr) {
                rd_kafka_headers_destroy(hdrs);
                fprintf(stderr, "aetherbus-admin: produce %s: %s\n", env.id,
                        rd_kafka_err2str(kerr));
                r->failed++;
        } else {
                r->produced++;
        }
        ab_envelope_clear(&env);
        rd_kafka_poll(r->producer, 0);
}

static void one(run_t *r, const rd_kafka_message_t *m) {
        ab_record_failure_t f;
        char errstr[256], at[40];
        json_t *doc = NULL, *line;
        const char *name, *id;

        if (ab_record_failure_decode(AB_RECORD_DEADLETTER, m->payload, m->len,
                                     &doc, &f, errstr, sizeof(errstr))) {
                fprintf(stderr, "aetherbus-admin: %s [%" PRId32 "] @%" PRId64
                                ": not a dead letter: %s\n",
                        rd_kafka_topic_name(m->rkt), m->partition, m->offset,
                        errstr);
                json_decref(doc);
                return;
        }
        name = json_string_value(json_object_get(f.original, "name"));
        id   = json_string_value(json_object_get(f.original, "id"));
        if (!name_matches(r->filter->name, name) ||
            (r->filter->since_ms && f.failed_at_ms < r->filter->since_ms)) {
                json_decref(doc);
                return;
        }
        r->matched++;
        ab_time_format(f.failed_at_ms, at, sizeof(at));
        line = json_pack("{s:i,s:I,s:s?,s:s?,s:s?,s:i,s:I,s:i,s:s?,s:s,s:s}",
                         "partition", (int)m->partition, "offset",
                         (json_int_t)m->offset, "id", id, "name", name,
                         "srcTopic", f.src_topic, "srcPartition",
                         (int)f.src_partition, "srcOffset",
                         (json_int_t)f.src_offset, "httpStatus", f.http_status,
                         "code", f.code, "reason", f.reason, "failedAt", at);
        if (line) {
                json_dumpf(line, r->out, JSON_COMPACT);
                fputc('\n', r->out);
                json_decref(line);
        }
        if (r->producer) {
                replay_one(r, &f);
        }
        json_decref(doc);
}

ab_err_t admin_deadletter_run(const rd_kafka_conf_t *conf,
                              const ab_catalog_t *cat, const char *prefix,
                              const admin_dlq_filter_t *filter, int replay,
                              int timeout_ms, FILE *out, size_t *matched,
                              size_t *replayed, size_t *failed, char *errstr,
                              size_t errstr_size) {
        rd_kafka_topic_partition_list_t *list = NULL;
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_message_t *m;
        rd_kafka_topic_t *rkt = NULL;
        rd_kafka_t *rk = NULL;
        int64_t lo, hi, *end = NULL, left = 0, deadline;
        char topic[256];
        run_t r;
        int i, parts;
        ab_err_t ret = AB_OK;

        memset(&r, 0, sizeof(r));
        r.cat    = cat;
        r.filter = filter;
        r.out    = out;
        if ((ret = ab_catalog_topic(prefix, AB_CATALOG_TOPIC_DEADLETTER, topic,
                                    sizeof(topic)))) {
                ab_errstr_set(errstr, errstr_size, "bad topic prefix");
                return ret;
        }
        if (!(rk = client(conf, RD_KAFKA_CONSUMER, &r, errstr, errstr_size)) ||
            (replay &&
             (!(r.codec = ab_avro_codec_new(NULL, errstr, errstr_size)) ||
              !(r.producer = client(conf, RD_KAFKA_PRODUCER, &r, errstr,
                                    errstr_size))))) {
                ret = AB_ERR_INVALID;
                goto done;
        }
        rkt = rd_kafka_topic_new(rk, topic, NULL);
        if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) != 0) {
                ab_errstr_set(errstr, errstr_size, "no metadata for %s", topic);
                ret = AB_ERR_TIMEOUT;
                goto done;
        }
        if (md->topic_cnt != 1 || md->topics[0].err ||
            (parts = md->topics[0].partition_cnt) < 1 || parts > MAX_PARTS) {
                ab_errstr_set(errstr, errstr_size, "topic %s does not exist",
                              topic);
                ret = AB_ERR_NOT_FOUND;
                goto done;
        }
        end  = calloc((size_t)parts, sizeof(*end));
        list = rd_kafka_topic_partition_list_new(parts);
        for (i = 0; end && i < parts; i++) {
                if (rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &hi,
                                                     timeout_ms)) {
                        ab_errstr_set(errstr, errstr_size,
                                      "no watermarks of %s [%d]", topic, i);
                        ret = AB_ERR_TIMEOUT;
                        goto done;
                }
                end[i] = hi;
                left += hi - lo;
                rd_kafka_topic_partition_list_add(list, topic, i)->offset = lo;
        }
        if (left > 0 && rd_kafka_assign(rk, list)) {
                ab_errstr_set(errstr, errstr_size, "cannot read %s", topic);
                ret = AB_ERR_KAFKA;
                goto done;
        }
        deadline = ab_time_now_ms() + 6 * (int64_t)timeout_ms;
        while (left > 0 && ab_time_now_ms() < deadline) {
                if (!(m = rd_kafka_consumer_poll(rk, 200))) {
                        continue;
                }
                if (!m->err && m->partition >= 0 && m->partition < parts &&
                    m->offset < end[m->partition]) {
                        one(&r, m);
                        left--;
                }
                rd_kafka_message_destroy(m);
        }
        if (left > 0) {
                ab_errstr_set(errstr, errstr_size,
                              "%" PRId64 " records of %s not read in time", left,
                              topic);
                ret = AB_ERR_TIMEOUT;
        }
        if (r.producer && rd_kafka_flush(r.producer, timeout_ms)) {
                ab_errstr_set(errstr, errstr_size,
                              "replayed events not acknowledged in time");
                ret = AB_ERR_TIMEOUT;
        }
done:
        *matched  = r.matched;
        *replayed = (size_t)r.delivered;
        *failed   = r.failed + (size_t)r.undelivered +
                  (r.produced > (size_t)(r.delivered + r.undelivered)
                       ? r.produced - (size_t)(r.delivered + r.undelivered)
                       : 0);
        if (md) {
                rd_kafka_metadata_destroy(md);
        }
        if (list) {
                rd_kafka_topic_partition_list_destroy(list);
        }
        free(end);
        if (rkt) {
                rd_kafka_topic_destroy(rkt);
        }
        if (rk) {
                rd_kafka_consumer_close(rk);
                rd_kafka_destroy(rk);
        }
        if (r.producer) {
                rd_kafka_destroy(r.producer);
        }
        ab_avro_codec_destroy(r.codec);
        return ret;
}
