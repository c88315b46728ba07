/**
 * The baseline for GET /ip/:addr: Fastify with nothing but a route answering a constant record (the file
 * BENCH_RECORD_FILE holds one the service really answered), so the comparison isolates what the service adds.
 */
import { readFile } from 'node:fs/promises';
import Fastify from 'fastify';

const recordFile = process.env.BENCH_RECORD_FILE;
if (!recordFile) throw new Error('BENCH_RECORD_FILE is required');
const record = JSON.parse(await readFile(recordFile, 'utf8')) as Record<string, unknown>;

const app = Fastify({ logger: false });
app.get<{ Params: { addr: string } }>('/ip/:addr', async () => record);
app.get('/healthz', async () => ({ status: 'ok' }));

const close = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', close);
process.on('SIGINT', close);

await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 0) });
