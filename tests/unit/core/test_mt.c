/*
 * test_mt.c - tests for the shared toolkit in collector/core/mt.h: FNV-1a against the
 * published test vectors, and the old offset basis still giving the hashes earlier versions
 * persisted (SLO state checksums, alert fingerprints, dashboard uids).
 */
#include "unit.h"

#include <stdint.h>

#include "mt.h"
#include "eval.h"

UNIT_TEST(fnv1a_published_vectors)
{
    CHECK(mt_fnv1a(MT_FNV_BASIS, "", 0) == 0xcbf29ce484222325ull);
    CHECK(mt_fnv1a(MT_FNV_BASIS, "a", 1) == 0xaf63dc4c8601ec8cull);
    CHECK(mt_fnv1a(MT_FNV_BASIS, "foobar", 6) == 0x85944171f73967e8ull);
    /* chaining is the same as hashing the concatenation */
    CHECK(mt_fnv1a(mt_fnv1a(MT_FNV_BASIS, "foo", 3), "bar", 3) == 0x85944171f73967e8ull);
}

UNIT_TEST(fnv1a_old_basis_for_persisted_hashes)
{
    /* what slo_hash gave before the toolkit: state files written then must still load */
    CHECK(slo_hash(SLO_HASH_INIT, "checkout", 8) == 0xd3ed03ce2093e0dfull);
    CHECK(mt_fnv1a(MT_FNV_BASIS_V0, "checkout", 8) == 0xd3ed03ce2093e0dfull);
}
