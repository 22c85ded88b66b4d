"""The persistent queue (issue 13, section 2): `extensions: file_storage` and
`sending_queue: {storage: file_storage}`. A 200 means on disk: meltp killed with SIGKILL under
load (backend up or down) delivers every acknowledged span after a restart (duplicates are
counted, none may be missing); torn and bit-flipped segment files cost only the damaged
records, which are counted; a quota that is too small refuses exactly the overflow; and the
ledger (accepted = sent + dropped + queued) carries on across restarts."""
import json
import os
import shutil
import struct
import tempfile
import threading
import time

import pytest

from harness import FakeOtlp, Meltp, http_request, make_traces, wait_until

PB = "application/x-protobuf"

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
extensions:
  file_storage:
    directory: %(dir)s
    fsync: %(fsync)s
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:%(port)d
    timeout: 2s
    sending_queue:
      storage: file_storage
      queue_bytes: %(quota)s
      num_consumers: 2
      on_full: %(on_full)s
    retry_on_failure: {{initial_interval: 20ms, max_interval: 100ms, max_elapsed_time: 0}}
service:
  extensions: [file_storage]
  shutdown_timeout: %(shutdown)s
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlphttp]}}
"""


def start(store, backend, quota="64MiB", fsync="true", shutdown="2s", on_full="refuse"):
    return Meltp(CONFIG % {"dir": store, "port": backend.port, "quota": quota, "fsync": fsync,
                           "shutdown": shutdown, "on_full": on_full})


def storage_dir():
    d = tempfile.mkdtemp(prefix="meltp-store-")
    return d


def ledger(m):
    st, _, body = http_request("http://127.0.0.1:%d/api/v1/ledger" % m.metrics, method="GET")
    assert st == 200, (st, body)
    (e,) = json.loads(body)["exporters"]
    assert e["accepted"] == e["sent"] + e["dropped"] + e["queued"], e
    return e


class Load:
    """Posts requests of `per_req` spans with unique ids from `threads` threads at about
    `rate` spans/s in all, and remembers the span ids of every request answered 200."""

    def __init__(self, m, rate, per_req=50, threads=2, tag=0):
        self.m = m
        self.acked = []
        self.refused = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.interval = per_req * threads / float(rate)
        self.ths = [threading.Thread(target=self._run, args=(tag, t, per_req), daemon=True)
                    for t in range(threads)]
        for t in self.ths:
            t.start()

    def _run(self, tag, t, per_req):
        n = 0
        nxt = time.time()
        while not self.stop.is_set():
            ids = [struct.pack(">HHI", tag, t, n * per_req + i) for i in range(per_req)]
            n += 1
            try:
                st, _, _ = self.m.post("/v1/traces", make_traces(ids), PB)
            except OSError:
                return  # meltp is gone
            with self.lock:
                if st == 200:
                    self.acked.extend(ids)
                else:
                    self.refused += per_req
            nxt += self.interval
            time.sleep(max(0.0, nxt - time.time()))

    def wait_acked(self, n, timeout=20):
        wait_until(lambda: len(self.acked) >= n, timeout, what="%d acknowledged spans" % n)

    def end(self):
        self.stop.set()
        for t in self.ths:
            t.join(20)
        return set(i.hex() for i in self.acked)


def check_all_arrived(backend, acked, timeout=30):
    def arrived():
        got = set(s["spanId"] for s in backend.spans())
        return acked <= got
    try:
        wait_until(arrived, timeout, what="every acknowledged span")
    except AssertionError:
        got = set(s["spanId"] for s in backend.spans())
        raise AssertionError("%d of %d acknowledged spans lost" % (len(acked - got), len(acked)))
    ids = [s["spanId"] for s in backend.spans()]
    return len(ids) - len(set(ids))  # duplicates


def kill9(m):
    m.proc.kill()
    m.proc.wait(10)


def slow_backend(delay, status):
    """A FakeOtlp that takes `delay` seconds per request (a slow backend, not a test wait)."""
    b = FakeOtlp(status=status)
    base = b.server.RequestHandlerClass

    class Slow(base):
        def do_POST(self):
            time.sleep(delay)
            base.do_POST(self)

    b.server.RequestHandlerClass = Slow
    return b


def test_kill9_under_load_loses_no_acknowledged_span():
    store = storage_dir()
    backend = slow_backend(0.03, 200)  # sends are in flight when the kill comes
    m = start(store, backend)
    load = Load(m, rate=2000)
    load.wait_acked(3000)
    kill9(m)
    acked = load.end()
    m2 = start(store, backend)
    dups = check_all_arrived(backend, acked)
    # what the killed run sent but had not yet confirmed is sent again: duplicates, counted
    # (a handful of in-flight requests), never losses
    print("kill -9 under load: %d acknowledged spans, %d duplicates" % (len(acked), dups))
    assert dups <= 0.2 * len(acked), dups
    wait_until(lambda: ledger(m2)["queued"] == 0, 10, what="queue to drain")
    e = ledger(m2)
    assert e["accepted"] >= len(acked) and e["dropped"] == 0, e
    assert m2.stop() == 0
    shutil.rmtree(store)


def test_kill9_with_the_backend_down_then_restart_delivers_everything():
    store = storage_dir()
    backend = FakeOtlp(status=503)
    m = start(store, backend)
    load = Load(m, rate=2000)
    load.wait_acked(2000)
    kill9(m)
    acked = load.end()
    m2 = start(store, backend)
    e = ledger(m2)
    # nothing was sent: everything acknowledged is queued on disk, and the ledger knows it
    assert e["sent"] == 0 and e["queued"] >= len(acked), e
    assert m2.metric("meltp_exporter_queue_items") == e["queued"]
    backend.status = 200
    dups = check_all_arrived(backend, acked)
    assert dups == 0, dups  # nothing had been sent before the kill
    wait_until(lambda: ledger(m2)["queued"] == 0, 10, what="queue to drain")
    assert ledger(m2)["sent"] == e["accepted"]
    assert m2.stop() == 0
    shutil.rmtree(store)


def test_ledger_never_counts_a_span_sent_before_it_was_accepted():
    # a worker can read, send and confirm a record while the request that wrote it still
    # waits for its fsync: the ledger must have counted it accepted already
    store = storage_dir()
    backend = FakeOtlp()
    m = start(store, backend)
    load = Load(m, rate=20000, per_req=20, threads=4)
    snaps = []
    end = time.time() + 3
    while time.time() < end:
        snaps.append(ledger(m))
    acked = load.end()
    assert len(snaps) > 20 and acked
    bad = [e for e in snaps if e["queued"] < 0 or e["sent"] > e["accepted"]]
    assert not bad, "%d of %d snapshots: %s" % (len(bad), len(snaps), bad[:3])
    assert check_all_arrived(backend, acked) == 0
    assert m.stop() == 0
    shutil.rmtree(store)


def test_kill9_with_fsync_off_keeps_what_was_written():
    # fsync: false trades power-cut safety for latency; a killed process still loses nothing
    store = storage_dir()
    backend = FakeOtlp(status=503)
    m = start(store, backend, fsync="false")
    load = Load(m, rate=2000)
    load.wait_acked(1000)
    kill9(m)
    acked = load.end()
    backend.status = 200
    m2 = start(store, backend, fsync="false")
    assert check_all_arrived(backend, acked) == 0
    assert m2.stop() == 0
    shutil.rmtree(store)


def test_sighup_reload_hands_the_queue_over():
    import signal
    store = storage_dir()
    backend = FakeOtlp(status=503)
    m = start(store, backend, shutdown="100ms")
    ids = [struct.pack(">II", 7, i) for i in range(100)]
    st, _, _ = m.post("/v1/traces", make_traces(ids), PB)
    assert st == 200
    before = ledger(m)
    m.signal(signal.SIGHUP)
    wait_until(lambda: "reload: done" in m.logtext(), 10, what="reload")
    after = ledger(m)
    assert after == before and after["queued"] == 100, (before, after)
    backend.status = 200
    assert check_all_arrived(backend, set(i.hex() for i in ids)) == 0
    assert m.stop() == 0
    shutil.rmtree(store)


def test_graceful_stop_keeps_the_queue_and_the_ledger():
    store = storage_dir()
    backend = FakeOtlp(status=503)
    m = start(store, backend, shutdown="200ms")
    load = Load(m, rate=2000, threads=1)
    load.wait_acked(500)
    acked = load.end()
    before = ledger(m)
    assert m.stop() == 0
    assert "queued=%d" % before["queued"] in m.logtext(), m.logtext()
    m2 = start(store, backend)
    after = ledger(m2)
    assert after == dict(before, queued=before["queued"]), (before, after)
    backend.status = 200
    assert check_all_arrived(backend, acked) == 0
    wait_until(lambda: ledger(m2)["queued"] == 0, 10, what="queue to drain")
    e = ledger(m2)
    assert e["accepted"] == len(acked) == e["sent"], e
    assert m2.stop() == 0
    shutil.rmtree(store)


def _records(path):
    """(offset, total length, items) of each record of a segment file (format: segstore.c)."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    off = 0
    while off + 32 <= len(data):
        magic, length, _seq, items, _sig, _fmt, tlen = struct.unpack_from("<IIQIBBB", data, off)
        assert magic == 0x4753544D
        total = 32 + tlen + length
        out.append((off, total, items))
        off += total
    return out


def test_truncated_and_bit_flipped_segments_cost_only_the_damaged_records():
    store = storage_dir()
    backend = FakeOtlp(status=503)
    m = start(store, backend, shutdown="100ms")
    sent = []
    for req in range(6):
        ids = [struct.pack(">II", req, i) for i in range(10)]
        st, _, _ = m.post("/v1/traces", make_traces(ids), PB)
        assert st == 200
        sent.append(set(i.hex() for i in ids))
    assert m.stop() == 0
    (qdir,) = [os.path.join(store, d) for d in os.listdir(store)]
    (seg,) = [os.path.join(qdir, f) for f in os.listdir(qdir) if f.endswith(".log")]
    recs = _records(seg)
    assert len(recs) == 6
    # flip a byte in the payload of record 2, and tear the last one
    off, total, _ = recs[2]
    with open(seg, "r+b") as f:
        f.seek(off + total - 5)
        b = f.read(1)
        f.seek(off + total - 5)
        f.write(bytes([b[0] ^ 0x40]))
    with open(seg, "r+b") as f:
        f.truncate(recs[5][0] + 40)
    backend.status = 200
    m2 = start(store, backend)
    good = sent[0] | sent[1] | sent[3] | sent[4]
    assert check_all_arrived(backend, good) == 0
    got = set(s["spanId"] for s in backend.spans())
    assert not (got & (sent[2] | sent[5])), "a damaged record was sent"
    assert m2.metric("meltp_queue_corrupt_records_total") == 2
    wait_until(lambda: ledger(m2)["queued"] == 0, 10, what="queue to drain")
    e = ledger(m2)
    # the torn record is unknown (its header is gone); the flipped one is a counted drop
    assert e["dropped_by_reason"] == {"corrupt": 10}, e
    assert e["sent"] == 40, e
    assert m2.stop() == 0
    shutil.rmtree(store)


def test_quota_too_small_refuses_exactly_the_overflow():
    store = storage_dir()
    backend = FakeOtlp(status=503)
    m = start(store, backend, quota="64KiB")
    acked, refused = [], 0
    for req in range(60):
        ids = [struct.pack(">II", req, i) for i in range(20)]
        st, hdrs, _ = m.post("/v1/traces", make_traces(ids), PB)
        if st == 200:
            acked.extend(ids)
        else:
            assert st == 429 and "retry-after" in hdrs, st
            refused += len(ids)
    assert refused > 0 and acked, (refused, len(acked))
    e = ledger(m)
    assert e["accepted"] == len(acked) and e["queued"] == len(acked), e
    assert 0 < m.metric("meltp_exporter_queue_bytes") <= 64 * 1024
    assert m.metric("meltp_pipeline_refused_items_total") == refused
    assert m.metric("meltp_receiver_refused_items_total") == refused
    backend.status = 200
    assert check_all_arrived(backend, set(i.hex() for i in acked)) == 0
    wait_until(lambda: ledger(m)["queued"] == 0, 10, what="queue to drain")
    assert ledger(m)["sent"] == len(acked)
    # room again once sent
    st, _, _ = m.post("/v1/traces", make_traces([b"\xff" * 8]), PB)
    assert st == 200
    assert m.stop() == 0
    shutil.rmtree(store)


def test_a_backlog_on_disk_stays_on_disk():
    # only a few MiB are read back ahead of the workers while a backlog drains: it must not
    # come back into memory (queue_size batches of big requests would be hundreds of MB)
    store = storage_dir()
    backend = slow_backend(0.2, 503)
    m = start(store, backend)
    for req in range(40):
        ids = [struct.pack(">II", req, i) for i in range(100)]
        st, _, _ = m.post("/v1/traces", make_traces(ids, name="x" * 5000), PB)  # ~500 KB
        assert st == 200, st
    wait_until(lambda: ledger(m)["queued"] == 4000, 10, what="everything queued")
    backend.status = 200
    most = 0
    while ledger(m)["queued"] > 2000:
        most = max(most, m.metric("meltp_exporter_queue_length"))
    assert 1 <= most <= 20, most  # 8 MiB of read-ahead: ~17 of the 40 at most
    wait_until(lambda: ledger(m)["queued"] == 0, 20, what="queue to drain")
    assert len(backend.spans()) == 4000
    assert m.stop() == 0
    shutil.rmtree(store)


def test_tenants_stay_apart_across_a_kill():
    store = storage_dir()
    backend = FakeOtlp(status=503)
    batched = CONFIG.replace("service:\n", "processors:\n  batch: {{send_batch_size: 1000, "
                             "timeout: 100ms}}\nservice:\n", 1).replace(
        "exporters: [otlphttp]", "processors: [batch], exporters: [otlphttp]")
    cfg = {"dir": store, "port": backend.port, "quota": "64MiB", "fsync": "true",
           "shutdown": "1s", "on_full": "refuse"}
    m = Meltp(batched % cfg)
    want = {}
    for req in range(30):
        tenant = "team-%d" % (req // 5 % 3)  # runs of 5 requests per tenant
        ids = [struct.pack(">II", req, i) for i in range(10)]
        st, _, _ = m.post("/v1/traces", make_traces(ids), PB, headers={"X-Scope-OrgID": tenant})
        assert st == 200, st
        want.update({i.hex(): tenant for i in ids})
    kill9(m)
    backend.status = 200
    m2 = Meltp(batched % cfg)
    wait_until(lambda: len(backend.spans()) >= len(want), 20, what="delivery")
    with backend.lock:
        reqs = list(backend.requests)
    from harness import pb_traces
    got = {}
    for _, hdrs, body in reqs:
        for sp in pb_traces(body):
            got[sp["spanId"]] = hdrs.get("X-Scope-OrgID")
    assert got == want
    assert len(reqs) < 30, "the batch processor should have coalesced within each tenant"
    assert m2.stop() == 0
    shutil.rmtree(store)


def test_disk_full_applies_on_full_and_recovers():
    # the queue's first segment file is /dev/full: its write fails with ENOSPC, as on a full
    # disk; the next request starts a new file
    for on_full, status, reason in (("refuse", 429, None), ("drop", 200, "storage_full")):
        store = storage_dir()
        backend = FakeOtlp()
        m = start(store, backend, on_full=on_full)
        qdir = os.path.join(store, "otlphttp@traces")
        wait_until(lambda: os.path.isdir(qdir), 5, what="queue directory")
        os.symlink("/dev/full", os.path.join(qdir, "seg-%016x.log" % 1))
        lost = [struct.pack(">II", 1, i) for i in range(10)]
        st, _, _ = m.post("/v1/traces", make_traces(lost), PB)
        assert st == status, (on_full, st)
        e = ledger(m)
        if reason:
            assert e["accepted"] == 10 and e["dropped_by_reason"] == {reason: 10}, e
        else:
            assert e["accepted"] == 0 and e["queued"] == 0, e
            assert m.metric("meltp_pipeline_refused_items_total") == 10
        kept = [struct.pack(">II", 2, i) for i in range(10)]
        st, _, _ = m.post("/v1/traces", make_traces(kept), PB)
        assert st == 200, st
        assert check_all_arrived(backend, set(i.hex() for i in kept)) == 0
        wait_until(lambda: ledger(m)["sent"] == 10, 10, what="the second request sent")
        assert not set(i.hex() for i in lost) & set(s["spanId"] for s in backend.spans())
        assert "write failed (No space left on device)" in m.logtext()
        assert m.stop() == 0
        shutil.rmtree(store)


def test_storage_must_name_a_listed_file_storage_extension():
    import subprocess
    from harness import MELTP
    d = tempfile.mkdtemp(prefix="meltp-cfg-")
    path = os.path.join(d, "c.yaml")
    with open(path, "w") as f:
        f.write("""receivers: {otlp: {protocols: {http: {endpoint: 127.0.0.1:4318}}}}
exporters:
  debug:
    sending_queue: {storage: file_storage/x}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [debug]}
""")
    r = subprocess.run([MELTP, "check-config", "--config", path], capture_output=True, text=True)
    assert r.returncode != 0
    assert "c.yaml:4: exporters.debug.sending_queue.storage: \"file_storage/x\" is not defined " \
           "under extensions" in r.stderr, r.stderr
    shutil.rmtree(d)


@pytest.mark.slow
def test_twenty_kills_in_a_row_on_one_directory():
    store = storage_dir()
    backend = FakeOtlp()
    acked = set()
    for k in range(20):
        backend.status = 503 if k % 3 == 1 else 200
        m = start(store, backend)
        load = Load(m, rate=2000, tag=k)
        load.wait_acked(400)
        kill9(m)
        acked |= load.end()
    backend.status = 200
    m = start(store, backend)
    dups = check_all_arrived(backend, acked, timeout=60)
    wait_until(lambda: ledger(m)["queued"] == 0, 30, what="queue to drain")
    print("20 kills: %d acknowledged spans, %d duplicates" % (len(acked), dups))
    assert m.stop() == 0
    shutil.rmtree(store)


@pytest.mark.slow
def test_backend_down_for_60s_at_10k_spans_per_second():
    store = storage_dir()
    backend = FakeOtlp(status=503)
    m = start(store, backend, quota="512MiB")
    load = Load(m, rate=10000, per_req=100, threads=4)
    time.sleep(60)  # the outage is the test: a fixed duration, not a wait for a condition
    acked = load.end()
    assert load.refused == 0, load.refused
    assert len(acked) > 300000, len(acked)
    backend.status = 200
    assert check_all_arrived(backend, acked, timeout=120) == 0
    wait_until(lambda: ledger(m)["queued"] == 0, 30, what="queue to drain")
    e = ledger(m)
    assert e["accepted"] == e["sent"] == len(acked), e
    assert m.stop() == 0
    shutil.rmtree(store)


RW_CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
extensions:
  file_storage:
    directory: %s
exporters:
  prometheusremotewrite:
    endpoint: %s
    sending_queue: {{storage: file_storage}}
    retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 0}}
service:
  extensions: [file_storage]
  shutdown_timeout: 200ms
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    metrics: {{receivers: [otlp], exporters: [prometheusremotewrite]}}
"""


def gauge_request(t_ns, v):
    attrs = [{"key": "service.name", "value": {"stringValue": "probe"}}]
    point = {"timeUnixNano": str(t_ns), "asDouble": v}
    return json.dumps({"resourceMetrics": [{"resource": {"attributes": attrs}, "scopeMetrics": [
        {"metrics": [{"name": "order_probe", "gauge": {"dataPoints": [point]}}]}]}]}).encode()


def test_remote_write_order_holds_across_a_kill():
    """Samples of one series queued on disk while the backend is away, meltp killed, then
    restarted against a real Prometheus (which rejects out-of-order samples) while new samples
    keep coming: the replayed backlog goes first, so every sample lands and none is refused."""
    from harness import Prometheus, free_port
    store = storage_dir()
    m = Meltp(RW_CONFIG % (store, "http://127.0.0.1:%d/api/v1/write" % free_port()))
    t0 = int((time.time() - 300) * 1e9)
    n = 0
    for _ in range(60):
        st, _, body = m.post("/v1/metrics", gauge_request(t0 + n * 10**9, n), "application/json")
        assert st == 200, body
        n += 1
    kill9(m)
    prom = Prometheus()
    m2 = Meltp(RW_CONFIG % (store, prom.write_url))
    for _ in range(60):
        st, _, body = m2.post("/v1/metrics", gauge_request(t0 + n * 10**9, n), "application/json")
        assert st == 200, body
        n += 1
    wait_until(lambda: ledger(m2)["queued"] == 0, 20, what="queue to drain")
    e = ledger(m2)
    assert e["dropped"] == 0 and e["sent"] == e["accepted"] == n, e
    q = "count_over_time(order_probe[10m])"
    wait_until(lambda: prom.query(q), 10, what="samples in Prometheus")
    assert float(prom.query(q)[0]["value"][1]) == n
    assert m2.stop() == 0
    shutil.rmtree(store)
