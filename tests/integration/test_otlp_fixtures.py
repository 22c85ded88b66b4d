"""Every OTLP/HTTP fixture captured from the OpenTelemetry JS SDK is accepted by meltp and
comes out of the file exporter with the same resources, items, ids and attributes; JSON
written by meltp reads back into identical data; a sidecar -> gateway chain loses nothing."""
import json
import os

from harness import (Meltp, fixture, manifest, pb_traces, pb_logs, pb_metric_points, j_traces,
                     j_logs, j_metric_points, wait_until)

FILE_CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  file/t:
    path: {dir}/traces.jsonl
  file/m:
    path: {dir}/metrics.jsonl
  file/l:
    path: {dir}/logs.jsonl
processors:
  batch:
    timeout: 50ms
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [file/t]}}
    metrics: {{receivers: [otlp], processors: [batch], exporters: [file/m]}}
    logs: {{receivers: [otlp], processors: [batch], exporters: [file/l]}}
"""

NOBATCH_CFG = FILE_CFG.replace("processors: [batch], ", "")


def http_fixtures():
    m = manifest()
    return [e for f, e in sorted(m.items()) if e["format"] in ("proto", "json")]


def _canon(items):
    return sorted(json.dumps(i, sort_keys=True, default=repr) for i in items)


def expected_items(entry):
    """Decodes a fixture body independently of meltp (Python JSON or the wire decoder)."""
    body = fixture("otlp-js/" + entry["file"])
    if entry["content_encoding"] == "gzip":
        import gzip
        body = gzip.decompress(body)
    sig = entry["signal"]
    if entry["format"] == "json":
        req = json.loads(body)
        return {"traces": j_traces, "logs": j_logs, "metrics": j_metric_points}[sig](req)
    return {"traces": pb_traces, "logs": pb_logs, "metrics": pb_metric_points}[sig](body)


def post_fixture(m, entry):
    body = fixture("otlp-js/" + entry["file"])
    st, hdrs, resp = m.post("/v1/" + entry["signal"], body, entry["content_type"],
                            entry["content_encoding"])
    assert st == 200, "%s: HTTP %d %r" % (entry["file"], st, resp[:200])
    assert hdrs.get("content-type") == entry["content_type"], hdrs
    return resp


def file_items(m, sig):
    reader = {"traces": j_traces, "logs": j_logs, "metrics": j_metric_points}[sig]
    out = []
    for line in m.file_lines(sig + ".jsonl"):
        out.extend(reader(line))
    return out


def test_every_fixture_accepted_and_written_identically():
    m = Meltp(FILE_CFG)
    fx = http_fixtures()
    assert len(fx) >= 20, "fixtures missing: %d" % len(fx)
    expected = {"traces": [], "metrics": [], "logs": []}
    for e in fx:
        resp = post_fixture(m, e)
        if e["format"] == "json":
            assert json.loads(resp) == {}, resp
        else:
            assert resp == b"", resp
        items = expected_items(e)
        assert len(items) == e["items"], "%s: decoded %d items, manifest says %d" % (
            e["file"], len(items), e["items"])
        expected[e["signal"]].extend(items)
    assert m.stop() == 0
    for sig, items in expected.items():
        got = file_items(m, sig)
        assert len(got) == len(items), "%s: %d written, %d sent" % (sig, len(got), len(items))
        assert _canon(got) == _canon(items), "%s: written items differ from sent" % sig


def test_accepted_counts_match_manifest_in_self_metrics():
    m = Meltp(FILE_CFG)
    total = {"traces": 0, "metrics": 0, "logs": 0}
    for e in http_fixtures():
        post_fixture(m, e)
        total[e["signal"]] += e["items"]
    for sig, n in total.items():
        got = m.metric("meltp_receiver_accepted_items_total", signal=sig)
        assert got == n, "%s: accepted metric %s, sent %d" % (sig, got, n)
    wait_until(lambda: m.metric("meltp_exporter_sent_items_total", signal="traces") == total["traces"],
               10, what="file exporter to write every span")


def test_protobuf_to_json_and_back_is_identical():
    a = Meltp(NOBATCH_CFG)
    for e in http_fixtures():
        if e["format"] == "proto" and e["content_encoding"] is None:
            post_fixture(a, e)
    assert a.stop() == 0
    b = Meltp(NOBATCH_CFG)
    for sig in ("traces", "metrics", "logs"):
        for line in a.file_lines(sig + ".jsonl"):
            st, _, resp = b.post("/v1/" + sig, json.dumps(line).encode(), "application/json")
            assert st == 200, resp
    assert b.stop() == 0
    for sig in ("traces", "metrics", "logs"):
        first = a.file_lines(sig + ".jsonl")
        second = b.file_lines(sig + ".jsonl")
        assert first, "no %s written" % sig
        assert first == second, "%s: JSON -> meltp -> JSON changed the data" % sig


def test_sidecar_to_gateway_chain_loses_nothing():
    gw = Meltp(FILE_CFG)
    sidecar = Meltp("""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
processors:
  batch:
    timeout: 50ms
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:%d
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [otlphttp]}}
    metrics: {{receivers: [otlp], processors: [batch], exporters: [otlphttp]}}
    logs: {{receivers: [otlp], processors: [batch], exporters: [otlphttp]}}
""" % gw.otlp)
    expected = {"traces": [], "metrics": [], "logs": []}
    for e in http_fixtures():
        post_fixture(sidecar, e)
        expected[e["signal"]].extend(expected_items(e))
    assert sidecar.stop() == 0, sidecar.logtext()
    assert gw.stop() == 0
    for sig, items in expected.items():
        got = file_items(gw, sig)
        assert _canon(got) == _canon(items), "%s: %d at gateway, %d sent" % (sig, len(got), len(items))
    assert os.path.getsize(os.path.join(gw.dir, "traces.jsonl")) > 0
