/* aetherbus - Apache-2.0
 *
 * ab_emit: a consumer service's own platform events (security.rbac.denied
 * and the like): built in the bus form under the service's aetherbus-*
 * source, Avro-encoded and produced to <prefix><family> with their
 * CloudEvents headers. Its callback has the shape of ab_auth_conf_t.emit.
 * Ingest writes its own through its publishing path instead.
 */
#ifndef AB_EMIT_H
#define AB_EMIT_H

#include <jansson.h>

#include "ab_avro.h"
#include "ab_catalog.h"
#include "ab_err.h"
#include "ab_kafka.h"

typedef struct ab_emit_s {
        ab_producer_t *producer;     /**< not owned */
        const ab_avro_codec_t *codec;
        const ab_catalog_t *catalog;
        const char *topic_prefix;
        const char *source;          /**< "aetherbus-<service>" */
} ab_emit_t;

/**
 * @brief Queues platform event \p type (tenant may be NULL; \p payload is
 *        stolen, NULL is {}) as \p opaque's (an ab_emit_t) own.
 * @returns AB_OK once queued, or the error of building, encoding or
 *          producing it.
 */
ab_err_t ab_emit(void *opaque, const char *type, const char *tenant,
                 json_t *payload, char *errstr, size_t errstr_size);

#endif
