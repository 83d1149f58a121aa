/* aetherbus - Apache-2.0
 *
 * ab_emit: a consumer service's own platform events, see ab_emit.h.
 */
#include <string.h>

#include "ab_cloudevents.h"
#include "ab_emit.h"
#include "ab_envelope.h"

/* The bus form of a platform event is small: its payload is ours. */
#define VALUE_MAX 8192

ab_err_t ab_emit(void *opaque, const char *type, const char *tenant,
                 json_t *payload, char *errstr, size_t errstr_size) {
        const ab_emit_t *em = opaque;
        ab_envelope_t env;
        ab_envelope_ctx_t ctx;
        char value[VALUE_MAX];
        char topic[256];
        size_t len;
        ab_err_t err;

        memset(&ctx, 0, sizeof(ctx));
        ctx.catalog = em->catalog;
        if ((err = ab_envelope_platform(&env, &ctx, em->source, type, tenant,
                                        payload, errstr, errstr_size))) {
                return err;
        }
        err = ab_avro_encode(em->codec, &env, value, sizeof(value), &len,
                             errstr, errstr_size);
        if (!err) {
                err = ab_catalog_topic(em->topic_prefix,
                                       env.entry ? env.entry->prefix
                                                 : env.prefix,
                                       topic, sizeof(topic));
        }
        if (!err) {
                err = ab_cloudevents_produce(em->producer, topic, &env, value,
                                             len, NULL, errstr, errstr_size);
        }
        ab_envelope_clear(&env);
        return err;
}
