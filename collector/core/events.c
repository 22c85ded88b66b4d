/*
 * events.c - counts events per service: a log record is an event when it has an event name
 * (LogRecord.event_name) or an `event.name` attribute. The receiver's wire scan notices
 * whether a request has any (at no extra cost); only then is the accepted request walked here
 * for the services of its events, bumping meltp_events_total{service}. Services beyond
 * EVENTS_MAX_SERVICES share the label service="_other" so the series count stays bounded.
 */
#include "component.h"
#include "events.h"

#include <pthread.h>
#include <string.h>

#define EVENTS_MAX_SERVICES 256

static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static size_t ev_nservices;
static struct {
    char name[128];
    tm_counter_t *c;
} ev_services[EVENTS_MAX_SERVICES];
static tm_counter_t *ev_other;

static const uint8_t *rd_varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int sh = 0; sh < 70 && p < end; sh += 7) {
        uint8_t b = *p++;
        r |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80)) {
            *v = r;
            return p;
        }
    }
    return NULL;
}

/* Iterates the fields of one message: returns the next field's number and wire type, with its
 * LEN payload in (*val, *vlen); NULL at the end or on malformed data. */
static const uint8_t *next_field(const uint8_t *p, const uint8_t *end, unsigned *fnum,
                                 unsigned *wt, const uint8_t **val, size_t *vlen)
{
    uint64_t tag, v;
    if (p >= end || !(p = rd_varint(p, end, &tag))) {
        return NULL;
    }
    *fnum = (unsigned)(tag >> 3);
    *wt = (unsigned)(tag & 7);
    *val = NULL;
    *vlen = 0;
    switch (*wt) {
    case 0:
        return rd_varint(p, end, &v);
    case 1:
        return end - p >= 8 ? p + 8 : NULL;
    case 5:
        return end - p >= 4 ? p + 4 : NULL;
    case 2:
        if (!(p = rd_varint(p, end, &v)) || v > (uint64_t)(end - p)) {
            return NULL;
        }
        *val = p;
        *vlen = (size_t)v;
        return p + v;
    default:
        return NULL;
    }
}

/* KeyValue{1 key, 2 AnyValue{1 string_value}}: is the key `key`? Gives the string value. */
static int kv_is(const uint8_t *p, size_t n, const char *key, const uint8_t **sv, size_t *svn)
{
    const uint8_t *end = p + n, *val;
    size_t vlen, kl = strlen(key);
    unsigned f, wt;
    int match = 0;
    *sv = NULL;
    *svn = 0;
    while ((p = next_field(p, end, &f, &wt, &val, &vlen))) {
        if (f == 1 && wt == 2) {
            match = vlen == kl && memcmp(val, key, kl) == 0;
        } else if (f == 2 && wt == 2) {
            const uint8_t *q = val, *qe = val + vlen, *s;
            size_t sl;
            unsigned g, gw;
            while ((q = next_field(q, qe, &g, &gw, &s, &sl))) {
                if (g == 1 && gw == 2) {
                    *sv = s;
                    *svn = sl;
                }
            }
        }
    }
    return match;
}

static tm_counter_t *counter_for(const uint8_t *svc, size_t n)
{
    char name[128];
    if (n == 0) {
        memcpy(name, "unknown_service", 16);
    } else {
        size_t k = 0;
        for (size_t i = 0; i < n && k < sizeof(name) - 1; i++) {
            /* label values: keep printable ASCII, no quotes or backslashes */
            char ch = (char)svc[i];
            name[k++] = (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') ? ch : '_';
        }
        name[k] = 0;
    }
    tm_counter_t *c = NULL;
    pthread_mutex_lock(&ev_mu);
    for (size_t i = 0; i < ev_nservices; i++) {
        if (strcmp(ev_services[i].name, name) == 0) {
            c = ev_services[i].c;
            break;
        }
    }
    if (!c && ev_nservices < EVENTS_MAX_SERVICES) {
        char lb[192];
        snprintf(lb, sizeof(lb), "service=\"%s\"", name);
        snprintf(ev_services[ev_nservices].name, sizeof(ev_services[0].name), "%s", name);
        c = ev_services[ev_nservices++].c =
            tm_counter("meltp_events_total", "Log records that are events, per service.", lb);
    }
    if (!c) {
        if (!ev_other) {
            ev_other = tm_counter("meltp_events_total", "Log records that are events, per service.",
                                  "service=\"_other\"");
        }
        c = ev_other;
    }
    pthread_mutex_unlock(&ev_mu);
    return c;
}

void events_add(const uint8_t *svc, size_t svcn, uint64_t n)
{
    tm_add(counter_for(svc, svcn), n);
}

uint64_t events_count_logs(const uint8_t *pb, size_t len)
{
    uint64_t total = 0;
    const uint8_t *p = pb, *end = pb + len, *rl, *val, *val2, *val3;
    size_t rll, vlen, vlen2, vlen3;
    unsigned f, wt;
    while ((p = next_field(p, end, &f, &wt, &rl, &rll))) {
        if (f != 1 || wt != 2) {
            continue; /* ExportLogsServiceRequest.resource_logs */
        }
        const uint8_t *svc = NULL;
        size_t svcn = 0;
        uint64_t n = 0;
        const uint8_t *q = rl, *qe = rl + rll;
        while ((q = next_field(q, qe, &f, &wt, &val, &vlen))) {
            if (f == 1 && wt == 2) { /* resource: attributes (1) */
                const uint8_t *r = val, *re = val + vlen;
                while ((r = next_field(r, re, &f, &wt, &val2, &vlen2))) {
                    const uint8_t *sv;
                    size_t svn;
                    if (f == 1 && wt == 2 && kv_is(val2, vlen2, "service.name", &sv, &svn)) {
                        svc = sv;
                        svcn = svn;
                    }
                }
            } else if (f == 2 && wt == 2) { /* scope_logs: log_records (2) */
                const uint8_t *r = val, *re = val + vlen;
                while ((r = next_field(r, re, &f, &wt, &val2, &vlen2))) {
                    if (f != 2 || wt != 2) {
                        continue;
                    }
                    int is_event = 0;
                    const uint8_t *t = val2, *te = val2 + vlen2;
                    while (!is_event && (t = next_field(t, te, &f, &wt, &val3, &vlen3))) {
                        const uint8_t *sv;
                        size_t svn;
                        if (f == 12 && wt == 2 && vlen3 > 0) {
                            is_event = 1; /* event_name */
                        } else if (f == 6 && wt == 2 && vlen3 > 12 && val3[0] == 0x0a &&
                                   val3[1] == 10 && memcmp(val3 + 2, "event.name", 10) == 0 &&
                                   kv_is(val3, vlen3, "event.name", &sv, &svn) && svn > 0) {
                            /* cheap test first: the key is nearly always field 1, first */
                            is_event = 1;
                        }
                    }
                    n += (uint64_t)is_event;
                }
            }
        }
        if (n) {
            tm_add(counter_for(svc, svcn), n);
            total += n;
        }
    }
    return total;
}
