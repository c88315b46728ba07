import { pino } from 'pino';
import { createHash, randomUUID } from 'node:crypto';
const log = pino({ level: 'info' }, { write() {} }).child({ reqId: 'abc' });
let t = performance.now(); for (let i = 0; i < 200000; i++) log.child({ key: 'ipe_abcdefgh' }); console.log('child µs', (performance.now() - t) / 200);
t = performance.now(); for (let i = 0; i < 200000; i++) createHash('sha256').update('ipe_abcdefgh_' + 'x'.repeat(43)).digest('hex'); console.log('sha µs', (performance.now() - t) / 200);
t = performance.now(); for (let i = 0; i < 200000; i++) randomUUID(); console.log('uuid µs', (performance.now() - t) / 200);
