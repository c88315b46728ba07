import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ProblemError } from '../errors/problem.js';
import { parseAddress } from '../ip/address.js';
import { IpParamsSchema } from '../schemas/ip.js';
import { RecordDeletionSchema } from '../schemas/records.js';
import { problemResponses } from './problems.js';

const recordRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.delete(
    '/ip/:addr',
    {
      config: { scope: 'admin' },
      schema: {
        summary: "Delete an address's stored record",
        description:
          'Removes the record from PostgreSQL and from L1 on every replica, the process-local copies included; ' +
          'asking for the address later starts from nothing.',
        tags: ['enrich'],
        params: IpParamsSchema,
        response: {
          200: Type.Ref(RecordDeletionSchema, { description: 'what was deleted' }),
          ...problemResponses('invalid-address', 'uri-too-long', 'internal-error', 'database-unavailable'),
        },
      },
    },
    async (request) => {
      const parsed = parseAddress(request.params.addr);
      if (parsed.kind === 'invalid') {
        throw new ProblemError('invalid-address', `${JSON.stringify(request.params.addr)} is not an IP address: ${parsed.error}`);
      }
      return app.recordRemoval.remove(parsed.ip);
    },
  );
};

export default recordRoutes;
