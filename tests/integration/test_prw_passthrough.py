"""Remote-write 1.0 pass-through: a prometheusremotewrite receiver whose pipelines end only in
prometheusremotewrite exporters forwards the validated request bytes instead of translating
RW -> OTLP -> RW. These tests check that it is chosen only when it may be, that it validates
exactly like the converting path, and that what arrives downstream is what was sent (plus
external labels), in order per series, with metadata once, and value for value against a real
Prometheus."""
import http.server
import threading
import time

import test_prw_receiver as rx
from harness import Meltp, Prometheus, free_port, pb_fields, pb_get, wait_until, _servers
from test_prom_roundtrip import canon_labels, canon_value

PATH = "/api/v1/write"
V1 = "application/x-protobuf"


class FakeRemoteWrite:
    """A strict remote-write 1.0 receiver (protocols.md §3): POST /api/v1/write, snappy block
    body, Content-Type application/x-protobuf, X-Prometheus-Remote-Write-Version 0.1.0, a
    User-Agent; every series has sorted unique label names and a __name__. Records series
    (labels tuple, [(ts, value)]) and metadata per request; anything else is an error (400)."""

    def __init__(self):
        self.port = free_port()
        self.requests = []   # [(series, metadata)]
        self.errors = []
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    if self.path != PATH:
                        raise ValueError("path %s" % self.path)
                    for h, want in (("Content-Type", "application/x-protobuf"),
                                    ("Content-Encoding", "snappy"),
                                    ("X-Prometheus-Remote-Write-Version", "0.1.0")):
                        if self.headers.get(h) != want:
                            raise ValueError("%s: %r" % (h, self.headers.get(h)))
                    if not self.headers.get("User-Agent", "").startswith("meltp/"):
                        raise ValueError("User-Agent %r" % self.headers.get("User-Agent"))
                    body = rx.snappy_decode(raw)
                    series, meta = [], []
                    for fn, _, v in pb_fields(body):
                        if fn == 1:
                            series.append(outer._series(v))
                        elif fn == 3:
                            meta.append(bytes(v))
                        else:
                            raise ValueError("unexpected WriteRequest field %d" % fn)
                except Exception as e:  # noqa: BLE001
                    with outer.lock:
                        outer.errors.append(str(e))
                    msg = str(e).encode()
                    self.send_response(400)
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                with outer.lock:
                    outer.requests.append((series, meta))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        _servers.append(self.server)

    @staticmethod
    def _series(ts):
        labels = []
        for lb in pb_get(ts, 1):
            labels.append((b"".join(pb_get(lb, 1)).decode(), b"".join(pb_get(lb, 2)).decode()))
        names = [k for k, _ in labels]
        if names != sorted(names) or len(set(names)) != len(names):
            raise ValueError("labels not sorted / unique: %s" % names)
        if "__name__" not in names:
            raise ValueError("no __name__: %s" % labels)
        samples = []
        for sm in pb_get(ts, 2):
            f = {fn: v for fn, _, v in pb_fields(sm)}
            samples.append((f.get(2, 0), f.get(1, 0)))
        return tuple(labels), samples

    @property
    def url(self):
        return "http://127.0.0.1:%d%s" % (self.port, PATH)

    def series(self):
        with self.lock:
            return [s for req, _ in self.requests for s in req]

    def samples(self):
        return sum(len(s) for _, s in self.series())


def relay(sink_url, extra_exporter="", receiver_extra="", processors=""):
    return Meltp("""
receivers:
  prometheusremotewrite:
    endpoint: 127.0.0.1:{otlp}
%s
processors:
  batch: {{timeout: 50ms}}
  attributes: {{actions: [{{key: env, value: lab, action: upsert}}]}}
exporters:
  prometheusremotewrite:
    endpoint: %s
%s
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    metrics: {{receivers: [prometheusremotewrite], processors: [batch%s], exporters: [prometheusremotewrite]}}
""" % (receiver_extra, sink_url, extra_exporter, processors))


def passes_through(m):
    return "1.0 passed through as received" in m.logtext()


def fixture_series():
    out = []
    for i in (1, 2, 3):
        body, _ = rx.promrw(i)
        raw = rx.snappy_decode(body)
        for fn, _, v in pb_fields(raw):
            if fn == 1:
                out.append(FakeRemoteWrite._series(v))
    return out


def test_passthrough_chosen_only_when_every_consumer_reads_rw():
    sink = FakeRemoteWrite()
    assert passes_through(relay(sink.url))
    # a data processor, an exporter option that renames series, or the switch: convert
    assert not passes_through(relay(sink.url, processors=", attributes"))
    assert not passes_through(relay(sink.url, extra_exporter="    namespace: lab"))
    assert not passes_through(relay(sink.url, receiver_extra="    passthrough: false"))
    assert not passes_through(relay(
        sink.url, extra_exporter="    protobuf_message: io.prometheus.write.v2.Request"))


def test_passthrough_forwards_fixtures_as_sent():
    sink = FakeRemoteWrite()
    m = relay(sink.url)
    assert passes_through(m)
    want = fixture_series()
    for i in (1, 2, 3):
        st, _, resp = rx.post_fixture(m, i)
        assert st == 204, (st, resp)
    nsamples = sum(len(s) for _, s in want)
    wait_until(lambda: sink.samples() >= nsamples, 10, what="fixture samples at the sink")
    time.sleep(0.2)  # an absence: no error or extra series may follow; no wait can show none
    assert not sink.errors, sink.errors[:3]
    got = sink.series()
    assert sorted(got) == sorted(want), "series differ"
    assert m.metric("meltp_receiver_accepted_items_total") == nsamples
    wait_until(lambda: m.metric("meltp_exporter_sent_items_total",
                                exporter="prometheusremotewrite") == nsamples, 10,
               what="every sample counted as sent")


def test_passthrough_and_conversion_deliver_the_same_series():
    """The same Prometheus bodies through the pass-through and through RW -> OTLP -> RW give
    the same series and samples (target_info aside: the converting path rebuilds it). `le` and
    `quantile` compare as numbers: the pass-through keeps the sender's spelling ("1e+06"),
    the translation writes Prometheus's OTLP form ("1000000"), as canon_labels allows."""
    a, b = FakeRemoteWrite(), FakeRemoteWrite()
    pt = relay(a.url, extra_exporter="    external_labels: {{cluster: dev, job: ignored}}")
    cv = relay(b.url, extra_exporter="    external_labels: {{cluster: dev, job: ignored}}",
               receiver_extra="    passthrough: false")
    assert passes_through(pt) and not passes_through(cv)
    for i in (1, 2, 3):
        for m in (pt, cv):
            st, _, resp = rx.post_fixture(m, i)
            assert st == 204, (st, resp)
    n = sum(len(s) for _, s in fixture_series())
    wait_until(lambda: a.samples() >= n and b.samples() >= n, 10, what="both relays")
    time.sleep(0.2)  # an absence: no error or extra series may follow; no wait can show none
    assert not a.errors and not b.errors, (a.errors[:2], b.errors[:2])

    def keyed(sink):
        out = {}
        for labels, samples in sink.series():
            d = dict(labels)
            if d["__name__"] == "target_info":
                continue
            assert d.get("cluster") == "dev", labels      # external label added
            assert d.get("job") != "ignored", labels      # ... only where absent
            out.setdefault(canon_labels(d), []).extend((t, canon_value(repr(v))) for t, v in samples)
        return out
    ka, kb = keyed(a), keyed(b)
    assert set(ka) == set(kb), "only pass-through: %s; only converted: %s" % (
        sorted(set(ka) - set(kb))[:3], sorted(set(kb) - set(ka))[:3])
    diff = [k for k in ka if sorted(ka[k]) != sorted(kb[k])]
    assert not diff, [(k, ka[k], kb[k]) for k in diff[:2]]


def test_passthrough_keeps_series_order_dedups_metadata_and_target_info():
    sink = FakeRemoteWrite()
    m = relay(sink.url, extra_exporter="    remote_write_queue.num_consumers: 4\n"
                                       "    max_samples_per_send: 7")
    assert passes_through(m)
    meta = rx.pb_len(3, rx.pb_varint(1, 1) + rx.pb_len(2, b"reqs_total") + rx.pb_len(4, b"Requests."))
    ti = rx.rw1_series([("__name__", "target_info"), ("instance", "h:1"), ("job", "api"),
                        ("region", "eu")], [(1, 1000)])
    t0 = 1_700_000_000_000
    for r in range(20):
        body = b"".join(rx.rw1_series([("__name__", "reqs_total"), ("code", str(c)),
                                       ("instance", "h:1"), ("job", "api")],
                                      [(r * 10 + c, t0 + r * 1000)]) for c in range(10))
        body += meta
        if r == 0:
            body += ti
        if r == 1:  # an older target_info of the same target must not be forwarded
            body += rx.rw1_series([("__name__", "target_info"), ("instance", "h:1"),
                                   ("job", "api"), ("region", "eu")], [(1, 500)])
        st, _, resp = m.post(PATH, rx.snappy_encode(body), V1, "snappy")
        assert st == 204, (st, resp)
    wait_until(lambda: sink.samples() >= 201, 10, what="200 samples and a target_info")
    # an absence: the older target_info may not follow, and no wait can show it does not
    time.sleep(0.3)
    assert not sink.errors, sink.errors[:3]
    per = {}
    for labels, samples in sink.series():
        per.setdefault(labels, []).extend(t for t, _ in samples)
    tis = [k for k in per if dict(k)["__name__"] == "target_info"]
    assert len(tis) == 1 and per[tis[0]] == [1000], per.get(tis[0] if tis else None)
    assert m.metric("meltp_prw_samples_dropped_total", reason="target_info_not_newer") == 1
    for k, ts in per.items():
        assert ts == sorted(ts), "series %s out of order: %s" % (k, ts)
    assert sum(len(v) for v in per.values()) == 201
    # chunks hold at most max_samples_per_send samples; metadata once per request at most
    with sink.lock:
        reqs = list(sink.requests)
    assert all(sum(len(s) for _, s in ser) <= 7 for ser, _ in reqs)
    assert all(len(md) <= 1 for _, md in reqs)
    assert any(md for _, md in reqs)
    # the target_info travels in the request of the first series of its target
    for ser, _ in reqs:
        names = [dict(lb)["__name__"] for lb, _ in ser]
        if "target_info" in names:
            assert names.index("target_info") > 0


def test_passthrough_bad_input_matrix():
    """The converting path's bad-input matrix, against a pass-through relay: same statuses,
    same reasons, nothing forwarded, and the relay keeps serving."""
    sink = FakeRemoteWrite()
    m = relay(sink.url)
    assert passes_through(m)
    good, _ = rx.promrw(2)
    rx.check(m, good[:len(good) // 2], V1, "snappy", 400, "snappy", "bad_compression")
    rx.check(m, rx.snappy_encode(b"\x0a\xff\xff\xff\x0f\x00"), V1, "snappy", 400,
             "invalid remote-write 1.0 protobuf", "invalid_data")
    # (labels out of order are sorted and converted: test_prw_compliance)
    dup = rx.rw1_series([("__name__", "x"), ("a", "1"), ("a", "2")], [(1, 1000)])
    rx.check(m, rx.snappy_encode(dup), V1, "snappy", 400, "duplicate label name", "invalid_data")
    noname = rx.rw1_series([("a", "1")], [(1, 1000)])
    rx.check(m, rx.snappy_encode(noname), V1, "snappy", 400, "no __name__", "invalid_data")
    empty = rx.rw1_series([("", "1"), ("__name__", "x")], [(1, 1000)])
    rx.check(m, rx.snappy_encode(empty), V1, "snappy", 400, "empty name", "invalid_data")
    badutf = rx.pb_len(1, rx.pb_len(1, rx.pb_len(1, b"__name__") + rx.pb_len(2, b"x")) +
                       rx.pb_len(1, rx.pb_len(1, b"a") + rx.pb_len(2, b"\xff\xfe")) +
                       rx.pb_len(2, rx.dbl(1, 1) + rx.pb_varint(2, 1000)))
    rx.check(m, rx.snappy_encode(badutf), V1, "snappy", 400, "UTF-8", "invalid_data")
    nul = rx.rw1_series([("__name__", "x"), ("a", "b\x00c")], [(1, 1000)])
    rx.check(m, rx.snappy_encode(nul), V1, "snappy", 400, "NUL", "invalid_data")
    # a sample with the wrong wire type for its value (varint, not fixed64)
    wt = rx.pb_len(1, rx.pb_len(1, rx.pb_len(1, b"__name__") + rx.pb_len(2, b"x")) +
                   rx.pb_len(2, rx.pb_varint(1, 1) + rx.pb_varint(2, 1000)))
    rx.check(m, rx.snappy_encode(wt), V1, "snappy", 400, "invalid remote-write 1.0 protobuf",
             "invalid_data")
    # rules that live in the conversion still apply: a classic bucket with a bad le
    badle = rx.rw1_series([("__name__", "h_bucket"), ("le", "abc")], [(1, 1000)])
    rx.check(m, rx.snappy_encode(badle), V1, "snappy", 400, "is not a number", "invalid_data")
    badmeta = rx.pb_len(3, rx.pb_varint(1, 1) + rx.pb_len(2, b"x\xff"))
    rx.check(m, rx.snappy_encode(badmeta), V1, "snappy", 400, "metadata[0]: invalid UTF-8",
             "invalid_data")
    time.sleep(0.3)  # an absence: nothing may be forwarded, and no wait can show nothing is
    assert not sink.errors, sink.errors[:3]
    for labels, _ in sink.series():
        assert dict(labels)["__name__"] not in ("x", "h_bucket"), labels


def test_passthrough_relay_matches_prometheus_value_for_value():
    """Prometheus scrapes itself and remote-writes through a pass-through meltp into a second
    Prometheus: both answer the same for the same instant."""
    relayed = Prometheus()
    m = relay(relayed.write_url)
    assert passes_through(m)
    origin = Prometheus(config="""
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

    def at(prom, t):
        res = prom.api("/api/v1/query", query='{job="self"}[1ms]', time="%.3f" % t)["result"]
        return {canon_labels(r["metric"]): canon_value(v) for r in res for _, v in r["values"]}

    wait_until(lambda: m.metric("meltp_exporter_sent_items_total") > 2000, 30,
               what="scrapes relayed into the second Prometheus")
    # an instant a few scrapes back, so both have it complete
    res = origin.api("/api/v1/query", query='up{job="self"}[20s]',
                     time="%.3f" % time.time())["result"]
    stamps = sorted(float(t) for t, _ in res[0]["values"])
    assert len(stamps) >= 3, stamps
    t = stamps[-2]
    want = {}
    wait_until(lambda: want.update(at(origin, t)) or at(relayed, t) == want, 15,
               what="relayed Prometheus to match the origin")
    got = at(relayed, t)
    assert len(want) > 50, len(want)
    assert got == want, "differ: %s" % [k for k in want if want.get(k) != got.get(k)][:3]


def test_slo_engine_sees_passed_through_data():
    slo_on_remote_write(True)


def test_slo_engine_sees_converted_remote_write():
    slo_on_remote_write(False)


def slo_on_remote_write(passthrough):
    """The SLO engine observes the pipelines as OTLP: with the pass-through on it still gets
    every request (converted for it) and counts exactly; a `job` selector matches the series'
    job, which the conversion keeps as service.name."""
    import json
    import os
    import tempfile
    from harness import http_request
    tmp = tempfile.mkdtemp(prefix="meltp-slo-")
    os.makedirs(os.path.join(tmp, "slos"))
    with open(os.path.join(tmp, "slos", "api.yaml"), "w") as f:
        f.write("""version: meltp/v1
service: api
slos:
  - name: errors
    objective: 99
    period: 30d
    sli:
      ratio:
        bad: 'app_errors_total{job="api"}'
        total: 'app_requests_total{job="api"}'
""")
    sink = FakeRemoteWrite()
    m = Meltp("""
receivers:
  prometheusremotewrite:
    endpoint: 127.0.0.1:{otlp}
    passthrough: PT
exporters:
  prometheusremotewrite:
    endpoint: %s
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    metrics: {{receivers: [prometheusremotewrite], exporters: [prometheusremotewrite]}}
slo:
  specs: [%s/slos/*.yaml]
  evaluation_interval: 1s
  state_dir: {dir}/state
""".replace("PT", "true" if passthrough else "false") % (sink.url, tmp))
    assert passes_through(m) == passthrough
    now = int(time.time() * 1000)
    for i, (req, err) in enumerate(((1000, 10), (1100, 14), (1250, 20))):
        t = now - (30 - 10 * i) * 1000
        body = rx.rw1_series([("__name__", "app_errors_total"), ("job", "api")], [(err, t)])
        body += rx.rw1_series([("__name__", "app_requests_total"), ("job", "api")], [(req, t)])
        st, _, resp = m.post(PATH, rx.snappy_encode(body), V1, "snappy")
        assert st == 204, (st, resp)

    def counted():
        _, _, b = http_request("http://127.0.0.1:%d/api/v1/slos" % m.metrics, method="GET")
        s = json.loads(b)["slos"]
        return s if s and s[0]["windows"]["30d"]["total"] == 250 else None
    s = wait_until(counted, 10, what="the SLO to count the remote-write counters")
    assert s[0]["windows"]["30d"]["good"] == 240, s[0]["windows"]["30d"]
    wait_until(lambda: sink.samples() >= 6, 10, what="the samples at the sink")
    assert not sink.errors
