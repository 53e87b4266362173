/**
 * Example: a milter that refuses chosen recipients at RCPT time with `550 5.1.1`, and accepts the rest.
 * The refused addresses come from REJECT_RECIPIENTS (comma-separated), matched without angle brackets
 * and case-insensitively.
 *
 * Run: REJECT_RECIPIENTS=nobody@example.test node --import tsx examples/reject-recipient-milter.ts
 */
import { CONTINUE, defineMilter, reply, type MilterDefinition } from '../milter/src/index.ts';
import { isMain, runExample } from './run-example.ts';

/** The reject-recipient milter's definition for a list of refused addresses. */
export function rejectRecipientMilter(refused: readonly string[]): MilterDefinition {
  const set = new Set(refused.map((address) => address.toLowerCase()));
  return defineMilter({
    name: 'reject-recipient-milter',
    createHandler: () => ({
      rcptTo(_ctx, recipient) {
        const address = recipient.replace(/^<|>$/g, '').toLowerCase();
        return set.has(address) ? reply(550, '5.1.1', `Recipient ${address} is not accepted here`) : CONTINUE;
      },
    }),
  });
}

if (isMain(import.meta.url)) {
  const refused = (process.env.REJECT_RECIPIENTS ?? '').split(',').filter((address) => address.length > 0);
  await runExample(rejectRecipientMilter(refused), 'inet:127.0.0.1:8898');
}
