"""`meltp validate`: fixture sets with known gaps, schema violations and PII give exactly the
expected report (JSON compared field by field), exit codes 0/1/2, every output format is well
formed, request bodies of every kind decode, the same schema counts the same inline (`meltp run`
with the validate processor) and in validation mode, and --listen audits live traffic.

Fixture set tests/fixtures/validate/basic: services checkout (everything, one span without
http.request.method, a Luhn-valid card number in a log body, one long log body), payments (no
logs, no profiles; an SSN in a span attribute), inventory (no environment; a duration gauge in
ms), billing (required by the policy, never seen)."""
import gzip
import html.parser
import json
import os
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET

import harness

SET = os.path.join(harness.ROOT, "tests", "fixtures", "validate", "basic")


def validate(*args, cwd=SET, env=None, timeout=60):
    """Runs meltp validate in the fixture directory; returns (exit code, stdout, stderr)."""
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([harness.MELTP, "validate"] + list(args), cwd=cwd, env=e,
                       capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def report(*args, expect=1):
    rc, out, err = validate(*(list(args) + ["--format", "json"]))
    assert rc == expect, (rc, err, out[:2000])
    return json.loads(out)


def by_service(rep):
    return {(s["service"], s["environment"]): s for s in rep["services"]}


def sig(metrics=0, events=0, logs=0, traces=0, profiles=0):
    return {"metrics": metrics, "events": events, "logs": logs, "traces": traces,
            "profiles": profiles}


# ---- the expected report, field by field ----------------------------------------------

def test_report_json_field_by_field():
    rep = report("--config", "config.yaml", "--input", "telemetry.jsonl", "--policy", "policy.yaml")
    assert rep["ok"] is False
    assert rep["summary"] == {"requests": 4, "items": 13, "dropped_by_processors": 0,
                              "rejected_requests": 0, "input_errors": 0}, rep["summary"]
    svcs = by_service(rep)
    assert list(svcs) == [("billing", ""), ("checkout", "prod"), ("inventory", ""),
                          ("payments", "prod")], list(svcs)

    ck = svcs[("checkout", "prod")]
    assert ck["signals"] == sig(metrics=2, events=2, logs=2, traces=2, profiles=1), ck
    assert ck["missing"] == [] and ck["missing_attributes"] == [] and ck["policy"] == "checkout"
    assert ck["first_seen"]["traces"] == "2023-11-14T22:13:20.000Z", ck["first_seen"]
    assert ck["last_seen"]["traces"] == "2023-11-14T22:13:25.000Z", ck["last_seen"]
    assert ck["first_seen"]["events"] == "2023-11-14T22:13:27.000Z"
    assert ck["last_seen"]["events"] == "2023-11-14T22:13:28.000Z"
    assert ck["first_seen"]["profiles"] == "2023-11-14T22:13:29.000Z"

    pay = svcs[("payments", "prod")]
    assert pay["signals"] == sig(metrics=1, traces=1), pay
    assert pay["missing"] == ["logs", "profiles"], pay       # "pay*" beats "*"
    assert pay["missing_attributes"] == [] and pay["policy"] == "pay*"
    assert set(pay["first_seen"]) == {"metrics", "traces"}

    inv = svcs[("inventory", "")]
    assert inv["signals"] == sig(metrics=2), inv
    assert inv["missing"] == [] and inv["policy"] == "*"
    assert inv["missing_attributes"] == ["deployment.environment.name"], inv

    bill = svcs[("billing", "")]
    assert bill["signals"] == sig() and bill["missing"] == ["metrics", "traces"], bill
    assert bill["first_seen"] == {} and bill["policy"] == "billing"

    viol = {(v["rule"], v["service"]): v for v in rep["violations"]}
    assert set(viol) == {("duration-in-seconds", "inventory"), ("http-method-required", "checkout"),
                         ("log-body-length", "checkout")}, viol
    assert viol[("duration-in-seconds", "inventory")]["count"] == 2
    assert viol[("duration-in-seconds", "inventory")]["examples"] == [
        'metric "inventory.lookup.duration": unit']
    assert viol[("http-method-required", "checkout")]["count"] == 1
    assert viol[("http-method-required", "checkout")]["examples"] == [
        'span "POST /pay": missing required attribute http.request.method']
    assert viol[("log-body-length", "checkout")]["count"] == 1
    for v in rep["violations"]:
        assert 1 <= len(v["examples"]) <= 3

    assert rep["pii"] == [   # no synthetic_guard in these pipelines: nothing acts on them
        {"detector": "card", "service": "checkout", "where": "log.body", "action": "none",
         "count": 1},
        {"detector": "ssn", "service": "payments", "where": "span.attributes[user.ssn]",
         "action": "none", "count": 1},
    ], rep["pii"]

    slo = {c["service"]: c for c in rep["slo_coverage"]}
    assert set(slo) == {"billing", "checkout", "inventory", "payments"}
    assert slo["payments"]["has_slo"] is False and slo["payments"]["gap"] is False
    ck_slo = slo["checkout"]
    assert ck_slo["has_slo"] and ck_slo["require_slo"] and ck_slo["gap"], ck_slo
    slos = {s["name"]: s for s in ck_slo["slos"]}
    assert slos["availability"]["sli_series"] == ["http_server_request_duration_seconds_count"]
    assert slos["availability"]["missing_series"] == []
    assert slos["orders-latency"]["missing_series"] == [
        "checkout_order_latency_seconds_bucket", "checkout_order_latency_seconds_count"]

    tp = rep["translation_preview"]
    mets = {m["name"]: m for m in tp["metrics"]}
    assert mets["http.server.request.duration"]["prometheus"] == [
        "http_server_request_duration_seconds_bucket", "http_server_request_duration_seconds_count",
        "http_server_request_duration_seconds_sum"]
    assert {"http_request_method", "http_response_status_code", "le", "job"} <= set(
        mets["http.server.request.duration"]["labels"])
    assert mets["checkout.orders"]["prometheus"] == ["checkout_orders_total"]
    assert "payment_method" in mets["checkout.orders"]["labels"]
    assert mets["inventory.lookup.duration"]["prometheus"] == ["inventory_lookup_duration_milliseconds"]
    assert {"service_version", "deployment_environment_name"} <= set(tp["target_info_labels"])
    logs = tp["logs"]
    assert [(l["service"], l["environment"]) for l in logs] == [("checkout", "prod")]
    assert logs[0]["index_labels"] == ["deployment_environment", "level", "service_name"]
    assert {"cart_items", "order_id", "payment_method", "service_version", "trace_id",
            "span_id", "scope_name"} <= set(logs[0]["structured_metadata"]), logs[0]
    assert rep["input_errors"] == []


def test_pii_values_never_printed():
    for fmt in ("text", "json", "markdown", "junit", "html"):
        rc, out, err = validate("--config", "config.yaml", "--input", "telemetry.jsonl",
                                "--policy", "policy.yaml", "--format", fmt)
        assert rc == 1, (fmt, rc, err)
        for secret in ("536-22-8190", "4539 1488 0343 6467", "4539"):
            assert secret not in out and secret not in err, (fmt, secret)


def test_policy_met_exits_zero():
    rep = report("--config", "config.yaml", "--input", "clean.jsonl", "--policy", "policy-clean.yaml",
                 expect=0)
    assert rep["ok"] is True and rep["violations"] == [] and rep["pii"] == []
    assert by_service(rep)[("checkout", "prod")]["signals"] == sig(metrics=1, traces=1)
    # without a policy nothing is required: the full set still fails on violations and PII
    rep = report("--config", "config.yaml", "--input", "telemetry.jsonl")
    assert all(s["missing"] == [] and s["policy"] is None for s in rep["services"])
    assert rep["violations"] and rep["pii"]


# ---- SLO specs: every dialect the SLO engine reads ------------------------------------------

SLOS = os.path.join(harness.ROOT, "rules", "slos")


def test_slo_specs_of_every_dialect_in_rules_slos():
    """Each spec of rules/slos (OpenSLO, native meltp/v1, Sloth) loads through the SLO engine's
    loader: no exit 2, its SLOs are listed under their service with the series they read."""
    expect = {
        "openslo-scheduling.yaml": ("scheduling", {
            "booking-availability": ["bookings_total"],
            "search-latency": ["slot_search_duration_seconds_bucket",
                               "slot_search_duration_seconds_count"]}),
        "patient-api.yaml": ("patient-api", {
            "availability": [],   # a spans SLI: no Prometheus series
            "latency": ["http_server_request_duration_seconds_bucket",
                        "http_server_request_duration_seconds_count"]}),
        "sloth-billing.yaml": ("billing", {
            "requests-availability": ["http_requests_total"],
            "invoice-jobs": ["invoice_jobs_failed_total", "invoice_jobs_total"]}),
    }
    assert sorted(expect) == sorted(f for f in os.listdir(SLOS) if f.endswith(".yaml"))
    with tempfile.TemporaryDirectory() as d:
        for name, (service, slos) in sorted(expect.items()):
            pol = os.path.join(d, "policy.yaml")
            with open(pol, "w") as f:
                f.write("slo_specs: [%s]\n" % os.path.join(SLOS, name))
            rc, out, err = validate("--config", "config.yaml", "--input", "telemetry.jsonl",
                                    "--policy", pol, "--format", "json")
            assert rc == 1, (name, rc, err)
            cov = {c["service"]: c for c in json.loads(out)["slo_coverage"]}
            got = {s["name"]: s["sli_series"] for s in cov[service]["slos"]}
            assert got == slos, (name, got)
            assert all(s["file"].endswith(name) for s in cov[service]["slos"])


def test_slo_spec_errors_name_the_spec_file_and_line():
    with tempfile.TemporaryDirectory() as d:
        spec = os.path.join(d, "bad.yaml")
        with open(spec, "w") as f:
            f.write("version: prometheus/v1\nservice: x\nslos:\n  - name: a\n"
                    "    objective: 250\n")
        pol = os.path.join(d, "policy.yaml")
        with open(pol, "w") as f:
            f.write("slo_specs: [%s]\n" % spec)
        rc, out, err = validate("--config", "config.yaml", "--input", "telemetry.jsonl",
                                "--policy", pol)
        assert rc == 2 and out == "", (rc, err)
        assert spec + ":4:" in err or spec + ":5:" in err, err


# ---- PII behind a synthetic_guard ----------------------------------------------------------

GUARD = os.path.join(harness.ROOT, "tests", "fixtures", "validate", "guard")
SSN, CARD = "536-22-8190", "4539 1488 0343 6467"


def test_pii_found_before_a_redacting_guard():
    """The guard (action redact, the default) rewrites the log body before anything else looks:
    the audit scans what arrived and says what the pipeline did."""
    rc, out, err = validate("--config", "config.yaml", "--input", "guard.jsonl", "--format",
                            "json", cwd=GUARD)
    assert rc == 1, (rc, err)
    rep = json.loads(out)
    assert rep["pii"] == [
        {"detector": "card", "service": "signup", "where": "log.body", "action": "redact",
         "count": 1},
        {"detector": "ssn", "service": "signup", "where": "log.body", "action": "redact",
         "count": 1},
    ], rep["pii"]
    assert rep["ok"] is False


def test_pii_action_per_guard_and_detector():
    rep = json.loads(validate("--config", "config-actions.yaml", "--input", "actions.jsonl",
                              "--format", "json", cwd=GUARD)[1])
    got = {(p["detector"], p["service"], p["where"]): (p["action"], p["count"])
           for p in rep["pii"]}
    assert got == {
        ("ssn", "signup", "log.body"): ("hash", 1),                     # detector_actions
        ("card", "signup", "log.body"): ("drop", 1),
        ("ssn", "signup", "span.attributes[user.ssn]"): ("flag", 1),    # action: flag
        ("ssn", "signup", "span.name"): ("none", 1),                    # guards skip names
        ("ssn", "legacy", "span.attributes[user.ssn]"): ("drop", 1),    # no synthetic marker
        ("card", "signup", "metric.attributes[card]"): ("none", 1),     # no guard in metrics
    }, got
    assert rep["summary"]["dropped_by_processors"] == 2, rep["summary"]


def test_guarded_pii_values_never_printed():
    """Neither the report (every format, stdout or --output) nor the log shows the raw SSN or
    card number, although the audit now sees them before the guard masks them."""
    with tempfile.TemporaryDirectory() as d:
        for cfg, inp in (("config.yaml", "guard.jsonl"), ("config-actions.yaml", "actions.jsonl")):
            for fmt in ("text", "json", "markdown", "junit", "html"):
                dest = os.path.join(d, "report." + fmt)
                rc, out, err = validate("--config", cfg, "--input", inp, "--format", fmt,
                                        cwd=GUARD)
                rc2, out2, err2 = validate("--config", cfg, "--input", inp, "--format", fmt,
                                           "--output", dest, cwd=GUARD)
                assert rc == 1 and rc2 == 1, (cfg, fmt, rc, rc2, err, err2)
                with open(dest) as f:
                    written = f.read()
                assert "redact" in out or "hash" in out, (cfg, fmt, out[:500])
                for text in (out, err, written, out2, err2):
                    for secret in (SSN, CARD, CARD.replace(" ", ""), "4539", "8190"):
                        assert secret not in text, (cfg, fmt, secret)


# ---- exit code 2: usage and configuration errors ------------------------------------------

def test_bad_policy_file_line():
    rc, out, err = validate("--config", "config.yaml", "--input", "telemetry.jsonl",
                            "--policy", "bad-policy.yaml")
    assert rc == 2, (rc, err)
    assert 'bad-policy.yaml:4: services.checkout.signals: unknown signal "metric"' in err, err
    assert "bad-policy.yaml:6: services.checkout.colour: unknown key" in err, err
    assert out == ""


def test_bad_schema_file_line():
    rc, out, err = validate("--config", "config-bad-schema.yaml", "--input", "telemetry.jsonl")
    assert rc == 2, (rc, err)
    assert "bad-schema.yaml:5: traces[0].bogus_key" in err, err
    rc, out, err = validate("--config", "config.yaml", "--input", "telemetry.jsonl",
                            "--schema", "bad-schema.yaml")
    assert rc == 2 and "bad-schema.yaml:5:" in err, (rc, err)


def test_usage_errors():
    cases = [
        ([], "--config FILE is required"),
        (["--config", "config.yaml"], "give --input PATH or --listen DURATION"),
        (["--config", "config.yaml", "--input", "telemetry.jsonl", "--format", "pdf"],
         'unknown format "pdf"'),
        (["--config", "config.yaml", "--listen", "soon"], "not a positive duration"),
        (["--config", "config.yaml", "--input", "missing.jsonl"], "missing.jsonl"),
        (["--config", "config.yaml", "--bogus", "1"], 'unknown option "--bogus"'),
        (["--config", "nope.yaml", "--input", "telemetry.jsonl"], "nope.yaml"),
    ]
    for args, msg in cases:
        rc, out, err = validate(*args)
        assert rc == 2, (args, rc, err)
        assert msg in err, (args, err)
    rc, out, _ = validate("--help")
    assert rc == 0 and "usage: meltp validate" in out


def test_bad_config_file_line():
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "c.yaml")
        with open(cfg, "w") as f:
            f.write("receivers:\n  otlp:\n    protocols:\n      http:\nexporters:\n  debug:\n"
                    "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n"
                    "      exporters: [nope]\n")
        rc, _, err = validate("--config", cfg, "--input", os.path.join(SET, "clean.jsonl"))
        assert rc == 2 and "c.yaml:11:" in err, (rc, err)


# ---- output formats ----------------------------------------------------------------------

class _Html(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.tables, self.cells, self.urls, self.h2 = [], [], [], [], []
        self.text_for = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag not in ("br", "meta"):
            self.stack.append(tag)
        if tag == "table":
            self.tables.append(a.get("class"))
        if tag == "td" and "class" in a:
            self.cells.append(a["class"])
        for k in ("src", "href"):
            if k in a:
                self.urls.append(a[k])
        if tag == "h2":
            self.text_for = "h2"

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, ("unbalanced", tag, self.stack[-3:])
        self.stack.pop()

    def handle_data(self, data):
        if self.text_for == "h2" and data.strip():
            self.h2.append(data.strip())
            self.text_for = None


def test_html_report_structure():
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r.html")
        rc, stdout, err = validate("--config", "config.yaml", "--input", "telemetry.jsonl",
                                   "--policy", "policy.yaml", "--format", "html", "--output", out)
        assert rc == 1 and stdout == "", (rc, err)
        text = open(out, encoding="utf-8").read()
    assert text.startswith("<!DOCTYPE html>")
    p = _Html()
    p.feed(text)
    p.close()
    assert p.stack == [], p.stack
    assert "heatmap" in p.tables and "violations" in p.tables and "pii" in p.tables, p.tables
    # 4 services x 5 signals, with the three kinds of cells the fixture produces
    assert len(p.cells) == 20, p.cells
    assert {"cov-ok", "cov-missing", "cov-none"} <= set(p.cells), set(p.cells)
    assert set(p.cells) <= {"cov-ok", "cov-missing", "cov-none", "cov-seen"}, set(p.cells)
    assert p.cells.count("cov-missing") == 2 + 2, p.cells  # billing: 2, payments: 2
    # self-contained: no scripts, no external resources
    assert p.urls == [] and "http://" not in text and "https://" not in text
    assert "<script" not in text and "<style>" in text
    assert p.h2[:5] == ["Coverage", "Schema violations", "PII findings", "SLO coverage",
                        "Translation preview"], p.h2
    assert "http-method-required" in text and "span.attributes[user.ssn]" in text


def test_junit_markdown_text():
    rc, out, err = validate("--config", "config.yaml", "--input", "telemetry.jsonl",
                            "--policy", "policy.yaml", "--format", "junit")
    assert rc == 1, err
    root = ET.fromstring(out)
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) >= {"coverage", "violations", "pii", "slo_coverage"}, suites
    cov = suites["coverage"]
    assert cov.get("tests") == "4" and cov.get("failures") == "3", cov.attrib
    fails = {tc.get("name"): tc.find("failure").get("message")
             for tc in cov.findall("testcase") if tc.find("failure") is not None}
    assert fails["payments/prod"] == "missing signals: logs, profiles", fails
    assert fails["inventory/-"] == "missing resource attributes: deployment.environment.name"
    assert suites["violations"].get("failures") == "3"
    assert suites["pii"].get("failures") == "2"
    assert root.get("failures") == str(3 + 3 + 2 + 1), root.attrib

    rc, out, err = validate("--config", "config.yaml", "--input", "telemetry.jsonl",
                            "--policy", "policy.yaml", "--format", "markdown")
    assert rc == 1, err
    for section in ("# meltp validation report", "## Coverage", "## Violations", "## PII",
                    "## SLO coverage", "## Translation preview", "### Prometheus", "### Loki"):
        assert "\n" + section + "\n" in "\n" + out, section
    assert "| payments | prod | 1 | 0 | 0 ❌ | 1 | 0 ❌ | logs, profiles |" in out, out

    rc, out, err = validate("--config", "config.yaml", "--input", "telemetry.jsonl",
                            "--policy", "policy.yaml")
    assert rc == 1, err
    assert out.startswith("meltp validate: FAILED")
    assert "payments / prod: metrics=1 events=0 logs=0(MISSING)" in out, out


# ---- inputs of every kind -------------------------------------------------------------------

def _snappy_literal(data):
    """Snappy block format with literals only (valid, uncompressed): enough for a test."""
    out = bytearray()
    n = len(data)
    while True:  # preamble: uncompressed length as a varint
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            break
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        ln = len(chunk) - 1
        if ln < 60:
            out.append(ln << 2)
        elif ln < 256:
            out += bytes([60 << 2, ln])
        else:
            out += bytes([61 << 2]) + struct.pack("<H", ln)
        out += chunk
    return bytes(out)


def _rw1(series):
    """prometheus.WriteRequest: [(labels dict, value, ts_ms)]."""
    body = b""
    for labels, value, ts in series:
        ls = b"".join(harness.pb_len(1, harness.pb_len(1, k.encode()) + harness.pb_len(2, v.encode()))
                      for k, v in sorted(labels.items()))
        sample = harness.pb_len(2, harness._enc_varint(1 << 3 | 1) + struct.pack("<d", value) +
                                harness.pb_varint(2, ts))
        body += harness.pb_len(1, ls + sample)
    return body


def test_request_bodies_of_every_kind():
    with tempfile.TemporaryDirectory() as d:
        def put(name, data):
            path = os.path.join(d, name)
            with open(path, "wb") as f:
                f.write(data)
            return path
        spans = harness.make_traces([b"\x01" * 8, b"\x02" * 8], service="edge")
        t_pb = put("traces.pb", spans)
        t_gz = put("traces.pb.gz", gzip.compress(spans))
        logs = {"resourceLogs": [{"resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "edge"}}]},
            "scopeLogs": [{"logRecords": [{"timeUnixNano": "1700000000000000000",
                                           "body": {"stringValue": "hi"}},
                                          {"eventName": "edge.start",
                                           "timeUnixNano": "1700000000000000000"}]}]}]}
        l_js = put("logs.json.gz", gzip.compress(json.dumps(logs).encode()))
        rw = _rw1([({"__name__": "edge_requests_total", "job": "edge", "instance": "a:1"}, 3.0,
                    1700000000000),
                   ({"__name__": "edge_temp", "job": "edge", "instance": "a:1"}, 1.5,
                    1700000000000)])
        r_sn = put("rw.bin", _snappy_literal(rw))
        bad = put("bad.jsonl", b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}\n'
                               b'{"hello":1}\n')
        rc, out, err = validate("--config", "config.yaml", "--format", "json",
                                "--input", "traces:" + t_pb, "traces:" + t_gz, "logs:" + l_js,
                                "--input", "remotewrite:" + r_sn, "--input", bad)
        assert rc == 1, (rc, err)
        rep = json.loads(out)
        svcs = by_service(rep)
        assert svcs[("edge", "")]["signals"] == sig(metrics=2, events=1, logs=1, traces=4), svcs
        names = {m["name"] for m in rep["translation_preview"]["metrics"]}
        assert {"edge_requests", "edge_temp"} <= names, names
        errs = rep["input_errors"]
        assert [e["where"] for e in errs] == [bad + ":1", bad + ":2"], errs
        assert "traceId" in errs[0]["message"] and "not an OTLP/JSON request" in errs[1]["message"]

        # a binary body without its kind is refused with a hint, not guessed
        rc, out, err = validate("--config", "config.yaml", "--format", "json", "--input", t_pb)
        assert rc == 1 and "name binary request bodies by kind" in out, (rc, out)


# ---- inline and validation mode count the same --------------------------------------------

def _wait_port(port, proc, what):
    harness.wait_until(lambda: proc.poll() is not None or _connects(port), 15, what=what)
    assert proc.poll() is None, "%s exited: %s" % (what, proc.stderr.read().decode()
                                                    if proc.stderr else "")


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _post_fixture_lines(port, name="telemetry.jsonl"):
    paths = {"resourceSpans": "/v1/traces", "resourceMetrics": "/v1/metrics",
             "resourceLogs": "/v1/logs", "resourceProfiles": "/v1development/profiles"}
    with open(os.path.join(SET, name)) as f:
        for line in f:
            if not line.strip():
                continue
            path = paths[next(iter(json.loads(line)))]
            st, _, body = harness.http_request("http://127.0.0.1:%d%s" % (port, path),
                                               line.encode(), "application/json")
            assert st == 200, (path, st, body[:300])


def test_inline_and_validation_mode_count_the_same():
    otlp, metrics = harness.free_port(), harness.free_port()
    out = tempfile.mkdtemp(prefix="meltp-vm-")
    env = dict(os.environ, VM_OTLP="127.0.0.1:%d" % otlp, VM_METRICS="127.0.0.1:%d" % metrics,
               VM_OUT=os.path.join(out, "out.jsonl"))
    proc = subprocess.Popen([harness.MELTP, "run", "--config", "config.yaml"], cwd=SET, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    harness._procs.append(proc)
    _wait_port(otlp, proc, "meltp run")
    _post_fixture_lines(otlp)
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics, timeout=5) as r:
        text = r.read().decode()
    inline = {}
    for line in text.splitlines():
        if not line.startswith("meltp_validate_violations_total{"):
            continue
        labels = dict(kv.split("=", 1) for kv in line[line.index("{") + 1:line.rindex("}")].split(","))
        key = (labels["rule"].strip('"'), labels["service"].strip('"'))
        inline[key] = inline.get(key, 0) + int(float(line.rsplit(" ", 1)[1]))
    proc.terminate()
    proc.wait(20)
    rep = report("--config", "config.yaml", "--input", "telemetry.jsonl")
    offline = {(v["rule"], v["service"]): v["count"] for v in rep["violations"]}
    assert inline and inline == offline, (inline, offline)


# ---- live traffic ---------------------------------------------------------------------------

def test_listen_mode_audits_live_traffic():
    otlp, metrics = harness.free_port(), harness.free_port()
    out = tempfile.mkdtemp(prefix="meltp-vm-")
    env = dict(os.environ, VM_OTLP="127.0.0.1:%d" % otlp, VM_METRICS="127.0.0.1:%d" % metrics,
               VM_OUT=os.path.join(out, "out.jsonl"))
    proc = subprocess.Popen([harness.MELTP, "validate", "--config", "config.yaml", "--listen", "3s",
                             "--policy", "policy.yaml", "--format", "json"], cwd=SET, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    harness._procs.append(proc)
    t0 = time.time()
    _wait_port(otlp, proc, "meltp validate --listen")
    _post_fixture_lines(otlp)
    stdout, stderr = proc.communicate(timeout=30)
    assert time.time() - t0 >= 2.5
    assert proc.returncode == 1, (proc.returncode, stderr.decode())
    live = json.loads(stdout)
    files = report("--config", "config.yaml", "--input", "telemetry.jsonl", "--policy", "policy.yaml")
    strip = lambda r: [(s["service"], s["environment"], s["signals"], s["missing"],  # noqa: E731
                        s["missing_attributes"]) for s in r["services"]]
    assert strip(live) == strip(files), (strip(live), strip(files))
    assert live["pii"] == files["pii"]
    assert [(v["rule"], v["service"], v["count"]) for v in live["violations"]] == \
        [(v["rule"], v["service"], v["count"]) for v in files["violations"]]
    # exporters ran as configured: the file exporter got the traffic
    harness.wait_until(lambda: os.path.exists(env["VM_OUT"]), 5, what="file exporter output")
