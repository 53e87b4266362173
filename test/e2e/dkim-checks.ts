/**
 * Independent DKIM verifiers for the e2e tests: python3-dkim (dkimverify and its library's own reasons) and
 * OpenDKIM's library (opendkim-testmsg), each run on exact message bytes. Both only know the system resolver, so
 * each runs in a private mount namespace whose /etc/resolv.conf is `resolvConf` (the topology's port-53 forwarder
 * to unbound, {@link DkimMilters.resolvConf}).
 */
import assert from 'node:assert/strict';
import { runCommand } from '../support/processes.ts';
import type { DkimMilters } from './topology.ts';

/** Bound on one verifier run. */
const VERIFY_TIMEOUT_MS = 30_000;

/** Runs `program` (a shell word list) on `message` with resolv.conf replaced by `resolvConf`. */
function withResolvConf(resolvConf: string, program: string, message: Buffer) {
  const script = `mount --bind '${resolvConf}' /etc/resolv.conf && exec ${program}`;
  return runCommand('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { input: message, timeoutMs: VERIFY_TIMEOUT_MS });
}

/** dkimverify's verdict on `message` (first DKIM-Signature). */
export async function dkimverify(dkim: DkimMilters, message: Buffer): Promise<string> {
  const result = await withResolvConf(dkim.resolvConf, 'dkimverify', message);
  return `${result.stdout}${result.stderr}`.trim();
}

/** python3-dkim's own reasons (its log) when verifying `message`: names a body hash mismatch if there is one. */
export async function dkimReasons(dkim: DkimMilters, message: Buffer): Promise<string> {
  const program = [
    'import dkim, logging, sys',
    'logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="%(message)s")',
    'print("verify:", dkim.DKIM(sys.stdin.buffer.read(), logger=logging.getLogger()).verify())',
  ].join('\n');
  const result = await withResolvConf(dkim.resolvConf, `/usr/bin/python3 -c '${program}'`, message);
  return `${result.stdout}${result.stderr}`.trim();
}

/**
 * OpenDKIM's own verdict on `message`: opendkim-testmsg (opendkim-tools) in verify mode feeds it to libopendkim
 * and prints nothing when the signature verifies (exit 0), else the library's status for the step that failed
 * (exit 70, EX_SOFTWARE): `dkim_chunk(): No signature` when there is none, `dkim_eom(): Bad signature` when one fails.
 */
export async function opendkimTestmsg(dkim: DkimMilters, message: Buffer): Promise<{ code: number | null; output: string }> {
  const result = await withResolvConf(dkim.resolvConf, 'opendkim-testmsg', message);
  return { code: result.code, output: `${result.stdout}${result.stderr}`.trim() };
}

/**
 * Asserts that no DKIM signature on `message` (a delivered one) reads as a failure: python3-dkim finds none that
 * verifies and none with a body hash mismatch, OpenDKIM's library finds no signature at all. Prints both verdicts.
 */
export async function assertNoSignatureLeftToFail(dkim: DkimMilters, message: Buffer, label: string): Promise<void> {
  const verdict = await dkimverify(dkim, message);
  const reasons = await dkimReasons(dkim, message);
  const opendkim = await opendkimTestmsg(dkim, message);
  console.log(`dkimverify (${label}): ${verdict}`);
  console.log(`opendkim-testmsg (${label}): exit ${opendkim.code}: ${opendkim.output}`);
  assert.equal(verdict, 'signature verification failed');
  assert.doesNotMatch(reasons, /body hash mismatch/);
  assert.deepEqual(opendkim, { code: 70, output: 'opendkim-testmsg: dkim_chunk(): No signature' });
}

/** The tags of a DKIM-Signature value (RFC 6376 §3.2 tag-list; blanks inside values removed). */
export function tagsOf(signature: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const tag of signature.split(';')) {
    const eq = tag.indexOf('=');
    if (eq > 0) tags.set(tag.slice(0, eq).replace(/\s/g, ''), tag.slice(eq + 1).replace(/\s/g, ''));
  }
  return tags;
}

/** The `d=` and `s=` tags of a DKIM-Signature value. */
export function signerOf(signature: string): { domain: string; selector: string } {
  const tags = tagsOf(signature);
  return { domain: tags.get('d') ?? '', selector: tags.get('s') ?? '' };
}
