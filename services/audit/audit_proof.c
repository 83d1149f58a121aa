/* aetherbus - Apache-2.0
 *
 * audit_proof: a stored row's inclusion proof as a self-contained
 * document (see audit_proof.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit_checkpoint.h"
#include "audit_proof.h"

json_t *audit_proof_pick(json_t *rows, const char *status) {
        json_t *r, *first = NULL;
        size_t i;

        json_array_foreach(rows, i, r) {
                const char *s = json_string_value(json_object_get(r, "status"));

                if (!s) {
                        continue;
                }
                if (status ? !strcmp(s, status) : !strcmp(s, "accepted")) {
                        return r;
                }
                if (!first) {
                        first = r;
                }
        }
        return status ? NULL : first;
}

/* The leaf's own bytes (base64), so a verifier (the console in the
 * browser, a script) hashes the row itself and reads what it proves. */
static void leaf_data(audit_store_t *store, uint64_t index, json_t *doc) {
        char errstr[256];
        uint8_t *data;
        size_t data_len;
        char *b64;

        if (audit_store_leaf_at(store, index, &data, &data_len, errstr,
                                sizeof(errstr)) != AB_OK) {
                return;
        }
        if ((b64 = malloc(4 * ((data_len + 2) / 3) + 1))) {
                EVP_EncodeBlock((unsigned char *)b64, data, (int)data_len);
                json_object_set_new(doc, "leafData", json_string(b64));
                free(b64);
        }
        free(data);
}

json_t *audit_proof_doc(audit_store_t *store, json_t *row, char *errstr,
                        size_t errstr_size) {
        audit_merkle_proof_t pr;
        uint8_t leaf[AUDIT_HASH_LEN], root[AUDIT_HASH_LEN];
        char hx[2 * AUDIT_HASH_LEN + 1], cperr[256];
        uint64_t index, size = 0, cur;
        char *note = NULL, *tlog = NULL;
        json_t *path, *doc;
        size_t i, tlog_len;
        ab_err_t err;

        index = (uint64_t)json_integer_value(json_object_get(row, "leafIndex"));
        /* Against the latest signed checkpoint when it covers the leaf:
         * what a verifier can check with the log's public key. */
        if (audit_store_checkpoint_latest(store, &note, &size, root, cperr,
                                          sizeof(cperr)) != AB_OK ||
            index >= size) {
                free(note);
                note = NULL;
                if ((err = audit_store_tree(store, &cur, root))) {
                        ab_errstr_set(errstr, errstr_size, "tree root: %s",
                                      ab_err2str(err));
                        return NULL;
                }
                size = cur;
        }
        if (audit_store_proof(store, index, size, &pr, leaf, errstr,
                              errstr_size)) {
                free(note);
                return NULL;
        }
        if (!(path = json_array())) {
                free(note);
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        for (i = 0; i < pr.cnt; i++) {
                audit_merkle_hex(pr.hash[i], hx);
                json_array_append_new(path, json_string(hx));
        }
        doc = json_pack("{s:O,s:O,s:I,s:I,s:o}", "id",
                        json_object_get(row, "id"), "status",
                        json_object_get(row, "status"), "leafIndex",
                        (json_int_t)index, "treeSize", (json_int_t)size,
                        "inclusionPath", path);
        if (!doc) {
                free(note);
                ab_errstr_set(errstr, errstr_size, "out of memory");
                return NULL;
        }
        audit_merkle_hex(leaf, hx);
        json_object_set_new(doc, "leafHash", json_string(hx));
        if (json_is_true(json_object_get(row, "pruned"))) {
                json_object_set_new(doc, "pruned", json_true());
        } else {
                leaf_data(store, index, doc);
        }
        audit_merkle_hex(root, hx);
        json_object_set_new(doc, "rootHash", json_string(hx));
        json_object_set_new(doc, "checkpoint",
                            note ? json_string(note) : json_null());
        /* The same as one C2SP tlog-proof: all a third party needs, with
         * the row's leaf bytes and the log's verifier key. */
        if (note && audit_tlog_proof_format(index, &pr, note, strlen(note),
                                            &tlog, &tlog_len, cperr,
                                            sizeof(cperr)) == AB_OK) {
                json_object_set_new(doc, "tlogProof",
                                    json_stringn(tlog, tlog_len));
                free(tlog);
        }
        free(note);
        return doc;
}
