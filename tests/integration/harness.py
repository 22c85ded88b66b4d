"""Helpers for integration tests: start build/meltp on free loopback ports with a config,
talk HTTP with urllib, a fake OTLP/HTTP backend, and an independent protobuf wire decoder
(written from the protobuf encoding rules, sharing nothing with meltp's C code) so that tests
can check what meltp wrote against what the client sent."""
import gzip
import http.server
import json
import os
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("MELTP_BUILD", "build")
MELTP = os.path.join(ROOT, BUILD, "meltp")
FIXTURES = os.environ.get("MELTP_FIXTURES", os.path.join(ROOT, "tests", "fixtures"))

_procs = []
_servers = []


def cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    _procs.clear()
    for s in _servers:
        s.shutdown()
        s.server_close()
    _servers.clear()


# Ports for the processes a test starts. Each pytest-xdist worker takes ports from its own
# slice of 20000-32767 (below Linux's ephemeral range, so no outgoing connection holds one),
# walking up from a random start: two workers never hand out the same port, and the window in
# which a port is free but not yet bound by the process that will use it cannot be raced by
# another worker of the same run.
_PORT_LO, _PORT_HI = 20000, 32768


def _port_slice():
    w = os.environ.get("PYTEST_XDIST_WORKER", "")
    n = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    i = int(w[2:]) if w.startswith("gw") and w[2:].isdigit() else 0
    size = (_PORT_HI - _PORT_LO) // max(n, 1)
    lo = _PORT_LO + i * size
    return lo, lo + size


_port_next = None


def free_port():
    global _port_next
    lo, hi = _port_slice()
    if _port_next is None:
        _port_next = lo + (os.getpid() * 7919) % (hi - lo)
    for _ in range(hi - lo):
        port = _port_next
        _port_next = lo + (_port_next + 1 - lo) % (hi - lo)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        return port
    raise AssertionError("no free loopback port in %d-%d" % (lo, hi))


def wait_until(cond, timeout=10.0, step=0.05, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out waiting for " + what)


class Meltp:
    """A running build/meltp with its own temp dir, ports and config."""

    def __init__(self, config, extra_env=None):
        self.dir = tempfile.mkdtemp(prefix="meltp-test-")
        self.otlp = free_port()
        self.health = free_port()
        self.metrics = free_port()
        text = config.format(otlp=self.otlp, health=self.health, metrics=self.metrics,
                             dir=self.dir)
        self.config_path = os.path.join(self.dir, "config.yaml")
        with open(self.config_path, "w") as f:
            f.write(text)
        self.log_path = os.path.join(self.dir, "meltp.log")
        env = dict(os.environ)
        env.update(extra_env or {})
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([MELTP, "run", "--config", self.config_path],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        _procs.append(self.proc)
        wait_until(self._up, 10, what="meltp to listen (log: %s)" % self.log_path)

    def _up(self):
        if self.proc.poll() is not None:
            raise AssertionError("meltp exited with %s: %s" % (self.proc.returncode, self.logtext()))
        try:
            socket.create_connection(("127.0.0.1", self.otlp), timeout=0.2).close()
            return True
        except OSError:
            return False

    def logtext(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.otlp, path)

    def post(self, path, body, ctype="application/x-protobuf", encoding=None, headers=None,
             method="POST"):
        return http_request(self.url(path), body, ctype, encoding, headers, method)

    def metric(self, name, **labels):
        """Sum of every sample of `name` whose labels include `labels`."""
        _, _, text = http_request("http://127.0.0.1:%d/metrics" % self.metrics, None,
                                  method="GET")
        total = 0.0
        for line in text.decode().splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            series, _, value = line.rpartition(" ")
            if series.split("{")[0] != name:
                continue
            if all('%s="%s"' % (k, v) in series for k, v in labels.items()):
                total += float(value)
        return total

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=20):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def file_lines(self, name):
        path = os.path.join(self.dir, name)
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]


def http_request(url, body=None, ctype=None, encoding=None, headers=None, method="POST"):
    """Returns (status, headers dict lower-case, body bytes); never raises on HTTP errors."""
    req = urllib.request.Request(url, data=body, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    if encoding:
        req.add_header("Content-Encoding", encoding)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def fixture(rel):
    with open(os.path.join(FIXTURES, rel), "rb") as f:
        return f.read()


def manifest():
    with open(os.path.join(FIXTURES, "otlp-js", "MANIFEST.json")) as f:
        return {e["file"]: e for e in json.load(f)["files"]}


# ---- independent protobuf wire decoder --------------------------------------------------

def _varint(b, i):
    r = shift = 0
    while True:
        if i >= len(b):
            raise ValueError("truncated varint")
        c = b[i]
        i += 1
        r |= (c & 0x7F) << shift
        if not c & 0x80:
            return r, i
        shift += 7


def pb_fields(b):
    """Decodes one message into a list of (field_number, wire_type, value) in wire order.
    LEN values are bytes, I64/I32 raw little-endian ints."""
    out = []
    i = 0
    while i < len(b):
        tag, i = _varint(b, i)
        fn, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 1:
            v = struct.unpack_from("<Q", b, i)[0]
            i += 8
        elif wt == 5:
            v = struct.unpack_from("<I", b, i)[0]
            i += 4
        elif wt == 2:
            n, i = _varint(b, i)
            v = bytes(b[i:i + n])
            if len(v) != n:
                raise ValueError("truncated bytes")
            i += n
        else:
            raise ValueError("bad wire type %d" % wt)
        out.append((fn, wt, v))
    return out


def pb_get(b, fn):
    return [v for f, _, v in pb_fields(b) if f == fn]


def pb_anyvalue(b):
    for f, wt, v in pb_fields(b):
        if f == 1:
            return v.decode()
        if f == 2:
            return bool(v)
        if f == 3:
            return v - (1 << 64) if v >= 1 << 63 else v
        if f == 4:
            return struct.unpack("<d", struct.pack("<Q", v))[0]
        if f == 5:
            return [pb_anyvalue(x) for x in pb_get(v, 1)]
        if f == 6:
            return {k: val for k, val in (pb_kv(x) for x in pb_get(v, 1))}
        if f == 7:
            return v
    return None


def pb_kv(b):
    key = b"".join(pb_get(b, 1)).decode()
    vals = pb_get(b, 2)
    return key, pb_anyvalue(vals[-1]) if vals else None


def pb_attrs(b, fn):
    return {k: v for k, v in (pb_kv(x) for x in pb_get(b, fn))}


def pb_traces(body):
    """ExportTraceServiceRequest -> list of span dicts (with resource attrs)."""
    spans = []
    for rs in pb_get(body, 1):
        res = pb_get(rs, 1)
        rattrs = pb_attrs(res[0], 1) if res else {}
        for ss in pb_get(rs, 2):
            for sp in pb_get(ss, 2):
                spans.append({
                    "traceId": b"".join(pb_get(sp, 1)).hex(),
                    "spanId": b"".join(pb_get(sp, 2)).hex(),
                    "name": b"".join(pb_get(sp, 5)).decode(),
                    "attributes": pb_attrs(sp, 9),
                    "resource": rattrs,
                })
    return spans


def pb_logs(body):
    recs = []
    for rl in pb_get(body, 1):
        res = pb_get(rl, 1)
        rattrs = pb_attrs(res[0], 1) if res else {}
        for sl in pb_get(rl, 2):
            for lr in pb_get(sl, 2):
                bodyv = pb_get(lr, 5)
                recs.append({
                    "traceId": b"".join(pb_get(lr, 9)).hex(),
                    "spanId": b"".join(pb_get(lr, 10)).hex(),
                    "body": pb_anyvalue(bodyv[0]) if bodyv else None,
                    "attributes": pb_attrs(lr, 6),
                    "resource": rattrs,
                })
    return recs


def pb_metric_points(body):
    """-> list of (metric name, kind field number, point attributes)"""
    pts = []
    for rm in pb_get(body, 1):
        for sm in pb_get(rm, 2):
            for m in pb_get(sm, 2):
                name = b"".join(pb_get(m, 1)).decode()
                for kind in (5, 7, 9, 10, 11):
                    for data in pb_get(m, kind):
                        attr_fn = {5: 7, 7: 7, 9: 9, 10: 1, 11: 7}[kind]
                        for dp in pb_get(data, 1):
                            pts.append((name, kind, pb_attrs(dp, attr_fn)))
    return pts


# ---- OTLP/JSON readers (what meltp's file exporter writes) ------------------------------

def j_anyvalue(v):
    if v is None:
        return None
    if "stringValue" in v:
        return v["stringValue"]
    if "boolValue" in v:
        return v["boolValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "arrayValue" in v:
        return [j_anyvalue(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return {kv["key"]: j_anyvalue(kv.get("value")) for kv in v["kvlistValue"].get("values", [])}
    if "bytesValue" in v:
        import base64
        return base64.b64decode(v["bytesValue"])
    return None


def j_attrs(lst):
    return {kv["key"]: j_anyvalue(kv.get("value")) for kv in lst or []}


def j_traces(req):
    spans = []
    for rs in req.get("resourceSpans", []):
        rattrs = j_attrs(rs.get("resource", {}).get("attributes"))
        for ss in rs.get("scopeSpans", []):
            for sp in ss.get("spans", []):
                spans.append({"traceId": sp.get("traceId", ""), "spanId": sp.get("spanId", ""),
                              "name": sp.get("name", ""), "attributes": j_attrs(sp.get("attributes")),
                              "resource": rattrs})
    return spans


def j_logs(req):
    recs = []
    for rl in req.get("resourceLogs", []):
        rattrs = j_attrs(rl.get("resource", {}).get("attributes"))
        for sl in rl.get("scopeLogs", []):
            for lr in sl.get("logRecords", []):
                recs.append({"traceId": lr.get("traceId", ""), "spanId": lr.get("spanId", ""),
                             "body": j_anyvalue(lr.get("body")), "attributes": j_attrs(lr.get("attributes")),
                             "resource": rattrs})
    return recs


def j_metric_points(req):
    pts = []
    kinds = {"gauge": 5, "sum": 7, "histogram": 9, "exponentialHistogram": 10, "summary": 11}
    for rm in req.get("resourceMetrics", []):
        for sm in rm.get("scopeMetrics", []):
            for m in sm.get("metrics", []):
                for k, fn in kinds.items():
                    if k in m:
                        for dp in m[k].get("dataPoints", []):
                            pts.append((m.get("name", ""), fn, j_attrs(dp.get("attributes"))))
    return pts


# ---- fake OTLP/HTTP backend ---------------------------------------------------------------

class FakeOtlp:
    """A strict OTLP/HTTP backend: checks method, path, content type and encoding, decodes
    protobuf bodies with the independent decoder, and answers with `status` (settable)."""

    def __init__(self, port=None, status=200, retry_after=None, resp_body=b""):
        self.port = port or free_port()
        self.status = status
        self.resp_body = resp_body
        self.retry_after = retry_after
        self.requests = []   # (path, headers, decoded body bytes)
        self.errors = []
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                body = raw
                enc = self.headers.get("Content-Encoding")
                try:
                    if enc == "gzip":
                        body = gzip.decompress(raw)
                    elif enc not in (None, "identity"):
                        raise ValueError("unexpected Content-Encoding %s" % enc)
                    if self.path not in ("/v1/traces", "/v1/metrics", "/v1/logs"):
                        raise ValueError("unexpected path %s" % self.path)
                    if self.headers.get("Content-Type") != "application/x-protobuf":
                        raise ValueError("unexpected Content-Type %s" % self.headers.get("Content-Type"))
                    pb_fields(body)
                except Exception as e:  # noqa: BLE001
                    with outer.lock:
                        outer.errors.append(str(e))
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                st = outer.status
                if st == 200:
                    with outer.lock:
                        outer.requests.append((self.path, dict(self.headers), body))
                self.send_response(st)
                self.send_header("Content-Type", "application/x-protobuf")
                if outer.retry_after is not None and st != 200:
                    self.send_header("Retry-After", str(outer.retry_after))
                rb = outer.resp_body if st == 200 else b""
                self.send_header("Content-Length", str(len(rb)))
                self.end_headers()
                self.wfile.write(rb)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        _servers.append(self.server)

    def spans(self):
        with self.lock:
            reqs = list(self.requests)
        out = []
        for path, _, body in reqs:
            if path == "/v1/traces":
                out.extend(pb_traces(body))
        return out


# ---- a small protobuf encoder for crafted requests ---------------------------------------

def _enc_varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_len(fn, payload):
    return _enc_varint(fn << 3 | 2) + _enc_varint(len(payload)) + payload


def pb_fixed64(fn, v):
    return _enc_varint(fn << 3 | 1) + struct.pack("<Q", v)


def pb_varint(fn, v):
    return _enc_varint(fn << 3) + _enc_varint(v)


def pb_kv_str(k, v):
    return pb_len(1, k.encode()) + pb_len(2, pb_len(1, v if isinstance(v, bytes) else v.encode()))


def make_traces(span_ids, service="svc", trace_id=b"\x01" * 16, name="op"):
    """ExportTraceServiceRequest with one span per 8-byte id in span_ids."""
    spans = b"".join(
        pb_len(2, pb_len(1, trace_id) + pb_len(2, sid) + pb_len(5, name.encode()) +
               pb_varint(6, 2) + pb_fixed64(7, 1700000000000000000) +
               pb_fixed64(8, 1700000000001000000) + pb_len(9, pb_kv_str("k", "v")))
        for sid in span_ids)
    resource = pb_len(1, pb_len(1, pb_kv_str("service.name", service)))
    scope = pb_len(1, pb_len(1, b"test-scope"))
    return pb_len(1, resource + pb_len(2, scope + spans))


# ---- a real Prometheus server (Debian's `prometheus` package) ------------------------------

class Prometheus:
    """Starts `prometheus` on a free loopback port with a temporary data dir."""

    def __init__(self, config="global: {}\n", features=("native-histograms", "exemplar-storage"),
                 remote_write_receiver=True):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="meltp-prom-")
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(config.replace("$PORT", str(self.port)))
        args = ["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + self.dir + "/data",
                "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"]
        if remote_write_receiver:
            args.append("--web.enable-remote-write-receiver")
        if features:
            args.append("--enable-feature=" + ",".join(features))
        self.log = open(os.path.join(self.dir, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        _procs.append(self.proc)
        wait_until(self._ready, 30, what="prometheus to be ready")

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("prometheus exited: " + open(self.log.name).read()[-2000:])
        try:
            st, _, _ = http_request("http://127.0.0.1:%d/-/ready" % self.port, method="GET")
            return st == 200
        except OSError:
            return False

    @property
    def write_url(self):
        return "http://127.0.0.1:%d/api/v1/write" % self.port

    def api(self, path, **params):
        import urllib.parse
        url = "http://127.0.0.1:%d%s?%s" % (self.port, path, urllib.parse.urlencode(params))
        st, _, body = http_request(url, method="GET")
        assert st == 200, (st, body[:500])
        doc = json.loads(body)
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, q, t=None):
        params = {"query": q}
        if t is not None:
            params["time"] = "%.3f" % t
        return self.api("/api/v1/query", **params)["result"]

    def series(self, match):
        return self.api("/api/v1/series", **{"match[]": match})
