/* aetherbus - Apache-2.0
 *
 * ab_itest: the integration test harness (see ab_itest.h). Owns the
 * broker under test, topic setup and read-back, child processes and the
 * HTTP client. Assertions about the system under test stay in the tests;
 * only setup the tests cannot go on without aborts from here.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <curl/curl.h>

#include "ab_catalog.h"
#include "ab_itest.h"
#include "ab_kafka.h"
#include "ab_log.h"
#include "ab_record.h"
#include "ab_time.h"

extern char **environ;

#define BOOT_TIMEOUT_MS 20000  /* devbroker prints BROKERS= */
#define CTL_TIMEOUT_MS  10000  /* one control command */
#define META_TIMEOUT_MS 30000  /* topics show up in metadata */
#define STOP_TIMEOUT_MS 10000  /* a process exits after SIGTERM */

struct ab_itest_proc_s {
        pid_t pid;
        int status; /* once reaped */
        int reaped;
        char name[64];
        char log_path[512];
        char out_path[512];
};

struct ab_itest_broker_s {
        char kind[16];
        char bootstrap[1024];
        ab_itest_proc_t *proc; /* spawned devbroker */
        int ctl_in;            /* its stdin */
        int ctl_out;           /* its stdout */
        char buf[4096];
        size_t buf_len;
        rd_kafka_t *client;
        ab_producer_t *producer;
        int dr_seen;
        ab_err_t dr_err;
        char dr_errstr[256];
};

/* ------------------------------------------------------------------ */
/* Bounded waits                                                       */
/* ------------------------------------------------------------------ */

int64_t ab_itest_now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ab_itest_timeout(int timeout_ms) {
        const char *s = getenv("AB_ITEST_TIMEOUT_SCALE");
        double scale  = s ? atof(s) : 1.0;

        if (scale < 1.0) {
                scale = 1.0;
        }
        return (int)(timeout_ms * scale);
}

int64_t ab_itest_deadline(int timeout_ms) {
        return ab_itest_now_ms() + ab_itest_timeout(timeout_ms);
}

int ab_itest_tick(int64_t deadline) {
        struct timespec ts = {0, 10 * 1000000};

        if (ab_itest_now_ms() >= deadline) {
                return 0;
        }
        nanosleep(&ts, NULL);
        return 1;
}

/* ------------------------------------------------------------------ */
/* Files and the temporary directory                                   */
/* ------------------------------------------------------------------ */

static char tmpdir[512];
static pid_t tmpdir_pid;

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw) {
        (void)sb;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static void tmpdir_cleanup(void) {
        if (tmpdir_pid == getpid() && tmpdir[0] && !getenv("AB_ITEST_KEEP")) {
                nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        }
}

const char *ab_itest_tmpdir(void) {
        const char *base = getenv("TMPDIR");

        if (tmpdir[0] && tmpdir_pid == getpid()) {
                return tmpdir;
        }
        snprintf(tmpdir, sizeof(tmpdir), "%s/ab-itest-%d-XXXXXX",
                 base && *base ? base : "/tmp", (int)getpid());
        if (!mkdtemp(tmpdir)) {
                cr_assert_fail("mkdtemp %s: %s", tmpdir, strerror(errno));
        }
        tmpdir_pid = getpid();
        atexit(tmpdir_cleanup);
        return tmpdir;
}

/* The whole file, NUL-terminated; "" when it cannot be read. */
static char *read_file(const char *path, size_t *lenp) {
        struct stat st;
        char *data = NULL;
        size_t len = 0;
        ssize_t r;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd != -1 && fstat(fd, &st) == 0) {
                data = malloc((size_t)st.st_size + 1);
                while (data && len < (size_t)st.st_size &&
                       (r = read(fd, data + len, (size_t)st.st_size - len)) >
                           0) {
                        len += (size_t)r;
                }
        }
        if (fd != -1) {
                close(fd);
        }
        if (!data) {
                data = malloc(1);
                len  = 0;
        }
        cr_assert(data, "out of memory");
        data[len] = '\0';
        if (lenp) {
                *lenp = len;
        }
        return data;
}

/* ------------------------------------------------------------------ */
/* Processes                                                           */
/* ------------------------------------------------------------------ */

/* environ plus env ("NAME=value" replaces NAME). Strings are borrowed. */
static char **build_env(const char *const *env) {
        size_t n = 0;
        size_t extra = 0;
        size_t i;
        size_t j;
        size_t klen;
        char **out;

        while (environ[n]) {
                n++;
        }
        while (env && env[extra]) {
                extra++;
        }
        out = calloc(n + extra + 1, sizeof(*out));
        cr_assert(out, "out of memory");
        for (i = 0; i < n; i++) {
                out[i] = environ[i];
        }
        for (j = 0; j < extra; j++) {
                klen = strcspn(env[j], "=");
                for (i = 0; i < n; i++) {
                        if (!strncmp(out[i], env[j], klen) &&
                            out[i][klen] == '=') {
                                break;
                        }
                }
                out[i == n ? n++ : i] = (char *)env[j];
        }
        out[n] = NULL;
        return out;
}

/* fork + execve; the child only makes async-signal-safe calls. */
static pid_t spawn(const char *path, char *const *argv, char *const *envp,
                   int in_fd, int out_fd, int err_fd) {
        pid_t parent = getpid();
        sigset_t none;
        pid_t pid;

        sigemptyset(&none);
        pid = fork();
        if (pid != 0) {
                return pid;
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
                _exit(127);
        }
        if (dup2(in_fd, STDIN_FILENO) == -1 ||
            dup2(out_fd, STDOUT_FILENO) == -1 ||
            dup2(err_fd, STDERR_FILENO) == -1) {
                _exit(127);
        }
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(path, argv, envp);
        _exit(127);
}

/* Spawns bin; stdin from in_fd and stdout to out_fd when >= 0, else
 * /dev/null and a file. */
static ab_itest_proc_t *proc_spawn(const char *bin, const char *const *pre,
                                   const char *const *args,
                                   const char *const *env, int in_fd,
                                   int out_fd) {
        static int seq;
        ab_itest_proc_t *p;
        const char *base;
        char path[512];
        char **argv;
        char **envp;
        size_t n = 0;
        size_t i;
        int null_fd;
        int log_fd;
        int file_fd = -1;

        if (strchr(bin, '/')) {
                snprintf(path, sizeof(path), "%s", bin);
        } else {
                snprintf(path, sizeof(path), "%s/%s", AB_BIN_DIR, bin);
        }
        if (access(path, X_OK) != 0) {
                fprintf(stderr, "[itest] cannot run %s: %s\n", path,
                        strerror(errno));
                return NULL;
        }
        base = strrchr(path, '/') + 1;
        p    = calloc(1, sizeof(*p));
        cr_assert(p, "out of memory");
        snprintf(p->name, sizeof(p->name), "%s", base);
        seq++;
        snprintf(p->log_path, sizeof(p->log_path), "%s/%s-%d.stderr",
                 ab_itest_tmpdir(), base, seq);
        snprintf(p->out_path, sizeof(p->out_path), "%s/%s-%d.stdout",
                 ab_itest_tmpdir(), base, seq);

        for (i = 0; pre && pre[i]; i++) {
                n++;
        }
        for (i = 0; args && args[i]; i++) {
                n++;
        }
        argv = calloc(n + 2, sizeof(*argv));
        cr_assert(argv, "out of memory");
        n         = 0;
        argv[n++] = path;
        for (i = 0; pre && pre[i]; i++) {
                argv[n++] = (char *)pre[i];
        }
        for (i = 0; args && args[i]; i++) {
                argv[n++] = (char *)args[i];
        }
        envp = build_env(env);

        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        log_fd  = open(p->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                       0644);
        if (out_fd < 0) {
                file_fd = open(p->out_path,
                               O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        }
        cr_assert(null_fd != -1 && log_fd != -1 &&
                      (out_fd >= 0 || file_fd != -1),
                  "cannot open the log files in %s: %s", ab_itest_tmpdir(),
                  strerror(errno));
        p->pid = spawn(path, argv, envp, in_fd >= 0 ? in_fd : null_fd,
                       out_fd >= 0 ? out_fd : file_fd, log_fd);
        close(null_fd);
        close(log_fd);
        if (file_fd != -1) {
                close(file_fd);
        }
        free(argv);
        free(envp);
        if (p->pid == -1) {
                fprintf(stderr, "[itest] fork: %s\n", strerror(errno));
                free(p);
                return NULL;
        }
        return p;
}

ab_itest_proc_t *ab_itest_proc_start(const char *bin, const char *const *args,
                                     const char *const *env) {
        return proc_spawn(bin, NULL, args, env, -1, -1);
}

pid_t ab_itest_proc_pid(const ab_itest_proc_t *p) {
        return p->pid;
}

long ab_itest_proc_rss_kb(const ab_itest_proc_t *p) {
        char path[64], line[256];
        long kb = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)p->pid);
        if (!(f = fopen(path, "r"))) {
                return -1;
        }
        while (fgets(line, sizeof(line), f)) {
                if (!strncmp(line, "VmRSS:", 6)) {
                        kb = strtol(line + 6, NULL, 10);
                        break;
                }
        }
        fclose(f);
        return kb;
}

char *ab_itest_file_read(const char *path) {
        return read_file(path, NULL);
}

const char *ab_itest_proc_log_path(const ab_itest_proc_t *p) {
        return p->log_path;
}

const char *ab_itest_proc_out_path(const ab_itest_proc_t *p) {
        return p->out_path;
}

char *ab_itest_proc_log(const ab_itest_proc_t *p) {
        return read_file(p->log_path, NULL);
}

void ab_itest_proc_dump_log(const ab_itest_proc_t *p) {
        size_t len;
        char *log = read_file(p->log_path, &len);
        size_t from = len > 4096 ? len - 4096 : 0;

        fprintf(stderr, "---- %s (pid %d) stderr, last %zu bytes ----\n%s"
                        "---- end of %s stderr ----\n",
                p->name, (int)p->pid, len - from, log + from, p->name);
        free(log);
}

static int decode_status(int st) {
        if (WIFEXITED(st)) {
                return WEXITSTATUS(st);
        }
        if (WIFSIGNALED(st)) {
                return 128 + WTERMSIG(st);
        }
        return -1;
}

int ab_itest_proc_alive(ab_itest_proc_t *p) {
        int st;

        if (p->reaped) {
                return 0;
        }
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
                p->status = decode_status(st);
                p->reaped = 1;
                return 0;
        }
        return 1;
}

int ab_itest_proc_signal(ab_itest_proc_t *p, int sig) {
        if (!ab_itest_proc_alive(p)) {
                return -1;
        }
        return kill(p->pid, sig);
}

int ab_itest_proc_wait_exit(ab_itest_proc_t *p, int timeout_ms) {
        int64_t dl = ab_itest_deadline(timeout_ms);

        while (ab_itest_proc_alive(p)) {
                if (!ab_itest_tick(dl)) {
                        return -1;
                }
        }
        return p->status;
}

int ab_itest_proc_kill(ab_itest_proc_t *p) {
        int st;

        if (!ab_itest_proc_alive(p)) {
                return p->status;
        }
        kill(p->pid, SIGKILL);
        while (waitpid(p->pid, &st, 0) == -1 && errno == EINTR) {
        }
        p->status = decode_status(st);
        p->reaped = 1;
        return p->status;
}

int ab_itest_proc_stop(ab_itest_proc_t *p, int timeout_ms) {
        int status;

        if (!ab_itest_proc_alive(p)) {
                return p->status;
        }
        kill(p->pid, SIGTERM);
        status = ab_itest_proc_wait_exit(p, timeout_ms);
        if (status == -1) {
                fprintf(stderr, "[itest] %s (pid %d) still runs %d ms after "
                                "SIGTERM: SIGKILL\n",
                        p->name, (int)p->pid, ab_itest_timeout(timeout_ms));
                ab_itest_proc_dump_log(p);
                ab_itest_proc_kill(p);
                return -1;
        }
        return status;
}

void ab_itest_proc_destroy(ab_itest_proc_t *p) {
        if (!p) {
                return;
        }
        ab_itest_proc_kill(p);
        free(p);
}

int ab_itest_proc_wait_log(ab_itest_proc_t *p, const char *needle,
                           int timeout_ms) {
        int64_t dl = ab_itest_deadline(timeout_ms);
        int alive;
        int found;
        char *log;

        for (;;) {
                alive = ab_itest_proc_alive(p);
                log   = ab_itest_proc_log(p);
                found = strstr(log, needle) != NULL;
                free(log);
                if (found) {
                        return 0;
                }
                if (!alive) {
                        fprintf(stderr, "[itest] %s exited (status %d) "
                                        "before logging \"%s\"\n",
                                p->name, p->status, needle);
                        ab_itest_proc_dump_log(p);
                        return -1;
                }
                if (!ab_itest_tick(dl)) {
                        fprintf(stderr, "[itest] %s did not log \"%s\" "
                                        "within %d ms\n",
                                p->name, needle, ab_itest_timeout(timeout_ms));
                        ab_itest_proc_dump_log(p);
                        return -1;
                }
        }
}

/* ------------------------------------------------------------------ */
/* HTTP                                                                */
/* ------------------------------------------------------------------ */

struct grow {
        char *data;
        size_t len;
};

static size_t grow_cb(char *ptr, size_t size, size_t nmemb, void *arg) {
        struct grow *g = arg;
        size_t n       = size * nmemb;
        char *nd;

        nd = realloc(g->data, g->len + n + 1);
        if (!nd) {
                return 0;
        }
        memcpy(nd + g->len, ptr, n);
        g->data = nd;
        g->len += n;
        g->data[g->len] = '\0';
        return n;
}

static void curl_init_once(void) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int http_do(const char *method, const char *url,
                   const char *const *headers, const char *body,
                   size_t body_len, int timeout_ms, ab_itest_http_t *res) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        struct curl_slist *hl = NULL;
        struct grow gb        = {NULL, 0};
        struct grow gh        = {NULL, 0};
        CURLcode rc;
        CURL *curl;
        size_t i;

        pthread_once(&once, curl_init_once);
        memset(res, 0, sizeof(*res));
        curl = curl_easy_init();
        cr_assert(curl, "curl_easy_init failed");
        for (i = 0; headers && headers[i]; i++) {
                hl = curl_slist_append(hl, headers[i]);
        }
        hl = curl_slist_append(hl, "Expect:"); /* no 100-continue wait */
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)(timeout_ms < 5000 ? timeout_ms : 5000));
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, grow_cb);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &gb);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, grow_cb);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, &gh);
        if (!strcmp(method, "GET") && !body) {
                curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
        } else if (!strcmp(method, "HEAD")) {
                curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
        } else {
                curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? body : "");
                curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                                 (curl_off_t)(body ? body_len : 0));
                curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        }
        rc = curl_easy_perform(curl);
        if (rc == CURLE_OK) {
                curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->status);
        } else {
                snprintf(res->error, sizeof(res->error), "%s %s: %s", method,
                         url, curl_easy_strerror(rc));
        }
        curl_easy_cleanup(curl);
        curl_slist_free_all(hl);
        res->body     = gb.data ? gb.data : strdup("");
        res->body_len = gb.len;
        res->headers  = gh.data ? gh.data : strdup("");
        return rc == CURLE_OK ? 0 : -1;
}

int ab_itest_http(const char *method, const char *url,
                  const char *const *headers, const char *body,
                  size_t body_len, ab_itest_http_t *res) {
        return http_do(method, url, headers, body, body_len, 30000, res);
}

long ab_itest_http_get(const char *url, ab_itest_http_t *res) {
        ab_itest_http("GET", url, NULL, NULL, 0, res);
        return res->status;
}

long ab_itest_http_post_json(const char *url, const char *json,
                             const char *const *headers,
                             ab_itest_http_t *res) {
        const char *hdrs[34];
        size_t n = 0;
        size_t i;

        hdrs[n++] = "Content-Type: application/json";
        for (i = 0; headers && headers[i] && n < 33; i++) {
                hdrs[n++] = headers[i];
        }
        hdrs[n] = NULL;
        ab_itest_http("POST", url, hdrs, json, strlen(json), res);
        return res->status;
}

int ab_itest_http_header(const ab_itest_http_t *res, const char *name,
                         char *out, size_t out_size) {
        size_t nlen = strlen(name);
        const char *line;
        const char *v;
        size_t vlen;

        for (line = res->headers; line && *line;
             line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                if (strncasecmp(line, name, nlen) != 0 || line[nlen] != ':') {
                        continue;
                }
                v = line + nlen + 1;
                v += strspn(v, " \t");
                vlen = strcspn(v, "\r\n");
                while (vlen > 0 && strchr(" \t", v[vlen - 1])) {
                        vlen--;
                }
                snprintf(out, out_size, "%.*s", (int)vlen, v);
                return 0;
        }
        return -1;
}

void ab_itest_http_clear(ab_itest_http_t *res) {
        free(res->body);
        free(res->headers);
        memset(res, 0, sizeof(*res));
}

int ab_itest_proc_wait_healthz(ab_itest_proc_t *p, int port, int timeout_ms) {
        int64_t dl = ab_itest_deadline(timeout_ms);
        ab_itest_http_t res;
        char url[128];
        long status;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", port);
        for (;;) {
                http_do("GET", url, NULL, NULL, 0, 1000, &res);
                status = res.status;
                ab_itest_http_clear(&res);
                if (status == 200) {
                        return 0;
                }
                if (!ab_itest_proc_alive(p)) {
                        fprintf(stderr, "[itest] %s exited (status %d) "
                                        "before %s answered 200\n",
                                p->name, p->status, url);
                        ab_itest_proc_dump_log(p);
                        return -1;
                }
                if (!ab_itest_tick(dl)) {
                        fprintf(stderr, "[itest] %s did not answer 200 "
                                        "within %d ms (last status %ld)\n",
                                url, ab_itest_timeout(timeout_ms), status);
                        ab_itest_proc_dump_log(p);
                        return -1;
                }
        }
}

/* ------------------------------------------------------------------ */
/* Network                                                             */
/* ------------------------------------------------------------------ */

int ab_itest_free_port(void) {
        struct sockaddr_in sin;
        socklen_t len = sizeof(sin);
        int port      = -1;
        int s;

        s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s == -1) {
                return -1;
        }
        memset(&sin, 0, sizeof(sin));
        sin.sin_family      = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
            getsockname(s, (struct sockaddr *)&sin, &len) == 0) {
                port = ntohs(sin.sin_port);
        }
        close(s);
        return port;
}

int ab_itest_wait_port(const char *host, int port, int timeout_ms) {
        int64_t dl = ab_itest_deadline(timeout_ms);
        struct sockaddr_in sin;
        int ok;
        int s;

        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port   = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
                return -1;
        }
        for (;;) {
                s  = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                ok = s != -1 &&
                     connect(s, (struct sockaddr *)&sin, sizeof(sin)) == 0;
                if (s != -1) {
                        close(s);
                }
                if (ok) {
                        return 0;
                }
                if (!ab_itest_tick(dl)) {
                        return -1;
                }
        }
}

/* ------------------------------------------------------------------ */
/* The broker under test                                               */
/* ------------------------------------------------------------------ */

/* One line of the devbroker's stdout into out; -1 on EOF or timeout. */
static int ctl_read_line(ab_itest_broker_t *b, char *out, size_t out_size,
                         int timeout_ms) {
        int64_t dl = ab_itest_deadline(timeout_ms);
        struct pollfd pfd;
        int64_t left;
        ssize_t r;
        char *nl;
        size_t n;

        for (;;) {
                nl = memchr(b->buf, '\n', b->buf_len);
                if (nl) {
                        n = (size_t)(nl - b->buf);
                        snprintf(out, out_size, "%.*s", (int)n, b->buf);
                        memmove(b->buf, nl + 1, b->buf_len - n - 1);
                        b->buf_len -= n + 1;
                        return 0;
                }
                if (b->buf_len == sizeof(b->buf)) {
                        b->buf_len = 0; /* a line longer than we care for */
                }
                left = dl - ab_itest_now_ms();
                if (left <= 0) {
                        return -1;
                }
                pfd.fd     = b->ctl_out;
                pfd.events = POLLIN;
                if (poll(&pfd, 1, (int)left) <= 0) {
                        continue;
                }
                r = read(b->ctl_out, b->buf + b->buf_len,
                         sizeof(b->buf) - b->buf_len);
                if (r <= 0) {
                        return -1;
                }
                b->buf_len += (size_t)r;
        }
}

rd_kafka_t *ab_itest_broker_client(ab_itest_broker_t *b) {
        static const char *const props[] = {"log_level", "3", NULL};
        rd_kafka_conf_t *conf;
        char errstr[512];

        if (b->client) {
                return b->client;
        }
        conf = ab_kafka_conf_new(b->bootstrap, props, errstr, sizeof(errstr));
        cr_assert(conf, "client configuration: %s", errstr);
        b->client = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
                                 sizeof(errstr));
        if (!b->client) {
                rd_kafka_conf_destroy(conf);
                cr_assert_fail("client for %s: %s", b->bootstrap, errstr);
        }
        return b->client;
}

/* The broker answers metadata, or the test stops here saying why. */
static void broker_check(ab_itest_broker_t *b) {
        char errstr[512];

        if (ab_kafka_ready(ab_itest_broker_client(b), NULL, 0,
                           ab_itest_timeout(META_TIMEOUT_MS), errstr,
                           sizeof(errstr)) != AB_OK) {
                if (b->proc) {
                        ab_itest_proc_dump_log(b->proc);
                }
                cr_assert_fail("%s broker at %s does not answer: %s", b->kind,
                         b->bootstrap, errstr);
        }
        cr_log_info("broker under test: %s at %s", b->kind, b->bootstrap);
}

static void test_process_init(void) {
        signal(SIGPIPE, SIG_IGN); /* a dead devbroker's stdin */
        if (!getenv("LOG_LEVEL")) {
                ab_log_init("itest", AB_LOG_WARN);
        }
}

ab_itest_broker_t *ab_itest_devbroker_start(const char *const *args) {
        static const char *const pre[] = {"--listen", "127.0.0.1:0",
                                          "--control", NULL};
        ab_itest_broker_t *b;
        char line[1024];
        int in[2];
        int out[2];

        test_process_init();
        b = calloc(1, sizeof(*b));
        cr_assert(b, "out of memory");
        snprintf(b->kind, sizeof(b->kind), "devbroker");
        cr_assert(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0,
                  "pipe: %s", strerror(errno));
        b->proc = proc_spawn("aetherbus-devbroker", pre, args, NULL, in[0],
                             out[1]);
        close(in[0]);
        close(out[1]);
        b->ctl_in  = in[1];
        b->ctl_out = out[0];
        cr_assert(b->proc, "cannot spawn %s/aetherbus-devbroker", AB_BIN_DIR);
        for (;;) {
                if (ctl_read_line(b, line, sizeof(line), BOOT_TIMEOUT_MS) ==
                    -1) {
                        ab_itest_proc_dump_log(b->proc);
                        cr_assert_fail("aetherbus-devbroker printed no "
                                       "BROKERS= within %d ms (exit "
                                       "status %d)",
                                       ab_itest_timeout(BOOT_TIMEOUT_MS),
                                       ab_itest_proc_wait_exit(b->proc, 0));
                }
                if (!strncmp(line, "BROKERS=", 8)) {
                        snprintf(b->bootstrap, sizeof(b->bootstrap), "%s",
                                 line + 8);
                        break;
                }
        }
        broker_check(b);
        return b;
}

/* The bootstrap address of the real broker, or abort saying why. */
static void kafka_bootstrap(ab_itest_broker_t *b) {
        const char *env = getenv("KAFKA_BROKERS");
        const char *path = AB_KAFKA_STATE_DIR "/bootstrap";
        char *data;
        size_t len;

        if (env && *env) {
                snprintf(b->bootstrap, sizeof(b->bootstrap), "%s", env);
                return;
        }
        if (access(path, R_OK) != 0) {
                cr_assert_fail("AB_TEST_KAFKA=kafka but %s is missing "
                               "(%s): the kafka fixture (tools/kafka/kafka.sh "
                               "start) did not run or failed; or set "
                               "KAFKA_BROKERS",
                               path, strerror(errno));
        }
        data = read_file(path, &len);
        while (len > 0 && strchr(" \t\r\n", data[len - 1])) {
                data[--len] = '\0';
        }
        snprintf(b->bootstrap, sizeof(b->bootstrap), "%s", data);
        free(data);
        cr_assert(b->bootstrap[0], "%s is empty", path);
}

ab_itest_broker_t *ab_itest_broker_start(void) {
        const char *kind = getenv("AB_TEST_KAFKA");
        ab_itest_broker_t *b;

        if (!kind || !*kind || !strcmp(kind, "devbroker")) {
                return ab_itest_devbroker_start(NULL);
        }
        if (strcmp(kind, "kafka") != 0) {
                cr_assert_fail("AB_TEST_KAFKA=%s: expected devbroker or kafka",
                         kind);
        }
        test_process_init();
        b = calloc(1, sizeof(*b));
        cr_assert(b, "out of memory");
        snprintf(b->kind, sizeof(b->kind), "kafka");
        b->ctl_in  = -1;
        b->ctl_out = -1;
        kafka_bootstrap(b);
        broker_check(b);
        return b;
}

int ab_itest_broker_stop(ab_itest_broker_t *b) {
        int status = 0;

        if (!b) {
                return 0;
        }
        ab_producer_destroy(b->producer);
        if (b->client) {
                rd_kafka_destroy(b->client);
        }
        if (b->proc) {
                close(b->ctl_in);
                status = ab_itest_proc_stop(b->proc, STOP_TIMEOUT_MS);
                close(b->ctl_out);
                ab_itest_proc_destroy(b->proc);
        }
        free(b);
        return status;
}

const char *ab_itest_broker_bootstrap(const ab_itest_broker_t *b) {
        return b->bootstrap;
}

const char *ab_itest_broker_kind(const ab_itest_broker_t *b) {
        return b->kind;
}

int ab_itest_broker_is_devbroker(const ab_itest_broker_t *b) {
        return b->proc != NULL;
}

pid_t ab_itest_broker_pid(const ab_itest_broker_t *b) {
        return b->proc ? b->proc->pid : -1;
}

int ab_itest_broker_control(ab_itest_broker_t *b, const char *cmd,
                            char *reply, size_t reply_size) {
        char line[1024];
        size_t len;
        int n;

        if (!b->proc) {
                snprintf(line, sizeof(line), "ERR not a devbroker");
        } else {
                n   = snprintf(line, sizeof(line), "%s\n", cmd);
                len = n > 0 && (size_t)n < sizeof(line) ? (size_t)n : 0;
                if (len == 0 || write(b->ctl_in, line, len) != (ssize_t)len ||
                    ctl_read_line(b, line, sizeof(line), CTL_TIMEOUT_MS) ==
                        -1) {
                        snprintf(line, sizeof(line),
                                 "ERR no answer from the devbroker");
                }
        }
        if (reply) {
                snprintf(reply, reply_size, "%s", line);
        }
        return strncmp(line, "OK", 2) == 0 ? 0 : -1;
}

const char *ab_itest_kind(void) {
        const char *kind = getenv("AB_TEST_KAFKA");

        return kind && !strcmp(kind, "kafka") ? "kafka" : "devbroker";
}

void ab_itest_require_kind(const char *kind, const char *why) {
        if (strcmp(ab_itest_kind(), kind) != 0) {
                cr_skip_test("needs the %s broker: %s (this run uses %s)",
                             kind, why, ab_itest_kind());
        }
}

/* ------------------------------------------------------------------ */
/* Topics                                                              */
/* ------------------------------------------------------------------ */

void ab_itest_prefix(char *out, size_t out_size) {
        static unsigned seq;
        unsigned r = 0;

        if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
                r = (unsigned)ab_itest_now_ms();
        }
        snprintf(out, out_size, "t%dr%08x.", (int)getpid(), r + seq++);
}

/* Every topic in metadata with a leader on every partition; exact[i]
 * also wants partitions of them. */
static const char *topics_missing(rd_kafka_t *rk, const char *const *topics,
                                  const int *exact, size_t cnt,
                                  int partitions) {
        const struct rd_kafka_metadata *md;
        const char *missing = NULL;
        size_t i;
        int t;
        int p;

        if (rd_kafka_metadata(rk, 1, NULL, &md, 5000) != 0) {
                return topics[0];
        }
        for (i = 0; !missing && i < cnt; i++) {
                missing = topics[i];
                for (t = 0; t < md->topic_cnt; t++) {
                        const rd_kafka_metadata_topic_t *mt = &md->topics[t];

                        if (strcmp(mt->topic, topics[i]) != 0 || mt->err ||
                            mt->partition_cnt == 0 ||
                            (exact[i] && mt->partition_cnt != partitions)) {
                                continue;
                        }
                        for (p = 0; p < mt->partition_cnt; p++) {
                                if (mt->partitions[p].err ||
                                    mt->partitions[p].leader < 0) {
                                        break;
                                }
                        }
                        if (p == mt->partition_cnt) {
                                missing = NULL;
                        }
                        break;
                }
        }
        rd_kafka_metadata_destroy(md);
        return missing;
}

/* CreateTopics through the Admin API; fills exact[] (0: existed). */
static void admin_create(ab_itest_broker_t *b, const char *const *topics,
                         size_t cnt, int partitions, int *exact) {
        rd_kafka_t *rk = ab_itest_broker_client(b);
        const rd_kafka_CreateTopics_result_t *res;
        const rd_kafka_topic_result_t **results;
        rd_kafka_NewTopic_t **nts;
        rd_kafka_AdminOptions_t *opts;
        rd_kafka_queue_t *q;
        rd_kafka_event_t *ev;
        rd_kafka_resp_err_t err;
        char errstr[512];
        size_t n = 0;
        size_t i;
        size_t j;

        nts = calloc(cnt, sizeof(*nts));
        cr_assert(nts, "out of memory");
        for (i = 0; i < cnt; i++) {
                nts[i] = rd_kafka_NewTopic_new(topics[i], partitions, -1,
                                               errstr, sizeof(errstr));
                cr_assert(nts[i], "topic %s: %s", topics[i], errstr);
        }
        opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
        rd_kafka_AdminOptions_set_operation_timeout(
            opts, ab_itest_timeout(META_TIMEOUT_MS), errstr, sizeof(errstr));
        rd_kafka_AdminOptions_set_request_timeout(
            opts, ab_itest_timeout(META_TIMEOUT_MS), errstr, sizeof(errstr));
        q = rd_kafka_queue_new(rk);
        rd_kafka_CreateTopics(rk, nts, cnt, opts, q);
        ev = rd_kafka_queue_poll(q, ab_itest_timeout(2 * META_TIMEOUT_MS));
        rd_kafka_NewTopic_destroy_array(nts, cnt);
        free(nts);
        rd_kafka_AdminOptions_destroy(opts);
        if (!ev) {
                rd_kafka_queue_destroy(q);
                cr_assert_fail("CreateTopics on %s (%s) gave no result",
                               b->bootstrap, b->kind);
        }
        res = rd_kafka_event_CreateTopics_result(ev);
        if (!res || rd_kafka_event_error(ev)) {
                snprintf(errstr, sizeof(errstr), "%s",
                         rd_kafka_event_error_string(ev));
                rd_kafka_event_destroy(ev);
                rd_kafka_queue_destroy(q);
                cr_assert_fail("CreateTopics on %s (%s): %s (a devbroker "
                               "has no controller for the Admin API)",
                               b->bootstrap, b->kind, errstr);
        }
        results = rd_kafka_CreateTopics_result_topics(res, &n);
        for (i = 0; i < n; i++) {
                err = rd_kafka_topic_result_error(results[i]);
                for (j = 0; j < cnt; j++) {
                        if (!strcmp(topics[j],
                                    rd_kafka_topic_result_name(results[i]))) {
                                exact[j] = err == RD_KAFKA_RESP_ERR_NO_ERROR;
                        }
                }
                if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                        snprintf(errstr, sizeof(errstr), "%s: %s",
                                 rd_kafka_topic_result_name(results[i]),
                                 rd_kafka_topic_result_error_string(results[i])
                                     ? rd_kafka_topic_result_error_string(
                                           results[i])
                                     : rd_kafka_err2str(err));
                        rd_kafka_event_destroy(ev);
                        rd_kafka_queue_destroy(q);
                        cr_assert_fail("CreateTopics on %s: %s", b->kind,
                                       errstr);
                }
        }
        rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
}

void ab_itest_topics_create(ab_itest_broker_t *b, const char *const *topics,
                            size_t topic_cnt, int partitions) {
        const char *missing;
        char cmd[512];
        char reply[512];
        int64_t dl;
        int *exact;
        size_t i;

        exact = calloc(topic_cnt ? topic_cnt : 1, sizeof(*exact));
        cr_assert(exact, "out of memory");
        if (b->proc) {
                for (i = 0; i < topic_cnt; i++) {
                        snprintf(cmd, sizeof(cmd), "create %s %d", topics[i],
                                 partitions);
                        if (ab_itest_broker_control(b, cmd, reply,
                                                    sizeof(reply)) != 0) {
                                free(exact);
                                cr_assert_fail("devbroker: %s: %s", cmd, reply);
                        }
                        exact[i] = 1;
                }
        } else if (topic_cnt > 0) {
                admin_create(b, topics, topic_cnt, partitions, exact);
        }
        dl = ab_itest_deadline(META_TIMEOUT_MS);
        while (topic_cnt > 0 &&
               (missing = topics_missing(ab_itest_broker_client(b), topics,
                                         exact, topic_cnt, partitions))) {
                if (!ab_itest_tick(dl)) {
                        free(exact);
                        cr_assert_fail("topic %s not in %s metadata with %d "
                                 "partitions and leaders after %d ms",
                                 missing, b->kind, partitions,
                                 ab_itest_timeout(META_TIMEOUT_MS));
                }
        }
        free(exact);
}

void ab_itest_topic_create(ab_itest_broker_t *b, const char *topic,
                           int partitions) {
        ab_itest_topics_create(b, &topic, 1, partitions);
}

size_t ab_itest_catalog_topics_create(ab_itest_broker_t *b,
                                      const char *prefix, int partitions) {
        ab_catalog_t *cat;
        ab_catalog_topics_t t;
        char errstr[512];
        size_t n;

        cat = ab_catalog_new(errstr, sizeof(errstr));
        cr_assert(cat, "catalog: %s", errstr);
        cr_assert(ab_catalog_topics_init(&t, cat, prefix, errstr,
                                         sizeof(errstr)) == AB_OK,
                  "%s", errstr);
        ab_catalog_destroy(cat);
        ab_itest_topics_create(b, (const char *const *)t.names, t.cnt,
                               partitions);
        n = t.cnt;
        ab_catalog_topics_clear(&t);
        return n;
}

int64_t ab_itest_topic_count_now(ab_itest_broker_t *b, const char *topic) {
        rd_kafka_t *rk = ab_itest_broker_client(b);
        const struct rd_kafka_metadata *md;
        const rd_kafka_metadata_topic_t *mt = NULL;
        int64_t sum = 0;
        int64_t lo;
        int64_t hi;
        int i;

        if (rd_kafka_metadata(rk, 1, NULL, &md, 5000) != 0) {
                return -1;
        }
        for (i = 0; i < md->topic_cnt; i++) {
                if (!strcmp(md->topics[i].topic, topic) &&
                    !md->topics[i].err) {
                        mt = &md->topics[i];
                }
        }
        for (i = 0; mt && i < mt->partition_cnt; i++) {
                if (rd_kafka_query_watermark_offsets(rk, topic,
                                                     mt->partitions[i].id, &lo,
                                                     &hi, 5000) != 0) {
                        sum = -1;
                        break;
                }
                sum += hi;
        }
        if (!mt) {
                sum = -1;
        }
        rd_kafka_metadata_destroy(md);
        return sum;
}

/* A broker busy with another test's JVM can miss one metadata or
 * ListOffsets round: ask again for a while before saying -1, so a check
 * like "count == 0" fails only on a real count. */
int64_t ab_itest_topic_count(ab_itest_broker_t *b, const char *topic) {
        int64_t dl = ab_itest_deadline(15000);
        int64_t n;

        while ((n = ab_itest_topic_count_now(b, topic)) < 0 &&
               ab_itest_tick(dl)) {
        }
        return n;
}

int64_t ab_itest_topic_wait_count(ab_itest_broker_t *b, const char *topic,
                                  int64_t want, int timeout_ms) {
        int64_t dl = ab_itest_deadline(timeout_ms);
        int64_t n;

        while ((n = ab_itest_topic_count_now(b, topic)) < want &&
               ab_itest_tick(dl)) {
        }
        return n;
}

/* ------------------------------------------------------------------ */
/* Records                                                             */
/* ------------------------------------------------------------------ */

static char *dup_bytes(const void *p, size_t len) {
        char *s;

        if (!p) {
                return NULL;
        }
        s = malloc(len + 1);
        cr_assert(s, "out of memory");
        memcpy(s, p, len);
        s[len] = '\0';
        return s;
}

void ab_itest_record_from_msg(ab_itest_record_t *rec,
                              const rd_kafka_message_t *msg) {
        rd_kafka_timestamp_type_t tstype;
        rd_kafka_headers_t *hdrs = NULL;
        const char *name;
        const void *val;
        size_t size;
        size_t i;

        memset(rec, 0, sizeof(*rec));
        rec->topic     = strdup(rd_kafka_topic_name(msg->rkt));
        rec->partition = msg->partition;
        rec->offset    = msg->offset;
        rec->timestamp = rd_kafka_message_timestamp(msg, &tstype);
        rec->key       = dup_bytes(msg->key, msg->key_len);
        rec->key_len   = msg->key_len;
        rec->value     = dup_bytes(msg->payload, msg->len);
        rec->value_len = msg->len;
        if (rd_kafka_message_headers(msg, &hdrs) != 0 || !hdrs) {
                return;
        }
        rec->header_cnt = rd_kafka_header_cnt(hdrs);
        rec->headers    = calloc(rec->header_cnt ? rec->header_cnt : 1,
                                 sizeof(*rec->headers));
        cr_assert(rec->headers, "out of memory");
        for (i = 0; i < rec->header_cnt; i++) {
                if (rd_kafka_header_get_all(hdrs, i, &name, &val, &size) != 0) {
                        rec->header_cnt = i;
                        break;
                }
                rec->headers[i].name      = strdup(name);
                rec->headers[i].value     = dup_bytes(val, size);
                rec->headers[i].value_len = size;
        }
}

void ab_itest_record_clear(ab_itest_record_t *rec) {
        size_t i;

        for (i = 0; i < rec->header_cnt; i++) {
                free(rec->headers[i].name);
                free(rec->headers[i].value);
        }
        free(rec->headers);
        free(rec->topic);
        free(rec->key);
        free(rec->value);
        memset(rec, 0, sizeof(*rec));
}

const char *ab_itest_record_header(const ab_itest_record_t *rec,
                                   const char *name) {
        size_t i;

        for (i = 0; i < rec->header_cnt; i++) {
                if (!strcmp(rec->headers[i].name, name)) {
                        return rec->headers[i].value;
                }
        }
        return NULL;
}

size_t ab_itest_consume(ab_itest_broker_t *b, const char *topic, size_t want,
                        int timeout_ms, ab_itest_record_t **recsp) {
        int64_t dl = ab_itest_deadline(timeout_ms);
        ab_itest_record_t *recs = NULL;
        ab_itest_record_t *nr;
        ab_consumer_conf_t cc;
        rd_kafka_message_t *msg;
        ab_consumer_t *c;
        char errstr[512];
        size_t size = 0;
        size_t n    = 0;

        ab_consumer_conf_init(&cc);
        cc.brokers = b->bootstrap;
        c          = ab_consumer_new(&cc, errstr, sizeof(errstr));
        cr_assert(c, "consumer: %s", errstr);
        if (ab_consumer_assign_all(c, &topic, 1, RD_KAFKA_OFFSET_BEGINNING,
                                   ab_itest_timeout(META_TIMEOUT_MS), errstr,
                                   sizeof(errstr)) != AB_OK) {
                ab_consumer_destroy(c);
                cr_assert_fail("read back %s from %s: %s", topic, b->kind,
                               errstr);
        }
        while (n < want && ab_itest_now_ms() < dl) {
                if (ab_consumer_poll(c, 100, &msg, errstr, sizeof(errstr)) !=
                        AB_OK ||
                    !msg) {
                        continue;
                }
                if (n == size) {
                        size = size ? size * 2 : 64;
                        nr   = realloc(recs, size * sizeof(*recs));
                        cr_assert(nr, "out of memory");
                        recs = nr;
                }
                ab_itest_record_from_msg(&recs[n++], msg);
                rd_kafka_message_destroy(msg);
        }
        ab_consumer_destroy(c);
        *recsp = recs;
        return n;
}

void ab_itest_records_free(ab_itest_record_t *recs, size_t cnt) {
        size_t i;

        for (i = 0; recs && i < cnt; i++) {
                ab_itest_record_clear(&recs[i]);
        }
        free(recs);
}

static void produce_dr(const ab_delivery_t *dr, void *opaque) {
        ab_itest_broker_t *b = opaque;

        b->dr_seen = 1;
        b->dr_err  = dr->err;
        snprintf(b->dr_errstr, sizeof(b->dr_errstr), "%s",
                 dr->errstr ? dr->errstr : "");
}

void ab_itest_produce(ab_itest_broker_t *b, const char *topic,
                      const char *key, const void *value, size_t value_len,
                      const char *const *headers) {
        ab_itest_produce_at(b, topic, key, value, value_len, headers, 0);
}

void ab_itest_produce_at(ab_itest_broker_t *b, const char *topic,
                         const char *key, const void *value, size_t value_len,
                         const char *const *headers, int64_t timestamp_ms) {
        rd_kafka_headers_t *hdrs = NULL;
        ab_producer_conf_t pc;
        char errstr[512];
        ab_err_t err;

        if (!b->producer) {
                ab_producer_conf_init(&pc);
                pc.brokers   = b->bootstrap;
                pc.linger_ms = 0;
                pc.dr_cb     = produce_dr;
                pc.opaque    = b;
                b->producer  = ab_producer_new(&pc, errstr, sizeof(errstr));
                cr_assert(b->producer, "producer: %s", errstr);
        }
        if (headers && headers[0]) {
                hdrs = rd_kafka_headers_new(8);
                for (; headers[0] && headers[1]; headers += 2) {
                        rd_kafka_header_add(hdrs, headers[0], -1, headers[1],
                                            -1);
                }
        }
        b->dr_seen = 0;
        err = ab_producer_produce(b->producer, topic, key,
                                  key ? strlen(key) : 0, value, value_len,
                                  hdrs, timestamp_ms, NULL, errstr,
                                  sizeof(errstr));
        if (err != AB_OK) {
                if (hdrs) {
                        rd_kafka_headers_destroy(hdrs);
                }
                cr_assert_fail("produce to %s: %s", topic, errstr);
        }
        cr_assert(ab_producer_flush(b->producer,
                                    ab_itest_timeout(META_TIMEOUT_MS)) ==
                          AB_OK &&
                      b->dr_seen,
                  "produce to %s on %s: no delivery report", topic, b->kind);
        cr_assert(b->dr_err == AB_OK, "produce to %s on %s: %s", topic,
                  b->kind, b->dr_errstr);
}

/* ------------------------------------------------------------------ */
/* Services and JSON (appended for the service tests)                  */
/* ------------------------------------------------------------------ */

#include "ab_avro.h"

#define SERVICE_START_TRIES 3
#define SERVICE_HEALTH_MS   30000

ab_itest_proc_t *ab_itest_service_start(ab_itest_broker_t *b, const char *bin,
                                        const char *topic_prefix,
                                        const char *const *env, int *portp) {
        const char *vars[64];
        char brokers[1100];
        char tprefix[300];
        char port_s[32];
        ab_itest_proc_t *p;
        size_t n;
        size_t i;
        int attempt;
        int port = -1;

        for (attempt = 0; attempt < SERVICE_START_TRIES; attempt++) {
                port = ab_itest_free_port();
                cr_assert(port > 0, "no free port on 127.0.0.1");
                snprintf(brokers, sizeof(brokers), "KAFKA_BROKERS=%s",
                         b->bootstrap);
                snprintf(tprefix, sizeof(tprefix), "TOPIC_PREFIX=%s",
                         topic_prefix ? topic_prefix : "");
                snprintf(port_s, sizeof(port_s), "PORT=%d", port);
                n         = 0;
                vars[n++] = brokers;
                if (topic_prefix) {
                        vars[n++] = tprefix;
                }
                vars[n++] = port_s;
                for (i = 0; env && env[i] && n < 63; i++) {
                        vars[n++] = env[i];
                }
                vars[n] = NULL;
                p = ab_itest_proc_start(bin, NULL, vars);
                cr_assert(p, "cannot spawn %s", bin);
                if (ab_itest_proc_wait_healthz(p, port, SERVICE_HEALTH_MS) ==
                    0) {
                        *portp = port;
                        return p;
                }
                if (ab_itest_proc_alive(p)) {
                        ab_itest_proc_destroy(p);
                        cr_assert_fail("%s did not answer /healthz on port %d",
                                       bin, port);
                }
                ab_itest_proc_destroy(p); /* exited: maybe the port */
        }
        cr_assert_fail("%s exited before serving, %d times (last port %d)",
                       bin, SERVICE_START_TRIES, port);
        return NULL;
}

long ab_itest_http_wait_status(int port, const char *path, long want,
                               int timeout_ms) {
        int64_t dl = ab_itest_deadline(timeout_ms);
        ab_itest_http_t res;
        char url[512];
        long status;

        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        for (;;) {
                http_do("GET", url, NULL, NULL, 0, 5000, &res);
                status = res.status;
                ab_itest_http_clear(&res);
                if (status == want || !ab_itest_tick(dl)) {
                        return status;
                }
        }
}

json_t *ab_itest_http_json(const ab_itest_http_t *res) {
        json_error_t jerr;

        if (!res->body) {
                return NULL;
        }
        return json_loadb(res->body, res->body_len, 0, &jerr);
}

static ab_avro_codec_t *itest_codec;
static char itest_codec_err[256];

static void codec_init_once(void) {
        itest_codec = ab_avro_codec_new(NULL, itest_codec_err,
                                        sizeof(itest_codec_err));
}

json_t *ab_itest_record_json(const ab_itest_record_t *rec, char *errstr,
                             size_t errstr_size) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        const unsigned char *v = (const unsigned char *)rec->value;
        json_error_t jerr;
        json_t *doc = NULL;

        if (!v || rec->value_len == 0) {
                snprintf(errstr, errstr_size, "%s[%d]@%lld: no value",
                         rec->topic, (int)rec->partition,
                         (long long)rec->offset);
                return NULL;
        }
        if (rec->value_len >= 2 && v[0] == AB_AVRO_MAGIC0 &&
            v[1] == AB_AVRO_MAGIC1) {
                pthread_once(&once, codec_init_once);
                if (!itest_codec) {
                        snprintf(errstr, errstr_size, "codec: %s",
                                 itest_codec_err);
                        return NULL;
                }
                if (ab_avro_decode(itest_codec, v, rec->value_len, &doc,
                                   errstr, errstr_size) != AB_OK) {
                        return NULL;
                }
                return doc;
        }
        doc = json_loadb(rec->value, rec->value_len, 0, &jerr);
        if (!doc) {
                snprintf(errstr, errstr_size,
                         "%s[%d]@%lld: neither Avro nor JSON: %s", rec->topic,
                         (int)rec->partition, (long long)rec->offset,
                         jerr.text);
        }
        return doc;
}

size_t ab_itest_consume_all(ab_itest_broker_t *b, const char *topic,
                            int timeout_ms, ab_itest_record_t **recsp) {
        int64_t dl = ab_itest_deadline(timeout_ms);
        int64_t n;

        *recsp = NULL;
        /* a fresh topic's watermarks may not answer at once */
        while ((n = ab_itest_topic_count_now(b, topic)) < 0 &&
               ab_itest_tick(dl)) {
        }
        if (n <= 0) {
                return 0;
        }
        return ab_itest_consume(b, topic, (size_t)n, timeout_ms, recsp);
}

const ab_itest_record_t *ab_itest_records_find(const ab_itest_record_t *recs,
                                               size_t cnt, const char *name,
                                               const char *value) {
        const char *v;
        size_t i;

        for (i = 0; i < cnt; i++) {
                v = ab_itest_record_header(&recs[i], name);
                if (v && !strcmp(v, value)) {
                        return &recs[i];
                }
        }
        return NULL;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t ab_itest_records_missing(const ab_itest_record_t *recs, size_t cnt,
                                const char *name, const char *const *ids,
                                size_t id_cnt, const char **first_missingp) {
        const char **have;
        const char *v;
        size_t have_cnt = 0;
        size_t missing  = 0;
        size_t i;

        if (first_missingp) {
                *first_missingp = NULL;
        }
        have = calloc(cnt ? cnt : 1, sizeof(*have));
        cr_assert(have, "out of memory");
        for (i = 0; i < cnt; i++) {
                if ((v = ab_itest_record_header(&recs[i], name))) {
                        have[have_cnt++] = v;
                }
        }
        qsort(have, have_cnt, sizeof(*have), cmp_str);
        for (i = 0; i < id_cnt; i++) {
                if (!bsearch(&ids[i], have, have_cnt, sizeof(*have),
                             cmp_str)) {
                        if (missing++ == 0 && first_missingp) {
                                *first_missingp = ids[i];
                        }
                }
        }
        free(have);
        return missing;
}

ab_itest_proc_t *ab_itest_stack_start(const char *bin, int partitions,
                                      const char *const *env, int timeout_ms,
                                      ab_itest_broker_t **bp, char *prefix,
                                      size_t prefix_size, int *portp) {
        ab_itest_proc_t *svc;

        *bp = ab_itest_broker_start();
        ab_itest_prefix(prefix, prefix_size);
        ab_itest_catalog_topics_create(*bp, prefix, partitions);
        svc = ab_itest_service_start(*bp, bin, prefix, env, portp);
        cr_assert_eq(ab_itest_http_wait_status(*portp, "/readyz", 200,
                                               timeout_ms),
                     200, "%s on %s never became ready", bin,
                     ab_itest_broker_kind(*bp));
        return svc;
}

void ab_itest_stack_stop(ab_itest_proc_t **svcp, ab_itest_broker_t **bp) {
        ab_itest_proc_destroy(*svcp);
        *svcp = NULL;
        ab_itest_broker_stop(*bp);
        *bp = NULL;
}

/* Whether DescribeConfigs says topic's \p name is \p value. */
static int topic_config_is(rd_kafka_t *rk, const char *topic, const char *name,
                           const char *value) {
        rd_kafka_ConfigResource_t *cr;
        rd_kafka_AdminOptions_t *opts;
        const rd_kafka_DescribeConfigs_result_t *res;
        const rd_kafka_ConfigResource_t **rs;
        const rd_kafka_ConfigEntry_t **ents;
        rd_kafka_queue_t *q;
        rd_kafka_event_t *ev;
        size_t n = 0, m = 0, i;
        int is = 0;

        cr   = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
        opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
        q    = rd_kafka_queue_new(rk);
        rd_kafka_DescribeConfigs(rk, &cr, 1, opts, q);
        ev = rd_kafka_queue_poll(q, ab_itest_timeout(META_TIMEOUT_MS));
        rd_kafka_ConfigResource_destroy(cr);
        rd_kafka_AdminOptions_destroy(opts);
        res = ev ? rd_kafka_event_DescribeConfigs_result(ev) : NULL;
        rs  = res ? rd_kafka_DescribeConfigs_result_resources(res, &n) : NULL;
        if (n == 1) {
                ents = rd_kafka_ConfigResource_configs(rs[0], &m);
                for (i = 0; i < m; i++) {
                        if (!strcmp(rd_kafka_ConfigEntry_name(ents[i]), name)) {
                                const char *v = rd_kafka_ConfigEntry_value(ents[i]);

                                is = v && !strcmp(v, value);
                        }
                }
        }
        if (ev) {
                rd_kafka_event_destroy(ev);
        }
        rd_kafka_queue_destroy(q);
        return is;
}

void ab_itest_topic_config(ab_itest_broker_t *b, const char *topic,
                           const char *name, const char *value) {
        rd_kafka_t *rk = ab_itest_broker_client(b);
        rd_kafka_ConfigResource_t *cr;
        rd_kafka_AdminOptions_t *opts;
        const rd_kafka_AlterConfigs_result_t *res;
        const rd_kafka_ConfigResource_t **rs;
        rd_kafka_queue_t *q;
        rd_kafka_event_t *ev;
        char errstr[512];
        size_t n = 0;

        cr_assert(!b->proc, "topic configs need the Admin API: real Kafka only");
        cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
        cr_assert(rd_kafka_ConfigResource_set_config(cr, name, value) ==
                  RD_KAFKA_RESP_ERR_NO_ERROR);
        opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
        rd_kafka_AdminOptions_set_request_timeout(
            opts, ab_itest_timeout(META_TIMEOUT_MS), errstr, sizeof(errstr));
        q = rd_kafka_queue_new(rk);
        rd_kafka_AlterConfigs(rk, &cr, 1, opts, q);
        ev = rd_kafka_queue_poll(q, ab_itest_timeout(2 * META_TIMEOUT_MS));
        rd_kafka_ConfigResource_destroy(cr);
        rd_kafka_AdminOptions_destroy(opts);
        cr_assert(ev, "AlterConfigs %s: no result", topic);
        res = rd_kafka_event_AlterConfigs_result(ev);
        snprintf(errstr, sizeof(errstr), "%s",
                 rd_kafka_event_error(ev) ? rd_kafka_event_error_string(ev) : "");
        rs = res ? rd_kafka_AlterConfigs_result_resources(res, &n) : NULL;
        if (!errstr[0] && (n != 1 || rd_kafka_ConfigResource_error(rs[0]))) {
                snprintf(errstr, sizeof(errstr), "%s",
                         n == 1 ? rd_kafka_ConfigResource_error_string(rs[0])
                                : "no resource in the result");
        }
        rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        cr_assert(!errstr[0], "AlterConfigs %s %s=%s: %s", topic, name, value,
                  errstr);
        /* The change reaches the brokers through the metadata log: wait
         * until one describes it, bounded. */
        {
                int64_t dl = ab_itest_deadline(META_TIMEOUT_MS);

                while (!topic_config_is(rk, topic, name, value)) {
                        cr_assert(ab_itest_tick(dl), "%s: %s=%s not described "
                                  "within %d ms", topic, name, value,
                                  ab_itest_timeout(META_TIMEOUT_MS));
                }
        }
}

#define KAFKA_SH    AB_SCHEMA_DIR "/../tools/kafka/kafka.sh"
#define KAFKA_SH_MS 180000

int ab_itest_kafka_sh(const char *state_dir, const char *mode,
                      const char *opt, char *brokers, size_t brokers_size) {
        static const char *const env[] = {"AB_KAFKA_HEAP=256m", NULL};
        const char *args[4];
        ab_itest_proc_t *p;
        char line[512];
        FILE *fp;
        size_t n = 0;
        int status;

        args[n++] = mode;
        if (opt) {
                args[n++] = opt;
        }
        args[n++] = state_dir;
        args[n]   = NULL;
        p         = ab_itest_proc_start(KAFKA_SH, args, env);
        cr_assert_not_null(p, "cannot run %s", KAFKA_SH);
        status = ab_itest_proc_wait_exit(p, KAFKA_SH_MS);
        if (status != 0) {
                ab_itest_proc_dump_log(p);
        }
        if (brokers && status == 0 &&
            (fp = fopen(ab_itest_proc_out_path(p), "r"))) {
                while (fgets(line, sizeof(line), fp)) {
                        if (!strncmp(line, "BROKERS=", 8)) {
                                line[strcspn(line, "\r\n")] = '\0';
                                snprintf(brokers, brokers_size, "%.*s",
                                         (int)(brokers_size - 1), line + 8);
                        }
                }
                fclose(fp);
        }
        ab_itest_proc_destroy(p);
        return status;
}

void ab_itest_audit_keygen(const char *origin, const char *path) {
        ab_itest_proc_t *kg = ab_itest_proc_start(
            "aetherbus-audit",
            (const char *const[]){"keygen", "--name", origin, "--out", path,
                                  NULL},
            NULL);

        cr_assert(kg, "cannot run aetherbus-audit keygen");
        cr_assert_eq(ab_itest_proc_wait_exit(kg, ab_itest_timeout(30000)), 0,
                     "aetherbus-audit keygen --name %s --out %s failed",
                     origin, path);
        ab_itest_proc_destroy(kg);
}

void ab_itest_produce_deadletter(ab_itest_broker_t *b, const char *prefix,
                                 const char *id, const char *name,
                                 const char *source, const char *company,
                                 const char *occurred) {
        ab_record_failure_t f;
        char topic[256], src[256], errstr[256], *value;
        size_t len;

        ab_record_failure_init(&f, AB_RECORD_DEADLETTER);
        snprintf(src, sizeof(src), "%scommerce", prefix);
        f.reason         = "the sink answered 400";
        f.code           = "HTTP_400";
        f.tenant         = company;
        f.received_at_ms = ab_time_now_ms();
        f.src_topic      = src;
        f.src_partition  = 0;
        f.src_offset     = 0;
        f.http_status    = 400;
        f.failed_at_ms   = f.received_at_ms;
        f.original       = json_pack(
            "{s:s,s:s,s:i,s:s,s:s,s:s,s:{s:s}}", "id", id, "name", name,
            "schemaVersion", 1, "occurredAt", occurred, "source", source,
            "companyId", company, "payload", "n", id);
        cr_assert(f.original, "dead letter of %s", id);
        value = ab_record_failure_encode(&f, &len, errstr, sizeof(errstr));
        cr_assert(value, "%s", errstr);
        snprintf(topic, sizeof(topic), "%sdeadletter", prefix);
        ab_itest_produce(b, topic, company, value, len, NULL);
        free(value);
        json_decref(f.original);
}

#include "ab_cloudevents.h"
#include "ab_envelope.h"

void ab_itest_produce_event_at(ab_itest_broker_t *b, const char *topic,
                               const char *json, int64_t received_ms) {
        ab_envelope_limits_t limits;
        ab_envelope_ctx_t ctx;
        ab_envelope_t env;
        ab_catalog_t *cat;
        ab_avro_codec_t *codec;
        char errstr[512], value[8192];
        size_t len = 0;
        json_t *doc;
        ab_err_t err;

        cat   = ab_catalog_new(errstr, sizeof(errstr));
        cr_assert(cat, "catalog: %s", errstr);
        codec = ab_avro_codec_new(NULL, errstr, sizeof(errstr));
        cr_assert(codec, "codec: %s", errstr);
        ab_envelope_limits_default(&limits);
        memset(&ctx, 0, sizeof(ctx));
        ctx.catalog = cat;
        ctx.limits  = &limits;
        ctx.form    = AB_FORM_INGEST;
        memset(&env, 0, sizeof(env));
        doc = ab_envelope_json_parse(json, strlen(json), &limits, &err, errstr,
                                     sizeof(errstr));
        cr_assert(doc, "%s: %s", json, errstr);
        err = ab_envelope_from_json(&env, doc, &ctx, errstr, sizeof(errstr));
        cr_assert_eq(err, AB_OK, "%s: %s", json, errstr);
        ab_envelope_set_received(&env, received_ms);
        err = ab_avro_encode(codec, &env, value, sizeof(value), &len, errstr,
                             sizeof(errstr));
        cr_assert_eq(err, AB_OK, "%s: %s", json, errstr);
        ab_itest_produce_at(b, topic, env.company_id, value, len, NULL,
                            received_ms);
        ab_envelope_clear(&env);
        json_decref(doc);
        ab_avro_codec_destroy(codec);
        ab_catalog_destroy(cat);
}
