/* aetherbus - Apache-2.0
 *
 * Unit tests of ab_cloudevents without a broker: the binary-mode headers
 * of an envelope and what they need. The record's key and timestamp are
 * read back from a broker in tests/integration/0001-kafka.c.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "ab_cloudevents.h"

/* The value of header name in hdrs as a string, or NULL. */
static const char *hval(rd_kafka_headers_t *hdrs, const char *name,
                        char *out, size_t out_size) {
        const void *val;
        size_t size;

        if (rd_kafka_header_get_last(hdrs, name, &val, &size) != 0) {
                return NULL;
        }
        snprintf(out, out_size, "%.*s", (int)size, (const char *)val);
        return out;
}

Test(cloudevents, headers_carry_the_envelope_in_binary_mode) {
        static const struct {
                const char *id;
                const char *name;
                const char *source;
                const char *time;
                const char *subject;
        } rows[] = {
            {"e-1", "OrderCreated", "api", "2024-05-01T12:00:00Z", "ord-9"},
            {"e-2", "crm.record.updated", "command-center",
             "2024-05-01T12:00:00.123+02:00", NULL},
        };
        ab_envelope_t env;
        rd_kafka_headers_t *hdrs;
        char v[128];
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                memset(&env, 0, sizeof(env));
                env.id          = rows[i].id;
                env.name        = rows[i].name;
                env.source      = rows[i].source;
                env.occurred_at = rows[i].time;
                env.subject_id  = rows[i].subject;
                hdrs            = ab_cloudevents_headers_new(&env);
                cr_assert(hdrs, "row %zu", i);
                cr_assert_str_eq(hval(hdrs, "ce_specversion", v, sizeof(v)),
                                 "1.0", "row %zu", i);
                cr_assert_str_eq(hval(hdrs, "ce_id", v, sizeof(v)),
                                 rows[i].id, "row %zu", i);
                cr_assert_str_eq(hval(hdrs, "ce_type", v, sizeof(v)),
                                 rows[i].name, "row %zu", i);
                cr_assert_str_eq(hval(hdrs, "ce_source", v, sizeof(v)),
                                 rows[i].source, "row %zu", i);
                cr_assert_str_eq(hval(hdrs, "ce_time", v, sizeof(v)),
                                 rows[i].time, "row %zu", i);
                cr_assert_str_eq(hval(hdrs, "content-type", v, sizeof(v)),
                                 "application/avro", "row %zu", i);
                if (rows[i].subject) {
                        cr_assert_str_eq(hval(hdrs, "ce_subject", v,
                                              sizeof(v)),
                                         rows[i].subject, "row %zu", i);
                        cr_assert_eq(rd_kafka_header_cnt(hdrs), 7,
                                     "row %zu", i);
                } else {
                        cr_assert_null(hval(hdrs, "ce_subject", v, sizeof(v)),
                                       "row %zu", i);
                        cr_assert_eq(rd_kafka_header_cnt(hdrs), 6,
                                     "row %zu", i);
                }
                rd_kafka_headers_destroy(hdrs);
        }
}

Test(cloudevents, headers_need_id_name_source_and_time) {
        ab_envelope_t env;

        memset(&env, 0, sizeof(env));
        env.name        = "OrderCreated";
        env.source      = "api";
        env.occurred_at = "2024-05-01T12:00:00Z";
        cr_assert_null(ab_cloudevents_headers_new(&env));
        cr_assert_null(ab_cloudevents_headers_new(NULL));
}
