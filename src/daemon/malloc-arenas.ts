/**
 * glibc's allocator gives each thread that allocates its own arena. The daemon's event loop, its two opening threads,
 * V8's collector helpers and libuv's pool all allocate buffers, and memory freed in an arena stays with the process:
 * under a stream of messages each arena keeps its peak, and the worker's resident memory rose up to 20 MiB above the
 * bound its limits imply (BENCHMARKS.md, "Hostile load"). Two arenas keep far less of it. glibc reads the
 * setting once, when the process starts, so it is given in the environment: by the `muse-milter` command's first
 * line, `npm start`, and the primary to its worker processes.
 */

/** The environment variable, and the value the daemon runs with. */
export const MALLOC_ARENAS_ENV = 'MALLOC_ARENA_MAX';
export const MALLOC_ARENAS = '2';

/** The environment for a worker process: the primary's, with the arena cap added when the primary has none. */
export function workerMallocEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return env[MALLOC_ARENAS_ENV] === undefined ? { [MALLOC_ARENAS_ENV]: MALLOC_ARENAS } : {};
}

/** The warning `run` prints on Linux when the process started without a cap; undefined when it has one. */
export function mallocArenaWarning(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string | undefined {
  if (platform !== 'linux' || env[MALLOC_ARENAS_ENV] !== undefined) return undefined;
  return `${MALLOC_ARENAS_ENV} is not set: each thread keeps its own allocator arena, and resident memory may grow tens of MiB above what the limits imply. Start the daemon with the muse-milter command or "${MALLOC_ARENAS_ENV}=${MALLOC_ARENAS} node ... run"`;
}
