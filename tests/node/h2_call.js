// One HTTP/2 request through node's http2 module, with any headers and a body given as bytes
// (so a test can send what grpc-js would not: unknown grpc-encoding, a pre-compressed bomb, a
// prefix that lies). Prints (JSON) the response headers, trailers, body length and any error.
//   node h2_call.js '{"target":"127.0.0.1:4317","headers":{...},"body_b64":"...",
//                     "gzip_zeros_mb":100, "prefix_len": N}'
'use strict';
const http2 = require('http2');
const zlib = require('zlib');

const a = JSON.parse(process.argv[2]);
let msg = Buffer.from(a.body_b64 || '', 'base64');
let flag = a.compressed ? 1 : 0;
if (a.gzip_zeros_mb) {
  msg = zlib.gzipSync(Buffer.alloc(a.gzip_zeros_mb * 1024 * 1024), { level: 9 });
  flag = 1;
}
const prefix = Buffer.alloc(5);
prefix[0] = flag;
prefix.writeUInt32BE(a.prefix_len !== undefined ? a.prefix_len : msg.length, 1);
const body = a.raw ? msg : Buffer.concat([prefix, msg]);

const out = { headers: null, trailers: null, data_len: 0, error: null, sent: body.length };
const s = http2.connect('http://' + a.target);
s.on('error', (e) => { out.error = String(e.code || e.message); });
const req = s.request(Object.assign({ ':method': 'POST', ':path': a.path, 'content-type': 'application/grpc', te: 'trailers' }, a.headers || {}));
req.on('response', (h) => { out.headers = Object.assign({}, h); });
req.on('trailers', (t) => { out.trailers = Object.assign({}, t); });
req.on('data', (d) => { out.data_len += d.length; });
req.on('error', (e) => { out.error = String(e.code || e.message); });
req.on('close', () => {
  out.rst_code = req.rstCode;
  process.stdout.write(JSON.stringify(out));
  s.close();
  setTimeout(() => process.exit(0), 100);
});
req.end(body);
setTimeout(() => { out.error = 'timeout'; process.stdout.write(JSON.stringify(out)); process.exit(0); }, a.timeout_ms || 15000);
