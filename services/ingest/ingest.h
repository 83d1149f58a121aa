/* aetherbus - Apache-2.0
 *
 * ingest: the context of aetherbus-ingest, shared by its modules and passed
 * as the opaque of every callback (HTTP handlers, delivery reports, the
 * readiness check). The struct lives here because the service's own modules
 * read it; nothing outside services/ingest includes this header.
 */
#ifndef INGEST_H
#define INGEST_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "ab_auth.h"
#include "ab_avro.h"
#include "ab_catalog.h"
#include "ab_envelope.h"
#include "ab_http.h"
#include "ab_kafka.h"
#include "ab_metrics.h"
#include "ab_service.h"
#include "ab_stage.h"
#include "ingest_clients.h"
#include "ingest_config.h"

typedef struct ingest_s {
        const ingest_conf_t *conf; /**< not owned */
        ab_catalog_t *catalog;
        ab_avro_codec_t *codec;
        ab_producer_t *producer;
        ab_service_t *svc;
        ab_metrics_t *metrics;
        ab_auth_t *auth;
        ab_auth_token_t ingest_token;
        ingest_clients_holder_t *clients; /**< INGEST_CLIENTS_FILE, or NULL */
        ab_envelope_limits_t limits;

        /* Topic of every catalog prefix (index = catalog prefix index),
         * then the system topics. */
        ab_catalog_topics_t topics;

        char *schema_json; /**< GET /events/schema body, built once */
        size_t schema_json_len;

        /* Unknown prefixes taken so far (ALLOW_UNKNOWN_PREFIXES), at most
         * MAX_UNKNOWN_PREFIXES: each keeps a topic handle and a series. */
        pthread_mutex_t unknown_lock;
        char (*unknown)[64];
        size_t unknown_cnt;

        atomic_int inflight; /**< requests waiting for delivery reports */
        int64_t ready_ok_ms; /**< last metadata answer (readiness thread) */
        int slow_logged;

        ab_stage_t *stage;        /**< "accepted", per prefix and minute */
        ab_metric_t *m_accepted;  /**< {topic} */
        ab_metric_t *m_rejected;  /**< {reason} */
        ab_metric_t *m_failed;    /**< {reason} */
        ab_metric_t *m_requests_waiting;
        ab_metric_t *m_batch_size;
        ab_metric_t *m_clients;   /**< {client,outcome} */
        ab_metric_t *m_reloads;   /**< {result} */
} ingest_t;

/**
 * @brief Builds everything the service needs (catalog, codec, producer,
 *        metrics, HTTP server; not yet listening).
 * @returns the context or NULL with errstr.
 */
ingest_t *ingest_new(const ingest_conf_t *conf, char *errstr,
                     size_t errstr_size);

/**
 * @returns 1 when events of the unknown prefix \p prefix may be taken:
 *          seen before, or a new one within MAX_UNKNOWN_PREFIXES (then
 *          remembered); 0 beyond. Thread-safe.
 */
int ingest_unknown_prefix_take(ingest_t *ing, const char *prefix);

/**
 * @brief Starts listening, emits core.startup, then refreshes readiness
 *        until *run becomes 0, reloading the clients file whenever
 *        *reload is set (SIGHUP); then stops accepting, waits for in-flight
 *        requests and flushes the producer within the configured bound.
 * @returns AB_OK when everything answered 2xx reached Kafka.
 */
ab_err_t ingest_run(ingest_t *ing, volatile sig_atomic_t *run,
                    volatile sig_atomic_t *reload);

/** @brief Frees \p ing; NULL and half-built contexts are fine. */
void ingest_destroy(ingest_t *ing);

/** @returns 1 when ready to accept events, else 0 with the reason. */
int ingest_ready(ingest_t *ing, char *reason, size_t reason_size);

/**
 * @brief Emits one platform event of aetherbus-ingest's own (core.startup,
 *        security.*) through the same validation, Avro and topic routing
 *        as client events. Fire-and-forget: the delivery report counts it.
 * @param payload stolen.
 */
ab_err_t ingest_emit(ingest_t *ing, const char *type, const char *tenant,
                     json_t *payload, char *errstr, size_t errstr_size);

/** @returns the topic for \p env (catalog prefix or allowed prefix). */
const char *ingest_topic(ingest_t *ing, const ab_envelope_t *env, char *buf,
                         size_t buf_size);

/* ingest_http.c */
/** @returns the route table (NULL-method terminated). */
const ab_http_route_t *ingest_http_routes(void);

/* ingest_publish.c */
/**
 * @brief Handles the body of POST /events/ingest or /bus/events: parses,
 *        validates every item, produces, and answers (now or, after the
 *        delivery reports, from the producer's thread).
 */
void ingest_publish(ingest_t *ing, ab_http_req_t *req, ab_form_t form,
                    const char *tenant, const ingest_client_t *client,
                    int async);

/**
 * @brief Encodes \p env (Avro single-object) and produces it to its topic
 *        with key and CloudEvents headers; the delivery report comes back
 *        to ingest_publish_dr() with \p msg_opaque.
 * @returns AB_OK once queued; AB_ERR_UNAVAILABLE when the queue is full,
 *          AB_ERR_INVALID when no topic fits, or the producer's error.
 */
ab_err_t ingest_produce(ingest_t *ing, const ab_envelope_t *env,
                        void *msg_opaque, char *errstr, size_t errstr_size);

/** @brief The producer's delivery report callback (opaque = ing). */
void ingest_publish_dr(const ab_delivery_t *dr, void *opaque);

/* ingest_rbac.c */
/** @brief Builds ing->auth (admin guard, RBAC) and the ingest token. */
ab_err_t ingest_rbac_init(ingest_t *ing, char *errstr, size_t errstr_size);

/**
 * @brief Checks the caller from the headers, before the body: with
 *        INGEST_CLIENTS_FILE its key (401 when unknown) and its rate (one
 *        token per request; 429 + Retry-After when empty), else the ingest
 *        token when configured. Keys are compared in constant time.
 * @returns 1 when the request may go on, else 0 after answering.
 */
int ingest_rbac_check_token(ingest_t *ing, ab_http_req_t *req);

/**
 * @brief The client of a request that passed ingest_rbac_check_token(),
 *        with a reference on its table (*tblp: ingest_clients_put() it
 *        once the client is no longer used). Takes no rate token.
 * @returns the client, or NULL after answering 401 (the key went away in
 *          a reload meanwhile). Only when ing->clients is set.
 */
const ingest_client_t *ingest_rbac_client(ingest_t *ing, ab_http_req_t *req,
                                          ingest_clients_t **tblp);

/** @brief Reloads INGEST_CLIENTS_FILE; a bad file keeps the old table. */
void ingest_rbac_reload(ingest_t *ing);

/** @brief GET/PUT /admin/rbac handler. */
void ingest_rbac_admin(ab_http_req_t *req, void *opaque);

#endif
