/**
 * Starts tracing when the OTEL_* variables ask for it (see src/tracing/sdk.ts). src/server.ts imports this
 * module first: ES modules are evaluated in import order, so the SDK is running and the pg instrumentation's
 * require hook is in place before src/db/client.ts loads `pg` (a CommonJS package, which Node loads through
 * that hook even from an ES module). No loader flag (--import, --experimental-loader) is needed.
 */
import { startTracing } from './sdk.js';

startTracing(process.env);
