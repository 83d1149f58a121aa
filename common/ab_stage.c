/* aetherbus - Apache-2.0
 *
 * ab_stage: per-prefix, per-minute stage counters in event time (see
 * ab_stage.h). One mutex guards the rings: a count is a handful of
 * instructions under an uncontended lock, and rolling a bucket over (reset
 * when a newer minute lands on its slot) must be atomic with the add. The
 * per-prefix totals on /metrics go through ab_metrics' lock-free series.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ab_stage.h"
#include "ab_time.h"

#define MIN_MS      AB_STAGE_MINUTE_MS
#define AHEAD_MIN   5 /* minutes a receivedAt may be ahead of our clock */
#define OTHER_SLOT  "_other"

typedef struct bucket_s {
        int64_t minute; /* minutes since the epoch; 0: empty */
        uint64_t count;
} bucket_t;

typedef struct slot_s {
        char prefix[64];
        ab_metric_t *total[AB_STAGE_MAX_STAGES]; /* series per stage */
        bucket_t ring[AB_STAGE_MAX_STAGES][AB_STAGE_MINUTES];
} slot_t;

struct ab_stage_s {
        char service[32];
        char stages[AB_STAGE_MAX_STAGES][32];
        int stage_cnt;
        int64_t started_ms;
        int64_t counts_from_ms;
        ab_metric_t *m_total; /* stage_events_total{stage,prefix} */
        pthread_mutex_t lock;
        uint64_t out_of_window;
        size_t catalog_cnt; /* slots[0..catalog_cnt) are the catalog's */
        size_t slot_cnt;    /* then up to AB_STAGE_MAX_OTHER, then _other */
        slot_t slots[];
};

static void slot_init(ab_stage_t *st, slot_t *s, const char *prefix) {
        int i;

        snprintf(s->prefix, sizeof(s->prefix), "%s", prefix);
        for (i = 0; i < st->stage_cnt; i++) {
                /* NULL when the family is full: the total drops, the
                 * per-minute figures stay. */
                s->total[i] = st->m_total ? AB_METRIC_WITH(st->m_total,
                                                           st->stages[i],
                                                           s->prefix)
                                          : NULL;
        }
}

ab_stage_t *ab_stage_new(ab_metrics_t *metrics, const char *service,
                         const char *stages, const ab_catalog_t *cat,
                         int64_t counts_from_ms, char *errstr,
                         size_t errstr_size) {
        ab_stage_t *st;
        size_t pcnt, i;
        const char *p, *e;
        size_t len;

        pcnt = cat ? ab_catalog_prefix_count(cat) : 0;
        /* catalog + named others + _other */
        st = calloc(1, sizeof(*st) +
                           (pcnt + AB_STAGE_MAX_OTHER + 1) * sizeof(slot_t));
        if (!st) {
                ab_errstr_set(errstr, errstr_size, "stage: out of memory");
                return NULL;
        }
        pthread_mutex_init(&st->lock, NULL);
        snprintf(st->service, sizeof(st->service), "%s", service ? service : "");
        for (p = stages; p && *p; p = *e ? e + 1 : e) {
                e   = strchr(p, ',');
                e   = e ? e : p + strlen(p);
                len = (size_t)(e - p);
                if (!len || len >= sizeof(st->stages[0]) ||
                    st->stage_cnt == AB_STAGE_MAX_STAGES) {
                        ab_errstr_set(errstr, errstr_size,
                                      "stage: bad stage list \"%s\"", stages);
                        ab_stage_destroy(st);
                        return NULL;
                }
                memcpy(st->stages[st->stage_cnt++], p, len);
        }
        if (!st->stage_cnt) {
                ab_errstr_set(errstr, errstr_size, "stage: no stage named");
                ab_stage_destroy(st);
                return NULL;
        }
        if (metrics &&
            !(st->m_total = ab_metrics_counter(
                  metrics, "stage_events_total",
                  "Events this stage handled (accepted, consumed, sunk, "
                  "deadlettered, audited), by prefix; the per-minute figures "
                  "in event time are on GET /admin/stages.",
                  "stage,prefix", errstr, errstr_size))) {
                ab_stage_destroy(st);
                return NULL;
        }
        st->started_ms     = ab_time_now_ms();
        st->counts_from_ms = counts_from_ms > 0 ? counts_from_ms : st->started_ms;
        st->catalog_cnt    = pcnt;
        for (i = 0; i < pcnt; i++) {
                slot_init(st, &st->slots[i], ab_catalog_prefix_get(cat, i));
        }
        st->slot_cnt = pcnt;
        return st;
}

void ab_stage_set_counts_from(ab_stage_t *st, int64_t counts_from_ms) {
        pthread_mutex_lock(&st->lock);
        st->counts_from_ms = counts_from_ms;
        pthread_mutex_unlock(&st->lock);
}

void ab_stage_destroy(ab_stage_t *st) {
        if (!st) {
                return;
        }
        pthread_mutex_destroy(&st->lock);
        free(st);
}

/* The slot of prefix; a new one while there is room. Under the lock. */
static slot_t *slot_find(ab_stage_t *st, const char *prefix) {
        size_t i;

        for (i = 0; i < st->slot_cnt; i++) {
                if (!strcmp(st->slots[i].prefix, prefix)) {
                        return &st->slots[i];
                }
        }
        if (strlen(prefix) >= sizeof(st->slots[0].prefix)) {
                prefix = OTHER_SLOT;
        } else if (st->slot_cnt < st->catalog_cnt + AB_STAGE_MAX_OTHER) {
                slot_init(st, &st->slots[st->slot_cnt], prefix);
                return &st->slots[st->slot_cnt++];
        }
        /* Full: the shared overflow slot, made once. */
        for (i = st->catalog_cnt; i < st->slot_cnt; i++) {
                if (!strcmp(st->slots[i].prefix, OTHER_SLOT)) {
                        return &st->slots[i];
                }
        }
        slot_init(st, &st->slots[st->slot_cnt], OTHER_SLOT);
        return &st->slots[st->slot_cnt++];
}

void ab_stage_count(ab_stage_t *st, int stage, const char *prefix,
                    int64_t received_at_ms, uint64_t n) {
        int64_t minute, now_min;
        bucket_t *b;
        slot_t *s;

        if (!st || !prefix || stage < 0 || stage >= st->stage_cnt || !n) {
                return;
        }
        minute  = received_at_ms / MIN_MS;
        now_min = ab_time_now_ms() / MIN_MS;
        pthread_mutex_lock(&st->lock);
        s = slot_find(st, prefix);
        ab_metric_add(s->total[stage], n);
        if (received_at_ms <= 0 || minute <= now_min - AB_STAGE_MINUTES ||
            minute > now_min + AHEAD_MIN) {
                /* A far-off receivedAt must not evict a current bucket. */
                st->out_of_window += n;
                pthread_mutex_unlock(&st->lock);
                return;
        }
        b = &s->ring[stage][minute % AB_STAGE_MINUTES];
        if (b->minute != minute) {
                if (b->minute > minute) {
                        /* the slot already holds a newer minute */
                        st->out_of_window += n;
                        pthread_mutex_unlock(&st->lock);
                        return;
                }
                b->minute = minute; /* an older minute rolls off */
                b->count  = 0;
        }
        b->count += n;
        pthread_mutex_unlock(&st->lock);
}

const char *ab_stage_topic_prefix(const char *topic, const char *topic_prefix) {
        size_t len = topic_prefix ? strlen(topic_prefix) : 0;
        const char *p;

        if (!topic || strncmp(topic, topic_prefix ? topic_prefix : "", len)) {
                return NULL;
        }
        p = topic + len;
        if (!*p || !strcmp(p, AB_CATALOG_TOPIC_REJECTED) ||
            !strcmp(p, AB_CATALOG_TOPIC_DEADLETTER) ||
            !strcmp(p, AB_CATALOG_TOPIC_AUDIT_CHECKPOINTS)) {
                return NULL;
        }
        return p;
}

static void minute_text(int64_t minute, char *out, size_t out_size) {
        char ts[40];

        /* "2026-12-03T08:26:00.000Z" -> "2026-12-03T08:26Z" */
        ab_time_format(minute * MIN_MS, ts, sizeof(ts));
        snprintf(out, out_size, "%.16sZ", ts);
}

json_t *ab_stage_json(ab_stage_t *st, int64_t since_ms) {
        char ts[40];
        json_t *doc, *arr, *o;
        int64_t since_min;
        size_t i;
        int k, m;

        if (!(doc = json_object()) || !(arr = json_array())) {
                json_decref(doc);
                return NULL;
        }
        since_min = since_ms > 0 ? (since_ms + MIN_MS - 1) / MIN_MS : 0;
        json_object_set_new(doc, "service", json_string(st->service));
        ab_time_format(st->started_ms, ts, sizeof(ts));
        json_object_set_new(doc, "startedAt", json_string(ts));
        json_object_set_new(doc, "startedAtMs", json_integer(st->started_ms));
        json_object_set_new(doc, "minutesKept", json_integer(AB_STAGE_MINUTES));
        o = json_array();
        for (k = 0; k < st->stage_cnt; k++) {
                json_array_append_new(o, json_string(st->stages[k]));
        }
        json_object_set_new(doc, "stages", o);
        pthread_mutex_lock(&st->lock);
        ab_time_format(st->counts_from_ms, ts, sizeof(ts));
        json_object_set_new(doc, "countsFrom", json_string(ts));
        json_object_set_new(doc, "countsFromMs",
                            json_integer(st->counts_from_ms));
        json_object_set_new(doc, "outOfWindow",
                            json_integer((json_int_t)st->out_of_window));
        for (i = 0; i < st->slot_cnt; i++) {
                for (k = 0; k < st->stage_cnt; k++) {
                        for (m = 0; m < AB_STAGE_MINUTES; m++) {
                                const bucket_t *b = &st->slots[i].ring[k][m];

                                if (!b->minute || b->minute < since_min ||
                                    !b->count) {
                                        continue;
                                }
                                minute_text(b->minute, ts, sizeof(ts));
                                json_array_append_new(
                                    arr,
                                    json_pack("{s:s,s:s,s:s,s:I,s:I}", "stage",
                                              st->stages[k], "prefix",
                                              st->slots[i].prefix, "minute", ts,
                                              "minuteMs",
                                              (json_int_t)(b->minute * MIN_MS),
                                              "count", (json_int_t)b->count));
                        }
                }
        }
        pthread_mutex_unlock(&st->lock);
        json_object_set_new(doc, "minutes", arr);
        return doc;
}

/* since: RFC 3339, or an age (30s, 30m, 2h) before now. */
static int since_parse(const char *s, int64_t *msp) {
        char *end;
        long long n;
        int64_t unit;

        if (ab_time_parse(s, msp) == AB_OK) {
                return 0;
        }
        n    = strtoll(s, &end, 10);
        unit = !strcmp(end, "s") ? 1000 : !strcmp(end, "m") ? MIN_MS
             : !strcmp(end, "h") ? 60 * MIN_MS : 0;
        if (end == s || n < 0 || n > 100000 || !unit) {
                return -1;
        }
        *msp = ab_time_now_ms() - (int64_t)n * unit;
        return 0;
}

void ab_stage_respond(ab_stage_t *st, ab_auth_t *auth, ab_http_req_t *req) {
        const char *v;
        int64_t since = 0;

        if (strcmp(ab_http_req_method(req), "GET")) {
                ab_http_respond_not_allowed(req); /* HEAD arrives as GET */
                return;
        }
        if (!ab_auth_admin(auth, req)) {
                return;
        }
        if ((v = ab_http_req_query(req, "since")) && since_parse(v, &since)) {
                ab_http_respond_error(req, 400,
                                      "since: expected RFC 3339 or an age "
                                      "like 30m, 2h",
                                      json_string(v));
                return;
        }
        ab_http_respond_json(req, 200, ab_stage_json(st, since));
}
