// Sends unary gRPC calls continuously through one @grpc/grpc-js client (one HTTP/2
// connection) until a stop file appears; each call carries a copy of a message template whose
// 8-byte marker is replaced by a fresh number, so every acknowledged span is known. Writes the
// number of acknowledged calls to <progress> as it goes and prints (JSON) the acknowledged
// markers, the failed calls, and how many times the channel became READY (1 = one connection
// all along).
//   node grpc_load.js '{"target":"127.0.0.1:4317","path":"/...","body_hex":"...",
//                       "marker_hex":"<8 bytes>","stop_file":"...","progress":"...",
//                       "concurrency":4, "tls":{"ca":"f","cert":"f","key":"f"},
//                       "metadata":{"x-scope-orgid":"t1"}, "serials":true}'
// With tls.serials the peer certificate's serial of each new connection is recorded.
'use strict';
const fs = require('fs');
const grpc = require('@grpc/grpc-js');

const a = JSON.parse(process.argv[2]);
const tmpl = Buffer.from(a.body_hex, 'hex');
const marker = Buffer.from(a.marker_hex, 'hex');
const at = tmpl.indexOf(marker);
if (at < 0) throw new Error('marker not in the template');

let creds = grpc.credentials.createInsecure();
if (a.tls) {
  const rd = (f) => (f ? fs.readFileSync(f) : null);
  creds = grpc.credentials.createSsl(rd(a.tls.ca), rd(a.tls.key), rd(a.tls.cert));
}
const client = new grpc.Client(a.target, creds, {});
const md = new grpc.Metadata();
for (const [k, v] of Object.entries(a.metadata || {})) md.set(k, v);

const acked = [];
const failed = [];
let ready = 0;
let next = 1;
let inflight = 0;
let stopping = false;

function watch(state) {
  client.getChannel().watchConnectivityState(state, Infinity, () => {
    const s = client.getChannel().getConnectivityState(false);
    if (s === grpc.connectivityState.READY) ready++;
    if (!stopping) watch(s);
  });
}
watch(client.getChannel().getConnectivityState(true));

function one() {
  if (stopping) return;
  const id = Buffer.alloc(8);
  id.writeBigUInt64BE(BigInt(next++) + (BigInt(a.base || 0) << 32n));
  const body = Buffer.from(tmpl);
  id.copy(body, at);
  inflight++;
  client.makeUnaryRequest(a.path, (x) => x, (x) => x, body, md, { deadline: Date.now() + 10000 }, (err) => {
    inflight--;
    if (err) failed.push({ code: err.code, details: err.details, id: id.toString('hex') });
    else acked.push(id.toString('hex'));
    setImmediate(one);
  });
}

for (let i = 0; i < (a.concurrency || 4); i++) one();

const timer = setInterval(() => {
  if (a.progress) fs.writeFileSync(a.progress + '.tmp', String(acked.length) + ' ' + failed.length);
  if (a.progress) fs.renameSync(a.progress + '.tmp', a.progress);
  if (!stopping && fs.existsSync(a.stop_file)) {
    stopping = true;
  }
  if (stopping && inflight === 0) {
    clearInterval(timer);
    process.stdout.write(JSON.stringify({ acked, failed, ready }));
    client.close();
    process.exit(0);
  }
}, 50);
