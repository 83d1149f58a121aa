/* aetherbus - Apache-2.0
 *
 * stats_window: one-minute buckets of the last hour, with bounded tables.
 *
 * Duplicates: a client that retries sends the same id again, and ingest
 * stamps the retry with a new receivedAt, usually seconds later. The ids
 * counted in each of STATS_DEDUPE_MINUTES minutes (default 5) are kept in
 * a Bloom filter of 2^23 bits (1 MiB) with k = 7; an id found in the
 * filters of the minutes up to that many before its own is counted once. False positives (an event wrongly taken
 * for a duplicate), for all the filters asked together: about 2e-7 at
 * 100,000 ids a minute, 0.3 % at 500,000. A filter takes at most 500,000
 * ids; beyond, the minute's further ids are counted without the check and
 * the counter dedupeUnchecked says how many, so a burst can over-count but
 * never silently swallow events. Checking the whole hour at the same error
 * would need 60 such filters (60 MiB): the horizon is the trade.
 *
 * Time: accepted events count in the minute of their receivedAt. Older
 * than the hour when read: "late", left out (a replay from the beginning
 * on a broker without timestamp lookups reads many). Ahead of this clock
 * by at most the future allowance (clocks of two hosts differ): counted in
 * the current minute. Further ahead: "future", left out.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "ab_time.h"
#include "stats_window.h"

#define BLOOM_BITS (1u << 23)
#define BLOOM_K    7
#define BLOOM_CAP  500000 /* ids per filter: FP 0.05 % there */
#define SOURCES    32
#define REASONS    32
#define TENANTS    32
#define HBUCKETS   160 /* 2^(i/4) - 1 ms: up to ~10^12 ms */
#define KEY_MAX    64

typedef struct kv_s {
        char key[KEY_MAX];
        uint64_t h; /* of key: most comparisons end here */
        uint64_t n;
        uint64_t err; /* Space-Saving: overestimate bound */
} kv_t;

typedef struct hist_s {
        uint64_t cnt;
        double sum;
        double max;
        uint64_t b[HBUCKETS];
} hist_t;

typedef struct bucket_s {
        int64_t minute; /* -1: empty */
        uint64_t total;
        uint64_t *by_name; /* catalog count + 1 ("other") */
        kv_t sources[SOURCES];
        uint64_t sources_other;
        kv_t reasons[REASONS]; /* key "rejected:<code>" / "deadletter:..." */
        uint64_t reasons_other;
        uint64_t failures;
        kv_t tenants[TENANTS];
        uint64_t skewed;
        hist_t event_lag;
        hist_t pipeline_lag;
} bucket_t;

typedef struct filter_s {
        int64_t minute; /* -1: empty */
        uint64_t n;
        unsigned char *bits;
} filter_t;

struct stats_window_s {
        const ab_catalog_t *cat;
        size_t names;
        size_t last_name;
        int64_t future_ms;
        int dedupe_minutes;
        pthread_mutex_t lock;
        bucket_t b[STATS_BUCKETS];
        filter_t f[STATS_DEDUPE_MAX];
        stats_counters_t c;
};

void stats_window_conf_init(stats_window_conf_t *conf) {
        conf->future_ms      = 300000;
        conf->dedupe_minutes = 5;
}

stats_window_t *stats_window_new(const ab_catalog_t *cat,
                                 const stats_window_conf_t *conf) {
        stats_window_t *w;
        size_t i;

        w = calloc(1, sizeof(*w));
        if (!w) {
                return NULL;
        }
        w->cat            = cat;
        w->names          = ab_catalog_count(cat);
        w->future_ms      = conf->future_ms;
        w->dedupe_minutes = conf->dedupe_minutes < 0 ? 0
                            : conf->dedupe_minutes > STATS_DEDUPE_MAX
                                ? STATS_DEDUPE_MAX
                                : conf->dedupe_minutes;
        pthread_mutex_init(&w->lock, NULL);
        for (i = 0; i < STATS_BUCKETS; i++) {
                w->b[i].minute  = -1;
                w->b[i].by_name = calloc(w->names + 1, sizeof(uint64_t));
                if (!w->b[i].by_name) {
                        stats_window_destroy(w);
                        return NULL;
                }
        }
        for (i = 0; i < (size_t)w->dedupe_minutes; i++) {
                w->f[i].minute = -1;
                if (!(w->f[i].bits = calloc(BLOOM_BITS / 8, 1))) {
                        stats_window_destroy(w);
                        return NULL;
                }
        }
        return w;
}

void stats_window_destroy(stats_window_t *w) {
        size_t i;

        if (!w) {
                return;
        }
        for (i = 0; i < STATS_BUCKETS; i++) {
                free(w->b[i].by_name);
        }
        for (i = 0; i < STATS_DEDUPE_MAX; i++) {
                free(w->f[i].bits);
        }
        pthread_mutex_destroy(&w->lock);
        free(w);
}

static void bucket_reset(stats_window_t *w, bucket_t *b, int64_t minute) {
        uint64_t *by_name = b->by_name;

        memset(by_name, 0, (w->names + 1) * sizeof(uint64_t));
        memset(b, 0, sizeof(*b));
        b->by_name = by_name;
        b->minute  = minute;
}

/* The bucket of \p minute if it is inside the hour before now. */
static bucket_t *bucket_for(stats_window_t *w, int64_t minute, int64_t now_min,
                            int create) {
        bucket_t *b;

        if (minute > now_min || minute <= now_min - STATS_BUCKETS) {
                return NULL;
        }
        b = &w->b[minute % STATS_BUCKETS];
        if (b->minute != minute) {
                if (!create) {
                        return NULL;
                }
                bucket_reset(w, b, minute);
        }
        return b;
}

static void hashes(const char *id, uint32_t h[BLOOM_K]) {
        unsigned char d[SHA256_DIGEST_LENGTH];
        uint64_t a, c;
        int i;

        SHA256((const unsigned char *)id, strlen(id), d);
        memcpy(&a, d, 8);
        memcpy(&c, d + 8, 8);
        for (i = 0; i < BLOOM_K; i++) {
                h[i] = (uint32_t)((a + (uint64_t)i * c) % BLOOM_BITS);
        }
}

static int bloom_has(const filter_t *f, const uint32_t h[BLOOM_K]) {
        int i;

        for (i = 0; i < BLOOM_K; i++) {
                if (!(f->bits[h[i] >> 3] & (1u << (h[i] & 7)))) {
                        return 0;
                }
        }
        return 1;
}

static void bloom_set(filter_t *f, const uint32_t h[BLOOM_K]) {
        int i;

        for (i = 0; i < BLOOM_K; i++) {
                f->bits[h[i] >> 3] |= (unsigned char)(1u << (h[i] & 7));
        }
        f->n++;
}

/* Whether id was counted in the minutes (minute - horizon, minute]; if
 * not, remembers it in the filter of minute. The horizon is relative to
 * the event, not to now, so a rebuild that replays the hour answers what
 * the live window answered. A minute older than the one its filter slot
 * holds (partitions replayed unevenly) is counted unchecked rather than
 * wiping a newer filter. 0: new, 1: duplicate. */
static int dedupe(stats_window_t *w, const char *id, int64_t minute) {
        uint32_t h[BLOOM_K];
        filter_t *f;
        int i;

        if (!w->dedupe_minutes || !id) {
                return 0;
        }
        hashes(id, h);
        for (i = 0; i < w->dedupe_minutes; i++) {
                if (w->f[i].minute > minute - w->dedupe_minutes &&
                    w->f[i].minute <= minute && bloom_has(&w->f[i], h)) {
                        return 1;
                }
        }
        f = &w->f[minute % w->dedupe_minutes];
        if (f->minute > minute) {
                w->c.dedupe_unchecked++;
                return 0;
        }
        if (f->minute != minute) {
                memset(f->bits, 0, BLOOM_BITS / 8);
                f->minute = minute;
                f->n      = 0;
        }
        if (f->n >= BLOOM_CAP) {
                w->c.dedupe_unchecked++;
                return 0;
        }
        bloom_set(f, h);
        return 0;
}

/* FNV-1a of the first KEY_MAX-1 bytes: the part a table keeps. */
static uint64_t key_hash(const char *key, size_t *lenp) {
        uint64_t h = 14695981039346656037ull;
        size_t n;

        for (n = 0; key[n] && n < KEY_MAX - 1; n++) {
                h = (h ^ (unsigned char)key[n]) * 1099511628211ull;
        }
        *lenp = n;
        return h;
}

static void kv_set(kv_t *e, const char *key, size_t len, uint64_t h) {
        memcpy(e->key, key, len);
        e->key[len] = '\0';
        e->h        = h;
}

static int kv_is(const kv_t *e, const char *key, size_t len, uint64_t h) {
        return e->h == h && !strncmp(e->key, key, len) && !e->key[len];
}

/* Exact while there is room, then "other". */
static void kv_add(kv_t *t, size_t cap, uint64_t *other, const char *key) {
        size_t i, len;
        uint64_t h = key_hash(key, &len);

        for (i = 0; i < cap; i++) {
                if (!t[i].n) {
                        kv_set(&t[i], key, len, h);
                        t[i].n = 1;
                        return;
                }
                if (kv_is(&t[i], key, len, h)) {
                        t[i].n++;
                        return;
                }
        }
        (*other)++;
}

/* Space-Saving (Metwally et al.): the smallest counter is replaced, so
 * the heavy hitters are kept with bounded memory whatever the number of
 * tenants; n overestimates by at most err. */
static void ss_add(kv_t *t, size_t cap, const char *key) {
        size_t i, min = 0, len;
        uint64_t h = key_hash(key, &len);

        for (i = 0; i < cap; i++) {
                if (t[i].n && kv_is(&t[i], key, len, h)) {
                        t[i].n++;
                        return;
                }
                if (t[i].n < t[min].n) {
                        min = i;
                }
        }
        t[min].err = t[min].n;
        t[min].n++;
        kv_set(&t[min], key, len, h);
}

static void hist_add(hist_t *h, double v) {
        int i;

        if (v < 0) {
                v = 0;
        }
        i = (int)(log2(v + 1) * 4);
        if (i >= HBUCKETS) {
                i = HBUCKETS - 1;
        }
        h->b[i]++;
        h->cnt++;
        h->sum += v;
        if (v > h->max) {
                h->max = v;
        }
}

static void hist_merge(hist_t *into, const hist_t *h) {
        int i;

        into->cnt += h->cnt;
        into->sum += h->sum;
        if (h->max > into->max) {
                into->max = h->max;
        }
        for (i = 0; i < HBUCKETS; i++) {
                into->b[i] += h->b[i];
        }
}

/* The upper bound of the bucket holding the q-quantile (at most max). */
static double hist_q(const hist_t *h, double q) {
        uint64_t want, seen = 0;
        double ub;
        int i;

        if (!h->cnt) {
                return 0;
        }
        want = (uint64_t)ceil(q * (double)h->cnt);
        for (i = 0; i < HBUCKETS; i++) {
                seen += h->b[i];
                if (seen >= want) {
                        ub = pow(2, (double)(i + 1) / 4) - 1;
                        return ub < h->max ? ub : h->max;
                }
        }
        return h->max;
}

static size_t name_index(stats_window_t *w, const char *name) {
        const ab_catalog_entry_t *e = ab_catalog_find(w->cat, name);
        size_t i;

        if (!e) {
                return w->names;
        }
        /* Entries are one array in catalog order: the last hit first. */
        if (w->last_name < w->names && ab_catalog_get(w->cat, w->last_name) == e) {
                return w->last_name;
        }
        for (i = 0; i < w->names; i++) {
                if (ab_catalog_get(w->cat, i) == e) {
                        w->last_name = i;
                        return i;
                }
        }
        return w->names;
}

/* The minute of time at, or -1 with the counter it falls under. */
static int64_t minute_of(stats_window_t *w, int64_t at, int64_t now_ms) {
        int64_t now_min = now_ms / 60000, minute = at / 60000;

        if (minute > now_min) {
                if (at - now_ms > w->future_ms) {
                        w->c.future++;
                        return -1;
                }
                return now_min;
        }
        if (minute <= now_min - STATS_BUCKETS) {
                w->c.late++;
                return -1;
        }
        return minute;
}

void stats_window_add(stats_window_t *w, const ab_consume_rec_t *rec,
                      int64_t now_ms) {
        const ab_envelope_t *env = &rec->env;
        int64_t now_min = now_ms / 60000, at, minute;
        bucket_t *b;
        char key[KEY_MAX];

        pthread_mutex_lock(&w->lock);
        w->c.records++;
        switch (rec->kind) {
        case AB_CONSUME_UNDECODABLE:
                w->c.undecodable++;
                break;
        case AB_CONSUME_ACCEPTED:
                at = env->received_at_ms > 0 ? env->received_at_ms
                                             : rec->timestamp_ms;
                if ((minute = minute_of(w, at, now_ms)) < 0) {
                        break;
                }
                if (dedupe(w, env->id, minute)) {
                        w->c.duplicates++;
                        break;
                }
                b = bucket_for(w, minute, now_min, 1);
                b->total++;
                b->by_name[name_index(w, env->name)]++;
                kv_add(b->sources, SOURCES, &b->sources_other, env->source);
                ss_add(b->tenants, TENANTS,
                       env->company_id ? env->company_id : "");
                if (env->occurred_at_ms > at + STATS_SKEW_MS) {
                        b->skewed++;
                        w->c.skewed++;
                } else {
                        hist_add(&b->event_lag, (double)(at - env->occurred_at_ms));
                }
                if (rec->timestamp_ms > 0) {
                        hist_add(&b->pipeline_lag,
                                 (double)(now_ms - rec->timestamp_ms));
                }
                break;
        case AB_CONSUME_REJECTED:
        case AB_CONSUME_DEADLETTER:
                at = rec->fail.received_at_ms > 0 ? rec->fail.received_at_ms
                                                  : rec->timestamp_ms;
                if ((minute = minute_of(w, at, now_ms)) < 0) {
                        break;
                }
                b = bucket_for(w, minute, now_min, 1);
                snprintf(key, sizeof(key), "%s:%s",
                         rec->kind == AB_CONSUME_REJECTED ? "rejected"
                                                          : "deadletter",
                         rec->fail.code ? rec->fail.code : "UNKNOWN");
                b->failures++;
                kv_add(b->reasons, REASONS, &b->reasons_other, key);
                break;
        }
        pthread_mutex_unlock(&w->lock);
}

static void obj_add(json_t *o, const char *k, uint64_t n) {
        json_t *v = json_object_get(o, k);

        json_object_set_new(o, k,
                            json_integer((json_int_t)((v ? json_integer_value(v)
                                                         : 0) +
                                                      (json_int_t)n)));
}

static json_t *hist_json(const hist_t *h) {
        return json_pack("{s:I,s:f,s:f,s:f,s:f,s:f}", "count",
                         (json_int_t)h->cnt, "avg",
                         h->cnt ? h->sum / (double)h->cnt : 0.0, "p50",
                         hist_q(h, 0.5), "p95", hist_q(h, 0.95), "p99",
                         hist_q(h, 0.99), "max", h->max);
}

json_t *stats_window_query(stats_window_t *w, const stats_query_t *q,
                           int64_t now_ms) {
        int64_t now_min = now_ms / 60000, m;
        json_t *by_name, *by_prefix, *by_source, *by_reason,
            *series, *tenants, *doc;
        hist_t ev, pl;
        uint64_t total, fail_total, n;
        stats_counters_t c;
        const ab_catalog_entry_t *e;
        bucket_t *b;
        size_t i;
        char from[40], to[40];

        memset(&ev, 0, sizeof(ev));
        memset(&pl, 0, sizeof(pl));
        total = fail_total = 0;
        by_name   = json_object();
        by_prefix = json_object();
        by_source = json_object();
        by_reason = json_object();
        series    = json_array();
        tenants   = json_object();
        pthread_mutex_lock(&w->lock);
        for (m = now_min - q->minutes + 1; m <= now_min; m++) {
                b = bucket_for(w, m, now_min, 0);
                n = 0;
                if (b) {
                        for (i = 0; i <= w->names; i++) {
                                e = i < w->names ? ab_catalog_get(w->cat, i) : NULL;
                                if (!b->by_name[i] ||
                                    (q->name && (!e || strcmp(e->name, q->name))) ||
                                    (q->prefix && (!e || strcmp(e->prefix, q->prefix)))) {
                                        continue;
                                }
                                n += b->by_name[i];
                                obj_add(by_name, e ? e->name : "other", b->by_name[i]);
                                obj_add(by_prefix, e ? e->prefix : "other",
                                        b->by_name[i]);
                        }
                        if (q->company_id) {
                                /* Only heavy hitters are kept per tenant. */
                                n = 0;
                                for (i = 0; i < TENANTS; i++) {
                                        if (b->tenants[i].n &&
                                            !strcmp(b->tenants[i].key, q->company_id)) {
                                                n = b->tenants[i].n;
                                        }
                                }
                        }
                        if (!q->name && !q->prefix && !q->company_id) {
                                for (i = 0; i < SOURCES && b->sources[i].n; i++) {
                                        obj_add(by_source, b->sources[i].key,
                                                b->sources[i].n);
                                }
                                if (b->sources_other) {
                                        obj_add(by_source, "other", b->sources_other);
                                }
                                hist_merge(&ev, &b->event_lag);
                                hist_merge(&pl, &b->pipeline_lag);
                                fail_total += b->failures;
                                for (i = 0; i < REASONS && b->reasons[i].n; i++) {
                                        obj_add(by_reason, b->reasons[i].key,
                                                b->reasons[i].n);
                                }
                                if (b->reasons_other) {
                                        obj_add(by_reason, "other", b->reasons_other);
                                }
                        }
                        for (i = 0; i < TENANTS; i++) {
                                if (b->tenants[i].n && b->tenants[i].key[0]) {
                                        obj_add(tenants, b->tenants[i].key,
                                                b->tenants[i].n);
                                }
                        }
                }
                total += n;
                ab_time_format(m * 60000, from, sizeof(from));
                json_array_append_new(
                    series, json_pack("{s:s,s:I,s:I}", "minute", from, "total",
                                      (json_int_t)n, "failures",
                                      (json_int_t)(b && !q->name && !q->prefix &&
                                                           !q->company_id
                                                       ? b->failures
                                                       : 0)));
        }
        c = w->c;
        pthread_mutex_unlock(&w->lock);

        ab_time_format((now_min - q->minutes + 1) * 60000, from,
                                sizeof(from));
        ab_time_format((now_min + 1) * 60000, to, sizeof(to));
        doc = json_pack(
            "{s:s,s:s,s:s,s:I,s:I,s:o,s:f,s:o,s:o,s:{s:o,s:o,s:o,s:o},s:o,s:{s:I,s:I,s:I,s:I}}",
            "window",
            q->minutes == 5 ? "5m" : q->minutes == 15 ? "15m" : "1h", "from",
            from, "to", to, "total", (json_int_t)total, "failures",
            (json_int_t)fail_total, "failuresByReason", by_reason, "avgLagMs",
            ev.cnt ? ev.sum / (double)ev.cnt : 0.0, "eventLagMs",
            hist_json(&ev), "pipelineLagMs", hist_json(&pl), "breakdown",
            "name", by_name, "prefix", by_prefix, "source", by_source,
            "topTenants", tenants, "series", series, "counters",
            "undecodable", (json_int_t)c.undecodable, "late",
            (json_int_t)c.late, "clockSkewed", (json_int_t)c.skewed,
            "duplicates", (json_int_t)c.duplicates);
        if (doc) {
                json_object_set_new(json_object_get(doc, "counters"), "future",
                                    json_integer((json_int_t)c.future));
                json_object_set_new(json_object_get(doc, "counters"),
                                    "dedupeUnchecked",
                                    json_integer((json_int_t)c.dedupe_unchecked));
        }
        return doc;
}

void stats_window_counters(stats_window_t *w, stats_counters_t *c) {
        pthread_mutex_lock(&w->lock);
        *c = w->c;
        pthread_mutex_unlock(&w->lock);
}
