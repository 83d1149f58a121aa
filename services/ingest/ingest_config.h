/* aetherbus - Apache-2.0
 *
 * ingest_config: the settings of aetherbus-ingest, one table row each, and
 * their cross-field rules. Reading them is ab_conf's job; using them is
 * ingest.c's.
 */
#ifndef INGEST_CONFIG_H
#define INGEST_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "ab_conf.h"
#include "ab_service.h"

typedef struct ingest_conf_s {
        ab_conf_common_t common;
        ab_service_conf_common_t svc;
        char *ingest_token;
        char *clients_file;         /**< INGEST_CLIENTS_FILE, or NULL */
        size_t message_max_bytes;   /**< the producer's message.max.bytes */
        size_t max_body;
        int max_batch;
        size_t max_payload;
        int max_id_len;
        char *allow_unknown_prefixes;
        int max_unknown_prefixes;
        int max_inflight;
        char *linger_ms;            /**< librdkafka takes fractions */
        int batch_num_messages;
        int64_t delivery_timeout_ms;
        int queue_max_messages;
        size_t queue_max_bytes;
} ingest_conf_t;

/** The table (rows + finalize) that ab_conf_main() reads. */
extern const ab_conf_spec_t ingest_conf_spec;


#endif
