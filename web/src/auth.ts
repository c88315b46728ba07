import { byId } from './dom.js';

/*
 * With access control on (AUTH=keys), the API answers 401 to a request without a valid key. The page then
 * asks for one, keeps it for this tab only (sessionStorage, gone when the tab closes) and sends it as
 * `Authorization: Bearer <key>`.
 */

const STORAGE_KEY = 'ip-enrich:api-key';

export function storedKey(): string | null {
  return sessionStorage.getItem(STORAGE_KEY);
}

function showForget(): void {
  byId('key-forget', HTMLButtonElement).hidden = storedKey() === null;
}

export function forgetKey(): void {
  sessionStorage.removeItem(STORAGE_KEY);
  showForget();
}

/** The request's headers with the tab's key, when it has one. */
export function withKey(headers: HeadersInit | undefined): Headers {
  const result = new Headers(headers);
  const key = storedKey();
  if (key !== null) result.set('authorization', `Bearer ${key}`);
  return result;
}

let asking: Promise<boolean> | undefined;

/**
 * Asks for a key after a 401 whose `message` (the problem's title and detail) is shown above the field: why
 * the service refused, which for a wrong key is the 401's own detail. Resolves true once a key is stored,
 * false when the analyst cancels. Requests refused at the same time share the one dialog.
 */
export function askForKey(message: string): Promise<boolean> {
  asking ??= new Promise<boolean>((resolve) => {
    const dialog = byId('key-dialog', HTMLDialogElement);
    const input = byId('key-input', HTMLInputElement);
    byId('key-error', HTMLParagraphElement).textContent = message;
    input.value = '';
    dialog.returnValue = '';
    dialog.addEventListener(
      'close',
      () => {
        asking = undefined;
        const key = input.value.trim();
        input.value = '';
        if (dialog.returnValue !== 'ok' || key === '') {
          resolve(false);
          return;
        }
        sessionStorage.setItem(STORAGE_KEY, key);
        showForget();
        resolve(true);
      },
      { once: true },
    );
    dialog.showModal();
    input.focus();
  });
  return asking;
}

export function setUpKey(): void {
  showForget();
  byId('key-forget', HTMLButtonElement).addEventListener('click', forgetKey);
}
