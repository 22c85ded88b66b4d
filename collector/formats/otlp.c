/*
 * otlp.c - see otlp.h. The wire explainer re-walks a message only after protobuf-c has
 * already rejected it, so its cost never lands on the accepted-data path.
 */
#include "otlp.h"
#include "otlp_json.h"
#include "pbwire.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest trace_req_t;
typedef Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest metrics_req_t;
typedef Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest logs_req_t;

const ProtobufCMessageDescriptor *otlp_request_desc(mt_signal_t s)
{
    switch (s) {
    case MT_SIG_TRACES:
        return &opentelemetry__proto__collector__v1__export_trace_service_request__descriptor;
    case MT_SIG_METRICS:
        return &opentelemetry__proto__collector__v1__export_metrics_service_request__descriptor;
    case MT_SIG_LOGS:
        return &opentelemetry__proto__collector__v1__export_logs_service_request__descriptor;
    case MT_SIG_PROFILES:
        return &opentelemetry__proto__collector__v1__export_profiles_service_request__descriptor;
    default:
        return NULL;
    }
}

const char *otlp_path(mt_signal_t s)
{
    static const char *p[] = {"/v1/traces", "/v1/metrics", "/v1/logs", "/v1development/profiles"};
    return (unsigned)s < MT_SIG_COUNT ? p[s] : "/";
}

#define OTLP_MAX_DEPTH 64

static int explain(const ProtobufCMessageDescriptor *desc, const uint8_t *p, const uint8_t *end,
                   char *path, size_t plen, int depth, mt_errbuf_t *eb)
{
    if (depth > OTLP_MAX_DEPTH) {
        mt_failf(eb, "nesting deeper than %d levels at %.200s...", OTLP_MAX_DEPTH, path);
        return MT_EINVAL;
    }
    unsigned counts[64] = {0};
    while (p < end) {
        uint32_t fnum, wt;
        const uint8_t *q = wtag(p, end, &fnum, &wt);
        if (!q) {
            mt_failf(eb, "%s: %s", path[0] ? path : "(root)",
                     (*p & 0xf8) == 0 ? "invalid field number 0"
                                      : "field tag truncated or longer than 5 bytes");
            return MT_EINVAL;
        }
        p = q;
        const ProtobufCFieldDescriptor *fd =
            fnum ? protobuf_c_message_descriptor_get_field(desc, fnum) : NULL;
        const char *fname = fd ? fd->name : "?";
        size_t n = 0;
        switch (wt) {
        case 0: {
            uint64_t v;
            if (!(q = wvarint(p, end, &v))) {
                mt_failf(eb, "%s%s%s: truncated varint (field %u)", path, path[0] ? "." : "", fname,
                         fnum);
                return MT_EINVAL;
            }
            n = (size_t)(q - p);
            break;
        }
        case 1:
            n = 8;
            break;
        case 5:
            n = 4;
            break;
        case 2: {
            uint64_t l;
            if (!(q = wvarint(p, end, &l)) || q - p > 5) {
                mt_failf(eb, "%s%s%s: length truncated or longer than 5 bytes (field %u)", path,
                         path[0] ? "." : "", fname, fnum);
                return MT_EINVAL;
            }
            if (l > 0x7fffffffu || l > (uint64_t)(end - q)) {
                mt_failf(eb, "%s%s%s: length %llu runs past the end of the message (field %u)",
                         path, path[0] ? "." : "", fname, (unsigned long long)l, fnum);
                return MT_EINVAL;
            }
            p = q;
            n = (size_t)l;
            break;
        }
        default:
            mt_failf(eb, "%s%s%s: invalid wire type %u (field %u)", path, path[0] ? "." : "", fname,
                     wt, fnum);
            return MT_EINVAL;
        }
        if ((size_t)(end - p) < n) {
            mt_failf(eb, "%s%s%s: truncated value (field %u)", path, path[0] ? "." : "", fname,
                     fnum);
            return MT_EINVAL;
        }
        if (fd) {
            int want;
            switch (fd->type) {
            case PROTOBUF_C_TYPE_FIXED64:
            case PROTOBUF_C_TYPE_SFIXED64:
            case PROTOBUF_C_TYPE_DOUBLE:
                want = 1;
                break;
            case PROTOBUF_C_TYPE_FIXED32:
            case PROTOBUF_C_TYPE_SFIXED32:
            case PROTOBUF_C_TYPE_FLOAT:
                want = 5;
                break;
            case PROTOBUF_C_TYPE_STRING:
            case PROTOBUF_C_TYPE_BYTES:
            case PROTOBUF_C_TYPE_MESSAGE:
                want = 2;
                break;
            default:
                want = 0;
            }
            int packed_ok = fd->label == PROTOBUF_C_LABEL_REPEATED && wt == 2 && want != 2;
            if ((int)wt != want && !packed_ok) {
                mt_failf(eb, "%s%s%s: wrong wire type %u for field %u (expected %d)", path,
                         path[0] ? "." : "", fname, wt, fnum, want);
                return MT_EINVAL;
            }
            if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                size_t old = strlen(path);
                unsigned idx = fnum < 64 ? counts[fnum]++ : 0;
                if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
                    snprintf(path + old, plen - old, "%s%s[%u]", old ? "." : "", fname, idx);
                } else {
                    snprintf(path + old, plen - old, "%s%s", old ? "." : "", fname);
                }
                int rc = explain(fd->descriptor, p, p + n, path, plen, depth + 1, eb);
                path[old] = 0;
                if (rc) {
                    return rc;
                }
            }
        }
        p += n;
    }
    return MT_OK;
}

int otlp_wire_explain(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                      mt_errbuf_t *eb)
{
    char path[1024] = "";
    return explain(desc, data, data + len, path, sizeof(path), 0, eb);
}

/* find_nul: the walk behind otlp_wire_find_nul; path grows as "name[i].name". */
static int find_nul(const ProtobufCMessageDescriptor *desc, const uint8_t *p, const uint8_t *end,
                    char *path, size_t cap, size_t plen, int depth)
{
    unsigned seen[16] = {0}; /* occurrences per field number, for the index in the path */
    wf_t f;
    int r;
    if (depth > OTLP_MAX_DEPTH) {
        return 0;
    }
    while ((r = wnext(&p, end, &f)) > 0) {
        unsigned idx = f.num < 16 ? seen[f.num]++ : 0;
        if (f.wt != 2) {
            continue;
        }
        const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(desc, f.num);
        if (!fd || (fd->type != PROTOBUF_C_TYPE_STRING && fd->type != PROTOBUF_C_TYPE_MESSAGE)) {
            continue;
        }
        int n = fd->label == PROTOBUF_C_LABEL_REPEATED
                    ? snprintf(path + plen, cap - plen, "%s%s[%u]", plen ? "." : "", fd->name, idx)
                    : snprintf(path + plen, cap - plen, "%s%s", plen ? "." : "", fd->name);
        size_t nl = n < 0 || (size_t)n >= cap - plen ? cap - 1 : plen + (size_t)n;
        if (fd->type == PROTOBUF_C_TYPE_STRING
                ? memchr(f.p, 0, f.n) != NULL
                : find_nul(fd->descriptor, f.p, f.p + f.n, path, cap, nl, depth + 1)) {
            return 1;
        }
        path[plen] = 0;
    }
    return 0;
}

int otlp_wire_find_nul(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                       mt_errbuf_t *eb)
{
    char path[256] = "";
    if (!find_nul(desc, data, data + len, path, sizeof(path), 0, 0)) {
        return 0;
    }
    mt_failf(eb, "%s holds a NUL byte (refused: it would be cut short)", path);
    return 1;
}

/* Checks nesting depth before protobuf-c (which recurses without a limit) sees the data:
 * AnyValue -> ArrayValue -> AnyValue ... can nest as deep as the body is long, and a deep
 * enough message would overflow the thread's stack. Only message-typed LEN fields are
 * followed; anything malformed is left for protobuf-c and the explainer to report. */
static int depth_ok(const ProtobufCMessageDescriptor *desc, const uint8_t *p, const uint8_t *end,
                    int depth)
{
    if (depth > OTLP_MAX_DEPTH) {
        return 0;
    }
    while (p < end) {
        uint64_t tag, v;
        const uint8_t *q = wvarint(p, end, &tag);
        if (!q) {
            return 1;
        }
        p = q;
        switch (tag & 7) {
        case 0:
            if (!(p = wvarint(p, end, &v))) {
                return 1;
            }
            break;
        case 1:
            p += 8;
            break;
        case 5:
            p += 4;
            break;
        case 2: {
            if (!(q = wvarint(p, end, &v)) || v > (uint64_t)(end - q)) {
                return 1;
            }
            const ProtobufCFieldDescriptor *fd =
                protobuf_c_message_descriptor_get_field(desc, (unsigned)(tag >> 3));
            if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE &&
                !depth_ok(fd->descriptor, q, q + v, depth + 1)) {
                return 0;
            }
            p = q + v;
            break;
        }
        default:
            return 1;
        }
    }
    return 1;
}

/* ---- fast validating scan -------------------------------------------------------------- */

/* Returns 1 when [p, p+n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). ASCII is
 * checked eight bytes at a time: most telemetry strings are ASCII. */
static int utf8_ok(const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    while (p < end) {
        if ((size_t)(end - p) >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (!(w & 0x8080808080808080ull)) {
                p += 8;
                continue;
            }
        }
        uint8_t c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2, cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3, cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4, cp = c & 0x07;
        } else {
            return 0;
        }
        if ((size_t)(end - p) < len) {
            return 0;
        }
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
            return 0;
        }
        p += len;
    }
    return 1;
}

int otlp_utf8_ok(const uint8_t *p, size_t n)
{
    return utf8_ok(p, n);
}

/* Per-field facts the scanner needs, looked up once per message level. */
static int field_id_len(const ProtobufCFieldDescriptor *fd)
{
    if (fd->type != PROTOBUF_C_TYPE_BYTES) {
        return -1;
    }
    if (strcmp(fd->name, "trace_id") == 0) {
        return 16;
    }
    if (strcmp(fd->name, "span_id") == 0 || strcmp(fd->name, "parent_span_id") == 0) {
        return 8;
    }
    return -1;
}

static int wire_type_of(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 1;
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return 5;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return 2;
    default:
        return 0;
    }
}

typedef struct scan_ctx {
    const ProtobufCMessageDescriptor *item[4]; /* descriptors whose occurrences are items */
    uint64_t items;
    otlp_events_t *ev;  /* logs: where events go, else NULL */
    const uint8_t *svc; /* service.name of the ResourceLogs being scanned */
    size_t svcn;
    uint64_t res_events;
    int undecided; /* valid on the wire, but only the decoder can judge it */
} scan_ctx_t;

/* KeyValue bytes "service.name" = AnyValue{string_value}: the value, the way every SDK
 * encodes it (key first); anything else is not recognised (and not needed to be). */
static int service_name_kv(const uint8_t *p, size_t n, const uint8_t **v, size_t *vn)
{
    const uint8_t *end = p + n;
    uint64_t l;
    if (n < 16 || p[0] != 0x0a || p[1] != 12 || memcmp(p + 2, "service.name", 12) != 0 ||
        p[14] != 0x12) {
        return 0;
    }
    const uint8_t *q = wvarint(p + 15, end, &l);
    if (!q || l > (uint64_t)(end - q) || l < 2 || q[0] != 0x0a) {
        return 0;
    }
    const uint8_t *r = wvarint(q + 1, q + l, &l);
    if (!r || l > (uint64_t)(end - r)) {
        return 0;
    }
    *v = r;
    *vn = (size_t)l;
    return 1;
}

/* Per-descriptor facts for the scanner, computed once: the field descriptor, expected wire
 * type, id length and child info for every field number below SI_FIELDS, so the hot loop does
 * no descriptor searches and no string compares. Built for every message reachable from the
 * request descriptors (recursive types included) on first use. */
#define SI_FIELDS 32
#define SI_MAX    128 /* the OTLP protos have 60 message types */
enum { SI_SCALAR, SI_MESSAGE, SI_STRING, SI_BYTES };

typedef struct sinfo sinfo_t;
typedef struct finfo {
    const ProtobufCFieldDescriptor *fd; /* NULL: unknown field */
    int8_t want;                        /* wire type */
    int8_t idlen;                       /* trace/span id length, -1 otherwise */
    uint8_t kind;                       /* SI_* */
    uint8_t repeated : 1;
    uint8_t anywt : 1;       /* bool: protobuf-c takes any wire type */
    uint8_t merge_check : 1; /* singular message whose type has a oneof */
    uint8_t track : 1;       /* scan_note must see it: merge_check or oneof message */
    uint16_t oneof;          /* the oneof's case offset, 0 when not in one */
    const sinfo_t *child;    /* SI_MESSAGE; the struct stays 24 bytes */
} finfo_t;

struct sinfo {
    const ProtobufCMessageDescriptor *desc;
    finfo_t f[SI_FIELDS];
    int has_high;  /* fields numbered >= SI_FIELDS exist */
    int has_oneof; /* protobuf-c cannot merge two of these with none set */
};

static sinfo_t sinfos[SI_MAX];
static int nsinfos;
static pthread_once_t sinfo_once = PTHREAD_ONCE_INIT;

static sinfo_t *sinfo_lookup(const ProtobufCMessageDescriptor *d)
{
    for (int i = 0; i < nsinfos; i++) {
        if (sinfos[i].desc == d) {
            return &sinfos[i];
        }
    }
    return NULL;
}

static void finfo_fill(finfo_t *f, const ProtobufCMessageDescriptor *d,
                       const ProtobufCFieldDescriptor *fd, const sinfo_t *child)
{
    f->fd = fd;
    f->want = (int8_t)wire_type_of(fd->type);
    /* ids are checked where otlp_check checks them (spans, span links, log records) */
    f->idlen = (d == &opentelemetry__proto__trace__v1__span__descriptor ||
                d == &opentelemetry__proto__trace__v1__span__link__descriptor ||
                d == &opentelemetry__proto__logs__v1__log_record__descriptor)
                   ? (int8_t)field_id_len(fd)
                   : -1;
    f->repeated = fd->label == PROTOBUF_C_LABEL_REPEATED;
    f->kind = fd->type == PROTOBUF_C_TYPE_MESSAGE  ? SI_MESSAGE
              : fd->type == PROTOBUF_C_TYPE_STRING ? SI_STRING
              : fd->type == PROTOBUF_C_TYPE_BYTES  ? SI_BYTES
                                                   : SI_SCALAR;
    f->anywt = fd->type == PROTOBUF_C_TYPE_BOOL;
    /* OTLP messages are far smaller than 64 KiB, so case offsets fit (finfo stays 24 bytes) */
    f->oneof = (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ? (uint16_t)fd->quantifier_offset : 0;
    f->child = child;
    f->merge_check = !f->repeated && !f->oneof && child && child->has_oneof;
    f->track = f->merge_check || (f->oneof && f->kind == SI_MESSAGE);
}

static sinfo_t *sinfo_build(const ProtobufCMessageDescriptor *d)
{
    sinfo_t *si = sinfo_lookup(d);
    if (si || nsinfos == SI_MAX) {
        return si;
    }
    si = &sinfos[nsinfos++];
    si->desc = d; /* registered before the children: recursive types terminate */
    for (unsigned i = 0; i < d->n_fields; i++) {
        si->has_oneof |= (d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        sinfo_t *child = fd->type == PROTOBUF_C_TYPE_MESSAGE ? sinfo_build(fd->descriptor) : NULL;
        if (fd->id >= SI_FIELDS) {
            si->has_high = 1;
            continue;
        }
        finfo_fill(&si->f[fd->id], d, fd, child);
    }
    return si;
}

static void sinfo_init(void)
{
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        sinfo_build(otlp_request_desc((mt_signal_t)s));
    }
}

/* Field facts for a field number, also above SI_FIELDS (rare: built on the fly, not cached). */
static const finfo_t *field_info(const sinfo_t *si, unsigned fnum, finfo_t *tmp)
{
    if (fnum < SI_FIELDS) {
        return si->f[fnum].fd ? &si->f[fnum] : NULL;
    }
    if (!si->has_high) {
        return NULL;
    }
    const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(si->desc, fnum);
    if (!fd) {
        return NULL;
    }
    finfo_fill(tmp, si->desc, fd,
               fd->type == PROTOBUF_C_TYPE_MESSAGE ? sinfo_lookup(fd->descriptor) : NULL);
    return tmp;
}

/* What one message level remembers about duplicates; touched only off the common path (a
 * field with f->track set, or once something is pending), so the scan loop stays as fast as
 * it was before it knew about them. */
typedef struct scan_lvl {
    int npend, noneofs; /* either nonzero: every field goes through scan_note */
    uint32_t pend[4];   /* singular fields (or oneofs) whose last value is invalid */
    uint32_t oneofs[4]; /* oneofs holding a message member seen so far */
    uint64_t singles;   /* singular messages with oneofs (< 64) seen, for the merge rule */
} scan_lvl_t;

static uint32_t scan_key(const finfo_t *fi, uint32_t fnum)
{
    return fi->oneof ? (0x80000000u | fi->oneof) : fnum;
}

/* A field occurrence that may supersede a pending failure, replace a oneof's message (which
 * takes its items along: only the decoder counts that right) or be merged by protobuf-c (which
 * refuses the merge when neither copy sets its oneof). Returns npend + noneofs. */
static __attribute__((noinline)) int scan_note(scan_ctx_t *sc, scan_lvl_t *lv, const finfo_t *fi,
                                               uint32_t fnum)
{
    if (fi->oneof) {
        int seen = 0;
        for (int i = 0; i < lv->noneofs && !seen; i++) {
            seen = lv->oneofs[i] == fi->oneof;
        }
        if (seen) {
            sc->undecided = 1;
        } else if (fi->kind == SI_MESSAGE) {
            if (lv->noneofs == (int)MT_ARRAY_LEN(lv->oneofs)) {
                sc->undecided = 1;
            } else {
                lv->oneofs[lv->noneofs++] = fi->oneof;
            }
        }
    }
    if (fi->merge_check) {
        if (fnum >= 64 || (lv->singles >> fnum) & 1) {
            sc->undecided = 1;
        } else {
            lv->singles |= 1ull << fnum;
        }
    }
    if (lv->npend && !fi->repeated) {
        uint32_t key = scan_key(fi, fnum);
        for (int i = 0; i < lv->npend; i++) {
            if (lv->pend[i] == key) {
                lv->pend[i] = lv->pend[--lv->npend]; /* superseded by this value */
                if (fi->kind == SI_MESSAGE) {
                    sc->undecided = 1; /* merged: which parts survive is the decoder's */
                }
                break;
            }
        }
    }
    return lv->npend + lv->noneofs;
}

/* A value that is valid on the wire but not for the decode path (UTF-8, id length, or a
 * message holding one): final under a repeated field, pending under a singular one. Returns
 * the new `soft` flag of the level. */
static __attribute__((noinline)) int scan_soft(scan_ctx_t *sc, scan_lvl_t *lv, const finfo_t *fi,
                                               uint32_t fnum, int soft)
{
    if (fi->repeated) {
        return 1;
    }
    if (lv->npend < (int)MT_ARRAY_LEN(lv->pend)) {
        lv->pend[lv->npend++] = scan_key(fi, fnum);
    } else {
        sc->undecided = 1;
    }
    return soft;
}

/* Validates one message against exactly the rules protobuf-c's unpack applies (tags of at most
 * five bytes, varints of at most ten, length prefixes of at most five and INT_MAX, wire types of
 * known fields, packed elements, bools under any wire type; unknown fields skipped) plus what
 * the receiver's decode path checks after it (UTF-8 strings, span/log id lengths, nesting).
 * Returns 1 valid, 0 refused on the wire (protobuf-c refuses it wherever it is), 2 decodable
 * but invalid (UTF-8, ids) if the decoder keeps it. protobuf-c keeps the last value of a
 * singular field, so such a failure stays pending until the message ends or a later value of
 * the same field replaces it; a failure under a repeated field is final. Where the answer
 * depends on more than that (a oneof set twice, a singular message sent twice and merged), the
 * scan does not guess: it sets sc->undecided and the caller decodes.
 * tests/unit/formats/test_scan_differential.c holds the two to the same verdicts. */
static int scan(scan_ctx_t *sc, const sinfo_t *si, const uint8_t *p, const uint8_t *end, int depth)
{
    if (depth > OTLP_MAX_DEPTH || !si) {
        return 0;
    }
    const ProtobufCMessageDescriptor *desc = si->desc;
    for (int i = 0; i < 4; i++) {
        if (sc->item[i] == desc) {
            sc->items++;
        }
    }
    /* events ride along for free: event_name (12), or an attribute (6) keyed event.name */
    int is_lr = sc->ev && desc == &opentelemetry__proto__logs__v1__log_record__descriptor;
    int is_rl = sc->ev && desc == &opentelemetry__proto__logs__v1__resource_logs__descriptor;
    int is_res = sc->ev && desc == &opentelemetry__proto__resource__v1__resource__descriptor;
    int is_event = 0;
    scan_lvl_t lv;
    int busy = 0; /* lv.npend + lv.noneofs, kept in a register */
    lv.npend = lv.noneofs = 0;
    lv.singles = 0;
    int soft = 0;
    if (is_rl) {
        sc->svc = NULL;
        sc->svcn = 0;
        sc->res_events = 0;
    }
    while (p < end) {
        uint64_t v;
        uint32_t fnum, wt;
        const uint8_t *q;
        /* one-byte tags are nearly all of them */
        if (*p < 0x80 && *p >= 0x08) {
            fnum = *p >> 3;
            wt = *p & 7u;
            q = p + 1;
        } else if (!(q = wtag(p, end, &fnum, &wt))) {
            return 0;
        }
        p = q;
        finfo_t tmp;
        const finfo_t *fi = field_info(si, fnum, &tmp);
        size_t n;
        switch (wt) {
        case 0:
            if (!(q = wvarint(p, end, &v))) {
                return 0;
            }
            n = (size_t)(q - p);
            break;
        case 1:
            n = 8;
            break;
        case 5:
            n = 4;
            break;
        case 2:
            if (!(p = wlen(p, end, &n))) {
                return 0;
            }
            break;
        default:
            return 0;
        }
        if ((size_t)(end - p) < n) {
            return 0;
        }
        if (is_res && wt == 2 && fnum == 1) {
            service_name_kv(p, n, &sc->svc, &sc->svcn);
        }
        if (is_lr && wt == 2 && n > 0) {
            if (fnum == 12 || (fnum == 6 && n > 12 && p[0] == 0x0a && p[1] == 10 &&
                               memcmp(p + 2, "event.name", 10) == 0)) {
                is_event = 1;
            }
        }
        if (fi) {
            int want = fi->want;
            if (__builtin_expect(fi->track | busy, 0)) {
                busy = scan_note(sc, &lv, fi, fnum);
            }
#define SCAN_SOFT() (soft = scan_soft(sc, &lv, fi, fnum, soft), busy = lv.npend + lv.noneofs)
            if ((int)wt != want) {
                if (fi->repeated && wt == 2 && want != 2) {
                    /* packed repeated scalars: a LEN record holding whole elements */
                    if (want == 1 && n % 8) {
                        return 0;
                    }
                    if (want == 5 && n % 4) {
                        return 0;
                    }
                    if (want == 0) {
                        const uint8_t *r = p, *re = p + n;
                        while (r < re) {
                            if (!(r = wvarint(r, re, &v))) {
                                return 0;
                            }
                        }
                    }
                } else if (!fi->anywt) {
                    return 0;
                }
            } else if (wt == 2) {
                if (fi->kind == SI_MESSAGE) {
                    int rc = scan(sc, fi->child, p, p + n, depth + 1);
                    if (rc == 0) {
                        return 0;
                    }
                    if (rc == 2) {
                        SCAN_SOFT();
                    }
                } else if (fi->kind == SI_STRING) {
                    if (!utf8_ok(p, n)) {
                        /* the decoder's C string ends at a NUL and only that prefix is
                         * checked: when the prefix is fine, only the decoder can say */
                        const uint8_t *nul = memchr(p, 0, n);
                        if (nul && utf8_ok(p, (size_t)(nul - p))) {
                            sc->undecided = 1;
                        } else {
                            SCAN_SOFT();
                        }
                    }
                } else if (fi->idlen > 0 && n != 0 && n != (size_t)fi->idlen) {
                    SCAN_SOFT();
                }
#undef SCAN_SOFT
            }
        }
        p += n;
    }
    if (is_event) {
        sc->ev->total++;
        sc->res_events++;
    }
    if (is_rl && sc->res_events) {
        if (sc->ev->n < OTLP_EVENT_RESOURCES) {
            sc->ev->r[sc->ev->n].svc = sc->svc;
            sc->ev->r[sc->ev->n].svcn = sc->svcn;
            sc->ev->r[sc->ev->n++].count = sc->res_events;
        } else {
            sc->ev->overflow = 1;
        }
    }
    return soft || lv.npend ? 2 : 1;
}

static int walk_values(const ProtobufCMessageDescriptor *desc, const uint8_t *p, const uint8_t *end,
                       int depth, int (*cb)(void *arg, const char *p, size_t n), void *arg)
{
    if (depth > OTLP_MAX_DEPTH) {
        return 1; /* cannot vouch for it: let the caller decode */
    }
    int is_kv = desc == &opentelemetry__proto__common__v1__key_value__descriptor;
    int is_any = desc == &opentelemetry__proto__common__v1__any_value__descriptor;
    while (p < end) {
        uint64_t tag, v;
        const uint8_t *q = wvarint(p, end, &tag);
        if (!q) {
            return 1;
        }
        p = q;
        unsigned fnum = (unsigned)(tag >> 3);
        switch (tag & 7) {
        case 0:
            if (!(q = wvarint(p, end, &v))) {
                return 1;
            }
            if (is_any && fnum == 3) {
                char num[24];
                int n = snprintf(num, sizeof(num), "%lld", (long long)v);
                if (cb(arg, num, (size_t)n)) {
                    return 1;
                }
            }
            p = q;
            break;
        case 1:
            p += 8;
            break;
        case 5:
            p += 4;
            break;
        case 2: {
            if (!(q = wvarint(p, end, &v)) || v > (uint64_t)(end - q)) {
                return 1;
            }
            const ProtobufCFieldDescriptor *fd =
                protobuf_c_message_descriptor_get_field(desc, fnum);
            if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (walk_values(fd->descriptor, q, q + v, depth + 1, cb, arg)) {
                    return 1;
                }
            } else if (fd && fd->type == PROTOBUF_C_TYPE_STRING && !(is_kv && fnum == 1)) {
                if (cb(arg, (const char *)q, (size_t)v)) {
                    return 1;
                }
            }
            p = q + v;
            break;
        }
        default:
            return 1;
        }
    }
    return 0;
}

int otlp_walk_values(mt_signal_t s, const uint8_t *data, size_t len,
                     int (*cb)(void *arg, const char *p, size_t n), void *arg)
{
    return walk_values(otlp_request_desc(s), data, data + len, 0, cb, arg);
}

int otlp_scan(mt_signal_t s, const uint8_t *data, size_t len, uint64_t *items)
{
    return otlp_scan_events(s, data, len, items, NULL);
}

int otlp_scan_events(mt_signal_t s, const uint8_t *data, size_t len, uint64_t *items,
                     otlp_events_t *ev)
{
    scan_ctx_t sc;
    memset(&sc, 0, sizeof(sc));
    if (ev) {
        memset(ev, 0, sizeof(*ev));
        sc.ev = s == MT_SIG_LOGS ? ev : NULL;
    }
    switch (s) {
    case MT_SIG_TRACES:
        sc.item[0] = &opentelemetry__proto__trace__v1__span__descriptor;
        break;
    case MT_SIG_LOGS:
        sc.item[0] = &opentelemetry__proto__logs__v1__log_record__descriptor;
        break;
    case MT_SIG_PROFILES:
        sc.item[0] = &opentelemetry__proto__profiles__v1development__profile__descriptor;
        break;
    default:
        sc.item[0] = &opentelemetry__proto__metrics__v1__number_data_point__descriptor;
        sc.item[1] = &opentelemetry__proto__metrics__v1__histogram_data_point__descriptor;
        sc.item[2] =
            &opentelemetry__proto__metrics__v1__exponential_histogram_data_point__descriptor;
        sc.item[3] = &opentelemetry__proto__metrics__v1__summary_data_point__descriptor;
    }
    pthread_once(&sinfo_once, sinfo_init);
    int rc = scan(&sc, sinfo_lookup(otlp_request_desc(s)), data, data + len, 0);
    if (rc == 0) {
        return MT_EINVAL;
    }
    if (sc.undecided) {
        return MT_EUNSUPPORTED;
    }
    if (rc == 2) {
        return MT_EINVAL;
    }
    *items = sc.items;
    return MT_OK;
}

ProtobufCMessage *otlp_unpack(mt_signal_t s, const uint8_t *data, size_t len, arena_t *a,
                              mt_errbuf_t *eb)
{
    const ProtobufCMessageDescriptor *d = otlp_request_desc(s);
    if (!depth_ok(d, data, data + len, 0)) {
        if (otlp_wire_explain(d, data, len, eb) == MT_OK) {
            mt_failf(eb, "message nesting deeper than %d", OTLP_MAX_DEPTH);
        }
        return NULL;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(d, arena_pb_allocator(a), len, data);
    if (!m) {
        if (arena_over_cap(a)) {
            mt_failf(eb, "decoded message exceeds the memory allowed for one request");
        } else if (otlp_wire_explain(d, data, len, eb) == MT_OK) {
            mt_failf(eb, "invalid protobuf: %s could not be decoded", d->name);
        }
    }
    return m;
}

static int check_id(const ProtobufCBinaryData *id, size_t want, const char *what, const char *where,
                    size_t i, size_t j, size_t k, mt_errbuf_t *eb)
{
    if (id->len != 0 && id->len != want) {
        mt_failf(eb, "%s[%zu].%s[%zu].%s[%zu].%s: must be %zu bytes, got %zu", where, i,
                 strcmp(where, "resourceSpans") == 0 ? "scopeSpans" : "scopeLogs", j,
                 strcmp(where, "resourceSpans") == 0 ? "spans" : "logRecords", k, what, want,
                 id->len);
        return MT_EINVAL;
    }
    return MT_OK;
}

int otlp_check(mt_signal_t s, const ProtobufCMessage *req, uint64_t *items, mt_errbuf_t *eb)
{
    uint64_t n = 0;
    if (s == MT_SIG_TRACES) {
        const trace_req_t *r = (const trace_req_t *)req;
        for (size_t i = 0; i < r->n_resource_spans; i++) {
            Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[i];
            for (size_t j = 0; j < rs->n_scope_spans; j++) {
                Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
                for (size_t k = 0; k < ss->n_spans; k++) {
                    Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[k];
                    if (check_id(&sp->trace_id, 16, "traceId", "resourceSpans", i, j, k, eb) ||
                        check_id(&sp->span_id, 8, "spanId", "resourceSpans", i, j, k, eb) ||
                        check_id(&sp->parent_span_id, 8, "parentSpanId", "resourceSpans", i, j, k,
                                 eb)) {
                        return MT_EINVAL;
                    }
                    for (size_t l = 0; l < sp->n_links; l++) {
                        if (check_id(&sp->links[l]->trace_id, 16, "links.traceId", "resourceSpans",
                                     i, j, k, eb) ||
                            check_id(&sp->links[l]->span_id, 8, "links.spanId", "resourceSpans", i,
                                     j, k, eb)) {
                            return MT_EINVAL;
                        }
                    }
                }
                n += ss->n_spans;
            }
        }
    } else if (s == MT_SIG_LOGS) {
        const logs_req_t *r = (const logs_req_t *)req;
        for (size_t i = 0; i < r->n_resource_logs; i++) {
            Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = r->resource_logs[i];
            for (size_t j = 0; j < rl->n_scope_logs; j++) {
                Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[j];
                for (size_t k = 0; k < sl->n_log_records; k++) {
                    Opentelemetry__Proto__Logs__V1__LogRecord *lr = sl->log_records[k];
                    if (check_id(&lr->trace_id, 16, "traceId", "resourceLogs", i, j, k, eb) ||
                        check_id(&lr->span_id, 8, "spanId", "resourceLogs", i, j, k, eb)) {
                        return MT_EINVAL;
                    }
                }
                n += sl->n_log_records;
            }
        }
    } else if (s == MT_SIG_PROFILES) {
        const Opentelemetry__Proto__Collector__V1__ExportProfilesServiceRequest *r =
            (const void *)req;
        for (size_t i = 0; i < r->n_resource_profiles; i++) {
            for (size_t j = 0; j < r->resource_profiles[i]->n_scope_profiles; j++) {
                n += r->resource_profiles[i]->scope_profiles[j]->n_profiles;
            }
        }
    } else if (s == MT_SIG_METRICS) {
        const metrics_req_t *r = (const metrics_req_t *)req;
        for (size_t i = 0; i < r->n_resource_metrics; i++) {
            Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = r->resource_metrics[i];
            for (size_t j = 0; j < rm->n_scope_metrics; j++) {
                Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[j];
                for (size_t k = 0; k < sm->n_metrics; k++) {
                    Opentelemetry__Proto__Metrics__V1__Metric *m = sm->metrics[k];
                    switch (m->data_case) {
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                        n += m->gauge->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                        n += m->sum->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                        n += m->histogram->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                        n += m->exponential_histogram->n_data_points;
                        break;
                    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                        n += m->summary->n_data_points;
                        break;
                    default:
                        break;
                    }
                }
            }
        }
    }
    *items = n;
    return MT_OK;
}

static uint8_t *pack_or_json(const ProtobufCMessage *m, int json, size_t *len)
{
    if (json) {
        char *s = otlp_json_encode(m, len);
        return (uint8_t *)s;
    }
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(n ? n : 1);
    if (b) {
        *len = protobuf_c_message_pack(m, b);
    }
    return b;
}

uint8_t *otlp_response_body(mt_signal_t s, int json, int64_t rejected, const char *message,
                            size_t *len)
{
    int partial = rejected > 0 || (message && *message);
    char *msg = (char *)(message ? message : "");
    switch (s) {
    case MT_SIG_TRACES: {
        Opentelemetry__Proto__Collector__V1__ExportTraceServiceResponse r =
            OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
        Opentelemetry__Proto__Collector__V1__ExportTracePartialSuccess p =
            OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
        p.rejected_spans = rejected;
        p.error_message = msg;
        r.partial_success = partial ? &p : NULL;
        return pack_or_json(&r.base, json, len);
    }
    case MT_SIG_METRICS: {
        Opentelemetry__Proto__Collector__V1__ExportMetricsServiceResponse r =
            OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_METRICS_SERVICE_RESPONSE__INIT;
        Opentelemetry__Proto__Collector__V1__ExportMetricsPartialSuccess p =
            OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_METRICS_PARTIAL_SUCCESS__INIT;
        p.rejected_data_points = rejected;
        p.error_message = msg;
        r.partial_success = partial ? &p : NULL;
        return pack_or_json(&r.base, json, len);
    }
    case MT_SIG_PROFILES: {
        Opentelemetry__Proto__Collector__V1__ExportProfilesServiceResponse r =
            OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_PROFILES_SERVICE_RESPONSE__INIT;
        Opentelemetry__Proto__Collector__V1__ExportProfilesPartialSuccess p =
            OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_PROFILES_PARTIAL_SUCCESS__INIT;
        p.rejected_profiles = rejected;
        p.error_message = msg;
        r.partial_success = partial ? &p : NULL;
        return pack_or_json(&r.base, json, len);
    }
    default: {
        Opentelemetry__Proto__Collector__V1__ExportLogsServiceResponse r =
            OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_LOGS_SERVICE_RESPONSE__INIT;
        Opentelemetry__Proto__Collector__V1__ExportLogsPartialSuccess p =
            OPENTELEMETRY__PROTO__COLLECTOR__V1__EXPORT_LOGS_PARTIAL_SUCCESS__INIT;
        p.rejected_log_records = rejected;
        p.error_message = msg;
        r.partial_success = partial ? &p : NULL;
        return pack_or_json(&r.base, json, len);
    }
    }
}

uint8_t *otlp_status_body(int json, int code, const char *message, size_t *len)
{
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = code;
    st.message = (char *)(message ? message : "");
    return pack_or_json(&st.base, json, len);
}

const char *otlp_value_text(const Opentelemetry__Proto__Common__V1__AnyValue *v, char *buf,
                            size_t blen)
{
    if (!v) {
        return NULL;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return v->string_value;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        snprintf(buf, blen, "%lld", (long long)v->int_value);
        return buf;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return v->bool_value ? "true" : "false";
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        snprintf(buf, blen, "%g", v->double_value);
        return buf;
    default:
        return NULL;
    }
}

int64_t otlp_partial_rejected(mt_signal_t s, const char *body, size_t len, char *msg, size_t msglen)
{
    int64_t rej = 0;
    if (!len) {
        return 0;
    }
    ProtobufCMessage *m = NULL;
    const ProtobufCMessageDescriptor *d =
        s == MT_SIG_TRACES
            ? &opentelemetry__proto__collector__v1__export_trace_service_response__descriptor
        : s == MT_SIG_METRICS
            ? &opentelemetry__proto__collector__v1__export_metrics_service_response__descriptor
        : s == MT_SIG_PROFILES
            ? &opentelemetry__proto__collector__v1__export_profiles_service_response__descriptor
            : &opentelemetry__proto__collector__v1__export_logs_service_response__descriptor;
    m = protobuf_c_message_unpack(d, NULL, len, (const uint8_t *)body);
    if (!m) {
        return 0;
    }
    if (s == MT_SIG_TRACES) {
        Opentelemetry__Proto__Collector__V1__ExportTraceServiceResponse *r = (void *)m;
        if (r->partial_success) {
            rej = r->partial_success->rejected_spans;
            snprintf(msg, msglen, "%s", r->partial_success->error_message);
        }
    } else if (s == MT_SIG_METRICS) {
        Opentelemetry__Proto__Collector__V1__ExportMetricsServiceResponse *r = (void *)m;
        if (r->partial_success) {
            rej = r->partial_success->rejected_data_points;
            snprintf(msg, msglen, "%s", r->partial_success->error_message);
        }
    } else if (s == MT_SIG_PROFILES) {
        Opentelemetry__Proto__Collector__V1__ExportProfilesServiceResponse *r = (void *)m;
        if (r->partial_success) {
            rej = r->partial_success->rejected_profiles;
            snprintf(msg, msglen, "%s", r->partial_success->error_message);
        }
    } else {
        Opentelemetry__Proto__Collector__V1__ExportLogsServiceResponse *r = (void *)m;
        if (r->partial_success) {
            rej = r->partial_success->rejected_log_records;
            snprintf(msg, msglen, "%s", r->partial_success->error_message);
        }
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return rej;
}
