/* aetherbus - Apache-2.0
 *
 * sink_plan: the plan travels as OffsetCommit metadata, the one place
 * Kafka keeps per group and partition next to the offset itself, so it
 * is written and read in the same round trips as the offset and goes
 * away with the next commit. rd_kafka_offsets_store() would not do:
 * librdkafka 2.0.2 stores only the offset (rd_kafka_offset_store0()) and
 * commits stored offsets with empty metadata, so a plan is an explicit
 * commit of a list whose elements carry .metadata; rd_kafka_commit_queue()
 * with a callback (and no queue: it waits) gives each partition's result,
 * where rd_kafka_commit() gives one error for them all.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sink_plan.h"

#define PLAN_PREFIX     "ab-batch-end="
#define PLAN_PREFIX_LEN (sizeof(PLAN_PREFIX) - 1)

ab_err_t sink_plan_format(int64_t last, char *buf, size_t size) {
        int n;

        if (size > 0) {
                buf[0] = '\0';
        }
        if (last < 0 || size == 0) {
                return AB_ERR_INVALID;
        }
        n = snprintf(buf, size, PLAN_PREFIX "%" PRId64, last);
        if (n < 0 || (size_t)n >= size) {
                buf[0] = '\0';
                return AB_ERR_INVALID;
        }
        return AB_OK;
}

ab_err_t sink_plan_parse(const char *md, size_t len, int64_t start,
                         int64_t *lastp) {
        int64_t v = 0;
        size_t i;

        *lastp = -1;
        if (!md || len < PLAN_PREFIX_LEN ||
            memcmp(md, PLAN_PREFIX, PLAN_PREFIX_LEN)) {
                return AB_ERR_NOT_FOUND;
        }
        if (len == PLAN_PREFIX_LEN) {
                return AB_ERR_MALFORMED;
        }
        for (i = PLAN_PREFIX_LEN; i < len; i++) {
                if (md[i] < '0' || md[i] > '9' ||
                    v > (INT64_MAX - (md[i] - '0')) / 10) {
                        return AB_ERR_MALFORMED;
                }
                v = v * 10 + (md[i] - '0');
        }
        if (v < start) {
                return AB_ERR_MALFORMED;
        }
        *lastp = v;
        return AB_OK;
}

/* The commit's result, per partition: served inside rd_kafka_commit_queue()
 * (no queue given: it waits). */
typedef struct {
        sink_plan_t *plans;
        size_t cnt;
        int served;
        rd_kafka_resp_err_t first_err; /* of the first plan not committed */
} commit_res_t;

static void commit_result(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t *offsets,
                          void *opaque) {
        commit_res_t *res = opaque;
        rd_kafka_topic_partition_t *tp;
        rd_kafka_resp_err_t e;
        size_t i;

        (void)rk;
        res->served = 1;
        for (i = 0; i < res->cnt; i++) {
                tp = offsets ? rd_kafka_topic_partition_list_find(
                                   offsets, res->plans[i].topic,
                                   res->plans[i].partition)
                             : NULL;
                e  = err ? err
                         : tp ? tp->err : RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
                res->plans[i].err = e ? AB_ERR_KAFKA : AB_OK;
                if (e && !res->first_err) {
                        res->first_err = e;
                }
        }
}

ab_err_t sink_plan_commit(rd_kafka_t *rk, sink_plan_t *plans, size_t cnt,
                          char *errstr, size_t errstr_size) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_topic_partition_t *tp;
        char md[SINK_PLAN_METADATA_MAX];
        rd_kafka_resp_err_t err;
        commit_res_t res = {plans, cnt, 0, RD_KAFKA_RESP_ERR_NO_ERROR};
        size_t i;

        for (i = 0; i < cnt; i++) {
                plans[i].err = AB_ERR_KAFKA;
        }
        for (i = 0; i < cnt; i++) {
                if (plans[i].first < 0 || plans[i].last < plans[i].first) {
                        ab_errstr_set(errstr, errstr_size,
                                      "plan %s [%" PRId32 "] %" PRId64
                                      "-%" PRId64 ": not a range",
                                      plans[i].topic, plans[i].partition,
                                      plans[i].first, plans[i].last);
                        return AB_ERR_INVALID;
                }
        }
        list = rd_kafka_topic_partition_list_new((int)cnt);
        for (i = 0; i < cnt; i++) {
                tp = rd_kafka_topic_partition_list_add(list, plans[i].topic,
                                                       plans[i].partition);
                tp->offset = plans[i].first;
                /* The list owns it: rd_kafka_topic_partition_list_destroy()
                 * frees .metadata; the commit copies metadata_size bytes. */
                (void)sink_plan_format(plans[i].last, md, sizeof(md));
                if (!(tp->metadata = strdup(md))) {
                        rd_kafka_topic_partition_list_destroy(list);
                        ab_errstr_set(errstr, errstr_size, "out of memory");
                        return AB_ERR_NOMEM;
                }
                tp->metadata_size = strlen(md);
        }
        err = rd_kafka_commit_queue(rk, list, NULL, commit_result, &res);
        rd_kafka_topic_partition_list_destroy(list);
        if (!res.served) {
                /* the reply never came: nothing is known committed */
                res.first_err = err ? err : RD_KAFKA_RESP_ERR__TIMED_OUT;
                for (i = 0; i < cnt; i++) {
                        plans[i].err = AB_ERR_KAFKA;
                }
        }
        for (i = 0; i < cnt; i++) {
                if (plans[i].err != AB_OK) {
                        ab_errstr_set(errstr, errstr_size,
                                      "commit plan %s [%" PRId32 "] @%" PRId64
                                      " end %" PRId64 ": %s",
                                      plans[i].topic, plans[i].partition,
                                      plans[i].first, plans[i].last,
                                      rd_kafka_err2str(res.first_err));
                        return AB_ERR_KAFKA;
                }
        }
        return AB_OK;
}

ab_err_t sink_plan_fetch(rd_kafka_t *rk, const char *topic, int32_t partition,
                         int timeout_ms, int64_t *startp, int64_t *lastp,
                         char *errstr, size_t errstr_size) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_topic_partition_t *tp;
        rd_kafka_resp_err_t err;

        *startp = -1;
        *lastp  = -1;
        list    = rd_kafka_topic_partition_list_new(1);
        tp      = rd_kafka_topic_partition_list_add(list, topic, partition);
        err     = rd_kafka_committed(rk, list, timeout_ms);
        if (!err) {
                err = tp->err;
        }
        if (err) {
                rd_kafka_topic_partition_list_destroy(list);
                ab_errstr_set(errstr, errstr_size,
                              "committed offset of %s [%" PRId32 "]: %s",
                              topic, partition, rd_kafka_err2str(err));
                return AB_ERR_KAFKA;
        }
        if (tp->offset >= 0) {
                *startp = tp->offset;
                /* Anything but a plan of ours (none, another tool's,
                 * garbage) is no plan: the batch is cut as usual. */
                (void)sink_plan_parse(tp->metadata, tp->metadata_size,
                                      tp->offset, lastp);
        }
        rd_kafka_topic_partition_list_destroy(list);
        return AB_OK;
}
