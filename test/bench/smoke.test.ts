/**
 * The benchmark's load generator stays working: a tiny load (20 messages of 4 KiB over 2 connections) against
 * the no-op example milter, in this process, and the shape of what it reports. No timing is asserted.
 *
 * Ports: none (a unix socket in a temporary directory).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MilterServer } from '../../milter/src/index.ts';
import { noopMilter } from '../../examples/noop-milter.ts';
import { runLoad, verdictLabel } from '../../bench/load-generator.ts';
import { buildMessage, recipientDomains } from '../../bench/messages.ts';
import { hostileMarkdown, markdown, summariseRuns, type BenchReport, type HostileLoadReport, type RunRecord } from '../../bench/report.ts';
import { memoryBound, type HostileLimits } from '../../bench/hostile-load.ts';

let dir: string;
let server: MilterServer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bench-smoke-'));
  server = await MilterServer.start(noopMilter(), { listen: `unix:${join(dir, 'noop.sock')}` });
});

after(async () => {
  await server?.close(1000);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('bench load generator', () => {
  it('sends every message like Postfix and reports finite figures', async () => {
    const result = await runLoad({
      address: server.address,
      connections: 2,
      count: 20,
      messagesPerConnection: 3,
      message: (index) => buildMessage(4096, recipientDomains(1, index, false, 'smoke'), index),
      check: (reply) => (reply.modifications.some((m) => m.kind === 'addHeader' && m.name === 'X-Noop') ? undefined : 'no X-Noop header'),
    });
    assert.equal(result.messages, 20);
    assert.equal(result.errors, 0, result.errorSamples.join('; '));
    assert.deepEqual(result.verdicts, { accept: 20 });
    for (const value of [result.elapsedMs, result.messagesPerSecond, result.bytesPerSecond, ...Object.values(result.latencyMs)]) {
      assert.ok(Number.isFinite(value) && value > 0, `${value} is a positive number`);
    }
    assert.ok(result.latencyMs.p50 <= result.latencyMs.p99 && result.latencyMs.p99 <= result.latencyMs.max);
    // Every message is about 4 KiB in total.
    assert.ok(Math.abs(result.bytesPerSecond / result.messagesPerSecond - 4096) < 64);
  });

  it('renders a report with a row per scenario and the medians of repeated rounds', () => {
    const run = (round: number, rate: number): RunRecord => ({
      system: 'noop', mode: 'throughput', transport: 'unix', sizeLabel: '4 KiB', size: 4096, domains: 1, dns: 'warm', connections: 2, round,
      messages: 20, errors: 0, errorSamples: [], messagesPerSecond: rate, megabytesPerSecond: 1, latencyP50Ms: 1, latencyP99Ms: 2,
      cpuCores: 0.5, loadGeneratorCores: 0.5, peakRssMiB: 60, startRssMiB: 50,
    });
    const rows = summariseRuns([run(1, 100), run(2, 300), run(3, 200)]);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.messagesPerSecond, 200);
    assert.equal(rows[0]?.messages, 60);
    const report: BenchReport = { startedAt: '2026-01-01T00:00:00.000Z', durationSeconds: 1, machine: { cpu: 'test' }, command: 'npm run bench', runs: [run(1, 100)], targets: [], profile: undefined };
    assert.match(markdown(report), /\| no-op milter \(milter\/\) \| throughput \| unix \| 4 KiB \| 1 \| warm \| 2 \| 100\.0 \|/);
  });

  it('holds its connections from before the first message until after the last, and stops when aborted', async () => {
    const stop = new AbortController();
    let replies = 0;
    let open: number | undefined;
    let beforeClose: number | undefined;
    const result = await runLoad({
      address: server.address,
      connections: 2,
      messagesPerConnection: Infinity,
      signal: stop.signal,
      message: (index) => buildMessage(4096, recipientDomains(1, index, false, 'smoke'), index),
      check: () => {
        if (++replies === 10) stop.abort();
        return undefined;
      },
      onConnected: () => {
        assert.equal(replies, 0);
        open = server.connectionCount;
      },
      onFinished: () => (beforeClose = server.connectionCount),
    });
    assert.equal(open, 2);
    assert.equal(beforeClose, 2);
    // The other connection may have had one message under way when the tenth reply aborted the load.
    assert.ok(result.messages === 10 || result.messages === 11, `${result.messages} messages`);
    assert.equal(result.errors, 0);
  });

  it('labels a reply code by its basic and enhanced status codes', () => {
    const reply = (text: string) => ({ modifications: [], progress: 0, verdict: { kind: 'replyCode' as const, reply: text } });
    assert.equal(verdictLabel(reply('451 4.3.4 Message too large to protect')), 'reply 451 4.3.4');
    assert.equal(verdictLabel(reply('451-4.3.4 first line\r\n451 4.3.4 last line')), 'reply 451 4.3.4');
    assert.equal(verdictLabel({ modifications: [], progress: 0, verdict: { kind: 'tempfail' } }), 'tempfail');
  });
});

describe('bench hostile load', () => {
  const limits: HostileLimits = {
    workers: 1,
    maxConnections: 256,
    maxBufferedBody: 1024 * 1024,
    maxFrameSize: 1024 * 1024 + 1,
    maxMessageSize: 50 * 1024 * 1024,
    maxDecompressionRatio: 20,
    maxHeaderFields: 1000,
    maxSessionKeyPackets: 1000,
    maxConcurrentDecryptions: 2,
  };

  it('bounds memory by open connections and by the decryption slots, not by the connections waiting for one', () => {
    // 100 + 18 connections × 2 MiB + 2 slots × 3 × 8 MiB.
    assert.equal(memoryBound(limits, 100, 18, 8, 8 * 1024 * 1024), 184);
    assert.equal(memoryBound(limits, 100, 18, 1, 8 * 1024 * 1024), 160);
    // The plaintext of one decryption never counts beyond the message size limit.
    assert.equal(memoryBound(limits, 100, 0, 2, 80 * 1024 * 1024), 400);
    assert.equal(memoryBound({ ...limits, workers: 2 }, 100, 0, 8, 1024 * 1024), 112);
  });

  it('renders one row per run with the p99 ratios against the median of the runs without hostile mail', () => {
    const ordinary = (p99Out: number, p99In: number) => [
      { direction: 'outbound' as const, rate: 50, messages: 750, errors: 0, errorSamples: [], latencyP50Ms: 5, latencyP99Ms: p99Out },
      { direction: 'inbound' as const, rate: 50, messages: 750, errors: 0, errorSamples: [], latencyP50Ms: 10, latencyP99Ms: p99In },
    ];
    const alone = (p99Out: number, p99In: number) => ({ shape: 'none', description: 'ordinary mail alone', ordinary: ordinary(p99Out, p99In), peakRssMiB: 130, startRssMiB: 120, boundMiB: 152, cpuCores: 0.5 });
    const report: HostileLoadReport = {
      startedAt: '2026-01-01T00:00:00.000Z', workers: 1, ordinaryRate: 50, ordinaryConnections: 8, seconds: 15, idleRssMiB: 120, limits: {},
      runs: [
        alone(20, 40),
        {
          shape: 'PKESK flood', description: 'many packets', ordinary: ordinary(30, 100), peakRssMiB: 160, startRssMiB: 130, boundMiB: 150, cpuCores: 0.9,
          hostile: { expected: 'reply 451 4.3.4', sent: 12, outcomes: { 'reply 451 4.3.4': 12 }, errorSamples: [] },
        },
        alone(30, 50),
        alone(10, 45),
      ],
    };
    const lines = hostileMarkdown(report);
    // Unloaded: the median of 20, 30, 10 (20) and of 40, 50, 45 (45).
    assert.match(lines[2] as string, /the median of the 3 runs alone \(20\.00 \/ 45\.00 ms; target ≤ 2\)/);
    assert.equal(lines.at(-4), '| none (ordinary alone) | 5.00 / 20.00 |  | 10.00 / 40.00 |  |  | 0 | 120 → 130 | 152 | yes | 0.50 |  |');
    assert.equal(lines.at(-3), '| PKESK flood: many packets | 5.00 / 30.00 | 1.50 | 10.00 / 100.00 | 2.22 | **no** | 0 | 130 → 160 | 150 | **no** | 0.90 | 12 × reply 451 4.3.4 (reply 451 4.3.4) |');
    assert.equal(lines.at(-1), '| none (ordinary alone) | 5.00 / 10.00 |  | 10.00 / 45.00 |  |  | 0 | 120 → 130 | 152 | yes | 0.50 |  |');
  });
});
