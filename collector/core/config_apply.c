/*
 * config_apply.c - scalar parsers (bool, duration, bytes, int, double, enum) and cfg_apply, the
 * one generic binder every component uses (craft convention 6): defaults, typed fields, unknown
 * and missing keys, plus cfg_free_fields and the --help-config printer. Part of the config
 * module.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------------------------ */
/* Scalar parsers.                                                                            */

int cfg_parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"true", "yes", "on"};
    static const char *no[] = {"false", "no", "off"};
    if (!s) {
        return MT_EINVAL;
    }
    for (size_t i = 0; i < MT_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return MT_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return MT_OK;
        }
    }
    return MT_EINVAL;
}

/* Reads "digits[.digits]" at *pp: integer part exactly (fails on overflow), fraction as a double
 * in [0,1). Returns 0, or -1 when there is no digit or the integer part overflows. */
static int parse_decimal(const char **pp, uint64_t *ip, double *frac)
{
    const char *p = *pp;
    uint64_t v = 0;
    int digits = 0;
    while (isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
        p++;
        digits++;
    }
    double f = 0, scale = 1;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            if (scale < 1e18) { /* further digits are below double precision anyway */
                scale *= 10;
                f += (*p - '0') / scale;
            }
            p++;
            digits++;
        }
    }
    if (digits == 0) {
        return -1;
    }
    *pp = p;
    *ip = v;
    *frac = f;
    return 0;
}

int cfg_parse_duration_ms(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t ns;
    } units[] = {
        /* two-letter units first so "ms" is not read as "m" followed by garbage */
        {"ns", 1},           {"us", 1000},         {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1000},                                            /* U+03BC greek small mu */
        {"ms", 1000000},     {"s", 1000000000ull}, {"m", 60000000000ull}, {"h", 3600000000000ull},
    };
    if (!s || !*s) {
        return MT_EINVAL;
    }
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return MT_OK;
    }
    uint64_t total = 0; /* nanoseconds */
    const char *p = s;
    while (*p) {
        uint64_t v;
        double frac;
        if (parse_decimal(&p, &v, &frac)) {
            return MT_EINVAL;
        }
        uint64_t unit = 0;
        for (size_t i = 0; i < MT_ARRAY_LEN(units); i++) {
            size_t ul = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, ul) == 0) {
                unit = units[i].ns;
                p += ul;
                break;
            }
        }
        if (!unit || v > (uint64_t)INT64_MAX / unit) {
            return MT_EINVAL;
        }
        uint64_t ns = v * unit;
        uint64_t fr = (uint64_t)(frac * (double)unit);
        if (fr > (uint64_t)INT64_MAX - ns || ns + fr > (uint64_t)INT64_MAX - total) {
            return MT_EINVAL;
        }
        total += ns + fr;
    }
    *out = (int64_t)(total / 1000000 + (total % 1000000 != 0));
    return MT_OK;
}

int cfg_parse_bytes(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1000ull},
        {"kb", 1000ull},
        {"ki", 1ull << 10},
        {"kib", 1ull << 10},
        {"m", 1000000ull},
        {"mb", 1000000ull},
        {"mi", 1ull << 20},
        {"mib", 1ull << 20},
        {"g", 1000000000ull},
        {"gb", 1000000000ull},
        {"gi", 1ull << 30},
        {"gib", 1ull << 30},
        {"t", 1000000000000ull},
        {"tb", 1000000000000ull},
        {"ti", 1ull << 40},
        {"tib", 1ull << 40},
    };
    if (!s) {
        return MT_EINVAL;
    }
    const char *p = s;
    uint64_t v;
    double frac;
    if (parse_decimal(&p, &v, &frac)) {
        return MT_EINVAL;
    }
    if (*p == ' ') {
        p++;
    }
    if (strlen(p) > 3) {
        return MT_EINVAL;
    }
    for (size_t i = 0; i < MT_ARRAY_LEN(units); i++) {
        if (strcasecmp(p, units[i].unit) != 0) {
            continue;
        }
        uint64_t m = units[i].mult;
        if (v > (uint64_t)INT64_MAX / m) {
            return MT_EINVAL;
        }
        uint64_t whole = v * m;
        uint64_t fr = (uint64_t)(frac * (double)m + 0.5);
        if (fr > (uint64_t)INT64_MAX - whole) {
            return MT_EINVAL;
        }
        *out = (int64_t)(whole + fr);
        return MT_OK;
    }
    return MT_EINVAL;
}

/* Returns 0 ok, 1 not an integer, 2 out of range. Decimal, or hex with 0x. */
static int parse_int(const char *s, int64_t *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-') {
        p++;
    }
    if (!isdigit((unsigned char)*p)) {
        return 1;
    }
    int base = (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) ? 16 : 10;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, base);
    if (end == s || *end) {
        return 1;
    }
    if (errno == ERANGE) {
        return 2;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (!*s || isspace((unsigned char)*s)) {
        return 1;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(v)) {
        return 1;
    }
    *out = v;
    return 0;
}

/* Index of `s` in "a|b|c", or -1. */
static int enum_index(const char *enums, const char *s)
{
    if (!enums) {
        return -1;
    }
    size_t sl = strlen(s);
    int i = 0;
    const char *p = enums;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == sl && memcmp(p, s, l) == 0) {
            return i;
        }
        if (!bar) {
            return -1;
        }
        p = bar + 1;
        i++;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* cfg_apply                                                                                  */

typedef struct {
    cfg_ctx_t *c;
    const cfg_field_t *f;
    size_t nf;
    const char *path; /* component path, e.g. "exporters.otlphttp/tempo" (may be "") */
    void *out;
    unsigned char *seen; /* per field: set (or already reported) */
    int nerr;
    int in_default; /* errors are in the table's defaults, a programming error */
} apply_t;

#define KEY_MAX 512

/* Adds "FILE:LINE: path.key: reason". `key` is the dotted key inside the component. */
__attribute__((format(printf, 4, 5))) static void aerr(apply_t *A, int line, const char *key,
                                                       const char *fmt, ...)
{
    char reason[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    char full[KEY_MAX + 256];
    if (A->path && *A->path && key && *key) {
        snprintf(full, sizeof(full), "%s.%s", A->path, key);
    } else {
        snprintf(full, sizeof(full), "%s", key && *key ? key : (A->path ? A->path : ""));
    }
    if (A->in_default) {
        cfg_error(A->c, line, full, "invalid default in the config table: %s", reason);
    } else {
        cfg_error(A->c, line, full, "%s", reason);
    }
    A->nerr++;
}

const char *cfg_type_name(cfg_type_t t)
{
    switch (t) {
    case CFG_T_STRING:
        return "string";
    case CFG_T_INT:
        return "int";
    case CFG_T_DOUBLE:
        return "number";
    case CFG_T_BOOL:
        return "bool";
    case CFG_T_DURATION:
        return "duration";
    case CFG_T_BYTES:
        return "bytes";
    case CFG_T_ENUM:
        return "enum";
    case CFG_T_STRMAP:
        return "map";
    case CFG_T_STRLIST:
        return "list";
    case CFG_T_NODE:
        return "any";
    }
    return "?";
}

static void zero_field(const cfg_field_t *f, void *out)
{
    void *dst = (char *)out + f->offset;
    switch (f->type) {
    case CFG_T_STRING:
        *(char **)dst = NULL;
        break;
    case CFG_T_INT:
    case CFG_T_DURATION:
    case CFG_T_BYTES:
        *(int64_t *)dst = 0;
        break;
    case CFG_T_DOUBLE:
        *(double *)dst = 0;
        break;
    case CFG_T_BOOL:
    case CFG_T_ENUM:
        *(int *)dst = 0;
        break;
    case CFG_T_STRMAP:
        memset(dst, 0, sizeof(cfg_strmap_t));
        break;
    case CFG_T_STRLIST:
        memset(dst, 0, sizeof(cfg_strlist_t));
        break;
    case CFG_T_NODE:
        *(const cfg_node_t **)dst = NULL;
        break;
    }
}

static void free_strmap(cfg_strmap_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->keys[i]);
        free(m->vals[i]);
    }
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

static void free_strlist(cfg_strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i]);
    }
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* Reports a bad scalar, quoting it unless the field is secret. */
static void bad_value(apply_t *A, const cfg_field_t *f, const cfg_node_t *v, const char *key,
                      const char *what, const char *hint)
{
    if (f->flags & CFG_SECRET) {
        aerr(A, v->line, key, "%s%s", what, hint);
        return;
    }
    size_t l = strlen(v->value);
    aerr(A, v->line, key, "%s, got \"%.*s%s\"%s", what, (int)(l > 60 ? 60 : l), v->value,
         l > 60 ? "..." : "", hint);
}

static void bind_strmap(apply_t *A, const cfg_field_t *f, const cfg_node_t *v, const char *key)
{
    cfg_strmap_t *dst = (cfg_strmap_t *)((char *)A->out + f->offset);
    cfg_strmap_t m = {0};
    if (v->kind == CFG_NODE_MAP && v->n) {
        m.keys = calloc(v->n, sizeof(*m.keys));
        m.vals = calloc(v->n, sizeof(*m.vals));
        if (!m.keys || !m.vals) {
            free(m.keys);
            free(m.vals);
            aerr(A, v->line, key, "out of memory");
            return;
        }
    } else if (v->kind != CFG_NODE_MAP && v->kind != CFG_NODE_NULL) {
        aerr(A, v->line, key, "expected a map of strings, got a %s", cfg_kind_name(v->kind));
        return;
    }
    int before = A->nerr;
    for (size_t i = 0; v->kind == CFG_NODE_MAP && i < v->n; i++) {
        const cfg_node_t *c = v->children[i];
        if (c->kind != CFG_NODE_SCALAR && c->kind != CFG_NODE_NULL) {
            char sub[KEY_MAX];
            snprintf(sub, sizeof(sub), "%s.%s", key, v->keys[i]);
            aerr(A, c->line, sub, "expected a string, got a %s", cfg_kind_name(c->kind));
            continue;
        }
        m.keys[m.n] = strdup(v->keys[i]);
        m.vals[m.n] = strdup(c->kind == CFG_NODE_SCALAR ? c->value : "");
        m.n++;
        if (!m.keys[m.n - 1] || !m.vals[m.n - 1]) {
            aerr(A, c->line, key, "out of memory");
            break;
        }
    }
    if (A->nerr != before) {
        free_strmap(&m);
        return;
    }
    free_strmap(dst);
    *dst = m;
}

static void bind_strlist(apply_t *A, const cfg_field_t *f, const cfg_node_t *v, const char *key)
{
    cfg_strlist_t *dst = (cfg_strlist_t *)((char *)A->out + f->offset);
    cfg_strlist_t l = {0};
    if (v->kind == CFG_NODE_SEQ && v->n) {
        l.items = calloc(v->n, sizeof(*l.items));
        if (!l.items) {
            aerr(A, v->line, key, "out of memory");
            return;
        }
    } else if (v->kind != CFG_NODE_SEQ && v->kind != CFG_NODE_NULL) {
        aerr(A, v->line, key, "expected a list of strings, got a %s", cfg_kind_name(v->kind));
        return;
    }
    int before = A->nerr;
    for (size_t i = 0; v->kind == CFG_NODE_SEQ && i < v->n; i++) {
        const cfg_node_t *c = v->children[i];
        if (c->kind != CFG_NODE_SCALAR) {
            char sub[KEY_MAX];
            snprintf(sub, sizeof(sub), "%s[%zu]", key, i);
            aerr(A, c->line, sub, "expected a string, got a %s", cfg_kind_name(c->kind));
            continue;
        }
        if (!(l.items[l.n++] = strdup(c->value))) {
            aerr(A, c->line, key, "out of memory");
            break;
        }
    }
    if (A->nerr != before) {
        free_strlist(&l);
        return;
    }
    free_strlist(dst);
    *dst = l;
}

/* Stores the value node `v` (not a NULL node, except for maps/lists/nodes) into field f. */
static void bind(apply_t *A, const cfg_field_t *f, const cfg_node_t *v, const char *key)
{
    void *dst = (char *)A->out + f->offset;
    switch (f->type) {
    case CFG_T_NODE:
        *(const cfg_node_t **)dst = v;
        return;
    case CFG_T_STRMAP:
        bind_strmap(A, f, v, key);
        return;
    case CFG_T_STRLIST:
        bind_strlist(A, f, v, key);
        return;
    default:
        break;
    }
    if (v->kind != CFG_NODE_SCALAR) {
        aerr(A, v->line, key, "expected a %s value, got a %s", cfg_type_name(f->type),
             cfg_kind_name(v->kind));
        return;
    }
    const char *s = v->value;
    int rc;
    switch (f->type) {
    case CFG_T_STRING: {
        char *p = strdup(s);
        if (!p) {
            aerr(A, v->line, key, "out of memory");
            return;
        }
        free(*(char **)dst);
        *(char **)dst = p;
        return;
    }
    case CFG_T_INT: {
        int64_t x;
        rc = parse_int(s, &x);
        if (rc == 1) {
            bad_value(A, f, v, key, "expected an integer", "");
        } else if (rc == 2) {
            bad_value(A, f, v, key, "integer out of range", "");
        } else {
            *(int64_t *)dst = x;
        }
        return;
    }
    case CFG_T_DOUBLE: {
        double x;
        if (parse_double(s, &x)) {
            bad_value(A, f, v, key, "expected a number", "");
        } else {
            *(double *)dst = x;
        }
        return;
    }
    case CFG_T_BOOL: {
        int x;
        if (cfg_parse_bool(s, &x) != MT_OK) {
            bad_value(A, f, v, key, "expected true or false", "");
        } else {
            *(int *)dst = x;
        }
        return;
    }
    case CFG_T_DURATION: {
        int64_t x;
        if (cfg_parse_duration_ms(s, &x) != MT_OK) {
            bad_value(A, f, v, key, "invalid duration", " (use e.g. 200ms, 5s, 1m30s)");
        } else {
            *(int64_t *)dst = x;
        }
        return;
    }
    case CFG_T_BYTES: {
        int64_t x;
        if (cfg_parse_bytes(s, &x) != MT_OK) {
            bad_value(A, f, v, key, "invalid size", " (use e.g. 1024, 64KiB, 20MiB)");
        } else {
            *(int64_t *)dst = x;
        }
        return;
    }
    case CFG_T_ENUM: {
        int i = enum_index(f->enums, s);
        if (i < 0) {
            char hint[256];
            size_t off = (size_t)snprintf(hint, sizeof(hint), " (expected one of: ");
            for (const char *p = f->enums ? f->enums : ""; *p && off + 3 < sizeof(hint); p++) {
                if (*p == '|') {
                    hint[off++] = ',';
                    hint[off++] = ' ';
                } else {
                    hint[off++] = *p;
                }
            }
            snprintf(hint + off, sizeof(hint) - off, ")");
            bad_value(A, f, v, key, "invalid value", hint);
        } else {
            *(int *)dst = i;
        }
        return;
    }
    default:
        return;
    }
}

static void apply_default(apply_t *A, const cfg_field_t *f)
{
    zero_field(f, A->out);
    if (!f->def || f->type == CFG_T_NODE) {
        return;
    }
    A->in_default = 1;
    if (f->type == CFG_T_STRMAP || f->type == CFG_T_STRLIST) {
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        cfg_doc_t *d = cfg_load_string("default", f->def, strlen(f->def), &eb);
        if (!d) {
            aerr(A, 0, f->key, "%s", eb.msg);
        } else {
            bind(A, f, d->root, f->key);
            cfg_doc_destroy(d);
        }
    } else {
        cfg_node_t tmp = {.kind = CFG_NODE_SCALAR, .line = 0, .value = (char *)f->def};
        bind(A, f, &tmp, f->key);
    }
    A->in_default = 0;
}

static int find_field(const apply_t *A, const char *key)
{
    for (size_t i = 0; i < A->nf; i++) {
        if (strcmp(A->f[i].key, key) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Whether some field key starts with "prefix." */
static int is_prefix(const apply_t *A, const char *prefix)
{
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < A->nf; i++) {
        if (strncmp(A->f[i].key, prefix, pl) == 0 && A->f[i].key[pl] == '.') {
            return 1;
        }
    }
    return 0;
}

/* Marks every field under "prefix." as seen, so one wrong map does not also report each of
 * its required keys as missing. */
static void mark_prefix_seen(apply_t *A, const char *prefix)
{
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < A->nf; i++) {
        if (strncmp(A->f[i].key, prefix, pl) == 0 && A->f[i].key[pl] == '.') {
            A->seen[i] = 1;
        }
    }
}

/* Reports an unknown key, listing the valid keys at that level when there are few. */
#define VALID_LIST_MAX 12
static void unknown_key(apply_t *A, const char *prefix, const char *key, int line)
{
    size_t pl = strlen(prefix);
    const char *seg[VALID_LIST_MAX];
    size_t segl[VALID_LIST_MAX];
    size_t ns = 0;
    int many = 0;
    for (size_t i = 0; i < A->nf && !many; i++) {
        const char *k = A->f[i].key;
        if (pl) {
            if (strncmp(k, prefix, pl) != 0 || k[pl] != '.') {
                continue;
            }
            k += pl + 1;
        }
        const char *dot = strchr(k, '.');
        size_t l = dot ? (size_t)(dot - k) : strlen(k);
        size_t j;
        for (j = 0; j < ns; j++) {
            if (segl[j] == l && memcmp(seg[j], k, l) == 0) {
                break;
            }
        }
        if (j < ns) {
            continue;
        }
        if (ns == VALID_LIST_MAX) {
            many = 1;
            break;
        }
        seg[ns] = k;
        segl[ns] = l;
        ns++;
    }
    if (many || ns == 0) {
        aerr(A, line, key, "unknown key");
        return;
    }
    char list[512];
    size_t off = 0;
    for (size_t j = 0; j < ns && off < sizeof(list); j++) {
        int n =
            snprintf(list + off, sizeof(list) - off, "%s%.*s", j ? ", " : "", (int)segl[j], seg[j]);
        if (n < 0) {
            break;
        }
        off += (size_t)n;
    }
    aerr(A, line, key, "unknown key (valid: %s)", list);
}

static void walk(apply_t *A, const cfg_node_t *map, const char *prefix)
{
    for (size_t i = 0; i < map->n; i++) {
        char key[KEY_MAX];
        int kn = snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "", map->keys[i]);
        const cfg_node_t *v = map->children[i];
        int kl = map->key_lines[i];
        if (kn < 0 || (size_t)kn >= sizeof(key)) {
            aerr(A, kl, prefix, "key \"%.40s...\" is too long", map->keys[i]);
            continue;
        }
        int fi = find_field(A, key);
        if (fi >= 0) {
            const cfg_field_t *f = &A->f[fi];
            A->seen[fi] = 1;
            int scalar_type =
                f->type != CFG_T_STRMAP && f->type != CFG_T_STRLIST && f->type != CFG_T_NODE;
            if (v->kind == CFG_NODE_NULL && scalar_type) {
                /* `key:` with nothing keeps the default, but cannot satisfy "required". */
                if (f->flags & CFG_REQUIRED) {
                    aerr(A, kl, key, "required key has no value");
                }
                continue;
            }
            bind(A, f, v, key);
            continue;
        }
        if (is_prefix(A, key)) {
            if (v->kind == CFG_NODE_MAP) {
                walk(A, v, key);
            } else if (v->kind != CFG_NODE_NULL) {
                aerr(A, v->line, key, "expected a map, got a %s", cfg_kind_name(v->kind));
                mark_prefix_seen(A, key);
            }
            continue;
        }
        unknown_key(A, prefix, key, kl);
    }
}

/* Line to blame for a missing key: the deepest map on its dotted path that exists. */
static int missing_line(const cfg_node_t *node, const char *key)
{
    int line = node ? node->line : 0;
    const cfg_node_t *cur = node;
    const char *p = key;
    const char *dot;
    while (cur && cur->kind == CFG_NODE_MAP && (dot = strchr(p, '.')) != NULL) {
        char seg[KEY_MAX];
        size_t l = (size_t)(dot - p);
        if (l >= sizeof(seg)) {
            break;
        }
        memcpy(seg, p, l);
        seg[l] = 0;
        cur = cfg_map_get(cur, seg);
        if (cur) {
            line = cur->line;
        }
        p = dot + 1;
    }
    return line;
}

int cfg_apply(cfg_ctx_t *c, const cfg_field_t *fields, size_t nfields, const cfg_node_t *node,
              const char *path, void *out)
{
    apply_t A = {.c = c, .f = fields, .nf = nfields, .path = path ? path : "", .out = out};
    for (size_t i = 0; i < nfields; i++) {
        apply_default(&A, &fields[i]);
    }
    if (node && node->kind != CFG_NODE_MAP && node->kind != CFG_NODE_NULL) {
        cfg_error(c, node->line, A.path, "expected a map, got a %s", cfg_kind_name(node->kind));
        return A.nerr + 1;
    }
    A.seen = calloc(nfields ? nfields : 1, 1);
    if (!A.seen) {
        cfg_error(c, node ? node->line : 0, A.path, "out of memory");
        return A.nerr + 1;
    }
    if (node && node->kind == CFG_NODE_MAP) {
        walk(&A, node, "");
    }
    for (size_t i = 0; i < nfields; i++) {
        if ((fields[i].flags & CFG_REQUIRED) && !A.seen[i]) {
            aerr(&A, missing_line(node, fields[i].key), fields[i].key, "required key is missing");
        }
    }
    free(A.seen);
    return A.nerr;
}

void cfg_free_fields(const cfg_field_t *fields, size_t nfields, void *out)
{
    for (size_t i = 0; i < nfields; i++) {
        void *dst = (char *)out + fields[i].offset;
        switch (fields[i].type) {
        case CFG_T_STRING:
            free(*(char **)dst);
            break;
        case CFG_T_STRMAP:
            free_strmap(dst);
            break;
        case CFG_T_STRLIST:
            free_strlist(dst);
            break;
        default:
            break;
        }
        zero_field(&fields[i], out);
    }
}

void cfg_print_help(FILE *f, const cfg_field_t *fields, size_t nfields)
{
    for (size_t i = 0; i < nfields; i++) {
        const cfg_field_t *fd = &fields[i];
        if (fd->type == CFG_T_ENUM) {
            fprintf(f, "  %s (one of %s", fd->key, fd->enums ? fd->enums : "");
        } else {
            fprintf(f, "  %s (%s", fd->key, cfg_type_name(fd->type));
        }
        if (fd->def && !(fd->flags & CFG_SECRET)) {
            fprintf(f, ", default %s", *fd->def ? fd->def : "\"\"");
        }
        if (fd->flags & CFG_REQUIRED) {
            fprintf(f, ", required");
        }
        if (fd->flags & CFG_SECRET) {
            fprintf(f, ", secret");
        }
        fprintf(f, "): %s\n", fd->desc ? fd->desc : "");
    }
}
