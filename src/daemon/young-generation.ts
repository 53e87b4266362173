/**
 * The V8 young-generation cap the daemon runs with. A message is handled as a stream of chunks, and every stage
 * (socket, spool, dearmor, decryption, inflation, delivery) hands on new buffers; their memory lives outside the
 * JavaScript heap and is returned only when the collector frees the small objects that own it. With Node's default
 * young generation (semi-spaces of up to 16 MiB) the collector runs rarely during such a stream, so tens of
 * megabytes of spent buffers wait for it, more than the memory budget of a 50 MiB message (docs/security.md §7).
 * Semi-spaces of 2 MiB make it run every few megabytes of chunks; the pauses stay short because few of these
 * objects survive. The cap can only be set when the process starts: the `muse-milter` command's first line and
 * `npm start` pass it, worker processes get it from their primary, and `run` warns when it is missing.
 */

/** The Node option, as the command line carries it. */
export const YOUNG_GENERATION_FLAG = '--max-semi-space-size=2';

const OPTION = '--max-semi-space-size';

/** Whether any of `options` sets a semi-space cap (the administrator's own value counts too; V8 reads `_` as `-`). */
function setsCap(options: readonly string[]): boolean {
  return options.some((option) => {
    const name = option.split('=', 1)[0]?.replaceAll('_', '-');
    return name === OPTION;
  });
}

/**
 * Whether this process was started with a semi-space cap, on the command line (`execArgv`) or in NODE_OPTIONS.
 * NODE_OPTIONS is split on blanks, which is how Node reads it for options without quoted values.
 */
export function youngGenerationCapped(execArgv: readonly string[] = process.execArgv, nodeOptions: string | undefined = process.env.NODE_OPTIONS): boolean {
  return setsCap(execArgv) || setsCap((nodeOptions ?? '').split(/\s+/).filter((word) => word !== ''));
}

/** The Node options of a worker process: the primary's own, with the cap added when they have none. */
export function workerExecArgv(execArgv: readonly string[] = process.execArgv, nodeOptions: string | undefined = process.env.NODE_OPTIONS): string[] {
  return youngGenerationCapped(execArgv, nodeOptions) ? [...execArgv] : [YOUNG_GENERATION_FLAG, ...execArgv];
}

/** The warning `run` prints when the cap is missing; undefined when it is set. */
export function youngGenerationWarning(execArgv: readonly string[] = process.execArgv, nodeOptions: string | undefined = process.env.NODE_OPTIONS): string | undefined {
  if (youngGenerationCapped(execArgv, nodeOptions)) return undefined;
  return `Node was started without ${YOUNG_GENERATION_FLAG}: a large message may hold tens of MiB more memory than docs/security.md §7 states. Start the daemon with the muse-milter command or "node ${YOUNG_GENERATION_FLAG} .../cli/main.js run"`;
}
