import { badRequest, ProblemError } from '../errors.js';

export const jobNotFound = (id: string) => new ProblemError(404, 'job-not-found', 'Not Found', `there is no job ${id}`);

export const jobFinished = (id: string, status: string) =>
  new ProblemError(409, 'job-finished', 'Conflict', `job ${id} is ${status}; only a queued or running job can be cancelled`);

export const noAddresses = () =>
  badRequest('no-addresses', 'the list holds no address (blank lines and # comments do not count)');
