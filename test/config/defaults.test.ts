/** Every default of the configuration, from a minimal file and from the built-in configuration (`npm start`). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { defaultConfig, parseConfig, type Config } from '../../src/config/index.ts';

/** The configuration of a file that names only the site domain. */
const MINIMAL: Config = {
  dataDirectory: '/var/lib/muse-milter',
  site: {
    domain: 'example.org',
    keyFile: '/etc/muse-milter/keys/example.org.private.asc',
    previousKeyFiles: [],
    localDomains: ['example.org'],
  },
  milter: {
    listen: 'unix:/var/lib/muse-milter/milter.sock',
    socketMode: 0o660,
    idleTimeout: 900_000,
    progressInterval: 10_000,
    maxFrameSize: 1_048_577,
    maxBufferedBody: 1_048_576,
    largeBodyRate: 4_194_304,
    maxConnections: 256,
    spoolDirectory: '/var/lib/muse-milter/spool',
    shutdownTimeout: 30_000,
    workers: 1,
  },
  dns: {
    servers: ['127.0.0.1:53'],
    timeout: 1500,
    attempts: 2,
    overallTimeout: 8000,
    cacheSize: 10_000,
    minTtl: 60_000,
    maxTtl: 86_400_000,
    negativeTtl: 3_600_000,
    requireDnssec: false,
  },
  pins: { enabled: true, directory: '/var/lib/muse-milter' },
  direction: {
    internalNetworks: ['127.0.0.0/8', '::1/128'],
    authenticatedIsOutbound: true,
    outboundDaemonNames: ['ORIGINATING'],
    inboundDaemonNames: [],
    default: 'inbound',
  },
  policy: {
    default: 'dns',
    domains: {},
    testing: false,
    headerProtection: true,
    subjectPlaceholder: '...',
    signCleartext: 'muse-sites',
    unwrapSigned: false,
  },
  inbound: { authservId: 'example.org', alignment: 'strict' },
  mixedRecipients: {
    strategy: 'split',
    reinject: {
      host: '127.0.0.1',
      port: 10029,
      heloName: 'example.org',
      timeout: 30_000,
      markerSecretFile: '/var/lib/muse-milter/marker-secret',
      daemonName: 'REINJECT',
      ledgerDirectory: '/var/lib/muse-milter/reinjected',
    },
  },
  actions: { dnsError: 'tempfail', cryptoError: 'tempfail', oversize: 'tempfail', internalError: 'tempfail', noKeyRequired: 'tempfail' },
  limits: {
    maxMessageSize: 52_428_800,
    maxHeaderBytes: 1_048_576,
    maxHeaderFields: 1000,
    maxDecompressionRatio: 20,
    maxSessionKeyPackets: 1000,
    maxSessionKeyAttempts: 8,
    maxConcurrentDecryptions: 2,
    backgroundAboveCpuShare: 0.1,
  },
  logging: {
    format: 'json',
    target: 'stdout',
    level: 'info',
    syslog: { path: '/dev/log', port: 514, facility: 'mail', appName: 'muse-milter' },
  },
  metrics: { enabled: true, listen: '127.0.0.1:9464' },
};

describe('configuration defaults', () => {
  it('fills every section of a file that names only the site domain', () => {
    assert.deepEqual(parseConfig('site:\n  domain: example.org\n', 'muse.yaml'), MINIMAL);
  });

  it('normalises domains and takes relative paths under the data directory', () => {
    const config = parseConfig(
      [
        'dataDirectory: /srv/muse',
        'site:',
        '  domain: Example.ORG.',
        '  keyFile: keys/site.asc',
        '  previousKeyFiles: [old/one.asc, /abs/two.asc]',
        '  localDomains: [Example.ORG, Mail.Example.ORG]',
        'milter: { spoolDirectory: tmp }',
        'pins: { directory: pins }',
        'mixedRecipients: { reinject: { markerSecretFile: /etc/muse/marker } }',
        'policy: { domains: { Partner.TEST: required, .Sub.Partner.TEST: never } }',
      ].join('\n'),
      'muse.yaml',
    );
    assert.equal(config.site.domain, 'example.org');
    assert.equal(config.site.keyFile, '/srv/muse/keys/site.asc');
    assert.deepEqual(config.site.previousKeyFiles, ['/srv/muse/old/one.asc', '/abs/two.asc']);
    assert.deepEqual(config.site.localDomains, ['example.org', 'mail.example.org']);
    assert.equal(config.milter.spoolDirectory, '/srv/muse/tmp');
    assert.equal(config.pins.directory, '/srv/muse/pins');
    assert.equal(config.mixedRecipients.reinject.markerSecretFile, '/etc/muse/marker');
    assert.equal(config.mixedRecipients.reinject.heloName, 'example.org');
    assert.deepEqual(config.policy.domains, { 'partner.test': 'required', '.sub.partner.test': 'never' });
  });

  it('reads durations, sizes and modes in every accepted form', () => {
    const config = parseConfig(
      [
        'site: { domain: example.org }',
        'milter: { idleTimeout: 2h, progressInterval: 1.5s, shutdownTimeout: 45000, maxFrameSize: 64KiB, maxBufferedBody: 2MB, socketMode: "600" }',
        'dns: { timeout: 250ms, minTtl: 0, negativeTtl: 0s, maxTtl: 1d }',
        'limits: { maxMessageSize: 1GiB, maxHeaderBytes: 4096 }',
      ].join('\n'),
      'muse.yaml',
    );
    assert.deepEqual(
      [config.milter.idleTimeout, config.milter.progressInterval, config.milter.shutdownTimeout, config.milter.maxFrameSize, config.milter.maxBufferedBody, config.milter.socketMode],
      [7_200_000, 1500, 45_000, 65_536, 2_000_000, 0o600],
    );
    assert.deepEqual([config.dns.timeout, config.dns.minTtl, config.dns.negativeTtl, config.dns.maxTtl], [250, 0, 0, 86_400_000]);
    assert.deepEqual([config.limits.maxMessageSize, config.limits.maxHeaderBytes], [1_073_741_824, 4096]);
  });

  it('keeps an explicit milter socket and socket group; refuses a group name that is not one', () => {
    const config = parseConfig('dataDirectory: /srv/muse\nsite: { domain: example.org }\nmilter: { listen: unix:/var/spool/postfix/muse-milter/milter.sock, socketGroup: mail }\n', 'muse.yaml');
    assert.deepEqual([config.milter.listen, config.milter.socketGroup], ['unix:/var/spool/postfix/muse-milter/milter.sock', 'mail']);
    assert.equal(parseConfig('dataDirectory: /srv/muse\nsite: { domain: example.org }\n', 'muse.yaml').milter.listen, 'unix:/srv/muse/milter.sock');
    assert.throws(() => parseConfig('site: { domain: example.org }\nmilter: { socketGroup: "post fix" }\n', 'muse.yaml'), {
      name: 'ConfigError',
      message: 'muse.yaml:2:24: milter.socketGroup: expected a group name such as postfix, got "post fix"',
    });
  });

  it('keeps a syslog host instead of the local socket when one is given', () => {
    const config = parseConfig('site: { domain: example.org }\nlogging: { target: syslog, syslog: { host: 192.0.2.10, port: 5514 } }\n', 'muse.yaml');
    assert.deepEqual(config.logging.syslog, { path: undefined, host: '192.0.2.10', port: 5514, facility: 'mail', appName: 'muse-milter' });
  });

  it('accepts "accept" for every action except noKeyRequired', () => {
    const config = parseConfig('site: { domain: example.org }\nactions: { dnsError: accept, cryptoError: reject, oversize: accept, internalError: accept }\n', 'muse.yaml');
    assert.deepEqual(config.actions, { dnsError: 'accept', cryptoError: 'reject', oversize: 'accept', internalError: 'accept', noKeyRequired: 'tempfail' });
  });
});

describe('defaultConfig (no configuration file)', () => {
  /** Runs `body` with the two environment variables set as given (undefined: unset), restoring them after. */
  const NAMES = ['MUSE_DOMAIN', 'MUSE_DATA_DIR', 'MUSE_METRICS_LISTEN', 'MUSE_DNS'] as const;
  function withEnv(values: { MUSE_DOMAIN?: string; MUSE_DATA_DIR?: string; MUSE_METRICS_LISTEN?: string; MUSE_DNS?: string }, body: () => void): void {
    const saved = { MUSE_DOMAIN: process.env.MUSE_DOMAIN, MUSE_DATA_DIR: process.env.MUSE_DATA_DIR, MUSE_METRICS_LISTEN: process.env.MUSE_METRICS_LISTEN, MUSE_DNS: process.env.MUSE_DNS };
    for (const name of NAMES) {
      if (values[name] === undefined) delete process.env[name];
      else process.env[name] = values[name];
    }
    try {
      body();
    } finally {
      for (const name of NAMES) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
    }
  }

  it('uses muse.localhost and ./data, with the key and the milter socket under the data directory', () => {
    withEnv({}, () => {
      const data = resolve('data');
      const config = defaultConfig();
      assert.deepEqual(config, {
        ...MINIMAL,
        dataDirectory: data,
        site: { domain: 'muse.localhost', keyFile: `${data}/keys/muse.localhost.private.asc`, previousKeyFiles: [], localDomains: ['muse.localhost'] },
        milter: { ...MINIMAL.milter, listen: `unix:${data}/milter.sock`, spoolDirectory: `${data}/spool` },
        pins: { ...MINIMAL.pins, directory: data },
        inbound: { authservId: 'muse.localhost', alignment: 'strict' },
        mixedRecipients: { ...MINIMAL.mixedRecipients, reinject: { ...MINIMAL.mixedRecipients.reinject, heloName: 'muse.localhost', markerSecretFile: `${data}/marker-secret`, ledgerDirectory: `${data}/reinjected` } },
      });
    });
  });

  it('takes the domain from MUSE_DOMAIN and the data directory from MUSE_DATA_DIR', () => {
    withEnv({ MUSE_DOMAIN: 'Site.Example', MUSE_DATA_DIR: '/srv/muse data' }, () => {
      const config = defaultConfig();
      assert.equal(config.site.domain, 'site.example');
      assert.equal(config.dataDirectory, '/srv/muse data');
      assert.equal(config.site.keyFile, '/srv/muse data/keys/site.example.private.asc');
    });
  });

  it('takes the metrics endpoint from MUSE_METRICS_LISTEN, or none for off', () => {
    withEnv({ MUSE_METRICS_LISTEN: '127.0.0.1:0' }, () => assert.deepEqual(defaultConfig('/srv/muse').metrics, { enabled: true, listen: '127.0.0.1:0' }));
    withEnv({ MUSE_METRICS_LISTEN: 'off' }, () => assert.deepEqual(defaultConfig('/srv/muse').metrics, { enabled: false, listen: '127.0.0.1:9464' }));
    withEnv({ MUSE_METRICS_LISTEN: '0.0.0.0:9464' }, () => {
      assert.throws(() => defaultConfig('/srv/muse'), {
        name: 'ConfigError',
        code: 'CONFIG_INVALID',
        message:
          'built-in configuration (MUSE_DATA_DIR, MUSE_DOMAIN, MUSE_DNS, MUSE_METRICS_LISTEN):5:11: metrics.listen: must be a loopback address (127.0.0.0/8 or [::1]), ' +
          'because the metrics endpoint has no authentication; got "0.0.0.0:9464"',
      });
    });
  });

  it('takes the resolvers from MUSE_DNS, comma-separated', () => {
    withEnv({ MUSE_DNS: '127.0.0.1:5300, [::1]:53' }, () => assert.deepEqual(defaultConfig('/srv/muse').dns.servers, ['127.0.0.1:5300', '[::1]:53']));
    withEnv({ MUSE_DNS: '' }, () => assert.deepEqual(defaultConfig('/srv/muse').dns.servers, ['127.0.0.1:53']));
  });

  it('prefers an explicit data directory argument', () => {
    withEnv({ MUSE_DATA_DIR: '/ignored' }, () => assert.equal(defaultConfig('/srv/other').dataDirectory, '/srv/other'));
  });

  it('reports an unusable MUSE_DOMAIN like a file error', () => {
    withEnv({ MUSE_DOMAIN: 'localhost' }, () => {
      assert.throws(() => defaultConfig('/srv/muse'), {
        name: 'ConfigError',
        code: 'CONFIG_INVALID',
        message: 'built-in configuration (MUSE_DATA_DIR, MUSE_DOMAIN, MUSE_DNS, MUSE_METRICS_LISTEN):3:11: site.domain: expected a mail domain such as example.org, got "localhost"',
      });
    });
  });
});
