/*
 * spec.c - SLO spec loading and lint: native meltp specs, Sloth `prometheus/v1` files and
 * OpenSLO v1 documents all become slo_spec_t (model.h). Formats are detected per YAML document,
 * so one file may mix them. Every problem is reported as FILE:LINE: path: reason and loading
 * goes on, so a user sees all mistakes at once (craft convention 5).
 * This file holds the shared helpers, YAML accessors, alert tiers, the spec lifecycle and the
 * loading entry points; the dialects live in spec_native.c, spec_sloth.c and spec_openslo.c,
 * selectors and the PromQL subset in spec_promql.c, lint in spec_lint.c (shared: spec_int.h).
 */
#include "model.h"
#include "spec_int.h"
#include "sb.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loading runs at start-up or in a CLI, where exiting on out-of-memory is allowed (craft
 * convention 11), so allocation failures end the process instead of threading ENOMEM through
 * hundreds of call sites. */
void *spec_xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        fprintf(stderr, "meltp: out of memory loading SLO specs\n");
        exit(1);
    }
    return p;
}

void *spec_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "meltp: out of memory loading SLO specs\n");
        exit(1);
    }
    return q;
}

char *spec_xstrdup(const char *s)
{
    if (!s) {
        return NULL;
    }
    size_t n = strlen(s);
    char *d = spec_xmalloc(n + 1);
    memcpy(d, s, n + 1);
    return d;
}

char *spec_xprintf(const char *fmt, ...)
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
            kv->vals[i] = spec_xstrdup(v);
            return;
        }
    }
    kv->keys = spec_xrealloc(kv->keys, (kv->n + 1) * sizeof(char *));
    kv->vals = spec_xrealloc(kv->vals, (kv->n + 1) * sizeof(char *));
    kv->keys[kv->n] = spec_xstrdup(k);
    kv->vals[kv->n] = spec_xstrdup(v);
    kv->n++;
}

void spec_kv_copy(slo_kv_t *dst, const slo_kv_t *src)
{
    for (size_t i = 0; i < src->n; i++) {
        kv_set(dst, src->keys[i], src->vals[i]);
    }
}

void spec_kv_free(slo_kv_t *kv)
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
int spec_parse_duration(const char *s, int64_t *out)
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
    } units[] = {{7LL * 86400000, "w"}, {86400000, "d"}, {3600000, "h"},
                 {60000, "m"},          {1000, "s"},     {1, "ms"}};
    if (ms <= 0) {
        snprintf(buf, len, "0s");
        return buf;
    }
    size_t off = 0;
    buf[0] = 0;
    /* Weeks only when exact: Sloth and Prometheus users write 28d, not 4w. */
    size_t first = (ms % (7LL * 86400000) == 0 && ms / 86400000 % 7 == 0 && ms >= 7 * 86400000LL &&
                    ms / 86400000 != 28 && ms / 86400000 != 14)
                       ? 0
                       : 1;
    for (size_t i = first; i < MT_ARRAY_LEN(units) && ms > 0; i++) {
        if (ms >= units[i].ms) {
            int64_t q = ms / units[i].ms;
            ms -= q * units[i].ms;
            int w =
                snprintf(buf + off, len > off ? len - off : 0, "%lld%s", (long long)q, units[i].u);
            if (w > 0) {
                off += (size_t)w;
            }
        }
    }
    return buf;
}

/* ---------------------------------------------------------------------------------------- */
/* YAML node accessors that report errors                                                   */

const char *spec_scalar(const cfg_node_t *n)
{
    return n && n->kind == CFG_NODE_SCALAR ? n->value : NULL;
}

/* Reports keys of `map` not in the NULL-terminated `allowed` list. */
void spec_check_keys(ld_t *L, const cfg_node_t *map, const char *path, const char *const *allowed)
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

int spec_want_map(ld_t *L, const cfg_node_t *map, const char *path, const char *key,
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
const char *spec_get_str(ld_t *L, const cfg_node_t *map, const char *path, const char *key,
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
        cfg_error_key(L->c, map, path, key, "expected a string, got a %s", cfg_kind_name(n->kind));
        return NULL;
    }
    if (required && !n->value[0]) {
        cfg_error_key(L->c, map, path, key, "must not be empty");
        return NULL;
    }
    return n->value;
}

int spec_get_double(ld_t *L, const cfg_node_t *map, const char *path, const char *key, double *out)
{
    const char *s = spec_get_str(L, map, path, key, 0);
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

int spec_get_bool(ld_t *L, const cfg_node_t *map, const char *path, const char *key, int *out)
{
    const char *s = spec_get_str(L, map, path, key, 0);
    if (!s) {
        return 0;
    }
    if (cfg_parse_bool(s, out) != MT_OK) {
        cfg_error_key(L->c, map, path, key, "not a boolean: \"%s\"", s);
        return -1;
    }
    return 1;
}

int spec_get_dur(ld_t *L, const cfg_node_t *map, const char *path, const char *key, int64_t *out)
{
    const char *s = spec_get_str(L, map, path, key, 0);
    if (!s) {
        return 0;
    }
    if (!strcmp(s, "0") || !strcmp(s, "0s")) {
        *out = 0;
        return 1;
    }
    if (spec_parse_duration(s, out) != MT_OK) {
        cfg_error_key(L->c, map, path, key, "not a duration: \"%s\" (e.g. 5m, 1h, 30d)", s);
        return -1;
    }
    return 1;
}

void spec_get_kv(ld_t *L, const cfg_node_t *map, const char *path, const char *key, slo_kv_t *out)
{
    const cfg_node_t *m;
    if (spec_want_map(L, map, path, key, &m) <= 0) {
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
            char *joined = spec_xstrdup("");
            for (size_t j = 0; j < v->n; j++) {
                const char *item = spec_scalar(v->children[j]);
                char *nj = spec_xprintf("%s%s%s", joined, j ? "," : "", item ? item : "");
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

void spec_get_strlist(ld_t *L, const cfg_node_t *map, const char *path, const char *key,
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
        const char *s = spec_scalar(n->children[i]);
        if (!s || !*s) {
            cfg_error(L->c, n->children[i]->line, path, "%s[%zu]: expected a non-empty string", key,
                      i);
            continue;
        }
        *out = spec_xrealloc(*out, (*nout + 1) * sizeof(char *));
        (*out)[(*nout)++] = spec_xstrdup(s);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Alert tiers                                                                               */

void spec_alert_opts_free(alert_opts_t *a)
{
    free(a->name);
    spec_kv_free(&a->labels);
    spec_kv_free(&a->annotations);
    spec_kv_free(&a->page.labels);
    spec_kv_free(&a->page.annotations);
    spec_kv_free(&a->ticket.labels);
    spec_kv_free(&a->ticket.annotations);
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

void spec_tier_finish(slo_spec_t *s, slo_tier_t *t, const alert_opts_t *a, const sev_opts_t *so)
{
    t->alert_name = spec_xstrdup(a->name);
    kv_set(&t->labels, "sloth_severity", t->severity);
    spec_kv_copy(&t->labels, &a->labels);
    if (so) {
        spec_kv_copy(&t->labels, &so->labels);
    }
    char *title = spec_xprintf("(%s) %s %s SLO error budget burn rate is too fast.", t->severity,
                               s->service, s->name);
    char *summary =
        spec_xprintf("%s %s SLO error budget burn rate is over expected.", s->service, s->name);
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
    spec_kv_copy(&t->annotations, &a->annotations);
    if (so) {
        spec_kv_copy(&t->annotations, &so->annotations);
    }
}

/* Default alert name when a spec gives none: CamelCase of service and SLO name plus
 * "BurnRate" (patient-api + availability -> PatientApiAvailabilityBurnRate), unique per SLO so
 * two SLOs never share an alert identity (promtool flags that as duplicate rules). */
char *spec_default_alert_name(const slo_spec_t *s)
{
    const char *parts[2] = {s->service ? s->service : "", s->name ? s->name : ""};
    size_t cap = strlen(parts[0]) + strlen(parts[1]) + 16, n = 0;
    char *out = spec_xmalloc(cap);
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

void spec_default_tiers(slo_spec_t *s, const alert_opts_t *a)
{
    s->tiers = spec_xmalloc(MT_ARRAY_LEN(DEFAULT_TIERS) * sizeof(slo_tier_t));
    s->ntiers = MT_ARRAY_LEN(DEFAULT_TIERS);
    for (size_t i = 0; i < s->ntiers; i++) {
        slo_tier_t *t = &s->tiers[i];
        const sev_opts_t *so = !strcmp(DEFAULT_TIERS[i].severity, "page") ? &a->page : &a->ticket;
        t->name = spec_xstrdup(DEFAULT_TIERS[i].name);
        t->severity = spec_xstrdup(DEFAULT_TIERS[i].severity);
        t->long_ms = DEFAULT_TIERS[i].long_ms;
        t->short_ms = DEFAULT_TIERS[i].short_ms;
        t->budget_percent = DEFAULT_TIERS[i].pct;
        t->factor = DEFAULT_TIERS[i].pct / 100.0 * (double)s->period_ms / (double)t->long_ms;
        t->enabled = !so->disable;
        t->for_ms = so->for_ms;
        t->keep_firing_for_ms = so->keep_ms;
        spec_tier_finish(s, t, a, so);
    }
}

void spec_get_sev_opts(ld_t *L, const cfg_node_t *map, const char *path, const char *key,
                       sev_opts_t *o, int native)
{
    const cfg_node_t *m;
    if (spec_want_map(L, map, path, key, &m) <= 0) {
        return;
    }
    char *p = spec_xprintf("%s.%s", path, key);
    static const char *const sloth_keys[] = {"disable", "labels", "annotations", NULL};
    static const char *const native_keys[] = {"disable", "labels",          "annotations",
                                              "for",     "keep_firing_for", NULL};
    spec_check_keys(L, m, p, native ? native_keys : sloth_keys);
    spec_get_bool(L, m, p, "disable", &o->disable);
    spec_get_kv(L, m, p, "labels", &o->labels);
    spec_get_kv(L, m, p, "annotations", &o->annotations);
    if (native) {
        spec_get_dur(L, m, p, "for", &o->for_ms);
        spec_get_dur(L, m, p, "keep_firing_for", &o->keep_ms);
    }
    free(p);
}

/* ---------------------------------------------------------------------------------------- */
/* Spec lifecycle                                                                            */

static void sli_free(slo_sli_t *q)
{
    spec_selector_free(&q->good);
    spec_selector_free(&q->bad);
    spec_selector_free(&q->total);
    spec_selector_free(&q->histogram);
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
        spec_kv_free(&t->labels);
        spec_kv_free(&t->annotations);
    }
    free(s->tiers);
    for (size_t i = 0; i < s->ngroup_by; i++) {
        free(s->group_by[i]);
    }
    free(s->group_by);
    spec_kv_free(&s->labels);
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

slo_spec_t *spec_new(ld_t *L, slo_format_t fmt, int line)
{
    slo_set_t *set = L->set;
    set->slos = spec_xrealloc(set->slos, (set->n + 1) * sizeof(slo_spec_t));
    slo_spec_t *s = &set->slos[set->n++];
    memset(s, 0, sizeof(*s));
    s->format = fmt;
    s->file = spec_xstrdup(L->file);
    s->line = line;
    s->period_kind = SLO_PERIOD_ROLLING;
    s->period_ms = 30LL * 86400000;
    s->time_zone = spec_xstrdup("UTC");
    s->max_groups = SLO_DEFAULT_MAX_GROUPS;
    s->nodata = SLO_NODATA_GOOD;
    return s;
}

void spec_set_ids(slo_spec_t *s)
{
    free(s->id);
    s->id = spec_xprintf("%s-%s", s->service ? s->service : "", s->name ? s->name : "");
    kv_set(&s->labels, "sloth_service", s->service ? s->service : "");
    kv_set(&s->labels, "sloth_slo", s->name ? s->name : "");
    kv_set(&s->labels, "sloth_id", s->id);
}

/* Moves the sloth_* identity labels to the front so rule output reads id, service, slo, ... */
void spec_labels_identity_first(slo_spec_t *s)
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
    spec_kv_free(&s->labels);
    s->labels = out;
}

/* Objective given in percent (0, 100): stores the ratio. Lint: out of range. */
void spec_set_objective_pct(ld_t *L, slo_spec_t *s, const cfg_node_t *map, const char *path,
                            const char *key)
{
    double v;
    int rc = spec_get_double(L, map, path, key, &v);
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
/* Loading                                                                                   */

/* cfg_load_* accept one document per file; spec files often hold several (`---`), so the text
 * is split here, each part padded with newlines so line numbers stay those of the file. */
static void load_text(ld_t *L, const char *name, const char *text, size_t len, oslo_list_t *ol)
{
    size_t pos = 0;
    int line = 1, start_line = 1;
    size_t start = 0;
    for (;;) {
        int at_end = pos >= len;
        int sep = !at_end && (pos == 0 || text[pos - 1] == '\n') && len - pos >= 3 &&
                  !strncmp(text + pos, "---", 3) &&
                  (pos + 3 == len || text[pos + 3] == '\n' || text[pos + 3] == ' ' ||
                   text[pos + 3] == '\r');
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
                char *buf = spec_xmalloc(pad + plen + 1);
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
                    const char *ver = spec_scalar(cfg_map_get(r, "version"));
                    const char *api = spec_scalar(cfg_map_get(r, "apiVersion"));
                    int keep = 0;
                    if (r->kind != CFG_NODE_MAP) {
                        cfg_error(L->c, r->line, NULL, "expected a map at the top of the spec");
                    } else if (api && !strcmp(api, "openslo/v1")) {
                        const cfg_node_t *md = cfg_map_get(r, "metadata");
                        ol->d = spec_xrealloc(ol->d, (ol->n + 1) * sizeof(oslo_doc_t));
                        oslo_doc_t *d = &ol->d[ol->n++];
                        d->root = r;
                        d->kind = spec_scalar(cfg_map_get(r, "kind"));
                        d->name = spec_scalar(cfg_map_get(md, "name"));
                        d->file = spec_xstrdup(name);
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
                        spec_sloth_doc(L, r);
                    } else if ((ver && !strcmp(ver, "meltp/v1")) ||
                               (!ver && cfg_map_get(r, "slos"))) {
                        spec_native_doc(L, r);
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
                        ol->owned =
                            spec_xrealloc(ol->owned, (ol->nowned + 1) * sizeof(cfg_doc_t *));
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
        fprintf(stderr, "meltp: out of memory loading SLO specs\n"); /* as spec_xrealloc */
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
            spec_oslo_slo(L, ol, d);
        } else if (strcmp(d->kind, "SLI") && strcmp(d->kind, "AlertPolicy") &&
                   strcmp(d->kind, "AlertCondition") && strcmp(d->kind, "Service") &&
                   strcmp(d->kind, "DataSource") && strcmp(d->kind, "AlertNotificationTarget")) {
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
        spec_lint_spec(L, s);
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
    ld_t L = {.c = c, .eval_ms = eval_interval_ms, .set = spec_xmalloc(sizeof(slo_set_t))};
    L.set->eval_interval_ms = eval_interval_ms;
    oslo_list_t ol = {0};
    for (size_t i = 0; i < n; i++) {
        char *pat = (globs[i][0] == '/' || !base_dir || !base_dir[0])
                        ? spec_xstrdup(globs[i])
                        : spec_xprintf("%s/%s", base_dir, globs[i]);
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

int slo_specs_load_file(const char *path, int64_t eval_interval_ms, cfg_ctx_t *c, slo_set_t **out)
{
    size_t before = c->nerr;
    ld_t L = {.c = c, .eval_ms = eval_interval_ms, .set = spec_xmalloc(sizeof(slo_set_t))};
    L.set->eval_interval_ms = eval_interval_ms;
    oslo_list_t ol = {0};
    load_file(&L, path, &ol);
    finish(&L, &ol);
    return done(&L, before, out);
}

int slo_specs_load_string(const char *name, const char *text, size_t len, int64_t eval_interval_ms,
                          cfg_ctx_t *c, slo_set_t **out)
{
    size_t before = c->nerr;
    ld_t L = {.c = c, .eval_ms = eval_interval_ms, .set = spec_xmalloc(sizeof(slo_set_t))};
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

const cfg_node_t *spec_doc_slos(ld_t *L, const cfg_node_t *root, const char **service,
                                slo_kv_t *svc_labels)
{
    *service = spec_get_str(L, root, "", "service", 1);
    spec_get_kv(L, root, "", "labels", svc_labels);
    const cfg_node_t *slos = cfg_map_get(root, "slos");
    if (!slos || slos->kind != CFG_NODE_SEQ || slos->n == 0) {
        cfg_error(L->c, slos ? slos->line : root->line, "slos", "expected a non-empty list");
        spec_kv_free(svc_labels);
        return NULL;
    }
    return slos;
}

const cfg_node_t *spec_doc_slo(ld_t *L, const cfg_node_t *slos, size_t i, char **path)
{
    const cfg_node_t *m = slos->children[i];
    *path = spec_xprintf("slos[%zu]", i);
    if (m->kind != CFG_NODE_MAP) {
        cfg_error(L->c, m->line, *path, "expected a map");
        free(*path);
        *path = NULL;
        return NULL;
    }
    return m;
}
