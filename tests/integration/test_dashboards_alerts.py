"""dashboards/meltp-overview.json and meltp-coverage.json, and configs/prometheus/meltp-alerts.yml:
structure (datasource and environment variables, every panel on ${datasource}, unique ids, a
grid that fits), every metric name they use is one a running meltp exports on /metrics, every
query is valid PromQL (promtool), the alert unit tests pass (and fail when a threshold is
broken), and each alert links to its runbook in docs/runbooks/."""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest
import yaml

from harness import ROOT, Meltp, http_request, wait_until

DASHBOARDS = ["meltp-overview.json", "meltp-coverage.json"]
ALERTS = os.path.join(ROOT, "configs", "prometheus", "meltp-alerts.yml")
ALERT_TESTS = os.path.join(ROOT, "configs", "prometheus", "meltp-alerts.test.yml")
METRIC = re.compile(r"\bmeltp_[a-z_]+")

# exercises the lazily registered series too: a refused request, a failed and dropped send
LIVE = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
processors:
  memory_limiter: {{limit_mib: 256, spike_limit_mib: 32}}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:9
    retry_on_failure: {{enabled: false}}
    timeout: 1s
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs: {{receivers: [otlp], processors: [memory_limiter], exporters: [otlphttp]}}
"""

_live = None


def _exported():
    """Metric names on the /metrics of a running meltp (families, so histograms' _bucket,
    _sum and _count are there as the family name too)."""
    global _live
    if _live is not None:
        return _live
    m = Meltp(LIVE)
    log = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {
        "stringValue": "dash"}}]}, "scopeLogs": [{"logRecords": [{"body": {
            "stringValue": "x"}}]}]}]}
    assert m.post("/v1/logs", json.dumps(log).encode(), "application/json")[0] == 200
    assert m.post("/v1/logs", b"{", "application/json")[0] == 400
    wait_until(lambda: m.metric("meltp_exporter_dropped_items_total") > 0, 20,
               what="a dropped send")
    _, _, text = http_request("http://127.0.0.1:%d/metrics" % m.metrics, method="GET")
    names = set()
    for line in text.decode().splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, 1)[0])
    m.stop()
    _live = names
    return names


def _load(name):
    with open(os.path.join(ROOT, "dashboards", name)) as f:
        return json.load(f)


def _exprs(d):
    for p in d["panels"]:
        for t in p.get("targets", []):
            yield p, t["expr"]


def _promql(expr):
    """A Grafana query as plain PromQL."""
    for v, s in [("$__rate_interval", "5m"), ("$__range", "1h"), ("$__interval", "1m")]:
        expr = expr.replace(v, s)
    return re.sub(r"\$[a-z_]+", ".*", expr)


def _check_promql(exprs):
    if not shutil.which("promtool"):
        pytest.skip("promtool not found")
    d = tempfile.mkdtemp(prefix="meltp-promql-")
    try:
        rules = {"groups": [{"name": "q", "rules": [
            {"record": "meltp_dashboard:q%d" % i, "expr": _promql(e)} for i, e in enumerate(exprs)]}]}
        p = os.path.join(d, "q.yml")
        with open(p, "w") as f:
            yaml.safe_dump(rules, f)
        r = subprocess.run(["promtool", "check", "rules", p], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        shutil.rmtree(d)


@pytest.mark.parametrize("name", DASHBOARDS)
def test_dashboard_structure(name):
    d = _load(name)
    assert d["uid"] == name[:-5] and d["title"] and d["schemaVersion"] >= 36
    tv = {v["name"]: v for v in d["templating"]["list"]}
    assert tv["datasource"]["type"] == "datasource" and tv["datasource"]["query"] == "prometheus"
    env = tv["environment"]
    assert env["type"] == "query" and env["datasource"]["uid"] == "${datasource}"
    assert "environment" in env["definition"] and env["includeAll"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for p in d["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, "panels overlap at %s: %s" % ((x, y), p["title"])
                cells.add((x, y))
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}"
    exprs = [e for _, e in _exprs(d)]
    for p, e in _exprs(d):
        names = set(METRIC.findall(e))
        # the overflow counter has no environment label: it alone may do without the variable
        if names - {"meltp_service_items_overflow_total"}:
            assert "$environment" in e, (p["title"], e)
    _check_promql(exprs)


def test_coverage_dashboard_draws_the_service_metric():
    d = _load("meltp-coverage.json")
    matrix = [p for p in d["panels"] if p["type"] == "table" and any(
        t["id"] == "groupingToMatrix" and t["options"]["rowField"] == "service"
        and t["options"]["columnField"] == "signal" for t in p.get("transformations", []))]
    assert matrix, "no service x signal matrix"
    assert all("meltp_service_items_total" in t["expr"] for p in matrix for t in p["targets"])
    tv = {v["name"] for v in d["templating"]["list"]}
    assert {"datasource", "environment", "service"} <= tv


def test_overview_covers_the_issue_list():
    d = _load("meltp-overview.json")
    used = set(METRIC.findall(" ".join(e for _, e in _exprs(d))))
    for m in ["meltp_receiver_accepted_items_total", "meltp_receiver_refused_requests_total",
              "meltp_exporter_queue_length", "meltp_exporter_queue_capacity",
              "meltp_exporter_send_duration_seconds_bucket", "meltp_exporter_dropped_items_total",
              "meltp_process_resident_memory_bytes"]:
        assert m in used, m
    by = " ".join(e for _, e in _exprs(d))
    assert "by (receiver" in by and "by (exporter" in by and "reason" in by


def test_metric_names_are_exported():
    live = _exported()
    used = set()
    for name in DASHBOARDS:
        used |= set(METRIC.findall(" ".join(e for _, e in _exprs(_load(name)))))
    with open(ALERTS) as f:
        for g in yaml.safe_load(f)["groups"]:
            for r in g["rules"]:
                used |= set(METRIC.findall(r["expr"]))
    assert used
    missing = sorted(n for n in used if n not in live)
    assert not missing, "not on meltp's /metrics: %s" % missing


def _alert_rules():
    with open(ALERTS) as f:
        return [r for g in yaml.safe_load(f)["groups"] for r in g["rules"] if "alert" in r]


def test_alert_rules_and_runbooks():
    rules = _alert_rules()
    names = {r["alert"] for r in rules}
    assert {"MeltpExporterFailing", "MeltpQueueNearFull", "MeltpItemsDropped",
            "MeltpRequestsRefused", "MeltpMemoryLimit"} <= names
    for r in rules:
        url = r["annotations"]["runbook_url"]
        assert url.endswith("docs/runbooks/%s.md" % r["alert"]), url
        assert os.path.exists(os.path.join(ROOT, "docs", "runbooks", r["alert"] + ".md"))
        assert r["labels"]["severity"] in ("page", "ticket", "info")
    pages = {f[:-3] for f in os.listdir(os.path.join(ROOT, "docs", "runbooks")) if f != "README.md"}
    assert pages == names


def test_promtool_unit_tests():
    if not shutil.which("promtool"):
        pytest.skip("promtool not found")
    r = subprocess.run(["promtool", "check", "rules", ALERTS], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["promtool", "test", "rules", ALERT_TESTS], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # the tests bite: a rule with a broken threshold fails them
    d = tempfile.mkdtemp(prefix="meltp-alerts-")
    try:
        with open(ALERTS) as f:
            text = f.read()
        assert ") > 0.8" in text
        with open(os.path.join(d, "meltp-alerts.yml"), "w") as f:
            f.write(text.replace(") > 0.8", ") > 0.95"))
        shutil.copy(ALERT_TESTS, d)
        r = subprocess.run(["promtool", "test", "rules", os.path.join(d, "meltp-alerts.test.yml")],
                           capture_output=True, text=True)
        assert r.returncode != 0 and "MeltpQueueNearFull" in r.stdout + r.stderr
    finally:
        shutil.rmtree(d)
