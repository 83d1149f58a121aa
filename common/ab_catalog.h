/* aetherbus - Apache-2.0
 *
 * ab_catalog: the event catalog (schemas/catalog.json, embedded at build
 * time): every accepted event name, its routing prefix, its family and the
 * sources allowed for it. Routing (name -> prefix -> topic) lives here and
 * nowhere else.
 */
#ifndef AB_CATALOG_H
#define AB_CATALOG_H

#include <stddef.h>
#include <sys/types.h>

#include "ab_err.h"

typedef struct ab_catalog_s ab_catalog_t;

/** Which source rule applies to a name. */
typedef enum {
        AB_FAMILY_BUSINESS, /**< v1 names: source in storefront|admin|api|bot|agent */
        AB_FAMILY_PLATFORM, /**< dotted names: source is a producer slug */
} ab_family_t;

/** One catalog entry; owned by the catalog, valid while it lives. */
typedef struct ab_catalog_entry_s {
        const char *name;        /**< "OrderCreated", "crm.record.updated" */
        const char *prefix;      /**< "commerce", "crm" */
        ab_family_t family;
        const char *description;
} ab_catalog_entry_t;

/**
 * @brief Loads the catalog embedded in the binary.
 * @returns a new catalog (free with ab_catalog_destroy()) or NULL with errstr.
 */
ab_catalog_t *ab_catalog_new(char *errstr, size_t errstr_size);

/**
 * @brief Loads a catalog from JSON text (tests, operator overrides).
 * @returns a new catalog or NULL with errstr naming the bad entry.
 */
ab_catalog_t *ab_catalog_new_from_json(const char *json, size_t len,
                                       char *errstr, size_t errstr_size);

/** @brief Frees \p cat; NULL is a no-op. */
void ab_catalog_destroy(ab_catalog_t *cat);

/** @returns the entry for \p name or NULL when it is not in the catalog. */
const ab_catalog_entry_t *ab_catalog_find(const ab_catalog_t *cat,
                                          const char *name);

/** @returns the number of entries. */
size_t ab_catalog_count(const ab_catalog_t *cat);

/** @returns entry \p i (0 <= i < count), in catalog order. */
const ab_catalog_entry_t *ab_catalog_get(const ab_catalog_t *cat, size_t i);

/** @returns the number of distinct prefixes. */
size_t ab_catalog_prefix_count(const ab_catalog_t *cat);

/** @returns distinct prefix \p i, in first-seen order. */
const char *ab_catalog_prefix_get(const ab_catalog_t *cat, size_t i);

/**
 * @brief The prefix of a dotted name: its first segment
 *        ("crm.record.updated" -> "crm"), written to \p out.
 * @returns AB_OK, or AB_ERR_INVALID when \p name has no dot, the
 *          segment is empty, holds a character outside [A-Za-z0-9_-] or
 *          does not fit in \p out_size.
 */
ab_err_t ab_catalog_dotted_prefix(const char *name, char *out, size_t out_size);

/**
 * @brief Whether \p source is allowed for \p family. Business: one of
 *        storefront|admin|api|bot|agent. Platform: a slug
 *        [a-z0-9][a-z0-9._-]{0,63}.
 * @returns AB_OK or AB_ERR_INVALID with errstr "must be one of ..." /
 *          "must match [a-z0-9][a-z0-9._-]{0,63}".
 */
ab_err_t ab_catalog_check_source(ab_family_t family, const char *source,
                                 char *errstr, size_t errstr_size);

/**
 * @brief Writes topic name \p topic_prefix + \p prefix into \p out
 *        (\p topic_prefix NULL means "").
 * @returns AB_OK or AB_ERR_INVALID when it does not fit or is not a legal
 *          Kafka topic name ([a-zA-Z0-9._-], at most 249 chars).
 */
ab_err_t ab_catalog_topic(const char *topic_prefix, const char *prefix,
                          char *out, size_t out_size);

/** The suffixes of the system topics, after TOPIC_PREFIX. Audit's
 *  checkpoints carry signed notes, not events: consumers of events read
 *  names[0..event_cnt) only. */
#define AB_CATALOG_TOPIC_REJECTED          "rejected"
#define AB_CATALOG_TOPIC_DEADLETTER        "deadletter"
#define AB_CATALOG_TOPIC_AUDIT_CHECKPOINTS "audit-checkpoints"

/** Topics of the whole bus, from ab_catalog_topics_new(): one per catalog
 *  prefix (index = prefix index), then the system topics. */
typedef struct ab_catalog_topics_s {
        char **names;      /**< cnt names, NULL-terminated */
        size_t cnt;        /**< prefix_cnt + AB_CATALOG_SYSTEM_TOPICS */
        size_t prefix_cnt; /**< names[0..prefix_cnt) are the prefixes' */
        const char *rejected;   /**< names[prefix_cnt] */
        const char *deadletter; /**< names[prefix_cnt + 1] */
        const char *checkpoints; /**< names[prefix_cnt + 2] */
        size_t event_cnt;  /**< names[0..event_cnt) carry event records:
                            *   the prefixes', rejected, deadletter */
} ab_catalog_topics_t;

/** How many system topics follow the prefixes' (rejected, deadletter,
 *  audit-checkpoints). */
#define AB_CATALOG_SYSTEM_TOPICS 3

/**
 * @brief The one topic table every service, tool and test uses:
 *        \p topic_prefix + each catalog prefix, then + "rejected",
 *        + "deadletter" and + "audit-checkpoints".
 * @returns AB_OK with \p t filled (ab_catalog_topics_clear() it), or
 *          AB_ERR_INVALID naming the prefix that makes an illegal topic
 *          name, or AB_ERR_NOMEM.
 */
ab_err_t ab_catalog_topics_init(ab_catalog_topics_t *t, const ab_catalog_t *cat,
                                const char *topic_prefix, char *errstr,
                                size_t errstr_size);

/** @brief Frees what ab_catalog_topics_init() made; zeroes \p t. */
void ab_catalog_topics_clear(ab_catalog_topics_t *t);

/**
 * @returns the index of \p topic in \p t, or -1 when it is not a topic of
 *          the bus.
 */
ssize_t ab_catalog_topics_find(const ab_catalog_topics_t *t, const char *topic);

/** The embedded schemas (NUL-terminated), for /events/schema and tools. */
extern const char ab_schema_catalog_json[];
extern const char ab_schema_envelope_avsc[];

#endif
