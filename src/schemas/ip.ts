import { Type } from '@sinclair/typebox';
import { SourceNameSchema } from './record.js';

export const IpParamsSchema = Type.Object({ addr: Type.String({ description: 'IPv4 or IPv6 address' }) });

export const IpQuerySchema = Type.Object(
  {
    sources: Type.Optional(Type.Array(SourceNameSchema, { description: 'limit lookups to these sources' })),
    refresh: Type.Optional(Type.Boolean({ default: false, description: 'fetch again what is still fresh' })),
  },
  { additionalProperties: false },
);
