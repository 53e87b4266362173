/**
 * The end-to-end topology: two MUSE sites and their DNS, all real programs on 127.0.0.1, configured from the
 * administrator examples in `examples/` (muse.yaml, postfix/main.cf, postfix/master.cf, sendmail/muse.mc),
 * adapted only for ports, paths and the one policy override the tests rely on.
 *
 *   test client ──► Postfix A (submission) ──milter──► muse-milter A (outbound: sign + encrypt)
 *                     │ site-b.test                         ▲
 *                     ▼                                     │ Sendmail (muse.mc) ─── relays everything to the tap
 *                   SMTP tap (records the wire) ─► Postfix B (INBOUND listener) ──milter──► muse-milter B (decrypt)
 *                     │ other domains                                      │ site-b.test
 *                     ▼                                                    ▼
 *                   "world" sink (exact bytes)                          "mailbox" sink (exact bytes)
 *
 * DNS: knot serves and signs every zone, unbound validates in front of it (test/support/dns-servers.ts):
 * `site-a.test` and `site-b.test` publish the `_muse` records `genkey` made (policy opportunistic, so a pin,
 * not the published policy, is what refuses a downgrade); `keyless.test` publishes nothing; `partner.example`
 * publishes nothing and is made `required` (policy.domains) in each site's copy of examples/muse.yaml; `bogus.test` publishes records but unbound holds
 * a wrong trust anchor for it, so every answer about it is SERVFAIL.
 *
 * Ports (127.0.0.1 only): every listener gets a port the kernel picked (test/support/free-port.ts; knot and
 * unbound one free for UDP and TCP), so test files running in parallel, or a developer's `npm start`, never share
 * one; a start that lost a port to another program meanwhile is retried with fresh ports. Per site: Postfix smtpd
 * (master.cf "smtp" line; unused), submission (ORIGINATING; the clients' way in), INBOUND smtpd (the tap forwards
 * to B's), re-injection smtpd (REINJECT), muse-milter (milter.listen) and its metrics; shared: knot, unbound, the
 * mailbox sink (B delivers here), the world sink (A's other domains), the SMTP tap (A → B) and Sendmail (milter:
 * muse-milter A). {@link Topology.ports} has them all.
 *
 * With `dkim` (examples/postfix/opendkim.cf): OpenDKIM signs after muse-milter A on A's submission and re-injection
 * services; on B's INBOUND listener OpenDKIM verifies and OpenDMARC judges before muse-milter B; site-a.test
 * publishes the DKIM key and a `_dmarc` record with p=reject (test/e2e/dkim-milters.ts). With `sendmail` too,
 * Sendmail also takes examples/sendmail/dkim.mc (OpenDKIM signing after muse-milter A), and
 * {@link startReceivingSendmail} adds a Sendmail for site B whose INBOUND listener runs the verifiers, then
 * muse-milter B, and {@link startSendmailSite} site A as a site without Postfix: a Sendmail and a muse-milter that
 * re-injects the copies it splits off into that Sendmail's REINJECT listener (examples/sendmail/muse.mc).
 *
 * With `forwarding` (examples/postfix/forwarding.cf): site B expands list@site-b.test to carol@site-a.test
 * (virtual_alias_maps), its INBOUND listener hands every message to the second pass (muse-milter as ORIGINATING on
 * a loopback smtpd), and it sends site-a.test mail to the world sink; site-a.test publishes p=enforce.
 *
 * Instance directories live under /var/lib/muse-test (test/support/instance-dir.ts); {@link Topology.stop}
 * removes them, and an exit hook kills everything if a test file dies first.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { editConfigText } from '../../src/config/index.ts';
import { loadSitePrivateKey } from '../../src/keys/index.ts';
import { startKnotUnbound, type KnotUnbound } from '../support/dns-servers.ts';
import { freePort, isAddressInUse } from '../support/free-port.ts';
import { HarnessError } from '../support/errors.ts';
import { makeInstanceDir, removeInstanceDir } from '../support/instance-dir.ts';
import { PostfixInstance } from '../support/postfix.ts';
import { registerExitCleanup, runCommand } from '../support/processes.ts';
import { SendmailInstance } from '../support/sendmail.ts';
import { SmtpSink } from '../support/smtp-sink.ts';
import { MuseDaemon } from './muse-daemon.ts';
import { SmtpTap } from './smtp-tap.ts';
import { makeDkimKey, startDkimSigner, startDkimVerifier, startDmarc, startPort53Forwarder, type MilterDaemon } from './dkim-milters.ts';

/** The domains of the topology. */
export const DOMAINS = {
  siteA: 'site-a.test',
  siteB: 'site-b.test',
  keyless: 'keyless.test',
  /** `required` in each site's configuration (policy.domains), and publishes no key. */
  required: 'partner.example',
  bogus: 'bogus.test',
} as const;

/** The ports of one site. */
export interface SitePorts {
  readonly smtp: number;
  readonly submission: number;
  readonly inbound: number;
  readonly reinject: number;
  /** The second pass of examples/postfix/forwarding.cf (used with {@link TopologyOptions.forwarding}). */
  readonly forward: number;
  readonly milter: number;
  readonly metrics: number;
}

/** Every port of one topology. */
export interface TopologyPorts {
  readonly knot: number;
  readonly unbound: number;
  readonly mailbox: number;
  readonly world: number;
  readonly tap: number;
  readonly sendmail: number;
  /** OpenDKIM signing for site A, OpenDKIM verifying and OpenDMARC for site B (used with {@link TopologyOptions.dkim}). */
  readonly dkimSign: number;
  readonly dkimVerify: number;
  readonly dmarc: number;
  readonly a: SitePorts;
  readonly b: SitePorts;
}

/** Ports for a whole topology, each picked free by the kernel. */
export async function allocateTopologyPorts(): Promise<TopologyPorts> {
  const tcp = (): Promise<number> => freePort();
  const site = async (): Promise<SitePorts> => ({
    smtp: await tcp(),
    submission: await tcp(),
    inbound: await tcp(),
    reinject: await tcp(),
    forward: await tcp(),
    milter: await tcp(),
    metrics: await tcp(),
  });
  return {
    knot: await freePort({ udp: true }),
    unbound: await freePort({ udp: true }),
    mailbox: await tcp(),
    world: await tcp(),
    tap: await tcp(),
    sendmail: await tcp(),
    dkimSign: await tcp(),
    dkimVerify: await tcp(),
    dmarc: await tcp(),
    a: await site(),
    b: await site(),
  };
}

/** One MUSE site: its key, its muse-milter and its Postfix. */
export interface Site {
  readonly domain: string;
  /** The site key's fingerprint (upper-case hex). */
  readonly fingerprint: string;
  /** The armored private key file `genkey` wrote (mode 0600). */
  readonly privateKeyPath: string;
  /** The armored public key `genkey` wrote. */
  readonly publicKeyArmored: string;
  /** The milter's data directory (pins.json lives here). */
  readonly dataDir: string;
  readonly ports: SitePorts;
  readonly milter: MuseDaemon;
  readonly postfix: PostfixInstance;
}

/** Options of {@link startTopology}. */
export interface TopologyOptions {
  /**
   * Also start Sendmail with examples/sendmail/muse.mc pointing at site A's milter; with {@link dkim} too,
   * examples/sendmail/dkim.mc after it (site A's OpenDKIM signer after muse-milter).
   */
  readonly sendmail?: boolean;
  /**
   * Also run OpenDKIM and OpenDMARC as examples/postfix/opendkim.cf chains them: site A signs (muse-milter, then
   * OpenDKIM, on submission and re-injection), site B's INBOUND listener verifies (OpenDKIM, OpenDMARC, then
   * muse-milter). site-a.test publishes the DKIM key and `_dmarc` with p=reject.
   */
  readonly dkim?: boolean;
  /**
   * Site B forwards: virtual_alias_maps turns {@link FORWARDED_ALIAS} into {@link FORWARD_TARGET}, its INBOUND
   * listener and master.cf take examples/postfix/forwarding.cf (the second pass), and it sends site-a.test mail
   * to the world sink.
   */
  readonly forwarding?: boolean;
}

/** The address site B forwards with {@link TopologyOptions.forwarding}. */
export const FORWARDED_ALIAS = 'list@site-b.test';
/** Where {@link FORWARDED_ALIAS} goes: a site that publishes a key. */
export const FORWARD_TARGET = 'carol@site-a.test';

/** The DKIM and DMARC daemons of a topology started with {@link TopologyOptions.dkim}. */
export interface DkimMilters {
  readonly signer: MilterDaemon;
  readonly verifier: MilterDaemon;
  readonly dmarc: MilterDaemon;
  /** A resolv.conf naming the port-53 forwarder to unbound, for programs that only use the system resolver. */
  readonly resolvConf: string;
}

/** site-a.test's DMARC policy in the `dkim` topology. */
export const SITE_A_DMARC = 'v=DMARC1; p=reject';

/** A running topology; always {@link stop} it. */
export interface Topology {
  readonly ports: TopologyPorts;
  readonly dns: KnotUnbound;
  readonly siteA: Site;
  readonly siteB: Site;
  /** Between Postfix A (and Sendmail) and Postfix B's INBOUND listener. */
  readonly tap: SmtpTap;
  /** Where Postfix B delivers site-b.test mail. */
  readonly mailbox: SmtpSink;
  /** Where Postfix A delivers every domain but site-b.test. */
  readonly world: SmtpSink;
  readonly sendmail: SendmailInstance | undefined;
  /** With {@link TopologyOptions.dkim}. */
  readonly dkim: DkimMilters | undefined;
  /** Stops everything (bounded) and removes every directory. Safe to call twice. */
  stop(): Promise<void>;
}

const REPOSITORY_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLES = join(REPOSITORY_ROOT, 'examples');

/**
 * Replaces every `${NAME}` in an example file. A placeholder without a value throws, so an example that grows
 * a placeholder the suite does not know fails loudly instead of yielding a half-filled configuration.
 */
function fillPlaceholders(text: string, values: Readonly<Record<string, string>>, file: string): string {
  return text.replace(/\$\{([A-Z_]+)\}/g, (_whole, name: string) => {
    const value = values[name];
    if (value === undefined) throw new HarnessError('INVALID_ARGUMENT', `${file}: no value for placeholder \${${name}}`);
    return value;
  });
}

function readExample(path: string): string {
  return readFileSync(join(EXAMPLES, path), 'utf8');
}

/** The `name = value` settings of a main.cf text (continuation lines joined, comments dropped). */
function mainCfSettings(text: string): Record<string, string> {
  const settings: Record<string, string> = {};
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    if (/^\s/.test(line)) {
      if (last === undefined) throw new HarnessError('INVALID_ARGUMENT', `main.cf: continuation line without a setting: ${line}`);
      settings[last] = `${settings[last]} ${line.trim()}`;
      continue;
    }
    const match = /^([A-Za-z0-9_]+)\s*=\s*(.*)$/.exec(line);
    if (match?.[1] === undefined) throw new HarnessError('INVALID_ARGUMENT', `main.cf: not a setting: ${line}`);
    last = match[1];
    settings[last] = (match[2] ?? '').trim();
  }
  return settings;
}

/** The service lines of a master.cf text (with their `-o` continuation lines), comments and blanks dropped. */
function masterCfLines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));
}

/**
 * unbound keeps records 5 s, so a record removed from knot is gone from it within seconds (muse-milter's own
 * cache may keep it longer, dns.minTtl: the tests that need a fresh lookup restart the milter), and "no such
 * record" 60 s (the zones' SOA minimum), so a retry soon after a first lookup is answered from the caches.
 */
const RESOLVER_CACHE = { maxTtl: 5, maxNegativeTtl: 60 } as const;

/** Postfix retries soon: the queue is scanned every second and deferred mail waits 1-2 s. */
const FAST_RETRY = { queue_run_delay: '1s', minimal_backoff_time: '1s', maximal_backoff_time: '2s' } as const;

/** Runs `muse-milter genkey` as an administrator would; returns the zone lines it wrote. */
async function genkey(domain: string, dir: string, policy: 'testing' | 'opportunistic' | 'enforce'): Promise<string> {
  const result = await runCommand(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'genkey', '--domain', domain, '--dir', dir, '--policy', policy],
    { cwd: REPOSITORY_ROOT, timeoutMs: 60_000 },
  );
  if (result.code !== 0) throw new HarnessError('START_FAILED', `genkey --domain ${domain} exited ${result.code}: ${result.stderr}`);
  return readFileSync(join(dir, `${domain}.zone`), 'utf8');
}

/** Cleanup steps run in reverse order of the starts. */
class Teardown {
  private readonly steps: Array<() => Promise<void> | void> = [];

  add(step: () => Promise<void> | void): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch {
        // Best effort: one failing stop must not keep the others from running.
      }
    }
  }
}

/** The ports one muse-milter instance is configured with. */
interface MilterPorts {
  /** milter.listen. */
  readonly milter: number;
  readonly metrics: number;
  /** mixedRecipients.reinject.port: the MTA's re-injection listener. */
  readonly reinject: number;
}

/**
 * Writes `dataDir`/muse.yaml, examples/muse.yaml as an administrator adapts it: the site's domain and paths, the
 * test's ports and resolver, partner.example required; the tests run the daemon as root without switching account.
 * Returns the daemon, not started.
 */
function configureMilter(dataDir: string, domain: string, privateKeyPath: string, ports: MilterPorts, dnsPort: number, name: string): MuseDaemon {
  const configPath = join(dataDir, 'muse.yaml');
  const config = editConfigText(readExample('muse.yaml'), [
    { path: ['dataDirectory'], value: dataDir },
    { path: ['site', 'domain'], value: domain },
    { path: ['site', 'keyFile'], value: privateKeyPath },
    { path: ['milter', 'listen'], value: `inet:127.0.0.1:${ports.milter}` },
    { path: ['dns', 'servers'], value: [`127.0.0.1:${dnsPort}`] },
    { path: ['policy', 'domains'], value: { [DOMAINS.required]: 'required' } },
    { path: ['mixedRecipients', 'reinject', 'port'], value: ports.reinject },
    { path: ['metrics', 'listen'], value: `127.0.0.1:${ports.metrics}` },
    { path: ['user'] },
    { path: ['group'] },
  ]);
  writeFileSync(configPath, config);
  return new MuseDaemon({ configPath, logPath: join(dataDir, 'milter.log'), milterPort: ports.milter, name });
}

/** Writes site files and the milter configuration (examples/muse.yaml); returns the site's key facts. */
async function prepareSite(
  workDir: string,
  label: string,
  domain: string,
  ports: SitePorts,
  dnsPort: number,
  policy: 'opportunistic' | 'enforce' = 'opportunistic',
) {
  const dataDir = join(workDir, label);
  mkdirSync(dataDir, { mode: 0o700 });
  const keyDir = join(dataDir, 'keys');
  const zone = await genkey(domain, keyDir, policy);
  const privateKeyPath = join(keyDir, `${domain}.private.asc`);
  const key = await loadSitePrivateKey(privateKeyPath, 'refuse');
  const milter = configureMilter(dataDir, domain, privateKeyPath, ports, dnsPort, `muse-milter of ${domain}`);
  return {
    zone,
    files: {
      domain,
      fingerprint: key.fingerprint,
      privateKeyPath,
      publicKeyArmored: readFileSync(join(keyDir, `${domain}.public.asc`), 'utf8'),
      dataDir,
      ports,
      milter,
    },
  };
}

/** Postfix for one site: examples/postfix/main.cf and master.cf, plus the site's routing and fast retries. */
function startSitePostfix(
  domain: string,
  ports: SitePorts,
  routing: Readonly<Record<string, string>>,
  dkim?: DkimRole,
  forwarding = false,
): Promise<PostfixInstance> {
  const mainCf = mainCfSettings(fillPlaceholders(readExample('postfix/main.cf'), {}, 'examples/postfix/main.cf'));
  // The example names the unix socket inside Debian's Postfix jail; the topology's milters listen on loopback ports.
  mainCf.smtpd_milters = `inet:127.0.0.1:${ports.milter}`;
  const inboundOptions: string[] = [];
  if (dkim !== undefined) {
    const opendkimCf = mainCfSettings(
      fillPlaceholders(
        readExample('postfix/opendkim.cf'),
        { MILTER_PORT: String(ports.milter), DKIM_SIGN_PORT: String(dkim.ports.dkimSign), DKIM_VERIFY_PORT: String(dkim.ports.dkimVerify), DMARC_PORT: String(dkim.ports.dmarc) },
        'examples/postfix/opendkim.cf',
      ),
    );
    const names = dkim.role === 'sign' ? ['smtpd_milters', 'non_smtpd_milters'] : ['muse_inbound_milters'];
    for (const name of names) {
      const value = opendkimCf[name];
      if (value === undefined) throw new HarnessError('INVALID_ARGUMENT', `examples/postfix/opendkim.cf: no ${name}`);
      mainCf[name] = value;
    }
    // opendkim.cf: the INBOUND listener runs the verifiers before muse-milter.
    if (dkim.role === 'verify') inboundOptions.push('  -o smtpd_milters=$muse_inbound_milters');
  }
  const masterValues = {
    SUBMISSION_PORT: `127.0.0.1:${ports.submission}`,
    INBOUND_PORT: `127.0.0.1:${ports.inbound}`,
    REINJECT_PORT: String(ports.reinject),
  };
  const masterLines = masterCfLines(fillPlaceholders(readExample('postfix/master.cf'), masterValues, 'examples/postfix/master.cf'));
  if (forwarding) {
    // forwarding.cf step 1: the INBOUND listener hands every message to the second pass.
    inboundOptions.push(`  -o content_filter=muse-forward:[127.0.0.1]:${ports.forward}`);
    masterLines.push(...masterCfLines(fillPlaceholders(readExample('postfix/forwarding.cf'), { FORWARD_PORT: String(ports.forward) }, 'examples/postfix/forwarding.cf')));
  }
  if (inboundOptions.length > 0) {
    const inbound = masterLines.findIndex((line) => line.startsWith(`${masterValues.INBOUND_PORT} `));
    if (inbound < 0) throw new HarnessError('INVALID_ARGUMENT', 'examples/postfix/master.cf: no INBOUND listener');
    masterLines.splice(inbound + 1, 0, ...inboundOptions);
  }
  return PostfixInstance.start({
    smtpPort: ports.smtp,
    settings: { ...mainCf, myhostname: `mta.${domain}`, mydomain: domain, ...FAST_RETRY, ...routing },
    masterLines,
  });
}

/** Which part of examples/postfix/opendkim.cf a site's Postfix takes: the signer's or the verifiers'. */
interface DkimRole {
  readonly role: 'sign' | 'verify';
  readonly ports: TopologyPorts;
}

/** A started component and how to stop it. */
interface Started<T> {
  readonly value: T;
  stop(): Promise<void>;
}

/**
 * Waits for every start; registers the stop of each one that succeeded, then throws the first failure (so
 * the caller's teardown stops what did start) or returns the values in order.
 */
async function startAll<T extends readonly unknown[]>(teardown: Teardown, starts: { readonly [K in keyof T]: Promise<Started<T[K]>> }): Promise<T> {
  const settled = await Promise.allSettled(starts as ReadonlyArray<Promise<Started<unknown>>>);
  const values: unknown[] = [];
  let failure: unknown;
  for (const outcome of settled) {
    if (outcome.status === 'fulfilled') {
      teardown.add(() => outcome.value.stop());
      values.push(outcome.value.value);
    } else {
      failure ??= outcome.reason;
    }
  }
  if (failure !== undefined) throw failure;
  return values as unknown as T;
}

/** A start whose component stops with `stop`. */
function started<T>(value: T, stop: () => Promise<unknown>): Started<T> {
  return { value, stop: async () => void (await stop()) };
}

/**
 * An example .mc file with each filter socket it names (`S=` up to the comma) pointed at a loopback port, as the
 * topology's milters listen there, and its `${NAME}` placeholders filled; throws when the example no longer
 * names one of `sockets`.
 */
function sendmailExample(path: string, sockets: Readonly<Record<string, number>>, values: Readonly<Record<string, string>> = {}): string {
  let text = fillPlaceholders(readExample(path), values, `examples/${path}`);
  for (const [socket, port] of Object.entries(sockets)) {
    if (!text.includes(`S=${socket},`)) throw new HarnessError('INVALID_ARGUMENT', `examples/${path}: no S=${socket} to replace`);
    text = text.replace(`S=${socket},`, `S=inet:${port}@127.0.0.1,`);
  }
  return text.replace(/\n*$/, '\n');
}

/** The sockets examples/sendmail/dkim.mc names, pointed at the topology's OpenDKIM and OpenDMARC. */
function dkimMcSockets(ports: TopologyPorts): Record<string, number> {
  return {
    'local:/run/opendkim/opendkim.sock': ports.dkimSign,
    'local:/run/opendkim/verify.sock': ports.dkimVerify,
    'local:/run/opendmarc/opendmarc.sock': ports.dmarc,
  };
}

/** The ports of the listeners the Sendmail examples add; each one not given gets a free port. */
interface SendmailListenerPorts {
  /** The REINJECT listener of examples/sendmail/muse.mc. */
  readonly reinject?: number;
  /** The INBOUND listener of examples/sendmail/dkim.mc. */
  readonly inbound?: number;
}

/**
 * examples/sendmail/muse.mc with its filter pointed at `milterPort` and its REINJECT listener on
 * `listeners.reinject`; with `dkim`, examples/sendmail/dkim.mc after it, its INBOUND listener on `listeners.inbound`.
 * A listener the caller does not use still listens, on a free port: the examples are taken whole.
 */
async function sendmailMilterLines(ports: TopologyPorts, milterPort: number, dkim: boolean, listeners: SendmailListenerPorts = {}): Promise<string> {
  const museMc = sendmailExample('sendmail/muse.mc', { 'unix:/var/lib/muse-milter/milter.sock': milterPort }, { REINJECT_PORT: String(listeners.reinject ?? (await freePort())) });
  if (!dkim) return museMc;
  const dkimMc = sendmailExample('sendmail/dkim.mc', dkimMcSockets(ports), { INBOUND_PORT: String(listeners.inbound ?? (await freePort())) });
  return `${museMc}${dkimMc}`;
}

/**
 * Sendmail with examples/sendmail/muse.mc pointing at site A's milter, relaying everything through the tap;
 * with `dkim`, examples/sendmail/dkim.mc after it (the DKIM signer after muse-milter). Site A's milter re-injects
 * into Postfix A, so muse.mc's REINJECT listener here stays unused.
 */
async function startSendmail(ports: TopologyPorts, dkim: boolean): Promise<SendmailInstance> {
  return SendmailInstance.start({
    smtpPort: ports.sendmail,
    relayPort: ports.tap,
    hostname: `sm.${DOMAINS.siteA}`,
    // The harness's .mc has {{MILTERS}} after DAEMON_OPTIONS and before the MAILER lines, where muse.mc
    // says its lines go; dkim.mc's go after muse.mc's.
    vars: { MILTERS: await sendmailMilterLines(ports, ports.a.milter, dkim) },
  });
}

/** A Sendmail for site B, from {@link startReceivingSendmail}. */
export interface ReceivingSendmail {
  readonly sendmail: SendmailInstance;
  /** The INBOUND listener of examples/sendmail/dkim.mc: OpenDKIM verifying, OpenDMARC, then muse-milter B. */
  readonly inboundPort: number;
}

/**
 * A Sendmail for site B beside its Postfix, in a topology started with `dkim`: examples/sendmail/muse.mc pointing
 * at site B's milter, then examples/sendmail/dkim.mc with its INBOUND listener on a port of its own; it relays
 * everything to the mailbox sink. Stop it before the topology.
 */
export async function startReceivingSendmail(topology: Topology): Promise<ReceivingSendmail> {
  const inboundPort = await freePort();
  const sendmail = await SendmailInstance.start({
    smtpPort: await freePort(),
    relayPort: topology.ports.mailbox,
    hostname: `sm.${DOMAINS.siteB}`,
    vars: { MILTERS: await sendmailMilterLines(topology.ports, topology.ports.b.milter, true, { inbound: inboundPort }) },
  });
  return { sendmail, inboundPort };
}

/** A site that runs Sendmail and no Postfix, from {@link startSendmailSite}. */
export interface SendmailSite {
  readonly sendmail: SendmailInstance;
  /** Its own muse-milter for site-a.test (site A's key), which re-injects into {@link reinjectPort}. */
  readonly milter: MuseDaemon;
  /** Where the site's users hand in mail: the harness's MTA listener, outbound by the client address. */
  readonly smtpPort: number;
  /** The REINJECT listener of examples/sendmail/muse.mc. */
  readonly reinjectPort: number;
  /** Stops both and removes the directory. Safe to call twice. */
  stop(): Promise<void>;
}

/** The host name of the {@link SendmailSite}'s Sendmail. */
export const SENDMAIL_SITE_HOSTNAME = `sm-only.${DOMAINS.siteA}`;

/**
 * site-a.test as a Sendmail-only site, in a topology started with `dkim`: a muse-milter of its own (examples/muse.yaml
 * as for the sites, with site A's key, its mixedRecipients.reinject.port pointed at this Sendmail's REINJECT listener),
 * and a Sendmail with examples/sendmail/muse.mc and dkim.mc pointing at it and at site A's OpenDKIM signer. Like
 * Postfix A, it sends site-b.test mail through the tap and everything else to the world sink. Stop it before the
 * topology.
 */
export async function startSendmailSite(topology: Topology): Promise<SendmailSite> {
  if (topology.dkim === undefined) throw new HarnessError('INVALID_ARGUMENT', 'a Sendmail-only site needs the DKIM signer: start the topology with dkim');
  const teardown = new Teardown();
  const dir = makeInstanceDir('sendmail-site');
  const unregisterExitCleanup = registerExitCleanup(() => removeInstanceDir(dir));
  teardown.add(() => {
    removeInstanceDir(dir);
    unregisterExitCleanup();
  });
  try {
    const dataDir = join(dir, 'milter');
    mkdirSync(dataDir, { mode: 0o700 });
    const ports: MilterPorts = { milter: await freePort(), metrics: await freePort(), reinject: await freePort() };
    const smtpPort = await freePort();
    const milter = configureMilter(dataDir, DOMAINS.siteA, topology.siteA.privateKeyPath, ports, topology.ports.unbound, `muse-milter of the Sendmail-only ${DOMAINS.siteA}`);
    const milters = await sendmailMilterLines(topology.ports, ports.milter, true, { reinject: ports.reinject });
    const [sendmail] = await startAll<[SendmailInstance, undefined]>(teardown, [
      SendmailInstance.start({
        smtpPort,
        relayPort: topology.ports.world,
        route: { domains: [DOMAINS.siteB], port: topology.ports.tap },
        hostname: SENDMAIL_SITE_HOSTNAME,
        vars: { MILTERS: milters },
      }).then((instance) => started(instance, () => instance.stop())),
      milter.start().then(() => started(undefined, () => milter.stop())),
    ]);
    return { sendmail, milter, smtpPort, reinjectPort: ports.reinject, stop: () => teardown.run() };
  } catch (error) {
    await teardown.run();
    throw error;
  }
}

/**
 * Starts the whole topology: keys by `genkey`, knot + unbound, the sinks and the tap, both milters, both
 * Postfix instances, and Sendmail if asked. Throws `START_FAILED` (after stopping whatever had started) when
 * any component does not come up.
 */
/** Starts of a topology with fresh ports when a port was taken by another program before its daemon bound it. */
const PORT_TRIES = 3;

export async function startTopology(options: TopologyOptions = {}): Promise<Topology> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startTopologyOn(options, await allocateTopologyPorts());
    } catch (error) {
      if (attempt >= PORT_TRIES || !isAddressInUse(error)) throw error;
    }
  }
}

async function startTopologyOn(options: TopologyOptions, ports: TopologyPorts): Promise<Topology> {
  const teardown = new Teardown();
  const workDir = makeInstanceDir('e2e');
  const unregisterExitCleanup = registerExitCleanup(() => removeInstanceDir(workDir));
  teardown.add(() => {
    removeInstanceDir(workDir);
    unregisterExitCleanup();
  });
  try {
    const dkimDir = join(workDir, 'dkim');
    const [a, b, bogusZone, dkimKey] = await Promise.all([
      // A forward to site A must stay encrypted: there site A says so in DNS (p=enforce).
      prepareSite(workDir, 'site-a', DOMAINS.siteA, ports.a, ports.unbound, options.forwarding === true ? 'enforce' : 'opportunistic'),
      prepareSite(workDir, 'site-b', DOMAINS.siteB, ports.b, ports.unbound),
      genkey(DOMAINS.bogus, join(workDir, 'bogus-keys'), 'opportunistic'),
      options.dkim === true ? makeDkimKey(DOMAINS.siteA, dkimDir) : Promise.resolve(undefined),
    ]);
    const siteARecords = dkimKey === undefined ? a.zone : `${a.zone}\n${dkimKey.zoneRecords}\n_dmarc TXT "${SITE_A_DMARC}"\n`;
    const dns = await startKnotUnbound(
      [
        { name: DOMAINS.siteA, trust: 'signed', records: siteARecords },
        { name: DOMAINS.siteB, trust: 'signed', records: b.zone },
        { name: DOMAINS.keyless, trust: 'signed', records: '' },
        { name: DOMAINS.required, trust: 'signed', records: '' },
        { name: DOMAINS.bogus, trust: 'bogus', records: bogusZone },
      ],
      { knot: ports.knot, unbound: ports.unbound },
      RESOLVER_CACHE,
    );
    teardown.add(() => dns.stop());
    const mailbox = await SmtpSink.start({ port: ports.mailbox, hostname: 'mailbox.site-b.test' });
    teardown.add(() => mailbox.close());
    // The world announces DSN, so Postfix passes the senders' DSN requests on and the tests can see them.
    const world = await SmtpSink.start({ port: ports.world, hostname: 'world.test', dsn: true });
    teardown.add(() => world.close());
    const tap = await SmtpTap.start({ port: ports.tap, upstreamPort: ports.b.inbound });
    teardown.add(() => tap.close());
    let dkim: DkimMilters | undefined;
    if (dkimKey !== undefined) {
      const forwarder = await startPort53Forwarder(ports.unbound);
      teardown.add(() => forwarder.close());
      const [signer, verifier, dmarc] = await startAll<[MilterDaemon, MilterDaemon, MilterDaemon]>(teardown, [
        startDkimSigner(dkimDir, ports.dkimSign, DOMAINS.siteA, dkimKey).then((d) => started(d, () => d.stop())),
        startDkimVerifier(dkimDir, ports.dkimVerify, DOMAINS.siteB, ports.unbound).then((d) => started(d, () => d.stop())),
        startDmarc(dkimDir, ports.dmarc, DOMAINS.siteB, forwarder.address).then((d) => started(d, () => d.stop())),
      ]);
      dkim = { signer, verifier, dmarc, resolvConf: join(dkimDir, 'opendmarc-resolv.conf') };
    }

    // The daemons do not depend on each other to start (an MTA answers 4xx until its milter is up), so they
    // start together; each one that did start is stopped again if another did not.
    const [postfixA, postfixB, sendmail] = await startAll<[PostfixInstance, PostfixInstance, SendmailInstance | undefined, undefined, undefined]>(teardown, [
      startSitePostfix(DOMAINS.siteA, ports.a, {
        // site-b.test through the tap; everything else to the world sink.
        transport_maps: `inline:{ ${DOMAINS.siteB}=smtp:[127.0.0.1]:${ports.tap} }`,
        relayhost: `[127.0.0.1]:${ports.world}`,
      }, options.dkim === true ? { role: 'sign', ports } : undefined).then((postfix) => started(postfix, () => postfix.stop())),
      startSitePostfix(DOMAINS.siteB, ports.b, {
        relay_domains: DOMAINS.siteB,
        transport_maps: `inline:{ ${DOMAINS.siteB}=smtp:[127.0.0.1]:${ports.mailbox} }`,
        ...(options.forwarding === true
          ? {
              virtual_alias_maps: `inline:{ ${FORWARDED_ALIAS}=${FORWARD_TARGET} }`,
              transport_maps: `inline:{ ${DOMAINS.siteB}=smtp:[127.0.0.1]:${ports.mailbox}, ${DOMAINS.siteA}=smtp:[127.0.0.1]:${ports.world} }`,
            }
          : {}),
      }, options.dkim === true ? { role: 'verify', ports } : undefined, options.forwarding === true).then((postfix) => started(postfix, () => postfix.stop())),
      (options.sendmail === true ? startSendmail(ports, options.dkim === true) : Promise.resolve(undefined)).then((sendmail) => started(sendmail, async () => sendmail?.stop())),
      a.files.milter.start().then(() => started(undefined, () => a.files.milter.stop())),
      b.files.milter.start().then(() => started(undefined, () => b.files.milter.stop())),
    ]);

    let stopped = false;
    return {
      ports,
      dns,
      siteA: { ...a.files, postfix: postfixA },
      siteB: { ...b.files, postfix: postfixB },
      tap,
      mailbox,
      world,
      sendmail,
      dkim,
      async stop() {
        if (stopped) return;
        stopped = true;
        await teardown.run();
      },
    };
  } catch (error) {
    await teardown.run();
    throw error;
  }
}
