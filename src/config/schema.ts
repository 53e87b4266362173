/**
 * The configuration schema: every key, its type, its default, and the rules between keys. `examples/muse.yaml`
 * documents each key for administrators; this file is the source of truth for both.
 *
 * Objects are strict, so a misspelt key is an error rather than a silently ignored setting. Sections default
 * to `{}` (`prefault`), so their inner defaults apply when a section is left out.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { SERVER_DEFAULTS } from '../../milter/src/index.ts';
import { siteKeyPaths } from '../keys/index.ts';
import { describeValue } from './describe.ts';
import { absolutePath, domainName, duration, fileMode, filePath, loopbackEndpoint, milterSocket, network, port, resolverAddress, singleLine, size, sizeOrZero } from './fields.ts';

/** How the milter treats mail to one domain. `dns` follows the policy the domain publishes with its key. */
export const POLICY_MODES = ['never', 'opportunistic', 'required', 'dns'] as const;

/** What the milter answers when something goes wrong; `accept` delivers the message as received. */
export const FAILURE_ACTIONS = ['tempfail', 'reject', 'accept'] as const;

/** Syslog severities, most verbose last, as winston's syslog levels name them. */
export const LOG_LEVELS = ['emerg', 'alert', 'crit', 'error', 'warning', 'notice', 'info', 'debug'] as const;

/** Syslog facilities a mail daemon may log under. */
export const SYSLOG_FACILITIES = ['mail', 'daemon', 'user', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'] as const;

/** Where files go when the configuration names no directory (the Debian convention for daemon state). */
export const DEFAULT_DATA_DIRECTORY = '/var/lib/muse-milter';

/** Where the site key is read from when `site.keyFile` is not given: where `muse-milter genkey` writes it. */
export const DEFAULT_KEY_DIRECTORY = '/etc/muse-milter/keys';

const siteSection = z.strictObject({
  domain: domainName,
  keyFile: filePath.optional(),
  previousKeyFiles: z.array(filePath).default([]),
  localDomains: z.array(domainName).min(1).optional(),
});

/** The milter socket's name in the data directory, where `milter.listen` puts it by default. */
export const DEFAULT_SOCKET_NAME = 'milter.sock';

/** The group `milter.socketGroup` defaults to when it exists on the host: Postfix's smtpd and cleanup run in it. */
export const DEFAULT_SOCKET_GROUP = 'postfix';

const milterSection = z.strictObject({
  // Default: unix:<dataDirectory>/milter.sock, filled in by the last step. Whoever can connect to the socket can
  // have mail decrypted and text signed with the site key, so the default is a socket only the MTA may open.
  listen: milterSocket.optional(),
  socketMode: fileMode.default(SERVER_DEFAULTS.socketMode),
  // Default: postfix when that group exists, else the daemon's own group (resolved at start, src/daemon/socket-group.ts).
  socketGroup: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/, { message: 'expected a group name such as postfix' }).optional(),
  idleTimeout: duration().default(SERVER_DEFAULTS.idleTimeout),
  progressInterval: duration().default(SERVER_DEFAULTS.progressInterval),
  maxFrameSize: size.default(SERVER_DEFAULTS.maxFrameSize),
  maxBufferedBody: size.default(SERVER_DEFAULTS.maxBufferedBody),
  // Bytes per second for every body beyond maxBufferedBody, read and written back, shared by the connections of
  // a process (src/stream/byte-rate.ts); 0: unlimited.
  largeBodyRate: sizeOrZero.default(4 * 1024 * 1024),
  // Each MTA connection holds about 1 MiB; beyond this many the MTA is told to try again (a 4xx to its client).
  maxConnections: z.number().int().min(1).max(100_000).default(SERVER_DEFAULTS.maxConnections),
  spoolDirectory: filePath.optional(),
  shutdownTimeout: duration().default(30_000),
  // Processes serving the one socket (node:cluster); `auto` is one per core. One process keeps a site's
  // memory and logs simple and signs and encrypts several hundred small messages a second (BENCHMARKS.md).
  workers: z
    .union([z.literal('auto'), z.number().int().min(1).max(64)], { error: (issue) => `expected a whole number from 1 to 64, or auto, got ${describeValue(issue.input)}` })
    .default(1),
});

const dnsSection = z.strictObject({
  servers: z.array(resolverAddress).min(1).default(['127.0.0.1:53']),
  timeout: duration().default(1500),
  attempts: z.number().int().min(1).max(10).default(2),
  overallTimeout: duration().default(8000),
  cacheSize: z.number().int().min(1).default(10_000),
  // A floor on cache lifetimes: a key published with TTL 0 would otherwise cost one query per message.
  minTtl: duration({ allowZero: true }).default(60_000),
  maxTtl: duration().default(86_400_000),
  negativeTtl: duration({ allowZero: true }).default(3_600_000),
  requireDnssec: z.boolean().default(false),
});

const pinsSection = z.strictObject({
  enabled: z.boolean().default(true),
  directory: filePath.optional(),
});

const directionSection = z
  .strictObject({
    internalNetworks: z.array(network).default(['127.0.0.0/8', '::1/128']),
    authenticatedIsOutbound: z.boolean().default(true),
    outboundDaemonNames: z.array(z.string().min(1)).default(['ORIGINATING']),
    inboundDaemonNames: z.array(z.string().min(1)).default([]),
    default: z.enum(['inbound', 'outbound']).default('inbound'),
  })
  .superRefine((direction, ctx) => {
    direction.inboundDaemonNames.forEach((name, index) => {
      if (direction.outboundDaemonNames.includes(name)) {
        ctx.addIssue({ code: 'custom', path: ['inboundDaemonNames', index], message: `"${name}" is also listed in outboundDaemonNames` });
      }
    });
  });

/**
 * Domain patterns: `example.org` is that domain only, `.example.org` its subdomains. Keys are normalised like
 * domains, so two spellings of one domain are caught here rather than one silently winning.
 */
const domainPolicies = z.record(z.string(), z.enum(POLICY_MODES)).transform((entries, ctx) => {
  const normalised: Record<string, (typeof POLICY_MODES)[number]> = {};
  for (const [pattern, mode] of Object.entries(entries)) {
    const subdomains = pattern.startsWith('.');
    const parsed = domainName.safeParse(subdomains ? pattern.slice(1) : pattern);
    if (!parsed.success) {
      ctx.issues.push({ code: 'custom', path: [pattern], input: pattern, message: 'expected a domain (example.org) or a leading dot for its subdomains (.example.org)' });
      continue;
    }
    const key = subdomains ? `.${parsed.data}` : parsed.data;
    if (key in normalised) {
      ctx.issues.push({ code: 'custom', path: [pattern], input: pattern, message: `the same domain as another entry (${key})` });
      continue;
    }
    normalised[key] = mode;
  }
  return normalised;
});

/**
 * When clear-text mail is signed. The old boolean form still loads (true meant every message, false none);
 * `check-config` says how to write it now (src/config/notices.ts).
 */
const signCleartext = z
  .union([z.enum(['never', 'muse-sites', 'always']), z.boolean()], { error: 'expected never, muse-sites or always' })
  .transform((value) => (value === true ? 'always' : value === false ? 'never' : value));

const policySection = z.strictObject({
  default: z.enum(POLICY_MODES).default('dns'),
  domains: domainPolicies.default({}),
  testing: z.boolean().default(false),
  headerProtection: z.boolean().default(true),
  subjectPlaceholder: singleLine.default('...'),
  signCleartext: signCleartext.default('muse-sites'),
  unwrapSigned: z.boolean().default(false),
});

/**
 * Inbound verification. The authserv-id names this host in the Authentication-Results fields it writes, and is
 * the id under which incoming forged `x-muse` results are removed (RFC 8601 §5).
 */
const inboundSection = z.strictObject({
  authservId: z
    .string()
    .regex(/^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/, { message: 'expected a host or domain name such as mx.example.org' })
    .transform((value) => value.toLowerCase())
    .optional(),
  alignment: z.enum(['strict', 'relaxed']).default('strict'),
});

const reinjectSection = z.strictObject({
  host: singleLine.min(1).default('127.0.0.1'),
  port: port.default(10029),
  heloName: z
    .string()
    .regex(/^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?)+$/, { message: 'expected a host name such as mail.example.org' })
    .optional(),
  timeout: duration().default(30_000),
  markerSecretFile: filePath.optional(),
  // The {daemon_name} of the re-injection listener: the one place a marker is accepted (and always removed).
  daemonName: z.string().regex(/^[\x21-\x7e]{1,64}$/, { message: 'expected 1 to 64 printable characters, no spaces' }).default('REINJECT'),
  ledgerDirectory: filePath.optional(),
});

const mixedRecipientsSection = z.strictObject({
  strategy: z.enum(['split', 'defer']).default('split'),
  reinject: reinjectSection.prefault({}),
});

const failureAction = z.enum(FAILURE_ACTIONS).default('tempfail');

const actionsSection = z.strictObject({
  dnsError: failureAction,
  cryptoError: failureAction,
  oversize: failureAction,
  internalError: failureAction,
  // Accepting here would send clear text to a domain whose policy requires encryption: the one thing
  // `required` promises never happens.
  noKeyRequired: failureAction.refine((action) => action !== 'accept', {
    message: '"accept" would deliver mail in clear to a domain that requires encryption; use tempfail or reject',
  }),
});

/**
 * Every cost of a message grows with its size; these put a ceiling on what a sender could otherwise multiply. The
 * header limits hold for the header found inside an encrypted or signed message too.
 */
const limitsSection = z.strictObject({
  maxMessageSize: size.default(50 * 1024 * 1024),
  maxHeaderBytes: size.default(1024 * 1024),
  maxHeaderFields: z.number().int().min(1).default(1000),
  // Decompressed data may be this many times the encrypted message, and never more than maxMessageSize.
  maxDecompressionRatio: z.number().min(1).default(20),
  maxSessionKeyPackets: z.number().int().min(1).default(1000),
  maxSessionKeyAttempts: z.number().int().min(1).default(8),
  // Per process (each worker has its own); further decryptions wait their turn, in order.
  maxConcurrentDecryptions: z.number().int().min(1).default(2),
  // A sender whose inbound messages have lately taken more than this share of one core to open has them opened
  // at the lowest priority (src/lanes/sender-costs.ts).
  backgroundAboveCpuShare: z.number().gt(0).max(64).default(0.1),
});

const syslogSection = z
  .strictObject({
    path: absolutePath.optional(),
    host: singleLine.min(1).optional(),
    port: port.default(514),
    facility: z.enum(SYSLOG_FACILITIES).default('mail'),
    appName: z.string().regex(/^[\x21-\x7e]{1,48}$/, { message: 'expected 1 to 48 printable characters, no spaces' }).default('muse-milter'),
  })
  .superRefine((syslog, ctx) => {
    if (syslog.path !== undefined && syslog.host !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['host'], message: 'give either path (a local socket) or host (UDP), not both' });
    }
  })
  // Without a host, messages go to the local syslog socket.
  .transform((syslog) => ({ ...syslog, path: syslog.host === undefined ? (syslog.path ?? '/dev/log') : undefined }));

const loggingSection = z.strictObject({
  format: z.enum(['json', 'text']).default('json'),
  target: z.enum(['stdout', 'stderr', 'syslog']).default('stdout'),
  level: z.enum(LOG_LEVELS).default('info'),
  syslog: syslogSection.prefault({}),
});

const metricsSection = z.strictObject({
  enabled: z.boolean().default(true),
  listen: loopbackEndpoint.default('127.0.0.1:9464'),
});

/** The configuration file as written, before paths are placed under the data directory. */
const configFile = z
  .strictObject({
    dataDirectory: absolutePath.default(DEFAULT_DATA_DIRECTORY),
    site: siteSection,
    milter: milterSection.prefault({}),
    dns: dnsSection.prefault({}),
    pins: pinsSection.prefault({}),
    direction: directionSection.prefault({}),
    policy: policySection.prefault({}),
    inbound: inboundSection.prefault({}),
    mixedRecipients: mixedRecipientsSection.prefault({}),
    actions: actionsSection.prefault({}),
    limits: limitsSection.prefault({}),
    logging: loggingSection.prefault({}),
    metrics: metricsSection.prefault({}),
    user: z.string().min(1).optional(),
    group: z.string().min(1).optional(),
    // For init scripts and supervisors without systemd: the daemon writes its pid here once it serves.
    pidFile: filePath.optional(),
  })
  .superRefine((config, ctx) => {
    // Switching group while staying root would keep every privilege that matters.
    if (config.group !== undefined && config.user === undefined) {
      ctx.addIssue({ code: 'custom', path: ['group'], message: 'needs user as well: changing only the group would leave the daemon running as root' });
    }
    // Mail at the re-injection listener is outbound (copies, or mail to be processed as outbound); the same name
    // meaning inbound would make that listener a way around encryption.
    const reinjectName = config.mixedRecipients.reinject.daemonName;
    if (config.direction.inboundDaemonNames.includes(reinjectName)) {
      ctx.addIssue({ code: 'custom', path: ['mixedRecipients', 'reinject', 'daemonName'], message: `"${reinjectName}" is also listed in direction.inboundDaemonNames` });
    }
  });

/**
 * The configuration schema. Its last step fills the defaults that depend on other keys: `site.keyFile`
 * (`<domain>.private.asc` in {@link DEFAULT_KEY_DIRECTORY}), `milter.listen` (`unix:<dataDirectory>/milter.sock`),
 * paths under `dataDirectory` (relative paths are taken there too; the pin store sits in it directly),
 * `site.localDomains`, `inbound.authservId` and `mixedRecipients.reinject.heloName` (all the site domain);
 * `mixedRecipients.reinject.ledgerDirectory` is `reinjected` under `dataDirectory`; a relative `pidFile` is taken
 * under `dataDirectory`.
 */
export const configSchema = configFile.transform((file) => {
  const underData = (path: string | undefined, fallback: string): string => resolve(file.dataDirectory, path ?? fallback);
  const { site, milter, pins, mixedRecipients, inbound } = file;
  return {
    ...file,
    site: {
      ...site,
      keyFile: underData(site.keyFile, siteKeyPaths(DEFAULT_KEY_DIRECTORY, site.domain).privateKey),
      previousKeyFiles: site.previousKeyFiles.map((path) => underData(path, path)),
      localDomains: site.localDomains ?? [site.domain],
    },
    inbound: { ...inbound, authservId: inbound.authservId ?? site.domain },
    milter: {
      ...milter,
      listen: milter.listen ?? `unix:${resolve(file.dataDirectory, DEFAULT_SOCKET_NAME)}`,
      spoolDirectory: underData(milter.spoolDirectory, 'spool'),
    },
    pins: { ...pins, directory: underData(pins.directory, '.') },
    ...(file.pidFile === undefined ? {} : { pidFile: underData(file.pidFile, file.pidFile) }),
    mixedRecipients: {
      ...mixedRecipients,
      reinject: {
        ...mixedRecipients.reinject,
        heloName: mixedRecipients.reinject.heloName ?? site.domain,
        markerSecretFile: underData(mixedRecipients.reinject.markerSecretFile, 'marker-secret'),
        ledgerDirectory: underData(mixedRecipients.reinject.ledgerDirectory, 'reinjected'),
      },
    },
  };
});

/** The validated configuration, every default filled in and every path absolute. Durations are milliseconds, sizes bytes. */
export type Config = z.infer<typeof configSchema>;

/** A policy mode (`policy.default` and the values of `policy.domains`). */
export type PolicyMode = (typeof POLICY_MODES)[number];

/** A failure action (the values of the `actions` section). */
export type FailureAction = (typeof FAILURE_ACTIONS)[number];

/** A syslog severity name (`logging.level`). */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The `logging` section: all the logger needs. */
export type LoggingConfig = Config['logging'];
