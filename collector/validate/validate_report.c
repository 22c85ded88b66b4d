/*
 * validate_report.c - the report model of `meltp validate` (find-or-add lists with caps) and
 * its five writers. JSON goes through jansson so escaping is never hand-rolled; the text
 * formats (text, markdown, junit, html) escape every user-supplied string for their syntax.
 * The HTML file is self-contained: inline CSS, no scripts, no external URL.
 */
#include "validate_report.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *sig_names[VR_NSIG] = {"metrics", "events", "logs", "traces", "profiles"};

const char *vr_signal_name(int s)
{
    return s >= 0 && s < VR_NSIG ? sig_names[s] : "?";
}

int vr_signal_parse(const char *name)
{
    for (int i = 0; i < VR_NSIG; i++) {
        if (name && strcmp(name, sig_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

/* ---- string sets ------------------------------------------------------------------------ */

/* Binary search: index of s, or -(insertion point) - 1. */
static long strset_find(const vr_strset_t *set, const char *s)
{
    size_t lo = 0, hi = set->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(set->v[mid], s);
        if (c == 0) {
            return (long)mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -(long)lo - 1;
}

int vr_strset_has(const vr_strset_t *set, const char *s)
{
    return set->n && strset_find(set, s) >= 0;
}

int vr_strset_add(vr_strset_t *set, const char *s)
{
    long at = strset_find(set, s);
    if (at >= 0) {
        return 0;
    }
    size_t limit = set->limit ? set->limit : VR_STRSET_DEFAULT_LIMIT;
    if (set->n >= limit) {
        set->overflow++;
        return 0;
    }
    if (set->n == set->cap_alloc) {
        size_t nc = set->cap_alloc ? set->cap_alloc * 2 : 8;
        char **nv = realloc(set->v, nc * sizeof(*nv));
        if (!nv) {
            return 0;
        }
        set->v = nv;
        set->cap_alloc = nc;
    }
    char *copy = strdup(s);
    if (!copy) {
        return 0;
    }
    size_t pos = (size_t)(-at - 1);
    memmove(set->v + pos + 1, set->v + pos, (set->n - pos) * sizeof(*set->v));
    set->v[pos] = copy;
    set->n++;
    return 1;
}

void vr_strset_fini(vr_strset_t *set)
{
    for (size_t i = 0; i < set->n; i++) {
        free(set->v[i]);
    }
    free(set->v);
    set->v = NULL;
    set->n = set->cap_alloc = 0;
}

/* ---- lists ------------------------------------------------------------------------------ */

/* Appends p to a growable pointer array; returns 0 or -1 (out of memory or at `max`). */
static int push(void ***arr, size_t *n, size_t *cap, size_t max, void *p)
{
    if (*n >= max) {
        return -1;
    }
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        void **na = realloc(*arr, nc * sizeof(*na));
        if (!na) {
            return -1;
        }
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = p;
    return 0;
}

#define PUSH(r, list, max, p) \
    push((void ***)&(r)->list, &(r)->n##list, &(r)->cap_##list, (max), (p))

static int streq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

void vr_report_init(vr_report_t *r)
{
    memset(r, 0, sizeof(*r));
}

/* Linear find-or-add: reports hold tens of services, not millions (the caps bound the worst
 * case); a hash would be the next step if a gateway-sized input ever made this show up. */
vr_service_t *vr_service_get(vr_report_t *r, const char *service, const char *environment)
{
    for (size_t i = r->nservices; i-- > 0;) {
        vr_service_t *s = r->services[i];
        if (streq(s->service, service) && streq(s->environment, environment)) {
            return s;
        }
    }
    vr_service_t *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->service = strdup(service ? service : "");
    s->environment = strdup(environment ? environment : "");
    if (!s->service || !s->environment || PUSH(r, services, VR_MAX_SERVICES, s) != 0) {
        free(s->service);
        free(s->environment);
        free(s);
        return NULL;
    }
    return s;
}

vr_violation_t *vr_violation_get(vr_report_t *r, const char *rule, const char *service)
{
    for (size_t i = 0; i < r->nviolations; i++) {
        vr_violation_t *v = r->violations[i];
        if (streq(v->rule, rule) && streq(v->service, service)) {
            return v;
        }
    }
    vr_violation_t *v = calloc(1, sizeof(*v));
    if (!v) {
        return NULL;
    }
    v->rule = strdup(rule ? rule : "");
    v->service = strdup(service ? service : "");
    if (!v->rule || !v->service || PUSH(r, violations, VR_MAX_VIOLATIONS, v) != 0) {
        free(v->rule);
        free(v->service);
        free(v);
        return NULL;
    }
    return v;
}

void vr_violation_example(vr_violation_t *v, const char *example)
{
    if (!example || v->nexamples >= VR_MAX_EXAMPLES) {
        return;
    }
    for (size_t i = 0; i < v->nexamples; i++) {
        if (strcmp(v->examples[i], example) == 0) {
            return;
        }
    }
    char *c = strdup(example);
    if (c) {
        v->examples[v->nexamples++] = c;
    }
}

vr_pii_t *vr_pii_get(vr_report_t *r, const char *detector, const char *service, const char *where,
                     const char *action)
{
    action = action ? action : "none";
    for (size_t i = 0; i < r->npii; i++) {
        vr_pii_t *p = r->pii[i];
        if (streq(p->detector, detector) && streq(p->service, service) && streq(p->where, where) &&
            streq(p->action, action)) {
            return p;
        }
    }
    vr_pii_t *p = calloc(1, sizeof(*p));
    if (!p) {
        return NULL;
    }
    p->detector = strdup(detector ? detector : "");
    p->service = strdup(service ? service : "");
    p->where = strdup(where ? where : "");
    p->action = action;
    if (!p->detector || !p->service || !p->where || PUSH(r, pii, VR_MAX_PII, p) != 0) {
        free(p->detector);
        free(p->service);
        free(p->where);
        free(p);
        return NULL;
    }
    return p;
}

vr_metric_preview_t *vr_metric_get(vr_report_t *r, const char *name, const char *type,
                                   const char *unit)
{
    for (size_t i = 0; i < r->nmetrics; i++) {
        vr_metric_preview_t *m = r->metrics[i];
        if (streq(m->name, name) && streq(m->type, type) && streq(m->unit, unit)) {
            return m;
        }
    }
    vr_metric_preview_t *m = calloc(1, sizeof(*m));
    if (!m) {
        return NULL;
    }
    m->name = strdup(name ? name : "");
    m->type = strdup(type ? type : "");
    m->unit = strdup(unit ? unit : "");
    if (!m->name || !m->type || !m->unit || PUSH(r, metrics, VR_MAX_METRICS, m) != 0) {
        free(m->name);
        free(m->type);
        free(m->unit);
        free(m);
        return NULL;
    }
    return m;
}

vr_log_preview_t *vr_log_get(vr_report_t *r, const char *service, const char *environment)
{
    for (size_t i = 0; i < r->nlogs; i++) {
        vr_log_preview_t *l = r->logs[i];
        if (streq(l->service, service) && streq(l->environment, environment)) {
            return l;
        }
    }
    vr_log_preview_t *l = calloc(1, sizeof(*l));
    if (!l) {
        return NULL;
    }
    l->service = strdup(service ? service : "");
    l->environment = strdup(environment ? environment : "");
    if (!l->service || !l->environment || PUSH(r, logs, VR_MAX_SERVICES, l) != 0) {
        free(l->service);
        free(l->environment);
        free(l);
        return NULL;
    }
    return l;
}

vr_slo_t *vr_slo_add(vr_report_t *r, const char *name, const char *file)
{
    vr_slo_t *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->name = strdup(name ? name : "");
    s->file = strdup(file ? file : "");
    if (!s->name || !s->file || PUSH(r, slos, VR_MAX_SERVICES, s) != 0) {
        free(s->name);
        free(s->file);
        free(s);
        return NULL;
    }
    return s;
}

vr_slo_cov_t *vr_slo_cov_get(vr_report_t *r, const char *service)
{
    for (size_t i = 0; i < r->nslo_cov; i++) {
        if (streq(r->slo_cov[i]->service, service)) {
            return r->slo_cov[i];
        }
    }
    vr_slo_cov_t *c = calloc(1, sizeof(*c));
    if (!c) {
        return NULL;
    }
    c->service = strdup(service ? service : "");
    if (!c->service || PUSH(r, slo_cov, VR_MAX_SERVICES, c) != 0) {
        free(c->service);
        free(c);
        return NULL;
    }
    return c;
}

void vr_input_error(vr_report_t *r, const char *where, const char *message)
{
    vr_input_error_t *e = calloc(1, sizeof(*e));
    if (!e) {
        return;
    }
    e->where = strdup(where ? where : "");
    e->message = strdup(message ? message : "");
    if (!e->where || !e->message || PUSH(r, input_errors, VR_MAX_INPUT_ERRORS, e) != 0) {
        free(e->where);
        free(e->message);
        free(e);
    }
}

void vr_report_fini(vr_report_t *r)
{
    for (size_t i = 0; i < r->nservices; i++) {
        vr_service_t *s = r->services[i];
        free(s->service);
        free(s->environment);
        vr_strset_fini(&s->missing_attributes);
        free(s);
    }
    free(r->services);
    for (size_t i = 0; i < r->nviolations; i++) {
        vr_violation_t *v = r->violations[i];
        free(v->rule);
        free(v->service);
        for (size_t k = 0; k < v->nexamples; k++) {
            free(v->examples[k]);
        }
        free(v);
    }
    free(r->violations);
    for (size_t i = 0; i < r->npii; i++) {
        free(r->pii[i]->detector);
        free(r->pii[i]->service);
        free(r->pii[i]->where);
        free(r->pii[i]);
    }
    free(r->pii);
    for (size_t i = 0; i < r->nslos; i++) {
        free(r->slos[i]->name);
        free(r->slos[i]->file);
        vr_strset_fini(&r->slos[i]->series);
        vr_strset_fini(&r->slos[i]->missing_series);
        free(r->slos[i]);
    }
    free(r->slos);
    for (size_t i = 0; i < r->nslo_cov; i++) {
        free(r->slo_cov[i]->service);
        free(r->slo_cov[i]->slos);
        free(r->slo_cov[i]);
    }
    free(r->slo_cov);
    for (size_t i = 0; i < r->nmetrics; i++) {
        vr_metric_preview_t *m = r->metrics[i];
        free(m->name);
        free(m->type);
        free(m->unit);
        vr_strset_fini(&m->prometheus);
        vr_strset_fini(&m->labels);
        free(m);
    }
    free(r->metrics);
    vr_strset_fini(&r->target_info_labels);
    for (size_t i = 0; i < r->nlogs; i++) {
        vr_log_preview_t *l = r->logs[i];
        free(l->service);
        free(l->environment);
        vr_strset_fini(&l->index_labels);
        vr_strset_fini(&l->structured_metadata);
        free(l);
    }
    free(r->logs);
    for (size_t i = 0; i < r->ninput_errors; i++) {
        free(r->input_errors[i]->where);
        free(r->input_errors[i]->message);
        free(r->input_errors[i]);
    }
    free(r->input_errors);
    memset(r, 0, sizeof(*r));
}

/* ---- sorting ---------------------------------------------------------------------------- */

static int cmp_service(const void *a, const void *b)
{
    const vr_service_t *x = *(vr_service_t *const *)a, *y = *(vr_service_t *const *)b;
    int c = strcmp(x->service, y->service);
    return c ? c : strcmp(x->environment, y->environment);
}

static int cmp_violation(const void *a, const void *b)
{
    const vr_violation_t *x = *(vr_violation_t *const *)a, *y = *(vr_violation_t *const *)b;
    int c = strcmp(x->rule, y->rule);
    return c ? c : strcmp(x->service, y->service);
}

static int cmp_pii(const void *a, const void *b)
{
    const vr_pii_t *x = *(vr_pii_t *const *)a, *y = *(vr_pii_t *const *)b;
    int c = strcmp(x->detector, y->detector);
    c = c ? c : strcmp(x->service, y->service);
    c = c ? c : strcmp(x->where, y->where);
    return c ? c : strcmp(x->action, y->action);
}

static int cmp_slo_cov(const void *a, const void *b)
{
    return strcmp((*(vr_slo_cov_t *const *)a)->service, (*(vr_slo_cov_t *const *)b)->service);
}

static int cmp_metric(const void *a, const void *b)
{
    const vr_metric_preview_t *x = *(vr_metric_preview_t *const *)a;
    const vr_metric_preview_t *y = *(vr_metric_preview_t *const *)b;
    int c = strcmp(x->name, y->name);
    c = c ? c : strcmp(x->type, y->type);
    return c ? c : strcmp(x->unit, y->unit);
}

static int cmp_log(const void *a, const void *b)
{
    const vr_log_preview_t *x = *(vr_log_preview_t *const *)a, *y = *(vr_log_preview_t *const *)b;
    int c = strcmp(x->service, y->service);
    return c ? c : strcmp(x->environment, y->environment);
}

void vr_report_sort(vr_report_t *r)
{
    if (r->nservices) {
        qsort(r->services, r->nservices, sizeof(*r->services), cmp_service);
    }
    if (r->nviolations) {
        qsort(r->violations, r->nviolations, sizeof(*r->violations), cmp_violation);
    }
    if (r->npii) {
        qsort(r->pii, r->npii, sizeof(*r->pii), cmp_pii);
    }
    if (r->nslo_cov) {
        qsort(r->slo_cov, r->nslo_cov, sizeof(*r->slo_cov), cmp_slo_cov);
    }
    if (r->nmetrics) {
        qsort(r->metrics, r->nmetrics, sizeof(*r->metrics), cmp_metric);
    }
    if (r->nlogs) {
        qsort(r->logs, r->nlogs, sizeof(*r->logs), cmp_log);
    }
}

int vr_format_parse(const char *name)
{
    static const char *n[] = {"text", "json", "markdown", "junit", "html"};
    for (int i = 0; i < (int)(sizeof(n) / sizeof(n[0])); i++) {
        if (name && strcmp(name, n[i]) == 0) {
            return i;
        }
    }
    return -1;
}

/* ---- shared helpers for the writers ------------------------------------------------------ */

/* RFC 3339 UTC with milliseconds. */
static void fmt_time(uint64_t ns, char *buf, size_t len)
{
    time_t t = (time_t)(ns / 1000000000ull);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03uZ", base, (unsigned)(ns / 1000000ull % 1000));
}

/* The state of one heatmap cell. */
typedef enum { CELL_NONE, CELL_SEEN, CELL_OK, CELL_MISSING } cell_t;

static cell_t cell_of(const vr_service_t *s, int sig)
{
    int req = (s->required >> sig) & 1;
    if (s->count[sig]) {
        return req ? CELL_OK : CELL_SEEN;
    }
    return req ? CELL_MISSING : CELL_NONE;
}

static const char *env_or_dash(const char *e)
{
    return e && *e ? e : "-";
}

static int slo_cov_gap(const vr_slo_cov_t *c)
{
    if (c->require_slo && c->nslos == 0) {
        return 1;
    }
    for (size_t i = 0; c->seen && i < c->nslos; i++) {
        if (c->slos[i]->missing_series.n) {
            return 1;
        }
    }
    return 0;
}

static void missing_list(const vr_service_t *s, char *buf, size_t len)
{
    buf[0] = 0;
    size_t off = 0;
    for (int k = 0; k < VR_NSIG; k++) {
        if ((s->missing >> k) & 1) {
            int n = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", vr_signal_name(k));
            if (n < 0 || (size_t)n >= len - off) {
                return;
            }
            off += (size_t)n;
        }
    }
}

/* ---- json ------------------------------------------------------------------------------- */

static json_t *jstrset(const vr_strset_t *set)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < set->n; i++) {
        json_array_append_new(a, json_string(set->v[i]));
    }
    return a;
}

static json_t *build_json(const vr_report_t *r)
{
    json_t *root = json_object();
    if (!root) {
        return NULL;
    }
    json_object_set_new(root, "ok", json_boolean(r->ok));
    json_t *sum = json_object();
    json_object_set_new(sum, "requests", json_integer((json_int_t)r->requests));
    json_object_set_new(sum, "items", json_integer((json_int_t)r->items));
    json_object_set_new(sum, "dropped_by_processors",
                        json_integer((json_int_t)r->dropped_by_processors));
    json_object_set_new(sum, "rejected_requests", json_integer((json_int_t)r->rejected_requests));
    json_object_set_new(sum, "input_errors", json_integer((json_int_t)r->ninput_errors));
    json_object_set_new(root, "summary", sum);

    json_t *svcs = json_array();
    for (size_t i = 0; i < r->nservices; i++) {
        const vr_service_t *s = r->services[i];
        json_t *o = json_object();
        json_object_set_new(o, "service", json_string(s->service));
        json_object_set_new(o, "environment", json_string(s->environment));
        json_t *sig = json_object(), *first = json_object(), *last = json_object();
        json_t *missing = json_array();
        for (int k = 0; k < VR_NSIG; k++) {
            json_object_set_new(sig, vr_signal_name(k), json_integer((json_int_t)s->count[k]));
            if (s->count[k]) {
                char t[48];
                fmt_time(s->first_ns[k], t, sizeof(t));
                json_object_set_new(first, vr_signal_name(k), json_string(t));
                fmt_time(s->last_ns[k], t, sizeof(t));
                json_object_set_new(last, vr_signal_name(k), json_string(t));
            }
            if ((s->missing >> k) & 1) {
                json_array_append_new(missing, json_string(vr_signal_name(k)));
            }
        }
        json_object_set_new(o, "signals", sig);
        json_object_set_new(o, "missing", missing);
        json_object_set_new(o, "missing_attributes", jstrset(&s->missing_attributes));
        json_object_set_new(o, "first_seen", first);
        json_object_set_new(o, "last_seen", last);
        json_object_set_new(o, "policy",
                            s->policy_pattern ? json_string(s->policy_pattern) : json_null());
        json_array_append_new(svcs, o);
    }
    json_object_set_new(root, "services", svcs);

    json_t *viol = json_array();
    for (size_t i = 0; i < r->nviolations; i++) {
        const vr_violation_t *v = r->violations[i];
        json_t *o = json_object(), *ex = json_array();
        json_object_set_new(o, "rule", json_string(v->rule));
        json_object_set_new(o, "service", json_string(v->service));
        json_object_set_new(o, "count", json_integer((json_int_t)v->count));
        for (size_t k = 0; k < v->nexamples; k++) {
            json_array_append_new(ex, json_string(v->examples[k]));
        }
        json_object_set_new(o, "examples", ex);
        json_array_append_new(viol, o);
    }
    json_object_set_new(root, "violations", viol);

    json_t *pii = json_array();
    for (size_t i = 0; i < r->npii; i++) {
        const vr_pii_t *p = r->pii[i];
        json_t *o = json_object();
        json_object_set_new(o, "detector", json_string(p->detector));
        json_object_set_new(o, "service", json_string(p->service));
        json_object_set_new(o, "where", json_string(p->where));
        json_object_set_new(o, "action", json_string(p->action));
        json_object_set_new(o, "count", json_integer((json_int_t)p->count));
        json_array_append_new(pii, o);
    }
    json_object_set_new(root, "pii", pii);

    json_t *slo = json_array();
    for (size_t i = 0; i < r->nslo_cov; i++) {
        const vr_slo_cov_t *c = r->slo_cov[i];
        json_t *o = json_object(), *list = json_array();
        json_object_set_new(o, "service", json_string(c->service));
        json_object_set_new(o, "seen", json_boolean(c->seen));
        json_object_set_new(o, "has_slo", json_boolean(c->nslos > 0));
        json_object_set_new(o, "require_slo", json_boolean(c->require_slo));
        for (size_t k = 0; k < c->nslos; k++) {
            json_t *so = json_object();
            json_object_set_new(so, "name", json_string(c->slos[k]->name));
            json_object_set_new(so, "file", json_string(c->slos[k]->file));
            json_object_set_new(so, "sli_series", jstrset(&c->slos[k]->series));
            json_object_set_new(so, "missing_series", jstrset(&c->slos[k]->missing_series));
            json_array_append_new(list, so);
        }
        json_object_set_new(o, "slos", list);
        json_object_set_new(o, "gap", json_boolean(slo_cov_gap(c)));
        json_array_append_new(slo, o);
    }
    json_object_set_new(root, "slo_coverage", slo);

    json_t *tp = json_object(), *mets = json_array(), *logs = json_array();
    for (size_t i = 0; i < r->nmetrics; i++) {
        const vr_metric_preview_t *m = r->metrics[i];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(m->name));
        json_object_set_new(o, "type", json_string(m->type));
        json_object_set_new(o, "unit", json_string(m->unit));
        json_object_set_new(o, "prometheus", jstrset(&m->prometheus));
        json_object_set_new(o, "labels", jstrset(&m->labels));
        json_array_append_new(mets, o);
    }
    json_object_set_new(tp, "metrics", mets);
    json_object_set_new(tp, "target_info_labels", jstrset(&r->target_info_labels));
    for (size_t i = 0; i < r->nlogs; i++) {
        const vr_log_preview_t *l = r->logs[i];
        json_t *o = json_object();
        json_object_set_new(o, "service", json_string(l->service));
        json_object_set_new(o, "environment", json_string(l->environment));
        json_object_set_new(o, "index_labels", jstrset(&l->index_labels));
        json_object_set_new(o, "structured_metadata", jstrset(&l->structured_metadata));
        json_array_append_new(logs, o);
    }
    json_object_set_new(tp, "logs", logs);
    json_object_set_new(root, "translation_preview", tp);

    json_t *ie = json_array();
    for (size_t i = 0; i < r->ninput_errors; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "where", json_string(r->input_errors[i]->where));
        json_object_set_new(o, "message", json_string(r->input_errors[i]->message));
        json_array_append_new(ie, o);
    }
    json_object_set_new(root, "input_errors", ie);
    return root;
}

static int write_json(const vr_report_t *r, FILE *f)
{
    json_t *root = build_json(r);
    if (!root) {
        return -1;
    }
    int rc = json_dumpf(root, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(root);
    fputc('\n', f);
    return rc == 0 ? 0 : -1;
}

/* ---- text ------------------------------------------------------------------------------- */

static void text_strset(FILE *f, const vr_strset_t *set)
{
    for (size_t i = 0; i < set->n; i++) {
        fprintf(f, "%s%s", i ? ", " : "", set->v[i]);
    }
    if (!set->n) {
        fputs("-", f);
    }
}

static int write_text(const vr_report_t *r, FILE *f)
{
    fprintf(f, "meltp validate: %s\n", r->ok ? "OK, policy met" : "FAILED: gaps or violations");
    fprintf(f,
            "config %s%s%s; %llu requests, %llu items (%llu dropped by processors, %llu "
            "requests rejected)\n\n",
            r->config_path ? r->config_path : "-", r->policy_path ? ", policy " : "",
            r->policy_path ? r->policy_path : "", (unsigned long long)r->requests,
            (unsigned long long)r->items, (unsigned long long)r->dropped_by_processors,
            (unsigned long long)r->rejected_requests);
    fprintf(f, "Coverage (service / environment: metrics events logs traces profiles)\n");
    for (size_t i = 0; i < r->nservices; i++) {
        const vr_service_t *s = r->services[i];
        fprintf(f, "  %s / %s:", s->service, env_or_dash(s->environment));
        for (int k = 0; k < VR_NSIG; k++) {
            fprintf(f, " %s=%llu%s", vr_signal_name(k), (unsigned long long)s->count[k],
                    cell_of(s, k) == CELL_MISSING ? "(MISSING)" : "");
        }
        fputc('\n', f);
        if (s->missing_attributes.n) {
            fputs("    missing resource attributes: ", f);
            text_strset(f, &s->missing_attributes);
            fputc('\n', f);
        }
    }
    if (!r->nservices) {
        fputs("  (nothing seen)\n", f);
    }
    fprintf(f, "\nSchema violations\n");
    for (size_t i = 0; i < r->nviolations; i++) {
        const vr_violation_t *v = r->violations[i];
        fprintf(f, "  %s  service=%s  count=%llu\n", v->rule, v->service,
                (unsigned long long)v->count);
        for (size_t k = 0; k < v->nexamples; k++) {
            fprintf(f, "    e.g. %s\n", v->examples[k]);
        }
    }
    if (!r->nviolations) {
        fputs("  none\n", f);
    }
    fprintf(f, "\nPII findings (values are never shown)\n");
    for (size_t i = 0; i < r->npii; i++) {
        const vr_pii_t *p = r->pii[i];
        fprintf(f, "  %s  service=%s  where=%s  action=%s  count=%llu\n", p->detector, p->service,
                p->where, p->action, (unsigned long long)p->count);
    }
    if (!r->npii) {
        fputs("  none\n", f);
    }
    fprintf(f, "\nSLO coverage\n");
    for (size_t i = 0; i < r->nslo_cov; i++) {
        const vr_slo_cov_t *c = r->slo_cov[i];
        fprintf(f, "  %s: %s%s\n", c->service, c->nslos ? "" : "no SLO",
                c->seen ? "" : " (service not seen)");
        for (size_t k = 0; k < c->nslos; k++) {
            fprintf(f, "    %s: series ", c->slos[k]->name);
            text_strset(f, &c->slos[k]->series);
            if (c->slos[k]->missing_series.n) {
                fputs("; never seen: ", f);
                text_strset(f, &c->slos[k]->missing_series);
            }
            fputc('\n', f);
        }
    }
    if (!r->nslo_cov) {
        fputs(r->have_slo_specs ? "  none\n" : "  no SLO specs given\n", f);
    }
    fprintf(f, "\nTranslation preview: Prometheus\n");
    for (size_t i = 0; i < r->nmetrics; i++) {
        const vr_metric_preview_t *m = r->metrics[i];
        fprintf(f, "  %s (%s%s%s) -> ", m->name, m->type, *m->unit ? ", " : "", m->unit);
        text_strset(f, &m->prometheus);
        fputs(" {", f);
        text_strset(f, &m->labels);
        fputs("}\n", f);
    }
    if (r->target_info_labels.n) {
        fputs("  target_info {", f);
        text_strset(f, &r->target_info_labels);
        fputs("}\n", f);
    }
    fprintf(f, "\nTranslation preview: Loki\n");
    for (size_t i = 0; i < r->nlogs; i++) {
        const vr_log_preview_t *l = r->logs[i];
        fprintf(f, "  %s / %s: index labels ", l->service, env_or_dash(l->environment));
        text_strset(f, &l->index_labels);
        fputs("; structured metadata ", f);
        text_strset(f, &l->structured_metadata);
        fputc('\n', f);
    }
    if (r->ninput_errors) {
        fprintf(f, "\nInput errors\n");
        for (size_t i = 0; i < r->ninput_errors; i++) {
            fprintf(f, "  %s: %s\n", r->input_errors[i]->where, r->input_errors[i]->message);
        }
    }
    return ferror(f) ? -1 : 0;
}

/* ---- markdown --------------------------------------------------------------------------- */

/* Table cells: escape the characters that end a cell or start markup. */
static void md(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|' || *s == '\\' || *s == '`' || *s == '*' || *s == '_' || *s == '<' ||
            *s == '[' || *s == ']') {
            fputc('\\', f);
        }
        fputc(*s == '\n' || *s == '\r' ? ' ' : *s, f);
    }
}

static void md_strset(FILE *f, const vr_strset_t *set)
{
    for (size_t i = 0; i < set->n; i++) {
        fputs(i ? ", " : "", f);
        md(f, set->v[i]);
    }
}

static int write_markdown(const vr_report_t *r, FILE *f)
{
    fprintf(f, "# meltp validation report\n\n**Result:** %s\n\n",
            r->ok ? "OK (policy met)" : "FAILED (gaps or violations)");
    fprintf(f, "%llu requests, %llu items, %llu dropped by processors.\n\n",
            (unsigned long long)r->requests, (unsigned long long)r->items,
            (unsigned long long)r->dropped_by_processors);
    fputs("## Coverage\n\n| service | environment |", f);
    for (int k = 0; k < VR_NSIG; k++) {
        fprintf(f, " %s |", vr_signal_name(k));
    }
    fputs(" missing | missing attributes |\n|---|---|", f);
    for (int k = 0; k < VR_NSIG; k++) {
        fputs("---:|", f);
    }
    fputs("---|---|\n", f);
    for (size_t i = 0; i < r->nservices; i++) {
        const vr_service_t *s = r->services[i];
        fputs("| ", f);
        md(f, s->service);
        fputs(" | ", f);
        md(f, env_or_dash(s->environment));
        fputs(" |", f);
        for (int k = 0; k < VR_NSIG; k++) {
            fprintf(f, " %llu%s |", (unsigned long long)s->count[k],
                    cell_of(s, k) == CELL_MISSING ? " ❌" : "");
        }
        char miss[128];
        missing_list(s, miss, sizeof(miss));
        fprintf(f, " %s | ", miss);
        md_strset(f, &s->missing_attributes);
        fputs(" |\n", f);
    }
    fputs("\n## Violations\n\n", f);
    if (!r->nviolations) {
        fputs("None.\n", f);
    } else {
        fputs("| rule | service | count | examples |\n|---|---|---:|---|\n", f);
        for (size_t i = 0; i < r->nviolations; i++) {
            const vr_violation_t *v = r->violations[i];
            fputs("| ", f);
            md(f, v->rule);
            fputs(" | ", f);
            md(f, v->service);
            fprintf(f, " | %llu | ", (unsigned long long)v->count);
            for (size_t k = 0; k < v->nexamples; k++) {
                fputs(k ? "; " : "", f);
                md(f, v->examples[k]);
            }
            fputs(" |\n", f);
        }
    }
    fputs("\n## PII\n\n", f);
    if (!r->npii) {
        fputs("None.\n", f);
    } else {
        fputs("| detector | service | where | action | count |\n|---|---|---|---|---:|\n", f);
        for (size_t i = 0; i < r->npii; i++) {
            fputs("| ", f);
            md(f, r->pii[i]->detector);
            fputs(" | ", f);
            md(f, r->pii[i]->service);
            fputs(" | ", f);
            md(f, r->pii[i]->where);
            fputs(" | ", f);
            md(f, r->pii[i]->action);
            fprintf(f, " | %llu |\n", (unsigned long long)r->pii[i]->count);
        }
    }
    fputs("\n## SLO coverage\n\n", f);
    if (!r->nslo_cov) {
        fputs(r->have_slo_specs ? "None.\n" : "No SLO specs given.\n", f);
    } else {
        fputs("| service | SLOs | SLI series never seen |\n|---|---|---|\n", f);
        for (size_t i = 0; i < r->nslo_cov; i++) {
            const vr_slo_cov_t *c = r->slo_cov[i];
            fputs("| ", f);
            md(f, c->service);
            fputs(" | ", f);
            if (!c->nslos) {
                fputs("none", f);
            }
            for (size_t k = 0; k < c->nslos; k++) {
                fputs(k ? ", " : "", f);
                md(f, c->slos[k]->name);
            }
            fputs(" | ", f);
            for (size_t k = 0; k < c->nslos; k++) {
                md_strset(f, &c->slos[k]->missing_series);
            }
            fputs(" |\n", f);
        }
    }
    fputs("\n## Translation preview\n\n### Prometheus\n\n", f);
    fputs("| OTel metric | type | Prometheus series | labels |\n|---|---|---|---|\n", f);
    for (size_t i = 0; i < r->nmetrics; i++) {
        const vr_metric_preview_t *m = r->metrics[i];
        fputs("| ", f);
        md(f, m->name);
        fputs(" | ", f);
        md(f, m->type);
        fputs(" | ", f);
        md_strset(f, &m->prometheus);
        fputs(" | ", f);
        md_strset(f, &m->labels);
        fputs(" |\n", f);
    }
    fputs("\n### Loki\n\n| service | environment | index labels | structured metadata |\n"
          "|---|---|---|---|\n",
          f);
    for (size_t i = 0; i < r->nlogs; i++) {
        const vr_log_preview_t *l = r->logs[i];
        fputs("| ", f);
        md(f, l->service);
        fputs(" | ", f);
        md(f, env_or_dash(l->environment));
        fputs(" | ", f);
        md_strset(f, &l->index_labels);
        fputs(" | ", f);
        md_strset(f, &l->structured_metadata);
        fputs(" |\n", f);
    }
    if (r->ninput_errors) {
        fputs("\n## Input errors\n\n", f);
        for (size_t i = 0; i < r->ninput_errors; i++) {
            fputs("- ", f);
            md(f, r->input_errors[i]->where);
            fputs(": ", f);
            md(f, r->input_errors[i]->message);
            fputc('\n', f);
        }
    }
    return ferror(f) ? -1 : 0;
}

/* ---- junit / html (XML escaping) ------------------------------------------------------- */

/* Escapes for XML/HTML text and attributes; drops control characters XML 1.0 forbids. */
static void xml(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            if (c < 0x20 && c != '\n' && c != '\t') {
                fputc('?', f);
            } else {
                fputc(c, f);
            }
        }
    }
}

static int write_junit(const vr_report_t *r, FILE *f)
{
    size_t cov_fail = 0;
    for (size_t i = 0; i < r->nservices; i++) {
        cov_fail += r->services[i]->missing || r->services[i]->missing_attributes.n;
    }
    size_t slo_fail = 0;
    for (size_t i = 0; i < r->nslo_cov; i++) {
        slo_fail += (size_t)slo_cov_gap(r->slo_cov[i]);
    }
    size_t tests = r->nservices + r->nviolations + r->npii + r->nslo_cov + r->ninput_errors;
    size_t fails = cov_fail + r->nviolations + r->npii + slo_fail + r->ninput_errors;
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<testsuites name=\"meltp validate\" tests=\"%zu\" failures=\"%zu\">\n",
            tests, fails);
    fprintf(f, "  <testsuite name=\"coverage\" tests=\"%zu\" failures=\"%zu\">\n", r->nservices,
            cov_fail);
    for (size_t i = 0; i < r->nservices; i++) {
        const vr_service_t *s = r->services[i];
        fputs("    <testcase classname=\"coverage\" name=\"", f);
        xml(f, s->service);
        fputs("/", f);
        xml(f, env_or_dash(s->environment));
        fputs("\"", f);
        if (!s->missing && !s->missing_attributes.n) {
            fputs("/>\n", f);
            continue;
        }
        char miss[128];
        missing_list(s, miss, sizeof(miss));
        fputs("><failure message=\"", f);
        if (*miss) {
            fprintf(f, "missing signals: %s", miss);
        }
        if (s->missing_attributes.n) {
            fputs(*miss ? "; " : "", f);
            fputs("missing resource attributes: ", f);
            for (size_t k = 0; k < s->missing_attributes.n; k++) {
                fputs(k ? ", " : "", f);
                xml(f, s->missing_attributes.v[k]);
            }
        }
        fputs("\"/></testcase>\n", f);
    }
    fputs("  </testsuite>\n", f);
    fprintf(f, "  <testsuite name=\"violations\" tests=\"%zu\" failures=\"%zu\">\n", r->nviolations,
            r->nviolations);
    for (size_t i = 0; i < r->nviolations; i++) {
        const vr_violation_t *v = r->violations[i];
        fputs("    <testcase classname=\"violations\" name=\"", f);
        xml(f, v->rule);
        fputs(" ", f);
        xml(f, v->service);
        fprintf(f, "\"><failure message=\"%llu violations\">", (unsigned long long)v->count);
        for (size_t k = 0; k < v->nexamples; k++) {
            xml(f, v->examples[k]);
            fputc('\n', f);
        }
        fputs("</failure></testcase>\n", f);
    }
    fputs("  </testsuite>\n", f);
    fprintf(f, "  <testsuite name=\"pii\" tests=\"%zu\" failures=\"%zu\">\n", r->npii, r->npii);
    for (size_t i = 0; i < r->npii; i++) {
        const vr_pii_t *p = r->pii[i];
        fputs("    <testcase classname=\"pii\" name=\"", f);
        xml(f, p->detector);
        fputs(" ", f);
        xml(f, p->service);
        fputs(" ", f);
        xml(f, p->where);
        fprintf(f, "\"><failure message=\"%llu findings, action %s\"/></testcase>\n",
                (unsigned long long)p->count, p->action);
    }
    fputs("  </testsuite>\n", f);
    fprintf(f, "  <testsuite name=\"slo_coverage\" tests=\"%zu\" failures=\"%zu\">\n", r->nslo_cov,
            slo_fail);
    for (size_t i = 0; i < r->nslo_cov; i++) {
        const vr_slo_cov_t *c = r->slo_cov[i];
        fputs("    <testcase classname=\"slo_coverage\" name=\"", f);
        xml(f, c->service);
        fputs(slo_cov_gap(c) ? "\"><failure message=\"no SLO or SLI series never seen\"/>"
                               "</testcase>\n"
                             : "\"/>\n",
              f);
    }
    fputs("  </testsuite>\n", f);
    fprintf(f, "  <testsuite name=\"input\" tests=\"%zu\" failures=\"%zu\">\n", r->ninput_errors,
            r->ninput_errors);
    for (size_t i = 0; i < r->ninput_errors; i++) {
        fputs("    <testcase classname=\"input\" name=\"", f);
        xml(f, r->input_errors[i]->where);
        fputs("\"><failure message=\"", f);
        xml(f, r->input_errors[i]->message);
        fputs("\"/></testcase>\n", f);
    }
    fputs("  </testsuite>\n</testsuites>\n", f);
    return ferror(f) ? -1 : 0;
}

static void html_strset(FILE *f, const vr_strset_t *set)
{
    for (size_t i = 0; i < set->n; i++) {
        fputs(i ? ", " : "", f);
        fputs("<code>", f);
        xml(f, set->v[i]);
        fputs("</code>", f);
    }
}

static const char html_css[] =
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
    "th{background:#f3f3f3}"
    "td.cov-ok{background:#b7e4b0}td.cov-seen{background:#dcefd9}"
    "td.cov-missing{background:#f4a6a6;font-weight:bold}td.cov-none{background:#f7f7f7;color:#999}"
    ".ok{color:#1a7f37}.fail{color:#b3261e}code{font-size:90%}";

static int write_html(const vr_report_t *r, FILE *f)
{
    static const char *cell_class[] = {"cov-none", "cov-seen", "cov-ok", "cov-missing"};
    fprintf(f,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>meltp validation report</title>\n<style>%s</style>\n</head>\n<body>\n",
            html_css);
    fprintf(f, "<h1>meltp validation report</h1>\n<p class=\"%s\" id=\"result\">%s</p>\n",
            r->ok ? "ok" : "fail", r->ok ? "OK: policy met" : "FAILED: gaps or violations");
    fprintf(f, "<p>%llu requests, %llu items, %llu dropped by processors.</p>\n",
            (unsigned long long)r->requests, (unsigned long long)r->items,
            (unsigned long long)r->dropped_by_processors);
    fputs("<h2 id=\"coverage\">Coverage</h2>\n<table class=\"heatmap\">\n<thead><tr>"
          "<th>service</th><th>environment</th>",
          f);
    for (int k = 0; k < VR_NSIG; k++) {
        fprintf(f, "<th>%s</th>", vr_signal_name(k));
    }
    fputs("<th>missing attributes</th></tr></thead>\n<tbody>\n", f);
    for (size_t i = 0; i < r->nservices; i++) {
        const vr_service_t *s = r->services[i];
        fputs("<tr><th>", f);
        xml(f, s->service);
        fputs("</th><td>", f);
        xml(f, env_or_dash(s->environment));
        fputs("</td>", f);
        for (int k = 0; k < VR_NSIG; k++) {
            cell_t c = cell_of(s, k);
            fprintf(f, "<td class=\"%s\" title=\"%s\">%llu</td>", cell_class[c],
                    c == CELL_MISSING ? "required, never seen"
                    : c == CELL_OK    ? "required, seen"
                    : c == CELL_SEEN  ? "seen"
                                      : "not required",
                    (unsigned long long)s->count[k]);
        }
        fputs("<td>", f);
        html_strset(f, &s->missing_attributes);
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody>\n</table>\n", f);

    fputs("<h2 id=\"violations\">Schema violations</h2>\n<table class=\"violations\">\n"
          "<thead><tr><th>rule</th><th>service</th><th>count</th><th>examples</th></tr></thead>\n"
          "<tbody>\n",
          f);
    for (size_t i = 0; i < r->nviolations; i++) {
        const vr_violation_t *v = r->violations[i];
        fputs("<tr><td>", f);
        xml(f, v->rule);
        fputs("</td><td>", f);
        xml(f, v->service);
        fprintf(f, "</td><td>%llu</td><td>", (unsigned long long)v->count);
        for (size_t k = 0; k < v->nexamples; k++) {
            fputs(k ? "<br>" : "", f);
            xml(f, v->examples[k]);
        }
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody>\n</table>\n", f);

    fputs("<h2 id=\"pii\">PII findings</h2>\n<table class=\"pii\">\n<thead><tr><th>detector</th>"
          "<th>service</th><th>where</th><th>action</th><th>count</th></tr></thead>\n<tbody>\n",
          f);
    for (size_t i = 0; i < r->npii; i++) {
        fputs("<tr><td>", f);
        xml(f, r->pii[i]->detector);
        fputs("</td><td>", f);
        xml(f, r->pii[i]->service);
        fputs("</td><td>", f);
        xml(f, r->pii[i]->where);
        fputs("</td><td>", f);
        xml(f, r->pii[i]->action);
        fprintf(f, "</td><td>%llu</td></tr>\n", (unsigned long long)r->pii[i]->count);
    }
    fputs("</tbody>\n</table>\n", f);

    fputs("<h2 id=\"slo\">SLO coverage</h2>\n<table class=\"slo\">\n<thead><tr><th>service</th>"
          "<th>SLOs</th><th>SLI series never seen</th></tr></thead>\n<tbody>\n",
          f);
    for (size_t i = 0; i < r->nslo_cov; i++) {
        const vr_slo_cov_t *c = r->slo_cov[i];
        fprintf(f, "<tr class=\"%s\"><td>", slo_cov_gap(c) ? "fail" : "ok");
        xml(f, c->service);
        fputs("</td><td>", f);
        if (!c->nslos) {
            fputs("none", f);
        }
        for (size_t k = 0; k < c->nslos; k++) {
            fputs(k ? ", " : "", f);
            xml(f, c->slos[k]->name);
        }
        fputs("</td><td>", f);
        for (size_t k = 0; k < c->nslos; k++) {
            html_strset(f, &c->slos[k]->missing_series);
        }
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody>\n</table>\n", f);

    fputs("<h2 id=\"translation\">Translation preview</h2>\n<h3>Prometheus</h3>\n"
          "<table class=\"prometheus\">\n<thead><tr><th>OTel metric</th><th>type</th>"
          "<th>Prometheus series</th><th>labels</th></tr></thead>\n<tbody>\n",
          f);
    for (size_t i = 0; i < r->nmetrics; i++) {
        const vr_metric_preview_t *m = r->metrics[i];
        fputs("<tr><td>", f);
        xml(f, m->name);
        fputs("</td><td>", f);
        xml(f, m->type);
        fputs("</td><td>", f);
        html_strset(f, &m->prometheus);
        fputs("</td><td>", f);
        html_strset(f, &m->labels);
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody>\n</table>\n<h3>Loki</h3>\n<table class=\"loki\">\n<thead><tr><th>service</th>"
          "<th>environment</th><th>index labels</th><th>structured metadata</th></tr></thead>\n"
          "<tbody>\n",
          f);
    for (size_t i = 0; i < r->nlogs; i++) {
        const vr_log_preview_t *l = r->logs[i];
        fputs("<tr><td>", f);
        xml(f, l->service);
        fputs("</td><td>", f);
        xml(f, env_or_dash(l->environment));
        fputs("</td><td>", f);
        html_strset(f, &l->index_labels);
        fputs("</td><td>", f);
        html_strset(f, &l->structured_metadata);
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody>\n</table>\n", f);
    if (r->ninput_errors) {
        fputs("<h2 id=\"input-errors\">Input errors</h2>\n<ul>\n", f);
        for (size_t i = 0; i < r->ninput_errors; i++) {
            fputs("<li>", f);
            xml(f, r->input_errors[i]->where);
            fputs(": ", f);
            xml(f, r->input_errors[i]->message);
            fputs("</li>\n", f);
        }
        fputs("</ul>\n", f);
    }
    fputs("</body>\n</html>\n", f);
    return ferror(f) ? -1 : 0;
}

int vr_report_write(const vr_report_t *r, vr_format_t fmt, FILE *f)
{
    switch (fmt) {
    case VR_FMT_JSON:
        return write_json(r, f);
    case VR_FMT_MARKDOWN:
        return write_markdown(r, f);
    case VR_FMT_JUNIT:
        return write_junit(r, f);
    case VR_FMT_HTML:
        return write_html(r, f);
    default:
        return write_text(r, f);
    }
}
