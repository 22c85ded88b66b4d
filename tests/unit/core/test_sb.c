/*
 * test_sb.c - tests for collector/core/sb.c, the one string builder: appends stay
 * NUL-terminated, printf grows the buffer, the cap fails the write that would pass it (and
 * latches), the first error wins, take hands the buffer over, and base64 matches RFC 4648.
 */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "mt.h"
#include "sb.h"

UNIT_TEST(appends_and_printf_grow)
{
    sb_t b = {0};
    CHECK_STR(sb_str(&b), "");
    sb_puts(&b, "abc");
    sb_putc(&b, '-');
    sb_put(&b, "xyz", 2);
    sb_u64(&b, 18446744073709551615ull);
    sb_i64(&b, -9223372036854775807ll - 1);
    CHECK_STR(sb_str(&b), "abc-xy18446744073709551615-9223372036854775808");
    for (int i = 0; i < 200; i++) {
        sb_printf(&b, "%04d,", i);
    }
    CHECK(b.len == 46 + 200 * 5 && b.err == 0);
    CHECK(memcmp(b.p + b.len - 5, "0199,", 5) == 0 && b.p[b.len] == 0);
    sb_reset(&b);
    CHECK_STR(sb_str(&b), "");
    sb_fini(&b);
}

UNIT_TEST(cap_fails_and_latches)
{
    sb_t b;
    sb_init(&b, 8); /* 7 bytes and the NUL */
    sb_puts(&b, "1234567");
    CHECK(b.err == 0 && b.len == 7 && b.cap <= 8);
    sb_putc(&b, '8');
    CHECK(b.err == MT_ETOOBIG);
    sb_reset(&b);
    sb_puts(&b, "12345678");
    CHECK(b.err == MT_ETOOBIG && b.len == 0);
    sb_puts(&b, "1"); /* latched: no-op until reset */
    CHECK(b.len == 0);
    sb_fail(&b, MT_EINVAL); /* the first cause is kept */
    CHECK(b.err == MT_ETOOBIG);
    CHECK(sb_take(&b, NULL) == NULL);
    CHECK(b.p == NULL && b.err == 0);
    sb_fini(&b);
}

UNIT_TEST(take_hands_over)
{
    sb_t b = {0};
    size_t n = 99;
    char *p = sb_take(&b, &n);
    REQUIRE(p);
    CHECK_STR(p, "");
    CHECK(n == 0);
    free(p);
    sb_printf(&b, "%s=%d", "x", 42);
    p = sb_take(&b, &n);
    REQUIRE(p);
    CHECK_STR(p, "x=42");
    CHECK(n == 4 && b.p == NULL && b.len == 0);
    free(p);
}

UNIT_TEST(base64_rfc4648_vectors)
{
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        sb_t b = {0};
        sb_base64(&b, (const uint8_t *)in[i], strlen(in[i]));
        CHECK_STR(sb_str(&b), out[i]);
        sb_fini(&b);
    }
    const uint8_t bin[] = {0xfb, 0xff, 0xbf, 0x00};
    sb_t b = {0};
    sb_base64(&b, bin, sizeof(bin));
    CHECK_STR(sb_str(&b), "+/+/AA==");
    sb_fini(&b);
}

/* Reading a file under the builder's cap: exactly max - 1 bytes fit, one more does not. */
UNIT_TEST(fread_up_to_the_cap)
{
    FILE *f = tmpfile();
    REQUIRE(f);
    for (int i = 0; i < 100000; i++) {
        fputc('a' + i % 26, f);
    }
    rewind(f);
    sb_t b;
    sb_init(&b, 100001);
    CHECK(sb_fread(&b, f) == 0);
    CHECK(b.len == 100000 && b.p[99999] == 'a' + 99999 % 26 && b.p[100000] == 0);
    sb_fini(&b);
    rewind(f);
    sb_init(&b, 100000);
    CHECK(sb_fread(&b, f) == MT_ETOOBIG);
    sb_fini(&b);
    rewind(f);
    sb_t u = {0}; /* no cap */
    CHECK(sb_fread(&u, f) == 0 && u.len == 100000);
    sb_fini(&u);
    fclose(f);
}

/* The fixed mode writes into the caller's buffer, never allocates, and fails a write that
 * would not fit with its NUL (promconv builds names this way on the hot path). */
UNIT_TEST(fixed_buffer_never_grows_and_fails_when_full)
{
    char buf[8];
    sb_t b;
    sb_init_fixed(&b, buf, sizeof(buf));
    sb_puts(&b, "abc");
    sb_putc(&b, '_');
    CHECK(b.err == 0 && b.p == buf);
    CHECK_STR(buf, "abc_");
    sb_puts(&b, "def"); /* 7 bytes and the NUL: exactly full */
    CHECK(b.err == 0);
    CHECK_STR(buf, "abc_def");
    sb_putc(&b, 'x');
    CHECK(b.err == MT_ETOOBIG && b.p == buf && b.len == 7);
    CHECK_STR(buf, "abc_def");
    sb_fini(&b); /* empties, frees nothing */
    CHECK(b.len == 0 && b.err == 0 && buf[0] == 0);
    sb_t z;
    sb_init_fixed(&z, buf, 0);
    CHECK(z.err == MT_ETOOBIG);
}
