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
 * Sends `{"results":[…],"stats":…}` — the same bytes as serializing the whole answer at the end — while
 * `produce` hands over the records in input order. Nothing is sent until the first records are final, so a
 * request that fails before then (the database away) is answered with its problem+json as any other. After
 * that the status line and the head of the body are gone: a failure then ends the response without its last
 * chunk (the connection is closed mid-body), which every HTTP client reports as an incomplete answer, and
 * the log has the error under the request id. A client never sees a truncated answer as a complete one.
 * A request finished before its first records were sent (an answer from the process's cache, or an empty
 * list) is sent in one piece.
 */
export function sendInOrder(reply: FastifyReply, produce: (sink: ResultsSink) => Promise<object>): Promise<FastifyReply> {
  return new Promise((resolve, reject) => {
    let body: PassThrough | undefined;
    let held: string[] | undefined = ['{"results":['];
    let separator = '';
    // A request answered without an await hands everything over before the check runs, and is sent in one
    // piece; one still under way starts its body then, with what it has.
    const start = () => {
      if (!held) return;
      body = new PassThrough();
      body.write(held.join(''));
      held = undefined;
      resolve(reply.type(JSON_TYPE).send(body));
    };
    produce((records) => {
      const text = separator + records.join(',');
      if (held) {
        if (separator === '') setImmediate(start);
        held.push(text);
      } else if (!body!.destroyed) {
        // Destroyed when the client went away: the rest of the answer has nowhere to go.
        body!.write(text);
      }
      separator = ',';
    }).then(
      (stats) => {
        const tail = `],"stats":${JSON.stringify(stats)}}`;
        if (held) resolve(reply.type(JSON_TYPE).send(held.join('') + tail));
        else body!.end(tail);
        held = undefined;
      },
      (error: Error) => {
        if (held) reject(error);
        else body!.destroy(error);
        held = undefined;
      },
    );
  });
}
