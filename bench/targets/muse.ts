/**
 * muse-milter under test: a data directory with the sending site's key and a configuration file, and the
 * daemon started from the compiled CLI (`run --config`), as an administrator runs it.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MALLOC_ARENAS, MALLOC_ARENAS_ENV } from '../../src/daemon/malloc-arenas.ts';
import { YOUNG_GENERATION_FLAG } from '../../src/daemon/young-generation.ts';
import { SENDER_DOMAIN } from '../messages.ts';
import { startTarget, type TargetProcess } from './process.ts';

/** The compiled CLI, next to the compiled benchmark. */
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** How to run muse-milter. */
export interface MuseSetup {
  /** A fresh directory for this instance (data, socket, log). */
  readonly dir: string;
  /** `unix` (a socket in `dir`) or a loopback TCP port. */
  readonly listen: 'unix' | number;
  /** `milter.workers`. */
  readonly workers: number | 'auto';
  /** The loopback DNS server, `127.0.0.1:PORT`. */
  readonly dns: string;
  readonly metricsPort: number;
  /** The sending site's armored private key. */
  readonly siteKey: string;
  /** Directory for `node --cpu-prof` profiles (one per process); no profiling when undefined. */
  readonly profileDir?: string;
  /** Every limit at its shipped default (the hostile-load phase); otherwise the message size limit is raised to 64 MiB. */
  readonly defaultLimits?: boolean;
}

/** Writes the instance's key and configuration; returns the milter address and the configuration path. */
async function prepare(setup: MuseSetup): Promise<{ address: string; config: string }> {
  await mkdir(join(setup.dir, 'keys'), { recursive: true, mode: 0o700 });
  await writeFile(join(setup.dir, 'keys', `${SENDER_DOMAIN}.private.asc`), setup.siteKey, { mode: 0o600 });
  const address = setup.listen === 'unix' ? `unix:${join(setup.dir, 'muse.sock')}` : `inet:127.0.0.1:${setup.listen}`;
  const config = join(setup.dir, 'muse.yaml');
  await writeFile(
    config,
    [
      `dataDirectory: ${setup.dir}`,
      'site:',
      `  domain: ${SENDER_DOMAIN}`,
      `  keyFile: keys/${SENDER_DOMAIN}.private.asc`,
      'milter:',
      `  listen: ${address}`,
      `  workers: ${setup.workers}`,
      'dns:',
      `  servers: [${setup.dns}]`,
      // The 50 MiB message and its headers must pass; the default limit is 50 MiB in total.
      ...(setup.defaultLimits === true ? [] : ['limits:', '  maxMessageSize: 64MiB']),
      'logging:',
      '  target: stdout',
      '  level: info',
      'metrics:',
      `  listen: 127.0.0.1:${setup.metricsPort}`,
      '',
    ].join('\n'),
  );
  return { address, config };
}

/** A running muse-milter. */
export interface MuseInstance {
  readonly address: string;
  readonly process: TargetProcess;
  /** The log (standard output). */
  readonly logFile: string;
  /** The configuration file it runs with. */
  readonly configFile: string;
}

/** Starts muse-milter; resolves when every worker listens. */
export async function startMuse(setup: MuseSetup): Promise<MuseInstance> {
  const { address, config } = await prepare(setup);
  const logFile = join(setup.dir, 'muse.log');
  const profile = setup.profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${setup.profileDir}`];
  const child = await startTarget({
    command: process.execPath,
    args: [...profile, YOUNG_GENERATION_FLAG, CLI, 'run', '--config', config],
    // As the muse-milter command's first line sets it.
    env: { ...process.env, [MALLOC_ARENAS_ENV]: MALLOC_ARENAS },
    stdoutFile: logFile,
    address,
    readyText: 'run: milter listening on',
  });
  return { address, process: child, logFile, configFile: config };
}
