/* aetherbus - Apache-2.0
 *
 * ab_conf: table-driven configuration (rd_kafka_properties[], fluent-bit
 * config_map[]). A service describes each setting once in a row (env
 * name, flag, type, default, range, struct offset, help); ab_conf loads
 * defaults, then the environment, then the command line flags, validates
 * every value, runs the service's finalize() for cross-field rules, and
 * generates --help and --dump-config from the same table.
 *
 * What a setting means stays with the service; RDKAFKA_<property>
 * passthrough belongs to ab_kafka.
 */
#ifndef AB_CONF_H
#define AB_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ab_err.h"

/** What a row's struct field holds. */
typedef enum {
        AB_CONF_STR = 0, /**< char *, owned (ab_conf_clear() frees) */
        AB_CONF_INT,     /**< int, range min..max */
        AB_CONF_BOOL,    /**< int 0/1: true|false|1|0|yes|no|on|off */
        AB_CONF_ENUM,    /**< int: index in values "a|b|c" */
        AB_CONF_SIZE,    /**< size_t bytes; suffix K, M, G (x1024); range */
        AB_CONF_DURATION, /**< int64_t ms; suffix ms, s, m, h (none = ms) */
        AB_CONF_URL,     /**< char *, owned: http:// or https:// URL */
} ab_conf_type_t;

/** Row flags. */
#define AB_CONF_SECRET   0x1 /**< never printed: "***" in dumps/errors */
#define AB_CONF_REQUIRED 0x2 /**< must be set to a non-empty value */

/** Extra check for STR/URL rows: AB_OK or AB_ERR_INVALID with the reason
 *  (without the setting name, e.g. "must not contain spaces"). */
typedef ab_err_t(ab_conf_check_t)(const char *value, char *errstr,
                                  size_t errstr_size);

/** One setting. Public so services can write tables; see AB_CONF_COMMON_ROWS
 *  for an example. A row with env == NULL ends a table. */
typedef struct ab_conf_row_s {
        const char *env;      /**< "PORT" */
        const char *flag;     /**< "port" for --port; NULL = env only */
        ab_conf_type_t type;
        const char *def;      /**< default, parsed like any value; NULL =
                                   unset (NULL string, 0 number) */
        long long min;        /**< INT, SIZE, DURATION (ms): range; */
        long long max;        /**< min == max == 0: no range */
        const char *values;   /**< ENUM: "off|audit|enforce" */
        size_t offset;        /**< offsetof(service conf struct, field) */
        int flags;            /**< AB_CONF_SECRET, AB_CONF_REQUIRED */
        const char *help;     /**< one sentence for --help */
        ab_conf_check_t *check; /**< STR/URL: extra check, may be NULL */
} ab_conf_row_t;

/** A service's whole configuration. */
typedef struct ab_conf_spec_s {
        const char *prog;  /**< "aetherbus-ingest" */
        const char *about; /**< one line under "Usage:" */
        const ab_conf_row_t *rows;
        /** Cross-field rules after all values are in; may be NULL. */
        ab_err_t (*finalize)(void *conf, char *errstr, size_t errstr_size);
} ab_conf_spec_t;

/** What the command line asked for, besides running. */
typedef enum {
        AB_CONF_RUN = 0, /**< load done, start the service */
        AB_CONF_HELP,    /**< --help / -h: print ab_conf_help(), exit 0 */
        AB_CONF_DUMP,    /**< --dump-config: print ab_conf_dump(), exit 0 */
} ab_conf_action_t;

/** The settings every service shares; embed as a member of the service's
 *  conf struct and put AB_CONF_COMMON_ROWS() in its table. */
typedef struct ab_conf_common_s {
        char *kafka_brokers; /**< KAFKA_BROKERS */
        char *topic_prefix;  /**< TOPIC_PREFIX, [a-zA-Z0-9._-]{0,200} */
        int port;            /**< PORT */
        int log_level;       /**< LOG_LEVEL as ab_log_level_t */
} ab_conf_common_t;

/** @brief ab_conf_check_t for TOPIC_PREFIX: Kafka topic-name characters,
 *         at most 200 (a topic is at most 249). */
ab_err_t ab_conf_check_topic_prefix(const char *value, char *errstr,
                                    size_t errstr_size);

/** @brief ab_conf_check_t for KAFKA_BROKERS: non-empty, no spaces, no empty
 *         list item. */
ab_err_t ab_conf_check_brokers(const char *value, char *errstr,
                               size_t errstr_size);

/**
 * @brief Rows for KAFKA_BROKERS (default 127.0.0.1:9092), TOPIC_PREFIX
 *        (default "events."), PORT (1..65535, default \p port_def, a string
 *        literal) and LOG_LEVEL (error|warn|info|debug, default info), stored
 *        in the ab_conf_common_t member \p member of \p ctype.
 */
#define AB_CONF_COMMON_ROWS(ctype, member, port_def)                            \
        {.env     = "KAFKA_BROKERS",                                           \
         .flag    = "kafka-brokers",                                           \
         .type    = AB_CONF_STR,                                               \
         .def     = "127.0.0.1:9092",                                          \
         .offset  = offsetof(ctype, member.kafka_brokers),                      \
         .help    = "Kafka bootstrap servers, host:port[,host:port...].",     \
         .check   = ab_conf_check_brokers},                                    \
        {.env     = "TOPIC_PREFIX",                                            \
         .flag    = "topic-prefix",                                            \
         .type    = AB_CONF_STR,                                               \
         .def     = "events.",                                                 \
         .offset  = offsetof(ctype, member.topic_prefix),                       \
         .help    = "Prefix of every topic name (topic = prefix + family).",   \
         .check   = ab_conf_check_topic_prefix},                               \
        {.env    = "PORT",                                                     \
         .flag   = "port",                                                     \
         .type   = AB_CONF_INT,                                                \
         .def    = port_def,                                                   \
         .min    = 1,                                                          \
         .max    = 65535,                                                      \
         .offset = offsetof(ctype, member.port),                                \
         .help   = "HTTP listen port."},                                       \
        {.env    = "LOG_LEVEL",                                                \
         .flag   = "log-level",                                                \
         .type   = AB_CONF_ENUM,                                               \
         .def    = "info",                                                     \
         .values = "error|warn|info|debug",                                    \
         .offset = offsetof(ctype, member.log_level),                           \
         .help   = "Lowest level logged on stderr."}

/**
 * @brief Loads \p conf: every row's default, then its environment variable,
 *        then its flag (--flag=value or --flag value; a BOOL flag alone
 *        means true), then spec->finalize(). --help / -h stops before any
 *        parsing and reports AB_CONF_HELP; --dump-config reports AB_CONF_DUMP
 *        after a full load.
 * @param conf the service struct, zeroed or ab_conf_clear()ed.
 * @param actionp set to what the caller should do next (on success).
 * @returns AB_OK; AB_ERR_INVALID for a bad value
 *          ("PORT: must be an integer in 1..65535, got \"abc\"", a flag is
 *          named "--port: ..."), a missing flag value or a finalize()
 *          failure; AB_ERR_UNKNOWN for an unknown flag or a stray argument;
 *          AB_ERR_NOMEM. On failure \p conf holds no allocation.
 */
ab_err_t ab_conf_load(const ab_conf_spec_t *spec, void *conf, int argc,
                      char **argv, ab_conf_action_t *actionp, char *errstr,
                      size_t errstr_size);

/** @brief Frees the strings a load stored and zeroes every row's field.
 *         Safe on a zeroed or half-loaded struct. */
void ab_conf_clear(const ab_conf_spec_t *spec, void *conf);

/** @brief Prints the usage generated from the table to \p fp. */
void ab_conf_help(const ab_conf_spec_t *spec, FILE *fp);

/** @brief Prints ENV=value for every row, secrets as "***" (empty when
 *         unset), in table order. */
void ab_conf_dump(const ab_conf_spec_t *spec, const void *conf, FILE *fp);

/** ab_conf_main() result meaning "go on and run the service". */
#define AB_CONF_CONTINUE (-1)

/**
 * @brief What a main() calls: ab_conf_load(), then prints help (stdout),
 *        the dump (stdout) or "<prog>: <error>" (one line, stderr).
 * @returns AB_CONF_CONTINUE when the service should run (conf loaded);
 *          otherwise the exit status for main to return: 0 after help or
 *          dump, 2 after an error. \p conf is cleared in both cases.
 */
int ab_conf_main(const ab_conf_spec_t *spec, void *conf, int argc,
                 char **argv);

#endif
