"""The loki exporter against a strict fake Loki (fakeloki.py): the real OTLP JS SDK log
fixtures end to end (labels, structured metadata, lines, timestamps; protobuf+snappy and
JSON+gzip), per-stream ordering, tenants (request header, static, from an attribute, Loki's
401 without one), 429 retried without duplicates, and 400s (too far behind, line too long)
counted per reason in self-metrics and logged, never silent."""
import base64
import json
import time

import harness
from fakeloki import FakeLoki, snappy_decompress
from harness import Meltp, fixture, pb_fixed64, pb_kv_str, pb_len, pb_varint, wait_until

PB = "application/x-protobuf"

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  loki:
    endpoint: %s
    retry_on_failure:
      enabled: %s
      initial_interval: 100ms
      max_interval: 500ms
%s
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs: {{receivers: [otlp], exporters: [loki]}}
"""


def start(loki, extra="", retry=True):
    return Meltp(CONFIG % (loki.url, "true" if retry else "false", extra))


def make_logs(resources):
    """resources: [(resource attrs dict, [record dict(t, obs, body, sev, sevtext, attrs,
    event_name)])] -> ExportLogsServiceRequest bytes."""
    out = b""
    for rattrs, recs in resources:
        res = pb_len(1, b"".join(pb_len(1, pb_kv_str(k, v)) for k, v in rattrs.items()))
        lrs = b""
        for r in recs:
            lr = b""
            if r.get("t"):
                lr += pb_fixed64(1, r["t"])
            if r.get("sev"):
                lr += pb_varint(2, r["sev"])
            if r.get("sevtext"):
                lr += pb_len(3, r["sevtext"].encode())
            lr += pb_len(5, pb_len(1, r.get("body", "").encode()))
            for k, v in r.get("attrs", {}).items():
                lr += pb_len(6, pb_kv_str(k, v))
            if r.get("obs"):
                lr += pb_fixed64(11, r["obs"])
            if r.get("event_name"):
                lr += pb_len(12, r["event_name"].encode())
            lrs += pb_len(2, lr)
        out += pb_len(1, res + pb_len(2, pb_len(1, pb_len(1, b"scope")) + lrs))
    return out


def fixture_records(rel):
    """Records of an SDK fixture with what the exporter should make of them."""
    body = fixture(rel)
    recs = []
    for rl in harness.pb_get(body, 1):
        res = harness.pb_get(rl, 1)
        rattrs = harness.pb_attrs(res[0], 1) if res else {}
        for sl in harness.pb_get(rl, 2):
            for lr in harness.pb_get(sl, 2):
                f = {}
                for fn, _, v in harness.pb_fields(lr):
                    f.setdefault(fn, v)
                bodyv = harness.pb_get(lr, 5)
                recs.append({
                    "resource": rattrs,
                    "attrs": harness.pb_attrs(lr, 6),
                    "t": f.get(1, 0), "obs": f.get(11, 0), "sev": f.get(2, 0),
                    "body": harness.pb_anyvalue(bodyv[0]) if bodyv else None,
                    "trace_id": f.get(9, b"").hex(), "span_id": f.get(10, b"").hex(),
                    "event_name": f.get(12, b"").decode(),
                })
    return recs


def fixture_records_json(rel):
    doc = json.loads(fixture(rel))
    recs = []
    for rl in doc["resourceLogs"]:
        rattrs = harness.j_attrs(rl.get("resource", {}).get("attributes"))
        for sl in rl.get("scopeLogs", []):
            for lr in sl.get("logRecords", []):
                recs.append({
                    "resource": rattrs, "attrs": harness.j_attrs(lr.get("attributes")),
                    "t": int(lr.get("timeUnixNano", 0)), "obs": int(lr.get("observedTimeUnixNano", 0)),
                    "sev": lr.get("severityNumber", 0), "body": harness.j_anyvalue(lr.get("body")),
                    "trace_id": lr.get("traceId", "").lower(), "span_id": lr.get("spanId", "").lower(),
                    "event_name": lr.get("eventName", ""),
                })
    return recs


def expected_line(body):
    if isinstance(body, str):
        return body
    if isinstance(body, bytes):
        return base64.b64encode(body).decode()
    if isinstance(body, float) and body == int(body):
        return str(int(body))
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"]


def check_fixture(loki, rel, tenant):
    want = fixture_records_json(rel) if "json" in rel else fixture_records(rel)
    got = loki.entries(tenant)
    assert len(got) == len(want), (len(got), len(want))
    by_index = {}
    for t, labels, ts, line, sm in got:
        by_index[int(sm["log_index"])] = (labels, ts, line, sm)
    assert len(by_index) == len(want)
    for r in want:
        labels, ts, line, sm = by_index[r["attrs"]["log.index"]]
        assert labels["service_name"] == r["resource"]["service.name"], labels
        assert labels["service_namespace"] == "acceptance", labels
        assert labels["deployment_environment"] == "test", labels
        assert labels["level"] == LEVELS[(r["sev"] - 1) // 4], (labels, r["sev"])
        assert ("kind" in labels) == bool(r["event_name"]), labels
        assert set(labels) <= {"service_name", "service_namespace", "deployment_environment",
                               "level", "kind"}, labels
        assert ts == (r["t"] or r["obs"]), (ts, r["t"])
        assert line == expected_line(r["body"]), (line, r["body"])
        if r["trace_id"]:
            assert sm["trace_id"] == r["trace_id"] and sm["span_id"] == r["span_id"], sm
        else:
            assert "trace_id" not in sm
        if r["event_name"]:
            assert sm["event_name"] == r["event_name"]
        assert sm["code_function_name"] == r["attrs"]["code.function.name"]
        assert sm["user_roles"] == '["reader","writer"]'
        assert sm["retry"] == ("true" if r["attrs"]["retry"] else "false")
        if "exception.stacktrace" in r["attrs"]:
            assert sm["exception_stacktrace"] == r["attrs"]["exception.stacktrace"]
    # per stream, in timestamp order as pushed
    per_stream = {}
    for t, labels, ts, line, sm in got:
        per_stream.setdefault(tuple(sorted(labels.items())), []).append(ts)
    for k, tss in per_stream.items():
        assert tss == sorted(tss), k
    return want


def test_loki_sdk_fixture_protobuf_snappy():
    loki = FakeLoki()
    m = start(loki)
    st, _, _ = m.post("/v1/logs", fixture("otlp-js/logs-n100/logs-proto-1.bin"), PB,
                      headers={"X-Scope-OrgID": "team-x"})
    assert st == 200
    wait_until(lambda: loki.count() >= 100, 10, what="100 entries at Loki")
    want = check_fixture(loki, "otlp-js/logs-n100/logs-proto-1.bin", "team-x")
    h = loki.requests[0][0]
    assert h["content-type"] == "application/x-protobuf" and h["content-encoding"] == "snappy"
    assert h["x-scope-orgid"] == "team-x"
    assert not loki.errors, loki.errors
    wait_until(lambda: m.metric("meltp_loki_entries_sent_total") == 100, 5, what="sent metric")
    for svc in set(r["resource"]["service.name"] for r in want):
        n = sum(1 for r in want if r["event_name"] and r["resource"]["service.name"] == svc)
        assert m.metric("meltp_events_received_total", service=svc) == n, svc
    assert m.metric("meltp_events_received_total") == 14


def test_loki_sdk_fixture_json_gzip_and_n1():
    loki = FakeLoki()
    m = start(loki, "    encoding: json\n    tenant_id: static-1")
    st, _, _ = m.post("/v1/logs", fixture("otlp-js/logs-n100/logs-json-1.bin"),
                      "application/json", headers={"X-Scope-OrgID": "ignored"})
    assert st == 200
    wait_until(lambda: loki.count() >= 100, 10, what="100 entries at Loki")
    check_fixture(loki, "otlp-js/logs-n100/logs-json-1.bin", "static-1")
    h = loki.requests[0][0]
    assert h["content-type"] == "application/json" and h["content-encoding"] == "gzip"
    st, _, _ = m.post("/v1/logs", fixture("otlp-js/logs-n1/logs-proto-1.bin"), PB)
    assert st == 200
    wait_until(lambda: loki.count() >= 101, 10, what="n1 entry")
    assert not loki.errors, loki.errors


def test_loki_sorts_each_stream_before_pushing():
    """One request whose entries span two hours in reverse order: pushed unsorted, Loki's
    ingester would refuse the older ones as too far behind."""
    loki = FakeLoki()
    m = start(loki)
    base = int(time.time() * 1e9)
    recs = [{"t": base - i * 600 * 10**9, "sev": 9, "body": "m%d" % i} for i in range(13)]
    recs.append({"t": 0, "obs": base - 5 * 10**9, "sev": 9, "body": "observed-only"})
    st, _, _ = m.post("/v1/logs", make_logs([({"service.name": "sorter"}, recs)]), PB,
                      headers={"X-Scope-OrgID": "t1"})
    assert st == 200
    wait_until(lambda: loki.count() >= 14, 10, what="14 entries")
    got = loki.entries("t1")
    tss = [e[2] for e in got]
    assert tss == sorted(tss)
    assert [e[3] for e in got][-1] == "m0"
    assert any(e[3] == "observed-only" and e[2] == base - 5 * 10**9 for e in got)
    assert loki.requests[-1][1] == 204
    assert m.metric("meltp_loki_entries_dropped_total") == 0


def test_loki_400_too_far_behind_is_counted_and_logged():
    loki = FakeLoki()
    m = start(loki)
    now = int(time.time() * 1e9)
    st, _, _ = m.post("/v1/logs", make_logs([({"service.name": "late"},
                                              [{"t": now, "sev": 9, "body": "new"}])]), PB,
                      headers={"X-Scope-OrgID": "t1"})
    assert st == 200
    wait_until(lambda: loki.count() >= 1, 10, what="first entry")
    old = [{"t": now - 2 * 3600 * 10**9 + i, "sev": 9, "body": "old%d" % i} for i in range(3)]
    ok = [{"t": now - 60 * 10**9, "sev": 9, "body": "fine"}]
    st, _, _ = m.post("/v1/logs", make_logs([({"service.name": "late"}, old + ok)]), PB,
                      headers={"X-Scope-OrgID": "t1"})
    assert st == 200
    wait_until(lambda: m.metric("meltp_loki_entries_dropped_total", reason="too_far_behind") == 3,
               10, what="too_far_behind drops counted")
    assert loki.count() == 2  # Loki stored the entry inside the window
    wait_until(lambda: m.metric("meltp_loki_entries_sent_total") == 2, 10, what="2 sent")
    wait_until(lambda: m.metric("meltp_exporter_dropped_items_total",
                                reason="rejected_by_backend") == 3, 10,
               what="the refused entries counted as dropped")
    assert "too_far_behind" in m.logtext() and "too far behind" in m.logtext()


def test_loki_400_line_too_long():
    loki = FakeLoki(max_line_size=64)
    m = start(loki)
    now = int(time.time() * 1e9)
    recs = [{"t": now + i, "sev": 17, "body": ("x" * 100 if i % 2 else "short")} for i in range(6)]
    st, _, _ = m.post("/v1/logs", make_logs([({"service.name": "long"}, recs)]), PB,
                      headers={"X-Scope-OrgID": "t1"})
    assert st == 200
    wait_until(lambda: m.metric("meltp_loki_entries_dropped_total", reason="line_too_long") == 3,
               10, what="line_too_long drops")
    assert loki.count() == 3


def test_loki_429_retried_without_duplicates():
    loki = FakeLoki()
    loki.fail_next = [(429, "Ingestion rate limit exceeded for user t1 (limit: 1 bytes/sec)", 1),
                      (503, "ingester unavailable", None)]
    m = start(loki)
    now = int(time.time() * 1e9)
    recs = [{"t": now + i, "sev": 9, "body": "r%d" % i} for i in range(20)]
    st, _, _ = m.post("/v1/logs", make_logs([({"service.name": "retry"}, recs)]), PB,
                      headers={"X-Scope-OrgID": "t1"})
    assert st == 200
    wait_until(lambda: loki.count() >= 20, 15, what="entries after retries")
    time.sleep(0.3)  # an absence: a duplicate would come right behind; no wait can show none
    assert loki.count() == 20
    assert [r[1] for r in loki.requests] == [429, 503, 204]
    assert m.metric("meltp_exporter_retries_total") >= 2
    assert m.metric("meltp_loki_entries_dropped_total") == 0


def test_loki_tenants_from_attribute_split_and_401_without_tenant():
    loki = FakeLoki()
    m = start(loki, "    tenant_from_attribute: loki.tenant", retry=False)
    now = int(time.time() * 1e9)
    body = make_logs([
        ({"service.name": "a", "loki.tenant": "team-a"}, [{"t": now, "body": "a1"},
                                                          {"t": now + 1, "body": "a2"}]),
        ({"service.name": "b", "loki.tenant": "team-b"}, [{"t": now, "body": "b1"}]),
        ({"service.name": "c"}, [{"t": now, "body": "c1"}]),
    ])
    st, _, _ = m.post("/v1/logs", body, PB, headers={"X-Scope-OrgID": "fallback"})
    assert st == 200
    wait_until(lambda: loki.count() >= 4, 10, what="4 entries")
    assert sorted(e[3] for e in loki.entries("team-a")) == ["a1", "a2"]
    assert [e[3] for e in loki.entries("team-b")] == ["b1"]
    assert [e[3] for e in loki.entries("fallback")] == ["c1"]
    assert all(e[1]["service_name"] in ("a", "b", "c") for e in loki.entries())
    # no tenant anywhere: Loki (auth_enabled) answers 401, the loss is counted
    st, _, _ = m.post("/v1/logs", make_logs([({"service.name": "c"}, [{"t": now, "body": "x"}])]),
                      PB)
    assert st == 200
    wait_until(lambda: m.metric("meltp_loki_entries_dropped_total", reason="http_401") == 1, 10,
               what="401 drop counted")
    assert loki.count() == 4


def test_loki_label_policy_options():
    loki = FakeLoki(auth_enabled=False)
    m = start(loki, """    labels:
      resource: [service.name, host.name=host]
      attributes: [http.route]
      event_kind: false
    structured_metadata: false
    line_format: logfmt""")
    now = int(time.time() * 1e9)
    body = make_logs([({"service.name": "pol", "host.name": "h1", "k8s.pod.name": "p-1"},
                       [{"t": now, "sevtext": "ERROR", "body": "boom",
                         "attrs": {"http.route": "/api", "user.id": "u 1"},
                         "event_name": "ev.one"}])])
    st, _, _ = m.post("/v1/logs", body, PB)
    assert st == 200
    wait_until(lambda: loki.count() >= 1, 10, what="entry")
    (t, labels, ts, line, sm), = loki.entries()
    assert labels == {"service_name": "pol", "host": "h1", "http_route": "/api",
                      "level": "error"}, labels
    assert sm == {}
    assert line == 'msg=boom user_id="u 1" event_name=ev.one', line
    assert m.metric("meltp_events_received_total", service="pol") == 1


def test_loki_config_refuses_more_than_15_labels():
    import subprocess
    import tempfile
    d = tempfile.mkdtemp()
    path = d + "/c.yaml"
    with open(path, "w") as f:
        f.write("""receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:4318
exporters:
  loki:
    endpoint: http://127.0.0.1:3100/loki/api/v1/push
    labels:
      attributes: [a, b, c, d, e, f, g, h, i, j, k]
service:
  pipelines:
    logs: {receivers: [otlp], exporters: [loki]}
""")
    p = subprocess.run([harness.MELTP, "check-config", "--config", path], capture_output=True,
                       text=True, timeout=20)
    assert p.returncode != 0
    out = p.stderr + p.stdout
    assert "c.yaml:" in out and "exporters.loki." in out and "more than 15 label" in out, out


def test_fakeloki_snappy_decoder_handles_copies():
    # literal "abcd" then copy1 len 8 offset 4 -> "abcdabcdabcd"
    data = bytes([12, 0x0c]) + b"abcd" + bytes([((8 - 4) << 2) | 1, 4])
    assert snappy_decompress(data) == b"abcdabcdabcd"
