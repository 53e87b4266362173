/**
 * Attack surface: clear text left on disk. A process killed while it held a spilled body (SIGKILL, OOM, power
 * loss) never removes its spool file, so message bodies in clear accumulated in the spool directory for ever. At
 * start the daemon removes every spill directory no live process owns; those of live processes (other workers
 * sharing the directory) and anything not named like a spill directory stay.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createInterface } from 'node:readline';
import { SPOOL_NAME_PREFIX, sweepSpoolDirectory } from '../../milter/src/index.ts';
import { makeSite, startMuse, type TestSite } from '../daemon/support/harness.ts';

let root: string;
let site: TestSite;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'muse-crash-spool-'));
  site = await makeSite('site.test');
});
after(() => rm(root, { recursive: true, force: true }));

/** A pid no process can have: above the kernel's largest. */
async function impossiblePid(): Promise<number> {
  return Number((await readFile('/proc/sys/kernel/pid_max', 'utf8')).trim()) + 1;
}

/** Spills a body in `directory` from a child process, then kills it with SIGKILL; returns the spill directory's name. */
async function crashWhileSpilled(directory: string): Promise<string> {
  const script = [
    "import { BodySpool } from './milter/src/body-spool.ts';",
    `const spool = new BodySpool({ maxMemory: 0, directory: ${JSON.stringify(directory)} });`,
    "await spool.write(Buffer.from('Subject: secret\\r\\n\\r\\nclear text\\r\\n'));",
    'await spool.flush();',
    "console.log('spilled');",
    'setInterval(() => undefined, 1 << 30);',
  ].join('\n');
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) if (line === 'spilled') break;
  child.kill('SIGKILL');
  const [code, signal] = await exited;
  assert.deepEqual([code, signal], [null, 'SIGKILL']);
  const names = (await readdir(directory)).filter((name) => name.startsWith(`${SPOOL_NAME_PREFIX}${child.pid}-`));
  assert.equal(names.length, 1);
  assert.deepEqual(await readdir(join(directory, names[0] as string)), ['body']);
  return names[0] as string;
}

describe('crash leftover spool', () => {
  test('the sweep removes spill directories of dead owners and of unknown owners, and nothing else', async () => {
    const spool = join(root, 'sweep');
    await mkdir(spool, { mode: 0o700 });
    const dead = `${SPOOL_NAME_PREFIX}${await impossiblePid()}-AbC123`;
    const unknownOwner = `${SPOOL_NAME_PREFIX}Qw3rTy`;
    const liveParent = `${SPOOL_NAME_PREFIX}${process.ppid}-ZZZZZZ`;
    const ours = `${SPOOL_NAME_PREFIX}${process.pid}-YYYYYY`;
    for (const name of [dead, unknownOwner, liveParent, ours]) {
      await mkdir(join(spool, name));
      await writeFile(join(spool, name, 'body'), 'clear text');
    }
    await writeFile(join(spool, 'notes.txt'), 'not a spill file');
    await mkdir(join(spool, 'milter-other'));

    assert.deepEqual(await sweepSpoolDirectory(spool), [dead, unknownOwner].sort());
    assert.deepEqual((await readdir(spool)).sort(), [liveParent, ours, 'milter-other', 'notes.txt'].sort());
    assert.deepEqual(await sweepSpoolDirectory(join(root, 'missing')), []);
  });

  test('a daemon starting on a spool directory with a killed process’s body removes it and says so', async (t) => {
    const spool = join(root, 'daemon-spool');
    await mkdir(spool, { mode: 0o700 });
    const leftover = await crashWhileSpilled(spool);
    const live = `${SPOOL_NAME_PREFIX}${process.ppid}-LIVE00`;
    await mkdir(join(spool, live));

    const muse = await startMuse({ site, dnsServer: '127.0.0.1:1', settings: { milter: { spoolDirectory: spool } } });
    t.after(() => muse.stop());
    assert.deepEqual(await readdir(spool), [live]);
    const notices = muse.lines.filter((l) => l.message === 'removed spool files left by a process that ended without cleaning up');
    assert.deepEqual(
      notices.map((l) => [l.level, l.directory, l.count]),
      [['notice', spool, 1]],
    );
    assert.ok(!(await readdir(spool)).includes(leftover));
  });
});
