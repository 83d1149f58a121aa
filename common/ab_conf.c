/* aetherbus - Apache-2.0
 *
 * ab_conf: parsing, validation, precedence (default < env < flag), help
 * and dump for a service's settings table. Owns value syntax and the
 * wording of every configuration error; the meaning of a setting and
 * cross-field rules stay with the service (its finalize()).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ab_conf.h"

#define KI 1024LL

static void *fld(void *conf, const ab_conf_row_t *r) {
        return (char *)conf + r->offset;
}

static const void *cfld(const void *conf, const ab_conf_row_t *r) {
        return (const char *)conf + r->offset;
}

static int has_range(const ab_conf_row_t *r) {
        return r->min != 0 || r->max != 0;
}

ab_err_t ab_conf_check_topic_prefix(const char *value, char *errstr,
                                    size_t errstr_size) {
        const char *p;

        for (p = value; *p; p++) {
                if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' &&
                    *p != '-') {
                        break;
                }
        }
        if (*p || p - value > 200) {
                ab_errstr_set(errstr, errstr_size,
                              "must be at most 200 characters of "
                              "[a-zA-Z0-9._-]");
                return AB_ERR_INVALID;
        }
        return AB_OK;
}

ab_err_t ab_conf_check_brokers(const char *value, char *errstr,
                               size_t errstr_size) {
        const char *p;
        int item;

        item = 0;
        for (p = value; *p; p++) {
                if (isspace((unsigned char)*p) || (*p == ',' && !item)) {
                        break;
                }
                item = *p != ',';
        }
        if (*p || !item) {
                ab_errstr_set(errstr, errstr_size,
                              "must be a comma-separated host:port list "
                              "without spaces");
                return AB_ERR_INVALID;
        }
        return AB_OK;
}

/* "1K", "64M", or plain bytes when not a multiple. */
static void fmt_size(char *out, size_t size, long long v) {
        if (v != 0 && v % (KI * KI * KI) == 0) {
                snprintf(out, size, "%lldG", v / (KI * KI * KI));
        } else if (v != 0 && v % (KI * KI) == 0) {
                snprintf(out, size, "%lldM", v / (KI * KI));
        } else if (v != 0 && v % KI == 0) {
                snprintf(out, size, "%lldK", v / KI);
        } else {
                snprintf(out, size, "%lld", v);
        }
}

static void fmt_dur(char *out, size_t size, long long ms) {
        if (ms != 0 && ms % 3600000 == 0) {
                snprintf(out, size, "%lldh", ms / 3600000);
        } else if (ms != 0 && ms % 60000 == 0) {
                snprintf(out, size, "%lldm", ms / 60000);
        } else if (ms != 0 && ms % 1000 == 0) {
                snprintf(out, size, "%llds", ms / 1000);
        } else {
                snprintf(out, size, "%lldms", ms);
        }
}

/* Strict decimal: optional sign, digits, nothing else. */
static int parse_ll(const char *s, long long *vp, char **endp) {
        char *end;

        if (!*s || isspace((unsigned char)*s)) {
                return 0;
        }
        errno = 0;
        *vp   = strtoll(s, &end, 10);
        if (errno || end == s || !isdigit((unsigned char)end[-1])) {
                return 0;
        }
        if (endp) {
                *endp = end;
        } else if (*end) {
                return 0;
        }
        return 1;
}

static int parse_bool(const char *s, int *vp) {
        static const char *t[] = {"true", "1", "yes", "on"};
        static const char *f[] = {"false", "0", "no", "off"};
        size_t i;

        for (i = 0; i < 4; i++) {
                if (!strcasecmp(s, t[i])) {
                        *vp = 1;
                        return 1;
                }
                if (!strcasecmp(s, f[i])) {
                        *vp = 0;
                        return 1;
                }
        }
        return 0;
}

/* Index of s in "a|b|c" (case-insensitive), or -1. */
static int enum_index(const char *values, const char *s) {
        const char *p;
        const char *bar;
        size_t n;
        int i;

        for (p = values, i = 0; p; i++) {
                bar = strchr(p, '|');
                n   = bar ? (size_t)(bar - p) : strlen(p);
                if (n == strlen(s) && !strncasecmp(p, s, n)) {
                        return i;
                }
                p = bar ? bar + 1 : NULL;
        }
        return -1;
}

/* Writes the name of index i of "a|b|c" into out. */
static void enum_name(const char *values, int i, char *out, size_t size) {
        const char *p;
        const char *bar;
        int k;

        out[0] = '\0';
        for (p = values, k = 0; p; k++) {
                bar = strchr(p, '|');
                if (k == i) {
                        snprintf(out, size, "%.*s",
                                 (int)(bar ? (size_t)(bar - p) : strlen(p)),
                                 p);
                        return;
                }
                p = bar ? bar + 1 : NULL;
        }
}

static int parse_size(const char *s, long long *vp) {
        long long v;
        long long mul;
        char *end;

        if (!parse_ll(s, &v, &end) || v < 0 || *s == '-' || *s == '+') {
                return 0;
        }
        mul = 1;
        switch (toupper((unsigned char)*end)) {
        case 'K':
                mul = KI;
                end++;
                break;
        case 'M':
                mul = KI * KI;
                end++;
                break;
        case 'G':
                mul = KI * KI * KI;
                end++;
                break;
        default:
                break;
        }
        if (mul > 1 && (*end == 'i' || *end == 'I')) {
                end++;
        }
        if (*end == 'B' || *end == 'b') {
                end++;
        }
        if (*end || v > LLONG_MAX / mul) {
                return 0;
        }
        *vp = v * mul;
        return 1;
}

static int parse_dur(const char *s, long long *vp) {
        long long v;
        long long mul;
        char *end;

        if (!parse_ll(s, &v, &end) || v < 0 || *s == '-' || *s == '+') {
                return 0;
        }
        if (!*end || !strcmp(end, "ms")) {
                mul = 1;
        } else if (!strcmp(end, "s")) {
                mul = 1000;
        } else if (!strcmp(end, "m")) {
                mul = 60000;
        } else if (!strcmp(end, "h")) {
                mul = 3600000;
        } else {
                return 0;
        }
        if (v > LLONG_MAX / mul) {
                return 0;
        }
        *vp = v * mul;
        return 1;
}

static int url_ok(const char *s) {
        const char *host;
        const char *p;

        if (!strncasecmp(s, "http://", 7)) {
                host = s + 7;
        } else if (!strncasecmp(s, "https://", 8)) {
                host = s + 8;
        } else {
                return 0;
        }
        if (!*host || *host == '/' || *host == '?' || *host == '#' ||
            *host == ':') {
                return 0;
        }
        for (p = s; *p; p++) {
                if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p)) {
                        return 0;
                }
        }
        return 1;
}

/* The text after "NAME: " describing what the row accepts. */
static void expect_text(const ab_conf_row_t *r, char *out, size_t size) {
        char a[32];
        char b[32];

        switch (r->type) {
        case AB_CONF_INT:
                if (has_range(r)) {
                        snprintf(out, size, "must be an integer in %lld..%lld",
                                 r->min, r->max);
                } else {
                        snprintf(out, size, "must be an integer");
                }
                break;
        case AB_CONF_BOOL:
                snprintf(out, size,
                         "must be true or false (or 1|0|yes|no|on|off)");
                break;
        case AB_CONF_ENUM:
                snprintf(out, size, "must be one of %s", r->values);
                break;
        case AB_CONF_SIZE:
                if (has_range(r)) {
                        fmt_size(a, sizeof(a), r->min);
                        fmt_size(b, sizeof(b), r->max);
                        snprintf(out, size,
                                 "must be a size in %s..%s "
                                 "(bytes, or suffix K, M, G)",
                                 a, b);
                } else {
                        snprintf(out, size,
                                 "must be a size (bytes, or suffix K, M, G)");
                }
                break;
        case AB_CONF_DURATION:
                if (has_range(r)) {
                        fmt_dur(a, sizeof(a), r->min);
                        fmt_dur(b, sizeof(b), r->max);
                        snprintf(out, size,
                                 "must be a duration in %s..%s "
                                 "(ms, or suffix ms, s, m, h)",
                                 a, b);
                } else {
                        snprintf(out, size,
                                 "must be a duration (ms, or suffix ms, s, "
                                 "m, h)");
                }
                break;
        case AB_CONF_URL:
                snprintf(out, size, "must be an http:// or https:// URL");
                break;
        default:
                snprintf(out, size, "must be a string");
                break;
        }
}

static ab_err_t bad(const ab_conf_row_t *r, const char *name, const char *v,
                    const char *why, char *errstr, size_t errstr_size) {
        char exp[160];

        if (!why) {
                expect_text(r, exp, sizeof(exp));
                why = exp;
        }
        ab_errstr_set(errstr, errstr_size, "%s: %s, got \"%s\"", name, why,
                      (r->flags & AB_CONF_SECRET) ? "***" : v);
        return AB_ERR_INVALID;
}

static ab_err_t set_str(char **fp, const char *v) {
        char *s;

        if (!(s = strdup(v))) {
                return AB_ERR_NOMEM;
        }
        free(*fp);
        *fp = s;
        return AB_OK;
}

/* Parses v for row r into conf; name is "PORT" or "--port" for errors. */
static ab_err_t set_value(const ab_conf_row_t *r, void *conf, const char *name,
                          const char *v, char *errstr, size_t errstr_size) {
        char why[160];
        long long ll;
        int b;
        int idx;

        switch (r->type) {
        case AB_CONF_STR:
        case AB_CONF_URL:
                if (r->type == AB_CONF_URL && !url_ok(v)) {
                        return bad(r, name, v, NULL, errstr, errstr_size);
                }
                if (r->check && r->check(v, why, sizeof(why)) != AB_OK) {
                        return bad(r, name, v, why, errstr, errstr_size);
                }
                if (set_str((char **)fld(conf, r), v) != AB_OK) {
                        ab_errstr_set(errstr, errstr_size, "out of memory");
                        return AB_ERR_NOMEM;
                }
                return AB_OK;
        case AB_CONF_INT:
                if (!parse_ll(v, &ll, NULL) || ll < INT_MIN || ll > INT_MAX ||
                    (has_range(r) && (ll < r->min || ll > r->max))) {
                        return bad(r, name, v, NULL, errstr, errstr_size);
                }
                *(int *)fld(conf, r) = (int)ll;
                return AB_OK;
        case AB_CONF_BOOL:
                if (!parse_bool(v, &b)) {
                        return bad(r, name, v, NULL, errstr, errstr_size);
                }
                *(int *)fld(conf, r) = b;
                return AB_OK;
        case AB_CONF_ENUM:
                if ((idx = enum_index(r->values, v)) < 0) {
                        return bad(r, name, v, NULL, errstr, errstr_size);
                }
                *(int *)fld(conf, r) = idx;
                return AB_OK;
        case AB_CONF_SIZE:
                if (!parse_size(v, &ll) ||
                    (unsigned long long)ll > (unsigned long long)SIZE_MAX ||
                    (has_range(r) && (ll < r->min || ll > r->max))) {
                        return bad(r, name, v, NULL, errstr, errstr_size);
                }
                *(size_t *)fld(conf, r) = (size_t)ll;
                return AB_OK;
        case AB_CONF_DURATION:
                if (!parse_dur(v, &ll) ||
                    (has_range(r) && (ll < r->min || ll > r->max))) {
                        return bad(r, name, v, NULL, errstr, errstr_size);
                }
                *(int64_t *)fld(conf, r) = (int64_t)ll;
                return AB_OK;
        }
        ab_errstr_set(errstr, errstr_size, "%s: unknown setting type", name);
        return AB_ERR_INTERNAL;
}

static void clear_row(const ab_conf_row_t *r, void *conf) {
        switch (r->type) {
        case AB_CONF_STR:
        case AB_CONF_URL:
                free(*(char **)fld(conf, r));
                *(char **)fld(conf, r) = NULL;
                break;
        case AB_CONF_SIZE:
                *(size_t *)fld(conf, r) = 0;
                break;
        case AB_CONF_DURATION:
                *(int64_t *)fld(conf, r) = 0;
                break;
        default:
                *(int *)fld(conf, r) = 0;
                break;
        }
}

void ab_conf_clear(const ab_conf_spec_t *spec, void *conf) {
        const ab_conf_row_t *r;

        if (!spec || !conf) {
                return;
        }
        for (r = spec->rows; r->env; r++) {
                clear_row(r, conf);
        }
}

static const ab_conf_row_t *find_flag(const ab_conf_spec_t *spec,
                                      const char *name, size_t len) {
        const ab_conf_row_t *r;

        for (r = spec->rows; r->env; r++) {
                if (r->flag && strlen(r->flag) == len &&
                    !strncmp(r->flag, name, len)) {
                        return r;
                }
        }
        return NULL;
}

static int is_set(const ab_conf_row_t *r, const void *conf) {
        const char *s;

        if (r->type == AB_CONF_STR || r->type == AB_CONF_URL) {
                s = *(char *const *)cfld(conf, r);
                return s && *s;
        }
        return 1;
}

static ab_err_t load(const ab_conf_spec_t *spec, void *conf, int argc,
                     char **argv, ab_conf_action_t *actionp, char *errstr,
                     size_t errstr_size) {
        const ab_conf_row_t *r;
        const char *a;
        const char *eq;
        const char *v;
        char name[80];
        ab_err_t err;
        int dump;
        int i;

        /* Defaults: a failure here is a bug in the table. */
        for (r = spec->rows; r->env; r++) {
                clear_row(r, conf);
                if (r->def && (err = set_value(r, conf, r->env, r->def, errstr,
                                               errstr_size)) != AB_OK) {
                        return err == AB_ERR_INVALID ? AB_ERR_INTERNAL : err;
                }
        }

        for (r = spec->rows; r->env; r++) {
                if ((v = getenv(r->env)) &&
                    (err = set_value(r, conf, r->env, v, errstr,
                                     errstr_size)) != AB_OK) {
                        return err;
                }
        }

        dump = 0;
        for (i = 1; i < argc; i++) {
                a = argv[i];
                if (!strcmp(a, "--dump-config")) {
                        dump = 1;
                        continue;
                }
                if (strncmp(a, "--", 2) || !a[2]) {
                        ab_errstr_set(errstr, errstr_size,
                                      "unexpected argument \"%s\"", a);
                        return AB_ERR_UNKNOWN;
                }
                eq = strchr(a + 2, '=');
                if (!(r = find_flag(spec, a + 2,
                                    eq ? (size_t)(eq - a - 2)
                                       : strlen(a + 2)))) {
                        ab_errstr_set(errstr, errstr_size, "unknown flag %.*s",
                                      (int)(eq ? (size_t)(eq - a)
                                               : strlen(a)),
                                      a);
                        return AB_ERR_UNKNOWN;
                }
                snprintf(name, sizeof(name), "--%s", r->flag);
                if (eq) {
                        v = eq + 1;
                } else if (r->type == AB_CONF_BOOL) {
                        v = "true";
                } else if (i + 1 < argc) {
                        v = argv[++i];
                } else {
                        ab_errstr_set(errstr, errstr_size, "%s: missing value",
                                      name);
                        return AB_ERR_INVALID;
                }
                if ((err = set_value(r, conf, name, v, errstr, errstr_size)) !=
                    AB_OK) {
                        return err;
                }
        }

        for (r = spec->rows; r->env; r++) {
                if ((r->flags & AB_CONF_REQUIRED) && !is_set(r, conf)) {
                        if (r->flag) {
                                ab_errstr_set(errstr, errstr_size,
                                              "%s: required (set %s or --%s)",
                                              r->env, r->env, r->flag);
                        } else {
                                ab_errstr_set(errstr, errstr_size,
                                              "%s: required", r->env);
                        }
                        return AB_ERR_INVALID;
                }
        }

        if (spec->finalize &&
            (err = spec->finalize(conf, errstr, errstr_size)) != AB_OK) {
                return err;
        }
        *actionp = dump ? AB_CONF_DUMP : AB_CONF_RUN;
        return AB_OK;
}

ab_err_t ab_conf_load(const ab_conf_spec_t *spec, void *conf, int argc,
                      char **argv, ab_conf_action_t *actionp, char *errstr,
                      size_t errstr_size) {
        ab_err_t err;
        int i;

        *actionp = AB_CONF_RUN;
        for (i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                        *actionp = AB_CONF_HELP;
                        return AB_OK;
                }
        }
        if ((err = load(spec, conf, argc, argv, actionp, errstr,
                        errstr_size)) != AB_OK) {
                ab_conf_clear(spec, conf);
        }
        return err;
}

static void metavar(const ab_conf_row_t *r, char *out, size_t size) {
        char a[32];
        char b[32];

        switch (r->type) {
        case AB_CONF_INT:
                if (has_range(r)) {
                        snprintf(out, size, "%lld..%lld", r->min, r->max);
                } else {
                        snprintf(out, size, "INT");
                }
                break;
        case AB_CONF_BOOL:
                snprintf(out, size, "true|false");
                break;
        case AB_CONF_ENUM:
                snprintf(out, size, "%s", r->values);
                break;
        case AB_CONF_SIZE:
                if (has_range(r)) {
                        fmt_size(a, sizeof(a), r->min);
                        fmt_size(b, sizeof(b), r->max);
                        snprintf(out, size, "SIZE (%s..%s)", a, b);
                } else {
                        snprintf(out, size, "SIZE");
                }
                break;
        case AB_CONF_DURATION:
                if (has_range(r)) {
                        fmt_dur(a, sizeof(a), r->min);
                        fmt_dur(b, sizeof(b), r->max);
                        snprintf(out, size, "DURATION (%s..%s)", a, b);
                } else {
                        snprintf(out, size, "DURATION");
                }
                break;
        case AB_CONF_URL:
                snprintf(out, size, "URL");
                break;
        default:
                snprintf(out, size, "STRING");
                break;
        }
}

void ab_conf_help(const ab_conf_spec_t *spec, FILE *fp) {
        const ab_conf_row_t *r;
        char mv[160];

        fprintf(fp, "Usage: %s [--flag=value ...]\n",
                spec->prog ? spec->prog : "aetherbus");
        if (spec->about) {
                fprintf(fp, "%s\n", spec->about);
        }
        fprintf(fp, "\nEvery setting is read from its environment variable; "
                    "a flag overrides it.\n\n");
        for (r = spec->rows; r->env; r++) {
                metavar(r, mv, sizeof(mv));
                if (r->flag) {
                        fprintf(fp, "  --%s=%s\n", r->flag, mv);
                } else {
                        fprintf(fp, "  (no flag) %s\n", mv);
                }
                fprintf(fp, "      %s. %s", r->env, r->help ? r->help : "");
                if (r->flags & AB_CONF_REQUIRED) {
                        fprintf(fp, " Required.");
                } else if (r->flags & AB_CONF_SECRET) {
                        fprintf(fp, " Secret.");
                } else if (r->def) {
                        /* Quoted: a default such as "events." would
                         * otherwise read as a sentence end. */
                        fprintf(fp, " Default: \"%s\"", r->def);
                }
                fprintf(fp, "\n");
        }
        fprintf(fp, "  --dump-config\n"
                    "      Print the effective configuration (secrets "
                    "masked) and exit.\n"
                    "  --help, -h\n"
                    "      Print this help and exit.\n");
}

void ab_conf_dump(const ab_conf_spec_t *spec, const void *conf, FILE *fp) {
        const ab_conf_row_t *r;
        const char *s;
        char buf[64];

        for (r = spec->rows; r->env; r++) {
                switch (r->type) {
                case AB_CONF_STR:
                case AB_CONF_URL:
                        s = *(char *const *)cfld(conf, r);
                        s = s ? s : "";
                        break;
                case AB_CONF_INT:
                        snprintf(buf, sizeof(buf), "%d",
                                 *(const int *)cfld(conf, r));
                        s = buf;
                        break;
                case AB_CONF_BOOL:
                        s = *(const int *)cfld(conf, r) ? "true" : "false";
                        break;
                case AB_CONF_ENUM:
                        enum_name(r->values, *(const int *)cfld(conf, r), buf,
                                  sizeof(buf));
                        s = buf;
                        break;
                case AB_CONF_SIZE:
                        snprintf(buf, sizeof(buf), "%zu",
                                 *(const size_t *)cfld(conf, r));
                        s = buf;
                        break;
                case AB_CONF_DURATION:
                        snprintf(buf, sizeof(buf), "%lldms",
                                 (long long)*(const int64_t *)cfld(conf, r));
                        s = buf;
                        break;
                default:
                        s = "";
                        break;
                }
                if ((r->flags & AB_CONF_SECRET) && *s) {
                        s = "***";
                }
                fprintf(fp, "%s=%s\n", r->env, s);
        }
}

int ab_conf_main(const ab_conf_spec_t *spec, void *conf, int argc,
                 char **argv) {
        char errstr[512];
        ab_conf_action_t action;

        if (ab_conf_load(spec, conf, argc, argv, &action, errstr,
                         sizeof(errstr)) != AB_OK) {
                fprintf(stderr, "%s: %s\n",
                        spec->prog ? spec->prog
                                   : (argc > 0 ? argv[0] : "aetherbus"),
                        errstr);
                return 2;
        }
        switch (action) {
        case AB_CONF_HELP:
                ab_conf_help(spec, stdout);
                ab_conf_clear(spec, conf);
                return 0;
        case AB_CONF_DUMP:
                ab_conf_dump(spec, conf, stdout);
                ab_conf_clear(spec, conf);
                return 0;
        default:
                return AB_CONF_CONTINUE;
        }
}
