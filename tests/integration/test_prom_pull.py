"""The `prometheus` (pull) exporter: OTLP metrics in through the otlp receiver, scraped from
/metrics. The exposition is checked with Debian's promtool, parsed here to compare values
with what was sent, negotiated to OpenMetrics, compressed, expired, and scraped by a real
Prometheus server. Everything listens on 127.0.0.1; every wait is bounded."""
import gzip
import json
import os
import re
import struct
import subprocess
import tempfile
import time
import urllib.parse

import harness
from harness import (Meltp, fixture, free_port, http_request, pb_fixed64, pb_kv_str, pb_len,
                     pb_varint, wait_until)

PB = "application/x-protobuf"
OM_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
             "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
T0 = int(time.time()) * 10**9

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  prometheus:
    endpoint: 127.0.0.1:%(port)d
    metric_expiration: %(expiration)s
    enable_open_metrics: %(om)s
    const_labels:
      lab: pull
%(extra)s
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    metrics: {{receivers: [otlp], exporters: [prometheus]}}
"""


def start(expiration="5m", om="true", extra=""):
    port = free_port()
    m = Meltp(CONFIG % {"port": port, "expiration": expiration, "om": om, "extra": extra})
    return m, port


# ---- OTLP metrics encoder (field numbers from opentelemetry/proto/metrics/v1) ------------

def _double(fn, v):
    return pb_fixed64(fn, struct.unpack("<Q", struct.pack("<d", v))[0])


def _attrs(fn, attrs):
    return b"".join(pb_len(fn, pb_kv_str(k, v)) for k, v in attrs.items())


def number_point(attrs, value, t=None, flags=0):
    b = _attrs(7, attrs) + pb_fixed64(2, T0 - 10**9) + pb_fixed64(3, t or T0)
    b += _double(4, value) if isinstance(value, float) else pb_fixed64(6, value & (2**64 - 1))
    if flags:
        b += pb_varint(8, flags)
    return b


def histogram_point(attrs, counts, bounds, total, t=None):
    packed_counts = b"".join(struct.pack("<Q", c) for c in counts)
    packed_bounds = b"".join(struct.pack("<d", x) for x in bounds)
    return (_attrs(9, attrs) + pb_fixed64(2, T0 - 10**9) + pb_fixed64(3, t or T0) +
            pb_fixed64(4, sum(counts)) + _double(5, total) + pb_len(6, packed_counts) +
            pb_len(7, packed_bounds))


def summary_point(attrs, count, total, quantiles, t=None):
    qv = b"".join(pb_len(6, _double(1, q) + _double(2, v)) for q, v in quantiles)
    return (_attrs(7, attrs) + pb_fixed64(2, T0 - 10**9) + pb_fixed64(3, t or T0) +
            pb_fixed64(4, count) + _double(5, total) + qv)


def exp_histogram_point(attrs, t=None):
    positive = pb_varint(1, 2) + pb_len(2, bytes([3, 1]))  # offset 1 (zigzag), counts [3, 1]
    return (_attrs(1, attrs) + pb_fixed64(2, T0 - 10**9) + pb_fixed64(3, t or T0) +
            pb_fixed64(4, 4) + _double(5, 10.0) + pb_varint(6, 0) + pb_len(8, positive))


def metric(name, unit, desc, kind, points, temporality=2, monotonic=False):
    """kind: gauge / sum / histogram / exp / summary; points: encoded data points."""
    field = {"gauge": 5, "sum": 7, "histogram": 9, "exp": 10, "summary": 11}[kind]
    data = b"".join(pb_len(1, p) for p in points)
    if kind in ("sum", "histogram", "exp"):
        data += pb_varint(2, temporality)
    if kind == "sum":
        data += pb_varint(3, 1 if monotonic else 0)
    return pb_len(1, name.encode()) + pb_len(2, desc.encode()) + pb_len(3, unit.encode()) + \
        pb_len(field, data)


def request(metrics, service="pulltest", instance="i-1"):
    resource = pb_len(1, _attrs(1, {"service.name": service, "service.instance.id": instance,
                                    "host.name": "h1"}))
    scope = pb_len(1, pb_len(1, b"pull.scope") + pb_len(2, b"1.2.3"))
    sm = pb_len(2, scope + b"".join(pb_len(2, m) for m in metrics))
    return pb_len(1, resource + sm)


def typed_request(t=None):
    a = {"route": "/a"}
    return request([
        metric("pull.temperature", "Cel", "Temperature", "gauge", [number_point(a, 21.5, t)]),
        metric("pull.requests", "{request}", "Requests", "sum", [number_point(a, 7, t)],
               monotonic=True),
        metric("pull.latency", "s", "Latency", "histogram",
               [histogram_point(a, [1, 2, 3], [0.5, 1.0], 4.25, t)]),
        metric("pull.rpc", "ms", "RPC time", "summary",
               [summary_point(a, 10, 55.5, [(0.5, 4.0), (0.99, 9.5)], t)]),
        metric("pull.native", "s", "Native", "exp", [exp_histogram_point(a, t)]),
    ])


# ---- exposition parsing -----------------------------------------------------------------

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( \S+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def parse(text):
    """-> list of (name, labels dict, value float); comments skipped."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        assert m, "unparseable sample line %r" % line
        labels = {}
        if m.group(3):
            pos = 0
            body = m.group(3)
            while pos < len(body):
                lm = LABEL.match(body, pos)
                assert lm, "bad labels in %r" % line
                labels[lm.group(1)] = lm.group(2).encode().decode("unicode_escape")
                pos = lm.end()
        out.append((m.group(1), labels, float(m.group(4))))
    return out


def find(samples, name, **labels):
    """Values of the series named `name` whose labels include `labels`."""
    return [v for n, l, v in samples if n == name and all(l.get(k) == x for k, x in labels.items())]


def scrape(port, accept=None, encoding=None, path="/metrics", method="GET"):
    headers = {}
    if accept:
        headers["Accept"] = accept
    if encoding:
        headers["Accept-Encoding"] = encoding
    return http_request("http://127.0.0.1:%d%s" % (port, path), None, headers=headers,
                        method=method)


def promtool_check(text):
    """Runs `promtool check metrics`; fails on format errors (exit 1), tolerates lint
    findings such as missing HELP (exit 3)."""
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    err = (p.stdout + p.stderr).decode()
    assert p.returncode in (0, 3) and "error while linting" not in err, \
        "promtool rc=%d: %s" % (p.returncode, err)
    return err


# ---- tests --------------------------------------------------------------------------------

def test_fixtures_scraped_as_text_and_checked_by_promtool():
    m, port = start(om="false")
    files = ["metrics-n100/metrics-proto-%d.bin" % i for i in (1, 2, 3)] + \
        ["metrics-n1/metrics-proto-1.bin", "metrics-n20-cumulative-x2/metrics-proto-1.bin",
         "metrics-n20-cumulative-x2/metrics-proto-2.bin"]
    for f in files:
        st, _, body = m.post("/v1/metrics", fixture(os.path.join("otlp-js", f)), PB)
        assert st == 200, (f, st, body)
    # what each series should show: the newest point of it over all the files sent, read
    # from the JSON twin of each protobuf fixture
    latest = {}
    for f in files:
        req = json.loads(fixture(os.path.join("otlp-js", f.replace("proto", "json"))))
        for rm in req["resourceMetrics"]:
            res = {a["key"]: list(a["value"].values())[0] for a in rm["resource"]["attributes"]}
            job = "%s/%s" % (res["service.namespace"], res["service.name"])
            for sm in rm["scopeMetrics"]:
                for mt in sm["metrics"]:
                    kinds = {"sum": ("acceptance_requests_total", lambda dp: dp.get(
                                 "asInt", dp.get("asDouble"))),
                             "histogram": ("acceptance_request_duration_seconds_count",
                                           lambda dp: dp["count"])}
                    for kind, (name, val) in kinds.items():
                        if kind not in mt or (kind == "sum" and
                                              mt["name"] != "acceptance.requests"):
                            continue
                        for dp in mt[kind]["dataPoints"]:
                            labels = {re.sub(r"[^a-zA-Z0-9_]", "_", a["key"]):
                                      str(list(a["value"].values())[0]) for a in dp["attributes"]}
                            labels.update(job=job, instance=res["service.instance.id"],
                                          lab="pull")
                            key = (name, tuple(sorted(labels.items())))
                            t = int(dp["timeUnixNano"])
                            if key not in latest or t >= latest[key][0]:
                                latest[key] = (t, float(val(dp)))
    want = [(k[0], dict(k[1]), v[1]) for k, v in latest.items()]
    assert len(want) > 20, want

    def body():
        st, hdrs, b = scrape(port)
        assert st == 200 and hdrs["content-type"] == "text/plain; version=0.0.4; charset=utf-8", \
            (st, hdrs)
        return b.decode()
    text = wait_until(lambda: (lambda t: t if "acceptance_request_duration_seconds_bucket" in t
                               and "fixture-metrics-3" in t else None)(body()), 10,
                      what="fixture series on /metrics")
    promtool_check(text)

    # the exporter works asynchronously: wait (bounded) until the last file's points are in
    def all_in():
        sm = parse(body())
        return sm if all(find(sm, n, **l) == [v] for n, l, v in want) else None
    try:
        wait_until(all_in, 10, what="every fixture value on /metrics")
    except AssertionError:
        pass
    text = body()
    samples = parse(text)
    for name, labels, value in want:
        got = find(samples, name, **labels)
        assert got == [value], (name, labels, value, got)
    # families are written once each, sorted by name, and HELP comes from the description
    types = re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M)
    assert [t[0] for t in types] == sorted(set(t[0] for t in types)), types
    assert ("acceptance_requests_total", "counter") in types
    assert ("acceptance_request_duration_seconds", "histogram") in types
    assert ("acceptance_cpu_temperature_celsius", "gauge") in types
    assert "# HELP acceptance_requests_total Requests handled\n" in text
    assert find(samples, "target_info", job="acceptance/fixture-metrics"), "no target_info"
    assert m.stop() == 0


def test_types_openmetrics_gzip_and_http_errors():
    m, port = start()
    st, _, body = m.post("/v1/metrics", typed_request(), PB)
    assert st == 200, body
    base = {"route": "/a", "job": "pulltest", "instance": "i-1", "lab": "pull"}

    def text():
        st, _, b = scrape(port)
        assert st == 200
        t = b.decode()
        return t if "pull_rpc_milliseconds_count" in t else None
    t = wait_until(text, 10, what="typed series on /metrics")
    promtool_check(t)
    s = parse(t)
    assert find(s, "pull_temperature_celsius", **base) == [21.5], t
    assert find(s, "pull_requests_total", **base) == [7], t
    assert find(s, "pull_latency_seconds_bucket", le="0.5", **base) == [1], t
    assert find(s, "pull_latency_seconds_bucket", le="1", **base) == [3], t
    assert find(s, "pull_latency_seconds_bucket", le="+Inf", **base) == [6], t
    assert find(s, "pull_latency_seconds_sum", **base) == [4.25], t
    assert find(s, "pull_latency_seconds_count", **base) == [6], t
    assert find(s, "pull_rpc_milliseconds", quantile="0.5", **base) == [4.0], t
    assert find(s, "pull_rpc_milliseconds", quantile="0.99", **base) == [9.5], t
    assert find(s, "pull_rpc_milliseconds_count", **base) == [10], t
    assert "pull_native" not in t, t
    # buckets in le order, then _sum, then _count
    lat = [l for l in t.splitlines() if l.startswith("pull_latency_seconds")]
    assert [re.sub(r"[{ ].*", "", l) for l in lat] == ["pull_latency_seconds_bucket"] * 3 + [
        "pull_latency_seconds_sum", "pull_latency_seconds_count"], lat
    assert 'le="+Inf"' in lat[2], lat
    assert "# TYPE pull_requests_total counter\n" in t
    assert "# HELP pull_latency_seconds Latency\n# TYPE pull_latency_seconds histogram\n" in t

    # OpenMetrics when asked (the header Prometheus sends)
    st, hdrs, b = scrape(port, accept=OM_ACCEPT)
    om = b.decode()
    assert st == 200 and hdrs["content-type"] == \
        "application/openmetrics-text; version=1.0.0; charset=utf-8", hdrs
    assert om.endswith("# EOF\n"), om[-200:]
    assert "# TYPE pull_requests counter\n" in om, om
    assert "# UNIT pull_latency_seconds seconds\n" in om, om
    so = parse(om.replace("# EOF\n", ""))
    assert find(so, "pull_requests_total", **base) == [7], om
    assert find(so, "pull_latency_seconds_bucket", le="+Inf", **base) == [6], om
    # text when text is preferred or nothing is said
    st, hdrs, _ = scrape(port, accept="text/plain;version=0.0.4")
    assert hdrs["content-type"].startswith("text/plain; version=0.0.4"), hdrs
    st, hdrs, _ = scrape(port, accept="*/*")
    assert hdrs["content-type"].startswith("text/plain; version=0.0.4"), hdrs

    # gzip when accepted; same body
    st, hdrs, gz = scrape(port, encoding="gzip")
    assert st == 200 and hdrs.get("content-encoding") == "gzip", hdrs
    assert parse(gzip.decompress(gz).decode()) == parse(scrape(port)[2].decode())

    # other paths and methods
    assert scrape(port, path="/")[0] == 404
    assert scrape(port, path="/metrics/x")[0] == 404
    st, hdrs, _ = scrape(port, method="POST")
    assert st == 405 and "GET" in hdrs.get("allow", ""), (st, hdrs)

    # the native histogram was dropped and counted
    wait_until(lambda: m.metric("meltp_prometheus_exporter_dropped_series_total",
                                reason="native_histogram") >= 1, 5,
               what="native histogram drop counted")
    assert m.metric("meltp_prometheus_exporter_series") >= 10
    assert m.metric("meltp_prometheus_exporter_scrapes_total") >= 5
    assert m.stop() == 0


def test_updates_delta_and_stale_markers():
    m, port = start()
    a = {"k": "v"}
    base = {"k": "v", "job": "pulltest", "instance": "i-1"}
    reqs = [
        request([metric("upd.gauge", "", "", "gauge", [number_point(a, 1.0, T0)]),
                 metric("upd.delta", "", "", "sum", [number_point(a, 2, T0)], temporality=1,
                        monotonic=True)]),
        request([metric("upd.gauge", "", "", "gauge", [number_point(a, 2.0, T0 + 10**9)]),
                 metric("upd.delta", "", "", "sum", [number_point(a, 3, T0 + 10**9)],
                        temporality=1, monotonic=True)]),
        # an older sample does not replace a newer one
        request([metric("upd.gauge", "", "", "gauge", [number_point(a, 99.0, T0 - 10**9)])]),
    ]
    points = 0
    for r, n in zip(reqs, (2, 2, 1)):
        st, _, body = m.post("/v1/metrics", r, PB)
        assert st == 200, body
        # one batch at a time, so the order of arrival is the order sent
        points += n
        wait_until(lambda: m.metric("meltp_exporter_sent_items_total",
                                    exporter="prometheus") == points, 10,
                   what="%d data points in the exporter" % points)

    def cur():
        return parse(scrape(port)[2].decode())
    wait_until(lambda: find(cur(), "upd_delta_total", **base) == [5], 10,
               what="delta sum accumulated to 5: %s" % scrape(port)[2].decode())
    assert find(cur(), "upd_gauge", **base) == [2], scrape(port)[2].decode()
    # NoRecordedValue: a stale marker removes the series
    st, _, _ = m.post("/v1/metrics", request([metric("upd.gauge", "", "", "gauge", [
        number_point(a, 0.0, T0 + 2 * 10**9, flags=1)])]), PB)
    assert st == 200
    wait_until(lambda: not find(cur(), "upd_gauge"), 10, what="stale series removed")
    assert find(cur(), "upd_delta_total", **base) == [5]
    assert m.stop() == 0


def test_series_expire():
    m, port = start(expiration="1s")
    st, _, _ = m.post("/v1/metrics", request([metric("exp.gauge", "", "", "gauge", [
        number_point({"x": "1"}, 3.0)])]), PB)
    assert st == 200
    sent = time.time()
    wait_until(lambda: b"exp_gauge{" in scrape(port)[2], 5, what="series on /metrics")
    wait_until(lambda: b"exp_gauge" not in scrape(port)[2], 10, step=0.2,
               what="series to expire")
    assert time.time() - sent >= 1.0
    # it comes back with the next update
    m.post("/v1/metrics", request([metric("exp.gauge", "", "", "gauge", [
        number_point({"x": "1"}, 4.0, T0 + 10**9)])]), PB)
    wait_until(lambda: b"exp_gauge{" in scrape(port)[2], 5, what="series back")
    assert m.metric("meltp_prometheus_exporter_expired_series_total") >= 1
    assert m.stop() == 0


def test_max_series_and_timestamps():
    m, port = start(extra="    max_series: 3\n    send_timestamps: true")
    points = [number_point({"i": str(i)}, float(i)) for i in range(5)]
    st, _, _ = m.post("/v1/metrics", request([metric("cap.gauge", "", "", "gauge", points)]), PB)
    assert st == 200
    # 5 gauges + target_info offered, 3 kept, the rest dropped and counted
    wait_until(lambda: m.metric("meltp_prometheus_exporter_dropped_series_total",
                                reason="max_series") == 3, 5, what="max_series drops counted")
    text = scrape(port)[2].decode()
    promtool_check(text)
    lines = [l for l in text.splitlines() if not l.startswith("#")]
    assert len(lines) == 3, text
    assert m.metric("meltp_prometheus_exporter_series") == 3
    # send_timestamps: the point's time in milliseconds (target_info: the batch's)
    for l in lines:
        if l.startswith("cap_gauge"):
            assert l.endswith(" %d" % (T0 // 10**6)), l
        assert LINE.match(l).group(5), l
    st, _, om = scrape(port, accept=OM_ACCEPT)
    for l in om.decode().splitlines():
        if l.startswith("cap_gauge"):
            assert l.endswith(" %d.%03d" % (T0 // 10**9, T0 // 10**6 % 1000)), l
    assert m.stop() == 0


def test_config_errors():
    bad = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:1
exporters:
  prometheus:
    endpoint: nonsense
    metric_expiration: 0s
    max_series: 0
    const_labels:
      "bad-name": x
service:
  pipelines:
    metrics: {receivers: [otlp], exporters: [prometheus]}
"""
    d = tempfile.mkdtemp(prefix="meltp-test-")
    path = os.path.join(d, "bad.yaml")
    with open(path, "w") as f:
        f.write(bad)
    p = subprocess.run([harness.MELTP, "check-config", "--config", path], capture_output=True,
                       timeout=30)
    err = (p.stdout + p.stderr).decode()
    assert p.returncode != 0, err
    for key in ("exporters.prometheus.endpoint", "exporters.prometheus.metric_expiration",
                "exporters.prometheus.max_series", "exporters.prometheus.const_labels.bad-name"):
        assert key in err, (key, err)


PROM_CONFIG = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: meltp_text
    static_configs: [{targets: ["127.0.0.1:%d"]}]
  - job_name: meltp_om
    static_configs: [{targets: ["127.0.0.1:%d"]}]
"""


def test_real_prometheus_scrapes_both_formats():
    text_port, om_port = free_port(), free_port()
    m = Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  prometheus/text:
    endpoint: 127.0.0.1:%d
  prometheus/om:
    endpoint: 127.0.0.1:%d
    enable_open_metrics: true
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    metrics: {{receivers: [otlp], exporters: [prometheus/text, prometheus/om]}}
""" % (text_port, om_port))
    st, _, body = m.post("/v1/metrics", typed_request(), PB)
    assert st == 200, body
    st, _, body = m.post("/v1/metrics", fixture("otlp-js/metrics-n100/metrics-proto-1.bin"), PB)
    assert st == 200, body

    d = tempfile.mkdtemp(prefix="meltp-prom-")
    cfg = os.path.join(d, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write(PROM_CONFIG % (text_port, om_port))
    web = free_port()
    log = open(os.path.join(d, "prometheus.log"), "wb")
    prom = subprocess.Popen(["prometheus", "--config.file=" + cfg,
                             "--storage.tsdb.path=" + os.path.join(d, "data"),
                             "--web.listen-address=127.0.0.1:%d" % web],
                            stdout=log, stderr=subprocess.STDOUT)
    harness._procs.append(prom)

    def logtext():
        with open(os.path.join(d, "prometheus.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]

    def query(q):
        if prom.poll() is not None:
            raise AssertionError("prometheus exited: " + logtext())
        st, _, b = http_request("http://127.0.0.1:%d/api/v1/query?query=%s" %
                                (web, urllib.parse.quote(q)), None, method="GET")
        if st != 200:
            return None
        res = json.loads(b)["data"]["result"]
        return [(r["metric"], float(r["value"][1])) for r in res]

    def value(q):
        try:
            r = query(q)
        except OSError:
            return None
        return r[0][1] if r and len(r) == 1 else None

    checks = {
        'pull_requests_total{exported_job="pulltest",exported_instance="i-1",route="/a"}': 7,
        'pull_temperature_celsius{route="/a"}': 21.5,
        'pull_latency_seconds_bucket{le="1",route="/a"}': 3,
        'pull_latency_seconds_count{route="/a"}': 6,
        'pull_rpc_milliseconds{quantile="0.99"}': 9.5,
        'count(acceptance_requests_total)': 9,
    }
    try:
        def ready():
            if prom.poll() is not None:
                raise AssertionError("prometheus exited: " + logtext())
            try:
                return http_request("http://127.0.0.1:%d/-/ready" % web, None,
                                    method="GET")[0] == 200
            except OSError:
                return False
        wait_until(ready, 30, step=0.2, what="prometheus to be ready")
        for job in ("meltp_text", "meltp_om"):
            for q, want in checks.items():
                sel = q.replace("{", '{job="%s",' % job) if "(" not in q else \
                    q.replace("(acceptance_requests_total)",
                              '(acceptance_requests_total{job="%s"})' % job)
                end = time.time() + 30
                while value(sel) != want:
                    assert time.time() < end, "%s == %s in Prometheus: got %s; log: %s" % (
                        sel, want, query(sel), logtext())
                    time.sleep(0.5)
            assert value('up{job="%s"}' % job) == 1
        # the OpenMetrics target really was scraped as OpenMetrics: its unit metadata arrived
        st, _, b = http_request("http://127.0.0.1:%d/api/v1/targets/metadata?match_target=%s"
                                "&metric=pull_latency_seconds" %
                                (web, urllib.parse.quote('{job="meltp_om"}')), None,
                                method="GET")
        meta = json.loads(b)["data"]
        assert meta and meta[0]["type"] == "histogram" and meta[0].get("unit") == "seconds", meta
    finally:
        prom.terminate()
        try:
            prom.wait(15)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        log.close()
    assert m.stop() == 0
