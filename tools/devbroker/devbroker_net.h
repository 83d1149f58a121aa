/* aetherbus - Apache-2.0
 *
 * devbroker_net: makes librdkafka's mock cluster serve at a stable
 * address and without Nagle. The binary (linked with -rdynamic) defines
 * libc's bind(), accept() and accept4(); librdkafka's calls land here.
 *  - bind(): the first IPv4 bind to port 0 after devbroker_net_listen()
 *    gets the socket we bound to the requested HOST:PORT instead (dup3
 *    over the mock's descriptor), so the address the mock reads back with
 *    getsockname() and advertises in metadata is the requested one.
 *  - accept()/accept4(): every accepted socket gets TCP_NODELAY, as a real
 *    broker's do (DESIGN.md: without it every latency figure is wrong).
 * What the mock does with the sockets stays in librdkafka.
 */
#ifndef DEVBROKER_NET_H
#define DEVBROKER_NET_H

#include <stddef.h>

#include <netinet/in.h>

/**
 * @brief Binds the listener to \p sin (port 0: the kernel picks) before
 *        the mock exists and arms the hand-over to the mock's first
 *        listener. The bound address is written to \p bound.
 * @returns 0, or -1 with errstr ("127.0.0.1:9092: Address already in use").
 */
int devbroker_net_listen(const struct sockaddr_in *sin,
                         struct sockaddr_in *bound, char *errstr,
                         size_t errstr_size);

/**
 * @brief Disarms the hand-over.
 * @returns 1 when the mock took the listener, 0 when it was still unused
 *          (then it is closed).
 */
int devbroker_net_disarm(void);

/** @returns how many accepted sockets got TCP_NODELAY so far. */
unsigned devbroker_net_nodelay_count(void);

/** @returns how many accepted sockets refused TCP_NODELAY so far. */
unsigned devbroker_net_nodelay_failures(void);

#endif
