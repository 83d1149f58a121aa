/* aetherbus - Apache-2.0
 *
 * ingest_clients: the per-client API keys of INGEST_CLIENTS_FILE. Owns the
 * parsing of the file, the constant-time match of a bearer key against the
 * clients' SHA-256 digests, each client's allow list and its token bucket,
 * and the swap of the whole table on reload (a holder hands out references,
 * so a request keeps the table it started with).
 *
 * What stays out: how a denial is answered (ingest_http) and when a reload
 * happens (ingest.c, on SIGHUP).
 */
#ifndef INGEST_CLIENTS_H
#define INGEST_CLIENTS_H

#include <stddef.h>
#include <stdint.h>

#include "ab_err.h"

typedef struct ingest_clients_s ingest_clients_t;
typedef struct ingest_client_s ingest_client_t;
typedef struct ingest_clients_holder_s ingest_clients_holder_t;

/** Most clients in one file: each keeps a bucket and a lock. */
#define INGEST_CLIENTS_MAX 1024

/**
 * @brief Parses the JSON text of a clients file: a list of
 *        {name, keySha256, allow, ratePerSec, burst}.
 * @returns a new table (ingest_clients_destroy()) or NULL with errstr
 *          naming the item and field.
 */
ingest_clients_t *ingest_clients_parse(const char *text, size_t len,
                                       char *errstr, size_t errstr_size);

/** @brief Reads and parses \p path. @returns as ingest_clients_parse(). */
ingest_clients_t *ingest_clients_load(const char *path, char *errstr,
                                      size_t errstr_size);

/** @brief Frees \p tbl; NULL is a no-op. */
void ingest_clients_destroy(ingest_clients_t *tbl);

/** @returns the number of clients in \p tbl. */
size_t ingest_clients_count(const ingest_clients_t *tbl);

/**
 * @brief The client whose key is \p key. Every digest is compared, in
 *        constant time, so timing tells nothing about which matched.
 * @returns the client (owned by \p tbl) or NULL; \p key may be NULL.
 */
const ingest_client_t *ingest_clients_match(const ingest_clients_t *tbl,
                                            const char *key);

/** @returns the client's name (owned by its table). */
const char *ingest_client_name(const ingest_client_t *c);

/**
 * @returns 1 when \p c may send event \p name routed to \p prefix (may
 *          be NULL): an allow entry equal to the name, an entry ending in
 *          "." that prefixes the name or is the prefix and a dot
 *          ("commerce." allows ProductViewed), or "*".
 */
int ingest_client_allows(const ingest_client_t *c, const char *name,
                         const char *prefix);

/**
 * @brief Takes one token from \p c's bucket at time \p now_ms (any
 *        monotonic milliseconds: tests inject it). Thread-safe.
 * @returns 1 when taken; 0 when empty, with *retry_after_sp (may be NULL)
 *          set to the whole seconds until a token is back (at least 1).
 */
int ingest_client_take(const ingest_client_t *c, int64_t now_ms,
                       unsigned *retry_after_sp);

/** @returns a holder of \p tbl (taken; may be NULL), or NULL. */
ingest_clients_holder_t *ingest_clients_holder_new(ingest_clients_t *tbl);

/** @brief Frees \p h and its table; NULL is a no-op. No reference may be
 *         outstanding. */
void ingest_clients_holder_destroy(ingest_clients_holder_t *h);

/**
 * @returns the current table with a reference (ingest_clients_put()), or
 *          NULL when the holder has none.
 */
ingest_clients_t *ingest_clients_get(ingest_clients_holder_t *h);

/** @brief Drops a reference from ingest_clients_get(); NULL is a no-op. */
void ingest_clients_put(ingest_clients_holder_t *h, ingest_clients_t *tbl);

/**
 * @brief Makes \p tbl (taken) the current table; the old one is freed once
 *        its last reference is dropped. Buckets of clients of the same
 *        name keep their tokens, so a reload is no way around the rate.
 */
void ingest_clients_swap(ingest_clients_holder_t *h, ingest_clients_t *tbl);

#endif
