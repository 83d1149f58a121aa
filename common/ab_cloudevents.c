/* aetherbus - Apache-2.0
 *
 * ab_cloudevents: an envelope's Kafka record (CloudEvents binary-mode
 * headers, key, receivedAt as the timestamp). The producer is ab_kafka's;
 * nothing here talks to librdkafka but its header list.
 */
#include <string.h>

#include "ab_cloudevents.h"

rd_kafka_headers_t *ab_cloudevents_headers_new(const ab_envelope_t *env) {
        rd_kafka_headers_t *hdrs;

        if (!env || !env->id || !env->name || !env->source ||
            !env->occurred_at) {
                return NULL;
        }
        hdrs = rd_kafka_headers_new(9);
        rd_kafka_header_add(hdrs, "ce_specversion", -1, "1.0", -1);
        rd_kafka_header_add(hdrs, "ce_id", -1, env->id, -1);
        rd_kafka_header_add(hdrs, "ce_type", -1, env->name, -1);
        rd_kafka_header_add(hdrs, "ce_source", -1, env->source, -1);
        rd_kafka_header_add(hdrs, "ce_time", -1, env->occurred_at, -1);
        if (env->subject_id) {
                rd_kafka_header_add(hdrs, "ce_subject", -1, env->subject_id,
                                    -1);
        }
        if (env->auth_type) {
                rd_kafka_header_add(hdrs, AB_CLOUDEVENTS_H_AUTHTYPE, -1,
                                    env->auth_type, -1);
        }
        if (env->auth_id) {
                rd_kafka_header_add(hdrs, AB_CLOUDEVENTS_H_AUTHID, -1,
                                    env->auth_id, -1);
        }
        rd_kafka_header_add(hdrs, "content-type", -1,
                            AB_CLOUDEVENTS_CONTENT_TYPE, -1);
        return hdrs;
}

ab_err_t ab_cloudevents_produce(ab_producer_t *p, const char *topic,
                                const ab_envelope_t *env, const void *value,
                                size_t value_len, void *msg_opaque,
                                char *errstr, size_t errstr_size) {
        rd_kafka_headers_t *hdrs;
        const char *key;
        ab_err_t err;

        hdrs = ab_cloudevents_headers_new(env);
        if (!hdrs) {
                ab_errstr_set(errstr, errstr_size,
                              "envelope lacks id, name, source or occurredAt");
                return AB_ERR_INVALID;
        }
        key = ab_envelope_key(env);
        /* receivedAt, not the produce time: stats seeks by it
         * (rd_kafka_offsets_for_times) to rebuild its window. */
        err = ab_producer_produce(p, topic, key, strlen(key), value, value_len,
                                  hdrs, env->received_at_ms, msg_opaque,
                                  errstr, errstr_size);
        if (err != AB_OK) {
                rd_kafka_headers_destroy(hdrs);
        }
        return err;
}
