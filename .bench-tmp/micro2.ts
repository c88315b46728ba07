import { pino } from 'pino';
const base = pino({ level: 'warn', redact: { paths: ['req.headers.authorization', 'config.X'], censor: '[redacted]' } }, { write() {} });
const plain = pino({ level: 'warn' }, { write() {} });
for (const [name, log] of [['redact', base], ['plain', plain]] as const) {
  const req = log.child({ reqId: 'abc' });
  const t = performance.now(); for (let i = 0; i < 200000; i++) req.child({ key: 'ipe_abcdefgh' }); console.log(name, 'child µs', (performance.now() - t) / 200);
  const t2 = performance.now(); for (let i = 0; i < 200000; i++) log.child({ reqId: 'abc' + i }); console.log(name, 'reqchild µs', (performance.now() - t2) / 200);
}
