/* aetherbus - Apache-2.0
 *
 * 0001-kafka: the common Kafka wrappers (ab_producer, ab_consumer)
 * against the broker under test (devbroker or the real Kafka), and the
 * devbroker binary's own promises: the stable address with the catalog's
 * topics, TCP_NODELAY on accepted connections, a clear exit on a taken
 * port, and fault injection. The devbroker suite says so and skips on the
 * real Kafka.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <criterion/criterion.h>

#include "ab_catalog.h"
#include "ab_cloudevents.h"
#include "ab_itest.h"
#include "ab_time.h"
#include "ab_kafka.h"

#define MAXREC 64

static ab_itest_broker_t *broker;
static char prefix[64];
static char topic[128];

/* Envelopes are plain records: the tests fill them directly. */
static char ids[MAXREC][64];
static char subjects[MAXREC][32];

struct deliveries {
        int cnt;
        int ok;
        int seen[MAXREC];
        int64_t offset[MAXREC];
};

static void setup(void) {
        broker = ab_itest_broker_start();
        ab_itest_prefix(prefix, sizeof(prefix));
        snprintf(topic, sizeof(topic), "%scommerce", prefix);
        ab_itest_topic_create(broker, topic, 3);
}

static void teardown(void) {
        ab_itest_broker_stop(broker);
}

static void envelope(ab_envelope_t *env, int i) {
        memset(env, 0, sizeof(*env));
        snprintf(ids[i], sizeof(ids[i]), "00000000-0000-4000-8000-%012d", i);
        snprintf(subjects[i], sizeof(subjects[i]), "order-%d", i);
        env->id             = ids[i];
        env->name           = "OrderCreated";
        env->schema_version = 1;
        env->occurred_at    = "2024-05-01T12:00:00.000Z";
        env->source         = "api";
        env->company_id     = i % 2 ? "acme" : NULL;    /* key: companyId */
        env->subject_id     = i % 3 ? NULL : subjects[i]; /* else id */
        snprintf(env->prefix, sizeof(env->prefix), "commerce");
}

static void on_delivery(const ab_delivery_t *dr, void *opaque) {
        struct deliveries *d = opaque;
        int i                = (int)(intptr_t)dr->msg_opaque;

        d->cnt++;
        if (dr->err == AB_OK) {
                d->ok++;
        }
        if (i >= 0 && i < MAXREC) {
                d->seen[i]++;
                d->offset[i] = dr->offset;
        }
}

static ab_producer_t *producer_new(struct deliveries *d) {
        ab_producer_conf_t pc;
        ab_producer_t *p;
        char errstr[512];

        ab_producer_conf_init(&pc);
        pc.brokers   = ab_itest_broker_bootstrap(broker);
        pc.linger_ms = 0;
        pc.dr_cb     = on_delivery;
        pc.opaque    = d;
        p            = ab_producer_new(&pc, errstr, sizeof(errstr));
        cr_assert(p, "producer: %s", errstr);
        return p;
}

/* Produces envelopes from..to-1 (value "value-<i>") and flushes. */
static void produce_range(ab_producer_t *p, int from, int to) {
        ab_envelope_t env;
        char value[32];
        char errstr[512];
        int i;

        for (i = from; i < to; i++) {
                envelope(&env, i);
                snprintf(value, sizeof(value), "value-%d", i);
                cr_assert_eq(ab_cloudevents_produce(
                                 p, topic, &env, value, strlen(value),
                                 (void *)(intptr_t)i, errstr, sizeof(errstr)),
                             AB_OK, "produce #%d: %s", i, errstr);
        }
        cr_assert_eq(ab_producer_flush(p, ab_itest_timeout(30000)), AB_OK,
                     "flush on %s left outq_len %d",
                     ab_itest_broker_kind(broker), ab_producer_outq_len(p));
}

static ab_consumer_t *group_consumer(const char *group) {
        ab_consumer_conf_t cc;
        ab_consumer_t *c;
        char errstr[512];
        const char *topics[] = {topic};

        ab_consumer_conf_init(&cc);
        cc.brokers            = ab_itest_broker_bootstrap(broker);
        cc.group_id           = group;
        cc.session_timeout_ms = 6000; /* the real broker's minimum */
        c                     = ab_consumer_new(&cc, errstr, sizeof(errstr));
        cr_assert(c, "consumer: %s", errstr);
        cr_assert_eq(ab_consumer_subscribe(c, topics, 1, errstr,
                                           sizeof(errstr)),
                     AB_OK, "subscribe: %s", errstr);
        return c;
}

/* Polls c until want records or timeout; stores each when store is set. */
static size_t consume_n(ab_consumer_t *c, size_t want, int timeout_ms,
                        ab_itest_record_t *recs, int store) {
        int64_t dl = ab_itest_deadline(timeout_ms);
        rd_kafka_message_t *msg;
        char errstr[512];
        size_t n = 0;

        while (n < want && ab_itest_now_ms() < dl) {
                if (ab_consumer_poll(c, 100, &msg, errstr, sizeof(errstr)) !=
                        AB_OK ||
                    !msg) {
                        continue;
                }
                ab_itest_record_from_msg(&recs[n], msg);
                if (store) {
                        cr_assert_eq(ab_consumer_store(c, msg, errstr,
                                                       sizeof(errstr)),
                                     AB_OK, "store: %s", errstr);
                }
                rd_kafka_message_destroy(msg);
                n++;
        }
        return n;
}

/* The record index encoded in "value-<i>", or -1. */
static int value_index(const ab_itest_record_t *rec) {
        int i;

        if (!rec->value || sscanf(rec->value, "value-%d", &i) != 1) {
                return -1;
        }
        return i;
}

TestSuite(kafka, .init = setup, .fini = teardown, .timeout = 240);

Test(kafka, producer_reports_the_delivery_of_every_record) {
        struct deliveries d;
        ab_producer_t *p;
        int i;

        memset(&d, 0, sizeof(d));
        p = producer_new(&d);
        produce_range(p, 0, 20);
        cr_assert_eq(d.cnt, 20, "%d delivery reports for 20 records", d.cnt);
        cr_assert_eq(d.ok, 20, "%d of 20 delivered", d.ok);
        for (i = 0; i < 20; i++) {
                cr_assert_eq(d.seen[i], 1, "record #%d reported %d times", i,
                             d.seen[i]);
                cr_assert(d.offset[i] >= 0, "record #%d has offset %lld", i,
                          (long long)d.offset[i]);
        }
        cr_assert_eq(ab_producer_outq_len(p), 0);
        ab_producer_destroy(p);
        cr_assert_eq(ab_itest_topic_count(broker, topic), 20,
                     "high watermarks of %s on %s", topic,
                     ab_itest_broker_kind(broker));
}

/* An hour back, so the produce time cannot pass for it. */
Test(kafka, envelope_record_timestamp_is_received_at) {
        ab_itest_record_t *recs = NULL;
        struct deliveries d;
        ab_envelope_t env;
        ab_producer_t *p;
        char errstr[512];
        int64_t base = ab_time_now_ms() - 3600 * 1000;
        size_t n, k;
        int i;

        memset(&d, 0, sizeof(d));
        p = producer_new(&d);
        for (i = 0; i < 5; i++) {
                envelope(&env, i);
                env.received_at_ms = base + i;
                cr_assert_eq(ab_cloudevents_produce(p, topic, &env, ids[i],
                                                    strlen(ids[i]), NULL,
                                                    errstr, sizeof(errstr)),
                             AB_OK, "produce #%d: %s", i, errstr);
        }
        cr_assert_eq(ab_producer_flush(p, ab_itest_timeout(30000)), AB_OK);
        ab_producer_destroy(p);
        n = ab_itest_consume(broker, topic, 5, ab_itest_timeout(30000), &recs);
        cr_assert_eq(n, 5, "%zu of 5 records read back", n);
        for (k = 0; k < n; k++) {
                for (i = 0; i < 5 && strcmp(recs[k].value, ids[i]); i++) {
                }
                cr_assert_lt(i, 5, "record %zu: unknown value", k);
                cr_assert_eq(recs[k].timestamp, base + i,
                             "record %zu: timestamp %lld, receivedAt %lld", k,
                             (long long)recs[k].timestamp,
                             (long long)(base + i));
        }
        ab_itest_records_free(recs, n);
}

Test(kafka, group_consumer_reads_key_value_and_cloudevents_headers) {
        ab_itest_record_t recs[MAXREC];
        struct deliveries d;
        ab_envelope_t env;
        ab_producer_t *p;
        ab_consumer_t *c;
        char group[96];
        size_t n;
        size_t i;
        int seen[MAXREC];
        int k;

        memset(&d, 0, sizeof(d));
        memset(seen, 0, sizeof(seen));
        p = producer_new(&d);
        produce_range(p, 0, 12);
        ab_producer_destroy(p);

        snprintf(group, sizeof(group), "%sreaders", prefix);
        c = group_consumer(group);
        n = consume_n(c, 12, 60000, recs, 0);
        ab_consumer_destroy(c);
        cr_assert_eq(n, 12, "read %zu of 12 records from %s on %s", n, topic,
                     ab_itest_broker_kind(broker));
        for (i = 0; i < n; i++) {
                k = value_index(&recs[i]);
                cr_assert(k >= 0 && k < 12, "record %zu: value %s", i,
                          recs[i].value);
                seen[k]++;
                envelope(&env, k);
                cr_assert_str_eq(recs[i].key,
                                 env.company_id ? env.company_id : env.id,
                                 "record #%d: key", k);
                cr_assert_str_eq(ab_itest_record_header(&recs[i],
                                                        "ce_specversion"),
                                 "1.0", "record #%d", k);
                cr_assert_str_eq(ab_itest_record_header(&recs[i], "ce_id"),
                                 env.id, "record #%d", k);
                cr_assert_str_eq(ab_itest_record_header(&recs[i], "ce_type"),
                                 "OrderCreated", "record #%d", k);
                cr_assert_str_eq(ab_itest_record_header(&recs[i],
                                                        "ce_source"),
                                 "api", "record #%d", k);
                cr_assert_str_eq(ab_itest_record_header(&recs[i], "ce_time"),
                                 env.occurred_at, "record #%d", k);
                cr_assert_str_eq(ab_itest_record_header(&recs[i],
                                                        "content-type"),
                                 "application/avro", "record #%d", k);
                if (env.subject_id) {
                        cr_assert_str_eq(ab_itest_record_header(&recs[i],
                                                                "ce_subject"),
                                         env.subject_id, "record #%d", k);
                } else {
                        cr_assert_null(ab_itest_record_header(&recs[i],
                                                              "ce_subject"),
                                       "record #%d has no subjectId", k);
                }
                cr_assert(recs[i].timestamp > 0, "record #%d: timestamp", k);
                ab_itest_record_clear(&recs[i]);
        }
        for (k = 0; k < 12; k++) {
                cr_assert_eq(seen[k], 1, "record #%d read %d times", k,
                             seen[k]);
        }
}

/* Sum of the group's committed offsets on topic, read through c. */
static int64_t committed_sum(ab_consumer_t *c) {
        rd_kafka_topic_partition_list_t *parts;
        int64_t sum = 0;
        int i;

        parts = rd_kafka_topic_partition_list_new(3);
        for (i = 0; i < 3; i++) {
                rd_kafka_topic_partition_list_add(parts, topic, i);
        }
        cr_assert_eq(rd_kafka_committed(ab_consumer_handle(c), parts,
                                        ab_itest_timeout(10000)),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
        for (i = 0; i < parts->cnt; i++) {
                if (parts->elems[i].offset > 0) {
                        sum += parts->elems[i].offset;
                }
        }
        rd_kafka_topic_partition_list_destroy(parts);
        return sum;
}

Test(kafka, second_group_member_resumes_after_committed_offset) {
        ab_itest_record_t recs[MAXREC];
        struct deliveries d;
        ab_producer_t *p;
        ab_consumer_t *c;
        char errstr[512];
        char group[96];
        size_t n;
        size_t extra;
        size_t i;
        int k;

        memset(&d, 0, sizeof(d));
        p = producer_new(&d);
        produce_range(p, 0, 10);

        snprintf(group, sizeof(group), "%sresume", prefix);
        c = group_consumer(group);
        n = consume_n(c, 10, 60000, recs, 1);
        cr_assert_eq(n, 10, "first member read %zu of 10", n);
        for (i = 0; i < n; i++) {
                ab_itest_record_clear(&recs[i]);
        }
        cr_assert_eq(ab_consumer_commit(c, 0, errstr, sizeof(errstr)), AB_OK,
                     "commit: %s", errstr);
        cr_assert_eq(committed_sum(c), 10, "committed offsets");
        ab_consumer_destroy(c);

        produce_range(p, 10, 15);
        ab_producer_destroy(p);

        c = group_consumer(group);
        n = consume_n(c, 5, 60000, recs, 1);
        cr_assert_eq(n, 5, "second member read %zu of the 5 new records", n);
        /* Anything re-read would follow: give it a bounded second. */
        extra = consume_n(c, 1, 1000, recs + n, 0);
        ab_consumer_destroy(c);
        for (i = 0; i < n + extra; i++) {
                k = value_index(&recs[i]);
                cr_assert(k >= 10 && k < 15,
                          "second member re-read record #%d (offset %lld "
                          "partition %d)",
                          k, (long long)recs[i].offset, recs[i].partition);
                ab_itest_record_clear(&recs[i]);
        }
        cr_assert_eq(extra, 0, "second member read more than the new records");
}

Test(kafka, readiness_names_the_missing_topic) {
        struct deliveries d;
        ab_producer_t *p;
        char errstr[512];
        char missing[160];
        const char *topics[2];

        memset(&d, 0, sizeof(d));
        p = producer_new(&d);
        snprintf(missing, sizeof(missing), "%snosuchtopic", prefix);
        topics[0] = topic;
        topics[1] = missing;
        cr_assert_eq(ab_producer_ready(p, topics, 1, ab_itest_timeout(10000),
                                       errstr, sizeof(errstr)),
                     AB_OK, "ready with %s: %s", topic, errstr);
        cr_assert_eq(ab_producer_ready(p, topics, 2, ab_itest_timeout(10000),
                                       errstr, sizeof(errstr)),
                     AB_ERR_NOT_FOUND);
        cr_assert(strstr(errstr, missing), "errstr \"%s\" names %s", errstr,
                  missing);
        ab_producer_destroy(p);
}

Test(kafka, paused_consumer_reads_nothing_until_resumed) {
        ab_itest_record_t recs[MAXREC];
        ab_consumer_conf_t cc;
        struct deliveries d;
        ab_producer_t *p;
        ab_consumer_t *c;
        char errstr[512];
        const char *topics[] = {topic};
        size_t n;
        size_t i;

        ab_consumer_conf_init(&cc);
        cc.brokers = ab_itest_broker_bootstrap(broker);
        c          = ab_consumer_new(&cc, errstr, sizeof(errstr));
        cr_assert(c, "consumer: %s", errstr);
        cr_assert_eq(ab_consumer_assign_all(c, topics, 1,
                                            RD_KAFKA_OFFSET_BEGINNING,
                                            ab_itest_timeout(10000), errstr,
                                            sizeof(errstr)),
                     AB_OK, "assign: %s", errstr);
        cr_assert_eq(ab_consumer_assignment_count(c), 3);
        cr_assert_eq(ab_consumer_pause(c, errstr, sizeof(errstr)), AB_OK,
                     "pause: %s", errstr);

        memset(&d, 0, sizeof(d));
        p = producer_new(&d);
        produce_range(p, 0, 3);
        ab_producer_destroy(p);

        n = consume_n(c, 1, 1500, recs, 0);
        cr_assert_eq(n, 0, "a paused consumer read a record");
        cr_assert_eq(ab_consumer_resume(c, errstr, sizeof(errstr)), AB_OK,
                     "resume: %s", errstr);
        n = consume_n(c, 3, 30000, recs, 0);
        ab_consumer_destroy(c);
        cr_assert_eq(n, 3, "read %zu of 3 after resume", n);
        for (i = 0; i < n; i++) {
                ab_itest_record_clear(&recs[i]);
        }
}

/* ------------------------------------------------------------------ */
/* The devbroker binary                                                */
/* ------------------------------------------------------------------ */

#define DEVBROKER_ONLY()                                                       \
        ab_itest_require_kind("devbroker",                                     \
                              "it checks the aetherbus-devbroker binary")

TestSuite(devbroker, .timeout = 120);

/* Runs cmd, returns its stdout (free it) and exit status. */
static char *run(const char *cmd, int *statusp) {
        char *out = NULL;
        size_t size = 0;
        FILE *fp;
        FILE *mem;
        char buf[4096];
        size_t r;

        fp = popen(cmd, "r");
        cr_assert(fp, "popen %s: %s", cmd, strerror(errno));
        mem = open_memstream(&out, &size);
        while ((r = fread(buf, 1, sizeof(buf), fp)) > 0) {
                fwrite(buf, 1, r, mem);
        }
        fclose(mem);
        *statusp = pclose(fp);
        return out;
}

Test(devbroker, serves_catalog_topics_at_the_requested_address) {
        ab_itest_broker_t *b;
        ab_catalog_t *cat;
        char addr[64];
        char cmd[256];
        char want[512];
        char errstr[512];
        const char *args[3];
        const char *boot;
        char *out;
        size_t i;
        int status;

        DEVBROKER_ONLY();
        snprintf(addr, sizeof(addr), "127.0.0.1:%d",
                 ab_itest_free_port());
        args[0] = "--listen";
        args[1] = addr;
        args[2] = NULL;
        b       = ab_itest_devbroker_start(args);
        boot    = ab_itest_broker_bootstrap(b);
        cr_assert_str_eq(boot, addr, "BROKERS=%s for --listen %s", boot,
                         addr);

        snprintf(cmd, sizeof(cmd), "kcat -b %s -L -m 10 2>&1", addr);
        out = run(cmd, &status);
        cr_assert_eq(status, 0, "%s failed:\n%s", cmd, out);
        snprintf(want, sizeof(want), "broker 1 at %s", addr);
        cr_assert(strstr(out, want), "metadata advertises no %s:\n%s", want,
                  out);

        cat = ab_catalog_new(errstr, sizeof(errstr));
        cr_assert(cat, "catalog: %s", errstr);
        for (i = 0; i < ab_catalog_prefix_count(cat) + 2; i++) {
                snprintf(want, sizeof(want),
                         "topic \"events.%s\" with 3 partitions",
                         i < ab_catalog_prefix_count(cat)
                             ? ab_catalog_prefix_get(cat, i)
                         : i == ab_catalog_prefix_count(cat)
                             ? AB_CATALOG_TOPIC_REJECTED
                             : AB_CATALOG_TOPIC_DEADLETTER);
                cr_assert(strstr(out, want), "kcat -L lacks %s", want);
        }
        cr_assert(strstr(out, "topic \"events.commerce\""));
        ab_catalog_destroy(cat);
        free(out);
        cr_assert_eq(ab_itest_broker_stop(b), 0,
                     "devbroker exit status after SIGTERM");
}

Test(devbroker, kcat_round_trips_a_record) {
        ab_itest_broker_t *b;
        char cmd[512];
        char *out;
        int status;

        DEVBROKER_ONLY();
        b = ab_itest_devbroker_start(NULL);
        snprintf(cmd, sizeof(cmd),
                 "echo hello | kcat -b %s -P -t events.commerce -k k1 2>&1",
                 ab_itest_broker_bootstrap(b));
        out = run(cmd, &status);
        cr_assert_eq(status, 0, "%s:\n%s", cmd, out);
        free(out);
        snprintf(cmd, sizeof(cmd),
                 "kcat -b %s -C -t events.commerce -o beginning -c 1 -e "
                 "-f '%%k=%%s\\n' 2>/dev/null",
                 ab_itest_broker_bootstrap(b));
        out = run(cmd, &status);
        cr_assert_eq(status, 0, "%s", cmd);
        cr_assert_str_eq(out, "k1=hello\n");
        free(out);
        ab_itest_broker_stop(b);
}

/* The TCP_NODELAY of the devbroker's socket whose peer port is peer, read
 * through a duplicate of its descriptor (pidfd_getfd); -1 if not found. */
static int server_nodelay(pid_t pid, int peer) {
        struct sockaddr_in sin;
        struct dirent *de;
        socklen_t len;
        char path[320];
        char link[64];
        DIR *dir;
        int pidfd;
        int dup;
        int on;
        int found = -1;
        ssize_t r;

        pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd == -1) {
                cr_skip_test("pidfd_open: %s: cannot look into the "
                             "devbroker's sockets",
                             strerror(errno));
        }
        snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
        dir = opendir(path);
        cr_assert(dir, "%s: %s", path, strerror(errno));
        while (found == -1 && (de = readdir(dir))) {
                snprintf(path, sizeof(path), "/proc/%d/fd/%s", (int)pid,
                         de->d_name);
                r = readlink(path, link, sizeof(link) - 1);
                if (r <= 0 || strncmp(link, "socket:", 7) != 0) {
                        continue;
                }
                dup = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(de->d_name),
                                   0);
                if (dup == -1) {
                        closedir(dir);
                        close(pidfd);
                        cr_skip_test("pidfd_getfd: %s: cannot look into the "
                                     "devbroker's sockets",
                                     strerror(errno));
                }
                len = sizeof(sin);
                if (getpeername(dup, (struct sockaddr *)&sin, &len) == 0 &&
                    sin.sin_family == AF_INET && ntohs(sin.sin_port) == peer) {
                        len = sizeof(on);
                        cr_assert_eq(getsockopt(dup, IPPROTO_TCP, TCP_NODELAY,
                                                &on, &len),
                                     0);
                        found = on != 0;
                }
                close(dup);
        }
        closedir(dir);
        close(pidfd);
        return found;
}

Test(devbroker, accepted_connections_have_tcp_nodelay) {
        struct sockaddr_in sin;
        ab_itest_broker_t *b;
        socklen_t len = sizeof(sin);
        int64_t dl;
        int nodelay;
        int on;
        int s;

        DEVBROKER_ONLY();
        b = ab_itest_devbroker_start(NULL);
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port   = htons((uint16_t)atoi(
            strchr(ab_itest_broker_bootstrap(b), ':') + 1));
        inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
        s = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert(connect(s, (struct sockaddr *)&sin, sizeof(sin)) == 0,
                  "connect: %s", strerror(errno));
        cr_assert_eq(getsockname(s, (struct sockaddr *)&sin, &len), 0);

        /* The probe tells the two apart: a fresh client socket has Nagle. */
        len = sizeof(on);
        cr_assert_eq(getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
        cr_assert_eq(on, 0);

        dl = ab_itest_deadline(10000);
        while ((nodelay = server_nodelay(ab_itest_broker_pid(b),
                                         ntohs(sin.sin_port))) == -1) {
                cr_assert(ab_itest_tick(dl),
                          "the devbroker never accepted our connection");
        }
        cr_assert_eq(nodelay, 1,
                     "the devbroker's accepted socket lacks TCP_NODELAY");
        close(s);
        ab_itest_broker_stop(b);
}

Test(devbroker, exits_1_naming_a_taken_port) {
        struct sockaddr_in sin;
        ab_itest_proc_t *p;
        socklen_t len = sizeof(sin);
        char addr[64];
        const char *args[3];
        char *log;
        int status;
        int s;

        DEVBROKER_ONLY();
        memset(&sin, 0, sizeof(sin));
        sin.sin_family      = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        s                   = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert(bind(s, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
                  listen(s, 1) == 0 &&
                  getsockname(s, (struct sockaddr *)&sin, &len) == 0);
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sin.sin_port));
        args[0] = "--listen";
        args[1] = addr;
        args[2] = NULL;
        p       = ab_itest_proc_start("aetherbus-devbroker", args, NULL);
        cr_assert(p);
        status = ab_itest_proc_wait_exit(p, 10000);
        log    = ab_itest_proc_log(p);
        cr_assert_eq(status, 1, "exit status %d, log:\n%s", status, log);
        cr_assert(strstr(log, addr) && strstr(log, "Address already in use"),
                  "log does not name the taken port:\n%s", log);
        free(log);
        ab_itest_proc_destroy(p);
        close(s);
}

static void down_up(int use_signals) {
        ab_producer_conf_t pc;
        ab_itest_broker_t *b;
        ab_producer_t *p;
        char errstr[512];
        char reply[256];
        int64_t dl;

        b = ab_itest_devbroker_start(NULL);
        ab_producer_conf_init(&pc);
        pc.brokers = ab_itest_broker_bootstrap(b);
        p          = ab_producer_new(&pc, errstr, sizeof(errstr));
        cr_assert(p, "producer: %s", errstr);
        cr_assert_eq(ab_producer_ready(p, NULL, 0, ab_itest_timeout(10000),
                                       errstr, sizeof(errstr)),
                     AB_OK, "ready: %s", errstr);

        if (use_signals) {
                cr_assert_eq(kill(ab_itest_broker_pid(b), SIGUSR1), 0);
        } else {
                cr_assert_eq(ab_itest_broker_control(b, "down", reply,
                                                     sizeof(reply)),
                             0, "down: %s", reply);
        }
        /* Signals act asynchronously: poll until readiness fails. */
        dl = ab_itest_deadline(10000);
        while (ab_producer_ready(p, NULL, 0, 500, errstr, sizeof(errstr)) ==
               AB_OK) {
                cr_assert(ab_itest_tick(dl), "still ready with brokers down");
        }
        /* "not reachable" once librdkafka has reported every broker down
         * (served by polling); until then a timeout reads "slow". */
        while (ab_producer_ready(p, NULL, 0, 500, errstr, sizeof(errstr)) !=
               AB_ERR_UNAVAILABLE) {
                ab_producer_poll(p, 100);
                cr_assert(ab_itest_tick(dl), "never 'not reachable': %s",
                          errstr);
        }
        cr_assert(strstr(errstr, "not reachable"), "%s", errstr);

        if (use_signals) {
                cr_assert_eq(kill(ab_itest_broker_pid(b), SIGUSR2), 0);
        } else {
                cr_assert_eq(ab_itest_broker_control(b, "up", reply,
                                                     sizeof(reply)),
                             0, "up: %s", reply);
        }
        /* librdkafka reconnects with a backoff of up to 10 s. */
        cr_assert_eq(ab_producer_ready(p, NULL, 0, ab_itest_timeout(20000),
                                       errstr, sizeof(errstr)),
                     AB_OK, "not ready after up: %s", errstr);
        ab_producer_destroy(p);
        ab_itest_broker_stop(b);
}

Test(devbroker, control_down_fails_readiness_until_up) {
        DEVBROKER_ONLY();
        down_up(0);
}

Test(devbroker, sigusr1_takes_brokers_down_and_sigusr2_brings_them_back) {
        DEVBROKER_ONLY();
        down_up(1);
}
