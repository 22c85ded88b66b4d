/*
 * pyro_legacy.c - Pyroscope's legacy sample-type table and the naming rules built on it (see
 * pyro_legacy.h). The table is the server's default mapping as of v0.37.2; what each row does
 * was checked against the real server (tests/integration/test_pyroscope_real.py).
 */
#include "pyro_legacy.h"

#include <jansson.h>
#include <string.h>

/* Cumulative rows (alloc_*, contentions, delay) are stored by the server only after a second
 * profile; meltp always sends them as non-cumulative through sample_type_config. */
static const pyro_legacy_type_t TYPES[] = {
    {"samples", "count", "cpu", "samples", NULL, 1},
    {"inuse_objects", "count", "inuse_objects", "objects", "average", 0},
    {"alloc_objects", "count", "alloc_objects", "objects", NULL, 0},
    {"inuse_space", "bytes", "inuse_space", "bytes", "average", 0},
    {"alloc_space", "bytes", "alloc_space", "bytes", NULL, 0},
    {"goroutine", "count", "goroutines", "goroutines", "average", 0},
    {"contentions", "count", "mutex_count", "lock_samples", NULL, 0},
    {"delay", "nanoseconds", "mutex_duration", "lock_nanoseconds", NULL, 0},
};

const pyro_legacy_type_t *pyro_legacy_by_type(const char *type)
{
    for (size_t i = 0; type && i < sizeof(TYPES) / sizeof(TYPES[0]); i++) {
        if (strcmp(TYPES[i].type, type) == 0) {
            return &TYPES[i];
        }
    }
    return NULL;
}

const pyro_legacy_type_t *pyro_legacy_by_display(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof(TYPES) / sizeof(TYPES[0]); i++) {
        if (strlen(TYPES[i].display) == len && memcmp(TYPES[i].display, s, len) == 0) {
            return &TYPES[i];
        }
    }
    return NULL;
}

void pyro_legacy_folded_type(const char *app, const char *units, const char **type,
                             const char **unit)
{
    const char *dot = app ? strrchr(app, '.') : NULL;
    const pyro_legacy_type_t *t =
        dot && dot > app ? pyro_legacy_by_display(dot + 1, strlen(dot + 1)) : NULL;
    if (t) {
        *type = t->type;
        *unit = t->unit;
        return;
    }
    units = units && *units ? units : "samples";
    *type = !strcmp(units, "samples") ? "samples" : !strcmp(units, "objects") ? "objects" : "space";
    *unit = !strcmp(units, "bytes") ? "bytes" : "count";
}

static const char *display_of(const char *type)
{
    const pyro_legacy_type_t *t = pyro_legacy_by_type(type);
    return t ? t->display : type;
}

char *pyro_legacy_plan(const char *app, size_t *app_len, const char *const *types, size_t ntypes)
{
    json_t *cfg = json_object();
    if (!cfg) {
        return NULL;
    }
    size_t alen = *app_len;
    const char *used[PYRO_LEGACY_MAX_TYPES];
    size_t nused = 0;
    for (size_t i = 0; i < ntypes && nused < PYRO_LEGACY_MAX_TYPES; i++) {
        if (!types[i] || !*types[i] || json_object_get(cfg, types[i])) {
            continue;
        }
        const char *disp = display_of(types[i]);
        int taken = 0;
        for (size_t j = 0; j < nused && !taken; j++) {
            taken = strcmp(used[j], disp) == 0;
        }
        if (taken) {
            continue; /* e.g. Go's cpu/nanoseconds beside samples/count: both would be `cpu` */
        }
        const pyro_legacy_type_t *t = pyro_legacy_by_type(types[i]);
        json_t *e = json_object();
        if (!e || json_object_set_new(e, "display-name", json_string(disp)) ||
            (t && json_object_set_new(e, "units", json_string(t->units))) ||
            (t && t->aggregation &&
             json_object_set_new(e, "aggregation", json_string(t->aggregation))) ||
            (t && t->sampled && json_object_set_new(e, "sampled", json_true()))) {
            json_decref(e);
            continue;
        }
        if (json_object_set_new(cfg, types[i], e)) {
            continue; /* not UTF-8 (or out of memory): the server would not match it anyway */
        }
        used[nused++] = disp;
        /* app.cpu + samples: the server appends `.cpu` itself */
        size_t dl = strlen(disp);
        if (*app_len == alen && alen > dl + 1 && app[alen - dl - 1] == '.' &&
            memcmp(app + alen - dl, disp, dl) == 0) {
            *app_len = alen - dl - 1;
        }
    }
    char *s = json_dumps(cfg, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(cfg);
    return s;
}
