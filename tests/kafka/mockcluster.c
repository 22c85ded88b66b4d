/*
 * mockcluster.c - a Kafka cluster for tests and benchmarks: librdkafka's mock cluster
 * (rdkafka_mock.h, the Kafka protocol with leaders, partitions, consumer groups and injectable
 * errors) on loopback, driven by commands on stdin. No broker is packaged for Debian 12.
 *
 *   kafka_mock [BROKERS]     prints "bootstrap <host:port,...>" and serves until killed or "quit"
 *
 * Commands, one per line, each answered "ok" or "err <why>":
 *   topic NAME PARTITIONS               create a topic
 *   errors API ERR [ERR...]             (or push_request_errors) the next requests of API (produce|fetch|NUMBER) fail
 *                                       with these errors (names like LEADER_NOT_AVAILABLE or
 *                                       numbers), one per request
 *   clear API                           forget injected errors of API
 *   leader TOPIC PARTITION ID           make broker ID lead a partition (the mock picks
 *                                       leaders at random when it creates a topic)
 *   down ID|all / up ID|all             take brokers (1..BROKERS) down or up
 *   rtt ID|all MS                       delay a broker's responses
 *   produce TOPIC PARTITION HEX [TENANT] write one raw message (hex bytes) to a partition,
 *                                       with header X-Scope-OrgID: TENANT when given
 *   quit
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static rd_kafka_mock_cluster_t *mc;
static rd_kafka_t *producer;
static int nbrokers;

static int api_key(const char *s)
{
    if (!strcasecmp(s, "produce")) {
        return 0;
    }
    if (!strcasecmp(s, "fetch")) {
        return 1;
    }
    return atoi(s);
}

static int err_code(const char *s, rd_kafka_resp_err_t *out)
{
    const struct rd_kafka_err_desc *d;
    size_t n;
    rd_kafka_get_err_descs(&d, &n);
    for (size_t i = 0; i < n; i++) {
        if (d[i].name && !strcasecmp(d[i].name, s)) {
            *out = d[i].code;
            return 0;
        }
    }
    char *end;
    long v = strtol(s, &end, 10);
    if (*s && !*end) {
        *out = (rd_kafka_resp_err_t)v;
        return 0;
    }
    return -1;
}

/* Applies fn to broker `which` (1..n, or "all"). */
static const char *each_broker(const char *which,
                               rd_kafka_resp_err_t (*fn)(rd_kafka_mock_cluster_t *, int32_t))
{
    int lo = 1, hi = nbrokers;
    if (strcmp(which, "all") != 0) {
        lo = hi = atoi(which);
    }
    if (lo < 1 || hi > nbrokers) {
        return "no such broker";
    }
    for (int b = lo; b <= hi; b++) {
        rd_kafka_resp_err_t e = fn(mc, b);
        if (e) {
            return rd_kafka_err2str(e);
        }
    }
    return NULL;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static const char *produce(const char *topic, int part, const char *hex, const char *tenant)
{
    size_t n = strlen(hex) / 2;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        return "out of memory";
    }
    for (size_t i = 0; i < n; i++) {
        int a = hexval(hex[2 * i]), b = hexval(hex[2 * i + 1]);
        if (a < 0 || b < 0) {
            free(buf);
            return "bad hex";
        }
        buf[i] = (unsigned char)(a * 16 + b);
    }
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(1);
    if (tenant) {
        rd_kafka_header_add(hdrs, "X-Scope-OrgID", -1, tenant, -1);
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(part), RD_KAFKA_V_VALUE(buf, n),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END);
    if (e) {
        rd_kafka_headers_destroy(hdrs); /* producev took them only on success */
        free(buf);
        return rd_kafka_err2str(e);
    }
    if (rd_kafka_flush(producer, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return "not delivered within 10 s";
    }
    return NULL;
}

static const char *command(char *line)
{
    char *argv[64];
    int argc = 0;
    for (char *t = strtok(line, " \t\r\n"); t && argc < 64; t = strtok(NULL, " \t\r\n")) {
        argv[argc++] = t;
    }
    if (argc == 0) {
        return "empty";
    }
    const char *c = argv[0];
    if (!strcmp(c, "topic") && argc == 3) {
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, argv[1], atoi(argv[2]), 1);
        return e ? rd_kafka_err2str(e) : NULL;
    }
    if ((!strcmp(c, "errors") || !strcmp(c, "push_request_errors")) && argc >= 3) {
        rd_kafka_resp_err_t errs[60];
        size_t n = 0;
        for (int i = 2; i < argc; i++) {
            if (err_code(argv[i], &errs[n++]) != 0) {
                return "unknown error name";
            }
        }
        rd_kafka_mock_push_request_errors_array(mc, (int16_t)api_key(argv[1]), n, errs);
        return NULL;
    }
    if (!strcmp(c, "clear") && argc == 2) {
        rd_kafka_mock_clear_request_errors(mc, (int16_t)api_key(argv[1]));
        return NULL;
    }
    if (!strcmp(c, "leader") && argc == 4) {
        int id = atoi(argv[3]);
        if (id < 1 || id > nbrokers) {
            return "no such broker";
        }
        rd_kafka_resp_err_t e = rd_kafka_mock_partition_set_leader(mc, argv[1], atoi(argv[2]), id);
        return e ? rd_kafka_err2str(e) : NULL;
    }
    if (!strcmp(c, "down") && argc == 2) {
        return each_broker(argv[1], rd_kafka_mock_broker_set_down);
    }
    if (!strcmp(c, "up") && argc == 2) {
        return each_broker(argv[1], rd_kafka_mock_broker_set_up);
    }
    if (!strcmp(c, "rtt") && argc == 3) {
        int lo = 1, hi = nbrokers;
        if (strcmp(argv[1], "all") != 0) {
            lo = hi = atoi(argv[1]);
        }
        for (int b = lo; b <= hi; b++) {
            rd_kafka_mock_broker_set_rtt(mc, b, atoi(argv[2]));
        }
        return NULL;
    }
    if (!strcmp(c, "produce") && (argc == 4 || argc == 5)) {
        return produce(argv[1], atoi(argv[2]), argv[3], argc == 5 ? argv[4] : NULL);
    }
    return "unknown command";
}

int main(int argc, char **argv)
{
    nbrokers = argc > 1 ? atoi(argv[1]) : 3;
    if (nbrokers < 1 || nbrokers > 16) {
        fprintf(stderr, "usage: %s [BROKERS 1..16]\n", argv[0]);
        return 2;
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", err);
        return 1;
    }
    mc = rd_kafka_mock_cluster_new(rk, nbrokers);
    if (!mc) {
        fprintf(stderr, "cannot start the mock cluster\n");
        return 1;
    }
    const char *bs = rd_kafka_mock_cluster_bootstraps(mc);
    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bs, err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err)) ||
        !(producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err)))) {
        fprintf(stderr, "producer: %s\n", err);
        return 1;
    }
    printf("bootstrap %s\n", bs);
    fflush(stdout);
    char line[1 << 16];
    while (fgets(line, sizeof(line), stdin)) {
        if (!strncmp(line, "quit", 4)) {
            break;
        }
        const char *why = command(line);
        if (why) {
            printf("err %s\n", why);
        } else {
            printf("ok\n");
        }
        fflush(stdout);
    }
    rd_kafka_destroy(producer);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
