/*
 * prw_decode_load.c - remote-write 1.0 and 2.0 bodies -> the neutral series form (ser_t):
 * protobuf unpacking, label checks (unique, non-empty, UTF-8), RW2 symbol references, samples,
 * native histograms, exemplars and metadata. Part of the prw_decode module.
 */
#include "prw_decode.h"
#include "prw_decode_int.h"
#include "otlp.h"

#include <string.h>

#include "prom_rw1.pb-c.h"
#include "prom_rw2.pb-c.h"

/* ---- labels ------------------------------------------------------------------------------ */

/* Checks one series' labels (unique, non-empty names, UTF-8; messages number them as sent),
 * sorts them by name when the sender did not (as Prometheus does; counted) and picks out the
 * names the conversion needs. */
static int take_labels(ctx_t *c, ser_t *s)
{
    char d[160];
    for (size_t i = 0; i < s->nl; i++) {
        if (strcmp(s->l[i].name, "__name__") == 0) {
            s->name = s->l[i].value;
        }
    }
    for (size_t pass = 0; pass < 2; pass++) {
        /* pass 0 in the order sent (adjacent duplicates are found in the order the wire check
         * reports them), pass 1 sorted: the duplicates sorting brings together */
        if (pass == 1) {
            if (!prw_valid_sort_labels(s->l, s->nl)) {
                break;
            }
            c->st.unsorted++;
        }
        for (size_t i = 0; i < s->nl; i++) {
            const lbl_t *l = &s->l[i];
            if (pass == 0 && !l->name[0]) {
                return prwd_fail(c, "%s: label %zu has an empty name",
                                 prwd_series_desc(c, s, d, sizeof(d)), i);
            }
            if (pass == 0 && !prwd_utf8_valid(l->name)) {
                return prwd_fail(c, "%s: label %zu: name is not valid UTF-8",
                                 prwd_series_desc(c, s, d, sizeof(d)), i);
            }
            if (pass == 0 && !prwd_utf8_valid(l->value)) {
                return prwd_fail(c, "%s: label \"%.80s\": value is not valid UTF-8",
                                 prwd_series_desc(c, s, d, sizeof(d)), l->name);
            }
            if (i > 0 && strcmp(s->l[i - 1].name, l->name) == 0) {
                return prwd_fail(c, "%s: duplicate label name \"%.80s\"",
                                 prwd_series_desc(c, s, d, sizeof(d)), l->name);
            }
        }
    }
    for (size_t i = 0; i < s->nl; i++) {
        const lbl_t *l = &s->l[i];
        if (!l->value[0]) {
            continue;
        }
        if (strcmp(l->name, "job") == 0) {
            s->job = l->value;
        } else if (strcmp(l->name, "instance") == 0) {
            s->instance = l->value;
        } else if (strcmp(l->name, "le") == 0) {
            s->le = l->value;
        } else if (strcmp(l->name, "quantile") == 0) {
            s->quantile = l->value;
        }
    }
    if (!s->name || !s->name[0]) {
        return prwd_fail(c, "timeseries[%zu]: no __name__ label (or an empty one)", s->idx);
    }
    return MT_OK;
}

static int check_exemplar_labels(ctx_t *c, const ser_t *s, const exm_t *x)
{
    char d[160];
    for (size_t i = 0; i < x->nl; i++) {
        if (!x->l[i].name[0] || !prwd_utf8_valid(x->l[i].name) || !prwd_utf8_valid(x->l[i].value)) {
            return prwd_fail(c, "%s: exemplar label %zu: empty name or invalid UTF-8",
                             prwd_series_desc(c, s, d, sizeof(d)), i);
        }
    }
    return MT_OK;
}

/* ---- RW1 / RW2 -> neutral form ------------------------------------------------------------ */

/* The two generated Histogram structs have the same field names; one macro copies either. */
#define COPY_SPANS(c, dst, ndst, src, nsrc)                                  \
    do {                                                                     \
        (ndst) = (nsrc);                                                     \
        (dst) = arena_alloc((c)->a, ((nsrc) ? (nsrc) : 1) * sizeof(span_t)); \
        if (!(dst)) {                                                        \
            return OOM(c);                                                   \
        }                                                                    \
        for (size_t k_ = 0; k_ < (nsrc); k_++) {                             \
            (dst)[k_].off = (src)[k_]->offset;                               \
            (dst)[k_].len = (src)[k_]->length;                               \
        }                                                                    \
    } while (0)

#define COPY_HIST(c, d, h, FLOATCASE, ZFLOATCASE)                                              \
    do {                                                                                       \
        (d)->is_float = (h)->count_case == (FLOATCASE);                                        \
        (d)->count_i = (d)->is_float ? 0 : (h)->count_int;                                     \
        (d)->count_f = (d)->is_float ? (h)->count_float : 0;                                   \
        (d)->sum = (h)->sum;                                                                   \
        (d)->schema = (h)->schema;                                                             \
        (d)->zero_threshold = (h)->zero_threshold;                                             \
        (d)->zc_float = (h)->zero_count_case == (ZFLOATCASE);                                  \
        (d)->zc_i = (d)->zc_float ? 0 : (h)->zero_count_int;                                   \
        (d)->zc_f = (d)->zc_float ? (h)->zero_count_float : 0;                                 \
        COPY_SPANS(c, (d)->pspans, (d)->n_pspans, (h)->positive_spans, (h)->n_positive_spans); \
        COPY_SPANS(c, (d)->nspans, (d)->n_nspans, (h)->negative_spans, (h)->n_negative_spans); \
        (d)->pdeltas = (h)->positive_deltas;                                                   \
        (d)->n_pdeltas = (h)->n_positive_deltas;                                               \
        (d)->ndeltas = (h)->negative_deltas;                                                   \
        (d)->n_ndeltas = (h)->n_negative_deltas;                                               \
        (d)->pcounts = (h)->positive_counts;                                                   \
        (d)->n_pcounts = (h)->n_positive_counts;                                               \
        (d)->ncounts = (h)->negative_counts;                                                   \
        (d)->n_ncounts = (h)->n_negative_counts;                                               \
        (d)->custom = (h)->custom_values;                                                      \
        (d)->n_custom = (h)->n_custom_values;                                                  \
        (d)->ts = (h)->timestamp;                                                              \
    } while (0)

int prwd_load_v1(ctx_t *c, const uint8_t *pb, size_t len)
{
    Prometheus__WriteRequest *wr = (Prometheus__WriteRequest *)protobuf_c_message_unpack(
        &prometheus__write_request__descriptor, arena_pb_allocator(c->a), len, pb);
    if (!wr) {
        mt_errbuf_t why;
        mt_errbuf_clear(&why);
        otlp_wire_explain(&prometheus__write_request__descriptor, pb, len, &why);
        return prwd_fail(c, "invalid remote-write 1.0 protobuf (prometheus.WriteRequest): %s",
                         why.set ? why.msg : "could not decode");
    }
    if (otlp_wire_find_nul(&prometheus__write_request__descriptor, pb, len, c->eb)) {
        return MT_EINVAL; /* protobuf-c would cut the string: "x\0A" and "x\0B" collide */
    }
    for (size_t i = 0; i < wr->n_metadata; i++) {
        Prometheus__MetricMetadata *md = wr->metadata[i];
        if (!prwd_utf8_valid(md->metric_family_name) || !prwd_utf8_valid(md->help) ||
            !prwd_utf8_valid(md->unit)) {
            return prwd_fail(c, "metadata[%zu]: invalid UTF-8", i);
        }
        meta_t *m = arena_alloc(c->a, sizeof(*m));
        void **slot = prwd_map_slot(c->a, &c->meta, md->metric_family_name,
                                    strlen(md->metric_family_name), 1);
        if (!m || !slot) {
            return OOM(c);
        }
        m->type =
            (int)md->type >= T_UNKNOWN && (int)md->type <= T_STATESET ? (int)md->type : T_UNKNOWN;
        m->help = md->help;
        *slot = m;
    }
    c->nser = wr->n_timeseries;
    c->ser = arena_calloc(c->a, (c->nser ? c->nser : 1) * sizeof(ser_t));
    if (!c->ser) {
        return OOM(c);
    }
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        Prometheus__TimeSeries *ts = wr->timeseries[i];
        ser_t *s = &c->ser[i];
        s->idx = i;
        s->mtype = T_NONE;
        s->nl = ts->n_labels;
        s->l = arena_alloc(c->a, (s->nl ? s->nl : 1) * sizeof(lbl_t));
        s->ns = ts->n_samples;
        s->s = arena_alloc(c->a, (s->ns ? s->ns : 1) * sizeof(smp_t));
        s->nh = ts->n_histograms;
        s->h = arena_calloc(c->a, (s->nh ? s->nh : 1) * sizeof(hist_t));
        s->nx = ts->n_exemplars;
        s->x = arena_calloc(c->a, (s->nx ? s->nx : 1) * sizeof(exm_t));
        if (!s->l || !s->s || !s->h || !s->x) {
            return OOM(c);
        }
        for (size_t j = 0; j < s->nl; j++) {
            s->l[j].name = ts->labels[j]->name;
            s->l[j].value = ts->labels[j]->value;
        }
        int rc = take_labels(c, s);
        if (rc != MT_OK) {
            return rc;
        }
        for (size_t j = 0; j < s->ns; j++) {
            s->s[j].v = ts->samples[j]->value;
            s->s[j].ts = ts->samples[j]->timestamp;
            s->s[j].start = 0;
        }
        for (size_t j = 0; j < s->nh; j++) {
            Prometheus__Histogram *h = ts->histograms[j];
            hist_t *d = &s->h[j];
            COPY_HIST(c, d, h, PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT,
                      PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT);
        }
        for (size_t j = 0; j < s->nx; j++) {
            Prometheus__Exemplar *e = ts->exemplars[j];
            exm_t *x = &s->x[j];
            x->v = e->value;
            x->ts = e->timestamp;
            x->nl = e->n_labels;
            x->l = arena_alloc(c->a, (x->nl ? x->nl : 1) * sizeof(lbl_t));
            if (!x->l) {
                return OOM(c);
            }
            for (size_t k = 0; k < x->nl; k++) {
                x->l[k].name = e->labels[k]->name;
                x->l[k].value = e->labels[k]->value;
            }
            if ((rc = check_exemplar_labels(c, s, x)) != MT_OK) {
                return rc;
            }
        }
    }
    return MT_OK;
}

/* Resolves RW2 `labels_refs` pairs into labels. */
static int refs_to_labels(ctx_t *c, const Io__Prometheus__Write__V2__Request *rq,
                          const uint32_t *refs, size_t n, size_t idx, const char *what, lbl_t **out,
                          size_t *nout)
{
    if (n % 2) {
        return prwd_fail(c, "timeseries[%zu]: %s labels_refs has an odd length (%zu)", idx, what,
                         n);
    }
    lbl_t *l = arena_alloc(c->a, (n ? n / 2 : 1) * sizeof(lbl_t));
    if (!l) {
        return OOM(c);
    }
    for (size_t k = 0; k < n; k++) {
        if (refs[k] >= rq->n_symbols) {
            return prwd_fail(c,
                             "timeseries[%zu]: %s labels_refs[%zu] = %u is out of range "
                             "(%zu symbols)",
                             idx, what, k, refs[k], rq->n_symbols);
        }
    }
    for (size_t k = 0; k < n / 2; k++) {
        l[k].name = rq->symbols[refs[2 * k]];
        l[k].value = rq->symbols[refs[2 * k + 1]];
    }
    *out = l;
    *nout = n / 2;
    return MT_OK;
}

int prwd_load_v2(ctx_t *c, const uint8_t *pb, size_t len)
{
    Io__Prometheus__Write__V2__Request *rq =
        (Io__Prometheus__Write__V2__Request *)protobuf_c_message_unpack(
            &io__prometheus__write__v2__request__descriptor, arena_pb_allocator(c->a), len, pb);
    if (!rq) {
        mt_errbuf_t why;
        mt_errbuf_clear(&why);
        otlp_wire_explain(&io__prometheus__write__v2__request__descriptor, pb, len, &why);
        return prwd_fail(c,
                         "invalid remote-write 2.0 protobuf (io.prometheus.write.v2.Request): %s",
                         why.set ? why.msg : "could not decode");
    }
    if (otlp_wire_find_nul(&io__prometheus__write__v2__request__descriptor, pb, len, c->eb)) {
        return MT_EINVAL;
    }
    if (rq->n_symbols > 0 && rq->symbols[0][0] != 0) {
        return prwd_fail(c, "symbols[0] must be the empty string");
    }
    for (size_t i = 0; i < rq->n_symbols; i++) {
        if (!prwd_utf8_valid(rq->symbols[i])) {
            return prwd_fail(c, "symbols[%zu] is not valid UTF-8", i);
        }
    }
    c->nser = rq->n_timeseries;
    c->ser = arena_calloc(c->a, (c->nser ? c->nser : 1) * sizeof(ser_t));
    if (!c->ser) {
        return OOM(c);
    }
    for (size_t i = 0; i < rq->n_timeseries; i++) {
        Io__Prometheus__Write__V2__TimeSeries *ts = rq->timeseries[i];
        ser_t *s = &c->ser[i];
        s->idx = i;
        s->mtype = T_NONE;
        int rc =
            refs_to_labels(c, rq, ts->labels_refs, ts->n_labels_refs, i, "series", &s->l, &s->nl);
        if (rc != MT_OK || (rc = take_labels(c, s)) != MT_OK) {
            return rc;
        }
        if (ts->metadata) {
            Io__Prometheus__Write__V2__Metadata *md = ts->metadata;
            if (md->help_ref >= rq->n_symbols || md->unit_ref >= rq->n_symbols) {
                return prwd_fail(c, "timeseries[%zu]: metadata help_ref/unit_ref out of range", i);
            }
            int t = (int)md->type;
            if (t > T_UNKNOWN && t <= T_STATESET) {
                s->mtype = t;
            }
            s->help = rq->symbols[md->help_ref];
        }
        s->ns = ts->n_samples;
        s->s = arena_alloc(c->a, (s->ns ? s->ns : 1) * sizeof(smp_t));
        s->nh = ts->n_histograms;
        s->h = arena_calloc(c->a, (s->nh ? s->nh : 1) * sizeof(hist_t));
        s->nx = ts->n_exemplars;
        s->x = arena_calloc(c->a, (s->nx ? s->nx : 1) * sizeof(exm_t));
        if (!s->s || !s->h || !s->x) {
            return OOM(c);
        }
        for (size_t j = 0; j < s->ns; j++) {
            s->s[j].v = ts->samples[j]->value;
            s->s[j].ts = ts->samples[j]->timestamp;
            s->s[j].start = ts->samples[j]->start_timestamp;
        }
        for (size_t j = 0; j < s->nh; j++) {
            Io__Prometheus__Write__V2__Histogram *h = ts->histograms[j];
            hist_t *d = &s->h[j];
            COPY_HIST(c, d, h, IO__PROMETHEUS__WRITE__V2__HISTOGRAM__COUNT_COUNT_FLOAT,
                      IO__PROMETHEUS__WRITE__V2__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT);
            d->start = h->start_timestamp;
        }
        for (size_t j = 0; j < s->nx; j++) {
            Io__Prometheus__Write__V2__Exemplar *e = ts->exemplars[j];
            exm_t *x = &s->x[j];
            x->v = e->value;
            x->ts = e->timestamp;
            if ((rc = refs_to_labels(c, rq, e->labels_refs, e->n_labels_refs, i, "exemplar", &x->l,
                                     &x->nl)) != MT_OK ||
                (rc = check_exemplar_labels(c, s, x)) != MT_OK) {
                return rc;
            }
        }
    }
    return MT_OK;
}
