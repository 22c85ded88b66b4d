// Sends traces, metrics and logs made by the OpenTelemetry JS SDK through its OTLP/gRPC
// exporters, and prints (JSON, one object) what each export returned and the items as the SDK
// made them, in the shapes of harness.py's j_traces / j_logs / j_metric_points, so a test can
// compare them with what meltp wrote.
//   node otlp_grpc_send.js <host:port> <gzip|none> <run-id> [tenant]
// With OTLP_GRPC_TLS='{"ca":file,"cert":file,"key":file}' in the environment the exporters
// speak TLS (grpc-js credentials.createSsl; cert and key optional: mTLS).
'use strict';
const grpc = require('@grpc/grpc-js');
const api = require('@opentelemetry/api');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider, SimpleSpanProcessor, InMemorySpanExporter } = require('@opentelemetry/sdk-trace-base');
const { MeterProvider, PeriodicExportingMetricReader, InMemoryMetricExporter, AggregationTemporality } = require('@opentelemetry/sdk-metrics');
const { LoggerProvider, SimpleLogRecordProcessor, InMemoryLogRecordExporter } = require('@opentelemetry/sdk-logs');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
const { OTLPMetricExporter } = require('@opentelemetry/exporter-metrics-otlp-grpc');
const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-grpc');

const [endpoint, compression, run, tenant] = process.argv.slice(2);
const tls = process.env.OTLP_GRPC_TLS ? JSON.parse(process.env.OTLP_GRPC_TLS) : null;
const url = (tls ? 'https://' : 'http://') + endpoint;
const rd = (f) => (f ? require('fs').readFileSync(f) : null);
const resource = resourceFromAttributes({ 'service.name': 'grpc-js-' + run, 'test.run': run, 'test.n': 7 });

function opts() {
  const o = { url, compression, timeoutMillis: 10000 };
  if (tls) o.credentials = grpc.credentials.createSsl(rd(tls.ca), rd(tls.key), rd(tls.cert));
  if (tenant) {
    const md = new grpc.Metadata();
    md.set('x-scope-orgid', tenant);
    o.metadata = md;
  }
  return o;
}

function exportWith(exporter, items) {
  return new Promise((resolve) => {
    exporter.export(items, (r) => resolve({ code: r.code, error: r.error ? String(r.error.message || r.error) : null }));
  });
}

function attrs(a) {
  const out = {};
  for (const [k, v] of Object.entries(a || {})) out[k] = v;
  return out;
}

async function traces() {
  const mem = new InMemorySpanExporter();
  const tp = new BasicTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(mem)] });
  const tracer = tp.getTracer('grpc-test', '1.2.3');
  for (let i = 0; i < 25; i++) {
    const s = tracer.startSpan('op-' + i, { attributes: { 'i': i, 'run': run, 'ratio': i + 0.5, 'ok': i % 2 === 0, 'tags': ['a', 'b' + i] } });
    s.setAttribute('late', 'x'.repeat(i));
    s.end();
  }
  await tp.forceFlush();
  const spans = mem.getFinishedSpans();
  const res = await exportWith(new OTLPTraceExporter(opts()), spans);
  res.items = spans.map((s) => ({
    traceId: s.spanContext().traceId, spanId: s.spanContext().spanId, name: s.name,
    attributes: attrs(s.attributes), resource: attrs(s.resource.attributes),
  }));
  return res;
}

async function metrics() {
  const mem = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: mem, exportIntervalMillis: 3600000 });
  const mp = new MeterProvider({ resource, readers: [reader] });
  const meter = mp.getMeter('grpc-test');
  const c = meter.createCounter('grpc_test_requests');
  const h = meter.createHistogram('grpc_test_latency');
  const g = meter.createGauge('grpc_test_temp');
  for (let i = 0; i < 5; i++) {
    c.add(i + 1, { route: '/r' + i, run });
    h.record(i * 1.5, { route: '/r' + i });
    g.record(20 + i, { room: 'k' + i });
  }
  await reader.forceFlush();
  const rms = mem.getMetrics();
  const rm = rms[rms.length - 1];
  const res = await exportWith(new OTLPMetricExporter(opts()), rm);
  const kinds = { 0: 9, 1: 10, 2: 7, 3: 5 }; // DataPointType: HISTOGRAM, EXPONENTIAL_HISTOGRAM, GAUGE, SUM
  res.items = [];
  for (const sm of rm.scopeMetrics) {
    for (const m of sm.metrics) {
      for (const dp of m.dataPoints) {
        let fn = m.dataPointType === 3 ? 7 : m.dataPointType === 2 ? 5 : m.dataPointType === 0 ? 9 : 10;
        void kinds;
        res.items.push([m.descriptor.name, fn, attrs(dp.attributes)]);
      }
    }
  }
  return res;
}

async function logs() {
  const mem = new InMemoryLogRecordExporter();
  const lp = new LoggerProvider({ resource, processors: [new SimpleLogRecordProcessor({ exporter: mem })] });
  const logger = lp.getLogger('grpc-test');
  for (let i = 0; i < 12; i++) {
    const sc = { traceId: (i + 1).toString(16).padStart(32, 'a'), spanId: (i + 1).toString(16).padStart(16, 'b'), traceFlags: 1 };
    const ctx = api.trace.setSpanContext(api.context.active(), sc);
    logger.emit({ body: 'line ' + i + ' of ' + run, severityText: 'INFO', severityNumber: 9, attributes: { 'n': i, 'run': run }, context: ctx });
  }
  await lp.forceFlush();
  const recs = mem.getFinishedLogRecords();
  const res = await exportWith(new OTLPLogExporter(opts()), recs);
  res.items = recs.map((r) => ({
    traceId: r.spanContext ? r.spanContext.traceId : '', spanId: r.spanContext ? r.spanContext.spanId : '',
    body: r.body, attributes: attrs(r.attributes), resource: attrs(r.resource.attributes),
  }));
  return res;
}

(async () => {
  const out = { traces: await traces(), metrics: await metrics(), logs: await logs() };
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(2); });
