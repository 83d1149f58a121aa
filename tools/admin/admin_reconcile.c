/* aetherbus - Apache-2.0
 *
 * admin_reconcile: see admin_reconcile.h. One pass: read each configured
 * service's per-minute figures (HTTP, libcurl), then Kafka's records per
 * minute (one offsets-for-times request per minute boundary over every
 * partition of the events topics), then compare and print.
 *
 * Minutes: index 0 is the minute before the first one compared (its
 * surplus may cover the next one's deficit, see compare()), the last
 * index is the minute after the last one compared (for ingest's records
 * Kafka places a minute later).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "ab_time.h"
#include "admin_reconcile.h"

#define MIN_MS       60000LL
#define MAX_PREFIXES 128
#define MAX_MINUTES  (180 + 3) /* what a service keeps, plus the edges */
#define MAX_BODY     (16 * 1024 * 1024)

static const char *const svc_names[ADMIN_RC_SERVICES] = {"ingest", "stats",
                                                         "sink", "audit"};
/* The stages whose sum is what each service did with an event. */
static const char *const svc_stages[ADMIN_RC_SERVICES][4] = {
    {"accepted", NULL},
    {"consumed", NULL},
    {"sunk", "deadlettered", "filtered", NULL},
    {"audited", NULL},
};

typedef struct rc_s {
        const admin_rc_conf_t *conf;
        int64_t base;   /* minute (since the epoch) of index 0 */
        int nmin;       /* indexes 0..nmin-1 */
        char *prefixes[MAX_PREFIXES];
        size_t pcnt;
        int have[ADMIN_RC_SERVICES];        /* answered */
        int64_t counts_from[ADMIN_RC_SERVICES];
        int64_t got[ADMIN_RC_SERVICES][MAX_PREFIXES][MAX_MINUTES];
        int kafka_ok;                       /* offsets by time work */
        int64_t kafka[MAX_PREFIXES][MAX_MINUTES];
        /* records from a consumer's countsFrom to the end of its minute */
        int64_t kafka_from[ADMIN_RC_SERVICES][MAX_PREFIXES];
        FILE *notes;
        uint64_t compared; /* (service, prefix, minute) figures compared */
} rc_t;

static ssize_t prefix_index(rc_t *rc, const char *prefix, int add) {
        size_t i;

        for (i = 0; i < rc->pcnt; i++) {
                if (!strcmp(rc->prefixes[i], prefix)) {
                        return (ssize_t)i;
                }
        }
        if (!add || rc->pcnt == MAX_PREFIXES ||
            !(rc->prefixes[rc->pcnt] = strdup(prefix))) {
                return -1;
        }
        return (ssize_t)rc->pcnt++;
}

/* ------------------------------------------------------------------ */
/* The services' figures                                               */
/* ------------------------------------------------------------------ */

typedef struct {
        char *p;
        size_t len;
} buf_t;

static size_t grow_cb(char *data, size_t size, size_t n, void *opaque) {
        buf_t *b = opaque;
        size_t add = size * n;
        char *p;

        if (b->len + add > MAX_BODY || !(p = realloc(b->p, b->len + add + 1))) {
                return 0;
        }
        memcpy(p + b->len, data, add);
        b->p = p;
        b->len += add;
        b->p[b->len] = '\0';
        return add;
}

/* GET <base>/admin/stages?since=... into a JSON document. */
static json_t *fetch_stages(rc_t *rc, const char *base, size_t base_len,
                            char *errstr, size_t errstr_size) {
        struct curl_slist *hl = NULL;
        char url[2048], since[40], hdr[1024];
        buf_t b = {NULL, 0};
        json_error_t jerr;
        json_t *doc = NULL;
        long status = 0;
        CURLcode rcode;
        CURL *curl;

        while (base_len && base[base_len - 1] == '/') {
                base_len--;
        }
        ab_time_format(rc->base * MIN_MS, since, sizeof(since));
        snprintf(url, sizeof(url), "%.*s/admin/stages?since=%s", (int)base_len,
                 base, since);
        if (!(curl = curl_easy_init())) {
                ab_errstr_set(errstr, errstr_size, "curl: cannot start");
                return NULL;
        }
        if (rc->conf->admin_token && *rc->conf->admin_token) {
                snprintf(hdr, sizeof(hdr), "x-admin-token: %s",
                         rc->conf->admin_token);
                hl = curl_slist_append(hl, hdr);
        }
        /* an operator tool: the x-ops RBAC rule of the admin routes */
        hl = curl_slist_append(hl, "x-ops: 1");
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)rc->conf->timeout_ms);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, grow_cb);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
        rcode = curl_easy_perform(curl);
        if (rcode == CURLE_OK) {
                curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        }
        curl_easy_cleanup(curl);
        curl_slist_free_all(hl);
        if (rcode != CURLE_OK) {
                ab_errstr_set(errstr, errstr_size, "%s: %s", url,
                              curl_easy_strerror(rcode));
        } else if (status != 200) {
                ab_errstr_set(errstr, errstr_size, "%s: HTTP %ld%s", url,
                              status,
                              status == 401 || status == 403
                                  ? " (ADMIN_TOKEN?)"
                                  : "");
        } else if (!(doc = json_loadb(b.p ? b.p : "", b.len, 0, &jerr))) {
                ab_errstr_set(errstr, errstr_size, "%s: not JSON: %s", url,
                              jerr.text);
        }
        free(b.p);
        return doc;
}

static int stage_of(admin_rc_service_t s, const char *stage) {
        int i;

        for (i = 0; svc_stages[s][i]; i++) {
                if (!strcmp(svc_stages[s][i], stage)) {
                        return 1;
                }
        }
        return 0;
}

/* Adds one replica's figures into rc->got[s]. */
static ab_err_t add_figures(rc_t *rc, admin_rc_service_t s, json_t *doc,
                            const char *base, char *errstr,
                            size_t errstr_size) {
        json_t *arr = json_object_get(doc, "minutes"), *m;
        json_int_t from = json_integer_value(json_object_get(doc,
                                                             "countsFromMs"));
        const char *stage, *prefix;
        int64_t minute;
        ssize_t pi;
        size_t i;

        if (!json_is_array(arr) || from <= 0) {
                ab_errstr_set(errstr, errstr_size,
                              "%s: not a /admin/stages answer", base);
                return AB_ERR_MALFORMED;
        }
        /* Replicas: each counts only from its own start. */
        if (from > rc->counts_from[s]) {
                rc->counts_from[s] = from;
        }
        json_array_foreach(arr, i, m) {
                stage  = json_string_value(json_object_get(m, "stage"));
                prefix = json_string_value(json_object_get(m, "prefix"));
                minute = json_integer_value(json_object_get(m, "minuteMs")) /
                         MIN_MS;
                if (!stage || !prefix || !stage_of(s, stage) ||
                    minute < rc->base || minute >= rc->base + rc->nmin) {
                        continue;
                }
                if ((pi = prefix_index(rc, prefix, 1)) < 0) {
                        continue;
                }
                rc->got[s][pi][minute - rc->base] +=
                    json_integer_value(json_object_get(m, "count"));
        }
        return AB_OK;
}

static ab_err_t read_service(rc_t *rc, admin_rc_service_t s, char *errstr,
                             size_t errstr_size) {
        const char *p = rc->conf->urls[s], *e;
        json_t *doc;
        ab_err_t err;

        for (; *p; p = *e ? e + 1 : e) {
                e = strchr(p, ',');
                e = e ? e : p + strlen(p);
                if (e == p) {
                        continue;
                }
                if (!(doc = fetch_stages(rc, p, (size_t)(e - p), errstr,
                                         errstr_size))) {
                        return AB_ERR_UNAVAILABLE;
                }
                err = add_figures(rc, s, doc, p, errstr, errstr_size);
                json_decref(doc);
                if (err) {
                        return AB_ERR_UNAVAILABLE;
                }
        }
        rc->have[s] = 1;
        return AB_OK;
}

/* ------------------------------------------------------------------ */
/* Kafka's records per minute                                          */
/* ------------------------------------------------------------------ */

/* The events topics' partitions; elems[i].opaque is the prefix index + 1. */
static rd_kafka_topic_partition_list_t *
partitions(rc_t *rc, rd_kafka_t *rk, const char *topic_prefix, char *errstr,
           size_t errstr_size) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t err;
        char topic[512];
        size_t p;
        int t, i;

        err = rd_kafka_metadata(rk, 1, NULL, &md, rc->conf->timeout_ms);
        if (err) {
                ab_errstr_set(errstr, errstr_size, "metadata: %s",
                              rd_kafka_err2str(err));
                return NULL;
        }
        list = rd_kafka_topic_partition_list_new(64);
        for (p = 0; p < rc->pcnt; p++) {
                snprintf(topic, sizeof(topic), "%s%s", topic_prefix,
                         rc->prefixes[p]);
                for (t = 0; t < md->topic_cnt; t++) {
                        if (strcmp(md->topics[t].topic, topic) ||
                            md->topics[t].err) {
                                continue;
                        }
                        for (i = 0; i < md->topics[t].partition_cnt; i++) {
                                rd_kafka_topic_partition_list_add(
                                    list, topic, md->topics[t].partitions[i].id)
                                    ->opaque = (void *)(uintptr_t)(p + 1);
                        }
                }
        }
        rd_kafka_metadata_destroy(md);
        return list;
}

/* Offsets of the first record at or after ts in each partition of list:
 * the high watermark where there is none. -2 in out[] on an error. */
static int offsets_at(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *list,
                      int64_t ts, const int64_t *hi, int64_t *out,
                      int timeout_ms) {
        rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_copy(list);
        rd_kafka_resp_err_t err;
        int i;

        for (i = 0; i < q->cnt; i++) {
                q->elems[i].offset = ts;
        }
        err = rd_kafka_offsets_for_times(rk, q, timeout_ms);
        for (i = 0; i < q->cnt; i++) {
                if (err || q->elems[i].err) {
                        rd_kafka_topic_partition_list_destroy(q);
                        return -1;
                }
                out[i] = q->elems[i].offset < 0 ? hi[i] : q->elems[i].offset;
        }
        rd_kafka_topic_partition_list_destroy(q);
        return 0;
}

static ab_err_t read_kafka(rc_t *rc, const rd_kafka_conf_t *kconf,
                           const char *topic_prefix, char *errstr,
                           size_t errstr_size) {
        rd_kafka_topic_partition_list_t *list = NULL;
        int64_t *lo = NULL, *hi = NULL, *prev = NULL, *cur = NULL, *at = NULL;
        rd_kafka_conf_t *conf = rd_kafka_conf_dup(kconf);
        ab_err_t ret = AB_ERR_KAFKA;
        rd_kafka_t *rk;
        char why[512];
        int i, j, s, nonempty = 0;
        size_t pi;

        if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why)))) {
                rd_kafka_conf_destroy(conf);
                ab_errstr_set(errstr, errstr_size, "%s", why);
                return AB_ERR_KAFKA;
        }
        if (!(list = partitions(rc, rk, topic_prefix, errstr, errstr_size))) {
                goto done;
        }
        lo   = calloc((size_t)list->cnt + 1, sizeof(*lo));
        hi   = calloc((size_t)list->cnt + 1, sizeof(*hi));
        prev = calloc((size_t)list->cnt + 1, sizeof(*prev));
        cur  = calloc((size_t)list->cnt + 1, sizeof(*cur));
        at   = calloc((size_t)list->cnt + 1, sizeof(*at));
        if (!lo || !hi || !prev || !cur || !at) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                ret = AB_ERR_NOMEM;
                goto done;
        }
        for (i = 0; i < list->cnt; i++) {
                rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
                    rk, list->elems[i].topic, list->elems[i].partition, &lo[i],
                    &hi[i], rc->conf->timeout_ms);
                if (err) {
                        ab_errstr_set(errstr, errstr_size,
                                      "watermarks of %s [%" PRId32 "]: %s",
                                      list->elems[i].topic,
                                      list->elems[i].partition,
                                      rd_kafka_err2str(err));
                        ret = err == RD_KAFKA_RESP_ERR__TIMED_OUT
                                  ? AB_ERR_TIMEOUT
                                  : AB_ERR_KAFKA;
                        goto done;
                }
                nonempty += hi[i] > lo[i];
        }
        ret = AB_OK;
        if (!list->cnt) {
                /* No events topic yet: nothing in Kafka, truthfully. */
                fprintf(rc->notes, "note: no events topic (%s*) exists\n",
                        topic_prefix);
                rc->kafka_ok = 1;
                goto done;
        }
        /* Asked for timestamp 0, a broker that looks offsets up by time
         * names each non-empty partition's first offset; librdkafka's
         * mock does not (see ab_consume.c). */
        if (offsets_at(rk, list, 0, hi, cur, rc->conf->timeout_ms)) {
                goto done;
        }
        for (i = 0; i < list->cnt; i++) {
                if (hi[i] > lo[i] && cur[i] != lo[i]) {
                        goto done;
                }
        }
        /* All partitions empty: the probe cannot tell a real broker from
         * the mock, and every count is 0 either way. */
        (void)nonempty;
        if (offsets_at(rk, list, rc->base * MIN_MS, hi, prev,
                       rc->conf->timeout_ms)) {
                goto done;
        }
        for (j = 0; j < rc->nmin; j++) {
                if (offsets_at(rk, list, (rc->base + j + 1) * MIN_MS, hi, cur,
                               rc->conf->timeout_ms)) {
                        goto done;
                }
                for (i = 0; i < list->cnt; i++) {
                        pi = (uintptr_t)list->elems[i].opaque - 1;
                        rc->kafka[pi][j] += cur[i] - prev[i];
                }
                /* A consumer that started inside this minute: Kafka's
                 * records from its start on. */
                for (s = ADMIN_RC_STATS; s < ADMIN_RC_SERVICES; s++) {
                        int64_t cf = rc->counts_from[s];

                        if (!rc->have[s] || cf <= (rc->base + j) * MIN_MS ||
                            cf >= (rc->base + j + 1) * MIN_MS) {
                                continue;
                        }
                        if (offsets_at(rk, list, cf, hi, at,
                                       rc->conf->timeout_ms)) {
                                goto done;
                        }
                        for (i = 0; i < list->cnt; i++) {
                                pi = (uintptr_t)list->elems[i].opaque - 1;
                                rc->kafka_from[s][pi] += cur[i] - at[i];
                        }
                }
                memcpy(prev, cur, (size_t)list->cnt * sizeof(*cur));
        }
        rc->kafka_ok = 1;

done:
        if (ret == AB_OK && !rc->kafka_ok) {
                fprintf(rc->notes,
                        "note: the cluster does not look offsets up by time "
                        "(librdkafka's mock?): ingest's accepted figures "
                        "stand in for Kafka's\n");
        }
        free(lo);
        free(hi);
        free(prev);
        free(cur);
        free(at);
        if (list) {
                rd_kafka_topic_partition_list_destroy(list);
        }
        rd_kafka_destroy(rk);
        return ret;
}

/* ------------------------------------------------------------------ */
/* Comparing                                                           */
/* ------------------------------------------------------------------ */

/* What service s should have counted for prefix p in minute j, or -1
 * when the minute is not compared (before its countsFrom; or one it
 * started in, without Kafka to say what came after). */
static int64_t expected(rc_t *rc, admin_rc_service_t s, size_t p, int j,
                        int *partialp) {
        int64_t start = (rc->base + j) * MIN_MS, cf = rc->counts_from[s];

        *partialp = 0;
        if (rc->kafka_ok) {
                if (start + MIN_MS <= cf) {
                        return -1;
                }
                if (start < cf) {
                        *partialp = 1;
                        return rc->kafka_from[s][p];
                }
                return rc->kafka[p][j];
        }
        if (!rc->have[ADMIN_RC_INGEST] || s == ADMIN_RC_INGEST) {
                return -1;
        }
        /* Ingest's figures as the truth: a consumer that started before
         * ingest saw everything ingest counted; one that started after
         * is compared from its first whole minute. */
        if (cf > rc->counts_from[ADMIN_RC_INGEST] && start < cf) {
                return -1;
        }
        return rc->got[ADMIN_RC_INGEST][p][j];
}

static void minute_text(int64_t minute, char *out, size_t out_size) {
        char ts[40];

        ab_time_format(minute * MIN_MS, ts, sizeof(ts));
        snprintf(out, out_size, "%.16sZ", ts);
}

static void cell(char *out, size_t size, int have, int64_t v, int compared) {
        if (!have) {
                snprintf(out, size, "-");
        } else if (!compared) {
                snprintf(out, size, "(%" PRId64 ")", v);
        } else {
                snprintf(out, size, "%" PRId64, v);
        }
}

/* Compares every minute of prefix p; prints the ones that differ. A
 * record can only be placed later in Kafka than its receivedAt says (it
 * is stamped before it is written), so a consumer's surplus in a minute
 * covers its deficit in the next, and Kafka's surplus in the next minute
 * covers a deficit against ingest's count in this one. */
static uint64_t compare_prefix(rc_t *rc, size_t p, FILE *out, int *header) {
        char minute[32], cells[ADMIN_RC_SERVICES + 1][32], verdict[256];
        int64_t exp, got, prev_exp, prev_surplus, next_surplus, miss;
        uint64_t missing = 0;
        size_t vlen;
        int j, s, differs, partial, prev_partial;

        for (j = 1; j < rc->nmin - 1; j++) {
                differs = 0;
                vlen    = 0;
                verdict[0] = '\0';
                if (rc->kafka_ok && rc->have[ADMIN_RC_INGEST]) {
                        /* Kafka holds less than ingest acknowledged? */
                        got  = rc->kafka[p][j];
                        exp  = rc->got[ADMIN_RC_INGEST][p][j];
                        next_surplus = rc->kafka[p][j + 1] -
                                       rc->got[ADMIN_RC_INGEST][p][j + 1];
                        miss = exp - got - (next_surplus > 0 ? next_surplus : 0);
                        /* More in Kafka is no gap: ingest's own events,
                         * other producers, replicas not listed. */
                        if (miss > 0) {
                                differs = 1;
                                missing += (uint64_t)miss;
                                vlen += (size_t)snprintf(
                                    verdict + vlen, sizeof(verdict) - vlen,
                                    "%skafka missing %" PRId64,
                                    vlen ? "; " : "", miss);
                        }
                }
                for (s = ADMIN_RC_INGEST; s < ADMIN_RC_SERVICES; s++) {
                        if (!rc->have[s] || (s == ADMIN_RC_INGEST &&
                                             !rc->kafka_ok)) {
                                continue; /* ingest is the truth then */
                        }
                        if (s == ADMIN_RC_INGEST) {
                                continue; /* compared above */
                        }
                        if ((exp = expected(rc, s, p, j, &partial)) < 0) {
                                continue;
                        }
                        rc->compared++;
                        got = rc->got[s][p][j];
                        if (got == exp ||
                            (got > exp && (!rc->kafka_ok || partial))) {
                                /* A surplus says nothing without Kafka's
                                 * figures (ingest's own core.* events are
                                 * in the topics, not in its count), nor in
                                 * the minute a consumer started (it read
                                 * records from before its start too). */
                                continue;
                        }
                        differs = 1;
                        prev_exp     = expected(rc, s, p, j - 1, &prev_partial);
                        prev_surplus = prev_exp >= 0 && !prev_partial
                                           ? rc->got[s][p][j - 1] - prev_exp
                                           : 0;
                        miss = exp - got - (prev_surplus > 0 ? prev_surplus : 0);
                        if (vlen < sizeof(verdict)) {
                                vlen += (size_t)snprintf(
                                    verdict + vlen, sizeof(verdict) - vlen,
                                    miss > 0 ? "%s%s missing %" PRId64
                                             : "%s%s %+" PRId64,
                                    vlen ? "; " : "", svc_names[s],
                                    miss > 0 ? miss : got - exp);
                        }
                        if (miss > 0) {
                                missing += (uint64_t)miss;
                        }
                }
                if (!differs && !verdict[0]) {
                        continue;
                }
                if (!*header) {
                        fprintf(out, "%-16s %-17s %8s %8s %8s %8s %8s  %s\n",
                                "PREFIX", "MINUTE", "KAFKA", "ACCEPTED",
                                "CONSUMED", "SINK", "AUDITED", "DIFFERENCE");
                        *header = 1;
                }
                minute_text(rc->base + j, minute, sizeof(minute));
                cell(cells[0], sizeof(cells[0]), rc->kafka_ok,
                     rc->kafka[p][j], 1);
                for (s = 0; s < ADMIN_RC_SERVICES; s++) {
                        cell(cells[s + 1], sizeof(cells[s + 1]), rc->have[s],
                             rc->got[s][p][j],
                             s == ADMIN_RC_INGEST ||
                                 expected(rc, (admin_rc_service_t)s, p, j,
                                          &partial) >= 0);
                }
                fprintf(out, "%-16s %-17s %8s %8s %8s %8s %8s  %s\n",
                        rc->prefixes[p], minute, cells[0], cells[1], cells[2],
                        cells[3], cells[4], verdict[0] ? verdict : "surplus");
        }
        return missing;
}

ab_err_t admin_reconcile_run(const rd_kafka_conf_t *conf,
                             const ab_catalog_t *cat, const char *topic_prefix,
                             const admin_rc_conf_t *conf_rc, FILE *out,
                             FILE *notes, uint64_t *missing, char *errstr,
                             size_t errstr_size) {
        int64_t now = ab_time_now_ms(), first, end;
        char from[40], to[40];
        int header = 0, any = 0;
        ab_err_t err = AB_OK;
        rc_t *rc;
        size_t i;
        int s;

        *missing = 0;
        if (!(rc = calloc(1, sizeof(*rc)))) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return AB_ERR_NOMEM;
        }
        rc->conf  = conf_rc;
        rc->notes = notes;
        first     = (conf_rc->since_ms + MIN_MS - 1) / MIN_MS;
        /* The first minute not compared: the one still within the grace;
         * with no grace, the current minute is compared as far as it got
         * (a quiet system, a test). */
        end = conf_rc->grace_ms ? (now - conf_rc->grace_ms) / MIN_MS
                                : now / MIN_MS + 1;
        if (end - first > MAX_MINUTES - 3) {
                first = end - (MAX_MINUTES - 3);
                fprintf(notes, "note: services keep 180 minutes; comparing "
                               "the last 180\n");
        }
        if (end <= first) {
                ab_errstr_set(errstr, errstr_size,
                              "no minute is older than the grace yet "
                              "(--since is too recent)");
                free(rc);
                return AB_ERR_INVALID;
        }
        rc->base = first - 1;
        rc->nmin = (int)(end - first) + 2;
        for (i = 0; i < ab_catalog_prefix_count(cat); i++) {
                prefix_index(rc, ab_catalog_prefix_get(cat, i), 1);
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        for (s = 0; s < ADMIN_RC_SERVICES; s++) {
                if (!conf_rc->urls[s] || !*conf_rc->urls[s]) {
                        fprintf(notes, "note: --%s not given: %s skipped\n",
                                svc_names[s], svc_names[s]);
                        continue;
                }
                if ((err = read_service(rc, (admin_rc_service_t)s, errstr,
                                        errstr_size))) {
                        goto done;
                }
                any = 1;
                ab_time_format(rc->counts_from[s], from, sizeof(from));
                if (rc->counts_from[s] > first * MIN_MS) {
                        fprintf(notes,
                                "note: %s counts from %s (its start): "
                                "earlier minutes are not compared\n",
                                svc_names[s], from);
                }
        }
        if ((err = read_kafka(rc, conf, topic_prefix, errstr, errstr_size))) {
                goto done;
        }
        if (!rc->kafka_ok && !rc->have[ADMIN_RC_INGEST]) {
                ab_errstr_set(errstr, errstr_size,
                              "nothing to compare against: the cluster does "
                              "not look offsets up by time and --ingest is "
                              "not given");
                err = AB_ERR_NOT_FOUND;
                goto done;
        }
        if (!any) {
                fprintf(notes, "note: no service given: only Kafka read\n");
        }
        for (i = 0; i < rc->pcnt; i++) {
                *missing += compare_prefix(rc, i, out, &header);
        }
        ab_time_format(first * MIN_MS, from, sizeof(from));
        ab_time_format(end * MIN_MS, to, sizeof(to));
        fprintf(notes, "reconcile: %zu prefixes, %s .. %s: %" PRIu64
                       " figures compared, %" PRIu64 " missing\n",
                rc->pcnt, from, to, rc->compared, *missing);

done:
        curl_global_cleanup();
        for (i = 0; i < rc->pcnt; i++) {
                free(rc->prefixes[i]);
        }
        free(rc);
        return err;
}
