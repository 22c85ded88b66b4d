/*
 * spec_promql.c - the PromQL subset SLO specs may use: label matchers and series selectors
 * (parsed, compiled and matched against series) and the one aggregation shape meltp evaluates
 * in-process, sum(rate|increase(SELECTOR[WINDOW])) by (...). Part of the slo/spec module.
 */
#include "model.h"
#include "spec_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void spec_selector_free(slo_selector_t *s)
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

int spec_is_name_start(int c)
{
    return isalpha(c) || c == '_' || c == ':';
}

int spec_is_name_char(int c)
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
    char *out = spec_xmalloc(cap);
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

/* glibc's regcomp copies a subexpression once per `+` and once per count of a `{m,n}` bound,
 * nested ones multiplying, and its epsilon closures grow with nested and stacked `*`, `+`,
 * `?`: `((a+)+)+...`, `(a{100}){100}` or `a+*+*+` take seconds and gigabytes, and a short
 * regex from a silence (network input) could take the process down. Refused: stacked
 * quantifiers (undefined in POSIX ERE anyway), and regexes whose length times 2 per quantifier
 * times each bound passes SLO_REGEX_MAX_COST. Ordinary label regexes (`ticket|slack`,
 * `(5..|429)`, `[a-z]+-[0-9]+`, `.*-canary`) are far below; the rule is conservative (every
 * quantifier counts, nested or not). */
#define SLO_REGEX_MAX_LEN  1024
#define SLO_REGEX_MAX_COST (1u << 16)

static int regex_tame(const char *re, char *err, size_t errlen)
{
    size_t len = strlen(re);
    double factor = 1;
    for (const char *p = re; *p; p++) {
        int quant = *p == '+' || *p == '*' || *p == '?';
        if (quant && p > re && (p[-1] == '+' || p[-1] == '*' || p[-1] == '?' || p[-1] == '}') &&
            (p - 1 == re || p[-2] != '\\')) {
            snprintf(err, errlen,
                     "regex \"%.40s%s\": stacked repetition (%c%c) is undefined in "
                     "POSIX regexes",
                     re, len > 40 ? "..." : "", p[-1], *p);
            return 0;
        }
        if (quant) {
            factor *= 2;
        } else if (*p == '{' && isdigit((unsigned char)p[1])) {
            char *end;
            unsigned long lo = strtoul(p + 1, &end, 10), hi = lo;
            if (*end == ',' && isdigit((unsigned char)end[1])) {
                hi = strtoul(end + 1, &end, 10);
            } else if (*end == ',') {
                hi = lo + 1;
            }
            factor *= (double)(hi > lo ? hi : lo) + 1;
        }
    }
    if (len > SLO_REGEX_MAX_LEN || factor * (double)(len ? len : 1) > SLO_REGEX_MAX_COST) {
        snprintf(err, errlen,
                 "regex \"%.40s%s\" is too long or repeats too much for POSIX regcomp (at most "
                 "%d bytes; fewer + and {m,n})",
                 re, len > 40 ? "..." : "", SLO_REGEX_MAX_LEN);
        return 0;
    }
    return 1;
}

/* Compiles an =~ / !~ value the way Prometheus anchors it: ^(?:re)$. POSIX ERE has no
 * non-capturing group, so ^(re)$ is the equivalent. Returns 0 or a regcomp error. */
static int matcher_compile(slo_matcher_t *m, char *err, size_t errlen)
{
    if (m->op != SLO_MATCH_RE && m->op != SLO_MATCH_NRE) {
        return 0;
    }
    char why[200];
    if (!regex_tame(m->value, why, sizeof(why))) {
        snprintf(err, errlen, "label %s: %s", m->name, why);
        return REG_ESPACE;
    }
    char *anch = spec_xprintf("^(%s)$", m->value);
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
    if (spec_is_name_start((unsigned char)s[*i])) {
        size_t st = *i;
        while (spec_is_name_char((unsigned char)s[*i])) {
            (*i)++;
        }
        out->metric = spec_xmalloc(*i - st + 1);
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
            if (!spec_is_name_start((unsigned char)s[*i])) {
                snprintf(err, errlen, "expected a label name at offset %zu", *i);
                goto fail;
            }
            size_t st = *i;
            while (spec_is_name_char((unsigned char)s[*i])) {
                (*i)++;
            }
            if (out->nm >= SLO_MAX_MATCHERS) {
                snprintf(err, errlen, "more than %d label matchers", SLO_MAX_MATCHERS);
                goto fail;
            }
            out->m = spec_xrealloc(out->m, (out->nm + 1) * sizeof(slo_matcher_t));
            slo_matcher_t *m = &out->m[out->nm++];
            memset(m, 0, sizeof(*m));
            m->name = spec_xmalloc(*i - st + 1);
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
    spec_selector_free(out);
    return -1;
}

/* Whole string must be one selector. */
int spec_parse_selector(const char *s, slo_selector_t *out, char *err, size_t errlen)
{
    size_t i = 0;
    if (parse_selector_at(s, &i, out, err, errlen) != 0) {
        return -1;
    }
    skip_ws(s, &i);
    if (s[i]) {
        snprintf(err, errlen, "unexpected \"%.20s\" after the selector", s + i);
        spec_selector_free(out);
        return -1;
    }
    return 0;
}

void spec_agg_free(agg_query_t *q)
{
    spec_selector_free(&q->sel);
    for (size_t i = 0; i < q->nby; i++) {
        free(q->by[i]);
    }
    free(q->by);
    memset(q, 0, sizeof(*q));
}

static int match_word(const char *s, size_t *i, const char *w)
{
    size_t n = strlen(w);
    if (!strncmp(s + *i, w, n) && !spec_is_name_char((unsigned char)s[*i + n])) {
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
        while (spec_is_name_char((unsigned char)s[*i])) {
            (*i)++;
        }
        if (st == *i) {
            snprintf(err, errlen, "expected a label name in by (...)");
            return -1;
        }
        q->by = spec_xrealloc(q->by, (q->nby + 1) * sizeof(char *));
        q->by[q->nby] = spec_xmalloc(*i - st + 1);
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

int spec_parse_agg_query(const char *s, int window_tpl, agg_query_t *q, char *err, size_t errlen)
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
        if (strcmp(win, "{{.window}}") != 0 &&
            (window_tpl || spec_parse_duration(win, &ms) != MT_OK)) {
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
    spec_agg_free(q);
    return -1;
}

/* ---------------------------------------------------------------------------------------- */
/* Single matchers (Alertmanager routes, inhibit rules and silences)                          */

int slo_matcher_set(slo_matcher_t *m, const char *name, slo_match_op_t op, const char *value,
                    char *err, size_t errlen)
{
    memset(m, 0, sizeof(*m));
    if (!name || !spec_is_name_start((unsigned char)name[0])) {
        snprintf(err, errlen, "\"%s\" is not a label name", name ? name : "");
        return -1;
    }
    for (const char *p = name; *p; p++) {
        if (!spec_is_name_char((unsigned char)*p)) {
            snprintf(err, errlen, "\"%s\" is not a label name", name);
            return -1;
        }
    }
    m->name = spec_xstrdup(name);
    m->value = spec_xstrdup(value ? value : "");
    m->op = op;
    if (matcher_compile(m, err, errlen) != 0) {
        slo_matcher_free(m);
        return -1;
    }
    return 0;
}

int slo_matcher_parse(const char *text, slo_matcher_t *m, char *err, size_t errlen)
{
    size_t i = 0, st, n;
    memset(m, 0, sizeof(*m));
    skip_ws(text, &i);
    int braced = text[i] == '{';
    if (braced) {
        i++;
        skip_ws(text, &i);
    }
    st = i;
    while (spec_is_name_char((unsigned char)text[i])) {
        i++;
    }
    if (i == st || !spec_is_name_start((unsigned char)text[st])) {
        snprintf(err, errlen, "expected a label name at offset %zu", st);
        return -1;
    }
    char name[256];
    n = i - st < sizeof(name) ? i - st : sizeof(name) - 1;
    memcpy(name, text + st, n);
    name[n] = 0;
    skip_ws(text, &i);
    slo_match_op_t op;
    if (text[i] == '=' && text[i + 1] == '~') {
        op = SLO_MATCH_RE;
        i += 2;
    } else if (text[i] == '!' && text[i + 1] == '~') {
        op = SLO_MATCH_NRE;
        i += 2;
    } else if (text[i] == '!' && text[i + 1] == '=') {
        op = SLO_MATCH_NEQ;
        i += 2;
    } else if (text[i] == '=') {
        op = SLO_MATCH_EQ;
        i += 1;
    } else {
        snprintf(err, errlen, "label %s: expected =, !=, =~ or !~", name);
        return -1;
    }
    skip_ws(text, &i);
    char *value;
    if (text[i] == '"' || text[i] == '\'' || text[i] == '`') {
        value = parse_quoted(text, &i);
        if (!value) {
            snprintf(err, errlen, "label %s: unterminated quoted value", name);
            return -1;
        }
    } else {
        /* Alertmanager's classic syntax also takes a bare value: up to the end (or `}`) */
        st = i;
        while (text[i] && !(braced && text[i] == '}')) {
            i++;
        }
        n = i;
        while (n > st && isspace((unsigned char)text[n - 1])) {
            n--;
        }
        value = spec_xmalloc(n - st + 1);
        memcpy(value, text + st, n - st);
        value[n - st] = 0;
    }
    skip_ws(text, &i);
    if (braced && text[i] == '}') {
        i++;
        skip_ws(text, &i);
        braced = 0;
    }
    if (text[i] || braced) {
        snprintf(err, errlen, "unexpected \"%.20s\" after the matcher (one matcher per item)",
                 text + i);
        free(value);
        return -1;
    }
    int rc = slo_matcher_set(m, name, op, value, err, errlen);
    free(value);
    return rc;
}

void slo_matcher_free(slo_matcher_t *m)
{
    free(m->name);
    free(m->value);
    if (m->re_ok) {
        regfree(&m->re);
    }
    memset(m, 0, sizeof(*m));
}

const char *slo_match_op_text(slo_match_op_t op)
{
    return op == SLO_MATCH_NEQ   ? "!="
           : op == SLO_MATCH_RE  ? "=~"
           : op == SLO_MATCH_NRE ? "!~"
                                 : "=";
}
