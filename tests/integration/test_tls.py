"""TLS on meltp's listeners and to its backends, with certificates made at test time by the
`openssl` command (a CA, another CA, server and client certificates, an expired one):

- TLS 1.2 and 1.3 accepted, 1.1 refused (an openssl s_server that speaks 1.1 proves the
  client could), min_version "1.3" refuses 1.2;
- mTLS: no client certificate, one from another CA refused (and counted), the right one
  accepted;
- certificate files replaced while a client sends ~200 requests/s: no request fails, a
  connection opened before the rotation keeps working, new connections get the new serial;
  a file that turns bad keeps the old certificate and the log says why;
- tenants_from_certificate: a bound client certificate's requests get its tenant, another
  X-Scope-OrgID is 403 and counted, an unbound certificate keeps the header's tenant;
- meltp -> Loki (fakeloki.py) and -> an OTLP sink over mTLS, with server_name_override;
- check-config names FILE:LINE for missing, unreadable, mismatched and expired files."""
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

import harness
from fakeloki import FakeLoki
from harness import FakeOtlp, Meltp, make_traces, wait_until
from test_prw_receiver import rw1_series, snappy_encode

JSON = "application/json"
LOGS = b'{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":' \
       b'{"stringValue":"tls"}}]},"scopeLogs":[{"logRecords":[{"body":{"stringValue":"hi"}}]}]}]}'


def openssl(*args, cwd):
    subprocess.run(("openssl",) + args, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_ca(d, name, cn):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", name + ".key", "-out", name + ".crt", "-days", "2", "-subj", "/CN=" + cn,
            cwd=d)


def make_cert(d, name, ca, cn, serial, san, usage, days="2"):
    """A P-256 key and certificate signed by `ca` (its .crt/.key in d)."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\nextendedKeyUsage=%s\n" % (san, usage))
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
            "-set_serial", serial, "-days", days, "-extfile", name + ".ext", "-out",
            name + ".crt", cwd=d)


@pytest.fixture(scope="module")
def pki():
    d = tempfile.mkdtemp(prefix="meltp-tls-")
    make_ca(d, "ca", "meltp test CA")
    make_ca(d, "ca2", "another CA")
    # -days 0: notAfter is the second it is made
    make_cert(d, "expired", "ca", "localhost", "0x9001", "IP:127.0.0.1", "serverAuth", days="0")
    make_cert(d, "server", "ca", "localhost", "0x1001", "IP:127.0.0.1,DNS:localhost",
              "serverAuth")
    make_cert(d, "server2", "ca", "localhost", "0x1002", "IP:127.0.0.1,DNS:localhost",
              "serverAuth")
    make_cert(d, "sink", "ca", "sink.internal", "0x1003", "DNS:sink.internal", "serverAuth")
    make_cert(d, "client-a", "ca", "client-a", "0x2001", "URI:spiffe://lab/client-a",
              "clientAuth")
    make_cert(d, "client-b", "ca", "client-b", "0x2002", "DNS:client-b", "clientAuth")
    make_cert(d, "meltp", "ca", "meltp", "0x2003", "DNS:meltp", "clientAuth")
    make_cert(d, "rogue", "ca2", "client-a", "0x3001", "URI:spiffe://lab/client-a", "clientAuth")
    # a certificate is valid through its notAfter second: wait until that second has passed
    end = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", "expired.crt"], cwd=d,
                         check=True, capture_output=True, text=True).stdout
    not_after = ssl.cert_time_to_seconds(end.strip().split("=", 1)[1])
    wait_until(lambda: time.time() >= not_after + 1, 5, what="the expired certificate to expire")
    yield lambda name: os.path.join(d, name)
    shutil.rmtree(d, ignore_errors=True)


def tls_section(pki, indent, client_ca=True, extra=""):
    pad = " " * indent
    lines = ["tls:", "  cert_file: " + pki("live.crt"), "  key_file: " + pki("live.key")]
    if client_ca:
        lines.append("  client_ca_file: " + pki("ca.crt"))
    lines += [l for l in extra.splitlines() if l.strip()]
    return "\n".join(pad + l for l in lines)


CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
%s
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:%d
    retry_on_failure: {{enabled: false}}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    logs: {{receivers: [otlp], exporters: [otlphttp]}}
"""


def start(pki, sink, client_ca=True, extra=""):
    """meltp with TLS on its OTLP/HTTP receiver, serving copies of server.crt/key (live.*) so
    a test can replace them."""
    for ext in ("crt", "key"):
        shutil.copyfile(pki("server." + ext), pki("live." + ext))
    return Meltp(CONFIG % (tls_section(pki, 8, client_ca, extra), sink.port))


def curl(m, *args, headers=()):
    """POSTs LOGS to meltp's /v1/logs with the curl command; (exit code, http code, stderr)."""
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H",
           "Content-Type: application/json", "--data-binary", LOGS, "--max-time", "10"]
    for h in headers:
        cmd += ["-H", h]
    cmd += list(args) + ["https://127.0.0.1:%d/v1/logs" % m.otlp]
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stdout.strip(), p.stderr


def client_ctx(pki, cert=None):
    ctx = ssl.create_default_context(cafile=pki("ca.crt"))
    if cert:
        ctx.load_cert_chain(pki(cert + ".crt"), pki(cert + ".key"))
    return ctx


def post(conn, headers=None):
    h = {"Content-Type": JSON}
    h.update(headers or {})
    conn.request("POST", "/v1/logs", body=LOGS, headers=h)
    r = conn.getresponse()
    r.read()
    return r.status


def served_serial(m, ctx):
    with socket.create_connection(("127.0.0.1", m.otlp), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            return t.getpeercert()["serialNumber"]


def test_tls_versions(pki):
    sink = FakeOtlp()
    m = start(pki, sink, client_ca=False)
    ca = ["--cacert", pki("ca.crt")]
    assert curl(m, *ca, "--tlsv1.2", "--tls-max", "1.2")[:2] == (0, "200")
    assert curl(m, *ca, "--tlsv1.3", "--tls-max", "1.3")[:2] == (0, "200")
    old = ["--ciphers", "DEFAULT@SECLEVEL=0", "--tlsv1.1", "--tls-max", "1.1"]
    rc, code, err = curl(m, *ca, *old)
    assert rc == 35 and code == "000", (rc, code, err)
    # the same curl does speak TLS 1.1 to a server that accepts it: the refusal was meltp's
    port = harness.free_port()
    srv = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % port, "-cert",
                            pki("server.crt"), "-key", pki("server.key"), "-tls1_1",
                            "-cipher", "DEFAULT@SECLEVEL=0", "-www", "-quiet"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    harness._procs.append(srv)
    wait_until(lambda: _connects(port), 10, what="openssl s_server")
    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", *ca, *old,
                        "https://127.0.0.1:%d/" % port], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout == "200", p.stderr
    # plain HTTP on the TLS port gets no HTTP answer
    rc, code, _ = (lambda p: (p.returncode, p.stdout, p.stderr))(subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
         "http://127.0.0.1:%d/v1/logs" % m.otlp], capture_output=True, text=True))
    assert code != "200" and rc != 0


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def test_min_version_1_3_refuses_1_2(pki):
    sink = FakeOtlp()
    m = start(pki, sink, client_ca=False, extra='  min_version: "1.3"')
    ca = ["--cacert", pki("ca.crt")]
    assert curl(m, *ca, "--tlsv1.3")[:2] == (0, "200")
    rc, code, err = curl(m, *ca, "--tlsv1.2", "--tls-max", "1.2")
    assert rc == 35 and code == "000", (rc, code, err)


def test_mtls_client_certificates(pki):
    sink = FakeOtlp()
    m = start(pki, sink)
    ca = ["--cacert", pki("ca.crt")]
    for v in (["--tlsv1.2", "--tls-max", "1.2"], ["--tlsv1.3"]):
        rc, code, err = curl(m, *ca, *v)
        assert rc != 0 and code == "000", ("no client certificate", v, rc, code, err)
        rc, code, err = curl(m, *ca, *v, "--cert", pki("rogue.crt"), "--key", pki("rogue.key"))
        assert rc != 0 and code == "000", ("another CA", v, rc, code, err)
        assert curl(m, *ca, *v, "--cert", pki("client-a.crt"), "--key",
                    pki("client-a.key"))[:2] == (0, "200")
    wait_until(lambda: m.metric("meltp_tls_refused_handshakes_total",
                                reason="untrusted_certificate") == 2, 5,
               what="the two wrong-CA handshakes counted")
    assert "client certificate refused" in m.logtext()
    assert m.metric("meltp_receiver_requests_total", code="200") == 2


def test_rotation_under_load(pki):
    sink = FakeOtlp()
    m = start(pki, sink, extra="  reload_interval: 100ms")
    ctx = client_ctx(pki, "client-a")
    assert served_serial(m, ctx) == "1001"
    # a keep-alive connection opened before the rotation, used during and after it
    kept = http.client.HTTPSConnection("127.0.0.1", m.otlp, context=ctx, timeout=10)
    assert post(kept) == 200

    stop = threading.Event()
    stats = {"ok": 0, "failed": [], "serials": set()}

    def load():
        # ~200 requests/s, each on a new connection (new handshakes see the rotation)
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                c = http.client.HTTPSConnection("127.0.0.1", m.otlp, context=ctx, timeout=10)
                st = post(c)
                stats["serials"].add(c.sock.getpeercert()["serialNumber"])
                c.close()
                if st == 200:
                    stats["ok"] += 1
                else:
                    stats["failed"].append(st)
            except Exception as e:  # noqa: BLE001
                stats["failed"].append(repr(e))
            time.sleep(max(0.0, 0.005 - (time.monotonic() - t0)))

    th = threading.Thread(target=load)
    th.start()
    try:
        wait_until(lambda: stats["ok"] >= 100, 20, what="load before the rotation")
        # replace both files, one after the other (the reloader may see the new certificate
        # with the old key in between: that pair is refused and the old one kept)
        for ext in ("crt", "key"):
            tmp = pki("live.%s.tmp" % ext)
            shutil.copyfile(pki("server2." + ext), tmp)
            os.replace(tmp, pki("live." + ext))
        wait_until(lambda: "1002" in stats["serials"], 10, what="the new certificate served")
        n = stats["ok"]
        assert post(kept) == 200  # the old connection still works
        wait_until(lambda: stats["ok"] >= n + 100, 20, what="load after the rotation")
    finally:
        stop.set()
        th.join()
    assert stats["failed"] == [], stats["failed"][:5]
    assert served_serial(m, ctx) == "1002"
    kept.close()

    # a file that turns bad keeps the certificate served and says why
    with open(pki("live.crt"), "w") as f:
        f.write("not a certificate\n")
    wait_until(lambda: "still serving the previous certificate" in m.logtext(), 10,
               what="the bad file logged")
    assert served_serial(m, ctx) == "1002"
    assert m.metric("meltp_tls_reloads_total", result="failed") >= 1


def test_tenants_from_certificate(pki):
    sink = FakeOtlp()
    m = start(pki, sink, extra="  tenants_from_certificate:\n"
                              "    spiffe://lab/client-a: team-a\n"
                              "    client-b-unused: team-x\n")
    a = http.client.HTTPSConnection("127.0.0.1", m.otlp, context=client_ctx(pki, "client-a"))
    assert post(a) == 200
    wait_until(lambda: len(sink.requests) == 1, 10, what="the export")
    assert sink.requests[0][1].get("X-Scope-OrgID") == "team-a"
    assert post(a, {"X-Scope-OrgID": "team-a"}) == 200
    a.request("POST", "/v1/logs", body=LOGS,
              headers={"Content-Type": JSON, "X-Scope-OrgID": "team-b"})
    r = a.getresponse()
    body = r.read()
    assert r.status == 403 and b"bound to" in body, (r.status, body)
    wait_until(lambda: len(sink.requests) == 2, 10, what="the second export")
    assert m.metric("meltp_receiver_refused_requests_total", reason="tenant_forbidden") == 1
    # an unbound certificate keeps the header's tenant
    b = http.client.HTTPSConnection("127.0.0.1", m.otlp, context=client_ctx(pki, "client-b"))
    assert post(b, {"X-Scope-OrgID": "team-z"}) == 200
    wait_until(lambda: len(sink.requests) == 3, 10, what="the third export")
    assert sink.requests[2][1].get("X-Scope-OrgID") == "team-z"
    assert sum(1 for p, h, _ in sink.requests if h.get("X-Scope-OrgID") == "team-b") == 0


def mtls_server_ctx(pki, cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki(cert + ".crt"), pki(cert + ".key"))
    ctx.load_verify_locations(pki("ca.crt"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def wrap(server, ctx):
    """Serves an http.server over TLS from now on (the handshake runs in accept())."""
    server.socket = ctx.wrap_socket(server.socket, server_side=True)


PLAIN_IN = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
%s
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    %s: {{receivers: [otlp], exporters: [%s]}}
"""


def test_loki_over_mtls(pki):
    loki = FakeLoki()
    wrap(loki.server, mtls_server_ctx(pki, "server"))
    exp = """  loki:
    endpoint: https://127.0.0.1:%d/loki/api/v1/push
    tenant_id: lab
    tls:
      ca_file: %s
      cert_file: %s
      key_file: %s
      min_version: "1.3"
""" % (loki.port, pki("ca.crt"), pki("meltp.crt"), pki("meltp.key"))
    m = Meltp(PLAIN_IN % (exp, "logs", "loki"))
    st, _, _ = m.post("/v1/logs", LOGS, ctype=JSON)
    assert st == 200
    wait_until(lambda: loki.streams, 15, what="logs at Loki over mTLS")
    ((tenant, _),) = loki.streams.keys()
    assert tenant == "lab"


def test_otlphttp_server_name_override_and_failures(pki):
    sink = FakeOtlp()
    wrap(sink.server, mtls_server_ctx(pki, "sink"))  # its certificate names sink.internal only

    def exporter(name, override, client=True):
        lines = ["  otlphttp/%s:" % name,
                 "    endpoint: https://127.0.0.1:%d" % sink.port,
                 "    retry_on_failure: {{enabled: false}}",
                 "    tls:",
                 "      ca_file: " + pki("ca.crt")]
        if override:
            lines.append("      server_name_override: sink.internal")
        if client:
            lines += ["      cert_file: " + pki("meltp.crt"), "      key_file: " + pki("meltp.key")]
        return "\n".join(lines) + "\n"

    exps = exporter("good", True) + exporter("noname", False) + exporter("nocert", True, False)
    m = Meltp(PLAIN_IN % (exps, "traces", "otlphttp/good, otlphttp/noname, otlphttp/nocert"))
    st, _, _ = m.post("/v1/traces", make_traces([b"\x01" * 8]))
    assert st == 200
    wait_until(lambda: len(sink.spans()) == 1, 15, what="the span at the sink")
    # without the override the name does not match; without a client certificate the sink
    # refuses: both are counted as failed sends, nothing else reached the sink
    wait_until(lambda: m.metric("meltp_exporter_send_failed_requests_total",
                                exporter="otlphttp/noname") >= 1 and
               m.metric("meltp_exporter_send_failed_requests_total",
                        exporter="otlphttp/nocert") >= 1, 15, what="the failed sends counted")
    assert len(sink.requests) == 1


def test_insecure_skip_verify_warns(pki):
    sink = FakeOtlp()
    wrap(sink.server, mtls_server_ctx(pki, "sink"))
    exp = """  otlphttp:
    endpoint: https://127.0.0.1:%d
    tls:
      insecure_skip_verify: true
      cert_file: %s
      key_file: %s
""" % (sink.port, pki("meltp.crt"), pki("meltp.key"))
    m = Meltp(PLAIN_IN % (exp, "traces", "otlphttp"))
    assert "insecure_skip_verify is set" in m.logtext()
    st, _, _ = m.post("/v1/traces", make_traces([b"\x02" * 8]))
    assert st == 200
    wait_until(lambda: len(sink.spans()) == 1, 15, what="the span at the sink")


def check_config(text):
    d = tempfile.mkdtemp(prefix="meltp-tlscfg-")
    path = os.path.join(d, "config.yaml")
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([harness.MELTP, "check-config", "--config", path], capture_output=True,
                       text=True)
    return path, p.returncode, p.stderr


def line_of(text, needle):
    return next(i + 1 for i, l in enumerate(text.splitlines()) if needle in l)


@pytest.mark.parametrize("case", ["missing", "garbage", "mismatch", "expired", "no_key",
                                  "bad_ca", "old_version", "client_missing"])
def test_check_config_file_errors(pki, case):
    with open(pki("garbage.pem"), "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    cert, key, ca, ver = pki("server.crt"), pki("server.key"), pki("ca.crt"), '"1.2"'
    key_line = "          key_file: %s\n"
    want_key, want = "cert_file", ""
    if case == "missing":
        cert, want = pki("nosuch.crt"), "cannot read"
    elif case == "garbage":
        cert, want = pki("garbage.pem"), "no PEM certificate"
    elif case == "mismatch":
        key, want_key, want = pki("client-a.key"), "key_file", "is not the private key"
    elif case == "expired":
        cert, key, want = pki("expired.crt"), pki("expired.key"), "certificate expired"
    elif case == "no_key":
        key_line, want = "", "required when tls is set"
        want_key = "key_file"
    elif case == "bad_ca":
        ca, want_key, want = pki("garbage.pem"), "client_ca_file", "no PEM CA certificate"
    elif case == "old_version":
        ver, want_key, want = '"1.1"', "min_version", "expected one of: 1.2, 1.3"
    text = ("receivers:\n  otlp:\n    protocols:\n      http:\n"
            "        endpoint: 127.0.0.1:4318\n        tls:\n"
            "          cert_file: %s\n" + key_line +
            "          client_ca_file: %s\n          min_version: %s\n"
            "exporters:\n  otlphttp:\n    endpoint: https://127.0.0.1:1\n"
            "    tls:\n      ca_file: %s\n"
            "service:\n  pipelines:\n    logs: {receivers: [otlp], exporters: [otlphttp]}\n")
    args = [cert] + ([key] if key_line else []) + [ca, ver,
                                                   pki("nosuch-ca.crt") if case ==
                                                   "client_missing" else ca]
    text = text % tuple(args)
    path, rc, err = check_config(text)
    assert rc == 1, (case, err)
    if case == "client_missing":
        prefix = "%s:%d: exporters.otlphttp.tls.ca_file:" % (path, line_of(text, "nosuch-ca"))
        assert prefix in err and "cannot read" in err, err
        return
    if case == "no_key":
        prefix = "%s:%d: receivers.otlp.protocols.http.tls.key_file:" % (
            path, line_of(text, "cert_file:"))  # the tls map, where the key is missing
    else:
        prefix = "%s:%d: receivers.otlp.protocols.http.tls.%s:" % (
            path, line_of(text, want_key + ":"), want_key)
    assert prefix in err and want in err, err


def test_check_config_accepts_good_files(pki):
    text = ("receivers:\n  prometheusremotewrite:\n    endpoint: 127.0.0.1:19291\n"
            "    tls: {cert_file: %s, key_file: %s, client_ca_file: %s, "
            "tenants_from_certificate: {client-a: team-a}}\n"
            "  pyroscope:\n    endpoint: 127.0.0.1:4040\n"
            "    tls: {cert_file: %s, key_file: %s}\n"
            "exporters:\n  debug: {}\n"
            "service:\n  pipelines:\n    metrics: {receivers: [prometheusremotewrite], "
            "exporters: [debug]}\n    profiles: {receivers: [pyroscope], exporters: [debug]}\n"
            ) % (pki("server.crt"), pki("server.key"), pki("ca.crt"), pki("server.crt"),
                 pki("server.key"))
    path, rc, err = check_config(text)
    assert rc == 0, err


def https_get(port, path, ctx):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    return r.status, r.read()


def test_health_check_and_telemetry_over_tls_and_sighup_reload(pki):
    """health_check and service.telemetry.metrics take the same tls keys; with
    reload_interval 0 the files are re-read on SIGHUP only."""
    for ext in ("crt", "key"):
        shutil.copyfile(pki("server." + ext), pki("live." + ext))
    tls = tls_section(pki, 4, client_ca=False, extra="  reload_interval: 0")
    cfg = """
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
%s
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
%s
exporters:
  debug: {{}}
service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
%s
  pipelines:
    logs: {{receivers: [otlp], exporters: [debug]}}
""" % (tls, tls_section(pki, 8, client_ca=False, extra="  reload_interval: 0"),
       tls_section(pki, 6, client_ca=True, extra="  reload_interval: 0"))
    m = Meltp(cfg)
    ctx = client_ctx(pki)
    assert https_get(m.health, "/healthz", ctx)[0] == 200
    # the metrics endpoint asks for a client certificate
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        https_get(m.metrics, "/metrics", ctx)
    st, body = https_get(m.metrics, "/metrics", client_ctx(pki, "client-a"))
    assert st == 200 and b"meltp_tls_reloads_total" in body
    for ext in ("crt", "key"):
        shutil.copyfile(pki("server2." + ext), pki("live.%s.tmp" % ext))
        os.replace(pki("live.%s.tmp" % ext), pki("live." + ext))
    assert served_serial(m, ctx) == "1001"  # no reload without the signal
    m.signal(signal.SIGHUP)
    wait_until(lambda: "reload: done" in m.logtext(), 15, what="the reload")
    wait_until(lambda: _connects(m.otlp), 10, what="the receiver back")
    assert served_serial(m, ctx) == "1002"
    with socket.create_connection(("127.0.0.1", m.health), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            assert t.getpeercert()["serialNumber"] == "1002"
    # a changed tls section on a kept HTTP address (min_version) needs new daemons: the reload
    # is refused with the reason and the running listeners stay as they are
    with open(m.config_path) as f:
        text = f.read()
    changed = text.replace(tls_section(pki, 8, client_ca=False, extra="  reload_interval: 0"),
                           tls_section(pki, 8, client_ca=False,
                                       extra="  reload_interval: 0\n  min_version: \"1.3\""))
    assert changed != text
    with open(m.config_path, "w") as f:
        f.write(changed)
    m.signal(signal.SIGHUP)
    wait_until(lambda: "its tls settings changed" in m.logtext(), 15, what="the refused reload")
    assert served_serial(m, ctx) == "1002"
    assert https_get(m.health, "/healthz", ctx)[0] == 200


def test_check_config_tenant_ids_and_where_the_map_applies(pki):
    text = ("receivers:\n  otlp:\n    protocols:\n      http:\n"
            "        endpoint: 127.0.0.1:4318\n        tls:\n"
            "          cert_file: %s\n          key_file: %s\n          client_ca_file: %s\n"
            "          tenants_from_certificate:\n            client-a: \"..\"\n"
            "extensions:\n  health_check:\n    tls: {cert_file: %s, key_file: %s, "
            "tenants_from_certificate: {client-a: team-a}}\n"
            "exporters:\n  debug: {}\n"
            "service:\n  extensions: [health_check]\n"
            "  pipelines:\n    logs: {receivers: [otlp], exporters: [debug]}\n") % (
        pki("server.crt"), pki("server.key"), pki("ca.crt"), pki("server.crt"),
        pki("server.key"))
    path, rc, err = check_config(text)
    assert rc == 1
    assert ("%s:%d: receivers.otlp.protocols.http.tls.tenants_from_certificate.client-a: "
            "\"..\" is not a valid tenant id" % (path, line_of(text, '"..'))) in err, err
    assert ("%s:%d: extensions.health_check.tls.tenants_from_certificate: applies to receivers "
            "only" % (path, line_of(text, "health_check:") + 1)) in err, err


RW_CONFIG = """
receivers:
  prometheusremotewrite:
    endpoint: 127.0.0.1:{otlp}
%s
  pyroscope:
    endpoint: 127.0.0.1:%d
%s
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:%d
    retry_on_failure: {{enabled: false}}
  debug: {{}}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    metrics: {{receivers: [prometheusremotewrite], exporters: [otlphttp]}}
    profiles: {{receivers: [pyroscope], exporters: [debug]}}
"""


def test_remote_write_and_pyroscope_tenants_from_certificate(pki):
    for ext in ("crt", "key"):
        shutil.copyfile(pki("server." + ext), pki("live." + ext))
    tenants = "  tenants_from_certificate: {{spiffe://lab/client-a: team-a}}"
    sink = FakeOtlp()
    pyro_port = harness.free_port()
    m = Meltp(RW_CONFIG % (tls_section(pki, 4, extra=tenants), pyro_port,
                           tls_section(pki, 4, extra=tenants), sink.port))
    now_ms = int(time.time() * 1000)
    body = snappy_encode(rw1_series([("__name__", "up"), ("job", "api")], [(1.0, now_ms)]))
    rw_headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                  "X-Prometheus-Remote-Write-Version": "0.1.0"}
    ctx = client_ctx(pki, "client-a")

    def rw(extra):
        c = http.client.HTTPSConnection("127.0.0.1", m.otlp, context=ctx, timeout=10)
        c.request("POST", "/api/v1/write", body=body, headers=dict(rw_headers, **extra))
        r = c.getresponse()
        return r.status, r.read()

    st, text = rw({})
    assert st in (200, 204), (st, text)
    wait_until(lambda: sink.requests, 10, what="the remote-write export")
    assert {h.get("X-Scope-OrgID") for _, h, _ in sink.requests} == {"team-a"}
    st, text = rw({"X-Scope-OrgID": "team-b"})
    assert st == 403 and b"bound to" in text, (st, text)
    assert m.metric("meltp_receiver_refused_requests_total", receiver="prometheusremotewrite",
                    reason="tenant_forbidden") == 1
    # pyroscope: the same rule, before the body is read
    c = http.client.HTTPSConnection("127.0.0.1", pyro_port, context=ctx, timeout=10)
    c.request("POST", "/ingest?name=app.cpu&format=folded", body=b"a;b 1\n",
              headers={"X-Scope-OrgID": "team-b", "Content-Type": "text/plain"})
    r = c.getresponse()
    assert r.status == 403, (r.status, r.read())
    assert m.metric("meltp_receiver_refused_requests_total", receiver="pyroscope",
                    reason="tenant_forbidden") == 1
