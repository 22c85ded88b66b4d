#!/usr/bin/env node
// A strict fake OTLP/gRPC backend for meltp's integration tests (grpc-js, the services of
// otlp_services/ over the message types of meltp's proto/, loaded with proto-loader).
//
//   node fake_otlp_grpc.js --port N [--plan JSON] [--tls-cert F --tls-key F]
//                          [--sink-stats-port M]
//
// Prints `listening <port>` once bound, then one JSON line per request on stdout:
//   {t, path, signal, session, headers (the raw HTTP/2 request headers), metadata (what the
//    application sees), encoding (grpc-encoding), items, decoded, raw (the message bytes after
//    gRPC decompression, base64), answer: {code, ...}}
// The plan is a list of answers used in order, one per request (an entry with "times": n
// counts n requests); once it is used up every request gets OK. An answer is
//   {"code": 14, "message": "...", "retry_delay_ms": 1500}   an error status (with RetryInfo)
//   {"code": 0, "rejected": 2, "error_message": "..."}       OK with partial_success
//   {"delay_ms": 2000}                                        answer OK that much later
// --sink-stats-port makes it the benchmark's sink instead (tests/bench/bench.sh, phase R):
// nothing is recorded or decoded, spans are counted by walking the wire format (as
// tests/bench/sink.c does), and GET /stats on port M answers {"requests":N,"spans":N}.
// Strict: a request whose bytes do not decode, or that lacks content-type application/grpc,
// te: trailers or an OTLP method, is answered INVALID_ARGUMENT and recorded with "error".
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
    args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
const ROOT = path.resolve(__dirname, '..', '..');
const SIGNALS = {
    trace: {svc: 'opentelemetry.proto.collector.trace.v1.TraceService', rej: 'rejectedSpans'},
    metrics: {svc: 'opentelemetry.proto.collector.metrics.v1.MetricsService', rej: 'rejectedDataPoints'},
    logs: {svc: 'opentelemetry.proto.collector.logs.v1.LogsService', rej: 'rejectedLogRecords'},
    profiles: {
        svc: 'opentelemetry.proto.collector.profiles.v1development.ProfilesService',
        rej: 'rejectedProfiles',
    },
};

// grpc-js decodes identity, gzip and deflate; zstd (which meltp and the Collector send) is added
// here through the zstd command line tool, by wrapping grpc-js's per-message decompression.
const sic = require(path.join(path.dirname(require.resolve('@grpc/grpc-js')),
                              'server-interceptors.js'));
const decompress = sic.BaseServerInterceptingCall.prototype.decompressMessage;
sic.BaseServerInterceptingCall.prototype.decompressMessage = function (message, encoding) {
    if (encoding !== 'zstd') return decompress.call(this, message, encoding);
    const r = require('child_process').spawnSync('zstd', ['-d', '-c', '-q'],
                                                 {input: message.subarray(5)});
    if (r.status !== 0) {
        return Promise.reject({code: grpc.status.INVALID_ARGUMENT, details: 'bad zstd message'});
    }
    return Promise.resolve(r.stdout);
};

const pkg = protoLoader.loadSync(
    Object.keys(SIGNALS).map((s) => s + '_service.proto'),
    {
        includeDirs: [path.join(__dirname, 'otlp_services'), path.join(ROOT, 'proto')],
        keepCase: false, longs: String, enums: Number, bytes: Buffer, defaults: false,
        oneofs: true,
    });

// the plan, expanded
const plan = [];
for (const a of JSON.parse(args.plan || '[]')) {
    for (let n = 0; n < (a.times || 1); n++) plan.push(a);
}

// ---- a tiny protobuf writer for google.rpc.Status{details: [Any{RetryInfo}]} ----
function varint(n) {
    const out = [];
    let v = BigInt(n);
    do {
        let b = Number(v & 0x7fn);
        v >>= 7n;
        if (v) b |= 0x80;
        out.push(b);
    } while (v);
    return Buffer.from(out);
}
function field(num, wt, payload) {
    const tag = varint((num << 3) | wt);
    if (wt === 0) return Buffer.concat([tag, varint(payload)]);
    return Buffer.concat([tag, varint(payload.length), payload]);
}
function statusDetails(code, message, delayMs) {
    const dur = Buffer.concat([field(1, 0, Math.floor(delayMs / 1000)),
                               field(2, 0, (delayMs % 1000) * 1000000)]);
    const retryInfo = field(1, 2, dur);
    const any = Buffer.concat([field(1, 2, Buffer.from('type.googleapis.com/google.rpc.RetryInfo')),
                               field(2, 2, retryInfo)]);
    return Buffer.concat([field(1, 0, code), field(2, 2, Buffer.from(message)), field(3, 2, any)]);
}

// ---- what a request holds ----
function hex(b) { return b ? Buffer.from(b).toString('hex') : ''; }
function anyValue(v) {
    if (!v) return null;
    if (v.value === 'stringValue') return v.stringValue;
    if (v.value === 'intValue') return Number(v.intValue);
    if (v.value === 'doubleValue') return v.doubleValue;
    if (v.value === 'boolValue') return v.boolValue;
    return v[v.value] === undefined ? null : JSON.parse(JSON.stringify(v[v.value]));
}
function summarize(signal, m) {
    const out = [];
    if (signal === 'trace') {
        for (const rs of m.resourceSpans || []) for (const ss of rs.scopeSpans || [])
            for (const sp of ss.spans || [])
                out.push({traceId: hex(sp.traceId), spanId: hex(sp.spanId), name: sp.name || ''});
    } else if (signal === 'logs') {
        for (const rl of m.resourceLogs || []) for (const sl of rl.scopeLogs || [])
            for (const lr of sl.logRecords || []) out.push({body: anyValue(lr.body)});
    } else if (signal === 'metrics') {
        for (const rm of m.resourceMetrics || []) for (const sm of rm.scopeMetrics || [])
            for (const mt of sm.metrics || []) {
                const d = mt.data ? mt[mt.data] : null;
                for (const _ of (d && d.dataPoints) || []) out.push({name: mt.name || ''});
            }
    } else {
        for (const rp of m.resourceProfiles || []) for (const sp of rp.scopeProfiles || [])
            for (const _ of sp.profiles || []) out.push({});
    }
    return out;
}

// Spans in an ExportTraceServiceRequest, by walking the wire format (resource_spans = 1,
// scope_spans = 2, spans = 2) without decoding them; -1 when the bytes are not protobuf.
function countLen(b, start, end, field, inner) {
    let n = 0;
    let i = start;
    while (i < end) {
        let tag = 0, shift = 0, c;
        do { c = b[i++]; tag += (c & 0x7f) * 2 ** shift; shift += 7; } while (c & 0x80 && i < end);
        const wt = tag % 8, fn = Math.floor(tag / 8);
        if (wt === 0) {
            while (i < end && b[i++] & 0x80);
        } else if (wt === 1) {
            i += 8;
        } else if (wt === 5) {
            i += 4;
        } else if (wt === 2) {
            let len = 0;
            shift = 0;
            do { c = b[i++]; len += (c & 0x7f) * 2 ** shift; shift += 7; } while (c & 0x80 && i < end);
            if (i + len > end) return -1;
            if (fn === field) {
                const k = inner ? inner(b, i, i + len) : 1;
                if (k < 0) return -1;
                n += k;
            }
            i += len;
        } else {
            return -1;
        }
    }
    return i === end ? n : -1;
}
const countSpans = (b) => countLen(b, 0, b.length, 1, (b, s, e) =>
    countLen(b, s, e, 2, (b, s, e) => countLen(b, s, e, 2, null)));
const sinkStats = {requests: 0, spans: 0, bad: 0};

const sessions = new Map();
function record(obj) {
    process.stdout.write(JSON.stringify(obj) + '\n');
}

const server = new grpc.Server({'grpc.max_receive_message_length': 64 << 20});
for (const [signal, s] of Object.entries(SIGNALS)) {
    const def = pkg[s.svc];
    const m = def.Export;
    const raw = {
        Export: Object.assign({}, m, {
            // keep the bytes: decode in the handler so a decoding error is recorded, not hidden
            requestDeserialize: (buf) => buf,
        }),
    };
    server.addService(raw, {
        Export(call, callback) {
            const buf = call.request;
            if (args['sink-stats-port']) {
                const n = signal === 'trace' ? countSpans(buf) : 0;
                sinkStats.requests++;
                if (n < 0) {
                    sinkStats.bad++;
                    return callback({code: grpc.status.INVALID_ARGUMENT, details: 'not protobuf'});
                }
                sinkStats.spans += n;
                return callback(null, {});
            }
            const hdrs = Object.assign({}, currentHeaders(call));
            const rec = {
                t: Date.now(), path: m.path, signal, session: hdrs['x-fake-session'],
                headers: hdrs, metadata: call.metadata.getMap(),
                encoding: hdrs['grpc-encoding'] || 'identity', raw: buf.toString('base64'),
            };
            delete rec.headers['x-fake-session'];
            let msg = null;
            try {
                msg = m.requestDeserialize(buf);
            } catch (e) {
                rec.error = 'undecodable: ' + e.message;
            }
            if (!rec.error && hdrs['content-type'] !== 'application/grpc' &&
                !String(hdrs['content-type']).startsWith('application/grpc+proto')) {
                rec.error = 'content-type ' + hdrs['content-type'];
            }
            if (!rec.error && hdrs.te !== 'trailers') rec.error = 'te ' + hdrs.te;
            if (rec.error) {
                rec.answer = {code: grpc.status.INVALID_ARGUMENT};
                record(rec);
                return callback({code: grpc.status.INVALID_ARGUMENT, details: rec.error});
            }
            rec.decoded = summarize(signal, msg);
            rec.items = rec.decoded.length;
            const a = plan.length ? plan.shift() : {code: 0};
            rec.answer = a;
            record(rec);
            const answer = () => {
                if (a.code) {
                    const md = new grpc.Metadata();
                    if (a.retry_delay_ms !== undefined) {
                        md.set('grpc-status-details-bin',
                               statusDetails(a.code, a.message || '', a.retry_delay_ms));
                    }
                    return callback({code: a.code, details: a.message || 'planned failure',
                                     metadata: md});
                }
                const resp = {};
                if (a.rejected || a.error_message) {
                    resp.partialSuccess = {[s.rej]: String(a.rejected || 0),
                                           errorMessage: a.error_message || ''};
                }
                callback(null, resp);
            };
            if (a.delay_ms) return setTimeout(answer, a.delay_ms);
            answer();
        },
    });
}

// The raw HTTP/2 request headers (grpc-js strips grpc-encoding, te and content-type from the
// metadata it gives the handler): a 'stream' listener on grpc-js's HTTP/2 servers keeps them on
// the stream, found again through the call.
const streamHeaders = new WeakMap();
function currentHeaders(call) {
    for (let c = call.call; c; c = c.nextCall) {
        if (c.stream && streamHeaders.has(c.stream)) return streamHeaders.get(c.stream);
    }
    return {};
}

let creds = grpc.ServerCredentials.createInsecure();
if (args['tls-cert']) {
    const fs = require('fs');
    creds = grpc.ServerCredentials.createSsl(null, [{
        cert_chain: fs.readFileSync(args['tls-cert']), private_key: fs.readFileSync(args['tls-key']),
    }], false);
}
server.bindAsync('127.0.0.1:' + (args.port || 0), creds, (err, port) => {
    if (err) {
        process.stderr.write('bind: ' + err.message + '\n');
        process.exit(2);
    }
    let nsess = 0;
    for (const h2 of server.http2Servers.keys()) {
        h2.on('session', (sess) => {
            sessions.set(sess, ++nsess);
            if (args['sink-stats-port']) {
                // as a grpc-go server's BDP estimation grows them: a 64 KiB stream window makes
                // the sender wait for a WINDOW_UPDATE every 64 KiB of a 1.5 MB batch
                sess.settings({initialWindowSize: 4 << 20});
                sess.setLocalWindowSize(16 << 20);
            }
        });
        h2.on('stream', (stream, headers) => {
            const h = {};
            for (const [k, v] of Object.entries(headers)) h[k] = Array.isArray(v) ? v.join(',') : v;
            h['x-fake-session'] = sessions.get(stream.session);
            streamHeaders.set(stream, h);
        });
    }
    if (args['sink-stats-port']) {
        require('http').createServer((req, res) => {
            res.setHeader('content-type', 'application/json');
            res.end(JSON.stringify(sinkStats));
        }).listen(Number(args['sink-stats-port']), '127.0.0.1');
    }
    process.stdout.write('listening ' + port + '\n');
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
