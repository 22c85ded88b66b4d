"""The Prometheus remote-write 2.0 receiver compliance suite (github.com/prometheus/compliance,
remotewrite/receiver), ported: each public case, by its name, with the request it builds and
the outcome it expects, checked the way the suite checks a response (validate_response below):
a 2xx must be expected to succeed and report exactly the samples / histograms / exemplars
written in the X-Prometheus-Remote-Write-*-Written headers (and be a 204); a 4xx must be a 400
(or the case's exact code) and report no more than was sent. Successful cases are checked
strictly (204), as the suite's "returns 204" variants do, and more strictly than the suite
itself: its check lets a 400 pass for a case meant to succeed, this port does not (except for
the one case where refusing is meltp's documented answer, marked may_refuse).

Like the suite's generator, labels go out in the order the case lists them, which for many
cases is not sorted by name (Go map order is random there; here it is the table's order, so
every run sends the same bytes). Then come meltp's own cases for the three fixes the suite
found (exemplars without data, a histogram count that disagrees with its buckets, unsorted
label names), on both remote-write versions and both receiver paths."""
import math
import struct
import time

import test_prw_receiver as rx
from test_prw_passthrough import FakeRemoteWrite, passes_through, relay
from harness import Meltp, _enc_varint, pb_len, pb_varint, wait_until

PATH = "/api/v1/write"
V1 = "application/x-protobuf"
V2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
H2 = {"X-Prometheus-Remote-Write-Version": "2.0.0"}

COUNTER, GAUGE, HISTOGRAM, GAUGEHISTOGRAM, SUMMARY, INFO, STATESET = 1, 2, 3, 4, 5, 6, 7


def f64(bits):
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


STALE_NAN = f64(0x7ff0000000000002)
NORMAL_NAN = f64(0x7ff8000000000001)
VALUES = [("1.0", 1.0), ("StaleNaN", STALE_NAN), ("NaN", NORMAL_NAN), ("Inf", math.inf),
          ("-Inf", -math.inf)]


# ---- protobuf encoding (RW 1.0 and 2.0 share the Histogram message) ------------------------

def zz(v):
    return (v << 1) ^ (v >> 63)


def packed_varints(fn, vals, signed=False):
    return pb_len(fn, b"".join(_enc_varint(zz(v) if signed else v) for v in vals)) if vals else b""


def packed_doubles(fn, vals):
    return pb_len(fn, b"".join(struct.pack("<d", v) for v in vals)) if vals else b""


def histogram_msg(h, ts):
    """h: dict with count_int or count_float, sum, schema, zero_count_int, pspans [(off, len)],
    pdeltas, pcounts, nspans, ndeltas, ncounts, custom. Fields as in both protos."""
    b = b""
    if "count_float" in h:
        b += rx.dbl(2, h["count_float"])
    else:
        b += pb_varint(1, h.get("count_int", 0))
    b += rx.dbl(3, h.get("sum", 0.0))
    if h.get("schema"):
        b += pb_varint(4, zz(h["schema"]) & 0xffffffff)
    if "zero_count_int" in h:
        b += pb_varint(6, h["zero_count_int"])
    if "zero_count_float" in h:
        b += rx.dbl(7, h["zero_count_float"])
    for fn_spans, fn_d, fn_c, side in ((8, 9, 10, "n"), (11, 12, 13, "p")):
        for off, ln in h.get(side + "spans", []):
            b += pb_len(fn_spans, pb_varint(1, zz(off) & 0xffffffff) + pb_varint(2, ln))
        b += packed_varints(fn_d, h.get(side + "deltas", []), signed=True)
        b += packed_doubles(fn_c, h.get(side + "counts", []))
    b += pb_varint(15, ts)
    b += packed_doubles(16, h.get("custom", []))
    return b


def suite_histogram(total, positive, negative, zero, custom, bad_count):
    """The suite's histogram(): positive buckets 1,3,4,7,8 (23), negative 1,2 (3), zero 1;
    custom buckets 2,3,5,8,7,5 (30) with schema -53; a bad count is 99."""
    h, count = {"sum": total}, 0
    if positive:
        h["pspans"], h["pdeltas"] = [(0, 3), (2, 2)], [1, 2, 1, 3, 1]
        count += 23
    if negative:
        h["nspans"], h["ndeltas"] = [(0, 2)], [1, 1]
        count += 3
    if zero:
        h["zero_count_int"] = 1
        count += 1
    if custom:
        h["pspans"], h["pdeltas"] = [(0, 6)], [2, 1, 2, 3, -1, -2]
        h["schema"], h["custom"] = -53, [0.1, 0.5, 1.0, 2.5, 5.0, 10.0]
        count = 30
    h["count_int"] = 99 if bad_count else count
    return h


class Symbols:
    def __init__(self):
        self.list, self.idx = [""], {"": 0}

    def ref(self, s):
        if s not in self.idx:
            self.idx[s] = len(self.list)
            self.list.append(s)
        return self.idx[s]

    def refs(self, labels):
        out = []
        for k, v in labels.items():
            out += [self.ref(k), self.ref(v)]
        return out


def rw2_body(samples=(), histograms=(), exemplars=(), metadata=(), unsafe=False):
    """The suite's generateRequest: one TimeSeries per sample and per histogram; an exemplar
    goes with the first sample (then histogram) of the same labels (all remaining ones with the
    last), else in a series of its own; metadata rides on the series of the same name, else in a
    series of its own. samples: (labels, value, offset_ms[, created_ms]); histograms:
    (labels, hist[, created_ms]); exemplars: (labels, exemplar labels, value, offset_ms);
    metadata: (labels, type, help, unit)."""
    now = int(time.time() * 1000)
    sym = Symbols()
    md_by_name = {}
    for labels, mtype, help_, unit in metadata:
        name = labels.get("__name__", "")
        if name or unsafe:
            md_by_name[name] = pb_varint(1, mtype) + pb_varint(3, sym.ref(help_)) + \
                pb_varint(4, sym.ref(unit))
    used = set()

    def exemplars_for(labels, last):
        out = b""
        for i, (el, xl, v, off) in enumerate(exemplars):
            if i in used or el != labels:
                continue
            used.add(i)
            out += pb_len(4, pb_len(1, b"".join(_enc_varint(r) for r in sym.refs(xl))) +
                          rx.dbl(2, v) + pb_varint(3, now + off))
            if not last:
                break
        return out

    def series(labels, data, last):
        t = pb_len(1, b"".join(_enc_varint(r) for r in sym.refs(labels))) + data
        t += exemplars_for(labels, last)
        name = labels.get("__name__", "")
        if (name or unsafe) and name in md_by_name:
            t += pb_len(5, md_by_name[name])
        return pb_len(5, t)

    out = b""
    keys = [tuple(s[0].items()) for s in samples]
    for i, s in enumerate(samples):
        labels, v, off = s[0], s[1], s[2]
        # the suite's created timestamp is 2.0's start_timestamp
        start = pb_varint(3, now + s[3]) if len(s) > 3 else b""
        last = i == max(j for j, k in enumerate(keys) if k == keys[i])
        out += series(labels, pb_len(2, rx.dbl(1, v) + pb_varint(2, now + off) + start), last)
    hkeys = [tuple(h[0].items()) for h in histograms]
    for i, h in enumerate(histograms):
        labels, hist = h[0], h[1]
        msg = histogram_msg(hist, now)
        if len(h) > 2:
            msg += pb_varint(17, now + h[2])
        last = i == max(j for j, k in enumerate(hkeys) if k == hkeys[i])
        out += series(labels, pb_len(3, msg), last)
    for i, (el, xl, v, off) in enumerate(exemplars):
        if i in used or any(s[0] == el for s in samples) or any(h[0] == el for h in histograms):
            continue
        out += pb_len(5, pb_len(1, b"".join(_enc_varint(r) for r in sym.refs(el))) +
                      pb_len(4, pb_len(1, b"".join(_enc_varint(r) for r in sym.refs(xl))) +
                             rx.dbl(2, v) + pb_varint(3, now + off)))
    names = {s[0].get("__name__") for s in samples} | {h[0].get("__name__") for h in histograms}
    for labels, mtype, help_, unit in metadata:
        name = labels.get("__name__", "")
        if name and name not in names:
            out += pb_len(5, pb_len(1, b"".join(_enc_varint(r) for r in sym.refs(labels))) +
                          pb_len(5, md_by_name[name]))
    return b"".join(pb_len(4, s.encode()) for s in sym.list) + out


def rw1_body(samples=(), histograms=(), exemplars=()):
    """A WriteRequest: (labels dict, value) samples, (labels, hist) histograms and
    (labels, exemplar labels, value) exemplar-only series, labels in the order given."""
    now = int(time.time() * 1000)

    def labels_of(d, fn=1):
        return b"".join(pb_len(fn, pb_len(1, k.encode()) + pb_len(2, v.encode()))
                        for k, v in d.items())
    out = b""
    for labels, v in samples:
        out += pb_len(1, labels_of(labels) + pb_len(2, rx.dbl(1, v) + pb_varint(2, now)))
    for labels, h in histograms:
        out += pb_len(1, labels_of(labels) + pb_len(4, histogram_msg(h, now)))
    for labels, xl, v in exemplars:
        out += pb_len(1, labels_of(labels) +
                      pb_len(3, labels_of(xl) + rx.dbl(2, v) + pb_varint(3, now)))
    return out


# ---- the suite's response check ----------------------------------------------------------------

def written(hdrs, what):
    v = hdrs.get("x-prometheus-remote-write-%s-written" % what)
    return int(v) if v else 0  # a missing header means 0 written


def validate_response(st, hdrs, success, samples=0, histograms=0, exemplars=0, exact=0,
                      may_refuse=False):
    """The suite's validateResponse with the strict (SHOULD: 204) variant for successes, and
    a 4xx for a case meant to succeed a failure unless may_refuse. Returns a list of
    complaints (empty when the response is compliant)."""
    bad = []
    if success and not may_refuse and st // 100 != 2:
        bad.append("status %d for a case that must succeed" % st)
    got = (written(hdrs, "samples"), written(hdrs, "histograms"), written(hdrs, "exemplars"))
    want = (samples, histograms, exemplars)
    if exact and st != exact:
        bad.append("status %d, want exactly %d" % (st, exact))
    if st // 100 == 2:
        if not success:
            bad.append("status %d but the case must fail" % st)
        elif got != want:
            bad.append("written (samples, histograms, exemplars) %s, want %s" % (got, want))
        elif st != 204:
            bad.append("status %d, want 204" % st)
    elif st // 100 == 4:
        if not exact and st != 400:
            bad.append("status %d, want 400" % st)
        if any(g > w for g, w in zip(got, want)) or sum(got) > sum(want):
            bad.append("written %s exceeds what was sent %s" % (got, want))
    else:
        bad.append("status %d" % st)
    return bad


# ---- the cases ---------------------------------------------------------------------------------

def job_instance():
    return {"__name__": "up", "job": "testjob", "instance": "localhost:9090"}


def basic(name):
    return {"__name__": name}


def trace(tid):
    return {"trace_id": tid}


def S(labels, v=1.0, off=0, created=None):
    return (labels, v, off) if created is None else (labels, v, off, created)


def H(labels, hist, created=None):
    return (labels, hist) if created is None else (labels, hist, created)


def case(name, success, samples=0, histograms=0, exemplars=0, exact=0, raw=None,
         may_refuse=False, **req):
    """One case: the request as rw2_body arguments (or `raw` = (body, ctype, encoding, headers))
    and the expected outcome."""
    return {"name": name, "success": success, "want": (samples, histograms, exemplars),
            "exact": exact, "raw": raw, "may_refuse": may_refuse, "req": req}


def single_metric_cases():
    out = []
    for vname, v in VALUES:
        for name, labels, ok in (
                ("simple metric", basic("up"), True),
                ("simple metric with multiple labels", job_instance(), True),
                ("simple metric with newlines",
                 {"__name__": "up", "job": "test\njob\n", "instance": "localhost:9090"}, True),
                ("simple metric with dots", {"__name__": "resource.cpu.usage",
                                             "job.name": "testjob",
                                             "instance.name": "localhost:9090"}, True),
                ("simple metric with spaces", {"__name__": "resource cpu usage",
                                               "job name": "testjob",
                                               "instance name": "localhost:9090"}, True),
                ("simple metric without name label",
                 {"job": "testjob", "instance": "localhost:9090"}, False),
                ("empty metric", {}, False)):
            out.append(case("TestSingleMetric/%s/%s" % (vname, name), ok, samples=1,
                            samples_=[S(labels, v)]))
        insts = ["localhost:909%d" % i for i in range(4)]
        out.append(case("TestMultipleMetrics/%s/multiple metrics" % vname, True, samples=4,
                        samples_=[S({"__name__": "up", "job": "testjob", "instance": i}, v)
                                  for i in insts]))
        out.append(case("TestMultipleMetrics/%s/multiple metrics, without name label" % vname,
                        False, samples_=[S({"job": "testjob", "instance": i}, v)
                                         for i in insts]))
        out.append(case("TestMultipleMetrics/%s/multiple metrics, 1 without name label" % vname,
                        False, samples=3,
                        samples_=[S({"job": "testjob", "instance": insts[0]}, v)] +
                        [S({"__name__": "up", "job": "testjob", "instance": i}, v)
                         for i in insts[1:]]))
    return out


def exemplar_cases():
    out = []
    for name, labels, xl, v in (
            ("basic_exemplar", {"__name__": "http_requests_total", "job": "api"},
             trace("abc123def456"), 1.0),
            ("exemplar_with_span_id", {"__name__": "request_duration_seconds", "method": "GET"},
             {"trace_id": "xyz789", "span_id": "span123"}, 0.125),
            ("exemplar_without_trace_id", {"__name__": "cpu_usage", "instance": "host1"},
             {"user_id": "user123"}, 0.85),
            ("exemplar_with_multiple_labels", {"__name__": "request_latency", "service": "auth"},
             {"trace_id": "trace456", "user": "admin", "endpoint": "/login"}, 0.05),
            ("exemplar_no_labels", basic("simple_counter"), {}, 1.0),
            ("exemplar_with_special_chars", basic("test_metric"),
             trace("trace-with-dashes_and_underscores.123"), 42.0),
            ("exemplar_with_unicode", {"__name__": "unicode_test", "region": "\U0001f30d"},
             trace("unicode_trace_\u6d4b\u8bd5"), 100.0)):
        out.append(case("TestExemplars/" + name, True, samples=1, exemplars=1,
                        samples_=[S(labels, v)], exemplars_=[(labels, xl, v, 0)]))
    api = {"__name__": "http_requests_total", "job": "api"}
    out.append(case("TestExemplarWithCreatedTimestamp", True, samples=1, exemplars=1,
                    samples_=[S(api, 250.0, 0, -7200000)],
                    exemplars_=[(api, {"trace_id": "abc123", "span_id": "span456"}, 250.0, 0)]))
    get = {"__name__": "request_duration", "method": "GET"}
    post = {"__name__": "request_duration", "method": "POST"}
    pay = {"__name__": "error_count", "service": "payment"}
    out.append(case("TestMultipleExemplars", True, samples=3, exemplars=3,
                    samples_=[S(get, 0.1), S(post, 0.25), S(pay, 1.0)],
                    exemplars_=[(get, {"trace_id": "trace1", "span_id": "span1"}, 0.1, 0),
                                (post, {"trace_id": "trace2", "span_id": "span2"}, 0.25, 0),
                                (pay, {"trace_id": "trace3", "user": "test_user"}, 1.0, 0)]))
    lh = basic("latency_hist")
    out.append(case("TestExemplarTimestamps", True, samples=3, exemplars=3,
                    samples_=[S(lh, 0.05, -3600000), S(lh, 0.15, -60000), S(lh, 0.08)],
                    exemplars_=[(lh, trace("old_trace"), 0.05, -3600000),
                                (lh, trace("recent_trace"), 0.15, -60000),
                                (lh, trace("current_trace"), 0.08, 0)]))
    for name, labels, ok in (("exemplar_without_name_label", {"job": "test"}, False),
                             ("exemplar_with_empty_name", {"__name__": ""}, False),
                             ("exemplar_with_valid_name", basic("valid_metric"), True)):
        out.append(case("TestExemplarValidation/" + name, ok, samples=1, exemplars=1,
                        samples_=[S(labels)], exemplars_=[(labels, trace("test_trace"), 1.0, 0)]))
    for name, v in (("zero_value", 0.0), ("negative_value", -123.456), ("large_value", 1e10),
                    ("small_value", 1e-10), ("nan_value", NORMAL_NAN), ("inf_value", math.inf),
                    ("-inf_value", -math.inf)):
        out.append(case("TestExemplarSpecialValues/" + name, True, samples=1, exemplars=1,
                        samples_=[S(basic("test_metric"), v)],
                        exemplars_=[(basic("test_metric"), trace("special_value_trace"), v, 0)]))
    return out


def histogram_cases():
    out = []
    for name, labels, pos, neg, zero, custom, ok, bad in (
            ("basic_histogram", basic("test_histogram"), 1, 1, 1, 0, True, False),
            ("custom_buckets_histogram", basic("test_histogram"), 1, 0, 0, 1, True, False),
            ("positive_only_histogram", {"__name__": "test_histogram", "job": "test"},
             1, 0, 1, 0, True, False),
            ("negative_only_histogram", {"__name__": "test_histogram", "instance": "localhost"},
             0, 1, 0, 0, True, False),
            ("minimal_histogram", basic("minimal_hist"), 0, 0, 1, 0, True, False),
            ("bad_count_histogram", basic("minimal_hist"), 1, 0, 0, 0, False, True)):
        out.append(case("TestHistograms/" + name, ok, histograms=1,
                        histograms_=[H(labels, suite_histogram(1.0, pos, neg, zero, custom, bad))]))
    rd = {"__name__": "request_duration_seconds", "job": "api"}
    out.append(case("TestHistogramWithCreatedTimestamp", True, histograms=1,
                    histograms_=[H(rd, suite_histogram(1.5, 1, 1, 1, 0, 0), -1800000)]))
    out.append(case("TestMultipleHistograms", True, histograms=2, histograms_=[
        H({"__name__": "hist1", "job": "test"}, suite_histogram(10.5, 1, 0, 1, 0, 0)),
        H({"__name__": "hist2", "job": "test"}, suite_histogram(5.2, 0, 1, 0, 0, 0))]))
    out.append(case("TestEmptyHistogram", True, histograms=1,
                    histograms_=[H(basic("empty_hist"), suite_histogram(0.0, 0, 0, 0, 0, 0))]))
    out.append(case("TestHistogramWithMetadata", True, histograms=1,
                    histograms_=[H(rd, suite_histogram(2.5, 1, 1, 1, 0, 0))],
                    metadata_=[(basic("request_duration_seconds"), HISTOGRAM,
                                "HTTP request duration in seconds", "seconds")]))
    hg = {"__name__": "http_request_duration_seconds", "method": "GET"}
    out.append(case("TestHistogramWithExemplar", True, histograms=1, exemplars=1,
                    histograms_=[H(hg, suite_histogram(1.23, 1, 0, 1, 0, 0))],
                    exemplars_=[(hg, {"trace_id": "abc123def456", "span_id": "span789"},
                                 1.23, 0)]))
    up = {"__name__": "response_size_bytes", "service": "upload"}
    out.append(case("TestHistogramWithMetadataAndExemplar", True, histograms=1, exemplars=1,
                    histograms_=[H(up, suite_histogram(10485760, 1, 1, 1, 0, 0))],
                    metadata_=[(basic("response_size_bytes"), HISTOGRAM,
                                "HTTP response size in bytes", "bytes")],
                    exemplars_=[(up, {"trace_id": "large_upload_trace", "user_id": "user456"},
                                 10485760, 0)]))
    out.append(case("TestMultipleHistogramsWithMetadata", True, histograms=2, histograms_=[
        H({"__name__": "cpu_usage_histogram", "instance": "server1"},
          suite_histogram(0.75, 1, 0, 1, 0, 0)),
        H({"__name__": "memory_usage_histogram", "instance": "server1"},
          suite_histogram(8589934592, 1, 1, 0, 0, 0))], metadata_=[
        (basic("cpu_usage_histogram"), HISTOGRAM, "CPU usage distribution", "ratio"),
        (basic("memory_usage_histogram"), HISTOGRAM, "Memory usage distribution", "bytes")]))
    return out


def combined_cases():
    out = []
    hp = {"__name__": "http_requests_total", "job": "api", "method": "POST"}
    out.append(case("TestSamplesWithMetadataAndExemplars", True, samples=1, exemplars=1,
                    samples_=[S(hp)],
                    metadata_=[(hp, COUNTER, "Total number of HTTP requests", "requests")],
                    exemplars_=[(hp, {"trace_id": "request_trace_123", "user_id": "user789"},
                                 1.0, 0)]))
    ra = {"__name__": "request_duration_seconds", "service": "auth"}
    out.append(case("TestHistogramsWithMetadataAndExemplars", True, histograms=1, exemplars=1,
                    histograms_=[H(ra, suite_histogram(0.456, 1, 1, 1, 0, 0))],
                    metadata_=[(basic("request_duration_seconds"), HISTOGRAM,
                                "HTTP request duration distribution", "seconds")],
                    exemplars_=[(ra, {"trace_id": "slow_request_trace", "endpoint": "/login"},
                                 0.456, 0)]))
    cpu = {"__name__": "cpu_usage", "instance": "server1"}
    out.append(case("TestComplexSamplesRequest", True, samples=2, exemplars=1,
                    samples_=[S(cpu, 0.85),
                              S({"__name__": "memory_usage", "instance": "server1"}, 8589934592)],
                    metadata_=[(basic("cpu_usage"), GAUGE, "CPU usage ratio", "ratio"),
                               (basic("memory_usage"), GAUGE, "Memory usage in bytes", "bytes")],
                    exemplars_=[(cpu, {"trace_id": "high_cpu_trace", "process": "worker"},
                                 0.85, 0)]))
    rt = {"__name__": "response_time_hist", "endpoint": "/api/v1/users"}
    out.append(case("TestComplexHistogramsRequest", True, histograms=2, exemplars=1,
                    histograms_=[H(rt, suite_histogram(0.125, 1, 0, 1, 0, 0)),
                                 H({"__name__": "request_size_hist", "method": "POST"},
                                   suite_histogram(1024, 0, 1, 1, 0, 0))],
                    metadata_=[(basic("response_time_hist"), HISTOGRAM,
                                "Response time distribution", "seconds"),
                               (basic("request_size_hist"), HISTOGRAM,
                                "Request size distribution", "bytes")],
                    exemplars_=[(rt, {"trace_id": "fast_response", "user": "premium"}, 0.125,
                                 0)]))
    cs = {"__name__": "http_requests_total", "status": "200"}
    out.append(case("TestMultipleMetricFamiliesSamples", True, samples=2, exemplars=1,
                    samples_=[S(cs, 1000),
                              S({"__name__": "temperature_celsius", "location": "datacenter1"},
                                23.5)],
                    metadata_=[(basic("http_requests_total"), COUNTER, "Total HTTP requests",
                                "requests"),
                               (basic("temperature_celsius"), GAUGE, "Temperature in Celsius",
                                "celsius")],
                    exemplars_=[(cs, trace("successful_request"), 1000, 0)]))
    hm = {"__name__": "request_duration_seconds", "handler": "/metrics"}
    out.append(case("TestMultipleMetricFamiliesHistograms", True, histograms=1, exemplars=1,
                    histograms_=[H(hm, suite_histogram(0.003, 1, 0, 1, 0, 0))],
                    metadata_=[(basic("request_duration_seconds"), HISTOGRAM,
                                "Request duration in seconds", "seconds")],
                    exemplars_=[(hm, {"trace_id": "metrics_scrape", "scraper": "prometheus"},
                                 0.003, 0)]))
    out.append(case("TestEdgeCaseCombinations/metadata_without_data", True, unsafe=True,
                    metadata_=[(basic("orphan_metric"), COUNTER, "Orphaned metric metadata",
                                "count")]))
    # the suite accepts 2xx with the exemplar written, or a 4xx; meltp cannot write an
    # exemplar without a point to carry it and answers 400 (test_exemplars_without_data)
    out.append(case("TestEdgeCaseCombinations/exemplars_without_data", True, exemplars=1,
                    unsafe=True, may_refuse=True,
                    exemplars_=[(basic("orphan_metric"), trace("orphan_trace"), 42.0, 0)]))
    out.append(case("TestEdgeCaseCombinations/mixed_timestamp_data", True, samples=2,
                    exemplars=1,
                    samples_=[S(basic("old_metric"), 1.0, -3600000), S(basic("new_metric"), 2.0)],
                    exemplars_=[(basic("old_metric"), trace("old_trace"), 1.0, -1800000)]))
    many_s, many_md, many_x = [], [], []
    many_h, many_hmd, many_hx = [], [], []
    for i in range(50):
        lb = {"__name__": "counter_metric_%d" % i, "series": "series_%d" % i}
        many_s.append(S(lb, float(i * 100)))
        many_md.append((basic(lb["__name__"]), COUNTER, "Counter metric number %d" % i, "count"))
        many_x.append((lb, trace("trace_%d" % i), float(i * 100), 0))
        hl = {"__name__": "histogram_metric_%d" % i, "bucket": "bucket_%d" % i}
        many_h.append(H(hl, suite_histogram(i / 10.0, 1, i % 2 == 0, 1, 0, 0)))
        many_hmd.append((basic(hl["__name__"]), HISTOGRAM, "Histogram metric number %d" % i,
                         "seconds"))
        many_hx.append((hl, trace("trace_%d" % i), i / 10.0, 0))
    out.append(case("TestManySamples", True, samples=50, exemplars=50, samples_=many_s,
                    metadata_=many_md, exemplars_=many_x))
    out.append(case("TestManyHistograms", True, histograms=50, exemplars=50, histograms_=many_h,
                    metadata_=many_hmd, exemplars_=many_hx))
    sc = {"__name__": "test_metric", "job": "test-job_with.special@chars",
          "instance": "localhost:9090", "environment": "test\U0001f680"}
    out.append(case("TestSpecialCharactersCombined", True, samples=1, exemplars=1,
                    samples_=[S(sc, 42.0)],
                    metadata_=[(basic("test_metric"), GAUGE, "Test metric with special "
                                "characters: \u00e4\u00f6\u00fc, newlines\nand \"quotes\"",
                                "special/units")],
                    exemplars_=[(sc, {"trace_id": "special_trace_\u00e4\u00f6\u00fc-123",
                                      "span_id": "span_with.dots-and_underscores"}, 42.0, 0)]))
    cl = {"__name__": "custom_latency_hist", "version": "v2"}
    out.append(case("TestCustomBucketsHistogramWithExemplar", True, histograms=1, exemplars=1,
                    histograms_=[H(cl, suite_histogram(0.05, 0, 0, 0, 1, 0))],
                    exemplars_=[(cl, {"trace_id": "custom_bucket_trace", "bucket": "0.1"},
                                 0.05, 0)]))
    return out


def metadata_cases():
    out = []
    for name, labels, mtype, help_, unit in (
            ("counter_metadata", basic("http_requests_total"), COUNTER,
             "Total number of HTTP requests", "requests"),
            ("gauge_metadata", basic("cpu_usage_percent"), GAUGE,
             "Current CPU usage percentage", "percent"),
            ("histogram_metadata", basic("request_duration_seconds"), HISTOGRAM,
             "Request duration in seconds", "seconds"),
            ("metadata_no_help_no_unit", basic("simple_counter"), COUNTER, "", ""),
            ("metadata_with_special_chars", {"__name__": "test_metric", "job": "test"}, GAUGE,
             "Test metric with\nnewlines and \"quotes\"", "bytes/sec"),
            ("unspecified_metadata_type", basic("unknown_metric"), 0, "Unknown metric type", ""),
            ("info_metadata_type", basic("build_info"), INFO, "Build information", ""),
            ("stateset_metadata_type", basic("node_state"), STATESET, "Node state information",
             ""),
            ("summary_metadata_type", basic("request_latency_summary"), SUMMARY,
             "Request latency summary", "seconds"),
            ("gauge_histogram_metadata_type", basic("temperature_histogram"), GAUGEHISTOGRAM,
             "Temperature distribution gauge histogram", "celsius")):
        md = [(labels, mtype, help_, unit)]
        if mtype == HISTOGRAM:
            out.append(case("TestMetadata/" + name, True, histograms=1, metadata_=md,
                            histograms_=[H(labels, suite_histogram(1.0, 1, 1, 1, 0, 0))]))
        else:
            out.append(case("TestMetadata/" + name, True, samples=1, metadata_=md,
                            samples_=[S(labels)]))
    api = {"__name__": "http_requests_total", "job": "api"}
    out.append(case("TestCounterMetadataWithCreatedTimestamp", True, samples=1,
                    samples_=[S(api, 150.0, 0, -3600000)],
                    metadata_=[(basic("http_requests_total"), COUNTER, "Total HTTP requests",
                                "requests")]))
    out.append(case("TestMetadataWithSamples", True, samples=1,
                    samples_=[S({"__name__": "http_requests_total", "job": "test"}, 42.0)],
                    metadata_=[(basic("http_requests_total"), COUNTER, "Total HTTP requests",
                                "requests")]))
    disk = {"__name__": "disk_usage", "device": "sda1"}
    out.append(case("TestMultipleMetadata", True, samples=3,
                    samples_=[S(basic("cpu_usage"), 85.5), S(basic("memory_usage"), 4096000000),
                              S(disk, 75.2)],
                    metadata_=[(basic("cpu_usage"), GAUGE, "CPU usage percentage", "percent"),
                               (basic("memory_usage"), GAUGE, "Memory usage in bytes", "bytes"),
                               (disk, GAUGE, "Disk usage percentage", "percent")]))
    cx = {"__name__": "http_request_duration_seconds", "job": "api-server",
          "instance": "localhost:8080", "method": "GET", "status": "200",
          "endpoint": "/api/v1/users"}
    out.append(case("TestMetadataWithComplexLabels", True, histograms=1,
                    histograms_=[H(cx, suite_histogram(0.250, 1, 1, 1, 0, 0))],
                    metadata_=[(cx, HISTOGRAM, "HTTP request duration in seconds", "seconds")]))
    for name, labels, mtype, ok, unsafe in (
            ("metadata_without_name_label", {"job": "test"}, COUNTER, False, False),
            ("metadata_with_empty_name", {"__name__": ""}, GAUGE, False, True),
            ("metadata_with_valid_name", basic("valid_metric_name"), COUNTER, True, False)):
        out.append(case("TestMetadataValidation/" + name, ok, samples=1, unsafe=unsafe,
                        samples_=[S(labels)], metadata_=[(labels, mtype, "Test help", "unit")]))
    return out


def corrupt(body):
    return b"0" + body[1:]


def request_cases():
    good = rw2_body(samples=[S(basic("up"))])
    z = rx.snappy_encode(good)
    out = []
    for ct in ("application/json", "image/png"):
        out.append(case("TestBadContentTypes/" + ct.replace("/", "_"), False, exact=415,
                        raw=(corrupt(z), ct, "snappy", H2)))
    for enc in ("gzip", "deflate"):
        out.append(case("TestBadContentEncodings/" + enc, False, exact=415,
                        raw=(corrupt(z), V2, enc, H2)))
    out.append(case("TestCorruptRequestBody", False, raw=(corrupt(z), V2, "snappy", H2)))
    rw1 = rw1_body(samples=[(job_instance(), 1.0), (basic("http_requests_total"), 100.0)])
    out.append(case("TestRW1BasicCompatibility", True, raw=(rx.snappy_encode(rw1), V1, "snappy",
                                                            None)))
    bad = bytearray(rx.snappy_encode(rw1_body(samples=[(basic("error_test"), 1.0)])))
    bad[0] = 0xFF
    out.append(case("TestRW1ErrorHandling", False, raw=(bytes(bad), V1, "snappy", None)))
    return out


def all_cases():
    return (single_metric_cases() + exemplar_cases() + histogram_cases() + combined_cases() +
            metadata_cases() + request_cases())


CFG = rx.CFG


def send(m, c):
    if c["raw"]:
        body, ctype, enc, hdrs = c["raw"]
        return m.post(PATH, body, ctype, enc, headers=hdrs)
    req = {k.rstrip("_"): v for k, v in c["req"].items()}
    return m.post(PATH, rx.snappy_encode(rw2_body(**req)), V2, "snappy", headers=H2)


def run_case(m, c):
    st, hdrs, resp = send(m, c)
    s, h, x = c["want"]
    bad = validate_response(st, hdrs, c["success"], s, h, x, c["exact"], c["may_refuse"])
    return st, resp, bad


# ---- tests -------------------------------------------------------------------------------------

def test_prw_compliance_suite():
    """Every ported case of the suite against one receiver: all compliant."""
    m = Meltp(CFG)
    cases = all_cases()
    assert len({c["name"] for c in cases}) == len(cases) > 100
    failures = []
    for c in cases:
        st, resp, bad = run_case(m, c)
        if bad:
            failures.append("%s: %s (%d %r)" % (c["name"], "; ".join(bad), st, resp[:160]))
    assert not failures, "%d of %d cases fail:\n  %s" % (len(failures), len(cases),
                                                         "\n  ".join(failures))


def case_named(name):
    return next(c for c in all_cases() if c["name"] == name)


def test_prw_compliance_exemplars_without_data():
    """RW 2.0: an exemplar whose series has no sample or histogram in the request cannot be
    written (an OTLP exemplar needs a point): 400 with the reason and 0 written, not a 204
    that drops it. The same exemplar beside its sample is written."""
    m = Meltp(CFG)
    st, hdrs, resp = send(m, case_named("TestEdgeCaseCombinations/exemplars_without_data"))
    assert st == 400, (st, resp)
    assert b"1 exemplar(s) but no sample or histogram of this series" in resp, resp
    assert written(hdrs, "exemplars") == 0 and written(hdrs, "samples") == 0, hdrs
    assert m.metric("meltp_receiver_refused_requests_total", reason="invalid_data") == 1
    # beside a sample of another series it still fails the whole request
    body = rw2_body(samples=[S(basic("other"))],
                    exemplars=[(basic("orphan_metric"), trace("t"), 1.0, 0)], unsafe=True)
    st, hdrs, resp = m.post(PATH, rx.snappy_encode(body), V2, "snappy", headers=H2)
    assert st == 400 and b"orphan_metric" in resp, (st, resp)
    # a summary quantile has no OTLP exemplars either
    q = {"__name__": "rpc_seconds", "quantile": "0.5"}
    body = rw2_body(samples=[S(q, 0.2)], exemplars=[(q, trace("t"), 0.2, 0)])
    st, hdrs, resp = m.post(PATH, rx.snappy_encode(body), V2, "snappy", headers=H2)
    assert st == 400 and b"on a summary" in resp, (st, resp)
    # RW 1.0 senders queue exemplars apart from their samples: 1.0 keeps dropping them
    st, _, resp = m.post(PATH, rx.snappy_encode(rw1_body(
        exemplars=[(basic("orphan_metric"), trace("t"), 1.0)])), V1, "snappy")
    assert st == 204, (st, resp)
    # ... counted, by reason (issue 13: they used to leave uncounted)
    assert m.metric("meltp_receiver_dropped_exemplars_total", reason="no_sample") == 1
    st, _, resp = m.post(PATH, rx.snappy_encode(rw1_body(
        samples=[(q, 0.2), ({"__name__": "rpc_seconds_count"}, 3.0)],
        exemplars=[(q, trace("t"), 0.2), (q, trace("u"), 0.3)])), V1, "snappy")
    assert st == 204, (st, resp)
    assert m.metric("meltp_receiver_dropped_exemplars_total", reason="summary") == 2
    assert m.metric("meltp_receiver_dropped_exemplars_total", reason="no_sample") == 1


def bad_count_bodies():
    """(what, RW version, body): integer and float histograms whose count disagrees with
    their buckets, in both versions."""
    lb = {"__name__": "minimal_hist"}
    bad_int = suite_histogram(1.0, 1, 0, 0, 0, True)
    bad_float = {"sum": 1.0, "count_float": 99.0, "zero_count_float": 1.0,
                 "pspans": [(0, 2)], "pcounts": [1.5, 2.5]}
    bad_nhcb = suite_histogram(1.0, 0, 0, 0, 1, False)
    bad_nhcb["count_int"] = 31
    return [("integer", 2, rw2_body(histograms=[H(lb, bad_int)]), "count 99 but its buckets hold 23"),
            ("float", 2, rw2_body(histograms=[H(lb, bad_float)]), "count 99 but its buckets hold 5"),
            ("custom buckets", 2, rw2_body(histograms=[H(lb, bad_nhcb)]),
             "count 31 but its buckets hold 30"),
            ("integer", 1, rw1_body(histograms=[(lb, bad_int)]), "count 99 but its buckets hold 23"),
            ("float", 1, rw1_body(histograms=[(lb, bad_float)]), "count 99 but its buckets hold 5")]


def test_prw_compliance_bad_count_histogram():
    """A native histogram whose count disagrees with zero count + bucket counts is refused
    (400, the reason, nothing written or exported), integer and float, RW 1.0 and 2.0; with a
    NaN sum the count may exceed the buckets (NaN observations land in none)."""
    m = Meltp(CFG)
    for what, ver, body, reason in bad_count_bodies():
        st, hdrs, resp = m.post(PATH, rx.snappy_encode(body), V2 if ver == 2 else V1, "snappy",
                                headers=H2 if ver == 2 else None)
        assert st == 400, (what, ver, st, resp)
        assert reason.encode() in resp and b"native histogram" in resp, (what, ver, resp)
        assert written(hdrs, "histograms") == 0, hdrs
    nan_sum = suite_histogram(float("nan"), 1, 0, 0, 0, True)
    st, hdrs, resp = m.post(PATH, rx.snappy_encode(rw2_body(histograms=[H(basic("nan_h"),
                                                                          nan_sum)])),
                            V2, "snappy", headers=H2)
    assert st == 204 and written(hdrs, "histograms") == 1, (st, resp)
    # a consistent one is exported with its count; no bad one ever was
    st, _, resp = send(m, case_named("TestHistograms/basic_histogram"))
    assert st == 204, (st, resp)
    wait_until(lambda: len(rx.all_points(m)) >= 2, 10, what="exported histograms")
    time.sleep(0.2)  # an absence: no bad one may follow, and no wait can show none does
    names = set()
    for req in m.file_lines("out.jsonl"):
        for rm in req["resourceMetrics"]:
            for sm in rm["scopeMetrics"]:
                names |= {x["name"] for x in sm["metrics"]}
    assert names == {"nan_h", "test_histogram"}, names


def test_prw_compliance_unsorted_labels():
    """Label names out of order are sorted and accepted (as Prometheus does), counted in
    meltp_receiver_prw_unsorted_labels_total, on RW 1.0 and 2.0; duplicates stay a 400."""
    m = Meltp(CFG)
    unsorted = {"__name__": "up", "job": "testjob", "instance": "localhost:9090"}
    st, hdrs, resp = m.post(PATH, rx.snappy_encode(rw2_body(samples=[S(unsorted)])), V2,
                            "snappy", headers=H2)
    assert st == 204 and written(hdrs, "samples") == 1, (st, resp)
    st, _, resp = m.post(PATH, rx.snappy_encode(rw1_body(samples=[(unsorted, 1.0)])), V1,
                         "snappy")
    assert st == 204, (st, resp)
    assert m.metric("meltp_receiver_prw_unsorted_labels_total", receiver="prometheusremotewrite") == 2
    wait_until(lambda: len(rx.all_points(m)) >= 2, 10, what="exported points")
    dup = rx.rw1_series([("b", "1"), ("__name__", "x"), ("b", "2")], [(1, 1000)])
    rx.check(m, rx.snappy_encode(dup), V1, "snappy", 400, "duplicate label name", "invalid_data")
    assert m.metric("meltp_receiver_prw_unsorted_labels_total") == 2


def test_prw_compliance_unsorted_labels_passthrough():
    """The pass-through path: a request with unsorted labels is not forwarded as it came (the
    sink, a strict RW 1.0 receiver, would refuse it): it is converted, and what arrives carries
    the labels sorted. Sorted requests still pass through; duplicates stay a 400."""
    sink = FakeRemoteWrite()
    m = relay(sink.url)
    assert passes_through(m)
    body = rw1_body(samples=[({"b": "1", "__name__": "x", "a": "2"}, 7.0),
                             ({"__name__": "y"}, 8.0)])
    st, _, resp = m.post(PATH, rx.snappy_encode(body), V1, "snappy")
    assert st == 204, (st, resp)
    assert m.metric("meltp_receiver_prw_unsorted_labels_total") == 1
    wait_until(lambda: sink.samples() >= 2, 10, what="samples at the sink")
    time.sleep(0.2)  # an absence: no error or extra request may follow; no wait can show none
    assert not sink.errors, sink.errors[:3]
    got = {dict(lb)["__name__"]: [k for k, _ in lb] for lb, _ in sink.series()}
    assert got["x"] == ["__name__", "a", "b"], got
    dup = rx.rw1_series([("b", "1"), ("__name__", "x"), ("b", "2")], [(1, 1000)])
    rx.check(m, rx.snappy_encode(dup), V1, "snappy", 400, "duplicate label name", "invalid_data")
    for what, ver, body, reason in bad_count_bodies():
        if ver == 1:
            rx.check(m, rx.snappy_encode(body), V1, "snappy", 400, reason, "invalid_data")
