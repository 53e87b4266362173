/**
 * The tools speak for the daemon: `--config` (or the default file) gives lookup the daemon's resolvers, pins and
 * policy; `init` writes a loadable site; `genkey --owner` and `check-config` (as root, checking as the daemon's
 * account) get file ownership right; a tool whose output pipe closes ends quietly with status 0.
 */
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { editConfigText, loadConfig, readConfigTemplate } from '../../src/config/index.ts';
import { daemonConfigOption } from '../../src/cli/daemon-config.ts';
import { RR_TYPE } from '../../src/dns/index.ts';
import { buildSiteTxt, loadSitePrivateKey, splitCharacterStrings } from '../../src/keys/index.ts';
import { startFakeDns, zoneHandler, type FakeDnsServer } from '../support/dns-servers.ts';
import { runCommand } from '../support/processes.ts';
import { cli } from './run-cli.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** An account every Debian system has, standing in for muse-milter. */
const ACCOUNT = { user: 'nobody', uid: 65534, gid: 65534 };

let dir = '';
let dns: FakeDnsServer;
let fingerprint = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'muse-daemon-config-'));
  // Searchable by the stand-in account, as /etc and /var/lib are.
  await chmod(dir, 0o711);
  const made = await cli('genkey', '--domain', 'keyed.test', '--key-dir', join(dir, 'other-keys'));
  assert.equal(made.code, 0, made.stderr);
  const key = await loadSitePrivateKey(join(dir, 'other-keys', 'keyed.test.private.asc'), 'refuse');
  fingerprint = key.fingerprint;
  dns = await startFakeDns(
    zoneHandler([{ name: '_muse.keyed.test', type: RR_TYPE.TXT, data: splitCharacterStrings(buildSiteTxt({ policy: 'opportunistic', maxAge: 86400, key: key.publicKey.write() })) }]),
  );
});
after(async () => {
  await dns.close();
  await rm(dir, { recursive: true, force: true });
});

/** A site configuration from the template: resolver = the fake DNS, the given overrides. */
async function writeSiteConfig(name: string, policyDomains: Record<string, string>): Promise<string> {
  const path = join(dir, `${name}.yaml`);
  const text = editConfigText(await readConfigTemplate(), [
    { path: ['dataDirectory'], value: join(dir, name) },
    { path: ['site', 'domain'], value: 'site.test' },
    { path: ['site', 'keyFile'], value: join(dir, name, 'keys', 'site.test.private.asc') },
    { path: ['dns', 'servers'], value: [dns.address] },
    { path: ['policy', 'domains'], value: policyDomains },
    { path: ['user'] },
    { path: ['group'] },
  ]);
  await writeFile(path, text, { mode: 0o644 });
  return path;
}

describe('lookup --config', () => {
  it('asks the configured resolver and decides with policy.domains, as the milter does', async () => {
    const config = await writeSiteConfig('lookup', { 'partner.test': 'required', '.legacy.test': 'never' });
    const required = await cli('lookup', 'partner.test', '--config', config);
    assert.equal(required.code, 0, required.stderr);
    assert.match(
      required.stdout,
      new RegExp(`\\nmilter: {5}defer 451 4\\.7\\.1 Encryption to partner\\.test is required and no key was found \\(no usable site key published\\) \\[${config.replace(/[.]/g, '\\.')}\\]\\n$`),
    );
    const never = await cli('lookup', 'a.legacy.test', '--config', config);
    assert.match(never.stdout, /\nmilter: {5}send in clear \(policy never\) \[/);
    const keyed = await cli('lookup', 'bob@keyed.test', '--config', config);
    assert.match(keyed.stdout, new RegExp(`\\nmilter: {5}encrypt to ${fingerprint} \\(1 usable key\\(s\\); no pin; keys trusted on first use\\) \\[`));
    const local = await cli('lookup', 'site.test', '--config', config);
    assert.match(local.stdout, /\nmilter: {5}deliver unchanged \(local domain\) \[/);
  });

  it('reads the default file when it exists and no --config is given', async () => {
    const config = await writeSiteConfig('default', {});
    const found = await daemonConfigOption({ values: {}, positionals: [] }, config);
    assert.equal(found?.path, config);
    assert.deepEqual(found?.config.dns.servers, [dns.address]);
    assert.equal(await daemonConfigOption({ values: {}, positionals: [] }, join(dir, 'absent.yaml')), undefined);
  });
});

describe('init', () => {
  it('writes a configuration that loads, the data directory and the key, owned by --owner, and prints the records', async () => {
    const config = join(dir, 'init', 'muse.yaml');
    const result = await cli(
      'init', '--domain', 'Init.Test', '--config', config, '--data-dir', join(dir, 'init', 'data'), '--key-dir', join(dir, 'init', 'keys'),
      '--dns', '127.0.0.1:5353', '--owner', `${ACCOUNT.user}:nogroup`,
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^; MUSE site key for init\.test: [0-9A-F]{40}, created \S+, policy testing, max-age 604800\n_muse\.init\.test\. 3600 IN TXT \( "v=MUSE1; p=testing; ma=604800; k=/);
    const loaded = await loadConfig(config);
    assert.equal(loaded.site.domain, 'init.test');
    assert.equal(loaded.site.keyFile, join(dir, 'init', 'keys', 'init.test.private.asc'));
    assert.equal(loaded.dataDirectory, join(dir, 'init', 'data'));
    assert.deepEqual(loaded.dns.servers, ['127.0.0.1:5353']);
    assert.equal(loaded.user, 'nobody');
    assert.equal(loaded.group, 'nogroup');
    const key = await stat(loaded.site.keyFile);
    assert.deepEqual([key.uid, key.gid, key.mode & 0o777], [ACCOUNT.uid, ACCOUNT.gid, 0o600]);
    const data = await stat(loaded.dataDirectory);
    assert.deepEqual([data.uid, data.mode & 0o777], [ACCOUNT.uid, 0o700]);
    // The comments of the template come along.
    assert.match(await readFile(config, 'utf8'), /\n# Where the daemon keeps its state\. Absolute\./);
    const again = await cli('init', '--domain', 'init.test', '--config', config);
    assert.equal(again.code, 1);
    assert.equal(again.stderr, `init: ${config} exists; give --force to replace it (the site key is kept either way)\n`);
  });
});

describe('ownership for the daemon account', () => {
  it('check-config, as root, fails on a key only root can read, with the fix; genkey --owner makes it pass', async () => {
    const site = join(dir, 'owned');
    const config = join(dir, 'owned.yaml');
    const keyDir = join(site, 'keys');
    const made = await cli('genkey', '--domain', 'owned.test', '--key-dir', keyDir);
    assert.equal(made.code, 0, made.stderr);
    await chmod(site, 0o711);
    await chmod(keyDir, 0o711);
    await writeFile(
      config,
      editConfigText(await readConfigTemplate(), [
        { path: ['dataDirectory'], value: site },
        { path: ['site', 'domain'], value: 'owned.test' },
        { path: ['site', 'keyFile'], value: join(keyDir, 'owned.test.private.asc') },
        { path: ['user'], value: ACCOUNT.user },
        { path: ['group'], value: 'nogroup' },
      ]),
      { mode: 0o644 },
    );
    const keyFile = join(keyDir, 'owned.test.private.asc');
    const refused = await cli('check-config', '--config', config);
    assert.equal(refused.code, 1);
    assert.equal(refused.stdout, '');
    assert.equal(
      refused.stderr,
      `${config}: the daemon switches to user nobody after start, and then:\n` +
        `  site.keyFile ${keyFile}: EACCES for user nobody; fix: chown nobody:nogroup ${keyFile}\n` +
        `  pins.directory ${site}: EACCES for user nobody; fix: chown nobody:nogroup ${site} && chmod 0700 ${site}\n`,
    );
    const owned = await cli('genkey', '--domain', 'owned.test', '--key-dir', keyDir, '--force', '--owner', 'nobody:nogroup');
    assert.equal(owned.code, 0, owned.stderr);
    assert.match(owned.stderr, / owned by nobody:nogroup\n$/);
    const info = await stat(keyFile);
    assert.deepEqual([info.uid, info.gid, info.mode & 0o777], [ACCOUNT.uid, ACCOUNT.gid, 0o600]);
    await runCommand('chown', ['nobody:nogroup', site]);
    const passed = await cli('check-config', '--config', config);
    assert.equal(passed.code, 0, passed.stderr);
    assert.match(passed.stdout, /\n {2}runs as nobody \(65534:65534\), which can use every file it needs\n$/);
  });
});

describe('a closed output pipe', () => {
  it('ends lookup quietly with status 0', async () => {
    // `true` exits without reading: by the time the lookup prints, nobody reads the pipe.
    const script = `set -o pipefail; "$0" --import tsx src/cli/main.ts lookup keyed.test --dns "$1" --pin-dir "$2" | true`;
    const result = await runCommand('bash', ['-c', script, process.execPath, dns.address, join(dir, 'no-pins')], { cwd: ROOT });
    assert.deepEqual([result.code, result.stderr], [0, '']);
  });
});
