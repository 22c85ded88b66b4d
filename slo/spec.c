/*
 * spec.c - SLO spec loading and lint: native meltp specs, Sloth `prometheus/v1` files and
 * OpenSLO v1 documents all become slo_spec_t (model.h). Formats are detected per YAML document,
 * so one file may mix them. Every problem is reported as FILE:LINE: path: reason and loading
 * goes on, so a user sees all mistakes at once (craft convention 5).
 */
#include "model.h"
#include "sb.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Loading runs at start-up or in a CLI, where exiting on out-of-memory is allowed (craft
 * convention 11), so allocation failures end the process instead of threading ENOMEM through
 * hundreds of call sites. */
static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        fprintf(stderr, "meltp: out of memory loading SLO specs\n");
        exit(1);
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "meltp: out of memory loading SLO specs\n");
        exit(1);
    }
    return q;
}

static char *xstrdup(const char *s)
{
    if (!s) {
        return NULL;
    }
    size_t n = strlen(s);
    char *d = xmalloc(n + 1);
    memcpy(d, s, n + 1);
    return d;
}

static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xprintf(const char *fmt, ...)
{
    /* vasprintf, not vsnprintf(NULL, 0, ...): GCC with -fsanitize=undefined warns on that */
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0 || !s) {
        fprintf(stderr, "meltp: out of memory loading SLO specs\n");
        exit(1);
    }
    return s;
}

/* ---------------------------------------------------------------------------------------- */
/* Small shared helpers                                                                      */

static void kv_set(slo_kv_t *kv, const char *k, const char *v)
{
    for (size_t i = 0; i < kv->n; i++) {
        if (!strcmp(kv->keys[i], k)) {
            free(kv->vals[i]);
            kv->vals[i] = xstrdup(v);
            return;
        }
    }
    kv->keys = xrealloc(kv->keys, (kv->n + 1) * sizeof(char *));
    kv->vals = xrealloc(kv->vals, (kv->n + 1) * sizeof(char *));
    kv->keys[kv->n] = xstrdup(k);
    kv->vals[kv->n] = xstrdup(v);
    kv->n++;
}

static void kv_copy(slo_kv_t *dst, const slo_kv_t *src)
{
    for (size_t i = 0; i < src->n; i++) {
        kv_set(dst, src->keys[i], src->vals[i]);
    }
}

static void kv_free(slo_kv_t *kv)
{
    for (size_t i = 0; i < kv->n; i++) {
        free(kv->keys[i]);
        free(kv->vals[i]);
    }
    free(kv->keys);
    free(kv->vals);
    memset(kv, 0, sizeof(*kv));
}

const char *slo_format_name(slo_format_t f)
{
    switch (f) {
    case SLO_FMT_NATIVE:
        return "native";
    case SLO_FMT_SLOTH:
        return "sloth";
    case SLO_FMT_OPENSLO:
        return "openslo";
    }
    return "?";
}

const char *slo_sli_kind_name(slo_sli_kind_t k)
{
    static const char *const names[] = {"ratio", "latency", "spans", "logs"};
    return (unsigned)k < MT_ARRAY_LEN(names) ? names[k] : "?";
}

const char *slo_nodata_name(slo_nodata_t p)
{
    static const char *const names[] = {"good", "bad", "freeze", "alert"};
    return (unsigned)p < MT_ARRAY_LEN(names) ? names[p] : "?";
}

const char *slo_budgeting_name(slo_budgeting_t b)
{
    static const char *const names[] = {"Occurrences", "Timeslices", "RatioTimeslices"};
    return (unsigned)b < MT_ARRAY_LEN(names) ? names[b] : "?";
}

/* Prometheus-style duration: a sequence of <number><unit>, units ms s m h d w y (y = 365d).
 * Returns MT_OK or MT_EINVAL. Fractions are allowed ("1.5h"); the total must be > 0. */
static int parse_duration(const char *s, int64_t *out)
{
    if (!s || !*s) {
        return MT_EINVAL;
    }
    double total = 0;
    const char *p = s;
    while (*p) {
        char *end;
        if (!isdigit((unsigned char)*p) && *p != '.') {
            return MT_EINVAL;
        }
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno) {
            return MT_EINVAL;
        }
        p = end;
        double unit;
        if (!strncmp(p, "ms", 2)) {
            unit = 1;
            p += 2;
        } else if (*p == 's') {
            unit = 1000;
            p++;
        } else if (*p == 'm') {
            unit = 60e3;
            p++;
        } else if (*p == 'h') {
            unit = 3600e3;
            p++;
        } else if (*p == 'd') {
            unit = 86400e3;
            p++;
        } else if (*p == 'w') {
            unit = 7 * 86400e3;
            p++;
        } else if (*p == 'y') {
            unit = 365 * 86400e3;
            p++;
        } else {
            return MT_EINVAL;
        }
        total += v * unit;
    }
    if (total <= 0 || total > 1e15) {
        return MT_EINVAL;
    }
    *out = (int64_t)llround(total);
    return MT_OK;
}

const char *slo_fmt_duration(int64_t ms, char *buf, size_t len)
{
    static const struct {
        int64_t ms;
        const char *u;
    } units[] = {{7LL * 86400000, "w"}, {86400000, "d"}, {3600000, "h"}, {60000, "m"},
                 {1000, "s"},           {1, "ms"}};
    if (ms <= 0) {
        snprintf(buf, len, "0s");
        return buf;
    }
    size_t off = 0;
    buf[0] = 0;
    /* Weeks only when exact: Sloth and Prometheus users write 28d, not 4w. */
    size_t first = (ms % (7LL * 86400000) == 0 && ms / 86400000 % 7 == 0 && ms >= 7 * 86400000LL
                    && ms / 86400000 != 28 && ms / 86400000 != 14)
                       ? 0
                       : 1;
    for (size_t i = first; i < MT_ARRAY_LEN(units) && ms > 0; i++) {
        if (ms >= units[i].ms) {
            int64_t q = ms / units[i].ms;
            ms -= q * units[i].ms;
            int w = snprintf(buf + off, len > off ? len - off : 0, "%lld%s", (long long)q,
                             units[i].u);
            if (w > 0) {
                off += (size_t)w;
            }
        }
    }
    return buf;
}

/* ---------------------------------------------------------------------------------------- */
/* Matchers and selectors                                                                    */

int slo_matcher_match(const slo_matcher_t *m, const char *value)
{
    const char *v = value ? value : "";
    switch (m->op) {
    case SLO_MATCH_EQ:
        return strcmp(v, m->value) == 0;
    case SLO_MATCH_NEQ:
        return strcmp(v, m->value) != 0;
    case SLO_MATCH_RE:
        return m->re_ok && regexec(&m->re, v, 0, NULL, 0) == 0;
    case SLO_MATCH_NRE:
        return m->re_ok && regexec(&m->re, v, 0, NULL, 0) != 0;
    }
    return 0;
}

int slo_selector_match(const slo_selector_t *s, const char *(*get)(void *ctx, const char *name),
                       void *ctx)
{
    if (s->metric) {
        const char *n = get(ctx, "__name__");
        if (!n || strcmp(n, s->metric) != 0) {
            return 0;
        }
    }
    for (size_t i = 0; i < s->nm; i++) {
        if (!slo_matcher_match(&s->m[i], get(ctx, s->m[i].name))) {
            return 0;
        }
    }
    return 1;
}

static void selector_free(slo_selector_t *s)
{
    free(s->metric);
    for (size_t i = 0; i < s->nm; i++) {
        free(s->m[i].name);
        free(s->m[i].value);
        if (s->m[i].re_ok) {
            regfree(&s->m[i].re);
        }
    }
    free(s->m);
    memset(s, 0, sizeof(*s));
}

static void skip_ws(const char *s, size_t *i)
{
    while (s[*i] && isspace((unsigned char)s[*i])) {
        (*i)++;
    }
}

static int is_name_start(int c)
{
    return isalpha(c) || c == '_' || c == ':';
}

static int is_name_char(int c)
{
    return isalnum(c) || c == '_' || c == ':';
}

/* Reads a PromQL quoted string ("..", '..' or `..`) with Go escapes \" \' \\ \n \t. */
static char *parse_quoted(const char *s, size_t *i)
{
    char q = s[*i];
    if (q != '"' && q != '\'' && q != '`') {
        return NULL;
    }
    (*i)++;
    size_t cap = strlen(s + *i) + 1, n = 0;
    char *out = xmalloc(cap);
    while (s[*i] && s[*i] != q) {
        char c = s[*i];
        if (c == '\\' && q != '`' && s[*i + 1]) {
            (*i)++;
            c = s[*i];
            if (c == 'n') {
                c = '\n';
            } else if (c == 't') {
                c = '\t';
            }
        }
        out[n++] = c;
        (*i)++;
    }
    if (s[*i] != q) {
        free(out);
        return NULL;
    }
    (*i)++;
    out[n] = 0;
    return out;
}

/* Compiles an =~ / !~ value the way Prometheus anchors it: ^(?:re)$. POSIX ERE has no
 * non-capturing group, so ^(re)$ is the equivalent. Returns 0 or a regcomp error. */
static int matcher_compile(slo_matcher_t *m, char *err, size_t errlen)
{
    if (m->op != SLO_MATCH_RE && m->op != SLO_MATCH_NRE) {
        return 0;
    }
    char *anch = xprintf("^(%s)$", m->value);
    int rc = regcomp(&m->re, anch, REG_EXTENDED | REG_NOSUB);
    free(anch);
    if (rc != 0) {
        char buf[128];
        regerror(rc, &m->re, buf, sizeof(buf));
        snprintf(err, errlen, "label %s: regex \"%s\" does not compile: %s", m->name, m->value,
                 buf);
        return rc;
    }
    m->re_ok = 1;
    return 0;
}

/* Parses `name{l="v", ...}` / `name` / `{__name__="x", ...}` starting at *i. Fills `out` and
 * returns 0, or returns -1 with err set. Regex compile failures are errors too. */
static int parse_selector_at(const char *s, size_t *i, slo_selector_t *out, char *err,
                             size_t errlen)
{
    memset(out, 0, sizeof(*out));
    skip_ws(s, i);
    if (is_name_start((unsigned char)s[*i])) {
        size_t st = *i;
        while (is_name_char((unsigned char)s[*i])) {
            (*i)++;
        }
        out->metric = xmalloc(*i - st + 1);
        memcpy(out->metric, s + st, *i - st);
    }
    skip_ws(s, i);
    if (s[*i] == '{') {
        (*i)++;
        for (;;) {
            skip_ws(s, i);
            if (s[*i] == '}') {
                (*i)++;
                break;
            }
            if (!is_name_start((unsigned char)s[*i])) {
                snprintf(err, errlen, "expected a label name at offset %zu", *i);
                goto fail;
            }
            size_t st = *i;
            while (is_name_char((unsigned char)s[*i])) {
                (*i)++;
            }
            if (out->nm >= SLO_MAX_MATCHERS) {
                snprintf(err, errlen, "more than %d label matchers", SLO_MAX_MATCHERS);
                goto fail;
            }
            out->m = xrealloc(out->m, (out->nm + 1) * sizeof(slo_matcher_t));
            slo_matcher_t *m = &out->m[out->nm++];
            memset(m, 0, sizeof(*m));
            m->name = xmalloc(*i - st + 1);
            memcpy(m->name, s + st, *i - st);
            skip_ws(s, i);
            if (s[*i] == '=' && s[*i + 1] == '~') {
                m->op = SLO_MATCH_RE;
                *i += 2;
            } else if (s[*i] == '!' && s[*i + 1] == '~') {
                m->op = SLO_MATCH_NRE;
                *i += 2;
            } else if (s[*i] == '!' && s[*i + 1] == '=') {
                m->op = SLO_MATCH_NEQ;
                *i += 2;
            } else if (s[*i] == '=') {
                m->op = SLO_MATCH_EQ;
                *i += 1;
            } else {
                snprintf(err, errlen, "label %s: expected =, !=, =~ or !~", m->name);
                goto fail;
            }
            skip_ws(s, i);
            m->value = parse_quoted(s, i);
            if (!m->value) {
                snprintf(err, errlen, "label %s: expected a quoted value", m->name);
                goto fail;
            }
            if (matcher_compile(m, err, errlen) != 0) {
                goto fail;
            }
            skip_ws(s, i);
            if (s[*i] == ',') {
                (*i)++;
            } else if (s[*i] != '}') {
                snprintf(err, errlen, "expected , or } after label %s", m->name);
                goto fail;
            }
        }
    }
    if (!out->metric && out->nm == 0) {
        snprintf(err, errlen, "expected a metric selector");
        goto fail;
    }
    /* Fold __name__="x" into the metric name so consumers have one place to look. */
    for (size_t k = 0; k < out->nm; k++) {
        slo_matcher_t *m = &out->m[k];
        if (!strcmp(m->name, "__name__") && m->op == SLO_MATCH_EQ && !out->metric && m->value[0]) {
            out->metric = m->value;
            free(m->name);
            memmove(&out->m[k], &out->m[k + 1], (out->nm - k - 1) * sizeof(slo_matcher_t));
            out->nm--;
            break;
        }
    }
    return 0;
fail:
    selector_free(out);
    return -1;
}

/* Whole string must be one selector. */
static int parse_selector(const char *s, slo_selector_t *out, char *err, size_t errlen)
{
    size_t i = 0;
    if (parse_selector_at(s, &i, out, err, errlen) != 0) {
        return -1;
    }
    skip_ws(s, &i);
    if (s[i]) {
        snprintf(err, errlen, "unexpected \"%.20s\" after the selector", s + i);
        selector_free(out);
        return -1;
    }
    return 0;
}

/* `sum [by (l,...)] ((rate|increase)(SELECTOR[WINDOW])) [by (l,...)]`, the only PromQL shape
 * meltp can evaluate in-process. `window_tpl` set: the window must be the Sloth template
 * {{.window}}; otherwise any duration or the template. */
typedef struct {
    slo_selector_t sel;
    char **by;
    size_t nby;
    int has_by;
    int increase;
} agg_query_t;

static void agg_free(agg_query_t *q)
{
    selector_free(&q->sel);
    for (size_t i = 0; i < q->nby; i++) {
        free(q->by[i]);
    }
    free(q->by);
    memset(q, 0, sizeof(*q));
}

static int match_word(const char *s, size_t *i, const char *w)
{
    size_t n = strlen(w);
    if (!strncmp(s + *i, w, n) && !is_name_char((unsigned char)s[*i + n])) {
        *i += n;
        return 1;
    }
    return 0;
}

static int parse_by(const char *s, size_t *i, agg_query_t *q, char *err, size_t errlen)
{
    skip_ws(s, i);
    if (!match_word(s, i, "by")) {
        return 0;
    }
    if (q->has_by) {
        snprintf(err, errlen, "two `by` clauses");
        return -1;
    }
    q->has_by = 1;
    skip_ws(s, i);
    if (s[*i] != '(') {
        snprintf(err, errlen, "expected ( after by");
        return -1;
    }
    (*i)++;
    for (;;) {
        skip_ws(s, i);
        if (s[*i] == ')') {
            (*i)++;
            return 0;
        }
        size_t st = *i;
        while (is_name_char((unsigned char)s[*i])) {
            (*i)++;
        }
        if (st == *i) {
            snprintf(err, errlen, "expected a label name in by (...)");
            return -1;
        }
        q->by = xrealloc(q->by, (q->nby + 1) * sizeof(char *));
        q->by[q->nby] = xmalloc(*i - st + 1);
        memcpy(q->by[q->nby++], s + st, *i - st);
        skip_ws(s, i);
        if (s[*i] == ',') {
            (*i)++;
        }
    }
}

static const char AGG_SHAPES[] = "supported: sum(rate(SELECTOR[{{.window}}])), "
                                 "sum(increase(SELECTOR[{{.window}}])) and "
                                 "sum by (labels) (...)";

static int parse_agg_query(const char *s, int window_tpl, agg_query_t *q, char *err,
                           size_t errlen)
{
    memset(q, 0, sizeof(*q));
    size_t i = 0;
    char sub[192] = "";
    skip_ws(s, &i);
    if (!match_word(s, &i, "sum")) {
        snprintf(err, errlen, "unsupported PromQL \"%.60s\": %s", s, AGG_SHAPES);
        return -1;
    }
    if (parse_by(s, &i, q, sub, sizeof(sub)) != 0) {
        goto bad;
    }
    skip_ws(s, &i);
    if (s[i] != '(') {
        snprintf(sub, sizeof(sub), "expected ( after sum");
        goto bad;
    }
    i++;
    skip_ws(s, &i);
    if (match_word(s, &i, "rate")) {
        q->increase = 0;
    } else if (match_word(s, &i, "increase")) {
        q->increase = 1;
    } else {
        snprintf(sub, sizeof(sub), "expected rate( or increase( inside sum");
        goto bad;
    }
    skip_ws(s, &i);
    if (s[i] != '(') {
        snprintf(sub, sizeof(sub), "expected ( after rate/increase");
        goto bad;
    }
    i++;
    if (parse_selector_at(s, &i, &q->sel, sub, sizeof(sub)) != 0) {
        goto bad;
    }
    skip_ws(s, &i);
    if (s[i] != '[') {
        snprintf(sub, sizeof(sub), "expected [{{.window}}] after the selector");
        goto bad;
    }
    i++;
    const char *close = strchr(s + i, ']');
    if (!close) {
        snprintf(sub, sizeof(sub), "missing ]");
        goto bad;
    }
    {
        char win[64];
        size_t wn = (size_t)(close - (s + i));
        if (wn >= sizeof(win)) {
            snprintf(sub, sizeof(sub), "range too long");
            goto bad;
        }
        /* the template without spaces: {{.window}} or {{ .window }} */
        size_t o = 0;
        for (size_t k = 0; k < wn; k++) {
            if (!isspace((unsigned char)s[i + k])) {
                win[o++] = s[i + k];
            }
        }
        win[o] = 0;
        int64_t ms;
        if (strcmp(win, "{{.window}}") != 0
            && (window_tpl || parse_duration(win, &ms) != MT_OK)) {
            snprintf(sub, sizeof(sub), "the range must be [{{.window}}], got [%s]", win);
            goto bad;
        }
        i = (size_t)(close - s) + 1;
    }
    skip_ws(s, &i);
    if (s[i] != ')') {
        snprintf(sub, sizeof(sub), "expected ) after the range");
        goto bad;
    }
    i++;
    skip_ws(s, &i);
    if (s[i] != ')') {
        snprintf(sub, sizeof(sub), "expected ) closing sum(");
        goto bad;
    }
    i++;
    if (parse_by(s, &i, q, sub, sizeof(sub)) != 0) {
        goto bad;
    }
    skip_ws(s, &i);
    if (s[i]) {
        snprintf(sub, sizeof(sub), "unexpected \"%.20s\"", s + i);
        goto bad;
    }
    return 0;
bad:
    snprintf(err, errlen, "unsupported PromQL \"%.60s%s\": %s (%s)", s, strlen(s) > 60 ? "..." : "",
             sub, AGG_SHAPES);
    agg_free(q);
    return -1;
}

/* ---------------------------------------------------------------------------------------- */
/* YAML node accessors that report errors                                                   */

typedef struct {
    cfg_ctx_t *c;
    const char *file;
    int64_t eval_ms;
    slo_set_t *set;
} ld_t;

static const char *scalar(const cfg_node_t *n)
{
    return n && n->kind == CFG_NODE_SCALAR ? n->value : NULL;
}

/* Reports keys of `map` not in the NULL-terminated `allowed` list. */
static void check_keys(ld_t *L, const cfg_node_t *map, const char *path,
                       const char *const *allowed)
{
    if (!map || map->kind != CFG_NODE_MAP) {
        return;
    }
    for (size_t i = 0; i < map->n; i++) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++) {
            if (!strcmp(*a, map->keys[i])) {
                ok = 1;
                break;
            }
        }
        if (!ok) {
            cfg_error(L->c, map->key_lines[i], path, "unknown key \"%s\"", map->keys[i]);
        }
    }
}

static int want_map(ld_t *L, const cfg_node_t *map, const char *path, const char *key,
                    const cfg_node_t **out)
{
    const cfg_node_t *n = cfg_map_get(map, key);
    *out = NULL;
    if (!n || n->kind == CFG_NODE_NULL) {
        return 0;
    }
    if (n->kind != CFG_NODE_MAP) {
        cfg_error_key(L->c, map, path, key, "expected a map, got a %s", cfg_kind_name(n->kind));
        return -1;
    }
    *out = n;
    return 1;
}

/* String value; required: reports absence. Returns borrowed text or NULL. */
static const char *get_str(ld_t *L, const cfg_node_t *map, const char *path, const char *key,
                           int required)
{
    const cfg_node_t *n = cfg_map_get(map, key);
    if (!n || n->kind == CFG_NODE_NULL) {
        if (required) {
            cfg_error(L->c, map ? map->line : 0, path, "missing required key \"%s\"", key);
        }
        return NULL;
    }
    if (n->kind != CFG_NODE_SCALAR) {
        cfg_error_key(L->c, map, path, key, "expected a string, got a %s",
                      cfg_kind_name(n->kind));
        return NULL;
    }
    if (required && !n->value[0]) {
        cfg_error_key(L->c, map, path, key, "must not be empty");
        return NULL;
    }
    return n->value;
}

static int get_double(ld_t *L, const cfg_node_t *map, const char *path, const char *key,
                      double *out)
{
    const char *s = get_str(L, map, path, key, 0);
    if (!s) {
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v)) {
        cfg_error_key(L->c, map, path, key, "not a number: \"%s\"", s);
        return -1;
    }
    *out = v;
    return 1;
}

static int get_bool(ld_t *L, const cfg_node_t *map, const char *path, const char *key, int *out)
{
    const char *s = get_str(L, map, path, key, 0);
    if (!s) {
        return 0;
    }
    if (cfg_parse_bool(s, out) != MT_OK) {
        cfg_error_key(L->c, map, path, key, "not a boolean: \"%s\"", s);
        return -1;
    }
    return 1;
}

static int get_dur(ld_t *L, const cfg_node_t *map, const char *path, const char *key,
                   int64_t *out)
{
    const char *s = get_str(L, map, path, key, 0);
    if (!s) {
        return 0;
    }
    if (!strcmp(s, "0") || !strcmp(s, "0s")) {
        *out = 0;
        return 1;
    }
    if (parse_duration(s, out) != MT_OK) {
        cfg_error_key(L->c, map, path, key, "not a duration: \"%s\" (e.g. 5m, 1h, 30d)", s);
        return -1;
    }
    return 1;
}

static void get_kv(ld_t *L, const cfg_node_t *map, const char *path, const char *key,
                   slo_kv_t *out)
{
    const cfg_node_t *m;
    if (want_map(L, map, path, key, &m) <= 0) {
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        const cfg_node_t *v = m->children[i];
        if (v->kind == CFG_NODE_SCALAR) {
            kv_set(out, m->keys[i], v->value);
        } else if (v->kind == CFG_NODE_NULL) {
            kv_set(out, m->keys[i], "");
        } else if (v->kind == CFG_NODE_SEQ) {
            /* OpenSLO label values may be lists; a Prometheus label holds one string. */
            char *joined = xstrdup("");
            for (size_t j = 0; j < v->n; j++) {
                const char *item = scalar(v->children[j]);
                char *nj = xprintf("%s%s%s", joined, j ? "," : "", item ? item : "");
                free(joined);
                joined = nj;
            }
            kv_set(out, m->keys[i], joined);
            free(joined);
        } else {
            cfg_error(L->c, v->line, path, "%s.%s: expected a string", key, m->keys[i]);
        }
    }
}

static void get_strlist(ld_t *L, const cfg_node_t *map, const char *path, const char *key,
                        char ***out, size_t *nout)
{
    const cfg_node_t *n = cfg_map_get(map, key);
    if (!n || n->kind == CFG_NODE_NULL) {
        return;
    }
    if (n->kind != CFG_NODE_SEQ) {
        cfg_error_key(L->c, map, path, key, "expected a list, got a %s", cfg_kind_name(n->kind));
        return;
    }
    for (size_t i = 0; i < n->n; i++) {
        const char *s = scalar(n->children[i]);
        if (!s || !*s) {
            cfg_error(L->c, n->children[i]->line, path, "%s[%zu]: expected a non-empty string",
                      key, i);
            continue;
        }
        *out = xrealloc(*out, (*nout + 1) * sizeof(char *));
        (*out)[(*nout)++] = xstrdup(s);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Alert tiers                                                                               */

/* Per-severity alert settings from a spec (Sloth page_alert/ticket_alert, native page/ticket). */
typedef struct {
    int disable;
    slo_kv_t labels;
    slo_kv_t annotations;
    int64_t for_ms;
    int64_t keep_ms;
} sev_opts_t;

typedef struct {
    char *name;
    slo_kv_t labels;
    slo_kv_t annotations;
    sev_opts_t page, ticket;
} alert_opts_t;

static void alert_opts_free(alert_opts_t *a)
{
    free(a->name);
    kv_free(&a->labels);
    kv_free(&a->annotations);
    kv_free(&a->page.labels);
    kv_free(&a->page.annotations);
    kv_free(&a->ticket.labels);
    kv_free(&a->ticket.annotations);
}

/* The SRE workbook / Sloth defaults: budget % consumed, long and short window. The factor is
 * computed as Sloth does, pct/100 * period / long, so 30d gives 14.4, 6, 3, 1. */
static const struct {
    const char *name, *severity;
    double pct;
    int64_t long_ms, short_ms;
} DEFAULT_TIERS[] = {
    {"page-quick", "page", 2, 3600000LL, 300000LL},
    {"page-slow", "page", 5, 6 * 3600000LL, 1800000LL},
    {"ticket-quick", "ticket", 10, 86400000LL, 2 * 3600000LL},
    {"ticket-slow", "ticket", 10, 3 * 86400000LL, 6 * 3600000LL},
};

static void tier_finish(slo_spec_t *s, slo_tier_t *t, const alert_opts_t *a, const sev_opts_t *so)
{
    t->alert_name = xstrdup(a->name);
    kv_set(&t->labels, "sloth_severity", t->severity);
    kv_copy(&t->labels, &a->labels);
    if (so) {
        kv_copy(&t->labels, &so->labels);
    }
    char *title = xprintf("(%s) %s %s SLO error budget burn rate is too fast.", t->severity,
                          s->service, s->name);
    char *summary =
        xprintf("%s %s SLO error budget burn rate is over expected.", s->service, s->name);
    kv_set(&t->annotations, "title", title);
    kv_set(&t->annotations, "summary", summary);
    free(title);
    free(summary);
    if (s->runbook_url) {
        kv_set(&t->annotations, "runbook_url", s->runbook_url);
    }
    if (s->dashboard_url) {
        kv_set(&t->annotations, "dashboard_url", s->dashboard_url);
    }
    kv_copy(&t->annotations, &a->annotations);
    if (so) {
        kv_copy(&t->annotations, &so->annotations);
    }
}

/* Default alert name when a spec gives none: CamelCase of service and SLO name plus
 * "BurnRate" (patient-api + availability -> PatientApiAvailabilityBurnRate), unique per SLO so
 * two SLOs never share an alert identity (promtool flags that as duplicate rules). */
static char *default_alert_name(const slo_spec_t *s)
{
    const char *parts[2] = {s->service ? s->service : "", s->name ? s->name : ""};
    size_t cap = strlen(parts[0]) + strlen(parts[1]) + 16, n = 0;
    char *out = xmalloc(cap);
    for (int k = 0; k < 2; k++) {
        int up = 1;
        for (const char *p = parts[k]; *p; p++) {
            if (!isalnum((unsigned char)*p)) {
                up = 1;
                continue;
            }
            if (n == 0 && isdigit((unsigned char)*p)) {
                out[n++] = 'S';
            }
            out[n++] = up ? (char)toupper((unsigned char)*p) : *p;
            up = 0;
        }
    }
    memcpy(out + n, "BurnRate", 9);
    return out;
}

static void default_tiers(slo_spec_t *s, const alert_opts_t *a)
{
    s->tiers = xmalloc(MT_ARRAY_LEN(DEFAULT_TIERS) * sizeof(slo_tier_t));
    s->ntiers = MT_ARRAY_LEN(DEFAULT_TIERS);
    for (size_t i = 0; i < s->ntiers; i++) {
        slo_tier_t *t = &s->tiers[i];
        const sev_opts_t *so = !strcmp(DEFAULT_TIERS[i].severity, "page") ? &a->page : &a->ticket;
        t->name = xstrdup(DEFAULT_TIERS[i].name);
        t->severity = xstrdup(DEFAULT_TIERS[i].severity);
        t->long_ms = DEFAULT_TIERS[i].long_ms;
        t->short_ms = DEFAULT_TIERS[i].short_ms;
        t->budget_percent = DEFAULT_TIERS[i].pct;
        t->factor = DEFAULT_TIERS[i].pct / 100.0 * (double)s->period_ms / (double)t->long_ms;
        t->enabled = !so->disable;
        t->for_ms = so->for_ms;
        t->keep_firing_for_ms = so->keep_ms;
        tier_finish(s, t, a, so);
    }
}

static void get_sev_opts(ld_t *L, const cfg_node_t *map, const char *path, const char *key,
                         sev_opts_t *o, int native)
{
    const cfg_node_t *m;
    if (want_map(L, map, path, key, &m) <= 0) {
        return;
    }
    char *p = xprintf("%s.%s", path, key);
    static const char *const sloth_keys[] = {"disable", "labels", "annotations", NULL};
    static const char *const native_keys[] = {"disable", "labels", "annotations", "for",
                                              "keep_firing_for", NULL};
    check_keys(L, m, p, native ? native_keys : sloth_keys);
    get_bool(L, m, p, "disable", &o->disable);
    get_kv(L, m, p, "labels", &o->labels);
    get_kv(L, m, p, "annotations", &o->annotations);
    if (native) {
        get_dur(L, m, p, "for", &o->for_ms);
        get_dur(L, m, p, "keep_firing_for", &o->keep_ms);
    }
    free(p);
}

/* ---------------------------------------------------------------------------------------- */
/* Spec lifecycle                                                                            */

static void sli_free(slo_sli_t *q)
{
    selector_free(&q->good);
    selector_free(&q->bad);
    selector_free(&q->total);
    selector_free(&q->histogram);
    free(q->service);
    free(q->span_name);
    free(q->route);
    free(q->error_query);
    free(q->total_query);
    free(q->good_query);
}

static void spec_free(slo_spec_t *s)
{
    free(s->id);
    free(s->service);
    free(s->name);
    free(s->description);
    free(s->file);
    free(s->time_zone);
    sli_free(&s->sli);
    for (size_t i = 0; i < s->ntiers; i++) {
        slo_tier_t *t = &s->tiers[i];
        free(t->name);
        free(t->severity);
        free(t->alert_name);
        kv_free(&t->labels);
        kv_free(&t->annotations);
    }
    free(s->tiers);
    for (size_t i = 0; i < s->ngroup_by; i++) {
        free(s->group_by[i]);
    }
    free(s->group_by);
    kv_free(&s->labels);
    free(s->runbook_url);
    free(s->dashboard_url);
}

void slo_set_destroy(slo_set_t *set)
{
    if (!set) {
        return;
    }
    for (size_t i = 0; i < set->n; i++) {
        spec_free(&set->slos[i]);
    }
    free(set->slos);
    free(set);
}

static slo_spec_t *spec_new(ld_t *L, slo_format_t fmt, int line)
{
    slo_set_t *set = L->set;
    set->slos = xrealloc(set->slos, (set->n + 1) * sizeof(slo_spec_t));
    slo_spec_t *s = &set->slos[set->n++];
    memset(s, 0, sizeof(*s));
    s->format = fmt;
    s->file = xstrdup(L->file);
    s->line = line;
    s->period_kind = SLO_PERIOD_ROLLING;
    s->period_ms = 30LL * 86400000;
    s->time_zone = xstrdup("UTC");
    s->max_groups = SLO_DEFAULT_MAX_GROUPS;
    s->nodata = SLO_NODATA_GOOD;
    return s;
}

static void set_ids(slo_spec_t *s)
{
    free(s->id);
    s->id = xprintf("%s-%s", s->service ? s->service : "", s->name ? s->name : "");
    kv_set(&s->labels, "sloth_service", s->service ? s->service : "");
    kv_set(&s->labels, "sloth_slo", s->name ? s->name : "");
    kv_set(&s->labels, "sloth_id", s->id);
}

/* Moves the sloth_* identity labels to the front so rule output reads id, service, slo, ... */
static void labels_identity_first(slo_spec_t *s)
{
    slo_kv_t out = {0};
    kv_set(&out, "sloth_id", s->id);
    kv_set(&out, "sloth_service", s->service);
    kv_set(&out, "sloth_slo", s->name);
    for (size_t i = 0; i < s->labels.n; i++) {
        if (strncmp(s->labels.keys[i], "sloth_", 6) != 0) {
            kv_set(&out, s->labels.keys[i], s->labels.vals[i]);
        }
    }
    kv_free(&s->labels);
    s->labels = out;
}

/* Objective given in percent (0, 100): stores the ratio. Lint: out of range. */
static void set_objective_pct(ld_t *L, slo_spec_t *s, const cfg_node_t *map, const char *path,
                              const char *key)
{
    double v;
    int rc = get_double(L, map, path, key, &v);
    if (rc == 0) {
        cfg_error(L->c, map->line, path, "missing required key \"%s\"", key);
        return;
    }
    if (rc < 0) {
        return;
    }
    if (!(v > 0 && v < 100)) {
        cfg_error_key(L->c, map, path, key,
                      "objective %g out of range: must be a percentage in (0, 100)", v);
        return;
    }
    s->objective = v / 100.0;
}

/* ---------------------------------------------------------------------------------------- */
/* Native format                                                                             */

static int severity_number(const char *s)
{
    static const struct {
        const char *n;
        int v;
    } names[] = {{"TRACE", 1}, {"DEBUG", 5}, {"INFO", 9}, {"WARN", 13}, {"WARNING", 13},
                 {"ERROR", 17}, {"FATAL", 21}, {"CRITICAL", 21}};
    for (size_t i = 0; i < MT_ARRAY_LEN(names); i++) {
        if (!strcasecmp(s, names[i].n)) {
            return names[i].v;
        }
    }
    char *end;
    long v = strtol(s, &end, 10);
    if (end != s && !*end && v >= 1 && v <= 24) {
        return (int)v;
    }
    return 0;
}

static int sel_from_node(ld_t *L, const cfg_node_t *map, const char *path, const char *key,
                         slo_selector_t *out)
{
    const char *txt = get_str(L, map, path, key, 0);
    if (!txt) {
        return 0;
    }
    char err[256];
    if (parse_selector(txt, out, err, sizeof(err)) != 0) {
        cfg_error_key(L->c, map, path, key, "%s", err);
        return -1;
    }
    return 1;
}

static void native_sli(ld_t *L, slo_spec_t *s, const cfg_node_t *sli, const char *path,
                       const char *dflt_service)
{
    static const char *const kinds[] = {"ratio", "latency", "spans", "logs", NULL};
    check_keys(L, sli, path, kinds);
    int found = 0;
    for (size_t i = 0; kinds[i]; i++) {
        if (cfg_map_get(sli, kinds[i])) {
            found++;
        }
    }
    if (found != 1) {
        cfg_error(L->c, sli->line, path, "exactly one of ratio, latency, spans, logs is required");
        return;
    }
    const cfg_node_t *m;
    char *p = NULL;
    slo_sli_t *q = &s->sli;
    if (want_map(L, sli, path, "ratio", &m) > 0) {
        p = xprintf("%s.ratio", path);
        static const char *const keys[] = {"good", "bad", "total", NULL};
        check_keys(L, m, p, keys);
        q->kind = SLO_SLI_RATIO;
        q->has_good = sel_from_node(L, m, p, "good", &q->good) > 0;
        q->has_bad = sel_from_node(L, m, p, "bad", &q->bad) > 0;
        q->has_total = sel_from_node(L, m, p, "total", &q->total) > 0;
        if (q->has_good + q->has_bad + q->has_total != 2) {
            cfg_error(L->c, m->line, p, "give exactly two of good, bad, total");
        }
    } else if (want_map(L, sli, path, "latency", &m) > 0) {
        p = xprintf("%s.latency", path);
        static const char *const keys[] = {"histogram", "threshold", NULL};
        check_keys(L, m, p, keys);
        q->kind = SLO_SLI_LATENCY;
        if (sel_from_node(L, m, p, "histogram", &q->histogram) == 0) {
            cfg_error(L->c, m->line, p, "missing required key \"histogram\"");
        }
        if (get_double(L, m, p, "threshold", &q->threshold) == 0) {
            cfg_error(L->c, m->line, p, "missing required key \"threshold\"");
        } else if (!(q->threshold > 0)) {
            cfg_error_key(L->c, m, p, "threshold", "must be > 0");
        }
        /* A selector written with _bucket/_count names the same histogram. */
        if (q->histogram.metric) {
            size_t n = strlen(q->histogram.metric);
            if (n > 7 && !strcmp(q->histogram.metric + n - 7, "_bucket")) {
                q->histogram.metric[n - 7] = 0;
            }
        }
    } else if (want_map(L, sli, path, "spans", &m) > 0) {
        p = xprintf("%s.spans", path);
        static const char *const keys[] = {"service", "span_name", "route", "type", "http_5xx",
                                           "threshold", NULL};
        check_keys(L, m, p, keys);
        q->kind = SLO_SLI_SPANS;
        const char *svc = get_str(L, m, p, "service", 0);
        q->service = xstrdup(svc ? svc : dflt_service);
        q->span_name = xstrdup(get_str(L, m, p, "span_name", 0));
        q->route = xstrdup(get_str(L, m, p, "route", 0));
        const char *type = get_str(L, m, p, "type", 0);
        int64_t thr = -1;
        get_dur(L, m, p, "threshold", &thr);
        if (!type) {
            type = thr >= 0 ? "latency" : "errors";
        }
        if (!strcmp(type, "errors")) {
            q->spans_mode = SLO_SPANS_ERRORS;
            get_bool(L, m, p, "http_5xx", &q->http_5xx_is_error);
        } else if (!strcmp(type, "latency")) {
            q->spans_mode = SLO_SPANS_LATENCY;
            if (thr <= 0) {
                cfg_error(L->c, m->line, p, "type latency needs a threshold > 0 (e.g. 300ms)");
            }
            q->threshold_ms = (double)thr;
        } else {
            cfg_error_key(L->c, m, p, "type", "must be errors or latency, got \"%s\"", type);
        }
    } else if (want_map(L, sli, path, "logs", &m) > 0) {
        p = xprintf("%s.logs", path);
        static const char *const keys[] = {"service", "min_severity", NULL};
        check_keys(L, m, p, keys);
        q->kind = SLO_SLI_LOGS;
        const char *svc = get_str(L, m, p, "service", 0);
        q->service = xstrdup(svc ? svc : dflt_service);
        const char *sev = get_str(L, m, p, "min_severity", 0);
        q->min_severity = sev ? severity_number(sev) : 17;
        if (!q->min_severity) {
            cfg_error_key(L->c, m, p, "min_severity",
                          "unknown severity \"%s\" (TRACE..FATAL or 1..24)", sev);
        }
    }
    free(p);
}

static void native_period(ld_t *L, slo_spec_t *s, const cfg_node_t *map, const char *path)
{
    const cfg_node_t *n = cfg_map_get(map, "period");
    if (!n || n->kind == CFG_NODE_NULL) {
        return;
    }
    if (n->kind == CFG_NODE_SCALAR) {
        get_dur(L, map, path, "period", &s->period_ms);
        return;
    }
    if (n->kind != CFG_NODE_MAP) {
        cfg_error_key(L->c, map, path, "period", "expected a duration or a map");
        return;
    }
    char *p = xprintf("%s.period", path);
    static const char *const keys[] = {"calendar", "time_zone", "rolling", NULL};
    check_keys(L, n, p, keys);
    const char *cal = get_str(L, n, p, "calendar", 0);
    if (cal) {
        if (!strcmp(cal, "month")) {
            s->period_kind = SLO_PERIOD_CALENDAR_MONTH;
            s->period_ms = 30LL * 86400000;
        } else if (!strcmp(cal, "week")) {
            s->period_kind = SLO_PERIOD_CALENDAR_WEEK;
            s->period_ms = 7LL * 86400000;
        } else {
            cfg_error_key(L->c, n, p, "calendar", "must be month or week, got \"%s\"", cal);
        }
        const char *tz = get_str(L, n, p, "time_zone", 0);
        if (tz) {
            free(s->time_zone);
            s->time_zone = xstrdup(tz);
        }
    } else if (cfg_map_get(n, "rolling")) {
        get_dur(L, n, p, "rolling", &s->period_ms);
    } else {
        cfg_error(L->c, n->line, p, "expected calendar: month|week or rolling: DURATION");
    }
    free(p);
}

static void native_tiers(ld_t *L, slo_spec_t *s, const cfg_node_t *seq, const char *path,
                         const alert_opts_t *a)
{
    if (seq->kind != CFG_NODE_SEQ || seq->n == 0) {
        cfg_error(L->c, seq->line, path, "expected a non-empty list of tiers");
        return;
    }
    if (seq->n > SLO_MAX_TIERS) {
        cfg_error(L->c, seq->line, path, "more than %d tiers", SLO_MAX_TIERS);
        return;
    }
    s->tiers = xmalloc(seq->n * sizeof(slo_tier_t));
    for (size_t i = 0; i < seq->n; i++) {
        const cfg_node_t *m = seq->children[i];
        char *p = xprintf("%s[%zu]", path, i);
        slo_tier_t *t = &s->tiers[s->ntiers++];
        memset(t, 0, sizeof(*t));
        if (m->kind != CFG_NODE_MAP) {
            cfg_error(L->c, m->line, p, "expected a map");
            t->name = xstrdup("?");
            t->severity = xstrdup("page");
            free(p);
            continue;
        }
        static const char *const keys[] = {"name", "severity", "long", "short", "factor",
                                           "budget_percent", "for", "keep_firing_for",
                                           "disable", "labels", "annotations", NULL};
        check_keys(L, m, p, keys);
        const char *name = get_str(L, m, p, "name", 0);
        const char *sev = get_str(L, m, p, "severity", 0);
        t->severity = xstrdup(sev ? sev : "page");
        t->name = name ? xstrdup(name) : xprintf("%s-%zu", t->severity, i);
        if (get_dur(L, m, p, "long", &t->long_ms) == 0) {
            cfg_error(L->c, m->line, p, "missing required key \"long\"");
        }
        if (get_dur(L, m, p, "short", &t->short_ms) == 0) {
            t->short_ms = t->long_ms / 12; /* the workbook's rule of thumb */
        }
        int hf = get_double(L, m, p, "factor", &t->factor);
        int hp = get_double(L, m, p, "budget_percent", &t->budget_percent);
        if (hf > 0 && hp > 0) {
            cfg_error(L->c, m->line, p, "give factor or budget_percent, not both");
        } else if (hp > 0 && t->long_ms > 0) {
            t->factor = t->budget_percent / 100.0 * (double)s->period_ms / (double)t->long_ms;
        } else if (hf > 0 && t->long_ms > 0) {
            t->budget_percent = t->factor * (double)t->long_ms / (double)s->period_ms * 100.0;
        } else if (hf == 0 && hp == 0) {
            cfg_error(L->c, m->line, p, "missing factor or budget_percent");
        }
        if (hf > 0 && !(t->factor > 0)) {
            cfg_error_key(L->c, m, p, "factor", "must be > 0");
        }
        const sev_opts_t *so = !strcmp(t->severity, "page")     ? &a->page
                               : !strcmp(t->severity, "ticket") ? &a->ticket
                                                                : NULL;
        int dis = so ? so->disable : 0;
        get_bool(L, m, p, "disable", &dis);
        t->enabled = !dis;
        t->for_ms = so ? so->for_ms : 0;
        t->keep_firing_for_ms = so ? so->keep_ms : 0;
        get_dur(L, m, p, "for", &t->for_ms);
        get_dur(L, m, p, "keep_firing_for", &t->keep_firing_for_ms);
        tier_finish(s, t, a, so);
        get_kv(L, m, p, "labels", &t->labels);
        get_kv(L, m, p, "annotations", &t->annotations);
        free(p);
    }
}

static void native_doc(ld_t *L, const cfg_node_t *root)
{
    static const char *const top_keys[] = {"version", "service", "labels", "slos", NULL};
    check_keys(L, root, "", top_keys);
    const char *service = get_str(L, root, "", "service", 1);
    slo_kv_t svc_labels = {0};
    get_kv(L, root, "", "labels", &svc_labels);
    const cfg_node_t *slos = cfg_map_get(root, "slos");
    if (!slos || slos->kind != CFG_NODE_SEQ || slos->n == 0) {
        cfg_error(L->c, slos ? slos->line : root->line, "slos", "expected a non-empty list");
        kv_free(&svc_labels);
        return;
    }
    for (size_t i = 0; i < slos->n; i++) {
        const cfg_node_t *m = slos->children[i];
        char *p = xprintf("slos[%zu]", i);
        if (m->kind != CFG_NODE_MAP) {
            cfg_error(L->c, m->line, p, "expected a map");
            free(p);
            continue;
        }
        static const char *const keys[] = {
            "name",       "description", "objective",   "period",      "budgeting",
            "timeslice",  "sli",         "group_by",    "max_groups",  "no_data",
            "min_events", "runbook_url", "dashboard_url", "labels",    "alerting",
            NULL};
        check_keys(L, m, p, keys);
        slo_spec_t *s = spec_new(L, SLO_FMT_NATIVE, m->line);
        s->service = xstrdup(service ? service : "");
        s->name = xstrdup(get_str(L, m, p, "name", 1));
        s->description = xstrdup(get_str(L, m, p, "description", 0));
        set_ids(s);
        kv_copy(&s->labels, &svc_labels);
        get_kv(L, m, p, "labels", &s->labels);
        labels_identity_first(s);
        set_objective_pct(L, s, m, p, "objective");
        native_period(L, s, m, p);

        const char *b = get_str(L, m, p, "budgeting", 0);
        if (b) {
            if (!strcasecmp(b, "occurrences")) {
                s->budgeting = SLO_BUDGET_OCCURRENCES;
            } else if (!strcasecmp(b, "timeslices")) {
                s->budgeting = SLO_BUDGET_TIMESLICES;
            } else if (!strcasecmp(b, "ratio_timeslices") || !strcasecmp(b, "ratiotimeslices")) {
                s->budgeting = SLO_BUDGET_RATIO_TIMESLICES;
            } else {
                cfg_error_key(L->c, m, p, "budgeting",
                              "must be occurrences, timeslices or ratio_timeslices");
            }
        }
        const cfg_node_t *ts;
        if (want_map(L, m, p, "timeslice", &ts) > 0) {
            char *tp = xprintf("%s.timeslice", p);
            static const char *const tkeys[] = {"window", "target", NULL};
            check_keys(L, ts, tp, tkeys);
            get_dur(L, ts, tp, "window", &s->timeslice_ms);
            get_double(L, ts, tp, "target", &s->timeslice_target);
            free(tp);
        }
        if (s->budgeting != SLO_BUDGET_OCCURRENCES && s->timeslice_ms <= 0) {
            s->timeslice_ms = 60000;
        }
        if (s->budgeting == SLO_BUDGET_TIMESLICES && s->timeslice_target <= 0) {
            s->timeslice_target = s->objective;
        }

        const cfg_node_t *sli;
        char *sp = xprintf("%s.sli", p);
        if (want_map(L, m, p, "sli", &sli) > 0) {
            native_sli(L, s, sli, sp, s->service);
        } else {
            cfg_error(L->c, m->line, p, "missing required key \"sli\"");
        }
        free(sp);

        get_strlist(L, m, p, "group_by", &s->group_by, &s->ngroup_by);
        double d;
        if (get_double(L, m, p, "max_groups", &d) > 0) {
            if (d < 1 || d != floor(d)) {
                cfg_error_key(L->c, m, p, "max_groups", "must be a positive integer");
            } else {
                s->max_groups = (size_t)d;
            }
        }
        if (get_double(L, m, p, "min_events", &d) > 0) {
            if (d < 0 || d != floor(d)) {
                cfg_error_key(L->c, m, p, "min_events", "must be a non-negative integer");
            } else {
                s->min_events = (uint64_t)d;
            }
        }
        const char *nd = get_str(L, m, p, "no_data", 0);
        if (nd) {
            int k = -1;
            for (int j = 0; j <= SLO_NODATA_ALERT; j++) {
                if (!strcmp(nd, slo_nodata_name((slo_nodata_t)j))) {
                    k = j;
                }
            }
            if (k < 0) {
                cfg_error_key(L->c, m, p, "no_data", "must be good, bad, freeze or alert");
            } else {
                s->nodata = (slo_nodata_t)k;
            }
        }
        s->runbook_url = xstrdup(get_str(L, m, p, "runbook_url", 0));
        s->dashboard_url = xstrdup(get_str(L, m, p, "dashboard_url", 0));

        alert_opts_t a = {0};
        const cfg_node_t *al;
        const cfg_node_t *tiers = NULL;
        char *ap = xprintf("%s.alerting", p);
        if (want_map(L, m, p, "alerting", &al) > 0) {
            static const char *const akeys[] = {"name", "labels", "annotations", "page",
                                                "ticket", "tiers", NULL};
            check_keys(L, al, ap, akeys);
            a.name = xstrdup(get_str(L, al, ap, "name", 0));
            get_kv(L, al, ap, "labels", &a.labels);
            get_kv(L, al, ap, "annotations", &a.annotations);
            get_sev_opts(L, al, ap, "page", &a.page, 1);
            get_sev_opts(L, al, ap, "ticket", &a.ticket, 1);
            tiers = cfg_map_get(al, "tiers");
        }
        if (!a.name) {
            a.name = default_alert_name(s);
        }
        if (tiers) {
            char *tp = xprintf("%s.tiers", ap);
            native_tiers(L, s, tiers, tp, &a);
            free(tp);
        } else {
            default_tiers(s, &a);
        }
        free(ap);
        alert_opts_free(&a);
        free(p);
    }
    kv_free(&svc_labels);
}

/* ---------------------------------------------------------------------------------------- */
/* Sloth prometheus/v1                                                                       */

static void sloth_events(ld_t *L, slo_spec_t *s, const cfg_node_t *ev, const char *path)
{
    static const char *const keys[] = {"error_query", "total_query", NULL};
    check_keys(L, ev, path, keys);
    const char *eq = get_str(L, ev, path, "error_query", 1);
    const char *tq = get_str(L, ev, path, "total_query", 1);
    slo_sli_t *q = &s->sli;
    q->kind = SLO_SLI_RATIO;
    if (!eq || !tq) {
        return;
    }
    q->error_query = xstrdup(eq);
    q->total_query = xstrdup(tq);
    agg_query_t a = {0}, b = {0};
    char err[512];
    int ok = 1;
    if (parse_agg_query(eq, 1, &a, err, sizeof(err)) != 0) {
        cfg_error_key(L->c, ev, path, "error_query", "%s", err);
        ok = 0;
    }
    if (parse_agg_query(tq, 1, &b, err, sizeof(err)) != 0) {
        cfg_error_key(L->c, ev, path, "total_query", "%s", err);
        ok = 0;
    }
    if (ok) {
        int same = a.nby == b.nby;
        for (size_t i = 0; same && i < a.nby; i++) {
            same = !strcmp(a.by[i], b.by[i]);
        }
        if (!same) {
            cfg_error_key(L->c, ev, path, "error_query",
                          "error_query and total_query must aggregate by the same labels");
        }
        q->has_bad = q->has_total = 1;
        q->bad = a.sel;
        q->total = b.sel;
        memset(&a.sel, 0, sizeof(a.sel));
        memset(&b.sel, 0, sizeof(b.sel));
        q->use_increase = a.increase;
        for (size_t i = 0; i < b.nby; i++) {
            s->group_by = xrealloc(s->group_by, (s->ngroup_by + 1) * sizeof(char *));
            s->group_by[s->ngroup_by++] = xstrdup(b.by[i]);
        }
    }
    agg_free(&a);
    agg_free(&b);
}

static void sloth_doc(ld_t *L, const cfg_node_t *root)
{
    static const char *const top_keys[] = {"version", "service", "labels", "slos",
                                           "slo_plugins", NULL};
    check_keys(L, root, "", top_keys);
    if (cfg_map_get(root, "slo_plugins")) {
        cfg_error_key(L->c, root, "", "slo_plugins", "Sloth plugins are not supported");
    }
    const char *service = get_str(L, root, "", "service", 1);
    slo_kv_t svc_labels = {0};
    get_kv(L, root, "", "labels", &svc_labels);
    const cfg_node_t *slos = cfg_map_get(root, "slos");
    if (!slos || slos->kind != CFG_NODE_SEQ || slos->n == 0) {
        cfg_error(L->c, slos ? slos->line : root->line, "slos", "expected a non-empty list");
        kv_free(&svc_labels);
        return;
    }
    for (size_t i = 0; i < slos->n; i++) {
        const cfg_node_t *m = slos->children[i];
        char *p = xprintf("slos[%zu]", i);
        if (m->kind != CFG_NODE_MAP) {
            cfg_error(L->c, m->line, p, "expected a map");
            free(p);
            continue;
        }
        static const char *const keys[] = {"name", "description", "objective", "labels", "sli",
                                           "alerting", "plugins", NULL};
        check_keys(L, m, p, keys);
        if (cfg_map_get(m, "plugins")) {
            cfg_error_key(L->c, m, p, "plugins", "Sloth plugins are not supported");
        }
        slo_spec_t *s = spec_new(L, SLO_FMT_SLOTH, m->line);
        s->service = xstrdup(service ? service : "");
        s->name = xstrdup(get_str(L, m, p, "name", 1));
        s->description = xstrdup(get_str(L, m, p, "description", 0));
        set_ids(s);
        kv_copy(&s->labels, &svc_labels);
        get_kv(L, m, p, "labels", &s->labels);
        labels_identity_first(s);
        set_objective_pct(L, s, m, p, "objective");

        const cfg_node_t *sli;
        char *sp = xprintf("%s.sli", p);
        if (want_map(L, m, p, "sli", &sli) > 0) {
            static const char *const skeys[] = {"events", "raw", "plugin", NULL};
            check_keys(L, sli, sp, skeys);
            const cfg_node_t *ev;
            if (want_map(L, sli, sp, "events", &ev) > 0) {
                char *ep = xprintf("%s.events", sp);
                sloth_events(L, s, ev, ep);
                free(ep);
            } else if (cfg_map_get(sli, "raw")) {
                cfg_error_key(L->c, sli, sp, "raw",
                              "raw SLIs (an error-ratio query) cannot be evaluated in-process; "
                              "use events with error_query and total_query");
            } else if (cfg_map_get(sli, "plugin")) {
                cfg_error_key(L->c, sli, sp, "plugin", "SLI plugins are not supported");
            } else {
                cfg_error(L->c, sli->line, sp, "expected events");
            }
        } else {
            cfg_error(L->c, m->line, p, "missing required key \"sli\"");
        }
        free(sp);

        alert_opts_t a = {0};
        const cfg_node_t *al;
        char *ap = xprintf("%s.alerting", p);
        if (want_map(L, m, p, "alerting", &al) > 0) {
            static const char *const akeys[] = {"name", "labels", "annotations", "page_alert",
                                                "ticket_alert", NULL};
            check_keys(L, al, ap, akeys);
            a.name = xstrdup(get_str(L, al, ap, "name", 0));
            get_kv(L, al, ap, "labels", &a.labels);
            get_kv(L, al, ap, "annotations", &a.annotations);
            get_sev_opts(L, al, ap, "page_alert", &a.page, 0);
            get_sev_opts(L, al, ap, "ticket_alert", &a.ticket, 0);
        }
        if (!a.name) {
            /* Sloth requires alerting.name only when an alert is enabled; we need a name. */
            if (!a.page.disable || !a.ticket.disable) {
                cfg_error(L->c, m->line, ap, "missing required key \"name\"");
            }
            a.name = default_alert_name(s);
        }
        default_tiers(s, &a);
        free(ap);
        alert_opts_free(&a);
        free(p);
    }
    kv_free(&svc_labels);
}

/* ---------------------------------------------------------------------------------------- */
/* OpenSLO v1                                                                                */

/* Documents are collected first because SLOs reference SLIs and AlertPolicies by name,
 * possibly in other files. */
typedef struct {
    const cfg_node_t *root;
    const char *kind;
    const char *name;
    char *file;
} oslo_doc_t;

typedef struct {
    oslo_doc_t *d;
    size_t n;
    cfg_doc_t **owned;
    size_t nowned;
} oslo_list_t;

static const oslo_doc_t *oslo_find(const oslo_list_t *ol, const char *kind, const char *name)
{
    for (size_t i = 0; i < ol->n; i++) {
        if (ol->d[i].kind && ol->d[i].name && !strcmp(ol->d[i].kind, kind)
            && !strcmp(ol->d[i].name, name)) {
            return &ol->d[i];
        }
    }
    return NULL;
}

/* OpenSLO durations: m h d w, plus M Q Y which only make sense as calendar periods. */
static int oslo_duration(const char *s, int64_t *ms, char *cal_unit)
{
    *cal_unit = 0;
    size_t n = strlen(s);
    if (n >= 2 && (s[n - 1] == 'M' || s[n - 1] == 'Q' || s[n - 1] == 'Y')) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end != s + n - 1 || v <= 0) {
            return MT_EINVAL;
        }
        *cal_unit = s[n - 1];
        *ms = v * (s[n - 1] == 'M' ? 30 : s[n - 1] == 'Q' ? 91 : 365) * 86400000LL;
        return v == 1 ? MT_OK : MT_EUNSUPPORTED;
    }
    return parse_duration(s, ms);
}

/* A metricSource: {metricSourceRef?, type, spec: {query: PROMQL}}; the query is a selector or
 * sum(rate(SEL[...])). */
static int oslo_metric(ld_t *L, const cfg_node_t *holder, const char *path, const char *key,
                       slo_selector_t *sel, char **query, char ***by, size_t *nby)
{
    const cfg_node_t *h;
    if (want_map(L, holder, path, key, &h) <= 0) {
        return 0;
    }
    char *p = xprintf("%s.%s", path, key);
    const cfg_node_t *ms, *spec;
    int rc = -1;
    if (want_map(L, h, p, "metricSource", &ms) <= 0) {
        cfg_error(L->c, h->line, p, "missing metricSource");
        goto out;
    }
    char *mp = xprintf("%s.metricSource", p);
    if (want_map(L, ms, mp, "spec", &spec) <= 0) {
        cfg_error(L->c, ms->line, mp, "missing spec");
        free(mp);
        goto out;
    }
    char *qp = xprintf("%s.spec", mp);
    free(mp);
    const char *qs = get_str(L, spec, qp, "query", 0);
    if (!qs) {
        cfg_error(L->c, spec->line, qp, "missing query (a Prometheus selector or "
                                        "sum(rate(SELECTOR[window])))");
        free(qp);
        goto out;
    }
    char err[512];
    *query = xstrdup(qs);
    size_t i = 0;
    while (isspace((unsigned char)qs[i])) {
        i++;
    }
    if (!strncmp(qs + i, "sum", 3) && !is_name_char((unsigned char)qs[i + 3])) {
        agg_query_t a;
        if (parse_agg_query(qs, 0, &a, err, sizeof(err)) != 0) {
            cfg_error_key(L->c, spec, qp, "query", "%s", err);
        } else {
            *sel = a.sel;
            memset(&a.sel, 0, sizeof(a.sel));
            for (size_t k = 0; by && k < a.nby; k++) {
                *by = xrealloc(*by, (*nby + 1) * sizeof(char *));
                (*by)[(*nby)++] = xstrdup(a.by[k]);
            }
            agg_free(&a);
            rc = 1;
        }
    } else if (parse_selector(qs, sel, err, sizeof(err)) != 0) {
        cfg_error_key(L->c, spec, qp, "query", "%s", err);
    } else {
        rc = 1;
    }
    free(qp);
out:
    free(p);
    return rc;
}

static void oslo_sli(ld_t *L, slo_spec_t *s, const cfg_node_t *sli_spec, const char *path,
                     const cfg_node_t *objective, const char *opath)
{
    slo_sli_t *q = &s->sli;
    const cfg_node_t *rm, *tm;
    if (want_map(L, sli_spec, path, "ratioMetric", &rm) > 0) {
        char *p = xprintf("%s.ratioMetric", path);
        q->kind = SLO_SLI_RATIO;
        if (cfg_map_get(rm, "raw")) {
            cfg_error_key(L->c, rm, p, "raw",
                          "raw ratio metrics cannot be evaluated in-process; use good|bad + "
                          "total");
        } else {
            char **by = NULL;
            size_t nby = 0;
            q->has_good = oslo_metric(L, rm, p, "good", &q->good, &q->good_query, &by, &nby) > 0;
            q->has_bad = oslo_metric(L, rm, p, "bad", &q->bad, &q->error_query, &by, &nby) > 0;
            char **tby = NULL;
            size_t ntby = 0;
            q->has_total =
                oslo_metric(L, rm, p, "total", &q->total, &q->total_query, &tby, &ntby) > 0;
            if (!cfg_map_get(rm, "total") || (!cfg_map_get(rm, "good") && !cfg_map_get(rm, "bad"))
                || (cfg_map_get(rm, "good") && cfg_map_get(rm, "bad"))) {
                cfg_error(L->c, rm->line, p, "expected total and exactly one of good, bad");
            }
            s->group_by = tby;
            s->ngroup_by = ntby;
            for (size_t i = 0; i < nby; i++) {
                free(by[i]);
            }
            free(by);
        }
        free(p);
    } else if (want_map(L, sli_spec, path, "thresholdMetric", &tm) > 0) {
        /* A latency SLI: the query names a histogram; the objective's op/value give the
         * threshold (lte/lt: good when at or below value). */
        char *p = xprintf("%s", path);
        q->kind = SLO_SLI_LATENCY;
        if (oslo_metric(L, sli_spec, p, "thresholdMetric", &q->histogram, &q->total_query, NULL,
                        NULL)
            > 0) {
            if (q->histogram.metric) {
                size_t n = strlen(q->histogram.metric);
                if (n > 7 && !strcmp(q->histogram.metric + n - 7, "_bucket")) {
                    q->histogram.metric[n - 7] = 0;
                }
            }
        }
        const char *op = get_str(L, objective, opath, "op", 0);
        if (!op || (strcmp(op, "lte") != 0 && strcmp(op, "lt") != 0)) {
            cfg_error(L->c, objective->line, opath,
                      "thresholdMetric objectives need op: lte (or lt) and a value: the share of "
                      "observations at or below value is the SLI");
        }
        if (get_double(L, objective, opath, "value", &q->threshold) <= 0
            || !(q->threshold > 0)) {
            cfg_error(L->c, objective->line, opath, "value must be a threshold > 0");
        }
        free(p);
    } else {
        cfg_error(L->c, sli_spec->line, path, "expected ratioMetric or thresholdMetric");
    }
}

static void oslo_slo(ld_t *L, const oslo_list_t *ol, const oslo_doc_t *d)
{
    const cfg_node_t *root = d->root;
    char *path = xprintf("SLO/%s", d->name ? d->name : "?");
    char *sp = xprintf("%s.spec", path);
    const cfg_node_t *spec, *md;
    want_map(L, root, path, "metadata", &md);
    if (want_map(L, root, path, "spec", &spec) <= 0) {
        cfg_error(L->c, root->line, path, "missing spec");
        goto out;
    }
    slo_spec_t *s = spec_new(L, SLO_FMT_OPENSLO, root->line);
    const char *svc = get_str(L, spec, sp, "service", 1);
    s->service = xstrdup(svc ? svc : "");
    s->name = xstrdup(d->name ? d->name : "");
    s->description = xstrdup(get_str(L, spec, sp, "description", 0));
    set_ids(s);
    if (md) {
        get_kv(L, md, path, "labels", &s->labels);
    }
    labels_identity_first(s);

    /* time window */
    const cfg_node_t *tw = cfg_map_get(spec, "timeWindow");
    if (!tw || tw->kind != CFG_NODE_SEQ || tw->n != 1 || tw->children[0]->kind != CFG_NODE_MAP) {
        cfg_error(L->c, tw ? tw->line : spec->line, sp, "timeWindow: expected a list of one map");
    } else {
        const cfg_node_t *w = tw->children[0];
        char *wp = xprintf("%s.timeWindow[0]", sp);
        const char *dur = get_str(L, w, wp, "duration", 1);
        int rolling = 1;
        get_bool(L, w, wp, "isRolling", &rolling);
        int64_t ms = 0;
        char cu = 0;
        int rc = dur ? oslo_duration(dur, &ms, &cu) : MT_EINVAL;
        if (dur && rc != MT_OK) {
            cfg_error_key(L->c, w, wp, "duration",
                          "unsupported duration \"%s\" (rolling: m h d w; calendar: 1w or 1M)",
                          dur);
        } else if (dur && rolling) {
            if (cu) {
                cfg_error_key(L->c, w, wp, "duration",
                              "rolling windows in M/Q/Y are ambiguous; write days (e.g. 30d)");
            } else {
                s->period_ms = ms;
            }
        } else if (dur) {
            if (cu == 'M') {
                s->period_kind = SLO_PERIOD_CALENDAR_MONTH;
                s->period_ms = 30LL * 86400000;
            } else if (!cu && ms == 7LL * 86400000) {
                s->period_kind = SLO_PERIOD_CALENDAR_WEEK;
                s->period_ms = ms;
            } else {
                cfg_error_key(L->c, w, wp, "duration",
                              "calendar windows must be 1w or 1M, got \"%s\"", dur);
            }
            const cfg_node_t *cal;
            char *cp = xprintf("%s.calendar", wp);
            if (want_map(L, w, wp, "calendar", &cal) > 0) {
                const char *tz = get_str(L, cal, cp, "timeZone", 0);
                if (tz) {
                    free(s->time_zone);
                    s->time_zone = xstrdup(tz);
                }
                const char *st = get_str(L, cal, cp, "startTime", 0);
                if (st) {
                    struct tm tmv = {0};
                    const char *e = strptime(st, "%Y-%m-%d %H:%M:%S", &tmv);
                    if (!e || *e) {
                        cfg_error_key(L->c, cal, cp, "startTime",
                                      "expected \"YYYY-MM-DD HH:MM:SS\", got \"%s\"", st);
                    } else {
                        s->calendar_start_s = (int64_t)timegm(&tmv);
                    }
                }
            } else {
                cfg_error(L->c, w->line, wp, "calendar windows need calendar: {startTime, "
                                             "timeZone}");
            }
            free(cp);
        }
        free(wp);
    }

    const char *bm = get_str(L, spec, sp, "budgetingMethod", 1);
    if (bm) {
        if (!strcmp(bm, "Occurrences")) {
            s->budgeting = SLO_BUDGET_OCCURRENCES;
        } else if (!strcmp(bm, "Timeslices")) {
            s->budgeting = SLO_BUDGET_TIMESLICES;
        } else if (!strcmp(bm, "RatioTimeslices")) {
            s->budgeting = SLO_BUDGET_RATIO_TIMESLICES;
        } else {
            cfg_error_key(L->c, spec, sp, "budgetingMethod",
                          "must be Occurrences, Timeslices or RatioTimeslices");
        }
    }

    /* objectives: one (composite SLOs are not supported) */
    const cfg_node_t *objs = cfg_map_get(spec, "objectives");
    const cfg_node_t *obj = NULL;
    char *op = xprintf("%s.objectives[0]", sp);
    if (!objs || objs->kind != CFG_NODE_SEQ || objs->n == 0
        || objs->children[0]->kind != CFG_NODE_MAP) {
        cfg_error(L->c, objs ? objs->line : spec->line, sp, "objectives: expected a list of maps");
    } else {
        if (objs->n > 1) {
            cfg_error(L->c, objs->line, sp, "objectives: only one objective per SLO is supported");
        }
        obj = objs->children[0];
        double v;
        int r1 = get_double(L, obj, op, "target", &v);
        if (r1 > 0) {
            if (!(v > 0 && v < 1)) {
                cfg_error_key(L->c, obj, op, "target",
                              "objective %g out of range: target must be in (0, 1)", v);
            } else {
                s->objective = v;
            }
        } else if (r1 == 0) {
            if (get_double(L, obj, op, "targetPercent", &v) > 0) {
                if (!(v > 0 && v < 100)) {
                    cfg_error_key(L->c, obj, op, "targetPercent",
                                  "objective %g out of range: targetPercent must be in (0, 100)",
                                  v);
                } else {
                    s->objective = v / 100.0;
                }
            } else {
                cfg_error(L->c, obj->line, op, "missing target or targetPercent");
            }
        }
        if (s->budgeting != SLO_BUDGET_OCCURRENCES) {
            if (get_dur(L, obj, op, "timeSliceWindow", &s->timeslice_ms) <= 0) {
                cfg_error(L->c, obj->line, op, "%s needs timeSliceWindow",
                          slo_budgeting_name(s->budgeting));
            }
            if (s->budgeting == SLO_BUDGET_TIMESLICES
                && get_double(L, obj, op, "timeSliceTarget", &s->timeslice_target) <= 0) {
                cfg_error(L->c, obj->line, op, "Timeslices needs timeSliceTarget");
            }
        }
    }

    /* indicator: inline or by reference */
    const cfg_node_t *ind = NULL;
    const char *iref = get_str(L, spec, sp, "indicatorRef", 0);
    char *ip = NULL;
    if (iref) {
        const oslo_doc_t *sd = oslo_find(ol, "SLI", iref);
        if (!sd) {
            cfg_error_key(L->c, spec, sp, "indicatorRef", "no SLI named \"%s\" was loaded", iref);
        } else {
            ind = sd->root;
            ip = xprintf("SLI/%s", iref);
        }
    } else if (want_map(L, spec, sp, "indicator", &ind) <= 0) {
        cfg_error(L->c, spec->line, sp, "missing indicator or indicatorRef");
        ind = NULL;
    } else {
        ip = xprintf("%s.indicator", sp);
    }
    if (ind && obj) {
        const cfg_node_t *isp;
        char *isp_path = xprintf("%s.spec", ip);
        /* An SLI found by reference lives in another document, maybe another file: report
         * its errors there. */
        const char *saved = L->c->file;
        if (iref) {
            const oslo_doc_t *sd = oslo_find(ol, "SLI", iref);
            L->c->file = sd->file;
        }
        if (want_map(L, ind, ip, "spec", &isp) > 0) {
            oslo_sli(L, s, isp, isp_path, obj, op);
        } else {
            cfg_error(L->c, ind->line, ip, "missing spec");
        }
        L->c->file = saved;
        free(isp_path);
    }
    free(ip);

    /* alert policies: each burnrate condition becomes one tier (OpenSLO allows one condition
     * per policy, OpenSLO#218, so MWMBR is several policies). Without any: Sloth defaults. */
    alert_opts_t a = {0};
    a.name = default_alert_name(s);
    const cfg_node_t *aps = cfg_map_get(spec, "alertPolicies");
    if (aps && aps->kind == CFG_NODE_SEQ && aps->n > 0) {
        s->tiers = xmalloc(aps->n * sizeof(slo_tier_t));
        for (size_t i = 0; i < aps->n && i < SLO_MAX_TIERS; i++) {
            const cfg_node_t *apn = aps->children[i];
            char *pp = xprintf("%s.alertPolicies[%zu]", sp, i);
            const cfg_node_t *pol = apn;
            const char *pref = get_str(L, apn, pp, "alertPolicyRef", 0);
            if (pref) {
                const oslo_doc_t *pd = oslo_find(ol, "AlertPolicy", pref);
                if (!pd) {
                    cfg_error_key(L->c, apn, pp, "alertPolicyRef",
                                  "no AlertPolicy named \"%s\" was loaded", pref);
                    free(pp);
                    continue;
                }
                pol = pd->root;
            }
            const cfg_node_t *pspec = cfg_map_get(pol, "spec");
            const cfg_node_t *pmd = cfg_map_get(pol, "metadata");
            const cfg_node_t *conds = cfg_map_get(pspec, "conditions");
            if (!conds || conds->kind != CFG_NODE_SEQ || conds->n != 1) {
                cfg_error(L->c, pol->line, pp, "AlertPolicy needs exactly one condition");
                free(pp);
                continue;
            }
            const cfg_node_t *cn = conds->children[0];
            const char *cref = get_str(L, cn, pp, "conditionRef", 0);
            if (cref) {
                const oslo_doc_t *cd = oslo_find(ol, "AlertCondition", cref);
                if (!cd) {
                    cfg_error_key(L->c, cn, pp, "conditionRef",
                                  "no AlertCondition named \"%s\" was loaded", cref);
                    free(pp);
                    continue;
                }
                cn = cd->root;
            }
            const cfg_node_t *cspec = cfg_map_get(cn, "spec");
            const cfg_node_t *cond = cfg_map_get(cspec, "condition");
            const char *sev = scalar(cfg_map_get(cspec, "severity"));
            if (!cond || cond->kind != CFG_NODE_MAP) {
                cfg_error(L->c, cn->line, pp, "AlertCondition needs spec.condition");
                free(pp);
                continue;
            }
            char *cp = xprintf("%s.condition", pp);
            const char *kind = get_str(L, cond, cp, "kind", 0);
            if (!kind || strcmp(kind, "burnrate") != 0) {
                cfg_error(L->c, cond->line, cp, "only kind: burnrate conditions are supported");
            }
            slo_tier_t *t = &s->tiers[s->ntiers++];
            memset(t, 0, sizeof(*t));
            const char *pname = pmd ? scalar(cfg_map_get(pmd, "name")) : NULL;
            t->name = xstrdup(pname ? pname : "burnrate");
            t->severity = xstrdup(sev ? sev : "page");
            if (get_double(L, cond, cp, "threshold", &t->factor) <= 0) {
                cfg_error(L->c, cond->line, cp, "missing threshold (the burn-rate factor)");
            }
            if (get_dur(L, cond, cp, "lookbackWindow", &t->long_ms) <= 0) {
                cfg_error(L->c, cond->line, cp, "missing lookbackWindow");
            }
            t->short_ms = t->long_ms / 12; /* the workbook's short window */
            get_dur(L, cond, cp, "alertAfter", &t->for_ms);
            t->budget_percent = t->factor * (double)t->long_ms / (double)s->period_ms * 100.0;
            t->enabled = 1;
            tier_finish(s, t, &a, NULL);
            free(cp);
            free(pp);
        }
    } else {
        default_tiers(s, &a);
    }
    alert_opts_free(&a);
    free(op);
out:
    free(sp);
    free(path);
}

/* ---------------------------------------------------------------------------------------- */
/* Lint                                                                                      */

static int valid_slo_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        int mid = isalnum(c) || c == '-' || c == '_' || c == '.';
        if (!mid || ((i == 0 || i == n - 1) && !isalnum(c))) {
            return 0;
        }
    }
    return 1;
}

static int valid_metric_name(const char *s)
{
    if (!s || !is_name_start((unsigned char)s[0])) {
        return 0;
    }
    for (const char *p = s; *p; p++) {
        if (!is_name_char((unsigned char)*p)) {
            return 0;
        }
    }
    return 1;
}

static void lint_selector(cfg_ctx_t *c, const slo_spec_t *s, const slo_selector_t *sel,
                          const char *what)
{
    if (sel->metric && !sel->metric[0]) {
        cfg_error(c, s->line, s->id, "%s selector can match nothing: empty metric name", what);
    }
    int nonempty = sel->metric != NULL;
    for (size_t i = 0; i < sel->nm; i++) {
        const slo_matcher_t *m = &sel->m[i];
        if (!strcmp(m->name, "__name__") && m->op == SLO_MATCH_EQ && !m->value[0]) {
            cfg_error(c, s->line, s->id,
                      "%s selector can match nothing: __name__=\"\" (every series has a name)",
                      what);
        }
        if (!slo_matcher_match(m, "") || m->op == SLO_MATCH_NEQ) {
            nonempty = 1;
        }
    }
    if (!nonempty) {
        cfg_error(c, s->line, s->id,
                  "%s selector must have a metric name or a matcher that does not match the "
                  "empty string",
                  what);
    }
}

static void lint_spec(ld_t *L, slo_spec_t *s)
{
    cfg_ctx_t *c = L->c;
    char buf[32], buf2[32];
    if (s->name && !valid_slo_name(s->name)) {
        cfg_error(c, s->line, s->id, "SLO name \"%s\" must match [A-Za-z0-9][-A-Za-z0-9_.]*"
                                     "[A-Za-z0-9]", s->name);
    }
    if (s->service && s->service[0] && !valid_slo_name(s->service)) {
        cfg_error(c, s->line, s->id, "service \"%s\" must match [A-Za-z0-9][-A-Za-z0-9_.]*"
                                     "[A-Za-z0-9]", s->service);
    }
    if (s->objective <= 0 || s->objective >= 1) {
        return; /* already reported; the checks below divide by the budget */
    }
    const double B = 1.0 - s->objective;
    for (size_t i = 0; i < s->ntiers; i++) {
        const slo_tier_t *t = &s->tiers[i];
        if (!t->enabled) {
            continue;
        }
        if (t->factor * B >= 1.0) {
            cfg_error(c, s->line, s->id,
                      "alert tier %s can never fire: factor %g x (1 - objective) %g = %g >= 1 "
                      "(disable it or lower the factor)",
                      t->name, t->factor, B, t->factor * B);
        }
        if (t->short_ms > t->long_ms) {
            cfg_error(c, s->line, s->id, "alert tier %s: short window %s longer than long %s",
                      t->name, slo_fmt_duration(t->short_ms, buf, sizeof(buf)),
                      slo_fmt_duration(t->long_ms, buf2, sizeof(buf2)));
        }
        if (t->long_ms > s->period_ms) {
            cfg_error(c, s->line, s->id, "alert tier %s: long window %s longer than the period %s",
                      t->name, slo_fmt_duration(t->long_ms, buf, sizeof(buf)),
                      slo_fmt_duration(s->period_ms, buf2, sizeof(buf2)));
        }
        if (L->eval_ms > 0 && t->short_ms < L->eval_ms) {
            cfg_error(c, s->line, s->id,
                      "alert tier %s: window %s is shorter than the evaluation interval %s",
                      t->name, slo_fmt_duration(t->short_ms, buf, sizeof(buf)),
                      slo_fmt_duration(L->eval_ms, buf2, sizeof(buf2)));
        }
        if (!valid_metric_name(t->alert_name)) {
            cfg_error(c, s->line, s->id, "alert name \"%s\" is not a valid Prometheus name",
                      t->alert_name ? t->alert_name : "");
        }
    }
    if (s->budgeting != SLO_BUDGET_OCCURRENCES && L->eval_ms > 0 && s->timeslice_ms > 0
        && s->timeslice_ms < L->eval_ms) {
        cfg_error(c, s->line, s->id,
                  "time slice %s is shorter than the evaluation interval %s",
                  slo_fmt_duration(s->timeslice_ms, buf, sizeof(buf)),
                  slo_fmt_duration(L->eval_ms, buf2, sizeof(buf2)));
    }
    if (s->budgeting == SLO_BUDGET_TIMESLICES
        && !(s->timeslice_target > 0 && s->timeslice_target <= 1)) {
        cfg_error(c, s->line, s->id, "timeslice target %g out of range (0, 1]",
                  s->timeslice_target);
    }
    if (s->period_kind != SLO_PERIOD_ROLLING) {
        char zp[512];
        struct stat st;
        snprintf(zp, sizeof(zp), "/usr/share/zoneinfo/%s", s->time_zone);
        if (strstr(s->time_zone, "..") || s->time_zone[0] == '/'
            || (stat("/usr/share/zoneinfo", &st) == 0 && stat(zp, &st) != 0)) {
            cfg_error(c, s->line, s->id, "unknown time zone \"%s\"", s->time_zone);
        }
    }
    const slo_sli_t *q = &s->sli;
    if (q->kind == SLO_SLI_RATIO) {
        if (q->has_good) {
            lint_selector(c, s, &q->good, "good");
        }
        if (q->has_bad) {
            lint_selector(c, s, &q->bad, "bad");
        }
        if (q->has_total) {
            lint_selector(c, s, &q->total, "total");
        }
    } else if (q->kind == SLO_SLI_LATENCY) {
        if (q->histogram.metric || q->histogram.nm) {
            lint_selector(c, s, &q->histogram, "histogram");
        }
    } else if (!q->service || !q->service[0]) {
        cfg_error(c, s->line, s->id, "%s SLI needs a service", slo_sli_kind_name(q->kind));
    }
    if (s->ngroup_by > SLO_MAX_GROUP_BY) {
        cfg_error(c, s->line, s->id, "more than %d group_by labels", SLO_MAX_GROUP_BY);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Loading                                                                                   */

/* cfg_load_* accept one document per file; spec files often hold several (`---`), so the text
 * is split here, each part padded with newlines so line numbers stay those of the file. */
static void load_text(ld_t *L, const char *name, const char *text, size_t len,
                      oslo_list_t *ol)
{
    size_t pos = 0;
    int line = 1, start_line = 1;
    size_t start = 0;
    for (;;) {
        int at_end = pos >= len;
        int sep = !at_end && (pos == 0 || text[pos - 1] == '\n') && len - pos >= 3
                  && !strncmp(text + pos, "---", 3)
                  && (pos + 3 == len || text[pos + 3] == '\n' || text[pos + 3] == ' '
                      || text[pos + 3] == '\r');
        if (at_end || sep) {
            size_t plen = pos - start;
            int blank = 1;
            for (size_t k = start; k < pos; k++) {
                if (!isspace((unsigned char)text[k])) {
                    /* a comment-only part counts as blank */
                    if (text[k] == '#') {
                        while (k < pos && text[k] != '\n') {
                            k++;
                        }
                        continue;
                    }
                    blank = 0;
                    break;
                }
            }
            if (!blank) {
                size_t pad = (size_t)(start_line - 1);
                char *buf = xmalloc(pad + plen + 1);
                memset(buf, '\n', pad);
                memcpy(buf + pad, text + start, plen);
                mt_errbuf_t eb;
                mt_errbuf_clear(&eb);
                cfg_doc_t *doc = cfg_load_string(name, buf, pad + plen, &eb);
                free(buf);
                if (!doc) {
                    cfg_error(L->c, 0, NULL, "%s", eb.msg);
                } else {
                    const cfg_node_t *r = doc->root;
                    const char *ver = scalar(cfg_map_get(r, "version"));
                    const char *api = scalar(cfg_map_get(r, "apiVersion"));
                    int keep = 0;
                    if (r->kind != CFG_NODE_MAP) {
                        cfg_error(L->c, r->line, NULL, "expected a map at the top of the spec");
                    } else if (api && !strcmp(api, "openslo/v1")) {
                        const cfg_node_t *md = cfg_map_get(r, "metadata");
                        ol->d = xrealloc(ol->d, (ol->n + 1) * sizeof(oslo_doc_t));
                        oslo_doc_t *d = &ol->d[ol->n++];
                        d->root = r;
                        d->kind = scalar(cfg_map_get(r, "kind"));
                        d->name = scalar(cfg_map_get(md, "name"));
                        d->file = xstrdup(name);
                        if (!d->kind) {
                            cfg_error(L->c, r->line, NULL, "OpenSLO document without kind");
                        } else if (!d->name) {
                            cfg_error(L->c, r->line, "metadata", "missing name");
                        }
                        keep = 1;
                    } else if (api) {
                        cfg_error_key(L->c, r, "", "apiVersion",
                                      "unsupported \"%s\" (supported: openslo/v1)", api);
                    } else if (ver && !strcmp(ver, "prometheus/v1")) {
                        sloth_doc(L, r);
                    } else if ((ver && !strcmp(ver, "meltp/v1")) || (!ver && cfg_map_get(r, "slos"))) {
                        native_doc(L, r);
                    } else if (ver) {
                        cfg_error_key(L->c, r, "", "version",
                                      "unsupported \"%s\" (supported: meltp/v1, prometheus/v1)",
                                      ver);
                    } else {
                        cfg_error(L->c, r->line, NULL,
                                  "not an SLO spec: expected version: meltp/v1 | prometheus/v1 "
                                  "or apiVersion: openslo/v1");
                    }
                    if (keep) {
                        ol->owned = xrealloc(ol->owned, (ol->nowned + 1) * sizeof(cfg_doc_t *));
                        ol->owned[ol->nowned++] = doc;
                    } else {
                        cfg_doc_destroy(doc);
                    }
                }
            }
            if (at_end) {
                break;
            }
            /* skip the separator line */
            while (pos < len && text[pos] != '\n') {
                pos++;
            }
            if (pos < len) {
                pos++;
            }
            line++;
            start = pos;
            start_line = line;
            continue;
        }
        if (text[pos] == '\n') {
            line++;
        }
        pos++;
    }
}

static void load_file(ld_t *L, const char *path, oslo_list_t *ol)
{
    const char *saved = L->c->file;
    L->c->file = path;
    L->file = path;
    FILE *f = fopen(path, "rb");
    if (!f) {
        cfg_error(L->c, 0, NULL, "cannot open: %s", strerror(errno));
        L->c->file = saved;
        return;
    }
    sb_t b;
    sb_init(&b, (size_t)CFG_MAX_FILE_BYTES + 1);
    int rc = sb_fread(&b, f);
    fclose(f);
    if (rc == MT_ETOOBIG) {
        cfg_error(L->c, 0, NULL, "file larger than %u bytes", CFG_MAX_FILE_BYTES);
    } else if (rc == MT_ENOMEM) {
        fprintf(stderr, "meltp: out of memory loading SLO specs\n"); /* as xrealloc */
        exit(1);
    } else {
        load_text(L, path, sb_str(&b), b.len, ol); /* a read error: what was read, as before */
    }
    sb_fini(&b);
    L->c->file = saved;
}

/* Resolves OpenSLO SLOs (after every file is read, so refs may cross files), lints every SLO
 * and checks ids are unique. */
static void finish(ld_t *L, oslo_list_t *ol)
{
    const char *saved = L->c->file;
    for (size_t i = 0; i < ol->n; i++) {
        const oslo_doc_t *d = &ol->d[i];
        if (!d->kind) {
            continue;
        }
        L->c->file = d->file;
        L->file = d->file;
        if (!strcmp(d->kind, "SLO")) {
            oslo_slo(L, ol, d);
        } else if (strcmp(d->kind, "SLI") && strcmp(d->kind, "AlertPolicy")
                   && strcmp(d->kind, "AlertCondition") && strcmp(d->kind, "Service")
                   && strcmp(d->kind, "DataSource") && strcmp(d->kind, "AlertNotificationTarget")) {
            cfg_error_key(L->c, d->root, "", "kind", "unknown OpenSLO kind \"%s\"", d->kind);
        }
    }
    for (size_t i = 0; i < ol->n; i++) {
        free(ol->d[i].file);
    }
    free(ol->d);
    for (size_t i = 0; i < ol->nowned; i++) {
        cfg_doc_destroy(ol->owned[i]);
    }
    free(ol->owned);

    slo_set_t *set = L->set;
    if (set->n > SLO_MAX_SPECS) {
        cfg_error(L->c, 0, "slo", "more than %d SLOs", SLO_MAX_SPECS);
    }
    for (size_t i = 0; i < set->n; i++) {
        slo_spec_t *s = &set->slos[i];
        L->c->file = s->file;
        lint_spec(L, s);
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(set->slos[j].id, s->id)) {
                cfg_error(L->c, s->line, s->id, "duplicate SLO id \"%s\" (first defined at %s:%d)",
                          s->id, set->slos[j].file, set->slos[j].line);
                break;
            }
        }
    }
    L->c->file = saved;
}

static int done(ld_t *L, size_t nerr_before, slo_set_t **out)
{
    if (L->c->nerr > nerr_before) {
        slo_set_destroy(L->set);
        *out = NULL;
        return MT_EINVAL;
    }
    *out = L->set;
    return MT_OK;
}

int slo_specs_load(const char *const *globs, size_t n, const char *base_dir,
                   int64_t eval_interval_ms, cfg_ctx_t *c, slo_set_t **out)
{
    size_t before = c->nerr;
    ld_t L = {.c = c, .eval_ms = eval_interval_ms, .set = xmalloc(sizeof(slo_set_t))};
    L.set->eval_interval_ms = eval_interval_ms;
    oslo_list_t ol = {0};
    for (size_t i = 0; i < n; i++) {
        char *pat = (globs[i][0] == '/' || !base_dir || !base_dir[0])
                        ? xstrdup(globs[i])
                        : xprintf("%s/%s", base_dir, globs[i]);
        glob_t g;
        int rc = glob(pat, GLOB_ERR, NULL, &g);
        if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
            cfg_error(c, 0, "slo.specs", "\"%s\" matches no file", pat);
        } else if (rc != 0) {
            cfg_error(c, 0, "slo.specs", "\"%s\": cannot list files", pat);
        } else {
            for (size_t k = 0; k < g.gl_pathc; k++) {
                load_file(&L, g.gl_pathv[k], &ol);
            }
        }
        if (rc == 0) {
            globfree(&g);
        }
        free(pat);
    }
    finish(&L, &ol);
    return done(&L, before, out);
}

int slo_specs_load_file(const char *path, int64_t eval_interval_ms, cfg_ctx_t *c,
                        slo_set_t **out)
{
    size_t before = c->nerr;
    ld_t L = {.c = c, .eval_ms = eval_interval_ms, .set = xmalloc(sizeof(slo_set_t))};
    L.set->eval_interval_ms = eval_interval_ms;
    oslo_list_t ol = {0};
    load_file(&L, path, &ol);
    finish(&L, &ol);
    return done(&L, before, out);
}

int slo_specs_load_string(const char *name, const char *text, size_t len,
                          int64_t eval_interval_ms, cfg_ctx_t *c, slo_set_t **out)
{
    size_t before = c->nerr;
    ld_t L = {.c = c, .eval_ms = eval_interval_ms, .set = xmalloc(sizeof(slo_set_t))};
    L.set->eval_interval_ms = eval_interval_ms;
    oslo_list_t ol = {0};
    const char *saved = c->file;
    c->file = name;
    L.file = name;
    load_text(&L, name, text, len, &ol);
    c->file = saved;
    finish(&L, &ol);
    return done(&L, before, out);
}

/* ---------------------------------------------------------------------------------------- */
/* slo.md 2.3 maths                                                                          */

double slo_tier_threshold(const slo_spec_t *s, const slo_tier_t *t)
{
    return t->factor * (1.0 - s->objective);
}

int64_t slo_tier_detection_ms(const slo_spec_t *s, const slo_tier_t *t, double e)
{
    double thr = slo_tier_threshold(s, t);
    if (!(e > thr) || e <= 0) {
        return -1;
    }
    /* A window W holding t of errors at ratio e reads e*t/W (t < W); it crosses thr at
     * t = W*thr/e. Both windows must cross, so the long one decides. */
    double tl = (double)t->long_ms * thr / e;
    double ts = (double)t->short_ms * thr / e;
    double d = tl > ts ? tl : ts;
    return (int64_t)llround(d) + t->for_ms;
}

int64_t slo_tier_reset_ms(const slo_spec_t *s, const slo_tier_t *t)
{
    double thr = slo_tier_threshold(s, t);
    if (thr >= 1) {
        return -1;
    }
    /* After a full outage that filled the short window, its ratio falls as (W - t)/W and
     * crosses thr at t = W*(1 - thr); the long window is still above, the AND clears. */
    return (int64_t)llround((double)t->short_ms * (1.0 - thr)) + t->keep_firing_for_ms;
}
