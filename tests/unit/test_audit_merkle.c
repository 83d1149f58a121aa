/* aetherbus - Apache-2.0
 *
 * Unit tests of audit_merkle: the RFC 6962 test vectors of Certificate
 * Transparency (leaf and node hashes, roots of sizes 0..8, inclusion and
 * consistency proofs), every proof of every tree up to 70 leaves against
 * a recursive reference and with each kind of tampering, the compact
 * range state round trip and the 2^63 bounds.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/sha.h>

#include "audit_merkle.h"

#define H AUDIT_HASH_LEN

static void unhex(const char *s, uint8_t *out, size_t n) {
        size_t i;
        unsigned v;

        cr_assert_eq(strlen(s), 2 * n, "hex %s is not %zu bytes", s, n);
        for (i = 0; i < n; i++) {
                cr_assert_eq(sscanf(s + 2 * i, "%2x", &v), 1);
                out[i] = (uint8_t)v;
        }
}

static void assert_hash(const uint8_t *got, const char *want_hex) {
        uint8_t want[H];

        unhex(want_hex, want, H);
        cr_assert(memcmp(got, want, H) == 0, "hash differs from %s",
                  want_hex);
}

/* The eight leaves of the RFC 6962 vectors (transparency-dev/merkle
 * testonly.LeafInputs). */
static const struct {
        const char *data;
        size_t len;
} leaf_in[8] = {
        {"", 0},
        {"\x00", 1},
        {"\x10", 1},
        {"\x20\x21", 2},
        {"\x30\x31", 2},
        {"\x40\x41\x42\x43", 4},
        {"\x50\x51\x52\x53\x54\x55\x56\x57", 8},
        {"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
         16},
};

/* Their leaf hashes (testonly.NodeHashes level 0). */
static const char *leaf_hex[8] = {
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
};

/* Roots of sizes 0..8 (testonly.RootHashes). */
static const char *root_hex[9] = {
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

/* Proof vectors of transparency-dev/merkle (cmd/proofgen), index made
 * 0-based. */
static const struct {
        uint64_t index, size;
        size_t cnt;
        const char *path[3];
} incl_vec[] = {
        {0, 1, 0, {NULL}},
        {0, 8, 3,
         {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
          "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
          "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
        {5, 8, 3,
         {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
          "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
          "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
        {2, 3, 1,
         {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
        {1, 5, 3,
         {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
          "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
          "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

static const struct {
        uint64_t size1, size2;
        size_t cnt;
        const char *path[3];
} cons_vec[] = {
        {1, 1, 0, {NULL}},
        {1, 8, 3,
         {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
          "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
          "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
        {6, 8, 3,
         {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
          "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
          "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
        {2, 5, 2,
         {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
          "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
        {6, 7, 3,
         {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
          "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
          "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

/* A leaf source for the proof generators: an array of leaf hashes. */
typedef struct leaves_s {
        uint64_t cnt;
        uint8_t (*hash)[H];
        uint64_t reads;
        int64_t fail_at; /* index whose read fails, -1: none */
} leaves_t;

static int leaf_cb(void *opaque, uint64_t i, uint8_t out[H]) {
        leaves_t *l = opaque;

        if (i >= l->cnt || (int64_t)i == l->fail_at) {
                return -1;
        }
        memcpy(out, l->hash[i], H);
        l->reads++;
        return 0;
}

static void vec_leaves(leaves_t *l, uint8_t (*hash)[H]) {
        int i;

        for (i = 0; i < 8; i++) {
                cr_assert_eq(audit_merkle_leaf_hash(leaf_in[i].data,
                                                    leaf_in[i].len, hash[i]),
                             AB_OK);
        }
        l->cnt = 8;
        l->hash = hash;
        l->reads = 0;
        l->fail_at = -1;
}

/* Pseudo-random leaves, fixed seed: failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}

static void random_leaves(leaves_t *l, uint8_t (*hash)[H], uint64_t n) {
        uint8_t row[40];
        uint64_t i;
        size_t j, len;

        for (i = 0; i < n; i++) {
                /* at least 8 bytes: equal leaves would let a swapped
                 * index verify */
                len = 8 + (size_t)(rng() % (sizeof(row) - 8));
                for (j = 0; j < len; j++) {
                        row[j] = (uint8_t)rng();
                }
                cr_assert_eq(audit_merkle_leaf_hash(row, len, hash[i]), AB_OK);
        }
        l->cnt = n;
        l->hash = hash;
        l->reads = 0;
        l->fail_at = -1;
}

/* The RFC's MTH, written as the recursion of its definition (depth is
 * the tree height, 7 here): the reference the loops are checked against. */
static void ref_mth(uint8_t (*hash)[H], uint64_t lo, uint64_t hi,
                    uint8_t out[H]) {
        uint8_t l[H], r[H];
        uint64_t k = 1;

        if (hi == lo) {
                SHA256((const unsigned char *)"", 0, out);
                return;
        }
        if (hi - lo == 1) {
                memcpy(out, hash[lo], H);
                return;
        }
        while (k * 2 < hi - lo) {
                k *= 2;
        }
        ref_mth(hash, lo, lo + k, l);
        ref_mth(hash, lo + k, hi, r);
        cr_assert_eq(audit_merkle_node_hash(l, r, out), AB_OK);
}


/*
 * Hashing and the compact range
 */

Test(audit_merkle, leaf_and_node_hashes_match_rfc6962_vectors) {
        uint8_t hash[8][H], n[H];
        leaves_t l;
        int i;

        vec_leaves(&l, hash);
        for (i = 0; i < 8; i++) {
                assert_hash(hash[i], leaf_hex[i]);
        }
        cr_assert_eq(audit_merkle_node_hash(hash[0], hash[1], n), AB_OK);
        assert_hash(n, "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125");
        cr_assert_eq(audit_merkle_node_hash(hash[2], hash[3], n), AB_OK);
        assert_hash(n, "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e");
        /* out may alias an input */
        memcpy(n, hash[6], H);
        cr_assert_eq(audit_merkle_node_hash(hash[6], n, n), AB_OK);
        cr_assert_eq(audit_merkle_node_hash(n, hash[7], n), AB_OK);
        cr_assert_eq(audit_merkle_node_hash(hash[6], hash[7], hash[6]), AB_OK);
        assert_hash(hash[6], "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0");
}

Test(audit_merkle, empty_tree_root_is_sha256_of_nothing) {
        uint8_t r[H], want[H];
        audit_merkle_t m;

        SHA256((const unsigned char *)"", 0, want);
        audit_merkle_init(&m);
        cr_assert_eq(audit_merkle_root(&m, r), AB_OK);
        cr_assert(memcmp(r, want, H) == 0);
        audit_merkle_empty_root(r);
        assert_hash(r, root_hex[0]);
}

Test(audit_merkle, compact_range_roots_match_rfc6962_vectors) {
        /* the perfect-subtree roots (testonly.CompactTrees) at 7 */
        static const char *at7[3] = {
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        };
        uint8_t hash[8][H], r[H];
        audit_merkle_t m;
        leaves_t l;
        int i;

        vec_leaves(&l, hash);
        audit_merkle_init(&m);
        cr_assert_eq(audit_merkle_root(&m, r), AB_OK);
        assert_hash(r, root_hex[0]);
        for (i = 0; i < 8; i++) {
                cr_assert_eq(audit_merkle_append(&m, hash[i], NULL, 0), AB_OK);
                cr_assert_eq(m.size, (uint64_t)i + 1);
                cr_assert_eq(audit_merkle_root(&m, r), AB_OK);
                assert_hash(r, root_hex[i + 1]);
                cr_assert_eq(audit_merkle_range_root(0, (uint64_t)i + 1,
                                                     leaf_cb, &l, r, NULL, 0),
                             AB_OK);
                assert_hash(r, root_hex[i + 1]);
                if (i == 6) {
                        assert_hash(m.node[0], at7[0]);
                        assert_hash(m.node[1], at7[1]);
                        assert_hash(m.node[2], at7[2]);
                }
        }
        assert_hash(m.node[0], root_hex[8]);
}

Test(audit_merkle, compact_range_matches_reference_up_to_130) {
        static uint8_t hash[130][H];
        uint8_t r[H], want[H];
        audit_merkle_t m;
        leaves_t l;
        uint64_t n;

        random_leaves(&l, hash, 130);
        audit_merkle_init(&m);
        for (n = 1; n <= 130; n++) {
                cr_assert_eq(audit_merkle_append(&m, hash[n - 1], NULL, 0),
                             AB_OK);
                cr_assert_eq(audit_merkle_root(&m, r), AB_OK);
                ref_mth(hash, 0, n, want);
                cr_assert(memcmp(r, want, H) == 0, "root of %" PRIu64, n);
        }
}

Test(audit_merkle, state_round_trip_continues_the_same_tree) {
        static uint8_t hash[70][H];
        uint8_t buf[AUDIT_MERKLE_STATE_MAX], r1[H], r2[H];
        audit_merkle_t a, b;
        leaves_t l;
        size_t len;
        uint64_t n, i;

        random_leaves(&l, hash, 70);
        for (n = 0; n <= 60; n++) {
                audit_merkle_init(&a);
                for (i = 0; i < n; i++) {
                        cr_assert_eq(audit_merkle_append(&a, hash[i], NULL, 0),
                                     AB_OK);
                }
                cr_assert_eq(audit_merkle_state_write(&a, buf, sizeof(buf),
                                                      &len, NULL, 0),
                             AB_OK);
                cr_assert_eq(len, audit_merkle_state_len(&a));
                cr_assert_eq(len, 9 + (size_t)__builtin_popcountll(n) * H);
                memset(&b, 0xa5, sizeof(b));
                cr_assert_eq(audit_merkle_state_read(&b, buf, len, NULL, 0),
                             AB_OK);
                cr_assert_eq(b.size, n);
                for (i = n; i < 70; i++) {
                        cr_assert_eq(audit_merkle_append(&a, hash[i], NULL, 0),
                                     AB_OK);
                        cr_assert_eq(audit_merkle_append(&b, hash[i], NULL, 0),
                                     AB_OK);
                        cr_assert_eq(audit_merkle_root(&a, r1), AB_OK);
                        cr_assert_eq(audit_merkle_root(&b, r2), AB_OK);
                        cr_assert(memcmp(r1, r2, H) == 0);
                }
        }
}

Test(audit_merkle, state_read_refuses_bad_bytes) {
        static uint8_t hash[5][H];
        uint8_t buf[AUDIT_MERKLE_STATE_MAX], bad[AUDIT_MERKLE_STATE_MAX];
        char errstr[256];
        audit_merkle_t m;
        leaves_t l;
        size_t len;
        int i;

        random_leaves(&l, hash, 5);
        audit_merkle_init(&m);
        for (i = 0; i < 5; i++) {
                cr_assert_eq(audit_merkle_append(&m, hash[i], NULL, 0), AB_OK);
        }
        /* 5 = 4 + 1: two roots */
        cr_assert_eq(audit_merkle_state_write(&m, buf, sizeof(buf), &len,
                                              NULL, 0),
                     AB_OK);
        cr_assert_eq(len, 9 + 2 * H);
        cr_assert_eq(audit_merkle_state_write(&m, buf, len - 1, &len, errstr,
                                              sizeof(errstr)),
                     AB_ERR_TOO_LARGE);
        cr_assert_eq(audit_merkle_state_read(&m, buf, 8, errstr,
                                             sizeof(errstr)),
                     AB_ERR_MALFORMED);
        cr_assert_eq(audit_merkle_state_read(&m, buf, len - 1, errstr,
                                             sizeof(errstr)),
                     AB_ERR_MALFORMED);
        cr_assert(strstr(errstr, "must be 73 bytes"), "%s", errstr);
        memcpy(bad, buf, len);
        bad[0] = 2;
        cr_assert_eq(audit_merkle_state_read(&m, bad, len, errstr,
                                             sizeof(errstr)),
                     AB_ERR_UNSUPPORTED);
        /* size 2^63 + 1 */
        memcpy(bad, buf, len);
        memset(bad + 1, 0, 8);
        bad[1] = 0x80;
        bad[8] = 0x01;
        cr_assert_eq(audit_merkle_state_read(&m, bad, len, errstr,
                                             sizeof(errstr)),
                     AB_ERR_INVALID);
        /* size 7 needs three roots, not two */
        memcpy(bad, buf, len);
        bad[8] = 7;
        cr_assert_eq(audit_merkle_state_read(&m, bad, len, errstr,
                                             sizeof(errstr)),
                     AB_ERR_MALFORMED);
}

Test(audit_merkle, append_stops_at_two_to_the_63) {
        uint8_t buf[AUDIT_MERKLE_STATE_MAX], leaf[H], r[H];
        char errstr[256];
        audit_merkle_t m;
        size_t len;
        int i;

        /* 2^63 - 1 leaves: 63 perfect subtrees, the largest state */
        buf[0] = 1;
        buf[1] = 0x7f;
        memset(buf + 2, 0xff, 7);
        for (i = 0; i < 63; i++) {
                memset(buf + 9 + i * H, i, H);
        }
        cr_assert_eq(audit_merkle_state_read(&m, buf, sizeof(buf), errstr,
                                             sizeof(errstr)),
                     AB_OK, "%s", errstr);
        cr_assert_eq(m.size, AUDIT_MERKLE_MAX_SIZE - 1);
        cr_assert_eq(audit_merkle_root(&m, r), AB_OK);
        memset(leaf, 0x42, H);
        cr_assert_eq(audit_merkle_append(&m, leaf, errstr, sizeof(errstr)),
                     AB_OK);
        cr_assert_eq(m.size, AUDIT_MERKLE_MAX_SIZE);
        cr_assert_eq(audit_merkle_state_len(&m), 9 + H);
        cr_assert_eq(audit_merkle_append(&m, leaf, errstr, sizeof(errstr)),
                     AB_ERR_TOO_LARGE);
        cr_assert(strstr(errstr, "full"), "%s", errstr);
        cr_assert_eq(m.size, AUDIT_MERKLE_MAX_SIZE);
        cr_assert_eq(audit_merkle_state_write(&m, buf, sizeof(buf), &len,
                                              NULL, 0),
                     AB_OK);
        cr_assert_eq(len, 9 + H);
}


/*
 * Proofs: the vectors
 */

Test(audit_merkle, inclusion_proofs_match_rfc6962_vectors) {
        uint8_t hash[8][H], root[H];
        audit_merkle_proof_t p;
        char errstr[256];
        leaves_t l;
        size_t v, i;

        vec_leaves(&l, hash);
        for (v = 0; v < sizeof(incl_vec) / sizeof(incl_vec[0]); v++) {
                cr_assert_eq(audit_merkle_inclusion_proof(
                                 incl_vec[v].index, incl_vec[v].size, leaf_cb,
                                 &l, &p, errstr, sizeof(errstr)),
                             AB_OK, "%s", errstr);
                cr_assert_eq(p.cnt, incl_vec[v].cnt, "vector %zu", v);
                for (i = 0; i < p.cnt; i++) {
                        assert_hash(p.hash[i], incl_vec[v].path[i]);
                }
                unhex(root_hex[incl_vec[v].size], root, H);
                cr_assert_eq(audit_merkle_verify_inclusion(
                                 incl_vec[v].index, incl_vec[v].size,
                                 hash[incl_vec[v].index],
                                 p.hash[0], p.cnt, root,
                                 errstr, sizeof(errstr)),
                             AB_OK, "vector %zu: %s", v, errstr);
        }
}

Test(audit_merkle, consistency_proofs_match_rfc6962_vectors) {
        uint8_t hash[8][H], r1[H], r2[H];
        audit_merkle_proof_t p;
        char errstr[256];
        leaves_t l;
        size_t v, i;

        vec_leaves(&l, hash);
        for (v = 0; v < sizeof(cons_vec) / sizeof(cons_vec[0]); v++) {
                cr_assert_eq(audit_merkle_consistency_proof(
                                 cons_vec[v].size1, cons_vec[v].size2, leaf_cb,
                                 &l, &p, errstr, sizeof(errstr)),
                             AB_OK, "%s", errstr);
                cr_assert_eq(p.cnt, cons_vec[v].cnt, "vector %zu", v);
                for (i = 0; i < p.cnt; i++) {
                        assert_hash(p.hash[i], cons_vec[v].path[i]);
                }
                unhex(root_hex[cons_vec[v].size1], r1, H);
                unhex(root_hex[cons_vec[v].size2], r2, H);
                cr_assert_eq(audit_merkle_verify_consistency(
                                 cons_vec[v].size1, cons_vec[v].size2, r1, r2,
                                 p.hash[0], p.cnt, errstr,
                                 sizeof(errstr)),
                             AB_OK, "vector %zu: %s", v, errstr);
        }
}


/*
 * Proofs: every tree up to 70 leaves
 */

static void flip(uint8_t *p, uint64_t bit) {
        p[bit / 8 % H] ^= (uint8_t)(1u << (bit % 8));
}

Test(audit_merkle, every_inclusion_proof_verifies_and_tampering_fails) {
        static uint8_t hash[70][H];
        uint8_t root[H], leaf[H], other[H];
        audit_merkle_proof_t p;
        char errstr[256];
        leaves_t l;
        uint64_t n, i, bit;
        size_t k;

        random_leaves(&l, hash, 70);
        for (n = 1; n <= 70; n++) {
                ref_mth(hash, 0, n, root);
                ref_mth(hash, 0, n - 1, other);
                for (i = 0; i < n; i++) {
                        cr_assert_eq(audit_merkle_inclusion_proof(
                                         i, n, leaf_cb, &l, &p, errstr,
                                         sizeof(errstr)),
                                     AB_OK, "%s", errstr);
                        cr_assert_eq(audit_merkle_verify_inclusion(
                                         i, n, hash[i],
                                         p.hash[0], p.cnt,
                                         root, errstr, sizeof(errstr)),
                                     AB_OK, "%" PRIu64 "/%" PRIu64 ": %s", i,
                                     n, errstr);
                        /* a flipped bit in the path, the leaf, the root */
                        bit = rng();
                        if (p.cnt > 0) {
                                k = (size_t)(bit % p.cnt);
                                flip(p.hash[k], bit >> 8);
                                cr_assert_eq(audit_merkle_verify_inclusion(
                                                 i, n, hash[i],
                                                 p.hash[0],
                                                 p.cnt, root, NULL, 0),
                                             AB_ERR_INVALID);
                                flip(p.hash[k], bit >> 8);
                        }
                        memcpy(leaf, hash[i], H);
                        flip(leaf, bit);
                        cr_assert_eq(audit_merkle_verify_inclusion(
                                         i, n, leaf,
                                         p.hash[0], p.cnt,
                                         root, NULL, 0),
                                     AB_ERR_INVALID);
                        /* another index, a shorter or longer path, the
                         * root of another size */
                        if (n > 1) {
                                cr_assert_eq(audit_merkle_verify_inclusion(
                                                 (i + 1) % n, n, hash[i],
                                                 p.hash[0],
                                                 p.cnt, root, NULL, 0),
                                             AB_ERR_INVALID);
                                cr_assert_eq(audit_merkle_verify_inclusion(
                                                 i, n, hash[i],
                                                 p.hash[0],
                                                 p.cnt - 1, root, NULL, 0),
                                             AB_ERR_INVALID);
                        }
                        memcpy(p.hash[p.cnt], root, H);
                        cr_assert_eq(audit_merkle_verify_inclusion(
                                         i, n, hash[i],
                                         p.hash[0],
                                         p.cnt + 1, root, NULL, 0),
                                     AB_ERR_INVALID);
                        cr_assert_eq(audit_merkle_verify_inclusion(
                                         i, n, hash[i],
                                         p.hash[0], p.cnt,
                                         other, NULL, 0),
                                     AB_ERR_INVALID);
                        cr_assert_eq(audit_merkle_verify_inclusion(
                                         i, i, hash[i],
                                         p.hash[0], p.cnt,
                                         root, errstr, sizeof(errstr)),
                                     AB_ERR_INVALID);
                        cr_assert(strstr(errstr, "not below"), "%s", errstr);
                }
        }
}

Test(audit_merkle, every_consistency_proof_verifies_and_tampering_fails) {
        static uint8_t hash[70][H];
        static uint8_t root[71][H];
        uint8_t r[H];
        audit_merkle_proof_t p;
        char errstr[256];
        leaves_t l;
        uint64_t n, m, bit;
        size_t k;

        random_leaves(&l, hash, 70);
        for (n = 0; n <= 70; n++) {
                ref_mth(hash, 0, n, root[n]);
        }
        for (n = 1; n <= 70; n++) {
                for (m = 1; m <= n; m++) {
                        cr_assert_eq(audit_merkle_consistency_proof(
                                         m, n, leaf_cb, &l, &p, errstr,
                                         sizeof(errstr)),
                                     AB_OK, "%s", errstr);
                        cr_assert_eq(audit_merkle_verify_consistency(
                                         m, n, root[m], root[n],
                                         p.hash[0], p.cnt,
                                         errstr, sizeof(errstr)),
                                     AB_OK, "%" PRIu64 "->%" PRIu64 ": %s", m,
                                     n, errstr);
                        if (m == n) {
                                cr_assert_eq(p.cnt, 0);
                                cr_assert_eq(audit_merkle_verify_consistency(
                                                 m, n, root[m], root[m - 1],
                                                 NULL, 0, NULL, 0),
                                             AB_ERR_INVALID);
                                continue;
                        }
                        bit = rng();
                        k = (size_t)(bit % p.cnt);
                        flip(p.hash[k], bit >> 8);
                        cr_assert_eq(audit_merkle_verify_consistency(
                                         m, n, root[m], root[n],
                                         p.hash[0], p.cnt,
                                         NULL, 0),
                                     AB_ERR_INVALID, "%" PRIu64 "->%" PRIu64,
                                     m, n);
                        flip(p.hash[k], bit >> 8);
                        memcpy(r, root[m], H);
                        flip(r, bit);
                        cr_assert_eq(audit_merkle_verify_consistency(
                                         m, n, r, root[n],
                                         p.hash[0], p.cnt,
                                         NULL, 0),
                                     AB_ERR_INVALID);
                        memcpy(r, root[n], H);
                        flip(r, bit);
                        cr_assert_eq(audit_merkle_verify_consistency(
                                         m, n, root[m], r,
                                         p.hash[0], p.cnt,
                                         NULL, 0),
                                     AB_ERR_INVALID);
                        /* the proof of other sizes, cut or padded */
                        cr_assert_eq(audit_merkle_verify_consistency(
                                         m, n, root[m], root[n],
                                         p.hash[0],
                                         p.cnt - 1, NULL, 0),
                                     AB_ERR_INVALID);
                        memcpy(p.hash[p.cnt], root[n], H);
                        cr_assert_eq(audit_merkle_verify_consistency(
                                         m, n, root[m], root[n],
                                         p.hash[0],
                                         p.cnt + 1, NULL, 0),
                                     AB_ERR_INVALID);
                        if (m > 1) {
                                cr_assert_eq(audit_merkle_verify_consistency(
                                                 m - 1, n, root[m - 1],
                                                 root[n],
                                                 p.hash[0],
                                                 p.cnt, NULL, 0),
                                             AB_ERR_INVALID);
                        }
                        cr_assert_eq(audit_merkle_verify_consistency(
                                         n, m, root[n], root[m],
                                         p.hash[0], p.cnt,
                                         NULL, 0),
                                     AB_ERR_INVALID);
                }
        }
}

Test(audit_merkle, proofs_refuse_impossible_requests) {
        uint8_t hash[8][H], root[H], path[AUDIT_MERKLE_MAX_PROOF + 1][H];
        audit_merkle_proof_t p;
        char errstr[256];
        leaves_t l;

        vec_leaves(&l, hash);
        cr_assert_eq(audit_merkle_inclusion_proof(8, 8, leaf_cb, &l, &p,
                                                  errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert_eq(audit_merkle_inclusion_proof(0, 0, leaf_cb, &l, &p,
                                                  errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert_eq(audit_merkle_inclusion_proof(0,
                                                  AUDIT_MERKLE_MAX_SIZE + 1,
                                                  leaf_cb, &l, &p, errstr,
                                                  sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert_eq(audit_merkle_consistency_proof(0, 8, leaf_cb, &l, &p,
                                                    errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert_eq(audit_merkle_consistency_proof(5, 4, leaf_cb, &l, &p,
                                                    errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        /* a leaf that cannot be read fails the proof, not the process */
        l.fail_at = 6;
        cr_assert_eq(audit_merkle_inclusion_proof(0, 8, leaf_cb, &l, &p,
                                                  errstr, sizeof(errstr)),
                     AB_ERR_IO);
        cr_assert(strstr(errstr, "leaf 6"), "%s", errstr);
        cr_assert_eq(audit_merkle_consistency_proof(3, 8, leaf_cb, &l, &p,
                                                    errstr, sizeof(errstr)),
                     AB_ERR_IO);
        /* verifiers: empty old tree, over-long paths, empty proof */
        unhex(root_hex[8], root, H);
        memset(path, 0, sizeof(path));
        cr_assert_eq(audit_merkle_verify_consistency(0, 8, root, root, NULL,
                                                     0, errstr,
                                                     sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert(strstr(errstr, "empty tree"), "%s", errstr);
        cr_assert_eq(audit_merkle_verify_consistency(3, 8, root, root, NULL,
                                                     0, errstr,
                                                     sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert(strstr(errstr, "empty"), "%s", errstr);
        cr_assert_eq(audit_merkle_verify_consistency(
                         3, 8, root, root, path[0],
                         AUDIT_MERKLE_MAX_PROOF + 1, errstr, sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert_eq(audit_merkle_verify_inclusion(
                         3, 8, hash[3], path[0],
                         AUDIT_MERKLE_MAX_PROOF + 1, root, errstr,
                         sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert(strstr(errstr, "too long"), "%s", errstr);
        /* 2^63 leaves: a path of 63 hashes is the right length, 62 short */
        cr_assert_eq(audit_merkle_verify_inclusion(
                         AUDIT_MERKLE_MAX_SIZE - 1, AUDIT_MERKLE_MAX_SIZE,
                         hash[3], path[0], 62, root, errstr,
                         sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert(strstr(errstr, "too short"), "%s", errstr);
        cr_assert_eq(audit_merkle_verify_inclusion(
                         AUDIT_MERKLE_MAX_SIZE - 1, AUDIT_MERKLE_MAX_SIZE,
                         hash[3], path[0], 63, root, errstr,
                         sizeof(errstr)),
                     AB_ERR_INVALID);
        cr_assert(strstr(errstr, "another root"), "%s", errstr);
}


/*
 * Proofs from stored nodes
 */

/* The nodes audit_merkle_append_store() reported, as a service would
 * keep them: by level and index. */
typedef struct nodes_s {
        uint8_t hash[8][130][H];
        int have[8][130];
        uint64_t reads;
        int fail_store_at; /* store call that fails, -1: none */
        int stores;
} nodes_t;

static int store_cb(void *opaque, unsigned level, uint64_t index,
                    const uint8_t hash[H]) {
        nodes_t *n = opaque;

        if (n->stores++ == n->fail_store_at) {
                return -1;
        }
        cr_assert(level < 8 && index < 130);
        cr_assert(!n->have[level][index], "node %u/%" PRIu64 " twice", level,
                  index);
        memcpy(n->hash[level][index], hash, H);
        n->have[level][index] = 1;
        return 0;
}

static int node_cb(void *opaque, unsigned level, uint64_t index,
                   uint8_t out[H]) {
        nodes_t *n = opaque;

        if (level >= 8 || index >= 130 || !n->have[level][index]) {
                return -1;
        }
        memcpy(out, n->hash[level][index], H);
        n->reads++;
        return 0;
}

static nodes_t *stored_tree(uint8_t (*hash)[H], uint64_t cnt,
                            audit_merkle_t *m) {
        nodes_t *n = calloc(1, sizeof(*n));
        uint64_t i;

        cr_assert(n);
        n->fail_store_at = -1;
        audit_merkle_init(m);
        for (i = 0; i < cnt; i++) {
                cr_assert_eq(audit_merkle_append_store(m, hash[i], store_cb,
                                                       n, NULL, 0),
                             AB_OK);
        }
        return n;
}

Test(audit_merkle, append_store_reports_every_perfect_subtree) {
        static uint8_t hash[128][H];
        uint8_t want[H];
        audit_merkle_t m;
        nodes_t *n;
        leaves_t l;
        unsigned level;
        uint64_t i;

        random_leaves(&l, hash, 128);
        n = stored_tree(hash, 128, &m);
        /* 128 leaves: 128 + 64 + ... + 1 nodes, each MTH of its leaves */
        cr_assert_eq(n->stores, 255);
        for (level = 0; level < 8; level++) {
                for (i = 0; i < (128u >> level); i++) {
                        cr_assert(n->have[level][i]);
                        ref_mth(hash, i << level, (i + 1) << level, want);
                        cr_assert(memcmp(n->hash[level][i], want, H) == 0);
                }
        }
        cr_assert(memcmp(n->hash[7][0], m.node[0], H) == 0);
        free(n);
}

Test(audit_merkle, node_proofs_equal_leaf_proofs_in_log_reads) {
        static uint8_t hash[70][H];
        audit_merkle_proof_t a, b;
        char errstr[256];
        audit_merkle_t m;
        nodes_t *n;
        leaves_t l;
        uint64_t size, i;

        random_leaves(&l, hash, 70);
        n = stored_tree(hash, 70, &m);
        for (size = 1; size <= 70; size++) {
                for (i = 0; i < size; i++) {
                        cr_assert_eq(audit_merkle_inclusion_proof(
                                         i, size, leaf_cb, &l, &a, NULL, 0),
                                     AB_OK);
                        n->reads = 0;
                        cr_assert_eq(audit_merkle_inclusion_proof_nodes(
                                         i, size, node_cb, n, &b, errstr,
                                         sizeof(errstr)),
                                     AB_OK, "%s", errstr);
                        cr_assert_eq(a.cnt, b.cnt);
                        cr_assert(memcmp(a.hash, b.hash, a.cnt * H) == 0);
                        cr_assert_leq(n->reads, 2 * 7);
                }
                for (i = 1; i <= size; i++) {
                        cr_assert_eq(audit_merkle_consistency_proof(
                                         i, size, leaf_cb, &l, &a, NULL, 0),
                                     AB_OK);
                        n->reads = 0;
                        cr_assert_eq(audit_merkle_consistency_proof_nodes(
                                         i, size, node_cb, n, &b, errstr,
                                         sizeof(errstr)),
                                     AB_OK, "%s", errstr);
                        cr_assert_eq(a.cnt, b.cnt);
                        cr_assert(memcmp(a.hash, b.hash, a.cnt * H) == 0);
                        cr_assert_leq(n->reads, 2 * 7 + 7);
                }
        }
        /* a node the service lost fails the proof */
        n->have[2][1] = 0;
        cr_assert_eq(audit_merkle_inclusion_proof_nodes(0, 16, node_cb, n, &b,
                                                        errstr,
                                                        sizeof(errstr)),
                     AB_ERR_IO);
        cr_assert(strstr(errstr, "node 2/1"), "%s", errstr);
        free(n);
}

Test(audit_merkle, failed_store_leaves_the_tree_as_it_was) {
        static uint8_t hash[8][H];
        uint8_t before[H], after[H];
        audit_merkle_t m;
        nodes_t *n;
        leaves_t l;

        random_leaves(&l, hash, 8);
        n = stored_tree(hash, 7, &m);
        cr_assert_eq(audit_merkle_root(&m, before), AB_OK);
        /* leaf 7 closes subtrees at levels 1, 2 and 3: fail the third
         * of its four stores */
        n->fail_store_at = n->stores + 2;
        cr_assert_eq(audit_merkle_append_store(&m, hash[7], store_cb, n, NULL,
                                               0),
                     AB_ERR_IO);
        cr_assert_eq(m.size, 7);
        cr_assert_eq(audit_merkle_root(&m, after), AB_OK);
        cr_assert(memcmp(before, after, H) == 0);
        free(n);
}
