import { askForKey, forgetKey, storedKey, withKey } from './auth.js';
import { byId, h } from './dom.js';

/** An answer of the API that is not a success, as its problem+json tells it (RFC 9457). */
export class ApiError extends Error {
  override name = 'ApiError';

  constructor(
    readonly title: string,
    readonly detail: string,
    readonly status: number,
    readonly code?: string,
  ) {
    super(`${title}: ${detail}`);
  }
}

interface ProblemJson {
  title?: unknown;
  detail?: unknown;
  status?: unknown;
  code?: unknown;
}

/** The problem of a failed answer; an answer that is not problem+json (a proxy's page) is told by its status. */
async function problemOf(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => '');
  const type = response.headers.get('content-type') ?? '';
  if (type.includes('json')) {
    try {
      const problem = JSON.parse(text) as ProblemJson;
      if (typeof problem.title === 'string') {
        return new ApiError(
          problem.title,
          typeof problem.detail === 'string' ? problem.detail : '',
          response.status,
          typeof problem.code === 'string' ? problem.code : undefined,
        );
      }
    } catch {
      // Told by the status below.
    }
  }
  const detail = text.trim().slice(0, 200) || `the service answered ${response.status} without a description`;
  return new ApiError(`${response.status} ${response.statusText}`.trim(), detail, response.status);
}

/**
 * A request to the service (this page's own origin). A 401 asks for an API key and sends the request again
 * with it, as long as the analyst gives one; any other failure throws its ApiError.
 */
export async function api(path: string, init: RequestInit = {}): Promise<Response> {
  for (;;) {
    const sentKey = storedKey() !== null;
    const response = await fetch(path, { ...init, headers: withKey(init.headers) });
    if (response.ok) return response;
    const problem = await problemOf(response);
    if (response.status !== 401) throw problem;
    // The key sent was refused: it is not kept, and the dialog shows why.
    if (sentKey) forgetKey();
    const message = sentKey ? `${problem.title}: ${problem.detail}` : `The service asks for an API key: ${problem.detail}`;
    if (!(await askForKey(message))) throw problem;
  }
}

export async function apiJson<T>(path: string, init: RequestInit = {}): Promise<T> {
  const response = await api(path, init);
  return (await response.json()) as T;
}

/** What went wrong, in two parts for an error region: a title and the detail. */
export function describeError(error: unknown): { title: string; detail: string } {
  if (error instanceof ApiError) return { title: error.title, detail: error.detail + (error.code ? ` (${error.code})` : '') };
  // fetch rejects with a TypeError when there is no answer at all.
  if (error instanceof TypeError && /fetch|network/i.test(error.message)) {
    return { title: 'The service did not answer', detail: `${error.message}: is it running, and is this its address?` };
  }
  if (error instanceof Error) return { title: error.name === 'InputError' ? 'This cannot be read as addresses' : 'Something went wrong', detail: error.message };
  return { title: 'Something went wrong', detail: String(error) };
}

/** Shows an error in its region (an element with role="alert"), or clears the region with undefined. */
export function showError(regionId: string, error: unknown): void {
  const region = byId(regionId, HTMLDivElement);
  region.replaceChildren();
  region.hidden = error === undefined;
  if (error === undefined) return;
  const { title, detail } = describeError(error);
  region.append(h('strong', { class: 'problem-title' }, title), ' ', h('span', { class: 'problem-detail' }, detail));
}
