/*
 * kafkaconf.h - what the `kafka` exporter and receiver share about reaching a cluster: the
 * brokers, SASL and TLS keys (one table fragment, KAFKACONF_FIELDS), their mapping onto a
 * librdkafka configuration, librdkafka's log lines routed to mt_log, and the default topic of
 * each signal. TLS here is only the four keys mapped to librdkafka's ssl.* settings, kept small
 * so a shared TLS module can replace kafkaconf_tls() without touching the components.
 */
#ifndef KAFKACONF_H
#define KAFKACONF_H

#include "config.h"
#include "mt.h"

#include <librdkafka/rdkafka.h>
#include <stddef.h>

/* auth.sasl.mechanism, in the order of its CFG_T_ENUM values */
typedef enum {
    KAFKACONF_SASL_PLAIN = 0,
    KAFKACONF_SASL_SCRAM256,
    KAFKACONF_SASL_SCRAM512
} kafkaconf_sasl_t;

/* encoding, in the order of its CFG_T_ENUM values "otlp_proto|otlp_json" */
typedef enum { KAFKACONF_ENC_PROTO = 0, KAFKACONF_ENC_JSON } kafkaconf_encoding_t;

typedef struct kafkaconf {
    cfg_strlist_t brokers;
    char *topic; /* "" = the signal's default (kafkaconf_topic) */
    kafkaconf_encoding_t encoding;
    char *sasl_username;
    char *sasl_password;
    kafkaconf_sasl_t sasl_mechanism;
    char *tls_ca_file;
    char *tls_cert_file;
    char *tls_key_file;
    int tls_insecure_skip_verify;
} kafkaconf_t;

/* The table entries of a kafkaconf_t embedded at member `m` of config struct `T`. */
#define KAFKACONF_FIELDS(T, m)                                                                   \
    {"brokers",                                                                                  \
     CFG_T_STRLIST,                                                                              \
     "[localhost:9092]",                                                                         \
     0,                                                                                          \
     offsetof(T, m.brokers),                                                                     \
     NULL,                                                                                       \
     "bootstrap brokers, host:port"},                                                            \
        {"topic",                                                                                \
         CFG_T_STRING,                                                                           \
         "",                                                                                     \
         0,                                                                                      \
         offsetof(T, m.topic),                                                                   \
         NULL,                                                                                   \
         "topic; empty = otlp_spans, otlp_metrics, otlp_logs or otlp_profiles by signal"},       \
        {"encoding",                                                                             \
         CFG_T_ENUM,                                                                             \
         "otlp_proto",                                                                           \
         0,                                                                                      \
         offsetof(T, m.encoding),                                                                \
         "otlp_proto|otlp_json",                                                                 \
         "message encoding: an Export*ServiceRequest per message"},                              \
        {"auth.sasl.username",      CFG_T_STRING, "", 0, offsetof(T, m.sasl_username), NULL,     \
         "SASL user; set = SASL on"},                                                            \
        {"auth.sasl.password", CFG_T_STRING, "", CFG_SECRET, offsetof(T, m.sasl_password), NULL, \
         "SASL password"},                                                                       \
        {"auth.sasl.mechanism",                                                                  \
         CFG_T_ENUM,                                                                             \
         "PLAIN",                                                                                \
         0,                                                                                      \
         offsetof(T, m.sasl_mechanism),                                                          \
         "PLAIN|SCRAM-SHA-256|SCRAM-SHA-512",                                                    \
         "SASL mechanism"},                                                                      \
        {"auth.tls.ca_file",                                                                     \
         CFG_T_STRING,                                                                           \
         "",                                                                                     \
         0,                                                                                      \
         offsetof(T, m.tls_ca_file),                                                             \
         NULL,                                                                                   \
         "CA bundle (ssl.ca.location); any auth.tls key turns TLS on"},                          \
        {"auth.tls.cert_file",                                                                   \
         CFG_T_STRING,                                                                           \
         "",                                                                                     \
         0,                                                                                      \
         offsetof(T, m.tls_cert_file),                                                           \
         NULL,                                                                                   \
         "client certificate (ssl.certificate.location)"},                                       \
        {"auth.tls.key_file",                                                                    \
         CFG_T_STRING,                                                                           \
         "",                                                                                     \
         0,                                                                                      \
         offsetof(T, m.tls_key_file),                                                            \
         NULL,                                                                                   \
         "client key (ssl.key.location)"},                                                       \
    {                                                                                            \
        "auth.tls.insecure_skip_verify", CFG_T_BOOL, "false", 0,                                 \
            offsetof(T, m.tls_insecure_skip_verify), NULL,                                       \
            "do not verify the broker certificate (enable.ssl.certificate.verification=false)"   \
    }

/* How librdkafka's log lines name a component ("exporter kafka/x"), each with its own rate
 * limit so one client's repeated line does not hide another's. The first member of the state
 * a component hands librdkafka as opaque (see kafkaconf_create). */
typedef struct kafkaconf_who {
    char name[160];
    mt_ratelimit_t rl;
} kafkaconf_who_t;

/* The signal's default topic: "otlp_spans", "otlp_metrics", "otlp_logs", "otlp_profiles". */
const char *kafkaconf_default_topic(mt_signal_t s);
/* The topic of signal s: k->topic when set, else the default. */
const char *kafkaconf_topic(const kafkaconf_t *k, mt_signal_t s);
/* Config checks shared by both components (brokers present, cert without key, ...). */
void kafkaconf_validate(cfg_ctx_t *c, const kafkaconf_t *k, const char *path,
                        const cfg_node_t *node);
/* A new librdkafka configuration with bootstrap.servers, security.protocol, SASL and TLS set
 * and librdkafka's log lines routed to mt_log; NULL with the reason in eb. The caller owns it
 * (rd_kafka_new takes it on success) and sets its opaque (rd_kafka_conf_set_opaque) to a struct
 * whose first member is its kafkaconf_who_t. librdkafka's errors (brokers down, a fatal producer error) come as log lines. */
rd_kafka_conf_t *kafkaconf_create(const kafkaconf_t *k, mt_errbuf_t *eb);
/* One setting; MT_OK or MT_EINVAL with librdkafka's reason in eb. */
int kafkaconf_set(rd_kafka_conf_t *conf, const char *key, const char *val, mt_errbuf_t *eb);

#endif
