/* aetherbus - Apache-2.0
 *
 * aetherbus-admin: topic provisioning from the event catalog, kcat style:
 * getopt, a mode switch, usage(exitcode, reason), and every option checked
 * (including each librdkafka property) before any I/O. This file owns the
 * command line, the client configuration and the exit codes; what the
 * topics are and how they are made stays in admin_topics.c, what is done
 * with dead letters in admin_deadletter.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "ab_catalog.h"
#include "ab_err.h"
#include "ab_kafka.h"
#include "ab_log.h"
#include "ab_time.h"
#include "admin_deadletter.h"
#include "admin_reconcile.h"
#include "admin_topics.h"

#define EXIT_INCOMPLETE 1 /* topics missing, or some could not be created;
                           reconcile: something accepted is missing */
#define EXIT_USAGE      2 /* bad option, value or librdkafka property */
#define EXIT_CLUSTER    3 /* cluster unreachable, no controller, timeout */

#define DEF_BROKERS      "127.0.0.1:9092"
#define DEF_TOPIC_PREFIX "events."
#define DEF_TIMEOUT_MS   10000
#define DEF_PARTITIONS   3
#define MAX_CONFIGS      64
#define MAX_PROPS        128

typedef enum {
        MODE_LIST,
        MODE_CREATE,
        MODE_DLQ_LIST,
        MODE_DLQ_REPLAY,
        MODE_RECONCILE,
} admin_mode_t;

/* Long-only options. */
enum {
        OPT_INGEST = 1000,
        OPT_STATS,
        OPT_SINK,
        OPT_AUDIT,
        OPT_GRACE,
};

/* The command line after parsing; conf holds every librdkafka property. */
struct admin {
        admin_mode_t mode;
        const char *brokers;
        const char *topic_prefix;
        int timeout_ms;
        int partitions;         /* 0: not given */
        int replication_factor; /* 0: not given */
        const char *configs[MAX_CONFIGS];
        size_t ccnt;
        const char *props[MAX_PROPS]; /* -X prop=val, applied after env */
        size_t pcnt;
        ab_log_level_t level;
        admin_dlq_filter_t dlq;
        admin_rc_conf_t rc;
        int since_given;
        int help;
        int show_usage; /* the error is about the command line's shape */
        rd_kafka_conf_t *conf;
};

static int usage(int exitcode, const char *reason) {
        FILE *fp = exitcode ? stderr : stdout;

        if (reason) {
                fprintf(stderr, "aetherbus-admin: %s\n", reason);
        }
        fprintf(fp,
"Usage: aetherbus-admin [options] topics [create]\n"
"       aetherbus-admin [options] deadletter list|replay [--name N] [--since T]\n"
"       aetherbus-admin [options] reconcile [--since T] [--grace D]\n"
"                       [--ingest URL] [--stats URL] [--sink URL] [--audit URL]\n"
"\n"
"Provisions the Kafka topics the event catalog needs: TOPIC_PREFIX + every\n"
"catalog prefix, plus TOPIC_PREFIX + rejected and TOPIC_PREFIX + deadletter.\n"
"\n"
"Modes:\n"
"  topics          list the topics the catalog needs and what the cluster\n"
"                  has (exists/missing, partitions, replicas)\n"
"  topics create   create the missing ones; existing topics are left alone\n"
"                  and reported: fewer partitions than asked, or a --config\n"
"                  value that differs, is a mismatch, never changed; prints\n"
"                  \"created N, existing M, mismatched K, failed F\"\n"
"  deadletter list print each record of TOPIC_PREFIX + deadletter as a JSON\n"
"                  line (id, name, source topic/partition/offset, HTTP\n"
"                  status, code, reason, failedAt)\n"
"  deadletter replay\n"
"                  produce those events again to the topic they were read\n"
"                  from (acks=all), so aetherbus-sink forwards them with its\n"
"                  usual order and retries once the sink takes them; prints\n"
"                  \"replayed N of M\"\n"
"  reconcile       compare, per prefix and minute of receivedAt, the records\n"
"                  Kafka holds (offsets by time on each events topic) with\n"
"                  what each stage counted (GET /admin/stages: accepted by\n"
"                  ingest, consumed by stats, sunk + dead-lettered +\n"
"                  filtered by sink, audited by audit); prints the minutes\n"
"                  that differ once older than the grace (nothing when all\n"
"                  agree), notes on stderr. A service restarted counts from\n"
"                  its start (countsFrom): earlier minutes are not compared.\n"
"                  Without offsets by time (the devbroker), ingest's\n"
"                  accepted figures stand in for Kafka's.\n"
"\n"
"Options:\n"
"  -b, --brokers LIST     bootstrap brokers (env KAFKA_BROKERS,\n"
"                         default " DEF_BROKERS ")\n"
"  -T, --topic-prefix P   topic name prefix (env TOPIC_PREFIX,\n"
"                         default " DEF_TOPIC_PREFIX ")\n"
"  -X PROP=VALUE          librdkafka property, repeatable; RDKAFKA_<PROP> in\n"
"                         the environment does the same\n"
"                         (RDKAFKA_SASL_MECHANISMS -> sasl.mechanisms);\n"
"                         a rejected property is fatal (exit 2)\n"
"  -t, --timeout-ms MS    bound of each cluster request (default %d)\n"
"  -h, --help             this text\n"
"\n"
"topics create options:\n"
"  -p, --partitions N     partitions of a new topic (default %d)\n"
"  -r, --replication-factor R\n"
"                         replicas of a new topic; -1 (default) takes the\n"
"                         broker's default.replication.factor\n"
"  -c, --config KEY=VALUE topic config of a new topic, repeatable; compared\n"
"                         on existing topics\n"
"\n"
"deadletter options:\n"
"  -n, --name N           only events named N, or starting with N without\n"
"                         its final '*'\n"
"  -s, --since T          only dead letters from T on: RFC 3339, or an age\n"
"                         (30m, 2h, 7d)\n"
"\n"
"reconcile options:\n"
"  -s, --since T          first minute compared: RFC 3339 or an age (default\n"
"                         1h; services keep 3h)\n"
"      --grace D          a minute is compared once its end is older than\n"
"                         this (default 2m): consumers' lag\n"
"      --ingest URL, --stats URL, --sink URL, --audit URL\n"
"                         a service's base URL (http://host:port); replicas\n"
"                         of one service comma-separated (summed); one not\n"
"                         given is skipped with a note\n"
"\n"
"Environment: KAFKA_BROKERS, TOPIC_PREFIX, RDKAFKA_<PROP>, LOG_LEVEL\n"
"(error|warn|info|debug, default warn; librdkafka's messages are JSON lines\n"
"on stderr), ADMIN_TOKEN (reconcile: sent to the services' /admin/stages).\n"
"\n"
"Exit status:\n"
"  0  topics: every catalog topic exists; topics create: each one was created\n"
"     or already existed (mismatches are reported, not errors)\n"
"  1  topics: some are missing; topics create: some could not be created;\n"
"     deadletter replay: some events could not be produced again;\n"
"     reconcile: events accepted are missing downstream (or acknowledged\n"
"     by ingest and not in Kafka)\n"
"  2  bad usage, a bad value or a rejected librdkafka property\n"
"  3  the cluster could not be read, a request timed out, or the cluster\n"
"     cannot create topics (no controller: librdkafka's mock cluster, e.g.\n"
"     aetherbus-devbroker); reconcile: a service given did not answer\n",
                DEF_TIMEOUT_MS, DEF_PARTITIONS);
        return exitcode;
}

/* An int in [min, max] or errstr. */
static ab_err_t num(const char *opt, const char *s, int min, int max,
                    int *outp, char *errstr, size_t errstr_size) {
        char *end;
        long v;

        errno = 0;
        v     = strtol(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max) {
                ab_errstr_set(errstr, errstr_size,
                              "%s \"%s\": expected an integer in %d..%d", opt,
                              s, min, max);
                return AB_ERR_INVALID;
        }
        *outp = (int)v;
        return AB_OK;
}

/* One librdkafka property; errstr says where it came from. */
static ab_err_t prop(rd_kafka_conf_t *conf, const char *origin,
                     const char *name, const char *val, char *errstr,
                     size_t errstr_size) {
        char why[512];
        ab_err_t err;

        err = ab_kafka_conf_set(conf, name, val, why, sizeof(why));
        if (err) {
                ab_errstr_set(errstr, errstr_size, "%s %s", origin, why);
        }
        return err;
}

static const struct option longopts[] = {
    {"brokers", required_argument, NULL, 'b'},
    {"topic-prefix", required_argument, NULL, 'T'},
    {"timeout-ms", required_argument, NULL, 't'},
    {"partitions", required_argument, NULL, 'p'},
    {"replication-factor", required_argument, NULL, 'r'},
    {"config", required_argument, NULL, 'c'},
    {"name", required_argument, NULL, 'n'},
    {"since", required_argument, NULL, 's'},
    {"ingest", required_argument, NULL, OPT_INGEST},
    {"stats", required_argument, NULL, OPT_STATS},
    {"sink", required_argument, NULL, OPT_SINK},
    {"audit", required_argument, NULL, OPT_AUDIT},
    {"grace", required_argument, NULL, OPT_GRACE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* --since: RFC 3339, or an age (30s, 30m, 2h, 7d) before now. */
static ab_err_t since(const char *s, int64_t *msp, char *errstr,
                      size_t errstr_size) {
        char *end;
        long long n;
        int64_t unit;

        if (ab_time_parse(s, msp) == AB_OK) {
                return AB_OK;
        }
        n = strtoll(s, &end, 10);
        unit = !strcmp(end, "s") ? 1000 : !strcmp(end, "m") ? 60000
             : !strcmp(end, "h") ? 3600000 : !strcmp(end, "d") ? 86400000 : 0;
        if (end == s || n < 0 || n > 36500LL * 86400 || !unit) {
                ab_errstr_set(errstr, errstr_size,
                              "--since \"%s\": expected RFC 3339 or an age "
                              "like 30m, 2h, 7d",
                              s);
                return AB_ERR_INVALID;
        }
        *msp = ab_time_now_ms() - (int64_t)n * unit;
        return AB_OK;
}

/* --grace: 0, or a number with s, m or h. */
static ab_err_t duration(const char *opt, const char *s, int64_t *msp,
                         char *errstr, size_t errstr_size) {
        char *end;
        long long n;
        int64_t unit;

        n    = strtoll(s, &end, 10);
        unit = !strcmp(end, "s") ? 1000 : !strcmp(end, "m") ? 60000
             : !strcmp(end, "h") ? 3600000 : (!*end && n == 0) ? 1 : 0;
        if (end == s || n < 0 || n > 24 * 3600 || !unit) {
                ab_errstr_set(errstr, errstr_size,
                              "%s \"%s\": expected a duration like 30s, 2m, 1h",
                              opt, s);
                return AB_ERR_INVALID;
        }
        *msp = (int64_t)n * unit;
        return AB_OK;
}

/* Parses and checks everything, env then flags, into ad (conf included).
 * Does no I/O. */
static ab_err_t argparse(struct admin *ad, int argc, char **argv,
                         char *errstr, size_t errstr_size) {
        char name[256];
        const char *env;
        const char *eq;
        ab_err_t err;
        size_t i;
        int opt;

        ad->brokers      = DEF_BROKERS;
        ad->topic_prefix = DEF_TOPIC_PREFIX;
        ad->timeout_ms   = DEF_TIMEOUT_MS;
        ad->level        = AB_LOG_WARN;
        ad->rc.grace_ms  = -1; /* not given */
        if ((env = getenv("KAFKA_BROKERS")) && *env) {
                ad->brokers = env;
        }
        if ((env = getenv("TOPIC_PREFIX"))) {
                ad->topic_prefix = env;
        }
        if ((env = getenv("LOG_LEVEL")) && *env &&
            ab_log_level_parse(env, &ad->level) != AB_OK) {
                ab_errstr_set(errstr, errstr_size,
                              "LOG_LEVEL \"%s\": expected "
                              "error|warn|info|debug",
                              env);
                return AB_ERR_INVALID;
        }

        ad->show_usage = 1;
        opterr         = 0;
        while ((opt = getopt_long(argc, argv, ":b:T:X:t:p:r:c:n:s:h", longopts,
                                  NULL)) != -1) {
                err = AB_OK;
                switch (opt) {
                case 'b':
                        ad->brokers = optarg;
                        break;
                case 'T':
                        ad->topic_prefix = optarg;
                        break;
                case 'X':
                        if (!strchr(optarg, '=') || *optarg == '=') {
                                ab_errstr_set(errstr, errstr_size,
                                              "-X \"%s\": expected "
                                              "PROP=VALUE",
                                              optarg);
                                return AB_ERR_INVALID;
                        }
                        if (ad->pcnt == MAX_PROPS) {
                                ab_errstr_set(errstr, errstr_size,
                                              "-X: at most %d", MAX_PROPS);
                                return AB_ERR_INVALID;
                        }
                        ad->props[ad->pcnt++] = optarg;
                        break;
                case 't':
                        err = num("--timeout-ms", optarg, 1, 3600000,
                                  &ad->timeout_ms, errstr, errstr_size);
                        break;
                case 'p':
                        err = num("--partitions", optarg, 1, 100000,
                                  &ad->partitions, errstr, errstr_size);
                        break;
                case 'r':
                        err = num("--replication-factor", optarg, -1, 32767,
                                  &ad->replication_factor, errstr,
                                  errstr_size);
                        if (!err && ad->replication_factor == 0) {
                                ab_errstr_set(errstr, errstr_size,
                                              "--replication-factor 0: "
                                              "expected -1 or >= 1");
                                err = AB_ERR_INVALID;
                        }
                        break;
                case 'c':
                        if (ad->ccnt == MAX_CONFIGS) {
                                ab_errstr_set(errstr, errstr_size,
                                              "--config: at most %d",
                                              MAX_CONFIGS);
                                return AB_ERR_INVALID;
                        }
                        ad->configs[ad->ccnt++] = optarg;
                        break;
                case 'n':
                        ad->dlq.name = optarg;
                        break;
                case 's':
                        err = since(optarg, &ad->dlq.since_ms, errstr,
                                    errstr_size);
                        ad->since_given = 1;
                        break;
                case OPT_INGEST:
                case OPT_STATS:
                case OPT_SINK:
                case OPT_AUDIT:
                        if (strncmp(optarg, "http://", 7) &&
                            strncmp(optarg, "https://", 8)) {
                                ab_errstr_set(errstr, errstr_size,
                                              "--%s \"%s\": expected "
                                              "http://host:port",
                                              (const char *[]){
                                                  "ingest", "stats", "sink",
                                                  "audit"}[opt - OPT_INGEST],
                                              optarg);
                                return AB_ERR_INVALID;
                        }
                        ad->rc.urls[opt - OPT_INGEST] = optarg;
                        break;
                case OPT_GRACE:
                        err = duration("--grace", optarg, &ad->rc.grace_ms,
                                       errstr, errstr_size);
                        break;
                case 'h':
                        ad->help = 1;
                        return AB_OK;
                case ':':
                        ab_errstr_set(errstr, errstr_size,
                                      "option %s needs a value",
                                      argv[optind - 1]);
                        return AB_ERR_INVALID;
                default:
                        ab_errstr_set(errstr, errstr_size,
                                      "unknown option %s", argv[optind - 1]);
                        return AB_ERR_INVALID;
                }
                if (err) {
                        return err;
                }
        }

        /* the mode switch */
        if (optind >= argc) {
                ab_errstr_set(errstr, errstr_size, "no mode given");
                return AB_ERR_INVALID;
        }
        if (!strcmp(argv[optind], "reconcile")) {
                ad->mode = MODE_RECONCILE;
        } else if (!strcmp(argv[optind], "deadletter")) {
                if (optind + 1 >= argc ||
                    (strcmp(argv[optind + 1], "list") &&
                     strcmp(argv[optind + 1], "replay"))) {
                        ab_errstr_set(errstr, errstr_size,
                                      "deadletter: expected list or replay");
                        return AB_ERR_INVALID;
                }
                ad->mode = strcmp(argv[optind + 1], "list") ? MODE_DLQ_REPLAY
                                                             : MODE_DLQ_LIST;
        } else if (strcmp(argv[optind], "topics")) {
                ab_errstr_set(errstr, errstr_size, "unknown mode \"%s\"",
                              argv[optind]);
                return AB_ERR_INVALID;
        } else {
                ad->mode = MODE_LIST;
        }
        if (ad->mode == MODE_LIST && optind + 1 < argc) {
                if (strcmp(argv[optind + 1], "create")) {
                        ab_errstr_set(errstr, errstr_size,
                                      "unknown topics mode \"%s\"",
                                      argv[optind + 1]);
                        return AB_ERR_INVALID;
                }
                ad->mode = MODE_CREATE;
        }
        if (optind + 2 < argc) {
                ab_errstr_set(errstr, errstr_size, "unexpected argument \"%s\"",
                              argv[optind + 2]);
                return AB_ERR_INVALID;
        }
        if (ad->mode == MODE_RECONCILE && optind + 1 < argc) {
                ab_errstr_set(errstr, errstr_size, "unexpected argument \"%s\"",
                              argv[optind + 1]);
                return AB_ERR_INVALID;
        }
        if (ad->dlq.name && ad->mode != MODE_DLQ_LIST &&
            ad->mode != MODE_DLQ_REPLAY) {
                ab_errstr_set(errstr, errstr_size,
                              "--name only applies to deadletter");
                return AB_ERR_INVALID;
        }
        if (ad->since_given && ad->mode != MODE_DLQ_LIST &&
            ad->mode != MODE_DLQ_REPLAY && ad->mode != MODE_RECONCILE) {
                ab_errstr_set(errstr, errstr_size,
                              "--since only applies to deadletter and "
                              "reconcile");
                return AB_ERR_INVALID;
        }
        if (ad->mode != MODE_RECONCILE &&
            (ad->rc.urls[0] || ad->rc.urls[1] || ad->rc.urls[2] ||
             ad->rc.urls[3] || ad->rc.grace_ms >= 0)) {
                ab_errstr_set(errstr, errstr_size,
                              "--ingest, --stats, --sink, --audit and --grace "
                              "only apply to reconcile");
                return AB_ERR_INVALID;
        }
        if (ad->mode == MODE_RECONCILE) {
                if (!ad->since_given) {
                        ad->dlq.since_ms = ab_time_now_ms() - 3600000;
                }
                if (ad->rc.grace_ms < 0) {
                        ad->rc.grace_ms = 120000;
                }
                ad->rc.since_ms   = ad->dlq.since_ms;
                ad->rc.timeout_ms = ad->timeout_ms;
                if ((env = getenv("ADMIN_TOKEN")) && *env) {
                        ad->rc.admin_token = env;
                }
        }
        if (ad->mode != MODE_CREATE &&
            (ad->partitions || ad->replication_factor || ad->ccnt)) {
                ab_errstr_set(errstr, errstr_size,
                              "--partitions, --replication-factor and "
                              "--config only apply to \"topics create\"");
                return AB_ERR_INVALID;
        }
        if (!*ad->brokers) {
                ab_errstr_set(errstr, errstr_size, "--brokers is empty");
                return AB_ERR_INVALID;
        }

        /* librdkafka: env, then the broker list, then -X; each checked */
        ad->show_usage = 0;
        ad->conf       = rd_kafka_conf_new();
        ab_kafka_conf_logging(ad->conf);
        if ((err = prop(ad->conf, "default", "client.id", "aetherbus-admin",
                        errstr, errstr_size)) ||
            (err = ab_kafka_conf_env(ad->conf, NULL, errstr, errstr_size)) ||
            (err = prop(ad->conf, "--brokers", "bootstrap.servers",
                        ad->brokers, errstr, errstr_size))) {
                return err;
        }
        for (i = 0; i < ad->pcnt; i++) {
                eq = strchr(ad->props[i], '=');
                ab_errstr_set(name, sizeof(name), "%.*s",
                              (int)(eq - ad->props[i]), ad->props[i]);
                if ((err = prop(ad->conf, "-X", name, eq + 1, errstr,
                                errstr_size))) {
                        return err;
                }
        }
        return AB_OK;
}

int main(int argc, char **argv) {
        struct admin ad                = {0};
        ab_catalog_t *cat             = NULL;
        admin_topics_t *at            = NULL;
        rd_kafka_t *rk                = NULL;
        char errstr[1024];
        size_t bad  = 0;
        int code    = 0;
        ab_err_t err;
        size_t i;

        /* config and validation: no I/O until every option is checked */
        ab_log_init("admin", AB_LOG_WARN);
        if (argparse(&ad, argc, argv, errstr, sizeof(errstr)) != AB_OK) {
                if (ad.conf) {
                        rd_kafka_conf_destroy(ad.conf);
                }
                if (ad.show_usage) {
                        return usage(EXIT_USAGE, errstr);
                }
                fprintf(stderr, "aetherbus-admin: %s\n", errstr);
                return EXIT_USAGE;
        }
        if (ad.help) {
                return usage(0, NULL);
        }
        ab_log_set_level(ad.level);

        cat = ab_catalog_new(errstr, sizeof(errstr));
        if (cat) {
                at = admin_topics_new(cat, ad.topic_prefix, errstr,
                                      sizeof(errstr));
        }
        if (!at) {
                ab_catalog_destroy(cat);
                rd_kafka_conf_destroy(ad.conf);
                fprintf(stderr, "aetherbus-admin: %s\n", errstr);
                return EXIT_USAGE;
        }
        admin_topics_set_layout(at,
                                ad.partitions ? ad.partitions : DEF_PARTITIONS,
                                ad.replication_factor ? ad.replication_factor
                                                      : -1);
        for (i = 0; i < ad.ccnt; i++) {
                if (admin_topics_add_config(at, ad.configs[i], errstr,
                                            sizeof(errstr)) != AB_OK) {
                        admin_topics_destroy(at);
                        ab_catalog_destroy(cat);
                        rd_kafka_conf_destroy(ad.conf);
                        return usage(EXIT_USAGE, errstr);
                }
        }

        if (ad.mode == MODE_RECONCILE) {
                uint64_t missing = 0;

                err = admin_reconcile_run(ad.conf, cat, ad.topic_prefix, &ad.rc,
                                          stdout, stderr, &missing, errstr,
                                          sizeof(errstr));
                fflush(stdout);
                rd_kafka_conf_destroy(ad.conf);
                admin_topics_destroy(at);
                ab_catalog_destroy(cat);
                if (err == AB_ERR_INVALID) {
                        fprintf(stderr, "aetherbus-admin: %s\n", errstr);
                        return EXIT_USAGE;
                }
                if (err) {
                        fprintf(stderr, "aetherbus-admin: %s (brokers %s)\n",
                                errstr, ad.brokers);
                        return EXIT_CLUSTER;
                }
                return missing ? EXIT_INCOMPLETE : 0;
        }
        if (ad.mode == MODE_DLQ_LIST || ad.mode == MODE_DLQ_REPLAY) {
                size_t matched = 0, replayed = 0, failed = 0;

                err = admin_deadletter_run(ad.conf, cat, ad.topic_prefix, &ad.dlq,
                                           ad.mode == MODE_DLQ_REPLAY,
                                           ad.timeout_ms, stdout, &matched,
                                           &replayed, &failed, errstr,
                                           sizeof(errstr));
                if (ad.mode == MODE_DLQ_REPLAY) {
                        printf("replayed %zu of %zu\n", replayed, matched);
                }
                fflush(stdout);
                rd_kafka_conf_destroy(ad.conf);
                admin_topics_destroy(at);
                ab_catalog_destroy(cat);
                if (err) {
                        fprintf(stderr, "aetherbus-admin: %s (brokers %s)\n",
                                errstr, ad.brokers);
                        return EXIT_CLUSTER;
                }
                return failed ? EXIT_INCOMPLETE : 0;
        }

        /* build: rd_kafka_new() owns conf only when it succeeds */
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, ad.conf, errstr, sizeof(errstr));
        if (!rk) {
                rd_kafka_conf_destroy(ad.conf);
                admin_topics_destroy(at);
                ab_catalog_destroy(cat);
                fprintf(stderr, "aetherbus-admin: %s\n", errstr);
                return EXIT_USAGE;
        }
        ad.conf = NULL;

        /* run */
        if (ad.mode == MODE_LIST) {
                err = admin_topics_list(at, rk, ad.timeout_ms, stdout, &bad,
                                        errstr, sizeof(errstr));
        } else {
                err = admin_topics_create(at, rk, ad.timeout_ms, stdout, &bad,
                                          errstr, sizeof(errstr));
        }
        fflush(stdout);
        if (err) {
                fprintf(stderr, "aetherbus-admin: %s (brokers %s)\n", errstr,
                        ad.brokers);
                code = EXIT_CLUSTER;
        } else if (bad > 0) {
                code = EXIT_INCOMPLETE;
        }

        /* destroy in reverse */
        rd_kafka_destroy(rk);
        admin_topics_destroy(at);
        ab_catalog_destroy(cat);
        return code;
}
