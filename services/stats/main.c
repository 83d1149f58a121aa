/* aetherbus - Apache-2.0
 *
 * aetherbus-stats: configuration, wiring, signals, run, teardown. The
 * logic is in stats*.c.
 */
#include <stdio.h>
#include <string.h>

#include "ab_log.h"
#include "stats.h"

static volatile sig_atomic_t run = 1;

int main(int argc, char **argv) {
        stats_conf_t conf;
        stats_t *st;
        char errstr[512] = "";
        int rc;

        memset(&conf, 0, sizeof(conf));
        rc = ab_conf_main(&stats_conf_spec, &conf, argc, argv);
        if (rc != AB_CONF_CONTINUE) {
                return rc;
        }
        ab_log_init("stats", (ab_log_level_t)conf.common.log_level);
        st = stats_new(&conf, errstr, sizeof(errstr));
        if (!st) {
                fprintf(stderr, "aetherbus-stats: %s\n", errstr);
                ab_conf_clear(&stats_conf_spec, &conf);
                return 2;
        }
        ab_service_signals(&run);
        rc = stats_run(st, &run) == AB_OK ? 0 : 1;
        stats_destroy(st);
        ab_conf_clear(&stats_conf_spec, &conf);
        return rc;
}
