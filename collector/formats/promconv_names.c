/*
 * promconv_names.c - the text side of the OTLP -> Prometheus conversion: stale markers, float
 * text (Go's strconv and pdata's AsString), metric and label names (otlptranslator's
 * UnderscoreEscapingWithSuffixes, unit words) and attribute values rendered as label text.
 * Part of the formats/promconv module (promconv_int.h).
 */
#include "promconv.h"
#include "promconv_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STALE_BITS      0x7ff0000000000002ull
#define NORMAL_NAN_BITS 0x7ff8000000000001ull /* Prometheus's value.NormalNaN */
#define JSON_MAX_DEPTH  64 /* attribute values nest; stop rendering beyond this */

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
double pc_plain_value(double v)
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

void pc_fb_truncate(fbuf_t *b, size_t len)
{
    if (len < b->len) {
        b->len = len;
        b->p[len] = 0;
    }
}

static int fb_result(const fbuf_t *b)
{
    return b->err ? -1 : (int)b->len;
}

static int put_special(double v, fbuf_t *b)
{
    if (isnan(v)) {
        sb_puts(b, "NaN");
        return 1;
    }
    if (isinf(v)) {
        sb_puts(b, v > 0 ? "+Inf" : "-Inf");
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
        sb_putc(b, '-');
    }
    if (e >= 0) {
        for (int i = 0; i <= e; i++) {
            sb_putc(b, i < nd ? d[i] : '0');
        }
        if (nd > e + 1) {
            sb_putc(b, '.');
            sb_put(b, d + e + 1, (size_t)(nd - e - 1));
        }
    } else {
        sb_puts(b, "0.");
        for (int i = 0; i < -e - 1; i++) {
            sb_putc(b, '0');
        }
        sb_put(b, d, (size_t)nd);
    }
}

int promconv_format_float(double v, char *buf, size_t buflen)
{
    fbuf_t b;
    sb_init_fixed(&b, buf, buflen);
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
        sb_putc(b, '-');
    }
    sb_putc(b, d[0]);
    if (nd > 1) {
        sb_putc(b, '.');
        sb_put(b, d + 1, (size_t)(nd - 1));
    }
    snprintf(ex, sizeof(ex), "e%c%d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    sb_puts(b, ex);
}

/* ------------------------------------------------------------------------------------------ */
/* Metric and label names                                                                     */

static int is_alnum(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static int is_digit(unsigned char ch)
{
    return ch >= '0' && ch <= '9';
}

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
            sb_putc(b, '_');
        }
        pending = 0;
        sb_putc(b, (char)ch);
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
        sb_putc(b, '_');
    }
    sb_puts(b, tok);
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
        pc_fb_truncate(b, l);
        return;
    }
    if (l > 0) {
        sb_putc(b, '_');
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
    {"d", "days"},
    {"h", "hours"},
    {"min", "minutes"},
    {"s", "seconds"},
    {"ms", "milliseconds"},
    {"us", "microseconds"},
    {"ns", "nanoseconds"},
    {"By", "bytes"},
    {"KiBy", "kibibytes"},
    {"MiBy", "mebibytes"},
    {"GiBy", "gibibytes"},
    {"TiBy", "tibibytes"},
    {"KBy", "kilobytes"},
    {"MBy", "megabytes"},
    {"GBy", "gigabytes"},
    {"TBy", "terabytes"},
    {"m", "meters"},
    {"V", "volts"},
    {"A", "amperes"},
    {"J", "joules"},
    {"W", "watts"},
    {"g", "grams"},
    {"Cel", "celsius"},
    {"Hz", "hertz"},
    {"1", ""},
    {"%", "percent"},
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
void pc_unit_parts(const char *unit, const char **m, size_t *mn, const char **p, size_t *pn)
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
        sb_putc(b, o);
    }
}

/* Appends the cleaned main (per=0) or `per_<word>` (per=1) unit word; nothing when it comes
 * out empty. A trailing `_` is trimmed for both (otlptranslator keeps it on a lone main word;
 * we never want `x_foo__total`). */
void pc_fb_unit_word(fbuf_t *b, const char *s, size_t n, int per)
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
        pc_fb_truncate(b, start); /* "per_" alone */
    }
    while (b->len > start && b->p[b->len - 1] == '_') {
        pc_fb_truncate(b, b->len - 1);
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
    sb_init_fixed(&b, buf, buflen);
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
        pc_unit_parts(unit, &m, &mn, &p, &pn);
        if (m) {
            size_t mark = b.len;
            if (b.len > 0) {
                sb_putc(&b, '_');
            }
            size_t ws = b.len;
            pc_fb_unit_word(&b, m, mn, 0);
            if (b.len == ws || has_token(b.p, l, b.p + ws, b.len - ws)) {
                pc_fb_truncate(&b, mark);
            }
        }
        if (p) {
            size_t mark = b.len;
            if (b.len > 0) {
                sb_putc(&b, '_');
            }
            size_t ws = b.len;
            pc_fb_unit_word(&b, p, pn, 1);
            if (b.len == ws) {
                pc_fb_truncate(&b, mark);
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
    sb_init_fixed(&b, buf, buflen);
    if (!key || !*key) {
        return -1;
    }
    for (const char *s = key; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch & 0xC0) == 0x80) {
            continue; /* one `_` per UTF-8 character, as Go's strings.Map over runes */
        }
        sb_putc(&b, (is_alnum(ch) || ch == '_') ? (char)ch : '_');
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
/* Attribute values as label text                                                             */

/* A growable builder's text, copied into the conversion's memory (NULL, and the context marked
 * out of memory, when the builder failed); the builder is freed. Rare values only: byte
 * strings, arrays, maps and labels joined from several attributes. */
static char *sb_to_ctx(pc_ctx_t *c, sb_t *b)
{
    char *r = NULL;
    if (b->err) {
        c->oom = 1;
    } else {
        r = pc_ctx_strdup(c, sb_str(b));
    }
    sb_fini(b);
    return r;
}

/* JSON string as Go's encoding/json writes it (HTML-safe escapes included). */
static void json_str_put(sb_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            sb_put(b, e, 2);
        } else if (ch == '\n') {
            sb_puts(b, "\\n");
        } else if (ch == '\r') {
            sb_puts(b, "\\r");
        } else if (ch == '\t') {
            sb_puts(b, "\\t");
        } else if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&') {
            char e[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            sb_put(b, e, 6);
        } else {
            sb_put(b, (const char *)&ch, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static int kv_key_cmp(const void *x, const void *y)
{
    const kv_t *a = *(kv_t *const *)x, *b = *(kv_t *const *)y;
    return strcmp(a->key ? a->key : "", b->key ? b->key : "");
}

static void json_any_put(pc_ctx_t *c, sb_t *b, const anyv_t *v, int depth)
{
    char num[400];
    fbuf_t f;
    if (!v || depth > JSON_MAX_DEPTH) {
        sb_puts(b, "null");
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        json_str_put(b, v->string_value ? v->string_value : "");
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
            sb_init_fixed(&f, num, sizeof(num));
            fb_float_es6(&f, v->double_value);
            sb_puts(b, num);
        }
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        sb_put(b, "\"", 1);
        sb_base64(b, v->bytes_value.data, v->bytes_value.len);
        sb_put(b, "\"", 1);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        const Opentelemetry__Proto__Common__V1__ArrayValue *arr = v->array_value;
        sb_put(b, "[", 1);
        for (size_t i = 0; arr && i < arr->n_values; i++) {
            if (i) {
                sb_put(b, ",", 1);
            }
            json_any_put(c, b, arr->values[i], depth + 1);
        }
        sb_put(b, "]", 1);
        break;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        /* Go marshals a map with its keys sorted */
        const Opentelemetry__Proto__Common__V1__KeyValueList *kl = v->kvlist_value;
        size_t n = kl ? kl->n_values : 0;
        kv_t **sorted = n ? pc_ctx_alloc(c, n * sizeof(*sorted)) : NULL;
        sb_put(b, "{", 1);
        if (sorted) {
            memcpy(sorted, kl->values, n * sizeof(*sorted));
            qsort(sorted, n, sizeof(*sorted), kv_key_cmp);
            for (size_t i = 0; i < n; i++) {
                if (i) {
                    sb_put(b, ",", 1);
                }
                json_str_put(b, sorted[i]->key ? sorted[i]->key : "");
                sb_put(b, ":", 1);
                json_any_put(c, b, sorted[i]->value, depth + 1);
            }
        }
        sb_put(b, "}", 1);
        break;
    }
    default:
        sb_puts(b, "null");
        break;
    }
}

/* pdata's Value.AsString: strings as is, ints in decimal, doubles ES6-style, bools
 * true/false, bytes base64, arrays and maps as JSON text, empty as "". Arena copy. */
char *pc_any_str(pc_ctx_t *c, const anyv_t *v)
{
    char num[400];
    fbuf_t f;
    if (!v) {
        return pc_ctx_strdup(c, "");
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return pc_ctx_strdup(c, v->string_value ? v->string_value : "");
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return pc_ctx_strdup(c, v->bool_value ? "true" : "false");
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        snprintf(num, sizeof(num), "%lld", (long long)v->int_value);
        return pc_ctx_strdup(c, num);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        sb_init_fixed(&f, num, sizeof(num));
        fb_float_es6(&f, v->double_value);
        return pc_ctx_strdup(c, num);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: {
        sb_t b;
        sb_init(&b, 0);
        sb_base64(&b, v->bytes_value.data, v->bytes_value.len);
        return sb_to_ctx(c, &b);
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        sb_t b;
        sb_init(&b, 0);
        json_any_put(c, &b, v, 0);
        return sb_to_ctx(c, &b);
    }
    default:
        return pc_ctx_strdup(c, "");
    }
}

char *pc_label_name_dup(pc_ctx_t *c, const char *key)
{
    size_t n = strlen(key) + 8;
    char *buf = pc_ctx_alloc(c, n);
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

int pc_key_in(const char *key, const char *const *list)
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
int pc_attrs_to_lset(pc_ctx_t *c, kv_t *const *attrs, size_t n, const char *const *skip,
                     lset_t *dst)
{
    if (n == 0) {
        return 0;
    }
    if (pc_grow(c, (void **)&c->ents, &c->ents_cap, n, sizeof(*c->ents), 0) != 0) {
        return -1;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const kv_t *kv = attrs[i];
        if (!kv || !kv->key || !*kv->key || pc_key_in(kv->key, skip)) {
            continue;
        }
        char *name = pc_label_name_dup(c, kv->key);
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
            val = pc_any_str(c, c->ents[i].value);
        } else {
            sb_t b;
            sb_init(&b, 0);
            for (size_t k = i; k < j; k++) {
                char *v = pc_any_str(c, c->ents[k].value);
                if (!v) {
                    return -1;
                }
                if (k > i) {
                    sb_put(&b, ";", 1);
                }
                sb_puts(&b, v);
            }
            val = sb_to_ctx(c, &b);
        }
        if (pc_lset_push(c, dst, pc_mk_label(c, c->ents[i].name, val)) != 0) {
            return -1;
        }
        i = j;
    }
    return c->oom ? -1 : 0;
}
