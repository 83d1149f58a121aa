/* aetherbus - Apache-2.0
 *
 * ingest_clients: INGEST_CLIENTS_FILE parsed into an immutable table of
 * clients (name, key digest, allow list, token bucket), matched in
 * constant time, swapped whole on reload. Memory is bounded by the file:
 * one bucket per client, never per key presented.
 */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "ab_file.h"
#include "ingest_clients.h"

#define NAME_MAX_LEN  64
#define ALLOW_MAX     256
#define FILE_MAX      (4 * 1024 * 1024)

struct ingest_client_s {
        char name[NAME_MAX_LEN + 1];
        unsigned char sha[SHA256_DIGEST_LENGTH];
        char **allow;
        size_t allow_cnt;
        double rate;  /* tokens per second */
        double burst; /* bucket size */
        pthread_mutex_t lock;
        double tokens;
        int64_t last_ms;
        int started;
};

struct ingest_clients_s {
        int refcnt; /* under the holder's lock */
        size_t cnt;
        ingest_client_t *clients;
};

struct ingest_clients_holder_s {
        pthread_mutex_t lock;
        ingest_clients_t *cur;
};

void ingest_clients_destroy(ingest_clients_t *tbl) {
        size_t i, j;

        if (!tbl) {
                return;
        }
        for (i = 0; i < tbl->cnt; i++) {
                for (j = 0; j < tbl->clients[i].allow_cnt; j++) {
                        free(tbl->clients[i].allow[j]);
                }
                free(tbl->clients[i].allow);
                pthread_mutex_destroy(&tbl->clients[i].lock);
        }
        free(tbl->clients);
        free(tbl);
}

static int hexval(int c) {
        if (c >= '0' && c <= '9') {
                return c - '0';
        }
        c = tolower(c);
        return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int parse_hex(const char *s, unsigned char *out) {
        size_t i;
        int hi, lo;

        if (strlen(s) != 2 * SHA256_DIGEST_LENGTH) {
                return -1;
        }
        for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
                hi = hexval((unsigned char)s[2 * i]);
                lo = hexval((unsigned char)s[2 * i + 1]);
                if (hi < 0 || lo < 0) {
                        return -1;
                }
                out[i] = (unsigned char)(hi << 4 | lo);
        }
        return 0;
}

static int valid_name(const char *s) {
        size_t n = strlen(s), i;

        if (n == 0 || n > NAME_MAX_LEN) {
                return 0;
        }
        /* It goes into a Kafka header and logs: keep it plain. */
        for (i = 0; i < n; i++) {
                if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i])) {
                        return 0;
                }
        }
        return 1;
}

static int get_number(json_t *o, const char *key, double *v) {
        json_t *j = json_object_get(o, key);

        if (!json_is_number(j)) {
                return -1;
        }
        *v = json_number_value(j);
        return 0;
}

static ab_err_t parse_client(ingest_client_t *c, json_t *o, size_t idx,
                             char *errstr, size_t errstr_size) {
        json_t *name, *sha, *allow, *a;
        size_t i;

        if (!json_is_object(o)) {
                ab_errstr_set(errstr, errstr_size, "[%zu]: must be an object",
                              idx);
                return AB_ERR_INVALID;
        }
        name = json_object_get(o, "name");
        if (!json_is_string(name) || !valid_name(json_string_value(name))) {
                ab_errstr_set(errstr, errstr_size,
                              "[%zu].name: must be 1..%d of [A-Za-z0-9._-]",
                              idx, NAME_MAX_LEN);
                return AB_ERR_INVALID;
        }
        snprintf(c->name, sizeof(c->name), "%s", json_string_value(name));
        sha = json_object_get(o, "keySha256");
        if (!json_is_string(sha) || parse_hex(json_string_value(sha), c->sha)) {
                ab_errstr_set(errstr, errstr_size,
                              "[%zu] (%s).keySha256: must be 64 hex digits",
                              idx, c->name);
                return AB_ERR_INVALID;
        }
        allow = json_object_get(o, "allow");
        if (!json_is_array(allow) || json_array_size(allow) > ALLOW_MAX) {
                ab_errstr_set(errstr, errstr_size,
                              "[%zu] (%s).allow: must be a list of at most "
                              "%d names or prefixes",
                              idx, c->name, ALLOW_MAX);
                return AB_ERR_INVALID;
        }
        c->allow = calloc(json_array_size(allow) + 1, sizeof(char *));
        if (!c->allow) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return AB_ERR_NOMEM;
        }
        json_array_foreach(allow, i, a) {
                if (!json_is_string(a) || !*json_string_value(a)) {
                        ab_errstr_set(errstr, errstr_size,
                                      "[%zu] (%s).allow[%zu]: must be a "
                                      "non-empty string",
                                      idx, c->name, i);
                        return AB_ERR_INVALID;
                }
                if (!(c->allow[c->allow_cnt] = strdup(json_string_value(a)))) {
                        ab_errstr_set(errstr, errstr_size, "out of memory");
                        return AB_ERR_NOMEM;
                }
                c->allow_cnt++;
        }
        if (get_number(o, "ratePerSec", &c->rate) || !(c->rate > 0) ||
            c->rate > 1e6) {
                ab_errstr_set(errstr, errstr_size,
                              "[%zu] (%s).ratePerSec: must be a number in "
                              "(0, 1000000]",
                              idx, c->name);
                return AB_ERR_INVALID;
        }
        if (get_number(o, "burst", &c->burst) || !(c->burst >= 1) ||
            c->burst > 1e7) {
                ab_errstr_set(errstr, errstr_size,
                              "[%zu] (%s).burst: must be a number in "
                              "[1, 10000000]",
                              idx, c->name);
                return AB_ERR_INVALID;
        }
        c->tokens = c->burst;
        return AB_OK;
}

ingest_clients_t *ingest_clients_parse(const char *text, size_t len,
                                       char *errstr, size_t errstr_size) {
        ingest_clients_t *tbl;
        json_t *doc, *o;
        json_error_t jerr;
        size_t i, j;

        doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc) {
                ab_errstr_set(errstr, errstr_size, "line %d: %s", jerr.line,
                              jerr.text);
                return NULL;
        }
        if (!json_is_array(doc) || json_array_size(doc) == 0 ||
            json_array_size(doc) > INGEST_CLIENTS_MAX) {
                json_decref(doc);
                ab_errstr_set(errstr, errstr_size,
                              "must be a list of 1..%d clients",
                              INGEST_CLIENTS_MAX);
                return NULL;
        }
        tbl = calloc(1, sizeof(*tbl));
        if (tbl) {
                tbl->clients = calloc(json_array_size(doc), sizeof(*tbl->clients));
        }
        if (!tbl || !tbl->clients) {
                free(tbl);
                json_decref(doc);
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        json_array_foreach(doc, i, o) {
                ingest_client_t *c = &tbl->clients[i];

                pthread_mutex_init(&c->lock, NULL);
                tbl->cnt = i + 1;
                if (parse_client(c, o, i, errstr, errstr_size) != AB_OK) {
                        goto fail;
                }
                for (j = 0; j < i; j++) {
                        if (!strcmp(tbl->clients[j].name, c->name)) {
                                ab_errstr_set(errstr, errstr_size,
                                              "[%zu].name: \"%s\" appears twice",
                                              i, c->name);
                                goto fail;
                        }
                        if (!memcmp(tbl->clients[j].sha, c->sha,
                                    sizeof(c->sha))) {
                                ab_errstr_set(errstr, errstr_size,
                                              "[%zu] (%s).keySha256: same key "
                                              "as \"%s\"",
                                              i, c->name, tbl->clients[j].name);
                                goto fail;
                        }
                }
        }
        json_decref(doc);
        return tbl;

fail:
        json_decref(doc);
        ingest_clients_destroy(tbl);
        return NULL;
}

ingest_clients_t *ingest_clients_load(const char *path, char *errstr,
                                      size_t errstr_size) {
        char *buf;
        size_t len;
        ingest_clients_t *tbl;
        char sub[400];

        if (!(buf = malloc(FILE_MAX + 1))) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        if (ab_file_read(path, buf, FILE_MAX + 1, &len, NULL, errstr,
                         errstr_size) != AB_OK) {
                free(buf);
                return NULL;
        }
        tbl = ingest_clients_parse(buf, len, sub, sizeof(sub));
        free(buf);
        if (!tbl) {
                ab_errstr_set(errstr, errstr_size, "%s: %s", path, sub);
        }
        return tbl;
}

size_t ingest_clients_count(const ingest_clients_t *tbl) {
        return tbl->cnt;
}

const ingest_client_t *ingest_clients_match(const ingest_clients_t *tbl,
                                            const char *key) {
        unsigned char sha[SHA256_DIGEST_LENGTH];
        const ingest_client_t *found = NULL;
        size_t i;

        if (!key || !*key) {
                return NULL;
        }
        SHA256((const unsigned char *)key, strlen(key), sha);
        /* No early exit: every digest is compared. */
        for (i = 0; i < tbl->cnt; i++) {
                if (CRYPTO_memcmp(sha, tbl->clients[i].sha, sizeof(sha)) == 0) {
                        found = &tbl->clients[i];
                }
        }
        return found;
}

const char *ingest_client_name(const ingest_client_t *c) {
        return c->name;
}

/* "commerce." covers both the dotted names under it and the business
 * events the catalog routes to the commerce prefix (ProductViewed). */
int ingest_client_allows(const ingest_client_t *c, const char *name,
                         const char *prefix) {
        size_t i, n;

        for (i = 0; name && i < c->allow_cnt; i++) {
                const char *a = c->allow[i];

                n = strlen(a);
                if (!strcmp(a, "*") || !strcmp(a, name) ||
                    (a[n - 1] == '.' && !strncmp(a, name, n)) ||
                    (a[n - 1] == '.' && prefix && strlen(prefix) == n - 1 &&
                     !strncmp(a, prefix, n - 1))) {
                        return 1;
                }
        }
        return 0;
}

int ingest_client_take(const ingest_client_t *cc, int64_t now_ms,
                       unsigned *retry_after_sp) {
        /* The bucket is the only mutable part of a client. */
        ingest_client_t *c = (ingest_client_t *)cc;
        double wait;
        int ok;

        pthread_mutex_lock(&c->lock);
        if (!c->started) {
                c->started = 1;
                c->last_ms = now_ms;
        }
        if (now_ms > c->last_ms) {
                c->tokens += (double)(now_ms - c->last_ms) / 1000.0 * c->rate;
                if (c->tokens > c->burst) {
                        c->tokens = c->burst;
                }
                c->last_ms = now_ms;
        }
        ok = c->tokens >= 1.0;
        if (ok) {
                c->tokens -= 1.0;
        } else if (retry_after_sp) {
                wait            = ceil((1.0 - c->tokens) / c->rate);
                *retry_after_sp = wait < 1 ? 1 : wait > 3600 ? 3600 : (unsigned)wait;
        }
        pthread_mutex_unlock(&c->lock);
        return ok;
}

ingest_clients_holder_t *ingest_clients_holder_new(ingest_clients_t *tbl) {
        ingest_clients_holder_t *h = calloc(1, sizeof(*h));

        if (!h) {
                ingest_clients_destroy(tbl);
                return NULL;
        }
        pthread_mutex_init(&h->lock, NULL);
        if (tbl) {
                tbl->refcnt = 1;
        }
        h->cur = tbl;
        return h;
}

void ingest_clients_holder_destroy(ingest_clients_holder_t *h) {
        if (!h) {
                return;
        }
        ingest_clients_destroy(h->cur);
        pthread_mutex_destroy(&h->lock);
        free(h);
}

ingest_clients_t *ingest_clients_get(ingest_clients_holder_t *h) {
        ingest_clients_t *tbl;

        pthread_mutex_lock(&h->lock);
        tbl = h->cur;
        if (tbl) {
                tbl->refcnt++;
        }
        pthread_mutex_unlock(&h->lock);
        return tbl;
}

void ingest_clients_put(ingest_clients_holder_t *h, ingest_clients_t *tbl) {
        int last;

        if (!tbl) {
                return;
        }
        pthread_mutex_lock(&h->lock);
        last = --tbl->refcnt == 0;
        pthread_mutex_unlock(&h->lock);
        if (last) {
                ingest_clients_destroy(tbl);
        }
}

void ingest_clients_swap(ingest_clients_holder_t *h, ingest_clients_t *tbl) {
        ingest_clients_t *old;
        const ingest_client_t *prev;
        size_t i, j;

        pthread_mutex_lock(&h->lock);
        old = h->cur;
        if (old && tbl) {
                for (i = 0; i < tbl->cnt; i++) {
                        for (j = 0; j < old->cnt; j++) {
                                prev = &old->clients[j];
                                if (strcmp(prev->name, tbl->clients[i].name)) {
                                        continue;
                                }
                                pthread_mutex_lock((pthread_mutex_t *)&prev->lock);
                                tbl->clients[i].started = prev->started;
                                tbl->clients[i].last_ms = prev->last_ms;
                                tbl->clients[i].tokens =
                                    fmin(prev->tokens, tbl->clients[i].burst);
                                pthread_mutex_unlock((pthread_mutex_t *)&prev->lock);
                                break;
                        }
                }
        }
        if (tbl) {
                tbl->refcnt = 1;
        }
        h->cur = tbl;
        pthread_mutex_unlock(&h->lock);
        ingest_clients_put(h, old);
}
