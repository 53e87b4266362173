#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=2
/**
 * Entry point of the `muse-milter` command (package.json `bin`): runs the command line, sets the exit code. The
 * first line starts Node with the daemon's young-generation cap (src/daemon/young-generation.ts).
 */
import { runCli } from './cli.ts';

const argv = process.argv.slice(2);

// A tool whose reader went away (`muse-milter lookup example.org | head -1`) has nothing left to say: it ends
// quietly and successfully, as cat or grep do. The daemon (`run`) is left alone: its output is its log.
if (argv[0] !== 'run') {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(0);
      throw error;
    });
  }
}

process.exitCode = await runCli(argv, {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
