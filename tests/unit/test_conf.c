/* aetherbus - Apache-2.0
 *
 * Unit tests for ab_conf: value syntax per type with exact messages,
 * precedence default < env < flag, help and dump (secrets masked),
 * unknown flag vs invalid value, finalize, ab_conf_main exit codes.
 * Criterion runs each test in its own process, so setenv() stays local.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ab_conf.h"
#include "ab_log.h"

typedef struct {
        ab_conf_common_t common;
        char *token;
        int mode;
        int verbose;
        size_t max_body;
        int64_t linger_ms;
        char *sink_url;
        int batch;
} tconf_t;

static ab_err_t finalize(void *conf, char *errstr, size_t errstr_size) {
        tconf_t *c;

        c = conf;
        if (c->mode == 2 && !c->token) {
                ab_errstr_set(errstr, errstr_size,
                              "MODE=enforce needs TOKEN");
                return AB_ERR_INVALID;
        }
        return AB_OK;
}

static const ab_conf_row_t rows[] = {
    AB_CONF_COMMON_ROWS(tconf_t, common, "8080"),
    {.env    = "TOKEN",
     .flag   = "token",
     .type   = AB_CONF_STR,
     .offset = offsetof(tconf_t, token),
     .flags  = AB_CONF_SECRET,
     .help   = "Shared secret."},
    {.env    = "MODE",
     .flag   = "mode",
     .type   = AB_CONF_ENUM,
     .def    = "audit",
     .values = "off|audit|enforce",
     .offset = offsetof(tconf_t, mode),
     .help   = "Mode."},
    {.env    = "VERBOSE",
     .flag   = "verbose",
     .type   = AB_CONF_BOOL,
     .def    = "false",
     .offset = offsetof(tconf_t, verbose),
     .help   = "Chatty."},
    {.env    = "MAX_BODY_BYTES",
     .flag   = "max-body-bytes",
     .type   = AB_CONF_SIZE,
     .def    = "1M",
     .min    = 1024,
     .max    = 64 * 1024 * 1024,
     .offset = offsetof(tconf_t, max_body),
     .help   = "Body limit."},
    {.env    = "LINGER",
     .flag   = "linger",
     .type   = AB_CONF_DURATION,
     .def    = "5ms",
     .min    = 0,
     .max    = 60000,
     .offset = offsetof(tconf_t, linger_ms),
     .help   = "Linger."},
    {.env    = "EVENT_SINK_URL",
     .flag   = "event-sink-url",
     .type   = AB_CONF_URL,
     .offset = offsetof(tconf_t, sink_url),
     .help   = "Sink."},
    {.env    = "BATCH",
     .type   = AB_CONF_INT,
     .def    = "100",
     .offset = offsetof(tconf_t, batch),
     .help   = "Env only."},
    {0},
};

static const ab_conf_spec_t spec = {
    .prog     = "aetherbus-test",
    .about    = "A test service.",
    .rows     = rows,
    .finalize = finalize,
};

static tconf_t conf;
static char errstr[512];

static void teardown(void) {
        ab_conf_clear(&spec, &conf);
}

TestSuite(conf, .fini = teardown);

/* Loads with argv (NULL-terminated after argv[0]). */
static ab_err_t load_argv(const char **args, ab_conf_action_t *actp) {
        char *argv[16];
        ab_conf_action_t act;
        int argc;

        argv[0] = "aetherbus-test";
        for (argc = 1; args && args[argc - 1]; argc++) {
                argv[argc] = (char *)args[argc - 1];
        }
        argv[argc] = NULL;
        errstr[0]  = '\0';
        ab_conf_clear(&spec, &conf);
        return ab_conf_load(&spec, &conf, argc, argv, actp ? actp : &act,
                            errstr, sizeof(errstr));
}

static char *capture_dump(void) {
        static char buf[4096];
        FILE *fp;
        size_t n;

        fp = tmpfile();
        ab_conf_dump(&spec, &conf, fp);
        rewind(fp);
        n      = fread(buf, 1, sizeof(buf) - 1, fp);
        buf[n] = '\0';
        fclose(fp);
        return buf;
}

Test(conf, defaults_apply) {
        ab_conf_action_t act;

        cr_assert_eq(load_argv(NULL, &act), AB_OK, "%s", errstr);
        cr_assert_eq(act, AB_CONF_RUN);
        cr_assert_str_eq(conf.common.kafka_brokers, "127.0.0.1:9092");
        cr_assert_str_eq(conf.common.topic_prefix, "events.");
        cr_assert_eq(conf.common.port, 8080);
        cr_assert_eq(conf.common.log_level, AB_LOG_INFO);
        cr_assert_null(conf.token);
        cr_assert_eq(conf.mode, 1);
        cr_assert_eq(conf.verbose, 0);
        cr_assert_eq(conf.max_body, 1024 * 1024);
        cr_assert_eq(conf.linger_ms, 5);
        cr_assert_null(conf.sink_url);
        cr_assert_eq(conf.batch, 100);
}

Test(conf, accepts_good_values) {
        static const struct {
                const char *env;
                const char *value;
                const char *dumped; /* ENV=... line expected in the dump */
        } good[] = {
            {"PORT", "1", "PORT=1"},
            {"PORT", "65535", "PORT=65535"},
            {"LOG_LEVEL", "debug", "LOG_LEVEL=debug"},
            {"LOG_LEVEL", "WARN", "LOG_LEVEL=warn"},
            {"TOPIC_PREFIX", "", "TOPIC_PREFIX="},
            {"TOPIC_PREFIX", "prod.events-v2_", "TOPIC_PREFIX=prod.events-v2_"},
            {"KAFKA_BROKERS", "a:1,b:2", "KAFKA_BROKERS=a:1,b:2"},
            {"MODE", "off", "MODE=off"},
            {"VERBOSE", "yes", "VERBOSE=true"},
            {"VERBOSE", "0", "VERBOSE=false"},
            {"VERBOSE", "ON", "VERBOSE=true"},
            {"MAX_BODY_BYTES", "1024", "MAX_BODY_BYTES=1024"},
            {"MAX_BODY_BYTES", "2K", "MAX_BODY_BYTES=2048"},
            {"MAX_BODY_BYTES", "3MiB", "MAX_BODY_BYTES=3145728"},
            {"MAX_BODY_BYTES", "64mb", "MAX_BODY_BYTES=67108864"},
            {"LINGER", "0", "LINGER=0ms"},
            {"LINGER", "250ms", "LINGER=250ms"},
            {"LINGER", "2s", "LINGER=2000ms"},
            {"LINGER", "1m", "LINGER=60000ms"},
            {"EVENT_SINK_URL", "https://sink.example:8443/x?y=1",
             "EVENT_SINK_URL=https://sink.example:8443/x?y=1"},
            {"EVENT_SINK_URL", "http://10.0.0.1", "EVENT_SINK_URL=http://10.0.0.1"},
            {"BATCH", "-5", "BATCH=-5"},
        };
        size_t i;
        char *dump;

        for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                setenv(good[i].env, good[i].value, 1);
                cr_assert_eq(load_argv(NULL, NULL), AB_OK, "row %zu: %s", i,
                             errstr);
                dump = capture_dump();
                cr_assert(strstr(dump, good[i].dumped), "row %zu: want %s in\n%s",
                          i, good[i].dumped, dump);
                unsetenv(good[i].env);
        }
}

Test(conf, rejects_bad_values_with_exact_messages) {
        static const struct {
                const char *env;
                const char *value;
                const char *msg;
        } bad[] = {
            {"PORT", "abc", "PORT: must be an integer in 1..65535, got \"abc\""},
            {"PORT", "0", "PORT: must be an integer in 1..65535, got \"0\""},
            {"PORT", "65536",
             "PORT: must be an integer in 1..65535, got \"65536\""},
            {"PORT", "", "PORT: must be an integer in 1..65535, got \"\""},
            {"PORT", " 80", "PORT: must be an integer in 1..65535, got \" 80\""},
            {"PORT", "80x", "PORT: must be an integer in 1..65535, got \"80x\""},
            {"PORT", "99999999999999999999",
             "PORT: must be an integer in 1..65535, got "
             "\"99999999999999999999\""},
            {"LOG_LEVEL", "verbose",
             "LOG_LEVEL: must be one of error|warn|info|debug, got "
             "\"verbose\""},
            {"TOPIC_PREFIX", "a b",
             "TOPIC_PREFIX: must be at most 200 characters of "
             "[a-zA-Z0-9._-], got \"a b\""},
            {"TOPIC_PREFIX", "ev/",
             "TOPIC_PREFIX: must be at most 200 characters of "
             "[a-zA-Z0-9._-], got \"ev/\""},
            {"KAFKA_BROKERS", "",
             "KAFKA_BROKERS: must be a comma-separated host:port list without "
             "spaces, got \"\""},
            {"KAFKA_BROKERS", "a:1,,b:2",
             "KAFKA_BROKERS: must be a comma-separated host:port list without "
             "spaces, got \"a:1,,b:2\""},
            {"MODE", "strict",
             "MODE: must be one of off|audit|enforce, got \"strict\""},
            {"VERBOSE", "maybe",
             "VERBOSE: must be true or false (or 1|0|yes|no|on|off), got "
             "\"maybe\""},
            {"MAX_BODY_BYTES", "1X",
             "MAX_BODY_BYTES: must be a size in 1K..64M (bytes, or suffix K, "
             "M, G), got \"1X\""},
            {"MAX_BODY_BYTES", "100",
             "MAX_BODY_BYTES: must be a size in 1K..64M (bytes, or suffix K, "
             "M, G), got \"100\""},
            {"MAX_BODY_BYTES", "1G",
             "MAX_BODY_BYTES: must be a size in 1K..64M (bytes, or suffix K, "
             "M, G), got \"1G\""},
            {"MAX_BODY_BYTES", "-1K",
             "MAX_BODY_BYTES: must be a size in 1K..64M (bytes, or suffix K, "
             "M, G), got \"-1K\""},
            {"LINGER", "5 ms",
             "LINGER: must be a duration in 0ms..1m (ms, or suffix ms, s, m, "
             "h), got \"5 ms\""},
            {"LINGER", "2h",
             "LINGER: must be a duration in 0ms..1m (ms, or suffix ms, s, m, "
             "h), got \"2h\""},
            {"EVENT_SINK_URL", "ftp://x",
             "EVENT_SINK_URL: must be an http:// or https:// URL, got "
             "\"ftp://x\""},
            {"EVENT_SINK_URL", "http://",
             "EVENT_SINK_URL: must be an http:// or https:// URL, got "
             "\"http://\""},
            {"EVENT_SINK_URL", "http://a b",
             "EVENT_SINK_URL: must be an http:// or https:// URL, got "
             "\"http://a b\""},
            {"BATCH", "1.5", "BATCH: must be an integer, got \"1.5\""},
        };
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                setenv(bad[i].env, bad[i].value, 1);
                cr_assert_eq(load_argv(NULL, NULL), AB_ERR_INVALID, "row %zu",
                             i);
                cr_assert_str_eq(errstr, bad[i].msg, "row %zu", i);
                /* Nothing left allocated on failure. */
                cr_assert_null(conf.common.kafka_brokers, "row %zu", i);
                unsetenv(bad[i].env);
        }
}

Test(conf, flag_beats_env_beats_default) {
        cr_assert_eq(load_argv(NULL, NULL), AB_OK);
        cr_assert_eq(conf.common.port, 8080);

        setenv("PORT", "9000", 1);
        cr_assert_eq(load_argv(NULL, NULL), AB_OK);
        cr_assert_eq(conf.common.port, 9000);

        cr_assert_eq(load_argv((const char *[]){"--port=9100", NULL}, NULL),
                     AB_OK, "%s", errstr);
        cr_assert_eq(conf.common.port, 9100);

        cr_assert_eq(load_argv((const char *[]){"--port", "9200", NULL}, NULL),
                     AB_OK, "%s", errstr);
        cr_assert_eq(conf.common.port, 9200);

        /* Last flag wins. */
        cr_assert_eq(load_argv((const char *[]){"--port=1", "--port=2", NULL},
                               NULL),
                     AB_OK);
        cr_assert_eq(conf.common.port, 2);
}

Test(conf, bool_flag_alone_means_true) {
        cr_assert_eq(load_argv((const char *[]){"--verbose", NULL}, NULL),
                     AB_OK);
        cr_assert_eq(conf.verbose, 1);
        cr_assert_eq(load_argv((const char *[]){"--verbose=off", NULL}, NULL),
                     AB_OK);
        cr_assert_eq(conf.verbose, 0);
}

Test(conf, bad_flag_value_names_the_flag) {
        cr_assert_eq(load_argv((const char *[]){"--port=abc", NULL}, NULL),
                     AB_ERR_INVALID);
        cr_assert_str_eq(errstr,
                         "--port: must be an integer in 1..65535, got \"abc\"");
        cr_assert_eq(load_argv((const char *[]){"--port", NULL}, NULL),
                     AB_ERR_INVALID);
        cr_assert_str_eq(errstr, "--port: missing value");
}

Test(conf, unknown_flag_is_distinct_from_bad_value) {
        cr_assert_eq(load_argv((const char *[]){"--nope=1", NULL}, NULL),
                     AB_ERR_UNKNOWN);
        cr_assert_str_eq(errstr, "unknown flag --nope");
        cr_assert_eq(load_argv((const char *[]){"stray", NULL}, NULL),
                     AB_ERR_UNKNOWN);
        cr_assert_str_eq(errstr, "unexpected argument \"stray\"");
        /* An env-only row has no flag. */
        cr_assert_eq(load_argv((const char *[]){"--batch=3", NULL}, NULL),
                     AB_ERR_UNKNOWN);
}

Test(conf, secret_is_masked_in_errors_and_dump) {
        static const ab_conf_row_t srows[] = {
            {.env    = "URL_SECRET",
             .flag   = "url-secret",
             .type   = AB_CONF_URL,
             .offset = 0,
             .flags  = AB_CONF_SECRET,
             .help   = "x"},
            {0},
        };
        static const ab_conf_spec_t sspec = {.prog = "t", .rows = srows};
        char *s = NULL;
        ab_conf_action_t act;
        char *argv[] = {"t", "--url-secret=hunter2", NULL};
        char *dump;

        cr_assert_eq(ab_conf_load(&sspec, &s, 2, argv, &act, errstr,
                                  sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert_str_eq(errstr, "--url-secret: must be an http:// or https:// "
                                 "URL, got \"***\"");

        setenv("TOKEN", "hunter2", 1);
        cr_assert_eq(load_argv(NULL, NULL), AB_OK);
        cr_assert_str_eq(conf.token, "hunter2");
        dump = capture_dump();
        cr_assert(strstr(dump, "TOKEN=***\n"), "%s", dump);
        cr_assert_null(strstr(dump, "hunter2"), "%s", dump);
}

Test(conf, dump_prints_every_row_in_order) {
        setenv("MODE", "off", 1);
        cr_assert_eq(load_argv(NULL, NULL), AB_OK);
        cr_assert_str_eq(capture_dump(), "KAFKA_BROKERS=127.0.0.1:9092\n"
                                         "TOPIC_PREFIX=events.\n"
                                         "PORT=8080\n"
                                         "LOG_LEVEL=info\n"
                                         "TOKEN=\n"
                                         "MODE=off\n"
                                         "VERBOSE=false\n"
                                         "MAX_BODY_BYTES=1048576\n"
                                         "LINGER=5ms\n"
                                         "EVENT_SINK_URL=\n"
                                         "BATCH=100\n");
}

Test(conf, help_wins_over_bad_values) {
        ab_conf_action_t act;

        setenv("PORT", "abc", 1);
        cr_assert_eq(load_argv((const char *[]){"--bogus", "--help", NULL},
                               &act),
                     AB_OK);
        cr_assert_eq(act, AB_CONF_HELP);
        cr_assert_eq(load_argv((const char *[]){"-h", NULL}, &act), AB_OK);
        cr_assert_eq(act, AB_CONF_HELP);
}

Test(conf, dump_flag_reports_dump_after_full_load) {
        ab_conf_action_t act;

        cr_assert_eq(load_argv((const char *[]){"--dump-config", "--port=1",
                                                NULL},
                               &act),
                     AB_OK);
        cr_assert_eq(act, AB_CONF_DUMP);
        cr_assert_eq(conf.common.port, 1);
        /* A bad value still fails. */
        cr_assert_eq(load_argv((const char *[]){"--dump-config", "--port=x",
                                                NULL},
                               &act),
                     AB_ERR_INVALID);
}

Test(conf, help_lists_every_setting) {
        static char buf[8192];
        FILE *fp;
        size_t n;

        fp = tmpfile();
        ab_conf_help(&spec, fp);
        rewind(fp);
        n      = fread(buf, 1, sizeof(buf) - 1, fp);
        buf[n] = '\0';
        fclose(fp);
        cr_assert(strstr(buf, "Usage: aetherbus-test [--flag=value ...]\n"
                              "A test service.\n"),
                  "%s", buf);
        cr_assert(strstr(buf, "  --port=1..65535\n"
                              "      PORT. HTTP listen port. Default: \"8080\"\n"),
                  "%s", buf);
        cr_assert(strstr(buf, "  --mode=off|audit|enforce\n"
                              "      MODE. Mode. Default: \"audit\"\n"),
                  "%s", buf);
        cr_assert(strstr(buf, "  --max-body-bytes=SIZE (1K..64M)\n"), "%s",
                  buf);
        cr_assert(strstr(buf, "  --linger=DURATION (0ms..1m)\n"), "%s", buf);
        cr_assert(strstr(buf, "  --token=STRING\n"
                              "      TOKEN. Shared secret. Secret.\n"),
                  "%s", buf);
        cr_assert(strstr(buf, "  (no flag) INT\n      BATCH. Env only."), "%s",
                  buf);
        cr_assert(strstr(buf, "  --dump-config\n"), "%s", buf);
        cr_assert(strstr(buf, "  --help, -h\n"), "%s", buf);
}

Test(conf, finalize_runs_after_flags) {
        cr_assert_eq(load_argv((const char *[]){"--mode=enforce", NULL}, NULL),
                     AB_ERR_INVALID);
        cr_assert_str_eq(errstr, "MODE=enforce needs TOKEN");
        cr_assert_eq(load_argv((const char *[]){"--mode=enforce", "--token",
                                                "t", NULL},
                               NULL),
                     AB_OK, "%s", errstr);
}

Test(conf, required_row_must_be_set) {
        static const ab_conf_row_t rrows[] = {
            {.env    = "AUDIT_DB_PATH",
             .flag   = "audit-db-path",
             .type   = AB_CONF_STR,
             .offset = 0,
             .flags  = AB_CONF_REQUIRED,
             .help   = "x"},
            {0},
        };
        static const ab_conf_spec_t rspec = {.prog = "t", .rows = rrows};
        char *s = NULL;
        ab_conf_action_t act;
        char *argv[] = {"t", NULL};

        cr_assert_eq(ab_conf_load(&rspec, &s, 1, argv, &act, errstr,
                                  sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert_str_eq(errstr, "AUDIT_DB_PATH: required (set AUDIT_DB_PATH "
                                 "or --audit-db-path)");
        setenv("AUDIT_DB_PATH", "/tmp/x.db", 1);
        cr_assert_eq(ab_conf_load(&rspec, &s, 1, argv, &act, errstr,
                                  sizeof(errstr)),
                     AB_OK);
        cr_assert_str_eq(s, "/tmp/x.db");
        ab_conf_clear(&rspec, &s);
        cr_assert_null(s);
}

/* Runs ab_conf_main with stdout/stderr captured into out/err. */
static int run_main(const char **args, char *out, char *err, size_t size) {
        char *argv[8];
        FILE *fo;
        FILE *fe;
        int so;
        int se;
        int argc;
        int rc;
        size_t n;

        argv[0] = "aetherbus-test";
        for (argc = 1; args[argc - 1]; argc++) {
                argv[argc] = (char *)args[argc - 1];
        }
        argv[argc] = NULL;
        fflush(stdout);
        fflush(stderr);
        fo = tmpfile();
        fe = tmpfile();
        so = dup(1);
        se = dup(2);
        dup2(fileno(fo), 1);
        dup2(fileno(fe), 2);
        ab_conf_clear(&spec, &conf);
        rc = ab_conf_main(&spec, &conf, argc, argv);
        fflush(stdout);
        fflush(stderr);
        dup2(so, 1);
        dup2(se, 2);
        close(so);
        close(se);
        rewind(fo);
        rewind(fe);
        n      = fread(out, 1, size - 1, fo);
        out[n] = '\0';
        n      = fread(err, 1, size - 1, fe);
        err[n] = '\0';
        fclose(fo);
        fclose(fe);
        return rc;
}

Test(conf, main_helper_exit_codes) {
        static char out[8192];
        static char err[8192];

        cr_assert_eq(run_main((const char *[]){"--port=abc", NULL}, out, err,
                              sizeof(out)),
                     2);
        cr_assert_str_eq(err, "aetherbus-test: --port: must be an integer in "
                              "1..65535, got \"abc\"\n");
        cr_assert_str_eq(out, "");

        cr_assert_eq(run_main((const char *[]){"--what", NULL}, out, err,
                              sizeof(out)),
                     2);
        cr_assert_str_eq(err, "aetherbus-test: unknown flag --what\n");

        cr_assert_eq(run_main((const char *[]){"--help", NULL}, out, err,
                              sizeof(out)),
                     0);
        cr_assert(strstr(out, "Usage: aetherbus-test"), "%s", out);
        cr_assert_str_eq(err, "");

        setenv("TOKEN", "s3cret", 1);
        cr_assert_eq(run_main((const char *[]){"--dump-config", NULL}, out,
                              err, sizeof(out)),
                     0);
        cr_assert(strstr(out, "TOKEN=***\n"), "%s", out);
        cr_assert_null(conf.token); /* cleared */

        cr_assert_eq(run_main((const char *[]){"--port=81", NULL}, out, err,
                              sizeof(out)),
                     AB_CONF_CONTINUE);
        cr_assert_eq(conf.common.port, 81);
}
