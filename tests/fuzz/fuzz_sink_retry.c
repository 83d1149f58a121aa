/* aetherbus - Apache-2.0
 *
 * fuzz_sink_retry: the Retry-After parser of aetherbus-sink, which reads
 * whatever the remote sink sends. Any text: -1 or a delay within the cap.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sink_retry.h"

#define CAP_MS 30000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        int64_t ms;

        if (!s) {
                return 0;
        }
        memcpy(s, data, size);
        s[size] = '\0';
        ms = sink_retry_after_ms(s, 1796205630000LL, CAP_MS);
        if (ms < -1 || ms > CAP_MS) {
                abort();
        }
        free(s);
        return 0;
}
