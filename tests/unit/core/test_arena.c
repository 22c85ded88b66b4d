/*
 * test_arena.c - tests for collector/core/arena.c: 16-byte alignment, growth across blocks,
 * allocations bigger than a block, arena_reset reusing the first block, the byte cap, and
 * the protobuf-c allocator adapter over a recorded fixture.
 */
#include "unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "otlp_collector.pb-c.h"

typedef Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest traces_req_t;

static int aligned16(const void *p)
{
    return ((uintptr_t)p & 15u) == 0;
}

UNIT_TEST(alignment_of_every_allocation)
{
    arena_t *a = arena_create(1024, 0);
    REQUIRE(a);
    int bad = 0;
    /* odd sizes, including 0 and 1, must all come back 16-byte aligned */
    for (size_t n = 0; n < 300; n++) {
        unsigned char *p = arena_alloc(a, n);
        if (!p || !aligned16(p)) {
            bad++;
            continue;
        }
        memset(p, 0xab, n); /* ASan catches an allocation shorter than asked */
    }
    CHECK(bad == 0);
    char *s = arena_strndup(a, "xyz", 3);
    CHECK(s && aligned16(s));
    arena_destroy(a);
}

UNIT_TEST(many_small_allocs_span_blocks)
{
    arena_t *a = arena_create(1024, 0);
    REQUIRE(a);
    CHECK(arena_used(a) == 0);
    CHECK(arena_reserved(a) == 1024);
    enum { N = 2000 };
    uint32_t *ptrs[N];
    for (int i = 0; i < N; i++) {
        ptrs[i] = arena_alloc(a, 24); /* rounds to 32 */
        REQUIRE(ptrs[i]);
        *ptrs[i] = (uint32_t)i * 2654435761u;
    }
    /* nothing was overwritten by a later allocation */
    int bad = 0;
    for (int i = 0; i < N; i++) {
        if (*ptrs[i] != (uint32_t)i * 2654435761u) {
            bad++;
        }
    }
    CHECK(bad == 0);
    /* allocations do not overlap: consecutive ones in one block are exactly 32 apart */
    CHECK((uint8_t *)ptrs[1] - (uint8_t *)ptrs[0] == 32);
    CHECK(arena_used(a) == (size_t)N * 32);
    CHECK(arena_reserved(a) > 1024);
    CHECK(arena_reserved(a) >= arena_used(a));
    /* blocks grow geometrically: 64000 bytes should take a handful of blocks, not dozens;
     * reserved stays within ~4x of what was used */
    CHECK(arena_reserved(a) < 4 * arena_used(a));
    arena_destroy(a);
}

UNIT_TEST(big_alloc_larger_than_block)
{
    arena_t *a = arena_create(1024, 0);
    REQUIRE(a);
    unsigned char *small = arena_alloc(a, 100);
    REQUIRE(small);
    memset(small, 1, 100);
    size_t big_n = 1u << 20;
    unsigned char *big = arena_alloc(a, big_n);
    REQUIRE(big);
    CHECK(aligned16(big));
    memset(big, 2, big_n);
    CHECK(big[0] == 2 && big[big_n - 1] == 2);
    CHECK(small[0] == 1 && small[99] == 1);
    CHECK(arena_reserved(a) >= 1024 + big_n);
    CHECK(arena_used(a) >= 112 + big_n);
    /* and small allocations keep working after it */
    unsigned char *after = arena_alloc(a, 10);
    CHECK(after != NULL);
    arena_destroy(a);
}

UNIT_TEST(reset_reuses_first_block)
{
    arena_t *a = arena_create(4096, 0);
    REQUIRE(a);
    void *first = arena_alloc(a, 64);
    REQUIRE(first);
    arena_reset(a);
    CHECK(arena_alloc(a, 64) == first); /* nothing spilled: the same block is reused */
    for (int i = 0; i < 100; i++) {
        REQUIRE(arena_alloc(a, 1000)); /* forces several more blocks */
    }
    size_t grown = arena_reserved(a);
    CHECK(grown > 4096);
    arena_reset(a);
    CHECK(arena_used(a) == 0);
    CHECK(arena_over_cap(a) == 0);
    /* after a spill the first block grows to what the last use reserved, so the same
     * workload next time fits in one block */
    CHECK(arena_reserved(a) == grown);
    void *base = arena_alloc(a, 64);
    REQUIRE(base);
    for (int i = 0; i < 100; i++) {
        void *p = arena_alloc(a, 1000);
        REQUIRE(p);
        memset(p, 0x5a, 1000);
    }
    CHECK(arena_reserved(a) == grown); /* no new block was needed */
    arena_reset(a);
    CHECK(arena_alloc(a, 16) == base);
    arena_destroy(a);
}

UNIT_TEST(cap_enforced)
{
    arena_t *a = arena_create(1024, 8192);
    REQUIRE(a);
    CHECK(arena_over_cap(a) == 0);
    void *p = arena_alloc(a, 1000);
    REQUIRE(p);
    CHECK(arena_over_cap(a) == 0);
    /* larger than what is left under the cap */
    void *q = arena_alloc(a, 8000);
    CHECK(q == NULL);
    CHECK(arena_over_cap(a) == 1);
    CHECK(arena_reserved(a) <= 8192);
    /* keep allocating until refused: the total never passes the cap */
    size_t got = 0;
    for (int i = 0; i < 100; i++) {
        void *r = arena_alloc(a, 512);
        if (!r) {
            break;
        }
        got += 512;
    }
    CHECK(got > 0);    /* smaller allocations still fit for a while */
    CHECK(got < 8192); /* ... but not forever */
    CHECK(arena_reserved(a) <= 8192);
    CHECK(arena_over_cap(a) == 1);
    /* reset clears the flag and the first block serves again */
    arena_reset(a);
    CHECK(arena_over_cap(a) == 0);
    CHECK(arena_alloc(a, 512) != NULL);
    arena_destroy(a);
}

UNIT_TEST(cap_refuses_single_alloc_over_cap)
{
    arena_t *a = arena_create(1024, 4096);
    REQUIRE(a);
    CHECK(arena_alloc(a, 5000) == NULL);
    CHECK(arena_over_cap(a));
    CHECK(arena_reserved(a) == 1024);
    arena_destroy(a);
}

UNIT_TEST(calloc_zeroes)
{
    arena_t *a = arena_create(1024, 0);
    REQUIRE(a);
    unsigned char *p = arena_alloc(a, 256);
    REQUIRE(p);
    memset(p, 0xff, 256);
    arena_reset(a);
    unsigned char *z = arena_calloc(a, 256);
    REQUIRE(z);
    int nonzero = 0;
    for (int i = 0; i < 256; i++) {
        nonzero += z[i] != 0;
    }
    CHECK(nonzero == 0);
    arena_destroy(a);
}

UNIT_TEST(strndup_copies_and_terminates)
{
    arena_t *a = arena_create(1024, 0);
    REQUIRE(a);
    const char src[] = "hello, world";
    char *s = arena_strndup(a, src, 5);
    REQUIRE(s);
    CHECK_STR(s, "hello");
    CHECK(s != src);
    char *e = arena_strndup(a, src, 0);
    REQUIRE(e);
    CHECK_STR(e, "");
    /* embedded NUL: copies len bytes, not up to the first NUL */
    char *b = arena_strndup(a, "a\0b", 3);
    REQUIRE(b);
    CHECK(b[0] == 'a' && b[1] == 0 && b[2] == 'b' && b[3] == 0);
    arena_destroy(a);
}

UNIT_TEST(destroy_accepts_null)
{
    arena_destroy(NULL);
    CHECK(1);
}

UNIT_TEST(protobuf_allocator_unpacks_fixture)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/otlp-js/traces-n100/traces-proto-1.bin", unit_fixtures_dir());
    size_t len = 0;
    unsigned char *data = unit_read_file(path, &len);
    REQUIRE(data);
    arena_t *a = arena_create(4096, 0);
    REQUIRE(a);
    traces_req_t *r = opentelemetry__proto__collector__v1__export_trace_service_request__unpack(
        arena_pb_allocator(a), len, data);
    REQUIRE(r);
    size_t spans = 0;
    for (size_t i = 0; i < r->n_resource_spans; i++) {
        for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++) {
            spans += r->resource_spans[i]->scope_spans[j]->n_spans;
        }
    }
    CHECK(spans == 100);
    /* the decoded message lives in the arena (one free for everything) */
    CHECK(arena_used(a) > len);
    /* free through the adapter is a no-op; the arena still owns the memory */
    opentelemetry__proto__collector__v1__export_trace_service_request__free_unpacked(
        r, arena_pb_allocator(a));
    arena_destroy(a);
    free(data);
}

UNIT_TEST(protobuf_allocator_honours_cap)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/otlp-js/traces-n100/traces-proto-1.bin", unit_fixtures_dir());
    size_t len = 0;
    unsigned char *data = unit_read_file(path, &len);
    REQUIRE(data);
    arena_t *a = arena_create(1024, 8192);
    REQUIRE(a);
    traces_req_t *r = opentelemetry__proto__collector__v1__export_trace_service_request__unpack(
        arena_pb_allocator(a), len, data);
    CHECK(r == NULL);
    CHECK(arena_over_cap(a));
    CHECK(arena_reserved(a) <= 8192);
    arena_destroy(a);
    free(data);
}

/* The receivers' per-thread arena: kept across requests, given back after a huge one. */
UNIT_TEST(thread_arena_kept_then_given_back)
{
    arena_t *a = arena_thread();
    REQUIRE(a);
    CHECK(arena_alloc(a, 1000) != NULL);
    arena_thread_release(a);
    CHECK(arena_used(a) == 0);
    CHECK(arena_thread() == a);
    CHECK(arena_alloc(a, 8u << 20) != NULL); /* a huge request */
    arena_thread_release(a);                 /* freed: the next request gets a fresh one */
    arena_t *b = arena_thread();
    REQUIRE(b);
    CHECK(arena_reserved(b) <= (1u << 20));
    arena_thread_release(b);
}

/* arena_account: every block is charged to the account and given back on reset/destroy; a
 * block that would pass the limit is refused (arena_over_limit, not arena_over_cap); external
 * charges count against both the cap and the limit. */
UNIT_TEST(account_charges_blocks_and_refuses_over_limit)
{
    _Atomic int64_t in_use = 1000, limit = 0;
    arena_t *a = arena_create(4096, 0);
    REQUIRE(a);
    arena_account(a, &in_use, &limit);
    CHECK(atomic_load(&in_use) == 1000 + 4096);
    CHECK(arena_alloc(a, 64 * 1024)); /* a new block */
    CHECK(atomic_load(&in_use) == 1000 + (int64_t)arena_reserved(a));
    CHECK(arena_charge(a, 5000) == 0);
    CHECK(atomic_load(&in_use) == 1000 + (int64_t)arena_reserved(a) + 5000);
    arena_reset(a);
    /* the first block may have grown to what the request needed; nothing else stays charged */
    CHECK(atomic_load(&in_use) == 1000 + (int64_t)arena_reserved(a));

    atomic_store(&limit, atomic_load(&in_use) + 100 * 1024);
    CHECK(arena_alloc(a, 1 << 20) == NULL); /* would pass the limit */
    CHECK(arena_over_limit(a) && !arena_over_cap(a));
    CHECK(arena_charge(a, 1 << 20) == -1);
    CHECK(arena_alloc(a, 16 * 1024)); /* fits under the limit */
    CHECK(atomic_load(&in_use) <= atomic_load(&limit));
    arena_reset(a);
    CHECK(!arena_over_limit(a));

    arena_set_cap(a, arena_reserved(a) + 8192);
    CHECK(arena_charge(a, 16384) == -1); /* the cap counts external bytes too */
    CHECK(arena_over_cap(a) && !arena_over_limit(a));
    CHECK(arena_charge(a, 4096) == 0);
    arena_destroy(a);
    CHECK(atomic_load(&in_use) == 1000); /* all given back */
}

/* arena_reset of an arena that grew past the size it keeps frees the extra blocks (it used to
 * drop them on the floor); ASan's leak check sees it. */
UNIT_TEST(reset_after_large_growth_frees_blocks)
{
    _Atomic int64_t in_use = 0, limit = 0;
    arena_t *a = arena_create(1024, 0);
    REQUIRE(a);
    arena_account(a, &in_use, &limit);
    for (int i = 0; i < 8; i++) {
        CHECK(arena_alloc(a, 1 << 20));
    }
    arena_reset(a);
    CHECK(atomic_load(&in_use) == (int64_t)arena_reserved(a));
    CHECK(arena_reserved(a) == 1024);
    arena_destroy(a);
    CHECK(atomic_load(&in_use) == 0);
}
