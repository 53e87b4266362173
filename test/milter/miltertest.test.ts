/**
 * OpenDKIM's miltertest, an independent MTA-side implementation scripted in Lua, against the example
 * milters started as programs: negotiation, end-of-message changes (MT_HDRADD, MT_BODYCHANGE), a refusal at
 * RCPT (SMFIR_REPLYCODE), a macro reflected in a header, abort followed by a second message on the same
 * connection. The scripts live in `conformance/`; each prints `ok NAME` or `FAIL NAME: reason` (miltertest
 * itself prints nothing when a script fails), and one deliberately wrong script proves that failures are
 * seen.
 *
 * Ports (127.0.0.1, this file only): 12640 stamp milter, 12641 reject-recipient milter, 12642 noop milter.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { STAMP_FOOTER } from '../../examples/stamp-milter.ts';
import type { CommandResult } from '../support/processes.ts';
import { runMiltertest } from '../support/miltertest.ts';
import { startExampleMilter, type ExampleMilter, type ExampleName } from './conformance/example-milters.ts';
import { REFUSED_RECIPIENT } from './record-transcript.ts';

const CONFORMANCE_DIR = fileURLToPath(new URL('./conformance', import.meta.url));
/** miltertest's Lua runs in milliseconds; the bound only guards a hung filter. */
const SCRIPT_TIMEOUT_MS = 30_000;

/** Runs `conformance/NAME.lua` with the directory and `defines` as Lua globals. */
function runScript(name: string, defines: Record<string, string | number>): Promise<CommandResult> {
  return runMiltertest({
    scriptPath: `${CONFORMANCE_DIR}/${name}.lua`,
    defines: { conformance: CONFORMANCE_DIR, ...defines },
    timeoutMs: SCRIPT_TIMEOUT_MS,
  });
}

/** A script that ran to its end: exit 0 and only its `ok` line. */
function passed(name: string): CommandResult {
  return { code: 0, signal: null, stdout: `ok ${name}\n`, stderr: '' };
}

describe('miltertest against the example milters as programs', { timeout: 120_000 }, () => {
  const milters = new Map<ExampleName, ExampleMilter>();

  before(async () => {
    milters.set('stamp-milter', await startExampleMilter('stamp-milter', 'inet:127.0.0.1:0'));
    milters.set(
      'reject-recipient-milter',
      await startExampleMilter('reject-recipient-milter', 'inet:127.0.0.1:0', {
        env: { REJECT_RECIPIENTS: REFUSED_RECIPIENT },
      }),
    );
    milters.set('noop-milter', await startExampleMilter('noop-milter', 'inet:127.0.0.1:0'));
  });

  after(async () => {
    for (const milter of milters.values()) await milter.stop();
  });

  /** The milter's port, once before() started it (a failed start fails the test here). */
  function portOf(name: ExampleName): number {
    const milter = milters.get(name);
    assert.ok(milter !== undefined, `${name} did not start`);
    // The address it printed, with the port the kernel gave it.
    return Number(milter.address.slice(milter.address.lastIndexOf(':') + 1));
  }

  test('reject-recipient-milter: negotiates exactly its actions and steps', async () => {
    const milter = 'reject-recipient-milter';
    assert.deepEqual(await runScript('negotiate', { milter, port: portOf(milter) }), passed(`negotiate ${milter}`));
  });

  for (const milter of ['stamp-milter', 'noop-milter'] as const) {
    test(`${milter}: negotiates exactly its actions and steps, and refuses an offer without an action it needs`, async () => {
      const result = await runScript('negotiate', { milter, port: portOf(milter) });
      // The refusal: the milter closes the connection instead of answering the short offer.
      assert.deepEqual(result, { ...passed(`negotiate ${milter}`), stderr: 'miltertest: read(3): returned 0, expected 5\n' });
      const refusal = milters.get(milter)?.logLines().find((line) => line.code === 'negotiation-failed');
      assert.equal(refusal?.message, 'protocol error, closing connection');
    });
  }

  test('stamp-milter: MT_HDRADD with the `i` macro as queue id, MT_BODYCHANGE to body plus footer', async () => {
    const result = await runScript('stamp-eom', { port: portOf('stamp-milter'), queue_id: '4F2A1B3C9D', footer: STAMP_FOOTER.toString('latin1') });
    assert.deepEqual(result, passed('stamp-eom'));
  });

  test('reject-recipient-milter: SMFIR_REPLYCODE for the refused recipient at RCPT, continue for the other', async () => {
    assert.deepEqual(await runScript('reject-rcpt', { port: portOf('reject-recipient-milter'), refused: REFUSED_RECIPIENT }), passed('reject-rcpt'));
  });

  test('stamp-milter: after an abort, the second message on the connection is stamped with its own queue id and body', async () => {
    const result = await runScript('stamp-abort', { port: portOf('stamp-milter'), footer: STAMP_FOOTER.toString('latin1') });
    assert.deepEqual(result, passed('stamp-abort'));
  });

  test('noop-milter: X-Noop at end of message, accept, body untouched', async () => {
    assert.deepEqual(await runScript('noop-eom', { port: portOf('noop-milter') }), passed('noop-eom'));
  });

  test('a script with a wrong expectation exits non-zero and says why', async () => {
    const result = await runScript('wrong-expectation', { port: portOf('stamp-milter') });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, 'FAIL wrong-expectation: no X-Stamp with queue-id=WRONG\n');
  });

  test('the milters survived every script', () => {
    for (const [name, milter] of milters) assert.equal(milter.process.exitStatus(), undefined, `${name} exited`);
  });
});
