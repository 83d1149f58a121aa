/* aetherbus - Apache-2.0
 *
 * fuzz_main: a standalone driver for a libFuzzer entry point, so every
 * build (gcc, no libFuzzer) runs the fuzz targets as a ctest. It feeds
 * every file of the seed corpus, then a fixed number of deterministic
 * mutations of those seeds (bit flips, JSON tokens, deletions, chunk
 * copies, splices, truncations) to LLVMFuzzerTestOneInput(). Coverage
 * guidance stays libFuzzer's job (-DAB_FUZZ=ON); this is the smoke run.
 *
 * Usage: fuzz_<name>_run [-n mutations] [-s seed] [-m max_len] PATH...
 * A PATH that is a file is run alone (replaying a crash); a directory
 * gives its regular files as seeds. On a crash the input is written to
 * ./fuzz-crash-<pid>.bin and the iteration is printed (0: a seed); the
 * same arguments reproduce it.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
        uint8_t *data;
        size_t len;
} blob_t;

static blob_t *seeds;
static size_t seed_cnt;

/* The input being run, for the crash report. */
static const uint8_t *volatile cur_data;
static volatile size_t cur_len;
static volatile unsigned long long cur_iter;
static char crash_path[64];

static const char *const tokens[] = {
        "{",        "}",      "[",         "]",         "\"",
        ",",        ":",      "\\",        "null",      "true",
        "false",    "-0",     "1e309",     "0.1",       "-1",
        "9223372036854775808",  "\"\\u0000\"", "\"\\ud800\"", "[[[[[[[[",
        "{\"a\":",  "\"id\":", "\"name\":", "\"type\":", "\"payload\":{}",
        "\"schemaVersion\":2", "\"occurredAt\":\"2024-02-29T23:59:59.999+23:59\"",
        "\"source\":\"agent\"", "\"tenant\":", "\"companyId\":null",
        "\"name\":\"crm.x.y\"", "\"type\":\"OrderCreated\"", "\xff",
        "\xc3\xa9", "\xf0\x9f\x98\x80", "\n", " ",
};

static uint64_t rng_state;

static uint64_t rnd(void) {
        /* xorshift64* */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 0x2545F4914F6CDD1DULL;
}

static size_t below(size_t n) {
        return n ? (size_t)(rnd() % n) : 0;
}

/* Saves the current input; async-signal-safe (no stdio). */
static void dump_input(void) {
        char msg[128], num[24];
        size_t n = 0, k = 0;
        unsigned long long it = cur_iter;
        int fd;

        fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
                if (write(fd, (const void *)cur_data, cur_len) < 0) {
                        /* nothing more to do here */
                }
                close(fd);
        }
        do {
                num[k++] = (char)('0' + it % 10);
                it /= 10;
        } while (it);
        memcpy(msg, "fuzz: crash at iteration ", 25);
        n = 25;
        while (k) {
                msg[n++] = num[--k];
        }
        memcpy(msg + n, ", input in ", 11);
        n += 11;
        k = strlen(crash_path);
        memcpy(msg + n, crash_path, k);
        n += k;
        msg[n++] = '\n';
        if (write(2, msg, n) < 0) {
                /* nothing more to do here */
        }
}

static void on_crash(int sig) {
        dump_input();
        signal(sig, SIG_DFL);
        raise(sig);
}

#if defined(__SANITIZE_ADDRESS__)
#define AB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AB_ASAN 1
#endif
#endif

#ifdef AB_ASAN
void __sanitizer_set_death_callback(void (*callback)(void));
#endif

static void install_crash_report(void) {
        snprintf(crash_path, sizeof(crash_path), "fuzz-crash-%d.bin",
                 (int)getpid());
        signal(SIGABRT, on_crash);
#ifdef AB_ASAN
        /* ASan owns SIGSEGV and friends; it calls us before exiting */
        __sanitizer_set_death_callback(dump_input);
#else
        signal(SIGSEGV, on_crash);
        signal(SIGBUS, on_crash);
        signal(SIGFPE, on_crash);
        signal(SIGILL, on_crash);
#endif
}

static void run(const uint8_t *data, size_t len) {
        cur_data = data;
        cur_len = len;
        LLVMFuzzerTestOneInput(data, len);
}

static int load_file(const char *path) {
        FILE *fp = fopen(path, "rb");
        blob_t *b;
        long len;

        if (!fp) {
                return -1;
        }
        if (fseek(fp, 0, SEEK_END) || (len = ftell(fp)) < 0 ||
            fseek(fp, 0, SEEK_SET)) {
                fclose(fp);
                return -1;
        }
        b = realloc(seeds, (seed_cnt + 1) * sizeof(*seeds));
        if (!b) {
                fclose(fp);
                return -1;
        }
        seeds = b;
        b = &seeds[seed_cnt];
        b->len = (size_t)len;
        b->data = malloc(b->len + 1);
        if (!b->data || fread(b->data, 1, b->len, fp) != b->len) {
                free(b->data);
                fclose(fp);
                return -1;
        }
        fclose(fp);
        seed_cnt++;
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads the regular files of \p dir in name order (deterministic). */
static int load_dir(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        struct stat st;
        char **names = NULL, **n, path[4096];
        size_t cnt = 0, i;
        int rc = 0;

        if (!d) {
                return -1;
        }
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.') {
                        continue;
                }
                n = realloc(names, (cnt + 1) * sizeof(*names));
                if (!n) {
                        rc = -1;
                        break;
                }
                names = n;
                names[cnt++] = strdup(de->d_name);
        }
        closedir(d);
        qsort(names, cnt, sizeof(*names), cmp_str);
        for (i = 0; i < cnt; i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
                if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
                    load_file(path) != 0) {
                        fprintf(stderr, "cannot read %s\n", path);
                        rc = -1;
                }
                free(names[i]);
        }
        free(names);
        return rc;
}

/* Applies 1..8 random edits to buf[0..*lenp), capacity cap. */
static void mutate(uint8_t *buf, size_t *lenp, size_t cap) {
        size_t len = *lenp, edits = 1 + below(8), e, pos, n, m;
        const blob_t *other;
        const char *tok;

        for (e = 0; e < edits; e++) {
                pos = below(len + 1);
                switch (below(8)) {
                case 0: /* flip a bit */
                        if (len) {
                                buf[below(len)] ^= (uint8_t)(1u << below(8));
                        }
                        break;
                case 1: /* random byte */
                        if (len) {
                                buf[below(len)] = (uint8_t)rnd();
                        }
                        break;
                case 2: /* delete a range */
                        n = below(len - pos + 1);
                        n = n > 64 ? below(64) : n;
                        memmove(buf + pos, buf + pos + n, len - pos - n);
                        len -= n;
                        break;
                case 3: /* insert a JSON-ish token */
                case 4:
                        tok = tokens[below(sizeof(tokens) / sizeof(tokens[0]))];
                        n = strlen(tok);
                        if (len + n <= cap) {
                                memmove(buf + pos + n, buf + pos, len - pos);
                                memcpy(buf + pos, tok, n);
                                len += n;
                        }
                        break;
                case 5: /* copy a chunk of itself elsewhere */
                        if (len) {
                                m = below(len);
                                n = 1 + below(len - m < 256 ? len - m : 256);
                                if (len + n <= cap) {
                                        memmove(buf + pos + n, buf + pos,
                                                len - pos);
                                        memmove(buf + pos,
                                                buf + (m >= pos ? m + n : m),
                                                n);
                                        len += n;
                                }
                        }
                        break;
                case 6: /* splice: our head, another seed's tail */
                        other = &seeds[below(seed_cnt)];
                        m = below(other->len + 1);
                        n = other->len - m;
                        if (pos + n > cap) {
                                n = cap - pos;
                        }
                        memcpy(buf + pos, other->data + m, n);
                        len = pos + n;
                        break;
                default: /* truncate */
                        len = pos;
                        break;
                }
        }
        *lenp = len;
}

static void usage(const char *argv0) {
        fprintf(stderr,
                "usage: %s [-n mutations] [-s seed] [-m max_len] PATH...\n",
                argv0);
}

int main(int argc, char **argv) {
        unsigned long long iterations = 10000, seed = 1, i;
        size_t max_len = 1 << 17, len;
        const blob_t *sd;
        struct stat st;
        uint8_t *buf;
        int opt, a;

        while ((opt = getopt(argc, argv, "n:s:m:h")) != -1) {
                switch (opt) {
                case 'n':
                        iterations = strtoull(optarg, NULL, 10);
                        break;
                case 's':
                        seed = strtoull(optarg, NULL, 10);
                        break;
                case 'm':
                        max_len = (size_t)strtoull(optarg, NULL, 10);
                        break;
                default:
                        usage(argv[0]);
                        return opt == 'h' ? 0 : 2;
                }
        }
        if (optind >= argc || max_len == 0) {
                usage(argv[0]);
                return 2;
        }
        install_crash_report();

        if (argc - optind == 1 && stat(argv[optind], &st) == 0 &&
            S_ISREG(st.st_mode)) {
                if (load_file(argv[optind]) != 0) {
                        fprintf(stderr, "cannot read %s\n", argv[optind]);
                        return 2;
                }
                run(seeds[0].data, seeds[0].len);
                printf("%s: replayed %s (%zu bytes): ok\n", argv[0],
                       argv[optind], seeds[0].len);
                return 0;
        }
        for (a = optind; a < argc; a++) {
                if (load_dir(argv[a]) != 0) {
                        fprintf(stderr, "cannot read corpus %s\n", argv[a]);
                        return 2;
                }
        }
        if (seed_cnt == 0) {
                fprintf(stderr, "no seed files\n");
                return 2;
        }
        buf = malloc(max_len);
        if (!buf) {
                return 2;
        }
        run((const uint8_t *)"", 0);
        for (i = 0; i < seed_cnt; i++) {
                run(seeds[i].data, seeds[i].len);
        }
        rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
        for (i = 0; i < iterations; i++) {
                sd = &seeds[below(seed_cnt)];
                cur_iter = i + 1;
                len = sd->len < max_len ? sd->len : max_len;
                memcpy(buf, sd->data, len);
                mutate(buf, &len, max_len);
                run(buf, len);
        }
        printf("%s: %zu seeds, %llu mutations (seed %llu): no crash\n",
               argv[0], seed_cnt, iterations, seed);
        for (i = 0; i < seed_cnt; i++) {
                free(seeds[i].data);
        }
        free(seeds);
        free(buf);
        return 0;
}
