// Runs test files with node's test runner. Node 20 does not expand globs itself, and the shell's expansion depends
// on globstar, so the file list is built here.
//
//   node scripts/run-tests.mjs [FILE_OR_FOLDER...]   every test under test/, or those named
//   node scripts/run-tests.mjs --unit                 the tests that start no program outside Node
//   node scripts/run-tests.mjs --integration          the tests that do (INTEGRATION below)
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

/**
 * Test files that run a program outside Node: Postfix, Sendmail, miltertest, knot, unbound, gpg, sq, rnp, openssl,
 * python3, setpriv, unshare, opendkim, opendmarc, dkimverify (swaks) — directly or through test/support (postfix.ts, sendmail.ts, miltertest.ts, gpg.ts,
 * openpgp-tools.ts, startKnotUnbound in dns-servers.ts, cmsSamples in encrypted-mail.ts) or the e2e topology.
 * A test file that starts using one of those belongs here; every other file is a unit test (it may still start
 * Node processes, fake DNS servers and SMTP sinks written in Node, all on ephemeral ports).
 */
const INTEGRATION = [
  'test/cli/genkey.test.ts', // gpg
  'test/cli/knot-unbound.test.ts', // knot, unbound
  'test/daemon/process.test.ts', // Postfix
  'test/e2e/delivery.test.ts', // Postfix, Sendmail, knot, unbound, gpg
  'test/e2e/faults.test.ts',
  'test/e2e/mail-flow-sendmail.test.ts', // Sendmail, Postfix, knot, unbound, opendkim, opendmarc, dkimverify, opendkim-testmsg, unshare
  'test/e2e/mail-flow.test.ts', // Postfix, knot, unbound, opendkim, opendmarc, dkimverify, opendkim-testmsg, unshare
  'test/e2e/reinjection.test.ts',
  'test/e2e/restarts.test.ts',
  'test/engine/foreign-senders.test.ts', // sq
  'test/engine/gpg-interop.test.ts', // gpg
  'test/engine/inbound-streaming.test.ts', // gpg, sq
  'test/engine/outbound.test.ts', // openssl cms
  'test/milter/miltertest.test.ts', // miltertest
  'test/milter/postfix.test.ts', // Postfix
  'test/mime/encryption-detector.test.ts', // openssl cms
  'test/pgp/fast/detached.test.ts', // gpg
  'test/pgp/fast/gpg-interop.test.ts', // gpg
  'test/pgp/fast/streaming-gpg-interop.test.ts', // gpg
  'test/pgp/intended-recipient-interop.test.ts', // gpg, sq, rnp
  'test/security/already-encrypted-label.test.ts', // gpg, openssl cms
  'test/security/from-header-property.test.ts', // python3 (the independent address parser)
  'test/security/from-spoof-through-postfix.test.ts', // Postfix, knot, unbound
  'test/security/local-user-plays-mta.test.ts', // setpriv
  'test/security/pin-rotation-dnssec.test.ts', // knot, unbound
  'test/support/harness.test.ts', // Postfix, Sendmail, miltertest
];

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const missing = INTEGRATION.filter((path) => !existsSync(path));
if (missing.length > 0) {
  console.error(`run-tests: listed as integration tests but missing: ${missing.join(', ')}`);
  process.exit(2);
}

const args = process.argv.slice(2);
const every = () => findTests('test');
let files;
if (args.length === 1 && args[0] === '--unit') files = every().filter((path) => !INTEGRATION.includes(path));
else if (args.length === 1 && args[0] === '--integration') files = every().filter((path) => INTEGRATION.includes(path));
// Arguments may name test files or folders of them; none means every test under test/.
else if (args.length > 0) files = args.flatMap((path) => (statSync(path).isDirectory() ? findTests(path) : [path]));
else files = every();
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
