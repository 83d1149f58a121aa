/* aetherbus - Apache-2.0
 *
 * audit_proof: the inclusion proof of one stored row as a document a
 * third party checks offline (leaf index, tree size, RFC 9162 path, the
 * leaf's bytes, the latest signed checkpoint and the same as one C2SP
 * tlog-proof). One builder for GET /admin/events/{id}/proof and for
 * "aetherbus-audit prove ID", so both always say the same thing. How
 * rows are stored and proofs computed stays in audit_store.
 */
#ifndef AUDIT_PROOF_H
#define AUDIT_PROOF_H

#include <stddef.h>

#include <jansson.h>

#include "ab_err.h"
#include "audit_store.h"

/**
 * @brief The row of an id's rows (audit_store_get()) a proof or a lookup
 *        is about: the one of \p status when given (NULL if none), else
 *        the accepted one if any, else the oldest.
 * @returns a borrowed reference into \p rows, or NULL.
 */
json_t *audit_proof_pick(json_t *rows, const char *status);

/**
 * @brief The proof document of \p row (an element of audit_store_get()):
 *        against the latest signed checkpoint when it covers the row,
 *        else against the tree as committed (then "checkpoint" is null).
 *        A pruned row (AUDIT_RETENTION_DAYS) has no "leafData" and says
 *        "pruned": true; its leaf hash is still proven.
 * @returns a new object, or NULL with errstr.
 */
json_t *audit_proof_doc(audit_store_t *store, json_t *row, char *errstr,
                        size_t errstr_size);

#endif
