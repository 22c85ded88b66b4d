#!/usr/bin/env python3
"""A local stand-in for Slack, Teams and an Alertmanager-style webhook (`make demo`).

POST /slack (Block Kit), /teams (Adaptive Card or MessageCard) and /alertmanager (Alertmanager
v4 payload) are printed the way a person would read them in the chat client; each body is also
saved to --save DIR as NNN-<kind>.json. Anything else is answered 404. Standard library only;
listens on 127.0.0.1 only. Ctrl-C stops it.

    python3 demo/webhook_receiver.py --listen 127.0.0.1:9099 --save data/demo/alerts
"""
import argparse
import http.server
import json
import os
import re
import signal
import sys
import threading
import time

WIDTH = 78


def slack_lines(body):
    """Block Kit as Slack shows it: header, sections, fields, context, buttons."""
    out = []
    blocks = list(body.get("blocks", []))
    for att in body.get("attachments", []):
        blocks += att.get("blocks", [])
    for b in blocks:
        t = b.get("type")
        if t == "header":
            out.append(b["text"]["text"])
        elif t == "section":
            if b.get("text"):
                out.extend(b["text"]["text"].splitlines())
            for f in b.get("fields", []):
                out.append("  " + f["text"].replace("\n", " "))
        elif t == "context":
            # <url|label> links as Slack renders them: the label, then the URL
            out.extend("  " + re.sub(r"<([^|>]+)\|([^>]+)>", r"\2 (\1)", e.get("text", ""))
                       for e in b.get("elements", []))
        elif t == "actions":
            out.extend("  [%s] %s" % (e["text"]["text"], e.get("url", ""))
                       for e in b.get("elements", []) if e.get("text"))
        elif t == "divider":
            out.append("-" * 20)
    if not out and body.get("text"):
        out.append(body["text"])
    return out


def teams_lines(body):
    out = []
    for att in body.get("attachments", []):
        for el in att.get("content", {}).get("body", []):
            if el.get("type") == "TextBlock":
                out.append(el.get("text", ""))
            elif el.get("type") == "FactSet":
                out.extend("  %s: %s" % (f["title"], f["value"]) for f in el.get("facts", []))
    if body.get("@type") == "MessageCard":
        out.append(body.get("title", body.get("summary", "")))
        for sec in body.get("sections", []):
            out.extend("  %s: %s" % (f["name"], f["value"]) for f in sec.get("facts", []))
    return out


def alertmanager_lines(body):
    return ["%s %s severity=%s slo=%s" % (body.get("status", "?").upper(),
                                          a["labels"].get("alertname", "?"),
                                          a["labels"].get("severity", a["labels"].get("sloth_severity", "?")),
                                          a["labels"].get("sloth_id", "?"))
            for a in body.get("alerts", [])]


def is_page(body):
    """The notice is a page: [FIRING:page] in its title (meltp puts the severity there)."""
    m = re.search(r"\[FIRING:([^\]]+)\]", body.get("text", "") or json.dumps(body))
    return bool(m) and m.group(1).lower().startswith("page")


class Receiver:
    def __init__(self, save, started):
        self.save = save
        self.started = started
        self.n = 0
        self.lock = threading.Lock()
        if save:
            os.makedirs(save, exist_ok=True)

    def show(self, kind, body):
        with self.lock:
            self.n += 1
            if self.save:
                with open(os.path.join(self.save, "%03d-%s.json" % (self.n, kind)), "w") as f:
                    json.dump(body, f, indent=2)
            lines = {"slack": slack_lines, "teams": teams_lines,
                     "alertmanager": alertmanager_lines}[kind](body)
            page = is_page(body)
            when = time.strftime("%H:%M:%S")
            after = time.time() - self.started
            if kind == "alertmanager":
                print("hooks: %s alertmanager webhook: %s" % (when, "; ".join(lines)), flush=True)
                return
            if kind == "teams":
                print("hooks: %s Teams card: %s" % (when, lines[0] if lines else "(empty)"),
                      flush=True)
                return
            title = " %s as Slack shows it, %s (%dm%02ds after start) " % (
                "PAGE" if page else "alert", when, after // 60, after % 60)
            bar = "=" * 3
            print("\n" + bar + title + "=" * max(3, WIDTH - len(title) - 3), flush=True)
            for line in lines:
                print("| " + line, flush=True)
            print("=" * WIDTH + "\n", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", default="127.0.0.1:9099", help="127.0.0.1:PORT")
    p.add_argument("--save", default=None, help="write every body to DIR")
    p.add_argument("--started", type=float, default=None,
                   help="Unix time the drill started (for the 'after start' figure)")
    a = p.parse_args(argv)
    host, _, port = a.listen.rpartition(":")
    if host not in ("127.0.0.1", "localhost", "::1"):
        p.error("listens on loopback only")
    rcv = Receiver(a.save, a.started or time.time())

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            kind = self.path.strip("/").split("?")[0]
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(min(n, 1 << 20))
            if kind not in ("slack", "teams", "alertmanager"):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self.send_response(400)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            rcv.show(kind, body)
            out = b"ok" if kind == "slack" else b"1"
            self.send_response(200)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    srv = http.server.ThreadingHTTPServer((host, int(port)), H)
    srv.daemon_threads = True

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print("hooks: listening on http://%s (/slack, /teams, /alertmanager)" % a.listen, flush=True)
    srv.serve_forever()
    srv.server_close()
    print("hooks: %d notification%s received" % (rcv.n, "" if rcv.n == 1 else "s"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
