/**
 * Example: the smallest useful milter. It adds one header at end of message and accepts; every other
 * step is negotiated away. It is also the protocol-plus-harness ceiling in the benchmarks.
 *
 * Run: node --import tsx examples/noop-milter.ts --listen unix:/run/noop-milter.sock
 */
import { ACCEPT, addHeader, defineMilter, type MilterDefinition } from '../milter/src/index.ts';
import { isMain, runExample } from './run-example.ts';

/** The no-op milter's definition. */
export function noopMilter(): MilterDefinition {
  return defineMilter({
    name: 'noop-milter',
    actions: ['addHeaders'],
    createHandler: () => ({
      endOfMessage: () => ({ verdict: ACCEPT, modifications: [addHeader('X-Noop', ' seen')] }),
    }),
  });
}

if (isMain(import.meta.url)) await runExample(noopMilter(), 'inet:127.0.0.1:8897');
