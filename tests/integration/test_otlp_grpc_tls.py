"""TLS and authentication on the OTLP/gRPC receiver (receivers.otlp.protocols.grpc.tls, .auth;
issue 15 "TLS on every listener", gRPC with ALPN h2), with certificates made at test time by
the `openssl` command (test_tls.py's pki fixture):

- the OpenTelemetry JS SDK's gRPC exporters (grpc-js credentials.createSsl) deliver over TLS
  and over mTLS; without a client certificate, or with one from another CA, the connection is
  refused (and the wrong CA counted);
- TLS 1.2 and 1.3 handshakes select ALPN h2, TLS 1.1 is refused, a client without ALPN h2 is
  closed;
- certificate files replaced while a client sends on one connection: no call fails, new
  connections get the new serial;
- bearertokenauth on protocols.grpc.auth: missing or wrong token UNAUTHENTICATED (16), the right
  one OK, a token bound to a tenant with another x-scope-orgid PERMISSION_DENIED (7), and the
  same for a certificate bound by tenants_from_certificate; no token in the log or /metrics;
- a SIGHUP keeps the TLS listener; a changed tls section fails the reload and says why."""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import harness
from harness import Meltp, make_traces, wait_until
from test_otlp_fixtures import file_items
from test_otlp_grpc import NODE_DIR, TRACES, GrpcLoad, _connects, call
from test_tls import pki  # noqa: F401  (the module's certificates)

CFG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
      grpc:
        endpoint: 127.0.0.1:%(grpc)d
        threads: 1
%(tls)s
%(auth)s
%(extensions)s
exporters:
  file/t:
    path: {dir}/traces.jsonl
  file/m:
    path: {dir}/metrics.jsonl
  file/l:
    path: {dir}/logs.jsonl
service:
%(service_ext)s
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [file/t]}}
    metrics: {{receivers: [otlp], exporters: [file/m]}}
    logs: {{receivers: [otlp], exporters: [file/l]}}
"""


def tls_lines(pki, client_ca=False, extra=""):
    lines = ["tls:", "  cert_file: " + pki("glive.crt"), "  key_file: " + pki("glive.key")]
    if client_ca:
        lines.append("  client_ca_file: " + pki("ca.crt"))
    lines += [l for l in extra.splitlines() if l.strip()]
    return "\n".join(" " * 8 + l for l in lines)


def config(pki, grpc, client_ca=False, extra="", token=None, acme=None):
    ext = auth = sext = ""
    if token:
        auth = "        auth: {{authenticator: bearertokenauth/in}}"
        ext = ("extensions:\n  bearertokenauth/in:\n    token: %s\n" % token +
               ("    tenants:\n      acme: {{token: %s}}\n" % acme if acme else ""))
        sext = "  extensions: [bearertokenauth/in]"
    return CFG % {"grpc": grpc, "tls": tls_lines(pki, client_ca, extra), "auth": auth,
                  "extensions": ext, "service_ext": sext}


def start(pki, **kw):
    """meltp with TLS on protocols.grpc, serving copies of server.crt/key (glive.*) so a test
    can replace them."""
    for ext in ("crt", "key"):
        shutil.copyfile(pki("server." + ext), pki("glive." + ext))
    port = harness.free_port()
    m = Meltp(config(pki, port, **kw))
    m.grpc = port
    wait_until(lambda: _connects(port), 10, what="gRPC port")
    return m


def creds(pki, cert=None):
    t = {"ca": pki("ca.crt")}
    if cert:
        t.update(cert=pki(cert + ".crt"), key=pki(cert + ".key"))
    return t


def sdk_send(m, tls, run):
    env = dict(os.environ, OTLP_GRPC_TLS=json.dumps(tls))
    p = subprocess.run(["node", os.path.join(NODE_DIR, "otlp_grpc_send.js"),
                        "127.0.0.1:%d" % m.grpc, "gzip", run], cwd=NODE_DIR,
                       capture_output=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    return json.loads(p.stdout)


def served(pki, port, version=None, alpn=("h2",), cert=None):
    """A handshake with meltp's gRPC port: (serial, negotiated ALPN)."""
    ctx = ssl.create_default_context(cafile=pki("ca.crt"))
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    if cert:
        ctx.load_cert_chain(pki(cert + ".crt"), pki(cert + ".key"))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            return t.getpeercert()["serialNumber"], t.selected_alpn_protocol()


def test_js_sdk_over_tls_and_mtls(pki):
    m = start(pki)
    out = sdk_send(m, creds(pki), "tls")
    for sig, r in out.items():
        assert r["code"] == 0, (sig, r["error"])
    assert len(file_items(m, "traces")) == len(out["traces"]["items"]) == 25
    assert "OTLP/gRPC over TLS" in m.logtext()
    # plaintext h2c on the TLS port gets no gRPC answer
    r = call(m, TRACES, make_traces([b"\x01" * 8]))
    assert r["code"] == 14, r

    m2 = start(pki, client_ca=True)
    out = sdk_send(m2, creds(pki, "client-a"), "mtls")
    for sig, r in out.items():
        assert r["code"] == 0, (sig, r["error"])
    wait_until(lambda: len(file_items(m2, "logs")) == len(out["logs"]["items"]), 10,
               what="the logs written")
    body = make_traces([b"\x02" * 8])
    for who in (None, "rogue"):
        r = call(m2, TRACES, body, tls=creds(pki, who))
        assert r["code"] == 14, (who, r)  # UNAVAILABLE: the handshake was refused
    assert call(m2, TRACES, body, tls=creds(pki, "client-a"))["code"] == 0
    wait_until(lambda: m2.metric("meltp_tls_refused_handshakes_total",
                                 reason="untrusted_certificate") >= 1, 5,
               what="the wrong-CA handshake counted")
    # the refusal is counted first, then logged, then counted as a failed handshake
    wait_until(lambda: m2.metric("meltp_receiver_http2_events_total",
                                 event="tls_handshake_failed") >= 2, 5,
               what="both refused handshakes counted")
    wait_until(lambda: "client certificate refused" in m2.logtext(), 5,
               what="the refused certificate logged")


def test_tls_versions_and_alpn(pki):
    m = start(pki)
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        assert served(pki, m.grpc, v) == ("1001", "h2"), v
    # the openssl command agrees, and TLS 1.1 is refused
    for flag, ok in (("-tls1_2", True), ("-tls1_3", True), ("-tls1_1", False)):
        p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % m.grpc,
                            "-alpn", "h2", flag, "-CAfile", pki("ca.crt"), "-cipher",
                            "DEFAULT@SECLEVEL=0"], input=b"", capture_output=True, timeout=20)
        text = p.stdout.decode(errors="replace")
        assert ("ALPN protocol: h2" in text) == ok, (flag, text[-1500:])
        assert (p.returncode == 0) == ok, (flag, p.returncode)
    # no ALPN, or another protocol only: closed, counted
    before = m.metric("meltp_receiver_http2_events_total", event="tls_handshake_failed")
    for alpn in ((), ("http/1.1",)):
        try:
            with socket.create_connection(("127.0.0.1", m.grpc), timeout=5) as s:
                ctx = ssl.create_default_context(cafile=pki("ca.crt"))
                if alpn:
                    ctx.set_alpn_protocols(list(alpn))
                with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                    t.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                    assert t.recv(100) == b"", alpn
        except (ssl.SSLError, ConnectionError):
            pass
    wait_until(lambda: m.metric("meltp_receiver_http2_events_total",
                                event="tls_handshake_failed") >= before + 2, 5,
               what="the two handshakes without h2 counted")
    assert call(m, TRACES, make_traces([b"\x03" * 8]), tls=creds(pki))["code"] == 0


def test_rotation_while_a_client_sends(pki):
    m = start(pki, client_ca=True, extra="  reload_interval: 100ms")
    assert served(pki, m.grpc, cert="client-a")[0] == "1001"
    load = GrpcLoad(m, tls=creds(pki, "client-a"))
    wait_until(lambda: load.acked() >= 100, 20, what="calls before the rotation")
    for ext in ("crt", "key"):
        tmp = pki("glive.%s.tmp" % ext)
        shutil.copyfile(pki("server2." + ext), tmp)
        os.replace(tmp, pki("glive." + ext))
    wait_until(lambda: served(pki, m.grpc, cert="client-a")[0] == "1002", 10,
               what="the new certificate served to new connections")
    n = load.acked()
    wait_until(lambda: load.acked() >= n + 100, 20, what="calls after the rotation")
    # a second client on a new connection during the rotation's aftermath
    assert call(m, TRACES, make_traces([b"\x04" * 8]), tls=creds(pki, "client-a"))["code"] == 0
    r = load.end()
    assert not r["failed"], r["failed"][:5]
    assert r["ready"] == 1, "the client reconnected"
    wait_until(lambda: len(file_items(m, "traces")) == len(r["acked"]) + 1, 10,
               what="every acknowledged span written")


def test_sighup_keeps_the_tls_listener_and_refuses_a_changed_tls_section(pki):
    m = start(pki, client_ca=True)
    load = GrpcLoad(m, tls=creds(pki, "client-a"))
    wait_until(lambda: load.acked() >= 50, 20, what="calls before the reload")
    m.signal(signal.SIGHUP)
    wait_until(lambda: "reload: done" in m.logtext(), 20, what="the reload")
    n = load.acked()
    wait_until(lambda: load.acked() >= n + 50, 20, what="calls after the reload")
    # client_ca_file removed: that needs a restart; the running listener stays as it is
    with open(m.config_path, "w") as f:
        f.write(config(pki, m.grpc).format(otlp=m.otlp, dir=m.dir, metrics=m.metrics))
    m.signal(signal.SIGHUP)
    wait_until(lambda: "its tls settings changed" in m.logtext(), 20, what="the failed reload")
    n = load.acked()
    wait_until(lambda: load.acked() >= n + 50, 20, what="calls after the failed reload")
    r = load.end()
    assert not r["failed"] and r["ready"] == 1, (r["failed"][:5], r["ready"])
    assert call(m, TRACES, make_traces([b"\x05" * 8]), tls=creds(pki))["code"] == 14


def test_bearer_token_and_certificate_tenants_on_grpc(pki):
    tok = "grpc-tok-%s" % os.urandom(6).hex()
    acme = "grpc-acme-%s" % os.urandom(6).hex()
    m = start(pki, client_ca=True, token=tok, acme=acme,
              extra="  tenants_from_certificate:\n    spiffe://lab/client-a: team-a\n")
    body = make_traces([b"\x06" * 8])
    a = creds(pki, "client-a")
    b = creds(pki, "client-b")  # a certificate bound to no tenant

    def c(tls, **md):
        return call(m, TRACES, body, tls=tls, metadata=md)

    assert c(b)["code"] == 16
    assert c(b, authorization="Bearer wrong")["code"] == 16
    assert c(b, authorization="Bearer " + tok)["code"] == 0
    assert c(b, authorization="Bearer " + acme)["code"] == 0
    r = c(b, authorization="Bearer " + acme, **{"x-scope-orgid": "other"})
    assert r["code"] == 7, r
    # the certificate binds team-a: the header cannot name another tenant
    assert c(a, authorization="Bearer " + tok, **{"x-scope-orgid": "team-a"})["code"] == 0
    r = c(a, authorization="Bearer " + tok, **{"x-scope-orgid": "team-b"})
    assert r["code"] == 7 and "bound to" in r["details"], r
    # a token bound to acme on a connection bound to team-a: refused too
    assert c(a, authorization="Bearer " + acme)["code"] == 7
    assert m.metric("meltp_receiver_refused_requests_total", transport="grpc",
                    reason="unauthenticated") == 2
    assert m.metric("meltp_receiver_refused_requests_total", transport="grpc",
                    reason="tenant_forbidden") == 3
    assert m.metric("meltp_receiver_accepted_items_total", transport="grpc") == 3
    _, _, metrics = harness.http_request("http://127.0.0.1:%d/metrics" % m.metrics, method="GET")
    for secret in (tok, acme):
        assert secret not in m.logtext() and secret.encode() not in metrics


SENDER = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  otlp:
    endpoint: 127.0.0.1:%(port)d
    tls: {{ca_file: %(ca)s%(client)s}}
    retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms}}
    sending_queue: {{num_consumers: 1}}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlp]}}
"""


def test_meltp_to_meltp_over_grpc_with_mtls(pki):
    """The otlp (gRPC) exporter with tls.ca_file/cert_file/key_file delivers to a meltp whose
    gRPC receiver requires client certificates; without its certificate it is refused and
    retries, nothing sent."""
    b = start(pki, client_ca=True)
    client = ", cert_file: %s, key_file: %s" % (pki("meltp.crt"), pki("meltp.key"))
    a = Meltp(SENDER % {"port": b.grpc, "ca": pki("ca.crt"), "client": client})
    ids = [bytes([0x60 + i]) * 8 for i in range(5)]
    for sid in ids:
        assert a.post("/v1/traces", make_traces([sid]), "application/x-protobuf")[0] == 200
    wait_until(lambda: a.metric("meltp_exporter_sent_items_total", exporter="otlp") == 5, 15,
               what="spans delivered over mTLS")
    got = wait_until(lambda: file_items(b, "traces") if len(file_items(b, "traces")) == 5
                     else None, 10, what="spans written by the receiving meltp")
    assert sorted(x["spanId"] for x in got) == sorted(s.hex() for s in ids)
    assert b.metric("meltp_receiver_accepted_items_total", transport="grpc") == 5
    # without the client certificate: the handshake is refused, retried, never sent
    c = Meltp(SENDER % {"port": b.grpc, "ca": pki("ca.crt"), "client": ""})
    assert c.post("/v1/traces", make_traces([b"\x70" * 8]), "application/x-protobuf")[0] == 200
    wait_until(lambda: c.metric("meltp_exporter_retries_total", exporter="otlp") >= 1, 10,
               what="the refused handshake retried")
    assert c.metric("meltp_exporter_sent_items_total", exporter="otlp") == 0
    assert len(file_items(b, "traces")) == 5


def test_silent_and_plaintext_clients_on_the_tls_port(pki):
    """Handshakes run in the event loop: 50 clients that connect and say nothing do not hold
    up a real one, and are closed after the 10 s handshake timeout; a plaintext HTTP/2 client
    fails the handshake (counted) and the port keeps serving."""
    m = start(pki)
    silent = [socket.create_connection(("127.0.0.1", m.grpc), timeout=20) for _ in range(50)]
    t = time.time()
    assert call(m, TRACES, make_traces([b"\x07" * 8]), tls=creds(pki))["code"] == 0
    assert time.time() - t < 5
    with socket.create_connection(("127.0.0.1", m.grpc), timeout=5) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00" * 64)
        try:
            data = s.recv(4096)
        except ConnectionError:
            data = b""
        # no HTTP/2 SETTINGS frame in clear: at most a TLS alert record (0x15)
        assert not data or data[0] == 0x15, data[:16]
    wait_until(lambda: m.metric("meltp_receiver_http2_events_total",
                                event="tls_handshake_failed") >= 1, 5,
               what="the plaintext client counted")
    for s in silent:
        assert s.recv(1) == b"", "a silent client was not closed"
        s.close()
    assert m.metric("meltp_receiver_http2_events_total", event="idle_timeout") >= 50
    assert call(m, TRACES, make_traces([b"\x08" * 8]), tls=creds(pki))["code"] == 0


def test_check_config_names_the_grpc_tls_keys(pki):
    from test_tls import check_config, line_of
    text = ("receivers:\n  otlp:\n    protocols:\n      grpc:\n"
            "        endpoint: 127.0.0.1:4317\n        tls:\n"
            "          cert_file: %s\n          key_file: %s\n"
            "          tenants_from_certificate: {client-a: \"bad tenant!\"}\n"
            "exporters:\n  debug: {}\n"
            "service:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [debug]}\n"
            ) % (pki("nosuch.crt"), pki("server.key"))
    path, rc, err = check_config(text)
    assert rc == 1, err
    assert "%s:%d: receivers.otlp.protocols.grpc.tls.cert_file:" % (
        path, line_of(text, "cert_file:")) in err and "cannot read" in err, err
    assert "protocols.grpc.tls.tenants_from_certificate" in err, err
    good = text.replace(pki("nosuch.crt"), pki("server.crt")).replace(
        "{client-a: \"bad tenant!\"}", "{client-a: team-a}").replace(
        "        tls:\n", "        tls:\n          client_ca_file: %s\n" % pki("ca.crt"))
    path, rc, err = check_config(good)
    assert rc == 0, err
