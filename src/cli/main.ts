#!/usr/bin/env node
/** Entry point of the `muse-milter` command (package.json `bin`): runs the command line, sets the exit code. */
import { runCli } from './cli.ts';

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
