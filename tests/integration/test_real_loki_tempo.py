"""The real-server tier for Loki and Tempo: the checks the strict fakes make (test_loki.py,
test_exporters.py), made against the real Loki 2.8 and Tempo 2.0 built from their public
sources (../shared/servers). Skipped, with the reason printed, when no binary is found
(realservers.py says where it looks); CI runs them with the shared copies.

What the real Loki 2.8 cannot show: structured metadata (added in Loki 2.9); the fake checks it.
With auth_enabled false (the shared config) Loki files every push under the tenant "fake"."""
import json
import time
import urllib.parse

import harness
from harness import Meltp, fixture, make_traces, wait_until
from realservers import RealServer
from test_loki import LEVELS, expected_line, fixture_records, fixture_records_json

PB = "application/x-protobuf"

LOKI_CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  loki:
    endpoint: http://127.0.0.1:%d/loki/api/v1/push
%s
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs: {{receivers: [otlp], exporters: [loki]}}
"""


def loki_entries(loki, selector, start_ns, end_ns):
    """Every (labels, ts, line) Loki returns for `selector` between the two times."""
    q = urllib.parse.urlencode({"query": selector, "start": str(start_ns), "end": str(end_ns),
                                "limit": "5000", "direction": "forward"})
    st, _, body = harness.http_request(loki.url("/loki/api/v1/query_range?" + q), None,
                                       method="GET")
    assert st == 200, (st, body[:300])
    out = []
    for s in json.loads(body)["data"]["result"]:
        for ts, line in s["values"]:
            out.append((s["stream"], int(ts), line))
    return out


def check_loki_fixture(rel, encoding):
    loki = RealServer("loki")
    # Loki 2.8 predates structured metadata: its JSON parser refuses the third element of an
    # entry array, so the JSON check turns it off (protobuf carries it in a field 2.8 skips)
    extra = "    encoding: json\n    structured_metadata: false\n" if encoding == "json" else ""
    m = Meltp(LOKI_CONFIG % (loki.http, extra))
    want = fixture_records_json(rel) if "json" in rel else fixture_records(rel)
    ctype = "application/json" if "json" in rel else PB
    st, _, _ = m.post("/v1/logs", fixture(rel), ctype)
    assert st == 200
    wait_until(lambda: m.metric("meltp_loki_entries_sent_total") == len(want), 20,
               what="%d entries sent to Loki" % len(want))
    assert m.metric("meltp_loki_entries_dropped_total") == 0
    tss = [r["t"] or r["obs"] for r in want]
    selector = '{service_namespace="acceptance"}'
    got = wait_until(lambda: (lambda g: g if len(g) >= len(want) else None)(
        loki_entries(loki, selector, min(tss) - 10**9, max(tss) + 10**9)), 20,
        what="entries queryable in Loki")
    assert len(got) == len(want), (len(got), len(want))
    want_set = sorted(((r["resource"]["service.name"], LEVELS[(r["sev"] - 1) // 4],
                        r["t"] or r["obs"], expected_line(r["body"])) for r in want))
    got_set = sorted(((lab["service_name"], lab["level"], ts, line) for lab, ts, line in got))
    assert got_set == want_set
    for lab, _, _ in got:
        assert lab["deployment_environment"] == "test", lab


def test_real_loki_sdk_fixture_protobuf_snappy():
    check_loki_fixture("otlp-js/logs-n100/logs-proto-1.bin", "protobuf")


def test_real_loki_sdk_fixture_json():
    check_loki_fixture("otlp-js/logs-n100/logs-json-1.bin", "json")


def test_real_loki_refusal_is_counted_not_silent():
    """A line over Loki's max_line_size (256 KB by default) is a 400 from the real server:
    meltp counts the entries as dropped with a reason and keeps serving."""
    loki = RealServer("loki")
    m = Meltp(LOKI_CONFIG % (loki.http, ""))
    from test_loki import make_logs
    big = "x" * (300 * 1024)
    now = time.time_ns()
    body = make_logs([({"service.name": "big"}, [{"t": now, "sev": 9, "body": big}])])
    st, _, _ = m.post("/v1/logs", body, PB)
    assert st == 200
    wait_until(lambda: m.metric("meltp_loki_entries_dropped_total") >= 1, 20,
               what="the refused entry counted as dropped")
    assert m.metric("meltp_loki_entries_sent_total") == 0
    body = make_logs([({"service.name": "small"}, [{"t": now, "sev": 9, "body": "ok"}])])
    assert m.post("/v1/logs", body, PB)[0] == 200
    wait_until(lambda: m.metric("meltp_loki_entries_sent_total") == 1, 20, what="next entry sent")


TEMPO_CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  otlphttp/tempo:
    endpoint: http://127.0.0.1:%d/
    compression: %s
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlphttp/tempo]}}
"""


def tempo_trace(tempo, trace_hex):
    st, _, body = harness.http_request(tempo.url("/api/traces/" + trace_hex), None,
                                       method="GET", headers={"Accept": "application/protobuf"})
    if st != 200:
        return None
    return body


def test_real_tempo_sdk_fixture_traces_found_by_id():
    tempo = RealServer("tempo")
    m = Meltp(TEMPO_CONFIG % (tempo.otlp_http, "gzip"))
    body = fixture("otlp-js/traces-n100/traces-proto-1.bin")
    want = harness.pb_traces(body)
    st, _, _ = m.post("/v1/traces", body, PB)
    assert st == 200
    by_trace = {}
    for sp in want:
        by_trace.setdefault(sp["traceId"], set()).add(sp["spanId"])
    for tid, span_ids in by_trace.items():
        got = wait_until(lambda: tempo_trace(tempo, tid), 30, what="trace %s in Tempo" % tid)
        # Tempo answers a tempopb.Trace {repeated ResourceSpans batches = 1}: the wire shape
        # of ExportTraceServiceRequest, so the same independent decoder reads it
        got_spans = harness.pb_traces(got)
        got_ids = {sp["spanId"] for sp in got_spans}
        assert got_ids == span_ids, (tid, got_ids ^ span_ids)
        names = {sp["spanId"]: sp["name"] for sp in want if sp["traceId"] == tid}
        assert all(names[sp["spanId"]] == sp["name"] for sp in got_spans)


def test_real_tempo_uncompressed_and_zstd_refusal_counted():
    """Uncompressed spans arrive. Tempo 2.0's OTLP/HTTP receiver (an OpenTelemetry Collector
    receiver of its day) does not decode `Content-Encoding: zstd` and answers 400: meltp counts
    the spans as dropped with the reason, never silently (use gzip towards Tempo 2.0)."""
    tempo = RealServer("tempo")
    m = Meltp(TEMPO_CONFIG % (tempo.otlp_http, "none"))
    tid = bytes(range(1, 17))
    st, _, _ = m.post("/v1/traces", make_traces([b"\x0a" * 8, b"\x0b" * 8], service="real-tempo",
                                                trace_id=tid), PB)
    assert st == 200
    got = wait_until(lambda: tempo_trace(tempo, tid.hex()), 30, what="trace in Tempo")
    spans = harness.pb_traces(got)
    assert sorted(sp["spanId"] for sp in spans) == ["0a" * 8, "0b" * 8]
    assert all(sp["resource"]["service.name"] == "real-tempo" for sp in spans)
    z = Meltp(TEMPO_CONFIG % (tempo.otlp_http, "zstd"))
    st, _, _ = z.post("/v1/traces", make_traces([b"\x0c" * 8, b"\x0d" * 8], trace_id=b"\x07" * 16),
                      PB)
    assert st == 200
    wait_until(lambda: z.metric("meltp_exporter_dropped_items_total", reason="http_400") == 2, 20,
               what="the refused spans counted as dropped (http_400)")
