/**
 * Example: a milter that stamps every message. It adds an `X-Stamp` header naming the queue id and
 * replaces the body with the original body plus a footer line, to show header and body changes.
 *
 * Run: node --import tsx examples/stamp-milter.ts --listen inet:127.0.0.1:8899
 * Postfix: smtpd_milters = inet:127.0.0.1:8899
 */
import { addHeader, CONTINUE, defineMilter, replaceBody, type MilterDefinition } from '../milter/src/index.ts';
import { isMain, runExample } from './run-example.ts';

/** The footer appended to every body. */
export const STAMP_FOOTER = Buffer.from('-- \r\nstamped by stamp-milter\r\n', 'latin1');

/** The stamp milter's definition. */
export function stampMilter(): MilterDefinition {
  return defineMilter({
    name: 'stamp-milter',
    actions: ['addHeaders', 'changeBody'],
    collectBody: true,
    macros: { EndOfMessage: ['i'] },
    createHandler: () => ({
      async endOfMessage(ctx) {
        const body = ctx.message.body;
        const chunks: Buffer[] = [];
        if (body !== undefined) for await (const chunk of body.chunks()) chunks.push(chunk);
        // Keep the original last line intact: add a line break first if the body did not end with one.
        const original = Buffer.concat(chunks);
        const glue = original.length > 0 && !original.subarray(-2).equals(Buffer.from('\r\n')) ? Buffer.from('\r\n') : Buffer.alloc(0);
        return {
          verdict: CONTINUE,
          modifications: [
            addHeader('X-Stamp', ` stamped queue-id=${ctx.macro('i') ?? 'unknown'}`),
            replaceBody(Buffer.concat([original, glue, STAMP_FOOTER])),
          ],
        };
      },
    }),
  });
}

if (isMain(import.meta.url)) await runExample(stampMilter(), 'inet:127.0.0.1:8899');
