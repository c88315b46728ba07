import cliProgress from 'cli-progress';
import type { ReadProgress } from '../input/read.js';

/** The parts of a job (GET /jobs/{id}) that progress shows. */
export interface JobProgressView {
  id: string;
  status: string;
  counts: { total: number; unique: number; invalid: number; bogon: number };
  phases: Record<string, PhaseView>;
  etaSeconds: number | null;
}

export interface PhaseView {
  state: string;
  done: number;
  total: number;
  batches?: number;
  waitingUntil?: string;
}

/** The passes shown, in the order an address goes through them. */
export const SHOWN_PHASES = ['collect', 'maxmind', 'cymru', 'greynoise', 'dshield'] as const;

/** Where the command says how it is getting on: standard error, never standard output. */
export interface Progress {
  /** A line of information (which column is read, where the results went); --quiet drops it. */
  notice(message: string): void;
  reading(progress: ReadProgress): void;
  job(view: JobProgressView): void;
  /** Results written so far. */
  writing(records: number): void;
  /** What was shown last is over (the input has been read): nothing to repeat until the next report. */
  settle(): void;
  /** Ends the display (bars stay on the screen as they last were). */
  stop(): void;
}

const number = (n: number) => n.toLocaleString('en-US');

export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const shortId = (id: string) => id.slice(0, 8);

/** Seconds left of a Retry-After block, or undefined when none runs. */
function waitLeft(phase: PhaseView, now: number): number | undefined {
  if (phase.state !== 'waiting' || phase.waitingUntil === undefined) return undefined;
  return Math.max(0, (Date.parse(phase.waitingUntil) - now) / 1000);
}

function phaseNote(name: string, phase: PhaseView): string {
  return name === 'cymru' && phase.batches !== undefined ? `${number(phase.batches)} batch${phase.batches === 1 ? '' : 'es'}` : '';
}

/** Addresses per second of a phase, measured here (a server's clock may differ from ours). */
class Pace {
  readonly #first = new Map<string, { at: number; done: number }>();

  rate(name: string, done: number, now: number): number | undefined {
    const first = this.#first.get(name);
    if (!first) {
      this.#first.set(name, { at: now, done });
      return undefined;
    }
    const seconds = (now - first.at) / 1000;
    return seconds >= 1 && done > first.done ? (done - first.done) / seconds : undefined;
  }
}

function readText(progress: ReadProgress): string {
  const { tally, bytes, size } = progress;
  const found = `${number(tally.items)} ${tally.unit}s, ${number(tally.addresses)} addresses`;
  return size ? `${found}, ${Math.floor((bytes / Math.max(1, size)) * 100)}%` : found;
}

// --- on a terminal: one bar per pass ----------------------------------------------------------------------

const BAR_WIDTH = 24;

interface BarPayload {
  label: string;
  text: string;
  fraction: number | undefined;
}

/** The bar and a space, or nothing for a line without one (the job, writing). */
function drawBar(fraction: number | undefined): string {
  if (fraction === undefined) return '';
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * BAR_WIDTH);
  return `[${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}] `;
}

/** cli-progress bars on standard error: reading the input, then the job's passes, then writing. */
export class TerminalProgress implements Progress {
  readonly #bars: cliProgress.MultiBar;
  readonly #rows = new Map<string, cliProgress.SingleBar>();
  readonly #pace = new Pace();
  readonly #stream: NodeJS.WriteStream;
  #stopped = false;

  constructor(stream: NodeJS.WriteStream = process.stderr) {
    this.#stream = stream;
    this.#bars = new cliProgress.MultiBar({
      stream,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      fps: 8,
      // Lines logged above the bars overwrite them; without this an unchanged bar (the input's, once read)
      // would not be drawn again and stay blank.
      forceRedraw: true,
      format: (_options, _params, payload: BarPayload) => `${payload.label.padEnd(10)} ${drawBar(payload.fraction)}${payload.text}`,
    });
  }

  #set(key: string, payload: BarPayload): void {
    if (this.#stopped) return;
    let bar = this.#rows.get(key);
    if (!bar) {
      bar = this.#bars.create(1, 0, payload);
      this.#rows.set(key, bar);
    }
    bar.update(payload.fraction ?? 0, payload);
  }

  notice(message: string): void {
    if (this.#rows.size === 0 || this.#stopped) {
      this.#stream.write(`${message}\n`);
      return;
    }
    // Above the bars, at once (cli-progress would otherwise print it at its next redraw, or never after stop).
    this.#bars.log(`${message}\n`);
    this.#bars.update();
  }

  reading(progress: ReadProgress): void {
    const fraction = progress.size ? progress.bytes / Math.max(1, progress.size) : undefined;
    this.#set('read', { label: 'read', fraction, text: `${readText(progress)}  ${progress.name}` });
  }

  job(view: JobProgressView): void {
    const now = Date.now();
    const eta = view.etaSeconds === null ? '' : `, ETA ${duration(view.etaSeconds)}`;
    this.#set('job', {
      label: 'job',
      fraction: undefined,
      text: `${shortId(view.id)} ${view.status}: ${number(view.counts.unique)} addresses${eta}`,
    });
    for (const name of SHOWN_PHASES) {
      const phase = view.phases[name];
      if (!phase || phase.state === 'skipped') continue;
      this.#set(name, { label: name, fraction: phase.total > 0 ? phase.done / phase.total : 1, text: this.#phaseText(name, phase, now) });
    }
  }

  #phaseText(name: string, phase: PhaseView, now: number): string {
    const counts = `${number(phase.done)}/${number(phase.total)}`;
    const note = phaseNote(name, phase);
    const tail = note ? `  ${note}` : '';
    const wait = waitLeft(phase, now);
    if (wait !== undefined) return `${counts}  waiting ${duration(wait)} (the upstream's Retry-After)${tail}`;
    if (phase.state !== 'running') return `${counts}  ${phase.state}${tail}`;
    const rate = this.#pace.rate(name, phase.done, now);
    if (rate === undefined) return `${counts}${tail}`;
    return `${counts}  ${number(Math.round(rate))}/s  ETA ${duration((phase.total - phase.done) / rate)}${tail}`;
  }

  /** The input is read: its bar is drawn as it ended before the summary lines go above it. */
  settle(): void {
    if (this.#rows.size > 0 && !this.#stopped) this.#bars.update();
  }

  writing(records: number): void {
    this.#set('write', { label: 'write', fraction: undefined, text: `${number(records)} records` });
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#bars.stop();
  }
}

// --- elsewhere (a log, a pipe): a line every few seconds --------------------------------------------------

/** A line on standard error every `everyMs` while something moves, e.g. under cron with 2>> a log file. */
export class LineProgress implements Progress {
  #latest: (() => string) | undefined;
  #printed = '';
  readonly #timer: NodeJS.Timeout;

  constructor(
    private readonly stream: NodeJS.WritableStream = process.stderr,
    everyMs = 5000,
  ) {
    this.#timer = setInterval(() => this.#flush(), everyMs);
    this.#timer.unref();
  }

  #flush(): void {
    const line = this.#latest?.();
    if (line === undefined || line === this.#printed) return;
    this.#printed = line;
    this.stream.write(`${line}\n`);
  }

  notice(message: string): void {
    this.stream.write(`${message}\n`);
  }

  reading(progress: ReadProgress): void {
    this.#latest = () => `reading ${progress.name}: ${readText(progress)}`;
  }

  job(view: JobProgressView): void {
    this.#latest = () => describeJob(view, Date.now());
  }

  writing(records: number): void {
    this.#latest = () => `writing results: ${number(records)} records`;
  }

  settle(): void {
    this.#latest = undefined;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** `job 3f2a1b2c running: collect 500/500, cymru 340/500 (1 batch), greynoise 12/500 waiting 14s; ETA 30s` */
export function describeJob(view: JobProgressView, now: number): string {
  const phases = SHOWN_PHASES.flatMap((name) => {
    const phase = view.phases[name];
    if (!phase || phase.state === 'skipped') return [];
    const note = phaseNote(name, phase);
    const wait = waitLeft(phase, now);
    const extra = [note, wait === undefined ? '' : `waiting ${duration(wait)}`].filter(Boolean).join(', ');
    return [`${name} ${number(phase.done)}/${number(phase.total)}${extra ? ` (${extra})` : ''}`];
  });
  const eta = view.etaSeconds === null || view.status !== 'running' ? '' : `; ETA ${duration(view.etaSeconds)}`;
  return `job ${shortId(view.id)} ${view.status}: ${phases.join(', ')}${eta}`;
}

export class QuietProgress implements Progress {
  notice(): void {}
  reading(): void {}
  job(): void {}
  writing(): void {}
  settle(): void {}
  stop(): void {}
}

export interface ProgressChoice {
  quiet: boolean;
  everyMs: number;
  stream?: NodeJS.WriteStream;
}

export function createProgress({ quiet, everyMs, stream = process.stderr }: ProgressChoice): Progress {
  if (quiet) return new QuietProgress();
  return stream.isTTY ? new TerminalProgress(stream) : new LineProgress(stream, everyMs);
}
