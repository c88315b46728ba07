/** Every knob of the benchmark in one place, printed with the results. */
export const SETTINGS = {
  addresses: 10_000,
  /** The cold job of scenarios 7–9: 200 Cymru batches. */
  jobAddresses: 100_000,
  cymru: {
    /** The double's cost of one bulk query: fixed, plus per address asked. */
    queryLatencyMs: 400,
    perAddressLatencyMs: 0.2,
    batchSize: 500,
    maxConnections: 2,
  },
  upstream: {
    latencyMs: 20,
    /**
     * The doubles' own ceilings. The service runs at the same rate with a smaller burst; the difference
     * absorbs the jitter between the moment the service's limiter lets a request go and its arrival.
     */
    greynoiseCeiling: { rate: 2000, burst: 300 },
    dshieldCeiling: { rate: 1000, burst: 300 },
  },
  service: {
    // In flight: about rate × upstream latency, with room for jitter.
    greynoise: { rate: 2000, burst: 100, maxInFlight: 64 },
    dshield: { rate: 1000, burst: 100, maxInFlight: 32 },
    deadlineMs: 120_000,
  },
  /**
   * The matrix of deployments' settings (README, Performance): a cold list per cell, on a service of its own
   * with that CYMRU_MAX_CONNECTIONS against a Cymru double that takes that long for a full batch, then the
   * same list again cached; and GET /ip at each number of load connections.
   */
  matrix: {
    cymruConnections: [1, 2, 4, 8],
    /** The double's price of a full batch: perAddressLatencyMs × batchSize of it per address, the rest fixed. */
    queryLatenciesMs: [200, 1000],
    cachedRepeats: 10,
    /** The first cached repeat, then the median of the repeats after it, this many. */
    cachedMedianOf: 5,
    loadConnections: [10, 32, 64],
    /** VmRSS after the last repeat may exceed VmRSS after the second by this much ("no growth"). */
    rssGrowthBytes: 16 * 1024 * 1024,
  },
  /** Pause between cached runs, for the previous run's background bookkeeping write to finish. */
  cachedPauseMs: 500,
  load: { seconds: 5, warmupSeconds: 1, rounds: 3 },
  saveRuns: 5,
  streamRuns: 3,
  targets: {
    coldRatio: 1.1,
    upstreamRatio: 1.1,
    cachedAddressesPerSecond: 100_000,
    loadRatio: 0.6,
    p99Ms: 10,
    saveMs: 300,
    peakRssBytes: 300 * 1024 * 1024,
    /** A service whose lists need MaxMind and Team Cymru only, over the cold list and its cached repeats. */
    coldPeakRssBytes: 250 * 1024 * 1024,
    streamRecordsPerSecond: 200_000,
  },
} as const;

export type Settings = typeof SETTINGS;

/** One bulk query of a full batch, as the Cymru double prices it. */
export const cymruQueryMs = (settings: Settings): number =>
  settings.cymru.queryLatencyMs + settings.cymru.perAddressLatencyMs * settings.cymru.batchSize;

/** The double's fixed part for a full batch priced `batchMs` in all. */
export const fixedLatencyFor = (batchMs: number, settings: Settings = SETTINGS): number =>
  batchMs - settings.cymru.perAddressLatencyMs * settings.cymru.batchSize;
