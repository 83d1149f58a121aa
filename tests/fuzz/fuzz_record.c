/* aetherbus - Apache-2.0
 *
 * fuzz_record: the decoder of the failure records (<prefix>rejected,
 * <prefix>deadletter) that stats and audit read from topics anyone with
 * write access can fill. Any bytes: AB_OK with every field a consumer
 * dereferences present, or a clean error, never a crash or a leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ab_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const ab_record_kind_t kinds[] = {AB_RECORD_REJECTED,
                                                 AB_RECORD_DEADLETTER};
        ab_record_failure_t f;
        char errstr[256];
        json_t *doc;
        size_t i;

        for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
                doc = NULL;
                if (ab_record_failure_decode(kinds[i], data, size, &doc, &f,
                                             errstr, sizeof(errstr)) == AB_OK) {
                        if (!doc || !f.reason) {
                                abort();
                        }
                } else if (!errstr[0]) {
                        abort(); /* an error says what it is */
                }
                json_decref(doc);
        }
        return 0;
}
