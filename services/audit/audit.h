/* aetherbus - Apache-2.0
 *
 * audit: the context of aetherbus-audit, shared by its modules. Nothing
 * outside services/audit includes this header.
 */
#ifndef AUDIT_H
#define AUDIT_H

#include <signal.h>

#include "ab_auth.h"
#include "ab_avro.h"
#include "ab_catalog.h"
#include "ab_conf.h"
#include "ab_consume.h"
#include "ab_emit.h"
#include "ab_kafka.h"
#include "ab_metrics.h"
#include "ab_service.h"
#include "ab_stage.h"
#include "audit_checkpoint.h"
#include "audit_store.h"
#include "audit_writer.h"

/** The consumer group of every replica: one writer per partition. */
#define AUDIT_GROUP_ID "aetherbus-audit"

typedef struct audit_conf_s {
        ab_conf_common_t common;
        ab_service_conf_common_t svc;
        char *db_path;
        char *signing_key;
        int64_t checkpoint_interval_ms;
        char *origin;
        int64_t session_timeout_ms;
        int retention_days;         /* 0: forever */
        int64_t retention_interval_ms;
} audit_conf_t;

extern const ab_conf_spec_t audit_conf_spec;

typedef struct audit_slot_s audit_slot_t; /* a batch, in audit.c */

typedef struct audit_s {
        const audit_conf_t *conf;
        ab_catalog_t *catalog;
        ab_avro_codec_t *codec;
        ab_catalog_topics_t topics;
        ab_metrics_t *metrics;
        ab_producer_t *producer; /* security events */
        ab_auth_t *auth;
        ab_emit_t emitter;          /* its own security events */
        audit_store_t *store;
        audit_signer_t *signer;  /* NULL: no checkpoints */
        ab_consume_t *consume;
        audit_writer_t *writer;
        audit_slot_t *slot[2];    /* batches: one filled, one written */
        audit_slot_t *inflight;   /* the writer's, or NULL */
        int cur;                  /* the slot being filled */
        ab_err_t write_err;       /* a batch given up: stop */
        ab_service_t *svc;
        uint64_t checkpoint_size; /* tree size of the last checkpoint */
        int64_t last_checkpoint_ms;
        int64_t next_prune_ms;    /* 0: at the first tick */
        int consuming;
        ab_metric_t *m_rows;      /* {status} */
        ab_metric_t *m_dups;
        ab_metric_t *m_conflicts;
        ab_metric_t *m_undecodable;
        ab_metric_t *m_txn;       /* seconds */
        ab_metric_t *m_tree;
        ab_metric_t *m_checkpoints;
        ab_metric_t *m_cp_published; /* {result}: on the checkpoint topic */
        ab_metric_t *m_errors;
        ab_metric_t *m_pruned;    /* rows whose payload retention removed */
        ab_metric_t *m_prune_errors;
        ab_metric_t *m_wal;       /* pages in the WAL */
        ab_metric_t *m_wal_ckpt;  /* {by} */
        audit_wal_stats_t wal_seen; /* what m_wal_ckpt counted */
        ab_stage_t *stage;        /* "audited", per prefix and minute */
} audit_t;

audit_t *audit_new(const audit_conf_t *conf, char *errstr, size_t errstr_size);
ab_err_t audit_run(audit_t *a, volatile sig_atomic_t *run);
void audit_destroy(audit_t *a);

/** @brief Signs and stores a checkpoint of the tree as it is now, when a
 *         key is configured and the tree grew since the last one, and
 *         publishes it to <prefix>audit-checkpoints (outcome on /metrics). */
ab_err_t audit_checkpoint_now(audit_t *a, char *errstr, size_t errstr_size);

/** @returns the route table. */
const ab_http_route_t *audit_http_routes(void);

#endif
