/* aetherbus - Apache-2.0
 *
 * ab_cloudevents: an envelope's Kafka record in CloudEvents binary mode:
 * the ce_* and content-type headers, the key (companyId, else id) and
 * the timestamp (receivedAt, so a lookup by time finds events by when
 * they were accepted). What stays out: the value's encoding (ab_avro) and
 * the producer itself (ab_kafka).
 */
#ifndef AB_CLOUDEVENTS_H
#define AB_CLOUDEVENTS_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "ab_envelope.h"
#include "ab_err.h"
#include "ab_kafka.h"

/** CloudEvents' authcontext extension: who sent the event. authtype is
 *  "api_key" (a client of INGEST_CLIENTS_FILE or the shared token),
 *  "unauthenticated" (no token configured) or "system" (the bus's own
 *  events); authid the client's name or the emitting service. Consumers
 *  tell forged platform events from real ones by these. */
#define AB_CLOUDEVENTS_H_AUTHTYPE "ce_authtype"
#define AB_CLOUDEVENTS_H_AUTHID   "ce_authid"

/** content-type header value of every envelope record. */
#define AB_CLOUDEVENTS_CONTENT_TYPE "application/avro"

/**
 * @brief The CloudEvents binary-mode headers for \p env: ce_specversion
 *        "1.0", ce_id, ce_type (name), ce_source, ce_time (occurredAt),
 *        ce_subject (only when subjectId is set), ce_authtype and
 *        ce_authid (when env->auth_type/auth_id are set) and content-type
 *        "application/avro".
 * @returns a new header list the caller owns (hand it to
 *          ab_producer_produce() or rd_kafka_headers_destroy() it), or
 *          NULL when \p env lacks id, name, source or occurredAt.
 */
rd_kafka_headers_t *ab_cloudevents_headers_new(const ab_envelope_t *env);

/**
 * @brief Queues an envelope's record: key companyId (else id), the given
 *        encoded \p value, the CloudEvents headers of \p env and the
 *        timestamp env->received_at_ms (0, not yet received: now).
 * @returns as ab_producer_produce(); AB_ERR_INVALID when \p env lacks
 *          id, name, source or occurredAt.
 */
ab_err_t ab_cloudevents_produce(ab_producer_t *p, const char *topic,
                                const ab_envelope_t *env, const void *value,
                                size_t value_len, void *msg_opaque,
                                char *errstr, size_t errstr_size);

#endif
