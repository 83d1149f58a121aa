/* aetherbus - Apache-2.0
 *
 * ab_record: encoder and decoder of the rejected and dead-letter records.
 * The format was ingest's alone; it lives here because the sink writes
 * dead letters and stats, audit and aetherbus-admin read both kinds.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "ab_cloudevents.h"
#include "ab_envelope.h"
#include "ab_json.h"
#include "ab_record.h"

void ab_record_failure_init(ab_record_failure_t *f, ab_record_kind_t kind) {
        memset(f, 0, sizeof(*f));
        f->kind          = kind;
        f->index         = -1;
        f->src_partition = -1;
        f->src_offset    = -1;
}

const char *ab_record_kind_name(ab_record_kind_t kind) {
        return kind == AB_RECORD_DEADLETTER ? "deadletter" : "rejected";
}

/* A JSON string of at most \p max bytes of \p s, every byte that does
 * not start a valid UTF-8 sequence written as \xNN: the text a client or
 * a sink sent must not make the record unwritable, nor lose what it was. */
static json_t *text(const char *s, size_t len, size_t max) {
        char *buf;
        size_t n;
        json_t *j;

        if (len > max) {
                len = max;
        }
        if (!(buf = malloc(4 * len + 1))) {
                return NULL;
        }
        n = ab_err_utf8_clean(buf, 4 * len + 1, s, len);
        j = json_stringn(buf, n);
        free(buf);
        return j;
}

/* Marks \p rec's original as cut: its size and digest say what it was,
 * so a client's copy can be matched to the record. */
static void cut_mark(json_t *rec, const void *data, size_t len) {
        unsigned char md[SHA256_DIGEST_LENGTH];
        char hex[2 * SHA256_DIGEST_LENGTH + 1];
        size_t i;

        SHA256(data, len, md);
        for (i = 0; i < sizeof(md); i++) {
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
        }
        json_object_set_new(rec, "truncated", json_true());
        json_object_set_new(rec, "originalSize", json_integer((json_int_t)len));
        json_object_set_new(rec, "originalSha256", json_string(hex));
}

static char *dump(json_t *rec, size_t *lenp) {
        char *val = json_dumps(rec, JSON_COMPACT);

        if (val) {
                *lenp = strlen(val);
        }
        return val;
}

char *ab_record_failure_encode(const ab_record_failure_t *f, size_t *lenp,
                               char *errstr, size_t errstr_size) {
        json_t *rec;
        char *val, *orig;
        size_t len, olen;

        rec = json_pack("{s:o,s:s,s:I}", "reason",
                        text(f->reason ? f->reason : "",
                             f->reason ? strlen(f->reason) : 0, 4096),
                        "code", f->code ? f->code : "UNKNOWN", "receivedAt",
                        (json_int_t)f->received_at_ms);
        if (!rec) {
                ab_errstr_set(errstr, errstr_size, "cannot build the record");
                return NULL;
        }
        if (f->tenant) {
                json_object_set_new(rec, "tenant",
                                    text(f->tenant, strlen(f->tenant), 4096));
        }
        if (f->client) {
                json_object_set_new(rec, "client",
                                    text(f->client, strlen(f->client), 256));
        }
        if (f->kind == AB_RECORD_REJECTED) {
                if (f->path) {
                        json_object_set_new(rec, "path", json_string(f->path));
                }
                if (f->index >= 0) {
                        json_object_set_new(rec, "index", json_integer(f->index));
                }
        } else {
                json_object_set_new(rec, "topic",
                                    json_string(f->src_topic ? f->src_topic : ""));
                json_object_set_new(rec, "partition",
                                    json_integer(f->src_partition));
                json_object_set_new(rec, "offset", json_integer(f->src_offset));
                json_object_set_new(rec, "status", json_integer(f->http_status));
                json_object_set_new(rec, "failedAt",
                                    json_integer(f->failed_at_ms));
                if (f->response) {
                        json_object_set_new(rec, "response",
                                            text(f->response, strlen(f->response),
                                                 AB_RECORD_RESPONSE_MAX));
                }
        }
        if (f->original) {
                json_object_set(rec, "original", f->original);
        } else if (f->original_text) {
                json_object_set_new(rec, "originalText",
                                    text(f->original_text, f->original_text_len,
                                         AB_RECORD_TEXT_MAX));
                if (f->original_text_len > AB_RECORD_TEXT_MAX) {
                        cut_mark(rec, f->original_text, f->original_text_len);
                }
        }
        val = dump(rec, &len);
        if (val && f->max_len && len > f->max_len && f->original) {
                /* Too large for Kafka whole: the rejection is still
                 * written, with the original's head, size and digest. */
                free(val);
                val = NULL;
                json_object_del(rec, "original");
                if ((orig = dump(f->original, &olen))) {
                        json_object_set_new(rec, "originalText",
                                            text(orig, olen, AB_RECORD_TEXT_MAX));
                        cut_mark(rec, orig, olen);
                        free(orig);
                        val = dump(rec, &len);
                }
        }
        json_decref(rec);
        if (!val) {
                ab_errstr_set(errstr, errstr_size, "cannot serialise the record");
                return NULL;
        }
        *lenp = len;
        return val;
}

static void hdr(rd_kafka_headers_t *hdrs, const char *name, const char *v) {
        rd_kafka_header_add(hdrs, name, -1, v, -1);
}

rd_kafka_headers_t *ab_record_failure_headers(const ab_record_failure_t *f) {
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(f->kind == AB_RECORD_DEADLETTER ? 10 : 3);
        char num[32];
        json_t *resp;

        hdr(hdrs, "content-type", "application/json");
        if (f->client) {
                hdr(hdrs, AB_CLOUDEVENTS_H_AUTHID, f->client);
        }
        if (f->kind == AB_RECORD_REJECTED) {
                hdr(hdrs, "ce_type", AB_RECORD_CE_REJECTED);
                return hdrs;
        }
        hdr(hdrs, "ce_type", AB_RECORD_CE_DEADLETTER);
        hdr(hdrs, AB_RECORD_H_TOPIC, f->src_topic ? f->src_topic : "");
        snprintf(num, sizeof(num), "%" PRId32, f->src_partition);
        hdr(hdrs, AB_RECORD_H_PARTITION, num);
        snprintf(num, sizeof(num), "%" PRId64, f->src_offset);
        hdr(hdrs, AB_RECORD_H_OFFSET, num);
        hdr(hdrs, AB_RECORD_H_CLASS,
            f->http_status ? "aetherbus.sink.HttpStatusException"
                           : "aetherbus.sink.RetriesExhaustedException");
        hdr(hdrs, AB_RECORD_H_MESSAGE, f->reason ? f->reason : "");
        snprintf(num, sizeof(num), "%d", f->http_status);
        hdr(hdrs, AB_RECORD_H_STATUS, num);
        if (f->response &&
            (resp = text(f->response, strlen(f->response), AB_RECORD_RESPONSE_MAX))) {
                hdr(hdrs, AB_RECORD_H_RESPONSE, json_string_value(resp));
                json_decref(resp);
        }
        return hdrs;
}

static const char *str(json_t *doc, const char *key) {
        return json_string_value(json_object_get(doc, key));
}

static int64_t num(json_t *doc, const char *key, int64_t def) {
        json_t *v = json_object_get(doc, key);

        return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

ab_err_t ab_record_failure_decode(ab_record_kind_t kind, const void *data,
                                  size_t len, json_t **docp,
                                  ab_record_failure_t *f, char *errstr,
                                  size_t errstr_size) {
        json_t *doc;
        json_error_t jerr;
        json_t *orig;

        doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc || !json_is_object(doc) || !str(doc, "reason")) {
                ab_errstr_set(errstr, errstr_size,
                              "not a %s record: %s", ab_record_kind_name(kind),
                              doc ? "no reason" : jerr.text);
                json_decref(doc);
                return AB_ERR_MALFORMED;
        }
        ab_record_failure_init(f, kind);
        f->reason         = str(doc, "reason");
        f->code           = str(doc, "code");
        f->tenant         = str(doc, "tenant");
        f->client         = str(doc, "client");
        f->received_at_ms = num(doc, "receivedAt", 0);
        f->path           = str(doc, "path");
        f->index          = num(doc, "index", -1);
        f->original_text  = str(doc, "originalText");
        f->original_text_len =
            f->original_text ? json_string_length(json_object_get(doc, "originalText")) : 0;
        orig        = json_object_get(doc, "original");
        f->original = orig;
        f->src_topic     = str(doc, "topic");
        f->src_partition = (int32_t)num(doc, "partition", -1);
        f->src_offset    = num(doc, "offset", -1);
        f->http_status   = (int)num(doc, "status", 0);
        f->response      = str(doc, "response");
        f->failed_at_ms  = num(doc, "failedAt", 0);
        *docp            = doc;
        return AB_OK;
}
