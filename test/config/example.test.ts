/** examples/muse.yaml, the annotated template administrators copy: it loads as it stands and follows site.domain. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { editConfigText, parseConfig } from '../../src/config/index.ts';

const EXAMPLE = readFileSync(new URL('../../examples/muse.yaml', import.meta.url), 'utf8');

describe('examples/muse.yaml', () => {
  it('is a template: no placeholders, no live policy overrides', () => {
    assert.equal(/\$\{/.test(EXAMPLE), false);
    assert.deepEqual(parseConfig(EXAMPLE, 'muse.yaml').policy.domains, {});
  });

  it('loads as it stands, with the paths of README.md Install and genkey, and the account set', () => {
    const config = parseConfig(EXAMPLE, 'muse.yaml');
    assert.equal(config.dataDirectory, '/var/lib/muse-milter');
    assert.equal(config.site.domain, 'example.org');
    assert.equal(config.site.keyFile, '/etc/muse-milter/keys/example.org.private.asc');
    assert.deepEqual(config.site.localDomains, ['example.org']);
    assert.equal(config.milter.spoolDirectory, '/var/lib/muse-milter/spool');
    assert.deepEqual(config.dns.servers, ['127.0.0.1:53']);
    assert.equal(config.pins.directory, '/var/lib/muse-milter');
    assert.equal(config.milter.listen, 'unix:/var/lib/muse-milter/milter.sock');
    assert.equal(config.milter.socketMode, 0o660);
    assert.equal(config.milter.socketGroup, undefined);
    assert.deepEqual(config.direction.outboundDaemonNames, ['ORIGINATING', 'MSA']);
    assert.deepEqual(config.direction.inboundDaemonNames, ['INBOUND']);
    assert.equal(config.inbound.authservId, 'example.org');
    assert.deepEqual(config.mixedRecipients.reinject, {
      host: '127.0.0.1',
      port: 10029,
      heloName: 'example.org',
      timeout: 30_000,
      markerSecretFile: '/var/lib/muse-milter/marker-secret',
      daemonName: 'REINJECT',
      ledgerDirectory: '/var/lib/muse-milter/reinjected',
    });
    assert.equal(config.metrics.listen, '127.0.0.1:9464');
    assert.equal(config.user, 'muse-milter');
    assert.equal(config.group, 'muse-milter');
    assert.equal(config.pidFile, undefined);
  });

  it('follows site.domain alone: setting it moves the key file, local domains, authserv-id and EHLO name', () => {
    const config = parseConfig(editConfigText(EXAMPLE, [{ path: ['site', 'domain'], value: 'mail.test' }]), 'muse.yaml');
    assert.equal(config.site.keyFile, '/etc/muse-milter/keys/mail.test.private.asc');
    assert.deepEqual(config.site.localDomains, ['mail.test']);
    assert.equal(config.inbound.authservId, 'mail.test');
    assert.equal(config.mixedRecipients.reinject.heloName, 'mail.test');
  });

  it('keeps its comments through an edit', () => {
    const edited = editConfigText(EXAMPLE, [
      { path: ['site', 'domain'], value: 'mail.test' },
      { path: ['policy', 'domains'], value: { 'partner.example': 'required' } },
      { path: ['group'] },
    ]);
    const comments = (text: string): string[] => text.split('\n').filter((line) => /^\s*#/.test(line));
    assert.deepEqual(comments(edited), comments(EXAMPLE));
    assert.match(edited, /\n  domains:\n    partner\.example: required\n/);
    assert.deepEqual(parseConfig(edited, 'muse.yaml').policy.domains, { 'partner.example': 'required' });
  });

  it('shows every key of the schema', () => {
    // Each key of the loaded configuration appears in the file, commented out or not.
    const config = parseConfig(EXAMPLE, 'muse.yaml');
    const missing: string[] = [];
    const visit = (value: unknown, path: string): void => {
      if (typeof value !== 'object' || value === null || Array.isArray(value) || path === 'policy.domains.') return;
      for (const [key, inner] of Object.entries(value)) {
        if (!new RegExp(`^\\s*#?\\s*${key}:`, 'm').test(EXAMPLE)) missing.push(`${path}${key}`);
        visit(inner, `${path}${key}.`);
      }
    };
    visit(config, '');
    for (const key of ['pidFile', 'host', 'listen']) if (!new RegExp(`^\\s*# ${key}:`, 'm').test(EXAMPLE)) missing.push(key);
    assert.deepEqual(missing, []);
  });

  it('agrees with the systemd unit, which ships without placeholders', () => {
    const unit = readFileSync(new URL('../../examples/systemd/muse-milter.service', import.meta.url), 'utf8');
    const config = parseConfig(EXAMPLE, 'muse.yaml');
    const setting = (name: string): string[] => [...unit.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map((m) => m[1] ?? '');
    assert.equal(/\$\{/.test(unit), false);
    assert.deepEqual(setting('ExecStart'), ['muse-milter run --config /etc/muse-milter/muse.yaml']);
    assert.deepEqual(setting('User'), [config.user]);
    assert.deepEqual(setting('Group'), [config.group]);
    // The data directory, and the socket directory inside Debian's Postfix chroot where that is used (`-`: optional).
    assert.deepEqual(setting('ReadWritePaths'), [`${config.dataDirectory} -/var/spool/postfix/muse-milter`]);
  });
});
