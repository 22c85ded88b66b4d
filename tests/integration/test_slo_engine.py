"""SLO engine end to end: meltp with an `slo:` section and a native spans spec; OTLP/JSON spans
with errors go in, /api/v1/slos reports exact counts and burn rates, a webhook sink receives the
Alertmanager v4 alert, SLO series reach a metrics exporter, the state survives a restart and the
webhook URL (a secret) never appears in the log. A second meltp counts metric SLIs (cumulative
counters with a reset, names with and without _total, delta sums), latency SLIs (explicit
buckets with the threshold on a bound, an exponential histogram), a log severity SLI and a
grouped SLO over its cardinality cap, with exact good/total counts per window."""
import http.server
import json
import os
import threading
import time

from harness import Meltp, free_port, http_request, wait_until, _servers

SPEC = """version: meltp/v1
service: checkout
slos:
  - name: availability
    objective: 99
    period: 30d
    sli:
      spans:
        service: checkout
        type: errors
        http_5xx: true
    runbook_url: https://runbooks.example.org/checkout
    alerting:
      name: CheckoutAvailabilityBurn
      tiers:
        - {name: page-quick, severity: page, long: 1h, short: 5m, factor: 14.4}
        - {name: ticket-slow, severity: ticket, long: 3d, short: 6h, factor: 1}
"""

CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  file/t:
    path: {dir}/t.jsonl
  file/m:
    path: {dir}/m.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file/t]
    metrics:
      receivers: [otlp]
      exporters: [file/m]
slo:
  specs: [{dir}/slos/*.yaml]
  evaluation_interval: 1s
  state_dir: {dir}/state
  group_wait: 0s
  exporters: [file/m]
  notifiers:
    - {{type: webhook, url: "${{env:SLO_HOOK_URL}}"}}
"""


class Sink:
    """Collects JSON POSTs."""

    def __init__(self, throttle_first=None):
        self.port = free_port()
        self.bodies = []
        self.paths = []
        self.throttled = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                if throttle_first and self.path.startswith(throttle_first) and \
                        self.path not in outer.throttled:
                    outer.throttled.append(self.path)
                    self.send_response(429)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                outer.paths.append(self.path)
                outer.bodies.append(json.loads(raw))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        _servers.append(self.server)


def spans_json(n_ok, n_err, service="checkout"):
    now = time.time_ns()
    spans = []
    for i in range(n_ok + n_err):
        err = i >= n_ok
        span = {"traceId": "%032x" % (0xabc000 + i), "spanId": "%016x" % (i + 1), "name": "GET /pay",
                "kind": 2, "startTimeUnixNano": str(now - 5_000_000), "endTimeUnixNano": str(now),
                "attributes": [{"key": "http.route", "value": {"stringValue": "/pay"}}]}
        if err:
            span["status"] = {"code": 2}
        spans.append(span)
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}).encode()


def write_spec(m):
    d = os.path.join(m, "slos")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "checkout.yaml"), "w") as f:
        f.write(SPEC)


def api(m):
    st, _, body = http_request("http://127.0.0.1:%d/api/v1/slos" % m.metrics, method="GET")
    assert st == 200, st
    return json.loads(body)


def start(tmp, sink, extra=None):
    env = {"SLO_HOOK_URL": "http://127.0.0.1:%d/hook/s3cr3t-token" % sink.port}
    env.update(extra or {})
    # the spec dir lives next to the config: Meltp makes its own dir, so point specs at ours
    cfg = CFG.replace("{dir}/slos", tmp + "/slos").replace("{dir}/state", tmp + "/state")
    return Meltp(cfg, extra_env=env)


def test_spans_slo_api_webhook_series_restart():
    import tempfile
    tmp = tempfile.mkdtemp(prefix="meltp-slo-")
    write_spec(tmp)
    sink = Sink()
    m = start(tmp, sink)
    st, _, _ = m.post("/v1/traces", spans_json(150, 50), "application/json")
    assert st == 200
    doc = wait_until(lambda: (lambda d: d if d["slos"] and d["slos"][0]["windows"]["5m"]["total"] == 200
                              else None)(api(m)), 10, what="the SLO to count 200 spans")
    s = doc["slos"][0]
    assert set(s) == {"id", "service", "slo", "objective", "state", "alert_state",
                      "no_data_alert_state", "budget_remaining", "time_to_exhaustion_s",
                      "windows"}, s
    assert s["no_data_alert_state"] == "inactive"
    assert s["id"] == "checkout-availability" and s["service"] == "checkout"
    assert s["slo"] == "availability" and abs(s["objective"] - 0.99) < 1e-12
    for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"):
        win = s["windows"][w]
        assert set(win) == {"good", "total", "error_ratio", "burn_rate"}
        assert win["good"] == 150 and win["total"] == 200, (w, win)
        assert abs(win["error_ratio"] - 0.25) < 1e-12
        assert abs(win["burn_rate"] - 25.0) < 1e-9
    assert abs(s["budget_remaining"] - (1 - 25.0)) < 1e-9
    assert s["time_to_exhaustion_s"] == 0
    assert s["state"] == "ok"
    # the page tier (14.4x over 5m and 1h) fires and the webhook gets an Alertmanager v4 body
    wait_until(lambda: api(m)["slos"][0]["alert_state"] == "firing", 10, what="firing")
    wait_until(lambda: sink.bodies, 10, what="the webhook notice")
    b = sink.bodies[0]
    assert sink.paths[0] == "/hook/s3cr3t-token"
    assert b["version"] == "4" and b["status"] == "firing" and b["receiver"] == "meltp"
    for k in ("groupKey", "truncatedAlerts", "groupLabels", "commonLabels", "commonAnnotations",
              "externalURL", "alerts"):
        assert k in b, k
    a = b["alerts"][0]
    assert a["status"] == "firing" and a["endsAt"] == "0001-01-01T00:00:00Z"
    assert a["labels"]["alertname"] == "CheckoutAvailabilityBurn"
    assert a["labels"]["sloth_id"] == "checkout-availability"
    assert a["labels"]["sloth_severity"] == "page"   # only the most severe tier notifies
    assert a["annotations"]["runbook_url"] == "https://runbooks.example.org/checkout"
    assert "trace_ids" in a["annotations"]
    assert len(a["annotations"]["trace_ids"].split(",")) == 3
    assert len(a["fingerprint"]) == 16
    # SLO series reach the metrics exporter as gauges with Sloth names and labels
    def series():
        names = {}
        for line in m.file_lines("m.jsonl"):
            for rm in line.get("resourceMetrics", []):
                for sm in rm.get("scopeMetrics", []):
                    for met in sm.get("metrics", []):
                        names[met["name"]] = met
        return names if "slo:sli_error:ratio_rate5m" in names else None
    names = wait_until(series, 10, what="SLO series in the file exporter")
    g = names["slo:sli_error:ratio_rate5m"]["gauge"]["dataPoints"][0]
    labels = {kv["key"]: kv["value"]["stringValue"] for kv in g["attributes"]}
    assert labels["sloth_id"] == "checkout-availability" and labels["sloth_window"] == "5m"
    assert abs(g["asDouble"] - 0.25) < 1e-12
    assert "slo:period_error_budget_remaining:ratio" in names
    assert m.stop() == 0
    assert "s3cr3t-token" not in m.logtext()
    assert os.path.exists(os.path.join(tmp, "state", "slo-state.bin"))
    # restart: the budget and counts come back from the state file
    m2 = start(tmp, sink)
    s2 = api(m2)["slos"][0]
    assert s2["windows"]["30d"]["total"] == 200, s2
    assert abs(s2["budget_remaining"] - s["budget_remaining"]) < 1e-9
    assert m2.stop() == 0
    assert "s3cr3t-token" not in m2.logtext()


CFG2 = CFG.replace(
    '    - {{type: webhook, url: "${{env:SLO_HOOK_URL}}"}}',
    '    - {{type: slack, webhook_url: "${{env:SLACK_URL}}", initial_backoff: 100ms}}\n'
    '    - {{type: teams, webhook_url: "${{env:TEAMS_URL}}"}}\n'
    '    - {{type: teams, webhook_url: "${{env:TEAMS_URL}}", format: messagecard}}')


def test_slack_teams_shapes_retry_after_and_test_notify():
    import subprocess
    import tempfile
    from harness import MELTP
    tmp = tempfile.mkdtemp(prefix="meltp-slo-")
    write_spec(tmp)
    sink = Sink(throttle_first="/slack")
    base = "http://127.0.0.1:%d" % sink.port
    env = {"SLACK_URL": base + "/slack/T000/B000/XXXSECRETXXX",
           "TEAMS_URL": base + "/teams/workflows/TEAMSSECRET"}
    cfg = CFG2.replace("{dir}/slos", tmp + "/slos").replace("{dir}/state", tmp + "/state")
    m = Meltp(cfg, extra_env=env)
    st, _, _ = m.post("/v1/traces", spans_json(100, 100), "application/json")
    assert st == 200
    wait_until(lambda: len(sink.bodies) >= 3, 15, what="slack + 2 teams notices")
    by = {}
    for p, b in zip(sink.paths, sink.bodies):
        by.setdefault("slack" if p.startswith("/slack") else
                      ("card" if "@type" in b else "teams"), b)
    assert sink.throttled, "the 429 was not exercised"
    sl = by["slack"]
    assert isinstance(sl["text"], str) and sl["text"]
    att = sl["attachments"][0]
    assert att["color"] == "danger"
    assert 0 < len(att["blocks"]) <= 50
    assert att["blocks"][0]["type"] == "header" and len(att["blocks"][0]["text"]["text"]) <= 150
    for blk in att["blocks"]:
        if "text" in blk:
            assert len(blk["text"]["text"]) <= 3000
        assert len(blk.get("fields", [])) <= 10
    assert "checkout-availability" in json.dumps(sl)
    tm = by["teams"]
    assert tm["type"] == "message"
    a = tm["attachments"][0]
    assert a["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert a["content"]["type"] == "AdaptiveCard" and a["content"]["version"] == "1.4"
    assert len(json.dumps(tm).encode()) < 20000
    assert by["card"]["@type"] == "MessageCard"
    assert m.stop() == 0
    log = m.logtext()
    assert "XXXSECRETXXX" not in log and "TEAMSSECRET" not in log
    # test-notify sends one sample to each notifier
    n0 = len(sink.bodies)
    env2 = dict(os.environ)
    env2.update(env)
    r = subprocess.run([MELTP, "slo", "test-notify", "--config", m.config_path], env=env2,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(sink.bodies) - n0 == 3, r.stdout
    assert "XXXSECRETXXX" not in r.stdout + r.stderr


# ---- metric, latency, log and grouped SLIs through the engine ------------------------------

SPEC_MIX = """version: meltp/v1
service: shop
slos:
  # cumulative counters; the spec names carry _total, the errors arrive with it and the
  # requests without it (as remote-write input reaches the pipeline)
  - name: cum
    objective: 99
    period: 30d
    sli:
      ratio:
        bad: 'app_errors_total{job="api"}'
        total: 'app_requests_total{job="api"}'
  - name: delta
    objective: 99
    period: 30d
    sli:
      ratio:
        good: 'jobs_ok'
        total: 'jobs_all'
  - name: lat
    objective: 99
    period: 30d
    sli:
      latency:
        histogram: 'http_dur{route="/a"}'
        threshold: 0.25
  - name: explat
    objective: 99
    period: 30d
    sli:
      latency:
        histogram: 'rpc_dur'
        threshold: 1
  - name: logs
    objective: 99
    period: 30d
    sli:
      logs:
        service: shop
        min_severity: ERROR
  - name: grp
    objective: 99
    period: 30d
    sli:
      ratio:
        bad: 'grp_bad'
        total: 'grp_all'
    group_by: [route]
    max_groups: 2
"""

CFG_MIX = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  file/m:
    path: {dir}/m.jsonl
  file/l:
    path: {dir}/l.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [file/m]
    logs:
      receivers: [otlp]
      exporters: [file/l]
slo:
  specs: [SPECDIR/*.yaml]
  evaluation_interval: 1s
  state_dir: {dir}/state
"""

ATTR = lambda k, v: {"key": k, "value": {"stringValue": v}}  # noqa: E731


def metrics_json(metrics):
    return json.dumps({"resourceMetrics": [{
        "resource": {"attributes": [ATTR("service.name", "shop")]},
        "scopeMetrics": [{"scope": {"name": "t"}, "metrics": metrics}]}]}).encode()


def sum_metric(name, points, delta=False):
    return {"name": name, "sum": {"aggregationTemporality": 1 if delta else 2,
                                  "isMonotonic": True, "dataPoints": points}}


def npoint(value, t_ns, start_ns, attrs):
    return {"attributes": attrs, "startTimeUnixNano": str(start_ns), "timeUnixNano": str(t_ns),
            "asInt": str(value)}


def test_metric_latency_log_and_grouped_slis_exact_counts():
    import tempfile
    tmp = tempfile.mkdtemp(prefix="meltp-slo-")
    os.makedirs(os.path.join(tmp, "slos"))
    with open(os.path.join(tmp, "slos", "shop.yaml"), "w") as f:
        f.write(SPEC_MIX)
    m = Meltp(CFG_MIX.replace("SPECDIR", tmp + "/slos"))
    now = time.time_ns()
    old = now - 3600 * 10**9          # counters started before meltp: first point = baseline
    t1, t2, t3 = now - 30 * 10**9, now - 20 * 10**9, now - 10 * 10**9
    job = [ATTR("job", "api")]

    def post(metrics):
        st, _, body = m.post("/v1/metrics", metrics_json(metrics), "application/json")
        assert st == 200, body

    # cumulative: baseline, +100/+4, then a reset (new start time): the new values count whole
    post([sum_metric("app_requests", [npoint(1000, t1, old, job)]),
          sum_metric("app_errors_total", [npoint(10, t1, old, job)])])
    post([sum_metric("app_requests", [npoint(1100, t2, old, job)]),
          sum_metric("app_errors_total", [npoint(14, t2, old, job)])])
    post([sum_metric("app_requests", [npoint(50, t3, t3 - 10**9, job)]),
          sum_metric("app_errors_total", [npoint(3, t3, t3 - 10**9, job)])])
    # a series the selector rejects (job="batch") counts nothing
    post([sum_metric("app_requests", [npoint(5, t3, t3 - 10**9, [ATTR("job", "batch")])])])
    # delta sums add directly, the first point included
    post([sum_metric("jobs_ok", [npoint(5, t1, t1 - 10**9, [])], True),
          sum_metric("jobs_all", [npoint(8, t1, t1 - 10**9, [])], True)])
    post([sum_metric("jobs_ok", [npoint(7, t2, t1, [])], True),
          sum_metric("jobs_all", [npoint(10, t2, t1, [])], True)])
    # explicit-bucket histogram, cumulative, threshold 0.25 equal to a bound: the le=0.25
    # bucket is good. Baseline then +5/+10/+4/+1 per bucket -> good 15 of 20
    def hist(counts, t):
        return {"name": "http_dur", "histogram": {"aggregationTemporality": 2, "dataPoints": [{
            "attributes": [ATTR("route", "/a")], "startTimeUnixNano": str(old),
            "timeUnixNano": str(t), "count": str(sum(counts)),
            "bucketCounts": [str(c) for c in counts], "explicitBounds": [0.1, 0.25, 0.5]}]}}
    post([hist([10, 20, 5, 1], t1)])
    post([hist([15, 30, 9, 2], t2)])
    # exponential histogram, delta, scale 0 offset -2: buckets (0.25,0.5] (0.5,1] (1,2] (2,4]
    # hold 1, 2, 3, 4 and the zero bucket 1; threshold 1 -> good = 1 + 1 + 2 = 4 of 11
    post([{"name": "rpc_dur", "exponentialHistogram": {"aggregationTemporality": 1, "dataPoints": [{
        "startTimeUnixNano": str(t1), "timeUnixNano": str(t2), "count": "11", "scale": 0,
        "zeroCount": "1", "positive": {"offset": -2, "bucketCounts": ["1", "2", "3", "4"]}}]}}])
    # grouped by route, at most 2 groups: /c is the third and is dropped (both of its points)
    def grp(name, route, v):
        return sum_metric(name, [npoint(v, t2, t1, [ATTR("route", route)])], True)
    post([grp("grp_bad", "/a", 1), grp("grp_all", "/a", 10), grp("grp_all", "/b", 5),
          grp("grp_bad", "/c", 3), grp("grp_all", "/c", 3)])
    # logs: severity >= ERROR (17) is bad; unspecified (0) counts as good
    recs = [{"timeUnixNano": str(t2), "severityNumber": s, "body": {"stringValue": "x"}}
            for s in (9, 13, 17, 21, 0, 5)]
    st, _, _ = m.post("/v1/logs", json.dumps({"resourceLogs": [{
        "resource": {"attributes": [ATTR("service.name", "shop")]},
        "scopeLogs": [{"scope": {"name": "t"}, "logRecords": recs}]}]}).encode(),
        "application/json")
    assert st == 200

    want = {"shop-cum": (143, 150), "shop-delta": (12, 18), "shop-lat": (15, 20),
            "shop-explat": (4, 11), "shop-logs": (4, 6),
            'shop-grp{route="/a"}': (9, 10), 'shop-grp{route="/b"}': (5, 5)}

    def got():
        d = {s["id"]: s for s in api(m)["slos"]}
        ok = all(k in d and d[k]["windows"]["30d"]["total"] == v[1] for k, v in want.items())
        return d if ok else None
    d = wait_until(got, 10, what="every SLO to count its events")
    assert set(d) == set(want), sorted(d)
    for sid, (good, total) in want.items():
        for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"):
            win = d[sid]["windows"][w]
            assert (win["good"], win["total"]) == (good, total), (sid, w, win)
            assert abs(win["error_ratio"] - (total - good) / total) < 1e-12, (sid, w, win)
            assert abs(win["burn_rate"] - (total - good) / total / 0.01) < 1e-9, (sid, w, win)
    assert m.metric("meltp_slo_events_dropped_total", reason="max_groups") == 2
    assert m.stop() == 0


NODATA_SPEC = """version: meltp/v1
service: checkout
slos:
  - name: latency
    objective: 99
    period: 30d
    no_data: alert
    sli:
      spans:
        service: checkout
        type: errors
    alerting:
      name: CheckoutLatencyBurn
      tiers:
        - {name: page-quick, severity: page, long: 3s, short: 1s, factor: 14.4}
"""


def test_no_data_alert_fires_and_resolves_through_the_webhook():
    """`no_data: alert`: with no span for the shortest long window (3s here) the webhook gets a
    separate CheckoutLatencyNoData alert (severity ticket), resolved once spans arrive."""
    import tempfile
    tmp = tempfile.mkdtemp(prefix="meltp-slo-")
    os.makedirs(os.path.join(tmp, "slos"))
    with open(os.path.join(tmp, "slos", "nodata.yaml"), "w") as f:
        f.write(NODATA_SPEC)
    sink = Sink()
    m = start(tmp, sink)
    try:
        def nodata(status):
            for b in sink.bodies:
                a = b["alerts"][0]
                if a["labels"]["alertname"] == "CheckoutLatencyNoData" and b["status"] == status:
                    return b
            return None
        b = wait_until(lambda: nodata("firing"), 15, what="the no-data alert")
        a = b["alerts"][0]
        assert a["labels"]["sloth_id"] == "checkout-latency"
        assert a["labels"]["sloth_severity"] == "ticket"
        assert a["labels"]["burnrate_tier"] == "no-data"
        assert b["groupKey"] != '{}:{sloth_id="checkout-latency"}'  # not the burn alert's group
        assert not nodata("resolved")
        assert api(m)["slos"][0]["no_data_alert_state"] == "firing"
        st, _, _ = m.post("/v1/traces", spans_json(20, 0), "application/json")
        assert st == 200
        r = wait_until(lambda: nodata("resolved"), 10, what="the no-data alert to resolve")
        assert r["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
        assert api(m)["slos"][0]["no_data_alert_state"] == "inactive"
        # spans without errors: no burn-rate alert was ever sent
        assert all(b["alerts"][0]["labels"]["alertname"] == "CheckoutLatencyNoData"
                   for b in sink.bodies)
    finally:
        assert m.stop() == 0


def test_webhook_url_from_a_file_is_used_and_never_printed():
    import subprocess
    import tempfile
    from harness import MELTP, free_port
    tmp = tempfile.mkdtemp(prefix="meltp-slo-")
    write_spec(tmp)
    sink = Sink()
    secret = "http://127.0.0.1:%d/hook/FILESECRET123" % sink.port
    url_file = os.path.join(tmp, "hook-url")
    with open(url_file, "w") as f:
        f.write(secret + "\n")
    cfg = CFG.replace('{{type: webhook, url: "${{env:SLO_HOOK_URL}}"}}',
                      '{{type: webhook, url_file: "%s"}}' % url_file)
    cfg = cfg.format(otlp=free_port(), metrics=free_port(), dir=tmp)
    path = os.path.join(tmp, "config.yaml")
    with open(path, "w") as f:
        f.write(cfg)
    r = subprocess.run([MELTP, "slo", "test-notify", "--config", path], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(sink.bodies) == 1 and sink.paths[0] == "/hook/FILESECRET123", sink.paths
    assert "FILESECRET123" not in r.stdout + r.stderr
    # an unreadable file is a config error naming the key, not the secret
    bad = cfg.replace(url_file, url_file + ".missing")
    with open(path, "w") as f:
        f.write(bad)
    r = subprocess.run([MELTP, "check-config", "--config", path], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and "url_file" in r.stderr, r.stderr
