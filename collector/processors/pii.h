/*
 * pii.h - detectors for real-looking personal data in strings: US social security numbers,
 * payment card numbers (Luhn-checked), e-mail addresses outside allow-listed synthetic domains,
 * phone numbers and configurable medical-record-number (MRN) patterns. Shared by the
 * synthetic_guard processor and validation mode.
 *
 * The built-in detectors are hand-written byte scanners (no regex engine on the hot path); only
 * MRN patterns use POSIX extended regular expressions. Findings carry a kind and a byte span,
 * never a copy of the value: callers must not log what they found, only its kind.
 */
#ifndef PII_H
#define PII_H

#include <stddef.h>
#include <stdint.h>

#include "mt.h"

/* Detector kinds. Their names (pii_kind_name) are the config spellings and metric labels. */
typedef enum {
    PII_SSN = 0, /* "ssn":   123-45-6789 / 123 45 6789, SSA-invalid areas/groups/serials skipped */
    PII_CARD,    /* "card":  13-19 digits, optional single space/dash separators, Luhn valid,
                  *          first digit 2-6 (the card networks) */
    PII_EMAIL,   /* "email": local@domain.tld, unless the domain is allow-listed */
    PII_PHONE,   /* "phone": NANP numbers with separators or parentheses ((555) 123-4567,
                  *          +1 555 123 4567, 555.123.4567) and +CC international numbers with
                  *          8-15 digits; the fictional 555-0100..555-0199 range is not reported */
    PII_MRN,     /* "mrn":   any configured MRN pattern (POSIX ERE) */
    PII_KIND_COUNT
} pii_kind_t;

#define PII_BIT(k) (1u << (k))
#define PII_ALL_BUILTIN \
    (PII_BIT(PII_SSN) | PII_BIT(PII_CARD) | PII_BIT(PII_EMAIL) | PII_BIT(PII_PHONE))

/* Returns the static name of a kind ("ssn", "card", "email", "phone", "mrn"), "unknown" when
 * out of range. */
const char *pii_kind_name(pii_kind_t k);
/* Returns the kind named `name` (case-sensitive), or -1. */
int pii_kind_parse(const char *name);

/* What pii_create builds a detector set from. Everything is borrowed for the call only. */
typedef struct pii_config {
    unsigned detectors;               /* PII_BIT(...) set; 0 means PII_ALL_BUILTIN, plus
                                         * PII_MRN when mrn_patterns are given */
    const char *const *allow_domains; /* e-mail domains considered synthetic, matched
                                         * case-insensitively as the domain itself or a parent
                                         * ("example.com" allows "a.example.com"). Always added:
                                         * the RFC 2606 names example.com, example.net,
                                         * example.org, and the TLDs test, example, invalid,
                                         * localhost. */
    size_t n_allow_domains;
    const char *const *mrn_patterns; /* POSIX EREs, e.g. "MRN[-: ]?[0-9]{6,10}" */
    size_t n_mrn_patterns;
} pii_config_t;

typedef struct pii pii_t;

/* One finding: a byte span of the scanned string. */
typedef struct pii_finding {
    pii_kind_t kind;
    size_t off; /* byte offset of the match */
    size_t len; /* bytes */
} pii_finding_t;

/* Builds an immutable detector set. Returns it (free with pii_destroy), or NULL with eb naming
 * the bad MRN pattern or "out of memory". The result is safe to share between threads. */
pii_t *pii_create(const pii_config_t *cfg, mt_errbuf_t *eb);
/* Frees a detector set. Accepts NULL. */
void pii_destroy(pii_t *p);
/* The PII_BIT set this detector set runs. */
unsigned pii_detectors(const pii_t *p);

/* Scans s[0..n) (need not be NUL-terminated; it may contain NUL bytes) and writes up to `max`
 * non-overlapping findings, in order of offset, to `out`. Where detectors overlap, the earlier
 * start wins, then the order card, ssn, email, phone, mrn. Returns the number of findings
 * written (0 = clean). Pass max = 1 for a quick yes/no. Thread-safe, allocation-free except
 * inside regexec for MRN patterns. */
size_t pii_scan(const pii_t *p, const char *s, size_t n, pii_finding_t *out, size_t max);

/* Writes a masked copy of s[0..n) to dst (n bytes, not NUL-terminated): inside each finding,
 * letters and digits become '*', separators (- . @ space ( ) +) stay, so the shape remains
 * readable ("123-45-6789" -> "***-**-****"). dst may equal s. */
void pii_mask(char *dst, const char *s, size_t n, const pii_finding_t *f, size_t nf);

/* Luhn check over the ASCII digits of s[0..n) (other bytes ignored). Returns 1 when valid and
 * there is at least one digit. Exposed for tests. */
int pii_luhn_ok(const char *s, size_t n);

#endif
