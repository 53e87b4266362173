/**
 * Property: whatever From header attacker.test signs, a pass is about exactly the mailbox a reader sees. fast-check
 * generates From fields (quoted strings holding `<`, `@` and commas; nested comments; groups; encoded words;
 * several mailboxes; several fields; obsolete routes and CFWS around dots) for messages signed by attacker.test's
 * site key and encrypted to us, sent through the daemon. Whenever the verdict is pass, the delivered header has
 * exactly one From field, holding exactly one mailbox, whose domain is the verdict's header.from and attacker.test,
 * according to an independent parser: Python's email.headerregistry (policy=default), run once on the whole batch.
 * The batch is deterministic (fixed seed) and also must hold passes and non-passes, so the property is not vacuous.
 * Ports: ephemeral only. Needs /usr/bin/python3 (fails when it cannot run).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fc from 'fast-check';
import { entity, field, innerFields, pgpMime, signedAndEncrypted, startReceiver, transportFields, type Field, type Receiver } from './support/inbound-attack.ts';

let rx: Receiver;
before(async () => {
  rx = await startReceiver();
});
after(() => rx?.close());

const RUNS = 160;

const local = fc.constantFrom('x', 'ceo', 'a.b', 'first.last', '"quoted local"', 'x+tag');
const domain = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('attacker.test', 'ATTACKER.TEST', 'attacker (c) . test', ' attacker.test (ceo@victim.test)') },
  { weight: 2, arbitrary: fc.constantFrom('victim.test', 'victim (x@attacker.test) . test', 'sub.attacker.test', '[192.0.2.1]', 'attacker.test.') },
);
const addrSpec = fc.tuple(local, domain).map(([l, d]) => `${l}@${d}`);
const quotedText = fc.constantFrom('<x@attacker.test>', 'ceo@victim.test', 'a, b', '<ceo@victim.test>, x', 'Mallory', '\\"<y@victim.test>\\"', '(not a comment)', ':;');
const displayName = fc.oneof(
  fc.constantFrom('Mallory', 'The CEO', 'x'),
  quotedText.map((t) => `"${t}"`),
  // RFC 2047 encoded words decoding to an address.
  fc.constantFrom('<ceo@victim.test>', 'ceo@victim.test', 'x@attacker.test,').map((t) => `=?utf-8?B?${Buffer.from(t).toString('base64')}?=`),
  fc.constantFrom('=?utf-8?Q?=3Cceo=40victim=2Etest=3E?=', '=?us-ascii?q?CEO?='),
);
const comment = fc.oneof(fc.constantFrom('(ceo@victim.test)', '(<x@attacker.test>)', '(a (nested ceo@victim.test) b)', '(;,:)', '(\\) still comment)'), fc.constant(''));
const route = fc.constantFrom('', '@victim.test:', '@victim.test,@attacker.test:', '@attacker.test:');
const mailbox = fc.oneof(
  fc.tuple(comment, addrSpec, comment).map(([c1, a, c2]) => `${c1} ${a} ${c2}`.trim()),
  fc.tuple(displayName, comment, route, addrSpec).map(([n, c, r, a]) => `${n} ${c}<${r}${a}>`),
  fc.tuple(route, addrSpec).map(([r, a]) => `<${r}${a}>`),
);
// Weighted towards one mailbox in one field, so that passes are common enough to test the property on.
const mailboxList = fc.oneof({ weight: 4, arbitrary: mailbox }, { weight: 1, arbitrary: fc.array(mailbox, { minLength: 2, maxLength: 3 }).map((list) => list.join(', ')) });
const fromValue = fc.oneof({ weight: 4, arbitrary: mailboxList }, { weight: 1, arbitrary: fc.tuple(fc.constantFrom('Board', '"a@victim.test"'), fc.array(mailbox, { maxLength: 2 })).map(([n, list]) => `${n}: ${list.join(', ')};`) });
const fromFields = fc.oneof({ weight: 5, arbitrary: fc.tuple(fromValue) }, { weight: 1, arbitrary: fc.array(fromValue, { minLength: 2, maxLength: 3 }) });

/** What Python's email package sees in a header list: per From field, the addresses' domains. */
interface PythonView {
  readonly fromFields: number;
  readonly domains: string[];
}

const PYTHON = `
import json, sys
from email import message_from_string
from email.policy import default
out = []
for headers in json.load(open(sys.argv[1])):
    text = ''.join(name + ':' + value + '\\r\\n' for name, value in headers) + '\\r\\n'
    msg = message_from_string(text, policy=default)
    froms = msg.get_all('From') or []
    out.append({'fromFields': len(froms), 'domains': [a.domain.lower() for f in froms for a in f.addresses]})
json.dump(out, sys.stdout)
`;

/** Runs the Python parser once over every header list. */
async function pythonViews(batch: ReadonlyArray<readonly Field[]>): Promise<PythonView[]> {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'muse-from-prop-'));
  try {
    const input = join(dir, 'headers.json');
    await writeFile(input, JSON.stringify(batch.map((fields) => fields.map((f) => [f.name, f.value]))));
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn('/usr/bin/python3', ['-c', PYTHON, input], { stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out).toString('utf8')) : reject(new Error(`python3 exited ${code}: ${Buffer.concat(err).toString('utf8')}`))));
    });
    return JSON.parse(output) as PythonView[];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The `x-muse` result and `header.from` of the A-R field our daemon wrote. */
function ourVerdict(headers: readonly Field[]): { result: string; from: string | null } {
  const ar = headers.find((h) => h.name === 'Authentication-Results' && h.value.startsWith(' site.test;'));
  if (ar === undefined) throw new Error('no verdict');
  const result = /x-muse=([a-z]+)/.exec(ar.value)?.[1] ?? '';
  return { result, from: /header\.from=(\S+)/.exec(ar.value)?.[1] ?? null };
}

describe('from header property', () => {
  it(`for ${RUNS} generated From headers signed by attacker.test, pass means one From, one mailbox, at attacker.test`, async () => {
    const samples = fc.sample(fromFields, { numRuns: RUNS, seed: 0x6d757365 });
    const delivered: Field[][] = [];
    const verdicts: Array<{ result: string; from: string | null }> = [];
    for (const [i, froms] of samples.entries()) {
      const inner = [...froms.map((v) => field('From', v)), ...innerFields('unused@attacker.test').slice(1)];
      const armored = await signedAndEncrypted(entity(inner), rx.sites.attacker.privateKey, [rx.sites.ours.publicKey]);
      const outcome = await rx.send(pgpMime(transportFields('<x@attacker.test>'), armored), `Q-P${i}`);
      const headers = outcome.delivered?.headers;
      assert.ok(headers !== undefined, `message ${i} delivered`);
      delivered.push(headers);
      verdicts.push(ourVerdict(headers));
    }
    const views = await pythonViews(delivered);
    const passes = verdicts.filter((v) => v.result === 'pass').length;
    assert.ok(passes >= 10 && passes <= RUNS - 10, `both outcomes generated (${passes} passes of ${RUNS})`);
    for (const [i, verdict] of verdicts.entries()) {
      assert.ok(['pass', 'fail', 'none'].includes(verdict.result), `message ${i}: ${verdict.result}`);
      if (verdict.result !== 'pass') continue;
      const view = views[i] as PythonView;
      const what = `message ${i}: signed From ${JSON.stringify(samples[i])}, delivered ${JSON.stringify(delivered[i]?.filter((h) => h.name === 'From'))}, Python ${JSON.stringify(view)}`;
      assert.equal(view.fromFields, 1, what);
      assert.deepEqual(view.domains, ['attacker.test'], what);
      assert.equal(verdict.from, 'attacker.test', what);
    }
  });
});
