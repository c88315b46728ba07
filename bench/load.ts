import autocannon, { type Result } from 'autocannon';

export interface LoadResult {
  /** Successful (2xx) answers per second over the whole run. */
  requestsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
  total: number;
  /** Non-2xx answers, connection errors and timeouts. */
  failures: number;
}

/** Keeps `connections` requests in flight for `seconds`, cycling over `paths`. */
export async function load(url: string, paths: readonly string[], connections: number, seconds: number): Promise<LoadResult> {
  let next = 0;
  const result = await new Promise<Result>((resolve, reject) => {
    autocannon(
      {
        url,
        connections,
        duration: seconds,
        requests: [
          {
            method: 'GET',
            setupRequest: (request) => {
              const path = paths[next % paths.length] ?? '/';
              next += 1;
              return { ...request, path };
            },
          },
        ],
      },
      (error, outcome) => (error ? reject(error) : resolve(outcome)),
    );
  });
  return {
    requestsPerSecond: result['2xx'] / result.duration,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    latencyMaxMs: result.latency.max,
    total: result['2xx'] + result.non2xx,
    failures: result.non2xx + result.errors + result.timeouts,
  };
}
