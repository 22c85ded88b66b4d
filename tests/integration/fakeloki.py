"""A strict fake Loki distributor for the loki exporter's tests: POST /loki/api/v1/push with
protobuf (raw snappy block, decoded by a small pure-Python snappy decoder written here from
google/snappy's format_description.txt) or JSON (optionally gzip), enforcing Loki's rules the
way Loki answers them (protocols.md §5):

- tenancy: with auth_enabled (the default) X-Scope-OrgID is required (401 "no org id"), one
  tenant only (a `|` list is 400), at most 150 bytes of Loki's charset;
- labels: a parseable selector `{name="value", ...}` with names [a-zA-Z_][a-zA-Z0-9_]*, no
  `__` prefix, no duplicates, at least one label, at most max_labels (15) names, values at
  most 2048 bytes; this fake also insists that the selector is sorted by name, as Loki's own
  labels.String() writes it (Loki would sort silently; meltp promises to send them sorted);
- entries: timestamps as strings in JSON (a number is 400), a line at most max_line_size;
  structured metadata flat string -> string;
- ordering per stream: an entry older than (newest accepted in the stream - window) is
  refused "too far behind" (400, the rest of the push is stored), like Loki's ingester with
  its default 1h window (max_chunk_age / 2);
- forced answers: `fail_next` (a list of (status, body, retry_after)) for 429 / 5xx / 400.

Everything accepted is recorded per tenant and stream for assertions."""
import gzip
import http.server
import json
import re
import threading
import time

import harness

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
TENANT = re.compile(r"^[a-zA-Z0-9!._*'()-]{1,150}$")


class SnappyError(ValueError):
    pass


def snappy_decompress(b):
    """Raw snappy block format: varint uncompressed length, then literal / copy elements."""
    n, i = 0, 0
    shift = 0
    while True:
        if i >= len(b):
            raise SnappyError("truncated length")
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        if not c & 0x80:
            break
        shift += 7
        if shift > 32:
            raise SnappyError("length varint too long")
    out = bytearray()
    while i < len(b):
        tag = b[i]
        i += 1
        kind = tag & 3
        if kind == 0:  # literal
            ln = tag >> 2
            if ln >= 60:
                nb = ln - 59
                if i + nb > len(b):
                    raise SnappyError("truncated literal length")
                ln = int.from_bytes(b[i:i + nb], "little")
                i += nb
            ln += 1
            if i + ln > len(b):
                raise SnappyError("truncated literal")
            out += b[i:i + ln]
            i += ln
            continue
        if kind == 1:
            ln = ((tag >> 2) & 7) + 4
            if i >= len(b):
                raise SnappyError("truncated copy1")
            off = ((tag >> 5) << 8) | b[i]
            i += 1
        elif kind == 2:
            ln = (tag >> 2) + 1
            if i + 2 > len(b):
                raise SnappyError("truncated copy2")
            off = int.from_bytes(b[i:i + 2], "little")
            i += 2
        else:
            ln = (tag >> 2) + 1
            if i + 4 > len(b):
                raise SnappyError("truncated copy4")
            off = int.from_bytes(b[i:i + 4], "little")
            i += 4
        if off == 0 or off > len(out):
            raise SnappyError("bad copy offset %d" % off)
        for _ in range(ln):  # overlapping copies repeat bytes, so byte by byte
            out.append(out[-off])
    if len(out) != n:
        raise SnappyError("length %d, header said %d" % (len(out), n))
    return bytes(out)


def parse_selector(s):
    """Loki selector text -> list of (name, value) in written order; raises ValueError."""
    if not (s.startswith("{") and s.endswith("}")):
        raise ValueError("not a selector")
    body = s[1:-1]
    out = []
    i = 0
    while i < len(body):
        m = re.match(r"\s*([^=\s]+)\s*=\s*\"", body[i:])
        if not m:
            raise ValueError("parse error at %d" % i)
        name = m.group(1)
        i += m.end()
        val = []
        while True:
            if i >= len(body):
                raise ValueError("unterminated quoted string")
            c = body[i]
            if c == "\\":
                nxt = body[i + 1]
                if nxt == "x":
                    val.append(chr(int(body[i + 2:i + 4], 16)))
                    i += 4
                    continue
                val.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
                i += 2
                continue
            if c == '"':
                i += 1
                break
            val.append(c)
            i += 1
        out.append((name, "".join(val)))
        m = re.match(r"\s*,\s*", body[i:])
        if m:
            i += m.end()
        elif body[i:].strip():
            raise ValueError("expected , at %d" % i)
        else:
            break
    return out


def parse_push_pb(body):
    """logproto.PushRequest -> [(labels text, [(ts_ns, line, {sm})])] via harness.pb_fields."""
    streams = []
    for fn, wt, v in harness.pb_fields(body):
        if fn != 1:
            if fn == 2:
                raise ValueError("clients must not send PushRequest.format")
            continue
        labels, entries = "", []
        for sfn, _, sv in harness.pb_fields(v):
            if sfn == 1:
                labels = sv.decode()
            elif sfn == 2:
                sec = nanos = 0
                line = ""
                sm = {}
                for efn, _, ev in harness.pb_fields(sv):
                    if efn == 1:
                        for tfn, _, tv in harness.pb_fields(ev):
                            if tfn == 1:
                                sec = tv
                            elif tfn == 2:
                                nanos = tv
                    elif efn == 2:
                        line = ev.decode()
                    elif efn == 3:
                        name = value = ""
                        for pfn, _, pv in harness.pb_fields(ev):
                            if pfn == 1:
                                name = pv.decode()
                            elif pfn == 2:
                                value = pv.decode()
                        sm[name] = value
                    elif efn == 4:
                        raise ValueError("clients must not send EntryAdapter.parsed")
                entries.append((sec * 1000000000 + nanos, line, sm))
            elif sfn == 3 and sv:
                raise ValueError("StreamAdapter.hash is internal")
        streams.append((labels, entries))
    return streams


def parse_push_json(body):
    doc = json.loads(body)
    streams = []
    for st in doc["streams"]:
        labels = st["stream"]
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            raise ValueError("stream labels must be strings")
        text = "{" + ", ".join('%s="%s"' % (k, v.replace("\\", "\\\\").replace('"', '\\"')
                                                  .replace("\n", "\\n"))
                               for k, v in labels.items()) + "}"
        entries = []
        for v in st["values"]:
            if not isinstance(v[0], str):
                raise ValueError("timestamp must be a string")
            sm = v[2] if len(v) > 2 else {}
            if not all(isinstance(x, str) for x in list(sm.keys()) + list(sm.values())):
                raise ValueError("structured metadata must be flat strings")
            entries.append((int(v[0]), v[1], sm))
        streams.append((text, entries))
    return streams


class FakeLoki:
    def __init__(self, auth_enabled=True, max_labels=15, max_line_size=256 * 1024,
                 window_ns=3600 * 10**9, require_sorted_labels=True):
        self.port = harness.free_port()
        self.auth_enabled = auth_enabled
        self.max_labels = max_labels
        self.max_line_size = max_line_size
        self.window_ns = window_ns
        self.require_sorted = require_sorted_labels
        self.fail_next = []          # [(status, body, retry_after)]
        self.lock = threading.Lock()
        self.streams = {}            # (tenant, labels text) -> [(ts, line, sm)]
        self.newest = {}             # (tenant, labels text) -> newest ts
        self.requests = []           # (headers, status, streams parsed)
        self.errors = []             # protocol errors (400 for malformed requests)
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, status, text="", headers=None):
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                status, text, hdrs = outer.handle(self.path, dict(self.headers), raw)
                self.answer(status, text, hdrs)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        harness._servers.append(self.server)

    @property
    def url(self):
        return "http://127.0.0.1:%d/loki/api/v1/push" % self.port

    def protocol_error(self, msg):
        with self.lock:
            self.errors.append(msg)
        return 400, msg, None

    def handle(self, path, headers, raw):
        h = {k.lower(): v for k, v in headers.items()}
        if path != "/loki/api/v1/push":
            return 404, "404 page not found\n", None
        tenant = h.get("x-scope-orgid")
        if self.auth_enabled:
            if not tenant:
                with self.lock:
                    self.requests.append((h, 401, []))
                return 401, "no org id\n", None
            if "|" in tenant:
                return self.protocol_error("multiple org IDs present")
            if not TENANT.match(tenant) or tenant in (".", ".."):
                return self.protocol_error("tenant ID '%s' is invalid" % tenant)
        else:
            tenant = "fake"
        ctype = h.get("content-type", "application/x-protobuf")
        try:
            if ctype.startswith("application/x-protobuf"):
                if h.get("content-encoding") not in (None, "snappy"):
                    raise ValueError("unexpected Content-Encoding %s" % h.get("content-encoding"))
                streams = parse_push_pb(snappy_decompress(raw))
            elif ctype.startswith("application/json"):
                enc = h.get("content-encoding")
                body = gzip.decompress(raw) if enc == "gzip" else raw
                if enc not in (None, "gzip"):
                    raise ValueError("unsupported Content-Encoding %s" % enc)
                streams = parse_push_json(body)
            else:
                raise ValueError("unsupported Content-Type %s" % ctype)
        except Exception as e:  # noqa: BLE001
            return self.protocol_error("malformed push: %s" % e)
        with self.lock:
            if self.fail_next:
                status, text, retry_after = self.fail_next.pop(0)
                self.requests.append((h, status, streams))
                return status, text, ({"Retry-After": str(retry_after)} if retry_after else None)
        # validate labels (distributor): a bad stream is refused, the others go on
        errs = []
        ignored_total = 0
        ok_streams = []
        for labels, entries in streams:
            try:
                pairs = parse_selector(labels)
            except ValueError as e:
                errs.append("error parsing labels '%s' with error: %s" % (labels, e))
                ignored_total += len(entries)
                continue
            names = [n for n, _ in pairs]
            bad = None
            if not pairs:
                bad = "error at least one label pair is required per stream"
            elif len(pairs) > self.max_labels:
                bad = "entry for stream '%s' has %d label names; limit %d" % (
                    labels, len(pairs), self.max_labels)
            elif len(set(names)) != len(names):
                bad = "stream '%s' has duplicate label name" % labels
            elif any(not LABEL_NAME.match(n) or n.startswith("__") for n in names):
                bad = "error parsing labels '%s' with error: invalid label name" % labels
            elif any(len(v.encode()) > 2048 for _, v in pairs):
                bad = "stream '%s' has label value too long" % labels
            elif self.require_sorted and names != sorted(names):
                with self.lock:
                    self.errors.append("labels not sorted: %s" % labels)
                bad = "error parsing labels '%s' with error: not sorted" % labels
            if bad:
                errs.append(bad)
                ignored_total += len(entries)
                continue
            key_labels = "{" + ", ".join('%s="%s"' % (n, v.replace("\\", "\\\\")
                                                       .replace('"', '\\"').replace("\n", "\\n"))
                                         for n, v in sorted(pairs)) + "}"
            good = []
            too_long = 0
            for ts, line, sm in entries:
                if len(line.encode()) > self.max_line_size:
                    too_long += 1
                    continue
                good.append((ts, line, sm))
            if too_long:
                errs.append("%d errors like: Max entry size '%d' bytes exceeded for stream '%s' "
                            "while adding an entry with length '%d' bytes" % (
                                too_long, self.max_line_size, key_labels, self.max_line_size + 1))
                ignored_total += too_long
            ok_streams.append((key_labels, good))
        # ingester: per-stream ordering window
        with self.lock:
            for labels, entries in ok_streams:
                key = (tenant, labels)
                failed = []
                for ts, line, sm in entries:
                    newest = self.newest.get(key)
                    if newest is not None and ts < newest - self.window_ns:
                        failed.append(ts)
                        continue
                    self.streams.setdefault(key, []).append((ts, line, sm))
                    if newest is None or ts > newest:
                        self.newest[key] = ts
                if failed:
                    msg = "".join(
                        "entry with timestamp %s ignored, reason: 'entry too far behind, entry "
                        "timestamp is: %s, oldest acceptable timestamp is: %s',\n" % (
                            fmt_ts(ts), fmt_ts(ts), fmt_ts(self.newest[key] - self.window_ns))
                        for ts in failed[:10])
                    msg += "user '%s', total ignored: %d out of %d for stream: %s" % (
                        tenant, len(failed), len(entries), labels)
                    errs.append(msg)
            status = 400 if errs else 204
            self.requests.append((h, status, streams))
        return status, "\n".join(errs), None

    # ---- assertions helpers ----
    def entries(self, tenant=None):
        """[(tenant, labels dict, ts, line, sm)] in arrival order per stream."""
        out = []
        with self.lock:
            items = list(self.streams.items())
        for (t, labels), ents in items:
            if tenant is not None and t != tenant:
                continue
            ld = dict(parse_selector(labels))
            for ts, line, sm in ents:
                out.append((t, ld, ts, line, sm))
        return out

    def count(self, tenant=None):
        return len(self.entries(tenant))


def fmt_ts(ns):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // 10**9))
