"""OTLP metrics -> meltp -> remote-write -> a real Prometheus (Debian's package): every type
lands with exactly the names, labels and values protocols.md §4 prescribes."""
import json
import time

from harness import Meltp, Prometheus, wait_until

JS = "application/json"


def kv(k, v):
    if isinstance(v, str):
        return {"key": k, "value": {"stringValue": v}}
    if isinstance(v, bool):
        return {"key": k, "value": {"boolValue": v}}
    if isinstance(v, int):
        return {"key": k, "value": {"intValue": str(v)}}
    return {"key": k, "value": {"doubleValue": v}}


def request(metrics, t_ns):
    return {"resourceMetrics": [{
        "resource": {"attributes": [kv("service.name", "checkout"), kv("service.namespace", "shop"),
                                     kv("service.instance.id", "i-1"), kv("host.name", "h1"),
                                     kv("synthetic", True)]},
        "scopeMetrics": [{"scope": {"name": "lab.meter", "version": "1.2"}, "metrics": metrics}]}]}


def all_types(t_ns, start_ns):
    pt = lambda extra: dict({"timeUnixNano": str(t_ns), "startTimeUnixNano": str(start_ns),
                             "attributes": [kv("method", "GET")]}, **extra)
    return [
        {"name": "http.server.requests", "unit": "{request}", "description": "Requests served.",
         "sum": {"aggregationTemporality": 2, "isMonotonic": True,
                 "dataPoints": [pt({"asInt": "42"})]}},
        {"name": "system.memory.utilization", "unit": "1",
         "gauge": {"dataPoints": [pt({"asDouble": 0.25})]}},
        {"name": "queue.depth", "unit": "{item}",
         "sum": {"aggregationTemporality": 2, "isMonotonic": False,
                 "dataPoints": [pt({"asInt": "-3"})]}},
        {"name": "http.server.duration", "unit": "s",
         "histogram": {"aggregationTemporality": 2, "dataPoints": [pt({
             "count": "10", "sum": 10.5, "bucketCounts": ["1", "2", "3", "4"],
             "explicitBounds": [0.1, 0.5, 1]})]}},
        {"name": "rpc.latency", "unit": "ms",
         "summary": {"dataPoints": [pt({"count": "4", "sum": 100.0, "quantileValues": [
             {"quantile": 0.5, "value": 20.0}, {"quantile": 0.99, "value": 70.0}]})]}},
        {"name": "payload.size", "unit": "By",
         "exponentialHistogram": {"aggregationTemporality": 2, "dataPoints": [pt({
             "count": "37", "sum": 500.0, "scale": 0, "zeroCount": "0",
             "positive": {"offset": 3, "bucketCounts": ["10", "0", "0", "20", "5", "2"]}})]}},
    ]


def delta(t_ns, start_ns, v):
    return [{"name": "jobs.processed", "unit": "",
             "sum": {"aggregationTemporality": 1, "isMonotonic": True, "dataPoints": [{
                 "timeUnixNano": str(t_ns), "startTimeUnixNano": str(start_ns),
                 "attributes": [kv("queue", "a")], "asInt": str(v)}]}}]


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
"""

COMMON = {"job": "shop/checkout", "instance": "i-1", "otel_scope_name": "lab.meter",
          "otel_scope_version": "1.2", "method": "GET"}


def by_labels(result):
    return {json.dumps(r["metric"], sort_keys=True): r for r in result}


def value_of(prom, q, t):
    res = prom.query(q, t)
    assert len(res) == 1, (q, res)
    return res[0]


def test_otlp_to_prometheus_exact_series():
    prom = Prometheus()
    m = Meltp(CFG % prom.write_url)
    now = time.time()
    t_ns = int((now - 20) * 1e9)
    start_ns = int((now - 3600) * 1e9)
    st, _, body = m.post("/v1/metrics", json.dumps(request(all_types(t_ns, start_ns), t_ns)).encode(), JS)
    assert st == 200, body
    st, _, _ = m.post("/v1/metrics", json.dumps(request(delta(t_ns - 10 * 10**9, start_ns, 10), 0)).encode(), JS)
    assert st == 200
    st, _, _ = m.post("/v1/metrics", json.dumps(request(delta(t_ns, t_ns - 10 * 10**9, 5), 0)).encode(), JS)
    assert st == 200
    t = t_ns / 1e9
    # every request is exported in order: once the last one's sample (at t) is in, all are
    t_ms = t_ns // 10**6  # Prometheus keeps milliseconds (truncated)
    wait_until(lambda: prom.query("timestamp(jobs_processed_total) == %d.%03d" % divmod(t_ms, 1000), t), 20,
               what="series in Prometheus")

    names = set(prom.api("/api/v1/label/__name__/values"))
    want_names = {"http_server_requests_total", "system_memory_utilization_ratio", "queue_depth",
                  "http_server_duration_seconds_bucket", "http_server_duration_seconds_sum",
                  "http_server_duration_seconds_count", "rpc_latency_milliseconds",
                  "rpc_latency_milliseconds_sum", "rpc_latency_milliseconds_count",
                  "payload_size_bytes", "jobs_processed_total", "target_info"}
    assert want_names <= names, "missing: %s; have %s" % (want_names - names, names)

    r = value_of(prom, "http_server_requests_total", t)
    assert r["metric"] == dict(COMMON, __name__="http_server_requests_total"), r["metric"]
    assert float(r["value"][1]) == 42
    assert float(value_of(prom, "system_memory_utilization_ratio", t)["value"][1]) == 0.25
    assert float(value_of(prom, "queue_depth", t)["value"][1]) == -3

    buckets = {r["metric"]["le"]: float(r["value"][1])
               for r in prom.query("http_server_duration_seconds_bucket", t)}
    assert buckets == {"0.1": 1, "0.5": 3, "1": 6, "+Inf": 10}, buckets
    assert float(value_of(prom, "http_server_duration_seconds_sum", t)["value"][1]) == 10.5
    assert float(value_of(prom, "http_server_duration_seconds_count", t)["value"][1]) == 10

    q = {r["metric"]["quantile"]: float(r["value"][1]) for r in prom.query("rpc_latency_milliseconds", t)}
    assert q == {"0.5": 20, "0.99": 70}, q
    assert float(value_of(prom, "rpc_latency_milliseconds_count", t)["value"][1]) == 4

    assert float(value_of(prom, "histogram_count(payload_size_bytes)", t)["value"][1]) == 37
    assert float(value_of(prom, "histogram_sum(payload_size_bytes)", t)["value"][1]) == 500

    r = value_of(prom, "jobs_processed_total", t)
    assert float(r["value"][1]) == 15, "delta 10 then 5 must be cumulative 15: %s" % r
    assert r["metric"]["queue"] == "a"
    r = value_of(prom, "jobs_processed_total", t - 10)
    assert float(r["value"][1]) == 10

    ti = prom.query("target_info", t)
    assert len(ti) == 1 and ti[0]["metric"] == {"__name__": "target_info", "job": "shop/checkout",
                                                "instance": "i-1", "host_name": "h1",
                                                "synthetic": "true"}, ti
    assert m.metric("meltp_prw_samples_dropped_total") == 0
    assert m.stop() == 0


def test_resource_promotion_and_external_labels():
    prom = Prometheus()
    m = Meltp((CFG % prom.write_url).replace("    retry_on_failure:", """    external_labels:
      cluster: lab-dev
    promote_resource_attributes: [host.name]
    add_scope_labels: false
    retry_on_failure:"""))
    now = time.time()
    t_ns = int((now - 5) * 1e9)
    st, _, _ = m.post("/v1/metrics", json.dumps(request(all_types(t_ns, t_ns - 10**9)[:1], t_ns)).encode(), JS)
    assert st == 200
    t = t_ns / 1e9
    wait_until(lambda: prom.query("http_server_requests_total", t), 20, what="series")
    r = value_of(prom, "http_server_requests_total", t)
    assert r["metric"] == {"__name__": "http_server_requests_total", "job": "shop/checkout",
                           "instance": "i-1", "method": "GET", "host_name": "h1",
                           "cluster": "lab-dev"}, r["metric"]


def test_prometheus_rejects_are_counted_not_retried():
    prom = Prometheus()
    m = Meltp(CFG % prom.write_url)
    now = time.time()
    t_ns = int((now - 5) * 1e9)
    body = json.dumps(request(all_types(t_ns, t_ns - 10**9)[:1], t_ns)).encode()
    assert m.post("/v1/metrics", body, JS)[0] == 200
    wait_until(lambda: prom.query("http_server_requests_total", t_ns / 1e9), 20, what="series")
    # the same timestamp with another value: Prometheus answers 400 (duplicate sample)
    body2 = body.replace(b'"asInt": "42"', b'"asInt": "43"')
    assert m.post("/v1/metrics", body2, JS)[0] == 200
    wait_until(lambda: m.metric("meltp_prw_samples_dropped_total", reason="http_400") >= 1, 20,
               what="the 400 to be counted")
    assert m.metric("meltp_exporter_retries_total", exporter="prometheusremotewrite") == 0


def test_rw2_to_meltp_and_fallback_to_rw1_for_prometheus_2():
    prom = Prometheus()
    gw = Meltp("""
receivers:
  prometheusremotewrite:
    endpoint: 127.0.0.1:{otlp}
exporters:
  file:
    path: {dir}/m.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    metrics: {{receivers: [prometheusremotewrite], exporters: [file]}}
""")
    m = Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  prometheusremotewrite/v2meltp:
    endpoint: http://127.0.0.1:%d/api/v1/write
    protobuf_message: io.prometheus.write.v2.Request
  prometheusremotewrite/v2prom:
    endpoint: %s
    protobuf_message: io.prometheus.write.v2.Request
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    metrics: {{receivers: [otlp], exporters: [prometheusremotewrite/v2meltp, prometheusremotewrite/v2prom]}}
""" % (gw.otlp, prom.write_url))
    t_ns = int((time.time() - 5) * 1e9)
    st, _, _ = m.post("/v1/metrics", json.dumps(request(all_types(t_ns, t_ns - 10**9), t_ns)).encode(), JS)
    assert st == 200
    t = t_ns / 1e9
    # Prometheus 2.42 only speaks 1.0: meltp notices and sends the same data as 1.0
    wait_until(lambda: prom.query("http_server_requests_total", t), 20, what="fallback delivery")
    assert "using 1.0" in m.logtext()
    # meltp's own receiver takes 2.0 as is
    # the exporter shards series over several requests: each lands as its own line
    want = {"http_server_requests", "http_server_duration_seconds", "payload_size_bytes"}

    def names():
        return {mm["name"] for l in gw.file_lines("m.jsonl") for rm in l["resourceMetrics"]
                for sm in rm["scopeMetrics"] for mm in sm["metrics"]}
    wait_until(lambda: want <= names(), 10, what="2.0 delivery to meltp of every metric")
    assert gw.metric("meltp_receiver_refused_requests_total") == 0
    assert m.metric("meltp_prw_samples_dropped_total", exporter="prometheusremotewrite/v2meltp") == 0
