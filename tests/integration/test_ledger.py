"""The loss ledger (issue 13, section 3): for every exporter queue, in items,
accepted = sent + dropped{reason} + queued at any instant, served as JSON at /api/v1/ledger on
the telemetry endpoint, mirrored by the meltp_exporter_queue_items gauge and printed at
shutdown. Driven through a backend that fails for a while and one that never recovers."""
import json
import struct
import threading

from harness import FakeOtlp, Meltp, http_request, make_traces, wait_until

PB = "application/x-protobuf"

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  otlphttp/keep:
    endpoint: http://127.0.0.1:%d
    sending_queue: {{queue_size: 1000, num_consumers: 2}}
    retry_on_failure: {{initial_interval: 20ms, max_interval: 50ms, max_elapsed_time: 0}}
  otlphttp/giveup:
    endpoint: http://127.0.0.1:%d
    sending_queue: {{queue_size: 1000, num_consumers: 2}}
    retry_on_failure: {{initial_interval: 20ms, max_interval: 50ms, max_elapsed_time: 200ms}}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlphttp/keep, otlphttp/giveup]}}
"""


def ledger(m):
    st, hdrs, body = http_request("http://127.0.0.1:%d/api/v1/ledger" % m.metrics, method="GET")
    assert st == 200, (st, body)
    assert hdrs["content-type"].startswith("application/json"), hdrs
    return {e["exporter"]: e for e in json.loads(body)["exporters"]}


def balanced(e):
    assert e["dropped"] == sum(e["dropped_by_reason"].values()), e
    assert e["accepted"] == e["sent"] + e["dropped"] + e["queued"], e


def test_ledger_balances_while_a_backend_fails_then_recovers():
    keep = FakeOtlp(status=503)
    giveup = FakeOtlp(status=503)
    m = Meltp(CONFIG % (keep.port, giveup.port))
    accepted = []
    stop = threading.Event()
    snapshots = []

    def poll():
        while not stop.is_set():
            snapshots.append(ledger(m))

    t = threading.Thread(target=poll)
    t.start()
    try:
        for req in range(30):
            ids = [struct.pack(">II", req, i) for i in range(7)]
            st, _, _ = m.post("/v1/traces", make_traces(ids), PB)
            assert st == 200, st
            accepted.extend(ids)
    finally:
        stop.set()
        t.join()
    assert len(snapshots) > 3
    for snap in snapshots:
        for e in snap.values():
            balanced(e)
    n = len(accepted)
    # every acknowledged span is the giving-up exporter's drop once its retries run out
    wait_until(lambda: ledger(m)["otlphttp/giveup"]["queued"] == 0, 10, what="giveup to drop")
    g = ledger(m)["otlphttp/giveup"]
    balanced(g)
    assert g["accepted"] == n and g["sent"] == 0, g
    assert g["dropped_by_reason"] == {"retries_exhausted": n}, g
    # the other keeps everything queued while its backend fails
    k = ledger(m)["otlphttp/keep"]
    balanced(k)
    assert k["accepted"] == n and k["sent"] == 0 and k["queued"] == n, k
    assert m.metric("meltp_exporter_queue_items", exporter="otlphttp/keep") == n
    keep.status = 200
    wait_until(lambda: ledger(m)["otlphttp/keep"]["queued"] == 0, 10, what="delivery")
    k = ledger(m)["otlphttp/keep"]
    assert k == dict(k, accepted=n, sent=n, dropped=0, queued=0), k
    assert len(keep.spans()) == n
    assert m.metric("meltp_exporter_queue_items", exporter="otlphttp/keep") == 0
    # GET/HEAD only
    st, hdrs, _ = http_request("http://127.0.0.1:%d/api/v1/ledger" % m.metrics, b"{}",
                               "application/json")
    assert st == 405 and hdrs.get("allow") == "GET, HEAD", st
    assert m.stop() == 0
    log = m.logtext()
    assert ("ledger: exporter=otlphttp/keep pipeline=traces signal=traces accepted=%d sent=%d "
            "dropped=0{} queued=0" % (n, n)) in log, log
    assert ("ledger: exporter=otlphttp/giveup pipeline=traces signal=traces accepted=%d sent=0 "
            "dropped=%d{retries_exhausted=%d} queued=0" % (n, n, n)) in log, log
