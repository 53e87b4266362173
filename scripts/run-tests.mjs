// Runs every test file under test/ with node's test runner. Node 20 does not expand globs itself,
// and the shell's expansion depends on globstar, so the file list is built here.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

// Arguments may name test files or folders of them; none means every test under test/.
const only = process.argv.slice(2).flatMap((path) => (statSync(path).isDirectory() ? findTests(path) : [path]));
const files = process.argv.length > 2 ? only : findTests('test');
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
