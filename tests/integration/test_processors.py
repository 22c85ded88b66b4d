"""Processors: resource and attributes actions change exactly what they should, in every
signal; memory_limiter refuses with 503 + Retry-After before decoding when over its limit."""
import hashlib
import struct

from harness import Meltp, fixture, free_port, make_traces, wait_until, j_attrs

PB = "application/x-protobuf"

CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
processors:
  resource:
    attributes:
      - {{key: deployment.environment, value: lab-dev, action: upsert}}
      - {{key: service.name, value: overwritten, action: insert}}
      - {{key: host.name, action: delete}}
      - {{key: tenant, value: 42, action: insert}}
  attributes:
    actions:
      - {{key: k, action: hash}}
      - {{key: copied, from_attribute: k, action: insert}}
      - {{key: http.route, value: /x, action: update}}
      - {{key: added, value: "yes", action: upsert}}
exporters:
  file/t:
    path: {dir}/t.jsonl
  file/l:
    path: {dir}/l.jsonl
  file/raw:
    path: {dir}/raw.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [resource, attributes]
      exporters: [file/t]
    traces/raw:
      receivers: [otlp]
      exporters: [file/raw]
    logs:
      receivers: [otlp]
      processors: [resource, attributes]
      exporters: [file/l]
"""


def test_resource_and_attributes_actions():
    m = Meltp(CFG)
    st, _, _ = m.post("/v1/traces", make_traces([b"\x01" * 8, b"\x02" * 8], service="svc"), PB)
    assert st == 200
    assert m.stop() == 0
    lines = m.file_lines("t.jsonl")
    rs = lines[0]["resourceSpans"][0]
    rattrs = j_attrs(rs["resource"]["attributes"])
    assert rattrs == {"service.name": "svc", "deployment.environment": "lab-dev", "tenant": 42}, rattrs
    h = hashlib.sha256(b"v").hexdigest()
    for sp in rs["scopeSpans"][0]["spans"]:
        a = j_attrs(sp["attributes"])
        # copied runs after hash, so it copies the hashed value
        assert a == {"k": h, "copied": h, "added": "yes"}, a
    # the second pipeline of the same signal gets the data unchanged
    raw = m.file_lines("raw.jsonl")[0]["resourceSpans"][0]
    assert j_attrs(raw["resource"]["attributes"]) == {"service.name": "svc"}
    assert j_attrs(raw["scopeSpans"][0]["spans"][0]["attributes"]) == {"k": "v"}


def test_processors_apply_to_logs_fixture():
    m = Meltp(CFG)
    st, _, _ = m.post("/v1/logs", fixture("otlp-js/logs-n100/logs-proto-1.bin"), PB)
    assert st == 200
    assert m.stop() == 0
    recs = [lr for l in m.file_lines("l.jsonl") for r in l["resourceLogs"]
            for s in r["scopeLogs"] for lr in s["logRecords"]]
    assert len(recs) == 100
    for r in m.file_lines("l.jsonl")[0]["resourceLogs"]:
        assert j_attrs(r["resource"]["attributes"])["deployment.environment"] == "lab-dev"
    assert all(j_attrs(lr["attributes"])["added"] == "yes" for lr in recs)


def test_memory_limiter_refuses_with_503():
    dead = free_port()
    m = Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
processors:
  memory_limiter:
    limit_mib: 1
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:%d
    sending_queue:
      queue_size: 10000
    retry_on_failure:
      initial_interval: 10s
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], processors: [memory_limiter], exporters: [otlphttp]}}
""" % dead)
    body = fixture("otlp-js/traces-n100/traces-proto-1.bin")
    statuses = []
    for i in range(60):
        st, hdrs, _ = m.post("/v1/traces", body, PB)
        statuses.append(st)
        if st == 503:
            assert hdrs.get("retry-after"), hdrs
            break
    assert statuses[0] == 200 and statuses[-1] == 503, statuses
    accepted = statuses.count(200)
    # the limit (1 MiB) bounds what was taken: each body is ~37 KB
    assert accepted * len(body) <= (1 << 20) + len(body), accepted
    assert m.metric("meltp_receiver_refused_requests_total", reason="memory_limit") >= 1
