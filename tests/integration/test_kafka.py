"""Kafka: sidecar meltp (otlp -> kafka exporter) -> librdkafka's mock cluster -> gateway meltps
(kafka receiver, one consumer group) -> a sink. Every acknowledged span arrives: exactly once
while nothing fails, at least once when a gateway is killed, broker errors are retried by the
exporter, a poisoned message is skipped and counted, a full queue pauses the consumer instead
of dropping."""
import collections
import os
import re
import signal
import struct
import subprocess
import tempfile
import threading
import time

import pytest

from harness import MELTP, FakeOtlp, Meltp, make_traces, wait_until
from kafkamock import MockKafka

PB = "application/x-protobuf"


def sidecar(kafka, extra="", timeout="5s"):
    return Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  kafka:
    brokers: %s
    timeout: %s
    sending_queue:
      num_consumers: 2
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 1s
      max_elapsed_time: 0
%s
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [kafka]}}
""" % (kafka.brokers_yaml(), timeout, extra))


def gateway(kafka, sink, extra="", exporter_extra="", session_timeout="6s"):
    return Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
  kafka:
    brokers: %s
    initial_offset: earliest
    session_timeout: %s
    heartbeat_interval: 500ms
%s
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:%d
    compression: none
    retry_on_failure:
      initial_interval: 50ms
      max_interval: 200ms
      max_elapsed_time: 0
%s
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp, kafka], exporters: [otlphttp]}}
""" % (kafka.brokers_yaml(), session_timeout, extra, sink.port, exporter_extra))


def assigned(gw):
    """Partitions the gateway's consumer holds now (its last assignment log line)."""
    found = re.findall(r"kafka assignment: (\d+) partitions", gw.logtext())
    return int(found[-1]) if found else -1


def wait_shared(gws, partitions=4, timeout=30):
    wait_until(lambda: all(assigned(g) > 0 for g in gws) and
               sum(assigned(g) for g in gws) == partitions, timeout,
               what="the group to share %d partitions" % partitions)


def ids(req_no, n):
    return [struct.pack(">II", req_no, i) for i in range(n)]


def send_all(sc, first, count, per=20, headers=None):
    """Posts `count` requests; returns the span ids acknowledged (hex)."""
    acked = []
    for r in range(first, first + count):
        sids = ids(r, per)
        st, _, _ = sc.post("/v1/traces", make_traces(sids), PB, headers=headers)
        if st == 200:
            acked.extend(s.hex() for s in sids)
    return acked


def arrived(sink):
    return collections.Counter(s["spanId"] for s in sink.spans())


def test_sidecar_kafka_two_gateways_each_span_once():
    kafka = MockKafka()
    sink = FakeOtlp()
    gws = [gateway(kafka, sink), gateway(kafka, sink)]
    wait_shared(gws)
    sc = sidecar(kafka)
    acked = send_all(sc, 0, 50, headers={"X-Scope-OrgID": "team-a"})
    assert len(acked) == 1000
    wait_until(lambda: len(set(arrived(sink)) & set(acked)) == len(acked), 30,
               what="every span at the sink")
    time.sleep(0.5)  # an absence: a duplicate would come right behind; no wait can show none
    got = arrived(sink)
    assert set(got) == set(acked)
    assert all(c == 1 for c in got.values()), [k for k, c in got.items() if c > 1][:5]
    # both gateways consumed (the group shares the partitions), the tenant travelled along
    per_gw = [g.metric("meltp_receiver_accepted_items_total", receiver="kafka") for g in gws]
    assert all(n > 0 for n in per_gw) and sum(per_gw) == 1000, per_gw
    tenants = {h.get("X-Scope-OrgID") for _, h, _ in sink.requests}
    assert tenants == {"team-a"}, tenants
    # a gateway may read a message before the sidecar has Kafka's acknowledgement of it
    wait_until(lambda: sc.metric("meltp_exporter_sent_items_total", exporter="kafka") == 1000,
               10, what="every span counted as sent")


def test_gateway_killed_mid_stream_loses_nothing():
    kafka = MockKafka()
    sink = FakeOtlp()
    gws = [gateway(kafka, sink, session_timeout="3s") for _ in range(2)]
    wait_shared(gws)
    sc = sidecar(kafka)
    acked = []
    stop = threading.Event()

    def stream():
        r = 0
        while not stop.is_set():
            acked.extend(send_all(sc, r, 1, per=10))
            r += 1
            time.sleep(0.01)

    t = threading.Thread(target=stream)
    t.start()
    try:
        wait_until(lambda: len(sink.spans()) > 200, 30, what="the stream to flow")
        gws[0].proc.send_signal(signal.SIGKILL)
        gws[0].proc.wait(10)
        time.sleep(1)  # a fixed duration: the stream goes on for a while with a gateway dead
    finally:
        stop.set()
        t.join()
    assert len(acked) > 200
    wait_until(lambda: assigned(gws[1]) == 4, 30, what="the survivor to take every partition")
    # the survivor takes the dead member's partitions after session_timeout and re-reads what
    # the dead one had not committed
    wait_until(lambda: set(acked) <= set(arrived(sink)), 60,
               what="every acknowledged span after the kill")
    got = arrived(sink)
    dups = sum(c - 1 for c in got.values())
    print("spans acknowledged %d, arrived %d distinct, %d duplicates" % (
        len(acked), len(got), dups))
    assert set(acked) <= set(got)


def test_broker_errors_are_retried_and_nothing_is_lost():
    kafka = MockKafka()
    sink = FakeOtlp()
    gw = gateway(kafka, sink)
    sc = sidecar(kafka)
    acked = send_all(sc, 0, 5)
    wait_until(lambda: set(acked) <= set(arrived(sink)), 30, what="the first spans")
    # leaders not available, then requests timing out: produce requests fail and are retried
    kafka.cmd("errors produce " + " ".join(["LEADER_NOT_AVAILABLE"] * 6 +
                                          ["REQUEST_TIMED_OUT"] * 6 +
                                          ["NOT_LEADER_FOR_PARTITION"] * 6))
    acked += send_all(sc, 100, 20)
    wait_until(lambda: set(acked) <= set(arrived(sink)), 60, what="every span after errors")
    assert sc.metric("meltp_exporter_dropped_items_total", exporter="kafka") == 0
    # the receiver counts a message's items after handing them on: the sink can be first
    wait_until(lambda: gw.metric("meltp_receiver_accepted_items_total",
                                 receiver="kafka") >= len(acked), 10,
               what="every consumed span counted as accepted")


@pytest.mark.slow
def test_all_brokers_down_for_30s_then_everything_arrives():
    kafka = MockKafka()
    sink = FakeOtlp()
    gateway(kafka, sink)
    sc = sidecar(kafka)
    acked = send_all(sc, 0, 3)
    wait_until(lambda: set(acked) <= set(arrived(sink)), 30, what="the first spans")
    kafka.cmd("down all")
    t0 = time.time()
    acked += send_all(sc, 100, 20)
    # the exporter's attempts time out (timeout: 5s) and the queue retries them
    wait_until(lambda: sc.metric("meltp_exporter_retries_total", exporter="kafka") > 0, 40,
               what="the exporter to retry")
    time.sleep(max(0, 30 - (time.time() - t0)))  # the 30 s outage is the test: a fixed duration
    kafka.cmd("up all")
    wait_until(lambda: set(acked) <= set(arrived(sink)), 90, what="every span after the outage")
    assert sc.metric("meltp_exporter_dropped_items_total", exporter="kafka") == 0


def test_poisoned_message_is_skipped_and_counted():
    kafka = MockKafka(topics=(("otlp_spans", 1),))
    sink = FakeOtlp()
    gw = gateway(kafka, sink)
    kafka.produce_raw("otlp_spans", 0, b"\xff\xff garbage, not OTLP")
    # valid OTLP with a tenant no backend would accept
    kafka.produce_raw("otlp_spans", 0, make_traces(ids(9, 2)), tenant="../etc")
    kafka.produce_raw("otlp_spans", 0, make_traces(ids(8, 2)), tenant="team-b")
    sc = sidecar(kafka)
    acked = send_all(sc, 0, 3) + [s.hex() for s in ids(8, 2)]
    wait_until(lambda: set(acked) <= set(arrived(sink)), 30, what="the good spans")
    assert gw.metric("meltp_receiver_refused_requests_total", receiver="kafka",
                     reason="bad_protobuf") == 1
    assert gw.metric("meltp_receiver_refused_requests_total", receiver="kafka",
                     reason="bad_tenant") == 1
    assert not set(s.hex() for s in ids(9, 2)) & set(arrived(sink))
    assert re.search(r"otlp_spans\[0\] offset 0 skipped \(bad_protobuf\)", gw.logtext())
    assert re.search(r"otlp_spans\[0\] offset 1 skipped: invalid X-Scope-OrgID", gw.logtext())
    assert {h.get("X-Scope-OrgID") for _, h, _ in sink.requests} == {"team-b", None}


def test_full_queue_pauses_the_consumer_and_drops_nothing():
    kafka = MockKafka()
    sink = FakeOtlp()
    sink.status = 503
    gw = gateway(kafka, sink, exporter_extra="""    sending_queue:
      queue_size: 2
      num_consumers: 1""")
    sc = sidecar(kafka)
    acked = send_all(sc, 0, 30)
    wait_until(lambda: gw.metric("meltp_receiver_refused_items_total", receiver="kafka",
                                 reason="queue_full") > 0, 30, what="the gateway's queue to fill")
    sink.status = 200
    wait_until(lambda: set(acked) <= set(arrived(sink)), 60, what="every span after the pause")
    assert gw.metric("meltp_exporter_dropped_items_total", exporter="otlphttp") == 0


def test_split_on_resources_and_too_big_resource_counted():
    kafka = MockKafka()
    sink = FakeOtlp()
    gw = gateway(kafka, sink)
    sc = sidecar(kafka, "    producer:\n      max_message_bytes: 2KiB\n")
    # 10 resources of 687 bytes in one request: two whole resources per message
    body = b"".join(make_traces(ids(r, 10), service="svc-%d" % r) for r in range(10))
    st, _, _ = sc.post("/v1/traces", body, PB)
    assert st == 200
    wait_until(lambda: len(arrived(sink)) == 100, 30, what="the split request")
    # a message is counted after its spans were handed on: the sink can have them first
    wait_until(lambda: gw.metric("meltp_receiver_requests_total", receiver="kafka",
                                 code="200") == 5, 10, what="5 messages counted")
    by_service = collections.Counter(s["resource"].get("service.name") for s in sink.spans())
    assert by_service == {"svc-%d" % r: 10 for r in range(10)}
    # one resource alone over the limit (3.8 KiB): dropped and counted, the other one arrives
    big = make_traces(ids(50, 60), service="big") + make_traces(ids(51, 3), service="small")
    st, _, _ = sc.post("/v1/traces", big, PB)
    assert st == 200
    wait_until(lambda: sc.metric("meltp_exporter_dropped_items_total", exporter="kafka",
                                 reason="rejected_by_backend") == 60, 30,
               what="the big resource counted as dropped")
    wait_until(lambda: len(arrived(sink)) == 103, 30, what="the small resource")
    # logged after the drop is counted, and the gateway may deliver before either
    wait_until(lambda: "larger than producer.max_message_bytes" in sc.logtext(), 10,
               what="the too-big resource logged")
    # a batch that is only a too-big resource: nothing to send, all of it counted
    st, _, _ = sc.post("/v1/traces", make_traces(ids(52, 60), service="big"), PB)
    assert st == 200
    wait_until(lambda: sc.metric("meltp_exporter_dropped_items_total", exporter="kafka",
                                 reason="message_too_large") == 60, 30,
               what="the lone big resource counted as dropped")
    wait_until(lambda: sc.metric("meltp_exporter_sent_items_total", exporter="kafka") == 103, 10,
               what="the sent spans counted")


def test_partition_traces_by_id_one_message_per_trace_json():
    kafka = MockKafka()
    sink = FakeOtlp()
    gw = gateway(kafka, sink, extra="    encoding: otlp_json")
    sc = sidecar(kafka, "    encoding: otlp_json\n    partition_traces_by_id: true\n")
    body = b"".join(make_traces(ids(t, 5), trace_id=bytes([t + 1]) * 16) for t in range(8))
    st, _, _ = sc.post("/v1/traces", body, PB)
    assert st == 200
    wait_until(lambda: len(arrived(sink)) == 40, 30, what="every trace")
    wait_until(lambda: gw.metric("meltp_receiver_requests_total", receiver="kafka",
                                 code="200") == 8, 10, what="8 messages counted")
    per_trace = collections.Counter(s["traceId"] for s in sink.spans())
    assert sorted(per_trace.values()) == [5] * 8


def test_retry_sends_only_the_messages_kafka_did_not_take():
    kafka = MockKafka(topics=(("otlp_spans", 6),))
    # the mock picks leaders at random: pin them, so that broker 2 leads two partitions
    for part in range(6):
        kafka.cmd("leader otlp_spans %d %d" % (part, part % 3 + 1))
    sink = FakeOtlp()
    gw = gateway(kafka, sink)
    sc = sidecar(kafka, "    partition_traces_by_id: true\n", timeout="2s")
    acked = send_all(sc, 0, 2, per=5)
    wait_until(lambda: set(acked) <= set(arrived(sink)), 30, what="the first spans")
    # broker 2 leads some partitions: messages keyed to them (one per trace) time out, the
    # others are taken
    kafka.cmd("down 2")
    for r in range(10, 14):
        body = b"".join(make_traces(ids(r * 100 + k, 5), service="s%d" % k,
                                    trace_id=struct.pack(">IIII", r, k, 7, 7)) for k in range(30))
        st, _, _ = sc.post("/v1/traces", body, PB)
        assert st == 200
        acked += [s.hex() for k in range(30) for s in ids(r * 100 + k, 5)]
    wait_until(lambda: sc.metric("meltp_exporter_retries_total", exporter="kafka") > 0, 30,
               what="a retry")
    kafka.cmd("up 2")
    wait_until(lambda: set(acked) <= set(arrived(sink)), 60, what="every span after the retry")
    # the receiver counts a message's items after handing them on: the sink can be first
    wait_until(lambda: gw.metric("meltp_receiver_accepted_items_total",
                                 receiver="kafka") >= len(acked), 10,
               what="every consumed span counted as accepted")
    time.sleep(1)  # an absence: a duplicate would come right behind; no wait can show none
    got = arrived(sink)
    assert all(c == 1 for c in got.values()), sum(c - 1 for c in got.values())
    assert gw.metric("meltp_receiver_accepted_items_total", receiver="kafka") == len(acked)



def test_bad_kafka_settings_are_config_errors():
    path = os.path.join(tempfile.mkdtemp(prefix="meltp-test-"), "bad.yaml")
    with open(path, "w") as f:
        f.write("""
receivers:
  kafka:
    brokers: []
    heartbeat_interval: 20s
    initial_offset: newest
exporters:
  kafka:
    brokers: ["a:9092,b:9092"]
    producer:
      required_acks: 2
      compression: brotli
    auth:
      tls: {cert_file: /c.pem}
service:
  pipelines:
    traces: {receivers: [kafka], exporters: [kafka]}
""")
    p = subprocess.run([MELTP, "check-config", "--config", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=20)
    assert p.returncode != 0
    for want in ("receivers.kafka.brokers", "receivers.kafka.heartbeat_interval",
                 "receivers.kafka.initial_offset", "exporters.kafka.brokers",
                 "exporters.kafka.producer.required_acks", "exporters.kafka.producer.compression",
                 "exporters.kafka.auth.tls"):
        assert want in p.stderr, (want, p.stderr)


def test_logs_and_metrics_one_message_per_resource():
    from harness import fixture, pb_get, pb_logs, pb_metric_points
    kafka = MockKafka(topics=(("otlp_logs", 2), ("otlp_metrics", 2)))
    sink = FakeOtlp()
    gw = Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
  kafka:
    brokers: %s
    initial_offset: earliest
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:%d
    compression: none
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs: {{receivers: [otlp, kafka], exporters: [otlphttp]}}
    metrics: {{receivers: [otlp, kafka], exporters: [otlphttp]}}
""" % (kafka.brokers_yaml(), sink.port))
    sc = Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  kafka:
    brokers: %s
    partition_metrics_by_resource_attributes: true
    partition_logs_by_resource_attributes: true
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs: {{receivers: [otlp], exporters: [kafka]}}
    metrics: {{receivers: [otlp], exporters: [kafka]}}
""" % kafka.brokers_yaml())
    logs = fixture("otlp-js/logs-n100/logs-proto-1.bin")
    metrics = fixture("otlp-js/metrics-n100/metrics-proto-1.bin")
    # three copies of each request in one: one message per resource
    assert sc.post("/v1/logs", logs * 3, PB)[0] == 200
    assert sc.post("/v1/metrics", metrics * 3, PB)[0] == 200
    n_logs, n_points = len(pb_logs(logs)), len(pb_metric_points(metrics))

    def got(path, parse):
        return sum(len(parse(b)) for p, _, b in list(sink.requests) if p == path)

    wait_until(lambda: got("/v1/logs", pb_logs) == 3 * n_logs and
               got("/v1/metrics", pb_metric_points) == 3 * n_points, 30,
               what="logs and metrics at the sink")
    for sig, body in (("logs", logs), ("metrics", metrics)):
        resources = 3 * len(pb_get(body, 1))
        # a message is counted after it was handed on: the sink can have it first
        wait_until(lambda: gw.metric("meltp_receiver_requests_total", receiver="kafka",
                                     signal=sig, code="200") == resources, 10,
                   what="%d %s messages counted" % (resources, sig))
