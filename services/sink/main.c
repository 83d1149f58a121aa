/* aetherbus - Apache-2.0
 *
 * aetherbus-sink: configuration, wiring, signals, run, teardown. The
 * logic is in sink*.c.
 */
#include <stdio.h>
#include <string.h>

#include "ab_log.h"
#include "sink.h"

static volatile sig_atomic_t run = 1;

int main(int argc, char **argv) {
        sink_conf_t conf;
        sink_t *sk;
        char errstr[512] = "";
        int rc;

        memset(&conf, 0, sizeof(conf));
        rc = ab_conf_main(&sink_conf_spec, &conf, argc, argv);
        if (rc != AB_CONF_CONTINUE) {
                return rc;
        }
        ab_log_init("sink", (ab_log_level_t)conf.common.log_level);
        sk = sink_new(&conf, errstr, sizeof(errstr));
        if (!sk) {
                fprintf(stderr, "aetherbus-sink: %s\n", errstr);
                ab_conf_clear(&sink_conf_spec, &conf);
                return 2;
        }
        ab_service_signals(&run);
        rc = sink_run(sk, &run) == AB_OK ? 0 : 1;
        sink_destroy(sk);
        ab_conf_clear(&sink_conf_spec, &conf);
        return rc;
}
