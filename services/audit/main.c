/* aetherbus - Apache-2.0
 *
 * aetherbus-audit: for now only "keygen", which makes the checkpoint
 * signing key (AUDIT_SIGNING_KEY) and prints the verifier key to publish.
 * The service itself comes later.
 */
#include <stdio.h>
#include <string.h>

#include "audit_checkpoint.h"

static int usage(void) {
        fprintf(stderr,
                "usage: aetherbus-audit keygen --name NAME --out FILE\n"
                "  writes a new Ed25519 checkpoint signing key to FILE "
                "(mode 0600,\n"
                "  never over an existing file) and prints its verifier "
                "key.\n"
                "  NAME should be the log's origin, e.g. "
                "audit.example.com/log\n");
        return 2;
}

static int keygen(int argc, char **argv) {
        const char *name = NULL, *out = NULL;
        char vkey[AUDIT_VKEY_MAX], errstr[512];
        int i;

        for (i = 0; i < argc; i++) {
                if (!strcmp(argv[i], "--name") && i + 1 < argc) {
                        name = argv[++i];
                } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
                        out = argv[++i];
                } else {
                        return usage();
                }
        }
        if (!name || !out) {
                return usage();
        }
        if (audit_keygen(name, out, vkey, sizeof(vkey), errstr,
                         sizeof(errstr)) != AB_OK) {
                fprintf(stderr, "aetherbus-audit: keygen: %s\n", errstr);
                return 1;
        }
        printf("%s\n", vkey);
        return 0;
}

int main(int argc, char **argv) {
        if (argc >= 2 && !strcmp(argv[1], "keygen")) {
                return keygen(argc - 2, argv + 2);
        }
        return usage();
}
