/*
 * events.c - counts events per service: a log record is an event when it has an event name
 * (LogRecord.event_name) or an `event.name` attribute. The receiver's wire scan notices
 * whether a request has any (at no extra cost); only then is the accepted request walked here
 * for the services of its events, bumping meltp_events_total{service}. Services beyond
 * EVENTS_MAX_SERVICES share the label service="_other" so the series count stays bounded; the
 * same per-service counter (events_counter_*) serves the Loki exporter.
 */
#include "component.h"
#include "events.h"
#include "pbwire.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENTS_MAX_SERVICES 256

struct events_counter {
    const char *metric, *help;
    char *base; /* "" or "exporter=\"x\"" */
    events_label_t policy;
    pthread_mutex_t mu;
    size_t n, max;
    struct {
        char name[128]; /* the label value */
        tm_counter_t *c;
    } * svc;
    tm_counter_t *other;
};

events_counter_t *events_counter_create(const char *metric, const char *help,
                                        const char *base_labels, size_t max_services,
                                        events_label_t policy)
{
    events_counter_t *ec = calloc(1, sizeof(*ec));
    if (!ec || !(ec->base = strdup(base_labels)) ||
        !(ec->svc = calloc(max_services ? max_services : 1, sizeof(*ec->svc)))) {
        events_counter_destroy(ec);
        return NULL;
    }
    ec->metric = metric;
    ec->help = help;
    ec->policy = policy;
    ec->max = max_services;
    pthread_mutex_init(&ec->mu, NULL);
    return ec;
}

void events_counter_destroy(events_counter_t *ec)
{
    if (!ec) {
        return;
    }
    if (ec->svc) {
        pthread_mutex_destroy(&ec->mu);
    }
    free(ec->svc);
    free(ec->base);
    free(ec);
}

static tm_counter_t *counter_for(events_counter_t *ec, const char *svc, size_t n)
{
    char name[128];
    size_t k = 0;
    for (size_t i = 0; i < n && k < sizeof(name) - 1; i++) {
        char ch = svc[i];
        int keep = ec->policy == EVENTS_LABEL_ASCII
                       ? ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\'
                       : ch != '"' && ch != '\\' && ch != '\n';
        name[k++] = keep ? ch : '_';
    }
    name[k] = 0;
    const char *sep = *ec->base ? "," : "";
    tm_counter_t *c = NULL;
    pthread_mutex_lock(&ec->mu);
    for (size_t i = 0; i < ec->n; i++) {
        if (strcmp(ec->svc[i].name, name) == 0) {
            c = ec->svc[i].c;
            break;
        }
    }
    if (!c && ec->n < ec->max) {
        char lb[512];
        snprintf(lb, sizeof(lb), "%s%sservice=\"%s\"", ec->base, sep, name);
        memcpy(ec->svc[ec->n].name, name, k + 1);
        c = ec->svc[ec->n++].c = tm_counter(ec->metric, ec->help, lb);
    }
    if (!c) {
        if (!ec->other) {
            char lb[512];
            snprintf(lb, sizeof(lb), "%s%sservice=\"_other\"", ec->base, sep);
            ec->other = tm_counter(ec->metric, ec->help, lb);
        }
        c = ec->other;
    }
    pthread_mutex_unlock(&ec->mu);
    return c;
}

void events_counter_add(events_counter_t *ec, const char *svc, size_t n, uint64_t count)
{
    if (ec) {
        tm_add(counter_for(ec, svc, n), count);
    }
}

/* meltp_events_total{service}, made on first use */
static events_counter_t *ev_total;
static pthread_once_t ev_once = PTHREAD_ONCE_INIT;

static void ev_total_create(void)
{
    ev_total =
        events_counter_create("meltp_events_total", "Log records that are events, per service.", "",
                              EVENTS_MAX_SERVICES, EVENTS_LABEL_ASCII);
}

static void add_total(const uint8_t *svc, size_t n, uint64_t count)
{
    pthread_once(&ev_once, ev_total_create);
    if (n == 0) {
        events_counter_add(ev_total, "unknown_service", 15, count);
    } else {
        events_counter_add(ev_total, (const char *)svc, n, count);
    }
}

/* Iterates the fields of one message: returns the next field's number and wire type, with its
 * LEN payload in (*val, *vlen); NULL at the end or on malformed data. */
static const uint8_t *next_field(const uint8_t *p, const uint8_t *end, unsigned *fnum, unsigned *wt,
                                 const uint8_t **val, size_t *vlen)
{
    uint64_t tag, v;
    if (p >= end || !(p = wvarint(p, end, &tag))) {
        return NULL;
    }
    *fnum = (unsigned)(tag >> 3);
    *wt = (unsigned)(tag & 7);
    *val = NULL;
    *vlen = 0;
    switch (*wt) {
    case 0:
        return wvarint(p, end, &v);
    case 1:
        return end - p >= 8 ? p + 8 : NULL;
    case 5:
        return end - p >= 4 ? p + 4 : NULL;
    case 2:
        if (!(p = wvarint(p, end, &v)) || v > (uint64_t)(end - p)) {
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

void events_add(const uint8_t *svc, size_t svcn, uint64_t n)
{
    add_total(svc, svcn, n);
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
            add_total(svc, svcn, n);
            total += n;
        }
    }
    return total;
}
