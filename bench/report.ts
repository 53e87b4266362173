/**
 * The benchmark's results: one record per measured run, the targets of issue 7 judged against them, and
 * three renderings — JSON (everything), a Markdown table (for BENCHMARKS.md) and an SVG bar chart.
 */
import type { ProfileSummary } from './profile.ts';
import { median, round } from './stats.ts';

/** Who was measured. */
export type System = 'muse' | 'muse-1' | 'noop' | 'opendkim' | 'gpg' | 'crypto';

/** Display names of the systems. */
export const SYSTEM_NAMES: Readonly<Record<System, string>> = {
  muse: 'muse-milter (workers: auto)',
  'muse-1': 'muse-milter (workers: 1)',
  noop: 'no-op milter (milter/)',
  opendkim: 'OpenDKIM, RSA-2048 signing',
  gpg: 'gpg --sign --encrypt per message',
  crypto: 'crypto limit (native, all cores)',
};

/** One measured run. */
export interface RunRecord {
  readonly system: System;
  /** `throughput` (closed loop), `paced` (open loop at `rate`), `latency` (one connection). */
  readonly mode: 'throughput' | 'paced' | 'latency';
  readonly transport: 'unix' | 'tcp' | 'none';
  readonly sizeLabel: string;
  readonly size: number;
  readonly domains: number;
  readonly dns: 'warm' | 'cold' | 'none';
  readonly connections: number;
  readonly round: number;
  readonly rate?: number;
  readonly messages: number;
  readonly errors: number;
  readonly errorSamples: readonly string[];
  readonly messagesPerSecond: number;
  readonly megabytesPerSecond: number;
  readonly latencyP50Ms: number | null;
  readonly latencyP99Ms: number | null;
  /** CPU of the milter (or of gpg, or of the crypto threads), cores. */
  readonly cpuCores: number | null;
  /** CPU of the load generator (this process), cores. */
  readonly loadGeneratorCores: number | null;
  readonly peakRssMiB: number | null;
  readonly startRssMiB: number | null;
}

/** One performance target (BENCHMARKS.md, "Targets"), judged. */
export interface TargetResult {
  readonly target: string;
  readonly threshold: string;
  readonly measured: string;
  readonly met: boolean;
}

/** Ordinary mail of one direction during a hostile-load run. */
export interface OrdinaryFigures {
  readonly direction: 'outbound' | 'inbound';
  /** Messages per second, paced. */
  readonly rate: number;
  readonly messages: number;
  readonly errors: number;
  readonly errorSamples: readonly string[];
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
}

/** One run of the hostile-load phase: ordinary mail, alone or beside one hostile shape. */
export interface HostileRun {
  /** `none` for ordinary mail alone. */
  readonly shape: string;
  readonly description: string;
  readonly ordinary: readonly OrdinaryFigures[];
  /** The milter's processes, summed. */
  readonly peakRssMiB: number;
  readonly startRssMiB: number;
  /** What the limits allow it to hold (bench/hostile-load.ts, `memoryBound`). */
  readonly boundMiB: number;
  readonly cpuCores: number;
  /** The hostile messages (or connections): what each should get, and what they got, by final reply. */
  readonly hostile?: {
    readonly expected: string;
    readonly sent: number;
    readonly outcomes: Readonly<Record<string, number>>;
    readonly errorSamples: readonly string[];
  };
}

/** The hostile-load phase (bench/hostile-load.ts). */
export interface HostileLoadReport {
  readonly startedAt: string;
  readonly workers: number;
  /** Ordinary messages per second in each direction, and connections per direction. */
  readonly ordinaryRate: number;
  readonly ordinaryConnections: number;
  /** Measured seconds per run. */
  readonly seconds: number;
  readonly idleRssMiB: number;
  readonly limits: Readonly<Record<string, number>>;
  readonly runs: readonly HostileRun[];
  /** Load average when the phase began and ended, if recorded. */
  readonly loadAverage?: string;
}

/** The target of the hostile-load phase: ordinary p99 under load at most this many times the unloaded p99. */
export const HOSTILE_P99_RATIO = 2;

/** The whole report. */
export interface BenchReport {
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly machine: Readonly<Record<string, string | number>>;
  readonly command: string;
  readonly runs: readonly RunRecord[];
  readonly targets: readonly TargetResult[];
  readonly profile: ProfileSummary | undefined;
  /** The hostile-load phase, when it ran. */
  readonly hostile?: HostileLoadReport;
}

/** The key that groups repeated rounds of one scenario. */
function scenarioKey(r: RunRecord): string {
  return [r.system, r.mode, r.transport, r.sizeLabel, r.domains, r.dns, r.connections].join('|');
}

/** One row per scenario: the median of its rounds (each figure on its own). */
export function summariseRuns(runs: readonly RunRecord[]): RunRecord[] {
  const groups = new Map<string, RunRecord[]>();
  for (const run of runs) groups.set(scenarioKey(run), [...(groups.get(scenarioKey(run)) ?? []), run]);
  return [...groups.values()].map((group) => {
    const first = group[0] as RunRecord;
    if (group.length === 1) return first;
    const mid = (pick: (r: RunRecord) => number | null): number | null => {
      const values = group.map(pick).filter((v): v is number => v !== null);
      return values.length === 0 ? null : round(median(values), 3);
    };
    return {
      ...first,
      round: 0,
      messages: group.reduce((sum, r) => sum + r.messages, 0),
      errors: group.reduce((sum, r) => sum + r.errors, 0),
      errorSamples: [...new Set(group.flatMap((r) => r.errorSamples))].slice(0, 3),
      messagesPerSecond: mid((r) => r.messagesPerSecond) as number,
      megabytesPerSecond: mid((r) => r.megabytesPerSecond) as number,
      latencyP50Ms: mid((r) => r.latencyP50Ms),
      latencyP99Ms: mid((r) => r.latencyP99Ms),
      cpuCores: mid((r) => r.cpuCores),
      loadGeneratorCores: mid((r) => r.loadGeneratorCores),
      peakRssMiB: mid((r) => r.peakRssMiB),
      startRssMiB: mid((r) => r.startRssMiB),
    };
  });
}

/** Finds the summarised row of a scenario. */
export function findRun(rows: readonly RunRecord[], match: Partial<RunRecord>): RunRecord | undefined {
  return rows.find((row) => Object.entries(match).every(([key, value]) => row[key as keyof RunRecord] === value));
}

const cell = (value: number | null, digits = 1): string => (value === null || !Number.isFinite(value) ? '–' : value.toFixed(digits));

/** The Markdown rendering: machine, targets, then every scenario. */
export function markdown(report: BenchReport): string {
  const rows = summariseRuns(report.runs);
  const lines: string[] = [];
  lines.push(`Run of ${report.startedAt}, ${report.durationSeconds} s, \`${report.command}\`.`, '');
  lines.push('| machine | |', '|---|---|');
  for (const [key, value] of Object.entries(report.machine)) lines.push(`| ${key} | ${value} |`);
  lines.push('', '### Targets', '', '| target | threshold | measured | met |', '|---|---|---|---|');
  for (const t of report.targets) lines.push(`| ${t.target} | ${t.threshold} | ${t.measured} | ${t.met ? 'yes' : '**no**'} |`);
  lines.push(
    '',
    '### All scenarios',
    '',
    'Medians over rounds where a scenario ran more than once. Latency is what the milter adds: MAIL to the final',
    'reply at end of message. CPU and RSS are the milter\'s (all its processes); "gen" is the load generator\'s CPU.',
    '',
    '| system | mode | socket | size | domains | DNS | conns | msg/s | MB/s | p50 ms | p99 ms | CPU cores | gen cores | peak RSS MiB | RSS at start MiB | errors |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const r of rows) {
    const mode = r.mode === 'paced' ? `paced ${r.rate ?? ''}/s` : r.mode;
    lines.push(
      `| ${SYSTEM_NAMES[r.system]} | ${mode} | ${r.transport} | ${r.sizeLabel} | ${r.domains} | ${r.dns} | ${r.connections} | ${cell(r.messagesPerSecond)} | ${cell(r.megabytesPerSecond)} | ${cell(r.latencyP50Ms, 2)} | ${cell(r.latencyP99Ms, 2)} | ${cell(r.cpuCores, 2)} | ${cell(r.loadGeneratorCores, 2)} | ${cell(r.peakRssMiB, 0)} | ${cell(r.startRssMiB, 0)} | ${r.errors} |`,
    );
  }
  if (report.hostile !== undefined) lines.push('', ...hostileMarkdown(report.hostile));
  if (report.profile !== undefined) {
    const p = report.profile;
    lines.push('', `### Profile (muse-milter, 4 KiB, 1 domain, 16 connections; ${p.processes} processes, ${p.totalMs} ms of samples)`, '');
    lines.push('| self time by group | % |', '|---|---|');
    for (const g of p.groups) lines.push(`| ${g.name} | ${g.selfPercent} |`);
    lines.push('', '| function (self time) | % | ms |', '|---|---|---|');
    for (const f of p.top) lines.push(`| \`${f.name}\` | ${f.selfPercent} | ${f.selfMs} |`);
  }
  return `${lines.join('\n')}\n`;
}

/** A run's ordinary-mail figure of one direction (NaN when the run has none). */
function ordinaryFigure(run: HostileRun, direction: OrdinaryFigures['direction'], figure: 'latencyP50Ms' | 'latencyP99Ms'): number {
  return run.ordinary.find((o) => o.direction === direction)?.[figure] ?? Number.NaN;
}

/**
 * The unloaded p99 of each direction: the median of the runs of ordinary mail alone (at the start, the middle and
 * the end of the phase), so that one quiet or one disturbed window does not set every ratio.
 */
export function unloadedP99(runs: readonly HostileRun[]): Record<OrdinaryFigures['direction'], number> {
  const alone = runs.filter((r) => r.shape === 'none');
  const of = (direction: OrdinaryFigures['direction']): number => median(alone.map((r) => ordinaryFigure(r, direction, 'latencyP99Ms')));
  return { outbound: of('outbound'), inbound: of('inbound') };
}

/** The hostile-load section: one row per run, ordinary p99 against the unloaded p99, memory against its bound. */
export function hostileMarkdown(h: HostileLoadReport): string[] {
  const unloaded = unloadedP99(h.runs);
  const p99 = (run: HostileRun, direction: OrdinaryFigures['direction']): number => ordinaryFigure(run, direction, 'latencyP99Ms');
  const p50 = (run: HostileRun, direction: OrdinaryFigures['direction']): number => ordinaryFigure(run, direction, 'latencyP50Ms');
  const errors = (run: HostileRun): number => run.ordinary.reduce((sum, o) => sum + o.errors, 0);
  const lines = [
    `### Hostile load (run of ${h.startedAt}${h.loadAverage === undefined ? '' : `; load average ${h.loadAverage}`})`,
    '',
    `One muse-milter, ${h.workers} worker, every limit at its default. Ordinary mail: ${h.ordinaryRate} msg/s outbound (4 KiB) and ` +
      `${h.ordinaryRate} msg/s inbound (4 KiB, signed and encrypted), paced, ${h.ordinaryConnections} connections each, ${h.seconds} s per run. ` +
      `Ratio: ordinary p99 beside the hostile stream / p99 alone, the median of the ${h.runs.filter((r) => r.shape === 'none').length} runs alone (${cell(unloaded.outbound, 2)} / ${cell(unloaded.inbound, 2)} ms; target ≤ ${HOSTILE_P99_RATIO}). Memory: peak resident memory of the milter's ` +
      `processes against the bound its limits imply. Idle RSS ${h.idleRssMiB} MiB.`,
    '',
    '| hostile shape | out p50 / p99 ms | out p99 ratio | in p50 / p99 ms | in p99 ratio | p99 target met | ordinary errors | RSS start → peak MiB | bound MiB | within bound | milter CPU cores | hostile outcome (expected) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const run of h.runs) {
    const ratioOut = p99(run, 'outbound') / unloaded.outbound;
    const ratioIn = p99(run, 'inbound') / unloaded.inbound;
    const met = run.shape === 'none' ? '' : ratioOut <= HOSTILE_P99_RATIO && ratioIn <= HOSTILE_P99_RATIO ? 'yes' : '**no**';
    const outcome =
      run.hostile === undefined
        ? ''
        : `${Object.entries(run.hostile.outcomes).map(([label, n]) => `${n} × ${label}`).join(', ')} (${run.hostile.expected})${run.hostile.errorSamples.length > 0 ? `; ${run.hostile.errorSamples.join('; ')}` : ''}`;
    lines.push(
      `| ${run.shape === 'none' ? 'none (ordinary alone)' : `${run.shape}: ${run.description}`} | ${cell(p50(run, 'outbound'), 2)} / ${cell(p99(run, 'outbound'), 2)} | ${run.shape === 'none' ? '' : cell(ratioOut, 2)} | ` +
        `${cell(p50(run, 'inbound'), 2)} / ${cell(p99(run, 'inbound'), 2)} | ${run.shape === 'none' ? '' : cell(ratioIn, 2)} | ${met} | ${errors(run)} | ` +
        `${run.startRssMiB} → ${run.peakRssMiB} | ${run.boundMiB} | ${run.peakRssMiB <= run.boundMiB ? 'yes' : '**no**'} | ${cell(run.cpuCores, 2)} | ${outcome} |`,
    );
  }
  return lines;
}

const escapeXml = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * The SVG chart: messages per second of every system for 4 KiB messages to one domain, 16 connections,
 * unix socket (gpg and the crypto limit without a socket), on a logarithmic axis.
 */
export function svgChart(report: BenchReport): string {
  const rows = summariseRuns(report.runs).filter((r) => r.mode === 'throughput' && r.sizeLabel === '4 KiB' && r.domains === 1 && r.dns !== 'cold' && r.transport !== 'tcp');
  rows.sort((a, b) => b.messagesPerSecond - a.messagesPerSecond);
  const width = 760;
  const left = 260;
  const barHeight = 26;
  const top = 50;
  const height = top + rows.length * (barHeight + 10) + 40;
  const max = Math.max(10, ...rows.map((r) => r.messagesPerSecond));
  const decades = Math.ceil(Math.log10(max));
  const x = (value: number): number => left + (Math.log10(Math.max(1, value)) / decades) * (width - left - 80);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">Messages per second, 4 KiB, one recipient domain (log scale)</text>`,
  ];
  for (let d = 0; d <= decades; d++) {
    const px = x(10 ** d);
    parts.push(`<line x1="${px}" y1="${top - 8}" x2="${px}" y2="${height - 30}" stroke="#ddd"/>`);
    parts.push(`<text x="${px}" y="${height - 12}" text-anchor="middle" fill="#555">${10 ** d}</text>`);
  }
  rows.forEach((r, i) => {
    const y = top + i * (barHeight + 10);
    const colour = r.system.startsWith('muse') ? '#2b6cb0' : r.system === 'crypto' ? '#999' : '#d69e2e';
    parts.push(`<text x="${left - 8}" y="${y + barHeight * 0.68}" text-anchor="end">${escapeXml(SYSTEM_NAMES[r.system])}</text>`);
    parts.push(`<rect x="${left}" y="${y}" width="${Math.max(1, x(r.messagesPerSecond) - left)}" height="${barHeight}" fill="${colour}"/>`);
    parts.push(`<text x="${x(r.messagesPerSecond) + 6}" y="${y + barHeight * 0.68}">${Math.round(r.messagesPerSecond)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
