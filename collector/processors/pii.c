/*
 * pii.c - personal-data detectors (see pii.h). Each built-in detector is a "next match at or
 * after pos" byte scanner; pii_scan merges them by offset. A prefilter counts digits and looks
 * for '@' once, so the common case (short values with few digits and no '@') costs one pass and
 * no detector runs at all. Only configured MRN patterns go through regexec (REG_STARTEND, so no
 * copy is needed for non-NUL-terminated input).
 */
#include "pii.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const kind_names[PII_KIND_COUNT] = {"ssn", "card", "email", "phone", "mrn"};

/* Where two detectors start at the same byte, the more specific one wins. */
static const pii_kind_t priority[PII_KIND_COUNT] = {PII_CARD, PII_SSN, PII_EMAIL, PII_PHONE,
                                                    PII_MRN};

static const char *const builtin_domains[] = {"example.com", "example.net", "example.org", "test",
                                              "example",     "invalid",     "localhost"};

#define PII_MAX_DOMAIN 253
#define PII_MAX_LOCAL  64

struct pii {
    unsigned det;
    char **domains;
    size_t ndomains;
    regex_t *mrn;
    size_t nmrn;
};

const char *pii_kind_name(pii_kind_t k)
{
    return (unsigned)k < PII_KIND_COUNT ? kind_names[k] : "unknown";
}

int pii_kind_parse(const char *name)
{
    for (int k = 0; k < PII_KIND_COUNT; k++) {
        if (!strcmp(name, kind_names[k])) {
            return k;
        }
    }
    return -1;
}

void pii_destroy(pii_t *p)
{
    if (!p) {
        return;
    }
    for (size_t i = 0; i < p->ndomains; i++) {
        free(p->domains[i]);
    }
    free(p->domains);
    for (size_t i = 0; i < p->nmrn; i++) {
        regfree(&p->mrn[i]);
    }
    free(p->mrn);
    free(p);
}

pii_t *pii_create(const pii_config_t *cfg, mt_errbuf_t *eb)
{
    pii_t *p = calloc(1, sizeof(*p));
    size_t nd = MT_ARRAY_LEN(builtin_domains) + cfg->n_allow_domains;
    if (!p || !(p->domains = calloc(nd, sizeof(char *))) ||
        (cfg->n_mrn_patterns && !(p->mrn = calloc(cfg->n_mrn_patterns, sizeof(regex_t))))) {
        mt_failf(eb, "out of memory");
        pii_destroy(p);
        return NULL;
    }
    for (size_t i = 0; i < nd; i++) {
        const char *d = i < MT_ARRAY_LEN(builtin_domains)
                            ? builtin_domains[i]
                            : cfg->allow_domains[i - MT_ARRAY_LEN(builtin_domains)];
        while (*d == '.' || *d == '@') {
            d++; /* accept ".example.com" and "@example.com" spellings */
        }
        if (!(p->domains[p->ndomains++] = strdup(d))) {
            mt_failf(eb, "out of memory");
            pii_destroy(p);
            return NULL;
        }
    }
    for (size_t i = 0; i < cfg->n_mrn_patterns; i++) {
        int rc = regcomp(&p->mrn[i], cfg->mrn_patterns[i], REG_EXTENDED);
        if (rc != 0) {
            char why[128];
            regerror(rc, &p->mrn[i], why, sizeof(why));
            mt_failf(eb, "mrn pattern %zu: %s", i, why);
            pii_destroy(p);
            return NULL;
        }
        p->nmrn++;
    }
    p->det = cfg->detectors ? cfg->detectors : PII_ALL_BUILTIN | (p->nmrn ? PII_BIT(PII_MRN) : 0);
    if (!p->nmrn) {
        p->det &= ~PII_BIT(PII_MRN);
    }
    return p;
}

unsigned pii_detectors(const pii_t *p)
{
    return p->det;
}

/* ---- byte classes ------------------------------------------------------------------------ */

static inline int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}
static inline int is_alpha(unsigned char c)
{
    return (c | 32) >= 'a' && (c | 32) <= 'z';
}
static inline int is_alnum(unsigned char c)
{
    return is_digit(c) || is_alpha(c);
}

/* A number starts at i only at a token boundary: "id=123-45-6789" yes, "x123-45-6789" and
 * "9-123-45-6789" (inside a longer number) no. */
static int left_ok(const char *s, size_t i)
{
    if (i == 0) {
        return 1;
    }
    unsigned char c = (unsigned char)s[i - 1];
    if (is_alnum(c) || c == '_') {
        return 0;
    }
    if ((c == '-' || c == '.' || c == '+') && i >= 2 && is_digit((unsigned char)s[i - 2])) {
        return 0;
    }
    return 1;
}

/* ...and ends at j only where no letter/digit (or separator + digit) continues it. */
static int right_ok(const char *s, size_t n, size_t j)
{
    if (j >= n) {
        return 1;
    }
    unsigned char c = (unsigned char)s[j];
    if (is_alnum(c) || c == '_') {
        return 0;
    }
    if ((c == '-' || c == '.') && j + 1 < n && is_digit((unsigned char)s[j + 1])) {
        return 0;
    }
    return 1;
}

static int digits_at(const char *s, size_t n, size_t i, size_t k)
{
    if (i + k > n) {
        return 0;
    }
    for (size_t x = 0; x < k; x++) {
        if (!is_digit((unsigned char)s[i + x])) {
            return 0;
        }
    }
    return 1;
}

static int num3(const char *s)
{
    return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}

static size_t skip_digits(const char *s, size_t n, size_t i)
{
    while (i < n && is_digit((unsigned char)s[i])) {
        i++;
    }
    return i;
}

/* ---- detectors: each returns 1 and the span of the first match at or after pos -------- */

int pii_luhn_ok(const char *s, size_t n)
{
    int sum = 0, dbl = 0, nd = 0;
    for (size_t i = n; i-- > 0;) {
        unsigned char c = (unsigned char)s[i];
        if (!is_digit(c)) {
            continue;
        }
        int d = c - '0';
        if (dbl) {
            d *= 2;
            if (d > 9) {
                d -= 9;
            }
        }
        sum += d;
        dbl = !dbl;
        nd++;
    }
    return nd > 0 && sum % 10 == 0;
}

static int next_ssn(const char *s, size_t n, size_t pos, size_t *off, size_t *len)
{
    for (size_t i = pos; i + 11 <= n; i++) {
        if (!is_digit((unsigned char)s[i])) {
            continue;
        }
        if (!left_ok(s, i)) {
            i = skip_digits(s, n, i) - 1;
            continue;
        }
        char sep = s[i + 3];
        if (digits_at(s, n, i, 3) && (sep == '-' || sep == ' ') && digits_at(s, n, i + 4, 2) &&
            s[i + 6] == sep && digits_at(s, n, i + 7, 4) && right_ok(s, n, i + 11)) {
            int area = num3(s + i);
            int group = (s[i + 4] - '0') * 10 + (s[i + 5] - '0');
            int serial = num3(s + i + 7) * 10 + (s[i + 10] - '0');
            /* the SSA never issues area 000, 666 or 9xx, group 00 or serial 0000 */
            if (area != 0 && area != 666 && area < 900 && group != 0 && serial != 0) {
                *off = i;
                *len = 11;
                return 1;
            }
        }
        i = skip_digits(s, n, i) - 1;
    }
    return 0;
}

static int next_card(const char *s, size_t n, size_t pos, size_t *off, size_t *len)
{
    for (size_t i = pos; i + 13 <= n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_digit(c)) {
            continue;
        }
        if (c < '2' || c > '6' || !left_ok(s, i)) {
            i = skip_digits(s, n, i) - 1;
            continue;
        }
        size_t j = i, nd = 0;
        while (j < n && nd <= 19) {
            unsigned char d = (unsigned char)s[j];
            if (is_digit(d)) {
                nd++;
                j++;
            } else if ((d == ' ' || d == '-') && j + 1 < n && is_digit((unsigned char)s[j + 1])) {
                j++;
            } else {
                break;
            }
        }
        if (nd >= 13 && nd <= 19 && right_ok(s, n, j) && pii_luhn_ok(s + i, j - i)) {
            *off = i;
            *len = j - i;
            return 1;
        }
        i = skip_digits(s, n, i) - 1;
    }
    return 0;
}

/* NANP: area and exchange start with 2-9; 555-0100..0199 is reserved for fiction. */
static int nanp_ok(const char *area, const char *exch, const char *line)
{
    if (area[0] < '2' || exch[0] < '2') {
        return 0;
    }
    if (num3(exch) == 555 && line[0] == '0' && line[1] == '1') {
        return 0;
    }
    return 1;
}

/* Matches a NANP number at i: [1 sep] (AAA) EEE-LLLL | AAA sep EEE sep LLLL. Returns the end
 * or 0. */
static size_t nanp_at(const char *s, size_t n, size_t i)
{
    size_t j = i;
    const char *area;
    if (j + 2 < n && s[j] == '1' && (s[j + 1] == ' ' || s[j + 1] == '-' || s[j + 1] == '.')) {
        j += 2;
    }
    if (j < n && s[j] == '(') {
        if (!digits_at(s, n, j + 1, 3) || j + 4 >= n || s[j + 4] != ')') {
            return 0;
        }
        area = s + j + 1;
        j += 5;
        if (j < n && (s[j] == ' ' || s[j] == '-')) {
            j++;
        }
    } else {
        if (!digits_at(s, n, j, 3) || j + 3 >= n ||
            (s[j + 3] != ' ' && s[j + 3] != '-' && s[j + 3] != '.')) {
            return 0;
        }
        area = s + j;
        j += 4;
    }
    if (!digits_at(s, n, j, 3) || j + 3 >= n) {
        return 0;
    }
    const char *exch = s + j;
    char sep = s[j + 3];
    if (sep != ' ' && sep != '-' && sep != '.') {
        return 0;
    }
    j += 4;
    if (!digits_at(s, n, j, 4) || !nanp_ok(area, exch, s + j)) {
        return 0;
    }
    j += 4;
    return right_ok(s, n, j) ? j : 0;
}

/* +CC then 7-14 more digits with single separators (space, dash, dot, parentheses). */
static size_t intl_at(const char *s, size_t n, size_t i)
{
    size_t j = i + 1, nd = 0, end = 0;
    if (j >= n || !is_digit((unsigned char)s[j]) || s[j] == '0') {
        return 0;
    }
    if (s[j] == '1') {
        size_t e = nanp_at(s, n, j);
        return e ? e : 0;
    }
    while (j < n && nd <= 15) {
        unsigned char d = (unsigned char)s[j];
        if (is_digit(d)) {
            nd++;
            j++;
            end = j;
        } else if ((d == ' ' || d == '-' || d == '.' || d == '(' || d == ')') && j + 1 < n &&
                   (is_digit((unsigned char)s[j + 1]) || s[j + 1] == '(')) {
            j++;
        } else {
            break;
        }
    }
    if (nd < 8 || nd > 15 || !right_ok(s, n, end)) {
        return 0;
    }
    return end;
}

static int next_phone(const char *s, size_t n, size_t pos, size_t *off, size_t *len)
{
    for (size_t i = pos; i + 8 <= n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t e = 0;
        if (c == '+') {
            if (left_ok(s, i)) {
                e = intl_at(s, n, i);
            }
        } else if (c == '(' || is_digit(c)) {
            if (left_ok(s, i)) {
                e = nanp_at(s, n, i);
            }
        } else {
            continue;
        }
        if (e) {
            *off = i;
            *len = e - i;
            return 1;
        }
        if (is_digit(c)) {
            i = skip_digits(s, n, i) - 1;
        }
    }
    return 0;
}

static int is_local(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static int domain_allowed(const pii_t *p, const char *d, size_t dl)
{
    for (size_t k = 0; k < p->ndomains; k++) {
        size_t al = strlen(p->domains[k]);
        if (al > dl) {
            continue;
        }
        if (strncasecmp(d + dl - al, p->domains[k], al) == 0 &&
            (al == dl || d[dl - al - 1] == '.')) {
            return 1;
        }
    }
    return 0;
}

static int next_email(const pii_t *p, const char *s, size_t n, size_t pos, size_t *off, size_t *len)
{
    const char *at = pos < n ? memchr(s + pos, '@', n - pos) : NULL;
    for (; at;
         at = (size_t)(at - s) + 1 < n ? memchr(at + 1, '@', n - (size_t)(at - s) - 1) : NULL) {
        size_t a = (size_t)(at - s), l = a;
        while (l > pos && a - l < PII_MAX_LOCAL && is_local((unsigned char)s[l - 1])) {
            l--;
        }
        while (l < a && s[l] == '.') {
            l++;
        }
        if (l == a) {
            continue;
        }
        size_t j = a + 1, label = j, dots = 0, last_dot = 0;
        while (j < n && j - a - 1 < PII_MAX_DOMAIN) {
            unsigned char c = (unsigned char)s[j];
            if (is_alnum(c) || c == '-') {
                j++;
            } else if (c == '.' && j > label) {
                dots++;
                last_dot = j;
                label = ++j;
            } else {
                break;
            }
        }
        if (j == label && dots) { /* trailing dot: "mail a@b.com." */
            j--;
            dots--;
            size_t k = j;
            while (k > a + 1 && s[k - 1] != '.') {
                k--;
            }
            last_dot = k > a + 1 ? k - 1 : 0;
        }
        if (!dots || !last_dot || j - last_dot - 1 < 2) {
            continue;
        }
        int tld_alpha = 1;
        for (size_t k = last_dot + 1; k < j; k++) {
            tld_alpha &= is_alpha((unsigned char)s[k]);
        }
        if (!tld_alpha || domain_allowed(p, s + a + 1, j - a - 1)) {
            continue;
        }
        *off = l;
        *len = j - l;
        return 1;
    }
    return 0;
}

static int next_mrn(const pii_t *p, const char *s, size_t n, size_t pos, size_t *off, size_t *len)
{
    int found = 0;
    for (size_t k = 0; k < p->nmrn; k++) {
        size_t from = pos;
        while (from <= n) {
            regmatch_t m[1];
            m[0].rm_so = (regoff_t)from;
            m[0].rm_eo = (regoff_t)n;
            if (regexec(&p->mrn[k], s, 1, m, REG_STARTEND | (from ? REG_NOTBOL : 0)) != 0) {
                break;
            }
            if (m[0].rm_eo > m[0].rm_so) {
                if (!found || (size_t)m[0].rm_so < *off) {
                    *off = (size_t)m[0].rm_so;
                    *len = (size_t)(m[0].rm_eo - m[0].rm_so);
                    found = 1;
                }
                break;
            }
            from = (size_t)m[0].rm_so + 1; /* empty match: look further */
        }
    }
    return found;
}

/* ---- merge ------------------------------------------------------------------------------- */

typedef enum { PII_CAND_UNKNOWN = 0, PII_CAND_HAVE, PII_CAND_EXHAUSTED } pii_cand_state_t;

typedef struct cand {
    pii_cand_state_t state; /* the detector's next match: not looked for, found, none left */
    size_t off, len;
} cand_t;

size_t pii_scan(const pii_t *p, const char *s, size_t n, pii_finding_t *out, size_t max)
{
    if (!max || !n) {
        return 0;
    }
    /* prefilter: one pass; most values have too few digits and no '@' */
    size_t nd = 0;
    int has_at = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        nd += is_digit(c);
        has_at |= c == '@';
    }
    unsigned on = p->det;
    if (nd < 13) {
        on &= ~PII_BIT(PII_CARD);
    }
    if (nd < 9) {
        on &= ~PII_BIT(PII_SSN);
    }
    if (nd < 8) {
        on &= ~PII_BIT(PII_PHONE);
    }
    if (!has_at) {
        on &= ~PII_BIT(PII_EMAIL);
    }
    if (!on) {
        return 0;
    }
    cand_t c[PII_KIND_COUNT];
    memset(c, 0, sizeof(c));
    size_t pos = 0, cnt = 0;
    while (cnt < max && pos < n) {
        int best = -1;
        for (int q = 0; q < PII_KIND_COUNT; q++) {
            unsigned k = (unsigned)priority[q];
            if (k >= PII_KIND_COUNT || !(on & PII_BIT(k)) || c[k].state == PII_CAND_EXHAUSTED) {
                continue;
            }
            if (c[k].state == PII_CAND_UNKNOWN || c[k].off < pos) {
                int ok = 0;
                switch (k) {
                case PII_SSN:
                    ok = next_ssn(s, n, pos, &c[k].off, &c[k].len);
                    break;
                case PII_CARD:
                    ok = next_card(s, n, pos, &c[k].off, &c[k].len);
                    break;
                case PII_EMAIL:
                    ok = next_email(p, s, n, pos, &c[k].off, &c[k].len);
                    break;
                case PII_PHONE:
                    ok = next_phone(s, n, pos, &c[k].off, &c[k].len);
                    break;
                case PII_MRN:
                    ok = next_mrn(p, s, n, pos, &c[k].off, &c[k].len);
                    break;
                default:
                    break;
                }
                c[k].state = ok ? PII_CAND_HAVE : PII_CAND_EXHAUSTED;
                if (!ok) {
                    continue;
                }
            }
            if (best < 0 || c[k].off < c[best].off) {
                best = (int)k;
            }
        }
        if (best < 0 || best >= PII_KIND_COUNT) {
            break;
        }
        out[cnt].kind = (pii_kind_t)best;
        out[cnt].off = c[best].off;
        out[cnt].len = c[best].len;
        cnt++;
        pos = c[best].off + c[best].len;
    }
    return cnt;
}

void pii_mask(char *dst, const char *s, size_t n, const pii_finding_t *f, size_t nf)
{
    if (dst != s) {
        memcpy(dst, s, n);
    }
    for (size_t i = 0; i < nf; i++) {
        for (size_t k = f[i].off; k < f[i].off + f[i].len && k < n; k++) {
            if (is_alnum((unsigned char)dst[k]) || dst[k] == '_' || dst[k] == '%') {
                dst[k] = '*';
            }
        }
    }
}
