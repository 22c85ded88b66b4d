/*
 * engine.c - the in-stream SLO engine: reads the `slo:` section, loads the specs (model.h),
 * counts good/bad/total events from every accepted request through the pipeline observer
 * (spans, log records, cumulative or delta sums, explicit and exponential histograms) into
 * per-instance bucket stores (eval.h), evaluates every SLO on its own thread each
 * evaluation_interval, drives alert notifications (slo.routes, inhibition and silences,
 * group_wait, escalations at once, repeat_interval, resolve notices: engine_notify.c), pushes
 * Sloth-named SLO series into metrics exporter queues, serves GET /api/v1/slos and saves its
 * state.
 * slo_simulate() runs the same observer and evaluator without threads on a simulated clock
 * (`meltp slo simulate`, used by the Prometheus parity test).
 *
 * Locking: one engine mutex guards instances, the counter table and change events. The
 * observer holds it while it adds one request's counts (no I/O under it); the evaluator holds
 * it while computing and building messages and series, then sends outside it. A state save
 * holds it only to copy the instances into a reusable buffer (and only when an instance's gen
 * moved since the last save); checksum, write, fsync and rename happen outside it, under
 * save_mu, which is never taken while mu is held.
 *
 * This file holds the configuration, loading, state save/restore, start and stop;
 * engine_observe.c the pipeline observer and the instances, engine_eval.c the evaluation loop
 * (notifications, SLO series) and engine_api.c GET /api/v1/slos and the simulation (shared
 * declarations: engine_int.h).
 */
#include "slo.h"
#include "engine_int.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- configuration ---------------------------------------------------------------------- */

static const cfg_field_t eng_fields[] = {
    {"specs", CFG_T_STRLIST, NULL, CFG_REQUIRED, offsetof(eng_cfg_t, specs), NULL,
     "spec files or globs (relative to the config file)"},
    {"evaluation_interval", CFG_T_DURATION, "10s", 0, offsetof(eng_cfg_t, interval_ms), NULL,
     "how often every SLO is evaluated"},
    {"state_dir", CFG_T_STRING, "./data/slo", 0, offsetof(eng_cfg_t, state_dir), NULL,
     "buckets and alert states are saved here (atomic rename) and restored at start"},
    {"exporters", CFG_T_STRLIST, NULL, 0, offsetof(eng_cfg_t, exporters), NULL,
     "metrics exporter ids that receive the SLO series"},
    {"notifiers", CFG_T_NODE, NULL, 0, offsetof(eng_cfg_t, notifiers), NULL,
     "list of {type: slack|teams|webhook, webhook_url|url, ...}"},
    {"group_wait", CFG_T_DURATION, "30s", 0, offsetof(eng_cfg_t, group_wait_ms), NULL,
     "delay before the first notice of a new alert (Alertmanager group_wait)"},
    {"group_interval", CFG_T_DURATION, "5m", 0, offsetof(eng_cfg_t, group_interval_ms), NULL,
     "minimum delay between notices of one SLO when it changes tier (not escalations)"},
    {"repeat_interval", CFG_T_DURATION, "4h", 0, offsetof(eng_cfg_t, repeat_interval_ms), NULL,
     "re-send a still-firing alert this often"},
    {"escalation_wait", CFG_T_DURATION, "0s", 0, offsetof(eng_cfg_t, escalation_wait_ms), NULL,
     "minimum delay between a route group's previous notice and the notice of a more severe "
     "tier (0: the next evaluation)"},
    {"routes", CFG_T_NODE, NULL, 0, offsetof(eng_cfg_t, routes), NULL,
     "list of {matchers, notifiers, group_wait, group_interval, repeat_interval, continue}; "
     "first match wins unless continue"},
    {"inhibit", CFG_T_NODE, NULL, 0, offsetof(eng_cfg_t, inhibit), NULL,
     "list of {source_matchers, target_matchers, equal}"},
    {"external_url", CFG_T_STRING, NULL, 0, offsetof(eng_cfg_t, external_url), NULL,
     "base URL for generatorURL in webhook payloads"},
    {"max_series", CFG_T_INT, "65536", 0, offsetof(eng_cfg_t, max_series), NULL,
     "cumulative metric series tracked for counter deltas"},
};

int64_t eng_wall_ms(void)
{
    return (int64_t)(mt_wall_ns() / 1000000ull);
}

/* ---- load ------------------------------------------------------------------------------- */

static int severity_rank(const char *s)
{
    if (!s) {
        return 2;
    }
    if (!strcmp(s, "page") || !strcmp(s, "critical")) {
        return 0;
    }
    if (!strcmp(s, "ticket") || !strcmp(s, "warning")) {
        return 1;
    }
    return 2;
}

/* The parsed zone of a calendar SLO, shared by every SLO naming it (NULL = UTC; an unknown
 * zone is a spec lint error, so failing here only means the file went away: UTC, warned). */
static const slo_tz_t *eng_zone(slo_engine_t *e, const char *name)
{
    if (!name || !strcmp(name, "UTC")) {
        return NULL;
    }
    for (size_t i = 0; i < e->nzones; i++) {
        if (!strcmp(e->zones[i].name, name)) {
            return e->zones[i].tz;
        }
    }
    slo_tz_t *tz = NULL;
    if (slo_tz_load(name, &tz) != MT_OK) {
        mt_log(MT_LOG_WARN, "slo: cannot read time zone %s; calendar periods use UTC", name);
    }
    if (e->nzones < ENG_MAX_ZONES && (e->zones[e->nzones].name = strdup(name))) {
        e->zones[e->nzones++].tz = tz;
    } else {
        slo_tz_free(tz);
        tz = NULL;
    }
    return tz;
}

static void params_from_spec(slo_engine_t *e, const slo_spec_t *s, slo_ev_params_t *p)
{
    memset(p, 0, sizeof(*p));
    if (s->period_kind != SLO_PERIOD_ROLLING) {
        p->tz = eng_zone(e, s->time_zone);
    }
    p->budgeting = s->budgeting == SLO_BUDGET_TIMESLICES         ? SLO_BG_TIMESLICES
                   : s->budgeting == SLO_BUDGET_RATIO_TIMESLICES ? SLO_BG_RATIO_TIMESLICES
                                                                 : SLO_BG_OCCURRENCES;
    p->slice_ms = s->timeslice_ms;
    p->slice_target = s->timeslice_target;
    /* late events (batching, export intervals): a slice closes one evaluation (at least 10 s)
     * after its end; the simulation (no interval) closes it at once */
    int64_t iv = e->cfg.interval_ms;
    p->slice_grace_ms = iv > 0 ? (iv > 10000 ? iv : 10000) : 0;
    p->objective = s->objective;
    p->period_kind = s->period_kind == SLO_PERIOD_CALENDAR_MONTH  ? SLO_PK_MONTH
                     : s->period_kind == SLO_PERIOD_CALENDAR_WEEK ? SLO_PK_WEEK
                                                                  : SLO_PK_ROLLING;
    p->period_ms = s->period_ms > 0 ? s->period_ms : 30 * 86400000LL;
    p->min_events = s->min_events;
    p->nodata = s->nodata == SLO_NODATA_BAD      ? SLO_ND_BAD
                : s->nodata == SLO_NODATA_FREEZE ? SLO_ND_FREEZE
                : s->nodata == SLO_NODATA_ALERT  ? SLO_ND_ALERT
                                                 : SLO_ND_GOOD;
    p->ntiers = s->ntiers < SLO_EV_MAX_TIERS ? s->ntiers : SLO_EV_MAX_TIERS;
    for (size_t i = 0; i < p->ntiers; i++) {
        const slo_tier_t *t = &s->tiers[i];
        p->tiers[i] = (slo_ev_tier_t){t->long_ms, t->short_ms,           t->factor,
                                      t->for_ms,  t->keep_firing_for_ms, severity_rank(t->severity),
                                      t->enabled};
    }
}

void eng_free(slo_engine_t *e)
{
    for (size_t i = 0; i < e->ndefs; i++) {
        for (size_t k = 0; k < e->defs[i].n; k++) {
            eng_rec_free(e->defs[i].insts[k], e->defs[i].spec->ngroup_by);
        }
        free(e->defs[i].insts);
    }
    while (e->pending) {
        pending_t *p = e->pending;
        e->pending = p->next;
        free(p->id);
        free(p->in);
        free(p);
    }
    free(e->defs);
    free(e->changes);
    free(e->state_buf);
    for (size_t i = 0; i < e->nzones; i++) {
        free(e->zones[i].name);
        slo_tz_free(e->zones[i].tz);
    }
    free(e->queues);
    slo_route_destroy(e->routes);
    slo_silence_destroy(e->silences);
    slo_notifiers_destroy(e->notifiers);
    slo_set_destroy(e->set);
    slo_ctr_fini(&e->ctr);
    cfg_free_fields(eng_fields, MT_ARRAY_LEN(eng_fields), &e->cfg);
    free(e);
}

/* Builds one def per SLO of e->set (and the instance of every ungrouped SLO) and the counter
 * table. Returns MT_OK or MT_ENOMEM (the caller frees with eng_free). */
int eng_defs_init(slo_engine_t *e)
{
    e->defs = calloc(e->set->n ? e->set->n : 1, sizeof(*e->defs));
    e->changes = calloc(ENG_MAX_CHANGE_SERVICES, sizeof(*e->changes));
    if (!e->defs || !e->changes ||
        slo_ctr_init(&e->ctr, (size_t)(e->cfg.max_series > 0 ? e->cfg.max_series : 65536) * 4 /
                                  3) != MT_OK) {
        return MT_ENOMEM;
    }
    e->ndefs = e->set->n;
    for (size_t i = 0; i < e->ndefs; i++) {
        def_t *d = &e->defs[i];
        d->spec = &e->set->slos[i];
        params_from_spec(e, d->spec, &d->p);
        const slo_sli_t *sli = &d->spec->sli;
        d->counts_bad = sli->kind == SLO_SLI_SPANS || sli->kind == SLO_SLI_LOGS ||
                        (sli->kind == SLO_SLI_RATIO && sli->has_bad);
        e->signals |= sli->kind == SLO_SLI_SPANS  ? SIG_BIT(MT_SIG_TRACES)
                      : sli->kind == SLO_SLI_LOGS ? SIG_BIT(MT_SIG_LOGS)
                                                  : SIG_BIT(MT_SIG_METRICS);
        if (!d->spec->ngroup_by && !eng_rec_new(e, d, d->spec->id, NULL)) {
            return MT_ENOMEM;
        }
    }
    return MT_OK;
}

slo_engine_t *slo_engine_load(const cfg_node_t *node, const char *config_path, cfg_ctx_t *c)
{
    slo_engine_t *e = calloc(1, sizeof(*e));
    if (!e) {
        cfg_error(c, node->line, "slo", "out of memory");
        return NULL;
    }
    size_t nerr0 = c->nerr;
    if (node->kind != CFG_NODE_MAP) {
        cfg_error(c, node->line, "slo", "must be a map");
        free(e);
        return NULL;
    }
    cfg_apply(c, eng_fields, MT_ARRAY_LEN(eng_fields), node, "slo", &e->cfg);
    if (e->cfg.interval_ms <= 0 && c->nerr == nerr0) {
        cfg_error_key(c, node, "slo", "evaluation_interval", "must be positive");
    }
    if (c->nerr == nerr0) {
        e->notifiers = slo_notifiers_load(e->cfg.notifiers, "slo.notifiers", c);
    }
    if (c->nerr == nerr0) {
        e->routes =
            slo_route_load(e->cfg.routes, e->cfg.inhibit, e->notifiers, e->cfg.group_wait_ms,
                           e->cfg.group_interval_ms, e->cfg.repeat_interval_ms, c);
        for (size_t i = 0; i < slo_notifiers_count(e->notifiers) && i < SLO_ROUTE_NOTIFIERS; i++) {
            if (slo_notifiers_type(e->notifiers, i) == SLO_NT_ALERTMANAGER) {
                e->am_notifiers |= 1ull << i;
            }
        }
    }
    if (c->nerr == nerr0 && e->cfg.specs.n) {
        char *dup = strdup(config_path ? config_path : ".");
        const char *base = dup ? dirname(dup) : ".";
        slo_specs_load((const char *const *)e->cfg.specs.items, e->cfg.specs.n, base,
                       e->cfg.interval_ms, c, &e->set);
        free(dup);
    } else if (c->nerr == nerr0) {
        cfg_error_key(c, node, "slo", "specs", "lists no spec file");
    }
    if (c->nerr != nerr0 || !e->set) {
        if (c->nerr == nerr0) {
            cfg_error(c, node->line, "slo", "cannot load the SLO specs");
        }
        eng_free(e);
        return NULL;
    }
    if (eng_defs_init(e) != MT_OK) {
        cfg_error(c, node->line, "slo", "out of memory");
        eng_free(e);
        return NULL;
    }
    if (slo_notifiers_count(e->notifiers)) {
        e->signals |= SIG_BIT(MT_SIG_LOGS); /* change events for the notices */
    }
    return e;
}

/* ---- state ------------------------------------------------------------------------------ */

static void on_restore(void *arg, const char *id, const slo_inst_t *in)
{
    slo_engine_t *e = arg;
    for (size_t i = 0; i < e->ndefs; i++) {
        def_t *d = &e->defs[i];
        if (in->store.counts_bad != d->counts_bad) {
            continue;
        }
        slo_inst_t probe;
        slo_inst_init(&probe, &d->p, d->counts_bad);
        if (probe.store.g2_ms != in->store.g2_ms) {
            continue;
        }
        if (!d->spec->ngroup_by) {
            if (!strcmp(d->spec->id, id) && d->n) {
                d->insts[0]->in = *in;
                /* no-data grace restarts with the process: it was not watching meanwhile */
                d->insts[0]->in.first_eval_ms = 0;
                d->insts[0]->saved_gen = in->gen;
                return;
            }
            continue;
        }
        size_t l = strlen(d->spec->id);
        if (!strncmp(id, d->spec->id, l) && id[l] == '{') {
            pending_t *p = calloc(1, sizeof(*p));
            if (p && (p->id = strdup(id)) && (p->in = malloc(sizeof(*in)))) {
                *p->in = *in;
                p->next = e->pending;
                e->pending = p;
            } else if (p) {
                free(p->id);
                free(p);
            }
            return;
        }
    }
}

/* Copies every instance into e->state_buf when one changed since the last save (or `force`).
 * Called with e->mu held: only memcpy happens under it (~27 KB per instance). Returns the
 * image length, 0 = nothing to write. */
static size_t state_snapshot(slo_engine_t *e, int force)
{
    size_t n = 0;
    int dirty = force;
    for (size_t i = 0; i < e->ndefs; i++) {
        n += e->defs[i].n;
        for (size_t j = 0; j < e->defs[i].n && !dirty; j++) {
            dirty = e->defs[i].insts[j]->in.gen != e->defs[i].insts[j]->saved_gen;
        }
    }
    if (!dirty) {
        return 0;
    }
    const char **ids = calloc(n ? n : 1, sizeof(*ids));
    const slo_inst_t **insts = calloc(n ? n : 1, sizeof(*insts));
    size_t len = 0;
    if (ids && insts) {
        size_t k = 0;
        for (size_t i = 0; i < e->ndefs; i++) {
            for (size_t j = 0; j < e->defs[i].n; j++) {
                ids[k] = e->defs[i].insts[j]->id;
                insts[k++] = &e->defs[i].insts[j]->in;
            }
        }
        len = slo_state_image(&e->state_buf, &e->state_cap, ids, insts, n);
    }
    if (len) {
        for (size_t i = 0; i < e->ndefs; i++) {
            for (size_t j = 0; j < e->defs[i].n; j++) {
                e->defs[i].insts[j]->saved_gen = e->defs[i].insts[j]->in.gen;
            }
        }
    } else {
        mt_log(MT_LOG_WARN, "slo: out of memory saving state");
    }
    free(ids);
    free(insts);
    return len;
}

/* Saves the state if something changed: snapshot under e->mu, then checksum, write, fsync
 * and rename without it, so the observer never waits for the disk. e->save_mu keeps the
 * buffer and the file to one writer (the evaluation thread, and the final save at stop). */
void eng_save_state(slo_engine_t *e, int force)
{
    pthread_mutex_lock(&e->save_mu);
    pthread_mutex_lock(&e->mu);
    size_t len = state_snapshot(e, force);
    pthread_mutex_unlock(&e->mu);
    if (len && slo_state_write(e->state_path, e->state_buf, len) != MT_OK) {
        mt_log(MT_LOG_WARN, "slo: cannot save state to %s: %s", e->state_path, strerror(errno));
    }
    pthread_mutex_unlock(&e->save_mu);
}

static int mkdir_p(const char *dir)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

size_t slo_engine_exporters(const slo_engine_t *e, char *const **ids)
{
    *ids = e->cfg.exporters.items;
    return e->cfg.exporters.n;
}

int slo_engine_start(slo_engine_t *e, struct exq *const *queues, size_t nqueues, mt_errbuf_t *eb)
{
    e->counted_from_ns = mt_wall_ns();
    e->c_old = tm_counter("meltp_slo_events_dropped_total", "SLO events not counted, by reason",
                          "reason=\"too_old\"");
    e->c_future = tm_counter("meltp_slo_events_dropped_total", "SLO events not counted, by reason",
                             "reason=\"future\"");
    e->c_groups = tm_counter("meltp_slo_events_dropped_total", "SLO events not counted, by reason",
                             "reason=\"max_groups\"");
    e->c_series = tm_counter("meltp_slo_events_dropped_total", "SLO events not counted, by reason",
                             "reason=\"max_series\"");
    e->c_series_dropped = tm_counter("meltp_slo_series_dropped_total",
                                     "SLO series points not queued (exporter queue full)", "");
    e->queues = calloc(nqueues ? nqueues : 1, sizeof(*e->queues));
    if (!e->queues) {
        mt_failf(eb, "slo: out of memory");
        return MT_ENOMEM;
    }
    for (size_t i = 0; i < nqueues; i++) {
        e->queues[e->nqueues++] = queues[i];
    }
    if (mkdir_p(e->cfg.state_dir) != 0) {
        mt_failf(eb, "slo.state_dir: cannot create %s: %s", e->cfg.state_dir, strerror(errno));
        return MT_EIO;
    }
    snprintf(e->state_path, sizeof(e->state_path), "%s/%s", e->cfg.state_dir, ENG_STATE_FILE);
    int rc = slo_state_load(e->state_path, on_restore, e);
    if (rc == MT_EINVAL) {
        mt_log(MT_LOG_WARN,
               "slo: ignoring unreadable state file %s (corrupt or from another "
               "build)",
               e->state_path);
    } else if (rc == MT_OK) {
        mt_log(MT_LOG_INFO, "slo: restored state from %s", e->state_path);
    }
    char sil_path[4200];
    snprintf(sil_path, sizeof(sil_path), "%s/%s", e->cfg.state_dir, SLO_SILENCE_FILE);
    e->silences = slo_silence_create(sil_path);
    if (!e->silences) {
        mt_failf(eb, "slo: out of memory");
        return MT_ENOMEM;
    }
    if (e->notifiers && slo_notifiers_start(e->notifiers, eb) != MT_OK) {
        return MT_ERR;
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->save_mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    if (pthread_create(&e->thr, NULL, eng_eval_main, e) != 0) {
        mt_failf(eb, "slo: cannot start the evaluation thread");
        return MT_ERR;
    }
    e->thread_on = 1;
    if (pipeline_add_observer(eng_observer, e) != MT_OK) {
        mt_failf(eb, "slo: cannot register the pipeline observer");
        return MT_ERR;
    }
    e->observing = 1;
    mt_log(MT_LOG_INFO, "slo: %zu SLOs, evaluated every %lld ms", e->ndefs,
           (long long)e->cfg.interval_ms);
    return MT_OK;
}

void slo_engine_stop_destroy(slo_engine_t *e)
{
    if (!e) {
        return;
    }
    if (e->observing) {
        pipeline_remove_observer(eng_observer, e);
    }
    if (e->thread_on) {
        pthread_mutex_lock(&e->mu);
        e->stopping = 1;
        pthread_cond_broadcast(&e->cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thr, NULL);
        eng_tick(e, eng_wall_ms()); /* final series and notices */
        eng_save_state(e, 0);
        pthread_mutex_destroy(&e->save_mu);
        pthread_mutex_destroy(&e->mu);
        pthread_cond_destroy(&e->cv);
    }
    eng_free(e);
}
