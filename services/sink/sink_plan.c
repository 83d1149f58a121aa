/* aetherbus - Apache-2.0
 *
 * sink_plan: the plan travels as OffsetCommit metadata, the one place
 * Kafka keeps per group and partition next to the offset itself, so it
 * is written and read in the same round trips as the offset and goes
 * away with the next commit. rd_kafka_offsets_store() would not do:
 * librdkafka 2.0.2 stores only the offset (rd_kafka_offset_store0()) and
 * commits stored offsets with empty metadata, so the plan is an explicit
 * rd_kafka_commit() of a list whose element carries .metadata.
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

ab_err_t sink_plan_commit(rd_kafka_t *rk, const char *topic,
                          int32_t partition, int64_t first, int64_t last,
                          char *errstr, size_t errstr_size) {
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_topic_partition_t *tp;
        char md[SINK_PLAN_METADATA_MAX];
        rd_kafka_resp_err_t err;

        if (first < 0 || last < first ||
            sink_plan_format(last, md, sizeof(md)) != AB_OK) {
                ab_errstr_set(errstr, errstr_size,
                              "plan %s [%" PRId32 "] %" PRId64 "-%" PRId64
                              ": not a range",
                              topic, partition, first, last);
                return AB_ERR_INVALID;
        }
        list = rd_kafka_topic_partition_list_new(1);
        tp   = rd_kafka_topic_partition_list_add(list, topic, partition);
        tp->offset = first;
        /* The list owns it: rd_kafka_topic_partition_list_destroy() frees
         * .metadata, and the commit copies it (metadata_size bytes). */
        tp->metadata      = strdup(md);
        tp->metadata_size = tp->metadata ? strlen(md) : 0;
        if (!tp->metadata) {
                rd_kafka_topic_partition_list_destroy(list);
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return AB_ERR_NOMEM;
        }
        /* One partition: the request's error is the partition's. */
        err = rd_kafka_commit(rk, list, 0);
        rd_kafka_topic_partition_list_destroy(list);
        if (err) {
                ab_errstr_set(errstr, errstr_size,
                              "commit plan %s [%" PRId32 "] @%" PRId64
                              " end %" PRId64 ": %s",
                              topic, partition, first, last,
                              rd_kafka_err2str(err));
                return AB_ERR_KAFKA;
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
