"""Profiles end to end: OTLP profiles (v1development, opentelemetry-proto HEAD ac2c4b5 after
1.10.0; see proto/otlp_profiles.proto) in over /v1development/profiles and out of the file
exporter; OTLP -> pprof through the pyroscope exporter into a strict fake Pyroscope that
decodes the pprof and is checked against the OTLP input (sample types, values, stacks, labels);
the pyroscope receiver's /ingest (pprof raw / multipart / gzip, folded) forwarded without
re-encoding; retries and loss accounting; bad input for both profile receivers -> 400 with a
reason."""
import base64
import gzip
import json
import time

from fakepyroscope import FakePyroscope, decode_pprof, encode_pprof, multipart
from harness import Meltp, http_request, wait_until

T0 = 1700000000000000000

# A hand-built OTLP profile: stacks main -> work -> leaf (x2 samples) and main -> idle,
# sample attributes thread=t1 (string) and a trace link; CPU time in nanoseconds.
OTLP_PROFILE = {
    "resourceProfiles": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "checkout"}},
            {"key": "deployment.environment", "value": {"stringValue": "prod"}},
            {"key": "host.cores", "value": {"intValue": "8"}},
        ]},
        "scopeProfiles": [{
            "scope": {"name": "test-profiler"},
            "profiles": [{
                "sampleType": {"typeStrindex": 1, "unitStrindex": 2},
                "periodType": {"typeStrindex": 1, "unitStrindex": 2},
                "period": "10000000",
                "timeUnixNano": str(T0),
                "durationNano": "10000000000",
                "profileId": "0102030405060708090a0b0c0d0e0f10",
                "samples": [
                    {"stackIndex": 1, "values": ["30000000"], "attributeIndices": [1],
                     "linkIndex": 1},
                    {"stackIndex": 2, "values": ["20000000", "5000000"]},
                    {"stackIndex": 1, "timestampsUnixNano": [str(T0 + 1), str(T0 + 2)]},
                ],
            }],
        }],
    }],
    "dictionary": {
        "stringTable": ["", "cpu", "nanoseconds", "main", "work", "leaf", "idle", "app.go",
                        "thread", "/usr/bin/checkout"],
        "mappingTable": [{}, {"memoryStart": "4096", "memoryLimit": "65536",
                              "filenameStrindex": 9}],
        "functionTable": [{}, {"nameStrindex": 3, "filenameStrindex": 7},
                          {"nameStrindex": 4, "filenameStrindex": 7},
                          {"nameStrindex": 5, "filenameStrindex": 7},
                          {"nameStrindex": 6, "filenameStrindex": 7}],
        "locationTable": [{}, {"mappingIndex": 1, "address": "4100",
                               "lines": [{"functionIndex": 1, "line": "10"}]},
                          {"mappingIndex": 1, "address": "4200",
                           "lines": [{"functionIndex": 2, "line": "20"}]},
                          {"mappingIndex": 1, "address": "4300",
                           "lines": [{"functionIndex": 3, "line": "30"}]},
                          {"mappingIndex": 1, "address": "4400",
                           "lines": [{"functionIndex": 4, "line": "40"}]}],
        # leaf first
        "stackTable": [{}, {"locationIndices": [3, 2, 1]}, {"locationIndices": [4, 1]}],
        "attributeTable": [{}, {"keyStrindex": 8, "value": {"stringValue": "t1"}}],
        "linkTable": [{}, {"traceId": "5b8efff798038103d269b633813fc60c",
                           "spanId": "eee19b7ec3c1b174"}],
    },
}

JSON = "application/json"

PIPE_CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
  pyroscope:
    endpoint: 127.0.0.1:{pyro}
exporters:
  file:
    path: {dir}/profiles.jsonl
  pyroscope:
    endpoint: %s
    external_labels:
      cluster: lab
    retry_on_failure:
      initial_interval: 10ms
      max_interval: 20ms
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    profiles: {{receivers: [otlp, pyroscope], exporters: [file, pyroscope]}}
"""


def start(fake, extra=""):
    from harness import free_port
    pyro = free_port()
    cfg = (PIPE_CFG % fake.url).replace("{pyro}", str(pyro)) + extra
    m = Meltp(cfg)
    m.pyro = pyro
    wait_until(lambda: _port_open(pyro), 5, what="pyroscope receiver")
    return m


def _port_open(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def ingest(m, params, body, ctype="application/octet-stream", headers=None):
    import urllib.parse
    url = "http://127.0.0.1:%d/ingest?%s" % (m.pyro, urllib.parse.urlencode(params))
    return http_request(url, body, ctype, None, headers)


def file_profiles(m):
    return m.file_lines("profiles.jsonl")


def test_otlp_json_profile_to_file_exporter():
    fake = FakePyroscope()
    m = start(fake)
    st, _, body = m.post("/v1development/profiles", json.dumps(OTLP_PROFILE).encode(), JSON)
    assert st == 200, body
    lines = wait_until(lambda: file_profiles(m), 5, what="profile in file")
    req = lines[0]
    d = req["dictionary"]
    assert d["stringTable"][:3] == ["", "cpu", "nanoseconds"]
    assert d["stackTable"][1]["locationIndices"] == [3, 2, 1]
    prof = req["resourceProfiles"][0]["scopeProfiles"][0]["profiles"][0]
    assert prof["sampleType"] == {"typeStrindex": 1, "unitStrindex": 2}
    assert [s.get("values") for s in prof["samples"]] == [["30000000"], ["20000000", "5000000"],
                                                          None]
    assert prof["timeUnixNano"] == str(T0)
    assert prof["profileId"] == "0102030405060708090a0b0c0d0e0f10"
    rattrs = {a["key"]: a["value"] for a in req["resourceProfiles"][0]["resource"]["attributes"]}
    assert rattrs["service.name"] == {"stringValue": "checkout"}


def test_otlp_profile_to_pyroscope_as_pprof():
    fake = FakePyroscope()
    m = start(fake)
    st, _, body = m.post("/v1development/profiles", json.dumps(OTLP_PROFILE).encode(), JSON,
                         headers={"X-Scope-OrgID": "team-a"})
    assert st == 200, body
    got = wait_until(fake.got, 5, what="profile at fake pyroscope")
    assert not fake.errors, fake.errors
    assert len(got) == 1
    g = got[0]
    assert g["app"] == "checkout"
    assert g["labels"] == {"deployment_environment": "prod", "host_cores": "8",
                           "cluster": "lab"}, g["labels"]
    assert g["params"]["from"] == str(T0 // 10**9)
    assert g["params"]["until"] == str(T0 // 10**9 + 10)
    assert g["params"]["spyName"] == "meltp"
    assert g["headers"].get("X-Scope-OrgID") == "team-a"
    p = g["pprof"]
    assert p["strings"][0] == ""
    assert p["sample_types"] == [("cpu", "nanoseconds")]
    assert p["default_sample_type"] == "cpu"
    assert p["period_type"] == ("cpu", "nanoseconds") and p["period"] == 10000000
    assert p["time_nanos"] == T0 and p["duration_nanos"] == 10 * 10**9
    samples = p["samples"]
    assert [s["stack"] for s in samples] == [["leaf", "work", "main"], ["idle", "main"],
                                             ["leaf", "work", "main"]]
    # values summed per sample; timestamps-only samples count their timestamps
    assert [s["values"] for s in samples] == [[30000000], [25000000], [2]]
    assert samples[0]["labels"] == {"thread": "t1", "span_id": "eee19b7ec3c1b174",
                                    "trace_id": "5b8efff798038103d269b633813fc60c"}
    assert samples[1]["labels"] == {}
    assert {f["filename"] for f in p["functions"].values()} == {"app.go"}
    assert [mp[5] for mp in p["mappings"].values()] == [p["strings"].index("/usr/bin/checkout")]
    # the fake has the request before meltp has read the answer
    wait_until(lambda: m.metric("meltp_exporter_sent_items_total", exporter="pyroscope") == 1, 10,
               what="the profile counted as sent")


def _cpu_pprof(time_nanos=0):
    return encode_pprof(
        [("samples", "count"), ("cpu", "nanoseconds")],
        [(["leaf", "work", "main"], [3, 30000000], {"goroutine": "7"}),
         (["idle", "main"], [1, 10000000], {}),
         (["gc"], [0, 0], {})],
        period_type=("cpu", "nanoseconds"), period=10000000, time_nanos=time_nanos,
        duration_nanos=10 * 10**9)


def test_ingest_pprof_multipart_gzip_forwarded_as_is():
    fake = FakePyroscope()
    m = start(fake)
    raw = _cpu_pprof(T0)
    gz = gzip.compress(raw)
    ctype, body = multipart([("profile", "profile.pprof", gz),
                             ("sample_type_config", "sample_type_config.json", b"{}")])
    st, _, resp = ingest(m, {"name": "shop.api{env=prod,region=eu}", "from": "1700000000",
                             "until": "1700000010", "format": "pprof", "spyName": "gospy"},
                         body, ctype, headers={"X-Scope-OrgID": "t1"})
    assert st == 200, resp
    got = wait_until(fake.got, 5, what="forwarded profile")
    time.sleep(0.3)  # an absence: a second send would come right behind; no wait can show none
    got = fake.got()
    assert not fake.errors, fake.errors
    # two sample types -> two OTLP profiles, but the pprof is sent once, byte for byte
    assert len(got) == 1, len(got)
    g = got[0]
    assert g["raw"] == gz
    assert g["app"] == "shop.api"
    assert g["labels"] == {"env": "prod", "region": "eu", "cluster": "lab"}
    assert g["params"]["spyName"] == "gospy"
    assert (g["params"]["from"], g["params"]["until"]) == ("1700000000", "1700000010")
    assert g["headers"].get("X-Scope-OrgID") == "t1"
    # the OTLP side: one profile per sample type, zero values left out
    req = wait_until(lambda: file_profiles(m), 5, what="OTLP profile in file")[0]
    rp = req["resourceProfiles"][0]
    attrs = {a["key"]: a["value"]["stringValue"] for a in rp["resource"]["attributes"]}
    assert attrs == {"service.name": "shop.api", "env": "prod", "region": "eu",
                     "pyroscope.spy_name": "gospy"}
    profs = rp["scopeProfiles"][0]["profiles"]
    d = req["dictionary"]
    s = d["stringTable"]
    assert [(s[p["sampleType"]["typeStrindex"]], s[p["sampleType"]["unitStrindex"]])
            for p in profs] == [("samples", "count"), ("cpu", "nanoseconds")]
    assert [[int(v) for x in p["samples"] for v in x["values"]] for p in profs] == \
        [[3, 1], [30000000, 10000000]]
    assert profs[0]["originalPayloadFormat"] == "pprof"
    assert base64.b64decode(profs[0]["originalPayload"]) == gz
    assert profs[0]["timeUnixNano"] == str(T0) and profs[0]["durationNano"] == "10000000000"
    stack = d["stackTable"][profs[1]["samples"][0]["stackIndex"]]["locationIndices"]
    names = [s[d["functionTable"][d["locationTable"][li]["lines"][0]["functionIndex"]]
               ["nameStrindex"]] for li in stack]
    assert names == ["leaf", "work", "main"]
    attr = d["attributeTable"][profs[1]["samples"][0]["attributeIndices"][0]]
    assert s[attr["keyStrindex"]] == "goroutine" and attr["value"]["stringValue"] == "7"


def test_ingest_raw_pprof_is_gzipped_on_the_way_out():
    fake = FakePyroscope()
    m = start(fake)
    raw = _cpu_pprof(T0)
    st, _, resp = ingest(m, {"name": "raw.app", "format": "pprof"}, raw)
    assert st == 200, resp
    got = wait_until(fake.got, 5, what="forwarded profile")
    assert gzip.decompress(got[0]["raw"]) == raw
    assert got[0]["pprof"]["sample_types"] == [("samples", "count"), ("cpu", "nanoseconds")]
    # and a gzip body without multipart
    st, _, resp = ingest(m, {"name": "raw.app", "format": "pprof"}, gzip.compress(raw))
    assert st == 200, resp
    wait_until(lambda: len(fake.got()) == 2, 5, what="second profile")


def test_ingest_folded_to_pprof():
    fake = FakePyroscope()
    m = start(fake)
    text = b"main;work;leaf 7\nmain;idle 3\nmain;work;leaf 5\n"
    st, _, resp = ingest(m, {"name": "py.app.cpu{pod=p1}", "from": "1700000000",
                             "until": "1700000010", "sampleRate": "100", "spyName": "pyspy",
                             "units": "samples", "aggregationType": "sum"},
                         text, "text/plain")
    assert st == 200, resp
    got = wait_until(fake.got, 5, what="folded profile at fake")
    assert not fake.errors, fake.errors
    g = got[0]
    # sent as py.app: Pyroscope appends the sample type's `.cpu` itself (see fakepyroscope.py)
    assert g["app"] == "py.app" and g["labels"] == {"pod": "p1", "cluster": "lab"}
    assert fake.names() == ["py.app.cpu"] and fake.ticks("py.app.cpu", pod="p1") == 15
    assert g["params"]["spyName"] == "pyspy"
    p = g["pprof"]
    assert p["sample_types"] == [("samples", "count")]
    assert p["period_type"] == ("cpu", "nanoseconds") and p["period"] == 10000000
    assert sorted((s["stack"], s["values"]) for s in p["samples"]) == \
        [(["idle", "main"], [3]), (["leaf", "work", "main"], [12])]


def test_exporter_retries_5xx_and_429_then_delivers():
    fake = FakePyroscope(status=500)
    m = start(fake)
    st, _, _ = m.post("/v1development/profiles", json.dumps(OTLP_PROFILE).encode(), JSON)
    assert st == 200
    wait_until(lambda: fake.attempts >= 3, 5, what="retries")
    fake.status = 429
    wait_until(lambda: fake.attempts >= 5, 5, what="retries on 429")
    fake.status = 200
    wait_until(fake.got, 5, what="delivery after retries")
    assert m.metric("meltp_exporter_retries_total", exporter="pyroscope") >= 4
    assert m.metric("meltp_exporter_dropped_items_total", exporter="pyroscope") == 0


def test_exporter_4xx_is_permanent_and_counted():
    fake = FakePyroscope(status=400, message=b"profile rejected: too old")
    m = start(fake)
    st, _, _ = m.post("/v1development/profiles", json.dumps(OTLP_PROFILE).encode(), JSON)
    assert st == 200
    wait_until(lambda: m.metric("meltp_exporter_dropped_items_total", exporter="pyroscope",
                                reason="http_400") == 1, 5, what="drop counted")
    assert fake.attempts == 1
    # logged just after the drop is counted
    wait_until(lambda: "profile rejected: too old" in m.logtext(), 10,
               what="the backend's message logged")


def test_bad_input_is_400_with_reason():
    fake = FakePyroscope()
    m = start(fake)
    good = gzip.compress(_cpu_pprof())
    cases = [
        ({"name": "a", "format": "pprof"}, b"\x0a\xff\xff\x01junk", "application/octet-stream",
         "corrupt pprof"),
        ({"name": "a", "format": "pprof"}, b"\x1f\x8b\x08\x00garbage", "application/octet-stream",
         "gzip"),
        ({"name": "a", "format": "pprof"}, b"--b\r\nContent-Disposition: form-data; "
         b"name=\"profile\"\r\n\r\nabc", "multipart/form-data; boundary=b", "closing boundary"),
        ({"name": "a", "format": "pprof"}, multipart([("other", "x", good)])[1],
         multipart([("other", "x", good)])[0], "no \"profile\" field"),
        ({"name": "a", "format": "pprof"}, good, "multipart/form-data", "boundary"),
        ({"name": "a", "format": "jfr"}, good, "application/octet-stream", "not supported"),
        ({"name": "a", "format": "speedscope"}, b"{}", "application/json", "not supported"),
        ({"format": "folded"}, b"a;b 1\n", "text/plain", "name is required"),
        ({"name": "a{env=}x"}, b"a;b 1\n", "text/plain", "labels"),
        ({"name": "a"}, b"a;b notanumber\n", "text/plain", "line 1"),
        ({"name": "a", "units": "parsecs"}, b"a;b 1\n", "text/plain", "units"),
        ({"name": "a", "from": "yesterday"}, b"a;b 1\n", "text/plain", "from/until"),
    ]
    for params, body, ctype, reason in cases:
        st, _, resp = ingest(m, params, body, ctype)
        assert st == 400, (params, st, resp)
        assert reason in resp.decode(), (params, resp)
    st, _, resp = http_request("http://127.0.0.1:%d/ingest" % m.pyro, None, method="GET")
    assert st == 405
    st, _, resp = http_request("http://127.0.0.1:%d/nope" % m.pyro, b"x")
    assert st == 404
    # the OTLP receiver refuses broken profiles too
    st, _, resp = m.post("/v1development/profiles", b"\x0a\x05\x12\xff\xff", "application/x-protobuf")
    assert st == 400, st
    st, _, resp = m.post("/v1development/profiles", b'{"resourceProfiles": 5}', JSON)
    assert st == 400, st
    assert m.metric("meltp_receiver_refused_requests_total", receiver="pyroscope") >= len(cases)
    time.sleep(0.3)  # an absence: nothing may be forwarded, and no wait can show nothing is
    assert not fake.got()
    assert not file_profiles(m)


def test_pprof_from_meltp_is_valid():
    """Decode every pprof meltp produced for a larger OTLP input with the strict decoder:
    ids 1..n, "" first, every reference resolvable, gzip intact."""
    fake = FakePyroscope()
    m = start(fake)
    req = json.loads(json.dumps(OTLP_PROFILE))
    prof = req["resourceProfiles"][0]["scopeProfiles"][0]["profiles"][0]
    prof["samples"] = prof["samples"] * 50
    st, _, _ = m.post("/v1development/profiles", json.dumps(req).encode(), JSON)
    assert st == 200
    got = wait_until(fake.got, 5, what="profile")
    p = decode_pprof(gzip.decompress(got[0]["raw"]))
    assert len(p["samples"]) == 150
    assert sorted(p["functions"]) == list(range(1, len(p["functions"]) + 1))
    assert sorted(p["mappings"]) == [1]
    assert len(set(p["strings"])) == len(p["strings"]), "strings deduplicated"
