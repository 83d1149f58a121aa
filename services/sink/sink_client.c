/* aetherbus - Apache-2.0
 *
 * sink_client: slots over one curl multi handle. The easy handles are
 * made once and reused, options that never change set once, so a request
 * is three setopt calls and a header list. Removing a finished handle
 * from the multi handle leaves its connection in the multi's cache, which
 * is what keeps one connection per slot alive across requests.
 *
 * "Expect:" is sent empty: curl otherwise asks for 100-continue on a body
 * over 1 MiB (an oversized single event) and waits up to a second for a
 * server that does not answer it. Gzip reuses one deflate stream per slot (deflateReset)
 * and one output buffer grown to deflateBound().
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <zlib.h>

#include "ab_json.h"
#include "ab_time.h"
#include "sink_client.h"

/* Raw answer bytes kept: the excerpt plus room for a UTF-8 sequence that
 * starts inside it, so the cut never turns a valid character into '?'. */
#define RAW_MAX (SINK_CLIENT_EXCERPT_MAX + 3)

typedef struct slot_s {
        sink_client_t *c;
        CURL *easy;
        struct curl_slist *hdrs;
        int busy;
        void *opaque;
        sink_client_result_t *sync_res; /* sink_client_post()'s, or NULL */
        int *sync_done;
        int64_t started_ms;
        size_t body_bytes;
        char raw[RAW_MAX];
        size_t raw_len;
        char retry_after[128];
        char errbuf[CURL_ERROR_SIZE];
        z_stream z;
        int z_ready;
        unsigned char *zbuf;
        size_t zcap;
} slot_t;

struct sink_client_s {
        sink_client_conf_t conf;
        char *url;
        char *auth; /* "Authorization: Bearer ...", or NULL */
        CURLM *multi;
        slot_t *slots;
        int nslots;
        int in_flight;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

/* curl_global_init() is not thread-safe in every build: once, here. */
static void curl_init(void) {
        curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t mono_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t sink_client_sanitize(const char *in, size_t len, char *out,
                            size_t max) {
        const unsigned char *p = (const unsigned char *)in, *end = p + len;
        size_t o = 0, n;

        while (p < end && o < max) {
                if (*p < 0x80) {
                        out[o++] = *p < 0x20 || *p == 0x7f ? ' ' : (char)*p;
                        p++;
                        continue;
                }
                n = ab_json_utf8_seq(p, end);
                if (n == 0) {
                        out[o++] = '?';
                        p++;
                        continue;
                }
                if (o + n > max) {
                        break;
                }
                memcpy(out + o, p, n);
                o += n;
                p += n;
        }
        out[o] = '\0';
        return o;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *opaque) {
        slot_t *s = opaque;
        size_t n = size * nmemb, take;

        /* Keep the start, read and drop the rest: stopping early would
         * fail the transfer and lose the connection. */
        take = RAW_MAX - s->raw_len;
        if (take > n) {
                take = n;
        }
        memcpy(s->raw + s->raw_len, ptr, take);
        s->raw_len += take;
        return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *opaque) {
        static const char name[] = "retry-after:";
        slot_t *s = opaque;
        size_t n = size * nmemb, vlen;
        const char *v;

        /* A new status line (after a 1xx): headers start over. */
        if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
                s->retry_after[0] = '\0';
                return n;
        }
        if (n > sizeof(name) - 1 &&
            strncasecmp(ptr, name, sizeof(name) - 1) == 0) {
                v    = ptr + sizeof(name) - 1;
                vlen = n - (sizeof(name) - 1);
                if (vlen >= sizeof(s->retry_after)) {
                        vlen = sizeof(s->retry_after) - 1;
                }
                memcpy(s->retry_after, v, vlen);
                s->retry_after[vlen] = '\0';
        }
        return n;
}

/* Options that stay for the life of the slot. */
static ab_err_t slot_init(sink_client_t *c, slot_t *s, char *errstr,
                          size_t errstr_size) {
        CURLcode rc = CURLE_OK;
        long ct     = c->conf.connect_timeout_ms;

        s->c    = c;
        s->easy = curl_easy_init();
        if (!s->easy) {
                ab_errstr_set(errstr, errstr_size, "sink: curl_easy_init failed");
                return AB_ERR_NOMEM;
        }
#define SETOPT(opt, val)                                                       \
        do {                                                                   \
                if (rc == CURLE_OK)                                            \
                        rc = curl_easy_setopt(s->easy, opt, val);              \
        } while (0)
        SETOPT(CURLOPT_URL, c->url);
        SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
        SETOPT(CURLOPT_NOSIGNAL, 1L);
        SETOPT(CURLOPT_POST, 1L);
        SETOPT(CURLOPT_TIMEOUT_MS, (long)c->conf.timeout_ms);
        SETOPT(CURLOPT_CONNECTTIMEOUT_MS, ct);
        SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
        SETOPT(CURLOPT_TCP_NODELAY, 1L);
        SETOPT(CURLOPT_USERAGENT, "aetherbus-sink/" AB_VERSION);
        SETOPT(CURLOPT_WRITEFUNCTION, on_body);
        SETOPT(CURLOPT_WRITEDATA, s);
        SETOPT(CURLOPT_HEADERFUNCTION, on_header);
        SETOPT(CURLOPT_HEADERDATA, s);
        SETOPT(CURLOPT_ERRORBUFFER, s->errbuf);
        SETOPT(CURLOPT_PRIVATE, s);
#undef SETOPT
        if (rc != CURLE_OK) {
                ab_errstr_set(errstr, errstr_size, "sink: curl: %s",
                              curl_easy_strerror(rc));
                return AB_ERR_INTERNAL;
        }
        return AB_OK;
}

static int has_crlf(const char *s) {
        return strpbrk(s, "\r\n") != NULL;
}

sink_client_t *sink_client_new(const sink_client_conf_t *conf, char *errstr,
                               size_t errstr_size) {
        sink_client_t *c;
        size_t alen;
        int i;

        if (!conf->url || (strncasecmp(conf->url, "http://", 7) != 0 &&
                           strncasecmp(conf->url, "https://", 8) != 0)) {
                ab_errstr_set(errstr, errstr_size,
                              "EVENT_SINK_URL: must be an http:// or "
                              "https:// URL");
                return NULL;
        }
        if (conf->token && has_crlf(conf->token)) {
                ab_errstr_set(errstr, errstr_size,
                              "EVENT_SINK_TOKEN: must be one line");
                return NULL;
        }
        pthread_once(&curl_once, curl_init);
        if (curl_init_rc != CURLE_OK) {
                ab_errstr_set(errstr, errstr_size, "sink: curl: %s",
                              curl_easy_strerror(curl_init_rc));
                return NULL;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                ab_errstr_set(errstr, errstr_size, "sink: out of memory");
                return NULL;
        }
        c->conf = *conf;
        if (c->conf.timeout_ms <= 0) {
                c->conf.timeout_ms = SINK_TIMEOUT_MS_DEF;
        }
        if (c->conf.connect_timeout_ms <= 0 ||
            c->conf.connect_timeout_ms > c->conf.timeout_ms) {
                c->conf.connect_timeout_ms = c->conf.timeout_ms;
        }
        if (c->conf.concurrency <= 0) {
                c->conf.concurrency = SINK_CONCURRENCY_DEF;
        }
        if (c->conf.concurrency > SINK_CONCURRENCY_MAX) {
                c->conf.concurrency = SINK_CONCURRENCY_MAX;
        }
        if (c->conf.retry_after_cap_ms <= 0) {
                c->conf.retry_after_cap_ms = SINK_RETRY_AFTER_CAP_MS_DEF;
        }
        c->url        = strdup(conf->url);
        c->conf.url   = c->url;
        c->conf.token = NULL; /* only the header keeps it */
        if (conf->token && *conf->token) {
                alen    = strlen(conf->token) + sizeof("Authorization: Bearer ");
                c->auth = malloc(alen);
                if (c->auth) {
                        snprintf(c->auth, alen, "Authorization: Bearer %s",
                                 conf->token);
                }
        }
        c->nslots = c->conf.concurrency;
        c->slots  = calloc((size_t)c->nslots, sizeof(*c->slots));
        c->multi  = curl_multi_init();
        if (!c->url || (conf->token && *conf->token && !c->auth) ||
            !c->slots || !c->multi) {
                ab_errstr_set(errstr, errstr_size, "sink: out of memory");
                sink_client_destroy(c);
                return NULL;
        }
        /* One cached connection per slot: more would only idle. */
        if (curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS,
                              (long)c->nslots) != CURLM_OK) {
                ab_errstr_set(errstr, errstr_size,
                              "sink: curl: CURLMOPT_MAXCONNECTS refused");
                sink_client_destroy(c);
                return NULL;
        }
        for (i = 0; i < c->nslots; i++) {
                if (slot_init(c, &c->slots[i], errstr, errstr_size) != AB_OK) {
                        sink_client_destroy(c);
                        return NULL;
                }
        }
        return c;
}

void sink_client_destroy(sink_client_t *c) {
        int i;

        if (!c) {
                return;
        }
        for (i = 0; c->slots && i < c->nslots; i++) {
                slot_t *s = &c->slots[i];

                if (s->busy && c->multi) {
                        curl_multi_remove_handle(c->multi, s->easy);
                }
                if (s->easy) {
                        curl_easy_cleanup(s->easy);
                }
                curl_slist_free_all(s->hdrs);
                if (s->z_ready) {
                        deflateEnd(&s->z);
                }
                free(s->zbuf);
        }
        if (c->multi) {
                curl_multi_cleanup(c->multi);
        }
        free(c->slots);
        free(c->url);
        if (c->auth) {
                /* The token is a secret: do not leave it in freed memory. */
                memset(c->auth, 0, strlen(c->auth));
                free(c->auth);
        }
        free(c);
}

int sink_client_free_slots(const sink_client_t *c) {
        return c->nslots - c->in_flight;
}

int sink_client_in_flight(const sink_client_t *c) {
        return c->in_flight;
}

/* Compresses \p body into the slot's buffer as one gzip member. */
static ab_err_t gzip_body(slot_t *s, const char *body, size_t len,
                          char *errstr, size_t errstr_size) {
        uLong bound;
        int zr;

        if (len > UINT_MAX) {
                ab_errstr_set(errstr, errstr_size,
                              "sink: body of %zu bytes too large for gzip",
                              len);
                return AB_ERR_TOO_LARGE;
        }
        if (!s->z_ready) {
                memset(&s->z, 0, sizeof(s->z));
                /* 15 + 16: zlib writes the gzip wrapper, not zlib's. */
                if (deflateInit2(&s->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
                                 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
                        ab_errstr_set(errstr, errstr_size,
                                      "sink: deflateInit2 failed");
                        return AB_ERR_NOMEM;
                }
                s->z_ready = 1;
        } else if (deflateReset(&s->z) != Z_OK) {
                ab_errstr_set(errstr, errstr_size, "sink: deflateReset failed");
                return AB_ERR_INTERNAL;
        }
        /* zlib 1.2.13 counts the gzip wrapper in deflateBound(); the 18
         * bytes of header and trailer on top cost nothing and keep an
         * older zlib that does not from failing Z_FINISH. */
        bound = deflateBound(&s->z, (uLong)len) + 18;
        if (bound > UINT_MAX) {
                ab_errstr_set(errstr, errstr_size,
                              "sink: body of %zu bytes too large for gzip",
                              len);
                return AB_ERR_TOO_LARGE;
        }
        if (s->zcap < bound) {
                unsigned char *nb = realloc(s->zbuf, bound);

                if (!nb) {
                        ab_errstr_set(errstr, errstr_size,
                                      "sink: out of memory");
                        return AB_ERR_NOMEM;
                }
                s->zbuf = nb;
                s->zcap = bound;
        }
        s->z.next_in   = (Bytef *)(uintptr_t)body;
        s->z.avail_in  = (uInt)len;
        s->z.next_out  = s->zbuf;
        s->z.avail_out = (uInt)s->zcap;
        zr             = deflate(&s->z, Z_FINISH);
        if (zr != Z_STREAM_END) {
                ab_errstr_set(errstr, errstr_size, "sink: deflate: %d", zr);
                return AB_ERR_INTERNAL;
        }
        s->body_bytes = s->zcap - s->z.avail_out;
        return AB_OK;
}

static struct curl_slist *add_header(struct curl_slist *l, const char *h,
                                     int *failed) {
        struct curl_slist *n;

        if (*failed) {
                return l;
        }
        n = curl_slist_append(l, h);
        if (!n) {
                *failed = 1;
                return l;
        }
        return n;
}

static slot_t *free_slot(sink_client_t *c) {
        int i;

        for (i = 0; i < c->nslots; i++) {
                if (!c->slots[i].busy) {
                        return &c->slots[i];
                }
        }
        return NULL;
}

static ab_err_t submit(sink_client_t *c, const char *body, size_t len,
                       const char *key, void *opaque, slot_t **slotp,
                       char *errstr, size_t errstr_size) {
        /* "Idempotency-Key: " + sink_batch's longest key, and more. */
        char idem[512];
        const char *data = body;
        slot_t *s;
        CURLcode rc;
        CURLMcode mrc;
        int failed = 0, r;
        ab_err_t err;

        s = free_slot(c);
        if (!s) {
                ab_errstr_set(errstr, errstr_size,
                              "sink: all %d slots are busy", c->nslots);
                return AB_ERR_UNAVAILABLE;
        }
        if (!key || !*key || has_crlf(key)) {
                ab_errstr_set(errstr, errstr_size,
                              "sink: Idempotency-Key must be one "
                              "non-empty line");
                return AB_ERR_INVALID;
        }
        r = snprintf(idem, sizeof(idem), "Idempotency-Key: %s", key);
        if (r < 0 || (size_t)r >= sizeof(idem)) {
                ab_errstr_set(errstr, errstr_size,
                              "sink: Idempotency-Key too long");
                return AB_ERR_INVALID;
        }
        s->body_bytes = len;
        if (c->conf.gzip) {
                err = gzip_body(s, body, len, errstr, errstr_size);
                if (err != AB_OK) {
                        return err;
                }
                data = (const char *)s->zbuf;
        }
        curl_slist_free_all(s->hdrs);
        s->hdrs = NULL;
        s->hdrs = add_header(s->hdrs, "Content-Type: application/json",
                             &failed);
        s->hdrs = add_header(s->hdrs, idem, &failed);
        s->hdrs = add_header(s->hdrs, "Expect:", &failed);
        if (c->auth) {
                s->hdrs = add_header(s->hdrs, c->auth, &failed);
        }
        if (c->conf.gzip) {
                s->hdrs = add_header(s->hdrs, "Content-Encoding: gzip",
                                     &failed);
        }
        if (failed) {
                ab_errstr_set(errstr, errstr_size, "sink: out of memory");
                return AB_ERR_NOMEM;
        }
        rc = curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->hdrs);
        if (rc == CURLE_OK) {
                rc = curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                                      (curl_off_t)s->body_bytes);
        }
        if (rc == CURLE_OK) {
                rc = curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, data);
        }
        if (rc != CURLE_OK) {
                ab_errstr_set(errstr, errstr_size, "sink: curl: %s",
                              curl_easy_strerror(rc));
                return AB_ERR_INTERNAL;
        }
        s->raw_len        = 0;
        s->retry_after[0] = '\0';
        s->errbuf[0]      = '\0';
        s->opaque         = opaque;
        s->sync_res       = NULL;
        s->sync_done      = NULL;
        s->started_ms     = mono_ms();
        mrc               = curl_multi_add_handle(c->multi, s->easy);
        if (mrc != CURLM_OK) {
                ab_errstr_set(errstr, errstr_size, "sink: curl: %s",
                              curl_multi_strerror(mrc));
                return AB_ERR_INTERNAL;
        }
        s->busy = 1;
        c->in_flight++;
        if (slotp) {
                *slotp = s;
        }
        return AB_OK;
}

ab_err_t sink_client_submit(sink_client_t *c, const char *body, size_t len,
                            const char *idempotency_key, void *opaque,
                            char *errstr, size_t errstr_size) {
        return submit(c, body, len, idempotency_key, opaque, NULL, errstr,
                      errstr_size);
}

static void finish(slot_t *s, CURLcode code, sink_client_result_t *res) {
        long status = 0;

        memset(res, 0, sizeof(*res));
        if (curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status) !=
            CURLE_OK) {
                status = 0;
        }
        res->status     = status;
        res->curl_code  = (int)code;
        res->cls        = sink_retry_classify(status, (int)code);
        res->opaque     = s->opaque;
        res->body_bytes = s->body_bytes;
        res->elapsed_ms = mono_ms() - s->started_ms;
        res->retry_after_ms =
            code == CURLE_OK
                ? sink_retry_after_ms(s->retry_after, ab_time_now_ms(),
                                      s->c->conf.retry_after_cap_ms)
                : -1;
        sink_client_sanitize(s->raw, s->raw_len, res->excerpt,
                             SINK_CLIENT_EXCERPT_MAX);
        if (code != CURLE_OK) {
                const char *e = s->errbuf[0] ? s->errbuf
                                             : curl_easy_strerror(code);

                sink_client_sanitize(e, strlen(e), res->error,
                                     sizeof(res->error) - 1);
        }
}

/* Hands every completed transfer to its owner. */
static int collect(sink_client_t *c, sink_client_done_cb_t *cb,
                   void *cb_opaque) {
        sink_client_result_t res;
        CURLMsg *msg;
        slot_t *s;
        char *priv;
        int left, done = 0;

        while ((msg = curl_multi_info_read(c->multi, &left))) {
                if (msg->msg != CURLMSG_DONE) {
                        continue;
                }
                priv = NULL;
                if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
                                      &priv) != CURLE_OK ||
                    !priv) {
                        continue;
                }
                s = (slot_t *)(void *)priv;
                finish(s, msg->data.result, &res);
                /* Removing keeps the connection in the multi's cache. */
                curl_multi_remove_handle(c->multi, s->easy);
                s->busy = 0;
                c->in_flight--;
                done++;
                if (s->sync_res) {
                        *s->sync_res  = res;
                        *s->sync_done = 1;
                        s->sync_res   = NULL;
                        s->sync_done  = NULL;
                } else if (cb) {
                        cb(&res, cb_opaque);
                }
        }
        return done;
}

int sink_client_perform(sink_client_t *c, int timeout_ms,
                        sink_client_done_cb_t *cb, void *cb_opaque) {
        int running = 0, done;

        if (curl_multi_perform(c->multi, &running) != CURLM_OK) {
                return -1;
        }
        done = collect(c, cb, cb_opaque);
        if (done || !c->in_flight || timeout_ms <= 0) {
                return done;
        }
        if (curl_multi_poll(c->multi, NULL, 0, timeout_ms, NULL) != CURLM_OK ||
            curl_multi_perform(c->multi, &running) != CURLM_OK) {
                return -1;
        }
        return collect(c, cb, cb_opaque);
}

ab_err_t sink_client_post(sink_client_t *c, const char *body, size_t len,
                          const char *idempotency_key,
                          sink_client_result_t *res,
                          sink_client_done_cb_t *cb, void *cb_opaque,
                          char *errstr, size_t errstr_size) {
        slot_t *s = NULL;
        int done  = 0;
        ab_err_t err;

        err = submit(c, body, len, idempotency_key, NULL, &s, errstr,
                     errstr_size);
        if (err != AB_OK) {
                return err;
        }
        s->sync_res  = res;
        s->sync_done = &done;
        /* Ends: every transfer is bounded by CURLOPT_TIMEOUT_MS. */
        while (!done) {
                if (sink_client_perform(c, 100, cb, cb_opaque) < 0) {
                        /* The multi handle itself failed (out of memory):
                         * give the slot back rather than spin. */
                        curl_multi_remove_handle(c->multi, s->easy);
                        s->busy      = 0;
                        s->sync_res  = NULL;
                        s->sync_done = NULL;
                        c->in_flight--;
                        ab_errstr_set(errstr, errstr_size,
                                      "sink: curl multi handle failed");
                        return AB_ERR_INTERNAL;
                }
        }
        return AB_OK;
}
