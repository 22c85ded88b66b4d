/*
 * engine_int.h - PRIVATE to the slo/engine module (engine.c: configuration, loading, state
 * save/restore, start and stop; engine_observe.c: the pipeline observer and the instances;
 * engine_eval.c: the evaluation loop and SLO series; engine_notify.c: routes, inhibition,
 * silences and notices; engine_api.c:
 * GET /api/v1/slos and `meltp slo simulate`). The engine struct, its records and the functions
 * the parts share (prefix eng_). Other modules use slo.h and must not include this header.
 */
#ifndef MELTP_SLO_ENGINE_INT_H
#define MELTP_SLO_ENGINE_INT_H

#include "slo.h"
#include "model.h"
#include "eval.h"
#include "notify.h"
#include "route.h"
#include "silence.h"
#include "component.h"
#include "otlp.h"
#include "telemetry.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef Opentelemetry__Proto__Collector__V1__ExportTraceServiceRequest trace_req_t;
typedef Opentelemetry__Proto__Collector__V1__ExportLogsServiceRequest logs_req_t;
typedef Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest metrics_req_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue anyv_t;
typedef Opentelemetry__Proto__Resource__V1__Resource resource_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint ndp_t;

#define ENG_MAX_CHANGE_SERVICES 256  /* services whose change events we remember */
#define ENG_STATE_EVERY         6    /* save state every N evaluations (and at stop) ... */
#define ENG_STATE_PER_EVERY     1000 /* ... times one per started thousand instances */
#define ENG_MAX_ZONES           64   /* distinct calendar time zones */
#define ENG_STATE_FILE          "slo-state.bin"

/* ---- configuration ---------------------------------------------------------------------- */

typedef struct {
    cfg_strlist_t specs;
    int64_t interval_ms;
    char *state_dir;
    cfg_strlist_t exporters;
    const cfg_node_t *notifiers;
    int64_t group_wait_ms;
    int64_t group_interval_ms;
    int64_t repeat_interval_ms;
    int64_t escalation_wait_ms;
    const cfg_node_t *routes;
    const cfg_node_t *inhibit;
    char *external_url;
    int64_t max_series;
} eng_cfg_t;

/* ---- engine state ----------------------------------------------------------------------- */

/* The notices of one SLO instance on one route (Alertmanager's aggregation group): only the
 * most severe firing tier routed here that is neither silenced nor inhibited is notified. */
typedef struct {
    int notified_tier; /* tier last notified, -1 = none */
    int muted;         /* firing, but every firing tier is silenced or inhibited */
    int64_t first_fire_ms;
    int64_t last_sent_ms;
    double budget_at_fire;
} route_state_t;

typedef struct inst_rec {
    char *id;     /* spec id, or id{k="v",...} for a group */
    char **gvals; /* spec->ngroup_by values (grouped SLOs) */
    route_state_t rs[SLO_ROUTES_MAX];
    uint32_t tier_routes[SLO_EV_MAX_TIERS]; /* routes of each tier's alert (labels are fixed) */
    uint32_t nodata_routes;
    int routed;                           /* tier_routes computed */
    int64_t am_sent_ms[SLO_EV_MAX_TIERS]; /* alertmanager: last post of a firing tier, 0 = none */
    int64_t am_start_ms[SLO_EV_MAX_TIERS];
    int best;               /* this evaluation: most severe firing tier, -1 */
    slo_result_t last;      /* this evaluation's result (for the notices) */
    int64_t nodata_sent_ms; /* last no-data alert notice, 0 = none outstanding */
    uint64_t saved_gen;     /* in.gen at the last state save */
    uint64_t cum[3];        /* good, bad, total since start (meltp_slo_events_total) */
    char traces[SLO_MSG_MAX_TRACES][33];
    int ntraces, tpos;
    slo_inst_t in; /* large: last */
} inst_rec_t;

typedef struct {
    const slo_spec_t *spec;
    slo_ev_params_t p;
    int counts_bad;
    inst_rec_t **insts;
    size_t n, cap;
    uint64_t groups_dropped;
} def_t;

typedef struct {
    char service[128];
    int n, pos;
    struct {
        char name[64];
        char detail[192];
        int64_t t_ms;
    } ev[SLO_MSG_MAX_CHANGES];
} changes_t;

typedef struct pending {
    char *id;
    slo_inst_t *in;
    struct pending *next;
} pending_t;

struct slo_engine {
    eng_cfg_t cfg;
    slo_set_t *set;
    def_t *defs;
    size_t ndefs;
    unsigned signals;
    slo_notifiers_t *notifiers;
    slo_routes_t *routes;
    uint64_t am_notifiers; /* bit i: notifier i is type alertmanager */
    slo_silences_t *silences;
    struct exq **queues;
    size_t nqueues;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thr;
    int thread_on, stopping, observing;
    slo_ctr_t ctr;
    uint64_t counted_from_ns;
    changes_t *changes;
    size_t nchanges;
    pending_t *pending;
    char state_path[4096];
    uint64_t ticks;
    unsigned char *state_buf; /* reusable state image (slo_state_image) */
    size_t state_cap;
    pthread_mutex_t save_mu; /* one writer of the state file at a time */
    struct {
        char *name;
        slo_tz_t *tz;
    } zones[ENG_MAX_ZONES];
    size_t nzones;
    tm_counter_t *c_old, *c_future, *c_groups, *c_series, *c_series_dropped;
};

/* ---- shared between the parts ----------------------------------------------------------- */

/* engine.c */
int64_t eng_wall_ms(void);
void eng_free(slo_engine_t *e);
int eng_defs_init(slo_engine_t *e);
void eng_save_state(slo_engine_t *e, int force);

/* engine_observe.c */
inst_rec_t *eng_rec_new(slo_engine_t *e, def_t *d, const char *id, char **gvals);
void eng_rec_free(inst_rec_t *r, size_t ng);
void eng_observe_metrics(slo_engine_t *e, const metrics_req_t *req, int64_t now);
void eng_observer(void *arg, mt_signal_t s, const uint8_t *pb, size_t len, uint64_t items,
                  const char *tenant);

/* engine_eval.c */
void eng_tick(slo_engine_t *e, int64_t now);
void *eng_eval_main(void *arg);

/* engine_notify.c */
typedef struct {
    slo_alert_msg_t m;
    uint64_t to; /* bit i: notifier i */
} eng_msg_t;
typedef struct {
    eng_msg_t *v;
    size_t n, cap;
} eng_msgs_t;
/* With e->mu held, after every instance's evaluation (r->best, r->last): routes, inhibits,
 * silences and times every notice due now into ms. */
void eng_notify_collect(slo_engine_t *e, int64_t now, eng_msgs_t *ms);
/* Without the lock: queues every notice of ms to its notifiers and frees ms. */
void eng_notify_send(slo_engine_t *e, eng_msgs_t *ms);
/* Ids of the active silences matching a firing tier of r (at most max into ids); the count. */
size_t eng_silenced_by(slo_engine_t *e, const def_t *d, const inst_rec_t *r, int64_t now,
                       char (*ids)[SLO_SILENCE_ID_LEN], size_t max);
/* The labels matchers see for tier `tier` of r (tier < 0: the no-data alert, whose name is
 * written into nd_name): spec labels, alertname, sloth_id / _service / _slo / _severity,
 * severity, burnrate_tier, the tier's labels, the group's labels. Pointers borrow d and r. */
void eng_alert_labels(const def_t *d, const inst_rec_t *r, int tier, slo_route_labels_t *l,
                      char *nd_name, size_t nd_len);
#endif
