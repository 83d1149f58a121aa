/* aetherbus - Apache-2.0
 *
 * aetherbus-audit: the service (configuration, wiring, signals, run,
 * teardown; the logic is in audit*.c), and two tools: "keygen", which
 * makes the checkpoint signing key (AUDIT_SIGNING_KEY) and prints the
 * verifier key to publish, "verify", which recomputes the tree from
 * the database's rows, and "prove", which prints an event's inclusion
 * proof for a third party.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ab_file.h"
#include "ab_log.h"
#include "audit.h"
#include "audit_checkpoint.h"
#include "audit_proof.h"

static volatile sig_atomic_t run = 1;

static int usage(void) {
        fprintf(stderr,
                "usage: aetherbus-audit [OPTIONS]   run the service (--help)\n"
                "       aetherbus-audit keygen --name NAME --out FILE\n"
                "  writes a new Ed25519 checkpoint signing key to FILE "
                "(mode 0600,\n"
                "  never over an existing file) and prints its verifier "
                "key.\n"
                "  NAME should be the log's origin, e.g. "
                "audit.example.com/log\n"
                "       aetherbus-audit verify [--db PATH] [--checkpoint FILE "
                "--vkey VKEY]\n"
                "  recomputes every leaf and the tree from the rows of PATH\n"
                "  (default AUDIT_DB_PATH, else ./aetherbus-audit.db); exits "
                "0,\n"
                "  or 1 naming the first row that does not match. With a "
                "signed\n"
                "  checkpoint FILE from outside the database (e.g. read from "
                "the\n"
                "  audit-checkpoints topic) and the log's verifier key VKEY, "
                "the\n"
                "  rows must also give that checkpoint's root.\n"
                "       aetherbus-audit prove ID [--db PATH] [--status S]\n"
                "  prints the inclusion proof of event ID (its accepted row,"
                " else its\n"
                "  oldest; --status accepted|rejected|deadletter picks one) "
                "as JSON:\n"
                "  leaf bytes, path, root and the latest signed checkpoint, "
                "what a\n"
                "  third party checks offline with the log's verifier key. "
                "Exits 0,\n"
                "  1 when the database has no such event.\n");
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

/* The tools' database: --db, else AUDIT_DB_PATH, else the default. */
static const char *db_path(const char *given) {
        return given && *given ? given : "./aetherbus-audit.db";
}

/* The signed checkpoint in \p path, opened with \p vkey. */
static int anchor_load(const char *path, const char *vkey,
                       audit_checkpoint_t *cp, char *errstr,
                       size_t errstr_size) {
        char buf[8192];
        audit_verifier_t *v;
        size_t len;
        ab_err_t err;

        if (ab_file_read(path, buf, sizeof(buf), &len, NULL, errstr,
                         errstr_size) != AB_OK) {
                return -1;
        }
        if (!(v = audit_verifier_new(vkey, errstr, errstr_size))) {
                return -1;
        }
        err = audit_checkpoint_open(v, NULL, buf, len, cp, errstr,
                                    errstr_size);
        audit_verifier_destroy(v);
        return err == AB_OK ? 0 : -1;
}

static int verify(int argc, char **argv) {
        const char *path = getenv("AUDIT_DB_PATH");
        const char *cpfile = NULL, *vkey = NULL;
        char errstr[512];
        audit_checkpoint_t anchor;
        audit_store_t *s;
        uint64_t size = 0, pruned = 0;
        ab_err_t err;
        int i;

        for (i = 0; i < argc; i++) {
                if (!strcmp(argv[i], "--db") && i + 1 < argc) {
                        path = argv[++i];
                } else if (!strcmp(argv[i], "--checkpoint") && i + 1 < argc) {
                        cpfile = argv[++i];
                } else if (!strcmp(argv[i], "--vkey") && i + 1 < argc) {
                        vkey = argv[++i];
                } else {
                        return usage();
                }
        }
        /* A checkpoint is worth only its signature: never one unchecked. */
        if (!cpfile != !vkey) {
                return usage();
        }
        memset(&anchor, 0, sizeof(anchor));
        if (cpfile &&
            anchor_load(cpfile, vkey, &anchor, errstr, sizeof(errstr))) {
                fprintf(stderr, "aetherbus-audit: verify: checkpoint: %s\n",
                        errstr);
                return 1;
        }
        path = db_path(path);
        /* Read-only and without the lock: verify runs next to the
         * service. */
        if (!(s = audit_store_open(path, AUDIT_STORE_READONLY, NULL, errstr,
                                   sizeof(errstr)))) {
                fprintf(stderr, "aetherbus-audit: verify: %s\n", errstr);
                return 2;
        }
        err = audit_store_verify(s, anchor.size, cpfile ? anchor.root : NULL,
                                 &size, &pruned, errstr, sizeof(errstr));
        audit_store_close(s);
        if (err) {
                fprintf(stderr, "aetherbus-audit: verify: %s: %s\n", path,
                        errstr);
                return 1;
        }
        printf("%s: %" PRIu64 " rows, every leaf and the root match%s\n",
               path, size,
               cpfile ? ", and the checkpoint given" : "");
        if (pruned) {
                /* Say what was taken on trust rather than recomputed. */
                printf("%s: %" PRIu64 " of them pruned by retention: their "
                       "leaf hashes are kept, their content no longer\n",
                       path, pruned);
        }
        return 0;
}

static int prove(int argc, char **argv) {
        const char *path = getenv("AUDIT_DB_PATH"), *id = NULL, *status = NULL;
        char errstr[512];
        audit_store_t *s;
        json_t *rows, *row, *doc = NULL;
        int i, rc = 1;

        for (i = 0; i < argc; i++) {
                if (!strcmp(argv[i], "--db") && i + 1 < argc) {
                        path = argv[++i];
                } else if (!strcmp(argv[i], "--status") && i + 1 < argc) {
                        status = argv[++i];
                } else if (argv[i][0] != '-' && !id) {
                        id = argv[i];
                } else {
                        return usage();
                }
        }
        if (!id || (status && !audit_store_status(status))) {
                return usage();
        }
        path = db_path(path);
        if (!(s = audit_store_open(path, AUDIT_STORE_READONLY, NULL, errstr,
                                   sizeof(errstr)))) {
                fprintf(stderr, "aetherbus-audit: prove: %s\n", errstr);
                return 2;
        }
        if (!(rows = audit_store_get(s, id, errstr, sizeof(errstr)))) {
                fprintf(stderr, "aetherbus-audit: prove: %s\n", errstr);
                rc = 2;
        } else if (!(row = audit_proof_pick(rows, status))) {
                fprintf(stderr, "aetherbus-audit: prove: %s: no event %s%s%s\n",
                        path, id, status ? " with status " : "",
                        status ? status : "");
        } else if (!(doc = audit_proof_doc(s, row, errstr, sizeof(errstr)))) {
                fprintf(stderr, "aetherbus-audit: prove: %s\n", errstr);
                rc = 2;
        } else if (json_dumpf(doc, stdout, JSON_INDENT(2)) || puts("") < 0 ||
                   fflush(stdout)) {
                fprintf(stderr, "aetherbus-audit: prove: cannot write the "
                                "proof\n");
                rc = 2;
        } else {
                rc = 0;
        }
        json_decref(doc);
        json_decref(rows);
        audit_store_close(s);
        return rc;
}

int main(int argc, char **argv) {
        audit_conf_t conf;
        audit_t *a;
        char errstr[512] = "";
        int rc;

        if (argc >= 2 && !strcmp(argv[1], "keygen")) {
                return keygen(argc - 2, argv + 2);
        }
        if (argc >= 2 && !strcmp(argv[1], "verify")) {
                return verify(argc - 2, argv + 2);
        }
        if (argc >= 2 && !strcmp(argv[1], "prove")) {
                return prove(argc - 2, argv + 2);
        }
        if (argc >= 2 && argv[1][0] != '-') {
                return usage();
        }
        memset(&conf, 0, sizeof(conf));
        rc = ab_conf_main(&audit_conf_spec, &conf, argc, argv);
        if (rc != AB_CONF_CONTINUE) {
                return rc;
        }
        ab_log_init("audit", (ab_log_level_t)conf.common.log_level);
        a = audit_new(&conf, errstr, sizeof(errstr));
        if (!a) {
                fprintf(stderr, "aetherbus-audit: %s\n", errstr);
                ab_conf_clear(&audit_conf_spec, &conf);
                return 2;
        }
        ab_service_signals(&run);
        rc = audit_run(a, &run) == AB_OK ? 0 : 1;
        audit_destroy(a);
        ab_conf_clear(&audit_conf_spec, &conf);
        return rc;
}
