/* aetherbus - Apache-2.0
 *
 * devbroker: librdkafka's mock cluster as the development Kafka. Owns the
 * cluster's life (start at the stable address, pre-create the catalog's
 * topics, serve until a signal) and the fault-injection controls (signals
 * and, with --control, one command per line on stdin). Option parsing
 * stays in main.c; sockets stay in devbroker_net.c.
 */
#ifndef DEVBROKER_H
#define DEVBROKER_H

#include <stddef.h>

#include <netinet/in.h>

#include "ab_log.h"

typedef struct devbroker_s devbroker_t;

/** What main.c parsed; every value already checked. */
typedef struct devbroker_conf_s {
        struct sockaddr_in listen; /**< port 0: pick a free one */
        int partitions;            /**< per pre-created topic */
        int brokers;               /**< mock brokers; the first is at listen */
        const char *topic_prefix;  /**< "events." */
        int control;               /**< read commands on stdin */
        ab_log_level_t log_level;
} devbroker_conf_t;

/**
 * @brief Binds the listen address, starts the mock cluster on it and
 *        creates <prefix><p> for every catalog prefix plus
 *        <prefix>rejected and <prefix>deadletter.
 * @returns the devbroker (devbroker_destroy()) or NULL with errstr; a
 *          taken port reads "127.0.0.1:9092: Address already in use".
 */
devbroker_t *devbroker_new(const devbroker_conf_t *conf, char *errstr,
                           size_t errstr_size);

/** @returns the bootstrap list, the stable address first. */
const char *devbroker_bootstraps(const devbroker_t *db);

/**
 * @brief Serves until SIGINT or SIGTERM arrives on \p sigfd (a signalfd
 *        for SIGINT, SIGTERM, SIGUSR1, SIGUSR2). SIGUSR1 takes every
 *        broker down, SIGUSR2 brings them up; with control set, stdin
 *        commands are answered on stdout.
 * @returns 0 on a termination signal, -1 on a poll error.
 */
int devbroker_run(devbroker_t *db, int sigfd);

/**
 * @brief Runs one control command ("create TOPIC [PARTITIONS]",
 *        "down [ID]", "up [ID]", "rtt ID MS", "errors APIKEY ERR...",
 *        "ping", "help") and writes the one-line answer ("OK ..." or
 *        "ERR ...") into \p reply.
 * @returns 0 when the command succeeded, -1 otherwise.
 */
int devbroker_cmd(devbroker_t *db, const char *line, char *reply,
                  size_t reply_size);

/** @brief Stops the cluster and frees; NULL is a no-op. */
void devbroker_destroy(devbroker_t *db);

#endif
