/*
 * kafkaconf.c - the cluster settings the `kafka` exporter and receiver share, mapped onto
 * librdkafka (see kafkaconf.h).
 */
#include "kafkaconf.h"

#include <stdio.h>
#include <string.h>

static const char *const default_topics[MT_SIG_COUNT] = {
    [MT_SIG_TRACES] = "otlp_spans",
    [MT_SIG_METRICS] = "otlp_metrics",
    [MT_SIG_LOGS] = "otlp_logs",
    [MT_SIG_PROFILES] = "otlp_profiles",
};

const char *kafkaconf_default_topic(mt_signal_t s)
{
    return s < MT_SIG_COUNT ? default_topics[s] : "otlp_spans";
}

const char *kafkaconf_topic(const kafkaconf_t *k, mt_signal_t s)
{
    return k->topic && k->topic[0] ? k->topic : kafkaconf_default_topic(s);
}

static int set(const char *s)
{
    return s && s[0];
}

void kafkaconf_validate(cfg_ctx_t *c, const kafkaconf_t *k, const char *path,
                        const cfg_node_t *node)
{
    if (k->brokers.n == 0) {
        cfg_error_key(c, node, path, "brokers", "at least one broker is required");
    }
    for (size_t i = 0; i < k->brokers.n; i++) {
        const char *b = k->brokers.items[i];
        if (!b[0] || strchr(b, ',') || strchr(b, ' ')) {
            cfg_error_key(c, node, path, "brokers", "\"%s\" is not one host:port", b);
        }
    }
    if (set(k->tls_cert_file) != set(k->tls_key_file)) {
        cfg_error_key(c, node, path, "auth.tls", "cert_file and key_file go together");
    }
    if (set(k->sasl_password) && !set(k->sasl_username)) {
        cfg_error_key(c, node, path, "auth.sasl.username", "required with a password");
    }
}

int kafkaconf_set(rd_kafka_conf_t *conf, const char *key, const char *val, mt_errbuf_t *eb)
{
    char err[256];
    if (rd_kafka_conf_set(conf, key, val, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        mt_failf(eb, "%s=%s: %s", key, val, err);
        return MT_EINVAL;
    }
    return MT_OK;
}

/* TLS: the four keys onto librdkafka's ssl.* settings. */
static int kafkaconf_tls(rd_kafka_conf_t *conf, const kafkaconf_t *k, mt_errbuf_t *eb)
{
    int rc = MT_OK;
    if (set(k->tls_ca_file)) {
        rc |= kafkaconf_set(conf, "ssl.ca.location", k->tls_ca_file, eb);
    }
    if (set(k->tls_cert_file)) {
        rc |= kafkaconf_set(conf, "ssl.certificate.location", k->tls_cert_file, eb);
        rc |= kafkaconf_set(conf, "ssl.key.location", k->tls_key_file, eb);
    }
    if (k->tls_insecure_skip_verify) {
        rc |= kafkaconf_set(conf, "enable.ssl.certificate.verification", "false", eb);
        rc |= kafkaconf_set(conf, "ssl.endpoint.identification.algorithm", "none", eb);
    }
    return rc ? MT_EINVAL : MT_OK;
}

/* librdkafka's log lines (syslog levels) as mt_log lines; a broker that is down makes the
 * client repeat itself, so they are rate-limited. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    kafkaconf_who_t *who = rd_kafka_opaque(rk); /* the component's state starts with it */
    int l = level <= 3   ? MT_LOG_ERROR
            : level == 4 ? MT_LOG_WARN
            : level <= 6 ? MT_LOG_INFO
                         : MT_LOG_DEBUG;
    if (!who) {
        MT_LOG_EVERY(2, l, "kafka: librdkafka %s: %s", fac, buf);
        return;
    }
    mt_log_limited(&who->rl, 2000000000ull, l, "%s: librdkafka %s: %s", who->name, fac, buf);
}

rd_kafka_conf_t *kafkaconf_create(const kafkaconf_t *k, mt_errbuf_t *eb)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        mt_failf(eb, "out of memory");
        return NULL;
    }
    size_t n = 1;
    for (size_t i = 0; i < k->brokers.n; i++) {
        n += strlen(k->brokers.items[i]) + 1;
    }
    char servers[n];
    servers[0] = 0;
    for (size_t i = 0, off = 0; i < k->brokers.n; i++) {
        off += (size_t)snprintf(servers + off, n - off, "%s%s", i ? "," : "", k->brokers.items[i]);
    }
    int tls = set(k->tls_ca_file) || set(k->tls_cert_file) || k->tls_insecure_skip_verify;
    int sasl = set(k->sasl_username);
    static const char *const mech[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};
    const char *proto = tls && sasl ? "sasl_ssl"
                        : tls       ? "ssl"
                        : sasl      ? "sasl_plaintext"
                                    : "plaintext";
    int rc = kafkaconf_set(conf, "bootstrap.servers", servers, eb);
    rc |= kafkaconf_set(conf, "security.protocol", proto, eb);
    /* a broker back from a restart is reached within 2 s (librdkafka's default waits up to
     * 10 s between attempts), which is what the exporter's queue and the consumer wait on */
    rc |= kafkaconf_set(conf, "reconnect.backoff.max.ms", "2000", eb);
    if (sasl) {
        rc |= kafkaconf_set(conf, "sasl.mechanisms", mech[k->sasl_mechanism], eb);
        rc |= kafkaconf_set(conf, "sasl.username", k->sasl_username, eb);
        rc |= kafkaconf_set(conf, "sasl.password", k->sasl_password ? k->sasl_password : "", eb);
    }
    if (tls) {
        rc |= kafkaconf_tls(conf, k, eb);
    }
    if (rc) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    return conf;
}
