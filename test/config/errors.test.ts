/**
 * Every kind of configuration error, with its exact message: `file:line:column: key.path: what is wrong`.
 * Line and column point at the offending value, at the key itself for an unknown key, and at the mapping that
 * lacks a required key.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/index.ts';

/** The lines of a YAML text, joined; keeps the expected line numbers readable. */
const yaml = (...lines: string[]): string => `${lines.join('\n')}\n`;

/** Asserts that `text` is refused with `code` and exactly the given problem lines. */
function assertRefused(text: string, code: ConfigError['code'], ...problems: string[]): void {
  assert.throws(
    () => parseConfig(text, 'muse.yaml'),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.code, code);
      assert.deepEqual(error.problems, problems);
      assert.equal(error.message, problems.join('\n'));
      return true;
    },
  );
}

const SITE = ['site:', '  domain: example.org'];

describe('configuration errors', () => {
  it('names the allowed values of an enumeration, at the value', () => {
    assertRefused(
      yaml(...SITE, 'policy:', '  domains:', '    partner.test: always'),
      'CONFIG_INVALID',
      'muse.yaml:5:19: policy.domains."partner.test": expected one of never|opportunistic|required|dns, got "always"',
    );
  });

  it('names the expected type', () => {
    assertRefused(yaml(...SITE, 'dns:', '  requireDnssec: yes'), 'CONFIG_INVALID', 'muse.yaml:4:18: dns.requireDnssec: expected true or false, got "yes"');
    assertRefused(yaml('site: 5'), 'CONFIG_INVALID', 'muse.yaml:1:7: site: expected a mapping, got 5');
    assertRefused(yaml(...SITE, 'milter:'), 'CONFIG_INVALID', 'muse.yaml:3:8: milter: expected a mapping, got an empty value');
    assertRefused(yaml('- a', '- b'), 'CONFIG_INVALID', 'muse.yaml:1:1: expected a mapping, got a list');
  });

  it('points a missing required key at the mapping that lacks it', () => {
    assertRefused(yaml('site:', '  keyFile: /x'), 'CONFIG_INVALID', 'muse.yaml:2:3: site.domain: missing required key');
    assertRefused('', 'CONFIG_INVALID', 'muse.yaml:1:1: site: missing required key');
  });

  it('refuses unknown keys at the key, suggesting a near one', () => {
    assertRefused(yaml(...SITE, 'milter:', '  idleTimout: 5m'), 'CONFIG_INVALID', 'muse.yaml:4:3: milter.idleTimout: unknown key (did you mean "idleTimeout"?)');
    assertRefused(yaml(...SITE, 'milter:', '  IDLETIMEOUT: 5m'), 'CONFIG_INVALID', 'muse.yaml:4:3: milter.IDLETIMEOUT: unknown key (did you mean "idleTimeout"?)');
    assertRefused(yaml(...SITE, 'milter:', '  frobnicate: 5m'), 'CONFIG_INVALID', 'muse.yaml:4:3: milter.frobnicate: unknown key');
    assertRefused(yaml(...SITE, 'logins: {}'), 'CONFIG_INVALID', 'muse.yaml:3:1: logins: unknown key (did you mean "logging"?)');
    assertRefused(
      yaml(...SITE, 'mixedRecipients:', '  reinject:', '    prot: 25', '    helo: x'),
      'CONFIG_INVALID',
      'muse.yaml:5:5: mixedRecipients.reinject.prot: unknown key (did you mean "port"?)',
      'muse.yaml:6:5: mixedRecipients.reinject.helo: unknown key',
    );
  });

  it('refuses bad durations, sizes and modes', () => {
    assertRefused(
      yaml(...SITE, 'milter:', '  idleTimeout: 5 minutes', '  progressInterval: 0s', '  maxFrameSize: 0', '  maxBufferedBody: 10QB', '  socketMode: 0660', '  shutdownTimeout: -1'),
      'CONFIG_INVALID',
      'muse.yaml:4:16: milter.idleTimeout: expected a non-zero duration such as 30s, 5m or 2h, or a number of milliseconds, got "5 minutes"',
      'muse.yaml:5:21: milter.progressInterval: expected a non-zero duration such as 30s, 5m or 2h, or a number of milliseconds, got "0s"',
      'muse.yaml:6:17: milter.maxFrameSize: expected a non-zero size such as 64KiB or 50MiB, or a number of bytes, got 0',
      'muse.yaml:7:20: milter.maxBufferedBody: expected a non-zero size such as 64KiB or 50MiB, or a number of bytes, got "10QB"',
      'muse.yaml:8:15: milter.socketMode: expected an octal mode in quotes such as "0660", got 660',
      'muse.yaml:9:20: milter.shutdownTimeout: expected a non-zero duration such as 30s, 5m or 2h, or a number of milliseconds, got -1',
    );
    assertRefused(
      yaml(...SITE, 'dns:', '  negativeTtl: 1 fortnight'),
      'CONFIG_INVALID',
      'muse.yaml:4:16: dns.negativeTtl: expected a duration such as 30s, 5m or 2h, or a number of milliseconds, got "1 fortnight"',
    );
  });

  it('refuses a metrics endpoint off loopback', () => {
    assertRefused(
      yaml(...SITE, 'metrics:', '  listen: 0.0.0.0:9464'),
      'CONFIG_INVALID',
      'muse.yaml:4:11: metrics.listen: must be a loopback address (127.0.0.0/8 or [::1]), because the metrics endpoint has no authentication; got "0.0.0.0:9464"',
    );
    assertRefused(
      yaml(...SITE, 'metrics:', '  listen: "[2001:db8::1]:9464"'),
      'CONFIG_INVALID',
      'muse.yaml:4:11: metrics.listen: must be a loopback address (127.0.0.0/8 or [::1]), because the metrics endpoint has no authentication; got "[2001:db8::1]:9464"',
    );
    assertRefused(
      yaml(...SITE, 'metrics:', '  listen: localhost:9464'),
      'CONFIG_INVALID',
      'muse.yaml:4:11: metrics.listen: expected an address such as 127.0.0.1:9464 or [::1]:9464, got "localhost:9464"',
    );
  });

  it('refuses accept for noKeyRequired', () => {
    assertRefused(
      yaml(...SITE, 'actions:', '  noKeyRequired: accept'),
      'CONFIG_INVALID',
      'muse.yaml:4:18: actions.noKeyRequired: "accept" would deliver mail in clear to a domain that requires encryption; use tempfail or reject',
    );
  });

  it('refuses values other modules would refuse, with their words', () => {
    assertRefused(
      yaml(
        'dataDirectory: data',
        'site:',
        '  domain: localhost',
        '  localDomains: []',
        'dns:',
        '  servers: [127.0.0.1:53, ns.example.org]',
        '  attempts: 0',
        'milter:',
        '  listen: tcp:8899',
        'mixedRecipients:',
        '  reinject:',
        '    port: 70000',
        '    heloName: "bad name"',
      ),
      'CONFIG_INVALID',
      'muse.yaml:1:16: dataDirectory: expected an absolute path, got "data"',
      'muse.yaml:3:11: site.domain: expected a mail domain such as example.org, got "localhost"',
      'muse.yaml:4:17: site.localDomains: expected at least 1 entry',
      'muse.yaml:6:27: dns.servers[1]: not a resolver address (IP literal, optional :port): "ns.example.org"',
      'muse.yaml:7:13: dns.attempts: expected a number of at least 1, got 0',
      "muse.yaml:9:11: milter.listen: socket specification 'tcp:8899' must start with unix:, local:, inet: or inet6:",
      'muse.yaml:12:11: mixedRecipients.reinject.port: expected a number of at most 65535, got 70000',
      'muse.yaml:13:15: mixedRecipients.reinject.heloName: expected a host name such as mail.example.org, got "bad name"',
    );
    assertRefused(
      yaml(...SITE, 'direction:', '  internalNetworks: [10.0.0.0/8, 10.0.0.0/33, example.org]'),
      'CONFIG_INVALID',
      "muse.yaml:4:34: direction.internalNetworks[1]: '10.0.0.0/33' has an invalid prefix length",
      "muse.yaml:4:47: direction.internalNetworks[2]: 'example.org' is not an IP network",
    );
  });

  it('refuses contradicting or dangerous combinations', () => {
    assertRefused(
      yaml(...SITE, 'logging:', '  syslog:', '    path: /dev/log', '    host: 192.0.2.1'),
      'CONFIG_INVALID',
      'muse.yaml:6:11: logging.syslog.host: give either path (a local socket) or host (UDP), not both',
    );
    assertRefused(yaml(...SITE, 'group: mail'), 'CONFIG_INVALID', 'muse.yaml:3:8: group: needs user as well: changing only the group would leave the daemon running as root');
    assertRefused(
      yaml(...SITE, 'direction:', '  outboundDaemonNames: [ORIGINATING]', '  inboundDaemonNames: [MTA, ORIGINATING]'),
      'CONFIG_INVALID',
      'muse.yaml:5:29: direction.inboundDaemonNames[1]: "ORIGINATING" is also listed in outboundDaemonNames',
    );
    assertRefused(
      yaml(...SITE, 'direction:', '  inboundDaemonNames: [MX, REINJECT]'),
      'CONFIG_INVALID',
      'muse.yaml:1:1: mixedRecipients.reinject.daemonName: "REINJECT" is also listed in direction.inboundDaemonNames',
    );
    assertRefused(
      yaml(...SITE, 'policy:', '  domains:', '    Partner.test: never', '    partner.TEST: required', '    bad_domain: never'),
      'CONFIG_INVALID',
      'muse.yaml:6:19: policy.domains."partner.TEST": the same domain as another entry (partner.test)',
      'muse.yaml:7:17: policy.domains.bad_domain: expected a domain (example.org) or a leading dot for its subdomains (.example.org)',
    );
    assertRefused(
      yaml(...SITE, 'policy:', '  subjectPlaceholder: "a\\nBcc: x@example.org"'),
      'CONFIG_INVALID',
      'muse.yaml:4:23: policy.subjectPlaceholder: must not contain line breaks or other control characters',
    );
  });

  it('reports YAML syntax errors with their position', () => {
    assertRefused(yaml('site: ['), 'CONFIG_SYNTAX', 'muse.yaml:2:1: Flow sequence in block collection must be sufficiently indented and end with a ]');
    assertRefused(yaml('site:', '  domain: example.org', '  domain: example.net'), 'CONFIG_SYNTAX', 'muse.yaml:3:3: Map keys must be unique');
    assertRefused(yaml(...SITE, 'x: !foo bar'), 'CONFIG_SYNTAX', 'muse.yaml:3:4: Unresolved tag: !foo');
  });

  it('follows aliases to the value they stand for', () => {
    assertRefused(yaml('list: &a [1, 2]', 'site: *a'), 'CONFIG_INVALID', 'muse.yaml:1:1: list: unknown key', 'muse.yaml:2:7: site: expected a mapping, got a list');
  });
});

describe('loadConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'muse-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a file and names it in messages', async () => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, yaml(...SITE, 'policy:', '  default: always'));
    await assert.rejects(loadConfig(path), {
      name: 'ConfigError',
      code: 'CONFIG_INVALID',
      message: `${path}:4:12: policy.default: expected one of never|opportunistic|required|dns, got "always"`,
    });
    writeFileSync(path, yaml(...SITE));
    assert.equal((await loadConfig(path)).site.domain, 'example.org');
  });

  it('reports a file it cannot read', async () => {
    const path = join(dir, 'missing.yaml');
    await assert.rejects(loadConfig(path), { name: 'ConfigError', code: 'CONFIG_UNREADABLE', message: `${path}: cannot read the configuration file (ENOENT)` });
    await assert.rejects(loadConfig(dir), { name: 'ConfigError', code: 'CONFIG_UNREADABLE', message: `${dir}: cannot read the configuration file (EISDIR)` });
  });
});
