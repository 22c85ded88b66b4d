/*
 * test_mt_ratelimit.c - the rate limit behind MT_LOG_EVERY: one line per interval per call
 * site, the dropped ones counted and handed to the next line that goes out.
 */
#include "unit.h"

#include "mt.h"

UNIT_TEST(ratelimit_lets_one_line_per_interval_and_counts_the_rest)
{
    static mt_ratelimit_t rl;
    uint64_t dropped = 99;
    const uint64_t s = 1000000000ull;
    CHECK(mt_ratelimit_take(&rl, 100 * s, 10 * s, &dropped) == 1 && dropped == 0);
    for (int i = 0; i < 1000; i++) {
        CHECK(mt_ratelimit_take(&rl, 100 * s + (uint64_t)i * 1000000ull, 10 * s, &dropped) == 0);
    }
    CHECK(mt_ratelimit_take(&rl, 109 * s, 10 * s, &dropped) == 0);
    CHECK(mt_ratelimit_take(&rl, 110 * s, 10 * s, &dropped) == 1 && dropped == 1001);
    CHECK(mt_ratelimit_take(&rl, 200 * s, 10 * s, &dropped) == 1 && dropped == 0);
}
