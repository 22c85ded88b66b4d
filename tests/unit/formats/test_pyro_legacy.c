/*
 * test_pyro_legacy.c - tests for collector/formats/pyro_legacy.c: the name and sample_type_config the
 * pyroscope exporter sends for one pprof (suffix dropped only when the server appends it
 * again, display names from the server's table, one type per display name, never cumulative)
 * and the sample type a folded profile gets from its name.
 */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#include "pyro_legacy.h"

static char *plan(const char *app, size_t *cut, const char *const *types, size_t n)
{
    *cut = strlen(app);
    return pyro_legacy_plan(app, cut, types, n);
}

UNIT_TEST(plan_names)
{
    size_t cut;
    const char *samples[] = {"samples"};
    char *j = plan("app.cpu", &cut, samples, 1);
    REQUIRE(j);
    CHECK(cut == 3); /* app + server's .cpu = app.cpu */
    CHECK_STR(j, "{\"samples\":{\"display-name\":\"cpu\",\"units\":\"samples\",\"sampled\":true}}");
    free(j);
    /* no suffix, or another one: kept (stored as shop.api.cpu, like a direct upload) */
    j = plan("shop.api", &cut, samples, 1);
    CHECK(cut == 8);
    free(j);
    j = plan("cpu", &cut, samples, 1); /* nothing would be left */
    CHECK(cut == 3);
    free(j);
    j = plan("app.xcpu", &cut, samples, 1);
    CHECK(cut == 8);
    free(j);
    /* Go CPU pprof: cpu/nanoseconds would land in app.cpu too, so it is left out */
    const char *go[] = {"samples", "cpu"};
    j = plan("app.cpu", &cut, go, 2);
    CHECK(cut == 3);
    CHECK(j && !strstr(j, "\"cpu\":"));
    free(j);
    /* a type outside the table keeps its own name and the pprof's unit */
    const char *cpu[] = {"cpu"};
    j = plan("otel.app", &cut, cpu, 1);
    CHECK(cut == 8);
    CHECK_STR(j, "{\"cpu\":{\"display-name\":\"cpu\"}}");
    free(j);
    const char *heap[] = {"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"};
    j = plan("app.inuse_space", &cut, heap, 4);
    CHECK(cut == 3);
    CHECK(j && !strstr(j, "cumulative"));
    CHECK(j && strstr(j, "\"inuse_space\":{\"display-name\":\"inuse_space\",\"units\":\"bytes\","
                         "\"aggregation\":\"average\"}"));
    free(j);
    const char *gr[] = {"goroutine", NULL, ""};
    j = plan("app.goroutines", &cut, gr, 3);
    CHECK(cut == 3);
    CHECK_STR(j, "{\"goroutine\":{\"display-name\":\"goroutines\",\"units\":\"goroutines\","
                 "\"aggregation\":\"average\"}}");
    free(j);
    const char *notutf8[] = {"\xff\xfe"};
    j = plan("a", &cut, notutf8, 1);
    CHECK_STR(j, "{}");
    free(j);
}

UNIT_TEST(folded_type)
{
    const char *t, *u;
    pyro_legacy_folded_type("app.cpu", NULL, &t, &u);
    CHECK_STR(t, "samples");
    CHECK_STR(u, "count");
    pyro_legacy_folded_type("app.alloc_objects", "objects", &t, &u);
    CHECK_STR(t, "alloc_objects");
    pyro_legacy_folded_type("app.inuse_space", "bytes", &t, &u);
    CHECK_STR(t, "inuse_space");
    CHECK_STR(u, "bytes");
    pyro_legacy_folded_type("app.mutex_duration", NULL, &t, &u);
    CHECK_STR(t, "delay");
    CHECK_STR(u, "nanoseconds");
    /* no known suffix: from units, as before */
    pyro_legacy_folded_type("py.app", "objects", &t, &u);
    CHECK_STR(t, "objects");
    CHECK_STR(u, "count");
    pyro_legacy_folded_type(".cpu", "bytes", &t, &u);
    CHECK_STR(t, "space");
    CHECK_STR(u, "bytes");
    CHECK(pyro_legacy_by_type("wall") == NULL);
    CHECK_STR(pyro_legacy_by_display("mutex_count", 11)->type, "contentions");
}
