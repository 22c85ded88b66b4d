"""Reload without a gap (issue 13, section 4). Under load (clients sending uniquely numbered
spans over keep-alive connections to otlp -> otlphttp -> a sink), 10 SIGHUPs, half of them
changing the exporter (its timeout, its headers, once adding and then removing a second
exporter): no connection is refused (receiver, health check, self-metrics), no request fails
(a broken keep-alive connection fails one), nothing is dropped with reason "shutdown", every
acknowledged span arrives, and the ledger (accepted = sent + dropped + queued) stays exact:
all through the reloads and at the end. The same with the backend down during the reloads:
the queued spans move to the changed exporters' successors and arrive once it is back."""
import http.client
import json
import socket
import struct
import threading
import time

from harness import FakeOtlp, Meltp, make_traces, wait_until

PB = "application/x-protobuf"

EXPORTER = """
  otlphttp:
    endpoint: http://127.0.0.1:%(port)d
    timeout: %(timeout)s
    headers: {{x-reload: "%(header)s"}}
    sending_queue: {{num_consumers: 2, queue_size: 100000}}
    retry_on_failure: {{initial_interval: 20ms, max_interval: 100ms, max_elapsed_time: 0}}
"""

SECOND = """
  otlphttp/b:
    endpoint: http://127.0.0.1:%(port2)d
    retry_on_failure: {{initial_interval: 20ms, max_interval: 100ms, max_elapsed_time: 0}}
"""

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
exporters:
%(exporters)s
service:
  extensions: [health_check]
  shutdown_timeout: 5s
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [%(list)s]}}
"""


def config(port, port2=0, timeout="2s", header="a", second=False):
    v = {"port": port, "port2": port2, "timeout": timeout, "header": header}
    exps = EXPORTER % v + (SECOND % v if second else "")
    return CONFIG % {"exporters": exps, "list": "otlphttp, otlphttp/b" if second else "otlphttp"}


class KeepAliveLoad:
    """`threads` clients, each on one keep-alive connection, posting 20 uniquely numbered
    spans per request; plus one client that opens a fresh connection per request to the
    receiver, the health check and the metrics endpoint in turn. Every exception or non-200
    answer is a failure; a refused connect is counted apart."""

    def __init__(self, m, threads=2, tag=0):
        self.m = m
        self.acked = []
        self.failed = []
        self.refused = 0
        self.requests = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.ths = [threading.Thread(target=self._keepalive, args=(tag, t), daemon=True)
                    for t in range(threads)]
        self.ths.append(threading.Thread(target=self._fresh, daemon=True))
        self.ths.append(threading.Thread(target=self._keepalive_get, daemon=True))
        for t in self.ths:
            t.start()

    def _fail(self, what):
        with self.lock:
            self.failed.append(what)

    def _keepalive(self, tag, t):
        conn = http.client.HTTPConnection("127.0.0.1", self.m.otlp, timeout=30)
        conn.connect()
        sock = conn.sock
        n = 0
        while not self.stop.is_set():
            ids = [struct.pack(">HHI", tag, t, n * 20 + i) for i in range(20)]
            n += 1
            try:
                conn.request("POST", "/v1/traces", make_traces(ids), {"Content-Type": PB})
                r = conn.getresponse()
                r.read()
            except ConnectionRefusedError:
                with self.lock:
                    self.refused += 1
                return
            except Exception as e:  # noqa: BLE001  a broken keep-alive lands here
                self._fail("keep-alive request %d: %r" % (n, e))
                return
            if conn.sock is not sock:
                self._fail("keep-alive connection was replaced")
                return
            with self.lock:
                self.requests += 1
                if r.status == 200:
                    self.acked.extend(ids)
                else:
                    self.failed.append("status %d" % r.status)
            time.sleep(0.01)
        conn.close()

    def _keepalive_get(self):
        """One keep-alive connection each to the health check and the metrics endpoint."""
        conns = []
        for port, path in ((self.m.health, "/healthz"), (self.m.metrics, "/metrics")):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.connect()
            conns.append((c, c.sock, path))
        while not self.stop.is_set():
            for c, sock, path in conns:
                try:
                    c.request("GET", path)
                    r = c.getresponse()
                    r.read()
                except Exception as e:  # noqa: BLE001  a broken keep-alive lands here
                    self._fail("keep-alive GET %s: %r" % (path, e))
                    return
                if r.status != 200 or c.sock is not sock:
                    self._fail("keep-alive GET %s: status %d, same connection %s"
                               % (path, r.status, c.sock is sock))
                    return
            time.sleep(0.01)
        for c, _, _ in conns:
            c.close()

    def _fresh(self):
        targets = [(self.m.otlp, "POST", "/v1/traces"), (self.m.health, "GET", "/healthz"),
                   (self.m.metrics, "GET", "/metrics"), (self.m.metrics, "GET", "/api/v1/ledger")]
        i = 0
        while not self.stop.is_set():
            port, method, path = targets[i % len(targets)]
            i += 1
            body = make_traces([]) if method == "POST" else None
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                c.request(method, path, body, {"Content-Type": PB} if body is not None else {})
                r = c.getresponse()
                data = r.read()
                c.close()
            except ConnectionRefusedError:
                with self.lock:
                    self.refused += 1
                    self.failed.append("refused: %s %d" % (path, port))
                continue
            except Exception as e:  # noqa: BLE001
                self._fail("%s %s: %r" % (method, path, e))
                continue
            if r.status != 200:
                self._fail("%s %s: status %d" % (method, path, r.status))
            elif path == "/api/v1/ledger":
                for e in json.loads(data)["exporters"]:
                    if e["accepted"] != e["sent"] + e["dropped"] + e["queued"]:
                        self._fail("ledger not exact: %s" % e)
            time.sleep(0.005)

    def healthy(self):
        with self.lock:
            assert self.refused == 0, "%d refused connections: %s" % (self.refused, self.failed)
            assert not self.failed, "%d failed requests: %s" % (len(self.failed), self.failed[:5])
        return True

    def end(self):
        self.stop.set()
        for t in self.ths:
            t.join(30)
        return set(i.hex() for i in self.acked)


def ledger(m):
    c = http.client.HTTPConnection("127.0.0.1", m.metrics, timeout=10)
    c.request("GET", "/api/v1/ledger")
    out = {e["exporter"]: e for e in json.loads(c.getresponse().read())["exporters"]}
    c.close()
    for e in out.values():
        assert e["accepted"] == e["sent"] + e["dropped"] + e["queued"], e
    return out


def reload(m, text, n):
    with open(m.config_path, "w") as f:
        f.write(text.format(otlp=m.otlp, health=m.health, metrics=m.metrics, dir=m.dir))
    m.signal(__import__("signal").SIGHUP)
    wait_until(lambda: m.logtext().count("reload: done") >= n, 20, what="reload %d" % n)


def shutdown_drops(m):
    return m.metric("meltp_exporter_dropped_items_total", reason="shutdown")


def run_reloads(backend_down):
    sink, sink2 = FakeOtlp(), FakeOtlp()
    m = Meltp(config(sink.port))
    base = {"port": sink.port, "port2": sink2.port}
    if backend_down:
        sink.status = 503
    # 10 reloads; every other one changes the otlphttp exporter (timeout, headers), and with
    # the backend up a second exporter comes and goes
    steps = [dict(), dict(timeout="3s"), dict(timeout="3s"), dict(header="b"), dict(header="b"),
             dict(header="c", second=not backend_down), dict(header="c", second=not backend_down),
             dict(header="d"), dict(header="d"), dict(header="e", timeout="4s")]
    load = KeepAliveLoad(m, threads=3)
    wait_until(lambda: len(load.acked) >= 200, 20, what="first acknowledged spans")
    for i, kw in enumerate(steps):
        start = len(load.acked)
        reload(m, config(**dict(base, **kw)), i + 1)
        # traffic goes on through the reload: some requests acknowledged after it
        wait_until(lambda: load.healthy() and len(load.acked) >= start + 300, 20,
                   what="traffic after reload %d" % (i + 1))
    acked = load.end()
    assert load.refused == 0, "%d refused connections" % load.refused
    assert not load.failed, "%d failed requests: %s" % (len(load.failed), load.failed[:5])
    assert load.requests > 50
    if backend_down:
        assert ledger(m)["otlphttp"]["queued"] > 0  # the backlog went through the reloads
        sink.status = 200
    wait_until(lambda: ledger(m)["otlphttp"]["queued"] == 0, 30, what="queue to drain")
    got = [s["spanId"] for s in sink.spans()]
    assert not acked - set(got), "%d acknowledged spans lost" % len(acked - set(got))
    e = ledger(m)["otlphttp"]
    # exact: every acknowledged span accepted once and sent once, nothing else
    assert e["accepted"] == len(acked) and e["sent"] == len(acked) and e["dropped"] == 0, e
    assert len(got) == len(acked), "%d duplicates" % (len(got) - len(acked))
    assert m.metric("meltp_receiver_accepted_items_total") == len(acked)
    assert m.metric("meltp_exporter_sent_items_total", exporter="otlphttp") == len(acked)
    assert shutdown_drops(m) == 0
    assert 'reason="shutdown"' not in _metrics_text(m)
    # the last reload changed the timeout and the headers: the new settings are in use
    assert sink.requests[-1][1].get("x-reload") == "e"
    assert m.stop() == 0
    return m


def _metrics_text(m):
    c = http.client.HTTPConnection("127.0.0.1", m.metrics, timeout=10)
    c.request("GET", "/metrics")
    t = c.getresponse().read().decode()
    c.close()
    return t


def test_ten_reloads_under_load_backend_up():
    run_reloads(backend_down=False)


def test_ten_reloads_under_load_backend_down():
    run_reloads(backend_down=True)


def test_removed_exporter_drains_to_its_backend():
    # a removed exporter with no successor sends what it holds before it goes; only what it
    # cannot send by shutdown_timeout is dropped, counted as "removed" (never "shutdown")
    sink, sink2 = FakeOtlp(), FakeOtlp(status=503)
    m = Meltp(config(sink.port, sink2.port, second=True))
    ids = [struct.pack(">II", 9, i) for i in range(30)]
    c = http.client.HTTPConnection("127.0.0.1", m.otlp, timeout=10)
    c.request("POST", "/v1/traces", make_traces(ids), {"Content-Type": PB})
    assert c.getresponse().status == 200
    wait_until(lambda: ledger(m)["otlphttp"]["sent"] == 30, 10, what="first exporter")
    # the second exporter's backend is down: its 30 spans wait in its queue; the reload
    # removes it, and the backend comes back while it drains
    assert ledger(m)["otlphttp/b"]["queued"] == 30
    threading.Timer(0.5, lambda: setattr(sink2, "status", 200)).start()
    reload(m, config(sink.port), 1)
    assert sorted(s["spanId"] for s in sink2.spans()) == sorted(i.hex() for i in ids)
    assert "otlphttp/b" not in ledger(m)
    assert shutdown_drops(m) == 0
    assert m.stop() == 0


def test_listener_whose_address_changed_moves():
    # the health check moves to another port: the old one closes, the new one answers
    sink = FakeOtlp()
    m = Meltp(config(sink.port))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        newport = s.getsockname()[1]
    reload(m, config(sink.port).replace("{health}", str(newport)), 1)
    c = http.client.HTTPConnection("127.0.0.1", newport, timeout=5)
    c.request("GET", "/healthz")
    assert c.getresponse().status == 200
    try:
        socket.create_connection(("127.0.0.1", m.health), timeout=1).close()
        still_open = True
    except OSError:
        still_open = False
    assert not still_open
    assert m.stop() == 0


STORED = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
  file_storage:
    directory: %(store)s
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:%(port)d
    timeout: %(timeout)s
    sending_queue: {{num_consumers: 2%(storage)s}}
    retry_on_failure: {{initial_interval: 20ms, max_interval: 100ms, max_elapsed_time: 0}}
service:
  extensions: [health_check, file_storage]
  shutdown_timeout: 5s
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlphttp]}}
"""


def test_reloads_with_storage_move_the_backlog():
    # with the backend down: a memory queue's backlog goes to the successor's store when the
    # reload turns storage on, and a persistent queue whose exporter changes shares its store
    # with its successor; everything arrives once the backend is back, the ledger exact
    import shutil
    import tempfile
    store = tempfile.mkdtemp(prefix="meltp-store-")
    sink = FakeOtlp(status=503)

    def cfg(timeout, stored):
        return STORED % {"store": store, "port": sink.port, "timeout": timeout,
                         "storage": ", storage: file_storage" if stored else ""}
    m = Meltp(cfg("2s", False))
    load = KeepAliveLoad(m)
    steps = [("3s", True), ("4s", True), ("5s", True)]
    for i, (timeout, stored) in enumerate(steps):
        start = len(load.acked)
        wait_until(lambda: load.healthy() and len(load.acked) >= start + 300, 20,
                   what="traffic before reload %d" % (i + 1))
        reload(m, cfg(timeout, stored), i + 1)
    wait_until(lambda: load.healthy() and len(load.acked) >= start + 600, 20, what="traffic")
    acked = load.end()
    assert load.refused == 0 and not load.failed, (load.refused, load.failed[:5])
    assert ledger(m)["otlphttp"]["queued"] == len(acked)
    sink.status = 200
    wait_until(lambda: ledger(m)["otlphttp"]["queued"] == 0, 30, what="queue to drain")
    got = [s["spanId"] for s in sink.spans()]
    assert not acked - set(got), "%d acknowledged spans lost" % len(acked - set(got))
    e = ledger(m)["otlphttp"]
    assert e["accepted"] == len(acked) and e["sent"] == len(acked) and e["dropped"] == 0, e
    assert shutdown_drops(m) == 0
    assert m.stop() == 0
    shutil.rmtree(store)


def test_changed_remote_write_exporter_hands_its_backlog_over():
    # prometheusremotewrite retries inside its own send: a reload asks it to give a send with
    # nothing delivered back (exporter_t.yield_send), so the reload does not wait for the
    # backend, and the successor delivers the samples, in order, once it is back
    import test_prw_passthrough as pt
    import test_prw_receiver as rx
    port = pt.free_port()  # nothing listens there yet: the backend is down
    relay_cfg = """
receivers:
  prometheusremotewrite:
    endpoint: 127.0.0.1:{otlp}
exporters:
  prometheusremotewrite:
    endpoint: http://127.0.0.1:%d/api/v1/write
    timeout: %s
    retry_on_failure: {{initial_interval: 20ms, max_interval: 100ms, max_elapsed_time: 0}}
service:
  shutdown_timeout: 30s
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    metrics: {{receivers: [prometheusremotewrite], exporters: [prometheusremotewrite]}}
"""
    m = Meltp(relay_cfg % (port, "2s"))
    for i in (1, 2, 3):
        st, _, resp = rx.post_fixture(m, i)
        assert st // 100 == 2, (st, resp)
    wait_until(lambda: "retrying in" in m.logtext(), 10, what="a failed send")
    t0 = time.time()
    reload(m, relay_cfg % (port, "3s"), 1)
    assert time.time() - t0 < 10, "the reload waited for the backend"
    orig, pt.free_port = pt.free_port, lambda: port
    try:
        sink = pt.FakeRemoteWrite()
    finally:
        pt.free_port = orig
    want = pt.fixture_series()
    wait_until(lambda: sum(len(r[0]) for r in sink.requests) >= len(want), 30,
               what="every series")
    got = [s for r in sink.requests for s in r[0]]
    assert sorted(map(repr, got)) == sorted(map(repr, want)), (len(got), len(want))
    assert not sink.errors, sink.errors
    # the sink has the samples before meltp has read its answer: wait for the ledger to settle
    wait_until(lambda: ledger(m)["prometheusremotewrite"]["queued"] == 0, 10,
               what="the last send settled in the ledger")
    e = ledger(m)["prometheusremotewrite"]
    assert e["dropped"] == 0 and e["queued"] == 0 and e["sent"] == e["accepted"], e
    assert shutdown_drops(m) == 0
    assert m.stop() == 0


def test_failed_reload_leaves_the_running_one_untouched():
    # the new configuration fails late (its second receiver's port is taken), after the first
    # receiver staged its handler on the kept listener: the staged handler is dropped, and
    # the running configuration keeps serving the same connections without a failure
    sink = FakeOtlp()
    m = Meltp(config(sink.port))
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    bad = config(sink.port, timeout="3s").replace(
        "extensions:", "  otlp/2:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:%d\n"
        "extensions:" % busy.getsockname()[1], 1).replace("receivers: [otlp]",
                                                           "receivers: [otlp, otlp/2]")
    load = KeepAliveLoad(m)
    wait_until(lambda: load.healthy() and len(load.acked) >= 200, 20, what="traffic")
    with open(m.config_path, "w") as f:
        f.write(bad.format(otlp=m.otlp, health=m.health, metrics=m.metrics, dir=m.dir))
    m.signal(__import__("signal").SIGHUP)
    wait_until(lambda: "going back to the previous configuration" in m.logtext(), 20,
               what="the failed reload")
    start = len(load.acked)
    wait_until(lambda: load.healthy() and len(load.acked) >= start + 300, 20,
               what="traffic after the failed reload")
    acked = load.end()
    busy.close()
    assert load.refused == 0 and not load.failed, (load.refused, load.failed[:5])
    wait_until(lambda: ledger(m)["otlphttp"]["queued"] == 0, 30, what="queue to drain")
    assert not acked - set(s["spanId"] for s in sink.spans())
    assert sink.requests[-1][1].get("x-reload") == "a"  # still the old exporter
    # the queue's gauges came back to the running queue when its would-be successor went
    assert 'meltp_exporter_queue_items{exporter="otlphttp"' in _metrics_text(m)
    assert shutdown_drops(m) == 0
    assert m.stop() == 0
