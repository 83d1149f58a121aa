/* aetherbus - Apache-2.0
 *
 * audit_proofgen: the C side of the independent cross-check. Builds the
 * tree of rows "audit-row-0", "audit-row-1", ... with audit_merkle, signs
 * checkpoints with audit_checkpoint, and writes what rfc9162_check.py
 * verifies with nothing of ours:
 *
 *   inclusion KEY ORIGIN SIZE INDEX
 *       a c2sp.org/tlog-proof@v1 of row INDEX in the tree of SIZE rows
 *   consistency KEY ORIGIN SIZE1 SIZE2 DIR
 *       DIR/old.checkpoint, DIR/new.checkpoint (signed, of SIZE1 and
 *       SIZE2 rows) and DIR/consistency.proof (one hex hash a line)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_checkpoint.h"
#include "audit_merkle.h"

static int row_leaf(void *opaque, uint64_t i, uint8_t out[AUDIT_HASH_LEN]) {
        char row[64];
        int n;

        (void)opaque;
        n = snprintf(row, sizeof(row), "audit-row-%" PRIu64, i);
        if (n < 0 || (size_t)n >= sizeof(row)) {
                return -1;
        }
        return audit_merkle_leaf_hash(row, (size_t)n, out) == AB_OK ? 0 : -1;
}

static int parse_u64(const char *s, uint64_t *vp) {
        char *end;

        *vp = strtoull(s, &end, 10);
        return *s && !*end ? 0 : -1;
}

/* The signed checkpoint of the first \p size rows. */
static char *checkpoint(const audit_signer_t *s, const char *origin,
                        uint64_t size, size_t *lenp) {
        audit_checkpoint_t cp;
        char errstr[256], *msg;

        memset(&cp, 0, sizeof(cp));
        if (strlen(origin) > AUDIT_NAME_MAX) {
                fprintf(stderr, "audit_proofgen: origin too long\n");
                return NULL;
        }
        strcpy(cp.origin, origin);
        cp.size = size;
        if (audit_merkle_range_root(0, size, row_leaf, NULL, cp.root, errstr,
                                    sizeof(errstr)) ||
            audit_checkpoint_sign(s, &cp, &msg, lenp, errstr,
                                  sizeof(errstr))) {
                fprintf(stderr, "audit_proofgen: %s\n", errstr);
                return NULL;
        }
        return msg;
}

static int write_file(const char *dir, const char *name, const char *s,
                      size_t len) {
        char path[4096];
        FILE *f;
        int ok;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "w");
        if (!f) {
                perror(path);
                return -1;
        }
        ok = fwrite(s, 1, len, f) == len;
        if (fclose(f) != 0 || !ok) {
                perror(path);
                return -1;
        }
        return 0;
}

static int inclusion(const audit_signer_t *s, const char *origin,
                     uint64_t size, uint64_t index) {
        audit_merkle_proof_t proof;
        char errstr[256], *cp, *out;
        size_t cp_len, len;

        if (audit_merkle_inclusion_proof(index, size, row_leaf, NULL, &proof,
                                         errstr, sizeof(errstr))) {
                fprintf(stderr, "audit_proofgen: %s\n", errstr);
                return 1;
        }
        cp = checkpoint(s, origin, size, &cp_len);
        if (!cp) {
                return 1;
        }
        if (audit_tlog_proof_format(index, &proof, cp, cp_len, &out, &len,
                                    errstr, sizeof(errstr))) {
                fprintf(stderr, "audit_proofgen: %s\n", errstr);
                free(cp);
                return 1;
        }
        free(cp);
        if (fwrite(out, 1, len, stdout) != len || fflush(stdout) != 0) {
                free(out);
                return 1;
        }
        free(out);
        return 0;
}

static int consistency(const audit_signer_t *s, const char *origin,
                       uint64_t size1, uint64_t size2, const char *dir) {
        audit_merkle_proof_t proof;
        char errstr[256], *old = NULL, *new = NULL;
        char path[4096];
        size_t len1, len2, i, j;
        FILE *f;
        int rc = 1;

        if (audit_merkle_consistency_proof(size1, size2, row_leaf, NULL,
                                           &proof, errstr, sizeof(errstr))) {
                fprintf(stderr, "audit_proofgen: %s\n", errstr);
                return 1;
        }
        old = checkpoint(s, origin, size1, &len1);
        new = checkpoint(s, origin, size2, &len2);
        if (!old || !new || write_file(dir, "old.checkpoint", old, len1) ||
            write_file(dir, "new.checkpoint", new, len2)) {
                goto done;
        }
        snprintf(path, sizeof(path), "%s/consistency.proof", dir);
        f = fopen(path, "w");
        if (!f) {
                perror(path);
                goto done;
        }
        for (i = 0; i < proof.cnt; i++) {
                for (j = 0; j < AUDIT_HASH_LEN; j++) {
                        fprintf(f, "%02x", proof.hash[i][j]);
                }
                fputc('\n', f);
        }
        if (fclose(f) != 0) {
                goto done;
        }
        rc = 0;
done:
        free(old);
        free(new);
        return rc;
}

int main(int argc, char **argv) {
        audit_signer_t *s;
        char errstr[256];
        uint64_t a, b;
        int rc;
        int incl = argc == 6 && !strcmp(argv[1], "inclusion");
        int cons = argc == 7 && !strcmp(argv[1], "consistency");

        if ((!incl && !cons) || parse_u64(argv[4], &a) ||
            parse_u64(argv[5], &b)) {
                fprintf(stderr,
                        "usage: audit_proofgen inclusion KEY ORIGIN SIZE "
                        "INDEX\n"
                        "       audit_proofgen consistency KEY ORIGIN SIZE1 "
                        "SIZE2 DIR\n");
                return 2;
        }
        s = audit_signer_load(argv[2], errstr, sizeof(errstr));
        if (!s) {
                fprintf(stderr, "audit_proofgen: %s\n", errstr);
                return 1;
        }
        if (incl) {
                rc = inclusion(s, argv[3], a, b);
        } else {
                rc = consistency(s, argv[3], a, b, argv[6]);
        }
        audit_signer_destroy(s);
        return rc;
}
