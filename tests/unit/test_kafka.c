/* aetherbus - Apache-2.0
 *
 * Unit tests of ab_kafka without a broker: the RDKAFKA_ passthrough and
 * its errors, the settings the wrappers force, error mapping, and the producer's local behaviour (backpressure, the
 * flush bound, readiness and destroy) against an address nobody serves.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "ab_kafka.h"
#include "ab_log.h"

/* Nothing listens there: connections are refused at once. */
#define NOBODY "127.0.0.1:1"

static int null_fd = -1;

static void quiet(void) {
        null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        ab_log_set_fd(null_fd);
}

static void loud(void) {
        ab_log_set_fd(-1);
        if (null_fd != -1) {
                close(null_fd);
        }
}

TestSuite(kafka_conf, .init = quiet, .fini = loud);
TestSuite(kafka_producer, .init = quiet, .fini = loud, .timeout = 60);
TestSuite(kafka_consumer, .init = quiet, .fini = loud, .timeout = 60);

Test(kafka_conf, env2prop_maps_rdkafka_variables_to_properties) {
        static const struct {
                const char *name;
                ab_err_t err;
                const char *prop;
        } rows[] = {
            {"RDKAFKA_SASL_MECHANISMS", AB_OK, "sasl.mechanisms"},
            {"RDKAFKA_BOOTSTRAP_SERVERS=a:1,b:2", AB_OK, "bootstrap.servers"},
            {"RDKAFKA_security_protocol", AB_OK, "security.protocol"},
            {"RDKAFKA_LINGER_MS=5", AB_OK, "linger.ms"},
            {"RDKAFKA_SSL_CA_LOCATION=/etc/ssl/ca.pem", AB_OK,
             "ssl.ca.location"},
            {"RDKAFKA_", AB_ERR_INVALID, ""},
            {"RDKAFKA_=x", AB_ERR_INVALID, ""},
            {"RDKAFKA__X", AB_ERR_INVALID, ""},
            {"RDKAFKA_X_", AB_ERR_INVALID, ""},
            {"KAFKA_BROKERS", AB_ERR_INVALID, ""},
            {"rdkafka_acks", AB_ERR_INVALID, ""},
        };
        char prop[64];
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                prop[0] = '\0';
                cr_assert_eq(ab_kafka_env2prop(rows[i].name, prop,
                                               sizeof(prop)),
                             rows[i].err, "row %zu (%s)", i, rows[i].name);
                if (rows[i].err == AB_OK) {
                        cr_assert_str_eq(prop, rows[i].prop, "row %zu (%s)",
                                         i, rows[i].name);
                }
        }
}

Test(kafka_conf, env2prop_refuses_a_property_that_does_not_fit) {
        char prop[8];

        cr_assert_eq(ab_kafka_env2prop("RDKAFKA_SASL_MECHANISMS", prop,
                                       sizeof(prop)),
                     AB_ERR_INVALID);
}

Test(kafka_conf, passthrough_reaches_librdkafka_and_ignores_other_variables) {
        char *const envp[] = {"PATH=/bin", "RDKAFKA_CLIENT_ID=ab-test",
                              "KAFKA_BROKERS=x:1", NULL};
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[256];
        char val[64];
        size_t len = sizeof(val);

        cr_assert_eq(ab_kafka_conf_env(conf, envp, errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert_eq(rd_kafka_conf_get(conf, "client.id", val, &len),
                     RD_KAFKA_CONF_OK);
        cr_assert_str_eq(val, "ab-test");
        rd_kafka_conf_destroy(conf);
}

Test(kafka_conf, unknown_property_is_an_error_naming_it) {
        char *const envp[] = {"RDKAFKA_NO_SUCH_THING=1", NULL};
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[256];

        cr_assert_eq(ab_kafka_conf_env(conf, envp, errstr, sizeof(errstr)),
                     AB_ERR_UNKNOWN);
        cr_assert(strstr(errstr, "RDKAFKA_NO_SUCH_THING"), "%s", errstr);
        cr_assert(strstr(errstr, "no.such.thing"), "%s", errstr);
        rd_kafka_conf_destroy(conf);
}

Test(kafka_conf, invalid_value_is_an_error_naming_the_property) {
        char *const envp[] = {"RDKAFKA_LINGER_MS=soon", NULL};
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char errstr[256];

        cr_assert_eq(ab_kafka_conf_env(conf, envp, errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert(strstr(errstr, "linger.ms"), "%s", errstr);
        rd_kafka_conf_destroy(conf);
}

Test(kafka_conf, conf_new_fails_on_a_rejected_environment_property) {
        char errstr[256];

        setenv("RDKAFKA_SASL_MECHANISMZ", "PLAIN", 1);
        cr_assert_null(ab_kafka_conf_new(NOBODY, NULL, errstr,
                                         sizeof(errstr)));
        cr_assert(strstr(errstr, "sasl.mechanismz"), "%s", errstr);
}

Test(kafka_conf, environment_overrides_code_settings) {
        static const char *const props[] = {"client.id", "from-code", NULL};
        rd_kafka_conf_t *conf;
        char errstr[256];
        char val[64];
        size_t len = sizeof(val);

        setenv("RDKAFKA_CLIENT_ID", "from-env", 1);
        conf = ab_kafka_conf_new(NOBODY, props, errstr, sizeof(errstr));
        cr_assert(conf, "%s", errstr);
        rd_kafka_conf_get(conf, "client.id", val, &len);
        cr_assert_str_eq(val, "from-env");
        rd_kafka_conf_destroy(conf);
}

Test(kafka_conf, producer_keeps_idempotence_whatever_the_environment) {
        ab_producer_conf_t pc;
        ab_producer_t *p;
        char errstr[256];
        char val[64];
        size_t len = sizeof(val);

        setenv("RDKAFKA_ENABLE_IDEMPOTENCE", "false", 1);
        ab_producer_conf_init(&pc);
        pc.brokers = NOBODY;
        p          = ab_producer_new(&pc, errstr, sizeof(errstr));
        cr_assert(p, "%s", errstr);
        rd_kafka_conf_get(rd_kafka_conf(ab_producer_handle(p)),
                          "enable.idempotence", val, &len);
        cr_assert_str_eq(val, "true");
        ab_producer_destroy(p);
}

Test(kafka_conf, producer_props_that_librdkafka_rejects_fail_creation) {
        static const char *const props[] = {"queue.buffering.max.ms", "-5",
                                            NULL};
        ab_producer_conf_t pc;
        char errstr[256];

        ab_producer_conf_init(&pc);
        pc.brokers = NOBODY;
        pc.props   = props;
        cr_assert_null(ab_producer_new(&pc, errstr, sizeof(errstr)));
        cr_assert(strstr(errstr, "queue.buffering.max.ms"), "%s", errstr);
}

Test(kafka_conf, err2ab_maps_backpressure_and_timeouts) {
        static const struct {
                rd_kafka_resp_err_t kerr;
                ab_err_t err;
        } rows[] = {
            {RD_KAFKA_RESP_ERR_NO_ERROR, AB_OK},
            {RD_KAFKA_RESP_ERR__QUEUE_FULL, AB_ERR_UNAVAILABLE},
            {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, AB_ERR_TIMEOUT},
            {RD_KAFKA_RESP_ERR__TIMED_OUT, AB_ERR_TIMEOUT},
            {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, AB_ERR_TOO_LARGE},
            {RD_KAFKA_RESP_ERR__TRANSPORT, AB_ERR_KAFKA},
            {RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, AB_ERR_KAFKA},
        };
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                cr_assert_eq(ab_kafka_err2ab(rows[i].kerr), rows[i].err,
                             "row %zu (%s)", i,
                             rd_kafka_err2name(rows[i].kerr));
        }
}

struct drs {
        int cnt;
        int failed;
};

static void count_dr(const ab_delivery_t *dr, void *opaque) {
        struct drs *d = opaque;

        d->cnt++;
        if (dr->err != AB_OK) {
                d->failed++;
        }
}

static ab_producer_t *unreachable_producer(struct drs *d, int queue_max) {
        ab_producer_conf_t pc;
        ab_producer_t *p;
        char errstr[256];

        ab_producer_conf_init(&pc);
        pc.brokers            = NOBODY;
        pc.queue_max_messages = queue_max;
        pc.dr_cb              = count_dr;
        pc.opaque             = d;
        p                     = ab_producer_new(&pc, errstr, sizeof(errstr));
        cr_assert(p, "%s", errstr);
        return p;
}

Test(kafka_producer, full_local_queue_is_unavailable_at_once) {
        ab_producer_stats_t st;
        struct drs d = {0, 0};
        ab_producer_t *p;
        char errstr[256];
        int i;

        p = unreachable_producer(&d, 5);
        for (i = 0; i < 5; i++) {
                cr_assert_eq(ab_producer_produce(p, "events.commerce", "k", 1,
                                                 "v", 1, NULL, 0, NULL, errstr,
                                                 sizeof(errstr)),
                             AB_OK, "record %d: %s", i, errstr);
        }
        cr_assert_eq(ab_producer_produce(p, "events.commerce", "k", 1, "v", 1,
                                         NULL, 0, NULL, errstr, sizeof(errstr)),
                     AB_ERR_UNAVAILABLE);
        cr_assert(strstr(errstr, "queue full"), "%s", errstr);
        ab_producer_stats(p, &st);
        cr_assert_eq(st.produced, 5);
        cr_assert_eq(st.queue_full, 1);
        cr_assert_geq(st.outq_len, 5); /* + unpolled error events */
        ab_producer_destroy(p);
}

Test(kafka_producer, produce_error_leaves_the_headers_with_the_caller) {
        struct drs d = {0, 0};
        rd_kafka_headers_t *hdrs;
        ab_producer_t *p;
        char errstr[256];

        p = unreachable_producer(&d, 1);
        cr_assert_eq(ab_producer_produce(p, "events.commerce", NULL, 0, "v", 1,
                                         NULL, 0, NULL, errstr, sizeof(errstr)),
                     AB_OK);
        hdrs = rd_kafka_headers_new(1);
        rd_kafka_header_add(hdrs, "a", -1, "b", -1);
        cr_assert_eq(ab_producer_produce(p, "events.commerce", NULL, 0, "v", 1,
                                         hdrs, 0, NULL, errstr, sizeof(errstr)),
                     AB_ERR_UNAVAILABLE);
        rd_kafka_headers_destroy(hdrs); /* ours again: no double free */
        ab_producer_destroy(p);
}

Test(kafka_producer, destroy_reports_every_queued_record_as_failed) {
        struct drs d = {0, 0};
        ab_producer_t *p;
        char errstr[256];
        int i;

        p = unreachable_producer(&d, 0);
        for (i = 0; i < 3; i++) {
                cr_assert_eq(ab_producer_produce(p, "events.commerce", NULL, 0,
                                                 "v", 1, NULL, 0, NULL, errstr,
                                                 sizeof(errstr)),
                             AB_OK);
        }
        ab_producer_destroy(p);
        cr_assert_eq(d.cnt, 3, "%d delivery reports", d.cnt);
        cr_assert_eq(d.failed, 3);
}

Test(kafka_producer, flush_gives_up_at_its_bound_with_records_left) {
        struct drs d = {0, 0};
        struct timespec t0;
        struct timespec t1;
        ab_producer_t *p;
        char errstr[256];
        long ms;

        p = unreachable_producer(&d, 0);
        cr_assert_eq(ab_producer_produce(p, "events.commerce", NULL, 0, "v", 1,
                                         NULL, 0, NULL, errstr, sizeof(errstr)),
                     AB_OK);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cr_assert_eq(ab_producer_flush(p, 200), AB_ERR_TIMEOUT);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ms = (t1.tv_sec - t0.tv_sec) * 1000 +
             (t1.tv_nsec - t0.tv_nsec) / 1000000;
        cr_assert(ms < 10000, "flush(200) returned after %ld ms", ms);
        cr_assert_geq(ab_producer_outq_len(p), 1);
        ab_producer_destroy(p);
}

Test(kafka_producer, readiness_fails_when_no_broker_answers) {
        struct drs d = {0, 0};
        ab_producer_t *p;
        char errstr[256];

        ab_err_t err;
        int i;

        p = unreachable_producer(&d, 0);
        /* Not ready at once; "not reachable" (rather than "slow") once
         * librdkafka has reported every broker down, which the polling
         * thread serves. */
        err = ab_producer_ready(p, NULL, 0, 300, errstr, sizeof(errstr));
        cr_assert(err == AB_ERR_UNAVAILABLE || err == AB_ERR_TIMEOUT, "%d", err);
        for (i = 0; i < 50 && err != AB_ERR_UNAVAILABLE; i++) {
                ab_producer_poll(p, 100);
                err = ab_producer_ready(p, NULL, 0, 100, errstr, sizeof(errstr));
        }
        cr_assert_eq(err, AB_ERR_UNAVAILABLE, "%s", errstr);
        cr_assert(strstr(errstr, "not reachable"), "%s", errstr);
        ab_producer_destroy(p);
}

Test(kafka_producer, poll_thread_starts_and_stops) {
        ab_producer_conf_t pc;
        ab_producer_t *p;
        char errstr[256];

        ab_producer_conf_init(&pc);
        pc.brokers     = NOBODY;
        pc.poll_thread = 1;
        p              = ab_producer_new(&pc, errstr, sizeof(errstr));
        cr_assert(p, "%s", errstr);
        ab_producer_destroy(p);
}

Test(kafka_producer, needs_brokers) {
        ab_producer_conf_t pc;
        char errstr[256];

        ab_producer_conf_init(&pc);
        cr_assert_null(ab_producer_new(&pc, errstr, sizeof(errstr)));
        cr_assert(strstr(errstr, "brokers"), "%s", errstr);
}

Test(kafka_consumer, without_a_group_subscribe_and_commit_are_refused) {
        static const char *const topics[] = {"events.commerce"};
        ab_consumer_conf_t cc;
        ab_consumer_t *c;
        char errstr[256];

        ab_consumer_conf_init(&cc);
        cc.brokers = NOBODY;
        c          = ab_consumer_new(&cc, errstr, sizeof(errstr));
        cr_assert(c, "%s", errstr);
        cr_assert_eq(ab_consumer_subscribe(c, topics, 1, errstr,
                                           sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert_eq(ab_consumer_commit(c, 0, errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert(strstr(errstr, "group"), "%s", errstr);
        ab_consumer_destroy(c);
}

Test(kafka_consumer, keeps_offsets_manual_whatever_the_environment) {
        ab_consumer_conf_t cc;
        ab_consumer_t *c;
        char errstr[256];
        char val[64];
        size_t len;

        setenv("RDKAFKA_ENABLE_AUTO_COMMIT", "true", 1);
        setenv("RDKAFKA_ENABLE_AUTO_OFFSET_STORE", "true", 1);
        ab_consumer_conf_init(&cc);
        cc.brokers  = NOBODY;
        cc.group_id = "g";
        c           = ab_consumer_new(&cc, errstr, sizeof(errstr));
        cr_assert(c, "%s", errstr);
        len = sizeof(val);
        rd_kafka_conf_get(rd_kafka_conf(ab_consumer_handle(c)),
                          "enable.auto.commit", val, &len);
        cr_assert_str_eq(val, "false");
        len = sizeof(val);
        rd_kafka_conf_get(rd_kafka_conf(ab_consumer_handle(c)),
                          "enable.auto.offset.store", val, &len);
        cr_assert_str_eq(val, "false");
        ab_consumer_destroy(c);
}
