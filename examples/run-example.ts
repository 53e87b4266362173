/**
 * Shared start-up for the example milters: listen where `--listen` (or MILTER_LISTEN) says, log to
 * stderr as JSON lines, shut down gracefully on SIGTERM or SIGINT.
 */
import { parseArgs } from 'node:util';
import { MilterServer, type MilterDefinition, type MilterLogger } from '../milter/src/index.ts';

const stderrLogger: MilterLogger = {
  debug: () => {},
  info: (message, fields) => process.stderr.write(`${JSON.stringify({ level: 'info', message, ...fields })}\n`),
  warn: (message, fields) => process.stderr.write(`${JSON.stringify({ level: 'warn', message, ...fields })}\n`),
  error: (message, fields) => process.stderr.write(`${JSON.stringify({ level: 'error', message, ...fields })}\n`),
};

/** Starts `definition` on the address from the command line and prints `listening ADDRESS` on stdout. */
export async function runExample(definition: MilterDefinition, defaultListen: string): Promise<MilterServer> {
  const { values } = parseArgs({ options: { listen: { type: 'string' } }, allowPositionals: false });
  const listen = values.listen ?? process.env.MILTER_LISTEN ?? defaultListen;
  const server = await MilterServer.start(definition, { listen, logger: stderrLogger });
  process.stdout.write(`listening ${server.address}\n`);
  const stop = (): void => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return server;
}

/** True when the module at `url` is the program being run (not imported by a test). */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && new URL(url).pathname === process.argv[1];
}
