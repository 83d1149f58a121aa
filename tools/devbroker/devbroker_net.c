/* aetherbus - Apache-2.0
 *
 * devbroker_net: the bind()/accept() interposition behind the devbroker's
 * stable address and TCP_NODELAY (see devbroker_net.h). Only this file
 * touches the sockets; the mock cluster itself stays in devbroker.c.
 *
 * glibc declares the socket calls with transparent unions under
 * _GNU_SOURCE (__SOCKADDR_ARG), so the definitions use the same types.
 * The real functions come from dlsym(RTLD_NEXT): libc's, or the
 * sanitizer's interceptors in an ASan build, which call libc's.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "ab_err.h"
#include "devbroker_net.h"

typedef int(bind_fn)(int, __CONST_SOCKADDR_ARG, socklen_t);
typedef int(accept_fn)(int, __SOCKADDR_ARG, socklen_t *__restrict);
typedef int(accept4_fn)(int, __SOCKADDR_ARG, socklen_t *__restrict, int);

static bind_fn *real_bind;
static accept_fn *real_accept;
static accept4_fn *real_accept4;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static atomic_int handover = -1; /* our bound listener, until taken */
static atomic_uint nodelay_ok;
static atomic_uint nodelay_err;

static void resolve(void) {
        real_bind    = (bind_fn *)dlsym(RTLD_NEXT, "bind");
        real_accept  = (accept_fn *)dlsym(RTLD_NEXT, "accept");
        real_accept4 = (accept4_fn *)dlsym(RTLD_NEXT, "accept4");
}

static void nodelay(int s) {
        int saved = errno;
        int on    = 1;

        if (setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == 0) {
                atomic_fetch_add(&nodelay_ok, 1);
        } else {
                atomic_fetch_add(&nodelay_err, 1);
        }
        errno = saved;
}

int bind(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len) {
        const struct sockaddr_in *sin = addr.__sockaddr_in__;
        int pre;

        pthread_once(&once, resolve);
        if (sin && len >= (socklen_t)sizeof(*sin) &&
            sin->sin_family == AF_INET && sin->sin_port == 0 &&
            (pre = atomic_exchange(&handover, -1)) != -1) {
                if (dup3(pre, fd, O_CLOEXEC) == -1) {
                        int saved = errno;

                        close(pre);
                        errno = saved;
                        return -1;
                }
                close(pre);
                return 0;
        }
        if (!real_bind) {
                errno = ENOSYS;
                return -1;
        }
        return real_bind(fd, addr, len);
}

int accept(int fd, __SOCKADDR_ARG addr, socklen_t *__restrict len) {
        int s;

        pthread_once(&once, resolve);
        if (!real_accept) {
                errno = ENOSYS;
                return -1;
        }
        s = real_accept(fd, addr, len);
        if (s != -1) {
                nodelay(s);
        }
        return s;
}

int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *__restrict len,
            int flags) {
        int s;

        pthread_once(&once, resolve);
        if (!real_accept4) {
                errno = ENOSYS;
                return -1;
        }
        s = real_accept4(fd, addr, len, flags);
        if (s != -1) {
                nodelay(s);
        }
        return s;
}

int devbroker_net_listen(const struct sockaddr_in *sin,
                         struct sockaddr_in *bound, char *errstr,
                         size_t errstr_size) {
        char host[INET_ADDRSTRLEN];
        socklen_t blen = sizeof(*bound);
        int on         = 1;
        int fd;

        pthread_once(&once, resolve);
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd == -1) {
                ab_errstr_set(errstr, errstr_size, "socket: %s",
                              strerror(errno));
                return -1;
        }
        /* As the mock does: a restart must not wait for TIME_WAIT. */
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
            real_bind(fd, (const struct sockaddr *)sin, sizeof(*sin)) == -1 ||
            getsockname(fd, (struct sockaddr *)bound, &blen) == -1) {
                ab_errstr_set(errstr, errstr_size, "%s:%u: %s", host,
                              (unsigned)ntohs(sin->sin_port),
                              strerror(errno));
                close(fd);
                return -1;
        }
        fd = atomic_exchange(&handover, fd);
        if (fd != -1) {
                close(fd);
        }
        return 0;
}

int devbroker_net_disarm(void) {
        int fd = atomic_exchange(&handover, -1);

        if (fd == -1) {
                return 1;
        }
        close(fd);
        return 0;
}

unsigned devbroker_net_nodelay_count(void) {
        return atomic_load(&nodelay_ok);
}

unsigned devbroker_net_nodelay_failures(void) {
        return atomic_load(&nodelay_err);
}
