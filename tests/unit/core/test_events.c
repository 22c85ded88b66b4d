/*
 * test_events.c - tests for the per-service counter in collector/core/events.c that both
 * meltp_events_total and the Loki exporter's meltp_events_received_total use: one series per
 * service up to the limit, then service="_other"; base labels first; the two label policies.
 * Metric names are this suite's own (the telemetry registry is process-wide).
 */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "telemetry.h"

UNIT_TEST(per_service_then_other)
{
    events_counter_t *ec = events_counter_create("meltp_ut_ev_total", "Events.", "exporter=\"lk\"",
                                                 2, EVENTS_LABEL_UTF8);
    REQUIRE(ec);
    events_counter_add(ec, "api", 3, 2);
    events_counter_add(ec, "web", 3, 1);
    events_counter_add(ec, "api", 3, 5);
    events_counter_add(ec, "db", 2, 4); /* third service: past the limit */
    events_counter_add(ec, "q\"\n\xc3\xa9", 5, 1);
    size_t len;
    char *t = telemetry_render(&len);
    REQUIRE(t);
    CHECK(strstr(t, "meltp_ut_ev_total{exporter=\"lk\",service=\"api\"} 7\n") != NULL);
    CHECK(strstr(t, "meltp_ut_ev_total{exporter=\"lk\",service=\"web\"} 1\n") != NULL);
    CHECK(strstr(t, "meltp_ut_ev_total{exporter=\"lk\",service=\"_other\"} 5\n") != NULL);
    CHECK(strstr(t, "service=\"db\"") == NULL);
    free(t);
    events_counter_destroy(ec);
}

UNIT_TEST(label_policies)
{
    events_counter_t *a =
        events_counter_create("meltp_ut_ev_ascii_total", "Events.", "", 8, EVENTS_LABEL_ASCII);
    events_counter_t *u =
        events_counter_create("meltp_ut_ev_utf8_total", "Events.", "", 8, EVENTS_LABEL_UTF8);
    REQUIRE(a && u);
    events_counter_add(a, "caf\xc3\xa9\t\"x", 8, 1);
    events_counter_add(u, "caf\xc3\xa9\t\"x", 8, 1);
    size_t len;
    char *t = telemetry_render(&len);
    REQUIRE(t);
    CHECK(strstr(t, "meltp_ut_ev_ascii_total{service=\"caf____x\"} 1\n") != NULL);
    CHECK(strstr(t, "meltp_ut_ev_utf8_total{service=\"caf\xc3\xa9\t_x\"} 1\n") != NULL);
    free(t);
    events_counter_destroy(a);
    events_counter_destroy(u);
}
