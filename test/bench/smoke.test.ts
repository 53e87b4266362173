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
import { runLoad } from '../../bench/load-generator.ts';
import { buildMessage, recipientDomains } from '../../bench/messages.ts';
import { markdown, summariseRuns, type BenchReport, type RunRecord } from '../../bench/report.ts';

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
});
