"""SLO selectors written in Prometheus names match OTLP metrics sent with semantic-convention
names, on the real path: an OTel-SDK-shaped counter `http.requests` (unit `{request}`,
attribute `http.response.status_code`) and histogram `http.server.request.duration` (unit `s`)
go into meltp over OTLP; meltp remote-writes them to a real Prometheus that evaluates the rules
`meltp slo rules` generates from the same specs (a Sloth spec on
`http_requests_total{job="api",http_response_status_code=~"5.."}`, a native latency SLI on
`http_server_request_duration_seconds_bucket` and a native ratio SLI on its `_bucket{le="0.3"}`
and `_count` series). The recorded error ratios and meltp's /api/v1/slos agree for every
window, and the page alert fires in both.

Fast: one request carries 45 minutes of per-minute samples with past timestamps (the newest 30s
ago), so both sides see the whole history at once. Rates are constant (10 % of requests fail,
30 % are slower than 0.3s), so every window holds the same ratio in both evaluators whatever
the exact evaluation instant; counters start high, so Prometheus' extrapolation factor is the
same for numerator and denominator and cancels."""
import json
import os
import tempfile
import time

from harness import Meltp, Prometheus, http_request, wait_until, MELTP
import subprocess

SLOTH = """version: "prometheus/v1"
service: "shop"
slos:
  - name: "requests"
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(http_requests_total{job="api",http_response_status_code=~"5.."}[{{.window}}]))
        total_query: sum(rate(http_requests_total{job="api"}[{{.window}}]))
    alerting:
      name: ShopRequestErrors
      page_alert: {}
      ticket_alert: {disable: true}
"""

NATIVE = """version: meltp/v1
service: shop
slos:
  - name: latency
    objective: 99
    period: 30d
    sli:
      latency:
        histogram: 'http_server_request_duration_seconds_bucket{job="api",http_route="/pay"}'
        threshold: 0.3
    alerting:
      name: ShopLatencyBurn
      tiers:
        - {name: page-quick, severity: page, long: 1h, short: 5m, factor: 14.4}
        - {name: page-slow, severity: page, long: 6h, short: 30m, factor: 6}
  - name: fast-share
    objective: 99
    period: 30d
    sli:
      ratio:
        good: 'http_server_request_duration_seconds_bucket{job="api",le="0.3"}'
        total: 'http_server_request_duration_seconds_count{job="api"}'
    alerting:
      name: ShopFastShareBurn
      tiers:
        - {name: page-quick, severity: page, long: 1h, short: 5m, factor: 14.4}
        - {name: page-slow, severity: page, long: 6h, short: 30m, factor: 6}
"""

# id -> (alertname, expected error ratio, windows the rules record: Sloth's full set, or the
# native tiers' windows; both record the 30d period)
NATIVE_WINDOWS = ("5m", "30m", "1h", "6h", "30d")
SLOS = {"shop-requests": ("ShopRequestErrors", 0.1,
                          ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")),
        "shop-latency": ("ShopLatencyBurn", 0.3, NATIVE_WINDOWS),
        "shop-fast-share": ("ShopFastShareBurn", 0.3, NATIVE_WINDOWS)}
MINUTES = 45

CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  prometheusremotewrite:
    endpoint: %s
    retry_on_failure:
      initial_interval: 100ms
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    metrics: {{receivers: [otlp], exporters: [prometheusremotewrite]}}
slo:
  specs: [%s/*.yaml]
  evaluation_interval: 1s
  state_dir: %s/state
"""


def kv(k, v):
    if isinstance(v, int):
        return {"key": k, "value": {"intValue": str(v)}}
    return {"key": k, "value": {"stringValue": v}}


def otlp_request(now_s):
    """Per-minute cumulative points, the newest 30s ago: 900 ok and 100 failed requests a
    minute; per minute 400 observations <= 0.1s, 300 in (0.1, 0.3], 200 in (0.3, 1], 100 above."""
    start_ns = int((now_s - 3 * 3600) * 1e9)
    t0 = now_s - 30 - 60 * (MINUTES - 1)
    ok, bad, hist = [], [], []
    for k in range(MINUTES):
        t_ns = str(int((t0 + 60 * k) * 1e9))

        def npt(code, v):
            return {"timeUnixNano": t_ns, "startTimeUnixNano": str(start_ns), "asInt": str(v),
                    "attributes": [kv("http.request.method", "POST"),
                                   kv("http.response.status_code", code)]}
        ok.append(npt(200, 5_000_000 + 900 * k))
        bad.append(npt(503, 500_000 + 100 * k))
        b = [2_000_000 + 400 * k, 1_500_000 + 300 * k, 1_000_000 + 200 * k, 500_000 + 100 * k]
        hist.append({"timeUnixNano": t_ns, "startTimeUnixNano": str(start_ns),
                     "count": str(sum(b)), "sum": 0.25 * sum(b),
                     "bucketCounts": [str(x) for x in b], "explicitBounds": [0.1, 0.3, 1.0],
                     "attributes": [kv("http.route", "/pay"), kv("http.request.method", "POST")]})
    metrics = [
        {"name": "http.requests", "unit": "{request}",
         "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": ok + bad}},
        {"name": "http.server.request.duration", "unit": "s",
         "histogram": {"aggregationTemporality": 2, "dataPoints": hist}},
    ]
    return {"resourceMetrics": [{
        "resource": {"attributes": [kv("service.name", "api"), kv("service.instance.id", "i-1")]},
        "scopeMetrics": [{"scope": {"name": "otel-sdk"}, "metrics": metrics}]}]}


def slos_api(m):
    st, _, body = http_request("http://127.0.0.1:%d/api/v1/slos" % m.metrics, method="GET")
    assert st == 200, st
    return {s["id"]: s for s in json.loads(body)["slos"]}


def test_otlp_semconv_names_match_prometheus_rules_and_engine():
    d = tempfile.mkdtemp(prefix="meltp-slo-names-")
    specs = os.path.join(d, "specs")
    os.makedirs(specs)
    with open(os.path.join(specs, "sloth.yaml"), "w") as f:
        f.write(SLOTH)
    with open(os.path.join(specs, "native.yaml"), "w") as f:
        f.write(NATIVE)
    rules = os.path.join(d, "rules.yml")
    p = subprocess.run([MELTP, "slo", "rules", "--out", rules, os.path.join(specs, "sloth.yaml"),
                        os.path.join(specs, "native.yaml")], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    prom = Prometheus("global: {evaluation_interval: 1s}\nrule_files: [%s]\n" % rules)
    m = Meltp(CFG % (prom.write_url, specs, d))

    st, _, body = m.post("/v1/metrics", json.dumps(otlp_request(time.time())).encode(),
                         "application/json")
    assert st == 200, body

    # meltp: every SLO counts the OTLP data (before the fix: total 0, no_data forever)
    def engine_ready():
        s = slos_api(m)
        ok = all(sid in s and s[sid]["windows"]["5m"]["total"] > 0 and
                 s[sid]["alert_state"] == "firing" for sid in SLOS)
        return s if ok else None
    try:
        eng = wait_until(engine_ready, 15, what="meltp to count the OTLP series and page")
    except AssertionError as e:
        raise AssertionError("%s: %s" % (e, json.dumps(slos_api(m))[:1500]))

    # Prometheus: the same specs' rules over the remote-written series
    def prom_ready():
        have = {}
        for sid, (_, _, windows) in SLOS.items():
            for w in windows:
                r = prom.query('slo:sli_error:ratio_rate%s{sloth_id="%s"}' % (w, sid))
                if len(r) != 1:
                    return None
                have[(sid, w)] = float(r[0]["value"][1])
        return have
    rec = wait_until(prom_ready, 30, what="Prometheus to record every SLO window")

    for sid, (_, want, windows) in SLOS.items():
        for w in windows:
            got = eng[sid]["windows"][w]
            assert got["total"] > 0, (sid, w, got)
            assert abs(got["error_ratio"] - want) < 1e-9, (sid, w, got)
            assert abs(rec[(sid, w)] - got["error_ratio"]) < 1e-9, (sid, w, rec[(sid, w)], got)

    def prom_firing():
        r = prom.query('ALERTS{alertstate="firing",sloth_severity="page"}')
        return {x["metric"]["alertname"] for x in r} >= {v[0] for v in SLOS.values()}
    wait_until(prom_firing, 30, what="Prometheus to fire every page alert")
    # meltp's page tiers fire too (only page tiers are enabled, so alert_state is the page)
    assert all(eng[sid]["alert_state"] == "firing" for sid in SLOS)
    # the series Prometheus stored are the exporter's names for the same data
    names = set(prom.api("/api/v1/label/__name__/values"))
    assert {"http_requests_total", "http_server_request_duration_seconds_bucket",
            "http_server_request_duration_seconds_count"} <= names, names
    assert m.stop() == 0


VALIDATE_CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:4318
exporters:
  file:
    path: out.jsonl
service:
  pipelines:
    metrics: {receivers: [otlp], exporters: [file]}
"""

# a latency SLI may name the histogram by its family (the engine and `meltp slo rules` add
# _bucket / _count); Prometheus has no series of that bare name, but it is the histogram's
VALIDATE_SPEC = """version: meltp/v1
service: api
slos:
  - name: latency
    objective: 99
    sli:
      latency:
        histogram: http_server_request_duration_seconds
        threshold: 0.3
  - name: errors
    objective: 99.9
    sli:
      ratio:
        bad: 'http_requests_total{http_response_status_code=~"5.."}'
        total: 'http_requests_total'
"""


def test_validate_slo_coverage_sees_otlp_metrics_under_prometheus_names():
    d = tempfile.mkdtemp(prefix="meltp-slo-names-")
    os.makedirs(os.path.join(d, "slo"))
    files = {"config.yaml": VALIDATE_CFG, "slo/api.yaml": VALIDATE_SPEC,
             "policy.yaml": "services:\n  api:\n    signals: [metrics]\n    require_slo: true\n"
                            "slo_specs: [slo/*.yaml]\n",
             "in.jsonl": json.dumps(otlp_request(time.time())) + "\n"}
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    p = subprocess.run([MELTP, "validate", "--config", "config.yaml", "--input", "in.jsonl",
                        "--policy", "policy.yaml", "--format", "json"], cwd=d,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    rep = json.loads(p.stdout)
    cov = {c["service"]: c for c in rep["slo_coverage"]}
    slos = {s["name"]: s for s in cov["api"]["slos"]}
    # the latency SLI reads the histogram's _bucket and _count series (slo/ spec loader)
    assert slos["latency"]["sli_series"] == ["http_server_request_duration_seconds_bucket",
                                             "http_server_request_duration_seconds_count"], slos
    assert slos["latency"]["missing_series"] == [], slos["latency"]
    assert slos["errors"]["missing_series"] == [], slos["errors"]
    assert cov["api"]["gap"] is False, cov["api"]
    assert p.returncode == 0, (p.returncode, p.stderr.decode(), rep)
