/**
 * The text of anything thrown, for a log line or an error message of our own. Not everything thrown is an
 * Error: PGlite's file system layer throws Emscripten's ErrnoError, a plain object that String() prints as
 * [object Object], so objects are shown as JSON where they can be.
 */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null) {
    try {
      return JSON.stringify(error);
    } catch {
      // A cycle or a BigInt inside: String() still names the object.
    }
  }
  return String(error);
}
