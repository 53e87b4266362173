/**
 * The script-gateway baseline: one `gpg --sign --encrypt` process per message, as gateways built on a
 * pipe or content filter run it, with the same keys (the sending site's Ed25519 key, the recipients'
 * Curve25519 keys), armored output and no compression (as muse-milter's default). The gpg-agent that holds
 * the signing key is started once and shared, as it would be on a gateway. The MIME work a gateway does
 * around gpg is not counted: the baseline is gpg alone.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchMessage } from '../messages.ts';
import { percentile, round, type RunCounts } from '../stats.ts';

/** What a gpg run measured. */
export interface GpgResult extends RunCounts {
  readonly latencyMs: { readonly p50: number; readonly p99: number };
  /** CPU of the gpg processes (not the agent), in cores. */
  readonly cpuCores: number;
}

/** A GnuPG home with the keys imported. */
export interface GpgHome {
  readonly dir: string;
  /** `-r` arguments by recipient domain. */
  readonly recipientFingerprints: Readonly<Record<string, string>>;
  readonly senderFingerprint: string;
}

function gpg(home: string, args: readonly string[], input?: Buffer): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('gpg', ['--homedir', home, '--batch', '--no-tty', '--quiet', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/**
 * Makes a GnuPG home in `dir` (offline settings, INFRA.md §7) holding the sending site's secret key and the
 * recipients' public keys.
 */
export async function prepareGpgHome(dir: string, senderSecretArmored: string, senderFingerprint: string, recipients: Readonly<Record<string, { bytes: Uint8Array; fingerprint: string }>>): Promise<GpgHome> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, 'gpg.conf'), 'auto-key-locate clear,local\nno-auto-key-retrieve\ntrust-model always\n');
  const imported = await gpg(dir, ['--import'], Buffer.from(senderSecretArmored));
  if (imported.code !== 0) throw new Error(`gpg --import (site key) failed: ${imported.stderr}`);
  for (const key of Object.values(recipients)) {
    const result = await gpg(dir, ['--import'], Buffer.from(key.bytes));
    if (result.code !== 0) throw new Error(`gpg --import failed: ${result.stderr}`);
  }
  return {
    dir,
    senderFingerprint,
    recipientFingerprints: Object.fromEntries(Object.entries(recipients).map(([domain, key]) => [domain, key.fingerprint])),
  };
}

/** Stops the home's gpg-agent (it outlives the gpg processes that started it). */
export async function stopGpgAgent(home: GpgHome): Promise<void> {
  await new Promise<void>((resolve) => {
    const child = spawn('gpgconf', ['--homedir', home.dir, '--kill', 'gpg-agent'], { stdio: 'ignore' });
    child.once('error', () => resolve());
    child.once('close', () => resolve());
  });
}

/** CPU time of this process's waited-for children, seconds (/proc/self/stat cutime + cstime). */
function childrenCpuSeconds(): number {
  const text = readFileSync('/proc/self/stat', 'latin1');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** Runs `count` messages through gpg, `concurrency` processes at a time. */
export async function runGpg(home: GpgHome, message: (index: number) => BenchMessage, domainsOf: (index: number) => readonly string[], count: number, concurrency: number): Promise<GpgResult> {
  const latencies: number[] = [];
  const errors: string[] = [];
  let bytes = 0;
  let next = 0;
  const cpuBefore = childrenCpuSeconds();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const index = next++;
        const { raw } = message(index);
        const recipients = domainsOf(index).flatMap((domain) => ['-r', home.recipientFingerprints[domain] ?? domain]);
        const start = performance.now();
        // gpg at its best: the keyring is only read here (--lock-never), and without --no-random-seed-file
        // concurrent processes queue for the lock on the home's random_seed file, four times slower at 2 or
        // more at once (the baseline would measure the lock, not gpg).
        const args = ['--lock-never', '--no-random-seed-file', '--armor', '--compress-algo', 'none', '--sign', '--encrypt', '-u', home.senderFingerprint, ...recipients, '--output', '-'];
        const result = await gpg(home.dir, args, raw);
        if (result.code !== 0 || !result.stdout.subarray(0, 40).toString('latin1').includes('BEGIN PGP MESSAGE')) {
          errors.push(result.stderr.trim().split('\n')[0] ?? `exit ${result.code}`);
          continue;
        }
        latencies.push(performance.now() - start);
        bytes += raw.length;
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  latencies.sort((a, b) => a - b);
  return {
    messages: latencies.length,
    errors: errors.length,
    errorSamples: [...new Set(errors)].slice(0, 3),
    elapsedMs: round(elapsedMs, 1),
    messagesPerSecond: round((latencies.length * 1000) / elapsedMs, 1),
    bytesPerSecond: Math.round((bytes * 1000) / elapsedMs),
    latencyMs: { p50: round(percentile(latencies, 50), 3), p99: round(percentile(latencies, 99), 3) },
    cpuCores: round((childrenCpuSeconds() - cpuBefore) / (elapsedMs / 1000), 2),
  };
}
