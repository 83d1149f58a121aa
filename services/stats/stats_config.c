/* aetherbus - Apache-2.0
 *
 * stats_config: the configuration table of aetherbus-stats.
 */
#include <stddef.h>

#include "stats.h"

static const ab_conf_row_t rows[] = {
    AB_CONF_COMMON_ROWS(stats_conf_t, common, "8081"),
    AB_SERVICE_CONF_ROWS(stats_conf_t, svc, "1"),
    {.env    = "STATS_SKEW_ALLOWANCE_MS",
     .flag   = "skew-allowance-ms",
     .type   = AB_CONF_DURATION,
     .def    = "5m",
     .min    = 0,
     .max    = 3600000,
     .offset = offsetof(stats_conf_t, skew_allowance_ms),
     .help   = "On start the window is rebuilt from records whose Kafka "
               "timestamp is at most 1 h plus this old (late events inside "
               "the hour are then still found)."},
    {.env    = "STATS_FUTURE_ALLOWANCE_MS",
     .flag   = "future-allowance-ms",
     .type   = AB_CONF_DURATION,
     .def    = "5m",
     .min    = 0,
     .max    = 3600000,
     .offset = offsetof(stats_conf_t, future_allowance_ms),
     .help   = "An event whose receivedAt is ahead of this service's clock by "
               "at most this much (another host's clock) counts in the "
               "current minute; further ahead it is counted as future and "
               "left out."},
    {.env    = "STATS_DEDUPE_MINUTES",
     .flag   = "dedupe-minutes",
     .type   = AB_CONF_INT,
     .def    = "5",
     .min    = 0,
     .max    = 60,
     .offset = offsetof(stats_conf_t, dedupe_minutes),
     .help   = "A retried id received within this many minutes of the first "
               "is counted once (1 MiB of memory per minute; 0: off)."},
    {.env    = "STATS_CLOCK_OFFSET_MS",
     .flag   = "clock-offset-ms",
     .type   = AB_CONF_INT,
     .def    = "0",
     .min    = -2000000000,
     .max    = 2000000000,
     .offset = offsetof(stats_conf_t, clock_offset_ms),
     .help   = "Shifts the window's clock (tests move time forward instead "
               "of sleeping an hour); leave 0 in production."},
    {.env    = "STATS_AUDIT_URL",
     .flag   = "audit-url",
     .type   = AB_CONF_URL,
     .offset = offsetof(stats_conf_t, audit_url),
     .help   = "Base URL of aetherbus-audit (http://audit:8083): the console "
               "reads its query API through this service (a few read-only "
               "GETs, same origin for the browser); unset, the console's "
               "audit panels say so."},
    {.env    = "STATS_INGEST_URL",
     .flag   = "ingest-url",
     .type   = AB_CONF_URL,
     .offset = offsetof(stats_conf_t, ingest_url),
     .help   = "Base URL of aetherbus-ingest: the console shows its /readyz "
               "and its 5xx and 503 answers from /metrics; unset, not shown."},
    {.env    = "STATS_SINK_URL",
     .flag   = "sink-url",
     .type   = AB_CONF_URL,
     .offset = offsetof(stats_conf_t, sink_url),
     .help   = "Base URL of aetherbus-sink's health port: the console shows "
               "its /readyz; unset, not shown."},
    {.env = NULL},
};

static ab_err_t finalize(void *confp, char *errstr, size_t errstr_size) {
        stats_conf_t *conf = confp;

        return ab_service_conf_check(&conf->svc, errstr, errstr_size);
}

const ab_conf_spec_t stats_conf_spec = {
    .prog     = "aetherbus-stats",
    .about    = "Reads every events.* topic and answers GET "
                "/admin/events/stats: 1-hour totals, failures and lag.",
    .rows     = rows,
    .finalize = finalize,
};
