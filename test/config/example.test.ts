/** examples/muse.yaml, the annotated configuration administrators start from, loads once its placeholders are filled. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/config/index.ts';

const EXAMPLE = readFileSync(new URL('../../examples/muse.yaml', import.meta.url), 'utf8');

/** Values for the placeholders, as a test instance would use them. */
const VALUES: Readonly<Record<string, string>> = {
  DATA_DIR: '/srv/muse-test',
  SITE_DOMAIN: 'example.test',
  DNS_PORT: '5300',
  REINJECT_PORT: '10029',
  METRICS_PORT: '9464',
};

function placeholders(text: string): Set<string> {
  return new Set([...text.matchAll(/\$\{([A-Z_]+)\}/g)].map((match) => match[1] ?? ''));
}

describe('examples/muse.yaml', () => {
  it('documents exactly the placeholders it uses, in its header', () => {
    const header = EXAMPLE.slice(0, EXAMPLE.indexOf('\n\n'));
    const body = EXAMPLE.slice(header.length);
    assert.deepEqual([...placeholders(header)].sort(), [...placeholders(body)].sort());
    assert.deepEqual([...placeholders(EXAMPLE)].sort(), Object.keys(VALUES).sort());
  });

  it('loads cleanly with the placeholders filled in', () => {
    const config = parseConfig(EXAMPLE.replace(/\$\{([A-Z_]+)\}/g, (_, name: string) => VALUES[name] ?? ''), 'muse.yaml');
    assert.equal(config.dataDirectory, '/srv/muse-test');
    assert.equal(config.site.domain, 'example.test');
    assert.equal(config.site.keyFile, '/srv/muse-test/keys/example.test.private.asc');
    assert.equal(config.milter.listen, 'unix:/srv/muse-test/milter.sock');
    assert.equal(config.milter.socketMode, 0o660);
    assert.equal(config.milter.socketGroup, undefined);
    assert.equal(config.milter.spoolDirectory, '/srv/muse-test/spool');
    assert.deepEqual(config.dns.servers, ['127.0.0.1:5300']);
    assert.equal(config.pins.directory, '/srv/muse-test');
    assert.deepEqual(config.direction.outboundDaemonNames, ['ORIGINATING', 'MSA']);
    assert.deepEqual(config.policy.domains, { 'partner.example': 'required', '.legacy.example': 'never' });
    assert.deepEqual(config.mixedRecipients.reinject, {
      host: '127.0.0.1',
      port: 10029,
      heloName: 'example.test',
      timeout: 30_000,
      markerSecretFile: '/srv/muse-test/marker-secret',
      daemonName: 'REINJECT',
      ledgerDirectory: '/srv/muse-test/reinjected',
    });
    assert.equal(config.metrics.listen, '127.0.0.1:9464');
    assert.equal(config.user, undefined);
  });

  it('shows every key of the schema', () => {
    // Each key of the loaded configuration appears in the file, commented out or not.
    const config = parseConfig(EXAMPLE.replace(/\$\{([A-Z_]+)\}/g, (_, name: string) => VALUES[name] ?? ''), 'muse.yaml');
    const missing: string[] = [];
    const visit = (value: unknown, path: string): void => {
      if (typeof value !== 'object' || value === null || Array.isArray(value) || path === 'policy.domains.') return;
      for (const [key, inner] of Object.entries(value)) {
        if (!new RegExp(`^\\s*#?\\s*${key}:`, 'm').test(EXAMPLE)) missing.push(`${path}${key}`);
        visit(inner, `${path}${key}.`);
      }
    };
    visit(config, '');
    for (const key of ['user', 'group', 'host']) if (!new RegExp(`^\\s*# ${key}:`, 'm').test(EXAMPLE)) missing.push(key);
    assert.deepEqual(missing, []);
  });
});
