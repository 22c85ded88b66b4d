"""A strict fake Pyroscope (legacy server 0.37 `/ingest`) for integration tests. It answers
what the real server answers for every rule below and models how the server stores what it
accepts, so tests can ask for ticks under a name the way they would query the real one.

Rules, from the v0.37.2 sources (pkg/server/ingest.go, pkg/storage/segment/key.go,
pkg/flameql/flameql.go, pkg/util/attime, pkg/util/form, pkg/convert/pprof/profile.go,
pkg/convert/pprof/streaming, pkg/storage/tree/pprof.go) and checked case by case against the
real binary (status codes noted; the probe cases are test_pyroscope_real.py's
REFUSAL_CASES, replayed against both):
- Only POST /ingest: another method -> 405, another path -> 404.
- name (segment.ParseKey): `app{k=v,...}`. The app name (trimmed) is required and only
  [A-Za-z0-9_.-] -> else 400 "invalid parameter: name: ...". Label keys (trimmed) are required
  and only [A-Za-z0-9_] -> else 400; values are anything but `,` and `}` (trimmed, may be
  empty); `__name__=x` replaces the app name; a label without `=`, an unterminated `{`, and
  anything after `}` are ignored (200).
- from/until (attime.Parse) never fail: digits are seconds (13/16/19 digits: ms/us/ns), any
  other text means now; until < from is accepted. sampleRate that is not a number falls back
  to 100; units and aggregationType are not checked.
- format -> parser: trie/tree (or Content-Type binary/octet-stream+trie/+tree), lines, jfr,
  pprof, speedscope; otherwise a multipart/form-data Content-Type -> pprof form; otherwise
  groups (folded). Parse failures are 422 "error happened while parsing request body: ...".
- format=pprof: the body itself is the pprof (gzip or not). A multipart body is then parsed as
  protobuf -> 422 "proto: wrong wireType ..." (the field-test bug). Empty body -> 200.
- pprof form (no format): the Content-Type needs a boundary (422); fields are read only from
  file parts (a part without filename is ignored): `profile`, `prev_profile`,
  `sample_type_config` (JSON object of {type: {units, display-name, aggregation, cumulative,
  sampled}}, else 422). No `profile` -> 200, nothing stored.
- pprof storage: each sample type of the mapping (sample_type_config replaces the default
  table: samples->cpu, inuse_*/alloc_*, goroutine->goroutines, contentions->mutex_count,
  delay->mutex_duration) is stored as `<app>.<display-name or type>`; types outside it are
  dropped; cumulative types are dropped without a previous profile. Two types with one
  display name land in one series. String sample labels become labels of the series.
- groups (folded): `stack count` lines, a count that is not an integer -> 422, a line without
  a count is skipped; stored under `name` verbatim. lines: one stack per line counts 1.
- trie/tree/jfr/speedscope are not decoded here: 422 always (the real server takes valid ones).
Accepted requests answer 200 with an empty body. `status` makes the fake answer 429/500/400
after the checks instead (without storing)."""
import gzip
import http.server
import json
import re
import struct
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

    names = {1: "SampleType", 2: "Sample", 3: "Mapping", 4: "Location", 5: "Function",
             6: "StringTable", 11: "PeriodType"}
    fields = pb_fields(b)
    for f, wt, v in fields:
        if f in names and wt != 2:
            raise ValueError("wrong wireType = %d for field %s" % (wt, names[f]))
    for f, wt, v in fields:
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


class Refused(Exception):
    def __init__(self, code, msg):
        Exception.__init__(self, msg)
        self.code = code


def _bad_param(msg):
    return Refused(400, 'invalid parameter: "name: %s"' % msg)


def _bad_body(msg):
    return Refused(422, 'error happened while parsing request body: "%s"' % msg)


_TAG_KEY = re.compile(r"^[A-Za-z0-9_]+$")
_APP = re.compile(r"^[A-Za-z0-9_.-]+$")


def parse_app_name(name):
    """segment.ParseKey: returns (app, labels) or raises Refused(400)."""
    labels, app = {}, None
    state, key, value = "name", "", ""
    for c in name + "{":
        if state == "name":
            if c == "{":
                app = value.strip()
                if not app:
                    raise _bad_param("application name is required")
                bad = [r for r in app if not _APP.match(r)]
                if bad:
                    raise _bad_param("invalid application name: %s: character is not allowed: %r"
                                     % (app, bad[0]))
                state = "key"
            else:
                value += c
        elif state == "key":
            if c == "}":
                state = "done"
            elif c == "=":
                state, value = "value", ""
            else:
                key += c
        elif state == "value":
            if c in ",}":
                state = "key"
                k = key.strip()
                if k != "__name__":
                    if not k:
                        raise _bad_param("tag key is required")
                    if not _TAG_KEY.match(k):
                        raise _bad_param("invalid tag key: %s" % k)
                labels[k] = value.strip()
                key = ""
            else:
                value += c
    app = labels.pop("__name__", app)
    return app, labels


def parse_multipart(ctype, body):
    """multipart/form-data split, strict on CRLFs and delimiters. Returns {name: (filename or
    None, bytes)}; raises Refused(422)."""
    m = re.match(r'multipart/form-data;\s*boundary="?([^";]+)"?$', ctype or "")
    if not m:
        raise _bad_body("malformed multipart content type header")
    delim = b"--" + m.group(1).encode()
    if not body.startswith(delim + b"\r\n"):
        raise _bad_body("multipart: body does not start with the boundary")
    if not body.endswith(delim + b"--\r\n") and not body.endswith(delim + b"--"):
        raise _bad_body("unexpected EOF")
    parts = {}
    chunks = body.split(b"\r\n" + delim)
    first = chunks[0][len(delim) + 2:]
    for chunk in [first] + [c[2:] for c in chunks[1:-1]]:
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise _bad_body("multipart: part without header end")
        disp = None
        for line in head.split(b"\r\n"):
            k, _, v = line.decode().partition(":")
            if k.strip().lower() == "content-disposition":
                disp = v.strip()
        if not disp or not disp.startswith("form-data"):
            raise _bad_body("multipart: part without form-data Content-Disposition")
        nm = re.search(r'\bname="([^"]*)"', disp)
        fn = re.search(r'\bfilename="([^"]*)"', disp)
        if not nm:
            raise _bad_body("multipart: part without name")
        parts.setdefault(nm.group(1), (fn.group(1) if fn else None, data))
    return parts


# tree.DefaultSampleTypeMapping (v0.37.2): type -> (display name, units, cumulative)
DEFAULT_TYPES = {
    "samples": ("cpu", "samples", False),
    "inuse_objects": ("inuse_objects", "objects", False),
    "alloc_objects": ("alloc_objects", "objects", True),
    "inuse_space": ("inuse_space", "bytes", False),
    "alloc_space": ("alloc_space", "bytes", True),
    "goroutine": ("goroutines", "goroutines", False),
    "contentions": ("mutex_count", "lock_samples", True),
    "delay": ("mutex_duration", "lock_nanoseconds", True),
}


def _maybe_gunzip(b):
    if b[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(b)
        except (OSError, EOFError) as e:
            raise _bad_body("unexpected EOF (%s)" % e)
    return b


def store_pprof(app, labels, prof, config, has_prev):
    """What the server stores for one decoded pprof: [(name, labels, ticks, units)]."""
    if config is None:
        mapping = DEFAULT_TYPES
    else:
        mapping = {t: (c.get("display-name") or t, c.get("units", ""), bool(c.get("cumulative")))
                   for t, c in config.items()}
    out = []
    for i, (t, unit) in enumerate(prof["sample_types"]):
        if t not in mapping:
            continue
        display, units, cumulative = mapping[t]
        if cumulative and not has_prev:
            continue  # kept in the parser's cache for the next profile, never stored here
        series = {}
        for sm in prof["samples"]:
            v = sm["values"][i]
            if v == 0:
                continue
            lab = dict(labels)
            lab.update({k: x for k, x in sm["labels"].items() if isinstance(x, str)})
            key = tuple(sorted(lab.items()))
            series[key] = series.get(key, 0) + v
        for key, ticks in series.items():
            out.append((app + "." + display, dict(key), ticks, units or unit))
    return out


def store_folded(app, labels, body, lines):
    total = 0
    for line in body.decode("utf-8", "replace").split("\n"):
        if not line.strip():
            continue
        if lines:
            total += 1
            continue
        stack, sep, count = line.rpartition(" ")
        if not sep:
            continue  # no count: skipped, as the real server does
        try:
            total += int(count)
        except ValueError:
            raise _bad_body('strconv.Atoi: parsing "%s": invalid syntax' % count)
    return [(app, dict(labels), total, "samples")] if total else []


class FakePyroscope:
    def __init__(self, status=200, retry_after=None, message=b"bad profile from fake"):
        self.port = free_port()
        self.status = status
        self.retry_after = retry_after
        self.message = message
        self.profiles = []   # pprof requests: app, labels, params, headers, raw, pprof, parts
        self.stored = []     # (name, labels, ticks, units) as the server would store them
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

            def not_post(self):
                n = int(self.headers.get("Content-Length", "0") or 0)
                self.rfile.read(n)
                self.reply(405 if urllib.parse.urlsplit(self.path).path == "/ingest" else 404)

            do_GET = do_PUT = do_DELETE = not_post

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                with outer.lock:
                    outer.attempts += 1
                try:
                    rec, stored = outer.ingest(self.path, self.headers, raw)
                except Refused as e:
                    with outer.lock:
                        outer.errors.append(str(e))
                    self.reply(e.code, (str(e) + "\n").encode())
                    return
                if outer.status != 200:
                    self.reply(outer.status, outer.message)
                    return
                with outer.lock:
                    if rec:
                        outer.profiles.append(rec)
                    outer.stored += stored
                self.reply(200)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        _servers.append(self.server)

    def ingest(self, path, headers, raw):
        """Checks one request like the real server. Returns (pprof record or None, stored
        series) or raises Refused."""
        url = urllib.parse.urlsplit(path)
        if url.path != "/ingest":
            raise Refused(404, "404 page not found")
        q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        app, labels = parse_app_name(q.get("name", ""))
        fmt = q.get("format", "")
        ctype = headers.get("Content-Type") or ""
        if fmt in ("trie", "tree", "jfr", "speedscope") or \
                ctype in ("binary/octet-stream+trie", "binary/octet-stream+tree"):
            raise _bad_body("format %s is not decoded by the fake" % (fmt or ctype))
        if fmt == "lines" or (fmt != "pprof" and "multipart/form-data" not in ctype):
            return None, store_folded(app, labels, raw, fmt == "lines")
        parts, config, prev = {}, None, False
        if fmt == "pprof":
            body = raw
        else:
            parts = parse_multipart(ctype, raw)
            files = {k: v[1] for k, v in parts.items() if v[0] is not None and v[1]}
            body = files.get("profile", b"")
            prev = bool(files.get("prev_profile"))
            if "sample_type_config" in files:
                try:
                    config = json.loads(files["sample_type_config"])
                except ValueError as e:
                    raise _bad_body(str(e))
                if not isinstance(config, dict) or \
                        not all(isinstance(c, dict) for c in config.values()):
                    raise _bad_body("json: cannot unmarshal sample_type_config")
        if not body:
            return None, []
        try:
            prof = decode_pprof(_maybe_gunzip(body))
        except (ValueError, IndexError, UnicodeDecodeError, struct.error) as e:
            raise _bad_body("proto: %s" % e)
        rec = {"app": app, "labels": labels, "params": q, "headers": dict(headers),
               "raw": parts["profile"][1] if parts else body, "pprof": prof, "parts": parts,
               "config": config}
        return rec, store_pprof(app, labels, prof, config, prev)

    def ticks(self, name, **labels):
        """Sum of the stored series named `name` whose labels include `labels`, like the real
        server's /render?query=name{k="v"}."""
        with self.lock:
            return sum(t for n, lab, t, _ in self.stored
                       if n == name and all(lab.get(k) == v for k, v in labels.items()))

    def names(self):
        with self.lock:
            return sorted({n for n, _, _, _ in self.stored})

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

