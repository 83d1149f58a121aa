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

typedef enum {
        INGEST_RBAC_OFF = 0,
        INGEST_RBAC_AUDIT,
        INGEST_RBAC_ENFORCE,
} ingest_rbac_mode_t;

typedef struct ingest_conf_s {
        ab_conf_common_t common;
        char *bind;
        char *ingest_token;
        char *admin_token;
        int rbac_mode;              /**< ingest_rbac_mode_t */
        char *rbac_audit_tenants;   /**< comma list */
        int rbac_events_per_min;    /**< per tenant */
        size_t max_body;
        int max_batch;
        size_t max_payload;
        int max_id_len;
        char *allow_unknown_prefixes;
        int http_threads;
        int http_max_connections;
        int http_timeout_s;
        int max_inflight;
        char *linger_ms;            /**< librdkafka takes fractions */
        int batch_num_messages;
        int64_t delivery_timeout_ms;
        int queue_max_messages;
        size_t queue_max_bytes;
        int retry_after_s;
        int64_t shutdown_timeout_ms;
} ingest_conf_t;

/** The table (rows + finalize) that ab_conf_main() reads. */
extern const ab_conf_spec_t ingest_conf_spec;

/** @returns "off", "audit" or "enforce". */
const char *ingest_rbac_mode_name(int mode);

/** @returns AB_OK with *modep set, or AB_ERR_INVALID. */
ab_err_t ingest_rbac_mode_parse(const char *s, int *modep);

#endif
