/* aetherbus - Apache-2.0
 *
 * aetherbus-devbroker: the embedded Kafka for development and tests
 * (librdkafka's mock cluster, real Kafka protocol over TCP). Like kcat's
 * mock mode it prints BROKERS=host:port once it serves; it runs until
 * SIGINT or SIGTERM. This file parses and checks every option before any
 * I/O, then runs the script: build, signals, run, destroy.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "ab_conf.h"
#include "ab_log.h"
#include "devbroker.h"

static int usage(const char *argv0, int exitcode, const char *reason) {
        FILE *out = exitcode ? stderr : stdout;

        if (reason) {
                fprintf(out, "%s: %s\n\n", argv0, reason);
        }
        fprintf(out,
                "Usage: %s [options]\n"
                "Runs librdkafka's mock Kafka cluster for development and "
                "tests.\n"
                "Prints BROKERS=host:port on stdout once it serves; stops on "
                "SIGINT/SIGTERM.\n"
                "\n"
                "Options:\n"
                "  -l, --listen HOST:PORT   address of the first broker "
                "(default 127.0.0.1:9092;\n"
                "                           port 0 picks a free port)\n"
                "  -p, --partitions N       partitions per pre-created topic "
                "(default 3)\n"
                "  -b, --brokers N          mock brokers (default 1; the "
                "others get free ports)\n"
                "  -t, --topic-prefix P     topic prefix (default "
                "\"events.\")\n"
                "  -C, --control            read control commands on stdin, "
                "answer on stdout:\n"
                "                           create TOPIC [PARTITIONS] | down "
                "[ID|all] | up [ID|all]\n"
                "                           | rtt ID MS | errors APIKEY ERR "
                "[ERR...] | ping | help\n"
                "  -L, --log-level LEVEL    error|warn|info|debug (default "
                "$LOG_LEVEL or info)\n"
                "  -h, --help               this text\n"
                "\n"
                "Signals: SIGUSR1 takes every broker down, SIGUSR2 brings "
                "them back.\n"
                "Topics: <prefix><p> for every catalog prefix, <prefix>"
                "rejected, <prefix>deadletter.\n"
                "Exit: 0 after a signal, 1 when it cannot serve (port taken), "
                "2 on a bad option.\n",
                argv0);
        return exitcode;
}

static int parse_int(const char *s, int min, int max, int *out) {
        char *end;
        long v;

        errno = 0;
        v     = strtol(s, &end, 10);
        if (!*s || *end || errno || v < min || v > max) {
                return -1;
        }
        *out = (int)v;
        return 0;
}

/* HOST:PORT with HOST an IPv4 address or "localhost" (the mock is IPv4). */
static int parse_listen(const char *s, struct sockaddr_in *sin) {
        char host[64];
        const char *colon = strrchr(s, ':');
        int port;

        if (!colon || (size_t)(colon - s) >= sizeof(host) ||
            parse_int(colon + 1, 0, 65535, &port) == -1) {
                return -1;
        }
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        memset(sin, 0, sizeof(*sin));
        sin->sin_family = AF_INET;
        sin->sin_port   = htons((uint16_t)port);
        if (!strcmp(host, "localhost")) {
                sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                return 0;
        }
        return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
            {"listen", required_argument, NULL, 'l'},
            {"partitions", required_argument, NULL, 'p'},
            {"brokers", required_argument, NULL, 'b'},
            {"topic-prefix", required_argument, NULL, 't'},
            {"control", no_argument, NULL, 'C'},
            {"log-level", required_argument, NULL, 'L'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        devbroker_conf_t conf;
        const char *level = getenv("LOG_LEVEL");
        char errstr[512];
        devbroker_t *db;
        sigset_t sigs;
        int sigfd;
        int opt;
        int ret;

        memset(&conf, 0, sizeof(conf));
        parse_listen("127.0.0.1:9092", &conf.listen);
        conf.partitions   = 3;
        conf.brokers      = 1;
        conf.topic_prefix = "events.";
        conf.log_level    = AB_LOG_INFO;

        while ((opt = getopt_long(argc, argv, "l:p:b:t:CL:h", opts, NULL)) !=
               -1) {
                switch (opt) {
                case 'l':
                        if (parse_listen(optarg, &conf.listen) == -1) {
                                return usage(argv[0], 2,
                                             "--listen: expected HOST:PORT "
                                             "with an IPv4 HOST or localhost "
                                             "and PORT 0-65535");
                        }
                        break;
                case 'p':
                        if (parse_int(optarg, 1, 10000, &conf.partitions) ==
                            -1) {
                                return usage(argv[0], 2,
                                             "--partitions: expected 1-10000");
                        }
                        break;
                case 'b':
                        if (parse_int(optarg, 1, 32, &conf.brokers) == -1) {
                                return usage(argv[0], 2,
                                             "--brokers: expected 1-32");
                        }
                        break;
                case 't':
                        if (ab_conf_check_topic_prefix(optarg, errstr,
                                                       sizeof(errstr))) {
                                char why[600];

                                snprintf(why, sizeof(why), "--topic-prefix: %s",
                                         errstr);
                                return usage(argv[0], 2, why);
                        }
                        conf.topic_prefix = optarg;
                        break;
                case 'C':
                        conf.control = 1;
                        break;
                case 'L':
                        level = optarg;
                        break;
                case 'h':
                        return usage(argv[0], 0, NULL);
                default:
                        return usage(argv[0], 2, "unknown option");
                }
        }
        if (optind < argc) {
                return usage(argv[0], 2, "unexpected argument");
        }
        if (level && ab_log_level_parse(level, &conf.log_level) != AB_OK) {
                return usage(argv[0], 2,
                             "log level: expected error|warn|info|debug");
        }
        ab_log_init("devbroker", conf.log_level);

        /* Signals arrive on a descriptor; blocked before librdkafka starts
         * its threads so none of them takes one. */
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGINT);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGUSR1);
        sigaddset(&sigs, SIGUSR2);
        signal(SIGPIPE, SIG_IGN); /* a closed stdout is not a reason to die */
        if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0 ||
            (sigfd = signalfd(-1, &sigs, SFD_CLOEXEC)) == -1) {
                ab_error("devbroker", "signalfd: %s", strerror(errno));
                return 1;
        }

        db = devbroker_new(&conf, errstr, sizeof(errstr));
        if (!db) {
                ab_error("devbroker", "cannot serve: %s", errstr);
                close(sigfd);
                return 1;
        }
        ab_info("devbroker", "serving Kafka at %s", devbroker_bootstraps(db));
        printf("BROKERS=%s\n", devbroker_bootstraps(db));
        fflush(stdout);

        ret = devbroker_run(db, sigfd);

        devbroker_destroy(db);
        close(sigfd);
        return ret == 0 ? 0 : 1;
}
