/*
 * kafka.c - the `kafka` exporter: OTLP requests as Kafka messages with librdkafka (the
 * OpenTelemetry Collector's kafkaexporter keys). One idempotent producer per exporter, shared
 * by its queue workers; a poller thread serves delivery reports. A send produces every message
 * of its batch and returns only when Kafka acknowledged (or refused) each one, so a batch
 * leaves the queue only when it is in Kafka: retryable failures make the queue send the batch
 * again, and the worker then produces only the messages Kafka did not take (kx_resuming);
 * permanent ones are dropped and counted. Delivery is at least once (a producer that is
 * replaced, or a restart, may send a message twice). Messages are cut on resource boundaries under max_message_bytes
 * (kafka_split.c); a resource that alone is too big is dropped with reason message_too_large.
 */
#include "component.h"
#include "kafka_int.h"
#include "kafkaconf.h"
#include "otlp.h"
#include "otlp_json.h"

#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <time.h>

/* producer.compression, in the order of its CFG_T_ENUM values */
static const char *const kx_codecs[] = {"none", "gzip", "snappy", "lz4", "zstd"};
typedef enum {
    KX_COMP_NONE = 0,
    KX_COMP_GZIP,
    KX_COMP_SNAPPY,
    KX_COMP_LZ4,
    KX_COMP_ZSTD
} kx_comp_t;

/* Room librdkafka needs around a message's value (key, headers, record overhead) within
 * message.max.bytes. */
#define KX_RECORD_OVERHEAD 4096

typedef struct kafka_cfg {
    exporter_common_t common;
    kafkaconf_t k;
    int part_traces;
    int part_metrics;
    int part_logs;
    char *client_id;
    int64_t required_acks;
    kx_comp_t compression;
    int64_t max_message_bytes;
} kafka_cfg_t;

static const cfg_field_t kafka_fields[] = {
    KAFKACONF_FIELDS(kafka_cfg_t, k),
    {"partition_traces_by_id", CFG_T_BOOL, "false", 0, offsetof(kafka_cfg_t, part_traces), NULL,
     "one message per trace, keyed by the trace id (a trace stays in one partition)"},
    {"partition_metrics_by_resource_attributes", CFG_T_BOOL, "false", 0,
     offsetof(kafka_cfg_t, part_metrics), NULL,
     "one message per resource, keyed by a hash of its attributes"},
    {"partition_logs_by_resource_attributes", CFG_T_BOOL, "false", 0,
     offsetof(kafka_cfg_t, part_logs), NULL,
     "one message per resource, keyed by a hash of its attributes"},
    {"client_id", CFG_T_STRING, "meltp", 0, offsetof(kafka_cfg_t, client_id), NULL,
     "client.id the brokers see"},
    {"producer.required_acks", CFG_T_INT, "-1", 0, offsetof(kafka_cfg_t, required_acks), NULL,
     "-1: all in-sync replicas (idempotent producer); 1: the leader; 0: none (both turn "
     "idempotence off)"},
    {"producer.compression", CFG_T_ENUM, "none", 0, offsetof(kafka_cfg_t, compression),
     "none|gzip|snappy|lz4|zstd", "message compression"},
    {"producer.max_message_bytes", CFG_T_BYTES, "1000000", 0,
     offsetof(kafka_cfg_t, max_message_bytes), NULL,
     "largest message value; bigger requests are split on resource boundaries"},
};

static void kafka_validate(cfg_ctx_t *c, const void *cfgp, const char *path, const cfg_node_t *node)
{
    const kafka_cfg_t *cfg = cfgp;
    kafkaconf_validate(c, &cfg->k, path, node);
    if (cfg->required_acks < -1 || cfg->required_acks > 1) {
        cfg_error_key(c, node, path, "producer.required_acks", "must be -1, 0 or 1");
    }
    if (cfg->max_message_bytes < 1024 || cfg->max_message_bytes > 1000000000) {
        cfg_error_key(c, node, path, "producer.max_message_bytes", "must be 1KiB..1GB");
    }
}

/* One librdkafka producer. The exporter's current one is replaced when librdkafka reports a
 * fatal error (the idempotent producer cannot go on); a send in flight keeps the old one alive
 * by its reference and polls it itself, as the poller thread only serves the current one. */
typedef struct kx_prod {
    _Atomic int refs;
    _Atomic int retired;
    rd_kafka_t *rk;
    rd_kafka_topic_t *topic[MT_SIG_COUNT];
} kx_prod_t;

typedef struct kx_state {
    kafkaconf_who_t who; /* first: how librdkafka's log lines name the exporter */
    const char *id;
    exporter_t *ex;
    pthread_mutex_t mu; /* cur, and taking a reference on it */
    kx_prod_t *cur;
    pthread_t poller;
    _Atomic int stop;
    int poller_started;
} kx_state_t;

struct kx_worker;

/* One produced message: what its delivery report needs. */
typedef struct kx_rec {
    struct kx_worker *w;
    const uint8_t *pb; /* the message's protobuf form (to count items if it is refused) */
    size_t pbn;
    size_t idx; /* the message's number in its batch */
} kx_rec_t;

/* One message to produce. */
typedef struct kx_msg {
    const uint8_t *pb, *val;
    size_t pbn, valn;
    const char *key;
    size_t keyn;
} kx_msg_t;

typedef struct kx_worker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t pending;           /* messages without a delivery report yet */
    int retry;                /* some message failed and may succeed later */
    rd_kafka_resp_err_t rerr; /* first retryable error */
    rd_kafka_resp_err_t perr; /* first permanent error */
    uint64_t perm_items;      /* items of permanently refused messages */
    mt_signal_t sig;
    arena_t *a; /* per-trace regrouping, JSON bodies, keys: reset per send */
    kx_vec_t units, ents, msgs, recs, scratch;
    /* What a send that is to be retried leaves behind: the batch (address, length, hash) and
     * which of its messages Kafka took (done: one byte per message), so the queue's retry of
     * the same batch sends only the others. Cutting a batch into messages is deterministic. */
    const uint8_t *resume_data;
    size_t resume_len;
    uint64_t resume_hash;
    kx_vec_t done;
} kx_worker_t;

/* Delivery errors no retry can fix. */
static int kx_permanent(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return 1;
    default:
        return 0;
    }
}

/* Items in a part of a queued batch (a refused message); rare, so it may decode. */
static uint64_t kx_items(mt_signal_t s, const uint8_t *pb, size_t n)
{
    uint64_t items = 0;
    int rc = otlp_scan(s, pb, n, &items);
    if (rc == MT_EUNSUPPORTED) {
        /* only the decoder can count it (duplicated oneofs or singular messages) */
        arena_t *a = arena_create(n * 4 + 4096, 0);
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        ProtobufCMessage *m = a ? otlp_unpack(s, pb, n, a, &eb) : NULL;
        if (!m || otlp_check(s, m, &items, &eb) != MT_OK) {
            items = 0;
        }
        arena_destroy(a);
    } else if (rc != MT_OK) {
        items = 0; /* cannot happen: the queue holds validated requests */
    }
    return items;
}

/* Settles one message of a worker (delivery report, or a produce() that failed). */
static void kx_settle(kx_worker_t *w, const kx_rec_t *r, rd_kafka_resp_err_t err)
{
    uint64_t items = err && kx_permanent(err) ? kx_items(w->sig, r->pb, r->pbn) : 0;
    pthread_mutex_lock(&w->mu);
    if (err && kx_permanent(err)) {
        w->perm_items += items;
        if (!w->perr) {
            w->perr = err;
        }
    } else if (err) {
        w->retry = 1;
        if (!w->rerr) {
            w->rerr = err;
        }
    } else {
        ((uint8_t *)w->done.v)[r->idx] = 1;
    }
    if (--w->pending == 0) {
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

static void kx_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    const kx_rec_t *r = m->_private;
    if (r) {
        kx_settle(r->w, r, m->err);
    }
}

static void kx_prod_unref(kx_prod_t *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1) {
        return;
    }
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        if (p->topic[s]) {
            rd_kafka_topic_destroy(p->topic[s]);
        }
    }
    if (p->rk) {
        /* every send waited for its reports: nothing of ours is left in the producer */
        rd_kafka_flush(p->rk, 1000);
        rd_kafka_destroy(p->rk);
    }
    free(p);
}

/* A new producer for the exporter (refs = 1), or NULL with the reason in eb. */
static kx_prod_t *kx_prod_new(kx_state_t *st, mt_errbuf_t *eb)
{
    kafka_cfg_t *cfg = st->ex->cfg;
    kx_prod_t *p = calloc(1, sizeof(*p));
    rd_kafka_conf_t *conf = p ? kafkaconf_create(&cfg->k, eb) : NULL;
    if (!conf) {
        if (!p) {
            mt_failf(eb, "out of memory");
        }
        free(p);
        return NULL;
    }
    atomic_init(&p->refs, 1);
    char acks[8], maxb[24], tmo[24];
    snprintf(acks, sizeof(acks), "%lld", (long long)cfg->required_acks);
    snprintf(maxb, sizeof(maxb), "%lld", (long long)cfg->max_message_bytes + KX_RECORD_OVERHEAD);
    /* one attempt of the queue's = librdkafka's own retries within `timeout` */
    snprintf(tmo, sizeof(tmo), "%lld",
             (long long)(cfg->common.timeout > 0 ? cfg->common.timeout : 30000));
    int rc = kafkaconf_set(conf, "client.id", cfg->client_id, eb);
    rc |= kafkaconf_set(conf, "acks", acks, eb);
    rc |=
        kafkaconf_set(conf, "enable.idempotence", cfg->required_acks == -1 ? "true" : "false", eb);
    rc |= kafkaconf_set(conf, "compression.codec", kx_codecs[cfg->compression], eb);
    rc |= kafkaconf_set(conf, "message.max.bytes", maxb, eb);
    rc |= kafkaconf_set(conf, "message.timeout.ms", tmo, eb);
    rc |= kafkaconf_set(conf, "linger.ms", "5", eb);
    if (rc) {
        rd_kafka_conf_destroy(conf);
        free(p);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, st);
    rd_kafka_conf_set_dr_msg_cb(conf, kx_dr_cb);
    char err[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!p->rk) {
        rd_kafka_conf_destroy(conf);
        mt_failf(eb, "kafka producer: %s", err);
        free(p);
        return NULL;
    }
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        p->topic[s] = rd_kafka_topic_new(p->rk, kafkaconf_topic(&cfg->k, s), NULL);
        if (!p->topic[s]) {
            mt_failf(eb, "kafka topic %s: %s", kafkaconf_topic(&cfg->k, s),
                     rd_kafka_err2str(rd_kafka_last_error()));
            kx_prod_unref(p);
            return NULL;
        }
    }
    return p;
}

/* The current producer with a reference taken (NULL if there is none). */
static kx_prod_t *kx_prod_get(kx_state_t *st)
{
    pthread_mutex_lock(&st->mu);
    kx_prod_t *p = st->cur;
    if (p) {
        atomic_fetch_add(&p->refs, 1);
    }
    pthread_mutex_unlock(&st->mu);
    return p;
}

/* Replaces p, if it is still the current producer and librdkafka declared it dead. */
static void kx_prod_recover(kx_state_t *st, kx_prod_t *p)
{
    char why[256];
    if (rd_kafka_fatal_error(p->rk, why, sizeof(why)) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        return;
    }
    pthread_mutex_lock(&st->mu);
    if (st->cur == p) {
        mt_errbuf_t eb;
        mt_errbuf_clear(&eb);
        kx_prod_t *n = kx_prod_new(st, &eb);
        if (n) {
            atomic_store(&p->retired, 1);
            st->cur = n;
            kx_prod_unref(p); /* the exporter's reference; senders hold their own */
            mt_log(MT_LOG_ERROR, "exporter %s: kafka producer failed (%s); started a new one",
                   st->id, why);
        } else {
            MT_LOG_EVERY(10, MT_LOG_ERROR, "exporter %s: kafka producer failed (%s): %s", st->id,
                         why, eb.msg);
        }
    }
    pthread_mutex_unlock(&st->mu);
}

static void *kx_poller(void *arg)
{
    kx_state_t *st = arg;
    while (!atomic_load(&st->stop)) {
        kx_prod_t *p = kx_prod_get(st);
        if (p) {
            rd_kafka_poll(p->rk, 100);
            kx_prod_unref(p);
        }
    }
    return NULL;
}

static void kafka_destroy(exporter_t *ex)
{
    kx_state_t *st = ex->state;
    if (!st) {
        return;
    }
    if (st->poller_started) {
        atomic_store(&st->stop, 1);
        pthread_join(st->poller, NULL);
    }
    kx_prod_unref(st->cur);
    pthread_mutex_destroy(&st->mu);
    free(st);
    ex->state = NULL;
}

static int kafka_create(exporter_t *ex, mt_errbuf_t *eb)
{
    kx_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    st->id = ex->id;
    snprintf(st->who.name, sizeof(st->who.name), "exporter %s", ex->id);
    st->ex = ex;
    pthread_mutex_init(&st->mu, NULL);
    ex->state = st;
    st->cur = kx_prod_new(st, eb);
    if (!st->cur) {
        kafka_destroy(ex);
        return MT_EINVAL;
    }
    if (pthread_create(&st->poller, NULL, kx_poller, st) != 0) {
        mt_failf(eb, "cannot start the kafka poller thread");
        kafka_destroy(ex);
        return MT_ERR;
    }
    st->poller_started = 1;
    return MT_OK;
}

static void *kafka_worker_init(exporter_t *ex)
{
    (void)ex;
    kx_worker_t *w = calloc(1, sizeof(*w));
    if (!w) {
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->a = arena_create(64 * 1024, 0);
    if (!w->a) {
        free(w);
        return NULL;
    }
    return w;
}

static void kafka_worker_fini(exporter_t *ex, void *ws)
{
    (void)ex;
    kx_worker_t *w = ws;
    if (!w) {
        return;
    }
    arena_destroy(w->a);
    kx_vec_free(&w->units);
    kx_vec_free(&w->ents);
    kx_vec_free(&w->msgs);
    kx_vec_free(&w->recs);
    kx_vec_free(&w->scratch);
    kx_vec_free(&w->done);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* Queues one message [lo, hi) of entries ents for production. */
static int add_msg(kx_worker_t *w, const kx_slice_t *e, size_t lo, size_t hi, const kx_unit_t *u,
                   int json)
{
    const uint8_t *pb = e[lo].p;
    size_t pbn = (size_t)(e[hi - 1].p + e[hi - 1].n - pb);
    kx_msg_t m = {pb, pb, pbn, pbn, u->key, u->keyn};
    if (json) {
        ProtobufCMessage *req =
            protobuf_c_message_unpack(otlp_request_desc(w->sig), arena_pb_allocator(w->a), pbn, pb);
        size_t jl = 0;
        char *j = req ? otlp_json_encode(req, &jl) : NULL;
        if (!j) {
            return MT_EINVAL;
        }
        if (arena_on_release(w->a, free, j) != MT_OK) {
            free(j);
            return MT_ENOMEM;
        }
        m.val = (const uint8_t *)j;
        m.valn = jl;
    }
    if (kx_vec_reserve(&w->msgs, w->msgs.n + 1, sizeof(kx_msg_t)) != MT_OK) {
        return MT_ENOMEM;
    }
    ((kx_msg_t *)w->msgs.v)[w->msgs.n++] = m;
    return MT_OK;
}

/* Cuts entries [lo, hi) of one unit into messages of at most max bytes: greedily for protobuf
 * (sizes are exact), by halving for JSON (its size is known once encoded). A single resource
 * over the limit is dropped: *oversize += its items. */
static int cut(kx_worker_t *w, const kx_slice_t *e, size_t lo, size_t hi, const kx_unit_t *u,
               int json, size_t max, uint64_t *oversize)
{
    if (!json) {
        size_t start = lo, size = 0;
        for (size_t i = lo; i < hi; i++) {
            if (e[i].n > max) {
                if (start < i) {
                    int rc = add_msg(w, e, start, i, u, 0);
                    if (rc != MT_OK) {
                        return rc;
                    }
                }
                *oversize += kx_items(w->sig, e[i].p, e[i].n);
                start = i + 1;
                size = 0;
                continue;
            }
            if (size + e[i].n > max && start < i) {
                int rc = add_msg(w, e, start, i, u, 0);
                if (rc != MT_OK) {
                    return rc;
                }
                start = i;
                size = 0;
            }
            size += e[i].n;
        }
        return start < hi ? add_msg(w, e, start, hi, u, 0) : MT_OK;
    }
    size_t before = w->msgs.n;
    int rc = add_msg(w, e, lo, hi, u, 1);
    if (rc != MT_OK) {
        return rc;
    }
    if (((kx_msg_t *)w->msgs.v)[before].valn <= max) {
        return MT_OK;
    }
    w->msgs.n = before;
    if (hi - lo == 1) {
        *oversize += kx_items(w->sig, e[lo].p, e[lo].n);
        return MT_OK;
    }
    size_t mid = lo + (hi - lo) / 2;
    rc = cut(w, e, lo, mid, u, 1, max, oversize);
    return rc != MT_OK ? rc : cut(w, e, mid, hi, u, 1, max, oversize);
}

/* The units of a request: the whole of it, one per resource, or one per trace. */
static int make_units(kx_worker_t *w, const kafka_cfg_t *cfg, mt_signal_t s, const uint8_t *data,
                      size_t len)
{
    w->units.n = 0;
    if (s == MT_SIG_TRACES && cfg->part_traces) {
        return kx_traces_by_id(data, len, w->a, &w->units);
    }
    if ((s == MT_SIG_METRICS && cfg->part_metrics) || (s == MT_SIG_LOGS && cfg->part_logs)) {
        int rc = kx_entries(data, len, &w->ents);
        if (rc != MT_OK) {
            return rc;
        }
        size_t n = w->ents.n;
        if (kx_vec_reserve(&w->units, n, sizeof(kx_unit_t)) != MT_OK) {
            return MT_ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
            kx_slice_t e = ((kx_slice_t *)w->ents.v)[i];
            char *key = arena_alloc(w->a, 17);
            if (!key) {
                return MT_ENOMEM;
            }
            rc = kx_resource_key(e.p, e.n, &w->scratch, key);
            if (rc != MT_OK) {
                return rc;
            }
            ((kx_unit_t *)w->units.v)[w->units.n++] = (kx_unit_t){e.p, e.n, key, 16};
        }
        return MT_OK;
    }
    if (kx_vec_reserve(&w->units, 1, sizeof(kx_unit_t)) != MT_OK) {
        return MT_ENOMEM;
    }
    ((kx_unit_t *)w->units.v)[w->units.n++] = (kx_unit_t){data, len, NULL, 0};
    return MT_OK;
}

/* Waits for the delivery report of every message produced; past the shutdown deadline the
 * producer's queue is purged (the reports then say so, and the queue counts the batch). */
static void kx_wait(kx_worker_t *w, exporter_t *ex, kx_prod_t *p)
{
    int purged = 0;
    pthread_mutex_lock(&w->mu);
    while (w->pending > 0) {
        if (atomic_load(&p->retired)) {
            /* the poller serves the new producer only */
            pthread_mutex_unlock(&w->mu);
            rd_kafka_poll(p->rk, 100);
            pthread_mutex_lock(&w->mu);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        uint64_t dl = atomic_load(&ex->stop_deadline_ns);
        if (w->pending > 0 && !purged && dl && mt_now_ns() >= dl) {
            purged = 1;
            pthread_mutex_unlock(&w->mu);
            rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            pthread_mutex_lock(&w->mu);
        }
    }
    pthread_mutex_unlock(&w->mu);
}

/* Whether this send retries the batch the worker's last send left unfinished: then the
 * messages Kafka took then are not sent again. Otherwise forgets that batch. */
static int kx_resuming(kx_worker_t *w, const uint8_t *data, size_t len)
{
    int same = w->resume_data == data && w->resume_len == len &&
               w->resume_hash == mt_hash_bytes(0, data, len);
    w->resume_data = NULL;
    return same;
}

static int kafka_send(exporter_t *ex, void *ws, mt_signal_t s, const uint8_t *data, size_t len,
                      uint32_t items, send_result_t *res)
{
    kafka_cfg_t *cfg = ex->cfg;
    kx_state_t *st = ex->state;
    kx_worker_t *w = ws;
    if (!w) {
        snprintf(res->msg, sizeof(res->msg), "no worker state (out of memory)");
        res->reason = "out_of_memory";
        return MT_ERETRY;
    }
    int resume = kx_resuming(w, data, len);
    arena_reset(w->a);
    w->sig = s;
    w->msgs.n = 0;
    int json = cfg->k.encoding == KAFKACONF_ENC_JSON;
    uint64_t oversize = 0;
    int rc = make_units(w, cfg, s, data, len);
    for (size_t i = 0; rc == MT_OK && i < w->units.n; i++) {
        kx_unit_t u = ((kx_unit_t *)w->units.v)[i];
        rc = kx_entries(u.p, u.n, &w->ents);
        if (rc == MT_OK) {
            rc = cut(w, w->ents.v, 0, w->ents.n, &u, json, (size_t)cfg->max_message_bytes,
                     &oversize);
        }
    }
    size_t n = w->msgs.n;
    if (rc == MT_OK) {
        rc = kx_vec_reserve(&w->recs, n, sizeof(kx_rec_t));
    }
    if (rc == MT_OK) {
        rc = kx_vec_reserve(&w->done, n, 1);
    }
    if (rc != MT_OK) {
        snprintf(res->msg, sizeof(res->msg), "cannot cut the batch into messages: %s",
                 mt_strerror(rc));
        res->reason = rc == MT_ENOMEM ? "out_of_memory" : "encode_error";
        return rc == MT_ENOMEM ? MT_ERETRY : MT_EINVAL;
    }
    uint8_t *done = w->done.v;
    if (n && (!resume || w->done.n != n)) {
        memset(done, 0, n);
    }
    w->done.n = n;
    kx_prod_t *p = kx_prod_get(st);
    if (!p) {
        snprintf(res->msg, sizeof(res->msg), "no kafka producer");
        res->reason = "kafka_error";
        return MT_ERETRY;
    }
    w->retry = 0;
    w->rerr = w->perr = RD_KAFKA_RESP_ERR_NO_ERROR;
    w->perm_items = 0;
    w->pending = 0;
    for (size_t i = 0; i < n; i++) {
        w->pending += !done[i];
    }
    const char *tenant = res->tenant && *res->tenant ? res->tenant : NULL;
    for (size_t i = 0; i < n; i++) {
        if (done[i]) {
            continue; /* taken by Kafka on an earlier attempt */
        }
        const kx_msg_t *m = &((kx_msg_t *)w->msgs.v)[i];
        kx_rec_t *r = &((kx_rec_t *)w->recs.v)[i];
        *r = (kx_rec_t){w, m->pb, m->pbn, i};
        rd_kafka_resp_err_t e;
        for (;;) {
            /* no copy: the batch outlives the send, which waits for every report */
            e = tenant ? rd_kafka_producev(p->rk, RD_KAFKA_V_RKT(p->topic[s]),
                                           RD_KAFKA_V_VALUE((void *)m->val, m->valn),
                                           RD_KAFKA_V_KEY(m->key, m->keyn),
                                           RD_KAFKA_V_HEADER("X-Scope-OrgID", tenant, -1),
                                           RD_KAFKA_V_OPAQUE(r), RD_KAFKA_V_END)
                       : rd_kafka_producev(p->rk, RD_KAFKA_V_RKT(p->topic[s]),
                                           RD_KAFKA_V_VALUE((void *)m->val, m->valn),
                                           RD_KAFKA_V_KEY(m->key, m->keyn), RD_KAFKA_V_OPAQUE(r),
                                           RD_KAFKA_V_END);
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                break;
            }
            /* librdkafka's own queue is full: the poller drains it */
            struct timespec ts = {0, 5 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (e) {
            kx_settle(w, r, e);
        }
    }
    kx_wait(w, ex, p);
    kx_prod_recover(st, p);
    kx_prod_unref(p);
    if (w->retry) {
        w->resume_data = data;
        w->resume_len = len;
        w->resume_hash = mt_hash_bytes(0, data, len);
        snprintf(res->msg, sizeof(res->msg), "kafka: %s", rd_kafka_err2str(w->rerr));
        res->reason = "kafka_error";
        return MT_ERETRY;
    }
    uint64_t lost = w->perm_items + oversize;
    if (lost >= items && items > 0) {
        snprintf(res->msg, sizeof(res->msg), "kafka: %s",
                 w->perr ? rd_kafka_err2str(w->perr)
                         : "a resource is larger than producer.max_message_bytes");
        res->reason = w->perr ? "kafka_rejected" : "message_too_large";
        return MT_EPERM;
    }
    if (lost) {
        res->rejected = (int64_t)lost;
        snprintf(res->msg, sizeof(res->msg), "%llu %s refused: %s", (unsigned long long)lost,
                 mt_signal_item_name(s),
                 w->perr ? rd_kafka_err2str(w->perr)
                         : "a resource larger than producer.max_message_bytes");
    }
    return MT_OK;
}

const exporter_ops_t exporter_kafka_ops = {
    .type = "kafka",
    .fields = kafka_fields,
    .nfields = MT_ARRAY_LEN(kafka_fields),
    .cfg_size = sizeof(kafka_cfg_t),
    .signals = SIG_ALL,
    .help = "Kafka exporter (librdkafka; OTLP protobuf or JSON messages, idempotent producer)",
    .validate = kafka_validate,
    .create = kafka_create,
    .worker_init = kafka_worker_init,
    .worker_fini = kafka_worker_fini,
    .send = kafka_send,
    .destroy = kafka_destroy,
};
