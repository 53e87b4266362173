/**
 * `npm run bench`: the whole benchmark in one run (docs in BENCHMARKS.md). It starts a loopback DNS server,
 * the milters under test (muse-milter with one worker per core and with one worker, the no-op milter,
 * OpenDKIM) as separate processes, drives them with the load generator over unix sockets and loopback TCP,
 * measures the memory of one 50 MiB message outbound and one inbound (each in a fresh instance), runs the
 * gpg-per-message baseline and the crypto limit on the same messages, profiles muse-milter, loads a
 * muse-milter with its default limits with ordinary and hostile mail at once (bench/hostile-load.ts), judges
 * the targets and writes bench/results/bench.{json,md,svg}.
 *
 * Options: `--out DIR` (default bench/results), `--scale F` (multiplies every duration and count; 0.2 gives a
 * quick look, and the results are then not written unless --out is given), `--only hostile` (the hostile-load
 * phase alone: its results replace the hostile-load section of the report already in the output directory, and
 * every other figure there is kept).
 */
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { generateKey, type PrivateKey } from 'openpgp';
import { generateSiteKey } from '../src/keys/index.ts';
import { runCryptoLimit } from './baselines/crypto-limit.ts';
import { prepareGpgHome, runGpg, stopGpgAgent, type GpgHome } from './baselines/gpg.ts';
import { startBenchDns } from './dns-server.ts';
import { runHostileLoad } from './hostile-load.ts';
import { buildInboundMessage, checkInbound, INBOUND_SENDER_DOMAIN } from './inbound.ts';
import { runLoad, type LoadOptions, type ReplyCheck } from './load-generator.ts';
import { buildMessage, RECIPIENT_ZONE, recipientDomains, textBody, type BenchMessage } from './messages.ts';
import { ProcessMonitor } from './process-monitor.ts';
import { summariseProfiles, type ProfileSummary } from './profile.ts';
import { findRun, markdown, summariseRuns, svgChart, SYSTEM_NAMES, type BenchReport, hostileMarkdown, type HostileLoadReport, type RunRecord, type System, type TargetResult } from './report.ts';
import { round } from './stats.ts';
import { startMuse } from './targets/muse.ts';
import { startNoop } from './targets/noop.ts';
import { startOpenDkim } from './targets/opendkim.ts';
import type { TargetProcess } from './targets/process.ts';

/** Ports of the benchmark (13500–13599). */
const PORTS = { dns: 13500, museTcp: 13510, noopTcp: 13511, opendkimTcp: 13512, metrics: 13520, metricsOne: 13521, metricsExtra: 13522 } as const;

const CONNECTIONS = 16;
const KiB = 1024;
const MiB = 1024 * 1024;

/** The message sizes measured, with how each is loaded (large messages: a fixed count, fewer connections). */
const SIZES = [
  { label: '4 KiB', bytes: 4 * KiB, seconds: 5, connections: CONNECTIONS, count: undefined, gpgCount: 300 },
  { label: '100 KiB', bytes: 100 * KiB, seconds: 5, connections: CONNECTIONS, count: undefined, gpgCount: 200 },
  { label: '10 MiB', bytes: 10 * MiB, seconds: 0, connections: 2, count: 12, gpgCount: 8 },
  { label: '50 MiB', bytes: 50 * MiB, seconds: 0, connections: 1, count: 3, gpgCount: 3 },
] as const;

type Size = (typeof SIZES)[number];

/** Cold-DNS runs: every message goes to domains never asked before (with keys never seen before). */
const COLD = [
  { size: SIZES[0], domains: 1, count: 600 },
  { size: SIZES[0], domains: 5, count: 150 },
  { size: SIZES[1], domains: 1, count: 200 },
  { size: SIZES[1], domains: 5, count: 60 },
] as const;

const { values: options } = parseArgs({ options: { out: { type: 'string' }, scale: { type: 'string' }, only: { type: 'string' } } });
const SCALE = Number(options.scale ?? '1');
/** The one phase to run (`hostile`), or every phase. */
const ONLY = options.only;
if (ONLY !== undefined && ONLY !== 'hostile') throw new Error(`--only ${ONLY}: the phase that runs alone is "hostile"`);
const OUT_DIR = options.out ?? (SCALE === 1 ? fileURLToPath(new URL('../../bench/results/', import.meta.url)) : undefined);
const scaled = (value: number, floor = 1): number => Math.max(floor, Math.round(value * SCALE));

const bodies = new Map<number, Buffer>();
/** Message `index` of `size` bytes to `domains` recipient domains; bodies are shared between messages of one size. */
function messageFactory(size: number, domains: number, cold: boolean, tag: string): (index: number) => BenchMessage {
  // The header section of a bench message takes about 330 bytes plus 30 per recipient.
  const bodySize = size - 330 - 30 * domains;
  if (!bodies.has(bodySize)) bodies.set(bodySize, textBody(bodySize));
  const body = bodies.get(bodySize) as Buffer;
  return (index) => buildMessage(size, recipientDomains(domains, index, cold, tag), index, body);
}

/** What each milter must answer for a message to count. */
const CHECKS: Readonly<Record<'muse' | 'noop' | 'opendkim', ReplyCheck>> = {
  muse: (reply) => {
    if (reply.verdict.kind !== 'continue') return `verdict ${reply.verdict.kind}`;
    const encrypted = reply.modifications.some((m) => 'name' in m && m.name === 'Content-Type' && 'value' in m && m.value.includes('multipart/encrypted'));
    return encrypted && reply.modifications.some((m) => m.kind === 'replaceBody') ? undefined : 'not encrypted';
  },
  noop: (reply) => (reply.modifications.some((m) => m.kind === 'addHeader' && m.name === 'X-Noop') ? undefined : 'no X-Noop header'),
  opendkim: (reply) => (reply.modifications.some((m) => 'name' in m && m.name === 'DKIM-Signature') ? undefined : `not signed (${reply.modifications.map((m) => m.kind).join(',')})`),
};

interface Target {
  readonly system: System;
  readonly address: string;
  readonly process: TargetProcess;
  readonly transport: 'unix' | 'tcp';
  readonly check: ReplyCheck;
}

const runs: RunRecord[] = [];

function log(text: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
}

/** Loads one milter and records the run. */
async function measure(
  target: Target,
  size: Size,
  domains: number,
  load: Omit<LoadOptions, 'address' | 'message' | 'check'> & {
    cold?: boolean;
    mode?: RunRecord['mode'];
    round?: number;
    /** Other messages than the outbound ones of `size` (inbound), with their own check and label. */
    custom?: { message: (index: number) => BenchMessage; check: ReplyCheck; sizeLabel: string };
  },
): Promise<RunRecord> {
  const tag = `t${runs.length}`;
  const message = load.custom?.message ?? messageFactory(size.bytes, domains, load.cold === true, tag);
  const check = load.custom?.check ?? target.check;
  const monitor = new ProcessMonitor(target.process.pid);
  // The warm-up runs before the monitor starts, so CPU and memory are those of the measured stretch.
  if ((load.warmupMs ?? 0) > 0) {
    await runLoad({ address: target.address, message: messageFactory(size.bytes, domains, load.cold === true, `${tag}w`), check: target.check, connections: load.connections, durationMs: load.warmupMs ?? 0 });
  }
  const cpuBefore = process.cpuUsage();
  monitor.start();
  const started = performance.now();
  const { custom, ...loadOptions } = load;
  const result = await runLoad({ ...loadOptions, warmupMs: 0, address: target.address, message, check });
  const usage = monitor.stop();
  const cpu = process.cpuUsage(cpuBefore);
  const record: RunRecord = {
    system: target.system,
    mode: load.mode ?? 'throughput',
    transport: target.transport,
    sizeLabel: load.custom?.sizeLabel ?? size.label,
    size: size.bytes,
    domains,
    dns: load.cold === true ? 'cold' : 'warm',
    connections: load.connections,
    round: load.round ?? 1,
    ...(load.rate === undefined ? {} : { rate: load.rate }),
    messages: result.messages,
    errors: result.errors,
    errorSamples: result.errorSamples,
    messagesPerSecond: result.messagesPerSecond,
    megabytesPerSecond: round(result.bytesPerSecond / 1e6, 2),
    latencyP50Ms: result.latencyMs.p50,
    latencyP99Ms: result.latencyMs.p99,
    cpuCores: usage.cpuCores,
    loadGeneratorCores: round((cpu.user + cpu.system) / 1000 / (performance.now() - started), 2),
    peakRssMiB: usage.peakRssMiB,
    startRssMiB: usage.startRssMiB,
  };
  runs.push(record);
  log(
    `${record.system} ${record.mode} ${record.transport} ${size.label} ${domains}d ${record.dns} c${load.connections}: ` +
      `${record.messagesPerSecond} msg/s, p50 ${record.latencyP50Ms} ms, p99 ${record.latencyP99Ms} ms, cpu ${record.cpuCores}, rss ${record.peakRssMiB} MiB` +
      (record.errors > 0 ? `, ${record.errors} errors: ${record.errorSamples.join('; ')}` : ''),
  );
  return record;
}

/** Closed-loop load settings for a size. */
function closedLoop(size: Size): { connections: number; durationMs?: number; count?: number; warmupMs: number } {
  return size.count === undefined
    ? { connections: size.connections, durationMs: scaled(size.seconds * 1000, 500), warmupMs: scaled(1000, 300) }
    : { connections: size.connections, count: scaled(size.count, size.connections), warmupMs: 0 };
}

function machine(): Record<string, string | number> {
  const cpu = cpus()[0]?.model ?? 'unknown';
  const version = (command: string, args: string[]): string => {
    try {
      return execFileSync(command, args, { encoding: 'utf8' }).split('\n')[0]?.trim() ?? '';
    } catch {
      return 'not found';
    }
  };
  return {
    cpu: `${availableParallelism()} × ${cpu}`,
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    kernel: release(),
    node: process.version,
    gpg: version('gpg', ['--version']),
    opendkim: version('opendkim', ['-V']),
    'load average at start (1/5/15 min)': loadavg().map((l) => l.toFixed(2)).join(' / '),
  };
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const machineInfo = machine();
  const root = await mkdtemp(join(tmpdir(), 'muse-bench-'));
  const stops: Array<() => Promise<unknown>> = [];
  log(`working in ${root}`);
  try {
    // Keys: the sending site's, and one per fixed recipient domain (warm DNS).
    const site = await generateSiteKey('sender.bench.test');
    const fixed: Record<string, { bytes: Uint8Array; fingerprint: string }> = {};
    // The first recipient domain also sends: phase 3b's inbound message and the hostile-load phase's ordinary
    // inbound mail are signed with its key.
    let inboundSenderKey: PrivateKey | undefined;
    for (let k = 1; k <= 5; k++) {
      const { publicKey, privateKey } = await generateKey({ type: 'ecc', curve: 'ed25519Legacy', userIDs: [{ email: `postmaster@r${k}.${RECIPIENT_ZONE}` }], format: 'object' });
      fixed[`r${k}.${RECIPIENT_ZONE}`] = { bytes: publicKey.write(), fingerprint: publicKey.getFingerprint().toUpperCase() };
      if (`r${k}.${RECIPIENT_ZONE}` === INBOUND_SENDER_DOMAIN) inboundSenderKey = privateKey;
    }
    if (inboundSenderKey === undefined) throw new Error(`no key for ${INBOUND_SENDER_DOMAIN}`);
    const coldDomains = ONLY === 'hostile' ? 0 : COLD.reduce((sum, c) => sum + scaled(c.count) * c.domains, 0);
    const dns = await startBenchDns(PORTS.dns, Object.fromEntries(Object.entries(fixed).map(([d, k]) => [d, k.bytes])), coldDomains);
    stops.push(() => dns.close());
    const siteKey = site.armor();
    const museSetup = (name: string, listen: 'unix' | number, workers: number | 'auto', metricsPort: number, profileDir?: string) => ({
      dir: join(root, name),
      listen,
      workers,
      dns: dns.address,
      metricsPort,
      siteKey,
      ...(profileDir === undefined ? {} : { profileDir }),
    });
    const start = async (system: System, transport: 'unix' | 'tcp', make: () => Promise<{ address: string; process: TargetProcess }>): Promise<Target> => {
      const started = await make();
      stops.push(() => started.process.stop());
      return { system, transport, address: started.address, process: started.process, check: CHECKS[system === 'muse-1' ? 'muse' : (system as 'muse' | 'noop' | 'opendkim')] };
    };
    const dirFor = async (name: string): Promise<string> => {
      const dir = join(root, name);
      await mkdir(dir, { recursive: true });
      return dir;
    };

    /** Phase 6: ordinary mail beside hostile mail, in a muse-milter of its own with the default limits. */
    const hostilePhase = async (): Promise<HostileLoadReport> => {
      log('phase 6: hostile load');
      const before = loadavg()[0]?.toFixed(2);
      const result = await runHostileLoad({
        dir: join(root, 'muse-hostile'),
        dns: dns.address,
        metricsPort: PORTS.metricsExtra,
        siteKey: site,
        peer: { domain: INBOUND_SENDER_DOMAIN, key: inboundSenderKey },
        scale: SCALE,
        log,
      });
      return { ...result, loadAverage: `${before} at start, ${loadavg()[0]?.toFixed(2)} at end (1 min)` };
    };
    if (ONLY === 'hostile') {
      const hostile = await hostilePhase();
      // The other phases' figures stay as the last full run left them; only the hostile-load section is replaced.
      const previous = OUT_DIR === undefined ? undefined : await readFile(join(OUT_DIR, 'bench.json'), 'utf8').then((text) => JSON.parse(text) as BenchReport, () => undefined);
      const report: BenchReport = previous ?? {
        startedAt: startedAt.toISOString(),
        durationSeconds: 0,
        machine: machineInfo,
        command: 'npm run bench -- --only hostile',
        runs: [],
        targets: [],
        profile: undefined,
      };
      const merged: BenchReport = { ...report, hostile };
      if (OUT_DIR !== undefined) {
        await mkdir(OUT_DIR, { recursive: true });
        await writeFile(join(OUT_DIR, 'bench.json'), `${JSON.stringify(merged, null, 2)}\n`);
        await writeFile(join(OUT_DIR, 'bench.md'), markdown(merged));
        log(`hostile-load results in ${OUT_DIR}`);
      }
      process.stdout.write(`${hostileMarkdown(hostile).join('\n')}\n`);
      return;
    }

    const home: GpgHome = await prepareGpgHome(join(root, 'gnupg'), siteKey, site.getFingerprint().toUpperCase(), fixed);
    stops.push(() => stopGpgAgent(home));
    /** gpg per message and the crypto limit on the messages of one scenario. */
    const baselines = async (size: Size, domains: number, roundNumber: number): Promise<void> => {
      const message = messageFactory(size.bytes, domains, false, 'gpg');
      const concurrency = Math.min(CONNECTIONS, size.connections);
      const gpg = await runGpg(home, message, (i) => recipientDomains(domains, i, false, 'gpg'), scaled(size.gpgCount), concurrency);
      const common = { mode: 'throughput', transport: 'none', sizeLabel: size.label, size: size.bytes, domains, dns: 'none', round: roundNumber, loadGeneratorCores: null, peakRssMiB: null, startRssMiB: null } as const;
      runs.push({
        ...common, system: 'gpg', connections: concurrency, messages: gpg.messages, errors: gpg.errors, errorSamples: gpg.errorSamples,
        messagesPerSecond: gpg.messagesPerSecond, megabytesPerSecond: round(gpg.bytesPerSecond / 1e6, 2), latencyP50Ms: gpg.latencyMs.p50,
        latencyP99Ms: gpg.latencyMs.p99, cpuCores: gpg.cpuCores,
      });
      log(`gpg ${size.label} ${domains}d: ${gpg.messagesPerSecond} msg/s, cpu ${gpg.cpuCores}${gpg.errors > 0 ? `, ${gpg.errors} errors: ${gpg.errorSamples.join('; ')}` : ''}`);
      const limit = await runCryptoLimit(message(0).raw, domains, scaled(size.bytes > MiB ? 3000 : 2000, 300));
      runs.push({
        ...common, system: 'crypto', connections: limit.threads, messages: limit.messages, errors: 0, errorSamples: [],
        messagesPerSecond: limit.messagesPerSecond, megabytesPerSecond: round(limit.bytesPerSecond / 1e6, 2), latencyP50Ms: limit.perMessageMs,
        latencyP99Ms: null, cpuCores: limit.threads,
      });
      log(`crypto limit ${size.label} ${domains}d: ${limit.messagesPerSecond} msg/s`);
    };

    // Phase 1: unix sockets, every system, every size.
    log('phase 1: unix sockets');
    const unix = {
      muse: await start('muse', 'unix', async () => startMuse({ ...museSetup('muse-unix', 'unix', 'auto', PORTS.metrics) })),
      museOne: await start('muse-1', 'unix', async () => startMuse({ ...museSetup('muse-one', 'unix', 1, PORTS.metricsOne) })),
      noop: await start('noop', 'unix', async () => startNoop(await dirFor('noop-unix'), 'unix')),
      opendkim: await start('opendkim', 'unix', async () => startOpenDkim(await dirFor('opendkim-unix'), 'unix')),
    };
    const four = SIZES[0];
    /** A fresh process first runs slower (JIT, caches): a few seconds of unrecorded load before any round. */
    const prime = async (targets: readonly Target[]): Promise<void> => {
      for (const target of targets) {
        await runLoad({ address: target.address, connections: CONNECTIONS, message: messageFactory(four.bytes, 1, false, 'prime'), durationMs: scaled(3000, 500), check: target.check });
      }
    };
    await prime(Object.values(unix));
    // The ratios of the targets rest on these: three rounds, interleaved, so drift hits every system alike.
    for (let r = 1; r <= 3; r++) {
      for (const target of [unix.muse, unix.noop, unix.opendkim, unix.museOne]) await measure(target, four, 1, { ...closedLoop(four), round: r });
      await baselines(four, 1, r);
    }
    for (const size of SIZES) {
      for (const domains of [1, 5]) {
        if (size === four && domains === 1) continue;
        const targets = size === SIZES[1] && domains === 1 ? [unix.muse, unix.noop, unix.opendkim, unix.museOne] : [unix.muse, unix.noop, unix.opendkim];
        for (const target of targets) await measure(target, size, domains, closedLoop(size));
      }
    }
    for (const target of [unix.muse, unix.noop]) {
      await measure(target, four, 1, { connections: 1, durationMs: scaled(3000, 500), warmupMs: scaled(500, 200), mode: 'latency' });
    }
    // Half of each configuration's own maximum (the medians of its rounds), open loop.
    for (const target of [unix.muse, unix.museOne]) {
      const max = findRun(summariseRuns(runs), { system: target.system, mode: 'throughput', transport: 'unix', sizeLabel: four.label, domains: 1, dns: 'warm' });
      const halfRate = Math.max(1, Math.round((max?.messagesPerSecond ?? 100) / 2));
      await measure(target, four, 1, { connections: CONNECTIONS, rate: halfRate, durationMs: scaled(8000, 1000), warmupMs: scaled(1000, 300), mode: 'paced' });
    }
    for (const cold of COLD) await measure(unix.muse, cold.size, cold.domains, { connections: CONNECTIONS, count: scaled(cold.count), cold: true });
    for (const target of Object.values(unix)) await target.process.stop();

    // Phase 2: loopback TCP.
    log('phase 2: loopback TCP');
    const tcp = {
      muse: await start('muse', 'tcp', async () => startMuse({ ...museSetup('muse-tcp', PORTS.museTcp, 'auto', PORTS.metrics) })),
      noop: await start('noop', 'tcp', async () => startNoop(await dirFor('noop-tcp'), PORTS.noopTcp)),
      opendkim: await start('opendkim', 'tcp', async () => startOpenDkim(await dirFor('opendkim-tcp'), PORTS.opendkimTcp)),
    };
    await prime(Object.values(tcp));
    for (let r = 1; r <= 3; r++) for (const target of [tcp.muse, tcp.noop, tcp.opendkim]) await measure(target, four, 1, { ...closedLoop(four), round: r });
    for (const target of [tcp.muse, tcp.noop]) {
      await measure(target, four, 1, { connections: 1, durationMs: scaled(3000, 500), warmupMs: scaled(500, 200), mode: 'latency' });
    }
    for (const target of Object.values(tcp)) await target.process.stop();

    // Phase 3: memory of one 50 MiB message at a time, in a fresh muse-milter (idle = after one small message).
    log('phase 3: 50 MiB memory, fresh instance');
    const fresh = await start('muse', 'unix', async () => startMuse({ ...museSetup('muse-memory', 'unix', 'auto', PORTS.metricsExtra) }));
    await measure(fresh, four, 1, { connections: 1, count: 4 });
    runs.pop();
    const bigRun = await measure(fresh, SIZES[3], 1, { connections: 1, count: scaled(3) });
    await fresh.process.stop();

    // Phase 3b: memory of one 50 MiB inbound message at a time (signed and encrypted to this site by r1), in a fresh
    // muse-milter (idle = after a few small inbound messages).
    log('phase 3b: 50 MiB inbound memory, fresh instance');
    const freshInbound = await start('muse', 'unix', async () => startMuse({ ...museSetup('muse-inbound-memory', 'unix', 'auto', PORTS.metricsExtra) }));
    const siteKeyPublic = site.toPublic();
    const smallInbound = await buildInboundMessage(four.bytes, inboundSenderKey, siteKeyPublic);
    const bigInbound = await buildInboundMessage(SIZES[3].bytes, inboundSenderKey, siteKeyPublic);
    const inbound = (message: BenchMessage, sizeLabel: string) => ({ message: () => message, check: checkInbound, sizeLabel });
    await measure(freshInbound, four, 1, { connections: 1, count: 4, custom: inbound(smallInbound, '4 KiB inbound') });
    runs.pop();
    const bigInboundRun = await measure(freshInbound, SIZES[3], 1, { connections: 1, count: scaled(3), custom: inbound(bigInbound, '50 MiB inbound') });
    await freshInbound.process.stop();

    // Phase 4: the baselines without a milter (4 KiB to one domain ran with the rounds of phase 1).
    log('phase 4: gpg per message, crypto limit');
    for (const size of SIZES) {
      for (const domains of [1, 5]) {
        if (size === four && domains === 1) continue;
        await baselines(size, domains, 1);
      }
    }

    // Phase 5: where the time goes — a CPU profile of every muse-milter process under the 4 KiB load.
    log('phase 5: profile');
    const profileDir = await dirFor('profile');
    const profiled = await start('muse', 'unix', async () => startMuse({ ...museSetup('muse-profile', 'unix', 'auto', PORTS.metricsExtra, profileDir) }));
    await measure(profiled, four, 1, { ...closedLoop(four) });
    runs.pop();
    await profiled.process.stop();
    const profile: ProfileSummary = summariseProfiles(profileDir);

    const hostile = await hostilePhase();

    const report: BenchReport = {
      startedAt: startedAt.toISOString(),
      durationSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
      machine: { ...machineInfo, 'load average at end (1/5/15 min)': loadavg().map((l) => l.toFixed(2)).join(' / ') },
      command: `npm run bench${SCALE === 1 ? '' : ` -- --scale ${SCALE}`}`,
      runs,
      targets: judgeTargets(runs, bigRun, bigInboundRun),
      profile,
      hostile,
    };
    if (OUT_DIR !== undefined) {
      await mkdir(OUT_DIR, { recursive: true });
      await writeFile(join(OUT_DIR, 'bench.json'), `${JSON.stringify(report, null, 2)}\n`);
      await writeFile(join(OUT_DIR, 'bench.md'), markdown(report));
      await writeFile(join(OUT_DIR, 'bench.svg'), svgChart(report));
      log(`results in ${OUT_DIR}`);
    }
    process.stdout.write(markdown(report));
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
}

/**
 * The targets of issue 7, judged on this run's figures. On the unix socket both configurations of muse-milter
 * were measured (one worker per core, and one worker); each target is judged on the better of the two, and the
 * report names which one it was (every figure of both is in the tables).
 */
function judgeTargets(all: readonly RunRecord[], big: RunRecord, bigInbound: RunRecord): TargetResult[] {
  const rows = summariseRuns(all);
  const rate = (system: System, transport: 'unix' | 'tcp' | 'none'): number =>
    findRun(rows, { system, mode: 'throughput', transport, sizeLabel: '4 KiB', domains: 1, dns: transport === 'none' ? 'none' : 'warm' })?.messagesPerSecond ?? Number.NaN;
  const results: TargetResult[] = [];
  const ratio = (target: string, value: number, threshold: number, detail: string): void => {
    results.push({ target, threshold: `≥ ${threshold}`, measured: `${value.toFixed(2)} (${detail})`, met: value >= threshold });
  };
  const museSystems: Record<'unix' | 'tcp', readonly System[]> = { unix: ['muse', 'muse-1'], tcp: ['muse'] };
  for (const transport of ['unix', 'tcp'] as const) {
    const [system, muse] = museSystems[transport].map((s) => [s, rate(s, transport)] as const).reduce((a, b) => (b[1] > a[1] ? b : a));
    const who = `${SYSTEM_NAMES[system]}: ${muse}`;
    ratio(`4 KiB, 1 domain, 16 conns, ${transport}: muse-milter / no-op milter`, muse / rate('noop', transport), 0.5, `${who} / ${rate('noop', transport)} msg/s`);
    ratio(`4 KiB, 1 domain, 16 conns, ${transport}: muse-milter / OpenDKIM RSA-2048`, muse / rate('opendkim', transport), 2.0, `${who} / ${rate('opendkim', transport)} msg/s`);
    ratio(`4 KiB, 1 domain, 16 conns, ${transport}: muse-milter / gpg per message`, muse / rate('gpg', 'none'), 25, `${who} / ${rate('gpg', 'none')} msg/s`);
  }
  const p50 = (transport: 'unix' | 'tcp'): number => findRun(rows, { system: 'muse', mode: 'latency', transport })?.latencyP50Ms ?? Number.NaN;
  const gap = p50('tcp') - p50('unix');
  results.push({ target: 'p50 at one connection, TCP minus unix socket', threshold: '≤ 2 ms', measured: `${gap.toFixed(2)} ms (${p50('tcp')} vs ${p50('unix')} ms)`, met: gap <= 2 });
  const paced = (['muse', 'muse-1'] as const)
    .map((system) => findRun(rows, { system, mode: 'paced' }))
    .filter((run) => run !== undefined)
    .reduce<RunRecord | undefined>((best, run) => (best === undefined || (run.latencyP99Ms ?? Infinity) < (best.latencyP99Ms ?? Infinity) ? run : best), undefined);
  results.push({
    target: 'p99 added latency at half the maximum throughput',
    threshold: '≤ 10 ms',
    measured: `${paced?.latencyP99Ms ?? '–'} ms at ${paced?.rate ?? '–'} msg/s${paced === undefined ? '' : ` (${SYSTEM_NAMES[paced.system]})`}`,
    met: (paced?.latencyP99Ms ?? Number.POSITIVE_INFINITY) <= 10,
  });
  const above = (big.peakRssMiB ?? Number.NaN) - (big.startRssMiB ?? Number.NaN);
  results.push({ target: '50 MiB message: peak RSS above idle', threshold: '≤ 64 MiB', measured: `${above} MiB (${big.startRssMiB} → ${big.peakRssMiB} MiB, all processes)`, met: above <= 64 });
  results.push({ target: '50 MiB message: throughput', threshold: '≥ 100 MB/s', measured: `${big.megabytesPerSecond} MB/s`, met: big.megabytesPerSecond >= 100 });
  // docs/security.md §7: the budget of one large inbound message.
  const inboundAbove = (bigInbound.peakRssMiB ?? Number.NaN) - (bigInbound.startRssMiB ?? Number.NaN);
  results.push({
    target: '50 MiB inbound message: peak RSS above idle',
    threshold: '≤ 64 MiB',
    measured: `${inboundAbove} MiB (${bigInbound.startRssMiB} → ${bigInbound.peakRssMiB} MiB, all processes)${bigInbound.errors > 0 ? `, ${bigInbound.errors} errors` : ''}`,
    met: inboundAbove <= 64 && bigInbound.errors === 0,
  });
  return results;
}

await main();
