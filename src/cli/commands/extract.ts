import type { InputFormat } from '../../input/extract.js';
import { collectAddresses } from '../collect.js';
import { openDestination } from '../follow.js';
import { createProgress } from '../progress.js';
import { once } from 'node:events';

export interface ExtractOptions {
  input?: InputFormat;
  column?: string;
  field?: string;
  output?: string;
  quiet: boolean;
  progressEvery: number;
}

/** `ip-enrich extract [FILE...]`: the distinct addresses, one per line, in the order first seen. */
export async function extract(files: string[], options: ExtractOptions): Promise<number> {
  const progress = createProgress({ quiet: options.quiet, everyMs: options.progressEvery * 1000 });
  try {
    const collector = await collectAddresses(files, options, progress);
    const destination = await openDestination(options.output);
    let chunk: string[] = [];
    const flush = async () => {
      if (!destination.stream.write(`${chunk.join('\n')}\n`)) await once(destination.stream, 'drain');
      chunk = [];
    };
    for (const address of collector.addresses()) {
      if (destination.gone.aborted) return 0;
      chunk.push(address);
      if (chunk.length === 10_000) await flush();
    }
    if (chunk.length > 0) await flush();
    await destination.close();
    return 0;
  } finally {
    progress.stop();
  }
}
