/* aetherbus - Apache-2.0
 *
 * audit_config: the configuration table of aetherbus-audit.
 */
#include <stddef.h>
#include <string.h>

#include "audit.h"

static const ab_conf_row_t rows[] = {
    AB_CONF_COMMON_ROWS(audit_conf_t, common, "8083"),
    AB_SERVICE_CONF_ROWS(audit_conf_t, svc, "1"),
    {.env    = "AUDIT_DB_PATH",
     .flag   = "db-path",
     .type   = AB_CONF_STR,
     .def    = "./aetherbus-audit.db",
     .offset = offsetof(audit_conf_t, db_path),
     .help   = "The SQLite file of the log (WAL; <path>.lock keeps a second "
               "instance off it)."},
    {.env    = "AUDIT_SIGNING_KEY",
     .flag   = "signing-key",
     .type   = AB_CONF_STR,
     .offset = offsetof(audit_conf_t, signing_key),
     .help   = "File with the checkpoint signing key (aetherbus-audit keygen); "
               "unset: no checkpoints are signed."},
    {.env    = "AUDIT_CHECKPOINT_INTERVAL",
     .flag   = "checkpoint-interval",
     .type   = AB_CONF_DURATION,
     .def    = "60s",
     .min    = 100,
     .max    = 86400000,
     .offset = offsetof(audit_conf_t, checkpoint_interval_ms),
     .help   = "How often a signed checkpoint of the tree is stored (and "
               "once more on SIGTERM), when the tree grew."},
    {.env    = "AUDIT_ORIGIN",
     .flag   = "origin",
     .type   = AB_CONF_STR,
     .def    = "aetherbus-audit",
     .offset = offsetof(audit_conf_t, origin),
     .help   = "The checkpoints' origin line: the log's name for verifiers."},
    {.env    = "AUDIT_RETENTION_DAYS",
     .flag   = "retention-days",
     .type   = AB_CONF_INT,
     .def    = "0",
     .min    = 0,
     .max    = 36500,
     .offset = offsetof(audit_conf_t, retention_days),
     .help   = "Payloads of rows received longer ago than this are replaced "
               "by their SHA-256 (rows, leaf hashes, proofs and verify "
               "stay); 0: keep every payload forever."},
    {.env    = "AUDIT_RETENTION_INTERVAL",
     .flag   = "retention-interval",
     .type   = AB_CONF_DURATION,
     .def    = "1m",
     .min    = 100,
     .max    = 86400000,
     .offset = offsetof(audit_conf_t, retention_interval_ms),
     .help   = "How often retention looks for rows to prune (a backlog is "
               "worked off between polls, 100 ms at a time)."},
    {.env    = "AUDIT_SESSION_TIMEOUT_MS",
     .flag   = "session-timeout-ms",
     .type   = AB_CONF_DURATION,
     .def    = "10s",
     .min    = 1000,
     .max    = 300000,
     .offset = offsetof(audit_conf_t, session_timeout_ms),
     .help   = "Consumer group session: how soon a dead replica's partitions "
               "move to another."},
    {.env = NULL},
};

static ab_err_t finalize(void *confp, char *errstr, size_t errstr_size) {
        audit_conf_t *conf = confp;

        if (!conf->db_path || !*conf->db_path) {
                ab_errstr_set(errstr, errstr_size,
                              "AUDIT_DB_PATH: must not be empty");
                return AB_ERR_INVALID;
        }
        if (!conf->origin || !*conf->origin ||
            strlen(conf->origin) > AUDIT_NAME_MAX) {
                ab_errstr_set(errstr, errstr_size,
                              "AUDIT_ORIGIN: must be 1 to %d bytes",
                              AUDIT_NAME_MAX);
                return AB_ERR_INVALID;
        }
        return ab_service_conf_check(&conf->svc, errstr, errstr_size);
}

const ab_conf_spec_t audit_conf_spec = {
    .prog     = "aetherbus-audit",
    .about    = "Writes every event of the bus (accepted, rejected, "
                "dead-lettered) once into a Merkle-tree log in SQLite and "
                "answers GET /admin/events.",
    .rows     = rows,
    .finalize = finalize,
};
