/*
 * test_pii.c - tests for collector/processors/pii.c: each detector's positives and near-misses, overlap
 * rules, masking, MRN patterns, and a throughput figure for the scanner.
 */
#include "unit.h"
#include "pii.h"

#include <stdlib.h>
#include <time.h>

static pii_t *mk(const char *const *dom, size_t nd, const char *const *mrn, size_t nm)
{
    pii_config_t c = {0, dom, nd, mrn, nm};
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    return pii_create(&c, &eb);
}

/* Kind of the single finding in s, -1 for none, -2 for more than one. */
static int one(const pii_t *p, const char *s)
{
    pii_finding_t f[4];
    size_t n = pii_scan(p, s, strlen(s), f, 4);
    return n == 0 ? -1 : n > 1 ? -2 : (int)f[0].kind;
}

UNIT_TEST(pii_ssn)
{
    pii_t *p = mk(NULL, 0, NULL, 0);
    REQUIRE(p);
    CHECK(one(p, "ssn 123-45-6789") == PII_SSN);
    CHECK(one(p, "123 45 6789") == PII_SSN);
    CHECK(one(p, "000-45-6789") == -1); /* area 000 */
    CHECK(one(p, "666-45-6789") == -1);
    CHECK(one(p, "912-45-6789") == -1);
    CHECK(one(p, "123-00-6789") == -1);
    CHECK(one(p, "123-45-0000") == -1);
    CHECK(one(p, "123-45-67890") == -1); /* longer number */
    CHECK(one(p, "x123-45-6789") == -1);
    CHECK(one(p, "123-45 6789") == -1); /* mixed separators */
    pii_destroy(p);
}

UNIT_TEST(pii_card)
{
    pii_t *p = mk(NULL, 0, NULL, 0);
    CHECK(pii_luhn_ok("4111111111111111", 16));
    CHECK(!pii_luhn_ok("4111111111111112", 16));
    CHECK(one(p, "card=4111111111111111") == PII_CARD);
    CHECK(one(p, "4111 1111 1111 1111 exp 12/29") == PII_CARD);
    CHECK(one(p, "5500-0000-0000-0004") == PII_CARD);
    CHECK(one(p, "amex 378282246310005") == PII_CARD);
    CHECK(one(p, "4111111111111112") == -1);       /* Luhn fails */
    CHECK(one(p, "order 1111111111111117") == -1); /* no card network starts with 1 */
    CHECK(one(p, "41111111111111110000") == -1);   /* 20 digits */
    pii_destroy(p);
}

UNIT_TEST(pii_email)
{
    const char *dom[] = {"synthetic.acme.io"};
    pii_t *p = mk(dom, 1, NULL, 0);
    CHECK(one(p, "contact jane.doe+x@gmail.com now") == PII_EMAIL);
    CHECK(one(p, "mail: a@b.co.") == PII_EMAIL);
    CHECK(one(p, "user@example.com") == -1);
    CHECK(one(p, "user@mail.example.org") == -1);
    CHECK(one(p, "u@foo.test") == -1);
    CHECK(one(p, "bot@synthetic.acme.io") == -1);
    CHECK(one(p, "bot@x.synthetic.acme.io") == -1);
    CHECK(one(p, "bot@notsynthetic.acme.io") == PII_EMAIL);
    CHECK(one(p, "git@github") == -1); /* no TLD */
    CHECK(one(p, "a@b.c1") == -1);     /* numeric TLD */
    CHECK(one(p, "@gmail.com") == -1);
    pii_finding_t f[2];
    const char *s = "to: jane@corp.com";
    REQUIRE(pii_scan(p, s, strlen(s), f, 2) == 1);
    CHECK(f[0].off == 4 && f[0].len == 13);
    pii_destroy(p);
}

UNIT_TEST(pii_phone)
{
    pii_t *p = mk(NULL, 0, NULL, 0);
    CHECK(one(p, "call (415) 555-2671") == PII_PHONE);
    CHECK(one(p, "415-555-2671") == PII_PHONE);
    CHECK(one(p, "+1 415 555 2671") == PII_PHONE);
    CHECK(one(p, "415.555.2671") == PII_PHONE);
    CHECK(one(p, "+44 20 7946 0958") == PII_PHONE);
    CHECK(one(p, "555-555-0123") == -1); /* fictional 555-01xx */
    CHECK(one(p, "(415) 555-0150") == -1);
    CHECK(one(p, "115-555-2671") == -1); /* area starts with 1 */
    CHECK(one(p, "4155552671") == -1);   /* bare digits: too many false positives */
    CHECK(one(p, "2024-01-15 10:00:00") == -1);
    CHECK(one(p, "v1.2.3 build 20240115") == -1);
    pii_destroy(p);
}

UNIT_TEST(pii_mrn_mask_and_overlap)
{
    const char *mrn[] = {"MRN[-: ]?[0-9]{6,10}"};
    pii_t *p = mk(NULL, 0, mrn, 1);
    REQUIRE(p);
    CHECK(pii_detectors(p) & PII_BIT(PII_MRN));
    CHECK(one(p, "patient MRN 00123456 admitted") == PII_MRN);
    CHECK(one(p, "MRN 123") == -1);
    const char *s = "ssn 123-45-6789, card 4111111111111111, mail x@corp.com, MRN-1234567";
    pii_finding_t f[8];
    size_t n = pii_scan(p, s, strlen(s), f, 8);
    REQUIRE(n == 4);
    CHECK(f[0].kind == PII_SSN && f[1].kind == PII_CARD && f[2].kind == PII_EMAIL &&
          f[3].kind == PII_MRN);
    char buf[128];
    pii_mask(buf, s, strlen(s), f, n);
    buf[strlen(s)] = 0;
    CHECK_STR(buf, "ssn ***-**-****, card ****************, mail *@****.***, ***-*******");
    CHECK(pii_scan(p, s, strlen(s), f, 1) == 1); /* max respected */
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    const char *bad[] = {"MRN[0-9"};
    pii_config_t c = {0, NULL, 0, bad, 1};
    CHECK(pii_create(&c, &eb) == NULL && strstr(eb.msg, "mrn pattern 0"));
    pii_destroy(p);
}

/* Not a pass/fail test: prints the scanner's throughput on typical clean attribute values and
 * on a long log line, so a regression shows in the unit output. */
UNIT_TEST(pii_throughput)
{
    pii_t *p = mk(NULL, 0, NULL, 0);
    static const char *const vals[] = {
        "GET",
        "/api/v1/users/{id}",
        "200",
        "frontend-7d9f8b6c5-x2x9z",
        "10.0.12.7",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
        "checkout.process_payment",
        "request completed in 12.3ms with status 200 for tenant acme-corp (trace 4bf92f3577b34da6)",
    };
    pii_finding_t f[8];
    size_t bytes = 0, hits = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int it = 0; it < 200000; it++) {
        for (size_t i = 0; i < MT_ARRAY_LEN(vals); i++) {
            size_t n = strlen(vals[i]);
            hits += pii_scan(p, vals[i], n, f, 8);
            bytes += n;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(hits == 0);
    fprintf(stderr, "    pii_scan: %.0f MB/s, %.0f ns per value (clean values)\n",
            (double)bytes / s / 1e6, s * 1e9 / (200000.0 * MT_ARRAY_LEN(vals)));
    pii_destroy(p);
}
