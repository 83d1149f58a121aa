/* aetherbus - Apache-2.0
 *
 * ab_metrics: the registry, lock-free series updates and the Prometheus
 * text rendering. Owns metric storage and the exposition format; which
 * metrics exist belongs to the modules that register them (flb_output.c
 * style: register once, increment through handles).
 *
 * Concurrency: registration and rendering take the registry lock; series
 * creation takes its family's lock; updates and lookups of existing series
 * take no lock. A series, once published in the family's open-addressed
 * slot table (release store), is never moved or freed before
 * ab_metrics_destroy().
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ab_log.h"
#include "ab_metrics.h"

#define SLOTS 512 /* power of two, >= 2 * AB_METRICS_MAX_SERIES */

typedef enum {
        T_NONE = 0, /* a labelled family's own handle: updates ignored */
        T_COUNTER,
        T_GAUGE,
        T_GAUGE_FN,
        T_HISTOGRAM,
} mtype_t;

struct fam;

struct ab_metric_s {
        struct fam *fam;
        mtype_t type;
        uint32_t hash;
        char **values;              /* nlabels strings, one allocation */
        _Atomic uint64_t v;         /* counter value or gauge bits */
        _Atomic uint64_t sum;       /* histogram sum, double bits */
        _Atomic uint64_t *buckets;  /* histogram: nbounds + 1 (+Inf) */
};

struct fam {
        struct fam *next;
        char *name;
        char *help;
        mtype_t type;
        int nlabels;
        char *labels[AB_METRICS_MAX_LABELS];
        char *labels_str;
        double *bounds;
        size_t nbounds;
        double (*fn)(void *opaque);
        void *fn_opaque;
        ab_metric_t root;
        pthread_mutex_t lock;
        _Atomic(ab_metric_t *) *slots; /* labelled only */
        ab_metric_t **order;           /* labelled only, creation order */
        _Atomic size_t cnt;
        int warned;
};

struct ab_metrics_s {
        char prefix[64];
        pthread_mutex_t lock;
        struct fam *head;
        struct fam *tail;
};

const double ab_metrics_latency_buckets[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,  0.5,    1,     2.5,  5,     10,
};
const size_t ab_metrics_latency_buckets_cnt =
    sizeof(ab_metrics_latency_buckets) / sizeof(ab_metrics_latency_buckets[0]);

static uint64_t d2u(double d) {
        uint64_t u;

        memcpy(&u, &d, sizeof(u));
        return u;
}

static double u2d(uint64_t u) {
        double d;

        memcpy(&d, &u, sizeof(d));
        return d;
}

static void dbl_add(_Atomic uint64_t *p, double d) {
        uint64_t old;

        old = atomic_load_explicit(p, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(
            p, &old, d2u(u2d(old) + d), memory_order_relaxed,
            memory_order_relaxed)) {
        }
}

static int name_ok(const char *s, int colon) {
        const char *p;

        if (!s || !*s || (*s >= '0' && *s <= '9')) {
                return 0;
        }
        for (p = s; *p; p++) {
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '_' ||
                      (colon && *p == ':'))) {
                        return 0;
                }
        }
        return 1;
}

ab_metrics_t *ab_metrics_new(const char *service, char *errstr,
                             size_t errstr_size) {
        ab_metrics_t *reg;

        if (service && *service && !name_ok(service, 0)) {
                ab_errstr_set(errstr, errstr_size,
                              "metrics: bad service name \"%s\" "
                              "(letters, digits, _)",
                              service);
                return NULL;
        }
        if (service && strlen(service) > 40) {
                ab_errstr_set(errstr, errstr_size,
                              "metrics: service name too long");
                return NULL;
        }
        if (!(reg = calloc(1, sizeof(*reg)))) {
                ab_errstr_set(errstr, errstr_size, "metrics: out of memory");
                return NULL;
        }
        snprintf(reg->prefix, sizeof(reg->prefix), "aetherbus_%s%s",
                 service ? service : "", service && *service ? "_" : "");
        pthread_mutex_init(&reg->lock, NULL);
        return reg;
}

static void series_free(ab_metric_t *s) {
        free(s->values);
        free((void *)s->buckets);
}

static void fam_destroy(struct fam *f) {
        size_t i;
        size_t cnt;
        int l;

        cnt = atomic_load(&f->cnt);
        for (i = 0; f->order && i < cnt; i++) {
                series_free(f->order[i]);
                free(f->order[i]);
        }
        series_free(&f->root);
        free(f->order);
        free((void *)f->slots);
        for (l = 0; l < f->nlabels; l++) {
                free(f->labels[l]);
        }
        free(f->labels_str);
        free(f->bounds);
        free(f->name);
        free(f->help);
        pthread_mutex_destroy(&f->lock);
        free(f);
}

void ab_metrics_destroy(ab_metrics_t *reg) {
        struct fam *f;
        struct fam *next;

        if (!reg) {
                return;
        }
        for (f = reg->head; f; f = next) {
                next = f->next;
                fam_destroy(f);
        }
        pthread_mutex_destroy(&reg->lock);
        free(reg);
}

/* Splits and checks "a,b" into f->labels; spaces around names allowed. */
static ab_err_t parse_labels(struct fam *f, const char *labels, char *errstr,
                             size_t errstr_size) {
        char buf[256];
        char norm[256];
        char *tok;
        char *save;
        char *end;
        int i;

        norm[0] = '\0';
        if (!labels || !*labels) {
                f->labels_str = strdup("");
                return f->labels_str ? AB_OK : AB_ERR_NOMEM;
        }
        if (strlen(labels) >= sizeof(buf)) {
                ab_errstr_set(errstr, errstr_size, "%s: label list too long",
                              f->name);
                return AB_ERR_INVALID;
        }
        strcpy(buf, labels);
        for (tok = strtok_r(buf, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
                while (*tok == ' ') {
                        tok++;
                }
                end = tok + strlen(tok);
                while (end > tok && end[-1] == ' ') {
                        *--end = '\0';
                }
                if (!name_ok(tok, 0) || !strncmp(tok, "__", 2) ||
                    (f->type == T_HISTOGRAM && !strcmp(tok, "le"))) {
                        ab_errstr_set(errstr, errstr_size,
                                      "%s: bad label name \"%s\"", f->name,
                                      tok);
                        return AB_ERR_INVALID;
                }
                if (f->nlabels == AB_METRICS_MAX_LABELS) {
                        ab_errstr_set(errstr, errstr_size,
                                      "%s: more than %d labels", f->name,
                                      AB_METRICS_MAX_LABELS);
                        return AB_ERR_INVALID;
                }
                for (i = 0; i < f->nlabels; i++) {
                        if (!strcmp(f->labels[i], tok)) {
                                ab_errstr_set(errstr, errstr_size,
                                              "%s: duplicate label \"%s\"",
                                              f->name, tok);
                                return AB_ERR_INVALID;
                        }
                }
                if (!(f->labels[f->nlabels] = strdup(tok))) {
                        return AB_ERR_NOMEM;
                }
                f->nlabels++;
                if (norm[0]) {
                        strcat(norm, ",");
                }
                strcat(norm, tok);
        }
        if (!(f->labels_str = strdup(norm))) {
                return AB_ERR_NOMEM;
        }
        return AB_OK;
}

static ab_err_t series_init(ab_metric_t *s, struct fam *f) {
        size_t i;

        s->fam  = f;
        s->type = f->nlabels && s == &f->root ? T_NONE : f->type;
        if (f->type == T_HISTOGRAM) {
                s->buckets = calloc(f->nbounds + 1, sizeof(*s->buckets));
                if (!s->buckets) {
                        return AB_ERR_NOMEM;
                }
                for (i = 0; i <= f->nbounds; i++) {
                        atomic_init(&s->buckets[i], 0);
                }
        }
        return AB_OK;
}

static int fam_same(const struct fam *f, mtype_t type, const char *labels_str,
                    const double *bounds, size_t nbounds) {
        if (f->type != type || strcmp(f->labels_str, labels_str)) {
                return 0;
        }
        if (type == T_HISTOGRAM &&
            (f->nbounds != nbounds ||
             memcmp(f->bounds, bounds, nbounds * sizeof(*bounds)))) {
                return 0;
        }
        return type != T_GAUGE_FN;
}

static ab_metric_t *reg_add(ab_metrics_t *reg, mtype_t type, const char *name,
                            const char *help, const char *labels,
                            const double *bounds, size_t nbounds,
                            double (*fn)(void *opaque), void *opaque,
                            char *errstr, size_t errstr_size) {
        struct fam *f;
        struct fam *o;
        size_t i;
        ab_err_t err;

        if (!reg || !name || !help) {
                ab_errstr_set(errstr, errstr_size,
                              "metrics: registry, name and help required");
                return NULL;
        }
        if (!(f = calloc(1, sizeof(*f)))) {
                ab_errstr_set(errstr, errstr_size, "metrics: out of memory");
                return NULL;
        }
        pthread_mutex_init(&f->lock, NULL);
        f->type      = type;
        f->fn        = fn;
        f->fn_opaque = opaque;
        if (!(f->name = malloc(strlen(reg->prefix) + strlen(name) + 1)) ||
            !(f->help = strdup(help))) {
                goto nomem;
        }
        strcpy(f->name, reg->prefix);
        strcat(f->name, name);
        if (!name_ok(f->name, 1)) {
                ab_errstr_set(errstr, errstr_size,
                              "metrics: bad metric name \"%s\"", f->name);
                goto fail;
        }
        if ((err = parse_labels(f, labels, errstr, errstr_size)) != AB_OK) {
                if (err == AB_ERR_NOMEM) {
                        goto nomem;
                }
                goto fail;
        }
        if (type == T_HISTOGRAM) {
                if (!bounds) {
                        bounds  = ab_metrics_latency_buckets;
                        nbounds = ab_metrics_latency_buckets_cnt;
                }
                if (nbounds == 0) {
                        ab_errstr_set(errstr, errstr_size,
                                      "%s: histogram needs buckets", f->name);
                        goto fail;
                }
                for (i = 0; i < nbounds; i++) {
                        if (isnan(bounds[i]) || isinf(bounds[i]) ||
                            (i > 0 && bounds[i] <= bounds[i - 1])) {
                                ab_errstr_set(errstr, errstr_size,
                                              "%s: bucket bounds must be "
                                              "finite and increasing",
                                              f->name);
                                goto fail;
                        }
                }
                if (!(f->bounds = malloc(nbounds * sizeof(*bounds)))) {
                        goto nomem;
                }
                memcpy(f->bounds, bounds, nbounds * sizeof(*bounds));
                f->nbounds = nbounds;
        }
        if (f->nlabels) {
                f->slots = calloc(SLOTS, sizeof(*f->slots));
                f->order = calloc(AB_METRICS_MAX_SERIES, sizeof(*f->order));
                if (!f->slots || !f->order) {
                        goto nomem;
                }
                for (i = 0; i < SLOTS; i++) {
                        atomic_init(&f->slots[i], NULL);
                }
        }
        atomic_init(&f->cnt, 0);
        if (series_init(&f->root, f) != AB_OK) {
                goto nomem;
        }

        pthread_mutex_lock(&reg->lock);
        for (o = reg->head; o; o = o->next) {
                if (strcmp(o->name, f->name)) {
                        continue;
                }
                if (fam_same(o, type, f->labels_str, f->bounds, f->nbounds)) {
                        pthread_mutex_unlock(&reg->lock);
                        fam_destroy(f);
                        return &o->root;
                }
                pthread_mutex_unlock(&reg->lock);
                ab_errstr_set(errstr, errstr_size,
                              "%s: already registered with another type, "
                              "labels or buckets",
                              f->name);
                goto fail;
        }
        if (reg->tail) {
                reg->tail->next = f;
        } else {
                reg->head = f;
        }
        reg->tail = f;
        pthread_mutex_unlock(&reg->lock);
        return &f->root;

nomem:
        ab_errstr_set(errstr, errstr_size, "metrics: out of memory");
fail:
        fam_destroy(f);
        return NULL;
}

ab_metric_t *ab_metrics_counter(ab_metrics_t *reg, const char *name,
                                const char *help, const char *labels,
                                char *errstr, size_t errstr_size) {
        return reg_add(reg, T_COUNTER, name, help, labels, NULL, 0, NULL,
                       NULL, errstr, errstr_size);
}

ab_metric_t *ab_metrics_gauge(ab_metrics_t *reg, const char *name,
                              const char *help, const char *labels,
                              char *errstr, size_t errstr_size) {
        return reg_add(reg, T_GAUGE, name, help, labels, NULL, 0, NULL, NULL,
                       errstr, errstr_size);
}

ab_metric_t *ab_metrics_gauge_fn(ab_metrics_t *reg, const char *name,
                                 const char *help,
                                 double (*fn)(void *opaque), void *opaque,
                                 char *errstr, size_t errstr_size) {
        if (!fn) {
                ab_errstr_set(errstr, errstr_size,
                              "metrics: gauge function required");
                return NULL;
        }
        return reg_add(reg, T_GAUGE_FN, name, help, NULL, NULL, 0, fn, opaque,
                       errstr, errstr_size);
}

ab_metric_t *ab_metrics_histogram(ab_metrics_t *reg, const char *name,
                                  const char *help, const char *labels,
                                  const double *bounds, size_t bounds_cnt,
                                  char *errstr, size_t errstr_size) {
        return reg_add(reg, T_HISTOGRAM, name, help, labels, bounds,
                       bounds_cnt, NULL, NULL, errstr, errstr_size);
}

static uint32_t hash_values(const char *const *values, int n) {
        uint32_t h;
        const unsigned char *p;
        int i;

        h = 2166136261u;
        for (i = 0; i < n; i++) {
                for (p = (const unsigned char *)values[i]; *p; p++) {
                        h = (h ^ *p) * 16777619u;
                }
                h = (h ^ 0xff) * 16777619u;
        }
        return h;
}

static int same_values(const ab_metric_t *s, const char *const *values,
                       int n) {
        int i;

        for (i = 0; i < n; i++) {
                if (strcmp(s->values[i], values[i])) {
                        return 0;
                }
        }
        return 1;
}

static ab_metric_t *probe(struct fam *f, const char *const *values,
                          uint32_t h, size_t *freep) {
        ab_metric_t *s;
        size_t idx;
        size_t i;

        idx = h & (SLOTS - 1);
        for (i = 0; i < SLOTS; i++) {
                s = atomic_load_explicit(&f->slots[idx], memory_order_acquire);
                if (!s) {
                        *freep = idx;
                        return NULL;
                }
                if (s->hash == h && same_values(s, values, f->nlabels)) {
                        return s;
                }
                idx = (idx + 1) & (SLOTS - 1);
        }
        *freep = SLOTS;
        return NULL;
}

static ab_metric_t *series_create(struct fam *f, const char *const *values,
                                  uint32_t h) {
        ab_metric_t *s;
        size_t idx;
        size_t cnt;
        size_t sz;
        char *p;
        int i;

        pthread_mutex_lock(&f->lock);
        if ((s = probe(f, values, h, &idx))) {
                goto done;
        }
        cnt = atomic_load_explicit(&f->cnt, memory_order_relaxed);
        if (cnt >= AB_METRICS_MAX_SERIES || idx == SLOTS) {
                if (!f->warned) {
                        f->warned = 1;
                        ab_warn("metrics",
                                "%s: more than %d label sets, new ones "
                                "are dropped",
                                f->name, AB_METRICS_MAX_SERIES);
                }
                goto done;
        }
        sz = (size_t)f->nlabels * sizeof(char *);
        for (i = 0; i < f->nlabels; i++) {
                sz += strlen(values[i]) + 1;
        }
        if (!(s = calloc(1, sizeof(*s))) || !(s->values = malloc(sz))) {
                free(s);
                s = NULL;
                goto done;
        }
        p = (char *)(s->values + f->nlabels);
        for (i = 0; i < f->nlabels; i++) {
                s->values[i] = p;
                strcpy(p, values[i]);
                p += strlen(values[i]) + 1;
        }
        s->hash = h;
        if (series_init(s, f) != AB_OK) {
                series_free(s);
                free(s);
                s = NULL;
                goto done;
        }
        f->order[cnt] = s;
        atomic_store_explicit(&f->cnt, cnt + 1, memory_order_release);
        atomic_store_explicit(&f->slots[idx], s, memory_order_release);
done:
        pthread_mutex_unlock(&f->lock);
        return s;
}

ab_metric_t *ab_metric_with(ab_metric_t *m, const char *const *values) {
        struct fam *f;
        ab_metric_t *s;
        uint32_t h;
        size_t idx;
        int i;

        if (!m || !values) {
                return NULL;
        }
        f = m->fam;
        for (i = 0; i < f->nlabels; i++) {
                if (!values[i]) {
                        return NULL;
                }
        }
        if (values[f->nlabels]) {
                return NULL;
        }
        if (!f->nlabels) {
                return &f->root;
        }
        h = hash_values(values, f->nlabels);
        if ((s = probe(f, values, h, &idx))) {
                return s;
        }
        return series_create(f, values, h);
}

void ab_metric_inc(ab_metric_t *m) {
        if (m && m->type == T_COUNTER) {
                atomic_fetch_add_explicit(&m->v, 1, memory_order_relaxed);
        }
}

void ab_metric_add(ab_metric_t *m, uint64_t n) {
        if (m && m->type == T_COUNTER) {
                atomic_fetch_add_explicit(&m->v, n, memory_order_relaxed);
        }
}

void ab_metric_set(ab_metric_t *m, double v) {
        if (m && m->type == T_GAUGE) {
                atomic_store_explicit(&m->v, d2u(v), memory_order_relaxed);
        }
}

void ab_metric_gauge_add(ab_metric_t *m, double d) {
        if (m && m->type == T_GAUGE) {
                dbl_add(&m->v, d);
        }
}

void ab_metric_observe(ab_metric_t *m, double v) {
        const struct fam *f;
        size_t i;

        if (!m || m->type != T_HISTOGRAM || isnan(v)) {
                return;
        }
        f = m->fam;
        for (i = 0; i < f->nbounds && v > f->bounds[i]; i++) {
        }
        atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
        dbl_add(&m->sum, v);
}

uint64_t ab_metric_value(const ab_metric_t *m) {
        uint64_t v;
        double d;

        if (!m) {
                return 0;
        }
        v = atomic_load_explicit(&((ab_metric_t *)m)->v, memory_order_relaxed);
        switch (m->type) {
        case T_COUNTER:
                return v;
        case T_GAUGE:
                d = u2d(v);
                return d > 0 && d < 1.8e19 ? (uint64_t)d : 0;
        default:
                return 0;
        }
}

/* ---- rendering ---- */

typedef struct {
        char *p;
        size_t len;
        size_t cap;
        int oom;
} sbuf_t;

static void sb_put(sbuf_t *b, const char *s, size_t n) {
        char *np;
        size_t ncap;

        if (b->oom) {
                return;
        }
        if (b->len + n + 1 > b->cap) {
                ncap = b->cap ? b->cap : 4096;
                while (b->len + n + 1 > ncap) {
                        ncap *= 2;
                }
                if (!(np = realloc(b->p, ncap))) {
                        b->oom = 1;
                        return;
                }
                b->p   = np;
                b->cap = ncap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

static void sb_str(sbuf_t *b, const char *s) {
        sb_put(b, s, strlen(s));
}

/* Escapes \ and newline (HELP), plus " in label values. */
static void sb_esc(sbuf_t *b, const char *s, int quote) {
        const char *p;

        for (p = s; *p; p++) {
                if (*p == '\\') {
                        sb_put(b, "\\\\", 2);
                } else if (*p == '\n') {
                        sb_put(b, "\\n", 2);
                } else if (quote && *p == '"') {
                        sb_put(b, "\\\"", 2);
                } else {
                        sb_put(b, p, 1);
                }
        }
}

/* Shortest text that reads back as the same double. */
static void fmt_dbl(char *out, size_t size, double v) {
        int prec;

        if (isnan(v)) {
                snprintf(out, size, "NaN");
                return;
        }
        if (isinf(v)) {
                snprintf(out, size, "%sInf", v > 0 ? "+" : "-");
                return;
        }
        if (v == floor(v) && fabs(v) < 1e15) {
                snprintf(out, size, "%.0f", v);
                return;
        }
        for (prec = 1; prec <= 17; prec++) {
                snprintf(out, size, "%.*g", prec, v);
                if (strtod(out, NULL) == v) {
                        return;
                }
        }
}

/* name{l1="v1",...[,le="x"]} value\n */
static void sb_sample(sbuf_t *b, const struct fam *f, const ab_metric_t *s,
                      const char *suffix, const char *le, const char *val) {
        int i;
        int n;

        sb_str(b, f->name);
        sb_str(b, suffix);
        n = s->values ? f->nlabels : 0;
        if (n || le) {
                sb_put(b, "{", 1);
                for (i = 0; i < n; i++) {
                        if (i) {
                                sb_put(b, ",", 1);
                        }
                        sb_str(b, f->labels[i]);
                        sb_put(b, "=\"", 2);
                        sb_esc(b, s->values[i], 1);
                        sb_put(b, "\"", 1);
                }
                if (le) {
                        sb_str(b, n ? ",le=\"" : "le=\"");
                        sb_str(b, le);
                        sb_put(b, "\"", 1);
                }
                sb_put(b, "}", 1);
        }
        sb_put(b, " ", 1);
        sb_str(b, val);
        sb_put(b, "\n", 1);
}

static void render_series(sbuf_t *b, const struct fam *f, ab_metric_t *s) {
        char val[64];
        char le[64];
        uint64_t cum;
        size_t i;

        switch (f->type) {
        case T_COUNTER:
                snprintf(val, sizeof(val), "%llu",
                         (unsigned long long)atomic_load_explicit(
                             &s->v, memory_order_relaxed));
                sb_sample(b, f, s, "", NULL, val);
                break;
        case T_GAUGE:
                fmt_dbl(val, sizeof(val),
                        u2d(atomic_load_explicit(&s->v, memory_order_relaxed)));
                sb_sample(b, f, s, "", NULL, val);
                break;
        case T_GAUGE_FN:
                fmt_dbl(val, sizeof(val), f->fn(f->fn_opaque));
                sb_sample(b, f, s, "", NULL, val);
                break;
        case T_HISTOGRAM:
                /* _count is the +Inf bucket so the two always agree even
                 * while observations race with the render. */
                cum = 0;
                for (i = 0; i <= f->nbounds; i++) {
                        cum += atomic_load_explicit(&s->buckets[i],
                                                    memory_order_relaxed);
                        if (i < f->nbounds) {
                                fmt_dbl(le, sizeof(le), f->bounds[i]);
                        } else {
                                snprintf(le, sizeof(le), "+Inf");
                        }
                        snprintf(val, sizeof(val), "%llu",
                                 (unsigned long long)cum);
                        sb_sample(b, f, s, "_bucket", le, val);
                }
                fmt_dbl(val, sizeof(val),
                        u2d(atomic_load_explicit(&s->sum,
                                                 memory_order_relaxed)));
                sb_sample(b, f, s, "_sum", NULL, val);
                snprintf(val, sizeof(val), "%llu", (unsigned long long)cum);
                sb_sample(b, f, s, "_count", NULL, val);
                break;
        default:
                break;
        }
}

static const char *type_name(mtype_t t) {
        switch (t) {
        case T_COUNTER:
                return "counter";
        case T_HISTOGRAM:
                return "histogram";
        default:
                return "gauge";
        }
}

ab_err_t ab_metrics_render(ab_metrics_t *reg, char **bufp, size_t *lenp) {
        sbuf_t b = {0};
        const struct fam *f;
        size_t cnt;
        size_t i;

        pthread_mutex_lock(&reg->lock);
        for (f = reg->head; f; f = f->next) {
                sb_str(&b, "# HELP ");
                sb_str(&b, f->name);
                sb_put(&b, " ", 1);
                sb_esc(&b, f->help, 0);
                sb_str(&b, "\n# TYPE ");
                sb_str(&b, f->name);
                sb_put(&b, " ", 1);
                sb_str(&b, type_name(f->type));
                sb_put(&b, "\n", 1);
                if (!f->nlabels) {
                        render_series(&b, f, (ab_metric_t *)&f->root);
                        continue;
                }
                cnt = atomic_load_explicit(&((struct fam *)f)->cnt,
                                           memory_order_acquire);
                for (i = 0; i < cnt; i++) {
                        render_series(&b, f, f->order[i]);
                }
        }
        pthread_mutex_unlock(&reg->lock);
        sb_put(&b, "", 0);
        if (b.oom) {
                free(b.p);
                return AB_ERR_NOMEM;
        }
        *bufp = b.p;
        if (lenp) {
                *lenp = b.len;
        }
        return AB_OK;
}
