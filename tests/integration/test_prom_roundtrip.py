"""Prometheus <-> meltp: Prometheus scrapes itself and remote-writes to meltp, and what meltp
writes to its file exporter matches Prometheus's own query results series for series and value
for value; and OTLP -> meltp -> remote-write -> meltp -> Prometheus stores exactly the same
series as OTLP -> meltp -> Prometheus."""
import json
import math
import time

from harness import Meltp, Prometheus, wait_until, j_attrs
from test_prom_rw_export import all_types, request, delta

JS = "application/json"


def canon_labels(labels):
    out = {}
    for k, v in labels.items():
        if k in ("le", "quantile"):
            v = repr(float(v.replace("+Inf", "inf")))
        out[k] = v
    return json.dumps(out, sort_keys=True)


def canon_value(v):
    f = float(v)
    return "NaN" if math.isnan(f) else repr(f)


def file_samples(lines):
    """OTLP/JSON metrics (as meltp's file exporter writes them) -> {ts_ms: {series: value}},
    rebuilt the Prometheus way: counters get _total, histograms _bucket{le}/_sum/_count."""
    out = {}
    for req in lines:
        for rm in req.get("resourceMetrics", []):
            ra = j_attrs(rm.get("resource", {}).get("attributes"))
            base = {}
            if "service.name" in ra:
                ns = ra.get("service.namespace")
                base["job"] = ns + "/" + ra["service.name"] if ns else ra["service.name"]
            if "service.instance.id" in ra:
                base["instance"] = ra["service.instance.id"]
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    name = m["name"]

                    def put(ts, series_name, labels, value):
                        lab = dict(base, **{k: str(v) for k, v in labels.items()})
                        lab["__name__"] = series_name
                        out.setdefault(ts, {})[canon_labels(lab)] = canon_value(value)

                    for kind in ("gauge", "sum"):
                        if kind in m:
                            mono = kind == "sum" and m[kind].get("isMonotonic")
                            for dp in m[kind].get("dataPoints", []):
                                ts = int(dp["timeUnixNano"]) // 10**6
                                v = dp.get("asDouble", dp.get("asInt", 0))
                                put(ts, name + "_total" if mono else name, j_attrs(dp.get("attributes")), v)
                    if "histogram" in m:
                        for dp in m["histogram"].get("dataPoints", []):
                            ts = int(dp["timeUnixNano"]) // 10**6
                            a = j_attrs(dp.get("attributes"))
                            cum = 0
                            bounds = dp.get("explicitBounds", [])
                            counts = [int(c) for c in dp.get("bucketCounts", [])]
                            for i, b in enumerate(bounds):
                                cum += counts[i]
                                put(ts, name + "_bucket", dict(a, le=repr(float(b))), cum)
                            put(ts, name + "_bucket", dict(a, le="+Inf"), int(dp.get("count", 0)))
                            if "sum" in dp:
                                put(ts, name + "_sum", a, dp["sum"])
                            put(ts, name + "_count", a, dp.get("count", 0))
                    if "summary" in m:
                        for dp in m["summary"].get("dataPoints", []):
                            ts = int(dp["timeUnixNano"]) // 10**6
                            a = j_attrs(dp.get("attributes"))
                            for q in dp.get("quantileValues", []):
                                put(ts, name, dict(a, quantile=repr(float(q.get("quantile", 0)))), q.get("value", 0))
                            put(ts, name + "_sum", a, dp.get("sum", 0))
                            put(ts, name + "_count", a, dp.get("count", 0))
    return out


def test_prometheus_remote_writes_to_meltp_value_for_value():
    m = Meltp("""
receivers:
  prometheusremotewrite:
    endpoint: 127.0.0.1:{otlp}
exporters:
  file:
    path: {dir}/metrics.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    metrics: {{receivers: [prometheusremotewrite], exporters: [file]}}
""")
    prom = Prometheus(config="""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: self
    static_configs:
      - targets: ['127.0.0.1:$PORT']
remote_write:
  - url: http://127.0.0.1:%d/api/v1/write
    queue_config:
      batch_send_deadline: 500ms
""" % m.otlp, remote_write_receiver=False)
    # wait for a few scrapes to be relayed
    wait_until(lambda: len(file_samples(m.file_lines("metrics.jsonl"))) >= 3, 30,
               what="three scrapes relayed to meltp")
    got = file_samples(m.file_lines("metrics.jsonl"))
    # the second scrape seen is complete in the file (the first may have been split)
    ts = sorted(got)[1]
    res = prom.api("/api/v1/query", query='{job="self"}[1ms]', time="%.3f" % (ts / 1000.0))["result"]
    want = {}
    for r in res:
        for t, v in r["values"]:
            if round(float(t) * 1000) == ts:
                want[canon_labels(r["metric"])] = canon_value(v)
    assert len(want) > 50, "Prometheus returned only %d series" % len(want)
    mine = got[ts]
    missing = set(want) - set(mine)
    extra = set(mine) - set(want)
    assert not missing and not extra, "missing %s ... extra %s" % (sorted(missing)[:3], sorted(extra)[:3])
    diff = [k for k in want if want[k] != mine[k]]
    assert not diff, "values differ: %s" % [(k, want[k], mine[k]) for k in diff[:3]]


def test_round_trip_through_two_meltps_gives_the_same_series():
    round_trip(passthrough=True)


def test_round_trip_converting_relay_gives_the_same_series():
    round_trip(passthrough=False)


def round_trip(passthrough):
    """OTLP -> meltp a -> remote write -> meltp b -> Prometheus equals OTLP -> meltp a ->
    Prometheus; b either forwards remote write as received or converts it to OTLP and back."""
    direct = Prometheus()
    relayed = Prometheus()
    b = Meltp("""
receivers:
  prometheusremotewrite:
    endpoint: 127.0.0.1:{otlp}
    passthrough: %s
exporters:
  prometheusremotewrite:
    endpoint: %s
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    metrics: {{receivers: [prometheusremotewrite], exporters: [prometheusremotewrite]}}
""" % ("true" if passthrough else "false", relayed.write_url))
    assert ("1.0 passed through as received" in b.logtext()) == passthrough
    a = Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  prometheusremotewrite/direct:
    endpoint: %s
  prometheusremotewrite/relay:
    endpoint: http://127.0.0.1:%d/api/v1/write
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    metrics: {{receivers: [otlp], exporters: [prometheusremotewrite/direct, prometheusremotewrite/relay]}}
""" % (direct.write_url, b.otlp))
    now = time.time()
    t_ns = int((now - 20) * 1e9)
    start_ns = int((now - 3600) * 1e9)
    for body in (request(delta(t_ns - 10 * 10**9, start_ns, 10), 0),
                 request(all_types(t_ns, start_ns), t_ns),
                 request(delta(t_ns, t_ns - 10 * 10**9, 5), 0)):
        st, _, resp = a.post("/v1/metrics", json.dumps(body).encode(), JS)
        assert st == 200, resp
    t = t_ns / 1e9

    def snapshot(prom):
        res = prom.api("/api/v1/query", query='{job="shop/checkout"}[15s]', time="%.3f" % t)["result"]
        return {canon_labels(r["metric"]): [(v[0], canon_value(v[1])) for v in r.get("values", [])] +
                [("h", json.dumps(h, sort_keys=True)) for h in r.get("histograms", [])]
                for r in res}

    # both paths are asynchronous: wait (bounded) until they agree, then compare for the record
    try:
        wait_until(lambda: len(snapshot(direct)) > 10 and snapshot(relayed) == snapshot(direct), 20,
                   what="relayed series to match")
    except AssertionError:
        pass
    d, r = snapshot(direct), snapshot(relayed)
    assert set(d) == set(r), "only direct: %s; only relayed: %s" % (sorted(set(d) - set(r))[:3],
                                                                     sorted(set(r) - set(d))[:3])
    diff = [k for k in d if d[k] != r[k]]
    assert not diff, [(k, d[k], r[k]) for k in diff[:2]]
    ti = lambda p: p.query("target_info", t)
    assert [x["metric"] for x in ti(direct)] == [x["metric"] for x in ti(relayed)]
