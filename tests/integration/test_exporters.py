"""Exporter details: file rotation, otlphttp headers and zstd / JSON encodings."""
import json
import os

from harness import FakeOtlp, Meltp, make_traces, wait_until

PB = "application/x-protobuf"


def test_file_rotation_keeps_every_line():
    m = Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  file:
    path: {dir}/out/t.jsonl
    rotation:
      max_megabytes: 1
      max_backups: 5
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [file]}}
""")
    ids = []
    for r in range(30):
        batch = [bytes([r, i]) * 4 for i in range(100)]
        ids.extend(b.hex() for b in batch)
        st, _, _ = m.post("/v1/traces", make_traces(batch, name="x" * 200), PB)
        assert st == 200
    assert m.stop() == 0
    d = os.path.join(m.dir, "out")
    files = sorted(os.listdir(d))
    assert "t.jsonl" in files and "t.jsonl.1" in files, files
    got = []
    for f in files:
        assert os.path.getsize(os.path.join(d, f)) <= 1 << 20, f
        with open(os.path.join(d, f)) as fh:
            for line in fh:
                req = json.loads(line)
                got.extend(s["spanId"] for rs in req["resourceSpans"] for ss in rs["scopeSpans"]
                           for s in ss["spans"])
    assert sorted(got) == sorted(ids)


def test_otlphttp_sends_headers_and_gzip():
    backend = FakeOtlp()
    m = Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  otlphttp/tempo:
    endpoint: http://127.0.0.1:%d/
    headers:
      X-Scope-OrgID: lab-dev
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlphttp/tempo]}}
""" % backend.port)
    st, _, _ = m.post("/v1/traces", make_traces([b"\x09" * 8]), PB)
    assert st == 200
    wait_until(lambda: backend.requests, 5, what="request at backend")
    path, headers, _ = backend.requests[0]
    assert path == "/v1/traces"
    assert headers.get("X-Scope-OrgID") == "lab-dev", headers
    assert headers.get("Content-Encoding") == "gzip", headers
    assert headers.get("User-Agent", "").startswith("meltp/"), headers
    assert backend.spans()[0]["spanId"] == "09" * 8
    assert not backend.errors


def test_otlphttp_zstd_and_json_reach_another_meltp():
    gw = Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  file:
    path: {dir}/t.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [file]}}
""")
    m = Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  otlphttp/zstd:
    endpoint: http://127.0.0.1:%d
    compression: zstd
  otlphttp/json:
    endpoint: http://127.0.0.1:%d
    encoding: json
    compression: none
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlphttp/zstd, otlphttp/json]}}
""" % (gw.otlp, gw.otlp))
    st, _, _ = m.post("/v1/traces", make_traces([b"\x0a" * 8, b"\x0b" * 8]), PB)
    assert st == 200
    assert m.stop() == 0
    assert gw.stop() == 0
    lines = gw.file_lines("t.jsonl")
    assert len(lines) == 2 and lines[0] == lines[1], lines


def test_tenant_header_forwarded_and_never_mixed():
    backend = FakeOtlp()
    m = Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
processors:
  batch:
    timeout: 300ms
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:%d
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [otlphttp]}}
""" % backend.port)
    for i, tenant in enumerate(["lab-dev", "lab-stage", "lab-dev", None]):
        hdr = {"X-Scope-OrgID": tenant} if tenant else {}
        st, _, _ = m.post("/v1/traces", make_traces([bytes([0x40 + i]) * 8]), PB, headers=hdr)
        assert st == 200
    st, _, body = m.post("/v1/traces", make_traces([b"\x50" * 8]), PB,
                         headers={"X-Scope-OrgID": "bad tenant/../"})
    assert st == 400 and b"X-Scope-OrgID" in body, (st, body)
    wait_until(lambda: sum(len(x) for x in [backend.spans()]) == 4, 5, what="all spans")
    by_tenant = {}
    from harness import pb_traces
    for path, headers, body in backend.requests:
        ids = [s["spanId"] for s in pb_traces(body)]
        by_tenant.setdefault(headers.get("X-Scope-OrgID"), []).extend(ids)
    assert sorted(by_tenant["lab-dev"]) == ["4040404040404040", "4242424242424242"], by_tenant
    assert by_tenant["lab-stage"] == ["4141414141414141"], by_tenant
    assert by_tenant[None] == ["4343434343434343"], by_tenant
