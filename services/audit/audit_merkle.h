/* aetherbus - Apache-2.0
 *
 * audit_merkle: the Merkle tree of the audit log, RFC 9162 §2.1 (the RFC
 * 6962 tree): leaf = SHA-256(0x00 || row), node = SHA-256(0x01 || l || r),
 * leaves in insertion order. Owns the incremental state (the compact
 * range: the roots of the perfect subtrees the size decomposes into, at
 * most 64 hashes whatever the size, so the service persists ~2 KiB and not
 * the tree), the inclusion and consistency proofs and their verifiers.
 *
 * Proof generation reads leaf hashes through a callback (the service keeps
 * them in SQLite), O(n) per proof, or, when the service also keeps the
 * nodes appends complete, those: O(log n). It walks the tree top-down
 * with loops, so the stack never grows with the size. The verifiers need
 * no state at all: they are what a third party runs offline.
 */
#ifndef AUDIT_MERKLE_H
#define AUDIT_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "ab_err.h"

#define AUDIT_HASH_LEN 32
/** Largest tree: 2^63 leaves (height 63). */
#define AUDIT_MERKLE_MAX_SIZE ((uint64_t)1 << 63)
/** Roots a compact range holds: popcount(size) <= 63 for size <= 2^63. */
#define AUDIT_MERKLE_MAX_NODES 64
/** Longest proof: one sibling per level plus a consistency seed. */
#define AUDIT_MERKLE_MAX_PROOF 65
/** Bytes of the largest serialised state (version, size, 63 roots). */
#define AUDIT_MERKLE_STATE_MAX (1 + 8 + 63 * AUDIT_HASH_LEN)

/** Incremental tree: size and the roots of its perfect subtrees. */
typedef struct audit_merkle_s {
        uint64_t size;
        /** popcount(size) roots, the largest (leftmost) subtree first */
        uint8_t node[AUDIT_MERKLE_MAX_NODES][AUDIT_HASH_LEN];
} audit_merkle_t;

/** An inclusion or consistency proof, RFC 9162 order (leaf side first). */
typedef struct audit_merkle_proof_s {
        size_t cnt;
        uint8_t hash[AUDIT_MERKLE_MAX_PROOF][AUDIT_HASH_LEN];
} audit_merkle_proof_t;

/**
 * Writes the leaf hash of index \p i into \p out.
 * @returns 0, or non-zero when the leaf cannot be read (the proof then
 *          fails with AB_ERR_IO).
 */
typedef int (*audit_merkle_leaf_cb)(void *opaque, uint64_t i,
                                    uint8_t out[AUDIT_HASH_LEN]);

/**
 * Hash of the perfect subtree at \p level (0: a leaf) and \p index, the
 * root of leaves [index * 2^level, (index + 1) * 2^level): a node the
 * service stored when audit_merkle_append_store() reported it.
 * @returns 0, or non-zero when it cannot be read (AB_ERR_IO).
 */
typedef int (*audit_merkle_node_cb)(void *opaque, unsigned level,
                                    uint64_t index,
                                    uint8_t out[AUDIT_HASH_LEN]);

/**
 * Receives each node an append completes: the leaf (level 0) and every
 * perfect subtree it closes. @returns 0, or non-zero to fail the append.
 */
typedef int (*audit_merkle_store_cb)(void *opaque, unsigned level,
                                     uint64_t index,
                                     const uint8_t hash[AUDIT_HASH_LEN]);

/** Room for audit_merkle_hex(): 64 hex digits and a NUL. */
#define AUDIT_HASH_HEX_LEN (2 * AUDIT_HASH_LEN + 1)

/** Writes \p hash as lowercase hex, NUL-terminated, into \p out: how
 *  every API and tool of the log shows a hash. */
void audit_merkle_hex(const uint8_t hash[AUDIT_HASH_LEN],
                      char out[AUDIT_HASH_HEX_LEN]);

/** SHA-256(0x00 || data). @returns AB_OK or AB_ERR_INTERNAL (libcrypto). */
ab_err_t audit_merkle_leaf_hash(const void *data, size_t len,
                                uint8_t out[AUDIT_HASH_LEN]);

/** SHA-256(0x01 || l || r); \p out may alias \p l or \p r. */
ab_err_t audit_merkle_node_hash(const uint8_t l[AUDIT_HASH_LEN],
                                const uint8_t r[AUDIT_HASH_LEN],
                                uint8_t out[AUDIT_HASH_LEN]);

/** The root of the empty tree, SHA-256(""). */
void audit_merkle_empty_root(uint8_t out[AUDIT_HASH_LEN]);

void audit_merkle_init(audit_merkle_t *m);

/** Appends leaf hash \p leaf. AB_ERR_TOO_LARGE at 2^63 leaves. */
ab_err_t audit_merkle_append(audit_merkle_t *m,
                             const uint8_t leaf[AUDIT_HASH_LEN], char *errstr,
                             size_t errstr_size);

/**
 * audit_merkle_append() that also hands \p store every node it completes
 * (about two per leaf), so proofs can read O(log n) stored nodes instead
 * of n leaves. A failing \p store (AB_ERR_IO) leaves \p m as it was;
 * the nodes stored before it come again on the retry, so store them
 * idempotently or in the transaction that failed.
 */
ab_err_t audit_merkle_append_store(audit_merkle_t *m,
                                   const uint8_t leaf[AUDIT_HASH_LEN],
                                   audit_merkle_store_cb store, void *opaque,
                                   char *errstr, size_t errstr_size);

/** Root hash of the tree at its current size. */
ab_err_t audit_merkle_root(const audit_merkle_t *m,
                           uint8_t out[AUDIT_HASH_LEN]);

/** @returns the bytes audit_merkle_state_write() writes for \p m. */
size_t audit_merkle_state_len(const audit_merkle_t *m);

/**
 * Serialises \p m: version 0x01, size (8 bytes big-endian), then the
 * popcount(size) roots, leftmost first. \p *lenp gets the length.
 * AB_ERR_TOO_LARGE when \p buf_size is short.
 */
ab_err_t audit_merkle_state_write(const audit_merkle_t *m, uint8_t *buf,
                                  size_t buf_size, size_t *lenp, char *errstr,
                                  size_t errstr_size);

/** Restores a state written by audit_merkle_state_write(); refuses any
 *  other version, a size over 2^63 or a length that does not match. */
ab_err_t audit_merkle_state_read(audit_merkle_t *m, const uint8_t *buf,
                                 size_t len, char *errstr, size_t errstr_size);

/** MTH(D[lo:hi]), the root hash of leaves [lo, hi) (empty root if equal). */
ab_err_t audit_merkle_range_root(uint64_t lo, uint64_t hi,
                                 audit_merkle_leaf_cb leaf, void *opaque,
                                 uint8_t out[AUDIT_HASH_LEN], char *errstr,
                                 size_t errstr_size);

/** PATH(index, D[size]), RFC 9162 §2.1.3.1, from the leaves alone: reads
 *  size - 1 of them. */
ab_err_t audit_merkle_inclusion_proof(uint64_t index, uint64_t size,
                                      audit_merkle_leaf_cb leaf, void *opaque,
                                      audit_merkle_proof_t *proof,
                                      char *errstr, size_t errstr_size);

/** PROOF(size1, D[size2]), RFC 9162 §2.1.4.1, 0 < size1 <= size2. */
ab_err_t audit_merkle_consistency_proof(uint64_t size1, uint64_t size2,
                                        audit_merkle_leaf_cb leaf,
                                        void *opaque,
                                        audit_merkle_proof_t *proof,
                                        char *errstr, size_t errstr_size);

/**
 * The two proofs read from stored nodes: at most 2 * 63 node reads each,
 * whatever the size. Every node the service stored through
 * audit_merkle_append_store() up to \p size must be there.
 */
ab_err_t audit_merkle_inclusion_proof_nodes(uint64_t index, uint64_t size,
                                            audit_merkle_node_cb node,
                                            void *opaque,
                                            audit_merkle_proof_t *proof,
                                            char *errstr, size_t errstr_size);
ab_err_t audit_merkle_consistency_proof_nodes(uint64_t size1, uint64_t size2,
                                              audit_merkle_node_cb node,
                                              void *opaque,
                                              audit_merkle_proof_t *proof,
                                              char *errstr,
                                              size_t errstr_size);

/**
 * RFC 9162 §2.1.3.2: does \p path (\p path_cnt hashes, back to back: a
 * proof's hash[0] or bytes off the wire) prove leaf hash \p leaf at \p index in
 * the tree of \p size with root \p root?
 * @returns AB_OK, or AB_ERR_INVALID with the reason in errstr.
 */
ab_err_t audit_merkle_verify_inclusion(uint64_t index, uint64_t size,
                                       const uint8_t leaf[AUDIT_HASH_LEN],
                                       const uint8_t *path, size_t path_cnt,
                                       const uint8_t root[AUDIT_HASH_LEN],
                                       char *errstr, size_t errstr_size);

/**
 * RFC 9162 §2.1.4.2: does \p path (as above) prove the tree of \p size2
 * with root \p root2 extends the tree of \p size1 with root \p root1?
 * Equal sizes need an empty path and equal roots; size1 0 is refused (a
 * proof from the empty tree proves nothing).
 * @returns AB_OK, or AB_ERR_INVALID with the reason in errstr.
 */
ab_err_t audit_merkle_verify_consistency(uint64_t size1, uint64_t size2,
                                         const uint8_t root1[AUDIT_HASH_LEN],
                                         const uint8_t root2[AUDIT_HASH_LEN],
                                         const uint8_t *path, size_t path_cnt,
                                         char *errstr,
                                         size_t errstr_size);

#endif
