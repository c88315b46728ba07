import { api, showError } from './api.js';
import { byId } from './dom.js';

/*
 * Downloads come from the job's own endpoint (GET /jobs/{id}/results with the format's Accept), fetched here
 * rather than linked, because a link can send neither the Accept header nor the API key.
 */

const FORMATS = {
  csv: { accept: 'text/csv', extension: 'csv' },
  ndjson: { accept: 'application/x-ndjson', extension: 'ndjson' },
} as const;

export async function downloadResults(id: string, format: keyof typeof FORMATS): Promise<void> {
  const { accept, extension } = FORMATS[format];
  const button = byId(`download-${format}`, HTMLButtonElement);
  button.disabled = true;
  showError('results-error', undefined);
  try {
    const response = await api(`/jobs/${encodeURIComponent(id)}/results`, { headers: { accept } });
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement('a');
    link.href = url;
    link.download = `job-${id}.${extension}`;
    document.body.append(link);
    link.click();
    link.remove();
    // Revoked later: revoking at once can cancel a download the browser has not started reading.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (error) {
    showError('results-error', error);
  } finally {
    button.disabled = false;
  }
}
