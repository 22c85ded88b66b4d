/*
 * kafka.c - the `kafka` receiver: consumes OTLP messages (protobuf or JSON, one
 * Export*ServiceRequest each) from a consumer group with librdkafka and hands them to the
 * pipelines through the same ingest path as OTLP/HTTP (recv_otlp_ingest). One consumer thread
 * per receiver, subscribed to the topic of every signal it is wired to.
 *
 * Delivery: with message_marking.after (default) a message's offset is stored only once every
 * exporter queue of its pipelines took it, and librdkafka commits stored offsets (every second,
 * on rebalance and on close): a crash re-reads, it never skips. Back-pressure: when a queue
 * refuses, the consumer pauses its partitions and offers the same message again with a
 * growing wait, then resumes; nothing is dropped. A message that is not valid OTLP is
 * counted (meltp_receiver_refused_requests_total{reason}), logged with its offset and skipped.
 */
#include "component.h"
#include "kafkaconf.h"
#include "recv.h"

#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <time.h>

/* initial_offset, in the order of its CFG_T_ENUM values */
typedef enum { KR_OFFSET_LATEST = 0, KR_OFFSET_EARLIEST } kr_offset_t;

/* Longest wait between two offers of a message a queue refused. */
#define KR_BACKOFF_MAX_MS 500

typedef struct kafka_rcfg {
    kafkaconf_t k;
    char *group_id;
    char *client_id;
    kr_offset_t initial_offset;
    int mark_after;
    int64_t session_timeout;    /* ms */
    int64_t heartbeat_interval; /* ms */
    int64_t max_fetch_size;     /* bytes */
} kafka_rcfg_t;

static const cfg_field_t kafka_fields[] = {
    KAFKACONF_FIELDS(kafka_rcfg_t, k),
    {"group_id", CFG_T_STRING, "meltp", 0, offsetof(kafka_rcfg_t, group_id), NULL,
     "consumer group: the receivers of one group share the topic's partitions"},
    {"client_id", CFG_T_STRING, "meltp", 0, offsetof(kafka_rcfg_t, client_id), NULL,
     "client.id the brokers see"},
    {"initial_offset", CFG_T_ENUM, "latest", 0, offsetof(kafka_rcfg_t, initial_offset),
     "latest|earliest", "where a group without a committed offset starts"},
    {"message_marking.after", CFG_T_BOOL, "true", 0, offsetof(kafka_rcfg_t, mark_after), NULL,
     "commit a message's offset only once every exporter queue of its pipelines took it "
     "(false: when it is read)"},
    {"session_timeout", CFG_T_DURATION, "10s", 0, offsetof(kafka_rcfg_t, session_timeout), NULL,
     "a member silent this long leaves the group and its partitions move"},
    {"heartbeat_interval", CFG_T_DURATION, "3s", 0, offsetof(kafka_rcfg_t, heartbeat_interval),
     NULL, "group heartbeat period"},
    {"max_fetch_size", CFG_T_BYTES, "1MiB", 0, offsetof(kafka_rcfg_t, max_fetch_size), NULL,
     "most bytes fetched per partition per request (max.partition.fetch.bytes)"},
};

static void kafka_validate(cfg_ctx_t *c, void *cfgp, const char *path, const cfg_node_t *node)
{
    kafka_rcfg_t *cfg = cfgp;
    kafkaconf_validate(c, &cfg->k, path, node);
    if (!cfg->group_id || !cfg->group_id[0]) {
        cfg_error_key(c, node, path, "group_id", "must not be empty");
    }
    if (cfg->session_timeout < 1000) {
        cfg_error_key(c, node, path, "session_timeout", "must be at least 1s");
    }
    if (cfg->heartbeat_interval < 100 || cfg->heartbeat_interval >= cfg->session_timeout) {
        cfg_error_key(c, node, path, "heartbeat_interval",
                      "must be at least 100ms and below session_timeout");
    }
    if (cfg->max_fetch_size < 1024) {
        cfg_error_key(c, node, path, "max_fetch_size", "must be at least 1KiB");
    }
}

typedef struct kr_state {
    kafkaconf_who_t who; /* first: how librdkafka's log lines name the receiver */
    const char *id;
    receiver_t *r;
    rd_kafka_t *rk;
    pthread_t thread;
    int started;
    _Atomic int stop;
    const char *topic[MT_SIG_COUNT]; /* NULL for signals the receiver is not wired to */
    char labels[MT_SIG_COUNT][160];
    recv_counters_t cnt[MT_SIG_COUNT];
    int paused;
    size_t dcap;
} kr_state_t;

static int kr_signal(const kr_state_t *st, const char *topic)
{
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        if (st->topic[s] && strcmp(st->topic[s], topic) == 0) {
            return s;
        }
    }
    return -1;
}

/* Pauses (or resumes) every assigned partition. */
static void kr_pause(kr_state_t *st, int pause)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(st->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts) {
        return;
    }
    if (pause) {
        rd_kafka_pause_partitions(st->rk, parts);
    } else {
        rd_kafka_resume_partitions(st->rk, parts);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    st->paused = pause;
}

/* Eager rebalancing (the default assignors): takes what the group leader assigned, paused
 * when the consumer is holding a refused message, and says so in the log. */
static void kr_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    kr_state_t *st = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_assign(rk, parts);
        if (st->paused) {
            rd_kafka_pause_partitions(rk, parts);
        }
        mt_log(MT_LOG_INFO, "receiver %s: kafka assignment: %d partitions", st->id, parts->cnt);
    } else {
        /* librdkafka commits the stored offsets of revoked partitions (enable.auto.commit) */
        rd_kafka_assign(rk, NULL);
        mt_log(MT_LOG_INFO, "receiver %s: kafka assignment: 0 partitions (%s)", st->id,
               rd_kafka_err2name(err));
    }
}

/* A message read while paused (fetched before the pause, or from a partition assigned since):
 * its partition is paused and rewound to it, so it is read again after the resume. */
static void kr_put_back(kr_state_t *st, rd_kafka_message_t *m)
{
    rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
    if (one) {
        rd_kafka_topic_partition_list_add(one, rd_kafka_topic_name(m->rkt), m->partition)->offset =
            m->offset;
        rd_kafka_pause_partitions(st->rk, one);
        rd_kafka_error_t *e = rd_kafka_seek_partitions(st->rk, one, 2000);
        if (e) {
            mt_log(MT_LOG_WARN, "receiver %s: cannot rewind %s[%d] to %lld: %s", st->id,
                   rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset,
                   rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
        rd_kafka_topic_partition_list_destroy(one);
    }
    rd_kafka_message_destroy(m);
}

typedef enum { KR_TAKEN = 0, KR_SKIPPED, KR_REFUSED } kr_outcome_t;

/* Offers one message to the pipelines. */
static kr_outcome_t kr_offer(kr_state_t *st, const rd_kafka_message_t *m, mt_signal_t sig)
{
    kafka_rcfg_t *cfg = st->r->cfg;
    recv_counters_t *cnt = &st->cnt[sig];
    char tenant[MT_TENANT_MAX + 1] = "";
    rd_kafka_headers_t *hdrs = NULL;
    const void *hv = NULL;
    size_t hn = 0;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(hdrs, "X-Scope-OrgID", &hv, &hn) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        hv) {
        char org[MT_TENANT_MAX + 2];
        size_t n = hn < sizeof(org) - 1 ? hn : sizeof(org) - 1;
        memcpy(org, hv, n);
        org[n] = 0;
        if (hn > MT_TENANT_MAX || memchr(hv, 0, hn) ||
            recv_tenant(org, NULL, tenant) == RECV_TENANT_BAD) {
            recv_count(cnt, 400, "bad_tenant", 0, false);
            MT_LOG_EVERY(5, MT_LOG_WARN, "receiver %s: %s[%d] offset %lld skipped: %s", st->id,
                         rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset,
                         RECV_TENANT_ERR);
            return KR_SKIPPED;
        }
    }
    tm_add(cnt->bytes, m->len);
    arena_t *a = recv_arena(st->dcap);
    if (!a) {
        return KR_REFUSED;
    }
    recv_ingest_t in;
    recv_otlp_ingest(st->r, cnt, sig, cfg->k.encoding == KAFKACONF_ENC_JSON,
                     m->payload ? m->payload : (const uint8_t *)"", m->len, tenant, a, st->dcap,
                     &in);
    recv_arena_done(a);
    recv_count(cnt, in.status, in.reason, 0, false);
    if (in.status == 200) {
        return KR_TAKEN;
    }
    if (in.status == 429 || in.status == 503 || in.status == 500) {
        return KR_REFUSED; /* full queues or memory: offered again, never dropped */
    }
    /* not OTLP, refused by a processor, or larger than a queue can ever hold: skipped */
    MT_LOG_EVERY(5, MT_LOG_WARN, "receiver %s: %s[%d] offset %lld skipped (%s): %s", st->id,
                 rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset, in.reason,
                 in.msg);
    return KR_SKIPPED;
}

static void kr_mark(kr_state_t *st, const rd_kafka_message_t *m)
{
    kafka_rcfg_t *cfg = st->r->cfg;
    if (cfg->mark_after) {
        /* librdkafka commits offset + 1 of what is stored */
        rd_kafka_offset_store(m->rkt, m->partition, m->offset);
    }
}

static void kr_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Holds a refused message: partitions paused, offered again with a growing wait while the
 * consumer keeps serving the group; resumes once it is taken (or skipped), or at shutdown. */
static void kr_hold(kr_state_t *st, rd_kafka_message_t *m, mt_signal_t sig)
{
    kr_pause(st, 1);
    int wait = 10;
    while (!atomic_load(&st->stop)) {
        rd_kafka_message_t *o = rd_kafka_consumer_poll(st->rk, 0);
        if (o && !o->err) {
            kr_put_back(st, o);
        } else if (o) {
            rd_kafka_message_destroy(o);
        }
        kr_sleep_ms(wait);
        kr_outcome_t out = kr_offer(st, m, sig);
        if (out != KR_REFUSED) {
            kr_mark(st, m);
            break;
        }
        wait = wait * 2 > KR_BACKOFF_MAX_MS ? KR_BACKOFF_MAX_MS : wait * 2;
    }
    rd_kafka_message_destroy(m);
    if (!atomic_load(&st->stop)) {
        kr_pause(st, 0);
    }
}

static void *kr_main(void *arg)
{
    kr_state_t *st = arg;
    while (!atomic_load(&st->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(st->rk, 100);
        if (!m) {
            continue;
        }
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                MT_LOG_EVERY(5, MT_LOG_WARN, "receiver %s: kafka: %s", st->id,
                             rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        int sig = kr_signal(st, rd_kafka_topic_name(m->rkt));
        if (sig < 0) {
            rd_kafka_message_destroy(m);
            continue;
        }
        kr_outcome_t out = kr_offer(st, m, (mt_signal_t)sig);
        if (out == KR_REFUSED) {
            kr_hold(st, m, (mt_signal_t)sig);
            continue;
        }
        kr_mark(st, m);
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

static void kafka_stop(receiver_t *rv)
{
    kr_state_t *st = rv->state;
    if (!st) {
        return;
    }
    if (st->started) {
        atomic_store(&st->stop, 1);
        pthread_join(st->thread, NULL);
    }
    if (st->rk) {
        /* commits what is stored and leaves the group, so the partitions move at once */
        rd_kafka_consumer_close(st->rk);
        rd_kafka_destroy(st->rk);
    }
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        recv_counters_fini(&st->cnt[s]);
    }
    free(st);
    rv->state = NULL;
}

static int kafka_start(receiver_t *rv, mt_errbuf_t *eb)
{
    kafka_rcfg_t *cfg = rv->cfg;
    kr_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        mt_failf(eb, "out of memory");
        return MT_ENOMEM;
    }
    st->id = rv->id;
    snprintf(st->who.name, sizeof(st->who.name), "receiver %s", rv->id);
    st->r = rv;
    rv->state = st;
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        snprintf(st->labels[s], sizeof(st->labels[s]), "receiver=\"%s\",signal=\"%s\"", rv->id,
                 mt_signal_name(s));
        recv_counters_init(&st->cnt[s], st->labels[s], rv->id);
    }
    st->dcap = recv_decode_cap(0, cfg->max_fetch_size > 16 << 20 ? cfg->max_fetch_size : 16 << 20);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(MT_SIG_COUNT);
    for (int s = 0; s < MT_SIG_COUNT; s++) {
        if (rv->npipes[s] == 0) {
            continue;
        }
        const char *t = kafkaconf_topic(&cfg->k, s);
        int other = kr_signal(st, t);
        if (other >= 0) {
            mt_failf(eb, "topic %s would carry both %s and %s: set one receiver per signal", t,
                     mt_signal_name(other), mt_signal_name(s));
            rd_kafka_topic_partition_list_destroy(topics);
            kafka_stop(rv);
            return MT_EINVAL;
        }
        st->topic[s] = t;
        rd_kafka_topic_partition_list_add(topics, t, RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_conf_t *conf = kafkaconf_create(&cfg->k, eb);
    char stmo[24], hb[24], fetch[24];
    snprintf(stmo, sizeof(stmo), "%lld", (long long)cfg->session_timeout);
    snprintf(hb, sizeof(hb), "%lld", (long long)cfg->heartbeat_interval);
    snprintf(fetch, sizeof(fetch), "%lld", (long long)cfg->max_fetch_size);
    /* what librdkafka prefetches is bounded too: a few fetches' worth, at least 8 MiB */
    int64_t prefetch_kib = 4 * cfg->max_fetch_size / 1024;
    char queued[24];
    snprintf(queued, sizeof(queued), "%lld",
             (long long)(prefetch_kib < 8192 ? 8192 : prefetch_kib));
    int rc = conf ? MT_OK : MT_EINVAL;
    if (conf) {
        rc |= kafkaconf_set(conf, "group.id", cfg->group_id, eb);
        rc |= kafkaconf_set(conf, "client.id", cfg->client_id, eb);
        rc |= kafkaconf_set(conf, "auto.offset.reset",
                            cfg->initial_offset == KR_OFFSET_EARLIEST ? "earliest" : "latest", eb);
        rc |= kafkaconf_set(conf, "enable.auto.commit", "true", eb);
        rc |= kafkaconf_set(conf, "auto.commit.interval.ms", "1000", eb);
        rc |=
            kafkaconf_set(conf, "enable.auto.offset.store", cfg->mark_after ? "false" : "true", eb);
        rc |= kafkaconf_set(conf, "session.timeout.ms", stmo, eb);
        rc |= kafkaconf_set(conf, "heartbeat.interval.ms", hb, eb);
        rc |= kafkaconf_set(conf, "max.partition.fetch.bytes", fetch, eb);
        rc |= kafkaconf_set(conf, "queued.max.messages.kbytes", queued, eb);
        /* a caught-up consumer waits at most this long for new data: end-to-end latency */
        rc |= kafkaconf_set(conf, "fetch.wait.max.ms", "100", eb);
        rc |= kafkaconf_set(conf, "fetch.error.backoff.ms", "100", eb);
    }
    if (rc) {
        if (conf) {
            rd_kafka_conf_destroy(conf);
        }
        rd_kafka_topic_partition_list_destroy(topics);
        kafka_stop(rv);
        return MT_EINVAL;
    }
    rd_kafka_conf_set_opaque(conf, st);
    rd_kafka_conf_set_rebalance_cb(conf, kr_rebalance_cb);
    char err[512];
    st->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!st->rk) {
        rd_kafka_conf_destroy(conf);
        rd_kafka_topic_partition_list_destroy(topics);
        mt_failf(eb, "kafka consumer: %s", err);
        kafka_stop(rv);
        return MT_EINVAL;
    }
    rd_kafka_poll_set_consumer(st->rk);
    rd_kafka_resp_err_t e = topics->cnt ? rd_kafka_subscribe(st->rk, topics) : 0;
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        mt_failf(eb, "kafka subscribe: %s", rd_kafka_err2str(e));
        kafka_stop(rv);
        return MT_EINVAL;
    }
    if (pthread_create(&st->thread, NULL, kr_main, st) != 0) {
        mt_failf(eb, "cannot start the kafka consumer thread");
        kafka_stop(rv);
        return MT_ERR;
    }
    st->started = 1;
    mt_log(MT_LOG_INFO, "receiver %s: kafka group %s", rv->id, cfg->group_id);
    return MT_OK;
}

const receiver_ops_t receiver_kafka_ops = {
    .type = "kafka",
    .fields = kafka_fields,
    .nfields = MT_ARRAY_LEN(kafka_fields),
    .cfg_size = sizeof(kafka_rcfg_t),
    .signals = SIG_ALL,
    .help = "Kafka receiver (librdkafka consumer group; OTLP protobuf or JSON messages)",
    .validate = kafka_validate,
    .start = kafka_start,
    .stop = kafka_stop,
};
