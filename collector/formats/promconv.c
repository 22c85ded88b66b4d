/*
 * promconv.c - OTLP metrics -> Prometheus remote-write 1.0 series, following protocols.md §4
 * and Prometheus's own OTLP translator (UnderscoreEscapingWithSuffixes). One call converts one
 * ExportMetricsServiceRequest into label-sorted TimeSeries and MetricMetadata, all carved from
 * the caller's arena; identical label sets within a request share one TimeSeries.
 *
 * The delta -> cumulative state (deltacum_t) lives here too rather than in its own file: it is
 * only reachable through promconv_convert, and keeping it here spares a private header. It is
 * the one piece that outlives a request, so it uses malloc and a mutex, never the arena.
 */
#include "promconv.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue anyv_t;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics rmetrics_t;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics smetrics_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint numdp_t;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint histdp_t;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint expdp_t;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets expbk_t;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint sumdp_t;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar otel_ex_t;
typedef Prometheus__Label plabel_t;

#define STALE_BITS 0x7ff0000000000002ull
#define NORMAL_NAN_BITS 0x7ff8000000000001ull /* Prometheus's value.NormalNaN */
#define NO_RECORDED_VALUE 1u
#define DEFAULT_ZERO_THRESHOLD 1e-128
#define EXEMPLAR_MAX_RUNES 128  /* OpenMetrics 1.0 cap on exemplar label text */
#define JSON_MAX_DEPTH 64       /* attribute values nest; stop rendering beyond this */
#define NATIVE_MAX_SCALE 8
#define NATIVE_MIN_SCALE (-4)
#define DC_MAX_EXP_BUCKETS 4096 /* widest accumulated exponential bucket range before downscaling */

enum { TEMPO_UNSPEC = 0, TEMPO_DELTA = 1, TEMPO_CUMULATIVE = 2 };

/* ------------------------------------------------------------------------------------------ */
/* Stale markers                                                                              */

double promconv_stale_nan(void)
{
    uint64_t b = STALE_BITS;
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

int promconv_is_stale(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    return b == STALE_BITS;
}

/* A value that happens to carry the stale bit pattern without the NoRecordedValue flag would
 * end the series downstream; the protocol reserves the pattern, so swap in an ordinary NaN. */
static double plain_value(double v)
{
    if (promconv_is_stale(v)) {
        uint64_t b = NORMAL_NAN_BITS;
        memcpy(&v, &b, sizeof(v));
    }
    return v;
}

/* ------------------------------------------------------------------------------------------ */
/* Float text                                                                                 */

/* Shortest decimal digits of av (>= 0, finite) that read back as av: d[0..nd) with the first
 * digit at decimal exponent *e10. printf rounds correctly, so the first precision that
 * round-trips gives the shortest string (it can differ from Go's choice only at exact powers of
 * two where the rounding interval is lopsided; both round-trip). */
static int shortest_digits(double av, char *d, int *e10)
{
    char tmp[48];
    for (int p = 0; p <= 16; p++) {
        snprintf(tmp, sizeof(tmp), "%.*e", p, av);
        if (p == 16 || strtod(tmp, NULL) == av) {
            break;
        }
    }
    int n = 0;
    const char *s = tmp;
    d[n++] = *s++;
    if (*s == '.') {
        s++;
        while (*s && *s != 'e') {
            d[n++] = *s++;
        }
    }
    *e10 = (*s == 'e') ? atoi(s + 1) : 0;
    while (n > 1 && d[n - 1] == '0') {
        n--;
    }
    d[n] = 0;
    return n;
}

typedef struct {
    char *p;
    size_t len, cap;
    int err; /* set when something did not fit; p stays NUL-terminated */
} fbuf_t;

static void fb_init(fbuf_t *b, char *p, size_t cap)
{
    b->p = p;
    b->len = 0;
    b->cap = cap;
    b->err = (cap == 0);
    if (cap) {
        p[0] = 0;
    }
}

static void fb_putc(fbuf_t *b, char ch)
{
    if (b->len + 1 >= b->cap) {
        b->err = 1;
        return;
    }
    b->p[b->len++] = ch;
    b->p[b->len] = 0;
}

static void fb_putn(fbuf_t *b, const char *s, size_t n)
{
    if (b->len + n >= b->cap) {
        b->err = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void fb_puts(fbuf_t *b, const char *s) { fb_putn(b, s, strlen(s)); }

static void fb_truncate(fbuf_t *b, size_t len)
{
    if (len < b->len) {
        b->len = len;
        b->p[len] = 0;
    }
}

static int fb_result(const fbuf_t *b) { return b->err ? -1 : (int)b->len; }

static int put_special(double v, fbuf_t *b)
{
    if (isnan(v)) {
        fb_puts(b, "NaN");
        return 1;
    }
    if (isinf(v)) {
        fb_puts(b, v > 0 ? "+Inf" : "-Inf");
        return 1;
    }
    return 0;
}

/* Go's strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, never an exponent. */
static void fb_float_fixed(fbuf_t *b, double v)
{
    if (put_special(v, b)) {
        return;
    }
    char d[32];
    int e;
    int nd = shortest_digits(fabs(v), d, &e);
    if (signbit(v)) {
        fb_putc(b, '-');
    }
    if (e >= 0) {
        for (int i = 0; i <= e; i++) {
            fb_putc(b, i < nd ? d[i] : '0');
        }
        if (nd > e + 1) {
            fb_putc(b, '.');
            fb_putn(b, d + e + 1, (size_t)(nd - e - 1));
        }
    } else {
        fb_puts(b, "0.");
        for (int i = 0; i < -e - 1; i++) {
            fb_putc(b, '0');
        }
        fb_putn(b, d, (size_t)nd);
    }
}

int promconv_format_float(double v, char *buf, size_t buflen)
{
    fbuf_t b;
    fb_init(&b, buf, buflen);
    fb_float_fixed(&b, v);
    return fb_result(&b);
}

/* How pdata's Value.AsString renders a double (ES6 number-to-string: fixed notation between
 * 1e-6 and 1e21, otherwise shortest exponent form such as 1e-7 or 1e+21). NaN and infinities,
 * which Go renders as an error text, come out as NaN / +Inf / -Inf here. */
static void fb_float_es6(fbuf_t *b, double v)
{
    double av = fabs(v);
    if (isnan(v) || isinf(v) || av == 0 || (av >= 1e-6 && av < 1e21)) {
        fb_float_fixed(b, v);
        return;
    }
    char d[32], ex[16];
    int e;
    int nd = shortest_digits(av, d, &e);
    if (v < 0) {
        fb_putc(b, '-');
    }
    fb_putc(b, d[0]);
    if (nd > 1) {
        fb_putc(b, '.');
        fb_putn(b, d + 1, (size_t)(nd - 1));
    }
    snprintf(ex, sizeof(ex), "e%c%d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    fb_puts(b, ex);
}

/* ------------------------------------------------------------------------------------------ */
/* Metric and label names                                                                     */

static int is_alnum(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static int is_digit(unsigned char ch) { return ch >= '0' && ch <= '9'; }

/* Appends s split on every character outside [a-zA-Z0-9:] (and outside `_` too unless keep_us)
 * with the pieces joined by single `_`: Go's strings.Join(strings.FieldsFunc(...), "_"). */
static void fb_tokens(fbuf_t *b, const char *s, int keep_us)
{
    size_t start = b->len;
    int pending = 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (!(is_alnum(ch) || ch == ':' || (keep_us && ch == '_'))) {
            pending = 1;
            continue;
        }
        if (pending && b->len > start) {
            fb_putc(b, '_');
        }
        pending = 0;
        fb_putc(b, (char)ch);
    }
}

/* Is tok one of the `_`-separated tokens of s[0..n)? A token never contains `_`, so a suffix
 * such as "per_second" never matches (as in otlptranslator). */
static int has_token(const char *s, size_t n, const char *tok, size_t tn)
{
    if (tn == 0 || memchr(tok, '_', tn)) {
        return 0;
    }
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && s[j] != '_') {
            j++;
        }
        if (j - i == tn && memcmp(s + i, tok, tn) == 0) {
            return 1;
        }
        i = j + 1;
    }
    return 0;
}

/* Drops every whole token equal to tok, keeping the others joined by single `_`. */
static void remove_token(fbuf_t *b, const char *tok)
{
    size_t tn = strlen(tok), r = 0, w = 0;
    while (r <= b->len && b->len > 0) {
        size_t j = r;
        while (j < b->len && b->p[j] != '_') {
            j++;
        }
        if (!(j - r == tn && memcmp(b->p + r, tok, tn) == 0) && j > r) {
            if (w > 0) {
                b->p[w++] = '_';
            }
            memmove(b->p + w, b->p + r, j - r);
            w += j - r;
        }
        r = j + 1;
    }
    b->len = w;
    if (b->cap) {
        b->p[w] = 0;
    }
}

static void append_token(fbuf_t *b, const char *tok)
{
    if (b->len > 0) {
        fb_putc(b, '_');
    }
    fb_puts(b, tok);
}

static void reverse(char *p, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        char t = p[i];
        p[i] = p[n - 1 - i];
        p[n - 1 - i] = t;
    }
}

/* Puts the sanitised namespace and a `_` in front of what b holds. The namespace is appended
 * and then rotated to the front, so no second buffer is needed. */
static void prepend_namespace(fbuf_t *b, const char *ns, int keep_us)
{
    size_t l = b->len;
    fb_tokens(b, ns, keep_us);
    size_t k = b->len - l;
    if (k == 0 || b->err) {
        fb_truncate(b, l);
        return;
    }
    if (l > 0) {
        fb_putc(b, '_');
        if (b->err) {
            return;
        }
    }
    reverse(b->p, l);
    reverse(b->p + l, b->len - l);
    reverse(b->p, b->len);
}

static void prefix_underscore_if_digit(fbuf_t *b)
{
    if (b->len > 0 && is_digit((unsigned char)b->p[0])) {
        if (b->len + 2 > b->cap) {
            b->err = 1;
            return;
        }
        memmove(b->p + 1, b->p, b->len + 1);
        b->p[0] = '_';
        b->len++;
    }
}

/* otlptranslator's unit maps (protocols.md §4.2; `tibibytes` is the code's spelling). */
static const char *const unit_map[][2] = {
    {"d", "days"},        {"h", "hours"},        {"min", "minutes"},    {"s", "seconds"},
    {"ms", "milliseconds"}, {"us", "microseconds"}, {"ns", "nanoseconds"}, {"By", "bytes"},
    {"KiBy", "kibibytes"}, {"MiBy", "mebibytes"}, {"GiBy", "gibibytes"}, {"TiBy", "tibibytes"},
    {"KBy", "kilobytes"}, {"MBy", "megabytes"},  {"GBy", "gigabytes"},  {"TBy", "terabytes"},
    {"m", "meters"},      {"V", "volts"},        {"A", "amperes"},      {"J", "joules"},
    {"W", "watts"},       {"g", "grams"},        {"Cel", "celsius"},    {"Hz", "hertz"},
    {"1", ""},            {"%", "percent"},
};
static const char *const per_unit_map[][2] = {
    {"s", "second"}, {"m", "minute"}, {"h", "hour"}, {"d", "day"},
    {"w", "week"},   {"mo", "month"}, {"y", "year"},
};

static const char *map_lookup(const char *const (*map)[2], size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(map[i][0]) == len && memcmp(map[i][0], s, len) == 0) {
            return map[i][1];
        }
    }
    return NULL;
}

static int is_space(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_space((unsigned char)**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_space((unsigned char)(*s)[*n - 1])) {
        (*n)--;
    }
}

/* Splits a UCUM unit into its main and per parts; a part that is empty or an annotation
 * (`{packet}`) is NULL. */
static void unit_parts(const char *unit, const char **m, size_t *mn, const char **p, size_t *pn)
{
    const char *slash = strchr(unit, '/');
    *m = unit;
    *mn = slash ? (size_t)(slash - unit) : strlen(unit);
    trim(m, mn);
    if (*mn == 0 || memchr(*m, '{', *mn) || memchr(*m, '}', *mn)) {
        *m = NULL;
    }
    *p = NULL;
    *pn = 0;
    if (slash && slash[1]) {
        *p = slash + 1;
        *pn = strlen(*p);
        trim(p, pn);
        if (*pn == 0 || memchr(*p, '{', *pn) || memchr(*p, '}', *pn)) {
            *p = NULL;
        }
    }
}

/* otlptranslator's cleanUpUnit: invalid characters (one per UTF-8 character) become `_`, runs
 * of `_` collapse and a leading `_` goes; `start` is where the cleaned word began. */
static void fb_clean_unit(fbuf_t *b, const char *s, size_t n, size_t start)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch & 0xC0) == 0x80) {
            continue; /* continuation byte: its character already became `_` */
        }
        char o = (is_alnum(ch) || ch == ':') ? (char)ch : '_';
        if (o == '_' && (b->len == start || b->p[b->len - 1] == '_')) {
            continue;
        }
        fb_putc(b, o);
    }
}

/* Appends the cleaned main (per=0) or `per_<word>` (per=1) unit word; nothing when it comes
 * out empty. A trailing `_` is trimmed for both (otlptranslator keeps it on a lone main word;
 * we never want `x_foo__total`). */
static void fb_unit_word(fbuf_t *b, const char *s, size_t n, int per)
{
    size_t start = b->len;
    const char *w = per ? map_lookup(per_unit_map, MT_ARRAY_LEN(per_unit_map), s, n)
                        : map_lookup(unit_map, MT_ARRAY_LEN(unit_map), s, n);
    if (per) {
        fb_clean_unit(b, "per_", 4, start);
    }
    if (w) {
        fb_clean_unit(b, w, strlen(w), start);
    } else {
        fb_clean_unit(b, s, n, start);
    }
    if (per && b->len - start == 4) {
        fb_truncate(b, start); /* "per_" alone */
    }
    while (b->len > start && b->p[b->len - 1] == '_') {
        fb_truncate(b, b->len - 1);
    }
}

static int all_underscores(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '_') {
            return 0;
        }
    }
    return 1;
}

int promconv_metric_name(const char *otel_name, const char *unit, int kind_counter,
                         int kind_gauge_ratio, int add_suffixes, const char *ns, char *buf,
                         size_t buflen)
{
    fbuf_t b;
    fb_init(&b, buf, buflen);
    const char *name = otel_name ? otel_name : "";
    unit = unit ? unit : "";
    if (!add_suffixes) {
        /* UnderscoreEscapingWithoutSuffixes: `_` is kept, so runs of it survive */
        fb_tokens(&b, name, 1);
        if (ns && *ns) {
            prepend_namespace(&b, ns, 1);
        } else {
            prefix_underscore_if_digit(&b);
        }
    } else {
        fb_tokens(&b, name, 0);
        size_t l = b.len;
        const char *m, *p;
        size_t mn, pn;
        unit_parts(unit, &m, &mn, &p, &pn);
        if (m) {
            size_t mark = b.len;
            if (b.len > 0) {
                fb_putc(&b, '_');
            }
            size_t ws = b.len;
            fb_unit_word(&b, m, mn, 0);
            if (b.len == ws || has_token(b.p, l, b.p + ws, b.len - ws)) {
                fb_truncate(&b, mark);
            }
        }
        if (p) {
            size_t mark = b.len;
            if (b.len > 0) {
                fb_putc(&b, '_');
            }
            size_t ws = b.len;
            fb_unit_word(&b, p, pn, 1);
            if (b.len == ws) {
                fb_truncate(&b, mark);
            }
        }
        if (kind_counter) {
            remove_token(&b, "total");
            append_token(&b, "total");
        } else if (kind_gauge_ratio && strcmp(unit, "1") == 0) {
            remove_token(&b, "ratio");
            append_token(&b, "ratio");
        }
        if (ns && *ns) {
            prepend_namespace(&b, ns, 0);
        }
        prefix_underscore_if_digit(&b);
    }
    if (b.err || b.len == 0 || all_underscores(b.p, b.len)) {
        return -1;
    }
    return (int)b.len;
}

int promconv_label_name(const char *key, char *buf, size_t buflen)
{
    fbuf_t b;
    fb_init(&b, buf, buflen);
    if (!key || !*key) {
        return -1;
    }
    for (const char *s = key; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch & 0xC0) == 0x80) {
            continue; /* one `_` per UTF-8 character, as Go's strings.Map over runes */
        }
        fb_putc(&b, (is_alnum(ch) || ch == '_') ? (char)ch : '_');
    }
    if (b.err) {
        return -1;
    }
    if (is_digit((unsigned char)b.p[0])) {
        /* make room for "key_" */
        if (b.len + 5 > b.cap) {
            return -1;
        }
        memmove(b.p + 4, b.p, b.len + 1);
        memcpy(b.p, "key_", 4);
        b.len += 4;
    } else if (b.p[0] == '_' && !(b.len > 1 && b.p[1] == '_')) {
        if (b.len + 4 > b.cap) {
            return -1;
        }
        memmove(b.p + 3, b.p, b.len + 1);
        memcpy(b.p, "key", 3);
        b.len += 3;
    }
    /* `__` and friends: nothing but underscores is not a usable name */
    if (all_underscores(b.p, b.len)) {
        return -1;
    }
    return (int)b.len;
}

/* ------------------------------------------------------------------------------------------ */
/* Delta -> cumulative state                                                                  */

enum { DC_SUM = 1, DC_HIST, DC_EXP };

typedef struct dc_buckets {
    int64_t offset; /* OTel bucket index of counts[0] */
    size_t n;
    uint64_t *counts;
} dc_buckets_t;

typedef struct dc_entry {
    struct dc_entry *next;
    uint64_t hash;
    char *key;
    size_t key_len;
    int kind;
    int64_t last_ms;   /* wall time of the last update, for expiry */
    uint64_t start_ns; /* start time of the first point we saw: the series' creation */
    double value;      /* DC_SUM */
    uint64_t count;    /* DC_HIST, DC_EXP */
    double sum;
    int has_sum;
    size_t n_bounds;   /* DC_HIST: bounds[n_bounds], counts[n_bounds + 1] */
    double *bounds;
    uint64_t *counts;
    int32_t scale;     /* DC_EXP */
    uint64_t zero_count;
    double zero_threshold;
    dc_buckets_t pos, neg;
} dc_entry_t;

struct deltacum {
    pthread_mutex_t mu;
    dc_entry_t **tab;
    size_t nbuckets; /* power of two */
    size_t n;
    size_t max_series;
    int64_t expiry_ms; /* <= 0: never expire */
    int64_t last_sweep_ms;
};

deltacum_t *deltacum_create(size_t max_series, int64_t expiry_ms)
{
    deltacum_t *dc = calloc(1, sizeof(*dc));
    if (!dc) {
        return NULL;
    }
    dc->nbuckets = 64;
    dc->tab = calloc(dc->nbuckets, sizeof(*dc->tab));
    if (!dc->tab) {
        free(dc);
        return NULL;
    }
    pthread_mutex_init(&dc->mu, NULL);
    dc->max_series = max_series ? max_series : 100000;
    dc->expiry_ms = expiry_ms;
    dc->last_sweep_ms = INT64_MIN;
    return dc;
}

static void dc_entry_clear_state(dc_entry_t *e)
{
    free(e->bounds);
    free(e->counts);
    free(e->pos.counts);
    free(e->neg.counts);
    char *key = e->key;
    size_t key_len = e->key_len;
    uint64_t hash = e->hash;
    dc_entry_t *next = e->next;
    memset(e, 0, sizeof(*e));
    e->key = key;
    e->key_len = key_len;
    e->hash = hash;
    e->next = next;
}

static void dc_entry_free(dc_entry_t *e)
{
    dc_entry_clear_state(e);
    free(e->key);
    free(e);
}

void deltacum_destroy(deltacum_t *dc)
{
    if (!dc) {
        return;
    }
    for (size_t i = 0; i < dc->nbuckets; i++) {
        dc_entry_t *e = dc->tab[i];
        while (e) {
            dc_entry_t *next = e->next;
            dc_entry_free(e);
            e = next;
        }
    }
    free(dc->tab);
    pthread_mutex_destroy(&dc->mu);
    free(dc);
}

size_t deltacum_size(deltacum_t *dc)
{
    if (!dc) {
        return 0;
    }
    pthread_mutex_lock(&dc->mu);
    size_t n = dc->n;
    pthread_mutex_unlock(&dc->mu);
    return n;
}

static int dc_expired(const deltacum_t *dc, const dc_entry_t *e, int64_t now_ms)
{
    return dc->expiry_ms > 0 && now_ms - e->last_ms > dc->expiry_ms;
}

/* Forgets idle entries; caller holds the lock. O(table), so run at most every expiry/2. */
static void dc_sweep_locked(deltacum_t *dc, int64_t now_ms)
{
    dc->last_sweep_ms = now_ms;
    for (size_t i = 0; i < dc->nbuckets; i++) {
        dc_entry_t **pp = &dc->tab[i];
        while (*pp) {
            dc_entry_t *e = *pp;
            if (dc_expired(dc, e, now_ms)) {
                *pp = e->next;
                dc_entry_free(e);
                dc->n--;
            } else {
                pp = &e->next;
            }
        }
    }
}

static void dc_maybe_sweep_locked(deltacum_t *dc, int64_t now_ms)
{
    if (dc->expiry_ms > 0 && (dc->last_sweep_ms == INT64_MIN ||
                              now_ms - dc->last_sweep_ms >= dc->expiry_ms / 2)) {
        dc_sweep_locked(dc, now_ms);
    }
}

static void dc_grow_locked(deltacum_t *dc)
{
    size_t nb = dc->nbuckets * 2;
    dc_entry_t **tab = calloc(nb, sizeof(*tab));
    if (!tab) {
        return; /* longer chains, still correct */
    }
    for (size_t i = 0; i < dc->nbuckets; i++) {
        dc_entry_t *e = dc->tab[i];
        while (e) {
            dc_entry_t *next = e->next;
            size_t h = (size_t)(e->hash & (nb - 1));
            e->next = tab[h];
            tab[h] = e;
            e = next;
        }
    }
    free(dc->tab);
    dc->tab = tab;
    dc->nbuckets = nb;
}

/* Finds or creates the entry for key; caller holds the lock. *fresh is set when the state is
 * new (or was reset because it expired or changed kind). NULL with *why set when full or out
 * of memory. */
static dc_entry_t *dc_get_locked(deltacum_t *dc, const char *key, size_t len, uint64_t hash,
                                 int kind, int64_t now_ms, int *fresh, const char **why)
{
    size_t h = (size_t)(hash & (dc->nbuckets - 1));
    for (dc_entry_t *e = dc->tab[h]; e; e = e->next) {
        if (e->hash == hash && e->key_len == len && memcmp(e->key, key, len) == 0) {
            *fresh = 0;
            if (e->kind != kind || dc_expired(dc, e, now_ms)) {
                dc_entry_clear_state(e);
                e->kind = kind;
                *fresh = 1;
            }
            e->last_ms = now_ms;
            return e;
        }
    }
    if (dc->n >= dc->max_series) {
        dc_sweep_locked(dc, now_ms);
        if (dc->n >= dc->max_series) {
            *why = "delta_state_full";
            return NULL;
        }
    }
    dc_entry_t *e = calloc(1, sizeof(*e));
    char *k = malloc(len ? len : 1);
    if (!e || !k) {
        free(e);
        free(k);
        *why = "delta_state_oom";
        return NULL;
    }
    memcpy(k, key, len);
    e->key = k;
    e->key_len = len;
    e->hash = hash;
    e->kind = kind;
    e->last_ms = now_ms;
    e->next = dc->tab[h];
    dc->tab[h] = e;
    dc->n++;
    if (dc->n > dc->nbuckets) {
        dc_grow_locked(dc);
    }
    *fresh = 1;
    return e;
}

/* floor(x / 2^d) for any sign: the OTel bucket index at a coarser scale. */
static int64_t floor_shift(int64_t x, int d)
{
    if (d <= 0) {
        return x;
    }
    if (d > 62) {
        return x >= 0 ? 0 : -1;
    }
    return x >= 0 ? x >> d : -((-x - 1) >> d) - 1;
}

/* Index range [lo, hi] that src (offset, n counts) covers after downscaling by d. */
static void bk_range(int64_t off, size_t n, int d, int64_t *lo, int64_t *hi)
{
    *lo = floor_shift(off, d);
    *hi = floor_shift(off + (int64_t)n - 1, d);
}

/* Width of dst once src (downscaled by d) is merged into it. */
static int64_t bk_merged_width(const dc_buckets_t *dst, int64_t off, size_t n, int d)
{
    if (n == 0) {
        return (int64_t)dst->n;
    }
    int64_t lo, hi;
    bk_range(off, n, d, &lo, &hi);
    if (dst->n) {
        int64_t dlo = dst->offset, dhi = dst->offset + (int64_t)dst->n - 1;
        lo = dlo < lo ? dlo : lo;
        hi = dhi > hi ? dhi : hi;
    }
    return hi - lo + 1;
}

/* dst += src downscaled by d (the width was checked by the caller). */
static int bk_add(dc_buckets_t *dst, int64_t off, const uint64_t *counts, size_t n, int d)
{
    if (n == 0) {
        return 0;
    }
    int64_t lo, hi;
    bk_range(off, n, d, &lo, &hi);
    if (dst->n) {
        int64_t dlo = dst->offset, dhi = dst->offset + (int64_t)dst->n - 1;
        lo = dlo < lo ? dlo : lo;
        hi = dhi > hi ? dhi : hi;
    }
    size_t w = (size_t)(hi - lo + 1);
    if (!dst->n || lo != dst->offset || w != dst->n) {
        uint64_t *nc = calloc(w, sizeof(*nc));
        if (!nc) {
            return -1;
        }
        for (size_t i = 0; i < dst->n; i++) {
            nc[(size_t)(dst->offset + (int64_t)i - lo)] = dst->counts[i];
        }
        free(dst->counts);
        dst->counts = nc;
        dst->offset = lo;
        dst->n = w;
    }
    for (size_t i = 0; i < n; i++) {
        dst->counts[(size_t)(floor_shift(off + (int64_t)i, d) - lo)] += counts[i];
    }
    return 0;
}

/* Re-buckets b at a scale d steps coarser. */
static int bk_downscale(dc_buckets_t *b, int d)
{
    if (d <= 0 || b->n == 0) {
        return 0;
    }
    dc_buckets_t nb = {0, 0, NULL};
    if (bk_add(&nb, b->offset, b->counts, b->n, d) != 0) {
        return -1;
    }
    free(b->counts);
    *b = nb;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Conversion context                                                                         */

typedef struct {
    plabel_t **v;
    size_t n, cap;
} lset_t;

typedef struct pc_series {
    Prometheus__TimeSeries ts; /* first: out->series holds &ts */
    uint64_t hash;
    struct pc_series *next;
    size_t cap_samples, cap_exemplars, cap_histograms;
    int unsorted; /* a sample arrived with an older timestamp than the last one */
} pc_series_t;

/* A string -> pointer map in the arena (open addressing), for metadata and target_info. */
typedef struct {
    const char **keys;
    void **vals;
    size_t cap, n;
} strmap_t;

typedef struct {
    const char *orig;
    char *name;
    const anyv_t *value;
    size_t idx;
} attr_ent_t;

typedef struct {
    lset_t promoted;         /* added to each series when its label is not there yet */
    plabel_t *job, *instance;
    int64_t latest_ms;
} pc_res_t;

typedef struct {
    const promconv_opts_t *o;
    deltacum_t *dc;
    arena_t *a;
    promconv_out_t *out;
    int64_t now_ms;
    pc_series_t **tab;
    size_t tab_cap;
    strmap_t meta, tinfo;
    lset_t ext;              /* external labels */
    lset_t scope;            /* current scope's labels (override attributes) */
    lset_t pl;               /* current point's labels, sorted, without __name__ */
    lset_t tmp;              /* one series' full label set before it is interned */
    attr_ent_t *ents;
    size_t ents_cap;
    char *key;               /* delta state key scratch */
    size_t key_cap;
    int oom;
} pc_ctx_t;

static void *ctx_alloc(pc_ctx_t *c, size_t n)
{
    void *p = arena_alloc(c->a, n ? n : 1);
    if (!p) {
        c->oom = 1;
    }
    return p;
}

static char *ctx_strndup(pc_ctx_t *c, const char *s, size_t n)
{
    char *p = arena_strndup(c->a, s, n);
    if (!p) {
        c->oom = 1;
    }
    return p;
}

static char *ctx_strdup(pc_ctx_t *c, const char *s) { return ctx_strndup(c, s, strlen(s)); }

/* Grows an arena array of `elem`-sized items to hold `need`; the old copy stays in the arena
 * (it is freed with it), which costs at most the final size again. */
static int grow(pc_ctx_t *c, void **arr, size_t *cap, size_t need, size_t elem, size_t used)
{
    if (need <= *cap) {
        return 0;
    }
    size_t nc = *cap ? *cap * 2 : 4;
    while (nc < need) {
        nc *= 2;
    }
    void *p = ctx_alloc(c, nc * elem);
    if (!p) {
        return -1;
    }
    if (used) {
        memcpy(p, *arr, used * elem);
    }
    *arr = p;
    *cap = nc;
    return 0;
}

static int lset_push(pc_ctx_t *c, lset_t *s, plabel_t *l)
{
    if (!l || grow(c, (void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v), s->n) != 0) {
        return -1;
    }
    s->v[s->n++] = l;
    return 0;
}

static plabel_t *mk_label(pc_ctx_t *c, char *name, char *value)
{
    if (!name || !value) {
        return NULL;
    }
    plabel_t *l = ctx_alloc(c, sizeof(*l));
    if (!l) {
        return NULL;
    }
    prometheus__label__init(l);
    l->name = name;
    l->value = value;
    return l;
}

/* Sets a label: an existing one of that name is replaced only when `override`. */
static int lset_set(pc_ctx_t *c, lset_t *s, plabel_t *l, int override)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->v[i]->name, l->name) == 0) {
            if (override) {
                s->v[i] = l;
            }
            return 0;
        }
    }
    return lset_push(c, s, l);
}

static int label_cmp(const void *x, const void *y)
{
    const plabel_t *a = *(plabel_t *const *)x, *b = *(plabel_t *const *)y;
    return strcmp(a->name, b->name);
}

static void sort_labels(lset_t *s)
{
    if (s->n > 1) {
        qsort(s->v, s->n, sizeof(*s->v), label_cmp);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Attribute values as label text                                                             */

typedef struct {
    pc_ctx_t *c;
    char *p;
    size_t len, cap;
} sb_t;

static void sb_putn(sb_t *b, const char *s, size_t n)
{
    if (!b->c->oom && grow(b->c, (void **)&b->p, &b->cap, b->len + n + 1, 1, b->len) == 0) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = 0;
    }
}

static void sb_puts(sb_t *b, const char *s) { sb_putn(b, s, strlen(s)); }

static char *sb_done(sb_t *b)
{
    if (b->c->oom) {
        return NULL;
    }
    return b->p ? b->p : ctx_strdup(b->c, "");
}

static void sb_base64(sb_t *b, const uint8_t *d, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t)d[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= d[i + 2];
        }
        char q[4] = {tbl[(v >> 18) & 63], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], tbl[v & 63]};
        if (i + 1 >= n) {
            q[2] = '=';
        }
        if (i + 2 >= n) {
            q[3] = '=';
        }
        sb_putn(b, q, 4);
    }
}

/* JSON string as Go's encoding/json writes it (HTML-safe escapes included). */
static void sb_json_str(sb_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sb_putn(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            sb_putn(b, e, 2);
        } else if (ch == '\n') {
            sb_puts(b, "\\n");
        } else if (ch == '\r') {
            sb_puts(b, "\\r");
        } else if (ch == '\t') {
            sb_puts(b, "\\t");
        } else if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&') {
            char e[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            sb_putn(b, e, 6);
        } else {
            sb_putn(b, (const char *)&ch, 1);
        }
    }
    sb_putn(b, "\"", 1);
}

static int kv_key_cmp(const void *x, const void *y)
{
    const kv_t *a = *(kv_t *const *)x, *b = *(kv_t *const *)y;
    return strcmp(a->key ? a->key : "", b->key ? b->key : "");
}

static void sb_json_any(sb_t *b, const anyv_t *v, int depth)
{
    char num[400];
    fbuf_t f;
    if (!v || depth > JSON_MAX_DEPTH) {
        sb_puts(b, "null");
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        sb_json_str(b, v->string_value ? v->string_value : "");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        sb_puts(b, v->bool_value ? "true" : "false");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        snprintf(num, sizeof(num), "%lld", (long long)v->int_value);
        sb_puts(b, num);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        if (isnan(v->double_value) || isinf(v->double_value)) {
            sb_puts(b, "null"); /* JSON has no spelling for these */
        } else {
            fb_init(&f, num, sizeof(num));
            fb_float_es6(&f, v->double_value);
            sb_puts(b, num);
        }
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        sb_putn(b, "\"", 1);
        sb_base64(b, v->bytes_value.data, v->bytes_value.len);
        sb_putn(b, "\"", 1);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        const Opentelemetry__Proto__Common__V1__ArrayValue *arr = v->array_value;
        sb_putn(b, "[", 1);
        for (size_t i = 0; arr && i < arr->n_values; i++) {
            if (i) {
                sb_putn(b, ",", 1);
            }
            sb_json_any(b, arr->values[i], depth + 1);
        }
        sb_putn(b, "]", 1);
        break;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        /* Go marshals a map with its keys sorted */
        const Opentelemetry__Proto__Common__V1__KeyValueList *kl = v->kvlist_value;
        size_t n = kl ? kl->n_values : 0;
        kv_t **sorted = n ? ctx_alloc(b->c, n * sizeof(*sorted)) : NULL;
        sb_putn(b, "{", 1);
        if (sorted) {
            memcpy(sorted, kl->values, n * sizeof(*sorted));
            qsort(sorted, n, sizeof(*sorted), kv_key_cmp);
            for (size_t i = 0; i < n; i++) {
                if (i) {
                    sb_putn(b, ",", 1);
                }
                sb_json_str(b, sorted[i]->key ? sorted[i]->key : "");
                sb_putn(b, ":", 1);
                sb_json_any(b, sorted[i]->value, depth + 1);
            }
        }
        sb_putn(b, "}", 1);
        break;
    }
    default:
        sb_puts(b, "null");
        break;
    }
}

/* pdata's Value.AsString: strings as is, ints in decimal, doubles ES6-style, bools
 * true/false, bytes base64, arrays and maps as JSON text, empty as "". Arena copy. */
static char *any_str(pc_ctx_t *c, const anyv_t *v)
{
    char num[400];
    fbuf_t f;
    if (!v) {
        return ctx_strdup(c, "");
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return ctx_strdup(c, v->string_value ? v->string_value : "");
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return ctx_strdup(c, v->bool_value ? "true" : "false");
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        snprintf(num, sizeof(num), "%lld", (long long)v->int_value);
        return ctx_strdup(c, num);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        fb_init(&f, num, sizeof(num));
        fb_float_es6(&f, v->double_value);
        return ctx_strdup(c, num);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: {
        sb_t b = {c, NULL, 0, 0};
        sb_base64(&b, v->bytes_value.data, v->bytes_value.len);
        return sb_done(&b);
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        sb_t b = {c, NULL, 0, 0};
        sb_json_any(&b, v, 0);
        return sb_done(&b);
    }
    default:
        return ctx_strdup(c, "");
    }
}

static char *label_name_dup(pc_ctx_t *c, const char *key)
{
    size_t n = strlen(key) + 8;
    char *buf = ctx_alloc(c, n);
    if (!buf) {
        return NULL;
    }
    return promconv_label_name(key, buf, n) < 0 ? NULL : buf;
}

static int ent_cmp(const void *x, const void *y)
{
    const attr_ent_t *a = x, *b = y;
    int r = strcmp(a->name, b->name);
    if (r == 0) {
        r = strcmp(a->orig, b->orig);
    }
    if (r == 0) {
        r = (a->idx > b->idx) - (a->idx < b->idx);
    }
    return r;
}

static int key_in(const char *key, const char *const *list)
{
    for (; list && *list; list++) {
        if (strcmp(key, *list) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Appends attrs as labels to dst: names sanitised, keys listed in `skip` left out, and keys
 * that sanitise to the same name merged into one label whose values are joined with `;` in
 * the byte order of the original keys (Prometheus's createAttributes). Attributes whose key
 * cannot become a label name are dropped. */
static int attrs_to_lset(pc_ctx_t *c, kv_t *const *attrs, size_t n, const char *const *skip,
                         lset_t *dst)
{
    if (n == 0) {
        return 0;
    }
    if (grow(c, (void **)&c->ents, &c->ents_cap, n, sizeof(*c->ents), 0) != 0) {
        return -1;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const kv_t *kv = attrs[i];
        if (!kv || !kv->key || !*kv->key || key_in(kv->key, skip)) {
            continue;
        }
        char *name = label_name_dup(c, kv->key);
        if (!name) {
            if (c->oom) {
                return -1;
            }
            continue;
        }
        c->ents[m].orig = kv->key;
        c->ents[m].name = name;
        c->ents[m].value = kv->value;
        c->ents[m].idx = i;
        m++;
    }
    if (m > 1) {
        qsort(c->ents, m, sizeof(*c->ents), ent_cmp);
    }
    for (size_t i = 0; i < m;) {
        size_t j = i + 1;
        while (j < m && strcmp(c->ents[j].name, c->ents[i].name) == 0) {
            j++;
        }
        char *val;
        if (j == i + 1) {
            val = any_str(c, c->ents[i].value);
        } else {
            sb_t b = {c, NULL, 0, 0};
            for (size_t k = i; k < j; k++) {
                char *v = any_str(c, c->ents[k].value);
                if (!v) {
                    return -1;
                }
                if (k > i) {
                    sb_putn(&b, ";", 1);
                }
                sb_puts(&b, v);
            }
            val = sb_done(&b);
        }
        if (lset_push(c, dst, mk_label(c, c->ents[i].name, val)) != 0) {
            return -1;
        }
        i = j;
    }
    return c->oom ? -1 : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Series, samples, metadata                                                                  */

static uint64_t fnv_str(uint64_t h, const char *s)
{
    h = mt_hash_bytes(h, s, strlen(s));
    h ^= 0xff; /* terminator so ("ab","c") and ("a","bc") differ */
    h *= 1099511628211ull;
    return h;
}

static uint64_t labels_hash(plabel_t *const *v, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h = fnv_str(h, v[i]->name);
        h = fnv_str(h, v[i]->value);
    }
    return h;
}

static int labels_equal(plabel_t *const *a, size_t na, plabel_t *const *b, size_t nb)
{
    if (na != nb) {
        return 0;
    }
    for (size_t i = 0; i < na; i++) {
        if (a[i] != b[i] &&
            (strcmp(a[i]->name, b[i]->name) != 0 || strcmp(a[i]->value, b[i]->value) != 0)) {
            return 0;
        }
    }
    return 1;
}

static int rehash_series(pc_ctx_t *c, size_t cap)
{
    pc_series_t **tab = ctx_alloc(c, cap * sizeof(*tab));
    if (!tab) {
        return -1;
    }
    memset(tab, 0, cap * sizeof(*tab));
    for (size_t i = 0; i < c->out->n_series; i++) {
        pc_series_t *s = (pc_series_t *)c->out->series[i];
        size_t h = (size_t)(s->hash & (cap - 1));
        s->next = tab[h];
        tab[h] = s;
    }
    c->tab = tab;
    c->tab_cap = cap;
    return 0;
}

/* The series with exactly these (sorted, unique) labels, created on first use. The label
 * pointer array is copied; the label structs are shared (they are immutable arena data). */
static pc_series_t *intern_series(pc_ctx_t *c, plabel_t *const *v, size_t n)
{
    uint64_t h = labels_hash(v, n);
    for (pc_series_t *s = c->tab[h & (c->tab_cap - 1)]; s; s = s->next) {
        if (s->hash == h && labels_equal(s->ts.labels, s->ts.n_labels, v, n)) {
            return s;
        }
    }
    promconv_out_t *out = c->out;
    if (grow(c, (void **)&out->series, &out->cap_series, out->n_series + 1,
             sizeof(*out->series), out->n_series) != 0) {
        return NULL;
    }
    pc_series_t *s = ctx_alloc(c, sizeof(*s));
    plabel_t **lv = ctx_alloc(c, (n ? n : 1) * sizeof(*lv));
    if (!s || !lv) {
        return NULL;
    }
    memset(s, 0, sizeof(*s));
    prometheus__time_series__init(&s->ts);
    if (n) {
        memcpy(lv, v, n * sizeof(*lv));
    }
    s->ts.labels = lv;
    s->ts.n_labels = n;
    s->hash = h;
    /* link into the table first: a rehash re-links every series in out->series, so the new
     * one must not be appended before it is linked (it would be linked twice, into a cycle) */
    size_t b = (size_t)(h & (c->tab_cap - 1));
    s->next = c->tab[b];
    c->tab[b] = s;
    out->series[out->n_series++] = &s->ts;
    if (out->n_series > c->tab_cap && rehash_series(c, c->tab_cap * 2) != 0) {
        return NULL;
    }
    return s;
}

/* The series for the current point labels (c->pl) plus __name__ and optionally one more label
 * (le / quantile), which win over point labels of the same name. */
static pc_series_t *series_for(pc_ctx_t *c, plabel_t *name, plabel_t *extra)
{
    c->tmp.n = 0;
    if (grow(c, (void **)&c->tmp.v, &c->tmp.cap, c->pl.n + 2, sizeof(*c->tmp.v), 0) != 0) {
        return NULL;
    }
    plabel_t *add[2] = {name, extra};
    for (size_t i = 0; i < c->pl.n; i++) {
        plabel_t *l = c->pl.v[i];
        if (extra && strcmp(l->name, extra->name) == 0) {
            continue;
        }
        c->tmp.v[c->tmp.n++] = l;
    }
    for (int k = 0; k < 2; k++) {
        if (!add[k]) {
            continue;
        }
        size_t pos = c->tmp.n;
        while (pos > 0 && strcmp(c->tmp.v[pos - 1]->name, add[k]->name) > 0) {
            c->tmp.v[pos] = c->tmp.v[pos - 1];
            pos--;
        }
        c->tmp.v[pos] = add[k];
        c->tmp.n++;
    }
    return intern_series(c, c->tmp.v, c->tmp.n);
}

static Prometheus__Sample *add_sample(pc_ctx_t *c, pc_series_t *s, double v, int64_t ts)
{
    if (!s) {
        return NULL;
    }
    Prometheus__TimeSeries *t = &s->ts;
    if (grow(c, (void **)&t->samples, &s->cap_samples, t->n_samples + 1, sizeof(*t->samples),
             t->n_samples) != 0) {
        return NULL;
    }
    Prometheus__Sample *smp = ctx_alloc(c, sizeof(*smp));
    if (!smp) {
        return NULL;
    }
    prometheus__sample__init(smp);
    smp->value = v;
    smp->timestamp = ts;
    if (t->n_samples && t->samples[t->n_samples - 1]->timestamp > ts) {
        s->unsorted = 1;
    }
    t->samples[t->n_samples++] = smp;
    c->out->samples++;
    return smp;
}

static int add_histogram(pc_ctx_t *c, pc_series_t *s, Prometheus__Histogram *h)
{
    if (!s) {
        return -1;
    }
    Prometheus__TimeSeries *t = &s->ts;
    if (grow(c, (void **)&t->histograms, &s->cap_histograms, t->n_histograms + 1,
             sizeof(*t->histograms), t->n_histograms) != 0) {
        return -1;
    }
    if (t->n_histograms && t->histograms[t->n_histograms - 1]->timestamp > h->timestamp) {
        s->unsorted = 1;
    }
    t->histograms[t->n_histograms++] = h;
    c->out->histograms++;
    return 0;
}

static int add_exemplar(pc_ctx_t *c, pc_series_t *s, Prometheus__Exemplar *e)
{
    if (!s || !e) {
        return -1;
    }
    Prometheus__TimeSeries *t = &s->ts;
    if (grow(c, (void **)&t->exemplars, &s->cap_exemplars, t->n_exemplars + 1,
             sizeof(*t->exemplars), t->n_exemplars) != 0) {
        return -1;
    }
    t->exemplars[t->n_exemplars++] = e;
    c->out->exemplars++;
    return 0;
}

static uint64_t str_hash(const char *s, size_t n)
{
    return mt_hash_bytes(14695981039346656037ull, s, n);
}

/* The value slot for key (NUL-separated pairs allowed: klen gives the length), created empty
 * on first use. Keys must live in the arena. NULL when out of memory. */
static void **strmap_slot(pc_ctx_t *c, strmap_t *m, const char *key, size_t klen, int *created)
{
    if (m->n * 2 >= m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 64;
        const char **nk = ctx_alloc(c, nc * sizeof(*nk));
        void **nv = ctx_alloc(c, nc * sizeof(*nv));
        size_t *nl = ctx_alloc(c, nc * sizeof(*nl));
        if (!nk || !nv || !nl) {
            return NULL;
        }
        memset(nk, 0, nc * sizeof(*nk));
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i]) {
                continue;
            }
            size_t kl = *(const size_t *)(m->keys[i] - sizeof(size_t));
            size_t j = (size_t)(str_hash(m->keys[i], kl) & (nc - 1));
            while (nk[j]) {
                j = (j + 1) & (nc - 1);
            }
            nk[j] = m->keys[i];
            nv[j] = m->vals[i];
        }
        m->keys = nk;
        m->vals = nv;
        m->cap = nc;
    }
    size_t j = (size_t)(str_hash(key, klen) & (m->cap - 1));
    while (m->keys[j]) {
        size_t kl = *(const size_t *)(m->keys[j] - sizeof(size_t));
        if (kl == klen && memcmp(m->keys[j], key, klen) == 0) {
            *created = 0;
            return &m->vals[j];
        }
        j = (j + 1) & (m->cap - 1);
    }
    /* store the length in front of the key bytes so keys may hold NULs */
    char *k = ctx_alloc(c, sizeof(size_t) + klen + 1);
    if (!k) {
        return NULL;
    }
    memcpy(k, &klen, sizeof(size_t));
    memcpy(k + sizeof(size_t), key, klen);
    k[sizeof(size_t) + klen] = 0;
    m->keys[j] = k + sizeof(size_t);
    m->vals[j] = NULL;
    m->n++;
    *created = 1;
    return &m->vals[j];
}

/* otlptranslator's UnitNamer.Build: the unit word for metadata ("seconds",
 * "bytes_per_second", "" for "1" and annotations). */
static char *unit_word(pc_ctx_t *c, const char *unit)
{
    size_t cap = strlen(unit) * 2 + 32;
    char *buf = ctx_alloc(c, cap);
    if (!buf) {
        return NULL;
    }
    fbuf_t b;
    fb_init(&b, buf, cap);
    const char *m, *p;
    size_t mn, pn;
    unit_parts(unit, &m, &mn, &p, &pn);
    if (m) {
        fb_unit_word(&b, m, mn, 0);
    }
    if (p) {
        size_t mark = b.len;
        if (b.len) {
            fb_putc(&b, '_');
        }
        size_t ws = b.len;
        fb_unit_word(&b, p, pn, 1);
        if (b.len == ws) {
            fb_truncate(&b, mark);
        }
    }
    return buf;
}

static int add_metadata(pc_ctx_t *c, const char *family, int type, const char *help,
                        const char *unit)
{
    int created;
    void **slot = strmap_slot(c, &c->meta, family, strlen(family), &created);
    if (!slot) {
        return -1;
    }
    if (!created) {
        return 0; /* first description of a family wins */
    }
    promconv_out_t *out = c->out;
    if (grow(c, (void **)&out->metadata, &out->cap_metadata, out->n_metadata + 1,
             sizeof(*out->metadata), out->n_metadata) != 0) {
        return -1;
    }
    Prometheus__MetricMetadata *md = ctx_alloc(c, sizeof(*md));
    if (!md) {
        return -1;
    }
    prometheus__metric_metadata__init(md);
    md->type = (Prometheus__MetricMetadata__MetricType)type;
    md->metric_family_name = (char *)family;
    md->help = ctx_strdup(c, help ? help : "");
    md->unit = unit_word(c, unit ? unit : "");
    if (!md->help || !md->unit) {
        return -1;
    }
    *slot = md;
    out->metadata[out->n_metadata++] = md;
    return 0;
}

static void drop_points(pc_ctx_t *c, size_t n, const char *reason)
{
    if (n) {
        c->out->dropped_points += n;
        c->out->last_drop_reason = reason;
    }
}

static int64_t ts_ms(pc_ctx_t *c, pc_res_t *r, uint64_t ns)
{
    int64_t ms = ns ? (int64_t)(ns / 1000000u) : c->now_ms;
    if (ms > r->latest_ms) {
        r->latest_ms = ms;
    }
    return ms;
}

/* ------------------------------------------------------------------------------------------ */
/* Labels of one point                                                                        */

/* Builds c->pl: point attributes, then promoted resource attributes (only where absent), scope
 * labels and job/instance (these win), external labels (only where absent); empty values and
 * __name__ dropped; sorted by name. The order of precedence is Prometheus's createAttributes. */
static int point_labels(pc_ctx_t *c, pc_res_t *r, kv_t *const *attrs, size_t n)
{
    c->pl.n = 0;
    if (attrs_to_lset(c, attrs, n, NULL, &c->pl) != 0) {
        return -1;
    }
    for (size_t i = 0; i < r->promoted.n; i++) {
        if (lset_set(c, &c->pl, r->promoted.v[i], 0) != 0) {
            return -1;
        }
    }
    for (size_t i = 0; i < c->scope.n; i++) {
        if (lset_set(c, &c->pl, c->scope.v[i], 1) != 0) {
            return -1;
        }
    }
    if (r->job && lset_set(c, &c->pl, r->job, 1) != 0) {
        return -1;
    }
    if (r->instance && lset_set(c, &c->pl, r->instance, 1) != 0) {
        return -1;
    }
    for (size_t i = 0; i < c->ext.n; i++) {
        if (lset_set(c, &c->pl, c->ext.v[i], 0) != 0) {
            return -1;
        }
    }
    size_t w = 0;
    for (size_t i = 0; i < c->pl.n; i++) {
        plabel_t *l = c->pl.v[i];
        if (l->value[0] && strcmp(l->name, "__name__") != 0) {
            c->pl.v[w++] = l;
        }
    }
    c->pl.n = w;
    sort_labels(&c->pl);
    return 0;
}

/* Key of a delta series: family, kind and the point's final labels. */
static int delta_key(pc_ctx_t *c, const char *family, int kind, size_t *len)
{
    size_t need = strlen(family) + 4;
    for (size_t i = 0; i < c->pl.n; i++) {
        need += strlen(c->pl.v[i]->name) + strlen(c->pl.v[i]->value) + 2;
    }
    if (grow(c, (void **)&c->key, &c->key_cap, need, 1, 0) != 0) {
        return -1;
    }
    size_t n = 0;
    size_t fl = strlen(family);
    memcpy(c->key, family, fl + 1);
    n += fl + 1;
    c->key[n++] = (char)('0' + kind);
    for (size_t i = 0; i < c->pl.n; i++) {
        size_t a = strlen(c->pl.v[i]->name) + 1, b = strlen(c->pl.v[i]->value) + 1;
        memcpy(c->key + n, c->pl.v[i]->name, a);
        n += a;
        memcpy(c->key + n, c->pl.v[i]->value, b);
        n += b;
    }
    *len = n;
    return 0;
}

/* Locks the delta state and returns the entry for the current point, or NULL (unlocked, drop
 * counted) when there is no state, it is full, or memory ran out. */
static dc_entry_t *delta_entry(pc_ctx_t *c, const char *family, int kind, uint64_t start_ns,
                               int *fresh)
{
    size_t len;
    if (!c->dc) {
        drop_points(c, 1, "delta_without_state");
        return NULL;
    }
    if (delta_key(c, family, kind, &len) != 0) {
        return NULL;
    }
    const char *why = NULL;
    pthread_mutex_lock(&c->dc->mu);
    dc_entry_t *e = dc_get_locked(c->dc, c->key, len, str_hash(c->key, len), kind, c->now_ms,
                                  fresh, &why);
    if (!e) {
        pthread_mutex_unlock(&c->dc->mu);
        drop_points(c, 1, why);
        return NULL;
    }
    /* keep the earliest start we know: a restarted producer may report an earlier one, and
     * the running total simply carries on (protocols.md leaves resets to the consumer) */
    if (*fresh || (start_ns && (e->start_ns == 0 || start_ns < e->start_ns))) {
        e->start_ns = start_ns;
    }
    return e;
}

static void delta_unlock(pc_ctx_t *c) { pthread_mutex_unlock(&c->dc->mu); }

/* ------------------------------------------------------------------------------------------ */
/* Exemplars                                                                                  */

static int id_empty(ProtobufCBinaryData id)
{
    for (size_t i = 0; i < id.len; i++) {
        if (id.data[i]) {
            return 0;
        }
    }
    return 1;
}

static char *hex_dup(pc_ctx_t *c, ProtobufCBinaryData id)
{
    static const char hex[] = "0123456789abcdef";
    char *s = ctx_alloc(c, id.len * 2 + 1);
    if (!s) {
        return NULL;
    }
    for (size_t i = 0; i < id.len; i++) {
        s[2 * i] = hex[id.data[i] >> 4];
        s[2 * i + 1] = hex[id.data[i] & 15];
    }
    s[id.len * 2] = 0;
    return s;
}

static size_t utf8_runes(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        n += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return n;
}

/* trace_id / span_id (hex) first, then the filtered attributes (sanitised, never overriding
 * the ids) unless the label text would pass the OpenMetrics 128-rune cap. */
static Prometheus__Exemplar *conv_exemplar(pc_ctx_t *c, const otel_ex_t *x, int64_t point_ms)
{
    Prometheus__Exemplar *e = ctx_alloc(c, sizeof(*e));
    if (!e) {
        return NULL;
    }
    prometheus__exemplar__init(e);
    if (x->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT) {
        e->value = (double)x->as_int;
    } else if (x->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE) {
        e->value = x->as_double;
    }
    e->timestamp = x->time_unix_nano ? (int64_t)(x->time_unix_nano / 1000000u) : point_ms;
    lset_t ls = {NULL, 0, 0};
    size_t runes = 0;
    if (x->trace_id.len && !id_empty(x->trace_id)) {
        plabel_t *l = mk_label(c, ctx_strdup(c, "trace_id"), hex_dup(c, x->trace_id));
        if (lset_push(c, &ls, l) != 0) {
            return NULL;
        }
        runes += 8 + x->trace_id.len * 2;
    }
    if (x->span_id.len && !id_empty(x->span_id)) {
        plabel_t *l = mk_label(c, ctx_strdup(c, "span_id"), hex_dup(c, x->span_id));
        if (lset_push(c, &ls, l) != 0) {
            return NULL;
        }
        runes += 7 + x->span_id.len * 2;
    }
    lset_t attrs = {NULL, 0, 0};
    if (attrs_to_lset(c, x->filtered_attributes, x->n_filtered_attributes, NULL, &attrs) != 0) {
        return NULL;
    }
    for (size_t i = 0; i < attrs.n; i++) {
        runes += utf8_runes(attrs.v[i]->name) + utf8_runes(attrs.v[i]->value);
    }
    if (runes <= EXEMPLAR_MAX_RUNES) {
        for (size_t i = 0; i < attrs.n; i++) {
            if (!attrs.v[i]->value[0]) {
                continue;
            }
            if (lset_set(c, &ls, attrs.v[i], 0) != 0) {
                return NULL;
            }
        }
    }
    sort_labels(&ls);
    e->labels = ls.v;
    e->n_labels = ls.n;
    return e;
}

/* ------------------------------------------------------------------------------------------ */
/* Per-type conversion                                                                        */

typedef struct {
    const metric_t *m;
    pc_res_t *r;
    const char *family;
    plabel_t *name_lbl, *bucket_lbl, *sum_lbl, *count_lbl;
} pc_metric_t;

static plabel_t *name_label(pc_ctx_t *c, const char *family, const char *suffix)
{
    size_t fl = strlen(family), sl = strlen(suffix);
    char *v = ctx_alloc(c, fl + sl + 1);
    if (!v) {
        return NULL;
    }
    memcpy(v, family, fl);
    memcpy(v + fl, suffix, sl + 1);
    return mk_label(c, ctx_strdup(c, "__name__"), v);
}

static plabel_t *float_label(pc_ctx_t *c, const char *name, double v)
{
    char buf[400];
    if (promconv_format_float(v, buf, sizeof(buf)) < 0) {
        return NULL;
    }
    return mk_label(c, ctx_strdup(c, name), ctx_strdup(c, buf));
}

static double number_value(const numdp_t *p)
{
    if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT) {
        return (double)p->as_int;
    }
    if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE) {
        return p->as_double;
    }
    return 0;
}

/* Gauges and sums. `counter` keeps exemplars; `delta` runs the value through the state. */
static int conv_numbers(pc_ctx_t *c, pc_metric_t *pm, numdp_t *const *pts, size_t n, int counter,
                        int delta)
{
    for (size_t i = 0; i < n; i++) {
        const numdp_t *p = pts[i];
        if (point_labels(c, pm->r, p->attributes, p->n_attributes) != 0) {
            return -1;
        }
        int64_t ts = ts_ms(c, pm->r, p->time_unix_nano);
        int stale = (p->flags & NO_RECORDED_VALUE) != 0;
        double v = stale ? promconv_stale_nan() : plain_value(number_value(p));
        if (delta && !stale) {
            int fresh;
            dc_entry_t *e = delta_entry(c, pm->family, DC_SUM, p->start_time_unix_nano, &fresh);
            if (!e) {
                if (c->oom) {
                    return -1;
                }
                continue;
            }
            e->value = fresh ? v : e->value + v;
            v = e->value;
            delta_unlock(c);
        }
        pc_series_t *s = series_for(c, pm->name_lbl, NULL);
        if (!add_sample(c, s, v, ts)) {
            return -1;
        }
        for (size_t k = 0; counter && k < p->n_exemplars; k++) {
            if (add_exemplar(c, s, conv_exemplar(c, p->exemplars[k], ts)) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

static int conv_histograms(pc_ctx_t *c, pc_metric_t *pm, histdp_t *const *pts, size_t n,
                           int delta)
{
    for (size_t i = 0; i < n; i++) {
        const histdp_t *p = pts[i];
        if (point_labels(c, pm->r, p->attributes, p->n_attributes) != 0) {
            return -1;
        }
        int64_t ts = ts_ms(c, pm->r, p->time_unix_nano);
        int stale = (p->flags & NO_RECORDED_VALUE) != 0;
        int has_sum =
            p->sum__case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM__SUM;
        size_t nb = p->n_explicit_bounds;
        const double *bounds = p->explicit_bounds;
        const uint64_t *counts = p->bucket_counts;
        size_t nc = p->n_bucket_counts;
        uint64_t count = p->count;
        double sum = has_sum ? p->sum : 0;
        uint64_t *acc = NULL;
        dc_entry_t *e = NULL;
        if (delta && !stale) {
            int fresh;
            e = delta_entry(c, pm->family, DC_HIST, p->start_time_unix_nano, &fresh);
            if (!e) {
                if (c->oom) {
                    return -1;
                }
                continue;
            }
            /* new bucket layout: start a new cumulative series rather than mix layouts */
            if (!fresh && (e->n_bounds != nb ||
                           (nb && memcmp(e->bounds, bounds, nb * sizeof(double)) != 0))) {
                dc_entry_clear_state(e);
                e->kind = DC_HIST;
                e->start_ns = p->start_time_unix_nano;
                fresh = 1;
            }
            if (fresh) {
                e->bounds = nb ? malloc(nb * sizeof(double)) : NULL;
                e->counts = calloc(nb + 1, sizeof(uint64_t));
                if ((nb && !e->bounds) || !e->counts) {
                    dc_entry_clear_state(e);
                    delta_unlock(c);
                    drop_points(c, 1, "delta_state_oom");
                    continue;
                }
                if (nb) {
                    memcpy(e->bounds, bounds, nb * sizeof(double));
                }
                e->n_bounds = nb;
                e->has_sum = 1;
            }
            for (size_t k = 0; k <= nb && k < nc; k++) {
                e->counts[k] += counts[k];
            }
            e->count += count;
            e->sum += sum;
            e->has_sum = e->has_sum && has_sum;
            count = e->count;
            sum = e->sum;
            has_sum = e->has_sum;
            /* copy out so the lock is not held while emitting */
            acc = ctx_alloc(c, (nb + 1) * sizeof(*acc));
            if (acc) {
                memcpy(acc, e->counts, (nb + 1) * sizeof(*acc));
            }
            delta_unlock(c);
            if (!acc) {
                return -1;
            }
            counts = acc;
            nc = nb + 1;
        }
        /* buckets: cumulative counts per bound, then +Inf = count; keep the series so
         * exemplars can land in the first bucket whose bound holds their value */
        pc_series_t **bs = ctx_alloc(c, (nb + 1) * sizeof(*bs));
        if (!bs) {
            return -1;
        }
        uint64_t cum = 0;
        for (size_t k = 0; k < nb; k++) {
            if (k < nc) {
                cum += counts[k];
            }
            plabel_t *le = float_label(c, "le", bounds[k]);
            if (!le) {
                return -1;
            }
            bs[k] = series_for(c, pm->bucket_lbl, le);
            if (!add_sample(c, bs[k], stale ? promconv_stale_nan() : (double)cum, ts)) {
                return -1;
            }
        }
        plabel_t *inf = mk_label(c, ctx_strdup(c, "le"), ctx_strdup(c, "+Inf"));
        if (!inf) {
            return -1;
        }
        bs[nb] = series_for(c, pm->bucket_lbl, inf);
        if (!add_sample(c, bs[nb], stale ? promconv_stale_nan() : (double)count, ts)) {
            return -1;
        }
        if (has_sum) {
            double v = stale ? promconv_stale_nan() : plain_value(sum);
            if (!add_sample(c, series_for(c, pm->sum_lbl, NULL), v, ts)) {
                return -1;
            }
        }
        if (!add_sample(c, series_for(c, pm->count_lbl, NULL),
                        stale ? promconv_stale_nan() : (double)count, ts)) {
            return -1;
        }
        for (size_t k = 0; !stale && k < p->n_exemplars; k++) {
            Prometheus__Exemplar *x = conv_exemplar(c, p->exemplars[k], ts);
            if (!x) {
                return -1;
            }
            size_t b = 0;
            while (b < nb && !(x->value <= bounds[b])) {
                b++;
            }
            if (add_exemplar(c, bs[b], x) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* Native-histogram spans and deltas for OTel buckets (offset, counts), merged 2^scale_down at
 * a time. OTel array position i is native index floor((offset+i) / 2^scale_down) + 1: OTel
 * buckets are named by their lower bound, Prometheus's by their upper bound. Only non-empty
 * buckets are written, and every run of empty ones starts a new span (protocols.md §4.5:
 * offset 3, [10,0,0,20,5,2] -> spans {4,1},{2,3}, deltas [10,10,-15,-3]). */
static int encode_buckets(pc_ctx_t *c, int64_t offset, const uint64_t *counts, size_t n,
                          int scale_down, Prometheus__BucketSpan ***spans_out, size_t *n_spans,
                          int64_t **deltas_out, size_t *n_deltas)
{
    *n_spans = *n_deltas = 0;
    *spans_out = NULL;
    *deltas_out = NULL;
    if (n == 0) {
        return 0;
    }
    Prometheus__BucketSpan **spans = ctx_alloc(c, n * sizeof(*spans));
    int64_t *deltas = ctx_alloc(c, n * sizeof(*deltas));
    if (!spans || !deltas) {
        return -1;
    }
    size_t ns = 0, nd = 0;
    int64_t prev_idx = 0, prev_count = 0;
    size_t i = 0;
    while (i < n) {
        int64_t idx = floor_shift(offset + (int64_t)i, scale_down) + 1;
        uint64_t sum = 0;
        while (i < n && floor_shift(offset + (int64_t)i, scale_down) + 1 == idx) {
            sum += counts[i];
            i++;
        }
        if (sum == 0) {
            continue;
        }
        if (ns == 0 || idx != prev_idx + 1) {
            Prometheus__BucketSpan *sp = ctx_alloc(c, sizeof(*sp));
            if (!sp) {
                return -1;
            }
            prometheus__bucket_span__init(sp);
            sp->offset = (int32_t)(ns == 0 ? idx : idx - prev_idx - 1);
            spans[ns++] = sp;
        }
        spans[ns - 1]->length++;
        deltas[nd++] = (int64_t)sum - prev_count;
        prev_count = (int64_t)sum;
        prev_idx = idx;
    }
    *spans_out = spans;
    *n_spans = ns;
    *deltas_out = deltas;
    *n_deltas = nd;
    return 0;
}

/* Folds one delta exponential point into its state (scale capped at 8, coarsened further when
 * the accumulated range would pass DC_MAX_EXP_BUCKETS). Caller holds the lock. */
static int exp_accumulate(dc_entry_t *e, int fresh, const expdp_t *p)
{
    const expbk_t *pos = p->positive, *neg = p->negative;
    int32_t ps = p->scale;
    int32_t target = ps > NATIVE_MAX_SCALE ? NATIVE_MAX_SCALE : ps;
    if (!fresh && e->scale < target) {
        target = e->scale;
    }
    if (fresh) {
        e->scale = target;
    }
    for (;;) {
        int ds = e->scale - target, dp = ps - target;
        int64_t wp = bk_merged_width(&e->pos, pos ? pos->offset : 0,
                                     pos ? pos->n_bucket_counts : 0, dp);
        int64_t wn = bk_merged_width(&e->neg, neg ? neg->offset : 0,
                                     neg ? neg->n_bucket_counts : 0, dp);
        /* the state's own width only shrinks when downscaled, so checking after the point's
         * merge at `target` is enough once the state is at `target` too */
        if (ds == 0 && wp <= DC_MAX_EXP_BUCKETS && wn <= DC_MAX_EXP_BUCKETS) {
            break;
        }
        if (ds > 0) {
            if (bk_downscale(&e->pos, ds) != 0 || bk_downscale(&e->neg, ds) != 0) {
                return -1;
            }
            e->scale = target;
            continue;
        }
        if (target <= NATIVE_MIN_SCALE) {
            return -1;
        }
        target--;
    }
    int dp = ps - target;
    if ((pos && bk_add(&e->pos, pos->offset, pos->bucket_counts, pos->n_bucket_counts, dp) != 0) ||
        (neg && bk_add(&e->neg, neg->offset, neg->bucket_counts, neg->n_bucket_counts, dp) != 0)) {
        return -1;
    }
    e->count += p->count;
    e->zero_count += p->zero_count;
    e->sum += p->sum;
    if (p->zero_threshold > e->zero_threshold) {
        e->zero_threshold = p->zero_threshold;
    }
    return 0;
}

static int conv_exp_histograms(pc_ctx_t *c, pc_metric_t *pm, expdp_t *const *pts, size_t n,
                               int delta)
{
    for (size_t i = 0; i < n; i++) {
        const expdp_t *p = pts[i];
        int stale = (p->flags & NO_RECORDED_VALUE) != 0;
        int has_sum = p->sum__case ==
                      OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__SUM__SUM;
        if (p->scale < NATIVE_MIN_SCALE) {
            drop_points(c, 1, "scale_too_small");
            continue;
        }
        if (!stale && !has_sum) {
            drop_points(c, 1, "no_sum");
            continue;
        }
        if (point_labels(c, pm->r, p->attributes, p->n_attributes) != 0) {
            return -1;
        }
        int64_t ts = ts_ms(c, pm->r, p->time_unix_nano);
        Prometheus__Histogram *h = ctx_alloc(c, sizeof(*h));
        if (!h) {
            return -1;
        }
        prometheus__histogram__init(h);
        h->reset_hint = PROMETHEUS__HISTOGRAM__RESET_HINT__UNKNOWN;
        h->timestamp = ts;
        h->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT;
        h->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT;
        h->zero_threshold = p->zero_threshold > 0 ? p->zero_threshold : DEFAULT_ZERO_THRESHOLD;
        if (stale) {
            /* protocols.md §4.5: sum = stale NaN, count 0, no buckets */
            h->schema = p->scale > NATIVE_MAX_SCALE ? NATIVE_MAX_SCALE : p->scale;
            h->sum = promconv_stale_nan();
            h->count_int = 0;
            h->zero_count_int = 0;
        } else if (!delta) {
            int sd = p->scale > NATIVE_MAX_SCALE ? p->scale - NATIVE_MAX_SCALE : 0;
            h->schema = p->scale - sd;
            h->sum = plain_value(p->sum);
            h->count_int = p->count;
            h->zero_count_int = p->zero_count;
            if ((p->positive &&
                 encode_buckets(c, p->positive->offset, p->positive->bucket_counts,
                                p->positive->n_bucket_counts, sd, &h->positive_spans,
                                &h->n_positive_spans, &h->positive_deltas,
                                &h->n_positive_deltas) != 0) ||
                (p->negative &&
                 encode_buckets(c, p->negative->offset, p->negative->bucket_counts,
                                p->negative->n_bucket_counts, sd, &h->negative_spans,
                                &h->n_negative_spans, &h->negative_deltas,
                                &h->n_negative_deltas) != 0)) {
                return -1;
            }
        } else {
            int fresh;
            dc_entry_t *e = delta_entry(c, pm->family, DC_EXP, p->start_time_unix_nano, &fresh);
            if (!e) {
                if (c->oom) {
                    return -1;
                }
                continue;
            }
            if (exp_accumulate(e, fresh, p) != 0) {
                /* the state may be half-merged: forget it rather than report a wrong total */
                dc_entry_clear_state(e);
                e->kind = DC_EXP;
                delta_unlock(c);
                drop_points(c, 1, "delta_state_oom");
                continue;
            }
            h->schema = e->scale;
            h->sum = plain_value(e->sum);
            h->count_int = e->count;
            h->zero_count_int = e->zero_count;
            if (e->zero_threshold > 0) {
                h->zero_threshold = e->zero_threshold;
            }
            int rc = encode_buckets(c, e->pos.offset, e->pos.counts, e->pos.n, 0,
                                    &h->positive_spans, &h->n_positive_spans, &h->positive_deltas,
                                    &h->n_positive_deltas);
            if (rc == 0) {
                rc = encode_buckets(c, e->neg.offset, e->neg.counts, e->neg.n, 0,
                                    &h->negative_spans, &h->n_negative_spans,
                                    &h->negative_deltas, &h->n_negative_deltas);
            }
            delta_unlock(c);
            if (rc != 0) {
                return -1;
            }
        }
        pc_series_t *s = series_for(c, pm->name_lbl, NULL);
        if (add_histogram(c, s, h) != 0) {
            return -1;
        }
        for (size_t k = 0; !stale && k < p->n_exemplars; k++) {
            if (add_exemplar(c, s, conv_exemplar(c, p->exemplars[k], ts)) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

static int conv_summaries(pc_ctx_t *c, pc_metric_t *pm, sumdp_t *const *pts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const sumdp_t *p = pts[i];
        if (point_labels(c, pm->r, p->attributes, p->n_attributes) != 0) {
            return -1;
        }
        int64_t ts = ts_ms(c, pm->r, p->time_unix_nano);
        int stale = (p->flags & NO_RECORDED_VALUE) != 0;
        double nan = promconv_stale_nan();
        for (size_t k = 0; k < p->n_quantile_values; k++) {
            const Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile *q =
                p->quantile_values[k];
            if (!q) {
                continue;
            }
            plabel_t *ql = float_label(c, "quantile", q->quantile);
            if (!ql) {
                return -1;
            }
            pc_series_t *s = series_for(c, pm->name_lbl, ql);
            if (!add_sample(c, s, stale ? nan : plain_value(q->value), ts)) {
                return -1;
            }
        }
        if (!add_sample(c, series_for(c, pm->sum_lbl, NULL), stale ? nan : plain_value(p->sum),
                        ts) ||
            !add_sample(c, series_for(c, pm->count_lbl, NULL), stale ? nan : (double)p->count,
                        ts)) {
            return -1;
        }
    }
    return 0;
}

static size_t n_points(const metric_t *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return m->gauge ? m->gauge->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return m->sum ? m->sum->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return m->histogram ? m->histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram ? m->exponential_histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return m->summary ? m->summary->n_data_points : 0;
    default:
        return 0;
    }
}

static int conv_metric(pc_ctx_t *c, pc_res_t *r, const metric_t *m)
{
    size_t np = n_points(m);
    if (np == 0) {
        return 0;
    }
    int temporality = TEMPO_CUMULATIVE, counter = 0;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        temporality = m->sum->aggregation_temporality;
        counter = m->sum->is_monotonic;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        temporality = m->histogram->aggregation_temporality;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        temporality = m->exponential_histogram->aggregation_temporality;
        break;
    default:
        break;
    }
    if (temporality != TEMPO_CUMULATIVE && temporality != TEMPO_DELTA) {
        /* Prometheus rejects these too ("invalid temporality and type combination") */
        drop_points(c, np, "invalid_temporality");
        return 0;
    }
    const char *unit = m->unit ? m->unit : "";
    const char *name = m->name ? m->name : "";
    size_t cap = strlen(name) + 2 * strlen(unit) +
                 (c->o->namespace_ ? strlen(c->o->namespace_) : 0) + 64;
    char *family = ctx_alloc(c, cap);
    if (!family) {
        return -1;
    }
    int type;
    if (promconv_family_name(m, c->o->add_metric_suffixes, c->o->namespace_, family, cap,
                             &type) < 0) {
        drop_points(c, np, "invalid_name");
        return 0;
    }
    pc_metric_t pm = {m, r, family, NULL, NULL, NULL, NULL};
    pm.name_lbl = name_label(c, family, "");
    pm.bucket_lbl = name_label(c, family, "_bucket");
    pm.sum_lbl = name_label(c, family, "_sum");
    pm.count_lbl = name_label(c, family, "_count");
    if (!pm.name_lbl || !pm.bucket_lbl || !pm.sum_lbl || !pm.count_lbl ||
        add_metadata(c, family, type, m->description, unit) != 0) {
        return -1;
    }
    int delta = temporality == TEMPO_DELTA;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return conv_numbers(c, &pm, m->gauge->data_points, np, 0, 0);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return conv_numbers(c, &pm, m->sum->data_points, np, counter, delta);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return conv_histograms(c, &pm, m->histogram->data_points, np, delta);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return conv_exp_histograms(c, &pm, m->exponential_histogram->data_points, np, delta);
    default:
        return conv_summaries(c, &pm, m->summary->data_points, np);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Resource, scope, target_info                                                               */

static const kv_t *find_attr(const Opentelemetry__Proto__Resource__V1__Resource *res,
                             const char *key)
{
    for (size_t i = 0; res && i < res->n_attributes; i++) {
        const kv_t *kv = res->attributes[i];
        if (kv && kv->key && strcmp(kv->key, key) == 0) {
            return kv;
        }
    }
    return NULL;
}

static const char *const identifying_keys[] = {"service.name", "service.namespace",
                                               "service.instance.id", NULL};

static int resource_setup(pc_ctx_t *c, const rmetrics_t *rm, pc_res_t *r)
{
    const Opentelemetry__Proto__Resource__V1__Resource *res = rm->resource;
    memset(r, 0, sizeof(*r));
    r->latest_ms = INT64_MIN;
    const kv_t *svc = find_attr(res, "service.name");
    const kv_t *svc_ns = find_attr(res, "service.namespace");
    const kv_t *inst = find_attr(res, "service.instance.id");
    if (svc) {
        char *name = any_str(c, svc->value);
        char *ns = svc_ns ? any_str(c, svc_ns->value) : NULL;
        char *job = name;
        if (name && ns && *ns) {
            size_t a = strlen(ns), b = strlen(name);
            job = ctx_alloc(c, a + b + 2);
            if (job) {
                memcpy(job, ns, a);
                job[a] = '/';
                memcpy(job + a + 1, name, b + 1);
            }
        }
        if (!job) {
            return -1;
        }
        if (*job) {
            r->job = mk_label(c, ctx_strdup(c, "job"), job);
        }
    }
    if (inst) {
        char *v = any_str(c, inst->value);
        if (!v) {
            return -1;
        }
        if (*v) {
            r->instance = mk_label(c, ctx_strdup(c, "instance"), v);
        }
    }
    if (!res || c->oom) {
        return c->oom ? -1 : 0;
    }
    if (c->o->resource_to_telemetry) {
        return attrs_to_lset(c, res->attributes, res->n_attributes, NULL, &r->promoted);
    }
    const cfg_strlist_t *pl = c->o->promote;
    if (pl && pl->n) {
        /* gather the listed attributes, then sanitise and merge them like point attributes */
        kv_t **sel = ctx_alloc(c, res->n_attributes * sizeof(*sel) + 1);
        if (!sel) {
            return -1;
        }
        size_t n = 0;
        for (size_t i = 0; i < res->n_attributes; i++) {
            const kv_t *kv = res->attributes[i];
            for (size_t k = 0; kv && kv->key && k < pl->n; k++) {
                if (pl->items[k] && strcmp(pl->items[k], kv->key) == 0) {
                    sel[n++] = res->attributes[i];
                    break;
                }
            }
        }
        return attrs_to_lset(c, sel, n, NULL, &r->promoted);
    }
    return 0;
}

static int scope_setup(pc_ctx_t *c, const smetrics_t *sm)
{
    c->scope.n = 0;
    const Opentelemetry__Proto__Common__V1__InstrumentationScope *sc = sm->scope;
    if (!c->o->scope_labels || !sc) {
        return 0;
    }
    /* data that came in through meltp's remote-write receiver has no instrumentation scope:
     * labelling it with our receiver's name would change every relayed series' identity */
    if (sc->name && strcmp(sc->name, "meltp/prometheusremotewrite") == 0) {
        return 0;
    }
    static const char *const fixed[] = {"otel_scope_name", "otel_scope_version",
                                        "otel_scope_schema_url", NULL};
    const char *vals[3] = {sc->name, sc->version, sm->schema_url};
    for (int i = 0; i < 3; i++) {
        if (vals[i] && *vals[i] &&
            lset_push(c, &c->scope, mk_label(c, ctx_strdup(c, fixed[i]),
                                             ctx_strdup(c, vals[i]))) != 0) {
            return -1;
        }
    }
    for (size_t i = 0; i < sc->n_attributes; i++) {
        const kv_t *kv = sc->attributes[i];
        if (!kv || !kv->key || !*kv->key) {
            continue;
        }
        size_t kl = strlen(kv->key);
        char *pk = ctx_alloc(c, kl + 12);
        if (!pk) {
            return -1;
        }
        memcpy(pk, "otel_scope_", 11);
        memcpy(pk + 11, kv->key, kl + 1);
        char *name = label_name_dup(c, pk);
        if (!name) {
            if (c->oom) {
                return -1;
            }
            continue;
        }
        /* an attribute must not pose as one of the three fixed scope labels */
        if (key_in(name, fixed)) {
            continue;
        }
        if (lset_set(c, &c->scope, mk_label(c, name, any_str(c, kv->value)), 1) != 0) {
            return -1;
        }
    }
    return 0;
}

/* One target_info sample (value 1) per (job, instance) per request: the resource's other
 * attributes plus job and instance, only when the resource identifies itself (service.name or
 * service.instance.id) and has something besides those to say (Prometheus's rule). */
static int emit_target_info(pc_ctx_t *c, const rmetrics_t *rm, pc_res_t *r)
{
    const Opentelemetry__Proto__Resource__V1__Resource *res = rm->resource;
    if (!c->o->target_info || !res || !(r->job || r->instance)) {
        return 0;
    }
    size_t others = 0;
    for (size_t i = 0; i < res->n_attributes; i++) {
        const kv_t *kv = res->attributes[i];
        if (kv && kv->key && !key_in(kv->key, identifying_keys)) {
            others++;
        }
    }
    if (others == 0) {
        return 0;
    }
    int64_t ts = r->latest_ms == INT64_MIN ? c->now_ms : r->latest_ms;
    const char *job = r->job ? r->job->value : "";
    const char *inst = r->instance ? r->instance->value : "";
    size_t jl = strlen(job), il = strlen(inst);
    char *k = ctx_alloc(c, jl + il + 2);
    if (!k) {
        return -1;
    }
    memcpy(k, job, jl + 1);
    memcpy(k + jl + 1, inst, il + 1);
    int created;
    void **slot = strmap_slot(c, &c->tinfo, k, jl + il + 1, &created);
    if (!slot) {
        return -1;
    }
    if (!created) {
        Prometheus__Sample *smp = *slot;
        if (smp && ts > smp->timestamp) {
            smp->timestamp = ts;
        }
        return 0;
    }
    c->pl.n = 0;
    if (attrs_to_lset(c, res->attributes, res->n_attributes, identifying_keys, &c->pl) != 0) {
        return -1;
    }
    if ((r->job && lset_set(c, &c->pl, r->job, 1) != 0) ||
        (r->instance && lset_set(c, &c->pl, r->instance, 1) != 0)) {
        return -1;
    }
    for (size_t i = 0; i < c->ext.n; i++) {
        if (lset_set(c, &c->pl, c->ext.v[i], 0) != 0) {
            return -1;
        }
    }
    size_t w = 0;
    for (size_t i = 0; i < c->pl.n; i++) {
        if (c->pl.v[i]->value[0] && strcmp(c->pl.v[i]->name, "__name__") != 0) {
            c->pl.v[w++] = c->pl.v[i];
        }
    }
    c->pl.n = w;
    sort_labels(&c->pl);
    const char *ns = c->o->namespace_;
    char fam[512];
    if (promconv_metric_name("target_info", "", 0, 0, 0, ns, fam, sizeof(fam)) < 0) {
        snprintf(fam, sizeof(fam), "target_info");
    }
    char *family = ctx_strdup(c, fam);
    if (!family || add_metadata(c, family, PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE,
                                "Target metadata", "") != 0) {
        return -1;
    }
    plabel_t *nl = name_label(c, family, "");
    Prometheus__Sample *smp = nl ? add_sample(c, series_for(c, nl, NULL), 1, ts) : NULL;
    if (!smp) {
        return -1;
    }
    *slot = smp;
    return 0;
}

/* Insertion sort by timestamp: stable (points with equal times keep request order) and cheap
 * for the few samples one series gets per request. */
static void sort_samples(Prometheus__Sample **v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        Prometheus__Sample *x = v[i];
        size_t j = i;
        while (j > 0 && v[j - 1]->timestamp > x->timestamp) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

static void sort_histograms(Prometheus__Histogram **v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        Prometheus__Histogram *x = v[i];
        size_t j = i;
        while (j > 0 && v[j - 1]->timestamp > x->timestamp) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

int promconv_convert(const promconv_opts_t *o, deltacum_t *dc,
                     const Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *req,
                     arena_t *a, promconv_out_t *out)
{
    memset(out, 0, sizeof(*out));
    pc_ctx_t c;
    memset(&c, 0, sizeof(c));
    c.o = o;
    c.dc = dc;
    c.a = a;
    c.out = out;
    c.now_ms = o->now_ms ? o->now_ms : (int64_t)(mt_wall_ns() / 1000000u);
    if (rehash_series(&c, 256) != 0) {
        return MT_ENOMEM;
    }
    if (dc) {
        pthread_mutex_lock(&dc->mu);
        dc_maybe_sweep_locked(dc, c.now_ms);
        pthread_mutex_unlock(&dc->mu);
    }
    const cfg_strmap_t *ext = o->external_labels;
    for (size_t i = 0; ext && i < ext->n; i++) {
        if (!ext->keys[i] || !*ext->keys[i] || !ext->vals[i] || !*ext->vals[i]) {
            continue;
        }
        /* configured names are validated by the exporter; they are used as given */
        if (lset_set(&c, &c.ext, mk_label(&c, ctx_strdup(&c, ext->keys[i]),
                                          ctx_strdup(&c, ext->vals[i])), 0) != 0) {
            return MT_ENOMEM;
        }
    }
    for (size_t i = 0; req && i < req->n_resource_metrics; i++) {
        const rmetrics_t *rm = req->resource_metrics[i];
        if (!rm) {
            continue;
        }
        pc_res_t r;
        if (resource_setup(&c, rm, &r) != 0) {
            return MT_ENOMEM;
        }
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const smetrics_t *sm = rm->scope_metrics[j];
            if (!sm) {
                continue;
            }
            if (scope_setup(&c, sm) != 0) {
                return MT_ENOMEM;
            }
            for (size_t k = 0; k < sm->n_metrics; k++) {
                if (sm->metrics[k] && conv_metric(&c, &r, sm->metrics[k]) != 0) {
                    return MT_ENOMEM;
                }
            }
        }
        c.scope.n = 0;
        if (emit_target_info(&c, rm, &r) != 0) {
            return MT_ENOMEM;
        }
    }
    if (c.oom) {
        return MT_ENOMEM;
    }
    /* remote write wants each series' samples in time order */
    for (size_t i = 0; i < out->n_series; i++) {
        pc_series_t *s = (pc_series_t *)out->series[i];
        if (s->unsorted) {
            sort_samples(s->ts.samples, s->ts.n_samples);
            sort_histograms(s->ts.histograms, s->ts.n_histograms);
        }
    }
    return MT_OK;
}
