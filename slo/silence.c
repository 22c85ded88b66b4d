/*
 * silence.c - SLO alert silences (see silence.h): Alertmanager v2 JSON in and out, matchers
 * compiled once when a silence is created, the set behind one mutex (the API threads add and
 * expire, the evaluation thread matches), written atomically to state_dir on every change.
 */
#include "silence.h"
#include "httpc.h"
#include "mt.h"
#include "telemetry.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char id[SLO_SILENCE_ID_LEN];
    slo_matcher_t m[SLO_SILENCE_MATCHERS];
    size_t nm;
    int64_t starts_ms, ends_ms, updated_ms;
    char *created_by, *comment;
} silence_t;

/* The answers counted in meltp_slo_silence_requests_total{code} (looked up once). */
static const int sil_codes[] = {200, 400, 404, 405, 413, 429, 503};
#define SIL_NCODES (sizeof(sil_codes) / sizeof(sil_codes[0]))

struct slo_silences {
    pthread_mutex_t mu;
    pthread_mutex_t save_mu; /* one writer of the file at a time (taken before mu) */
    silence_t **v;
    size_t n;
    char *path;
    tm_counter_t *c_code[SIL_NCODES];
};

typedef enum { SIL_PENDING = 0, SIL_ACTIVE, SIL_EXPIRED } sil_state_t;
static const char *const sil_state_name[] = {"pending", "active", "expired"};

static sil_state_t sil_state(const silence_t *x, int64_t now)
{
    return now < x->starts_ms ? SIL_PENDING : now < x->ends_ms ? SIL_ACTIVE : SIL_EXPIRED;
}

static void sil_free(silence_t *x)
{
    if (!x) {
        return;
    }
    for (size_t i = 0; i < x->nm; i++) {
        slo_matcher_free(&x->m[i]);
    }
    free(x->created_by);
    free(x->comment);
    free(x);
}

/* ---- time ------------------------------------------------------------------------------- */

/* RFC 3339 ("2026-12-06T08:00:00Z", "...T08:00:00.123+02:00") to Unix ms; -1 when malformed. */
static int parse_time(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    int n = 0;
    if (!s ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 ||
        n != 19) {
        return -1;
    }
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60) {
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const char *p = s + n;
    int64_t frac = 0, scale = 1000;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') {
            return -1;
        }
        for (; *p >= '0' && *p <= '9'; p++) {
            if (scale > 1) {
                scale /= 10;
                frac += (*p - '0') * scale;
            }
        }
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5 || oh > 23 || om > 59) {
            return -1;
        }
        off = (oh * 60 + om) * 60000LL * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p) {
        return -1;
    }
    *ms = (int64_t)timegm(&tm) * 1000 + frac - off;
    return 0;
}

static json_t *jtime(int64_t ms)
{
    char b[40];
    slo_notify_fmt_time(b, sizeof(b), ms);
    return json_string(b);
}

/* ---- JSON ------------------------------------------------------------------------------- */

static json_t *sil_json(const silence_t *x, int64_t now)
{
    json_t *ms = json_array();
    for (size_t i = 0; i < x->nm; i++) {
        slo_match_op_t op = x->m[i].op;
        json_array_append_new(ms, json_pack("{s:s, s:s, s:b, s:b}", "name", x->m[i].name, "value",
                                            x->m[i].value, "isRegex",
                                            op == SLO_MATCH_RE || op == SLO_MATCH_NRE, "isEqual",
                                            op == SLO_MATCH_EQ || op == SLO_MATCH_RE));
    }
    return json_pack("{s:s, s:{s:s}, s:o, s:o, s:o, s:o, s:s, s:s}", "id", x->id, "status", "state",
                     sil_state_name[sil_state(x, now)], "updatedAt", jtime(x->updated_ms),
                     "matchers", ms, "startsAt", jtime(x->starts_ms), "endsAt", jtime(x->ends_ms),
                     "createdBy", x->created_by, "comment", x->comment);
}

/* Builds a silence from its JSON. `fresh`: a POST (endsAt must be in the future); otherwise a
 * saved one (anything well-formed loads). Returns it or NULL with why set. */
static silence_t *sil_from_json(const json_t *j, int64_t now, int fresh, char *why, size_t n)
{
    if (!json_is_object(j)) {
        snprintf(why, n, "a silence is a JSON object");
        return NULL;
    }
    silence_t *x = calloc(1, sizeof(*x));
    if (!x) {
        snprintf(why, n, "out of memory");
        return NULL;
    }
    const json_t *ms = json_object_get(j, "matchers");
    size_t nm = json_array_size(ms);
    if (!json_is_array(ms) || nm == 0) {
        snprintf(why, n, "matchers: a non-empty list of {name, value, isRegex, isEqual}");
        goto bad;
    }
    if (nm > SLO_SILENCE_MATCHERS) {
        snprintf(why, n, "matchers: at most %d", SLO_SILENCE_MATCHERS);
        goto bad;
    }
    int matches_empty = 1;
    for (size_t i = 0; i < nm; i++) {
        const json_t *m = json_array_get(ms, i);
        const char *name = json_string_value(json_object_get(m, "name"));
        const char *value = json_string_value(json_object_get(m, "value"));
        const json_t *re = json_object_get(m, "isRegex"), *eq = json_object_get(m, "isEqual");
        if (!name || !value || (re && !json_is_boolean(re)) || (eq && !json_is_boolean(eq))) {
            snprintf(why, n,
                     "matchers[%zu]: needs string name and value, boolean isRegex "
                     "and isEqual",
                     i);
            goto bad;
        }
        int isre = json_is_true(re), iseq = !eq || json_is_true(eq);
        slo_match_op_t op =
            isre ? (iseq ? SLO_MATCH_RE : SLO_MATCH_NRE) : (iseq ? SLO_MATCH_EQ : SLO_MATCH_NEQ);
        char err[200];
        if (slo_matcher_set(&x->m[x->nm], name, op, value, err, sizeof(err)) != 0) {
            snprintf(why, n, "matchers[%zu]: %s", i, err);
            goto bad;
        }
        matches_empty &= slo_matcher_match(&x->m[x->nm++], "");
    }
    if (matches_empty) {
        /* Alertmanager's rule: a silence that matches every alert is refused */
        snprintf(why, n, "matchers: at least one matcher must not match the empty string");
        goto bad;
    }
    const json_t *js = json_object_get(j, "startsAt");
    if (!js && fresh) {
        x->starts_ms = now;
    } else if (parse_time(json_string_value(js), &x->starts_ms) != 0) {
        snprintf(why, n, "startsAt: an RFC 3339 time (2026-01-02T15:04:05Z)");
        goto bad;
    }
    if (parse_time(json_string_value(json_object_get(j, "endsAt")), &x->ends_ms) != 0) {
        snprintf(why, n, "endsAt: an RFC 3339 time (2026-01-02T15:04:05Z)");
        goto bad;
    }
    if (fresh && x->ends_ms <= now) {
        snprintf(why, n, "endsAt is in the past");
        goto bad;
    }
    if (x->ends_ms < x->starts_ms) {
        snprintf(why, n, "endsAt is before startsAt");
        goto bad;
    }
    if (fresh && x->starts_ms < now) {
        x->starts_ms = now; /* as Alertmanager: a silence starts no earlier than its creation */
    }
    const char *by = json_string_value(json_object_get(j, "createdBy"));
    const char *comment = json_string_value(json_object_get(j, "comment"));
    if (!by || !*by || !comment || !*comment) {
        snprintf(why, n, "createdBy and comment are required");
        goto bad;
    }
    if (strlen(by) > 256 || strlen(comment) > 4096) {
        snprintf(why, n, "createdBy (256 bytes) or comment (4096 bytes) too long");
        goto bad;
    }
    x->created_by = strdup(by);
    x->comment = strdup(comment);
    if (!x->created_by || !x->comment) {
        snprintf(why, n, "out of memory");
        goto bad;
    }
    const char *id = json_string_value(json_object_get(j, "id"));
    if (id && strlen(id) < SLO_SILENCE_ID_LEN) {
        snprintf(x->id, sizeof(x->id), "%s", id);
    }
    const char *up = json_string_value(json_object_get(j, "updatedAt"));
    if (fresh || parse_time(up, &x->updated_ms) != 0) {
        x->updated_ms = now;
    }
    return x;
bad:
    sil_free(x);
    return NULL;
}

static void new_id(char *out)
{
    unsigned char b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        /* no entropy source: time and address still make ids unique within this process */
        uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)out, c = mt_now_ns();
        memcpy(b, &t, 8);
        memcpy(b + 8, &c, 8);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, SLO_SILENCE_ID_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

/* ---- persistence ------------------------------------------------------------------------ */

/* Writes the set after a change (called without s->mu). The text is taken under s->mu, the
 * write and fsync happen outside it, so the evaluation thread (which matches silences while
 * the engine lock is held) never waits for the disk; save_mu keeps writers in order, each
 * writing the set as it is when its turn comes. */
static void sil_save(slo_silences_t *s, int64_t now)
{
    if (!s->path) {
        return;
    }
    pthread_mutex_lock(&s->save_mu);
    pthread_mutex_lock(&s->mu);
    json_t *arr = json_array();
    for (size_t i = 0; i < s->n; i++) {
        json_array_append_new(arr, sil_json(s->v[i], now));
    }
    pthread_mutex_unlock(&s->mu);
    char *txt = json_dumps(arr, JSON_INDENT(1));
    json_decref(arr);
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", s->path);
    FILE *f = txt ? fopen(tmp, "w") : NULL;
    int ok = f && fputs(txt, f) >= 0;
    ok &= f && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f) {
        ok &= fclose(f) == 0;
    }
    if (!ok || rename(tmp, s->path) != 0) {
        mt_log(MT_LOG_WARN, "slo: cannot save silences to %s: %s", s->path, strerror(errno));
        unlink(tmp);
    }
    free(txt);
    pthread_mutex_unlock(&s->save_mu);
}

static void sil_load(slo_silences_t *s)
{
    json_error_t jerr;
    json_t *arr = json_load_file(s->path, 0, &jerr);
    if (!arr) {
        if (access(s->path, F_OK) == 0) {
            mt_log(MT_LOG_WARN, "slo: ignoring unreadable silences file %s: %s", s->path,
                   jerr.text);
        }
        return;
    }
    int64_t now = (int64_t)(mt_wall_ns() / 1000000ull);
    for (size_t i = 0; json_is_array(arr) && i < json_array_size(arr) && s->n < SLO_SILENCE_MAX;
         i++) {
        char why[256];
        silence_t *x = sil_from_json(json_array_get(arr, i), now, 0, why, sizeof(why));
        if (!x || !x->id[0]) {
            mt_log(MT_LOG_WARN, "slo: %s: silence %zu skipped: %s", s->path, i, x ? "no id" : why);
            sil_free(x);
            continue;
        }
        s->v[s->n++] = x;
    }
    json_decref(arr);
    if (s->n) {
        mt_log(MT_LOG_INFO, "slo: %zu silences restored from %s", s->n, s->path);
    }
}

slo_silences_t *slo_silence_create(const char *path)
{
    slo_silences_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->v = calloc(SLO_SILENCE_MAX, sizeof(*s->v))) ||
        (path && !(s->path = strdup(path)))) {
        if (s) {
            free(s->v);
        }
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->save_mu, NULL);
    for (size_t i = 0; i < SIL_NCODES; i++) {
        char l[32];
        snprintf(l, sizeof(l), "code=\"%d\"", sil_codes[i]);
        s->c_code[i] = tm_counter("meltp_slo_silence_requests_total",
                                  "requests to /api/v1/silences, by HTTP status", l);
    }
    if (s->path) {
        sil_load(s);
    }
    return s;
}

void slo_silence_destroy(slo_silences_t *s)
{
    if (!s) {
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        sil_free(s->v[i]);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->save_mu);
    free(s->v);
    free(s->path);
    free(s);
}

/* ---- HTTP ------------------------------------------------------------------------------- */

static int reply(char **out, size_t *outlen, const char **ctype, int status, json_t *j,
                 const char *text)
{
    if (j) {
        *out = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        *ctype = "application/json";
    } else {
        size_t l = strlen(text);
        *out = malloc(l + 2);
        if (*out) {
            memcpy(*out, text, l);
            memcpy(*out + l, "\n", 2);
        }
        *ctype = "text/plain";
    }
    if (!*out) {
        return 503;
    }
    *outlen = strlen(*out);
    return status;
}

static ssize_t find(const slo_silences_t *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++) {
        if (!strcmp(s->v[i]->id, id)) {
            return (ssize_t)i;
        }
    }
    return -1;
}

/* Forgets silences expired for longer than the retention (called with s->mu held). */
static void prune(slo_silences_t *s, int64_t now)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i]->ends_ms + SLO_SILENCE_RETENTION < now) {
            sil_free(s->v[i]);
        } else {
            s->v[k++] = s->v[i];
        }
    }
    s->n = k;
}

static int sil_post(slo_silences_t *s, const char *body, size_t len, int64_t now, char **out,
                    size_t *outlen, const char **ctype)
{
    char why[300];
    if (len > SLO_SILENCE_BODY_MAX) {
        return reply(out, outlen, ctype, 413, NULL, "silence body too large");
    }
    json_error_t jerr;
    json_t *j = json_loadb(body ? body : "", len, 0, &jerr);
    if (!j) {
        snprintf(why, sizeof(why), "bad JSON: line %d: %s", jerr.line, jerr.text);
        return reply(out, outlen, ctype, 400, NULL, why);
    }
    silence_t *x = sil_from_json(j, now, 1, why, sizeof(why));
    json_decref(j);
    if (!x) {
        return reply(out, outlen, ctype, 400, NULL, why);
    }
    pthread_mutex_lock(&s->mu);
    prune(s, now);
    int status = 200;
    if (x->id[0]) {
        ssize_t at = find(s, x->id);
        if (at < 0) {
            status = 404;
        } else {
            sil_free(s->v[at]);
            s->v[at] = x;
        }
    } else if (s->n >= SLO_SILENCE_MAX) {
        status = 429;
    } else {
        new_id(x->id);
        s->v[s->n++] = x;
    }
    char id[SLO_SILENCE_ID_LEN];
    snprintf(id, sizeof(id), "%s", x->id);
    pthread_mutex_unlock(&s->mu);
    if (status == 200) {
        sil_save(s, now);
    }
    if (status != 200) {
        sil_free(x);
        return reply(out, outlen, ctype, status, NULL,
                     status == 404 ? "silence not found" : "too many silences");
    }
    mt_log(MT_LOG_INFO, "slo: silence %s created", id);
    return reply(out, outlen, ctype, 200, json_pack("{s:s}", "silenceID", id), NULL);
}

static int sil_http(slo_silences_t *s, const char *method, const char *path, const char *body,
                    size_t len, int64_t now, char **out, size_t *outlen, const char **ctype);

int slo_silence_http(slo_silences_t *s, const char *method, const char *path, const char *body,
                     size_t len, int64_t now, char **out, size_t *outlen, const char **ctype)
{
    int st = sil_http(s, method, path, body, len, now, out, outlen, ctype);
    for (size_t i = 0; i < SIL_NCODES; i++) {
        if (sil_codes[i] == st && s->c_code[i]) {
            tm_add(s->c_code[i], 1);
        }
    }
    return st;
}

static int sil_http(slo_silences_t *s, const char *method, const char *path, const char *body,
                    size_t len, int64_t now, char **out, size_t *outlen, const char **ctype)
{
    *out = NULL;
    *outlen = 0;
    /* /api/v1/silences, /api/v1/silences/{id}, and Alertmanager's /api/v1/silence/{id} */
    const char *id = NULL;
    if (!strncmp(path, "/api/v1/silences/", 17)) {
        id = path + 17;
    } else if (!strncmp(path, "/api/v1/silence/", 16)) {
        id = path + 16;
    }
    if (id && !*id) {
        id = NULL;
    }
    if (!id && strcmp(path, "/api/v1/silences") != 0 && strcmp(path, "/api/v1/silences/") != 0) {
        return reply(out, outlen, ctype, 404, NULL, "not found; try /api/v1/silences");
    }
    if (!strcmp(method, "POST") && !id) {
        return sil_post(s, body, len, now, out, outlen, ctype);
    }
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD")) {
        json_t *j = id ? NULL : json_array();
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->n; i++) {
            if (!id) {
                json_array_append_new(j, sil_json(s->v[i], now));
            } else if (!strcmp(s->v[i]->id, id)) {
                j = sil_json(s->v[i], now);
            }
        }
        pthread_mutex_unlock(&s->mu);
        return j ? reply(out, outlen, ctype, 200, j, NULL)
                 : reply(out, outlen, ctype, 404, NULL, "silence not found");
    }
    if (!strcmp(method, "DELETE") && id) {
        pthread_mutex_lock(&s->mu);
        ssize_t at = find(s, id);
        if (at >= 0 && sil_state(s->v[at], now) != SIL_EXPIRED) {
            silence_t *x = s->v[at];
            if (x->starts_ms > now) {
                x->starts_ms = now;
            }
            x->ends_ms = now;
            x->updated_ms = now;
        }
        pthread_mutex_unlock(&s->mu);
        if (at >= 0) {
            sil_save(s, now);
        }
        return at < 0 ? reply(out, outlen, ctype, 404, NULL, "silence not found")
                      : reply(out, outlen, ctype, 200, json_object(), NULL);
    }
    return reply(out, outlen, ctype, 405, NULL,
                 "use POST /api/v1/silences, GET /api/v1/silences[/ID] or DELETE "
                 "/api/v1/silences/ID");
}

size_t slo_silence_match(slo_silences_t *s, const slo_route_labels_t *l, int64_t now,
                         char (*ids)[SLO_SILENCE_ID_LEN], size_t max)
{
    size_t k = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++) {
        const silence_t *x = s->v[i];
        if (sil_state(x, now) == SIL_ACTIVE && slo_route_matchers_match(x->m, x->nm, l)) {
            if (k < max) {
                memcpy(ids[k], x->id, SLO_SILENCE_ID_LEN);
            }
            k++;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return k;
}

size_t slo_silence_active(slo_silences_t *s, int64_t now)
{
    size_t k = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++) {
        k += sil_state(s->v[i], now) == SIL_ACTIVE;
    }
    pthread_mutex_unlock(&s->mu);
    return k;
}

/* ---- meltp slo silence ------------------------------------------------------------------ */

static void cli_usage(FILE *f)
{
    fprintf(f, "usage: meltp slo silence [--url URL] --matcher 'name=\"value\"' [--matcher ...]\n"
               "                         --duration 2h --comment TEXT [--created-by NAME]\n"
               "       meltp slo silence [--url URL] --list\n"
               "       meltp slo silence [--url URL] --expire ID\n"
               "URL is meltp's telemetry endpoint (default http://127.0.0.1:8888; --config FILE\n"
               "reads it from service.telemetry.metrics.address); matchers use\n"
               "Alertmanager's syntax (=, !=, =~, !~) on the alerts' labels.\n");
}

/* One request to the telemetry endpoint; prints the answer. Returns the exit code. */
static int cli_request(const char *url, const char *method, const char *body)
{
    CURL *c = curl_easy_init();
    if (!c) {
        fprintf(stderr, "meltp slo silence: curl init failed\n");
        return 1;
    }
    httpc_resp_t r = {.max = 1 << 20};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    httpc_setup(c, &r, &(httpc_opts_t){.timeout_ms = 10000});
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    int out = 1;
    if (rc != CURLE_OK) {
        fprintf(stderr, "meltp slo silence: %s: %s\n", url, curl_easy_strerror(rc));
    } else if (status != 200) {
        fprintf(stderr, "meltp slo silence: HTTP %ld: %s", status, httpc_resp_text(&r));
    } else {
        printf("%s\n", httpc_resp_text(&r));
        out = 0;
    }
    httpc_resp_free(&r);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return out;
}

/* http://<service.telemetry.metrics.address> of a collector config (default 127.0.0.1:8888,
 * a 0.0.0.0 / empty host reached on loopback). */
static int config_url(const char *config, char *url, size_t n)
{
    mt_errbuf_t eb;
    mt_errbuf_clear(&eb);
    cfg_doc_t *doc = cfg_load_file(config, &eb);
    if (!doc) {
        fprintf(stderr, "meltp slo silence: %s\n", eb.msg);
        return -1;
    }
    const cfg_node_t *a = cfg_map_get(
        cfg_map_get(cfg_map_get(cfg_map_get(doc->root, "service"), "telemetry"), "metrics"),
        "address");
    const char *addr = a && a->value && *a->value ? a->value : "127.0.0.1:8888";
    if (!strncmp(addr, "0.0.0.0:", 8)) {
        snprintf(url, n, "http://127.0.0.1:%s", addr + 8);
    } else if (addr[0] == ':') {
        snprintf(url, n, "http://127.0.0.1%s", addr);
    } else {
        snprintf(url, n, "http://%s", addr);
    }
    cfg_doc_destroy(doc);
    return 0;
}

int slo_silence_cli_main(int argc, char **argv)
{
    const char *base = "http://127.0.0.1:8888", *comment = NULL, *expire = NULL;
    const char *by = getenv("USER") ? getenv("USER") : "meltp";
    int64_t dur = 0;
    int list = 0;
    char cfg_url[300];
    json_t *ms = json_array();
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--list")) {
            list = 1;
            continue;
        }
        if (!v || (strcmp(a, "--url") && strcmp(a, "--matcher") && strcmp(a, "--duration") &&
                   strcmp(a, "--comment") && strcmp(a, "--created-by") && strcmp(a, "--expire") &&
                   strcmp(a, "--config"))) {
            fprintf(stderr, "meltp slo silence: unknown flag or missing value: %s\n", a);
            cli_usage(stderr);
            goto out;
        }
        i++;
        if (!strcmp(a, "--url")) {
            base = v;
        } else if (!strcmp(a, "--config")) {
            if (config_url(v, cfg_url, sizeof(cfg_url)) != 0) {
                goto out;
            }
            base = cfg_url;
        } else if (!strcmp(a, "--comment")) {
            comment = v;
        } else if (!strcmp(a, "--created-by")) {
            by = v;
        } else if (!strcmp(a, "--expire")) {
            expire = v;
        } else if (!strcmp(a, "--duration")) {
            if (cfg_parse_duration_ms(v, &dur) != MT_OK || dur <= 0) {
                fprintf(stderr, "meltp slo silence: bad --duration %s\n", v);
                goto out;
            }
        } else {
            slo_matcher_t m;
            char err[256];
            if (slo_matcher_parse(v, &m, err, sizeof(err)) != 0) {
                fprintf(stderr, "meltp slo silence: bad matcher '%s': %s\n", v, err);
                goto out;
            }
            json_array_append_new(
                ms, json_pack("{s:s, s:s, s:b, s:b}", "name", m.name, "value", m.value, "isRegex",
                              m.op == SLO_MATCH_RE || m.op == SLO_MATCH_NRE, "isEqual",
                              m.op == SLO_MATCH_EQ || m.op == SLO_MATCH_RE));
            slo_matcher_free(&m);
        }
    }
    char url[2048];
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/') {
        bl--;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (list) {
        snprintf(url, sizeof(url), "%.*s/api/v1/silences", (int)bl, base);
        rc = cli_request(url, "GET", NULL);
    } else if (expire) {
        snprintf(url, sizeof(url), "%.*s/api/v1/silences/%s", (int)bl, base, expire);
        rc = cli_request(url, "DELETE", NULL);
    } else if (!json_array_size(ms) || !dur || !comment) {
        fprintf(stderr, "meltp slo silence: needs --matcher, --duration and --comment\n");
        cli_usage(stderr);
    } else {
        int64_t now = (int64_t)(mt_wall_ns() / 1000000ull);
        json_t *req = json_pack("{s:O, s:o, s:o, s:s, s:s}", "matchers", ms, "startsAt", jtime(now),
                                "endsAt", jtime(now + dur), "createdBy", by, "comment", comment);
        char *body = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        snprintf(url, sizeof(url), "%.*s/api/v1/silences", (int)bl, base);
        rc = body ? cli_request(url, "POST", body) : 1;
        free(body);
    }
out:
    json_decref(ms);
    return rc;
}
