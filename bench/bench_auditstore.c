/* aetherbus - Apache-2.0
 *
 * aetherbus-bench-auditstore: aetherbus-audit's write path without Kafka:
 * N events shaped like bench-consume's preload (own id each, over 100,000
 * companyIds, 3 partitions) written into a fresh EventLog with
 * audit_store_write(), B per transaction with their positions, as the
 * consume loop does for one poll. For a repeatable instruction count
 * under callgrind (bench/consumers measures the service as a whole, with
 * the noise of a shared machine):
 *   valgrind --tool=callgrind aetherbus-bench-auditstore -d /tmp/a.db -n 60000
 * minus the same with -n 10000, divided by 50,000, is the instruction
 * count per event without the start-up. -r P makes P % of the batches a
 * redelivery of the batch before (duplicates: the dedupe path); -c makes
 * every redelivered event differ in its payload (conflicts); -V verifies
 * the file afterwards (every leaf and the tree recomputed); -k appends to
 * an existing file (one an older release wrote). Prints:
 *   rows=N seconds=S rows_per_s=R written=W duplicates=D conflicts=C
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit_store.h"

#define PARTS 3
#define TENANTS 100000
#define BATCH_MAX 4096

static const char payload[] =
    "{\"productId\":\"p1\",\"sku\":\"SKU-001\",\"referrer\":\"search\"}";
static const char payload_other[] =
    "{\"productId\":\"p2\",\"sku\":\"SKU-002\",\"referrer\":\"search\"}";

static double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Event \p i as the audit service makes it from a preloaded record. */
static void event_make(audit_event_t *ev, char *id, size_t id_size,
                       char *company, size_t company_size, long i,
                       int other) {
        snprintf(id, id_size, "b-%012ld", i);
        snprintf(company, company_size, "c_%ld", i % TENANTS);
        memset(ev, 0, sizeof(*ev));
        ev->id             = id;
        ev->name           = "ProductViewed";
        ev->prefix         = "commerce";
        ev->source         = "storefront";
        ev->company_id     = company;
        ev->subject_id     = "p1";
        ev->schema_version = 1;
        ev->occurred_at    = "2026-02-11T20:10:00.000Z";
        ev->received_at_ms = 1770840601000LL + i;
        ev->topic          = "bench.commerce";
        ev->partition      = (int32_t)(i % PARTS);
        ev->offset         = i / PARTS;
        ev->payload        = other ? payload_other : payload;
        ev->payload_len    = other ? sizeof(payload_other) - 1
                                   : sizeof(payload) - 1;
        ev->status         = "accepted";
}

static audit_event_t ev[BATCH_MAX];
static audit_store_outcome_t out[BATCH_MAX];
static char ids[BATCH_MAX][32], companies[BATCH_MAX][32];

static int usage(const char *argv0, int exitcode, const char *reason) {
        FILE *f = exitcode ? stderr : stdout;

        if (reason) {
                fprintf(f, "%s: %s\n\n", argv0, reason);
        }
        fprintf(f,
                "Usage: %s -d DB [-n EVENTS] [-b BATCH] [-r PERCENT] [-c] "
                "[-V] [-k]\n"
                "  -d DB       a fresh EventLog (the file and its -wal/-shm "
                "are removed first)\n"
                "  -k          keep DB: append to the EventLog it holds\n"
                "  -n EVENTS   distinct events (default 100000)\n"
                "  -b BATCH    events per transaction (default 256, at most "
                "%d)\n"
                "  -r PERCENT  batches redelivered once more (default 0)\n"
                "  -c          a redelivered event has another payload "
                "(a conflict)\n"
                "  -V          verify the file afterwards\n",
                argv0, BATCH_MAX);
        return exitcode;
}

int main(int argc, char **argv) {
        audit_store_stats_t sst;
        audit_store_pos_t pos[PARTS];
        audit_store_t *s;
        const char *db = NULL;
        char errstr[512], path[4200];
        long n = 100000, batch = 256, redeliver = 0, i, j, k, cnt;
        long written = 0, dups = 0, conflicts = 0, batches = 0;
        int opt, conflict = 0, verify = 0, keep = 0, again;
        uint64_t size;
        double t0, t1;
        ab_err_t err;

        while ((opt = getopt(argc, argv, "d:n:b:r:cVkh")) != -1) {
                switch (opt) {
                case 'd':
                        db = optarg;
                        break;
                case 'n':
                        n = strtol(optarg, NULL, 10);
                        break;
                case 'b':
                        batch = strtol(optarg, NULL, 10);
                        break;
                case 'r':
                        redeliver = strtol(optarg, NULL, 10);
                        break;
                case 'c':
                        conflict = 1;
                        break;
                case 'V':
                        verify = 1;
                        break;
                case 'k':
                        keep = 1;
                        break;
                case 'h':
                        return usage(argv[0], 0, NULL);
                default:
                        return usage(argv[0], 2, NULL);
                }
        }
        if (!db) {
                return usage(argv[0], 2, "-d is required");
        }
        if (n < 1 || batch < 1 || batch > BATCH_MAX || redeliver < 0 ||
            redeliver > 100) {
                return usage(argv[0], 2, "bad -n, -b or -r");
        }
        if (!keep) {
                unlink(db);
                snprintf(path, sizeof(path), "%s-wal", db);
                unlink(path);
                snprintf(path, sizeof(path), "%s-shm", db);
                unlink(path);
        }
        if (!(s = audit_store_open(db, 0, NULL, errstr, sizeof(errstr)))) {
                fprintf(stderr, "bench-auditstore: %s\n", errstr);
                return 1;
        }
        t0 = now_s();
        for (i = 0; i < n; i += batch) {
                cnt = n - i < batch ? n - i : batch;
                /* a redelivery: the same batch again (a consumer that
                 * restarted before its commit) */
                again = (int)(batches * redeliver % 100 < redeliver);
                for (k = 0; k < 1 + again; k++) {
                        for (j = 0; j < cnt; j++) {
                                event_make(&ev[j], ids[j], sizeof(ids[j]),
                                           companies[j], sizeof(companies[j]),
                                           i + j, k && conflict);
                        }
                        for (j = 0; j < PARTS; j++) {
                                pos[j].topic     = "bench.commerce";
                                pos[j].partition = (int32_t)j;
                                pos[j].next      = (i + cnt) / PARTS + 1;
                        }
                        err = audit_store_write(s, ev, (size_t)cnt, out, pos,
                                                PARTS, errstr, sizeof(errstr));
                        if (err) {
                                fprintf(stderr, "bench-auditstore: %s\n",
                                        errstr);
                                audit_store_close(s);
                                return 1;
                        }
                        for (j = 0; j < cnt; j++) {
                                written += out[j] == AUDIT_STORE_WRITTEN;
                                dups += out[j] == AUDIT_STORE_DUPLICATE;
                                conflicts += out[j] == AUDIT_STORE_CONFLICT;
                        }
                }
                batches++;
        }
        t1 = now_s();
        audit_store_stats(s, &sst);
        printf("rows=%" PRIu64 " seconds=%.3f rows_per_s=%.0f written=%ld "
               "duplicates=%ld conflicts=%ld\n",
               sst.tree_size, t1 - t0, (double)written / (t1 - t0), written,
               dups, conflicts);
        if (verify) {
                if (audit_store_verify(s, 0, NULL, &size, NULL, errstr,
                                       sizeof(errstr)) != AB_OK) {
                        fprintf(stderr, "bench-auditstore: verify: %s\n",
                                errstr);
                        audit_store_close(s);
                        return 1;
                }
                printf("verified=%" PRIu64 "\n", size);
        }
        audit_store_close(s);
        return keep || written == n ? 0 : 1;
}
