/* aetherbus - Apache-2.0
 *
 * fuzz_audit_note: the signed-note and checkpoint parsers of
 * aetherbus-audit (what `verify --checkpoint FILE` and third parties feed
 * it) and its verifier-key parser. Any bytes: a clean answer; a note that
 * opens with the fixed key must have been signed by it, which random bytes
 * never are, so AB_OK there is a finding.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_checkpoint.h"

/* golang.org/x/mod/sumdb/note's test key (note_test.go). */
static const char vkey[] =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static audit_verifier_t *v;
        audit_checkpoint_t cp;
        audit_verifier_t *any;
        char errstr[256];
        size_t text_len;
        char *s;

        if (!v && !(v = audit_verifier_new(vkey, errstr, sizeof(errstr)))) {
                abort();
        }
        if (audit_note_open(v, (const char *)data, size, &text_len, errstr,
                            sizeof(errstr)) == AB_OK ||
            audit_checkpoint_open(v, NULL, (const char *)data, size, &cp,
                                  errstr, sizeof(errstr)) == AB_OK) {
                abort(); /* a forged signature verified */
        }
        (void)audit_checkpoint_parse((const char *)data, size, &cp, errstr,
                                     sizeof(errstr));
        if ((s = malloc(size + 1))) {
                memcpy(s, data, size);
                s[size] = '\0';
                any = audit_verifier_new(s, errstr, sizeof(errstr));
                audit_verifier_destroy(any);
                free(s);
        }
        return 0;
}
