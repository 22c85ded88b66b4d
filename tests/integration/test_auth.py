"""Authentication and tenants that cannot be forged (collector/core/auth.c, auth_basic.c,
collector/receivers/recv.c), and the hostile-input fixes of issue 15: credentials checked in the
first access-handler call (401 + WWW-Authenticate before any body is read), tokens bound to
tenants (a request without X-Scope-OrgID gets the bound tenant, one naming another gets 403
and never reaches a queue), token files re-read when they change, htpasswd bcrypt and {SHA}
entries, exporters sending Authorization, no credential in any log line or /metrics, URL
userinfo redacted in logs, Content-Length + Transfer-Encoding refused and the connection
closed, an impossible chunk size refused at once, read-only API endpoints answering 405."""
import base64
import hashlib
import http.server
import json
import os
import socket
import threading
import time
import warnings

with warnings.catch_warnings():  # the bcrypt hashes are made with libcrypt through it
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

import harness
from harness import Meltp, make_traces, wait_until
from test_prw_receiver import PATH, V1, rw1_series, snappy_encode

TRACE_CT = "application/x-protobuf"


class Backend:
    """A backend that demands one Authorization value: 401 otherwise; records what arrives."""

    def __init__(self, want_auth, ok_status=200):
        self.port = harness.free_port()
        self.want = want_auth
        self.requests = []  # (path, headers lower-cased, status answered)
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                h = {k.lower(): v for k, v in self.headers.items()}
                st = ok_status if h.get("authorization") == outer.want else 401
                with outer.lock:
                    outer.requests.append((self.path, h, st))
                self.send_response(st)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        harness._servers.append(self.server)

    def got(self):
        with self.lock:
            return list(self.requests)


def rw_body(v):
    return snappy_encode(rw1_series([("__name__", "up"), ("job", "j")], [(v, 1700000000000)]))


LOGS = json.dumps({"resourceLogs": [{"resource": {}, "scopeLogs": [{"logRecords": [
    {"timeUnixNano": "1700000000000000000", "body": {"stringValue": "hello"}}]}]}]}).encode()
FOLDED = b"main;work 3\n"

CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
        auth: {{authenticator: bearertokenauth/in}}
  prometheusremotewrite:
    endpoint: 127.0.0.1:%(prw)d
    auth: {{authenticator: bearertokenauth/in}}
  pyroscope:
    endpoint: 127.0.0.1:%(pyro)d
    auth: {{authenticator: bearertokenauth/in}}
extensions:
  bearertokenauth/in:
    filename: %(tokfile)s
    tenants:
      acme: {{token: %(acme)s}}
  bearertokenauth/out:
    token: %(out)s
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:%(otlp_be)d
    compression: none
    auth: {{authenticator: bearertokenauth/out}}
    retry_on_failure: {{enabled: false}}
  prometheusremotewrite:
    endpoint: http://127.0.0.1:%(prw_be)d/api/v1/write
    auth: {{authenticator: bearertokenauth/out}}
    retry_on_failure: {{enabled: false}}
  pyroscope:
    endpoint: http://127.0.0.1:%(pyro_be)d
    auth: {{authenticator: bearertokenauth/out}}
    retry_on_failure: {{enabled: false}}
service:
  extensions: [bearertokenauth/in, bearertokenauth/out]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlphttp]}}
    metrics: {{receivers: [prometheusremotewrite], exporters: [prometheusremotewrite]}}
    profiles: {{receivers: [pyroscope], exporters: [pyroscope]}}
"""


def assert_no_secret(m, secrets):
    _, _, metrics = harness.http_request("http://127.0.0.1:%d/metrics" % m.metrics, method="GET")
    log = m.logtext()
    for s in secrets:
        assert s not in log, "secret %r in the log" % s
        assert s.encode() not in metrics, "secret %r in /metrics" % s


def test_bearer_tokens_tenants_rotation_and_exporters(tmp_path):
    tok = "first-%s" % os.urandom(6).hex()
    tok2 = "second-%s" % os.urandom(6).hex()
    acme = "acme-%s" % os.urandom(6).hex()
    out = "out-%s" % os.urandom(6).hex()
    tokfile = tmp_path / "token"
    tokfile.write_text(tok + "\n")
    be = {k: Backend("Bearer " + out, 204 if k == "prw" else 200) for k in ("otlp", "prw", "pyro")}
    prw_port, pyro_port = harness.free_port(), harness.free_port()
    m = Meltp(CFG % dict(prw=prw_port, pyro=pyro_port, tokfile=tokfile, acme=acme, out=out,
                         otlp_be=be["otlp"].port, prw_be=be["prw"].port,
                         pyro_be=be["pyro"].port))
    rw = "http://127.0.0.1:%d%s" % (prw_port, PATH)
    ingest = "http://127.0.0.1:%d/ingest?name=app.cpu&from=1700000000&until=1700000010" \
        "&format=folded" % pyro_port

    def send_all(headers):
        return (m.post("/v1/traces", make_traces([os.urandom(8)]), TRACE_CT, headers=headers),
                harness.http_request(rw, rw_body(1.0), V1, "snappy", headers=headers),
                harness.http_request(ingest, FOLDED, "text/plain", headers=headers))

    # missing and wrong credentials: 401 with WWW-Authenticate on every receiver
    for hdr in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic " + tok},
                {"Authorization": "Bearer " + tok + "x"}):
        for st, h, body in send_all(hdr):
            assert st == 401, (hdr, st, body)
            assert h.get("www-authenticate") == 'Bearer realm="meltp"', h
    assert m.metric("meltp_receiver_refused_requests_total", reason="unauthenticated") == 12
    # the right (unbound) token: accepted, the client's tenant kept
    codes = [r[0] for r in send_all({"Authorization": "Bearer " + tok,
                                     "X-Scope-OrgID": "free"})]
    assert codes == [200, 204, 200], codes
    # a bound token: no header -> the bound tenant; another tenant -> 403, never queued
    for st, _, body in send_all({"Authorization": "Bearer " + acme, "X-Scope-OrgID": "evil"}):
        assert st == 403, (st, body)
    assert m.metric("meltp_receiver_refused_requests_total", reason="tenant_forbidden") == 3
    codes = [r[0] for r in send_all({"Authorization": "Bearer " + acme})]
    assert codes == [200, 204, 200], codes
    codes = [r[0] for r in send_all({"Authorization": "Bearer " + acme, "X-Scope-OrgID": "acme"})]
    assert codes == [200, 204, 200], codes
    wait_until(lambda: len([r for r in be["otlp"].got() if r[0] == "/v1/traces"]) >= 3,
               what="three trace requests at the backend")
    tenants = sorted(r[1].get("x-scope-orgid", "") for r in be["otlp"].got())
    assert tenants == ["acme", "acme", "free"], tenants  # nothing of "evil" arrived
    # exporters sent the bearer token and the backends accepted every request
    for k in ("prw", "pyro"):
        wait_until(lambda: be[k].got(), what="a request at the %s backend" % k)
    for k, b in be.items():
        assert b.got() and all(r[2] in (200, 204) for r in b.got()), (k, b.got())
    # rotation: the new token works once the file changed, the old one no longer does
    tokfile.write_text(tok2)
    wait_until(lambda: m.post("/v1/traces", make_traces([os.urandom(8)]), TRACE_CT,
                              headers={"Authorization": "Bearer " + tok2})[0] == 200,
               what="the rotated token to be accepted")
    assert m.post("/v1/traces", make_traces([b"\x02" * 8]), TRACE_CT,
                  headers={"Authorization": "Bearer " + tok})[0] == 401
    assert "re-read" in m.logtext()
    assert_no_secret(m, [tok, tok2, acme, out])


BASIC_CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
        auth: {{authenticator: basicauth/in}}
extensions:
  basicauth/in:
    htpasswd:
      file: %(htfile)s
      inline: "sha:%(sha)s"
  basicauth/out:
    client_auth:
      username: exporter
      password: %(outpw)s
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:%(otlp_be)d
    compression: none
    auth: {{authenticator: basicauth/out}}
  loki:
    endpoint: http://127.0.0.1:%(loki_be)d/loki/api/v1/push
    tenant_id: t1
    auth: {{authenticator: basicauth/out}}
service:
  extensions: [basicauth/in, basicauth/out]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
      auth: {{authenticator: basicauth/in}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlphttp]}}
    logs: {{receivers: [otlp], exporters: [loki]}}
"""


def basic(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


def test_basicauth_bcrypt_and_sha_entries_and_client_auth(tmp_path):
    bpw, spw, outpw = ("b-" + os.urandom(6).hex(), "s-" + os.urandom(6).hex(),
                       "o-" + os.urandom(6).hex())
    # cost 12: a few hundred ms per verification, so 20 requests in time prove the cache
    bhash = crypt.crypt(bpw, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 12))
    t0 = time.time()
    crypt.crypt(bpw, bhash)
    one_bcrypt = time.time() - t0
    assert bhash.startswith("$2b$")
    sha = "{SHA}" + base64.b64encode(hashlib.sha1(spw.encode()).digest()).decode()
    htfile = tmp_path / "htpasswd"
    htfile.write_text("# users\nbob:%s\n" % bhash.replace("$2b$", "$2y$"))
    want = basic("exporter", outpw)
    otlp_be, loki_be = Backend(want), Backend(want, 204)
    m = Meltp(BASIC_CFG % dict(htfile=htfile, sha=sha.replace("{", "{{").replace("}", "}}"),
                               outpw=outpw, otlp_be=otlp_be.port,
                               loki_be=loki_be.port))
    span = make_traces([b"\x05" * 8])
    for hdr in ({}, {"Authorization": basic("bob", bpw + "x")}, {"Authorization": basic("sha", bpw)},
                {"Authorization": basic("nobody", spw)}, {"Authorization": "Bearer " + bpw}):
        st, h, _ = m.post("/v1/traces", span, TRACE_CT, headers=hdr)
        assert st == 401 and h.get("www-authenticate", "").startswith('Basic realm="meltp"'), hdr
    # an unknown name pays a bcrypt too, even with a known user's password: its 401 takes as
    # long as a wrong password's, so timing does not tell which names exist
    for user, pw in (("nobody", bpw), ("bob", bpw + "y")):
        t0 = time.time()
        st, _, _ = m.post("/v1/traces", span, TRACE_CT, headers={"Authorization": basic(user, pw)})
        assert st == 401 and time.time() - t0 > 0.5 * one_bcrypt, (user, time.time() - t0)
    t0 = time.time()
    for _ in range(20):  # bcrypt once, then the cache
        assert m.post("/v1/traces", span, TRACE_CT,
                      headers={"Authorization": basic("bob", bpw)})[0] == 200
    took = time.time() - t0
    assert took < 1 + 5 * one_bcrypt, (took, one_bcrypt)
    assert m.post("/v1/logs", LOGS, "application/json",
                  headers={"Authorization": basic("sha", spw)})[0] == 200
    # the metrics endpoint takes the same auth
    st, h, _ = harness.http_request("http://127.0.0.1:%d/metrics" % m.metrics, method="GET")
    assert st == 401 and "www-authenticate" in h
    auth = {"Authorization": basic("sha", spw)}
    st, _, text = harness.http_request("http://127.0.0.1:%d/metrics" % m.metrics, method="GET",
                                       headers=auth)
    assert st == 200 and b"meltp_receiver_refused_requests_total" in text
    assert b'reason="unauthenticated"} 7' in text, text
    wait_until(lambda: otlp_be.got() and loki_be.got(), what="both backends to be called")
    for b in (otlp_be, loki_be):
        assert all(r[2] in (200, 204) for r in b.got()), b.got()
    log = m.logtext()
    _, _, text = harness.http_request("http://127.0.0.1:%d/metrics" % m.metrics, method="GET",
                                      headers=auth)
    for s in (bpw, spw, outpw, bhash, sha, want.split()[1]):
        assert s not in log and s.encode() not in text, s


REDACT_CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  otlphttp:
    endpoint: http://alice:%(pw)s@127.0.0.1:%(dead)d
    retry_on_failure: {{initial_interval: 50ms, max_interval: 100ms}}
  loki:
    endpoint: http://127.0.0.1:%(dead)d/loki/api/v1/push?api_key=%(key)s&x=1
    retry_on_failure: {{initial_interval: 50ms, max_interval: 100ms}}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlphttp]}}
    logs: {{receivers: [otlp], exporters: [loki]}}
"""


def test_exporter_url_credentials_are_redacted_in_the_log():
    pw, key = "pw-" + os.urandom(6).hex(), "key-" + os.urandom(6).hex()
    m = Meltp(REDACT_CFG % dict(pw=pw, key=key, dead=harness.free_port()))
    assert m.post("/v1/traces", make_traces([b"\x07" * 8]), TRACE_CT)[0] == 200
    assert m.post("/v1/logs", LOGS, "application/json")[0] == 200
    wait_until(lambda: "***@127.0.0.1" in m.logtext() and "api_key=***" in m.logtext(),
               what="exporter failures in the log")
    log = m.logtext()
    assert pw not in log and key not in log, log


def raw_request(port, data, timeout=5.0):
    """Sends data; returns (seconds until the answer ended, bytes, closed by the server)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(timeout)
    t0 = time.time()
    s.sendall(data)
    out, closed = b"", False
    try:
        while True:
            d = s.recv(4096)
            if not d:
                closed = True
                break
            out += d
    except socket.timeout:
        pass
    finally:
        s.close()
    return time.time() - t0, out, closed


PLAIN_CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  debug: {{}}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [debug]}}
"""


def test_framing_attacks_are_refused_and_closed():
    m = Meltp(PLAIN_CFG)
    head = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
    # Content-Length and Transfer-Encoding both: 400 and the connection closed
    took, out, closed = raw_request(
        m.otlp, head + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400"), out
    assert b"Content-Length and Transfer-Encoding" in out and closed, (out, closed)
    # two lengths (MHD would take the first and read "abcde" as the next request), two
    # encodings, or an encoding other than chunked: refused and closed too
    for extra, reason in ((b"Content-Length: 0\r\nContent-Length: 5\r\n\r\nabcde",
                           "ambiguous_length"),
                          (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"0\r\n\r\n", "ambiguous_length"),
                          (b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                           "unsupported_transfer_encoding")):
        took, out, closed = raw_request(m.otlp, head + extra)
        assert out.startswith(b"HTTP/1.1 400") and closed, (extra, out, closed)
    assert m.metric("meltp_receiver_refused_requests_total", reason="ambiguous_length") == 3
    assert m.metric("meltp_receiver_refused_requests_total",
                    reason="unsupported_transfer_encoding") == 1
    # a chunk size of 2^64: refused at once (libmicrohttpd answers it before any handler)
    took, out, closed = raw_request(
        m.otlp, head + b"Transfer-Encoding: chunked\r\n\r\n10000000000000000\r\nabc")
    assert out[:12] in (b"HTTP/1.1 400", b"HTTP/1.1 413"), out
    assert closed and took < 3, (took, out)
    wait_until(lambda: m.metric("meltp_receiver_refused_requests_total",
                                reason="chunk_too_large") == 1, 5, what="the refusal counted")
    # a malformed chunk size: 400 at once, counted
    took, out, closed = raw_request(
        m.otlp, head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400") and closed and took < 3, (took, out, closed)
    wait_until(lambda: m.metric("meltp_receiver_refused_requests_total",
                                reason="bad_chunked_body") == 1, 5, what="the refusal counted")
    # a well-formed chunked request still works
    body = make_traces([b"\x09" * 8])
    took, out, closed = raw_request(
        m.otlp, head + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
        b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200"), out


def test_read_only_api_answers_405_to_writes():
    m = Meltp(PLAIN_CFG)
    base = "http://127.0.0.1:%d" % m.metrics
    for path in ("/api/v1/slos", "/api/v1/ledger", "/metrics"):
        for method in ("POST", "PUT", "DELETE"):
            st, h, _ = harness.http_request(base + path, b"{}", "application/json",
                                            method=method)
            assert st == 405 and h.get("allow") == "GET, HEAD", (path, method, st)
        assert harness.http_request(base + path, method="GET")[0] == 200, path


def test_check_config_names_auth_errors_with_file_and_line(tmp_path):
    import subprocess
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("""receivers:
  otlp:
    protocols:
      http:
        auth: {authenticator: bearertokenauth/nope}
extensions:
  basicauth:
    htpasswd: {file: /nonexistent/htpasswd, inline: "amy:$apr1$x$y"}
  bearertokenauth:
    token: tok-in-config-%s
    filename: /also/a/token
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:9
    auth: {authenticator: basicauth}
service:
  extensions: [basicauth, bearertokenauth]
  pipelines:
    traces: {receivers: [otlp], exporters: [otlphttp]}
""" % os.urandom(4).hex())
    p = subprocess.run([harness.MELTP, "check-config", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=20)
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    f = str(cfg)
    assert "%s:5: receivers.otlp.protocols.http.auth.authenticator: \"bearertokenauth/nope\" " \
        "is not defined under extensions" % f in out, out
    assert "%s:8: extensions.basicauth.htpasswd.inline: line 1: unsupported hash" % f in out, out
    assert "%s:11: extensions.bearertokenauth.filename: give token or filename, not both" % f \
        in out, out
    assert "%s:15: exporters.otlphttp.auth.authenticator: basicauth \"basicauth\" has no " \
        "client_auth to send" % f in out, out
    assert "tok-in-config" not in out and "$apr1$" not in out, out
