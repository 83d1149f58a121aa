/* aetherbus - Apache-2.0
 *
 * audit_checkpoint: checkpoint bodies, signed notes and their Ed25519
 * keys. See audit_checkpoint.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "ab_file.h"
#include "ab_json.h"
#include "ab_log.h"
#include "audit_checkpoint.h"

#define ALG_ED25519 0x01
#define KEY_LEN     32                /* Ed25519 seed and public key */
#define SIG_LEN     64                /* Ed25519 signature */
#define KEY_B64_LEN 44                /* base64 of alg byte || key */
#define HASH_B64_LEN 44               /* base64 of a SHA-256 hash */
#define SIG_B64_LEN 92                /* base64 of key id || signature */
#define KEYFILE_MAX 4096              /* a signer key file is ~100 bytes */

/* U+2014 EM DASH and a space: what opens every signature line. */
static const char sig_prefix[] = "\xe2\x80\x94 ";
#define SIG_PREFIX_LEN 4

struct audit_signer_s {
        char name[AUDIT_NAME_MAX + 1];
        uint32_t id;
        uint8_t pub[KEY_LEN];
        EVP_PKEY *pkey;
};

struct audit_verifier_s {
        char name[AUDIT_NAME_MAX + 1];
        uint32_t id;
        EVP_PKEY *pkey;
};

/*
 * Base64, RFC 4648 §4 with padding. Decoding is strict: no whitespace,
 * padding only at the end, zero unused bits, so one value has one text.
 */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes 4 * ceil(n / 3) characters and a NUL. */
static void b64_encode(const uint8_t *in, size_t n, char *out) {
        size_t i, o = 0;
        uint32_t v;

        for (i = 0; i + 3 <= n; i += 3) {
                v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
                    in[i + 2];
                out[o++] = b64chars[v >> 18 & 63];
                out[o++] = b64chars[v >> 12 & 63];
                out[o++] = b64chars[v >> 6 & 63];
                out[o++] = b64chars[v & 63];
        }
        if (n - i == 1) {
                v = (uint32_t)in[i] << 16;
                out[o++] = b64chars[v >> 18 & 63];
                out[o++] = b64chars[v >> 12 & 63];
                out[o++] = '=';
                out[o++] = '=';
        } else if (n - i == 2) {
                v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
                out[o++] = b64chars[v >> 18 & 63];
                out[o++] = b64chars[v >> 12 & 63];
                out[o++] = b64chars[v >> 6 & 63];
                out[o++] = '=';
        }
        out[o] = '\0';
}

static int b64_val(char c) {
        if (c >= 'A' && c <= 'Z') {
                return c - 'A';
        }
        if (c >= 'a' && c <= 'z') {
                return c - 'a' + 26;
        }
        if (c >= '0' && c <= '9') {
                return c - '0' + 52;
        }
        if (c == '+') {
                return 62;
        }
        if (c == '/') {
                return 63;
        }
        return -1;
}

/* Decodes all of \p in, stores at most \p out_size bytes of it and sets
 * \p *lenp to the full decoded length. @returns 0, or -1 if not base64. */
static int b64_decode(const char *in, size_t len, uint8_t *out,
                      size_t out_size, size_t *lenp) {
        size_t i, o = 0, pad, j;
        int v[4];
        uint8_t b[3];

        if (len % 4 != 0) {
                return -1;
        }
        for (i = 0; i < len; i += 4) {
                pad = 0;
                if (i + 4 == len) {
                        if (in[i + 3] == '=') {
                                pad = in[i + 2] == '=' ? 2 : 1;
                        }
                }
                for (j = 0; j < 4 - pad; j++) {
                        v[j] = b64_val(in[i + j]);
                        if (v[j] < 0) {
                                return -1;
                        }
                }
                for (; j < 4; j++) {
                        v[j] = 0;
                }
                if ((pad == 2 && (v[1] & 0x0f)) ||
                    (pad == 1 && (v[2] & 0x03))) {
                        return -1; /* non-zero unused bits */
                }
                b[0] = (uint8_t)(v[0] << 2 | v[1] >> 4);
                b[1] = (uint8_t)((v[1] & 0x0f) << 4 | v[2] >> 2);
                b[2] = (uint8_t)((v[2] & 0x03) << 6 | v[3]);
                for (j = 0; j < 3 - pad; j++, o++) {
                        if (o < out_size) {
                                out[o] = b[j];
                        }
                }
        }
        *lenp = o;
        return 0;
}

/*
 * Text rules of the note format.
 */

/* Unicode White_Space outside ASCII (Go's unicode.IsSpace). */
static int unicode_space(uint32_t c) {
        return c == 0x85 || c == 0xa0 || c == 0x1680 ||
               (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
               c == 0x202f || c == 0x205f || c == 0x3000;
}

static uint32_t utf8_decode(const unsigned char *p, size_t n) {
        static const unsigned char lead_mask[5] = {0, 0x7f, 0x1f, 0x0f, 0x07};
        uint32_t v = p[0] & lead_mask[n];
        size_t i;

        for (i = 1; i < n; i++) {
                v = v << 6 | (p[i] & 0x3f);
        }
        return v;
}

/* Valid UTF-8 without ASCII control characters, newline allowed or
 * not. Note text and a whole signed note follow this. */
static int valid_text(const char *s, size_t len, int newline) {
        const unsigned char *p = (const unsigned char *)s, *end = p + len;
        size_t n;

        while (p < end) {
                if (*p < 0x80) {
                        if (*p < 0x20 && !(newline && *p == '\n')) {
                                return 0;
                        }
                        p++;
                        continue;
                }
                n = ab_json_utf8_seq(p, end);
                if (n == 0) {
                        return 0;
                }
                p += n;
        }
        return 1;
}

/* A key name: non-empty UTF-8, no space of any kind, no '+' (the key
 * formats' separator), no ASCII control character (as sumdb/note, whose
 * notes cannot carry one). */
static int valid_name(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *)s, *end = p + len;
        size_t n;

        if (len == 0 || len > AUDIT_NAME_MAX) {
                return 0;
        }
        while (p < end) {
                if (*p < 0x80) {
                        if (*p <= 0x20 || *p == '+') {
                                return 0;
                        }
                        p++;
                        continue;
                }
                n = ab_json_utf8_seq(p, end);
                if (n == 0 || unicode_space(utf8_decode(p, n))) {
                        return 0;
                }
                p += n;
        }
        return 1;
}

/*
 * Keys.
 */

/* First 4 bytes, big-endian, of SHA-256(name || '\n' || 0x01 || pub). */
static int key_id(const char *name, const uint8_t pub[KEY_LEN],
                  uint32_t *idp) {
        uint8_t buf[AUDIT_NAME_MAX + 2 + KEY_LEN];
        uint8_t md[SHA256_DIGEST_LENGTH];
        size_t n = strlen(name);

        if (n > AUDIT_NAME_MAX) {
                return -1;
        }
        memcpy(buf, name, n);
        buf[n] = '\n';
        buf[n + 1] = ALG_ED25519;
        memcpy(buf + n + 2, pub, KEY_LEN);
        if (!SHA256(buf, n + 2 + KEY_LEN, md)) {
                return -1;
        }
        *idp = (uint32_t)md[0] << 24 | (uint32_t)md[1] << 16 |
               (uint32_t)md[2] << 8 | md[3];
        return 0;
}

static int parse_hex32(const char *s, size_t len, uint32_t *vp) {
        uint32_t v = 0;
        size_t i;
        int d;

        if (len != 8) {
                return -1;
        }
        for (i = 0; i < len; i++) {
                if (s[i] >= '0' && s[i] <= '9') {
                        d = s[i] - '0';
                } else if (s[i] >= 'a' && s[i] <= 'f') {
                        d = s[i] - 'a' + 10;
                } else if (s[i] >= 'A' && s[i] <= 'F') {
                        d = s[i] - 'A' + 10;
                } else {
                        return -1;
                }
                v = v << 4 | (uint32_t)d;
        }
        *vp = v;
        return 0;
}

/* The common tail of both key formats, "<name>+<hex id>+<base64 key>":
 * name into \p name, id into \p idp, the 32 key bytes after the
 * algorithm byte into \p key. */
static ab_err_t parse_key(const char *s, const char *what, char *name,
                          uint32_t *idp, uint8_t key[KEY_LEN], char *errstr,
                          size_t errstr_size) {
        const char *p1, *p2;
        uint8_t raw[KEY_LEN + 1];
        size_t rawlen;

        p1 = strchr(s, '+');
        p2 = p1 ? strchr(p1 + 1, '+') : NULL;
        if (!p2) {
                ab_errstr_set(errstr, errstr_size,
                              "%s is not <name>+<key id>+<key>", what);
                return AB_ERR_MALFORMED;
        }
        if (!valid_name(s, (size_t)(p1 - s))) {
                ab_errstr_set(errstr, errstr_size, "%s has an invalid name",
                              what);
                return AB_ERR_MALFORMED;
        }
        if (parse_hex32(p1 + 1, (size_t)(p2 - p1 - 1), idp)) {
                ab_errstr_set(errstr, errstr_size,
                              "%s key id is not 8 hex digits", what);
                return AB_ERR_MALFORMED;
        }
        if (b64_decode(p2 + 1, strlen(p2 + 1), raw, sizeof(raw), &rawlen) ||
            rawlen == 0) {
                OPENSSL_cleanse(raw, sizeof(raw));
                ab_errstr_set(errstr, errstr_size,
                              "%s key is not base64", what);
                return AB_ERR_MALFORMED;
        }
        if (raw[0] != ALG_ED25519) {
                OPENSSL_cleanse(raw, sizeof(raw));
                ab_errstr_set(errstr, errstr_size,
                              "%s algorithm %u is not Ed25519 (1)", what,
                              raw[0]);
                return AB_ERR_UNSUPPORTED;
        }
        if (rawlen != sizeof(raw)) {
                OPENSSL_cleanse(raw, sizeof(raw));
                ab_errstr_set(errstr, errstr_size,
                              "%s Ed25519 key is %zu bytes, not %d", what,
                              rawlen - 1, KEY_LEN);
                return AB_ERR_MALFORMED;
        }
        memcpy(name, s, (size_t)(p1 - s));
        name[p1 - s] = '\0';
        memcpy(key, raw + 1, KEY_LEN);
        OPENSSL_cleanse(raw, sizeof(raw));
        return AB_OK;
}

/* "<name>+<id>+<base64(0x01 || key)>" into buf, with \p prefix. */
static ab_err_t format_key(const char *prefix, const char *name, uint32_t id,
                           const uint8_t key[KEY_LEN], char *buf,
                           size_t buf_size, char *errstr,
                           size_t errstr_size) {
        uint8_t raw[KEY_LEN + 1];
        char b64[KEY_B64_LEN + 1];
        int n;

        raw[0] = ALG_ED25519;
        memcpy(raw + 1, key, KEY_LEN);
        b64_encode(raw, sizeof(raw), b64);
        n = snprintf(buf, buf_size, "%s%s+%08" PRIx32 "+%s", prefix, name,
                     id, b64);
        OPENSSL_cleanse(raw, sizeof(raw));
        OPENSSL_cleanse(b64, sizeof(b64));
        if (n < 0 || (size_t)n >= buf_size) {
                if (buf_size > 0) {
                        OPENSSL_cleanse(buf, buf_size);
                        buf[0] = '\0';
                }
                ab_errstr_set(errstr, errstr_size,
                              "key does not fit %zu bytes", buf_size);
                return AB_ERR_TOO_LARGE;
        }
        return AB_OK;
}

/* The Ed25519 key of \p seed and its public half. */
static EVP_PKEY *key_from_seed(const uint8_t seed[KEY_LEN],
                               uint8_t pub[KEY_LEN]) {
        EVP_PKEY *pkey;
        size_t publen = KEY_LEN;

        pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed,
                                            KEY_LEN);
        if (!pkey) {
                return NULL;
        }
        if (EVP_PKEY_get_raw_public_key(pkey, pub, &publen) != 1 ||
            publen != KEY_LEN) {
                EVP_PKEY_free(pkey);
                return NULL;
        }
        return pkey;
}

ab_err_t audit_key_generate(const char *name, char *skey, size_t skey_size,
                            char *vkey, size_t vkey_size, char *errstr,
                            size_t errstr_size) {
        uint8_t seed[KEY_LEN], pub[KEY_LEN];
        EVP_PKEY *pkey;
        uint32_t id;
        ab_err_t err;

        if (!valid_name(name, strlen(name))) {
                ab_errstr_set(errstr, errstr_size,
                              "key name must be 1..%d bytes of UTF-8 without "
                              "spaces, '+' or control characters",
                              AUDIT_NAME_MAX);
                return AB_ERR_INVALID;
        }
        if (RAND_priv_bytes(seed, sizeof(seed)) != 1) {
                ab_errstr_set(errstr, errstr_size,
                              "no random bytes for the key");
                return AB_ERR_INTERNAL;
        }
        pkey = key_from_seed(seed, pub);
        if (!pkey || key_id(name, pub, &id)) {
                EVP_PKEY_free(pkey);
                OPENSSL_cleanse(seed, sizeof(seed));
                ab_errstr_set(errstr, errstr_size, "Ed25519 key setup failed");
                return AB_ERR_INTERNAL;
        }
        EVP_PKEY_free(pkey);
        err = format_key("PRIVATE+KEY+", name, id, seed, skey, skey_size,
                         errstr, errstr_size);
        OPENSSL_cleanse(seed, sizeof(seed));
        if (err) {
                return err;
        }
        err = format_key("", name, id, pub, vkey, vkey_size, errstr,
                         errstr_size);
        if (err) {
                OPENSSL_cleanse(skey, skey_size);
                skey[0] = '\0';
        }
        return err;
}

static int write_all(int fd, const char *p, size_t len) {
        ssize_t n;

        while (len > 0) {
                n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR) {
                                continue;
                        }
                        return -1;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

ab_err_t audit_keygen(const char *name, const char *path, char *vkey,
                      size_t vkey_size, char *errstr, size_t errstr_size) {
        char skey[AUDIT_SKEY_MAX + 1];
        size_t len;
        ab_err_t err;
        int fd;

        err = audit_key_generate(name, skey, sizeof(skey) - 1, vkey,
                                 vkey_size, errstr, errstr_size);
        if (err) {
                return err;
        }
        len = strlen(skey);
        skey[len++] = '\n';
        /* O_EXCL: a signing key is never replaced by accident */
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
                OPENSSL_cleanse(skey, sizeof(skey));
                ab_errstr_set(errstr, errstr_size, "%s: %s", path,
                              strerror(errno));
                return AB_ERR_IO;
        }
        if (write_all(fd, skey, len) || fsync(fd)) {
                ab_errstr_set(errstr, errstr_size, "%s: %s", path,
                              strerror(errno));
                close(fd);
                unlink(path);
                OPENSSL_cleanse(skey, sizeof(skey));
                return AB_ERR_IO;
        }
        OPENSSL_cleanse(skey, sizeof(skey));
        if (close(fd)) {
                ab_errstr_set(errstr, errstr_size, "%s: %s", path,
                              strerror(errno));
                unlink(path);
                return AB_ERR_IO;
        }
        return AB_OK;
}

audit_signer_t *audit_signer_new(const char *skey, char *errstr,
                                 size_t errstr_size) {
        audit_signer_t *s;
        uint8_t seed[KEY_LEN];
        uint32_t want;

        if (strncmp(skey, "PRIVATE+KEY+", 12) != 0) {
                ab_errstr_set(errstr, errstr_size,
                              "signer key does not start with PRIVATE+KEY+");
                return NULL;
        }
        s = calloc(1, sizeof(*s));
        if (!s) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        if (parse_key(skey + 12, "signer key", s->name, &want, seed, errstr,
                      errstr_size)) {
                free(s);
                return NULL;
        }
        s->pkey = key_from_seed(seed, s->pub);
        OPENSSL_cleanse(seed, sizeof(seed));
        if (!s->pkey || key_id(s->name, s->pub, &s->id)) {
                ab_errstr_set(errstr, errstr_size, "Ed25519 key setup failed");
                audit_signer_destroy(s);
                return NULL;
        }
        if (s->id != want) {
                ab_errstr_set(errstr, errstr_size,
                              "signer key id %08" PRIx32
                              " does not match its key (%08" PRIx32 ")",
                              want, s->id);
                audit_signer_destroy(s);
                return NULL;
        }
        return s;
}

audit_signer_t *audit_signer_load(const char *path, char *errstr,
                                  size_t errstr_size) {
        char buf[KEYFILE_MAX + 1];
        audit_signer_t *s;
        size_t len = 0;
        mode_t mode = 0;
        ab_err_t err;

        err = ab_file_read(path, buf, sizeof(buf), &len, &mode, errstr,
                           errstr_size);
        if (err == AB_ERR_TOO_LARGE) {
                ab_errstr_set(errstr, errstr_size,
                              "%s: over %d bytes, not a signer key", path,
                              KEYFILE_MAX);
        }
        if (err) {
                OPENSSL_cleanse(buf, sizeof(buf));
                return NULL;
        }
        if (mode & (S_IRWXG | S_IRWXO)) {
                ab_warn("audit",
                        "signing key %s is open to group or others "
                        "(mode %03o): chmod 600 it",
                        path, (unsigned)(mode & 0777));
        }
        if (len > 0 && buf[len - 1] == '\n') {
                len--;
        }
        buf[len] = '\0';
        if (strlen(buf) != len) {
                ab_errstr_set(errstr, errstr_size, "%s: has a NUL byte",
                              path);
                OPENSSL_cleanse(buf, sizeof(buf));
                return NULL;
        }
        s = audit_signer_new(buf, errstr, errstr_size);
        OPENSSL_cleanse(buf, sizeof(buf));
        return s;
}

void audit_signer_destroy(audit_signer_t *s) {
        if (!s) {
                return;
        }
        EVP_PKEY_free(s->pkey);
        OPENSSL_cleanse(s, sizeof(*s));
        free(s);
}

const char *audit_signer_name(const audit_signer_t *s) {
        return s->name;
}

uint32_t audit_signer_key_id(const audit_signer_t *s) {
        return s->id;
}

ab_err_t audit_signer_vkey(const audit_signer_t *s, char *vkey,
                           size_t vkey_size, char *errstr, size_t errstr_size) {
        return format_key("", s->name, s->id, s->pub, vkey, vkey_size, errstr,
                          errstr_size);
}

audit_verifier_t *audit_verifier_new(const char *vkey, char *errstr,
                                     size_t errstr_size) {
        audit_verifier_t *v;
        uint8_t pub[KEY_LEN];
        uint32_t id;

        v = calloc(1, sizeof(*v));
        if (!v) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        if (parse_key(vkey, "verifier key", v->name, &v->id, pub, errstr,
                      errstr_size)) {
                free(v);
                return NULL;
        }
        if (key_id(v->name, pub, &id)) {
                ab_errstr_set(errstr, errstr_size, "SHA-256 failed");
                free(v);
                return NULL;
        }
        if (id != v->id) {
                ab_errstr_set(errstr, errstr_size,
                              "verifier key id %08" PRIx32
                              " does not match its key (%08" PRIx32 ")",
                              v->id, id);
                free(v);
                return NULL;
        }
        v->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub,
                                              KEY_LEN);
        if (!v->pkey) {
                ab_errstr_set(errstr, errstr_size,
                              "not an Ed25519 public key");
                free(v);
                return NULL;
        }
        return v;
}

void audit_verifier_destroy(audit_verifier_t *v) {
        if (!v) {
                return;
        }
        EVP_PKEY_free(v->pkey);
        free(v);
}

const char *audit_verifier_name(const audit_verifier_t *v) {
        return v->name;
}

uint32_t audit_verifier_key_id(const audit_verifier_t *v) {
        return v->id;
}

/*
 * Signed notes.
 */

static int ed25519_sign(EVP_PKEY *pkey, const char *msg, size_t len,
                        uint8_t sig[SIG_LEN]) {
        EVP_MD_CTX *ctx;
        size_t siglen = SIG_LEN;
        int ok;

        ctx = EVP_MD_CTX_new();
        if (!ctx) {
                return -1;
        }
        ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
             EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)msg,
                            len) == 1 &&
             siglen == SIG_LEN;
        EVP_MD_CTX_free(ctx);
        return ok ? 0 : -1;
}

/* @returns 1 valid, 0 not, -1 libcrypto failure. */
static int ed25519_verify(EVP_PKEY *pkey, const char *msg, size_t len,
                          const uint8_t sig[SIG_LEN]) {
        EVP_MD_CTX *ctx;
        int rc;

        ctx = EVP_MD_CTX_new();
        if (!ctx) {
                return -1;
        }
        if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) != 1) {
                EVP_MD_CTX_free(ctx);
                return -1;
        }
        rc = EVP_DigestVerify(ctx, sig, SIG_LEN, (const unsigned char *)msg,
                              len);
        EVP_MD_CTX_free(ctx);
        return rc == 1 ? 1 : 0;
}

ab_err_t audit_note_sign(const audit_signer_t *s, const char *text,
                         size_t len, char **outp, size_t *lenp, char *errstr,
                         size_t errstr_size) {
        uint8_t raw[4 + SIG_LEN];
        char b64[SIG_B64_LEN + 1];
        size_t nlen = strlen(s->name), total, o;
        char *out;

        *outp = NULL;
        if (len == 0 || text[len - 1] != '\n' || !valid_text(text, len, 1)) {
                ab_errstr_set(errstr, errstr_size,
                              "note text must be UTF-8 without control "
                              "characters and end in a newline");
                return AB_ERR_MALFORMED;
        }
        raw[0] = (uint8_t)(s->id >> 24);
        raw[1] = (uint8_t)(s->id >> 16);
        raw[2] = (uint8_t)(s->id >> 8);
        raw[3] = (uint8_t)s->id;
        if (ed25519_sign(s->pkey, text, len, raw + 4)) {
                ab_errstr_set(errstr, errstr_size, "Ed25519 signing failed");
                return AB_ERR_INTERNAL;
        }
        b64_encode(raw, sizeof(raw), b64);
        /* text, blank line, "— <name> <sig>\n", NUL */
        total = len + 1 + SIG_PREFIX_LEN + nlen + 1 + SIG_B64_LEN + 1;
        out = malloc(total + 1);
        if (!out) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return AB_ERR_NOMEM;
        }
        o = 0;
        memcpy(out + o, text, len);
        o += len;
        out[o++] = '\n';
        memcpy(out + o, sig_prefix, SIG_PREFIX_LEN);
        o += SIG_PREFIX_LEN;
        memcpy(out + o, s->name, nlen);
        o += nlen;
        out[o++] = ' ';
        memcpy(out + o, b64, SIG_B64_LEN);
        o += SIG_B64_LEN;
        out[o++] = '\n';
        out[o] = '\0';
        *outp = out;
        *lenp = o;
        return AB_OK;
}

/* Offset of the last "\n\n" in \p s, or -1. */
static ssize_t last_blank(const char *s, size_t len) {
        size_t i;

        for (i = len; i >= 2; i--) {
                if (s[i - 2] == '\n' && s[i - 1] == '\n') {
                        return (ssize_t)(i - 2);
                }
        }
        return -1;
}

ab_err_t audit_note_open(const audit_verifier_t *v, const char *msg,
                         size_t len, size_t *text_lenp, char *errstr,
                         size_t errstr_size) {
        uint8_t raw[4 + SIG_LEN];
        const char *p, *end, *eol, *name, *sp;
        size_t text_len, rawlen, nsig = 0;
        ssize_t split;
        uint32_t id;
        int found = 0, rc;

        if (!valid_text(msg, len, 1)) {
                ab_errstr_set(errstr, errstr_size,
                              "note is not UTF-8 or has control characters");
                return AB_ERR_MALFORMED;
        }
        split = last_blank(msg, len);
        if (split < 0) {
                ab_errstr_set(errstr, errstr_size,
                              "note has no blank line before signatures");
                return AB_ERR_MALFORMED;
        }
        text_len = (size_t)split + 1;
        p = msg + split + 2;
        end = msg + len;
        if (p == end || end[-1] != '\n') {
                ab_errstr_set(errstr, errstr_size,
                              "note signature block is empty or unfinished");
                return AB_ERR_MALFORMED;
        }
        for (; p < end; p = eol + 1) {
                eol = memchr(p, '\n', (size_t)(end - p));
                if (++nsig > AUDIT_NOTE_MAX_SIGS) {
                        ab_errstr_set(errstr, errstr_size,
                                      "note has over %d signatures",
                                      AUDIT_NOTE_MAX_SIGS);
                        return AB_ERR_MALFORMED;
                }
                if (eol - p < SIG_PREFIX_LEN ||
                    memcmp(p, sig_prefix, SIG_PREFIX_LEN) != 0) {
                        ab_errstr_set(errstr, errstr_size,
                                      "note signature line %zu does not "
                                      "start with an em dash",
                                      nsig);
                        return AB_ERR_MALFORMED;
                }
                name = p + SIG_PREFIX_LEN;
                sp = memchr(name, ' ', (size_t)(eol - name));
                if (!sp || !valid_name(name, (size_t)(sp - name)) ||
                    sp + 1 == eol ||
                    b64_decode(sp + 1, (size_t)(eol - sp - 1), raw,
                               sizeof(raw), &rawlen) ||
                    rawlen < 5) {
                        ab_errstr_set(errstr, errstr_size,
                                      "note signature line %zu is not "
                                      "\"<name> <base64>\"",
                                      nsig);
                        return AB_ERR_MALFORMED;
                }
                id = (uint32_t)raw[0] << 24 | (uint32_t)raw[1] << 16 |
                     (uint32_t)raw[2] << 8 | raw[3];
                /* others' signatures (witnesses, a rotated key) are
                 * not ours to judge; a repeat of ours is dropped */
                if (found || id != v->id ||
                    (size_t)(sp - name) != strlen(v->name) ||
                    memcmp(name, v->name, (size_t)(sp - name)) != 0) {
                        continue;
                }
                rc = rawlen == sizeof(raw)
                         ? ed25519_verify(v->pkey, msg, text_len, raw + 4)
                         : 0;
                if (rc < 0) {
                        ab_errstr_set(errstr, errstr_size,
                                      "Ed25519 verification failed to run");
                        return AB_ERR_INTERNAL;
                }
                if (rc == 0) {
                        ab_errstr_set(errstr, errstr_size,
                                      "invalid signature for key %s+%08" PRIx32,
                                      v->name, v->id);
                        return AB_ERR_INVALID;
                }
                found = 1;
        }
        if (!found) {
                ab_errstr_set(errstr, errstr_size,
                              "note has no signature by key %s+%08" PRIx32,
                              v->name, v->id);
                return AB_ERR_UNKNOWN;
        }
        *text_lenp = text_len;
        return AB_OK;
}

/*
 * Checkpoints.
 */

ab_err_t audit_checkpoint_format(const audit_checkpoint_t *cp, char *buf,
                                 size_t buf_size, size_t *lenp, char *errstr,
                                 size_t errstr_size) {
        char b64[HASH_B64_LEN + 1];
        size_t olen = strnlen(cp->origin, sizeof(cp->origin));
        int n;

        if (olen == 0 || olen == sizeof(cp->origin) ||
            !valid_text(cp->origin, olen, 0)) {
                ab_errstr_set(errstr, errstr_size,
                              "checkpoint origin must be one non-empty line "
                              "of UTF-8");
                return AB_ERR_INVALID;
        }
        b64_encode(cp->root, AUDIT_HASH_LEN, b64);
        n = snprintf(buf, buf_size, "%s\n%" PRIu64 "\n%s\n", cp->origin,
                     cp->size, b64);
        if (n < 0 || (size_t)n >= buf_size) {
                ab_errstr_set(errstr, errstr_size,
                              "checkpoint does not fit %zu bytes", buf_size);
                return AB_ERR_TOO_LARGE;
        }
        *lenp = (size_t)n;
        return AB_OK;
}

static int parse_size(const char *s, size_t len, uint64_t *vp) {
        uint64_t v = 0;
        size_t i;

        if (len == 0 || len > 20 || (len > 1 && s[0] == '0')) {
                return -1;
        }
        for (i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9' ||
                    v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10) {
                        return -1;
                }
                v = v * 10 + (uint64_t)(s[i] - '0');
        }
        *vp = v;
        return 0;
}

ab_err_t audit_checkpoint_parse(const char *text, size_t len,
                                audit_checkpoint_t *cp, char *errstr,
                                size_t errstr_size) {
        const char *line[3], *p, *end = text + len, *eol;
        size_t llen[3], n = 0, rlen;

        memset(cp, 0, sizeof(*cp));
        if (len == 0 || text[len - 1] != '\n' || !valid_text(text, len, 1)) {
                ab_errstr_set(errstr, errstr_size,
                              "checkpoint is not UTF-8 lines ending in a "
                              "newline");
                return AB_ERR_MALFORMED;
        }
        for (p = text; p < end; p = eol + 1, n++) {
                eol = memchr(p, '\n', (size_t)(end - p));
                if (eol == p) {
                        ab_errstr_set(errstr, errstr_size,
                                      "checkpoint line %zu is empty", n + 1);
                        return AB_ERR_MALFORMED;
                }
                if (n < 3) {
                        line[n] = p;
                        llen[n] = (size_t)(eol - p);
                }
        }
        if (n < 3) {
                ab_errstr_set(errstr, errstr_size,
                              "checkpoint has %zu lines, not at least 3", n);
                return AB_ERR_MALFORMED;
        }
        if (llen[0] > AUDIT_NAME_MAX) {
                ab_errstr_set(errstr, errstr_size,
                              "checkpoint origin is over %d bytes",
                              AUDIT_NAME_MAX);
                return AB_ERR_TOO_LARGE;
        }
        if (parse_size(line[1], llen[1], &cp->size)) {
                ab_errstr_set(errstr, errstr_size,
                              "checkpoint tree size is not a decimal "
                              "number without leading zeroes");
                return AB_ERR_MALFORMED;
        }
        if (b64_decode(line[2], llen[2], cp->root, sizeof(cp->root),
                       &rlen) ||
            rlen != AUDIT_HASH_LEN) {
                memset(cp, 0, sizeof(*cp));
                ab_errstr_set(errstr, errstr_size,
                              "checkpoint root is not a base64 SHA-256 hash");
                return AB_ERR_MALFORMED;
        }
        memcpy(cp->origin, line[0], llen[0]);
        cp->origin[llen[0]] = '\0';
        return AB_OK;
}

ab_err_t audit_checkpoint_sign(const audit_signer_t *s,
                               const audit_checkpoint_t *cp, char **outp,
                               size_t *lenp, char *errstr,
                               size_t errstr_size) {
        char body[AUDIT_NAME_MAX + 1 + 20 + 1 + HASH_B64_LEN + 1 + 1];
        size_t len;
        ab_err_t err;

        *outp = NULL;
        err = audit_checkpoint_format(cp, body, sizeof(body), &len, errstr,
                                      errstr_size);
        if (err) {
                return err;
        }
        return audit_note_sign(s, body, len, outp, lenp, errstr, errstr_size);
}

ab_err_t audit_checkpoint_open(const audit_verifier_t *v, const char *origin,
                               const char *msg, size_t len,
                               audit_checkpoint_t *cp, char *errstr,
                               size_t errstr_size) {
        size_t text_len;
        ab_err_t err;

        memset(cp, 0, sizeof(*cp));
        err = audit_note_open(v, msg, len, &text_len, errstr, errstr_size);
        if (err) {
                return err;
        }
        err = audit_checkpoint_parse(msg, text_len, cp, errstr, errstr_size);
        if (err) {
                return err;
        }
        if (origin && strcmp(cp->origin, origin) != 0) {
                ab_errstr_set(errstr, errstr_size,
                              "checkpoint is of log \"%s\", not \"%s\"",
                              cp->origin, origin);
                memset(cp, 0, sizeof(*cp));
                return AB_ERR_INVALID;
        }
        return AB_OK;
}

ab_err_t audit_tlog_proof_format(uint64_t index,
                                 const audit_merkle_proof_t *proof,
                                 const char *signed_cp, size_t cp_len,
                                 char **outp, size_t *lenp, char *errstr,
                                 size_t errstr_size) {
        static const char head[] = "c2sp.org/tlog-proof@v1\nindex ";
        size_t total, o, i;
        char *out;
        int n;

        *outp = NULL;
        if (proof->cnt > AUDIT_MERKLE_MAX_PROOF) {
                ab_errstr_set(errstr, errstr_size,
                              "inclusion proof of %zu hashes", proof->cnt);
                return AB_ERR_INVALID;
        }
        if (cp_len == 0 || signed_cp[cp_len - 1] != '\n') {
                ab_errstr_set(errstr, errstr_size,
                              "signed checkpoint does not end in a newline");
                return AB_ERR_MALFORMED;
        }
        /* head, index and newline, a line per hash, blank line, note */
        total = sizeof(head) - 1 + 21 + proof->cnt * (HASH_B64_LEN + 1) + 1 +
                cp_len;
        out = malloc(total + 1);
        if (!out) {
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return AB_ERR_NOMEM;
        }
        n = snprintf(out, total + 1, "%s%" PRIu64 "\n", head, index);
        if (n < 0 || (size_t)n > total) {
                free(out);
                ab_errstr_set(errstr, errstr_size, "proof formatting failed");
                return AB_ERR_INTERNAL;
        }
        o = (size_t)n;
        for (i = 0; i < proof->cnt; i++) {
                b64_encode(proof->hash[i], AUDIT_HASH_LEN, out + o);
                o += HASH_B64_LEN;
                out[o++] = '\n';
        }
        out[o++] = '\n';
        memcpy(out + o, signed_cp, cp_len);
        o += cp_len;
        out[o] = '\0';
        *outp = out;
        *lenp = o;
        return AB_OK;
}
