/* aetherbus - Apache-2.0
 *
 * 0002-admin: aetherbus-admin provisions exactly the catalog's topics
 * (TOPIC_PREFIX + every prefix, + rejected + deadletter), is idempotent,
 * reports what it does not change, and rejects bad usage with exit 2
 * before any I/O. Runs against both brokers; the devbroker (librdkafka
 * 2.0.2's mock cluster) has no CreateTopics and no controller, so there
 * the topics are made through its control channel and the create test
 * checks the clear failure instead. Each test has its own topic prefix.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>

#include "ab_catalog.h"
#include "ab_itest.h"

#define MAX_ARGS   32
#define MAX_TOPICS 64
#define TOPIC_SIZE 256
#define RUN_MS     60000

static ab_itest_broker_t *b;
static char prefix[64];
static char names[MAX_TOPICS][TOPIC_SIZE]; /* what the catalog needs */
static size_t cnt;

/* One aetherbus-admin run: exit status, stdout, stderr. */
typedef struct {
        int status;
        char *out;
        char *err;
} run_t;

/* The broker of this run and the catalog's topics under a fresh prefix;
 * called after ab_itest_require_kind(). */
static void start(void) {
        ab_catalog_t *cat;
        char errstr[256];
        size_t i;

        b = ab_itest_broker_start();
        ab_itest_prefix(prefix, sizeof(prefix));
        cat = ab_catalog_new(errstr, sizeof(errstr));
        cr_assert_not_null(cat, "catalog: %s", errstr);
        cnt = 0;
        for (i = 0; i < ab_catalog_prefix_count(cat); i++) {
                cr_assert_lt(cnt, MAX_TOPICS);
                cr_assert_eq(ab_catalog_topic(prefix,
                                              ab_catalog_prefix_get(cat, i),
                                              names[cnt], TOPIC_SIZE),
                             AB_OK);
                cnt++;
        }
        cr_assert_eq(ab_catalog_topic(prefix, AB_CATALOG_TOPIC_REJECTED,
                                      names[cnt++], TOPIC_SIZE),
                     AB_OK);
        cr_assert_eq(ab_catalog_topic(prefix, AB_CATALOG_TOPIC_DEADLETTER,
                                      names[cnt++], TOPIC_SIZE),
                     AB_OK);
        cr_assert_eq(ab_catalog_topic(prefix,
                                      AB_CATALOG_TOPIC_AUDIT_CHECKPOINTS,
                                      names[cnt++], TOPIC_SIZE),
                     AB_OK);
        ab_catalog_destroy(cat);
}

static void teardown(void) {
        ab_itest_broker_stop(b);
        b = NULL;
}

TestSuite(admin, .fini = teardown);

static char *slurp(const char *path) {
        FILE *fp;
        char *buf;
        long len;

        fp = fopen(path, "rb");
        cr_assert_not_null(fp, "cannot open %s", path);
        fseek(fp, 0, SEEK_END);
        len = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        buf = calloc(1, (size_t)len + 1);
        cr_assert_not_null(buf);
        cr_assert_eq(fread(buf, 1, (size_t)len, fp), (size_t)len);
        fclose(fp);
        return buf;
}

/* Runs aetherbus-admin -b <broker> --topic-prefix <prefix> ARGS... NULL,
 * or exactly ARGS when raw is set. */
static void run(run_t *r, int raw, const char *const *env, ...) {
        const char *args[MAX_ARGS];
        ab_itest_proc_t *p;
        const char *a;
        size_t n = 0;
        va_list ap;

        if (!raw) {
                args[n++] = "-b";
                args[n++] = ab_itest_broker_bootstrap(b);
                args[n++] = "--topic-prefix";
                args[n++] = prefix;
        }
        va_start(ap, env);
        while ((a = va_arg(ap, const char *)) && n < MAX_ARGS - 1) {
                args[n++] = a;
        }
        va_end(ap);
        args[n] = NULL;

        p = ab_itest_proc_start("aetherbus-admin", args, env);
        cr_assert_not_null(p, "cannot spawn aetherbus-admin");
        r->status = ab_itest_proc_wait_exit(p, ab_itest_timeout(RUN_MS));
        if (r->status == -1) {
                ab_itest_proc_dump_log(p);
        }
        r->out = slurp(ab_itest_proc_out_path(p));
        r->err = ab_itest_proc_log(p);
        ab_itest_proc_destroy(p);
        cr_assert_neq(r->status, -1, "aetherbus-admin did not exit in %d ms",
                      ab_itest_timeout(RUN_MS));
}

static void run_clear(run_t *r) {
        free(r->out);
        free(r->err);
        memset(r, 0, sizeof(*r));
}

/* Partition count of every needed topic (0: missing) from metadata, and
 * how many topics of the cluster carry the test's prefix. */
static size_t readback(int *parts) {
        const struct rd_kafka_metadata *md;
        rd_kafka_resp_err_t err;
        size_t with_prefix = 0;
        size_t i;
        int t;

        err = rd_kafka_metadata(ab_itest_broker_client(b), 1, NULL, &md,
                                ab_itest_timeout(10000));
        cr_assert_eq(err, RD_KAFKA_RESP_ERR_NO_ERROR, "%s metadata: %s",
                     ab_itest_broker_kind(b), rd_kafka_err2str(err));
        for (i = 0; i < cnt; i++) {
                parts[i] = 0;
        }
        for (t = 0; t < md->topic_cnt; t++) {
                if (strncmp(md->topics[t].topic, prefix, strlen(prefix)) ||
                    md->topics[t].err ==
                        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                        continue;
                }
                with_prefix++;
                for (i = 0; i < cnt; i++) {
                        if (!strcmp(md->topics[t].topic, names[i])) {
                                parts[i] = md->topics[t].partition_cnt;
                        }
                }
        }
        rd_kafka_metadata_destroy(md);
        return with_prefix;
}

static void assert_partitions(int want, const char *when) {
        int parts[MAX_TOPICS];
        size_t i;

        cr_assert_eq(readback(parts), cnt,
                     "%s: %s should have exactly the %zu catalog topics "
                     "under %s",
                     ab_itest_broker_kind(b), when, cnt, prefix);
        for (i = 0; i < cnt; i++) {
                cr_assert_eq(parts[i], want,
                             "%s: %s: topic %zu %s has %d partitions, want %d",
                             ab_itest_broker_kind(b), when, i, names[i],
                             parts[i], want);
        }
}

/* The catalog's topics with 2 partitions: aetherbus-admin on a real
 * broker, the devbroker's control channel on the mock. */
static void provision(void) {
        run_t r;

        if (ab_itest_broker_is_devbroker(b)) {
                cr_assert_eq(ab_itest_catalog_topics_create(b, prefix, 2), cnt);
                return;
        }
        run(&r, 0, NULL, "topics", "create", "--partitions", "2", NULL);
        cr_assert_eq(r.status, 0, "first create: exit %d\n%s%s", r.status,
                     r.out, r.err);
        run_clear(&r);
}

static void assert_has(const run_t *r, const char *needle) {
        cr_assert_not_null(strstr(r->out, needle),
                           "%s: \"%s\" not in the output:\n%s\nstderr:\n%s",
                           ab_itest_broker_kind(b), needle, r->out, r->err);
}

Test(admin, bad_usage_exits_2_before_any_io) {
        static const struct {
                const char *args[6];
                const char *env;
                const char *says;
        } rows[] = {
            {{"topics", "create", "--partitions", "0"}, NULL, "--partitions"},
            {{"topics", "create", "--partitions", "two"}, NULL, "--partitions"},
            {{"topics", "create", "--replication-factor", "0"}, NULL,
             "--replication-factor"},
            {{"topics", "create", "--config", "retention.ms"}, NULL,
             "key=value"},
            {{"topics", "--partitions", "2"}, NULL, "only apply"},
            {{"topics", "delete"}, NULL, "unknown topics mode"},
            {{"queues"}, NULL, "unknown mode"},
            {{"--no-such-option", "topics"}, NULL, "unknown option"},
            {{"-X", "no.such.property=1", "topics"}, NULL,
             "No such configuration property"},
            {{"-X", "acks", "topics"}, NULL, "PROP=VALUE"},
            {{"--topic-prefix", "bad prefix ", "topics"}, NULL,
             "not a legal Kafka topic name"},
            {{"--timeout-ms", "-5", "topics"}, NULL, "--timeout-ms"},
            {{"topics"}, "RDKAFKA_NO_SUCH_PROPERTY=1", "RDKAFKA_NO_SUCH_PROPERTY"},
            {{NULL}, NULL, "no mode given"},
            {{"reconcile", "--grace", "soon"}, NULL, "--grace"},
            {{"reconcile", "--audit", "127.0.0.1:8080"}, NULL,
             "expected http://host:port"},
            {{"reconcile", "--since", "yesterday"}, NULL, "--since"},
            {{"reconcile", "now"}, NULL, "unexpected argument"},
            {{"topics", "--grace", "1m"}, NULL, "only apply to reconcile"},
        };
        const char *env[2];
        run_t r;
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                env[0] = rows[i].env;
                env[1] = NULL;
                /* port 1: nothing listens, so any I/O would show as exit 3 */
                run(&r, 1, env, "-b", "127.0.0.1:1", "--timeout-ms", "30000",
                    rows[i].args[0], rows[i].args[1], rows[i].args[2],
                    rows[i].args[3], rows[i].args[4], NULL);
                cr_assert_eq(r.status, 2, "row %zu: exit %d, want 2\n%s", i,
                             r.status, r.err);
                cr_assert_not_null(strstr(r.err, rows[i].says),
                                   "row %zu: \"%s\" not in stderr:\n%s", i,
                                   rows[i].says, r.err);
                run_clear(&r);
        }
}

Test(admin, lists_missing_topics_and_exits_1) {
        char line[TOPIC_SIZE + 64];
        run_t r;
        size_t i;

        start();
        run(&r, 0, NULL, "topics", NULL);
        cr_assert_eq(r.status, 1, "%s: exit %d, want 1 (topics missing)\n%s%s",
                     ab_itest_broker_kind(b), r.status, r.out, r.err);
        for (i = 0; i < cnt; i++) {
                assert_has(&r, names[i]);
        }
        snprintf(line, sizeof(line), "%zu topics needed: 0 exist, %zu missing",
                 cnt, cnt);
        assert_has(&r, line);
        run_clear(&r);
}

Test(admin, create_makes_exactly_the_catalog_topics) {
        char line[128];
        run_t r;

        ab_itest_require_kind("kafka",
                              "the devbroker (librdkafka 2.0.2's mock "
                              "cluster) has no CreateTopics and reports no "
                              "controller; "
                              "admin::create_without_controller_fails_clearly "
                              "covers it there");

        start();
        run(&r, 0, NULL, "topics", "create", "--partitions", "2", NULL);
        cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
        snprintf(line, sizeof(line),
                 "created %zu, existing 0, mismatched 0, failed 0", cnt);
        assert_has(&r, line);
        assert_partitions(2, "after topics create --partitions 2");
        run_clear(&r);
}

Test(admin, create_without_controller_fails_clearly) {
        int parts[MAX_TOPICS];
        run_t r;

        ab_itest_require_kind("devbroker",
                              "a real Kafka has a controller; "
                              "admin::create_makes_exactly_the_catalog_topics "
                              "covers creating there");

        start();
        run(&r, 0, NULL, "topics", "create", "--partitions", "2", NULL);
        cr_assert_eq(r.status, 3, "exit %d, want 3\n%s%s", r.status, r.out,
                     r.err);
        cr_assert_not_null(strstr(r.err, "no controller"),
                           "stderr does not say why:\n%s", r.err);
        cr_assert_eq(readback(parts), 0, "nothing may have been created");
        run_clear(&r);
}

Test(admin, second_create_changes_nothing) {
        char line[128];
        run_t r;

        start();
        provision();
        run(&r, 0, NULL, "topics", "create", "--partitions", "2", NULL);
        cr_assert_eq(r.status, 0, "%s: exit %d\n%s%s",
                     ab_itest_broker_kind(b), r.status, r.out, r.err);
        snprintf(line, sizeof(line),
                 "created 0, existing %zu, mismatched 0, failed 0", cnt);
        assert_has(&r, line);
        assert_has(&r, "exists, 2 partitions\n");
        assert_partitions(2, "after a second topics create");
        run_clear(&r);
}

Test(admin, lists_existing_topics_and_exits_0) {
        char line[128];
        run_t r;

        start();
        provision();
        run(&r, 0, NULL, "topics", NULL);
        cr_assert_eq(r.status, 0, "%s: exit %d, want 0\n%s%s",
                     ab_itest_broker_kind(b), r.status, r.out, r.err);
        snprintf(line, sizeof(line), "%zu topics needed: %zu exist, 0 missing",
                 cnt, cnt);
        assert_has(&r, line);
        run_clear(&r);
}

Test(admin, fewer_partitions_than_asked_is_reported_not_changed) {
        char line[128];
        run_t r;

        start();
        provision();
        run(&r, 0, NULL, "topics", "create", "--partitions", "4", NULL);
        cr_assert_eq(r.status, 0, "%s: exit %d\n%s%s",
                     ab_itest_broker_kind(b), r.status, r.out, r.err);
        snprintf(line, sizeof(line),
                 "created 0, existing %zu, mismatched %zu, failed 0", cnt,
                 cnt);
        assert_has(&r, line);
        assert_has(&r, "exists, 2 partitions, mismatch: fewer than the 4 "
                       "asked; not changed");
        assert_partitions(2, "after topics create --partitions 4");
        run_clear(&r);
}

Test(admin, config_difference_is_reported_not_changed) {
        char line[128];
        run_t r;

        ab_itest_require_kind("kafka",
                              "the devbroker (librdkafka 2.0.2's mock "
                              "cluster) has neither CreateTopics nor "
                              "DescribeConfigs");

        start();
        run(&r, 0, NULL, "topics", "create", "--partitions", "2", "--config",
            "retention.ms=3600000", NULL);
        cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
        run_clear(&r);

        run(&r, 0, NULL, "topics", "create", "--partitions", "2", "--config",
            "retention.ms=7200000", NULL);
        cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
        snprintf(line, sizeof(line),
                 "created 0, existing %zu, mismatched %zu, failed 0", cnt,
                 cnt);
        assert_has(&r, line);
        assert_has(&r, "config retention.ms is 3600000, not 7200000");
        run_clear(&r);

        run(&r, 0, NULL, "topics", "create", "--partitions", "2", "--config",
            "retention.ms=3600000", NULL);
        cr_assert_eq(r.status, 0, "exit %d\n%s%s", r.status, r.out, r.err);
        snprintf(line, sizeof(line),
                 "created 0, existing %zu, mismatched 0, failed 0", cnt);
        assert_has(&r, line);
        run_clear(&r);
}
