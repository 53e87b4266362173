/**
 * The young-generation cap (src/daemon/young-generation.ts): how it is recognised on the command line and in
 * NODE_OPTIONS, what worker processes are given, and that every way the daemon is started carries it. That the
 * cap bounds the memory of a large message is measured by test/security/inbound-memory.test.ts (whose daemon runs
 * with the command's options) and by `npm run bench`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { workerExecArgv, YOUNG_GENERATION_FLAG, youngGenerationCapped, youngGenerationWarning } from '../../src/daemon/young-generation.ts';

describe('young-generation cap', () => {
  it('is recognised on the command line and in NODE_OPTIONS, in either spelling and with any value', () => {
    assert.equal(youngGenerationCapped([YOUNG_GENERATION_FLAG], undefined), true);
    assert.equal(youngGenerationCapped(['--import', 'tsx', '--max_semi_space_size=8'], ''), true);
    assert.equal(youngGenerationCapped(['--max-semi-space-size', '4'], undefined), true);
    assert.equal(youngGenerationCapped([], '--enable-source-maps  --max-semi-space-size=1'), true);
    assert.equal(youngGenerationCapped(['--import', 'tsx', '--max-old-space-size=512'], '--max-semi-space-sizes=2'), false);
    assert.equal(youngGenerationCapped([], undefined), false);
  });

  it('is given to worker processes that lack it, and an existing value is kept', () => {
    assert.deepEqual(workerExecArgv(['--import', 'tsx'], undefined), [YOUNG_GENERATION_FLAG, '--import', 'tsx']);
    assert.deepEqual(workerExecArgv(['--max-semi-space-size=8'], undefined), ['--max-semi-space-size=8']);
    assert.deepEqual(workerExecArgv([], '--max-semi-space-size=1'), []);
  });

  it('is missing: run warns, naming the option', () => {
    assert.equal(youngGenerationWarning([YOUNG_GENERATION_FLAG], undefined), undefined);
    assert.equal(
      youngGenerationWarning([], undefined),
      `Node was started without ${YOUNG_GENERATION_FLAG}: a large message may hold tens of MiB more memory than docs/security.md §7 states. Start the daemon with the muse-milter command or "node ${YOUNG_GENERATION_FLAG} .../cli/main.js run"`,
    );
  });

  it('is passed by the muse-milter command and by npm start', () => {
    assert.equal(readFileSync('src/cli/main.ts', 'utf8').split('\n', 1)[0], `#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node ${YOUNG_GENERATION_FLAG}`);
    const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
    assert.equal(scripts.start, `sh scripts/prepare.sh start && MALLOC_ARENA_MAX=2 node ${YOUNG_GENERATION_FLAG} dist/src/cli/main.js run`);
  });
});
