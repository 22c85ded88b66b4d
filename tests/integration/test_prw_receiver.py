"""The prometheusremotewrite receiver: the recorded Prometheus 2.42 requests are accepted (204)
and come out of the file exporter as OTLP metrics with the expected names and data point
counts; a hand-built remote-write 2.0 request is answered with the *-Written headers; and
every malformed request gets its documented status and a reason, is counted by reason, and
meltp keeps serving.

Python has no snappy module here, so the test carries its own: a block decoder (to read the
fixtures independently of meltp) and a literal-only block encoder (valid snappy that libsnappy
accepts, just not compressed)."""
import json
import os
import struct

from harness import (FIXTURES, Meltp, _varint, _enc_varint, http_request, j_metric_points,
                     pb_fields, pb_fixed64, pb_get, pb_len, pb_varint, wait_until)

CFG = """
receivers:
  prometheusremotewrite:
    endpoint: 127.0.0.1:{otlp}
    max_request_body_size: 1MiB
exporters:
  file:
    path: {dir}/out.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    metrics: {{receivers: [prometheusremotewrite], exporters: [file]}}
"""

PATH = "/api/v1/write"
V1 = "application/x-protobuf"
V2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"


# ---- snappy block format --------------------------------------------------------------------

def snappy_encode(data):
    """Literal-only snappy block: varint length, then literals of at most 65536 bytes."""
    out = bytearray(_enc_varint(len(data)))
    i = 0
    while i < len(data):
        chunk = data[i:i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 1 << 8:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2]) + struct.pack("<H", n)
        out += chunk
        i += len(chunk)
    return bytes(out)


def snappy_decode(b):
    n, i = _varint(b, 0)
    out = bytearray()
    while i < len(b):
        tag = b[i]
        i += 1
        kind = tag & 3
        if kind == 0:
            ln = tag >> 2
            if ln >= 60:
                nb = ln - 59
                ln = int.from_bytes(b[i:i + nb], "little")
                i += nb
            ln += 1
            out += b[i:i + ln]
            i += ln
            continue
        if kind == 1:
            ln = ((tag >> 2) & 7) + 4
            off = ((tag >> 5) << 8) | b[i]
            i += 1
        elif kind == 2:
            ln = (tag >> 2) + 1
            off = int.from_bytes(b[i:i + 2], "little")
            i += 2
        else:
            ln = (tag >> 2) + 1
            off = int.from_bytes(b[i:i + 4], "little")
            i += 4
        for _ in range(ln):
            out.append(out[-off])
    assert len(out) == n, "snappy length mismatch"
    return bytes(out)


# ---- remote-write protobuf ---------------------------------------------------------------------

def dbl(fn, v):
    return pb_fixed64(fn, struct.unpack("<Q", struct.pack("<d", v))[0])


def rw1_series(labels, samples):
    """labels: list of (name, value) in wire order; samples: list of (value, ts_ms)."""
    body = b"".join(pb_len(1, pb_len(1, k.encode()) + pb_len(2, v.encode())) for k, v in labels)
    body += b"".join(pb_len(2, dbl(1, v) + pb_varint(2, ts)) for v, ts in samples)
    return pb_len(1, body)


def rw2_request(symbols, series):
    """series: list of (labels_refs, samples [(v, ts, start)], exemplars [(refs, v, ts)],
    metadata (type, help_ref) or None)."""
    body = b"".join(pb_len(4, s.encode()) for s in symbols)
    for refs, samples, exemplars, md in series:
        t = pb_len(1, b"".join(_enc_varint(r) for r in refs))
        t += b"".join(pb_len(2, dbl(1, v) + pb_varint(2, ts) + pb_varint(3, st))
                      for v, ts, st in samples)
        t += b"".join(pb_len(4, pb_len(1, b"".join(_enc_varint(r) for r in er)) + dbl(2, ev) +
                             pb_varint(3, ets)) for er, ev, ets in exemplars)
        if md:
            t += pb_len(5, pb_varint(1, md[0]) + pb_varint(3, md[1]))
        body += pb_len(5, t)
    return body


def rw1_decode(raw):
    """-> list of (labels dict, [values]) from an uncompressed WriteRequest."""
    out = []
    for ts in pb_get(raw, 1):
        labels = {}
        for lb in pb_get(ts, 1):
            labels[b"".join(pb_get(lb, 1)).decode()] = b"".join(pb_get(lb, 2)).decode()
        samples = []
        for sm in pb_get(ts, 2):
            f = {fn: v for fn, _, v in pb_fields(sm)}
            samples.append(f.get(2, 0))
        out.append((labels, samples))
    return out


def expected_points(series):
    """The receiver's documented grouping for a request without metadata: one point per
    sample, except classic histogram / summary parts, which fold into one point per
    (family, other labels, timestamp). Returns (points, metric names)."""
    hist, summ = set(), set()
    for lb, _ in series:
        n = lb["__name__"]
        if n.endswith("_bucket") and "le" in lb:
            hist.add(n[:-7])
        elif "quantile" in lb:
            summ.add(n)
    groups, points, names = set(), 0, set()
    for lb, samples in series:
        n = lb["__name__"]
        if n == "target_info":
            continue
        part = None
        if n.endswith("_total"):
            names.add(n[:-6])
        elif n.endswith("_bucket") and "le" in lb:
            part = (n[:-7], "le")
        elif "quantile" in lb:
            part = (n, "quantile")
        elif n.endswith("_sum") and (n[:-4] in hist or n[:-4] in summ):
            part = (n[:-4], None)
        elif n.endswith("_count") and (n[:-6] in hist or n[:-6] in summ):
            part = (n[:-6], None)
        else:
            names.add(n)
        if part is None:
            points += len(samples)
            continue
        names.add(part[0])
        rest = tuple(sorted((k, v) for k, v in lb.items() if k not in ("__name__", part[1])))
        for ts in samples:
            groups.add((part[0], rest, ts))
    return points + len(groups), names


def promrw(i):
    base = os.path.join(FIXTURES, "promrw", "promrw-proto-snappy-%d" % i)
    with open(base + ".bin", "rb") as f:
        body = f.read()
    with open(base + ".headers.json") as f:
        hdrs = json.load(f)["headers"]
    return body, hdrs


def post_fixture(m, i):
    body, hdrs = promrw(i)
    extra = {"User-Agent": hdrs["user-agent"],
             "X-Prometheus-Remote-Write-Version": hdrs["x-prometheus-remote-write-version"]}
    return m.post(PATH, body, hdrs["content-type"], hdrs["content-encoding"], headers=extra)


def all_points(m):
    pts = []
    for req in m.file_lines("out.jsonl"):
        pts.extend(j_metric_points(req))
    return pts


# ---- tests -------------------------------------------------------------------------------------

def test_fixtures_accepted_and_converted():
    m = Meltp(CFG)
    want_points, want_names = 0, set()
    for i in (1, 2, 3):
        st, hdrs, resp = post_fixture(m, i)
        assert st == 204, "fixture %d: %d %r" % (i, st, resp[:300])
        assert resp == b""
        assert "x-prometheus-remote-write-samples-written" not in hdrs  # v1: no headers
        body, _ = promrw(i)
        pts, names = expected_points(rw1_decode(snappy_decode(body)))
        want_points += pts
        want_names |= names
    assert want_points > 0
    wait_until(lambda: len(all_points(m)) >= want_points, 10, what="file exporter output")
    pts = all_points(m)
    assert len(pts) == want_points, (len(pts), want_points)
    got_names = {p[0] for p in pts}
    assert got_names == want_names, (sorted(got_names ^ want_names)[:20])
    kinds = {(p[0], p[1]) for p in pts}
    assert ("go_gc_duration_seconds", 11) in kinds          # summary
    assert ("prometheus_remote_storage_sent_batch_duration_seconds", 9) in kinds  # histogram
    assert ("go_memstats_alloc_bytes", 7) in kinds          # counter, _total stripped
    assert ("go_memstats_alloc_bytes", 5) in kinds          # the gauge of the same base
    # resource from job/instance; job and instance are not point attributes
    req = m.file_lines("out.jsonl")[0]
    rattrs = {kv["key"]: kv["value"]["stringValue"]
              for kv in req["resourceMetrics"][0]["resource"]["attributes"]}
    assert rattrs.get("service.name") == "prometheus", rattrs
    assert "service.instance.id" in rattrs
    assert all("job" not in p[2] and "instance" not in p[2] for p in pts)
    assert m.metric("meltp_receiver_accepted_items_total",
                    receiver="prometheusremotewrite") == want_points
    # a classic histogram point: per-bucket counts summing to the count
    for rm in req["resourceMetrics"]:
        for sm in rm["scopeMetrics"]:
            assert sm["scope"]["name"] == "meltp/prometheusremotewrite"
            for met in sm["metrics"]:
                for dp in met.get("histogram", {}).get("dataPoints", []):
                    counts = [int(c) for c in dp.get("bucketCounts", [])]
                    assert len(counts) == len(dp.get("explicitBounds", [])) + 1
                    assert sum(counts) == int(dp.get("count", 0)), met["name"]


def test_rw2_written_headers():
    m = Meltp(CFG)
    syms = ["", "__name__", "http_requests_total", "code", "200", "job", "shop/api",
            "instance", "h:1", "Requests served.", "trace_id",
            "0123456789abcdef0123456789abcdef", "temp_celsius"]
    series = [
        ([1, 2, 3, 4, 7, 8, 5, 6], [(10, 2000, 1000), (12, 3000, 1000)],
         [([10, 11], 1.0, 2500)], (1, 9)),
        ([1, 12, 7, 8, 5, 6], [(21.5, 3000, 0)], [], (2, 0)),
    ]
    body = snappy_encode(rw2_request(syms, series))
    st, hdrs, resp = m.post(PATH, body, V2, "snappy",
                            headers={"X-Prometheus-Remote-Write-Version": "2.0.0"})
    assert st == 204, (st, resp)
    assert hdrs.get("x-prometheus-remote-write-samples-written") == "3", hdrs
    assert hdrs.get("x-prometheus-remote-write-histograms-written") == "0"
    assert hdrs.get("x-prometheus-remote-write-exemplars-written") == "1"
    wait_until(lambda: len(all_points(m)) >= 3, 10, what="file exporter output")
    req = m.file_lines("out.jsonl")[0]
    rm = req["resourceMetrics"][0]
    rattrs = {kv["key"]: kv["value"]["stringValue"] for kv in rm["resource"]["attributes"]}
    assert rattrs == {"service.namespace": "shop", "service.name": "api",
                      "service.instance.id": "h:1"}, rattrs
    mets = {x["name"]: x for x in rm["scopeMetrics"][0]["metrics"]}
    assert set(mets) == {"http_requests", "temp_celsius"}, set(mets)
    s = mets["http_requests"]["sum"]
    assert s["isMonotonic"] and len(s["dataPoints"]) == 2
    assert mets["http_requests"]["description"] == "Requests served."
    assert s["dataPoints"][0]["startTimeUnixNano"] == "1000000000"
    assert s["dataPoints"][1]["timeUnixNano"] == "3000000000"
    ex = s["dataPoints"][1]["exemplars"][0]
    assert ex["traceId"] == "0123456789abcdef0123456789abcdef", ex
    assert "gauge" in mets["temp_celsius"]
    # an invalid v2 request still gets the headers (0 written)
    bad = snappy_encode(rw2_request(syms, [([1, 2, 3], [(1, 1000, 0)], [], None)]))
    st, hdrs, resp = m.post(PATH, bad, V2, "snappy")
    assert st == 400 and b"odd length" in resp, (st, resp)
    assert hdrs.get("x-prometheus-remote-write-samples-written") == "0", hdrs


def check(m, body, ctype, enc, want_status, want_text, reason):
    before = m.metric("meltp_receiver_refused_requests_total", reason=reason)
    st, hdrs, resp = m.post(PATH, body, ctype, enc)
    assert st == want_status, "%s: got %d %r, want %d" % (want_text, st, resp[:300], want_status)
    assert want_text.encode() in resp, "body %r lacks %r" % (resp[:300], want_text)
    assert hdrs.get("content-type", "").startswith("text/plain"), hdrs
    after = m.metric("meltp_receiver_refused_requests_total", reason=reason)
    assert after == before + 1, "reason %s not counted (%s -> %s)" % (reason, before, after)
    # still serving
    st, _, resp = post_fixture(m, 2)
    assert st == 204, (st, resp)
    return hdrs


def test_bad_input_matrix():
    m = Meltp(CFG)
    good, _ = promrw(2)
    check(m, good[:len(good) // 2], V1, "snappy", 400, "snappy", "bad_compression")
    check(m, snappy_encode(b"\x0a\xff\xff\xff\x0f\x00"), V1, "snappy", 400,
          "invalid remote-write 1.0 protobuf", "invalid_data")
    # labels out of order are sorted and accepted (test_prw_compliance); the request still
    # serves the media-type checks below
    unsorted = rw1_series([("__name__", "x"), ("b", "1"), ("a", "2")], [(1, 1000)])
    dup = rw1_series([("__name__", "x"), ("a", "1"), ("a", "2")], [(1, 1000)])
    check(m, snappy_encode(dup), V1, "snappy", 400, "duplicate label name", "invalid_data")
    badutf = pb_len(1, pb_len(1, pb_len(1, b"__name__") + pb_len(2, b"x")) +
                    pb_len(1, pb_len(1, b"a") + pb_len(2, b"\xff\xfe")) +
                    pb_len(2, dbl(1, 1) + pb_varint(2, 1000)))
    check(m, snappy_encode(badutf), V1, "snappy", 400, "UTF-8", "invalid_data")
    framed = bytes([0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59]) + b"\x00" * 20
    check(m, framed, V1, "snappy", 400, "framed snappy is not supported", "bad_compression")
    # over the cap on the wire, and a small body whose header claims 2 MiB decompressed
    check(m, b"\x00" * (1536 * 1024), V1, "snappy", 413, "max_request_body_size", "too_large")
    check(m, _enc_varint(2 << 20) + b"\x00", V1, "snappy", 413, "decompressed", "too_large")
    check(m, snappy_encode(unsorted), "application/json", "snappy", 415, "Content-Type",
          "unsupported_media_type")
    check(m, snappy_encode(unsorted), "application/x-protobuf;proto=foo.Bar", "snappy", 415,
          "Content-Type", "unsupported_media_type")
    check(m, unsorted, V1, None, 415, "snappy", "unsupported_encoding")
    check(m, unsorted, V1, "gzip", 415, "snappy", "unsupported_encoding")
    # explicit v1 proto parameter is accepted
    st, _, resp = m.post(PATH, good, "application/x-protobuf;proto=prometheus.WriteRequest",
                         "snappy")
    assert st == 204, (st, resp)
    st, _, _ = http_request(m.url(PATH), None, method="GET")
    assert st == 405
    st, _, _ = m.post("/api/v1/other", good, V1, "snappy")
    assert st == 404
