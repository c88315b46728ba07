// First: tracing must be running before any module loads `pg` (see src/tracing/start.ts).
import './tracing/start.js';
import { setFlagsFromString } from 'node:v8';
import { buildApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { errorMessage } from './errors/message.js';
import { scrubber } from './plugins/app/logger.js';

// V8 moves an allocation site to old space once most of its objects outlive a young collection, which
// the bulk path (thousands of records per list) quickly teaches it. The short-lived objects of every
// later cached lookup were then born old, and only full collections reclaimed them: npm run bench
// measured GET /ip/:addr at 39-41 µs of CPU per request with it and 29-31 µs without, p99 3 ms and 1 ms.
setFlagsFromString('--no-allocation-site-pretenuring');
// V8 lets the old generation grow by a factor it picks from its own speed (up to 4x the live size) before it
// collects it again. A list asked again and again leaves ~3 MB there each time (what was alive when a young
// collection ran), so after a cold list the RSS climbed by 20+ MB over ten cached repeats before a full
// collection came. A fixed 30% bounds that, at the cost of more frequent (incremental, mostly concurrent)
// full collections: npm run bench measured the same cold and cached times with it.
setFlagsFromString('--heap-growing-percent=30');

let config: Config;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`configuration error: ${error.message}\n`);
  process.exit(1);
}

let app: Awaited<ReturnType<typeof buildApp>>;
try {
  app = await buildApp(config);
} catch (error) {
  // The logger has already recorded details where it could; the operator needs the one line that says why.
  // A driver's message may quote a connection string or a password: the line is scrubbed like the log.
  process.stderr.write(`boot failed: ${scrubber(config)(errorMessage(error))}\n`);
  process.exit(1);
}

let closing = false;
async function shutdown(signal: string) {
  if (closing) return;
  closing = true;
  app.log.info(`${signal} received: finishing in-flight requests, then closing`);
  // A stuck backend must not keep an orchestrator's SIGTERM waiting forever.
  setTimeout(() => process.exit(1), 15_000).unref();
  await app.close();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

await app.listen({ host: config.HOST, port: config.PORT });
