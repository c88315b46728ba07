export interface ServeOptions {
  host?: string;
  port?: string;
}

/**
 * `ip-enrich serve` / `ip-enrich worker`: the service itself (src/server.ts, as `npm start` runs it) in the
 * role asked for, configured by the same variables; the options only set HOST and PORT.
 */
export async function serve(role: 'all' | 'api' | 'worker', options: ServeOptions): Promise<void> {
  if (options.host !== undefined) process.env.HOST = options.host;
  if (options.port !== undefined) process.env.PORT = options.port;
  process.env.ROLE = role;
  // The server module boots on import, and from then on owns the process: its signals, its exit.
  await import('../../server.js');
}
