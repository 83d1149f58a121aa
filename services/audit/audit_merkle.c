/* aetherbus - Apache-2.0
 *
 * audit_merkle: RFC 9162 Merkle tree hashing, the compact range, proofs
 * and their verifiers. See audit_merkle.h.
 */
#include <inttypes.h>
#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit_merkle.h"

/* SHA-256 of the empty string: the root of the empty tree. */
static const uint8_t empty_root[AUDIT_HASH_LEN] = {
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
        0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
        0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};

/* A leaf range [lo, hi) whose root a proof needs. */
typedef struct range_s {
        uint64_t lo, hi;
} range_t;

void audit_merkle_hex(const uint8_t hash[AUDIT_HASH_LEN],
                      char out[AUDIT_HASH_HEX_LEN]) {
        static const char d[] = "0123456789abcdef";
        int i;

        for (i = 0; i < AUDIT_HASH_LEN; i++) {
                out[2 * i]     = d[hash[i] >> 4];
                out[2 * i + 1] = d[hash[i] & 15];
        }
        out[2 * AUDIT_HASH_LEN] = '\0';
}

/* SHA-256 fetched once and kept for the process: EVP_sha256() in
 * EVP_DigestInit_ex() and the one-shot SHA256() look the implementation
 * up in the provider store on every call, which cost as much as hashing
 * a node's 65 bytes (callgrind). */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

static void sha256_fetch(void) {
        sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256(void) {
        pthread_once(&sha256_once, sha256_fetch);
        return sha256_md;
}

ab_err_t audit_merkle_leaf_hash(const void *data, size_t len,
                                uint8_t out[AUDIT_HASH_LEN]) {
        static const uint8_t prefix = 0x00;
        const EVP_MD *md = sha256();
        EVP_MD_CTX *ctx;
        unsigned int olen = 0;
        int ok;

        if (!md) {
                return AB_ERR_INTERNAL;
        }
        ctx = EVP_MD_CTX_new();
        if (!ctx) {
                return AB_ERR_NOMEM;
        }
        ok = EVP_DigestInit_ex2(ctx, md, NULL) == 1 &&
             EVP_DigestUpdate(ctx, &prefix, 1) == 1 &&
             (len == 0 || EVP_DigestUpdate(ctx, data, len) == 1) &&
             EVP_DigestFinal_ex(ctx, out, &olen) == 1 &&
             olen == AUDIT_HASH_LEN;
        EVP_MD_CTX_free(ctx);
        return ok ? AB_OK : AB_ERR_INTERNAL;
}

ab_err_t audit_merkle_node_hash(const uint8_t l[AUDIT_HASH_LEN],
                                const uint8_t r[AUDIT_HASH_LEN],
                                uint8_t out[AUDIT_HASH_LEN]) {
        uint8_t buf[1 + 2 * AUDIT_HASH_LEN];
        const EVP_MD *md = sha256();
        unsigned int olen = 0;

        /* copied first: out may alias l or r */
        buf[0] = 0x01;
        memcpy(buf + 1, l, AUDIT_HASH_LEN);
        memcpy(buf + 1 + AUDIT_HASH_LEN, r, AUDIT_HASH_LEN);
        return md && EVP_Digest(buf, sizeof(buf), out, &olen, md, NULL) == 1 &&
                       olen == AUDIT_HASH_LEN
                   ? AB_OK
                   : AB_ERR_INTERNAL;
}

void audit_merkle_empty_root(uint8_t out[AUDIT_HASH_LEN]) {
        memcpy(out, empty_root, AUDIT_HASH_LEN);
}

void audit_merkle_init(audit_merkle_t *m) {
        memset(m, 0, sizeof(*m));
}

static int nodes(uint64_t size) {
        return __builtin_popcountll(size);
}

ab_err_t audit_merkle_append_store(audit_merkle_t *m,
                                   const uint8_t leaf[AUDIT_HASH_LEN],
                                   audit_merkle_store_cb store, void *opaque,
                                   char *errstr, size_t errstr_size) {
        uint8_t carry[AUDIT_HASH_LEN];
        int cnt = nodes(m->size);
        unsigned level = 0;
        uint64_t n;

        if (m->size >= AUDIT_MERKLE_MAX_SIZE) {
                ab_errstr_set(errstr, errstr_size,
                              "tree is full (%" PRIu64 " leaves)", m->size);
                return AB_ERR_TOO_LARGE;
        }
        /* each trailing 1 bit of the size is a perfect subtree the new
         * leaf completes: merge them right to left. m changes only once
         * every node is stored. */
        memcpy(carry, leaf, AUDIT_HASH_LEN);
        for (n = m->size;; n >>= 1, level++) {
                if (store && store(opaque, level, n, carry) != 0) {
                        ab_errstr_set(errstr, errstr_size,
                                      "cannot store node %u/%" PRIu64, level,
                                      n);
                        return AB_ERR_IO;
                }
                if (!(n & 1)) {
                        break;
                }
                if (audit_merkle_node_hash(m->node[cnt - 1], carry, carry)) {
                        ab_errstr_set(errstr, errstr_size, "SHA-256 failed");
                        return AB_ERR_INTERNAL;
                }
                cnt--;
        }
        memcpy(m->node[cnt], carry, AUDIT_HASH_LEN);
        m->size++;
        return AB_OK;
}

ab_err_t audit_merkle_append(audit_merkle_t *m,
                             const uint8_t leaf[AUDIT_HASH_LEN], char *errstr,
                             size_t errstr_size) {
        return audit_merkle_append_store(m, leaf, NULL, NULL, errstr,
                                         errstr_size);
}

ab_err_t audit_merkle_root(const audit_merkle_t *m,
                           uint8_t out[AUDIT_HASH_LEN]) {
        uint8_t r[AUDIT_HASH_LEN];
        int i, cnt = nodes(m->size);

        if (cnt == 0) {
                audit_merkle_empty_root(out);
                return AB_OK;
        }
        /* MTH(D[n]) splits at the largest power of two below n: the
         * subtrees fold from the right */
        memcpy(r, m->node[cnt - 1], AUDIT_HASH_LEN);
        for (i = cnt - 2; i >= 0; i--) {
                if (audit_merkle_node_hash(m->node[i], r, r)) {
                        return AB_ERR_INTERNAL;
                }
        }
        memcpy(out, r, AUDIT_HASH_LEN);
        return AB_OK;
}

size_t audit_merkle_state_len(const audit_merkle_t *m) {
        return 1 + 8 + (size_t)nodes(m->size) * AUDIT_HASH_LEN;
}

ab_err_t audit_merkle_state_write(const audit_merkle_t *m, uint8_t *buf,
                                  size_t buf_size, size_t *lenp, char *errstr,
                                  size_t errstr_size) {
        size_t len = audit_merkle_state_len(m);
        int i;

        if (buf_size < len) {
                ab_errstr_set(errstr, errstr_size,
                              "state needs %zu bytes, buffer has %zu", len,
                              buf_size);
                return AB_ERR_TOO_LARGE;
        }
        buf[0] = 0x01;
        for (i = 0; i < 8; i++) {
                buf[1 + i] = (uint8_t)(m->size >> (56 - 8 * i));
        }
        memcpy(buf + 9, m->node, len - 9);
        *lenp = len;
        return AB_OK;
}

ab_err_t audit_merkle_state_read(audit_merkle_t *m, const uint8_t *buf,
                                 size_t len, char *errstr, size_t errstr_size) {
        uint64_t size = 0;
        size_t want;
        int i;

        if (len < 9) {
                ab_errstr_set(errstr, errstr_size,
                              "state is %zu bytes, shorter than its header",
                              len);
                return AB_ERR_MALFORMED;
        }
        if (buf[0] != 0x01) {
                ab_errstr_set(errstr, errstr_size,
                              "unknown state version %u", buf[0]);
                return AB_ERR_UNSUPPORTED;
        }
        for (i = 0; i < 8; i++) {
                size = size << 8 | buf[1 + i];
        }
        if (size > AUDIT_MERKLE_MAX_SIZE) {
                ab_errstr_set(errstr, errstr_size,
                              "state size %" PRIu64 " is over 2^63", size);
                return AB_ERR_INVALID;
        }
        want = 9 + (size_t)nodes(size) * AUDIT_HASH_LEN;
        if (len != want) {
                ab_errstr_set(errstr, errstr_size,
                              "state of size %" PRIu64
                              " must be %zu bytes, not %zu",
                              size, want, len);
                return AB_ERR_MALFORMED;
        }
        audit_merkle_init(m);
        m->size = size;
        memcpy(m->node, buf + 9, len - 9);
        return AB_OK;
}

ab_err_t audit_merkle_range_root(uint64_t lo, uint64_t hi,
                                 audit_merkle_leaf_cb leaf, void *opaque,
                                 uint8_t out[AUDIT_HASH_LEN], char *errstr,
                                 size_t errstr_size) {
        audit_merkle_t m;
        uint8_t h[AUDIT_HASH_LEN];
        uint64_t i;
        ab_err_t err;

        if (lo > hi || hi - lo > AUDIT_MERKLE_MAX_SIZE) {
                ab_errstr_set(errstr, errstr_size,
                              "bad leaf range [%" PRIu64 ", %" PRIu64 ")", lo,
                              hi);
                return AB_ERR_INVALID;
        }
        /* the leaves of any range form a tree of their own: MTH(D[lo:hi])
         * is the root of a compact range fed with them */
        audit_merkle_init(&m);
        for (i = lo; i < hi; i++) {
                if (leaf(opaque, i, h) != 0) {
                        ab_errstr_set(errstr, errstr_size,
                                      "cannot read leaf %" PRIu64, i);
                        return AB_ERR_IO;
                }
                err = audit_merkle_append(&m, h, errstr, errstr_size);
                if (err) {
                        return err;
                }
        }
        if (audit_merkle_root(&m, out)) {
                ab_errstr_set(errstr, errstr_size, "SHA-256 failed");
                return AB_ERR_INTERNAL;
        }
        return AB_OK;
}

/* Leaves seen as nodes: a node above level 0 is computed from its
 * leaves. What the leaf-only proofs use. */
typedef struct leaf_src_s {
        audit_merkle_leaf_cb leaf;
        void *opaque;
        uint64_t failed; /* the leaf that could not be read */
} leaf_src_t;

static int leaf_node(void *opaque, unsigned level, uint64_t index,
                     uint8_t out[AUDIT_HASH_LEN]) {
        leaf_src_t *src = opaque;
        audit_merkle_t m;
        uint8_t h[AUDIT_HASH_LEN];
        uint64_t i, lo = index << level, hi = lo + ((uint64_t)1 << level);

        audit_merkle_init(&m);
        for (i = lo; i < hi; i++) {
                if (src->leaf(src->opaque, i, h) != 0) {
                        src->failed = i;
                        return -1;
                }
                if (audit_merkle_append(&m, h, NULL, 0)) {
                        return -1;
                }
        }
        return audit_merkle_root(&m, out) == AB_OK ? 0 : -1;
}

/* MTH(D[lo:hi]) from stored nodes, for a range the RFC's recursion makes:
 * lo is then a multiple of the largest power of two in hi - lo, so the
 * range is its perfect subtrees left to right, folded from the right. */
static ab_err_t node_range_root(uint64_t lo, uint64_t hi,
                                audit_merkle_node_cb node, void *opaque,
                                uint8_t out[AUDIT_HASH_LEN], char *errstr,
                                size_t errstr_size) {
        uint8_t part[AUDIT_MERKLE_MAX_NODES][AUDIT_HASH_LEN];
        uint64_t n = hi - lo, pos = lo;
        int level, cnt = 0, i;

        for (level = 63; level >= 0; level--) {
                if (!(n >> level & 1)) {
                        continue;
                }
                if (pos & (((uint64_t)1 << level) - 1)) {
                        ab_errstr_set(errstr, errstr_size,
                                      "range [%" PRIu64 ", %" PRIu64
                                      ") is not made of aligned subtrees",
                                      lo, hi);
                        return AB_ERR_INTERNAL;
                }
                if (node(opaque, (unsigned)level, pos >> level,
                         part[cnt]) != 0) {
                        ab_errstr_set(errstr, errstr_size,
                                      "cannot read node %d/%" PRIu64, level,
                                      pos >> level);
                        return AB_ERR_IO;
                }
                cnt++;
                pos += (uint64_t)1 << level;
        }
        for (i = cnt - 2; i >= 0; i--) {
                if (audit_merkle_node_hash(part[i], part[cnt - 1],
                                           part[cnt - 1])) {
                        ab_errstr_set(errstr, errstr_size, "SHA-256 failed");
                        return AB_ERR_INTERNAL;
                }
        }
        memcpy(out, part[cnt - 1], AUDIT_HASH_LEN);
        return AB_OK;
}

/* The largest power of two strictly below n (n >= 2): the RFC's k. */
static uint64_t split(uint64_t n) {
        return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

/* Fills proof->hash[first..] with the roots of ranges r[cnt-1] .. r[0]:
 * the walk found them top-down, the proof lists them bottom-up. */
static ab_err_t fill(audit_merkle_proof_t *proof, size_t first,
                     const range_t *r, size_t cnt, audit_merkle_node_cb node,
                     void *opaque, char *errstr, size_t errstr_size) {
        size_t i;
        ab_err_t err;

        for (i = 0; i < cnt; i++) {
                err = node_range_root(r[cnt - 1 - i].lo, r[cnt - 1 - i].hi,
                                      node, opaque, proof->hash[first + i],
                                      errstr, errstr_size);
                if (err) {
                        return err;
                }
        }
        proof->cnt = first + cnt;
        return AB_OK;
}

ab_err_t audit_merkle_inclusion_proof_nodes(uint64_t index, uint64_t size,
                                            audit_merkle_node_cb node,
                                            void *opaque,
                                            audit_merkle_proof_t *proof,
                                            char *errstr,
                                            size_t errstr_size) {
        range_t sib[AUDIT_MERKLE_MAX_PROOF];
        uint64_t lo = 0, hi = size, k;
        size_t cnt = 0;

        proof->cnt = 0;
        if (size > AUDIT_MERKLE_MAX_SIZE || index >= size) {
                ab_errstr_set(errstr, errstr_size,
                              "no leaf %" PRIu64 " in a tree of size %" PRIu64,
                              index, size);
                return AB_ERR_INVALID;
        }
        /* PATH(m, D[lo:hi]) descends into the half holding m; the other
         * half's root is the sibling at that level. At most 63 levels. */
        while (hi - lo > 1) {
                k = split(hi - lo);
                if (index < lo + k) {
                        sib[cnt].lo = lo + k;
                        sib[cnt].hi = hi;
                        hi = lo + k;
                } else {
                        sib[cnt].lo = lo;
                        sib[cnt].hi = lo + k;
                        lo += k;
                }
                cnt++;
        }
        return fill(proof, 0, sib, cnt, node, opaque, errstr, errstr_size);
}

ab_err_t audit_merkle_consistency_proof_nodes(uint64_t size1, uint64_t size2,
                                              audit_merkle_node_cb node,
                                              void *opaque,
                                              audit_merkle_proof_t *proof,
                                              char *errstr,
                                              size_t errstr_size) {
        range_t sib[AUDIT_MERKLE_MAX_PROOF];
        uint64_t lo = 0, hi = size2, m = size1, k;
        size_t cnt = 0, first = 0;
        int whole = 1; /* the RFC's b: still on the left border */
        ab_err_t err;

        proof->cnt = 0;
        if (size2 > AUDIT_MERKLE_MAX_SIZE || size1 == 0 || size1 > size2) {
                ab_errstr_set(errstr, errstr_size,
                              "no consistency proof from size %" PRIu64
                              " to %" PRIu64,
                              size1, size2);
                return AB_ERR_INVALID;
        }
        /* SUBPROOF(m, D[lo:hi], b), unrolled: m <= hi - lo holds at each
         * step and the range halves, so it ends within 63 levels */
        while (m != hi - lo) {
                k = split(hi - lo);
                if (m <= k) {
                        sib[cnt].lo = lo + k;
                        sib[cnt].hi = hi;
                        hi = lo + k;
                } else {
                        sib[cnt].lo = lo;
                        sib[cnt].hi = lo + k;
                        lo += k;
                        m -= k;
                        whole = 0;
                }
                cnt++;
        }
        if (!whole) {
                /* the old tree is not a left subtree: its last piece
                 * leads the proof */
                err = node_range_root(lo, hi, node, opaque, proof->hash[0],
                                      errstr, errstr_size);
                if (err) {
                        return err;
                }
                first = 1;
        }
        return fill(proof, first, sib, cnt, node, opaque, errstr,
                    errstr_size);
}

/* The leaf-only proofs: the node proofs over leaf_node(), with the
 * unreadable leaf named. */
static ab_err_t leaf_failed(ab_err_t err, const leaf_src_t *src,
                            char *errstr, size_t errstr_size) {
        if (err == AB_ERR_IO) {
                ab_errstr_set(errstr, errstr_size,
                              "cannot read leaf %" PRIu64, src->failed);
        }
        return err;
}

ab_err_t audit_merkle_inclusion_proof(uint64_t index, uint64_t size,
                                      audit_merkle_leaf_cb leaf, void *opaque,
                                      audit_merkle_proof_t *proof,
                                      char *errstr, size_t errstr_size) {
        leaf_src_t src = {leaf, opaque, 0};

        return leaf_failed(audit_merkle_inclusion_proof_nodes(
                               index, size, leaf_node, &src, proof, errstr,
                               errstr_size),
                           &src, errstr, errstr_size);
}

ab_err_t audit_merkle_consistency_proof(uint64_t size1, uint64_t size2,
                                        audit_merkle_leaf_cb leaf,
                                        void *opaque,
                                        audit_merkle_proof_t *proof,
                                        char *errstr, size_t errstr_size) {
        leaf_src_t src = {leaf, opaque, 0};

        return leaf_failed(audit_merkle_consistency_proof_nodes(
                               size1, size2, leaf_node, &src, proof, errstr,
                               errstr_size),
                           &src, errstr, errstr_size);
}

/* Right-shifts fn and sn together until fn's low bit is set or fn is 0. */
static void shift_to_odd(uint64_t *fn, uint64_t *sn) {
        while (!(*fn & 1) && *fn != 0) {
                *fn >>= 1;
                *sn >>= 1;
        }
}

ab_err_t audit_merkle_verify_inclusion(uint64_t index, uint64_t size,
                                       const uint8_t leaf[AUDIT_HASH_LEN],
                                       const uint8_t *path, size_t path_cnt,
                                       const uint8_t root[AUDIT_HASH_LEN],
                                       char *errstr, size_t errstr_size) {
        uint8_t r[AUDIT_HASH_LEN];
        const uint8_t *h;
        uint64_t fn, sn;
        size_t i;
        ab_err_t err;

        if (index >= size) {
                ab_errstr_set(errstr, errstr_size,
                              "leaf index %" PRIu64
                              " is not below the tree size %" PRIu64,
                              index, size);
                return AB_ERR_INVALID;
        }
        if (path_cnt > AUDIT_MERKLE_MAX_PROOF) {
                ab_errstr_set(errstr, errstr_size,
                              "inclusion path of %zu hashes is too long",
                              path_cnt);
                return AB_ERR_INVALID;
        }
        fn = index;
        sn = size - 1;
        memcpy(r, leaf, AUDIT_HASH_LEN);
        for (i = 0; i < path_cnt; i++) {
                h = path + i * AUDIT_HASH_LEN;
                if (sn == 0) {
                        ab_errstr_set(errstr, errstr_size,
                                      "inclusion path has %zu hashes, more "
                                      "than the tree has levels",
                                      path_cnt);
                        return AB_ERR_INVALID;
                }
                if ((fn & 1) || fn == sn) {
                        err = audit_merkle_node_hash(h, r, r);
                        shift_to_odd(&fn, &sn);
                } else {
                        err = audit_merkle_node_hash(r, h, r);
                }
                if (err) {
                        ab_errstr_set(errstr, errstr_size, "SHA-256 failed");
                        return AB_ERR_INTERNAL;
                }
                fn >>= 1;
                sn >>= 1;
        }
        if (sn != 0) {
                ab_errstr_set(errstr, errstr_size,
                              "inclusion path of %zu hashes is too short",
                              path_cnt);
                return AB_ERR_INVALID;
        }
        if (memcmp(r, root, AUDIT_HASH_LEN) != 0) {
                ab_errstr_set(errstr, errstr_size,
                              "inclusion path leads to another root");
                return AB_ERR_INVALID;
        }
        return AB_OK;
}

ab_err_t audit_merkle_verify_consistency(uint64_t size1, uint64_t size2,
                                         const uint8_t root1[AUDIT_HASH_LEN],
                                         const uint8_t root2[AUDIT_HASH_LEN],
                                         const uint8_t *path, size_t path_cnt,
                                         char *errstr,
                                         size_t errstr_size) {
        uint8_t fr[AUDIT_HASH_LEN], sr[AUDIT_HASH_LEN];
        const uint8_t *h;
        uint64_t fn, sn;
        size_t i;
        ab_err_t err;

        if (size1 == 0) {
                ab_errstr_set(errstr, errstr_size,
                              "consistency from the empty tree proves "
                              "nothing");
                return AB_ERR_INVALID;
        }
        if (size1 > size2) {
                ab_errstr_set(errstr, errstr_size,
                              "old size %" PRIu64 " is over new size %" PRIu64,
                              size1, size2);
                return AB_ERR_INVALID;
        }
        if (size1 == size2) {
                if (path_cnt != 0) {
                        ab_errstr_set(errstr, errstr_size,
                                      "equal sizes need an empty proof, "
                                      "not %zu hashes",
                                      path_cnt);
                        return AB_ERR_INVALID;
                }
                if (memcmp(root1, root2, AUDIT_HASH_LEN) != 0) {
                        ab_errstr_set(errstr, errstr_size,
                                      "equal sizes with different roots");
                        return AB_ERR_INVALID;
                }
                return AB_OK;
        }
        if (path_cnt == 0) {
                ab_errstr_set(errstr, errstr_size,
                              "consistency proof is empty");
                return AB_ERR_INVALID;
        }
        if (path_cnt > AUDIT_MERKLE_MAX_PROOF) {
                ab_errstr_set(errstr, errstr_size,
                              "consistency proof of %zu hashes is too long",
                              path_cnt);
                return AB_ERR_INVALID;
        }
        /* an old tree that is a perfect left subtree is the implied
         * first element of its proof */
        i = 0;
        if ((size1 & (size1 - 1)) == 0) {
                memcpy(fr, root1, AUDIT_HASH_LEN);
        } else {
                memcpy(fr, path, AUDIT_HASH_LEN);
                i = 1;
        }
        memcpy(sr, fr, AUDIT_HASH_LEN);
        fn = size1 - 1;
        sn = size2 - 1;
        while (fn & 1) {
                fn >>= 1;
                sn >>= 1;
        }
        for (; i < path_cnt; i++) {
                h = path + i * AUDIT_HASH_LEN;
                if (sn == 0) {
                        ab_errstr_set(errstr, errstr_size,
                                      "consistency proof of %zu hashes is "
                                      "too long",
                                      path_cnt);
                        return AB_ERR_INVALID;
                }
                if ((fn & 1) || fn == sn) {
                        err = audit_merkle_node_hash(h, fr, fr);
                        if (!err) {
                                err = audit_merkle_node_hash(h, sr, sr);
                        }
                        shift_to_odd(&fn, &sn);
                } else {
                        err = audit_merkle_node_hash(sr, h, sr);
                }
                if (err) {
                        ab_errstr_set(errstr, errstr_size, "SHA-256 failed");
                        return AB_ERR_INTERNAL;
                }
                fn >>= 1;
                sn >>= 1;
        }
        if (sn != 0) {
                ab_errstr_set(errstr, errstr_size,
                              "consistency proof of %zu hashes is too short",
                              path_cnt);
                return AB_ERR_INVALID;
        }
        if (memcmp(fr, root1, AUDIT_HASH_LEN) != 0) {
                ab_errstr_set(errstr, errstr_size,
                              "consistency proof does not lead to the old "
                              "root");
                return AB_ERR_INVALID;
        }
        if (memcmp(sr, root2, AUDIT_HASH_LEN) != 0) {
                ab_errstr_set(errstr, errstr_size,
                              "consistency proof does not lead to the new "
                              "root");
                return AB_ERR_INVALID;
        }
        return AB_OK;
}
