import { PassThrough } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { ResultsSink } from '../enrich/cascade.js';

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * Sends JSON text the enricher already serialized. The route's response schema still describes the body
 * (and the tests validate answers against it); Fastify sends a string with a JSON content type as it is.
 */
export function sendSerialized(reply: FastifyReply, json: string): FastifyReply {
  return reply.type(JSON_TYPE).send(json);
}

/**
 * Text handed to the socket at once. Small enough to be allocated with the young objects and freed by the
 * next scavenge: a 10,000-record answer sent as one string lives in the old generation until a full
 * collection, and after a few repeats of a long list the service's RSS had grown by tens of MB that way.
 */
const PIECE_CHARS = 64 * 1024;

/**
 * Sends `{"results":[…],"stats":…}` — the same bytes as serializing the whole answer at the end — while
 * `produce` hands over the records in input order, in pieces of about PIECE_CHARS. Nothing is sent until
 * the first records are final, so a request that fails before then (the database away) is answered with
 * its problem+json as any other. After that the status line and the head of the body are gone: a failure
 * then ends the response without its last chunk (the connection is closed mid-body), which every HTTP
 * client reports as an incomplete answer, and the log has the error under the request id. A client never
 * sees a truncated answer as a complete one. A short answer finished before its first piece was due (from
 * the process's cache, or a small list) is sent in one piece, with a Content-Length.
 */
export function sendInOrder(reply: FastifyReply, produce: (sink: ResultsSink) => Promise<object>): Promise<FastifyReply> {
  return new Promise((resolve, reject) => {
    let body: PassThrough | undefined;
    let pending: string[] = ['{"results":['];
    let pendingChars = 0;
    let separator = '';
    let scheduled = false;
    let finished = false;
    const write = () => {
      if (!body) {
        body = new PassThrough();
        resolve(reply.type(JSON_TYPE).send(body));
      }
      // Destroyed when the client went away: the rest of the answer has nowhere to go.
      if (!body.destroyed) body.write(pending.join(''));
      pending = [];
      pendingChars = 0;
    };
    // Records handed over while a request is still under way go out on the next turn of the event loop
    // with whatever came with them, so that the head of a long list is not held back.
    const writeLater = () => {
      scheduled = false;
      if (!finished && pending.length > 0) write();
    };
    produce((records) => {
      for (const json of records) {
        pending.push(separator, json);
        separator = ',';
        pendingChars += json.length + 1;
        if (pendingChars >= PIECE_CHARS) write();
      }
      if (!scheduled && pending.length > 0) {
        scheduled = true;
        setImmediate(writeLater);
      }
    }).then(
      (stats) => {
        finished = true;
        pending.push(`],"stats":${JSON.stringify(stats)}}`);
        if (body) {
          write();
          if (!body.destroyed) body.end();
        } else {
          resolve(reply.type(JSON_TYPE).send(pending.join('')));
        }
      },
      (error: Error) => {
        finished = true;
        if (body) body.destroy(error);
        else reject(error);
      },
    );
  });
}
