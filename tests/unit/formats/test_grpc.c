/*
 * test_grpc.c - tests for collector/formats/grpc.c: the message prefix, grpc-timeout,
 * grpc-message percent-encoding, and google.rpc.Status/RetryInfo round trips checked against
 * bytes built by hand.
 */
#include "unit.h"

#include <stdint.h>
#include <string.h>

#include "grpc.h"

UNIT_TEST(grpc_prefix_round_trip)
{
    uint8_t p[GRPC_PREFIX_LEN];
    int c = -1;
    uint32_t len = 0;
    grpc_prefix_put(p, 1, 0x01020304u);
    CHECK(p[0] == 1 && p[1] == 1 && p[2] == 2 && p[3] == 3 && p[4] == 4);
    CHECK(grpc_prefix_get(p, 5, &c, &len) == GRPC_PREFIX_LEN);
    CHECK(c == 1 && len == 0x01020304u);
    CHECK(grpc_prefix_get(p, 4, &c, &len) == 0);
    p[0] = 2;
    CHECK(grpc_prefix_get(p, 5, &c, &len) == -1);
}

UNIT_TEST(grpc_timeout_values)
{
    int64_t ns = 0;
    CHECK(grpc_timeout_parse("10S", &ns) == 0 && ns == 10000000000LL);
    CHECK(grpc_timeout_parse("250m", &ns) == 0 && ns == 250000000LL);
    CHECK(grpc_timeout_parse("1H", &ns) == 0 && ns == 3600000000000LL);
    CHECK(grpc_timeout_parse("99999999H", &ns) == 0 && ns > 0);
    CHECK(grpc_timeout_parse("123456789S", &ns) == -1); /* 9 digits */
    CHECK(grpc_timeout_parse("S", &ns) == -1);
    CHECK(grpc_timeout_parse("10", &ns) == -1);
    CHECK(grpc_timeout_parse("10x", &ns) == -1);
    CHECK(grpc_timeout_parse("10SS", &ns) == -1);
    char buf[16];
    grpc_timeout_format(5000, buf, sizeof(buf));
    CHECK_STR(buf, "5000m");
    grpc_timeout_format(100000000LL, buf, sizeof(buf));
    CHECK_STR(buf, "100000S");
}

UNIT_TEST(grpc_message_percent)
{
    sb_t b;
    sb_init(&b, 0);
    grpc_message_encode(&b, "bad 100%\n\xc3\xa9", 11);
    CHECK_STR(sb_str(&b), "bad 100%25%0A%C3%A9");
    char s[64];
    strcpy(s, sb_str(&b));
    grpc_message_decode(s);
    CHECK_STR(s, "bad 100%\n\xc3\xa9");
    strcpy(s, "50%zz%4");
    grpc_message_decode(s);
    CHECK_STR(s, "50%zz%4");
    sb_fini(&b);
}

UNIT_TEST(grpc_status_details_retry_info)
{
    sb_t b;
    sb_init(&b, 0);
    grpc_status_details_put(&b, GRPC_RESOURCE_EXHAUSTED, "queue full", 1500);
    REQUIRE(b.err == 0);
    CHECK(strchr(sb_str(&b), '=') == NULL);
    int64_t ms = -1;
    CHECK(grpc_status_details_retry_delay(sb_str(&b), b.len, &ms) == 0);
    CHECK(ms == 1500);
    sb_reset(&b);
    grpc_status_details_put(&b, GRPC_INVALID_ARGUMENT, "x", -1);
    CHECK(grpc_status_details_retry_delay(sb_str(&b), b.len, &ms) == -1);
    /* Status{code: 8, details: [Any{type_url: RetryInfo, value: RetryInfo{retry_delay:
     * Duration{seconds: 2}}}]} built by hand, base64 with padding as other stacks send it */
    static const char hand[] =
        "CAgaMAoodHlwZS5nb29nbGVhcGlzLmNvbS9nb29nbGUucnBjLlJldHJ5SW5mbxIECgIIAg==";
    CHECK(grpc_status_details_retry_delay(hand, strlen(hand), &ms) == 0);
    CHECK(ms == 2000);
    CHECK(grpc_status_details_retry_delay("!!!!", 4, &ms) == -1);
    CHECK(grpc_status_details_retry_delay("", 0, &ms) == -1);
    sb_fini(&b);
}

UNIT_TEST(grpc_status_names)
{
    CHECK_STR(grpc_status_name(GRPC_UNAVAILABLE), "unavailable");
    CHECK_STR(grpc_status_name(99), "unknown");
    CHECK(grpc_status_retryable(GRPC_UNAVAILABLE));
    CHECK(!grpc_status_retryable(GRPC_INVALID_ARGUMENT));
    CHECK(grpc_status_from_http(503) == GRPC_UNAVAILABLE);
}
