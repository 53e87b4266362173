/** The no-op milter (examples/noop-milter.ts, compiled): the protocol-plus-harness ceiling. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTarget, type TargetProcess } from './process.ts';

const NOOP = fileURLToPath(new URL('../../examples/noop-milter.js', import.meta.url));

/** Starts the no-op milter on a unix socket in `dir` or a loopback TCP port. */
export async function startNoop(dir: string, listen: 'unix' | number): Promise<{ address: string; process: TargetProcess }> {
  const address = listen === 'unix' ? `unix:${join(dir, 'noop.sock')}` : `inet:127.0.0.1:${listen}`;
  const child = await startTarget({ command: process.execPath, args: [NOOP, '--listen', address], address });
  return { address, process: child };
}
