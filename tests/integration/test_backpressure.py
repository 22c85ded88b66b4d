"""Back-pressure and delivery guarantees: a dead otlphttp backend fills its queue, clients get
429 + Retry-After, and when the backend comes back every acknowledged span arrives exactly
once. With on_full: drop the other exporters keep receiving everything and the drops are
counted."""
import struct
import time

from harness import FakeOtlp, Meltp, free_port, make_traces, wait_until

PB = "application/x-protobuf"


def span_ids(req_no, n):
    return [struct.pack(">II", req_no, i) for i in range(n)]


def test_dead_backend_refuses_then_delivers_everything_once():
    port = free_port()
    m = Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:%d
    compression: gzip
    timeout: 2s
    sending_queue:
      queue_size: 4
      num_consumers: 2
    retry_on_failure:
      initial_interval: 50ms
      max_interval: 200ms
      max_elapsed_time: 0
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
    readiness:
      exporter_failure_duration: 1s
service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlphttp]}}
""" % port)
    accepted = []
    refused = 0
    for req_no in range(40):
        ids = span_ids(req_no, 10)
        st, hdrs, _ = m.post("/v1/traces", make_traces(ids), PB)
        if st == 200:
            accepted.extend(ids)
        else:
            assert st in (429, 503), st
            assert "retry-after" in hdrs, hdrs
            refused += 1
    assert refused > 0, "a full queue must refuse"
    assert len(accepted) >= 40, "queue should have taken a few requests"
    assert m.metric("meltp_receiver_refused_items_total", reason="queue_full") == refused * 10
    from harness import http_request
    readyz = "http://127.0.0.1:%d/readyz" % m.health

    def not_ready():
        st, _, body = http_request(readyz, method="GET")
        return st == 503 and (b"failing" in body or b"full" in body)
    wait_until(not_ready, 5, what="/readyz to say 503, failing or full")
    backend = FakeOtlp(port=port)
    want = sorted(i.hex() for i in accepted)
    wait_until(lambda: len(backend.spans()) >= len(want), 15, what="delivery after recovery")
    # the exporter is healthy again once it has read the backend's answers, not at its request
    wait_until(lambda: http_request(readyz, method="GET")[0] == 200, 5, what="/readyz 200")
    # an absence: a duplicate would arrive right behind, and no wait can show there is none
    time.sleep(0.5)
    got = sorted(s["spanId"] for s in backend.spans())
    assert got == want, "delivered %d spans, %d acknowledged" % (len(got), len(want))
    assert not backend.errors, backend.errors
    st, _, _ = m.post("/v1/traces", make_traces(span_ids(999, 1)), PB)
    assert st == 200
    assert m.stop() == 0


def test_on_full_drop_keeps_other_exporters_fed():
    port = free_port()
    m = Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  file:
    path: {dir}/out.jsonl
  otlphttp/dead:
    endpoint: http://127.0.0.1:%d
    sending_queue:
      queue_size: 2
      num_consumers: 1
      on_full: drop
    retry_on_failure:
      initial_interval: 1s
      max_elapsed_time: 0
service:
  shutdown_timeout: 1s
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [file, otlphttp/dead]}}
""" % port)
    sent = []
    for req_no in range(20):
        ids = span_ids(req_no, 5)
        st, _, _ = m.post("/v1/traces", make_traces(ids), PB)
        assert st == 200, st
        sent.extend(i.hex() for i in ids)
    wait_until(lambda: m.metric("meltp_exporter_sent_items_total", exporter="file") == 100, 10,
               what="file exporter to receive everything")
    dropped = m.metric("meltp_exporter_dropped_items_total", exporter="otlphttp/dead",
                       reason="queue_full")
    assert dropped >= 80, "dead exporter drops not counted: %s" % dropped
    assert m.stop() == 0
    got = sorted(s["spanId"] for l in m.file_lines("out.jsonl") for rs in l["resourceSpans"]
                 for ss in rs["scopeSpans"] for s in ss["spans"])
    assert got == sorted(sent)


def test_permanent_backend_error_is_counted_not_retried():
    backend = FakeOtlp(status=400)
    m = Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:%d
    retry_on_failure:
      initial_interval: 10ms
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlphttp]}}
""" % backend.port)
    st, _, _ = m.post("/v1/traces", make_traces(span_ids(1, 3)), PB)
    assert st == 200
    wait_until(lambda: m.metric("meltp_exporter_dropped_items_total", reason="http_400") == 3, 5,
               what="permanent failure to be counted")
    # an absence: a retry (initial_interval 10ms) would come now, and no wait can show none does
    time.sleep(0.3)
    assert m.metric("meltp_exporter_retries_total", exporter="otlphttp") == 0


def test_retryable_503_honours_retry_after():
    backend = FakeOtlp(status=503, retry_after=1)
    m = Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:%d
    retry_on_failure:
      initial_interval: 10ms
      max_interval: 10ms
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlphttp]}}
""" % backend.port)
    st, _, _ = m.post("/v1/traces", make_traces(span_ids(2, 4)), PB)
    assert st == 200
    time.sleep(1.5)  # a fixed duration: the test counts the retries made within it
    retries = m.metric("meltp_exporter_retries_total", exporter="otlphttp")
    assert 1 <= retries <= 3, "Retry-After: 1 must space retries ~1s apart, saw %s" % retries
    backend.status = 200
    wait_until(lambda: len(backend.spans()) == 4, 5, what="delivery after 503s")


def test_partial_success_is_counted_not_retried():
    from harness import pb_len, pb_varint
    # ExportTraceServiceResponse{partial_success{rejected_spans: 2, error_message: "bad spans"}}
    resp = pb_len(1, pb_varint(1, 2) + pb_len(2, b"bad spans"))
    backend = FakeOtlp(resp_body=resp)
    m = Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:%d
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlphttp]}}
""" % backend.port)
    st, _, _ = m.post("/v1/traces", make_traces(span_ids(3, 5)), PB)
    assert st == 200
    wait_until(lambda: m.metric("meltp_exporter_dropped_items_total",
                                reason="rejected_by_backend") == 2, 5, what="partial success count")
    wait_until(lambda: m.metric("meltp_exporter_sent_items_total", exporter="otlphttp") == 3, 5,
               what="the accepted part counted as sent")
    # logged after the counts
    wait_until(lambda: "bad spans" in m.logtext(), 5, what="the backend's message logged")
    # an absence: a retry would come right behind, and no wait can show none does
    time.sleep(0.3)
    assert len(backend.requests) == 1, "partial success must not be retried"
