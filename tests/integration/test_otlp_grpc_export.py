"""The `otlp` exporter (OTLP over gRPC, exporters/otlp_grpc.c): meltp's OTLP/HTTP receiver ->
`otlp` exporter -> a strict grpc-js backend (tests/node/fake_otlp_grpc.js, the services over
proto/'s message types) that records every request (raw HTTP/2 headers, metadata, the message
bytes after gRPC decompression) and answers the statuses a test plans. Then the real Tempo's
OTLP/gRPC receiver (skipped when MELTP_REAL_SERVERS has no Tempo) and meltp -> meltp (skipped
until the running meltp has the gRPC receiver, `receivers.otlp.protocols.grpc`)."""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading

import pytest

import harness
from harness import MELTP, Meltp, fixture, free_port, make_traces, manifest, wait_until
from realservers import RealServer
from test_real_loki_tempo import tempo_trace

PB = "application/x-protobuf"
NODE_DIR = os.path.join(harness.ROOT, "tests", "node")
FAKE = os.path.join(NODE_DIR, "fake_otlp_grpc.js")
FIXTURES = {"traces": "otlp-js/traces-n100/traces-proto-1.bin",
            "metrics": "otlp-js/metrics-n100/metrics-proto-1.bin",
            "logs": "otlp-js/logs-n100/logs-proto-1.bin"}
PATHS = {"profiles":
         "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
         "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
         "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
         "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export"}
URL_PATHS = {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}


def need_node():
    if not shutil.which("node") or not os.path.isdir(os.path.join(NODE_DIR, "node_modules",
                                                                  "@grpc", "grpc-js")):
        pytest.skip("node or tests/node/node_modules missing (run make deps)")


class FakeGrpc:
    """tests/node/fake_otlp_grpc.js on `port`; .records holds the requests it saw, in order."""

    def __init__(self, port=None, plan=None, tls=None):
        need_node()
        self.port = port or free_port()
        argv = ["node", FAKE, "--port", str(self.port), "--plan", json.dumps(plan or [])]
        if tls:
            argv += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        harness._procs.append(self.proc)
        first = self.proc.stdout.readline().decode()
        assert first.startswith("listening "), (first, self.proc.stderr.read().decode())
        self.records = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.records.append(json.loads(line))

    def by_signal(self, signal):
        with self.lock:
            return [r for r in self.records if r["path"] == PATHS[signal]]

    def at_least(self, signal, n):
        """The records of a signal once n of them are read: the fake prints a record before
        it answers, but this process reads its pipe on another thread, maybe later."""
        return wait_until(lambda: (lambda r: r if len(r) >= n else None)(self.by_signal(signal)),
                          10, what="%d %s records from the fake" % (n, signal))

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def config(port, signals=("traces",), compression="gzip", extra="", tls="tls: {{insecure: true}}"):
    pipes = "\n".join("    %s: {{receivers: [otlp], exporters: [otlp]}}" % s for s in signals)
    return """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  otlp:
    endpoint: 127.0.0.1:%d
    compression: %s
    %s
%s
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
%s
""" % (port, compression, tls, extra, pipes)


FAST_RETRY = """    retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms}}
    sending_queue: {{num_consumers: 1}}"""


@pytest.mark.parametrize("compression,encoding", [("gzip", "gzip"), ("zstd", "zstd"),
                                                  ("none", "identity")])
def test_all_signals_full_fidelity(compression, encoding):
    """Every signal arrives byte for byte as the client encoded it (no re-encode), on the
    right method, with the configured compression, headers and the client's tenant."""
    fake = FakeGrpc()
    m = Meltp(config(fake.port, ("traces", "metrics", "logs"), compression,
                     "    headers: {{x-custom-header: custom-1}}"))
    man = manifest()
    for sig, rel in FIXTURES.items():
        st, _, body = m.post(URL_PATHS[sig], fixture(rel), PB, headers={"X-Scope-OrgID": "team-a"})
        assert st == 200, body
    for sig, rel in FIXTURES.items():
        recs = wait_until(lambda: fake.by_signal(sig), 10, what="%s at the backend" % sig)
        assert len(recs) == 1, recs
        r = recs[0]
        assert "error" not in r, r["error"]
        raw = base64.b64decode(r["raw"])
        assert raw == fixture(rel), "%s bytes changed on the way" % sig
        assert r["items"] == man[rel[len("otlp-js/"):]]["items"]
        h = r["headers"]
        assert h["content-type"] == "application/grpc" and h["te"] == "trailers", h
        assert h[":scheme"] == "http" and h[":method"] == "POST", h
        assert r["encoding"] == encoding, r["encoding"]
        assert h["grpc-timeout"] == "30000m", h
        assert r["metadata"]["x-custom-header"] == "custom-1", r["metadata"]
        assert r["metadata"]["x-scope-orgid"] == "team-a", r["metadata"]
        assert r["metadata"]["user-agent"].startswith("meltp/"), r["metadata"]
    # the independent decoder agrees with the fake's protobufjs decode on what arrived
    spans = harness.pb_traces(base64.b64decode(fake.by_signal("traces")[0]["raw"]))
    assert [(s["traceId"], s["spanId"], s["name"]) for s in spans] == \
        [(d["traceId"], d["spanId"], d["name"]) for d in fake.by_signal("traces")[0]["decoded"]]
    wait_until(lambda: m.metric("meltp_exporter_sent_items_total", exporter="otlp") == 234, 10,
               what="234 items counted as sent")
    assert m.metric("meltp_exporter_dropped_items_total") == 0


def test_profiles_go_to_the_profiles_service():
    from test_profiles import OTLP_PROFILE
    fake = FakeGrpc()
    m = Meltp(config(fake.port, ("profiles",)))
    st, _, body = m.post("/v1development/profiles", json.dumps(OTLP_PROFILE).encode(),
                         "application/json")
    assert st == 200, body
    r = wait_until(lambda: fake.by_signal("profiles"), 10, what="profile at the backend")[0]
    assert "error" not in r and r["items"] == 1, r
    wait_until(lambda: m.metric("meltp_exporter_sent_items_total", exporter="otlp") == 1, 10,
               what="the profile counted as sent")


def test_headers_pin_the_tenant():
    fake = FakeGrpc()
    m = Meltp(config(fake.port, extra="    headers: {{X-Scope-OrgID: pinned}}"))
    assert m.post("/v1/traces", make_traces([b"\x01" * 8]), PB,
                  headers={"X-Scope-OrgID": "client"})[0] == 200
    r = wait_until(lambda: fake.by_signal("traces"), 10, what="request")[0]
    assert r["metadata"]["x-scope-orgid"] == "pinned", r["metadata"]


def test_unavailable_is_retried_on_one_connection():
    """UNAVAILABLE three times, then OK: delivered once the backend takes it; every attempt is
    a new stream on the worker's one HTTP/2 connection."""
    fake = FakeGrpc(plan=[{"code": 14, "message": "busy", "times": 3}])
    m = Meltp(config(fake.port, extra=FAST_RETRY))
    body = make_traces([b"\x02" * 8, b"\x03" * 8])
    assert m.post("/v1/traces", body, PB)[0] == 200
    wait_until(lambda: m.metric("meltp_exporter_sent_items_total", exporter="otlp") == 2, 10,
               what="spans delivered after the retries")
    recs = fake.at_least("traces", 4)
    assert [r["answer"]["code"] for r in recs] == [14, 14, 14, 0]
    assert len({base64.b64decode(r["raw"]) for r in recs}) == 1
    assert base64.b64decode(recs[0]["raw"]) == body
    assert len({r["session"] for r in recs}) == 1, "one HTTP/2 connection per worker"
    assert m.metric("meltp_exporter_retries_total", exporter="otlp") == 3
    assert m.metric("meltp_exporter_dropped_items_total") == 0
    # more requests: more streams on the same connection
    for i in range(3):
        assert m.post("/v1/traces", make_traces([bytes([0x10 + i]) * 8]), PB)[0] == 200
    wait_until(lambda: m.metric("meltp_exporter_sent_items_total", exporter="otlp") == 5, 10,
               what="three more requests")
    assert len({r["session"] for r in fake.by_signal("traces")}) == 1


def test_resource_exhausted_honours_retry_info():
    fake = FakeGrpc(plan=[{"code": 8, "message": "slow down", "retry_delay_ms": 1500}])
    m = Meltp(config(fake.port, extra=FAST_RETRY))
    assert m.post("/v1/traces", make_traces([b"\x04" * 8]), PB)[0] == 200
    wait_until(lambda: m.metric("meltp_exporter_sent_items_total", exporter="otlp") == 1, 10,
               what="delivered after RetryInfo's delay")
    recs = fake.at_least("traces", 2)
    assert [r["answer"]["code"] for r in recs] == [8, 0]
    waited = recs[1]["t"] - recs[0]["t"]
    # backoff alone would be 50 ms; RetryInfo says 1.5 s
    assert 1450 <= waited < 5000, waited
    assert "slow down" in m.logtext()


def test_deadline_exceeded_is_retried():
    """An answer later than `timeout` (grpc-timeout 300m): the attempt ends as DEADLINE_EXCEEDED
    (grpc-js's own status or curl's timeout, whichever comes first) and is retried."""
    fake = FakeGrpc(plan=[{"delay_ms": 1500}])
    m = Meltp(config(fake.port, extra=FAST_RETRY + "\n    timeout: 300ms"))
    assert m.post("/v1/traces", make_traces([b"\x0e" * 8]), PB)[0] == 200
    wait_until(lambda: m.metric("meltp_exporter_sent_items_total", exporter="otlp") == 1, 10,
               what="delivered by the retry")
    recs = fake.at_least("traces", 2)
    assert recs[0]["headers"]["grpc-timeout"] == "300m"
    assert len(recs) >= 2 and m.metric("meltp_exporter_retries_total", exporter="otlp") >= 1
    assert "deadline" in m.logtext().lower() or "timeout" in m.logtext().lower()


def test_invalid_argument_is_dropped_with_reason():
    fake = FakeGrpc(plan=[{"code": 3, "message": "span 1: bad trace id"}])
    m = Meltp(config(fake.port, extra=FAST_RETRY))
    assert m.post("/v1/traces", make_traces([b"\x05" * 8, b"\x06" * 8]), PB)[0] == 200
    wait_until(lambda: m.metric("meltp_exporter_dropped_items_total",
                                reason="grpc_invalid_argument") == 2, 10,
               what="2 spans dropped as grpc_invalid_argument")
    # logged just after the drop is counted
    wait_until(lambda: "bad trace id" in m.logtext(), 10, what="the backend's message logged")
    # permanent: not retried; the next request goes through
    assert m.post("/v1/traces", make_traces([b"\x07" * 8]), PB)[0] == 200
    wait_until(lambda: m.metric("meltp_exporter_sent_items_total", exporter="otlp") == 1, 10,
               what="next request delivered")
    assert [r["answer"]["code"] for r in fake.at_least("traces", 2)] == [3, 0]
    assert m.metric("meltp_exporter_retries_total", exporter="otlp") == 0


def test_other_statuses_are_permanent():
    fake = FakeGrpc(plan=[{"code": 7, "message": "no"}, {"code": 16, "message": "who"}])
    m = Meltp(config(fake.port, extra=FAST_RETRY))
    assert m.post("/v1/traces", make_traces([b"\x08" * 8]), PB)[0] == 200
    wait_until(lambda: m.metric("meltp_exporter_dropped_items_total",
                                reason="grpc_permission_denied") == 1, 10, what="first drop")
    assert m.post("/v1/traces", make_traces([b"\x09" * 8]), PB)[0] == 200
    wait_until(lambda: m.metric("meltp_exporter_dropped_items_total",
                                reason="grpc_unauthenticated") == 1, 10, what="second drop")
    assert m.metric("meltp_exporter_retries_total", exporter="otlp") == 0


def test_partial_success_counted():
    fake = FakeGrpc(plan=[{"code": 0, "rejected": 2, "error_message": "2 spans too old"}])
    m = Meltp(config(fake.port, extra=FAST_RETRY))
    ids = [bytes([0x20 + i]) * 8 for i in range(5)]
    assert m.post("/v1/traces", make_traces(ids), PB)[0] == 200
    wait_until(lambda: m.metric("meltp_exporter_dropped_items_total",
                                reason="rejected_by_backend") == 2, 10, what="partial success")
    wait_until(lambda: m.metric("meltp_exporter_sent_items_total", exporter="otlp") == 3, 10,
               what="the accepted part counted as sent")
    # logged just after the sent and dropped counts
    wait_until(lambda: "2 spans too old" in m.logtext(), 10, what="the backend's message logged")
    assert len(fake.at_least("traces", 1)) == 1, "partial success is not retried"


def test_backend_down_then_up():
    port = free_port()
    m = Meltp(config(port, extra=FAST_RETRY))
    body = make_traces([b"\x30" * 8, b"\x31" * 8])
    assert m.post("/v1/traces", body, PB)[0] == 200
    wait_until(lambda: m.metric("meltp_exporter_retries_total", exporter="otlp") >= 2, 10,
               what="retries while the backend is down")
    fake = FakeGrpc(port=port)
    wait_until(lambda: m.metric("meltp_exporter_sent_items_total", exporter="otlp") == 2, 10,
               what="delivered once the backend is up")
    assert base64.b64decode(fake.at_least("traces", 1)[0]["raw"]) == body
    # the backend restarts: the worker's connection is gone, the next request opens another
    fake.stop()
    fake2 = FakeGrpc(port=port)
    retries = m.metric("meltp_exporter_retries_total", exporter="otlp")
    assert m.post("/v1/traces", make_traces([b"\x32" * 8]), PB)[0] == 200
    wait_until(lambda: m.metric("meltp_exporter_sent_items_total", exporter="otlp") == 3, 15,
               what="delivered to the restarted backend")
    recs = fake2.at_least("traces", 1)
    assert len(recs) == 1 and recs[0]["headers"][":scheme"] == "http"
    # the new connection is made within the same attempt (og_perform), not by a retry
    assert m.metric("meltp_exporter_retries_total", exporter="otlp") == retries
    assert m.metric("meltp_exporter_dropped_items_total") == 0


def make_cert(d):
    key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return crt, key


def test_tls_with_ca_file():
    d = tempfile.mkdtemp(prefix="meltp-grpc-tls-")
    crt, key = make_cert(d)
    fake = FakeGrpc(tls=(crt, key))
    m = Meltp(config(fake.port, tls="tls: {{ca_file: %s}}" % crt, extra=FAST_RETRY))
    for i in range(2):
        assert m.post("/v1/traces", make_traces([bytes([0x40 + i]) * 8]), PB)[0] == 200
    wait_until(lambda: m.metric("meltp_exporter_sent_items_total", exporter="otlp") == 2, 10,
               what="spans delivered over TLS")
    recs = fake.at_least("traces", 1)
    assert all(r["headers"][":scheme"] == "https" for r in recs)
    assert len({r["session"] for r in recs}) == 1
    # without the CA the certificate is refused: retried, never sent
    other = Meltp(config(fake.port, tls="tls: {{insecure: false}}", extra=FAST_RETRY))
    assert other.post("/v1/traces", make_traces([b"\x50" * 8]), PB)[0] == 200
    wait_until(lambda: other.metric("meltp_exporter_retries_total", exporter="otlp") >= 1, 10,
               what="TLS verification failure retried")
    assert other.metric("meltp_exporter_sent_items_total", exporter="otlp") == 0
    assert len(fake.at_least("traces", 2)) == 2


BAD_CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:4318
exporters:
  otlp:
    endpoint: %s
    tls: {insecure: true}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [otlp]}
"""


def test_config_errors():
    for ep, why in (("localhost", "not host:port"), ("127.0.0.1:99999", "port"),
                    ("http://127.0.0.1:4317/v1", "no path"), ("\"[::1]\"", "[addr]:port")):
        d = tempfile.mkdtemp(prefix="meltp-grpc-cfg-")
        path = os.path.join(d, "c.yaml")
        with open(path, "w") as f:
            f.write(BAD_CONFIG % ep)
        p = subprocess.run([MELTP, "check-config", "--config", path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=20)
        out = p.stdout.decode()
        assert p.returncode != 0, out
        assert "c.yaml:9: exporters.otlp.endpoint" in out and why in out, out


def help_config_has_grpc_receiver():
    """The receiver's keys from issue 14. A placeholder `protocols.grpc.endpoint` ("not served
    yet") predates the receiver, so the test looks for one only the real receiver has."""
    p = subprocess.run([MELTP, "help-config"], stdout=subprocess.PIPE, timeout=20)
    return "protocols.grpc.max_recv_msg_size_mib" in p.stdout.decode()


def test_meltp_to_meltp():
    """meltp (HTTP in, `otlp` out) -> meltp (OTLP/gRPC receiver, file exporter)."""
    if not help_config_has_grpc_receiver():
        pytest.skip("this meltp has no OTLP/gRPC receiver yet (help-config lists no "
                    "receivers.otlp.protocols.grpc.max_recv_msg_size_mib)")
    grpc_port = free_port()
    sink = Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
      grpc:
        endpoint: 127.0.0.1:%d
exporters:
  file:
    path: {dir}/out.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [file]}}
    metrics: {{receivers: [otlp], exporters: [file]}}
    logs: {{receivers: [otlp], exporters: [file]}}
""" % grpc_port)
    wait_until(lambda: _connects(grpc_port), 10, what="gRPC receiver listening")
    for compression in ("gzip", "zstd", "none"):
        src = Meltp(config(grpc_port, ("traces", "metrics", "logs"), compression))
        for sig, rel in FIXTURES.items():
            assert src.post(URL_PATHS[sig], fixture(rel), PB)[0] == 200
        wait_until(lambda: src.metric("meltp_exporter_sent_items_total", exporter="otlp") == 234,
                   15, what="234 items sent over gRPC (%s)" % compression)
        src.stop()
    want_pts = harness.pb_metric_points(fixture(FIXTURES["metrics"]))

    def everything():
        lines = sink.file_lines("out.jsonl")
        got = ([s for l in lines if "resourceSpans" in l for s in harness.j_traces(l)],
               [r for l in lines if "resourceLogs" in l for r in harness.j_logs(l)],
               [p for l in lines if "resourceMetrics" in l for p in harness.j_metric_points(l)])
        return got if (len(got[0]), len(got[1]), len(got[2])) == (300, 300,
                                                                  3 * len(want_pts)) else None
    spans, logs, pts = wait_until(everything, 15, what="every item in the receiving meltp's file")
    want = harness.pb_traces(fixture(FIXTURES["traces"]))
    assert sorted((s["spanId"], s["name"], s["traceId"]) for s in spans) == \
        sorted((s["spanId"], s["name"], s["traceId"]) for s in want * 3)
    want_logs = harness.pb_logs(fixture(FIXTURES["logs"]))
    assert sorted(json.dumps(r, sort_keys=True, default=str) for r in logs) == \
        sorted(json.dumps(r, sort_keys=True, default=str) for r in want_logs * 3)
    assert sorted(json.dumps(p, sort_keys=True) for p in pts) == \
        sorted(json.dumps(p, sort_keys=True) for p in want_pts * 3)


def _connects(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def test_real_tempo_grpc_trace_found_by_id():
    tempo = RealServer("tempo")
    m = Meltp(config(tempo.otlp_grpc, extra=FAST_RETRY))
    body = fixture(FIXTURES["traces"])
    want = harness.pb_traces(body)
    assert m.post("/v1/traces", body, PB)[0] == 200
    wait_until(lambda: m.metric("meltp_exporter_sent_items_total", exporter="otlp") == len(want),
               30, what="spans sent to Tempo over gRPC")
    by_trace = {}
    for sp in want:
        by_trace.setdefault(sp["traceId"], {})[sp["spanId"]] = sp["name"]
    for tid, names in by_trace.items():
        got = wait_until(lambda: tempo_trace(tempo, tid), 30, what="trace %s in Tempo" % tid)
        got_spans = harness.pb_traces(got)
        assert {s["spanId"]: s["name"] for s in got_spans} == names, tid
    # Tempo 2.0's gRPC receiver (an OpenTelemetry Collector receiver) also takes zstd and none
    for compression, tid in (("zstd", b"\x22" * 16), ("none", b"\x23" * 16)):
        other = Meltp(config(tempo.otlp_grpc, compression=compression, extra=FAST_RETRY))
        assert other.post("/v1/traces", make_traces([b"\x0a" * 8, b"\x0b" * 8], trace_id=tid),
                          PB)[0] == 200
        got = wait_until(lambda: tempo_trace(tempo, tid.hex()), 30,
                         what="%s trace in Tempo" % compression)
        assert sorted(s["spanId"] for s in harness.pb_traces(got)) == ["0a" * 8, "0b" * 8]
