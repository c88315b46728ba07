import { Type, type Static } from '@sinclair/typebox';

export const RecordDeletionSchema = Type.Object(
  {
    ip: Type.String({ description: 'the canonical address' }),
    database: Type.Boolean({ description: 'a stored record was deleted from PostgreSQL' }),
    cache: Type.Boolean({ description: "this instance's L1 (Redis or its in-process LRU, and its local copy) held the address" }),
  },
  {
    $id: 'RecordDeletion',
    description: 'What was deleted. Every other replica drops its L1 copies of the address as the deletion reaches it.',
  },
);

export type RecordDeletion = Static<typeof RecordDeletionSchema>;
