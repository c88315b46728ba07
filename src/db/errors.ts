/**
 * The database could not be reached or did not answer in time. Nothing is wrong with what was asked, so the
 * same call can succeed later; the message and cause are for the log.
 */
export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
}
