import type { CsvColumn } from './output.js';

/**
 * The CSV columns: those of the jobs API's text/csv results (src/jobs/results.ts), so that a file written here
 * and one downloaded from a server read alike. Loaded when CSV is written, with the jobs code behind it.
 */
export async function csvColumns(): Promise<readonly CsvColumn[]> {
  const { CSV_COLUMNS } = await import('../jobs/results.js');
  return CSV_COLUMNS;
}
