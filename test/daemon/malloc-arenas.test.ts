/**
 * Two allocator arenas: `run` warns on Linux when the process started without the cap, and the primary gives it to
 * worker processes it does not already reach. Through the daemon: test/daemon/workers.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mallocArenaWarning, MALLOC_ARENAS_ENV, workerMallocEnv } from '../../src/daemon/malloc-arenas.ts';

describe('allocator arenas', () => {
  it('run warns on Linux when the cap is missing, naming the variable and the command that sets it', () => {
    assert.equal(
      mallocArenaWarning({}, 'linux'),
      'MALLOC_ARENA_MAX is not set: each thread keeps its own allocator arena, and resident memory may grow tens of MiB above what the limits imply. Start the daemon with the muse-milter command or "MALLOC_ARENA_MAX=2 node ... run"',
    );
    assert.equal(mallocArenaWarning({ [MALLOC_ARENAS_ENV]: '2' }, 'linux'), undefined);
    // An administrator's own value is theirs to choose.
    assert.equal(mallocArenaWarning({ [MALLOC_ARENAS_ENV]: '4' }, 'linux'), undefined);
    // Other systems' allocators do not read it.
    assert.equal(mallocArenaWarning({}, 'freebsd'), undefined);
  });

  it('a worker process gets two arenas unless the primary has a value, which it then inherits', () => {
    assert.deepEqual(workerMallocEnv({}), { MALLOC_ARENA_MAX: '2' });
    assert.deepEqual(workerMallocEnv({ [MALLOC_ARENAS_ENV]: '4' }), {});
  });
});
