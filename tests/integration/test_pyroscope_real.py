"""The pyroscope exporter against what Pyroscope really accepts and stores: each scenario runs
once against the strict fake (fakepyroscope.py, always) and once against the real server
(realservers.RealServer("pyroscope"), skipped with the reason when there is no binary), and
asks for ticks under the name the client used, the way a user queries Pyroscope
(/render?query=app.cpu{env="x"}). REFUSAL_CASES replays the probes that the fake's rules came
from against both, so the fake cannot drift from the server."""
import gzip
import json
import time
import urllib.parse

import realservers
from fakepyroscope import FakePyroscope, encode_pprof, multipart
from harness import Meltp, free_port, http_request, wait_until

CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
  pyroscope:
    endpoint: 127.0.0.1:%(pyro)d
exporters:
  pyroscope:
    endpoint: %(url)s
    retry_on_failure:
      initial_interval: 10ms
      max_interval: 20ms
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    profiles: {{receivers: [otlp, pyroscope], exporters: [pyroscope]}}
"""


class FakeBackend:
    def __init__(self):
        self.fake = FakePyroscope()
        self.url = self.fake.url

    def ticks(self, name, labels, frm, until):
        return self.fake.ticks(name, **labels)

    def check(self):
        assert not self.fake.errors, self.fake.errors
        for rec in self.fake.got():
            # sample_type_config names only the types of the pprof it came with
            types = {t for t, _ in rec["pprof"]["sample_types"]}
            assert rec["config"] is not None and set(rec["config"]) <= types, \
                (rec["config"], types)


class RealBackend:
    def __init__(self):
        self.srv = realservers.RealServer("pyroscope")
        self.url = "http://127.0.0.1:%d" % self.srv.http

    def ticks(self, name, labels, frm, until):
        sel = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        q = urllib.parse.urlencode({"format": "json", "query": "%s{%s}" % (name, sel),
                                    "from": str(frm), "until": str(until)})
        st, _, body = http_request(self.srv.url("/render?" + q), None, method="GET")
        assert st == 200, (st, body[:300])
        return json.loads(body)["flamebearer"]["numTicks"]

    def check(self):
        pass


def _start(backend):
    pyro = free_port()
    m = Meltp(CFG % {"pyro": pyro, "url": backend.url})
    m.pyro = pyro
    wait_until(lambda: _open(pyro), 5, what="pyroscope receiver")
    return m


def _open(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _window():
    """[from, until) on 10-second boundaries, a little in the past: numTicks are exact."""
    t = int(time.time()) // 10 * 10 - 30
    return t, t + 10


def _ingest(m, params, body, ctype="text/plain"):
    url = "http://127.0.0.1:%d/ingest?%s" % (m.pyro, urllib.parse.urlencode(params))
    return http_request(url, body, ctype)


def _lands(backend, name, labels, frm, until, want, what):
    wait_until(lambda: backend.ticks(name, labels, frm, until) == want, 20, step=0.2, what=what)


# ---- folded -> pyroscope receiver -> pyroscope exporter -> Pyroscope -----------------------

FOLDED_175 = b"main;work;leaf 100\nmain;idle 50\nmain;work;gc 25\n"


def _folded_keeps_its_name(backend):
    m = _start(backend)
    frm, until = _window()
    st, _, body = _ingest(m, {"name": "app.cpu{env=x}", "from": frm, "until": until,
                              "sampleRate": "100", "spyName": "pyspy"}, FOLDED_175)
    assert st == 200, body
    _lands(backend, "app.cpu", {"env": "x"}, frm, until, 175, "175 ticks under app.cpu{env=x}")
    # not stored twice nor under the name with the suffix appended again
    assert backend.ticks("app.cpu.cpu", {}, frm, until) == 0
    assert backend.ticks("app.cpu", {"env": "x"}, frm, until) == 175
    # other sample types keep their names too: app.inuse_space, app.alloc_objects (cumulative
    # on the server's own table: stored only because meltp says it is not)
    for name, units in (("app.inuse_space", "bytes"), ("app.alloc_objects", "objects")):
        st, _, body = _ingest(m, {"name": name + "{env=x}", "from": frm, "until": until,
                                  "units": units}, FOLDED_175)
        assert st == 200, body
        _lands(backend, name, {"env": "x"}, frm, until, 175, "175 ticks under " + name)
    backend.check()


def test_folded_keeps_its_name_strict_fake():
    _folded_keeps_its_name(FakeBackend())


def test_folded_keeps_its_name_real_pyroscope():
    _folded_keeps_its_name(RealBackend())


# ---- pprof (multipart, Go SDK style) -> receiver -> exporter -> Pyroscope -------------------

def _go_cpu_pprof(t):
    return encode_pprof(
        [("samples", "count"), ("cpu", "nanoseconds")],
        [(["leaf", "work", "main"], [3, 30000000], {}), (["idle", "main"], [1, 10000000], {})],
        period_type=("cpu", "nanoseconds"), period=10000000, time_nanos=t * 10**9,
        duration_nanos=10 * 10**9)


def _pprof_is_stored_like_direct(backend):
    m = _start(backend)
    frm, until = _window()
    ctype, body = multipart([("profile", "profile.pprof", gzip.compress(_go_cpu_pprof(frm)))])
    st, _, resp = _ingest(m, {"name": "go.app{env=z}", "from": frm, "until": until,
                              "spyName": "gospy"}, body, ctype)
    assert st == 200, resp
    # samples -> go.app.cpu, as when the SDK sends to Pyroscope itself; cpu/nanoseconds has the
    # same display name and is left out rather than added to it
    _lands(backend, "go.app.cpu", {"env": "z"}, frm, until, 4, "4 samples under go.app.cpu")
    assert backend.ticks("go.app.cpu.cpu", {}, frm, until) == 0
    backend.check()


def test_pprof_stored_like_direct_strict_fake():
    _pprof_is_stored_like_direct(FakeBackend())


def test_pprof_stored_like_direct_real_pyroscope():
    _pprof_is_stored_like_direct(RealBackend())


# ---- OTLP profiles -> pyroscope exporter -> Pyroscope ---------------------------------------

def _otlp(frm):
    prof = {"timeUnixNano": str(frm * 10**9), "durationNano": str(10 * 10**9)}
    return {
        "resourceProfiles": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "otel.app"}},
                {"key": "env", "value": {"stringValue": "y"}}]},
            "scopeProfiles": [{"profiles": [
                dict(prof, sampleType={"typeStrindex": 1, "unitStrindex": 2},
                     samples=[{"stackIndex": 1, "values": ["300"]},
                              {"stackIndex": 2, "values": ["200"]}]),
                dict(prof, sampleType={"typeStrindex": 5, "unitStrindex": 6},
                     samples=[{"stackIndex": 1, "values": ["7"]}]),
            ]}],
        }],
        "dictionary": {
            "stringTable": ["", "cpu", "nanoseconds", "main", "work", "alloc_objects", "count"],
            "functionTable": [{}, {"nameStrindex": 3}, {"nameStrindex": 4}],
            "locationTable": [{}, {"lines": [{"functionIndex": 1}]},
                              {"lines": [{"functionIndex": 2}]}],
            "stackTable": [{}, {"locationIndices": [2, 1]}, {"locationIndices": [1]}],
        },
    }


def _otlp_lands_per_type(backend):
    m = _start(backend)
    frm, until = _window()
    st, _, body = m.post("/v1development/profiles", json.dumps(_otlp(frm)).encode(),
                         "application/json")
    assert st == 200, body
    # cpu/nanoseconds is outside the server's own table and alloc_objects is cumulative there:
    # both are stored only because meltp sends a sample_type_config
    _lands(backend, "otel.app.cpu", {"env": "y"}, frm, until, 500, "otel.app.cpu")
    _lands(backend, "otel.app.alloc_objects", {"env": "y"}, frm, until, 7,
           "otel.app.alloc_objects")
    backend.check()


def test_otlp_lands_per_type_strict_fake():
    _otlp_lands_per_type(FakeBackend())


def test_otlp_lands_per_type_real_pyroscope():
    _otlp_lands_per_type(RealBackend())


# ---- the fake refuses what the real server refuses ------------------------------------------

def _refusal_cases():
    raw = _go_cpu_pprof(1700000000)
    gz = gzip.compress(raw)
    ct, mp = multipart([("profile", "profile.pprof", gz)])
    bad_stc = multipart([("profile", "profile.pprof", gz),
                         ("sample_type_config", "sample_type_config.json", b"{nope")])
    no_file = multipart([("profile", None, gz)])
    folded = b"a;b 1\n"
    return [
        # (what, params, body, content type, status)
        ("multipart with format=pprof", {"name": "a", "format": "pprof"}, mp, ct, 422),
        ("multipart without format", {"name": "a"}, mp, ct, 200),
        ("gzip pprof with format=pprof", {"name": "a", "format": "pprof"}, gz, None, 200),
        ("raw pprof with format=pprof", {"name": "a", "format": "pprof"}, raw, None, 200),
        ("corrupt pprof", {"name": "a", "format": "pprof"}, b"\x0a\xff\xff\x01junk", None, 422),
        ("corrupt gzip", {"name": "a", "format": "pprof"}, b"\x1f\x8b\x08\x00garbage", None,
         422),
        ("empty pprof", {"name": "a", "format": "pprof"}, b"", None, 200),
        ("multipart without profile", {"name": "a"},
         *reversed(multipart([("other", "x", gz)])), 200),
        ("profile part without filename", {"name": "a"}, no_file[1], no_file[0], 200),
        ("bad sample_type_config", {"name": "a"}, bad_stc[1], bad_stc[0], 422),
        ("multipart without boundary", {"name": "a"}, mp, "multipart/form-data", 422),
        ("multipart not closed", {"name": "a"},
         b"--b\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"p\"\r\n\r\nabc",
         "multipart/form-data; boundary=b", 422),
        ("no name", {}, folded, None, 400),
        ("empty name", {"name": ""}, folded, None, 400),
        ("labels only", {"name": "{a=b}"}, folded, None, 400),
        ("space in app name", {"name": "a b"}, folded, None, 400),
        ("slash in app name", {"name": "a/b"}, folded, None, 400),
        ("colon in app name", {"name": "a:b"}, folded, None, 400),
        ("non-ASCII app name", {"name": "caf\u00e9"}, folded, None, 400),
        ("dash in label key", {"name": "a{a-b=x}"}, folded, None, 400),
        ("empty label key", {"name": "a{=x}"}, folded, None, 400),
        ("empty label value", {"name": "a{env=}"}, folded, None, 200),
        ("__name__ label", {"name": "a{__name__=b}"}, folded, None, 200),
        ("unterminated labels", {"name": "a{env=x"}, folded, None, 200),
        ("odd label value", {"name": "a{env=x y/z:\u00e9}"}, folded, None, 200),
        ("text after labels", {"name": "a{env=x}junk"}, folded, None, 200),
        ("folded count not a number", {"name": "a"}, b"a;b many\n", None, 422),
        ("folded line without count", {"name": "a"}, b"a;b\n", None, 200),
        ("unknown format is folded", {"name": "a", "format": "nope"}, folded, None, 200),
        ("lines", {"name": "a", "format": "lines"}, b"a;b\na;b\n", None, 200),
        ("jfr junk", {"name": "a", "format": "jfr"}, b"junk", None, 422),
        ("trie junk", {"name": "a", "format": "trie"}, b"junk", None, 422),
        ("tree junk", {"name": "a", "format": "tree"}, b"junk", None, 422),
        ("trie by Content-Type", {"name": "a"}, b"junk", "binary/octet-stream+trie", 422),
        ("from not a time", {"name": "a", "from": "yesterday"}, folded, None, 200),
        ("until before from", {"name": "a", "from": "1700000100", "until": "1700000000"},
         folded, None, 200),
        ("sampleRate not a number", {"name": "a", "sampleRate": "abc"}, folded, None, 200),
        ("units unknown", {"name": "a", "units": "parsecs"}, folded, None, 200),
    ]


def _refusals(base):
    got = []
    for what, params, body, ctype, want in _refusal_cases():
        url = base + "/ingest?" + urllib.parse.urlencode(params)
        st, _, resp = http_request(url, body, ctype or "application/octet-stream")
        got.append((what, st, want, resp[:160]))
    st, _, _ = http_request(base + "/ingest", None, method="GET")
    got.append(("GET /ingest", st, 405, b""))
    bad = [g for g in got if g[1] != g[2]]
    assert not bad, bad


def test_fake_refuses_what_pyroscope_refuses():
    _refusals(FakePyroscope().url)


def test_real_pyroscope_refuses_the_same():
    _refusals(RealBackend().url)
