/* aetherbus - Apache-2.0
 *
 * devbroker: the mock cluster's life and its fault-injection controls.
 * The cluster runs on librdkafka's own thread; this file creates it on the
 * address devbroker_net bound, pre-creates the catalog's topics, and turns
 * signals and control commands into rd_kafka_mock_* calls. Nothing here
 * touches a socket of the cluster.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "ab_catalog.h"
#include "ab_kafka.h"
#include "devbroker.h"
#include "devbroker_net.h"

#define COMP "devbroker"
#define LINE_MAX_LEN 1024
#define FD_SCAN_MAX  4096
#define KICK_MAX     8

/* librdkafka 2.0.2's mock thread serves its op queue before it drains its
 * wake-up pipe, so the wake-up of an op enqueued in between is lost and
 * the op waits for the next poll timeout: up to 1 s per rd_kafka_mock_*
 * call (14 topic creations took up to 14 s). While such a call is in
 * flight a kicker thread writes to the pipes the cluster created (found
 * by comparing /proc/self/fd before and after; a spurious byte to another
 * internal wake-up pipe only wakes that thread). */
struct devbroker_s {
        devbroker_conf_t conf;
        rd_kafka_t *rk; /* hosts the mock cluster, never connects */
        rd_kafka_mock_cluster_t *mcluster;
        char line[LINE_MAX_LEN];
        size_t line_len;
        int line_overflow;
        int kick_fds[KICK_MAX];
        int kick_cnt;
        pthread_t kicker;
        int kicker_started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int sync_init;
        int inflight; /* rd_kafka_mock_* calls under way */
        int stop;
};

/* Marks the open descriptors below FD_SCAN_MAX in seen. */
static void fd_scan(unsigned char *seen) {
        struct dirent *de;
        DIR *dir;
        int fd;

        memset(seen, 0, FD_SCAN_MAX);
        dir = opendir("/proc/self/fd");
        if (!dir) {
                return;
        }
        while ((de = readdir(dir))) {
                fd = atoi(de->d_name);
                if (fd > 0 && fd < FD_SCAN_MAX) {
                        seen[fd] = 1;
                }
        }
        closedir(dir);
}

/* The write ends of the pipes opened since before was taken. */
static void find_kick_fds(devbroker_t *db, const unsigned char *before) {
        unsigned char *after = malloc(FD_SCAN_MAX);
        struct stat st;
        int fd;

        if (!after) {
                return;
        }
        fd_scan(after);
        for (fd = 0; fd < FD_SCAN_MAX && db->kick_cnt < KICK_MAX; fd++) {
                if (after[fd] && !before[fd] && fstat(fd, &st) == 0 &&
                    S_ISFIFO(st.st_mode) &&
                    (fcntl(fd, F_GETFL) & O_ACCMODE) == O_WRONLY) {
                        db->kick_fds[db->kick_cnt++] = fd;
                }
        }
        free(after);
        ab_debug(COMP, "%d wake-up pipe(s) to kick", db->kick_cnt);
}

static void *kicker_main(void *arg) {
        struct timespec ts = {0, 1000000};
        devbroker_t *db    = arg;
        ssize_t r;
        int i;

        pthread_mutex_lock(&db->lock);
        while (!db->stop) {
                if (db->inflight == 0) {
                        pthread_cond_wait(&db->cond, &db->lock);
                        continue;
                }
                pthread_mutex_unlock(&db->lock);
                for (i = 0; i < db->kick_cnt; i++) {
                        r = write(db->kick_fds[i], "k", 1);
                        (void)r; /* a full pipe already wakes it */
                }
                nanosleep(&ts, NULL);
                pthread_mutex_lock(&db->lock);
        }
        pthread_mutex_unlock(&db->lock);
        return NULL;
}

/* Brackets every rd_kafka_mock_* call that goes through the op queue. */
static void op_begin(devbroker_t *db) {
        if (db->kicker_started) {
                pthread_mutex_lock(&db->lock);
                db->inflight++;
                pthread_cond_signal(&db->cond);
                pthread_mutex_unlock(&db->lock);
        }
}

static void op_end(devbroker_t *db) {
        if (db->kicker_started) {
                pthread_mutex_lock(&db->lock);
                db->inflight--;
                pthread_mutex_unlock(&db->lock);
        }
}

/* Request types a control command may name. */
static const struct {
        const char *name;
        int16_t key;
} apis[] = {
    {"Produce", 0},          {"Fetch", 1},        {"ListOffsets", 2},
    {"Metadata", 3},         {"OffsetCommit", 8}, {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"JoinGroup", 11},   {"Heartbeat", 12},
    {"LeaveGroup", 13},      {"SyncGroup", 14},   {"ApiVersion", 18},
    {"InitProducerId", 22},
};

static int parse_long(const char *s, long min, long max, long *out) {
        char *end;
        long v;

        if (!s || !*s) {
                return -1;
        }
        errno = 0;
        v     = strtol(s, &end, 10);
        if (errno || *end || v < min || v > max) {
                return -1;
        }
        *out = v;
        return 0;
}

static int parse_api(const char *s, int16_t *keyp) {
        size_t i;
        long v;

        for (i = 0; i < sizeof(apis) / sizeof(apis[0]); i++) {
                if (!strcasecmp(s, apis[i].name)) {
                        *keyp = apis[i].key;
                        return 0;
                }
        }
        if (parse_long(s, 0, 1000, &v) == -1) {
                return -1;
        }
        *keyp = (int16_t)v;
        return 0;
}

/* A Kafka error by number or by name ("NOT_LEADER_FOR_PARTITION"). */
static int parse_kerr(const char *s, rd_kafka_resp_err_t *errp) {
        const struct rd_kafka_err_desc *descs;
        size_t cnt;
        size_t i;
        long v;

        if (parse_long(s, -200, 1000, &v) == 0) {
                *errp = (rd_kafka_resp_err_t)v;
                return 0;
        }
        if (!strncasecmp(s, "RD_KAFKA_RESP_ERR_", 18)) {
                s += 18;
        }
        rd_kafka_get_err_descs(&descs, &cnt);
        for (i = 0; i < cnt; i++) {
                if (descs[i].name && !strcasecmp(descs[i].name, s)) {
                        *errp = descs[i].code;
                        return 0;
                }
        }
        return -1;
}

static int create_topic(devbroker_t *db, const char *topic, int partitions,
                        char *errstr, size_t errstr_size) {
        rd_kafka_resp_err_t err;
        int rf     = db->conf.brokers < 3 ? db->conf.brokers : 3;
        size_t len = strlen(topic);

        /* Kafka's rule for topic names. */
        if (len == 0 || len > 249 || !strcmp(topic, ".") ||
            !strcmp(topic, "..") ||
            strspn(topic, "abcdefghijklmnopqrstuvwxyz"
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len) {
                ab_errstr_set(errstr, errstr_size,
                              "illegal topic name \"%s\"", topic);
                return -1;
        }

        op_begin(db);
        err = rd_kafka_mock_topic_create(db->mcluster, topic, partitions, rf);
        op_end(db);
        if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                ab_errstr_set(errstr, errstr_size, "create topic %s: %s",
                              topic, rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

/* Every topic of the bus (ab_catalog_topics_init). */
static int create_catalog_topics(devbroker_t *db, char *errstr,
                                 size_t errstr_size) {
        ab_catalog_t *cat;
        ab_catalog_topics_t t;
        size_t i;
        int ret = 0;

        cat = ab_catalog_new(errstr, errstr_size);
        if (!cat) {
                return -1;
        }
        if (ab_catalog_topics_init(&t, cat, db->conf.topic_prefix, errstr,
                                   errstr_size) != AB_OK) {
                ab_catalog_destroy(cat);
                return -1;
        }
        for (i = 0; ret == 0 && i < t.cnt; i++) {
                ret = create_topic(db, t.names[i], db->conf.partitions, errstr,
                                   errstr_size);
        }
        if (ret == 0) {
                ab_info(COMP, "created %zu topics \"%s*\" with %d partitions",
                        t.cnt, db->conf.topic_prefix, db->conf.partitions);
        }
        ab_catalog_topics_clear(&t);
        ab_catalog_destroy(cat);
        return ret;
}

devbroker_t *devbroker_new(const devbroker_conf_t *conf, char *errstr,
                           size_t errstr_size) {
        unsigned char before[FD_SCAN_MAX];
        struct sockaddr_in bound;
        rd_kafka_conf_t *kconf;
        devbroker_t *db;
        char buf[512];

        db = calloc(1, sizeof(*db));
        if (!db) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        db->conf = *conf;
        if (pthread_mutex_init(&db->lock, NULL) != 0 ||
            pthread_cond_init(&db->cond, NULL) != 0) {
                ab_errstr_set(errstr, errstr_size, "lock init");
                free(db);
                return NULL;
        }
        db->sync_init = 1;

        kconf = rd_kafka_conf_new();
        ab_kafka_conf_logging(kconf);
        /* The hosting handle has no bootstrap servers on purpose: keep its
         * configuration warnings out, the mock's errors in. */
        if (ab_kafka_conf_set(kconf, "log_level",
                              conf->log_level >= AB_LOG_DEBUG ? "7" : "3",
                              errstr, errstr_size) != AB_OK ||
            (conf->log_level >= AB_LOG_DEBUG &&
             ab_kafka_conf_set(kconf, "debug", "mock", errstr, errstr_size) !=
                 AB_OK)) {
                rd_kafka_conf_destroy(kconf);
                devbroker_destroy(db);
                return NULL;
        }
        db->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, buf, sizeof(buf));
        if (!db->rk) {
                rd_kafka_conf_destroy(kconf);
                ab_errstr_set(errstr, errstr_size, "%s", buf);
                devbroker_destroy(db);
                return NULL;
        }

        if (devbroker_net_listen(&conf->listen, &bound, errstr, errstr_size) ==
            -1) {
                devbroker_destroy(db);
                return NULL;
        }
        fd_scan(before);
        db->mcluster = rd_kafka_mock_cluster_new(db->rk, conf->brokers);
        if (!devbroker_net_disarm() && db->mcluster) {
                ab_errstr_set(errstr, errstr_size,
                              "the mock cluster did not take the listener");
                devbroker_destroy(db);
                return NULL;
        }
        if (!db->mcluster) {
                ab_errstr_set(errstr, errstr_size,
                              "cannot start the mock cluster");
                devbroker_destroy(db);
                return NULL;
        }
        find_kick_fds(db, before);
        if (db->kick_cnt > 0 &&
            pthread_create(&db->kicker, NULL, kicker_main, db) == 0) {
                db->kicker_started = 1;
        }
        if (create_catalog_topics(db, errstr, errstr_size) == -1) {
                devbroker_destroy(db);
                return NULL;
        }
        return db;
}

const char *devbroker_bootstraps(const devbroker_t *db) {
        return rd_kafka_mock_cluster_bootstraps(db->mcluster);
}

static void set_all(devbroker_t *db, int up) {
        int32_t id;

        op_begin(db);
        for (id = 1; id <= db->conf.brokers; id++) {
                if (up) {
                        rd_kafka_mock_broker_set_up(db->mcluster, id);
                } else {
                        rd_kafka_mock_broker_set_down(db->mcluster, id);
                }
        }
        op_end(db);
}

static int cmd_updown(devbroker_t *db, int up, const char *arg, char *reply,
                      size_t reply_size) {
        rd_kafka_resp_err_t err;
        long id;

        if (!arg || !strcmp(arg, "all")) {
                set_all(db, up);
                ab_warn(COMP, "all brokers %s (control)", up ? "up" : "down");
                ab_errstr_set(reply, reply_size, "OK all %s",
                              up ? "up" : "down");
                return 0;
        }
        if (parse_long(arg, 1, db->conf.brokers, &id) == -1) {
                ab_errstr_set(reply, reply_size, "ERR no broker %s", arg);
                return -1;
        }
        op_begin(db);
        err = up ? rd_kafka_mock_broker_set_up(db->mcluster, (int32_t)id)
                 : rd_kafka_mock_broker_set_down(db->mcluster, (int32_t)id);
        op_end(db);
        if (err) {
                ab_errstr_set(reply, reply_size, "ERR %s",
                              rd_kafka_err2str(err));
                return -1;
        }
        ab_warn(COMP, "broker %ld %s (control)", id, up ? "up" : "down");
        ab_errstr_set(reply, reply_size, "OK %ld %s", id, up ? "up" : "down");
        return 0;
}

static rd_kafka_resp_err_t set_rtt(devbroker_t *db, int32_t id, int ms) {
        rd_kafka_resp_err_t err;

        op_begin(db);
        err = rd_kafka_mock_broker_set_rtt(db->mcluster, id, ms);
        op_end(db);
        return err;
}

static int cmd_errors(devbroker_t *db, char **argv, int argc, char *reply,
                      size_t reply_size) {
        rd_kafka_resp_err_t errs[64];
        int16_t key;
        int i;

        if (argc < 3 || argc - 2 > 64 || parse_api(argv[1], &key) == -1) {
                ab_errstr_set(reply, reply_size,
                              "ERR usage: errors APIKEY ERR [ERR...]");
                return -1;
        }
        for (i = 2; i < argc; i++) {
                if (parse_kerr(argv[i], &errs[i - 2]) == -1) {
                        ab_errstr_set(reply, reply_size,
                                      "ERR unknown error %s", argv[i]);
                        return -1;
                }
        }
        op_begin(db);
        rd_kafka_mock_push_request_errors_array(db->mcluster, key,
                                                (size_t)(argc - 2), errs);
        op_end(db);
        ab_warn(COMP, "next %d %s request(s) will fail (control)", argc - 2,
                argv[1]);
        ab_errstr_set(reply, reply_size, "OK %d error(s) queued", argc - 2);
        return 0;
}

int devbroker_cmd(devbroker_t *db, const char *line, char *reply,
                  size_t reply_size) {
        char buf[LINE_MAX_LEN];
        char *argv[70];
        char *save = NULL;
        char *tok;
        int argc = 0;
        long v;
        long w;

        snprintf(buf, sizeof(buf), "%s", line);
        for (tok = strtok_r(buf, " \t\r\n", &save); tok && argc < 70;
             tok = strtok_r(NULL, " \t\r\n", &save)) {
                argv[argc++] = tok;
        }
        if (argc == 0) {
                ab_errstr_set(reply, reply_size, "ERR empty command");
                return -1;
        }
        if (!strcmp(argv[0], "ping")) {
                ab_errstr_set(reply, reply_size, "OK pong");
                return 0;
        }
        if (!strcmp(argv[0], "help")) {
                ab_errstr_set(reply, reply_size,
                              "OK commands: create TOPIC [PARTITIONS] | "
                              "down [ID|all] | up [ID|all] | rtt ID MS | "
                              "errors APIKEY ERR [ERR...] | ping");
                return 0;
        }
        if (!strcmp(argv[0], "create") && (argc == 2 || argc == 3)) {
                v = db->conf.partitions;
                if (argc == 3 && parse_long(argv[2], 1, 10000, &v) == -1) {
                        ab_errstr_set(reply, reply_size,
                                      "ERR bad partition count %s", argv[2]);
                        return -1;
                }
                if (create_topic(db, argv[1], (int)v, reply + 4,
                                 reply_size > 4 ? reply_size - 4 : 0) == -1) {
                        memcpy(reply, "ERR ", 4);
                        return -1;
                }
                ab_info(COMP, "created topic %s with %ld partitions "
                        "(control)", argv[1], v);
                ab_errstr_set(reply, reply_size, "OK %s %ld", argv[1], v);
                return 0;
        }
        if ((!strcmp(argv[0], "down") || !strcmp(argv[0], "up")) &&
            argc <= 2) {
                return cmd_updown(db, argv[0][0] == 'u',
                                  argc == 2 ? argv[1] : NULL, reply,
                                  reply_size);
        }
        if (!strcmp(argv[0], "rtt") && argc == 3) {
                if (parse_long(argv[1], 1, db->conf.brokers, &v) == -1 ||
                    parse_long(argv[2], 0, 600000, &w) == -1 ||
                    set_rtt(db, (int32_t)v, (int)w)) {
                        ab_errstr_set(reply, reply_size,
                                      "ERR usage: rtt ID MS");
                        return -1;
                }
                ab_errstr_set(reply, reply_size, "OK rtt %ld %ld", v, w);
                return 0;
        }
        if (!strcmp(argv[0], "errors")) {
                return cmd_errors(db, argv, argc, reply, reply_size);
        }
        ab_errstr_set(reply, reply_size, "ERR unknown command (try help)");
        return -1;
}

/* Answers every complete line read so far. */
static void control_lines(devbroker_t *db) {
        char reply[512];
        char *nl;
        size_t n;

        while ((nl = memchr(db->line, '\n', db->line_len))) {
                *nl = '\0';
                n   = (size_t)(nl - db->line) + 1;
                if (db->line_overflow) {
                        snprintf(reply, sizeof(reply), "ERR line too long");
                        db->line_overflow = 0;
                } else {
                        devbroker_cmd(db, db->line, reply, sizeof(reply));
                }
                printf("%s\n", reply);
                fflush(stdout);
                memmove(db->line, db->line + n, db->line_len - n);
                db->line_len -= n;
        }
        if (db->line_len == sizeof(db->line)) {
                db->line_len      = 0;
                db->line_overflow = 1;
        }
}

/* Reads stdin; returns -1 once it is closed. */
static int control_read(devbroker_t *db) {
        ssize_t r;

        r = read(STDIN_FILENO, db->line + db->line_len,
                 sizeof(db->line) - db->line_len);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
                return 0;
        }
        if (r <= 0) {
                ab_debug(COMP, "stdin closed: no more control commands");
                return -1;
        }
        db->line_len += (size_t)r;
        control_lines(db);
        return 0;
}

int devbroker_run(devbroker_t *db, int sigfd) {
        struct signalfd_siginfo si;
        struct pollfd pfd[2];
        ssize_t r;

        pfd[0].fd     = sigfd;
        pfd[0].events = POLLIN;
        pfd[1].fd     = db->conf.control ? STDIN_FILENO : -1;
        pfd[1].events = POLLIN;
        for (;;) {
                if (poll(pfd, 2, -1) == -1) {
                        if (errno == EINTR) {
                                continue;
                        }
                        ab_error(COMP, "poll: %s", strerror(errno));
                        return -1;
                }
                if (pfd[0].revents & POLLIN) {
                        r = read(sigfd, &si, sizeof(si));
                        if (r != (ssize_t)sizeof(si)) {
                                continue;
                        }
                        if (si.ssi_signo == SIGUSR1 ||
                            si.ssi_signo == SIGUSR2) {
                                set_all(db, si.ssi_signo == SIGUSR2);
                                ab_warn(COMP, "all brokers %s (%s)",
                                        si.ssi_signo == SIGUSR2 ? "up"
                                                                : "down",
                                        strsignal((int)si.ssi_signo));
                                continue;
                        }
                        ab_info(COMP, "%s: stopping",
                                strsignal((int)si.ssi_signo));
                        return 0;
                }
                if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                        if (control_read(db) == -1) {
                                pfd[1].fd = -1;
                        }
                }
        }
}

void devbroker_destroy(devbroker_t *db) {
        if (!db) {
                return;
        }
        /* Stopped first: the cluster closes the pipes it kicks. */
        if (db->kicker_started) {
                pthread_mutex_lock(&db->lock);
                db->stop = 1;
                pthread_cond_signal(&db->cond);
                pthread_mutex_unlock(&db->lock);
                pthread_join(db->kicker, NULL);
        }
        if (db->mcluster) {
                ab_info(COMP, "TCP_NODELAY set on %u accepted connection(s), "
                        "refused on %u",
                        devbroker_net_nodelay_count(),
                        devbroker_net_nodelay_failures());
                rd_kafka_mock_cluster_destroy(db->mcluster);
        }
        if (db->rk) {
                rd_kafka_destroy(db->rk);
        }
        if (db->sync_init) {
                pthread_cond_destroy(&db->cond);
                pthread_mutex_destroy(&db->lock);
        }
        free(db);
}
