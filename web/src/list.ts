import type { SourceName } from '../../src/record/model.js';
import type { JobView } from '../../src/schemas/jobs.js';
import { apiJson, showError } from './api.js';
import { byId } from './dom.js';
import { number } from './format.js';
import { extractFile, extractText, type Extracted } from './read-input.js';
import { SOURCES } from './words.js';

/* A list: pasted or dropped, read into addresses here, submitted as a job (POST /jobs). */

/** A file dropped or chosen; submitting reads it instead of the text area until the text is edited. */
let chosenFile: File | undefined;

function summary(extracted: Extracted): string {
  const { tally, addresses } = extracted;
  const found = `${tally.name} (${tally.format}): ${number(tally.items)} ${tally.unit}s, ${number(tally.addresses)} addresses, ${number(addresses.length)} distinct`;
  return tally.misses > 0 ? `${found}; ${tally.describeMisses()}` : found;
}

function chosenSources(): SourceName[] {
  const boxes = byId('list-sources', HTMLFieldSetElement).querySelectorAll<HTMLInputElement>('input[name="source"]:checked');
  return SOURCES.filter((name) => [...boxes].some((box) => box.value === name));
}

async function submit(onJob: (job: JobView) => void): Promise<void> {
  const status = byId('list-summary', HTMLParagraphElement);
  const button = byId('list-submit', HTMLButtonElement);
  showError('list-error', undefined);
  const column = byId('list-column', HTMLInputElement).value.trim() || undefined;
  const sources = chosenSources();
  if (sources.length === 0) {
    showError('list-error', new Error('Choose at least one source.'));
    return;
  }
  button.disabled = true;
  try {
    status.textContent = 'Reading the addresses…';
    const extracted = chosenFile ? await extractFile(chosenFile, column) : extractText(byId('list-text', HTMLTextAreaElement).value, 'the pasted text', column);
    status.textContent = summary(extracted);
    if (extracted.addresses.length === 0) {
      const what = extracted.tally.items === 0 ? 'nothing but blank lines and comments' : extracted.tally.describeMisses();
      showError('list-error', new Error(`No IP address found in ${extracted.tally.name}: ${what}. Paste one address per line, a CSV export or a JSON log.`));
      return;
    }
    const label = byId('list-label', HTMLInputElement).value.trim();
    const job = await apiJson<JobView>('/jobs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        ips: extracted.addresses,
        ...(sources.length < SOURCES.length ? { sources } : {}),
        ...(byId('list-refresh', HTMLInputElement).checked ? { refresh: true } : {}),
        ...(label ? { label } : {}),
      }),
    });
    onJob(job);
  } catch (error) {
    showError('list-error', error);
  } finally {
    button.disabled = false;
  }
}

function choose(file: File | undefined): void {
  chosenFile = file;
  const text = byId('list-text', HTMLTextAreaElement);
  text.placeholder = file ? `${file.name} (${number(file.size)} bytes) will be read; typing here reads the text instead` : '';
  if (file) text.value = '';
  byId('list-summary', HTMLParagraphElement).textContent = file ? `${file.name} chosen.` : '';
}

export function setUpList(onJob: (job: JobView) => void): void {
  const form = byId('list-form', HTMLFormElement);
  const text = byId('list-text', HTMLTextAreaElement);
  const picker = byId('list-file', HTMLInputElement);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void submit(onJob);
  });
  picker.addEventListener('change', () => choose(picker.files?.[0]));
  text.addEventListener('input', () => {
    if (chosenFile) {
      picker.value = '';
      choose(undefined);
    }
  });
  // The whole form takes a dropped file, not only the text area (which would insert the file's name).
  form.addEventListener('dragover', (event) => {
    event.preventDefault();
    form.classList.add('dropping');
  });
  form.addEventListener('dragleave', () => form.classList.remove('dropping'));
  form.addEventListener('drop', (event) => {
    event.preventDefault();
    form.classList.remove('dropping');
    const file = event.dataTransfer?.files[0];
    if (file) choose(file);
  });
}
