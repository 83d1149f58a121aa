/* aetherbus - Apache-2.0
 *
 * sink_plan: where a batch that linger (not a size limit) closed ends,
 * kept in Kafka so that after a crash the batch re-read from the
 * committed offset is cut at the same offset, and is sent again with the
 * same Idempotency-Key and the same events. Owns the form of the plan in
 * the group's commit metadata ("ab-batch-end=<last offset>" on a commit
 * of the batch's first offset), committing a plan and reading it back.
 *
 * A plan means something only while the committed offset is the batch's
 * first: the next ordinary commit (the batch done) moves the offset on
 * with empty metadata and so ends it.
 *
 * What stays out: when a plan is needed and how the batch is cut by it
 * (the service), and ordinary offset commits (ab_consume).
 */
#ifndef SINK_PLAN_H
#define SINK_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "ab_err.h"

/** Longest metadata sink_plan_format() writes, NUL included. */
#define SINK_PLAN_METADATA_MAX 40

/**
 * @brief Writes the commit metadata of a batch ending at \p last:
 *        "ab-batch-end=<last>", NUL-terminated.
 * @returns AB_OK, or AB_ERR_INVALID when \p last is negative or \p size
 *          is too small (\p buf then holds "").
 */
ab_err_t sink_plan_format(int64_t last, char *buf, size_t size);

/**
 * @brief Reads a plan from commit metadata \p md of \p len bytes (not
 *        NUL-terminated; NULL when none) committed at offset \p start.
 * @returns AB_OK with *\p lastp set; AB_ERR_NOT_FOUND when the metadata
 *          is empty or not a plan (another tool's); AB_ERR_MALFORMED when
 *          it starts like a plan but the offset is not a decimal number,
 *          or is below \p start (then it cannot end a batch that starts
 *          there). *\p lastp is -1 unless AB_OK.
 */
ab_err_t sink_plan_parse(const char *md, size_t len, int64_t start,
                         int64_t *lastp);

/** One partition's plan: its batch is \p first..\p last. */
typedef struct sink_plan_s {
        const char *topic;
        int32_t partition;
        int64_t first, last;
        ab_err_t err; /**< out: AB_OK once committed, else AB_ERR_KAFKA */
} sink_plan_t;

/**
 * @brief Commits, synchronously and in one OffsetCommit, each plan's
 *        \p first as the group's offset of its partition with "ends at
 *        \p last" as metadata. Everything before each \p first must be
 *        done: this is an ordinary commit of the next offset to read that
 *        also says where the batch starting there ends. \p rk is the
 *        group's consumer. Each plan's err says how it went.
 * @returns AB_OK when every plan was committed; else AB_ERR_KAFKA (e.g. a
 *          partition went to another member) or AB_ERR_INVALID (a plan
 *          that is not a range, none committed), errstr naming the first
 *          failure.
 */
ab_err_t sink_plan_commit(rd_kafka_t *rk, sink_plan_t *plans, size_t cnt,
                          char *errstr, size_t errstr_size);

/**
 * @brief Reads the group's committed offset of \p topic / \p partition
 *        and the plan in its metadata, waiting up to \p timeout_ms.
 * @returns AB_OK with *\p startp the committed offset (-1 when none) and
 *          *\p lastp the plan's last offset (-1 when no plan); or
 *          AB_ERR_KAFKA with errstr (both -1).
 */
ab_err_t sink_plan_fetch(rd_kafka_t *rk, const char *topic, int32_t partition,
                         int timeout_ms, int64_t *startp, int64_t *lastp,
                         char *errstr, size_t errstr_size);

#endif
