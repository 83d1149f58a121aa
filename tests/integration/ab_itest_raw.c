/* aetherbus - Apache-2.0
 *
 * ab_itest_raw: raw HTTP/1.1 client of the integration tests (see the
 * header). One poll loop writes and reads at once, so a server that
 * answers early is heard while the body is still going out.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ab_itest.h"
#include "ab_itest_raw.h"

#define READ_MAX (4 * 1024 * 1024) /* an answer is never this big */

int ab_itest_raw_connect(int port) {
        struct sockaddr_in sa;
        int fd;

        if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
                return -1;
        }
        memset(&sa, 0, sizeof(sa));
        sa.sin_family      = AF_INET;
        sa.sin_port        = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)) {
                close(fd);
                return -1;
        }
        return fd;
}

int ab_itest_raw_connect_from(const char *src, int port) {
        struct sockaddr_in sa;
        int fd;

        if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
                return -1;
        }
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        if (inet_pton(AF_INET, src, &sa.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
                close(fd);
                return -1;
        }
        sa.sin_port        = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)) {
                close(fd);
                return -1;
        }
        return fd;
}

int ab_itest_raw_wait_close(int fd, int ms) {
        struct pollfd pfd;
        int64_t deadline = ab_itest_deadline(ms);
        char tmp[4096];
        ssize_t n;

        int64_t left;

        do {
                left        = deadline - ab_itest_now_ms();
                pfd.fd      = fd;
                pfd.events  = POLLIN;
                pfd.revents = 0;
                if (poll(&pfd, 1, left > 10 ? 10 : left > 0 ? (int)left : 0) <=
                    0) {
                        continue;
                }
                while ((n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT)) > 0) {
                }
                if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                        return 1;
                }
        } while (ab_itest_now_ms() < deadline);
        return 0;
}

/* Parses what came so far; sets res->complete once a whole answer is in
 * buf (1xx interim answers skipped). eof: the server closed. */
static void parse(ab_itest_raw_t *res, const char *buf, size_t len,
                  int head_only, int eof) {
        const char *end, *p;
        size_t hl, cl;
        char v[32];

        for (;;) {
                if (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
                        return;
                }
                hl = (size_t)(end - buf) + 4;
                if (len > 12 && !strncmp(buf, "HTTP/1.", 7) && buf[9] == '1') {
                        buf += hl; /* 100 Continue */
                        len -= hl;
                        continue;
                }
                break;
        }
        free(res->head);
        if (!(res->head = strndup(buf, hl))) {
                return;
        }
        res->status = 0;
        if (sscanf(res->head, "HTTP/1.%*c %d", &res->status) != 1) {
                res->status = 0;
        }
        p = buf + hl;
        if (head_only) {
                cl = 0;
        } else if (!ab_itest_raw_header(res, "Content-Length", v, sizeof(v))) {
                cl = strtoul(v, NULL, 10);
                if (len - hl < cl) {
                        return;
                }
        } else if (eof) {
                cl = len - hl;
        } else {
                return;
        }
        free(res->body);
        if (!(res->body = malloc(cl + 1))) {
                return;
        }
        memcpy(res->body, p, cl);
        res->body[cl] = '\0';
        res->body_len = cl;
        res->complete = 1;
}

int ab_itest_raw_exchange(int fd, const void *req, size_t len, int head_only,
                          int stall_ms, int timeout_ms, int close_ms,
                          ab_itest_raw_t *res) {
        const char *out = req;
        struct pollfd pfd;
        int64_t deadline, last;
        char *buf = NULL, *nb;
        char tmp[4096];
        size_t blen = 0, bcap = 0;
        int writing = len > 0, eof = 0;
        ssize_t n;

        memset(res, 0, sizeof(*res));
        deadline = ab_itest_deadline(timeout_ms);
        last     = ab_itest_now_ms();
        while (!eof && (!res->complete || writing) &&
               ab_itest_now_ms() < deadline) {
                pfd.fd      = fd;
                pfd.events  = (short)(POLLIN | (writing ? POLLOUT : 0));
                pfd.revents = 0;
                if (poll(&pfd, 1, 20) < 0 && errno != EINTR) {
                        break;
                }
                if (writing && (pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
                        n = send(fd, out + res->sent,
                                 len - res->sent > 65536 ? 65536
                                                         : len - res->sent,
                                 MSG_NOSIGNAL);
                        if (n > 0) {
                                res->sent += (size_t)n;
                                last = ab_itest_now_ms();
                                writing = res->sent < len;
                        } else if (n < 0 && errno != EAGAIN &&
                                   errno != EINTR) {
                                writing = 0; /* EPIPE, ECONNRESET */
                        }
                }
                if (writing && ab_itest_now_ms() - last > stall_ms) {
                        writing = 0; /* the server stopped reading */
                }
                if (!(pfd.revents & (POLLIN | POLLERR | POLLHUP))) {
                        continue;
                }
                if (bcap - blen < 65536) {
                        if (bcap >= READ_MAX ||
                            !(nb = realloc(buf, bcap + 65536 + 1))) {
                                snprintf(res->error, sizeof(res->error),
                                         "answer over %d bytes", READ_MAX);
                                break;
                        }
                        buf = nb;
                        bcap += 65536;
                }
                n = recv(fd, buf + blen, bcap - blen, 0);
                if (n > 0) {
                        blen += (size_t)n;
                } else if (n == 0) {
                        eof = res->closed = 1;
                } else if (errno != EAGAIN && errno != EINTR) {
                        eof = res->closed = 1;
                        snprintf(res->error, sizeof(res->error),
                                 "recv after %zu bytes: %s", blen,
                                 strerror(errno));
                }
                if (!res->complete) {
                        parse(res, buf ? buf : "", blen, head_only, eof);
                }
        }
        if (res->complete && !res->closed && close_ms > 0) {
                /* Anything more than the answer is a fault of its own. */
                deadline = ab_itest_deadline(close_ms);
                while (!res->closed && ab_itest_now_ms() < deadline) {
                        pfd.fd     = fd;
                        pfd.events = POLLIN;
                        if (poll(&pfd, 1, 20) <= 0) {
                                continue;
                        }
                        n = recv(fd, tmp, sizeof(tmp), 0);
                        if (n == 0 || (n < 0 && errno != EAGAIN)) {
                                res->closed = 1;
                        } else if (n > 0) {
                                snprintf(res->error, sizeof(res->error),
                                         "%zd bytes after the answer", n);
                        }
                }
        }
        free(buf);
        if (!res->body && !(res->body = strdup(""))) {
                return -1;
        }
        if (!res->complete) {
                if (!res->error[0]) {
                        snprintf(res->error, sizeof(res->error),
                                 "no whole answer (%zu bytes read, %zu of "
                                 "%zu sent)",
                                 blen, res->sent, len);
                }
                return -1;
        }
        return 0;
}

int ab_itest_raw_request(int port, const void *req, size_t len,
                         int head_only, ab_itest_raw_t *res) {
        int fd, rc;

        if ((fd = ab_itest_raw_connect(port)) < 0) {
                memset(res, 0, sizeof(*res));
                res->body = strdup("");
                snprintf(res->error, sizeof(res->error), "connect: %s",
                         strerror(errno));
                return -1;
        }
        rc = ab_itest_raw_exchange(fd, req, len, head_only, 2000, 10000, 500,
                                   res);
        close(fd);
        return rc;
}

int ab_itest_raw_requests(int port, const char *req, int head_only,
                          ab_itest_raw_t *res) {
        return ab_itest_raw_request(port, req, strlen(req), head_only, res);
}

int ab_itest_raw_header(const ab_itest_raw_t *res, const char *name,
                        char *out, size_t out_size) {
        const char *p, *e, *v;
        size_t nl = strlen(name), vl;

        if (!res->head || !out_size) {
                return -1;
        }
        for (p = strstr(res->head, "\r\n"); p && p[2] != '\r';
             p = strstr(p + 2, "\r\n")) {
                if (strncasecmp(p + 2, name, nl) || p[2 + nl] != ':') {
                        continue;
                }
                v = p + 2 + nl + 1;
                while (*v == ' ' || *v == '\t') {
                        v++;
                }
                e = strstr(v, "\r\n");
                vl = e ? (size_t)(e - v) : strlen(v);
                while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) {
                        vl--;
                }
                if (vl >= out_size) {
                        vl = out_size - 1;
                }
                memcpy(out, v, vl);
                out[vl] = '\0';
                return 0;
        }
        return -1;
}

void ab_itest_raw_clear(ab_itest_raw_t *res) {
        free(res->head);
        free(res->body);
        memset(res, 0, sizeof(*res));
}
