#!/usr/bin/env python3
"""seeds.py - (re)writes the seed corpora tests/fuzz/corpus/<target>/ from tests/fixtures,
configs/ and rules/slos, plus a few hand-encoded messages the fixtures lack (a pprof profile, a
remote-write 2.0 request). Each seed starts with the byte the target reads as its mode or
signal (see the target's header comment). Run from anywhere; the output is committed, so this
only runs again when fixtures change. Needs python3 and the `zstd` command (make deps)."""
import glob
import os
import struct
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")
SIG = {"traces": 0, "metrics": 1, "logs": 2, "profiles": 3}


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def unsnappy(b):
    """Raw snappy block decoder (the format is small: a varint length, literals and copies)."""
    n, shift, i = 0, 0, 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            break
    out = bytearray()
    while i < len(b):
        tag = b[i]
        i += 1
        kind = tag & 3
        if kind == 0:
            ln = tag >> 2
            if ln >= 60:
                nb = ln - 59
                ln = int.from_bytes(b[i:i + nb], "little")
                i += nb
            ln += 1
            out += b[i:i + ln]
            i += ln
            continue
        if kind == 1:
            ln = ((tag >> 2) & 7) + 4
            off = ((tag >> 5) << 8) | b[i]
            i += 1
        elif kind == 2:
            ln = (tag >> 2) + 1
            off = int.from_bytes(b[i:i + 2], "little")
            i += 2
        else:
            ln = (tag >> 2) + 1
            off = int.from_bytes(b[i:i + 4], "little")
            i += 4
        for _ in range(ln):
            out.append(out[-off])
    assert len(out) == n
    return bytes(out)


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def fv(num, v):
    return varint(num << 3) + varint(v)


def fl(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def fd(num, d):
    return varint(num << 3 | 1) + struct.pack("<d", d)


def packed(num, vals):
    return fl(num, b"".join(varint(v) for v in vals))


def pprof_profile():
    strings = ["", "samples", "count", "cpu", "nanoseconds", "main", "work", "main.go", "thread", "t1"]
    p = b""
    p += fl(1, fv(1, 1) + fv(2, 2))            # sample_type samples/count
    p += fl(1, fv(1, 3) + fv(2, 4))            # sample_type cpu/nanoseconds
    p += fl(2, packed(1, [2, 1]) + packed(2, [5, 50000000]) + fl(3, fv(1, 8) + fv(2, 9)))
    p += fl(2, packed(1, [1]) + packed(2, [1, 10000000]))
    p += fl(3, fv(1, 1) + fv(2, 0x1000) + fv(3, 0x2000) + fv(5, 7))   # mapping
    p += fl(4, fv(1, 1) + fv(2, 1) + fv(3, 0x1100) + fl(4, fv(1, 1) + fv(2, 10)))
    p += fl(4, fv(1, 2) + fv(2, 1) + fv(3, 0x1200) + fl(4, fv(1, 2) + fv(2, 20)))
    p += fl(5, fv(1, 1) + fv(2, 5) + fv(3, 5) + fv(4, 7) + fv(5, 1))
    p += fl(5, fv(1, 2) + fv(2, 6) + fv(3, 6) + fv(4, 7) + fv(5, 15))
    for s in strings:
        p += fl(6, s.encode())
    p += fv(9, 1700000000000000000) + fv(10, 10000000000)
    p += fl(11, fv(1, 3) + fv(2, 4)) + fv(12, 10000000)
    return p


def rw2_request():
    syms = ["", "__name__", "http_requests_total", "job", "api", "instance", "h:9090", "le"]
    req = b"".join(fl(4, s.encode()) for s in syms)
    ts = packed(1, [1, 2, 3, 4, 5, 6]) + fl(2, fd(1, 42.0) + fv(2, 1700000000000))
    ts += fl(5, fv(1, 1))  # metadata: counter
    req += fl(5, ts)
    return req


def main():
    js = os.path.join(FX, "otlp-js")
    for sig in ("traces", "metrics", "logs"):
        for d in sorted(glob.glob(os.path.join(js, sig + "-n*"))):
            base = os.path.basename(d)
            for f in sorted(glob.glob(os.path.join(d, sig + "-proto-[0-9].bin")))[:2]:
                put("otlp_scan_decode", base + "-" + os.path.basename(f), bytes([SIG[sig]]) + read(f))
            for f in sorted(glob.glob(os.path.join(d, sig + "-json-[0-9].bin")))[:1]:
                if os.path.getsize(f) > 16384:
                    continue  # libFuzzer mutates up to the largest seed: 80 KB costs 10x the execs
                put("otlp_json", base + "-" + os.path.basename(f), bytes([SIG[sig]]) + read(f))
            for f in sorted(glob.glob(os.path.join(d, sig + "-proto-gzip-1.bin")))[:1]:
                put("codec", base + "-gzip.bin", b"\x00" + read(f))
    for f in sorted(glob.glob(os.path.join(FX, "promrw", "*.bin"))):
        raw = read(f)
        name = os.path.basename(f)
        put("codec", name, b"\x02" + raw)
        body = unsnappy(raw)
        put("prw", name.replace("-snappy", ""), b"\x00" + body)
    put("prw", "rw2-counter.bin", b"\x01" + rw2_request())
    small = read(os.path.join(js, "logs-n1", "logs-proto-1.bin"))
    z = subprocess.run(["zstd", "-q", "-c"], input=small, stdout=subprocess.PIPE, check=True).stdout
    put("codec", "logs-n1-zstd.bin", b"\x01" + z)
    put("codec", "logs-n1-zstd-smallcap.bin", b"\x05" + z)

    prof = pprof_profile()
    put("pprof", "pprof-two-types.bin", b"\x00" + prof)
    put("pprof", "folded.txt", b"\x01main;work;leaf 10\nmain;work 5\nmain;idle 1\n")
    put("pprof", "lines.txt", b"\x02main;work;leaf\nmain;work\n")
    bnd = b"------fuzzboundary"
    body = (b"--" + bnd + b"\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"p.pprof\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n" + prof + b"\r\n--" + bnd +
            b"\r\nContent-Disposition: form-data; name=\"sample_type_config\"\r\n\r\n{}\r\n--" + bnd + b"--\r\n")
    put("pprof", "multipart.bin", b"\x03multipart/form-data; boundary=" + bnd + b"\n" + body)
    put("pprof", "name.txt", b"\x04app.cpu{env=prod,region=eu-west}\nsamples,cpu,alloc_objects,inuse_space")

    for f in sorted(glob.glob(os.path.join(ROOT, "configs", "*.yaml")) +
                    glob.glob(os.path.join(FX, "validate", "*", "config*.yaml"))):
        rel = os.path.relpath(f, ROOT).replace("/", "_")
        put("config", rel, read(f))

    # fixed findings stay in the corpus, so every run replays them (open ones would stop the
    # oracle targets at start-up: they are only in tests/fuzz/findings/)
    fixed = os.path.join(ROOT, "tests", "fuzz", "findings", "config-memory-limiter-negative-spike.yaml")
    put("config", "finding-memory-limiter-negative-spike.yaml", read(fixed))

    for f in sorted(glob.glob(os.path.join(ROOT, "rules", "slos", "*.yaml")) +
                    glob.glob(os.path.join(FX, "validate", "*", "slo", "*.yaml"))):
        put("slo_spec", os.path.basename(f), b"\x00" + read(f))
    put("slo_spec", "sloth-queries.txt",
        b"\x01sum by (queue) (rate(jobs_failed_total{job=\"b\",code=~\"(5..|429)\"}[{{.window}}]))\n"
        b"sum by (queue) (rate(jobs_total{job=\"b\"}[{{.window}}]))")
    put("slo_spec", "openslo-queries.txt",
        b"\x02sum(rate(bookings_total{service=\"s\",outcome!=\"fail\"}[5m]))\n"
        b"sum(increase(bookings_total{service=\"s\"}[5m]))")
    put("slo_spec", "native-selector.txt",
        b"\x03http_server_request_duration_seconds{service=\"patient-api\",route=~\"/patients/.*\",x!~\"a|b\"}")

    put("slo_silence", "post.json",
        b"\x00" + b'{"matchers":[{"name":"sloth_id","value":"api-requests-availability",'
        b'"isRegex":false,"isEqual":true},{"name":"severity","value":"page|ticket",'
        b'"isRegex":true,"isEqual":false}],"startsAt":"2027-01-15T08:00:00Z",'
        b'"endsAt":"2027-01-15T10:00:00.250+01:00","createdBy":"sre","comment":"chaos drill"}')
    put("slo_silence", "matcher-re.txt", b"\x01severity=~\"ticket|slack\"")
    put("slo_silence", "matcher-bare.txt", b"\x01{team = sre}")
    put("slo_silence", "matcher-quoted.txt", b"\x01team!='a\\\"b'")
    fixed = os.path.join(ROOT, "tests", "fuzz", "findings", "slo-silence-regcomp-blowup.txt")
    put("slo_silence", "finding-regcomp-blowup.txt", read(fixed))
    fixed = os.path.join(ROOT, "tests", "fuzz", "findings", "slo-silence-regcomp-stacked.txt")
    put("slo_silence", "finding-regcomp-stacked.txt", read(fixed))


if __name__ == "__main__":
    main()
