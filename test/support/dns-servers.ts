/**
 * DNS servers for tests.
 *
 * 1. {@link startFakeDns}: a dns2 authoritative server on loopback (UDP and TCP on the same ephemeral port) whose
 *    answers a test scripts: zones, delays, silence, SERVFAIL, hand-made broken messages.
 * 2. {@link startKnotUnbound}: the real thing, as INFRA.md §6 describes: knot serving and signing zones, unbound
 *    validating in front of it, both on loopback in a temporary directory. It throws when either cannot start.
 */
import { freePort, isAddressInUse } from './free-port.ts';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { createTCPServer, createUDPServer, Packet } from 'dns2';
import type { Resource } from 'dns2';
import { DnsError, DnsTransport, parseServerAddress } from '../../src/dns/index.ts';
import { HarnessError } from './errors.ts';
import { makeInstanceDir, removeInstanceDir } from './instance-dir.ts';
import { runCommand, startDaemon, waitFor, type CommandResult, type DaemonProcess } from './processes.ts';

// ---------------------------------------------------------------------------------------------------------------
// Fake authoritative server (dns2)

/** A query the fake server received. */
export interface ReceivedQuery {
  readonly via: 'udp' | 'tcp';
  readonly packet: Packet;
}

/** What a handler returns: a message, raw bytes, several of them (sent in order), or undefined for silence. */
export type FakeReply = Packet | Buffer | readonly (Packet | Buffer)[] | undefined;

/** Decides the reply to one query. */
export type FakeHandler = (query: Packet, via: 'udp' | 'tcp') => FakeReply | Promise<FakeReply>;

/** A running fake server. */
export interface FakeDnsServer {
  /** `127.0.0.1:port` or `[::1]:port`, as `--dns` takes it. */
  readonly address: string;
  readonly port: number;
  /** Every query received, in order. */
  readonly queries: ReceivedQuery[];
  /** Stops both listeners and drops open TCP connections. */
  close(): Promise<void>;
}

/**
 * Starts a dns2 server on an ephemeral port of `host`, UDP and TCP on the same port (dns2's own `createServer`
 * gives them different ports, LIBRARIES.md §3).
 */
export async function startFakeDns(handler: FakeHandler, host = '127.0.0.1'): Promise<FakeDnsServer> {
  const queries: ReceivedQuery[] = [];
  const sockets = new Set<Socket>();
  const respond = async (query: Packet, via: 'udp' | 'tcp', send: (reply: Packet | Buffer) => unknown) => {
    queries.push({ via, packet: query });
    const replies = await handler(query, via);
    for (const reply of Array.isArray(replies) ? replies : replies === undefined ? [] : [replies]) await send(reply);
  };
  for (let attempt = 0; attempt < 5; attempt++) {
    const udp = createUDPServer({ type: host.includes(':') ? 'udp6' : 'udp4' });
    udp.on('request', (query: Packet, send: (reply: Packet | Buffer) => unknown) => {
      respond(query, 'udp', send).catch(() => undefined);
    });
    udp.on('requestError', () => undefined);
    await udp.listen(0, host);
    const port = udp.address().port;
    const tcp = createTCPServer();
    tcp.on('request', (query: Packet, send: (reply: Packet | Buffer) => unknown) => {
      respond(query, 'tcp', send).catch(() => undefined);
    });
    tcp.on('requestError', () => undefined);
    tcp.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    const listening = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, host, () => resolve(true));
    });
    if (!listening) {
      udp.close();
      continue;
    }
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    return {
      address,
      port,
      queries,
      close: async () => {
        for (const socket of sockets) socket.destroy();
        await Promise.all([
          new Promise<void>((resolve) => udp.close(() => resolve())),
          new Promise<void>((resolve) => tcp.close(() => resolve())),
        ]);
      },
    };
  }
  throw new Error(`fake DNS: no port free for both UDP and TCP on ${host}`);
}

/** A record the fake zone serves: TXT takes character-strings, other types raw RDATA. */
export interface FakeRecord {
  readonly name: string;
  readonly type: number;
  readonly ttl?: number;
  readonly data: readonly (string | Buffer)[] | Buffer;
}

/** Options of a scripted reply. */
export interface ReplyOptions {
  readonly rcode?: number;
  readonly answers?: readonly FakeRecord[];
  /** Adds an SOA for the zone `test.` with this TTL and MINIMUM to the authority section. */
  readonly soaTtl?: number;
  readonly ad?: boolean;
}

/** Builds a response to `query` with dns2's codec. */
export function reply(query: Packet, options: ReplyOptions = {}): Packet {
  const response = Packet.createResponseFromRequest(query);
  response.header.aa = 1;
  response.header.rcode = options.rcode ?? Packet.RCODE.NOERROR;
  (response.header as { ad?: number }).ad = options.ad ? 1 : 0;
  for (const record of options.answers ?? []) {
    response.answers.push(resource(record));
  }
  if (options.soaTtl !== undefined) {
    response.authorities.push({
      name: 'test',
      type: Packet.TYPE.SOA,
      class: Packet.CLASS.IN,
      ttl: options.soaTtl,
      primary: 'ns.test',
      admin: 'hostmaster.test',
      serial: 1,
      refresh: 3600,
      retry: 600,
      expiration: 86400,
      minimum: options.soaTtl,
    } as Resource);
  }
  return response;
}

function resource(record: FakeRecord): Resource {
  return {
    name: record.name,
    type: record.type,
    class: Packet.CLASS.IN,
    ttl: record.ttl ?? 300,
    data: Buffer.isBuffer(record.data) ? record.data : [...record.data],
  } as Resource;
}

/**
 * A handler serving `records` like an authoritative server: the records of the asked name and type, NODATA when the
 * name has other records, NXDOMAIN otherwise; negative answers carry an SOA with TTL `negativeTtl`.
 */
export function zoneHandler(records: readonly FakeRecord[], options: { ad?: boolean; negativeTtl?: number } = {}): FakeHandler {
  return (query) => {
    const question = query.questions[0];
    if (!question) return undefined;
    const name = question.name.toLowerCase();
    const atName = records.filter((r) => r.name.toLowerCase() === name);
    const answers = atName.filter((r) => r.type === question.type);
    const negative = { soaTtl: options.negativeTtl ?? 60, ad: options.ad ?? false };
    if (answers.length > 0) return reply(query, { answers, ad: options.ad ?? false });
    if (atName.length > 0) return reply(query, negative);
    return reply(query, { ...negative, rcode: Packet.RCODE.NXDOMAIN });
  };
}

/** A raw answer record for {@link rawReply}: the RDATA octets are written as given, valid or not. */
export interface RawRecord {
  readonly name: string;
  readonly type: number;
  readonly ttl?: number;
  readonly rdata: Buffer;
}

/**
 * Writes a response by hand, so a test can send what dns2 would refuse to encode (TXT RDATA that overruns itself,
 * a wrong ID, a wrong question).
 */
export function rawReply(
  query: Packet,
  options: { answers?: readonly RawRecord[]; id?: number; questionName?: string; flags?: number } = {},
): Buffer {
  const question = query.questions[0];
  const name = options.questionName ?? question?.name ?? '';
  const header = Buffer.alloc(12);
  header.writeUInt16BE(options.id ?? query.header.id, 0);
  header.writeUInt16BE(options.flags ?? 0x8500, 2); // QR, AA, RD
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(options.answers?.length ?? 0, 6);
  const parts = [header, wireName(name), u16(question?.type ?? 16), u16(Packet.CLASS.IN)];
  for (const rr of options.answers ?? []) {
    const ttl = Buffer.alloc(4);
    ttl.writeUInt32BE(rr.ttl ?? 300);
    parts.push(wireName(rr.name), u16(rr.type), u16(Packet.CLASS.IN), ttl, u16(rr.rdata.length), rr.rdata);
  }
  return Buffer.concat(parts);
}

function wireName(name: string): Buffer {
  const labels = name.split('.').filter((label) => label !== '');
  return Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])), Buffer.from([0])]);
}

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value);
  return b;
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------------------------
// knot (authoritative, signing) + unbound (validating), INFRA.md §6

/** How knot serves a zone and unbound judges it. */
export type ZoneTrust =
  /** Signed by knot, unbound holds the right DS: answers validate (AD). */
  | 'signed'
  /** Not signed and no anchor: answers are insecure (no AD). */
  | 'unsigned'
  /** Signed by knot, unbound holds a wrong DS: every answer is bogus (SERVFAIL). */
  | 'bogus';

/** One zone for knot. */
export interface TestZone {
  /** Zone apex, e.g. `example.test`. */
  readonly name: string;
  readonly trust: ZoneTrust;
  /** Zone-file text below the SOA and NS records (absolute or relative owner names). */
  readonly records: string;
}

/** Ports of {@link startKnotUnbound}. */
export interface KnotUnboundPorts {
  readonly knot: number;
  readonly unbound: number;
}

/** How long unbound keeps answers, seconds (its cache-max-ttl and cache-max-negative-ttl). */
export interface ResolverCacheLimits {
  /** Default 5: a changed record is seen within seconds. */
  readonly maxTtl: number;
  /** Default 1. */
  readonly maxNegativeTtl: number;
}

const DEFAULT_CACHE_LIMITS: ResolverCacheLimits = { maxTtl: 5, maxNegativeTtl: 1 };

/** A running knot + unbound pair. */
export interface KnotUnbound {
  /** `127.0.0.1:<port>` of unbound, the validating resolver to give as `--dns`. */
  readonly resolver: string;
  /** `127.0.0.1:<port>` of knot, authoritative only (never sets AD). */
  readonly authoritative: string;
  /** The DS records unbound trusts (keymgr's for signed zones, a wrong one for bogus zones). */
  readonly trustAnchors: string;
  /**
   * Stops unbound alone (SIGTERM, bounded), freeing its port, so clients see the resolver down; knot keeps
   * running. Does nothing if it is already stopped.
   */
  stopResolver(): Promise<void>;
  /**
   * Starts unbound again with the same configuration (empty cache) and waits until it answers, like at
   * start-up. Does nothing if it is running. Throws `START_FAILED` as {@link startKnotUnbound} does.
   */
  startResolver(): Promise<void>;
  /**
   * Runs `knotc -c <knot.conf> ...args` (for example `zone-begin`, `zone-unset`, `zone-commit`: knot re-signs a
   * changed zone by itself). Resolves with the result whatever the exit status; bounded to 10 s.
   */
  knotc(args: readonly string[]): Promise<CommandResult>;
  /**
   * Replaces the records of the zone `name` (what {@link TestZone.records} gave at start) and has knot load the new
   * zone file (`zone-reload`, blocking; knot signs a signed zone's changes and raises the serial itself). unbound
   * may answer from its cache until cache-max-ttl has passed: wait for the change to show there.
   * @throws HarnessError `COMMAND_FAILED` when the zone is not one of this instance's or knot refuses the file
   */
  setZoneRecords(name: string, records: string): Promise<void>;
  /** Stops both daemons and removes the instance directory. */
  stop(): Promise<void>;
}

/** Bound on each daemon becoming ready (knot signs on first start). */
const READY_TIMEOUT_MS = 20_000;

/** Tries of {@link startKnotUnbound} with fresh ports when a picked port was taken before the daemon bound it. */
const PORT_TRIES = 3;

/**
 * Starts knot serving (and signing) `zones` on 127.0.0.1, and unbound validating in front of it with the trust
 * anchors keymgr prints, `local-zone: "test." nodefault` (else unbound answers every .test name itself) and
 * every other name forwarded to knot, so nothing leaves loopback. knot runs as user `knot`.
 * @param ports where they listen; default: ports free for UDP and TCP, picked by the kernel (test/support/free-port.ts),
 *   picked again when one was taken before the daemon could bind it
 * @param cacheLimits how long unbound keeps answers (default 5 s, negative 1 s)
 * @throws HarnessError `START_FAILED` (with the daemon's output) when either cannot start or does not answer
 */
export async function startKnotUnbound(
  zones: readonly TestZone[],
  ports?: KnotUnboundPorts,
  cacheLimits: ResolverCacheLimits = DEFAULT_CACHE_LIMITS,
): Promise<KnotUnbound> {
  if (ports !== undefined) return startKnotUnboundOn(zones, ports, cacheLimits);
  for (let attempt = 1; ; attempt++) {
    const picked = { knot: await freePort({ udp: true }), unbound: await freePort({ udp: true }) };
    try {
      return await startKnotUnboundOn(zones, picked, cacheLimits);
    } catch (error) {
      if (attempt >= PORT_TRIES || !isAddressInUse(error)) throw error;
    }
  }
}

async function startKnotUnboundOn(zones: readonly TestZone[], ports: KnotUnboundPorts, cacheLimits: ResolverCacheLimits): Promise<KnotUnbound> {
  const dir = makeInstanceDir('dns');
  let knot: DaemonProcess | undefined;
  let unbound: DaemonProcess | undefined;
  const stopResolver = async (): Promise<void> => {
    await unbound?.stop(5_000);
    unbound = undefined;
  };
  const stop = async (): Promise<void> => {
    await stopResolver();
    await knot?.stop(5_000);
    removeInstanceDir(dir);
  };
  try {
    const started = await startKnot(dir, zones, ports.knot);
    knot = started.daemon;
    const trustAnchors = await anchorsFor(started.config, zones);
    unbound = await startUnbound(dir, zones, ports, trustAnchors, cacheLimits);
    return {
      resolver: `127.0.0.1:${ports.unbound}`,
      authoritative: `127.0.0.1:${ports.knot}`,
      trustAnchors,
      stopResolver,
      async startResolver() {
        unbound ??= await startUnbound(dir, zones, ports, trustAnchors, cacheLimits);
      },
      knotc: (args) => runCommand('knotc', ['-c', started.config, ...args], { timeoutMs: 10_000 }),
      async setZoneRecords(name, records) {
        const zone = zones.find((z) => z.name === name);
        if (zone === undefined) throw new HarnessError('COMMAND_FAILED', `no zone ${name} in this knot instance`);
        const file = join(dir, 'knot', 'zones', `${name}.zone`);
        // Written beside it, then renamed over it: knot never reads half a file.
        await writeFile(`${file}.new`, zoneFileText({ ...zone, records }));
        await mustSucceed('chown', ['knot:knot', `${file}.new`]);
        await rename(`${file}.new`, file);
        await mustSucceed('knotc', ['-c', started.config, '-b', 'zone-reload', name]);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function startKnot(dir: string, zones: readonly TestZone[], port: number): Promise<{ daemon: DaemonProcess; config: string }> {
  const base = join(dir, 'knot');
  for (const sub of ['zones', 'db', 'run']) await mkdir(join(base, sub), { recursive: true });
  for (const zone of zones) await writeFile(join(base, 'zones', `${zone.name}.zone`), zoneFileText(zone));
  const config = join(base, 'knot.conf');
  await writeFile(
    config,
    [
      'server:',
      `    listen: 127.0.0.1@${port}`,
      // Answers above the payload get TC, so the TCP fallback is exercised for real.
      '    udp-max-payload: 1232',
      `    rundir: "${base}/run"`,
      'log:',
      '  - target: stderr',
      '    any: notice',
      'database:',
      `    storage: "${base}/db"`,
      'policy:',
      '  - id: ci',
      '    algorithm: ed25519',
      // One combined signing key, so one DS is the whole trust anchor.
      '    single-type-signing: on',
      '    nsec3: off',
      'template:',
      '  - id: default',
      `    storage: "${base}/zones"`,
      '    file: "%s.zone"',
      // Never write the signed zone over the source file.
      '    zonefile-sync: -1',
      '    zonefile-load: difference-no-serial',
      '    journal-content: all',
      'zone:',
      ...zones.flatMap((zone) => [
        `  - domain: ${zone.name}`,
        ...(zone.trust === 'unsigned' ? [] : ['    dnssec-signing: on', '    dnssec-policy: ci']),
      ]),
      '',
    ].join('\n'),
  );
  await mustSucceed('chown', ['-R', 'knot:knot', base]);
  const check = await runCommand('knotc', ['-c', config, 'conf-check'], { timeoutMs: 10_000 });
  if (check.code !== 0) throw new HarnessError('START_FAILED', `knot configuration rejected:\n${check.stdout}${check.stderr}`);
  const daemon = await startDaemon('setpriv', ['--reuid=knot', '--regid=knot', '--init-groups', 'knotd', '-c', config]);
  const transport = new DnsTransport({ servers: [parseServerAddress(`127.0.0.1:${port}`)], udpTimeoutMs: 300, tries: 1 });
  // Ready when every zone answers, and signed zones serve their DNSKEY (signing is done).
  try {
    await waitUntil(daemon, 'knotd', async () => {
      for (const zone of zones) {
        const answer = await transport.query(zone.name, zone.trust === 'unsigned' ? 6 : 48);
        if (answer.outcome !== 'answer') return undefined;
      }
      return true;
    });
  } catch (error) {
    await daemon.stop(2_000);
    throw error;
  }
  return { daemon, config };
}

/** The zone file of `zone`: SOA, NS and the name server's address, then its records. */
function zoneFileText(zone: TestZone): string {
  return (
    `$ORIGIN ${zone.name}.\n$TTL 300\n` +
    `@ SOA ns.${zone.name}. hostmaster.${zone.name}. 1 3600 600 86400 60\n@ NS ns.${zone.name}.\nns A 127.0.0.1\n` +
    `${zone.records}\n`
  );
}

/** keymgr's DS records for signed zones, and a DS that matches nothing for bogus ones. */
async function anchorsFor(config: string, zones: readonly TestZone[]): Promise<string> {
  const lines: string[] = [];
  for (const zone of zones) {
    if (zone.trust === 'unsigned') continue;
    const ds = await runCommand('runuser', ['-u', 'knot', '--', 'keymgr', '-c', config, zone.name, 'ds'], { timeoutMs: 10_000 });
    if (ds.code !== 0 || !/ DS /.test(ds.stdout)) {
      throw new HarnessError('START_FAILED', `keymgr ds ${zone.name} failed:\n${ds.stdout}${ds.stderr}`);
    }
    lines.push(zone.trust === 'signed' ? ds.stdout.trim() : `${zone.name}. DS 11111 15 2 ${'0'.repeat(64)}`);
  }
  return `${lines.join('\n')}\n`;
}

async function startUnbound(
  dir: string,
  zones: readonly TestZone[],
  ports: KnotUnboundPorts,
  anchors: string,
  cacheLimits: ResolverCacheLimits,
): Promise<DaemonProcess> {
  const base = join(dir, 'unbound');
  await mkdir(base, { recursive: true });
  await writeFile(join(base, 'anchors'), anchors);
  const config = join(base, 'unbound.conf');
  await writeFile(
    config,
    [
      'server:',
      '    interface: 127.0.0.1',
      `    port: ${ports.unbound}`,
      '    do-ip6: no',
      '    do-daemonize: no',
      '    chroot: ""',
      '    username: ""',
      `    directory: "${base}"`,
      `    pidfile: "${base}/unbound.pid"`,
      '    use-syslog: no',
      '    logfile: ""',
      '    verbosity: 1',
      '    access-control: 127.0.0.0/8 allow',
      // knot is on loopback; by default unbound refuses to ask localhost.
      '    do-not-query-localhost: no',
      '    module-config: "validator iterator"',
      // .test is an RFC 6761 name unbound would otherwise answer itself with NXDOMAIN.
      '    local-zone: "test." nodefault',
      `    trust-anchor-file: "${base}/anchors"`,
      '    qname-minimisation: no',
      `    cache-max-ttl: ${cacheLimits.maxTtl}`,
      `    cache-max-negative-ttl: ${cacheLimits.maxNegativeTtl}`,
      '    edns-buffer-size: 1232',
      ...zones.flatMap((zone) => ['stub-zone:', `    name: "${zone.name}"`, `    stub-addr: 127.0.0.1@${ports.knot}`]),
      'forward-zone:',
      '    name: "."',
      `    forward-addr: 127.0.0.1@${ports.knot}`,
      'remote-control:',
      '    control-enable: no',
      '',
    ].join('\n'),
  );
  const check = await runCommand('unbound-checkconf', [config], { timeoutMs: 10_000 });
  if (check.code !== 0) throw new HarnessError('START_FAILED', `unbound configuration rejected:\n${check.stdout}${check.stderr}`);
  const daemon = await startDaemon('unbound', ['-d', '-c', config]);
  const transport = new DnsTransport({ servers: [parseServerAddress(`127.0.0.1:${ports.unbound}`)], udpTimeoutMs: 300, tries: 1 });
  const probe = zones.find((zone) => zone.trust !== 'bogus');
  try {
    await waitUntil(daemon, 'unbound', async () => {
      if (!probe) return true;
      const answer = await transport.query(probe.name, 6);
      return answer.outcome === 'answer' && answer.authenticData === (probe.trust === 'signed') ? true : undefined;
    });
  } catch (error) {
    // Not handed to the caller, so it must not outlive the failed start.
    await daemon.stop(2_000);
    throw error;
  }
  return daemon;
}

/** Polls `ready` (DNS failures count as not yet) until it is true, failing at once if the daemon exits. */
async function waitUntil(daemon: DaemonProcess, name: string, ready: () => Promise<true | undefined>): Promise<void> {
  try {
    await waitFor(
      async () => {
        const status = daemon.exitStatus();
        if (status) throw new HarnessError('START_FAILED', `${name} exited (${status.code ?? status.signal}):\n${daemon.output()}`);
        return ready().catch((error: unknown) => {
          if (error instanceof DnsError) return undefined;
          throw error;
        });
      },
      { timeoutMs: READY_TIMEOUT_MS, what: `${name} answering`, intervalMs: 100 },
    );
  } catch (error) {
    if (error instanceof HarnessError && error.code === 'START_FAILED') throw error;
    throw new HarnessError('START_FAILED', `${name} did not become ready: ${(error as Error).message}\n${daemon.output()}`, { cause: error });
  }
}

async function mustSucceed(file: string, args: readonly string[]): Promise<void> {
  const result = await runCommand(file, args, { timeoutMs: 10_000 });
  if (result.code !== 0) throw new HarnessError('COMMAND_FAILED', `${file} ${args.join(' ')}: ${result.stderr}`);
}
