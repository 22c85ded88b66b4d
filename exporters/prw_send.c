/*
 * prw_send.c - sending: one in-flight request per shard on a curl multi handle, per-chunk
 * retries and drop accounting, and send() (OTLP metrics -> chunks -> shards). Part of the
 * exporters/prw module (prw.c).
 */
#include "component.h"
#include "otlp.h"
#include "promconv.h"
#include "codec.h"
#include "httpc.h"
#include "prom_rw2.pb-c.h"
#include "prw_decode.h"
#include "pbwire.h"
#include "prw_int.h"

#include <curl/curl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>
#include <time.h>

/* httpc header hook: an RW 2.0 receiver says how much it wrote in X-Prometheus-Remote-Write-*. */
static void on_header(httpc_resp_t *r, const char *p, size_t len)
{
    shard_t *sh = r->user;
    if (len > 29 && strncasecmp(p, "X-Prometheus-Remote-Write-", 26) == 0) {
        sh->written_hdrs = 1;
    }
}

void *prw_worker_init(exporter_t *ex)
{
    (void)ex;
    prw_worker_t *w = calloc(1, sizeof(*w));
    if (!w) {
        return NULL;
    }
    w->multi = curl_multi_init();
    for (int i = 0; i < 64; i++) {
        w->shards[i].easy = NULL;
    }
    return w;
}

void prw_worker_fini(exporter_t *ex, void *ws)
{
    (void)ex;
    prw_worker_t *w = ws;
    if (!w) {
        return;
    }
    for (int i = 0; i < 64; i++) {
        if (w->shards[i].easy) {
            curl_easy_cleanup(w->shards[i].easy);
        }
        free(w->shards[i].chunks);
        curl_slist_free_all(w->shards[i].req_hdrs);
        httpc_resp_free(&w->shards[i].resp);
    }
    curl_multi_cleanup(w->multi);
    free(w);
}

static void start_chunk(exporter_t *ex, prw_worker_t *w, shard_t *sh)
{
    prw_cfg_t *cfg = ex->cfg;
    prw_state_t *st = ex->state;
    chunk_t *ch = &sh->chunks[sh->next];
    if (!sh->easy) {
        sh->easy = curl_easy_init();
    }
    CURL *c = sh->easy;
    sh->resp.max = 511; /* enough for the log line's %.300s */
    sh->resp.on_header = on_header;
    sh->resp.user = sh;
    httpc_resp_reset(&sh->resp);
    sh->written_hdrs = 0;
    curl_easy_setopt(c, CURLOPT_URL, cfg->endpoint);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)ch->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)ch->len);
    curl_slist_free_all(sh->req_hdrs); /* the previous request's */
    sh->req_hdrs = httpc_request_headers(st->hdrs[ch->v2], NULL, ex->auth);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, sh->req_hdrs ? sh->req_hdrs : st->hdrs[ch->v2]);
    curl_easy_setopt(c, CURLOPT_PRIVATE, sh);
    httpc_setup(c, &sh->resp,
                &(httpc_opts_t){.timeout_ms = (long)cfg->common.timeout,
                                .tls = &cfg->tls,
                                .url = cfg->endpoint});
    curl_multi_add_handle(w->multi, c);
    sh->busy = 1;
    tm_add(st->c_requests, 1);
}

static void chunk_done(shard_t *sh)
{
    free(sh->chunks[sh->next].body);
    sh->chunks[sh->next].body = NULL;
    sh->next++;
    sh->first_fail_ns = 0;
    sh->retry_at_ns = 0;
}

/* Sends every chunk of every shard, adding what was delivered and dropped to the counts.
 * Returns 1 when it gave up to a reload (exporter_t.yield_send) with nothing delivered,
 * nothing dropped and nothing in flight: the caller returns MT_ERETRY and the queue hands the
 * batch to its successor whole; else 0. */
int prw_send_all(exporter_t *ex, prw_worker_t *w, int nshards, send_result_t *res,
                 uint64_t *ok_samples, uint64_t *failed_samples)
{
    prw_cfg_t *cfg = ex->cfg;
    prw_state_t *st = ex->state;
    exporter_common_t *cc = &cfg->common;
    for (;;) {
        uint64_t now = mt_now_ns();
        int pending = 0;
        uint64_t next_wake = 0;
        for (int i = 0; i < nshards; i++) {
            shard_t *sh = &w->shards[i];
            if (sh->next >= sh->n) {
                continue;
            }
            pending = 1;
            if (sh->busy) {
                continue;
            }
            if (sh->retry_at_ns && sh->retry_at_ns > now) {
                if (!next_wake || sh->retry_at_ns < next_wake) {
                    next_wake = sh->retry_at_ns;
                }
                continue;
            }
            start_chunk(ex, w, sh);
        }
        if (!pending) {
            return 0;
        }
        if (atomic_load(&ex->yield_send) && *ok_samples == 0 && *failed_samples == 0) {
            int busy = 0;
            for (int i = 0; i < nshards; i++) {
                busy |= w->shards[i].busy;
            }
            if (!busy) {
                snprintf(res->msg, sizeof(res->msg), "%s: handed over to a reload's successor",
                         cfg->endpoint);
                return 1;
            }
        }
        int running = 0;
        curl_multi_perform(w->multi, &running);
        int timeout_ms = 100;
        if (next_wake) {
            int64_t d = (int64_t)(next_wake - now) / 1000000;
            timeout_ms = d < 1 ? 1 : d < 100 ? (int)d : 100;
        }
        curl_multi_poll(w->multi, NULL, 0, timeout_ms, NULL);
        curl_multi_perform(w->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(w->multi, &left))) {
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            shard_t *sh = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&sh);
            CURLcode cr = msg->data.result;
            curl_multi_remove_handle(w->multi, msg->easy_handle);
            sh->busy = 0;
            chunk_t *ch = &sh->chunks[sh->next];
            long code = 0;
            if (cr == CURLE_OK) {
                curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            }
            int retry = 0;
            const char *reason = NULL;
            if (cr == CURLE_OK && code >= 200 && code < 300) {
                if (ch->v2 && !sh->written_hdrs) {
                    /* a 1.x receiver decoded our 2.0 message as an empty 1.0 one: treat as 415 */
                    code = 415;
                } else {
                    tm_add(st->c_samples, ch->samples);
                    tm_add(st->c_histograms, ch->histograms);
                    tm_add(st->c_exemplars, ch->exemplars);
                    *ok_samples += ch->samples + ch->histograms;
                    chunk_done(sh);
                    atomic_store(&ex->failing_since_ns, 0);
                    continue;
                }
            }
            if (code == 415 && ch->v2) {
                /* downgrade this exporter to 1.0; the chunk is rebuilt by the caller next time */
                atomic_store(&st->use_v1, 1);
                mt_log(MT_LOG_WARN, "exporter %s: %s does not take remote-write 2.0; using 1.0",
                       ex->id, cfg->endpoint);
                reason = "rw2_unsupported";
            } else if (cr != CURLE_OK) {
                retry = 1;
                reason = "transport_error";
                snprintf(res->msg, sizeof(res->msg), "%s: %s", cfg->endpoint,
                         curl_easy_strerror(cr));
            } else if (code >= 500 || code == 429) {
                retry = 1;
                reason = "http_retryable";
                snprintf(res->msg, sizeof(res->msg), "%s: HTTP %ld: %.300s", cfg->endpoint, code,
                         httpc_resp_text(&sh->resp));
            } else {
                reason = httpc_status_reason(code, "http_4xx");
                mt_log(MT_LOG_ERROR,
                       "exporter %s: %s answered HTTP %ld, dropping %llu samples: %.300s", ex->id,
                       cfg->endpoint, code, (unsigned long long)(ch->samples + ch->histograms),
                       httpc_resp_text(&sh->resp));
            }
            uint64_t t = mt_now_ns();
            uint64_t zero = 0;
            atomic_compare_exchange_strong(&ex->failing_since_ns, &zero, t);
            if (retry && cc->retry_enabled) {
                if (!sh->first_fail_ns) {
                    sh->first_fail_ns = t;
                    sh->interval_ms = (double)cc->initial_interval;
                }
                uint64_t stop_at = atomic_load(&ex->stop_deadline_ns);
                if (stop_at && t >= stop_at) {
                    reason = "shutdown";
                } else if (cc->max_elapsed_time <= 0 ||
                           t - sh->first_fail_ns <= (uint64_t)cc->max_elapsed_time * 1000000ull) {
                    double jitter =
                        1.0 + cc->randomization_factor * (2.0 * ((double)rand() / RAND_MAX) - 1.0);
                    int64_t wait = (int64_t)(sh->interval_ms * jitter);
                    if (sh->resp.retry_after_s * 1000 > wait) {
                        wait = sh->resp.retry_after_s * 1000;
                    }
                    sh->interval_ms *= cc->multiplier;
                    if (sh->interval_ms > (double)cc->max_interval) {
                        sh->interval_ms = (double)cc->max_interval;
                    }
                    sh->retry_at_ns = t + (uint64_t)wait * 1000000ull;
                    mt_log(MT_LOG_WARN, "exporter %s: %s; retrying in %lld ms", ex->id, res->msg,
                           (long long)wait);
                    continue;
                } else {
                    reason = "retries_exhausted";
                }
            }
            prw_count_drop(st, reason, ch->samples + ch->histograms);
            *failed_samples += ch->samples + ch->histograms;
            chunk_done(sh);
        }
    }
}

/* Frees the chunks a send left unsent (on error) and empties every shard. */
void prw_drop_chunks(prw_worker_t *w, int nshards)
{
    for (int k = 0; k < nshards; k++) {
        shard_t *sh = &w->shards[k];
        for (size_t i = sh->next; i < sh->n; i++) {
            free(sh->chunks[i].body);
        }
        sh->n = sh->next = 0;
    }
}

int prw_send(exporter_t *ex, void *ws, mt_signal_t s, const uint8_t *data, size_t len,
             uint32_t items, send_result_t *res)
{
    (void)items;
    prw_cfg_t *cfg = ex->cfg;
    prw_state_t *st = ex->state;
    prw_worker_t *w = ws;
    if (s != MT_SIG_METRICS || !w || !w->multi) {
        snprintf(res->msg, sizeof(res->msg), "cannot send");
        res->reason = "internal";
        return MT_EPERM;
    }
    if (res->format == MT_FMT_PRW1) {
        return prw_send_native(ex, w, data, len, res);
    }
    arena_t *a = arena_create(len * 8 + 65536, 0);
    if (!a) {
        res->reason = "out_of_memory";
        return MT_ERETRY;
    }
    const Opentelemetry__Proto__Collector__V1__ExportMetricsServiceRequest *req =
        (void *)protobuf_c_message_unpack(otlp_request_desc(s), arena_pb_allocator(a), len, data);
    if (!req) {
        arena_destroy(a);
        snprintf(res->msg, sizeof(res->msg), "undecodable batch");
        res->reason = "decode_error";
        return MT_EINVAL;
    }
    promconv_opts_t o;
    memset(&o, 0, sizeof(o));
    o.add_metric_suffixes = cfg->add_metric_suffixes;
    o.namespace_ = cfg->namespace_;
    o.resource_to_telemetry = cfg->resource_to_telemetry;
    o.promote = &cfg->promote;
    o.scope_labels = cfg->scope_labels;
    o.target_info = cfg->target_info;
    o.external_labels = &cfg->external_labels;
    o.now_ms = (int64_t)(mt_wall_ns() / 1000000ull);
    promconv_out_t out;
    memset(&out, 0, sizeof(out));
    if (promconv_convert(&o, st->dc, req, a, &out) != MT_OK) {
        arena_destroy(a);
        res->reason = "out_of_memory";
        return MT_ERETRY;
    }
    if (out.dropped_points) {
        tm_count_reason("meltp_prw_points_dropped_total",
                        "OTLP data points that have no Prometheus form, by reason.", st->labels,
                        out.last_drop_reason ? out.last_drop_reason : "unconvertible",
                        out.dropped_points);
    }
    /* drop target_info samples that would go back in time for their (job, instance) */
    size_t keep = 0;
    for (size_t i = 0; i < out.n_series; i++) {
        Prometheus__TimeSeries *ts = out.series[i];
        int is_ti = 0;
        for (size_t l = 0; l < ts->n_labels; l++) {
            if (!strcmp(ts->labels[l]->name, "__name__")) {
                is_ti = !strcmp(ts->labels[l]->value, "target_info");
            }
        }
        if (is_ti && ts->n_samples == 1) {
            uint64_t h = prw_series_hash(ts);
            ti_slot_t *slot = &st->ti[h % TI_SLOTS];
            int64_t t = ts->samples[0]->timestamp;
            if (slot->key == h && t <= slot->ts) {
                continue;
            }
            slot->key = h;
            slot->ts = t;
        }
        out.series[keep++] = ts;
    }
    out.n_series = keep;
    int nshards = (int)cfg->shards;
    /* Distribute series to shards by label hash. A target_info series goes into the same
     * shard and request as the first series of its (job, instance), right after it: a
     * receiver (meltp, or anything that maps target_info to resource attributes) then sees
     * the resource attributes together with data of that resource. */
    size_t *counts = calloc((size_t)nshards, sizeof(size_t));
    Prometheus__TimeSeries ***lists = calloc((size_t)nshards, sizeof(*lists));
    int rc = MT_OK;
    if (!counts || !lists) {
        rc = MT_ENOMEM;
        goto out;
    }
    for (int k = 0; k < nshards; k++) {
        lists[k] = arena_alloc(a, (out.n_series + 1) * sizeof(Prometheus__TimeSeries *));
        if (!lists[k]) {
            rc = MT_ENOMEM;
            goto out;
        }
    }
    uint8_t *is_ti = arena_calloc(a, out.n_series + 1);
    if (!is_ti) {
        rc = MT_ENOMEM;
        goto out;
    }
    /* one group hash per series (shard, and chunk boundaries: a point's series stay together) */
    uint64_t *gh = arena_alloc(a, (out.n_series + 1) * sizeof(uint64_t));
    uint64_t **hl = arena_alloc(a, (size_t)nshards * sizeof(uint64_t *));
    size_t *follow = arena_alloc(a, (out.n_series + 1) * sizeof(size_t)); /* ti -> series */
    size_t *ti_next = arena_alloc(a, (out.n_series + 1) * sizeof(size_t));
    size_t *ti_head = arena_alloc(a, (out.n_series + 1) * sizeof(size_t));
    if (!gh || !hl || !follow || !ti_next || !ti_head) {
        rc = MT_ENOMEM;
        goto out;
    }
    for (int k = 0; k < nshards; k++) {
        hl[k] = arena_alloc(a, (out.n_series + 1) * sizeof(uint64_t));
        if (!hl[k]) {
            rc = MT_ENOMEM;
            goto out;
        }
    }
    const size_t NONE = (size_t)-1;
    size_t nti = 0;
    uint64_t *th = arena_alloc(a, (out.n_series + 1) * sizeof(uint64_t)); /* (job, instance) */
    if (!th) {
        rc = MT_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < out.n_series; i++) {
        gh[i] = prw_group_hash(out.series[i]);
        const char *n = NULL, *job = "", *inst = "";
        const Prometheus__TimeSeries *ts = out.series[i];
        for (size_t l = 0; l < ts->n_labels; l++) {
            const char *ln = ts->labels[l]->name;
            if (!strcmp(ln, "__name__")) {
                n = ts->labels[l]->value;
            } else if (!strcmp(ln, "job")) {
                job = ts->labels[l]->value;
            } else if (!strcmp(ln, "instance")) {
                inst = ts->labels[l]->value;
            }
        }
        is_ti[i] = n && !strcmp(n, "target_info");
        nti += is_ti[i];
        th[i] =
            mt_hash_bytes(mt_hash_bytes(MT_FNV_BASIS, job, strlen(job)) ^ 0xff, inst, strlen(inst));
        ti_head[i] = NONE;
    }
    /* each target_info follows the first series of its (job, instance); O(targets x series) */
    for (size_t j = 0; j < out.n_series; j++) {
        follow[j] = NONE;
        if (!nti || !is_ti[j]) {
            continue;
        }
        for (size_t i = 0; i < out.n_series; i++) {
            if (!is_ti[i] && th[i] == th[j] && prw_same_target(out.series[i], out.series[j])) {
                follow[j] = i;
                ti_next[j] = ti_head[i];
                ti_head[i] = j;
                break;
            }
        }
    }
    for (size_t i = 0; i < out.n_series; i++) {
        if (is_ti[i] && follow[i] != NONE) {
            continue; /* placed right after its series below */
        }
        int k = (int)(gh[i] % (uint64_t)nshards);
        hl[k][counts[k]] = gh[i];
        lists[k][counts[k]++] = out.series[i];
        for (size_t j = ti_head[i]; j != NONE; j = ti_next[j]) {
            hl[k][counts[k]] = gh[j];
            lists[k][counts[k]++] = out.series[j];
        }
    }
    int v2 = !atomic_load(&st->use_v1);
    for (int k = 0; k < nshards; k++) {
        shard_t *sh = &w->shards[k];
        sh->n = sh->next = 0;
        sh->retry_at_ns = sh->first_fail_ns = 0;
        int meta = !v2 && k == 0 && cfg->send_metadata && out.n_metadata > 0;
        if (counts[k] || meta) {
            rc = prw_build_chunks(cfg, v2, lists[k], hl[k], counts[k], &out, meta, a, &sh->chunks,
                                  &sh->n, &sh->cap);
            if (rc != MT_OK) {
                goto out;
            }
        }
    }
    uint64_t ok = 0, failed = 0;
    if (prw_send_all(ex, w, nshards, res, &ok, &failed)) {
        rc = MT_ERETRY;
        goto out;
    }
    if (v2 && atomic_load(&st->use_v1)) {
        /* the server refused 2.0: send the same batch again as 1.0 (nothing was written) */
        for (int k = 0; k < nshards; k++) {
            shard_t *sh = &w->shards[k];
            sh->n = sh->next = 0;
            int meta = k == 0 && cfg->send_metadata && out.n_metadata > 0;
            if (counts[k] || meta) {
                rc = prw_build_chunks(cfg, 0, lists[k], hl[k], counts[k], &out, meta, a,
                                      &sh->chunks, &sh->n, &sh->cap);
                if (rc != MT_OK) {
                    goto out;
                }
            }
        }
        ok = failed = 0;
        if (prw_send_all(ex, w, nshards, res, &ok, &failed)) {
            rc = MT_ERETRY;
            goto out;
        }
    }
    if (failed && !ok) {
        rc = MT_EPERM;
        res->reason = "all_samples_failed";
    }
out:
    prw_drop_chunks(w, nshards);
    free(counts);
    free(lists);
    arena_destroy(a);
    if (rc == MT_ENOMEM) {
        res->reason = "out_of_memory";
        return MT_ERETRY;
    }
    return rc;
}
