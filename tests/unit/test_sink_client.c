/* aetherbus - Apache-2.0
 *
 * Unit tests of sink_client against a real HTTP server started in the
 * test (libmicrohttpd, one thread per connection) that records every
 * request and answers a script: the headers, a body of real consumer
 * envelopes (fixture -> validated -> Avro -> decoded as ab_consume does)
 * that POST /events/ingest's parser takes back item by item, gzip round
 * trip, keep-alive (connections counted on the server), Retry-After,
 * poison answers with a bounded UTF-8 excerpt, timeouts and refused
 * connections as retryable, and requests in flight at once.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <zlib.h>

#include "ab_avro.h"
#include "ab_catalog.h"
#include "ab_envelope.h"
#include "ab_json.h"
#include "sink_batch.h"
#include "sink_client.h"

#define FIXTURES  AB_SCHEMA_DIR "/fixtures/"
#define MAX_REQS  32
#define MAX_STEPS 16
#define BODY_MAX  (4 * 1024 * 1024)

/* One scripted answer. */
typedef struct {
        int status;
        const char *retry_after; /* NULL: none */
        const char *body;        /* NULL: "{}" */
        size_t body_len;         /* 0: strlen(body) */
        int delay_ms;
} step_t;

/* What the server saw of one request. */
typedef struct {
        char content_type[128];
        char authorization[256];
        char idempotency_key[SINK_BATCH_KEY_MAX];
        char content_encoding[64];
        char expect[64];
        int has_authorization;
        unsigned char *body;
        size_t body_len;
} seen_t;

typedef struct {
        struct MHD_Daemon *d;
        int port;
        pthread_mutex_t lock;
        step_t steps[MAX_STEPS];
        int nsteps;
        int next_step;
        seen_t reqs[MAX_REQS];
        int nreqs;
        int connections;
        int active;
        int peak_active;
        const char *poison; /* a body holding it is answered 400 */
} server_t;

/* Per-request state between the handler's calls. */
typedef struct {
        unsigned char *body;
        size_t len;
        int too_big;
} upload_t;

static server_t srv;
static ab_catalog_t *cat;
static ab_avro_codec_t *codec;

static void on_conn(void *cls, struct MHD_Connection *conn, void **sock_ctx,
                    enum MHD_ConnectionNotificationCode toe) {
        server_t *s = cls;

        (void)conn;
        (void)sock_ctx;
        if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
                pthread_mutex_lock(&s->lock);
                s->connections++;
                pthread_mutex_unlock(&s->lock);
        }
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                    enum MHD_RequestTerminationCode toe) {
        upload_t *u = *con_cls;

        (void)cls;
        (void)conn;
        (void)toe;
        if (u) {
                free(u->body);
                free(u);
                *con_cls = NULL;
        }
}

static void copy_header(struct MHD_Connection *conn, const char *name,
                        char *out, size_t size, int *present) {
        const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                    name);

        if (present) {
                *present = v != NULL;
        }
        snprintf(out, size, "%s", v ? v : "");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn,
                               const char *url, const char *method,
                               const char *version, const char *data,
                               size_t *data_size, void **con_cls) {
        server_t *s = cls;
        upload_t *u = *con_cls;
        struct MHD_Response *resp;
        step_t step = {.status = 200};
        seen_t *seen;
        const char *body;
        size_t blen;
        enum MHD_Result ret;

        (void)url;
        (void)method;
        (void)version;
        if (!u) {
                u = calloc(1, sizeof(*u));
                if (!u) {
                        return MHD_NO;
                }
                *con_cls = u;
                return MHD_YES;
        }
        if (*data_size) {
                if (u->len + *data_size > BODY_MAX) {
                        u->too_big = 1;
                } else {
                        unsigned char *nb = realloc(u->body, u->len + *data_size);

                        if (!nb) {
                                return MHD_NO;
                        }
                        u->body = nb;
                        memcpy(u->body + u->len, data, *data_size);
                        u->len += *data_size;
                }
                *data_size = 0;
                return MHD_YES;
        }

        pthread_mutex_lock(&s->lock);
        if (s->next_step < s->nsteps) {
                step = s->steps[s->next_step++];
        }
        if (s->poison && u->body &&
            memmem(u->body, u->len, s->poison, strlen(s->poison))) {
                step = (step_t){.status = 400,
                                .body   = "{\"error\":\"refused\"}"};
        }
        if (s->nreqs < MAX_REQS) {
                seen = &s->reqs[s->nreqs++];
                copy_header(conn, "Content-Type", seen->content_type,
                            sizeof(seen->content_type), NULL);
                copy_header(conn, "Authorization", seen->authorization,
                            sizeof(seen->authorization),
                            &seen->has_authorization);
                copy_header(conn, "Idempotency-Key", seen->idempotency_key,
                            sizeof(seen->idempotency_key), NULL);
                copy_header(conn, "Content-Encoding", seen->content_encoding,
                            sizeof(seen->content_encoding), NULL);
                copy_header(conn, "Expect", seen->expect,
                            sizeof(seen->expect), NULL);
                seen->body     = u->body;
                seen->body_len = u->len;
                u->body        = NULL;
                u->len         = 0;
        }
        s->active++;
        if (s->active > s->peak_active) {
                s->peak_active = s->active;
        }
        pthread_mutex_unlock(&s->lock);

        if (step.delay_ms) {
                usleep((useconds_t)step.delay_ms * 1000);
        }
        body = step.body ? step.body : "{}";
        blen = step.body_len ? step.body_len : strlen(body);
        resp = MHD_create_response_from_buffer(blen, (void *)(uintptr_t)body,
                                               MHD_RESPMEM_MUST_COPY);
        if (!resp) {
                return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", "application/json");
        if (step.retry_after) {
                MHD_add_response_header(resp, "Retry-After", step.retry_after);
        }
        ret = MHD_queue_response(conn, (unsigned)step.status, resp);
        MHD_destroy_response(resp);
        pthread_mutex_lock(&s->lock);
        s->active--;
        pthread_mutex_unlock(&s->lock);
        return ret;
}

static void setup(void) {
        const union MHD_DaemonInfo *info;
        char errstr[256] = "";

        memset(&srv, 0, sizeof(srv));
        pthread_mutex_init(&srv.lock, NULL);
        srv.d = MHD_start_daemon(
            MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
            0, NULL, NULL, handler, &srv, MHD_OPTION_NOTIFY_CONNECTION,
            on_conn, &srv, MHD_OPTION_NOTIFY_COMPLETED, on_done, &srv,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
            MHD_OPTION_END);
        cr_assert_not_null(srv.d, "MHD_start_daemon failed");
        info = MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
        cr_assert_not_null(info);
        srv.port = info->port;
        cat      = ab_catalog_new(errstr, sizeof(errstr));
        cr_assert_not_null(cat, "%s", errstr);
        codec = ab_avro_codec_new(NULL, errstr, sizeof(errstr));
        cr_assert_not_null(codec, "%s", errstr);
}

static void teardown(void) {
        int i;

        MHD_stop_daemon(srv.d);
        for (i = 0; i < srv.nreqs; i++) {
                free(srv.reqs[i].body);
        }
        pthread_mutex_destroy(&srv.lock);
        ab_avro_codec_destroy(codec);
        ab_catalog_destroy(cat);
}

TestSuite(sink_client, .init = setup, .fini = teardown);

static void script(const step_t *steps, int n) {
        pthread_mutex_lock(&srv.lock);
        memcpy(srv.steps, steps, (size_t)n * sizeof(*steps));
        srv.nsteps    = n;
        srv.next_step = 0;
        pthread_mutex_unlock(&srv.lock);
}

static sink_client_t *client(const char *token, int gzip, int timeout_ms,
                             int concurrency) {
        sink_client_conf_t conf = {0};
        char url[128], errstr[256] = "";
        sink_client_t *c;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/events/ingest",
                 srv.port);
        conf.url         = url;
        conf.token       = token;
        conf.gzip        = gzip;
        conf.timeout_ms  = timeout_ms;
        conf.concurrency = concurrency;
        c                = sink_client_new(&conf, errstr, sizeof(errstr));
        cr_assert_not_null(c, "%s", errstr);
        return c;
}

/* A batch of every v1 fixture event, each as the consumer hands it over:
 * validated by ingest, Avro-encoded, decoded back without the catalog. */
static sink_batch_t *fixture_batch(json_t **fixturep) {
        char errstr[256] = "", buf[65536];
        ab_envelope_ctx_t ctx = {.catalog = cat, .form = AB_FORM_INGEST};
        ab_envelope_t in, out;
        json_error_t jerr;
        json_t *arr, *item;
        sink_batch_t *b;
        size_t i, len;

        arr = json_load_file(FIXTURES "v1-events.json", 0, &jerr);
        cr_assert_not_null(arr, "%s", jerr.text);
        b = sink_batch_new("events.commerce", 4, NULL, errstr, sizeof(errstr));
        cr_assert_not_null(b);
        json_array_foreach(arr, i, item) {
                memset(&in, 0, sizeof(in));
                memset(&out, 0, sizeof(out));
                cr_assert_eq(ab_envelope_from_json(&in, json_deep_copy(item),
                                                   &ctx, errstr,
                                                   sizeof(errstr)),
                             AB_OK, "%s", errstr);
                /* from_json took a reference of its own */
                json_decref(in.doc);
                ab_envelope_set_received(&in, 1770840600000LL + (int64_t)i);
                cr_assert_eq(ab_avro_encode(codec, &in, buf, sizeof(buf), &len,
                                            errstr, sizeof(errstr)),
                             AB_OK, "%s", errstr);
                cr_assert_eq(ab_avro_decode_view(codec, buf, len, &out,
                                                 errstr, sizeof(errstr)),
                             AB_OK, "%s", errstr);
                cr_assert_eq(sink_batch_add(b, 1000 + (int64_t)i, &out, 0,
                                            errstr, sizeof(errstr)),
                             AB_OK, "%s", errstr);
                ab_envelope_clear(&out);
                ab_envelope_clear(&in);
        }
        *fixturep = arr;
        return b;
}

static unsigned char *gunzip(const unsigned char *in, size_t len,
                             size_t *outlen) {
        z_stream z;
        unsigned char *out = malloc(BODY_MAX);
        int zr;

        cr_assert_not_null(out);
        memset(&z, 0, sizeof(z));
        cr_assert_eq(inflateInit2(&z, 15 + 16), Z_OK);
        z.next_in   = (Bytef *)(uintptr_t)in;
        z.avail_in  = (uInt)len;
        z.next_out  = out;
        z.avail_out = BODY_MAX;
        zr          = inflate(&z, Z_FINISH);
        cr_assert_eq(zr, Z_STREAM_END, "inflate: %d", zr);
        cr_assert_eq(z.avail_in, 0, "bytes after the gzip member");
        *outlen = BODY_MAX - z.avail_out;
        inflateEnd(&z);
        return out;
}

/* The body as POST /events/ingest reads it: every item validates, and
 * is the fixture event it came from, in the ingest form. */
static void check_ingest_body(const unsigned char *body, size_t len,
                              const json_t *fixture) {
        char errstr[256] = "";
        ab_envelope_ctx_t ctx = {.catalog = cat, .form = AB_FORM_INGEST};
        ab_envelope_t env;
        json_t *doc, *item, *want;
        size_t i, n = 0;

        doc = ab_envelope_json_parse((const char *)body, len, NULL, NULL,
                                     errstr, sizeof(errstr));
        cr_assert_not_null(doc, "%s", errstr);
        cr_assert(json_is_array(doc), "the body is a JSON array");
        cr_assert_eq(ab_envelope_batch_check(doc, NULL, &n, errstr,
                                             sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert_eq(n, json_array_size(fixture));
        for (i = 0; i < n; i++) {
                item = ab_envelope_batch_item(doc, i);
                want = json_array_get(fixture, i);
                memset(&env, 0, sizeof(env));
                cr_assert_eq(ab_envelope_from_json(&env, item, &ctx, errstr,
                                                   sizeof(errstr)),
                             AB_OK, "item %zu: %s", i, errstr);
                cr_expect_str_eq(env.id, json_string_value(
                                             json_object_get(want, "id")));
                cr_expect_str_eq(env.name, json_string_value(
                                               json_object_get(want, "name")));
                cr_expect(json_equal(env.payload,
                                     json_object_get(want, "payload")),
                          "item %zu: payload", i);
                /* the ingest form: the receiving side sets its own */
                cr_expect_null(json_object_get(item, "receivedAt"),
                               "item %zu: receivedAt is not ingest's", i);
                ab_envelope_clear(&env);
        }
        json_decref(doc);
}

Test(sink_client, posts_the_batch_with_its_headers) {
        sink_client_result_t res;
        char errstr[256] = "", key[SINK_BATCH_KEY_MAX];
        sink_client_t *c = client("s3cret", 0, 5000, 1);
        json_t *fixture;
        sink_batch_t *b = fixture_batch(&fixture);
        const char *body;
        size_t len;

        body = sink_batch_body(b, &len);
        cr_assert_eq(sink_batch_key(b, key, sizeof(key)), AB_OK);
        cr_assert_eq(sink_client_post(c, body, len, key, &res, NULL, NULL,
                                      errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_expect_eq(res.status, 200);
        cr_expect_eq(res.curl_code, 0);
        cr_expect_eq(res.cls, SINK_RETRY_OK);
        cr_expect_eq(res.retry_after_ms, -1);
        cr_expect_str_eq(res.excerpt, "{}");
        cr_expect_str_empty(res.error);
        cr_expect_eq(res.body_bytes, len);

        cr_assert_eq(srv.nreqs, 1);
        cr_expect_str_eq(srv.reqs[0].content_type, "application/json");
        cr_expect_str_eq(srv.reqs[0].authorization, "Bearer s3cret");
        cr_expect_str_eq(srv.reqs[0].idempotency_key,
                         "events.commerce/4/1000-1048");
        cr_expect_str_empty(srv.reqs[0].content_encoding);
        cr_expect_str_empty(srv.reqs[0].expect, "no 100-continue round trip");
        cr_assert_eq(srv.reqs[0].body_len, len);
        cr_expect_eq(memcmp(srv.reqs[0].body, body, len), 0);
        check_ingest_body(srv.reqs[0].body, srv.reqs[0].body_len, fixture);
        json_decref(fixture);
        sink_batch_destroy(b);
        sink_client_destroy(c);
}

Test(sink_client, no_token_no_authorization_header) {
        sink_client_result_t res;
        char errstr[256] = "";
        sink_client_t *c = client("", 0, 5000, 1);

        cr_assert_eq(sink_client_post(c, "[]", 2, "t/0/1-1", &res, NULL, NULL,
                                      errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert_eq(srv.nreqs, 1);
        cr_expect_not(srv.reqs[0].has_authorization);
        sink_client_destroy(c);
}

Test(sink_client, large_body_goes_without_100_continue) {
        size_t len = 1536 * 1024;
        sink_client_result_t res;
        char errstr[256] = "", *body = malloc(len);
        sink_client_t *c = client(NULL, 0, 5000, 1);

        cr_assert_not_null(body);
        memset(body, ' ', len);
        body[0]       = '[';
        body[len - 1] = ']';
        cr_assert_eq(sink_client_post(c, body, len, "k", &res, NULL, NULL,
                                      errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_expect_eq(res.status, 200);
        cr_assert_eq(srv.nreqs, 1);
        cr_expect_str_empty(srv.reqs[0].expect);
        cr_expect_eq(srv.reqs[0].body_len, len);
        free(body);
        sink_client_destroy(c);
}

Test(sink_client, gzip_round_trip) {
        sink_client_result_t res;
        char errstr[256] = "", key[SINK_BATCH_KEY_MAX];
        sink_client_t *c = client("t", 1, 5000, 1);
        json_t *fixture;
        sink_batch_t *b = fixture_batch(&fixture);
        const char *body;
        unsigned char *plain;
        size_t len, plen;
        int round;

        body = sink_batch_body(b, &len);
        cr_assert_eq(sink_batch_key(b, key, sizeof(key)), AB_OK);
        /* Twice: the deflate stream of the slot is reset and reused. */
        for (round = 0; round < 2; round++) {
                cr_assert_eq(sink_client_post(c, body, len, key, &res, NULL,
                                              NULL, errstr, sizeof(errstr)),
                             AB_OK, "%s", errstr);
                cr_expect_eq(res.cls, SINK_RETRY_OK);
                cr_expect_lt(res.body_bytes, len, "gzip made it smaller");
                cr_assert_eq(srv.nreqs, round + 1);
                cr_expect_str_eq(srv.reqs[round].content_encoding, "gzip");
                cr_expect_eq(srv.reqs[round].body_len, res.body_bytes);
                plain = gunzip(srv.reqs[round].body, srv.reqs[round].body_len,
                               &plen);
                cr_assert_eq(plen, len);
                cr_expect_eq(memcmp(plain, body, len), 0);
                check_ingest_body(plain, plen, fixture);
                free(plain);
        }
        json_decref(fixture);
        sink_batch_destroy(b);
        sink_client_destroy(c);
}

Test(sink_client, keep_alive_reuses_one_connection) {
        sink_client_result_t res;
        char errstr[256] = "", key[32];
        sink_client_t *c = client(NULL, 0, 5000, 2);
        step_t steps[] = {{.status = 200}, {.status = 503}, {.status = 400},
                          {.status = 200}, {.status = 200}};
        int i;

        script(steps, 5);
        for (i = 0; i < 5; i++) {
                snprintf(key, sizeof(key), "t/0/%d-%d", i, i);
                cr_assert_eq(sink_client_post(c, "[{}]", 4, key, &res, NULL,
                                              NULL, errstr, sizeof(errstr)),
                             AB_OK, "%s", errstr);
                cr_expect_eq(res.status, steps[i].status);
        }
        cr_expect_eq(srv.nreqs, 5);
        /* Error answers do not cost the connection either. */
        cr_expect_eq(srv.connections, 1, "%d connections", srv.connections);
        cr_expect_str_eq(srv.reqs[4].idempotency_key, "t/0/4-4");
        sink_client_destroy(c);
}

Test(sink_client, retry_after_on_503) {
        sink_client_result_t res;
        char errstr[256] = "", date[64];
        sink_client_t *c = client(NULL, 0, 5000, 1);
        time_t t = time(NULL) + 30;
        struct tm tm;
        step_t steps[] = {
                {.status = 503, .retry_after = "2"},
                {.status = 429, .retry_after = date},
                {.status = 503, .retry_after = "86400"},
                {.status = 503, .retry_after = "later, maybe"},
        };

        gmtime_r(&t, &tm);
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        script(steps, 4);
        cr_assert_eq(sink_client_post(c, "[]", 2, "k", &res, NULL, NULL,
                                      errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_expect_eq(res.status, 503);
        cr_expect_eq(res.cls, SINK_RETRY_RETRY);
        cr_expect_eq(res.retry_after_ms, 2000);

        cr_assert_eq(sink_client_post(c, "[]", 2, "k", &res, NULL, NULL,
                                      errstr, sizeof(errstr)),
                     AB_OK);
        cr_expect_eq(res.status, 429);
        cr_expect_eq(res.cls, SINK_RETRY_RETRY);
        cr_expect(res.retry_after_ms > 27000 && res.retry_after_ms <= 30000,
                  "HTTP-date %s: %lld ms", date, (long long)res.retry_after_ms);

        cr_assert_eq(sink_client_post(c, "[]", 2, "k", &res, NULL, NULL,
                                      errstr, sizeof(errstr)),
                     AB_OK);
        cr_expect_eq(res.retry_after_ms, SINK_RETRY_AFTER_CAP_MS_DEF);

        cr_assert_eq(sink_client_post(c, "[]", 2, "k", &res, NULL, NULL,
                                      errstr, sizeof(errstr)),
                     AB_OK);
        cr_expect_eq(res.retry_after_ms, -1, "garbage is ignored");
        sink_client_destroy(c);
}

Test(sink_client, poison_answer_keeps_a_bounded_utf8_excerpt) {
        sink_client_result_t res;
        char errstr[256] = "", big[2000];
        sink_client_t *c = client(NULL, 0, 5000, 1);
        step_t steps[2] = {
                {.status = 400,
                 .body = "{\"error\":\"name: unknown \xff\xfe\",\n\"x\":\"\xc3\xa9\"}"},
                {.status = 422, .body = big, .body_len = sizeof(big)},
        };
        json_t *s;
        size_t i;

        /* 511 ASCII bytes, then a two-byte character crossing 512. */
        memset(big, 'a', sizeof(big));
        big[511] = (char)0xc3;
        big[512] = (char)0xa9;
        script(steps, 2);
        cr_assert_eq(sink_client_post(c, "[{}]", 4, "k", &res, NULL, NULL,
                                      errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_expect_eq(res.status, 400);
        cr_expect_eq(res.cls, SINK_RETRY_POISON);
        cr_expect_str_eq(res.excerpt,
                         "{\"error\":\"name: unknown ??\", \"x\":\"\xc3\xa9\"}");

        cr_assert_eq(sink_client_post(c, "[{}]", 4, "k", &res, NULL, NULL,
                                      errstr, sizeof(errstr)),
                     AB_OK);
        cr_expect_eq(res.status, 422);
        cr_expect_eq(res.cls, SINK_RETRY_POISON);
        cr_expect_eq(strlen(res.excerpt), 511, "the character that would "
                                               "cross 512 is left out");
        for (i = 0; i < 511; i++) {
                cr_assert_eq(res.excerpt[i], 'a');
        }
        /* jansson refuses invalid UTF-8: the excerpt goes into a record */
        s = json_string(res.excerpt);
        cr_expect_not_null(s);
        json_decref(s);
        sink_client_destroy(c);
}

Test(sink_client, timeout_is_retryable) {
        sink_client_result_t res;
        char errstr[256] = "";
        sink_client_t *c = client(NULL, 0, 300, 1);
        step_t steps[] = {{.status = 200, .delay_ms = 1500}, {.status = 200}};

        script(steps, 2);
        cr_assert_eq(sink_client_post(c, "[{}]", 4, "k", &res, NULL, NULL,
                                      errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_expect_eq(res.curl_code, CURLE_OPERATION_TIMEDOUT);
        cr_expect_eq(res.cls, SINK_RETRY_RETRY);
        cr_expect_str_not_empty(res.error);
        cr_expect_lt(res.elapsed_ms, 1400, "gave up at the timeout: %lld ms",
                     (long long)res.elapsed_ms);
        cr_expect_eq(res.retry_after_ms, -1);
        /* The slot works again afterwards. */
        cr_assert_eq(sink_client_post(c, "[{}]", 4, "k", &res, NULL, NULL,
                                      errstr, sizeof(errstr)),
                     AB_OK);
        cr_expect_eq(res.status, 200);
        cr_expect_eq(res.cls, SINK_RETRY_OK);
        sink_client_destroy(c);
}

Test(sink_client, refused_connection_is_retryable) {
        sink_client_conf_t conf = {.url = "http://127.0.0.1:1/x",
                                   .timeout_ms = 2000};
        sink_client_result_t res;
        char errstr[256] = "";
        sink_client_t *c = sink_client_new(&conf, errstr, sizeof(errstr));

        cr_assert_not_null(c, "%s", errstr);
        cr_assert_eq(sink_client_post(c, "[]", 2, "k", &res, NULL, NULL,
                                      errstr, sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_expect_eq(res.status, 0);
        cr_expect_eq(res.curl_code, CURLE_COULDNT_CONNECT);
        cr_expect_eq(res.cls, SINK_RETRY_RETRY);
        cr_expect_str_not_empty(res.error);
        sink_client_destroy(c);
}

static void count_done(const sink_client_result_t *res, void *opaque) {
        int *seen = opaque;

        cr_expect_eq(res->status, 200);
        seen[(intptr_t)res->opaque]++;
}

Test(sink_client, slots_run_requests_at_once_and_keep_their_connections) {
        char errstr[256] = "";
        sink_client_t *c = client(NULL, 0, 5000, 3);
        step_t steps[6];
        int seen[6] = {0}, done = 0, round, i, r;

        for (i = 0; i < 6; i++) {
                steps[i] = (step_t){.status = 200, .delay_ms = 300};
        }
        script(steps, 6);
        for (round = 0; round < 2; round++) {
                for (i = 0; i < 3; i++) {
                        cr_assert_eq(sink_client_submit(
                                         c, "[]", 2, "k",
                                         (void *)(intptr_t)(round * 3 + i),
                                         errstr, sizeof(errstr)),
                                     AB_OK, "%s", errstr);
                }
                cr_expect_eq(sink_client_free_slots(c), 0);
                cr_expect_eq(sink_client_submit(c, "[]", 2, "k", NULL, errstr,
                                                sizeof(errstr)),
                             AB_ERR_UNAVAILABLE);
                while (sink_client_in_flight(c)) {
                        r = sink_client_perform(c, 1000, count_done, seen);
                        cr_assert_geq(r, 0);
                        done += r;
                }
        }
        cr_expect_eq(done, 6);
        for (i = 0; i < 6; i++) {
                cr_expect_eq(seen[i], 1, "request %d completed %d times", i,
                             seen[i]);
        }
        cr_expect_eq(srv.peak_active, 3, "peak %d in flight", srv.peak_active);
        cr_expect_eq(srv.connections, 3, "%d connections", srv.connections);
        sink_client_destroy(c);
}

Test(sink_client, refuses_bad_configuration) {
        sink_client_conf_t conf = {.url = "ftp://example.com/"};
        char errstr[256] = "";

        cr_expect_null(sink_client_new(&conf, errstr, sizeof(errstr)));
        cr_expect(strstr(errstr, "EVENT_SINK_URL") != NULL, "%s", errstr);
        conf.url   = "http://127.0.0.1/";
        conf.token = "a\r\nX-Evil: 1";
        cr_expect_null(sink_client_new(&conf, errstr, sizeof(errstr)));
        cr_expect(strstr(errstr, "EVENT_SINK_TOKEN") != NULL, "%s", errstr);
}

Test(sink_client, sanitize_bounds_and_replaces) {
        char out[16];

        cr_expect_eq(sink_client_sanitize("ok\tline\n", 8, out, 15), 8);
        cr_expect_str_eq(out, "ok line ");
        cr_expect_eq(sink_client_sanitize("\xe2\x82\xac!", 4, out, 15), 4);
        cr_expect_str_eq(out, "\xe2\x82\xac!");
        /* truncated, overlong, surrogate: each bad byte one '?' */
        sink_client_sanitize("\xe2\x82", 2, out, 15);
        cr_expect_str_eq(out, "??");
        sink_client_sanitize("\xc0\xaf", 2, out, 15);
        cr_expect_str_eq(out, "??");
        sink_client_sanitize("\xed\xa0\x80", 3, out, 15);
        cr_expect_str_eq(out, "???");
        /* a character that would cross the bound is left out whole */
        cr_expect_eq(sink_client_sanitize("ab\xe2\x82\xac", 5, out, 4), 2);
        cr_expect_str_eq(out, "ab");
        cr_expect_eq(sink_client_sanitize("abcdef", 6, out, 4), 4);
        cr_expect_str_eq(out, "abcd");
}

/* The service's bisect loop in miniature: a stack of pending batches, a
 * refused batch split in halves, a refused single event dead-lettered.
 * Only the poisoned events end up dead-lettered; every other event is
 * delivered exactly once. */
Test(sink_client, bisect_dead_letters_only_the_refused_events) {
        sink_batch_t *stack[64], *b, *l, *r;
        sink_client_result_t res;
        char errstr[256] = "", key[SINK_BATCH_KEY_MAX], id[64];
        int delivered[40] = {0}, dead[40] = {0}, depth = 0, posts = 0, i;
        sink_client_t *c = client(NULL, 0, 5000, 1);
        ab_envelope_t env;
        const char *body, *json;
        size_t len, n, k;
        int64_t off;

        srv.poison = "\"evt_poison";
        b = sink_batch_new("events.commerce", 0, NULL, errstr, sizeof(errstr));
        cr_assert_not_null(b);
        for (i = 0; i < 40; i++) {
                memset(&env, 0, sizeof(env));
                snprintf(id, sizeof(id), "%s_%d",
                         i == 3 || i == 17 || i == 18 ? "evt_poison" : "evt",
                         i);
                /* a view as ab_consume hands it: strings, payload text */
                env.id               = id;
                env.name             = "ProductViewed";
                env.schema_version   = 1;
                env.occurred_at      = "2026-02-11T20:10:00Z";
                env.source           = "storefront";
                env.payload_json     = "{}";
                env.payload_json_len = 2;
                cr_assert_eq(sink_batch_add(b, i, &env, 0, errstr,
                                            sizeof(errstr)),
                             AB_OK, "%s", errstr);
                ab_envelope_clear(&env);
        }
        stack[depth++] = b;
        while (depth) {
                b    = stack[--depth];
                body = sink_batch_body(b, &len);
                cr_assert_eq(sink_batch_key(b, key, sizeof(key)), AB_OK);
                cr_assert_eq(sink_client_post(c, body, len, key, &res, NULL,
                                              NULL, errstr, sizeof(errstr)),
                             AB_OK, "%s", errstr);
                posts++;
                n = sink_batch_count(b);
                if (res.cls == SINK_RETRY_OK) {
                        for (k = 0; k < n; k++) {
                                cr_assert_eq(sink_batch_event(b, k, &off, &json,
                                                              &len),
                                             AB_OK);
                                delivered[off]++;
                        }
                } else if (n == 1) {
                        cr_assert_eq(res.cls, SINK_RETRY_POISON);
                        cr_assert_eq(sink_batch_event(b, 0, &off, &json, &len),
                                     AB_OK);
                        cr_expect_eq(res.status, 400);
                        cr_expect_str_eq(res.excerpt, "{\"error\":\"refused\"}");
                        dead[off]++;
                } else {
                        cr_assert_eq(res.cls, SINK_RETRY_POISON);
                        cr_assert_eq(sink_batch_split(b, &l, &r, errstr,
                                                      sizeof(errstr)),
                                     AB_OK, "%s", errstr);
                        cr_assert_lt(depth + 2, 64);
                        stack[depth++] = r;
                        stack[depth++] = l;
                }
                sink_batch_destroy(b);
        }
        for (i = 0; i < 40; i++) {
                int poisoned = i == 3 || i == 17 || i == 18;

                cr_expect_eq(dead[i], poisoned, "offset %d dead-lettered %d",
                             i, dead[i]);
                cr_expect_eq(delivered[i], !poisoned,
                             "offset %d delivered %d", i, delivered[i]);
        }
        /* Bisecting costs O(k log n) requests, not one per event. */
        cr_expect_lt(posts, 40, "%d requests", posts);
        cr_expect_eq(srv.nreqs, posts > MAX_REQS ? MAX_REQS : posts);
        sink_client_destroy(c);
}
