/* aetherbus - Apache-2.0
 *
 * ingest_publish: one request body from parse to answer. Every item is
 * validated, encoded and produced (valid ones to their topic, invalid ones
 * to <prefix>rejected with the reason); the answer waits until Kafka has
 * acknowledged every record (acks=all), so a 2xx means durable. The last
 * delivery report answers the suspended request from the producer's
 * thread; no server thread ever blocks on Kafka.
 *
 * Lifetime: a batch holds one reference per produced record plus one for
 * the thread producing them; whoever drops the last answers and frees.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ab_log.h"
#include "ab_cloudevents.h"
#include "ab_json.h"
#include "ab_record.h"
#include "ingest.h"

typedef enum {
        ITEM_PENDING = 0, /**< produced to its topic, no report yet */
        ITEM_ACCEPTED,    /**< acknowledged by Kafka */
        ITEM_REJECTED,    /**< failed validation (record to rejected) */
        ITEM_FAILED,      /**< Kafka refused or lost it: retryable */
} item_state_t;

struct batch_s;

typedef struct item_s {
        struct batch_s *batch;
        item_state_t state;
        const char *id;  /**< in batch->pool, or NULL */
        char *error;     /**< rejected/failed reason (malloc'ed) */
        ab_err_t code;   /**< why rejected */
} item_t;

typedef struct batch_s {
        ingest_t *ing;
        ab_http_req_t *req;
        atomic_int refcnt;
        int async;
        ab_form_t form;
        char client[80];  /**< the client's name, "" without one */
        char *tenant;     /**< x-tenant, for records written late */
        int64_t received;
        size_t n;
        char *pool; /**< ids, n * (max_id_len + 1) */
        size_t pool_of;
        item_t items[];
} batch_t;

static const char *keep_id(batch_t *b, const char *id) {
        size_t len;
        char *p;

        if (!id) {
                return NULL;
        }
        len = strlen(id);
        if (len > (size_t)b->ing->conf->max_id_len) {
                return NULL; /* only validated ids are kept */
        }
        p = b->pool + b->pool_of;
        memcpy(p, id, len + 1);
        b->pool_of += len + 1;
        return p;
}

static void batch_free(batch_t *b) {
        size_t i;

        for (i = 0; i < b->n; i++) {
                free(b->items[i].error);
        }
        free(b->pool);
        free(b->tenant);
        free(b);
}

static const char *state_name(item_state_t st) {
        switch (st) {
        case ITEM_ACCEPTED:
                return "accepted";
        case ITEM_REJECTED:
                return "rejected";
        case ITEM_FAILED:
                return "failed";
        default:
                return "pending";
        }
}

static json_t *results_json(const batch_t *b) {
        json_t *arr;
        json_t *o;
        size_t i;

        arr = json_array();
        for (i = 0; i < b->n; i++) {
                const item_t *it = &b->items[i];

                o = json_pack("{s:I,s:s?,s:s}", "index", (json_int_t)i, "id",
                              it->id, "status", state_name(it->state));
                if (it->error) {
                        json_object_set_new(o, "error",
                                            json_string(it->error));
                }
                json_array_append_new(arr, o);
        }
        return arr;
}

/* Appends \p s as a JSON string, escaped as json_dumps() escapes it (the
 * ids are valid UTF-8: jansson or the envelope parser checked them). */
static char *put_json_string(char *o, const char *s) {
        static const char hex[] = "0123456789ABCDEF";
        unsigned char c;

        *o++ = '"';
        for (; (c = (unsigned char)*s) != '\0'; s++) {
                if (c >= 0x20 && c != '"' && c != '\\') {
                        *o++ = (char)c;
                        continue;
                }
                *o++ = '\\';
                switch (c) {
                case '"':
                case '\\':
                        *o++ = (char)c;
                        break;
                case '\b':
                        *o++ = 'b';
                        break;
                case '\f':
                        *o++ = 'f';
                        break;
                case '\n':
                        *o++ = 'n';
                        break;
                case '\r':
                        *o++ = 'r';
                        break;
                case '\t':
                        *o++ = 't';
                        break;
                default:
                        *o++ = 'u';
                        *o++ = '0';
                        *o++ = '0';
                        *o++ = hex[c >> 4];
                        *o++ = hex[c & 0xF];
                        break;
                }
        }
        *o++ = '"';
        return o;
}

/* The 202 body, {"accepted":N,"ids":[...]} and "durable":false when async,
 * written directly: the bytes json_dumps(JSON_COMPACT) makes of that
 * object (ids left out when NULL, like json_string(NULL)), without a
 * json_t per id and jansson's dump machinery (~10k instructions for one
 * event). Returns a malloc'ed text or NULL. */
static char *accepted_body(const batch_t *b, size_t acc, size_t *lenp) {
        size_t i, cap = 64;
        char *out, *o;
        int first = 1;

        for (i = 0; i < b->n; i++) {
                if (b->items[i].id) {
                        cap += 6 * strlen(b->items[i].id) + 3;
                }
        }
        if (!(out = malloc(cap))) {
                return NULL;
        }
        o = out + sprintf(out, "{\"accepted\":%zu,\"ids\":[", acc);
        for (i = 0; i < b->n; i++) {
                if (!b->items[i].id) {
                        continue;
                }
                if (!first) {
                        *o++ = ',';
                }
                first = 0;
                o     = put_json_string(o, b->items[i].id);
        }
        *o++ = ']';
        if (b->async) {
                memcpy(o, ",\"durable\":false", 16);
                o += 16;
        }
        *o++  = '}';
        *o    = '\0';
        *lenp = (size_t)(o - out);
        return out;
}

/* Builds and sends the answer from the items' final states. */
static void answer(batch_t *b) {
        size_t i;
        size_t acc = 0, rej = 0, fail = 0, forbidden = 0;
        json_t *body;
        json_t *ids;
        int status;

        for (i = 0; i < b->n; i++) {
                switch (b->items[i].state) {
                case ITEM_ACCEPTED:
                case ITEM_PENDING: /* async: queued */
                        acc++;
                        break;
                case ITEM_REJECTED:
                        rej++;
                        forbidden += b->items[i].code == AB_ERR_FORBIDDEN;
                        break;
                case ITEM_FAILED:
                        fail++;
                        break;
                }
        }

        if (fail > 0) {
                /* Some events did not reach Kafka: the client retries, and
                 * the per-item list says which ones are already in. */
                status = 503;
                body   = json_pack("{s:s,s:I,s:I,s:I,s:o}", "error",
                                   "Kafka did not take every event; retry "
                                   "the failed items",
                                   "accepted", (json_int_t)acc, "rejected",
                                   (json_int_t)rej, "failed", (json_int_t)fail,
                                   "results", results_json(b));
                ab_http_req_set_retry_after(b->req,
                                            (unsigned)b->ing->conf->svc.retry_after_s);
        } else if (rej == 0) {
                char *text;
                size_t len;

                if ((text = accepted_body(b, acc, &len))) {
                        ab_http_respond(b->req, 202, "application/json", text,
                                        len, NULL);
                        free(text);
                        return;
                }
                status = 202;
                ids    = json_array();
                for (i = 0; i < b->n; i++) {
                        json_array_append_new(ids,
                                              json_string(b->items[i].id));
                }
                body = json_pack("{s:I,s:o}", "accepted", (json_int_t)acc,
                                 "ids", ids);
        } else {
                /* Nothing taken and only for lack of permission: 403,
                 * so a client tells "not yours" from "malformed". */
                status = acc > 0 ? 207 : forbidden == rej ? 403 : 400;
                body   = json_pack("{s:I,s:I,s:o}", "accepted",
                                   (json_int_t)acc, "rejected",
                                   (json_int_t)rej, "results", results_json(b));
                if (acc == 0) {
                        json_object_set_new(
                            body, "error",
                            json_string(status == 403
                                            ? "no event in the request is "
                                              "allowed for this client"
                                            : "no valid event in the request"));
                }
        }
        if (b->async && body) {
                json_object_set_new(body, "durable", json_false());
        }
        if (!body) {
                ab_http_respond_error(b->req, 500, "out of memory", NULL);
                return;
        }
        ab_http_respond_json(b->req, status, body);
}

static void batch_unref(batch_t *b) {
        if (atomic_fetch_sub(&b->refcnt, 1) != 1) {
                return;
        }
        if (!b->async) {
                answer(b);
                atomic_fetch_sub(&b->ing->inflight, 1);
        }
        batch_free(b);
}

static ab_err_t produce_rejected(ingest_t *ing, const char *path,
                                 json_t *original, const char *raw,
                                 size_t raw_len, ssize_t index,
                                 const char *reason, ab_err_t code,
                                 const char *tenant, const char *client,
                                 int64_t received, void *msg_opaque);
static const char *form_path(ab_form_t form);

/* The broker refused an event as too large after it was queued: the
 * body is gone, so the record keeps what is left (id, index, reason).
 * Best-effort like every record written from a report. */
static void reject_late(batch_t *b, item_t *it, const char *reason) {
        json_t *orig = json_pack("{s:s?}", "id", it->id);

        if (produce_rejected(b->ing, form_path(b->form), orig, NULL, 0,
                             it - b->items, reason, AB_ERR_TOO_LARGE,
                             b->tenant, b->client[0] ? b->client : NULL,
                             b->received, NULL) != AB_OK) {
                ab_metric_inc(AB_METRIC_WITH(b->ing->m_failed, "rejected_record"));
        }
        json_decref(orig);
}

/* The stage counter: the topic names the prefix, and every item of a
 * body carries the batch's receivedAt. */
static void count_accepted(ingest_t *ing, const ab_delivery_t *dr,
                           const batch_t *b) {
        ab_stage_count(ing->stage, 0,
                       ab_stage_topic_prefix(dr->topic,
                                             ing->conf->common.topic_prefix),
                       b->received, 1);
}

void ingest_publish_dr(const ab_delivery_t *dr, void *opaque) {
        ingest_t *ing = opaque;
        item_t *it    = dr->msg_opaque;

        if (!it) {
                /* Our own platform events and best-effort rejects. */
                if (dr->err) {
                        ab_warn("kafka", "own event to %s not delivered: %s",
                                dr->topic ? dr->topic : "?",
                                dr->errstr ? dr->errstr : "");
                        ab_metric_inc(AB_METRIC_WITH(ing->m_failed, "own_event"));
                }
                return;
        }

        if (it->batch->async) {
                /* Already answered: the items are read no more, only the
                 * outcome is counted (and a loss logged). */
                if (dr->err == AB_ERR_TOO_LARGE && it->state == ITEM_PENDING) {
                        reject_late(it->batch, it, dr->errstr ? dr->errstr
                                                              : "record too large");
                } else if (dr->err) {
                        ab_warn("kafka", "async event to %s not delivered: %s",
                                dr->topic ? dr->topic : "?",
                                dr->errstr ? dr->errstr : "");
                        ab_metric_inc(AB_METRIC_WITH(ing->m_failed, "async_delivery"));
                } else if (it->state == ITEM_PENDING) {
                        ab_metric_inc(AB_METRIC_WITH(ing->m_accepted, dr->topic));
                        count_accepted(ing, dr, it->batch);
                }
        } else if (it->state == ITEM_PENDING) {
                if (dr->err == AB_ERR_TOO_LARGE) {
                        /* The broker's size limit: resending the same
                         * event can never work, so no Retry-After. */
                        it->state = ITEM_REJECTED;
                        it->code  = AB_ERR_TOO_LARGE;
                        if (asprintf(&it->error, "kafka: %s",
                                     dr->errstr ? dr->errstr : "record too large") < 0) {
                                it->error = NULL;
                        }
                        reject_late(it->batch, it,
                                    it->error ? it->error : "record too large");
                } else if (dr->err) {
                        it->state = ITEM_FAILED;
                        if (asprintf(&it->error, "kafka: %s",
                                     dr->errstr ? dr->errstr : "delivery failed") < 0) {
                                it->error = NULL;
                        }
                        ab_metric_inc(AB_METRIC_WITH(ing->m_failed, "delivery"));
                } else {
                        it->state = ITEM_ACCEPTED;
                        ab_metric_inc(AB_METRIC_WITH(ing->m_accepted, dr->topic));
                        count_accepted(ing, dr, it->batch);
                }
        } else if (it->state == ITEM_REJECTED && dr->err) {
                /* The item is answered as rejected either way; losing its
                 * record only loses the downstream count, so say so. */
                ab_warn("kafka", "rejected-item record not delivered to %s: %s",
                        dr->topic, dr->errstr ? dr->errstr : "");
                ab_metric_inc(AB_METRIC_WITH(ing->m_failed, "rejected_record"));
        }
        batch_unref(it->batch);
}

/* Writes the rejected item, with its reason, to <prefix>rejected. */
static ab_err_t produce_rejected(ingest_t *ing, const char *path,
                                 json_t *original, const char *raw,
                                 size_t raw_len, ssize_t index,
                                 const char *reason, ab_err_t code,
                                 const char *tenant, const char *client,
                                 int64_t received, void *msg_opaque) {
        ab_record_failure_t f;
        char *val;
        size_t len;
        char errstr[256];
        rd_kafka_headers_t *hdrs;
        ab_err_t err;

        ab_record_failure_init(&f, AB_RECORD_REJECTED);
        f.reason            = reason;
        f.code              = ab_err2name(code);
        f.path              = path;
        f.tenant            = tenant;
        f.client            = client;
        /* Room for the headers: a rejection too large for Kafka is
         * written cut, never dropped. */
        f.max_len           = ing->conf->message_max_bytes > 4096
                                  ? ing->conf->message_max_bytes - 2048
                                  : ing->conf->message_max_bytes;
        f.received_at_ms    = received;
        f.index             = index;
        f.original          = original;
        f.original_text     = original ? NULL : raw;
        f.original_text_len = raw_len;
        val = ab_record_failure_encode(&f, &len, errstr, sizeof(errstr));
        if (!val) {
                return AB_ERR_NOMEM;
        }
        hdrs = ab_record_failure_headers(&f);
        err  = ab_producer_produce(ing->producer, ing->topics.rejected, tenant,
                                   tenant ? strlen(tenant) : 0, val, len, hdrs,
                                   0, msg_opaque, errstr, sizeof(errstr));
        if (err) {
                rd_kafka_headers_destroy(hdrs);
        }
        free(val);
        ab_metric_inc(AB_METRIC_WITH(ing->m_rejected, ab_err2name(code)));
        return err;
}

ab_err_t ingest_produce(ingest_t *ing, const ab_envelope_t *env,
                        void *msg_opaque, char *errstr, size_t errstr_size) {
        char stackbuf[4096];
        char topicbuf[256];
        char *buf = stackbuf;
        size_t len;
        const char *topic;
        ab_err_t err;

        topic = ingest_topic(ing, env, topicbuf, sizeof(topicbuf));
        if (!topic) {
                ab_errstr_set(errstr, errstr_size,
                              "name: no topic for prefix \"%s\"", env->prefix);
                return AB_ERR_INVALID;
        }
        err = ab_avro_encode(ing->codec, env, buf, sizeof(stackbuf), &len,
                             errstr, errstr_size);
        if (err == AB_ERR_TOO_LARGE) {
                /* Rare: payloads above 4 KiB take one heap buffer. */
                buf = malloc(len);
                if (!buf) {
                        return AB_ERR_NOMEM;
                }
                err = ab_avro_encode(ing->codec, env, buf, len, &len, errstr,
                                     errstr_size);
        }
        if (!err) {
                err = ab_cloudevents_produce(ing->producer, topic, env,
                                                   buf, len, msg_opaque,
                                                   errstr, errstr_size);
        }
        if (buf != stackbuf) {
                free(buf);
        }
        return err;
}

static void texts_free(ab_json_text_t *t, ab_json_text_t *stack) {
        if (t != stack) {
                free(t);
        }
}

static const char *form_path(ab_form_t form) {
        return form == AB_FORM_BUS ? "/bus/events" : "/events/ingest";
}

/* Whole-body failures: answered at once, recorded best-effort. */
static void reject_body(ingest_t *ing, ab_http_req_t *req, ab_form_t form,
                        ab_err_t err, const char *errstr, json_t *parsed,
                        const char *raw, size_t raw_len, const char *tenant,
                        const char *client) {
        if (err != AB_ERR_TOO_LARGE) {
                produce_rejected(ing, form_path(form), parsed, raw, raw_len, -1,
                                 errstr, err, tenant, client, ab_time_now_ms(),
                                 NULL);
        } else {
                ab_metric_inc(AB_METRIC_WITH(ing->m_rejected, ab_err2name(err)));
        }
        ab_http_respond_error(req, ab_err2http(err), errstr, NULL);
}

void ingest_publish(ingest_t *ing, ab_http_req_t *req, ab_form_t form,
                    const char *tenant, const ingest_client_t *client,
                    int async) {
        const char *cname = client ? ingest_client_name(client) : NULL;
        const char *text;
        size_t len, n, i;
        json_t *body;
        batch_t *b;
        ab_err_t err;
        char errstr[512];
        ab_envelope_ctx_t ctx;
        ab_envelope_t env;
        int64_t received;
        int stop = 0;
        ab_json_text_t ptexts_stack[16];
        ab_json_text_t *ptexts = NULL;
        char *wtext;
        size_t wlen;

        text = ab_http_req_body(req, &len);
        /* text is released below once parsed: not used after that. */
        body = ab_envelope_json_parse(text, len, &ing->limits, &err, errstr,
                                      sizeof(errstr));
        if (!body) {
                reject_body(ing, req, form, err, errstr, NULL, text, len,
                            tenant, cname);
                return;
        }
        err = ab_envelope_batch_check(body, &ing->limits, &n, errstr,
                                      sizeof(errstr));
        if (err) {
                ab_http_req_body_release(req);
                reject_body(ing, req, form, err, errstr, body, NULL, 0, tenant,
                            cname);
                json_decref(body);
                return;
        }
        /* Each payload's text as sent (the tree would re-print 19.99 as
         * 19.989999999999998), compacted in place in the body, which is
         * therefore held until every item is produced. */
        ptexts = n <= sizeof(ptexts_stack) / sizeof(ptexts_stack[0])
                     ? ptexts_stack
                     : calloc(n, sizeof(*ptexts));
        wtext = ab_http_req_body_writable(req, &wlen);
        if (!ptexts || !wtext ||
            ab_json_member_texts(wtext, wlen, "payload", ptexts, n)) {
                /* Never for a body the parser took, or out of memory: the
                 * tree is the fallback. */
                if (ptexts != ptexts_stack) {
                        free(ptexts);
                }
                ptexts = NULL;
        }
        ab_metric_observe(ing->m_batch_size, (double)n);

        b = calloc(1, sizeof(*b) + n * sizeof(item_t));
        if (b) {
                b->pool = malloc(n * ((size_t)ing->conf->max_id_len + 1));
        }
        if (!b || !b->pool) {
                free(b);
                texts_free(ptexts, ptexts_stack);
                json_decref(body);
                ab_http_req_body_release(req);
                ab_http_respond_error(req, 500, "out of memory", NULL);
                return;
        }
        b->ing   = ing;
        b->req   = req;
        b->async = async;
        b->form  = form;
        b->n     = n;
        snprintf(b->client, sizeof(b->client), "%s", cname ? cname : "");
        b->tenant = tenant ? strdup(tenant) : NULL;
        /* The producing thread's own reference. */
        atomic_init(&b->refcnt, 1);

        /* Suspend before the first produce: a report may come back before
         * this handler returns, and must find the request suspended. */
        if (!async) {
                if (ab_http_req_suspend(req) != AB_OK) {
                        batch_free(b);
                        texts_free(ptexts, ptexts_stack);
                        json_decref(body);
                        ab_http_req_body_release(req);
                        ab_http_respond_error(req, 500,
                                              "cannot suspend request", NULL);
                        return;
                }
                atomic_fetch_add(&ing->inflight, 1);
        }

        memset(&ctx, 0, sizeof(ctx));
        ctx.catalog          = ing->catalog;
        ctx.limits           = &ing->limits;
        ctx.form             = form;
        ctx.tenant_header    = tenant;
        ctx.allowed_prefixes = ing->conf->allow_unknown_prefixes;
        received             = ab_time_now_ms();
        ctx.now_ms           = received;
        b->received          = received;

        memset(&env, 0, sizeof(env));
        for (i = 0; i < n; i++) {
                item_t *it = &b->items[i];
                json_t *item = ab_envelope_batch_item(body, i);

                it->batch = b;
                if (stop) {
                        it->state = ITEM_FAILED;
                        it->error = strdup("kafka: producer queue full");
                        continue;
                }
                err = ab_envelope_from_json(&env, item, &ctx, errstr,
                                            sizeof(errstr));
                if (!err && !env.entry &&
                    !ingest_unknown_prefix_take(ing, env.prefix)) {
                        ab_errstr_set(errstr, sizeof(errstr),
                                      "name: prefix \"%s\" is one more "
                                      "than MAX_UNKNOWN_PREFIXES (%d) allows",
                                      env.prefix,
                                      ing->conf->max_unknown_prefixes);
                        ab_envelope_clear(&env);
                        err = AB_ERR_INVALID;
                }
                if (!err && client && !ingest_client_allows(client, env.name, env.prefix)) {
                        ab_errstr_set(errstr, sizeof(errstr),
                                      "name: \"%s\" is not allowed for client "
                                      "\"%s\"",
                                      env.name, cname);
                        ab_envelope_clear(&env);
                        err = AB_ERR_FORBIDDEN;
                }
                if (!err && ab_envelope_source_reserved(env.source)) {
                        /* Consumers tell the bus's own security and core
                         * events by their source: a client may not. */
                        ab_errstr_set(errstr, sizeof(errstr),
                                      "source: \"%s\" is reserved for "
                                      "aetherbus's own events",
                                      env.source);
                        ab_envelope_clear(&env);
                        err = AB_ERR_FORBIDDEN;
                }
                if (err) {
                        const char *t;
                        json_t *cid;
rejected:
                        t = tenant;

                        if (!t && json_is_object(item) &&
                            (cid = json_object_get(item, "companyId")) &&
                            json_is_string(cid)) {
                                t = json_string_value(cid);
                        }
                        it->state = ITEM_REJECTED;
                        it->code  = err;
                        it->error = strdup(errstr);
                        if (json_is_object(item) &&
                            json_is_string(json_object_get(item, "id"))) {
                                it->id = keep_id(b, json_string_value(
                                                        json_object_get(item, "id")));
                        }
                        atomic_fetch_add(&b->refcnt, 1);
                        if (produce_rejected(ing, form_path(form), item, NULL, 0,
                                             (ssize_t)i, errstr, err, t,
                                             cname, received, it) != AB_OK) {
                                atomic_fetch_sub(&b->refcnt, 1);
                                ab_metric_inc(AB_METRIC_WITH(ing->m_failed,
                                                             "rejected_record"));
                        }
                        continue;
                }
                if (ptexts && ptexts[i].p) {
                        /* The limit holds for the text as sent too. */
                        if (ptexts[i].len > ing->limits.max_payload_bytes) {
                                ab_errstr_set(errstr, sizeof(errstr),
                                              "payload: %zu bytes as sent is "
                                              "over the limit of %zu bytes",
                                              ptexts[i].len,
                                              ing->limits.max_payload_bytes);
                                ab_envelope_clear(&env);
                                err = AB_ERR_TOO_LARGE;
                                goto rejected;
                        }
                        env.payload_json     = ptexts[i].p;
                        env.payload_json_len = ptexts[i].len;
                }
                ab_envelope_set_received(&env, received);
                env.auth_type = client || ing->conf->ingest_token
                                    ? "api_key" : "unauthenticated";
                env.auth_id   = cname;
                it->id    = keep_id(b, env.id);
                it->state = ITEM_PENDING;
                atomic_fetch_add(&b->refcnt, 1);
                err = ingest_produce(ing, &env, it, errstr, sizeof(errstr));
                ab_envelope_clear(&env);
                if (err) {
                        atomic_fetch_sub(&b->refcnt, 1);
                        it->error = strdup(errstr);
                        if (ab_err2http(err) < 500) {
                                /* The event's own fault (too large, a value
                                 * the encoder refuses, ...): permanent, a
                                 * retry cannot fix it, so the item is
                                 * rejected, never a 503. */
                                it->state = ITEM_REJECTED;
                                it->code  = err;
                                atomic_fetch_add(&b->refcnt, 1);
                                if (produce_rejected(ing, form_path(form), item,
                                                     NULL, 0, (ssize_t)i,
                                                     errstr, err, b->tenant,
                                                     cname, received,
                                                     it) != AB_OK) {
                                        atomic_fetch_sub(&b->refcnt, 1);
                                        ab_metric_inc(AB_METRIC_WITH(
                                            ing->m_failed, "rejected_record"));
                                }
                                continue;
                        }
                        it->state = ITEM_FAILED;
                        if (err == AB_ERR_UNAVAILABLE) {
                                /* Backpressure: stop here, the client
                                 * retries what failed after Retry-After. */
                                stop = 1;
                                ab_metric_inc(AB_METRIC_WITH(ing->m_failed,
                                                             "queue_full"));
                        } else {
                                ab_metric_inc(AB_METRIC_WITH(ing->m_failed,
                                                             "produce"));
                        }
                }
        }
        json_decref(body);
        texts_free(ptexts, ptexts_stack);
        /* Everything is produced: the held request need not keep its
         * body while it waits for Kafka. */
        ab_http_req_body_release(req);

        if (async) {
                /* Answer now from what was queued; reports only count. */
                answer(b);
                b->req = NULL;
        }
        batch_unref(b);
}
