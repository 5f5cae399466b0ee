// A Node.js LLM app as driftwatch sees it: GenAI v1.37 chat spans sent by the stock
// OpenTelemetry JS http/json exporter (OTLP/JSON, hex trace and span ids).
//
//   node send.mjs ITEMS.json http://127.0.0.1:4318/v1/traces
//
// ITEMS.json holds [{prompt, completion, model, input_tokens?, output_tokens?}, ...].
// Prints one JSON line per span ({index, traceId, spanId}) on stdout; exits 1 if any
// export failed or the SDK logged a warning or error (e.g. a partial success), 2 on bad usage.

import { readFileSync } from 'node:fs';

import { diag, DiagConsoleLogger, DiagLogLevel, SpanKind } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';

const [itemsPath, url] = process.argv.slice(2);
if (!itemsPath || !url) {
  console.error('usage: node send.mjs ITEMS.json OTLP_HTTP_TRACES_URL');
  process.exit(2);
}
const items = JSON.parse(readFileSync(itemsPath, 'utf8'));

const tally = { ok: 0, failed: 0, spans: 0, warnings: 0 };

// The SDK reports problems the export callback does not (an OTLP partialSuccess with
// rejected spans, an unparsable response) through diag: print them and count them.
const console_ = new DiagConsoleLogger();
diag.setLogger({
  error: (...args) => { tally.warnings += 1; console_.error(...args); },
  warn: (...args) => { tally.warnings += 1; console_.warn(...args); },
  info: () => {},
  debug: () => {},
  verbose: () => {},
}, DiagLogLevel.WARN);

const exporter = new OTLPTraceExporter({ url });
const export_ = exporter.export.bind(exporter);
exporter.export = (spans, resultCallback) => {
  export_(spans, (result) => {
    if (result.code === ExportResultCode.SUCCESS) {
      tally.ok += 1;
      tally.spans += spans.length;
    } else {
      tally.failed += 1;
      console.error(`export of ${spans.length} spans failed: ${result.error?.stack ?? result.error}`);
    }
    resultCallback(result);
  });
};

const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'node-support-bot' }),
  // Small batches so one run makes several export requests.
  spanProcessors: [new BatchSpanProcessor(exporter, { maxExportBatchSize: 8 })],
});
const tracer = provider.getTracer('driftwatch-js-exporter-test', '1.0.0');

const words = (text) => text.split(/\s+/).filter(Boolean).length;

items.forEach((item, index) => {
  const span = tracer.startSpan(`chat ${item.model}`, {
    kind: SpanKind.CLIENT,
    attributes: {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': item.model,
      'gen_ai.response.model': item.model,
      'gen_ai.usage.input_tokens': item.input_tokens ?? words(item.prompt),
      'gen_ai.usage.output_tokens': item.output_tokens ?? words(item.completion),
      'gen_ai.input.messages': JSON.stringify([
        { role: 'user', parts: [{ type: 'text', content: item.prompt }] },
      ]),
      'gen_ai.output.messages': JSON.stringify([
        { role: 'assistant', parts: [{ type: 'text', content: item.completion }], finish_reason: 'stop' },
      ]),
    },
  });
  const { traceId, spanId } = span.spanContext();
  span.end();
  console.log(JSON.stringify({ index, traceId, spanId }));
});

try {
  await provider.forceFlush();
  await provider.shutdown();
} catch (err) {
  tally.failed += 1;
  console.error(`flush/shutdown failed: ${err?.stack ?? err}`);
}

console.error(`exports: ${JSON.stringify(tally)}`);
if (tally.failed > 0 || tally.warnings > 0 || tally.spans !== items.length) {
  process.exit(1);
}
