/* aetherbus - Apache-2.0
 *
 * aetherbus-sink: placeholder entry point until the consumer and the
 * service are wired (the modules are sink_batch, sink_retry and
 * sink_client). It prints its usage and refuses to run.
 */
#include <stdio.h>
#include <string.h>

static void usage(FILE *out) {
        fprintf(out,
                "Usage: aetherbus-sink [--help]\n"
                "\n"
                "Consumes the bus topics and forwards every accepted event\n"
                "to EVENT_SINK_URL in batches (POST, JSON array of\n"
                "envelopes, Idempotency-Key per partition offset range);\n"
                "events the sink refuses go to the dead-letter topic.\n"
                "\n"
                "Environment:\n"
                "  EVENT_SINK_URL          where batches are POSTed\n"
                "  EVENT_SINK_TOKEN        sent as Authorization: Bearer\n"
                "  SINK_BATCH_MAX_EVENTS   events per batch (500)\n"
                "  SINK_BATCH_MAX_BYTES    body bytes per batch (1 MiB)\n"
                "  SINK_LINGER_MS          longest wait to fill a batch (1000)\n"
                "  SINK_TIMEOUT_MS         per request (10000)\n"
                "  SINK_CONCURRENCY        requests in flight (4)\n"
                "  SINK_GZIP               1: gzip request bodies\n"
                "\n"
                "This build has the sink modules only; the service is not\n"
                "wired yet.\n");
}

int main(int argc, char **argv) {
        if (argc == 2 &&
            (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                usage(stdout);
                return 0;
        }
        usage(stderr);
        return 2;
}
