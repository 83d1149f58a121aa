/* aetherbus - Apache-2.0
 *
 * ab_itest: the harness every integration test uses (Criterion). Owns the
 * broker under test (a spawned aetherbus-devbroker, or the real Kafka of
 * tools/kafka, picked by AB_TEST_KAFKA), per-test topics, reading Kafka
 * back, spawning and stopping the service binaries, and an HTTP client.
 * What a test checks stays in the test.
 *
 * Failure policy: helpers a test cannot go on without (broker start,
 * topic creation, producing test data) abort the test with a message
 * (cr_assert_fail). Helpers whose outcome is what a test checks (waits,
 * process exit, HTTP, consuming) return it. Every wait is bounded; when a
 * wait on a process fails, the tail of its stderr is printed.
 *
 * Broker selection (AB_TEST_KAFKA):
 *   devbroker (default)  spawn AB_BIN_DIR/aetherbus-devbroker --listen
 *                        127.0.0.1:0 --control for each broker start
 *   kafka                KAFKA_BROKERS when set (an existing cluster),
 *                        else the bootstrap address tools/kafka/kafka.sh
 *                        wrote to AB_KAFKA_STATE_DIR/bootstrap
 */
#ifndef AB_ITEST_H
#define AB_ITEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <librdkafka/rdkafka.h>

/* ------------------------------------------------------------------ */
/* Bounded waits                                                       */
/* ------------------------------------------------------------------ */

/** @returns a monotonic clock in ms. */
int64_t ab_itest_now_ms(void);

/** @returns the deadline \p timeout_ms from now, for ab_itest_tick(). */
int64_t ab_itest_deadline(int timeout_ms);

/**
 * @brief One step of a bounded poll:
 *        `for (dl = ab_itest_deadline(5000); !cond;)
 *                 cr_assert(ab_itest_tick(dl), "...");`
 * @returns 0 once \p deadline has passed, else waits 10 ms and returns 1.
 */
int ab_itest_tick(int64_t deadline);

/**
 * @brief Scales a timeout for slow builds: AB_ITEST_TIMEOUT_SCALE
 *        (a float, default 1; sanitizer runs may set 3).
 * @returns \p timeout_ms scaled.
 */
int ab_itest_timeout(int timeout_ms);

/* ------------------------------------------------------------------ */
/* The broker under test                                               */
/* ------------------------------------------------------------------ */

typedef struct ab_itest_broker_s ab_itest_broker_t;

/**
 * @brief Starts (devbroker) or connects to (kafka) the broker that
 *        AB_TEST_KAFKA selects and checks it answers metadata. Aborts the
 *        test with the reason when it cannot.
 * @returns the broker; ab_itest_broker_stop() it.
 */
ab_itest_broker_t *ab_itest_broker_start(void);

/**
 * @brief Spawns a devbroker whatever AB_TEST_KAFKA says, with \p args
 *        (NULL-terminated, may be NULL) after "--listen 127.0.0.1:0
 *        --control"; a later --listen wins. Aborts the test on failure.
 * @returns the broker; ab_itest_broker_stop() it.
 */
ab_itest_broker_t *ab_itest_devbroker_start(const char *const *args);

/**
 * @brief Stops a spawned devbroker (SIGTERM, bounded wait) and frees.
 *        NULL is a no-op.
 * @returns the devbroker's exit status (see ab_itest_proc_stop()), 0 for
 *          an external broker.
 */
int ab_itest_broker_stop(ab_itest_broker_t *b);

/** @returns the bootstrap servers ("127.0.0.1:40123"). */
const char *ab_itest_broker_bootstrap(const ab_itest_broker_t *b);

/** @returns "devbroker" or "kafka": name it in messages. */
const char *ab_itest_broker_kind(const ab_itest_broker_t *b);

/** @returns 1 for a devbroker this harness spawned, else 0. */
int ab_itest_broker_is_devbroker(const ab_itest_broker_t *b);

/** @returns the spawned devbroker's pid, or -1. */
pid_t ab_itest_broker_pid(const ab_itest_broker_t *b);

/**
 * @brief Sends one control command to a spawned devbroker ("down",
 *        "up", "create TOPIC N", "errors Produce NOT_LEADER_FOR_PARTITION",
 *        see aetherbus-devbroker --help) and reads its answer into
 *        \p reply (may be NULL).
 * @returns 0 when it answered "OK ...", -1 otherwise (or not a devbroker).
 */
int ab_itest_broker_control(ab_itest_broker_t *b, const char *cmd,
                            char *reply, size_t reply_size);

/**
 * @returns the broker kind this run selects ("devbroker" or "kafka"),
 *          from AB_TEST_KAFKA, without starting anything.
 */
const char *ab_itest_kind(void);

/**
 * @brief Skips the running test, saying why, unless this run's broker is
 *        \p kind: a test that cannot run on one broker says so by name.
 *        Call it first in the test body.
 */
void ab_itest_require_kind(const char *kind, const char *why);

/**
 * @returns a librdkafka client of \p b (owned by \p b) for metadata,
 *          watermarks and admin calls.
 */
rd_kafka_t *ab_itest_broker_client(ab_itest_broker_t *b);

/* ------------------------------------------------------------------ */
/* Topics                                                              */
/* ------------------------------------------------------------------ */

/**
 * @brief Writes a fresh topic prefix, unique per call and process
 *        ("t1234r5f3a9c01."), into \p out (>= 32 bytes).
 */
void ab_itest_prefix(char *out, size_t out_size);

/**
 * @brief Creates \p topics with \p partitions each (Admin API on a real
 *        broker, the control channel on a devbroker); an existing topic
 *        is fine. Waits until metadata shows every partition with a
 *        leader. Aborts the test on failure.
 */
void ab_itest_topics_create(ab_itest_broker_t *b, const char *const *topics,
                            size_t topic_cnt, int partitions);

/** @brief ab_itest_topics_create() for one topic. */
void ab_itest_topic_create(ab_itest_broker_t *b, const char *topic,
                           int partitions);

/**
 * @brief Runs tools/kafka/kafka.sh MODE [OPT] STATE_DIR (a private real
 *        broker of the test's own: "start", "stop", "stop --keep",
 *        "start --resume"), with a 256 MiB heap; the BROKERS= line of its
 *        output goes into \p brokers (may be NULL).
 * @returns its exit status.
 */
int ab_itest_kafka_sh(const char *state_dir, const char *mode,
                      const char *opt, char *brokers, size_t brokers_size);

/**
 * @brief Produces to <prefix>deadletter what the sink writes when it gives
 *        up on event \p id (HTTP 400 from the sink; source topic
 *        <prefix>commerce, partition 0, offset 0), the event's original
 *        made of \p name, \p source, \p company and \p occurred.
 */
/**
 * @brief Produces the record ingest would write for the envelope \p json
 *        (ingest form, a catalog name), received at \p received_ms (its
 *        receivedAt and the record's timestamp): events "from the past"
 *        for retention and time-window tests. Asserts on any error.
 */
void ab_itest_produce_event_at(ab_itest_broker_t *b, const char *topic,
                               const char *json, int64_t received_ms);

void ab_itest_produce_deadletter(ab_itest_broker_t *b, const char *prefix,
                                 const char *id, const char *name,
                                 const char *source, const char *company,
                                 const char *occurred);

/**
 * @brief Makes an audit signing key for \p origin at \p path with the
 *        real `aetherbus-audit keygen`. Aborts the test on failure.
 */
void ab_itest_audit_keygen(const char *origin, const char *path);

/**
 * @brief Sets topic config \p name to \p value (AlterConfigs; the real
 *        Kafka only: the mock has no Admin API for it). Aborts the test
 *        on failure.
 */
void ab_itest_topic_config(ab_itest_broker_t *b, const char *topic,
                           const char *name, const char *value);

/**
 * @brief Creates <prefix><p> for every catalog prefix plus
 *        <prefix>rejected and <prefix>deadletter.
 * @returns how many topics that is.
 */
size_t ab_itest_catalog_topics_create(ab_itest_broker_t *b,
                                      const char *prefix, int partitions);

/**
 * @brief Counts what arrived on \p topic by offsets: the sum of the
 *        partitions' high watermarks (DESIGN.md: never count the mock by
 *        consuming).
 *        A failed metadata or ListOffsets round is asked again for up
 *        to 15 s.
 * @returns the count, or -1 when the topic cannot be read.
 */
int64_t ab_itest_topic_count(ab_itest_broker_t *b, const char *topic);

/** @brief ab_itest_topic_count() in one round: -1 at the first failure
 *         (a topic that does not exist, or a broker that missed a beat). */
int64_t ab_itest_topic_count_now(ab_itest_broker_t *b, const char *topic);

/**
 * @brief Polls ab_itest_topic_count() until it reaches \p want or
 *        \p timeout_ms passes.
 * @returns the last count seen.
 */
int64_t ab_itest_topic_wait_count(ab_itest_broker_t *b, const char *topic,
                                  int64_t want, int timeout_ms);

/* ------------------------------------------------------------------ */
/* Records                                                             */
/* ------------------------------------------------------------------ */

typedef struct ab_itest_header_s {
        char *name;
        char *value;     /**< NUL-terminated copy; NULL for a null value */
        size_t value_len;
} ab_itest_header_t;

/** One record read back; every string is a NUL-terminated copy. */
typedef struct ab_itest_record_s {
        char *topic;
        int32_t partition;
        int64_t offset;
        int64_t timestamp;  /**< ms since the epoch, -1 when absent */
        char *key;          /**< NULL when absent */
        size_t key_len;
        char *value;        /**< NULL when absent */
        size_t value_len;
        ab_itest_header_t *headers;
        size_t header_cnt;
} ab_itest_record_t;

/** @brief Copies \p msg into \p rec (ab_itest_record_clear() it). */
void ab_itest_record_from_msg(ab_itest_record_t *rec,
                              const rd_kafka_message_t *msg);

/** @brief Frees what \p rec holds and zeroes it. */
void ab_itest_record_clear(ab_itest_record_t *rec);

/**
 * @returns the value of the first header \p name of \p rec, or NULL.
 */
const char *ab_itest_record_header(const ab_itest_record_t *rec,
                                   const char *name);

/**
 * @brief Reads \p topic from the beginning of every partition, without a
 *        group, until \p want records came or \p timeout_ms passed.
 * @returns the number read; *recsp is the array (ab_itest_records_free()
 *          it; NULL when none), in arrival order.
 */
size_t ab_itest_consume(ab_itest_broker_t *b, const char *topic, size_t want,
                        int timeout_ms, ab_itest_record_t **recsp);

/** @brief Frees \p cnt records from ab_itest_consume(); NULL is a no-op. */
void ab_itest_records_free(ab_itest_record_t *recs, size_t cnt);

/**
 * @brief Produces one record and waits for its delivery (test data for
 *        consumers). \p key may be NULL; \p headers are NULL-terminated
 *        name, value pairs or NULL. Aborts the test on failure.
 */
void ab_itest_produce(ab_itest_broker_t *b, const char *topic,
                      const char *key, const void *value, size_t value_len,
                      const char *const *headers);

/** @brief ab_itest_produce() with the record's Kafka timestamp (ms since
 *         the epoch; 0: now). */
void ab_itest_produce_at(ab_itest_broker_t *b, const char *topic,
                         const char *key, const void *value, size_t value_len,
                         const char *const *headers, int64_t timestamp_ms);

/* ------------------------------------------------------------------ */
/* Processes                                                           */
/* ------------------------------------------------------------------ */

typedef struct ab_itest_proc_s ab_itest_proc_t;

/**
 * @returns the harness's temporary directory for this process (created
 *          on first use, removed at exit unless AB_ITEST_KEEP is set).
 */
const char *ab_itest_tmpdir(void);

/**
 * @brief Spawns \p bin (a name in AB_BIN_DIR, or a path with a '/') with
 *        \p args (NULL-terminated, without argv[0], may be NULL) and the
 *        test's environment plus \p env ("NAME=value", NULL-terminated,
 *        may be NULL; replaces a variable of the same name). stdin is
 *        /dev/null, stdout and stderr go to files in ab_itest_tmpdir().
 *        The child is killed if the test process dies.
 * @returns the process, or NULL when it could not be spawned (the test
 *          fails on its own assert). Free with ab_itest_proc_destroy().
 */
ab_itest_proc_t *ab_itest_proc_start(const char *bin, const char *const *args,
                                     const char *const *env);

/** @returns the pid of \p p. */
pid_t ab_itest_proc_pid(const ab_itest_proc_t *p);

/** @returns \p p's resident memory (VmRSS of /proc/<pid>/status) in
 *           KiB, or -1 when it cannot be read. */
long ab_itest_proc_rss_kb(const ab_itest_proc_t *p);

/** @returns the path of the file holding \p p's stderr. */
const char *ab_itest_proc_log_path(const ab_itest_proc_t *p);

/** @returns the path of the file holding \p p's stdout. */
const char *ab_itest_proc_out_path(const ab_itest_proc_t *p);

/** @returns the whole of file \p path (malloc'ed, free() it; "" when it
 *           cannot be read), never NULL. */
char *ab_itest_file_read(const char *path);

/** @returns \p p's stderr so far (malloc'ed, free() it), never NULL. */
char *ab_itest_proc_log(const ab_itest_proc_t *p);

/** @brief Prints the last 4 KiB of \p p's stderr to the test's stderr. */
void ab_itest_proc_dump_log(const ab_itest_proc_t *p);

/**
 * @brief Waits until \p p's stderr contains \p needle.
 * @returns 0, or -1 when \p timeout_ms passed or the process exited first
 *          (its log tail is printed).
 */
int ab_itest_proc_wait_log(ab_itest_proc_t *p, const char *needle,
                           int timeout_ms);

/**
 * @brief Waits until GET http://127.0.0.1:<port>/healthz answers 200.
 * @returns 0, or -1 on timeout or when the process exited (log printed).
 */
int ab_itest_proc_wait_healthz(ab_itest_proc_t *p, int port, int timeout_ms);

/** @returns 1 while \p p runs, 0 once it exited (then it is reaped). */
int ab_itest_proc_alive(ab_itest_proc_t *p);

/** @brief Sends \p sig to \p p. @returns 0 or -1. */
int ab_itest_proc_signal(ab_itest_proc_t *p, int sig);

/**
 * @brief Waits up to \p timeout_ms for \p p to exit by itself.
 * @returns its status (exit code, or 128 + signal number), or -1 on
 *          timeout (still running).
 */
int ab_itest_proc_wait_exit(ab_itest_proc_t *p, int timeout_ms);

/**
 * @brief SIGTERM, then waits up to \p timeout_ms; past that SIGKILL.
 * @returns the exit status (0 for a clean shutdown; 128 + signal number
 *          when killed by one), or -1 when it had to be SIGKILLed.
 */
int ab_itest_proc_stop(ab_itest_proc_t *p, int timeout_ms);

/** @brief SIGKILL and reap. @returns the status as ab_itest_proc_stop(). */
int ab_itest_proc_kill(ab_itest_proc_t *p);

/** @brief Kills \p p if it still runs and frees; NULL is a no-op. */
void ab_itest_proc_destroy(ab_itest_proc_t *p);

/* ------------------------------------------------------------------ */
/* Network                                                             */
/* ------------------------------------------------------------------ */

/** @returns a TCP port free on 127.0.0.1 right now, or -1. */
int ab_itest_free_port(void);

/**
 * @brief Waits until a TCP connect to \p host:\p port succeeds.
 * @returns 0 or -1 on timeout.
 */
int ab_itest_wait_port(const char *host, int port, int timeout_ms);

/* ------------------------------------------------------------------ */
/* HTTP (libcurl)                                                      */
/* ------------------------------------------------------------------ */

typedef struct ab_itest_http_s {
        long status;          /**< 0 when no response came */
        char *body;           /**< NUL-terminated; "" when empty */
        size_t body_len;
        char *headers;        /**< raw response header block */
        char error[256];      /**< why there was no response */
} ab_itest_http_t;

/**
 * @brief One request. \p headers are "Name: value" strings,
 *        NULL-terminated, may be NULL; \p body may be NULL. 30 s bound,
 *        no proxy.
 * @returns 0 when a response came (see res->status), -1 otherwise
 *          (res->error). ab_itest_http_clear() \p res afterwards.
 */
int ab_itest_http(const char *method, const char *url,
                  const char *const *headers, const char *body,
                  size_t body_len, ab_itest_http_t *res);

/** @brief GET \p url. @returns res->status (0 when no response). */
long ab_itest_http_get(const char *url, ab_itest_http_t *res);

/**
 * @brief POST \p json with content-type application/json plus
 *        \p headers (may be NULL).
 * @returns res->status (0 when no response).
 */
long ab_itest_http_post_json(const char *url, const char *json,
                             const char *const *headers,
                             ab_itest_http_t *res);

/**
 * @brief Finds response header \p name (case-insensitive) in \p res.
 * @returns 0 with the trimmed value in \p out, or -1.
 */
int ab_itest_http_header(const ab_itest_http_t *res, const char *name,
                         char *out, size_t out_size);

/** @brief Frees what \p res holds and zeroes it. */
void ab_itest_http_clear(ab_itest_http_t *res);

/* ------------------------------------------------------------------ */
/* Services and JSON (appended for the service tests)                  */
/* ------------------------------------------------------------------ */

#include <jansson.h>

/**
 * @brief Starts service \p bin (a name in AB_BIN_DIR) against \p b with
 *        KAFKA_BROKERS, TOPIC_PREFIX=\p topic_prefix (may be NULL: not
 *        set), PORT=a free port and then \p env (NULL-terminated, may be
 *        NULL; a later NAME wins), and waits until /healthz answers 200.
 *        Retries on a fresh port when the process exits before that (a
 *        port taken meanwhile). Aborts the test when it cannot start.
 * @returns the process (ab_itest_proc_destroy() it) with *portp set.
 */
ab_itest_proc_t *ab_itest_service_start(ab_itest_broker_t *b, const char *bin,
                                        const char *topic_prefix,
                                        const char *const *env, int *portp);

/**
 * @brief Polls GET http://127.0.0.1:<port><path> until it answers
 *        \p want or \p timeout_ms passes.
 * @returns the last status seen (0 when no response came).
 */
long ab_itest_http_wait_status(int port, const char *path, long want,
                               int timeout_ms);

/**
 * @returns the JSON document of \p res's body, or NULL when it is not
 *          JSON (json_decref() it).
 */
json_t *ab_itest_http_json(const ab_itest_http_t *res);

/**
 * @brief Decodes a record value: an Avro single-object envelope (0xC3
 *        0x01 + fingerprint of schemas/envelope.avsc) or, else, JSON text
 *        (events.rejected records).
 * @returns the document (json_decref() it), or NULL with \p errstr.
 */
json_t *ab_itest_record_json(const ab_itest_record_t *rec, char *errstr,
                             size_t errstr_size);

/**
 * @brief Reads every record \p topic holds now: as many as its high
 *        watermarks count (ab_itest_topic_count(), retried while it fails:
 *        a real broker may not answer ListOffsets for a just-created
 *        topic), within \p timeout_ms.
 * @returns the number read (compare it with the count you expect); *recsp
 *          as ab_itest_consume().
 */
size_t ab_itest_consume_all(ab_itest_broker_t *b, const char *topic,
                            int timeout_ms, ab_itest_record_t **recsp);

/**
 * @returns the first of \p cnt records whose header \p name equals
 *          \p value, or NULL.
 */
const ab_itest_record_t *ab_itest_records_find(const ab_itest_record_t *recs,
                                               size_t cnt, const char *name,
                                               const char *value);

/**
 * @brief Checks that each of \p ids is the value of header \p name (e.g.
 *        "ce_id") of some record in \p recs.
 * @returns how many are missing; *first_missingp (may be NULL) points to
 *          the first missing id (borrowed from \p ids), or NULL.
 */
size_t ab_itest_records_missing(const ab_itest_record_t *recs, size_t cnt,
                                const char *name, const char *const *ids,
                                size_t id_cnt, const char **first_missingp);



/**
 * @brief The usual fixture of a service test: the broker under test, the
 *        catalog's topics (\p partitions each) under a fresh prefix written
 *        to \p prefix, and service \p bin started on them and ready
 *        (/readyz 200 within \p timeout_ms). Aborts the test otherwise.
 * @returns the process with *bp and *portp set.
 */
ab_itest_proc_t *ab_itest_stack_start(const char *bin, int partitions,
                                      const char *const *env, int timeout_ms,
                                      ab_itest_broker_t **bp, char *prefix,
                                      size_t prefix_size, int *portp);

/** @brief Stops what ab_itest_stack_start() started; NULLs both. */
void ab_itest_stack_stop(ab_itest_proc_t **svcp, ab_itest_broker_t **bp);

#endif
