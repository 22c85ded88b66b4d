// One unary gRPC call through @grpc/grpc-js with a message given as bytes; prints (JSON) the
// status code, details, the response bytes and the RetryInfo delay of grpc-status-details-bin.
//   node grpc_call.js '{"target":"127.0.0.1:4317","path":"/...","body_hex":"...",
//                      ("body_file": path instead of body_hex), "metadata":{"x-scope-orgid":"t1"},"compression":"gzip","deadline_ms":5000}'
// With "tls":{"ca":file,"cert":file,"key":file} (cert and key optional) the call goes over TLS.
'use strict';
const grpc = require('@grpc/grpc-js');

const a = JSON.parse(process.argv[2]);

function varint(b, i) {
  let v = 0, m = 1;
  for (;;) {
    const c = b[i++];
    v += (c & 0x7f) * m;
    m *= 128;
    if (c < 0x80) return [v, i];
  }
}

// fields of a protobuf message: [[field, wiretype, value(Buffer|number)]]
function fields(b) {
  const out = [];
  let i = 0;
  while (i < b.length) {
    let k;
    [k, i] = varint(b, i);
    const fn = Math.floor(k / 8), wt = k & 7;
    if (wt === 0) { let v; [v, i] = varint(b, i); out.push([fn, wt, v]); }
    else if (wt === 2) { let n; [n, i] = varint(b, i); out.push([fn, wt, b.subarray(i, i + n)]); i += n; }
    else throw new Error('wire type ' + wt);
  }
  return out;
}

// google.rpc.Status{details: Any{type_url, value: RetryInfo{retry_delay: Duration}}} -> ms
function retryDelay(bin) {
  for (const [fn, , any] of fields(bin)) {
    if (fn !== 3) continue;
    const f = fields(any);
    const url = f.find((x) => x[0] === 1);
    const val = f.find((x) => x[0] === 2);
    if (!url || url[2].toString() !== 'type.googleapis.com/google.rpc.RetryInfo' || !val) continue;
    const dur = fields(val[2]).find((x) => x[0] === 1);
    if (!dur) return 0;
    let ms = 0;
    for (const [dfn, , dv] of fields(dur[2])) ms += dfn === 1 ? dv * 1000 : dv / 1e6;
    return ms;
  }
  return null;
}

const opts = {};
if (a.compression === 'gzip') opts['grpc.default_compression_algorithm'] = 2;
const rd = (f) => (f ? require('fs').readFileSync(f) : null);
const creds = a.tls ? grpc.credentials.createSsl(rd(a.tls.ca), rd(a.tls.key), rd(a.tls.cert))
  : grpc.credentials.createInsecure();
const client = new grpc.Client(a.target, creds, opts);
const md = new grpc.Metadata();
for (const [k, v] of Object.entries(a.metadata || {})) md.set(k, v);
const body = a.body_file ? require('fs').readFileSync(a.body_file) : Buffer.from(a.body_hex || '', 'hex');
const callOpts = { deadline: Date.now() + (a.deadline_ms || 10000) };
client.makeUnaryRequest(a.path, (x) => x, (x) => x, body, md, callOpts, (err, resp) => {
  const out = { code: err ? err.code : 0, details: err ? err.details : '', response_hex: resp ? resp.toString('hex') : '' };
  if (err && err.metadata) {
    const bin = err.metadata.get('grpc-status-details-bin');
    out.retry_delay_ms = bin.length ? retryDelay(bin[0]) : null;
  }
  process.stdout.write(JSON.stringify(out));
  client.close();
});
