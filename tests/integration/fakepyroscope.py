"""A strict fake Pyroscope for integration tests: serves POST /ingest, checks the query
parameters (name with {labels}, from <= until, format=pprof), parses the multipart/form-data
body by hand (boundary, CRLFs, Content-Disposition, the `profile` field), gunzips it, decodes
the pprof with harness.pb_fields (independent of meltp's C code) and validates it:
string_table[0] == "", every id nonzero and unique, every reference resolvable, one value per
sample type. Valid profiles are recorded decoded; anything wrong is recorded in `errors` and
answered 400. `status` makes it answer 429/500/400 instead (without recording)."""
import gzip
import http.server
import re
import threading
import urllib.parse

from harness import _servers, free_port, pb_fields


def _ints(wt, v):
    """Repeated integer field value: packed (LEN) or one varint."""
    if wt == 0:
        return [v]
    out, i = [], 0
    while i < len(v):
        r = shift = 0
        while True:
            c = v[i]
            i += 1
            r |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                break
        out.append(r)
    return out


def _s64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def decode_pprof(b):
    """Decodes and validates a serialized pprof Profile. Returns a dict with sample_types
    [(type, unit)], samples [{"values", "stack" (function names leaf first), "labels"}],
    period_type, period, time_nanos, duration_nanos, default_sample_type and the raw tables.
    Raises ValueError naming the first problem."""
    strings, sample_types, samples, mappings, locations, functions = [], [], [], {}, {}, {}
    p = {"period": 0, "time_nanos": 0, "duration_nanos": 0, "period_type": None,
         "default_sample_type": 0}

    def vt(m):
        t = u = 0
        for f, _, v in pb_fields(m):
            if f == 1:
                t = v
            elif f == 2:
                u = v
        return t, u

    for f, wt, v in pb_fields(b):
        if f == 1:
            sample_types.append(vt(v))
        elif f == 2:
            s = {"loc": [], "values": [], "labels": []}
            for sf, swt, sv in pb_fields(v):
                if sf == 1:
                    s["loc"] += _ints(swt, sv)
                elif sf == 2:
                    s["values"] += [_s64(x) for x in _ints(swt, sv)]
                elif sf == 3:
                    lab = {1: 0, 2: 0, 3: 0, 4: 0}
                    for lf, _, lv in pb_fields(sv):
                        lab[lf] = lv
                    s["labels"].append(lab)
            samples.append(s)
        elif f == 3:
            m = {k: 0 for k in range(1, 11)}
            for mf, _, mv in pb_fields(v):
                m[mf] = mv
            if m[1] == 0 or m[1] in mappings:
                raise ValueError("mapping id %d zero or duplicate" % m[1])
            mappings[m[1]] = m
        elif f == 4:
            loc = {"id": 0, "mapping": 0, "lines": []}
            for lf, _, lv in pb_fields(v):
                if lf == 1:
                    loc["id"] = lv
                elif lf == 2:
                    loc["mapping"] = lv
                elif lf == 4:
                    ln = {1: 0, 2: 0}
                    for nf, _, nv in pb_fields(lv):
                        ln[nf] = nv
                    loc["lines"].append(ln)
            if loc["id"] == 0 or loc["id"] in locations:
                raise ValueError("location id %d zero or duplicate" % loc["id"])
            locations[loc["id"]] = loc
        elif f == 5:
            fn = {k: 0 for k in range(1, 6)}
            for ff, _, fv in pb_fields(v):
                fn[ff] = fv
            if fn[1] == 0 or fn[1] in functions:
                raise ValueError("function id %d zero or duplicate" % fn[1])
            functions[fn[1]] = fn
        elif f == 6:
            strings.append(v.decode("utf-8"))
        elif f == 9:
            p["time_nanos"] = _s64(v)
        elif f == 10:
            p["duration_nanos"] = _s64(v)
        elif f == 11:
            p["period_type"] = vt(v)
        elif f == 12:
            p["period"] = _s64(v)
        elif f == 14:
            p["default_sample_type"] = v
    if not strings or strings[0] != "":
        raise ValueError("string_table[0] is not empty")

    def s(i):
        if not 0 <= i < len(strings):
            raise ValueError("string index %d out of range (%d)" % (i, len(strings)))
        return strings[i]

    for m in mappings.values():
        s(m[5]), s(m[6])
    for fn in functions.values():
        s(fn[2]), s(fn[3]), s(fn[4])
    for loc in locations.values():
        if loc["mapping"] and loc["mapping"] not in mappings:
            raise ValueError("location %d: unknown mapping %d" % (loc["id"], loc["mapping"]))
        for ln in loc["lines"]:
            if ln[1] and ln[1] not in functions:
                raise ValueError("location %d: unknown function %d" % (loc["id"], ln[1]))
    if not sample_types:
        raise ValueError("no sample_type")
    out_samples = []
    for i, sm in enumerate(samples):
        if len(sm["values"]) != len(sample_types):
            raise ValueError("sample %d has %d values for %d types" %
                             (i, len(sm["values"]), len(sample_types)))
        stack = []
        for lid in sm["loc"]:
            if lid not in locations:
                raise ValueError("sample %d: unknown location %d" % (i, lid))
            loc = locations[lid]
            for ln in loc["lines"]:
                stack.append(s(functions[ln[1]][2]) if ln[1] else "")
        labels = {}
        for lab in sm["labels"]:
            key = s(lab[1])
            labels[key] = s(lab[2]) if lab[2] else (_s64(lab[3]), s(lab[4]))
        out_samples.append({"values": sm["values"], "stack": stack, "labels": labels})
    return {
        "sample_types": [(s(t), s(u)) for t, u in sample_types],
        "samples": out_samples,
        "period_type": (s(p["period_type"][0]), s(p["period_type"][1])) if p["period_type"] else None,
        "period": p["period"],
        "time_nanos": p["time_nanos"],
        "duration_nanos": p["duration_nanos"],
        "default_sample_type": s(p["default_sample_type"]),
        "strings": strings,
        "mappings": mappings,
        "functions": {k: {"name": s(v[2]), "filename": s(v[4])} for k, v in functions.items()},
    }


def parse_multipart(ctype, body):
    """Strict multipart/form-data split. Returns {name: (filename, bytes)}."""
    m = re.match(r'multipart/form-data;\s*boundary="?([^";]+)"?$', ctype or "")
    if not m:
        raise ValueError("bad Content-Type %r" % ctype)
    delim = b"--" + m.group(1).encode()
    if not body.startswith(delim + b"\r\n"):
        raise ValueError("body does not start with the boundary")
    if not body.endswith(delim + b"--\r\n") and not body.endswith(delim + b"--"):
        raise ValueError("no closing boundary")
    parts = {}
    chunks = body.split(b"\r\n" + delim)
    first = chunks[0][len(delim) + 2:]
    for chunk in [first] + [c[2:] for c in chunks[1:-1]]:
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("part without header end")
        disp = None
        for line in head.split(b"\r\n"):
            k, _, v = line.decode().partition(":")
            if k.strip().lower() == "content-disposition":
                disp = v.strip()
        if not disp or not disp.startswith("form-data"):
            raise ValueError("part without form-data Content-Disposition")
        nm = re.search(r'\bname="([^"]*)"', disp)
        fn = re.search(r'\bfilename="([^"]*)"', disp)
        if not nm:
            raise ValueError("part without name")
        parts[nm.group(1)] = (fn.group(1) if fn else None, data)
    return parts


def parse_app_name(name):
    m = re.match(r"^([^{}]+)(?:\{([^{}]*)\})?$", name)
    if not m:
        raise ValueError("bad name %r" % name)
    labels = {}
    if m.group(2):
        for pair in m.group(2).split(","):
            k, eq, v = pair.partition("=")
            if not eq or not k or not v:
                raise ValueError("bad label %r" % pair)
            labels[k] = v
    return m.group(1), labels


class FakePyroscope:
    def __init__(self, status=200, retry_after=None, message=b"bad profile from fake"):
        self.port = free_port()
        self.status = status
        self.retry_after = retry_after
        self.message = message
        self.profiles = []   # dicts: app, labels, params, headers, raw (gzip bytes), pprof
        self.attempts = 0
        self.errors = []
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, code, body=b""):
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                if outer.retry_after is not None and code != 200:
                    self.send_header("Retry-After", str(outer.retry_after))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # meltp stopped (end of a test) while we answered

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                with outer.lock:
                    outer.attempts += 1
                try:
                    url = urllib.parse.urlsplit(self.path)
                    if url.path != "/ingest":
                        raise ValueError("unexpected path %s" % url.path)
                    q = dict(urllib.parse.parse_qsl(url.query, strict_parsing=True))
                    if q.get("format") != "pprof":
                        raise ValueError("format=%r" % q.get("format"))
                    app, labels = parse_app_name(q["name"])
                    frm, until = int(q["from"]), int(q["until"])
                    if not 0 < frm <= until:
                        raise ValueError("from %d until %d" % (frm, until))
                    parts = parse_multipart(self.headers.get("Content-Type"), raw)
                    if "profile" not in parts:
                        raise ValueError("no profile field")
                    fname, gz = parts["profile"]
                    if fname != "profile.pprof":
                        raise ValueError("filename %r" % fname)
                    if gz[:2] != b"\x1f\x8b":
                        raise ValueError("profile is not gzip")
                    prof = decode_pprof(gzip.decompress(gz))
                except Exception as e:  # noqa: BLE001
                    with outer.lock:
                        outer.errors.append(str(e))
                    self.reply(400, str(e).encode())
                    return
                if outer.status != 200:
                    self.reply(outer.status, outer.message)
                    return
                with outer.lock:
                    outer.profiles.append({"app": app, "labels": labels, "params": q,
                                           "headers": dict(self.headers), "raw": gz,
                                           "pprof": prof})
                self.reply(200)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        _servers.append(self.server)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def got(self):
        with self.lock:
            return list(self.profiles)


# ---- a pprof encoder for test inputs (independent of meltp) ----------------------------------

def _v(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _f(fn, wt, payload):
    return _v(fn << 3 | wt) + payload


def _len(fn, b):
    return _f(fn, 2, _v(len(b)) + b)


def _int(fn, n):
    return _f(fn, 0, _v(n & ((1 << 64) - 1)))


def _packed(fn, xs):
    return _len(fn, b"".join(_v(x & ((1 << 64) - 1)) for x in xs))


def encode_pprof(sample_types, samples, period_type=None, period=0, time_nanos=0,
                 duration_nanos=0):
    """sample_types [(type, unit)], samples [(stack leaf first [names], [values],
    {label: str})] -> serialized pprof with one function+location per name (ids 1..n)."""
    strings = [""]

    def si(s):
        if s not in strings:
            strings.append(s)
        return strings.index(s)

    funcs = {}
    out = b""
    for t, u in sample_types:
        out += _len(1, _int(1, si(t)) + _int(2, si(u)))
    for stack, values, labels in samples:
        ids = []
        for name in stack:
            if name not in funcs:
                funcs[name] = len(funcs) + 1
            ids.append(funcs[name])
        lab = b"".join(_len(3, _int(1, si(k)) + _int(2, si(v))) for k, v in labels.items())
        out += _len(2, _packed(1, ids) + _packed(2, values) + lab)
    out += _len(3, _int(1, 1) + _int(2, 0x400000) + _int(3, 0x500000) + _int(5, si("/bin/app")))
    for name, fid in funcs.items():
        out += _len(4, _int(1, fid) + _int(2, 1) + _int(3, 0x400000 + fid) +
                    _len(4, _int(1, fid) + _int(2, fid * 10)))
    for name, fid in funcs.items():
        out += _len(5, _int(1, fid) + _int(2, si(name)) + _int(4, si("main.go")))
    if period_type:
        pt = _len(11, _int(1, si(period_type[0])) + _int(2, si(period_type[1])))
    else:
        pt = b""
    for s in strings:
        out += _len(6, s.encode())
    out += _int(9, time_nanos) + _int(10, duration_nanos) + pt + _int(12, period)
    return out


def multipart(fields, boundary="----pyroscopeSDKboundary42"):
    """fields: [(name, filename or None, bytes)] -> (content type, body)."""
    body = b""
    for name, fname, data in fields:
        disp = 'form-data; name="%s"' % name
        if fname:
            disp += '; filename="%s"' % fname
        body += (b"--" + boundary.encode() + b"\r\nContent-Disposition: " + disp.encode() +
                 b"\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n")
    body += b"--" + boundary.encode() + b"--\r\n"
    return "multipart/form-data; boundary=" + boundary, body

