/* aetherbus - Apache-2.0
 *
 * audit_checkpoint: the signed statements of the audit log. Owns the C2SP
 * tlog-checkpoint body (origin, tree size, base64 root), the C2SP signed
 * note around it with Ed25519 signatures, and the key formats, all
 * byte-compatible with golang.org/x/mod/sumdb/note so a third party can
 * check a checkpoint with the Go tooling (or tests/audit/rfc9162_check.py):
 *
 *   signer key    PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 || seed)>
 *   verifier key  <name>+<key id hex>+<base64(0x01 || public key)>
 *   key id        SHA-256(name || 0x0A || 0x01 || public key)[0:4]
 *   signed note   <text>\n<U+2014> <name> <base64(key id || signature)>\n
 *
 * Stricter than the Go reader in one way: base64 must be canonical.
 */
#ifndef AUDIT_CHECKPOINT_H
#define AUDIT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "ab_err.h"
#include "audit_merkle.h"

/** Longest key name and checkpoint origin, in bytes. */
#define AUDIT_NAME_MAX 255
/** Room for a verifier key: name, '+', 8 hex, '+', 44 base64, NUL. */
#define AUDIT_VKEY_MAX (AUDIT_NAME_MAX + 1 + 8 + 1 + 44 + 1)
/** Room for a signer key: "PRIVATE+KEY+" and a verifier-sized rest. */
#define AUDIT_SKEY_MAX (12 + AUDIT_VKEY_MAX)
/** Signature lines a note may carry (as the Go reader). */
#define AUDIT_NOTE_MAX_SIGS 100

typedef struct audit_signer_s audit_signer_t;
typedef struct audit_verifier_s audit_verifier_t;

/** One checkpoint: the three mandatory lines of its body. */
typedef struct audit_checkpoint_s {
        char origin[AUDIT_NAME_MAX + 1];
        uint64_t size;
        uint8_t root[AUDIT_HASH_LEN];
} audit_checkpoint_t;

/**
 * Makes a fresh Ed25519 key called \p name: the signer key into \p skey,
 * the verifier key into \p vkey (both NUL-terminated).
 */
ab_err_t audit_key_generate(const char *name, char *skey, size_t skey_size,
                            char *vkey, size_t vkey_size, char *errstr,
                            size_t errstr_size);

/**
 * audit_key_generate() into a new file \p path (mode 0600, never over an
 * existing file): the signer key and a newline. The verifier key, the
 * one to publish, goes to \p vkey.
 */
ab_err_t audit_keygen(const char *name, const char *path, char *vkey,
                      size_t vkey_size, char *errstr, size_t errstr_size);

/** Parses a signer key. @returns the signer or NULL with errstr. */
audit_signer_t *audit_signer_new(const char *skey, char *errstr,
                                 size_t errstr_size);

/** Reads a signer key file (AUDIT_SIGNING_KEY): one key, an optional
 *  final newline. Warns when group or others may read it. */
audit_signer_t *audit_signer_load(const char *path, char *errstr,
                                  size_t errstr_size);

void audit_signer_destroy(audit_signer_t *s);
const char *audit_signer_name(const audit_signer_t *s);
uint32_t audit_signer_key_id(const audit_signer_t *s);

/** The verifier key of \p s into \p vkey. */
ab_err_t audit_signer_vkey(const audit_signer_t *s, char *vkey,
                           size_t vkey_size, char *errstr, size_t errstr_size);

/** Parses a verifier key. @returns the verifier or NULL with errstr. */
audit_verifier_t *audit_verifier_new(const char *vkey, char *errstr,
                                     size_t errstr_size);
void audit_verifier_destroy(audit_verifier_t *v);
const char *audit_verifier_name(const audit_verifier_t *v);
uint32_t audit_verifier_key_id(const audit_verifier_t *v);

/**
 * Signs note text \p text (non-empty, ending in a newline, UTF-8 without
 * control characters but newline). \p *outp gets the signed note
 * (malloc'd, NUL-terminated, \p *lenp bytes without the NUL).
 */
ab_err_t audit_note_sign(const audit_signer_t *s, const char *text,
                         size_t len, char **outp, size_t *lenp, char *errstr,
                         size_t errstr_size);

/**
 * Opens signed note \p msg with \p v: the note must be well formed and
 * carry a valid signature by \p v; signatures by other keys are ignored.
 * \p *text_lenp gets the length of the text (msg[0 .. text_len)).
 * @returns AB_OK; AB_ERR_MALFORMED (format), AB_ERR_UNKNOWN (no
 *          signature by \p v), AB_ERR_INVALID (a bad signature by \p v).
 */
ab_err_t audit_note_open(const audit_verifier_t *v, const char *msg,
                         size_t len, size_t *text_lenp, char *errstr,
                         size_t errstr_size);

/** The checkpoint body of \p cp into \p buf (NUL-terminated). */
ab_err_t audit_checkpoint_format(const audit_checkpoint_t *cp, char *buf,
                                 size_t buf_size, size_t *lenp, char *errstr,
                                 size_t errstr_size);

/** Parses a checkpoint body; extension lines are allowed and ignored. */
ab_err_t audit_checkpoint_parse(const char *text, size_t len,
                                audit_checkpoint_t *cp, char *errstr,
                                size_t errstr_size);

/** The signed checkpoint of \p cp (as audit_note_sign()). */
ab_err_t audit_checkpoint_sign(const audit_signer_t *s,
                               const audit_checkpoint_t *cp, char **outp,
                               size_t *lenp, char *errstr,
                               size_t errstr_size);

/**
 * Opens a signed checkpoint with \p v and parses its body into \p cp.
 * With \p origin non-NULL the checkpoint must be of that log.
 */
ab_err_t audit_checkpoint_open(const audit_verifier_t *v, const char *origin,
                               const char *msg, size_t len,
                               audit_checkpoint_t *cp, char *errstr,
                               size_t errstr_size);

/**
 * A C2SP tlog-proof (c2sp.org/tlog-proof@v1) of leaf \p index: its
 * inclusion \p proof and, verbatim, the signed checkpoint of the tree the
 * proof leads to. All a third party needs, with the entry and the log's
 * verifier key, to check the entry is in the log. \p *outp as
 * audit_note_sign().
 */
ab_err_t audit_tlog_proof_format(uint64_t index,
                                 const audit_merkle_proof_t *proof,
                                 const char *signed_cp, size_t cp_len,
                                 char **outp, size_t *lenp, char *errstr,
                                 size_t errstr_size);

#endif
