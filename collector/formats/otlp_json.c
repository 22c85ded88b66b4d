/*
 * otlp_json.c - a generic OTLP/JSON codec for protobuf-c messages (protocols.md §1.3).
 * Decoding parses with jansson and fills arena-allocated structs by walking the message
 * descriptors; encoding writes JSON straight from the structs into one growable buffer.
 * Both sides apply the OTLP deviations from proto3 JSON: hex trace/span ids, 64-bit ints
 * as strings, enums as integers, lowerCamelCase keys.
 */
#include "otlp_json.h"
#include "sb.h"
#include "json_cost.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Frames of the JSON path kept for error messages. Each message level pushes at most one
 * frame (the field being read), so the depth cap bounds this with a small margin. */
#define OJ_MAX_FRAMES (OTLP_JSON_MAX_DEPTH + 8)
/* Longest path rendered, and how much of it an error shows: long paths (depth bombs) keep
 * their head and tail, since the tail names the failing field and mt_errbuf_t is 512 bytes. */
#define OJ_PATH_MAX   4096
#define OJ_PATH_SHOWN 360
#define OJ_PATH_HEAD  100

/* ------------------------------------------------------------------------------------------ */
/* Paths and errors                                                                           */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    const char *name; /* proto field name; rendered lowerCamelCase */
    size_t idx;       /* element index when has_idx */
    int has_idx;
} oj_frame_t;

/* State shared by the decoder and the UTF-8 validator. The path is a stack of descriptor
 * names, rendered only when an error happens, so the happy path pays nothing for it. */
typedef struct {
    arena_t *a;
    mt_errbuf_t *eb;
    int depth;
    int nframes;
    oj_frame_t frames[OJ_MAX_FRAMES];
} oj_ctx_t;

/* Appends the lowerCamelCase form of a proto field name (protoc's ToJsonName: drop each '_'
 * and upper-case the character after it). Returns the number of bytes written (<= cap). */
static size_t camel_write(const char *name, char *out, size_t cap)
{
    size_t n = 0;
    int up = 0;
    for (const char *p = name; *p && n < cap; p++) {
        if (*p == '_') {
            up = 1;
            continue;
        }
        char c = *p;
        if (up && c >= 'a' && c <= 'z') {
            c = (char)(c - 'a' + 'A');
        }
        up = 0;
        out[n++] = c;
    }
    return n;
}

static void path_render(const oj_ctx_t *c, char *out, size_t cap)
{
    size_t n = 0;
    for (int i = 0; i < c->nframes && n + 32 < cap; i++) {
        if (i > 0) {
            out[n++] = '.';
        }
        n += camel_write(c->frames[i].name, out + n, cap - n - 24);
        if (c->frames[i].has_idx) {
            n += (size_t)snprintf(out + n, cap - n, "[%zu]", c->frames[i].idx);
        }
    }
    if (n == 0) {
        n = (size_t)snprintf(out, cap, "(root)");
    }
    out[n < cap ? n : cap - 1] = 0;
}

/* Records "<path>: <reason>" (first error wins) and returns -1 so callers can `return fail()`. */
static int fail(oj_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(oj_ctx_t *c, const char *fmt, ...)
{
    char path[OJ_PATH_MAX];
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    path_render(c, path, sizeof(path));
    size_t plen = strlen(path);
    if (plen > OJ_PATH_SHOWN) {
        size_t tail = OJ_PATH_SHOWN - OJ_PATH_HEAD - 3;
        mt_failf(c->eb, "%.*s...%s: %s", OJ_PATH_HEAD, path, path + plen - tail, reason);
    } else {
        mt_failf(c->eb, "%s: %s", path, reason);
    }
    return -1;
}

static int push(oj_ctx_t *c, const char *name)
{
    if (c->nframes >= OJ_MAX_FRAMES) {
        /* Unreachable while the depth cap holds; kept so a future change cannot overflow. */
        return fail(c, "nesting deeper than %d", OTLP_JSON_MAX_DEPTH);
    }
    c->frames[c->nframes].name = name;
    c->frames[c->nframes].has_idx = 0;
    c->nframes++;
    return 0;
}

static void set_index(oj_ctx_t *c, size_t i)
{
    c->frames[c->nframes - 1].idx = i;
    c->frames[c->nframes - 1].has_idx = 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Field helpers shared by both directions                                                    */
/* ------------------------------------------------------------------------------------------ */

/* OTLP writes trace and span ids as hex in every message, unlike proto3 JSON's base64. */
static int is_hex_id(const ProtobufCFieldDescriptor *f)
{
    if (f->type != PROTOBUF_C_TYPE_BYTES) {
        return 0;
    }
    const char *n = f->name;
    return strcmp(n, "trace_id") == 0 || strcmp(n, "span_id") == 0 ||
           strcmp(n, "parent_span_id") == 0;
}

/* Bytes one element occupies in a repeated field's array (protobuf-c stores enums as int). */
static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 8;
}

/* Whether the field keeps a separate has_ flag (proto2 `optional` scalars and bytes). */
static int has_flag_field(const ProtobufCFieldDescriptor *f)
{
    return f->label == PROTOBUF_C_LABEL_OPTIONAL && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
           f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE;
}

/* Returns the length of the valid UTF-8 sequence at s (s[0] >= 0x80), or 0 if invalid.
 * Rejects overlong forms, surrogates and code points above U+10FFFF, as jansson does. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        return 1;
    }
    if (c < 0xC2) {
        return 0;
    }
    if (c < 0xE0) {
        return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    }
    if (c < 0xF0) {
        if (n < 3 || (s[2] & 0xC0) != 0x80) {
            return 0;
        }
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return s[1] >= lo && s[1] <= hi ? 3 : 0;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) {
            return 0;
        }
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return s[1] >= lo && s[1] <= hi ? 4 : 0;
    }
    return 0;
}

/* Returns the offset of the first invalid byte, or (size_t)-1 when all of s is valid. */
static size_t utf8_find_invalid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(s + i, n - i);
        if (k == 0) {
            return i;
        }
        i += k;
    }
    return (size_t)-1;
}

/* ------------------------------------------------------------------------------------------ */
/* Decoding                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static int dec_message(oj_ctx_t *c, const ProtobufCMessageDescriptor *desc, json_t *obj,
                       ProtobufCMessage *m);

static void *dec_alloc(oj_ctx_t *c, size_t n)
{
    void *p = arena_alloc(c->a, n ? n : 1);
    if (!p) {
        fail(c, "out of memory%s", arena_over_cap(c->a) ? " (request size cap)" : "");
    }
    return p;
}

/* Matches a JSON key against a proto field name in either spelling: snake_case as written
 * in the .proto, or its lowerCamelCase JSON name. No allocation: compared on the fly. */
static int key_matches(const char *key, const char *name)
{
    if (key[0] != name[0] && name[0] != '_') {
        return 0;
    }
    if (strcmp(key, name) == 0) {
        return 1;
    }
    const char *k = key;
    int up = 0;
    for (const char *p = name; *p; p++) {
        if (*p == '_') {
            up = 1;
            continue;
        }
        char ch = *p;
        if (up && ch >= 'a' && ch <= 'z') {
            ch = (char)(ch - 'a' + 'A');
        }
        up = 0;
        if (*k != ch) {
            return 0;
        }
        k++;
    }
    return *k == 0;
}

/* Linear scan: OTLP messages have at most ~15 fields and the first-character test rejects
 * almost every candidate, which beats building a per-descriptor hash table that would need
 * global, thread-safe caching. */
static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc,
                                                  const char *key)
{
    for (unsigned i = 0; i < desc->n_fields; i++) {
        if (key_matches(key, desc->fields[i].name)) {
            return &desc->fields[i];
        }
    }
    return NULL;
}

/* Reads a decimal integer string (optional '-') into sign and magnitude. */
static int parse_decimal(const char *s, size_t len, int *neg, uint64_t *mag)
{
    size_t i = 0;
    *neg = 0;
    *mag = 0;
    if (i < len && s[i] == '-') {
        *neg = 1;
        i++;
    }
    if (i == len) {
        return -1;
    }
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        unsigned d = (unsigned)(s[i] - '0');
        if (*mag > (UINT64_MAX - d) / 10) {
            return 1; /* overflow */
        }
        *mag = *mag * 10 + d;
    }
    return 0;
}

/* Reads a JSON integer, an integral real or a decimal string into sign and magnitude and
 * checks it fits `bits` bits (signed or not). Proto3 JSON lets every integer arrive either
 * way; OTLP senders use strings for 64-bit values because JavaScript numbers lose digits. */
static int dec_int(oj_ctx_t *c, json_t *v, int bits, int is_signed, int *neg, uint64_t *mag)
{
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        *neg = x < 0;
        *mag = x < 0 ? (uint64_t)(-(x + 1)) + 1 : (uint64_t)x;
    } else if (json_is_real(v)) {
        double x = json_real_value(v);
        if (x != floor(x)) {
            return fail(c, "not an integer");
        }
        if (x >= 18446744073709551616.0 || x < -9223372036854775808.0) {
            return fail(c, "integer out of range");
        }
        *neg = x < 0;
        *mag = x < 0 ? (uint64_t)(-x) : (uint64_t)x;
    } else if (json_is_string(v)) {
        int rc = parse_decimal(json_string_value(v), json_string_length(v), neg, mag);
        if (rc < 0) {
            return fail(c, "not an integer");
        }
        if (rc > 0) {
            return fail(c, "integer out of range");
        }
    } else {
        return fail(c, "expected integer or string");
    }
    int ok;
    if (is_signed) {
        uint64_t lim = bits == 32 ? (uint64_t)INT32_MAX : (uint64_t)INT64_MAX;
        ok = *neg ? *mag <= lim + 1 : *mag <= lim;
    } else {
        ok = (!*neg || *mag == 0) && (bits == 64 || *mag <= UINT32_MAX);
    }
    if (!ok) {
        return fail(c, "integer out of range");
    }
    return 0;
}

static int64_t to_signed(int neg, uint64_t mag)
{
    /* 0 - mag wraps modulo 2^64, which gcc converts back to int64 two's complement. */
    return neg ? (int64_t)(0 - mag) : (int64_t)mag;
}

/* Numbers, integers, and the proto3 JSON strings "NaN", "Infinity", "-Infinity" (plus
 * plain numeric strings, which proto3 JSON also allows). */
static int dec_double(oj_ctx_t *c, json_t *v, double *out)
{
    if (json_is_real(v)) {
        *out = json_real_value(v);
        return 0;
    }
    if (json_is_integer(v)) {
        *out = (double)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v)) {
        return fail(c, "expected number or string");
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (strcmp(s, "NaN") == 0) {
        *out = NAN;
        return 0;
    }
    if (strcmp(s, "Infinity") == 0) {
        *out = INFINITY;
        return 0;
    }
    if (strcmp(s, "-Infinity") == 0) {
        *out = -INFINITY;
        return 0;
    }
    /* strtod also takes "inf", "nan", hex floats and leading spaces: allow digits only. */
    if (len == 0 || strspn(s, "0123456789+-.eE") != len) {
        return fail(c, "invalid number");
    }
    char *end;
    double d = strtod(s, &end);
    if (end != s + len) {
        return fail(c, "invalid number");
    }
    if (isinf(d)) {
        return fail(c, "number out of range");
    }
    *out = d;
    return 0;
}

static int hex_nibble(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

static int dec_hex(oj_ctx_t *c, const char *s, size_t len, ProtobufCBinaryData *out)
{
    if (len % 2 != 0) {
        return fail(c, "invalid hex id (length %zu)", len);
    }
    out->len = 0;
    out->data = NULL;
    if (len == 0) {
        return 0;
    }
    uint8_t *p = dec_alloc(c, len / 2);
    if (!p) {
        return -1;
    }
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_nibble(s[i]), lo = hex_nibble(s[i + 1]);
        if (hi < 0 || lo < 0) {
            return fail(c, "invalid hex id (non-hex character at %zu)", hi < 0 ? i : i + 1);
        }
        p[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    out->data = p;
    out->len = len / 2;
    return 0;
}

static int b64_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z') {
        return ch - 'A';
    }
    if (ch >= 'a' && ch <= 'z') {
        return ch - 'a' + 26;
    }
    if (ch >= '0' && ch <= '9') {
        return ch - '0' + 52;
    }
    if (ch == '+' || ch == '-') {
        return 62;
    }
    if (ch == '/' || ch == '_') {
        return 63;
    }
    return -1;
}

/* Standard base64 with padding, also unpadded and URL-safe (proto3 JSON parsers accept all). */
static int dec_base64(oj_ctx_t *c, const char *s, size_t len, ProtobufCBinaryData *out)
{
    size_t n = len;
    out->len = 0;
    out->data = NULL;
    if (n > 0 && s[n - 1] == '=') {
        n--;
        if (n > 0 && s[n - 1] == '=') {
            n--;
        }
        if (len % 4 != 0) {
            return fail(c, "invalid base64 (bad padding)");
        }
    }
    if (n % 4 == 1) {
        return fail(c, "invalid base64 (length %zu)", len);
    }
    if (n == 0) {
        return 0;
    }
    uint8_t *p = dec_alloc(c, n / 4 * 3 + 3);
    if (!p) {
        return -1;
    }
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(s[i]);
        if (v < 0) {
            return fail(c, "invalid base64 (bad character at %zu)", i);
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            p[o++] = (uint8_t)(acc >> bits);
        }
    }
    out->data = p;
    out->len = o;
    return 0;
}

/* Decodes one value (a singular field or one array element) of field f into `slot`. */
static int dec_value(oj_ctx_t *c, const ProtobufCFieldDescriptor *f, json_t *v, void *slot)
{
    int neg;
    uint64_t mag;
    double d;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (dec_int(c, v, 32, 1, &neg, &mag)) {
            return -1;
        }
        *(int32_t *)slot = (int32_t)to_signed(neg, mag);
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (dec_int(c, v, 32, 0, &neg, &mag)) {
            return -1;
        }
        *(uint32_t *)slot = (uint32_t)mag;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (dec_int(c, v, 64, 1, &neg, &mag)) {
            return -1;
        }
        *(int64_t *)slot = to_signed(neg, mag);
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (dec_int(c, v, 64, 0, &neg, &mag)) {
            return -1;
        }
        *(uint64_t *)slot = mag;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (dec_double(c, v, &d)) {
            return -1;
        }
        if (isfinite(d) && fabs(d) > 3.4028234663852886e38) {
            return fail(c, "number out of range for float");
        }
        *(float *)slot = (float)d;
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return dec_double(c, v, (double *)slot);
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v)) {
            return fail(c, "expected boolean");
        }
        *(protobuf_c_boolean *)slot = json_is_true(v) ? 1 : 0;
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        /* OTLP requires integers; names are accepted because generic proto3 JSON senders
         * may use them. Unknown integers are kept: proto3 enums are open. */
        if (json_is_string(v) && f->descriptor) {
            const char *s = json_string_value(v);
            if (parse_decimal(s, json_string_length(v), &neg, &mag) < 0) {
                const ProtobufCEnumValue *ev =
                    protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, s);
                if (!ev) {
                    return fail(c, "unknown enum value \"%.64s\"", s);
                }
                *(int *)slot = ev->value;
                return 0;
            }
        }
        if (dec_int(c, v, 32, 1, &neg, &mag)) {
            return -1;
        }
        *(int *)slot = (int)to_signed(neg, mag);
        return 0;
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v)) {
            return fail(c, "expected string");
        }
        /* jansson has already rejected invalid UTF-8 and (without JSON_ALLOW_NUL) \u0000. */
        char *s = arena_strndup(c->a, json_string_value(v), json_string_length(v));
        if (!s) {
            return fail(c, "out of memory%s", arena_over_cap(c->a) ? " (request size cap)" : "");
        }
        *(char **)slot = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        if (!json_is_string(v)) {
            return fail(c, "expected string");
        }
        if (is_hex_id(f)) {
            return dec_hex(c, json_string_value(v), json_string_length(v), slot);
        }
        return dec_base64(c, json_string_value(v), json_string_length(v), slot);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *sub = f->descriptor;
        if (!json_is_object(v)) {
            return fail(c, "expected object");
        }
        ProtobufCMessage *m = dec_alloc(c, sub->sizeof_message);
        if (!m) {
            return -1;
        }
        protobuf_c_message_init(sub, m);
        *(ProtobufCMessage **)slot = m;
        return dec_message(c, sub, v, m);
    }
    }
    return fail(c, "unsupported field type %d", (int)f->type);
}

/* Decodes a field's JSON value into message memory `base`: arrays for repeated fields,
 * plus the oneof case or has_ flag that records presence. */
static int dec_field(oj_ctx_t *c, const ProtobufCFieldDescriptor *f, json_t *v, char *base)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (!json_is_array(v)) {
            return fail(c, "expected array");
        }
        size_t n = json_array_size(v);
        size_t es = elem_size(f->type);
        char *arr = NULL;
        if (n > 0) {
            arr = dec_alloc(c, n * es);
            if (!arr) {
                return -1;
            }
            memset(arr, 0, n * es);
        }
        /* Publish the array before filling it so a partial message stays consistent. */
        *(size_t *)(base + f->quantifier_offset) = n;
        *(char **)(base + f->offset) = arr;
        for (size_t i = 0; i < n; i++) {
            set_index(c, i);
            if (dec_value(c, f, json_array_get(v, i), arr + i * es)) {
                return -1;
            }
        }
        return 0;
    }
    if (dec_value(c, f, v, base + f->offset)) {
        return -1;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        *(uint32_t *)(base + f->quantifier_offset) = f->id;
    } else if (has_flag_field(f)) {
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    }
    return 0;
}

static int dec_message(oj_ctx_t *c, const ProtobufCMessageDescriptor *desc, json_t *obj,
                       ProtobufCMessage *m)
{
    if (!json_is_object(obj)) {
        return fail(c, "expected object");
    }
    if (c->depth >= OTLP_JSON_MAX_DEPTH) {
        return fail(c, "nesting deeper than %d", OTLP_JSON_MAX_DEPTH);
    }
    c->depth++;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        const ProtobufCFieldDescriptor *f = find_field(desc, key);
        /* Unknown keys must be ignored (§1.3); null means "absent" in proto3 JSON. */
        if (!f || json_is_null(v)) {
            continue;
        }
        if (push(c, f->name)) {
            return -1;
        }
        if (dec_field(c, f, v, (char *)m)) {
            return -1;
        }
        c->nframes--;
    }
    c->depth--;
    return 0;
}

ProtobufCMessage *otlp_json_decode(const ProtobufCMessageDescriptor *desc, const char *json,
                                   size_t len, arena_t *a, mt_errbuf_t *eb)
{
    mt_errbuf_t local;
    if (!eb) {
        mt_errbuf_clear(&local);
        eb = &local;
    }
    if (!json) {
        json = "";
        len = 0;
    }
    /* jansson mallocs the tree outside the arena: charge its estimated size to the arena
     * (its cap and the memory limit) first, so a body of millions of tiny values is refused
     * before the tree exists rather than after (json_cost.h) */
    size_t cost = jcost_estimate(json, len);
    if (arena_charge(a, cost) != 0) {
        mt_failf(eb, "out of memory%s: parsing this JSON needs about %zu bytes",
                 arena_over_cap(a) ? " (request size cap)" : " (memory limit)", cost);
        return NULL;
    }
    json_error_t jerr;
    /* No JSON_REJECT_DUPLICATES (last one wins, like proto3 JSON parsers) and no
     * JSON_DECODE_ANY (the top level must be an object). jansson caps nesting at 2048. */
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) {
        mt_failf(eb, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    oj_ctx_t c;
    c.a = a;
    c.eb = eb;
    c.depth = 0;
    c.nframes = 0;
    ProtobufCMessage *m = dec_alloc(&c, desc->sizeof_message);
    if (m) {
        protobuf_c_message_init(desc, m);
        if (dec_message(&c, desc, root, m)) {
            m = NULL;
        }
    }
    json_decref(root);
    return m;
}

/* ------------------------------------------------------------------------------------------ */
/* Encoding                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Written straight from the structs rather than through a jansson tree: it saves one
 * allocation per value, keeps doubles shortest-round-trip, and lets 64-bit ints be strings
 * without formatting them twice. The builder (sb.h) latches an
 * allocation failure; later writes no-op. */
static void enc_double(sb_t *b, double v, int is_float)
{
    if (isnan(v)) {
        sb_put(b, "\"NaN\"", 5);
        return;
    }
    if (isinf(v)) {
        if (v > 0) {
            sb_put(b, "\"Infinity\"", 10);
        } else {
            sb_put(b, "\"-Infinity\"", 11);
        }
        return;
    }
    if (v == 0) {
        /* "-0" would parse back as the integer 0 and lose the sign protobuf-c packs. */
        if (signbit(v)) {
            sb_put(b, "-0.0", 4);
        } else {
            sb_putc(b, '0');
        }
        return;
    }
    char tmp[40];
    int n = 0;
    for (int prec = is_float ? 6 : 15; prec <= (is_float ? 9 : 17); prec++) {
        n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        double back = strtod(tmp, NULL);
        if (is_float ? (float)back == (float)v : back == v) {
            break;
        }
    }
    sb_put(b, tmp, (size_t)n);
}

static void enc_string(sb_t *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t start = 0, i = 0;
    sb_putc(b, '"');
    while (i < n) {
        unsigned char ch = s[i];
        if (ch >= 0x20 && ch < 0x80 && ch != '"' && ch != '\\') {
            i++;
            continue;
        }
        sb_put(b, str + start, i - start);
        if (ch >= 0x80) {
            size_t k = utf8_seq(s + i, n - i);
            if (k) {
                sb_put(b, str + i, k);
                i += k;
            } else {
                /* Keep the output valid JSON; otlp_validate_utf8 is how callers reject. */
                sb_put(b, "\\ufffd", 6);
                i++;
            }
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            switch (ch) {
            case '"':
                sb_put(b, "\\\"", 2);
                break;
            case '\\':
                sb_put(b, "\\\\", 2);
                break;
            case '\n':
                sb_put(b, "\\n", 2);
                break;
            case '\r':
                sb_put(b, "\\r", 2);
                break;
            case '\t':
                sb_put(b, "\\t", 2);
                break;
            case '\b':
                sb_put(b, "\\b", 2);
                break;
            case '\f':
                sb_put(b, "\\f", 2);
                break;
            default:
                sb_put(b, esc, 6);
                break;
            }
            i++;
        }
        start = i;
    }
    sb_put(b, str + start, i - start);
    sb_putc(b, '"');
}

static void enc_hex(sb_t *b, const ProtobufCBinaryData *bd)
{
    static const char hex[] = "0123456789abcdef";
    sb_putc(b, '"');
    if (bd->len > 0 && sb_room(b, bd->len * 2) == 0) {
        for (size_t i = 0; i < bd->len; i++) {
            b->p[b->len++] = hex[bd->data[i] >> 4];
            b->p[b->len++] = hex[bd->data[i] & 15];
        }
    }
    sb_putc(b, '"');
}

static void enc_base64(sb_t *b, const ProtobufCBinaryData *bd)
{
    sb_putc(b, '"');
    sb_base64(b, bd->data, bd->len);
    sb_putc(b, '"');
}

static void enc_message(sb_t *b, const ProtobufCMessage *m);

static void enc_value(sb_t *b, const ProtobufCFieldDescriptor *f, const void *slot)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        sb_i64(b, *(const int32_t *)slot);
        return;
    case PROTOBUF_C_TYPE_ENUM:
        sb_i64(b, *(const int *)slot);
        return;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        sb_u64(b, *(const uint32_t *)slot);
        return;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        sb_putc(b, '"');
        sb_i64(b, *(const int64_t *)slot);
        sb_putc(b, '"');
        return;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        sb_putc(b, '"');
        sb_u64(b, *(const uint64_t *)slot);
        sb_putc(b, '"');
        return;
    case PROTOBUF_C_TYPE_FLOAT:
        enc_double(b, *(const float *)slot, 1);
        return;
    case PROTOBUF_C_TYPE_DOUBLE:
        enc_double(b, *(const double *)slot, 0);
        return;
    case PROTOBUF_C_TYPE_BOOL:
        if (*(const protobuf_c_boolean *)slot) {
            sb_put(b, "true", 4);
        } else {
            sb_put(b, "false", 5);
        }
        return;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        enc_string(b, s ? s : "", s ? strlen(s) : 0);
        return;
    }
    case PROTOBUF_C_TYPE_BYTES:
        if (is_hex_id(f)) {
            enc_hex(b, slot);
        } else {
            enc_base64(b, slot);
        }
        return;
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;
        if (sub) {
            enc_message(b, sub);
        } else {
            sb_put(b, "{}", 2);
        }
        return;
    }
    }
}

/* The proto3 "default value" test, bit-for-bit like protobuf-c's own packer so that
 * JSON -> struct -> protobuf gives the same bytes as the original (-0.0 is not default). */
static int is_default(const ProtobufCFieldDescriptor *f, const void *slot)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)slot == 0;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return *(const uint32_t *)slot == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const uint64_t *)slot == 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        return s == NULL || s[0] == 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)slot)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)slot == NULL;
    }
    return 1;
}

static void enc_key(sb_t *b, const char *name, int *first)
{
    char tmp[256];
    if (!*first) {
        sb_putc(b, ',');
    }
    *first = 0;
    sb_putc(b, '"');
    sb_put(b, tmp, camel_write(name, tmp, sizeof(tmp)));
    sb_put(b, "\":", 2);
}

/* Fields go out in descriptor order (field number), which is also protobuf-c's pack order.
 * Recursion is not depth-capped: messages come from our decoders, which cap nesting. */
static void enc_message(sb_t *b, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *desc = m->descriptor;
    const char *base = (const char *)m;
    int first = 1;
    sb_putc(b, '{');
    for (unsigned i = 0; i < desc->n_fields && !b->err; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        const void *slot = base + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            const char *arr = *(char *const *)slot;
            if (n == 0 || !arr) {
                continue;
            }
            size_t es = elem_size(f->type);
            enc_key(b, f->name, &first);
            sb_putc(b, '[');
            for (size_t j = 0; j < n; j++) {
                if (j > 0) {
                    sb_putc(b, ',');
                }
                enc_value(b, f, arr + j * es);
            }
            sb_putc(b, ']');
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            /* A set oneof member is explicit presence: emitted even when zero (sum: 0). */
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id) {
                continue;
            }
        } else if (has_flag_field(f)) {
            if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset)) {
                continue;
            }
        } else if (f->label == PROTOBUF_C_LABEL_NONE || f->type == PROTOBUF_C_TYPE_STRING ||
                   f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (f->label == PROTOBUF_C_LABEL_NONE ? is_default(f, slot)
                                                  : *(void *const *)slot == NULL) {
                continue;
            }
        }
        enc_key(b, f->name, &first);
        enc_value(b, f, slot);
    }
    sb_putc(b, '}');
}

char *otlp_json_encode(const ProtobufCMessage *msg, size_t *out_len)
{
    sb_t b = {0};
    enc_message(&b, msg);
    return sb_take(&b, out_len); /* NULL when out of memory */
}

/* ------------------------------------------------------------------------------------------ */
/* UTF-8 validation                                                                           */
/* ------------------------------------------------------------------------------------------ */

static int val_string(oj_ctx_t *c, const char *s)
{
    if (!s) {
        return 0;
    }
    size_t bad = utf8_find_invalid(s, strlen(s));
    if (bad != (size_t)-1) {
        return fail(c, "invalid UTF-8 at byte %zu", bad);
    }
    return 0;
}

static int val_message(oj_ctx_t *c, const ProtobufCMessage *m)
{
    if (c->depth >= OTLP_JSON_MAX_DEPTH) {
        return fail(c, "nesting deeper than %d", OTLP_JSON_MAX_DEPTH);
    }
    c->depth++;
    const ProtobufCMessageDescriptor *desc = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE) {
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id) {
            continue;
        }
        if (push(c, f->name)) {
            return -1;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            void *const *arr = *(void *const *const *)(base + f->offset);
            for (size_t j = 0; j < n && arr; j++) {
                set_index(c, j);
                int rc = f->type == PROTOBUF_C_TYPE_STRING ? val_string(c, arr[j])
                                                           : (arr[j] ? val_message(c, arr[j]) : 0);
                if (rc) {
                    return -1;
                }
            }
        } else {
            void *p = *(void *const *)(base + f->offset);
            int rc =
                f->type == PROTOBUF_C_TYPE_STRING ? val_string(c, p) : (p ? val_message(c, p) : 0);
            if (rc) {
                return -1;
            }
        }
        c->nframes--;
    }
    c->depth--;
    return 0;
}

int otlp_validate_utf8(const ProtobufCMessage *msg, mt_errbuf_t *eb)
{
    mt_errbuf_t local;
    if (!eb) {
        mt_errbuf_clear(&local);
        eb = &local;
    }
    oj_ctx_t c;
    c.a = NULL;
    c.eb = eb;
    c.depth = 0;
    c.nframes = 0;
    return val_message(&c, msg) ? MT_EINVAL : MT_OK;
}
