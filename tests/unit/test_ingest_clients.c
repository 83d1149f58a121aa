/* aetherbus - Apache-2.0
 *
 * ingest_clients: parsing of INGEST_CLIENTS_FILE, bad files, key match,
 * allow lists, the token bucket (clock injected) and the table swap.
 */
#include <criterion/criterion.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "ingest_clients.h"

static void hex_of(const char *key, char *out) {
        unsigned char sha[SHA256_DIGEST_LENGTH];
        size_t i;

        SHA256((const unsigned char *)key, strlen(key), sha);
        for (i = 0; i < sizeof(sha); i++) {
                sprintf(out + 2 * i, "%02x", sha[i]);
        }
}

static ingest_clients_t *two(double rate, double burst) {
        char h1[65], h2[65], text[1024], errstr[256];
        ingest_clients_t *tbl;

        hex_of("key-one", h1);
        hex_of("key-two", h2);
        snprintf(text, sizeof(text),
                 "[{\"name\":\"shop\",\"keySha256\":\"%s\","
                 "\"allow\":[\"commerce.\",\"core.ping\"],"
                 "\"ratePerSec\":%g,\"burst\":%g},"
                 "{\"name\":\"ops\",\"keySha256\":\"%s\",\"allow\":[\"*\"],"
                 "\"ratePerSec\":100,\"burst\":100}]",
                 h1, rate, burst, h2);
        tbl = ingest_clients_parse(text, strlen(text), errstr, sizeof(errstr));
        cr_assert(tbl, "%s", errstr);
        return tbl;
}

Test(ingest_clients, parses_a_valid_file) {
        ingest_clients_t *tbl = two(5, 10);

        cr_assert_eq(ingest_clients_count(tbl), 2);
        ingest_clients_destroy(tbl);
}

Test(ingest_clients, rejects_bad_files_naming_the_field) {
        static const struct {
                const char *text;
                const char *want;
        } rows[] = {
            {"{", "line"},
            {"{}", "list"},
            {"[]", "list"},
            {"[1]", "[0]: must be an object"},
            {"[{\"keySha256\":\"00\"}]", "[0].name"},
            {"[{\"name\":\"a b\"}]", "[0].name"},
            {"[{\"name\":\"a\",\"keySha256\":\"zz\"}]", "keySha256"},
            {"[{\"name\":\"a\",\"keySha256\":\"" /* 64 hex */
             "00000000000000000000000000000000"
             "00000000000000000000000000000000\",\"allow\":\"x\"}]",
             "allow"},
            {"[{\"name\":\"a\",\"keySha256\":\""
             "00000000000000000000000000000000"
             "00000000000000000000000000000000\",\"allow\":[\"\"]}]",
             "allow[0]"},
            {"[{\"name\":\"a\",\"keySha256\":\""
             "00000000000000000000000000000000"
             "00000000000000000000000000000000\",\"allow\":[],"
             "\"ratePerSec\":0,\"burst\":1}]",
             "ratePerSec"},
            {"[{\"name\":\"a\",\"keySha256\":\""
             "00000000000000000000000000000000"
             "00000000000000000000000000000000\",\"allow\":[],"
             "\"ratePerSec\":1,\"burst\":0.5}]",
             "burst"},
            {"[{\"name\":\"a\",\"keySha256\":\""
             "00000000000000000000000000000000"
             "00000000000000000000000000000000\",\"allow\":[],"
             "\"ratePerSec\":1,\"burst\":1},"
             "{\"name\":\"a\",\"keySha256\":\""
             "00000000000000000000000000000000"
             "00000000000000000000000000000001\",\"allow\":[],"
             "\"ratePerSec\":1,\"burst\":1}]",
             "appears twice"},
            {"[{\"name\":\"a\",\"keySha256\":\""
             "00000000000000000000000000000000"
             "00000000000000000000000000000000\",\"allow\":[],"
             "\"ratePerSec\":1,\"burst\":1},"
             "{\"name\":\"b\",\"keySha256\":\""
             "00000000000000000000000000000000"
             "00000000000000000000000000000000\",\"allow\":[],"
             "\"ratePerSec\":1,\"burst\":1}]",
             "same key"},
        };
        char errstr[256];
        size_t i;

        for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                errstr[0] = '\0';
                cr_expect_null(ingest_clients_parse(rows[i].text,
                                                    strlen(rows[i].text),
                                                    errstr, sizeof(errstr)),
                               "row %zu parsed", i);
                cr_expect(strstr(errstr, rows[i].want), "row %zu: \"%s\"", i,
                          errstr);
        }
}

Test(ingest_clients, load_names_the_missing_file) {
        char errstr[256];

        cr_assert_null(ingest_clients_load("/nonexistent/clients.json", errstr,
                                           sizeof(errstr)));
        cr_assert(strstr(errstr, "/nonexistent/clients.json"), "%s", errstr);
}

Test(ingest_clients, matches_the_key_by_digest) {
        ingest_clients_t *tbl = two(5, 10);

        cr_assert_str_eq(ingest_client_name(ingest_clients_match(tbl, "key-one")),
                         "shop");
        cr_assert_str_eq(ingest_client_name(ingest_clients_match(tbl, "key-two")),
                         "ops");
        cr_assert_null(ingest_clients_match(tbl, "key-on"));
        cr_assert_null(ingest_clients_match(tbl, ""));
        cr_assert_null(ingest_clients_match(tbl, NULL));
        ingest_clients_destroy(tbl);
}

Test(ingest_clients, allow_takes_names_and_dotted_prefixes) {
        ingest_clients_t *tbl = two(5, 10);
        const ingest_client_t *shop = ingest_clients_match(tbl, "key-one");
        const ingest_client_t *ops  = ingest_clients_match(tbl, "key-two");

        cr_assert(ingest_client_allows(shop, "commerce.order.created", NULL));
        cr_assert(ingest_client_allows(shop, "core.ping", NULL));
        cr_assert_not(ingest_client_allows(shop, "core.pingx", NULL));
        cr_assert_not(ingest_client_allows(shop, "commercex.order", NULL));
        cr_assert_not(ingest_client_allows(shop, "security.rbac.denied", NULL));
        cr_assert(ingest_client_allows(ops, "security.rbac.denied", NULL));
        /* business names carry no dot: their routing prefix decides */
        cr_assert(ingest_client_allows(shop, "ProductViewed", "commerce"));
        cr_assert_not(ingest_client_allows(shop, "ProductViewed", "commercex"));
        cr_assert_not(ingest_client_allows(shop, "ProductViewed", "comm"));
        cr_assert_not(ingest_client_allows(shop, "LeadCreated", "crm"));
        ingest_clients_destroy(tbl);
}

Test(ingest_clients, bucket_spends_burst_then_refills_at_rate) {
        ingest_clients_t *tbl = two(2, 3);
        const ingest_client_t *c = ingest_clients_match(tbl, "key-one");
        unsigned ra = 0;
        int i;

        for (i = 0; i < 3; i++) {
                cr_assert(ingest_client_take(c, 1000, &ra), "token %d", i);
        }
        cr_assert_not(ingest_client_take(c, 1000, &ra));
        cr_assert_eq(ra, 1);
        /* 2/s: one token back after 500 ms, not before. */
        cr_assert_not(ingest_client_take(c, 1499, &ra));
        cr_assert(ingest_client_take(c, 1500, &ra));
        /* Never more than the burst, however long the pause. */
        for (i = 0; i < 3; i++) {
                cr_assert(ingest_client_take(c, 100000, &ra), "token %d", i);
        }
        cr_assert_not(ingest_client_take(c, 100000, &ra));
        ingest_clients_destroy(tbl);
}

Test(ingest_clients, retry_after_covers_a_slow_rate) {
        ingest_clients_t *tbl = two(0.1, 1);
        const ingest_client_t *c = ingest_clients_match(tbl, "key-one");
        unsigned ra = 0;

        cr_assert(ingest_client_take(c, 0, &ra));
        cr_assert_not(ingest_client_take(c, 0, &ra));
        cr_assert_eq(ra, 10);
        ingest_clients_destroy(tbl);
}

Test(ingest_clients, swap_keeps_old_table_for_its_holders) {
        ingest_clients_holder_t *h = ingest_clients_holder_new(two(1, 1));
        ingest_clients_t *held, *now;
        const ingest_client_t *c;

        held = ingest_clients_get(h);
        cr_assert(ingest_client_take(ingest_clients_match(held, "key-one"), 0,
                                     NULL));
        ingest_clients_swap(h, two(1, 5));
        /* The old table stays valid for whoever holds it. */
        cr_assert_str_eq(ingest_client_name(ingest_clients_match(held, "key-one")),
                         "shop");
        ingest_clients_put(h, held);
        now = ingest_clients_get(h);
        c   = ingest_clients_match(now, "key-one");
        /* The spent token is not handed back by the reload. */
        cr_assert_not(ingest_client_take(c, 0, NULL));
        ingest_clients_put(h, now);
        ingest_clients_holder_destroy(h);
}
