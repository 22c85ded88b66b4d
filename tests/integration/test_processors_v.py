"""Processors normalize, validate and synthetic_guard end to end: OTLP/HTTP JSON in, file
exporter out. Renames and defaults, schema tag/drop/reject with partial_success and 400,
cardinality overflow, bad schema files with FILE:LINE via check-config, PII redact / hash /
drop / flag, and the synthetic=true requirement."""
import hashlib
import json
import os
import subprocess
import tempfile
import time

from harness import MELTP, Meltp, j_attrs, j_logs, j_metric_points, j_traces

JS = "application/json"

HEAD = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
processors:
%s
exporters:
  file/out:
    path: {dir}/out.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
%s
"""


def config(procs, names, signals=("traces", "logs", "metrics")):
    pipes = "".join("    %s:\n      receivers: [otlp]\n      processors: [%s]\n"
                    "      exporters: [file/out]\n" % (s, ", ".join(names)) for s in signals)
    return HEAD % (procs, pipes)


def sv(s):
    return {"stringValue": s}


def attrs(d):
    out = []
    for k, v in d.items():
        if isinstance(v, bool):
            out.append({"key": k, "value": {"boolValue": v}})
        elif isinstance(v, int):
            out.append({"key": k, "value": {"intValue": str(v)}})
        else:
            out.append({"key": k, "value": sv(v)})
    return out


def traces(spans, res=None):
    now = time.time_ns()
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": attrs(res if res is not None else {"service.name": "svc"})},
        "scopeSpans": [{"spans": [{
            "traceId": "01" * 16, "spanId": "%016x" % (i + 1), "name": "GET /x", "kind": 2,
            "startTimeUnixNano": str(sp.get("start", now - 1000000)),
            "endTimeUnixNano": str(sp.get("end", now)),
            "attributes": attrs(sp.get("attrs", {}))} for i, sp in enumerate(spans)]}]}]}).encode()


def logs(records, res=None):
    return json.dumps({"resourceLogs": [{
        "resource": {"attributes": attrs(res if res is not None else {"service.name": "svc"})},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": str(time.time_ns()), "body": sv(r.get("body", "")),
            "attributes": attrs(r.get("attrs", {}))} for r in records]}]}]}).encode()


def gauge(name, unit, points, res=None):
    return json.dumps({"resourceMetrics": [{
        "resource": {"attributes": attrs(res if res is not None else {"service.name": "svc"})},
        "scopeMetrics": [{"metrics": [{"name": name, "unit": unit, "gauge": {"dataPoints": [{
            "timeUnixNano": str(time.time_ns()), "asDouble": 1.0,
            "attributes": attrs(p)} for p in points]}}]}]}]}).encode()


def out_lines(m):
    assert m.stop() == 0
    return m.file_lines("out.jsonl")


def write(text, suffix=".yaml"):
    fd, path = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


# ---- normalize ----------------------------------------------------------------------------

NORM = """  normalize:
    renames: {{legacy.key: current.key}}
    environment: lab
    max_value_length: 8
    timestamps:
      max_future: 1h
      action: clamp
  normalize/flag:
    timestamps:
      max_past: 1h
      action: flag"""


def test_normalize_renames_defaults_units_truncation_timestamps():
    m = Meltp(config(NORM, ["normalize", "normalize/flag"]), extra_env={"OTEL_SERVICE_NAME": "from-env"})
    future = time.time_ns() + 3 * 3600 * 10**9
    st, _, _ = m.post("/v1/traces", traces([
        {"attrs": {"http.method": "GET", "http.status_code": 200, "legacy.key": "v",
                   "long": "abcdefghijkl"}, "start": future, "end": future + 5000},
        {"attrs": {"http.method": "old", "http.request.method": "POST"},
         "start": 1000, "end": 2000}], res={"deployment.environment": "prod"}), JS)
    assert st == 200
    st, _, _ = m.post("/v1/metrics", gauge("x.duration", "seconds", [{"db.system": "pg"}]), JS)
    assert st == 200
    renamed = m.metric("meltp_normalize_renamed_total", **{"from": "http.method",
                                                            "to": "http.request.method"})
    assert renamed == 2, renamed
    lines = out_lines(m)
    spans = [s for l in lines for s in j_traces(l)]
    assert len(spans) == 2
    a0, a1 = spans[0]["attributes"], spans[1]["attributes"]
    assert a0["http.request.method"] == "GET" and a0["http.response.status_code"] == 200
    assert a0["current.key"] == "v" and "legacy.key" not in a0 and "http.method" not in a0
    assert a0["long"] == "abcdefgh"
    # the current name wins over the old one
    assert a1["http.request.method"] == "POST" and "http.method" not in a1
    # the old span is flagged (past), the future one clamped to now keeping its duration
    assert a1["otel.timestamp.out_of_range"] == "past"
    raw = [sp for l in lines for rs in l.get("resourceSpans", []) for ss in rs["scopeSpans"]
           for sp in ss["spans"]]
    st0, en0 = int(raw[0]["startTimeUnixNano"]), int(raw[0]["endTimeUnixNano"])
    assert en0 - st0 == 5000 and en0 <= time.time_ns()
    res = spans[0]["resource"]
    assert res["service.name"] == "from-env"
    assert res["deployment.environment.name"] == "prod" and "deployment.environment" not in res
    mets = [mm for l in lines for rm in l.get("resourceMetrics", []) for sm in rm["scopeMetrics"]
            for mm in sm["metrics"]]
    assert mets[0]["unit"] == "s"
    assert j_attrs(mets[0]["gauge"]["dataPoints"][0]["attributes"]) == {"db.system.name": "pg"}
    # four exporter workers write the traces and metrics batches in either order: find the
    # metrics line by its key, never by its position
    mline = [l for l in lines if "resourceMetrics" in l]
    assert len(mline) == 1, lines
    rattrs = j_attrs(mline[0]["resourceMetrics"][0]["resource"]["attributes"])
    assert rattrs["deployment.environment.name"] == "lab"


# ---- validate -----------------------------------------------------------------------------

SCHEMA = """version: 1
resource:
  - name: need-service
    required: [service.name]
    action: reject
    message: "every resource needs service.name"
traces:
  - name: method-enum
    attributes:
      http.request.method: {type: string, enum: [GET, POST]}
    action: tag
  - name: method-required
    span_kind: server
    required: [http.request.method]
    action: drop
    message: "server spans need http.request.method"
metrics:
  - name: http-card
    match: '^http\\.'
    cardinality_limit: 2
logs:
  - name: body-size
    body_max_length: 10
    action: drop
"""


def validate_cfg(schema_path):
    return config("  validate:\n    schema_file: %s" % schema_path, ["validate"])


def test_validate_tag_drop_reject_and_counts():
    sp = write(SCHEMA)
    m = Meltp(validate_cfg(sp))
    st, _, body = m.post("/v1/traces", traces([
        {"attrs": {"http.request.method": "GET"}}, {"attrs": {}},
        {"attrs": {"http.request.method": "BREW"}}]), JS)
    assert st == 200, body
    doc = json.loads(body)
    assert int(doc["partialSuccess"]["rejectedSpans"]) == 1, doc
    assert "server spans need http.request.method" in doc["partialSuccess"]["errorMessage"]
    st, _, body = m.post("/v1/traces", traces([{"attrs": {}}], res={"host.name": "h"}), JS)
    assert st == 400 and b"every resource needs service.name" in body, (st, body)
    st, _, body = m.post("/v1/logs", logs([{"body": "short"}, {"body": "much too long body"}]), JS)
    assert st == 200 and int(json.loads(body)["partialSuccess"]["rejectedLogRecords"]) == 1
    assert m.metric("meltp_validate_violations_total", rule="method-required", service="svc",
                    action="drop") == 1
    assert m.metric("meltp_validate_violations_total", rule="method-enum", service="svc") == 1
    assert m.metric("meltp_validate_violations_total", rule="need-service",
                    service="unknown_service", action="reject") == 1
    lines = out_lines(m)
    spans = [s for l in lines for s in j_traces(l)]
    assert len(spans) == 2
    assert spans[1]["attributes"]["otel.schema.violation"] == "method-enum"
    assert "otel.schema.violation" not in spans[0]["attributes"]
    assert [r["body"] for l in lines for r in j_logs(l)] == ["short"]


def test_validate_cardinality_overflow_series():
    m = Meltp(validate_cfg(write(SCHEMA)))
    st, _, _ = m.post("/v1/metrics", gauge("http.requests", "1", [{"route": "/a"}, {"route": "/b"},
                                                                  {"route": "/c"}]), JS)
    assert st == 200
    st, _, _ = m.post("/v1/metrics", gauge("http.requests", "1", [{"route": "/a"}, {"route": "/d"}]), JS)
    assert st == 200
    assert m.metric("meltp_validate_violations_total", rule="http-card", action="overflow") == 2
    pts = [p for l in out_lines(m) for p in j_metric_points(l)]
    assert [p[2] for p in pts] == [{"route": "/a"}, {"route": "/b"},
                                   {"otel.metric.overflow": "true"}, {"route": "/a"},
                                   {"otel.metric.overflow": "true"}], pts


def test_bad_schema_file_errors_with_file_and_line():
    bad = "version: 1\ntraces:\n  - name: x\n    span_kind: sever\n    action: explode\n"
    sp = write(bad)
    cp = write(validate_cfg(sp).format(otlp=1, metrics=2, dir="/tmp"))
    p = subprocess.run([MELTP, "check-config", "--config", cp], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    err = p.stderr.decode()
    assert p.returncode == 1, (p.returncode, err)
    assert "%s:4: traces[0].span_kind: \"sever\" is not one of" % sp in err, err
    assert "%s:5: traces[0].action: \"explode\" is not one of tag, drop, reject" % sp in err, err
    # a missing file names the processor key in the main config
    cp = write(validate_cfg("/nonexistent/schema.yaml").format(otlp=1, metrics=2, dir="/tmp"))
    p = subprocess.run([MELTP, "check-config", "--config", cp], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    assert p.returncode == 1 and "/nonexistent/schema.yaml" in p.stderr.decode()
    # the shipped example is valid
    ex = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "schemas", "example.yaml")
    cp = write(validate_cfg(os.path.abspath(ex)).format(otlp=1, metrics=2, dir="/tmp"))
    p = subprocess.run([MELTP, "check-config", "--config", cp], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    assert p.returncode == 0, p.stderr.decode()


# ---- synthetic_guard ----------------------------------------------------------------------

GUARD = """  synthetic_guard:
    action: redact
    detector_actions: {{card: hash, ssn: drop, phone: flag}}
    allowed_email_domains: [synthetic.acme.io]
    mrn_patterns: ['MRN[0-9]{{6}}']
    require_synthetic:
      environments: [staging]"""


def test_guard_redact_hash_drop_flag():
    m = Meltp(config(GUARD, ["synthetic_guard"]))
    st, _, body = m.post("/v1/logs", logs([
        {"body": "mail jane@gmail.com and bot@synthetic.acme.io", "attrs": {"card": "4111 1111 1111 1111"}},
        {"body": "ssn 123-45-6789"},
        {"body": "call 415-555-2671", "attrs": {"mrn": "MRN123456"}},
        {"body": "nothing here 12345"}]), JS)
    assert st == 200, body
    assert int(json.loads(body)["partialSuccess"]["rejectedLogRecords"]) == 1
    assert m.metric("meltp_guard_findings_total", detector="ssn", service="svc", action="drop") == 1
    assert m.metric("meltp_guard_findings_total", detector="email", action="redact") == 1
    assert m.metric("meltp_guard_findings_total", detector="card", action="hash") == 1
    recs = [r for l in out_lines(m) for r in j_logs(l)]
    assert len(recs) == 3
    assert recs[0]["body"] == "mail ****@*****.*** and bot@synthetic.acme.io", recs[0]
    assert recs[0]["attributes"]["card"] == hashlib.sha256(b"4111 1111 1111 1111").hexdigest()
    assert recs[1]["body"] == "call 415-555-2671"
    assert recs[1]["attributes"]["otel.pii.detected"] == "phone"
    assert recs[1]["attributes"]["mrn"] == "*********"
    assert recs[2]["body"] == "nothing here 12345" and "otel.pii.detected" not in recs[2]["attributes"]
    assert "jane@gmail.com" not in m.logtext() and "123-45-6789" not in m.logtext()


def test_guard_requires_synthetic_marker_in_listed_environments():
    m = Meltp(config(GUARD, ["synthetic_guard"]))
    env = {"service.name": "svc", "deployment.environment.name": "staging"}
    st, _, body = m.post("/v1/traces", traces([{}, {}], res=env), JS)
    assert st == 200 and int(json.loads(body)["partialSuccess"]["rejectedSpans"]) == 2, body
    st, _, body = m.post("/v1/traces", traces([{}], res=dict(env, synthetic=True)), JS)
    assert st == 200 and b"rejected" not in body, body
    st, _, body = m.post("/v1/traces", traces([{}], res={"service.name": "svc",
                                                         "deployment.environment.name": "dev"}), JS)
    assert st == 200 and b"rejected" not in body, body
    assert m.metric("meltp_guard_findings_total", detector="synthetic_missing", service="svc") == 2
    assert len([s for l in out_lines(m) for s in j_traces(l)]) == 2
