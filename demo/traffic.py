#!/usr/bin/env python3
"""Synthetic traffic for the meltp demo drill (`make demo`), also usable alone.

Personas (clinician, patient, billing clerk) act against the example services patient-api,
billing and scheduling; every action becomes OTLP/JSON over HTTP in all five MELTP signals:
metrics (request counters and latency histograms the example SLO specs in rules/slos read),
events (log records with an event name: bookings, invoices, payments, and a `deployment`
event per service at start; the chaos step is a bad deployment, its end a rollback, so SLO
alerts list it under "recent changes"), logs, traces (a server span per action) and profiles
(one per service every 10 s). Every identity is synthetic: user and patient ids are generated
("synthetic-patient-0042"), e-mail addresses are on example.org (RFC 2606), and every resource
carries synthetic=true, the marker synthetic_guard requires in the demo environment.

--chaos SERVICE:AT:FOR[:RATIO] injects an error burst: from AT for FOR (seconds, or 90s / 2m)
RATIO (default 0.5) of SERVICE's requests fail (span status ERROR, HTTP 500). --rate is
actions per second, --duration seconds (0 = until Ctrl-C). Standard library only.

    python3 demo/traffic.py --rate 20 --duration 60 --chaos patient-api:20s:30s:0.6
"""
import argparse
import json
import os
import random
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

SERVICES = ["patient-api", "billing", "scheduling"]
# persona -> [(weight, service, method, route, event name)]
PERSONAS = {
    "clinician": (0.5, [
        (5, "patient-api", "GET", "/patients/{id}", "record.viewed"),
        (2, "patient-api", "GET", "/patients/{id}/history", "history.viewed"),
        (2, "scheduling", "POST", "/bookings", "appointment.booked"),
        (1, "scheduling", "GET", "/slots", "slots.searched"),
    ]),
    "patient": (0.3, [
        (3, "scheduling", "GET", "/slots", "slots.searched"),
        (3, "scheduling", "POST", "/bookings", "appointment.booked"),
        (2, "patient-api", "GET", "/patients/{id}", "record.viewed"),
        (1, "billing", "GET", "/invoices/{id}", "invoice.viewed"),
    ]),
    "billing-clerk": (0.2, [
        (4, "billing", "POST", "/invoices", "invoice.created"),
        (2, "billing", "POST", "/payments", "payment.recorded"),
        (1, "patient-api", "GET", "/patients/{id}", "record.viewed"),
    ]),
}
LAT_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5]
QUEUES = ["claims", "statements"]
PATHS = {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs",
         "profiles": "/v1development/profiles"}


def duration(text):
    """Seconds from 90, 90s, 2m, 1h."""
    text = text.strip()
    mult = {"s": 1, "m": 60, "h": 3600}.get(text[-1:], None)
    return float(text[:-1]) * mult if mult else float(text)


def parse_chaos(spec):
    parts = spec.split(":")
    if len(parts) not in (3, 4) or parts[0] not in SERVICES:
        raise argparse.ArgumentTypeError(
            "--chaos SERVICE:AT:FOR[:RATIO], SERVICE one of %s" % ", ".join(SERVICES))
    ratio = float(parts[3]) if len(parts) == 4 else 0.5
    if not 0 < ratio <= 1:
        raise argparse.ArgumentTypeError("chaos ratio must be in (0, 1]")
    return {"service": parts[0], "at": duration(parts[1]), "for": duration(parts[2]),
            "ratio": ratio}


def s(v):
    return {"stringValue": v}


def attrs(d):
    out = []
    for k, v in d.items():
        if isinstance(v, bool):
            out.append({"key": k, "value": {"boolValue": v}})
        elif isinstance(v, int):
            out.append({"key": k, "value": {"intValue": str(v)}})
        elif isinstance(v, float):
            out.append({"key": k, "value": {"doubleValue": v}})
        else:
            out.append({"key": k, "value": s(str(v))})
    return out


class Generator:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.start_ns = time.time_ns()
        self.t0 = time.monotonic()
        self.sent = {k: 0 for k in ["metrics", "events", "logs", "traces", "profiles"]}
        self.refused = {}
        self.errors_by_service = {sv: [0, 0] for sv in SERVICES}
        self.chaos_state = None
        self.span_seq = 0
        # cumulative counters (OTLP cumulative temporality from start_ns)
        self.http = {}          # (service, code) -> count
        self.lat = {}           # (service, route) -> [bucket counts..., sum, count]
        self.bookings = {}      # outcome -> count
        self.jobs = {q: [0, 0] for q in QUEUES}  # queue -> [total, failed]
        self.slot_search = [0] * (len(LAT_BOUNDS) + 1) + [0.0, 0]
        self.stop = threading.Event()
        self.version = {sv: "1.4.0" for sv in SERVICES}
        self.deploys = [(sv, "deployment", "1.4.0") for sv in SERVICES]

    # ---- one action ----
    def pick(self):
        r = self.rng.random()
        acc = 0.0
        for name, (w, acts) in PERSONAS.items():
            acc += w
            if r <= acc:
                break
        tot = sum(x[0] for x in acts)
        k = self.rng.uniform(0, tot)
        for act in acts:
            k -= act[0]
            if k <= 0:
                return name, act
        return name, acts[-1]

    def chaos_ratio(self, service, elapsed):
        c = self.a.chaos
        if c and c["service"] == service and c["at"] <= elapsed < c["at"] + c["for"]:
            return c["ratio"]
        return 0.0

    def resource(self, service):
        return {"attributes": attrs({
            "service.name": service,
            "service.version": self.version[service], "deployment.environment.name": self.a.environment,
            "synthetic": "true", "telemetry.sdk.name": "meltp-demo-traffic"})}

    def tick(self, elapsed, n_actions):
        now = time.time_ns()
        spans = {sv: [] for sv in SERVICES}
        logs = {sv: [] for sv in SERVICES}
        for _ in range(n_actions):
            persona, (_, service, method, route, event) = self.pick()
            uid = "synthetic-%s-%04d" % (persona, self.rng.randrange(1, 60))
            pid = "synthetic-patient-%04d" % self.rng.randrange(1, 500)
            fail = self.rng.random() < max(self.a.base_errors, self.chaos_ratio(service, elapsed))
            code = 500 if fail else (201 if method == "POST" else 200)
            # latency: well under the 300 ms of the latency SLO, except for failing requests
            # (a timeout upstream), so the burst burns the latency budget too
            lat = self.rng.lognormvariate(-3.3, 0.5) * (4 if fail else 1)
            self.errors_by_service[service][0] += 1
            self.errors_by_service[service][1] += fail
            self.span_seq += 1
            trace_id = "%032x" % self.rng.getrandbits(128)
            span = {"traceId": trace_id, "spanId": "%016x" % self.rng.getrandbits(64),
                    "name": "%s %s" % (method, route), "kind": 2,
                    "startTimeUnixNano": str(now - int(lat * 1e9)), "endTimeUnixNano": str(now),
                    "attributes": attrs({"http.request.method": method, "http.route": route,
                                         "http.response.status_code": code,
                                         "enduser.id": uid, "app.persona": persona})}
            if fail:
                span["status"] = {"code": 2, "message": "upstream dependency failed"}
            spans[service].append(span)
            sev = (17, "ERROR") if fail else (9, "INFO")
            logs[service].append({
                "timeUnixNano": str(now), "severityNumber": sev[0], "severityText": sev[1],
                "body": s("%s %s %s -> %d for %s (%s)" % (persona, method, route.replace(
                    "{id}", pid), code, uid, "chaos" if fail else "ok")),
                "traceId": trace_id, "spanId": span["spanId"],
                "attributes": attrs({"app.persona": persona, "http.route": route})})
            self.sent["logs"] += 1
            if method == "POST" and not fail:
                logs[service].append({
                    "timeUnixNano": str(now), "severityNumber": 9, "eventName": event,
                    "body": s(event), "attributes": attrs({"app.persona": persona,
                                                           "patient.id": pid,
                                                           "user.email": uid + "@example.org"})})
                self.sent["events"] += 1
            # counters the SLO specs read
            self.http[(service, code)] = self.http.get((service, code), 0) + 1
            if service == "patient-api":
                h = self.lat.setdefault((service, route), [0] * (len(LAT_BOUNDS) + 1) + [0.0, 0])
                self.observe(h, lat)
            if service == "scheduling" and route == "/bookings":
                outcome = "failure" if fail else "success"
                self.bookings[outcome] = self.bookings.get(outcome, 0) + 1
            if service == "scheduling" and route == "/slots":
                self.observe(self.slot_search, lat)
            if service == "billing" and route == "/invoices":
                q = QUEUES[self.rng.randrange(len(QUEUES))]
                self.jobs[q][0] += 1
                self.jobs[q][1] += fail
        for sv, what, version in self.deploys:
            self.version[sv] = version
            logs[sv].append({"timeUnixNano": str(now), "severityNumber": 9, "eventName": what,
                             "body": s("%s %s %s" % (what, sv, version)),
                             "attributes": attrs({"deployment.id": "synthetic-%d" % now})})
            self.sent["events"] += 1
        self.deploys = []
        self.sent["traces"] += sum(len(v) for v in spans.values())
        out = [("traces", {"resourceSpans": [
            {"resource": self.resource(sv), "scopeSpans": [{"scope": {"name": "demo"},
                                                            "spans": spans[sv]}]}
            for sv in SERVICES if spans[sv]]})]
        out.append(("logs", {"resourceLogs": [
            {"resource": self.resource(sv), "scopeLogs": [{"scope": {"name": "demo"},
                                                           "logRecords": logs[sv]}]}
            for sv in SERVICES if logs[sv]]}))
        out.append(("metrics", self.metrics(now)))
        if int(elapsed) // 10 != int(elapsed - 1) // 10 or elapsed < 1:
            out.append(("profiles", self.profiles(now)))
        return out

    @staticmethod
    def observe(h, v):
        n = len(LAT_BOUNDS)
        i = next((k for k, b in enumerate(LAT_BOUNDS) if v <= b), n)
        h[i] += 1
        h[n + 1] += v
        h[n + 2] += 1

    def hist_point(self, h, at, now):
        n = len(LAT_BOUNDS)
        return {"attributes": attrs(at), "startTimeUnixNano": str(self.start_ns),
                "timeUnixNano": str(now), "count": str(h[n + 2]), "sum": h[n + 1],
                "bucketCounts": [str(x) for x in h[:n + 1]], "explicitBounds": LAT_BOUNDS}

    def counter(self, name, points, now):
        return {"name": name, "sum": {"aggregationTemporality": 2, "isMonotonic": True,
                                      "dataPoints": [{"attributes": attrs(a),
                                                      "startTimeUnixNano": str(self.start_ns),
                                                      "timeUnixNano": str(now), "asInt": str(v)}
                                                     for a, v in points]}}

    def metrics(self, now):
        by = {sv: [] for sv in SERVICES}
        n = 0
        for sv in SERVICES:
            pts = [({"code": str(c)}, v) for (svc, c), v in sorted(self.http.items()) if svc == sv]
            if pts:
                by[sv].append(self.counter("http_requests_total", pts, now))
                n += len(pts)
        hp = [self.hist_point(h, {"service": sv, "route": r}, now)
              for (sv, r), h in sorted(self.lat.items())]
        if hp:
            by["patient-api"].append({"name": "http.server.request.duration", "unit": "s",
                                      "histogram": {"aggregationTemporality": 2, "dataPoints": hp}})
            n += len(hp)
        if self.bookings:
            by["scheduling"].append(self.counter("bookings_total", [
                ({"service": "scheduling", "outcome": o}, v) for o, v in sorted(self.bookings.items())],
                now))
            n += len(self.bookings)
        if self.slot_search[-1]:
            by["scheduling"].append({"name": "slot_search_duration_seconds", "histogram": {
                "aggregationTemporality": 2,
                "dataPoints": [self.hist_point(self.slot_search, {"service": "scheduling"}, now)]}})
            n += 1
        if any(t for t, _ in self.jobs.values()):
            by["billing"].append(self.counter("invoice_jobs_total", [
                ({"queue": q}, t) for q, (t, _) in sorted(self.jobs.items())], now))
            by["billing"].append(self.counter("invoice_jobs_failed_total", [
                ({"queue": q}, f) for q, (_, f) in sorted(self.jobs.items())], now))
            n += 2 * len(self.jobs)
        self.sent["metrics"] += n
        return {"resourceMetrics": [
            {"resource": self.resource(sv), "scopeMetrics": [{"scope": {"name": "demo"},
                                                              "metrics": by[sv]}]}
            for sv in SERVICES if by[sv]]}

    def profiles(self, now):
        self.sent["profiles"] += len(SERVICES)
        return {"resourceProfiles": [
            {"resource": self.resource(sv), "scopeProfiles": [{"scope": {"name": "demo-profiler"},
                                                               "profiles": [{
                "timeUnixNano": str(now - 10_000_000_000), "durationNano": "10000000000",
                "profileId": "%032x" % self.rng.getrandbits(128)}]}]}
            for sv in SERVICES]}

    # ---- sending ----
    def post(self, signal_name, body):
        data = json.dumps(body).encode()
        req = urllib.request.Request(self.a.endpoint.rstrip("/") + PATHS[signal_name], data=data,
                                     method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                r.read()
                return r.status
        except urllib.error.HTTPError as e:
            reason = e.read()[:200].decode("utf-8", "replace")
            key = "%s %d" % (signal_name, e.code)
            if key not in self.refused:
                print("traffic: %s refused %d: %s" % (signal_name, e.code, reason), flush=True)
            self.refused[key] = self.refused.get(key, 0) + 1
            return e.code
        except (urllib.error.URLError, OSError) as e:
            key = "%s unreachable" % signal_name
            if key not in self.refused:
                print("traffic: %s: %s" % (self.a.endpoint, e), flush=True)
            self.refused[key] = self.refused.get(key, 0) + 1
            return 0

    def report(self, elapsed):
        errs = ", ".join("%s %.1f%%" % (sv, 100.0 * e / t if t else 0)
                         for sv, (t, e) in self.errors_by_service.items())
        print("traffic: t=%3ds sent %s | error ratio %s%s" % (
            elapsed, " ".join("%s=%d" % kv for kv in self.sent.items()), errs,
            (" | refused %s" % self.refused) if self.refused else ""), flush=True)
        for sv in SERVICES:
            self.errors_by_service[sv] = [0, 0]

    def run(self):
        a = self.a
        tick = 1.0
        carry = 0.0
        last_report = 0
        print("traffic: %s actions/s against %s for %s%s" % (
            a.rate, a.endpoint, ("%ds" % a.duration) if a.duration else "ever (Ctrl-C stops)",
            ("; chaos: %d%% errors on %s from %ds for %ds" % (
                a.chaos["ratio"] * 100, a.chaos["service"], a.chaos["at"], a.chaos["for"]))
            if a.chaos else ""), flush=True)
        i = 0
        while not self.stop.is_set():
            elapsed = time.monotonic() - self.t0
            if a.duration and elapsed >= a.duration:
                break
            c = a.chaos
            if c:
                state = "on" if c["at"] <= elapsed < c["at"] + c["for"] else (
                    "done" if elapsed >= c["at"] else None)
                if state != self.chaos_state and state:
                    if state == "on":
                        self.deploys.append((c["service"], "deployment", "1.5.0"))
                        print("traffic: CHAOS t=%ds: error burst on %s (a bad deployment: %d%% of "
                              "requests fail for %ds)" % (elapsed, c["service"], c["ratio"] * 100, c["for"]),
                              flush=True)
                    else:
                        self.deploys.append((c["service"], "rollback", "1.4.0"))
                        print("traffic: CHAOS t=%ds: %s recovered" % (elapsed, c["service"]),
                              flush=True)
                    self.chaos_state = state
            carry += a.rate * tick
            n = int(carry)
            carry -= n
            for sig, body in self.tick(elapsed, n):
                self.post(sig, body)
            if a.report_every and elapsed - last_report >= a.report_every:
                self.report(elapsed)
                last_report = elapsed
            i += 1
            self.stop.wait(max(0.0, self.t0 + i * tick - time.monotonic()))
        print("traffic: done after %ds: sent %s%s" % (
            time.monotonic() - self.t0, " ".join("%s=%d" % kv for kv in self.sent.items()),
            (" refused %s" % self.refused) if self.refused else ""), flush=True)
        return 0 if not self.refused else 1


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", default=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT",
                                                        "http://127.0.0.1:4318"),
                   help="OTLP/HTTP base URL (default $OTEL_EXPORTER_OTLP_ENDPOINT or "
                        "http://127.0.0.1:4318)")
    p.add_argument("--rate", type=float, default=20, help="actions per second (default 20)")
    p.add_argument("--duration", type=duration, default=0,
                   help="how long to run, e.g. 300, 5m (default 0: until Ctrl-C)")
    p.add_argument("--chaos", type=parse_chaos, default=None,
                   help="SERVICE:AT:FOR[:RATIO]: error burst, e.g. patient-api:2m:3m:0.5")
    p.add_argument("--base-errors", type=float, default=0.001,
                   help="error ratio outside chaos (default 0.001)")
    p.add_argument("--environment", default="demo", help="deployment.environment.name")
    p.add_argument("--seed", type=int, default=None, help="random seed (repeatable runs)")
    p.add_argument("--report-every", type=float, default=10,
                   help="progress line every N seconds (0: none)")
    a = p.parse_args(argv)
    if a.rate <= 0:
        p.error("--rate must be positive")
    g = Generator(a)

    def on_signal(signum, frame):
        g.stop.set()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return g.run()


if __name__ == "__main__":
    sys.exit(main())
