/*
 * pprof_conv_multipart.c - a strict multipart/form-data parser for the bodies Pyroscope SDKs
 * upload (boundary from the Content-Type, parts with their disposition). Part of the
 * formats/pprof_conv module (pprof_conv.c, see pprof_conv.h).
 */
#include "pprof_conv.h"
#include "pyro_legacy.h"
#include "otlp.h"
#include "pprof_conv_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

/* ---- multipart/form-data ----------------------------------------------------------------- */

int pprof_multipart_boundary(const char *ctype, char *out, size_t outlen, const char **why)
{
    *why = "Content-Type is not multipart/form-data";
    if (!ctype || strncasecmp(ctype, "multipart/form-data", 19) != 0) {
        return 0;
    }
    const char *p = ctype + 19;
    while (*p) {
        while (*p == ';' || *p == ' ' || *p == '\t') {
            p++;
        }
        if (strncasecmp(p, "boundary=", 9) == 0) {
            p += 9;
            size_t n = 0;
            if (*p == '"') {
                const char *q = strchr(p + 1, '"');
                if (!q) {
                    *why = "unterminated quoted boundary";
                    return 0;
                }
                n = (size_t)(q - p - 1);
                p++;
            } else {
                n = strcspn(p, "; \t");
            }
            /* RFC 2046: 1..70 characters */
            if (n == 0 || n > 70 || n >= outlen) {
                *why = "multipart boundary must be 1..70 characters";
                return 0;
            }
            memcpy(out, p, n);
            out[n] = 0;
            return 1;
        }
        p += strcspn(p, ";");
    }
    *why = "multipart/form-data without boundary";
    return 0;
}

static const uint8_t *find_bytes(const uint8_t *h, size_t hl, const char *n, size_t nl)
{
    if (nl == 0 || hl < nl) {
        return NULL;
    }
    return memmem(h, hl, n, nl);
}

/* Reads a header parameter like name="x" from a Content-Disposition value. */
static char *disp_param(arena_t *a, const char *v, size_t vl, const char *param)
{
    size_t pl = strlen(param);
    const char *p = v, *end = v + vl;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *se = semi ? semi : end;
        while (p < se && (*p == ' ' || *p == '\t')) {
            p++;
        }
        if ((size_t)(se - p) > pl && strncasecmp(p, param, pl) == 0 && p[pl] == '=') {
            const char *val = p + pl + 1;
            size_t n = (size_t)(se - val);
            if (n >= 2 && val[0] == '"' && val[n - 1] == '"') {
                val++, n -= 2;
            }
            return arena_strndup(a, val, n);
        }
        p = se + 1;
    }
    return NULL;
}

int pprof_multipart_parse(const char *boundary, const uint8_t *body, size_t len, arena_t *a,
                          pprof_part_t *parts, size_t *nparts, mt_errbuf_t *eb)
{
    *nparts = 0;
    char delim[80];
    int dl = snprintf(delim, sizeof(delim), "--%s", boundary);
    if (dl <= 2 || (size_t)dl >= sizeof(delim)) {
        mt_failf(eb, "bad multipart boundary");
        return MT_EINVAL;
    }
    /* the body starts with the first delimiter (a preamble is allowed before "\r\n--b") */
    const uint8_t *p;
    if (len >= (size_t)dl && memcmp(body, delim, (size_t)dl) == 0) {
        p = body;
    } else {
        char d2[84];
        int n2 = snprintf(d2, sizeof(d2), "\r\n%s", delim);
        p = find_bytes(body, len, d2, (size_t)n2);
        if (!p) {
            mt_failf(eb, "multipart body has no boundary \"%s\"", boundary);
            return MT_EINVAL;
        }
        p += 2;
    }
    const uint8_t *end = body + len;
    char next[84];
    int nl = snprintf(next, sizeof(next), "\r\n%s", delim);
    for (;;) {
        p += dl;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
            return *nparts ? MT_OK : (mt_failf(eb, "multipart body has no parts"), MT_EINVAL);
        }
        while (p < end && (*p == ' ' || *p == '\t')) {
            p++; /* transport padding */
        }
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            mt_failf(eb, "multipart: delimiter not followed by CRLF");
            return MT_EINVAL;
        }
        p += 2;
        if (*nparts == PPROF_MAX_PARTS) {
            mt_failf(eb, "multipart body has more than %d parts", PPROF_MAX_PARTS);
            return MT_EINVAL;
        }
        /* headers up to an empty line */
        const uint8_t *hend = find_bytes(p, (size_t)(end - p), "\r\n\r\n", 4);
        const uint8_t *hstart = p;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
            hend = p - 2; /* no headers at all */
        }
        if (!hend) {
            mt_failf(eb, "multipart part %zu: headers not terminated", *nparts + 1);
            return MT_EINVAL;
        }
        pprof_part_t *part = &parts[*nparts];
        memset(part, 0, sizeof(*part));
        const uint8_t *h = hstart;
        while (h < hend) {
            const uint8_t *eol = find_bytes(h, (size_t)(hend - h) + 2, "\r\n", 2);
            const uint8_t *he = eol ? eol : hend;
            const uint8_t *colon = memchr(h, ':', (size_t)(he - h));
            if (!colon) {
                mt_failf(eb, "multipart part %zu: malformed header line", *nparts + 1);
                return MT_EINVAL;
            }
            if ((size_t)(colon - h) == 19 &&
                strncasecmp((const char *)h, "Content-Disposition", 19) == 0) {
                const char *v = (const char *)colon + 1;
                size_t vl = (size_t)((const char *)he - v);
                while (vl && (*v == ' ' || *v == '\t')) {
                    v++, vl--;
                }
                if (vl < 9 || strncasecmp(v, "form-data", 9) != 0) {
                    mt_failf(eb, "multipart part %zu: Content-Disposition is not form-data",
                             *nparts + 1);
                    return MT_EINVAL;
                }
                part->name = disp_param(a, v + 9, vl - 9, "name");
                part->filename = disp_param(a, v + 9, vl - 9, "filename");
            }
            h = he + 2;
        }
        if (!part->name || !*part->name) {
            mt_failf(eb, "multipart part %zu: no Content-Disposition form-data name", *nparts + 1);
            return MT_EINVAL;
        }
        if (!part->filename) {
            part->filename = "";
        }
        const uint8_t *data = hend + 4;
        const uint8_t *de = find_bytes(data, (size_t)(end - data), next, (size_t)nl);
        if (!de) {
            mt_failf(eb, "multipart part \"%.60s\": no closing boundary", part->name);
            return MT_EINVAL;
        }
        part->data = data;
        part->len = (size_t)(de - data);
        (*nparts)++;
        p = de + 2;
    }
}
