"""One tenant policy for every receiver (collector/receivers/recv.c): X-Scope-OrgID is checked
once, the same way, by OTLP/HTTP, remote-write and Pyroscope (before the body is read). A valid id travels with the data;
an invalid one (bad characters, too long, "." or "..") is refused with 400 "bad_tenant",
counted, and never reaches a queue (remote-write used to drop the header silently and file the
data under no tenant)."""
from harness import Meltp, make_traces
from test_prw_receiver import PATH, V1, rw1_series, snappy_encode

CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
  prometheusremotewrite:
    endpoint: 127.0.0.1:%d
  pyroscope:
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
    metrics: {{receivers: [prometheusremotewrite], exporters: [file]}}
    profiles: {{receivers: [pyroscope], exporters: [file]}}
"""

BAD = ["..", ".", "a b", "x" * 64, "t/../x", "caf\u00e9", "a|b"]


def rw_body(v):
    return snappy_encode(rw1_series([("__name__", "up"), ("job", "j")], [(v, 1700000000000)]))


def test_one_tenant_policy_for_otlp_and_remote_write():
    import harness
    prw_port, pyro_port = harness.free_port(), harness.free_port()
    m = Meltp(CFG % (prw_port, pyro_port))
    rw = "http://127.0.0.1:%d%s" % (prw_port, PATH)
    ingest = "http://127.0.0.1:%d/ingest?name=app.cpu&from=1700000000&until=1700000010" \
        "&format=folded" % pyro_port
    for i, bad in enumerate(BAD):
        hdr = {"X-Scope-OrgID": bad}
        st, _, body = m.post("/v1/traces", make_traces([bytes([0x60 + i]) * 8]),
                             "application/x-protobuf", headers=hdr)
        assert st == 400 and b"X-Scope-OrgID" in body, (bad, st, body)
        st, _, body = harness.http_request(rw, rw_body(i), V1, "snappy", headers=hdr)
        assert st == 400 and b"X-Scope-OrgID" in body, (bad, st, body)
        st, _, body = harness.http_request(ingest, b"main;work 3\n", "text/plain", headers=hdr)
        assert st == 400 and b"X-Scope-OrgID" in body, (bad, st, body)
    assert m.metric("meltp_receiver_refused_requests_total", reason="bad_tenant") == 3 * len(BAD)
    for tenant in ("lab-dev", "a.b", "x" * 63):
        hdr = {"X-Scope-OrgID": tenant}
        assert m.post("/v1/traces", make_traces([b"\x01" * 8]), "application/x-protobuf",
                      headers=hdr)[0] == 200
        assert harness.http_request(rw, rw_body(1.0), V1, "snappy", headers=hdr)[0] == 204
        assert harness.http_request(ingest, b"main;work 3\n", "text/plain", headers=hdr)[0] == 200
    assert m.metric("meltp_receiver_requests_total", code="400") == 3 * len(BAD)
    assert m.metric("meltp_receiver_requests_total", code="200") == 6
    assert m.metric("meltp_receiver_requests_total", code="204") == 3
    lines = m.file_lines("out.jsonl") if m.stop() == 0 else []
    # nothing refused reached the exporter: only the 6 accepted requests' items
    spans = sum(1 for l in lines for rs in l.get("resourceSpans", []) for ss in rs["scopeSpans"]
                for _ in ss["spans"])
    points = sum(1 for l in lines for rm in l.get("resourceMetrics", [])
                 for sm in rm["scopeMetrics"] for mm in sm["metrics"]
                 for _ in mm.get("gauge", mm.get("sum", {})).get("dataPoints", []))
    profiles = sum(len(l.get("resourceProfiles", [])) for l in lines)
    assert spans == 3 and points == 3 and profiles == 3, (spans, points, profiles)
