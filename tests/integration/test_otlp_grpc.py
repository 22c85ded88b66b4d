"""OTLP/gRPC receiver (receivers.otlp.protocols.grpc): the OpenTelemetry JS SDK's gRPC exporters
deliver every span, metric point and log record with full fidelity (gzip on and off); statuses
follow the OTLP spec (INVALID_ARGUMENT with the field path, RESOURCE_EXHAUSTED with RetryInfo
when a queue refuses, UNIMPLEMENTED for unknown methods and encodings, RESOURCE_EXHAUSTED for
oversize messages and compression bombs); hostile HTTP/2 (garbage, bad frames, header floods,
10,000 stream opens-and-resets) gets a closed connection or a refused stream, counted, while
other clients keep being served."""
import json
import os
import signal
import socket
import struct
import subprocess
import time

from harness import ROOT, Meltp, free_port, make_traces, wait_until
from test_otlp_fixtures import _canon, file_items as _file_items

NODE_DIR = os.path.join(ROOT, "tests", "node")
TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
METRICS = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
LOGS = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
PROFILES = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"

CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
      grpc:
        endpoint: 127.0.0.1:%(grpc)d
        threads: 1
exporters:
  file/t:
    path: {dir}/traces.jsonl
  file/m:
    path: {dir}/metrics.jsonl
  file/l:
    path: {dir}/logs.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [file/t]}}
    metrics: {{receivers: [otlp], exporters: [file/m]}}
    logs: {{receivers: [otlp], exporters: [file/l]}}
"""


def start(cfg=CFG, **kw):
    port = free_port()
    args = {"grpc": port}
    args.update(kw)
    m = Meltp(cfg % args)
    m.grpc = port
    wait_until(lambda: _connects(port), 10, what="gRPC port")
    return m


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def node(script, *args, timeout=60):
    p = subprocess.run(["node", os.path.join(NODE_DIR, script)] + list(args), cwd=NODE_DIR,
                       capture_output=True, timeout=timeout)
    assert p.returncode == 0, "%s failed: %s" % (script, p.stderr.decode()[-2000:])
    return json.loads(p.stdout)


def call(m, path, body=b"", **kw):
    a = {"target": "127.0.0.1:%d" % m.grpc, "path": path, "body_hex": body.hex()}
    if len(body) > 65536:
        a["body_file"] = os.path.join(m.dir, "body.bin")
        a["body_hex"] = ""
        with open(a["body_file"], "wb") as f:
            f.write(body)
    a.update(kw)
    return node("grpc_call.js", json.dumps(a))


def h2_call(m, path, **kw):
    a = {"target": "127.0.0.1:%d" % m.grpc, "path": path}
    a.update(kw)
    r = node("h2_call.js", json.dumps(a))
    # Trailers-Only answers carry grpc-status in the headers
    r["grpc"] = dict(r.get("headers") or {}, **(r.get("trailers") or {}))
    return r


def file_items(m, sig):
    """What meltp's file exporter wrote, in the sender's shapes (metric points as lists)."""
    return [list(x) if sig == "metrics" else x for x in _file_items(m, sig)]


def served_quickly(m, limit=5.0):
    """A well-behaved client's call succeeds within `limit` seconds."""
    t = time.time()
    r = call(m, TRACES, make_traces([b"\x42" * 8]))
    assert r["code"] == 0, r
    assert time.time() - t < limit, "served after %.1fs" % (time.time() - t)


def test_js_sdk_grpc_exporters_deliver_every_item_gzip_and_identity():
    m = start()
    sent = {"traces": [], "metrics": [], "logs": []}
    for comp in ("gzip", "none"):
        out = node("otlp_grpc_send.js", "127.0.0.1:%d" % m.grpc, comp, "run-" + comp)
        for sig, r in out.items():
            assert r["code"] == 0, "%s/%s: export failed: %s" % (sig, comp, r["error"])
            assert r["items"], "%s/%s: the SDK made nothing" % (sig, comp)
            sent[sig].extend(r["items"])
    for sig, n in (("traces", 50), ("metrics", 30), ("logs", 24)):
        assert len(sent[sig]) == n, (sig, len(sent[sig]))
        got = m.metric("meltp_receiver_accepted_items_total", signal=sig, transport="grpc")
        assert got == n, "%s: accepted %s over gRPC, sent %d" % (sig, got, n)
    assert m.metric("meltp_receiver_requests_total", transport="grpc", code="200") == 6
    assert m.stop() == 0
    for sig, items in sent.items():
        got = file_items(m, sig)
        assert len(got) == len(items), "%s: %d written, %d sent" % (sig, len(got), len(items))
        assert _canon(got) == _canon(items), "%s: written items differ from sent" % sig


def test_statuses_per_otlp_spec():
    m = start()
    # unknown method and unknown compression: UNIMPLEMENTED
    r = call(m, "/opentelemetry.proto.collector.trace.v1.TraceService/Nope")
    assert r["code"] == 12 and "unknown method" in r["details"], r
    r = h2_call(m, TRACES, headers={"grpc-encoding": "br"}, body_b64="")
    assert r["grpc"]["grpc-status"] == "12", r
    assert "br" in r["grpc"]["grpc-message"], r
    assert "gzip" in r["grpc"]["grpc-accept-encoding"], r
    # undecodable data: INVALID_ARGUMENT naming the field path, as OTLP/HTTP does
    r = call(m, TRACES, b"\x0a\x03\xff\xff\xff")
    assert r["code"] == 3 and "resource_spans[0]" in r["details"], r
    # invalid tenant metadata: INVALID_ARGUMENT
    r = call(m, TRACES, make_traces([b"\x01" * 8]), metadata={"x-scope-orgid": "a/b"})
    assert r["code"] == 3 and "X-Scope-OrgID" in r["details"], r
    # profiles have no pipeline here: UNIMPLEMENTED, not a crash
    r = call(m, PROFILES, b"")
    assert r["code"] == 12, r
    # an empty request is valid and carries nothing
    r = call(m, LOGS, b"")
    assert r["code"] == 0, r
    # a valid request through grpc-js with gzip
    r = call(m, TRACES, make_traces([b"\x02" * 8]), compression="gzip", metadata={"x-scope-orgid": "t1"})
    assert r["code"] == 0, r
    assert m.metric("meltp_receiver_refused_requests_total", transport="grpc",
                    reason="unimplemented") == 1
    assert m.metric("meltp_receiver_refused_requests_total", transport="grpc",
                    reason="unsupported_encoding") == 1
    assert m.metric("meltp_receiver_refused_requests_total", transport="grpc",
                    reason="bad_protobuf") == 1
    assert m.metric("meltp_receiver_refused_requests_total", transport="grpc",
                    reason="bad_tenant") == 1


def test_oversize_lying_prefix_and_compression_bomb():
    m = start()
    # the prefix alone is enough to refuse: nothing of the 3 GB is read
    r = h2_call(m, TRACES, prefix_len=3000000000, body_b64="AAAA")
    assert r["grpc"]["grpc-status"] == "8" and "max_recv_msg_size_mib" in r["grpc"]["grpc-message"], r
    # a prefix that promises more than the stream carries
    r = h2_call(m, TRACES, prefix_len=1000, body_b64="AAAA")
    assert r["grpc"]["grpc-status"] == "3" and "truncated" in r["grpc"]["grpc-message"], r
    # ... or less: bytes past the message
    r = h2_call(m, TRACES, prefix_len=1, body_b64="AAAA")
    assert r["grpc"]["grpc-status"] == "3", r
    # compressed flag without grpc-encoding
    r = h2_call(m, TRACES, compressed=True, body_b64="AAAA")
    assert r["grpc"]["grpc-status"] != "0", r
    # gzip of 100 MB of zeros: refused while decompressing, capped at the limit
    rss0 = _rss(m)
    r = h2_call(m, TRACES, gzip_zeros_mb=100, headers={"grpc-encoding": "gzip"})
    assert r["grpc"]["grpc-status"] == "8", r
    assert "max_recv_msg_size_mib" in r["grpc"]["grpc-message"], r
    assert _rss(m) - rss0 < 64 << 20, "the bomb cost %d bytes of RSS" % (_rss(m) - rss0)
    assert m.metric("meltp_receiver_refused_requests_total", transport="grpc",
                    reason="too_large") == 2
    served_quickly(m)


def _rss(m):
    with open("/proc/%d/status" % m.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def test_max_recv_msg_size_mib_is_honoured():
    m = start(CFG.replace("threads: 1", "threads: 1\n        max_recv_msg_size_mib: 1"))
    big = make_traces([struct.pack(">Q", i) for i in range(6000)], name="x" * 200)
    assert len(big) > 1 << 20
    r = call(m, TRACES, big)
    assert r["code"] == 8 and "max_recv_msg_size_mib" in r["details"], r
    r = call(m, TRACES, make_traces([struct.pack(">Q", i) for i in range(100)]))
    assert r["code"] == 0, r


REFUSE_CFG = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%(grpc)d
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:%(dead)d
    timeout: 1s
    sending_queue:
      queue_size: 2
      num_consumers: 1
      on_full: refuse
    retry_on_failure:
      initial_interval: 1s
      max_elapsed_time: 0
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlphttp]}}
"""


def test_queue_refusal_is_resource_exhausted_with_retry_info():
    m = start(REFUSE_CFG, dead=free_port())
    codes = []
    last = None
    for i in range(10):
        last = call(m, TRACES, make_traces([struct.pack(">II", i, 0)]))
        codes.append(last["code"])
        if last["code"] == 8:
            break
    assert codes[0] == 0 and codes[-1] == 8, codes
    assert last["retry_delay_ms"] == 1000, last
    wait_until(lambda: m.metric("meltp_receiver_refused_items_total", transport="grpc",
                                reason="queue_full") == 1, 5, what="refused items counted")


# ---- hostile HTTP/2 over raw sockets -------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def hpack_literal(headers):
    """Literal header fields without indexing, new names, no Huffman (RFC 7541 6.2.2)."""
    out = b""
    for k, v in headers:
        k, v = k.encode(), v.encode()
        out += b"\x00" + _hlen(len(k)) + k + _hlen(len(v)) + v
    return out


def _hlen(n):
    if n < 127:
        return bytes([n])
    n -= 127
    out = [127]
    while n >= 128:
        out.append((n & 0x7f) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


REQ = [(":method", "POST"), (":scheme", "http"), (":path", TRACES), (":authority", "x"),
       ("content-type", "application/grpc"), ("te", "trailers")]
SETTINGS, HEADERS, RST, GOAWAY, DATA, CONT, PING = 4, 1, 3, 7, 0, 9, 6


def header_frames(sid, block, end_stream=False):
    """One header block as HEADERS + CONTINUATION frames of at most 16000 bytes."""
    chunks = [block[i:i + 16000] for i in range(0, len(block), 16000)] or [b""]
    last = len(chunks) - 1
    out = frame(HEADERS, (4 if last == 0 else 0) | (1 if end_stream else 0), sid, chunks[0])
    for i, c in enumerate(chunks[1:], 1):
        out += frame(CONT, 4 if i == last else 0, sid, c)
    return out


def read_frames(s, timeout=5.0, buf=b""):
    """Frames until the peer closes (or the timeout), after the bytes already read into buf:
    [(type, flags, sid, payload)]."""
    s.settimeout(timeout)
    buf = bytes(buf)
    end = time.time() + timeout
    try:
        while time.time() < end:
            d = s.recv(65536)
            if not d:
                break
            buf += d
    except (socket.timeout, ConnectionResetError):
        pass
    return parse_frames(buf)


def recv_until(s, buf, cond, timeout=5.0, what="frames"):
    """Reads from s into buf (a bytearray) until cond(the frames in buf) holds."""
    s.settimeout(0.05)

    def more():
        try:
            buf.extend(s.recv(65536))
        except socket.timeout:
            pass
        return cond(parse_frames(bytes(buf)))
    wait_until(more, timeout, step=0.01, what=what)


def parse_frames(buf):
    frames = []
    while len(buf) >= 9:
        n = int.from_bytes(buf[:3], "big")
        if len(buf) < 9 + n:
            break
        frames.append((buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff, buf[9:9 + n]))
        buf = buf[9 + n:]
    return frames


def goaway_code(frames):
    for t, _, _, p in frames:
        if t == GOAWAY:
            return int.from_bytes(p[4:8], "big")
    return None


def raw(m, data):
    s = socket.create_connection(("127.0.0.1", m.grpc))
    try:
        s.sendall(data)
    except OSError:
        pass
    return s


def test_garbage_and_bad_frames_close_the_connection_counted():
    m = start()
    # not a preface at all
    s = raw(m, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    read_frames(s, 3)
    s.close()
    # garbage after the preface
    s = raw(m, PREFACE + os.urandom(64) + b"\xff" * 64)
    assert goaway_code(read_frames(s)) is not None
    s.close()
    # DATA on stream 0 is a connection error (PROTOCOL_ERROR = 1)
    s = raw(m, PREFACE + frame(SETTINGS, 0, 0) + frame(DATA, 0, 0, b"abc"))
    assert goaway_code(read_frames(s)) == 1
    s.close()
    # a frame larger than SETTINGS_MAX_FRAME_SIZE (FRAME_SIZE_ERROR = 6)
    s = raw(m, PREFACE + frame(SETTINGS, 0, 0) + frame(HEADERS, 4, 1, b"\x00" * 20000))
    assert goaway_code(read_frames(s)) == 6
    s.close()
    wait_until(lambda: m.metric("meltp_receiver_http2_events_total", event="bad_preface") >= 1, 5,
               what="bad preface counted")
    assert m.metric("meltp_receiver_http2_events_total", event="protocol_error") >= 2
    served_quickly(m)


def test_header_flood_refuses_the_stream():
    m = start()
    # one request with 64 KiB of headers (over the 16 KiB list limit) split over CONTINUATIONs
    block = hpack_literal(REQ + [("x-pad-%d" % i, "v" * 1000) for i in range(64)])
    s = raw(m, PREFACE + frame(SETTINGS, 0, 0) + header_frames(1, block))
    frames = read_frames(s, 3)
    s.close()
    # refused: a 431 HEADERS (or RST_STREAM) on stream 1, or the connection closed
    assert any(f[2] == 1 and f[0] in (HEADERS, RST) for f in frames) or goaway_code(frames) is not None, frames
    # thousands of small headers in one block: the same
    block = hpack_literal(REQ + [("h%d" % i, "v") for i in range(3000)])
    s = raw(m, PREFACE + frame(SETTINGS, 0, 0) + header_frames(1, block))
    frames = read_frames(s, 3)
    s.close()
    assert any(f[2] == 1 and f[0] in (HEADERS, RST) for f in frames) or goaway_code(frames) is not None, frames
    assert m.metric("meltp_receiver_http2_events_total", event="headers_too_large") >= 1
    served_quickly(m)


def test_rapid_reset_flood_gets_goaway_and_others_are_served():
    m = start()
    block = hpack_literal(REQ)
    data = PREFACE + frame(SETTINGS, 0, 0)
    for i in range(10000):
        sid = 2 * i + 1
        data += frame(HEADERS, 4, sid, block) + frame(RST, 0, sid, struct.pack(">I", 8))
    t = time.time()
    s = raw(m, data)
    frames = read_frames(s, 10)
    s.close()
    # ENHANCE_YOUR_CALM (11) from meltp's own limit, or the library's (INTERNAL_ERROR 2)
    assert goaway_code(frames) in (11, 2), [f[0] for f in frames][-5:]
    assert time.time() - t < 10
    served_quickly(m, 3.0)
    assert m.metric("meltp_receiver_http2_events_total", event="rapid_reset") == 1
    assert m.metric("meltp_receiver_http2_events_total", event="stream_reset") >= 500


def test_second_instance_on_the_grpc_port_fails():
    m = start()
    other = free_port()
    cfg = CFG.replace("{otlp}", str(other)) % {"grpc": m.grpc}
    path = os.path.join(m.dir, "second.yaml")
    with open(path, "w") as f:
        f.write(cfg.format(dir=m.dir, metrics=free_port()))
    p = subprocess.run([os.path.join(ROOT, os.environ.get("MELTP_BUILD", "build"), "meltp"), "run",
                        "--config", path], capture_output=True, timeout=20)
    assert p.returncode != 0
    assert b"address in use" in p.stdout + p.stderr, (p.stdout + p.stderr)[-500:]
    served_quickly(m)


def test_shutdown_answers_calls_in_flight():
    m = start()
    # a call whose message is still arriving when SIGTERM comes
    s = raw(m, PREFACE + frame(SETTINGS, 0, 0) + frame(HEADERS, 4, 1, hpack_literal(REQ)))
    body = make_traces([b"\x07" * 8])
    msg = b"\x00" + struct.pack(">I", len(body)) + body
    # the server acknowledges a PING after the frames sent before it: then stream 1 is open
    s.sendall(frame(DATA, 0, 1, msg[:3]) + frame(PING, 0, 0, b"barrier!"))
    head = bytearray()
    recv_until(s, head, lambda fs: any(f[0] == PING and f[1] & 1 for f in fs),
               what="the PING acknowledged")
    m.signal(signal.SIGTERM)
    # the rest of the message goes out after the GOAWAY: the call is in flight across it
    recv_until(s, head, lambda fs: goaway_code(fs) is not None, what="the GOAWAY")
    s.sendall(frame(DATA, 1, 1, msg[3:]))
    frames = read_frames(s, 8, head)
    s.close()
    assert goaway_code(frames) == 0, frames
    # the call finished: HEADERS (and DATA) on stream 1 after the GOAWAY
    assert any(f[0] == HEADERS and f[2] == 1 for f in frames), frames
    assert m.proc.wait(20) == 0
    assert len(file_items(m, "traces")) == 1


def test_grpc_timeout_is_honoured():
    m = start()
    # a call that announces 300 ms and never sends its message
    req = REQ + [("grpc-timeout", "300m")]
    s = raw(m, PREFACE + frame(SETTINGS, 0, 0) + frame(HEADERS, 4, 1, hpack_literal(req)))
    t = time.time()
    frames = read_frames(s, 3)
    s.close()
    assert any(f[0] == HEADERS and f[2] == 1 for f in frames), frames
    assert m.metric("meltp_receiver_refused_requests_total", transport="grpc",
                    reason="deadline_exceeded") == 1
    # answered after the deadline, well before the idle timeout
    assert time.time() - t >= 0.3


RELAY_CFG = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%(grpc)d
      http:
        endpoint: 127.0.0.1:{otlp}
processors:
  memory_limiter:
    limit_mib: %(limit)d
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:%(backend)d
    compression: none
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], processors: [memory_limiter], exporters: [otlphttp]}}
"""


def test_tenant_metadata_and_zstd_travel_to_the_backend():
    from harness import FakeOtlp
    backend = FakeOtlp()
    m = start(RELAY_CFG, backend=backend.port, limit=512)
    body = make_traces([b"\x31" * 8, b"\x32" * 8])
    r = call(m, TRACES, body, metadata={"x-scope-orgid": "team-a"})
    assert r["code"] == 0, r
    # zstd, which grpc-js does not speak: compressed by the zstd tool, sent as bytes
    z = subprocess.run(["zstd", "-q", "-c"], input=make_traces([b"\x33" * 8]),
                       capture_output=True, check=True).stdout
    import base64
    r = h2_call(m, TRACES, compressed=True, body_b64=base64.b64encode(z).decode(),
                headers={"grpc-encoding": "zstd"})
    assert r["grpc"].get("grpc-status") == "0", r
    wait_until(lambda: sum(len(x[2]) > 0 for x in backend.requests) >= 2, 10, what="delivery")
    tenants = sorted(h.get("X-Scope-OrgID", "") for _, h, _ in backend.requests)
    assert tenants == ["", "team-a"], tenants
    assert not backend.errors, backend.errors
    # the client's bytes went through unchanged (no processor changed them)
    assert any(b == body for _, _, b in backend.requests)


def test_memory_limiter_refusal_is_resource_exhausted_with_retry_info():
    from harness import FakeOtlp
    backend = FakeOtlp()
    m = start(RELAY_CFG, backend=backend.port, limit=1)
    big = make_traces([struct.pack(">Q", i) for i in range(8000)], name="y" * 200)
    assert 1 << 20 < len(big) < 4 << 20
    r = call(m, TRACES, big)
    assert r["code"] == 8, r
    assert r["retry_delay_ms"] == 1000, r
    assert m.metric("meltp_receiver_refused_requests_total", transport="grpc",
                    reason="memory_limit") == 1
    served_quickly(m)


def test_sighup_reload_keeps_serving_grpc():
    m = start()
    served_quickly(m)
    m.signal(signal.SIGHUP)
    wait_until(lambda: "reload: done" in m.logtext(), 10, what="reload")
    wait_until(lambda: _connects(m.grpc), 5, what="gRPC port back")
    served_quickly(m)


class GrpcLoad:
    """tests/node/grpc_load.js: unary Export calls sent continuously on one HTTP/2 connection,
    each with a fresh span id; end() returns what it printed (acked ids, failed calls, how
    many times the channel became READY)."""

    def __init__(self, m, concurrency=4, tls=None, metadata=None, target=None):
        self.stop_file = os.path.join(m.dir, "load.stop.%d" % id(self))
        self.progress = os.path.join(m.dir, "load.progress.%d" % id(self))
        a = {"target": target or "127.0.0.1:%d" % m.grpc, "path": TRACES,
             "body_hex": make_traces([b"\xa5\x5a" * 4]).hex(), "marker_hex": ("a55a" * 4),
             "stop_file": self.stop_file, "progress": self.progress,
             "concurrency": concurrency, "tls": tls, "metadata": metadata or {}}
        self.p = subprocess.Popen(["node", os.path.join(NODE_DIR, "grpc_load.js"), json.dumps(a)],
                                  cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def acked(self):
        try:
            with open(self.progress) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def end(self):
        open(self.stop_file, "w").close()
        out, err = self.p.communicate(timeout=60)
        assert self.p.returncode == 0, err.decode()[-2000:]
        return json.loads(out)


class RefusalProbe:
    """Connects to a port in a loop from a thread, counting refused connections."""

    def __init__(self, port):
        import threading
        self.port, self.refused, self.tries, self.done = port, 0, 0, False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.done:
            self.tries += 1
            if not _connects(self.port):
                self.refused += 1
            time.sleep(0.005)

    def end(self):
        self.done = True
        self.t.join()
        return self.refused


RELOAD_CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
      grpc:
        endpoint: 127.0.0.1:%(grpc)d
        threads: 1
        max_recv_msg_size_mib: %(mib)d
exporters:
  file/t:
    path: {dir}/traces.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [file/t]}}
"""


def grpc_ledger(m):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", m.metrics, timeout=10)
    c.request("GET", "/api/v1/ledger")
    out = {e["exporter"]: e for e in json.loads(c.getresponse().read())["exporters"]}
    c.close()
    for e in out.values():
        assert e["accepted"] == e["sent"] + e["dropped"] + e["queued"], e
    return out


def test_sighups_under_grpc_load_keep_the_connection_and_the_ledger_exact():
    """Issue 14 "SIGHUP keeps the port": a client sending continuously on one HTTP/2
    connection through 6 reloads (each changing the receiver) sees no failed call and no
    reconnection, the port never refuses a connection, and every acknowledged span is written
    once (ledger exact)."""
    m = start(RELOAD_CFG, mib=4)
    load = GrpcLoad(m)
    probe = RefusalProbe(m.grpc)
    wait_until(lambda: load.acked() >= 100, 20, what="first acknowledged calls")
    for i in range(6):
        before = load.acked()
        with open(m.config_path, "w") as f:
            f.write((RELOAD_CFG % {"grpc": m.grpc, "mib": 5 + i % 2}).format(
                dir=m.dir, metrics=m.metrics, otlp=m.otlp))
        m.signal(signal.SIGHUP)
        wait_until(lambda: m.logtext().count("reload: done") >= i + 1, 20,
                   what="reload %d" % (i + 1))
        wait_until(lambda: load.acked() >= before + 100, 20, what="calls after reload %d" % (i + 1))
    refused = probe.end()
    r = load.end()
    assert not r["failed"], "%d failed calls: %s" % (len(r["failed"]), r["failed"][:5])
    assert refused == 0 and probe.tries > 50, (refused, probe.tries)
    assert r["ready"] == 1, "the client reconnected %d times" % (r["ready"] - 1)
    acked = set(r["acked"])
    assert len(acked) == len(r["acked"]) >= 700
    wait_until(lambda: grpc_ledger(m)["file/t"]["queued"] == 0, 20, what="queue to drain")
    got = [x["spanId"] for x in _file_items(m, "traces")]
    assert set(got) == acked and len(got) == len(acked), (len(got), len(acked))
    e = grpc_ledger(m)["file/t"]
    assert e["accepted"] == len(acked) and e["sent"] == len(acked) and e["dropped"] == 0, e
    assert m.metric("meltp_receiver_accepted_items_total") == len(acked)
    assert "reload: failed" not in m.logtext()
    assert m.stop() == 0


def test_reload_that_moves_the_grpc_endpoint():
    """A changed protocols.grpc.endpoint moves: the new port serves after the reload, the old
    one is closed."""
    m = start(RELOAD_CFG, mib=4)
    old = m.grpc
    new = free_port()
    with open(m.config_path, "w") as f:
        f.write((RELOAD_CFG % {"grpc": new, "mib": 4}).format(dir=m.dir, metrics=m.metrics,
                                                              otlp=m.otlp))
    m.signal(signal.SIGHUP)
    wait_until(lambda: "reload: done" in m.logtext(), 20, what="the reload")
    m.grpc = new
    served_quickly(m)
    wait_until(lambda: not _connects(old), 5, what="the old port closed")


VALIDATE_CFG = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%(grpc)d
      http:
        endpoint: 127.0.0.1:{otlp}
processors:
  validate:
    schema_file: %(schema)s
exporters:
  file/t:
    path: {dir}/traces.jsonl
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], processors: [validate], exporters: [file/t]}}
"""


def test_partial_success_and_processor_rejection():
    from harness import pb_fields
    import tempfile
    fd, schema = tempfile.mkstemp(suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        f.write("version: 1\nresource:\n  - name: need-env\n    required: [deployment.env]\n"
                "    action: reject\n    message: \"every resource needs deployment.env\"\n"
                "traces:\n  - name: need-x\n    required: [x.attr]\n    action: drop\n"
                "    message: \"spans need x.attr\"\n")
    m = start(VALIDATE_CFG, schema=schema)
    # a resource without deployment.env: the whole request is refused, INVALID_ARGUMENT
    r = call(m, TRACES, make_traces([b"\x51" * 8]))
    assert r["code"] == 3 and "every resource needs deployment.env" in r["details"], r
    os.unlink(schema)
    with open(schema, "w") as f:
        f.write("version: 1\ntraces:\n  - name: need-x\n    required: [x.attr]\n"
                "    action: drop\n    message: \"spans need x.attr\"\n")
    m2 = start(VALIDATE_CFG, schema=schema)
    # spans the processor drops: OK with partial_success{rejected_spans, error_message}
    r = call(m2, TRACES, make_traces([b"\x52" * 8, b"\x53" * 8]))
    assert r["code"] == 0, r
    ps = dict((fn, v) for fn, _, v in pb_fields(bytes.fromhex(r["response_hex"])))
    inner = dict((fn, v) for fn, _, v in pb_fields(ps[1]))
    assert inner[1] == 2 and b"spans need x.attr" in inner[2], inner
    os.unlink(schema)


def test_profiles_service_is_routed_to_profiles_pipelines():
    from harness import pb_kv_str, pb_len
    cfg = CFG.replace("    logs: {{receivers: [otlp], exporters: [file/l]}}",
                      "    logs: {{receivers: [otlp], exporters: [file/l]}}\n"
                      "    profiles: {{receivers: [otlp], exporters: [file/l]}}")
    m = start(cfg)
    # ExportProfilesServiceRequest{resource_profiles: [ResourceProfiles{resource{service.name}}]}
    body = pb_len(1, pb_len(1, pb_len(1, pb_kv_str("service.name", "prof-svc"))))
    r = call(m, PROFILES, body)
    assert r["code"] == 0, r
    assert m.metric("meltp_receiver_requests_total", signal="profiles", transport="grpc",
                    code="200") == 1
    # undecodable profiles: INVALID_ARGUMENT naming the profiles field path
    r = call(m, PROFILES, b"\x0a\x03\xff\xff\xff")
    assert r["code"] == 3 and "resource_profiles" in r["details"], r
