/* aetherbus - Apache-2.0
 *
 * aetherbus-ingest: configuration, wiring, signals, run, teardown. The
 * logic is in ingest*.c.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "ab_log.h"
#include "ingest.h"

static volatile sig_atomic_t run = 1;
static volatile sig_atomic_t reload;

int main(int argc, char **argv) {
        ingest_conf_t conf;
        ingest_t *ing;
        char errstr[512];
        int rc;

        memset(&conf, 0, sizeof(conf));
        rc = ab_conf_main(&ingest_conf_spec, &conf, argc, argv);
        if (rc != AB_CONF_CONTINUE) {
                return rc;
        }
        ab_log_init("ingest", (ab_log_level_t)conf.common.log_level);

        ing = ingest_new(&conf, errstr, sizeof(errstr));
        if (!ing) {
                fprintf(stderr, "aetherbus-ingest: %s\n", errstr);
                ab_conf_clear(&ingest_conf_spec, &conf);
                return 2;
        }

        ab_service_signals(&run);
        ab_service_reload_signal(&reload);

        rc = ingest_run(ing, &run, &reload) == AB_OK ? 0 : 1;

        ingest_destroy(ing);
        ab_conf_clear(&ingest_conf_spec, &conf);
        return rc;
}
