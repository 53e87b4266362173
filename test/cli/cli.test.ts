/** The dispatcher: help, usage errors (exit 2), failures (exit 1), and the real entry point as a process. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { VERBS } from '../../src/cli/cli.ts';
import { YOUNG_GENERATION_FLAG } from '../../src/daemon/young-generation.ts';
import { cli } from './run-cli.ts';

describe('muse-milter', () => {
  it('lists the verbs with --help and exits 0', async () => {
    const result = await cli('--help');
    assert.equal(result.code, 0);
    assert.equal(result.stderr, '');
    assert.match(result.stdout, /^Usage: muse-milter <verb> \[options\]\n\nVerbs:\n/);
    for (const verb of ['run', 'init', 'check-config', 'genkey', 'rotate', 'dns-record', 'testkey', 'lookup', 'pins']) assert.match(result.stdout, new RegExp(`\\n  ${verb} +\\S`));
    assert.deepEqual(
      VERBS.map((v) => v.name),
      ['run', 'init', 'check-config', 'genkey', 'rotate', 'dns-record', 'testkey', 'lookup', 'pins'],
    );
  });

  it('prints usage on stderr and exits 2 without a verb', async () => {
    const result = await cli();
    assert.equal(result.code, 2);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^Usage: muse-milter/);
  });

  it('shows a verb help with --help, -h and "help VERB"', async () => {
    for (const args of [['lookup', '--help'], ['lookup', '-h'], ['help', 'lookup']]) {
      const result = await cli(...args);
      assert.equal(result.code, 0, args.join(' '));
      assert.match(result.stdout, /^Usage: muse-milter lookup \[options\] \[DOMAIN\|ADDRESS\]\n/);
      assert.match(result.stdout, /\n  --dns HOST:PORT +resolver to ask, .*\(repeatable\)\n/);
      assert.match(result.stdout, /\n  --pin-dir DIR +directory of the pin store/);
      assert.match(result.stdout, /Exit status: 0 looked up/);
    }
  });

  const usageErrors: [string[], RegExp][] = [
    [['frobnicate'], /^muse-milter: unknown verb "frobnicate"\nTry "muse-milter --help"\.\n$/],
    [['help', 'frobnicate'], /unknown verb "frobnicate"/],
    [['genkey', '--domain', 'example.test', '--bogus'], /^muse-milter genkey: Unknown option '--bogus'/],
    [['genkey', '--dir', '/nonexistent'], /^muse-milter genkey: --domain is required\nTry "muse-milter genkey --help"\.\n$/],
    [['genkey', '--domain'], /argument missing/],
    [['genkey', '--domain', 'localhost', '--dir', '/nonexistent'], /not a usable mail domain: "localhost"/],
    [['genkey', '--domain', 'example.test', '--policy', 'reject'], /--policy must be testing, opportunistic or enforce, not "reject"/],
    [['genkey', '--domain', 'example.test', '--max-age', '1w'], /--max-age must be a number of seconds up to 31557600/],
    [['genkey', '--domain', 'example.test', 'extra'], /unexpected argument "extra"/],
    [['lookup'], /give the site once/],
    [['lookup', 'a.test', '--domain', 'b.test'], /give the site once/],
    [['lookup', 'a.test', 'b.test'], /unexpected argument "b.test"/],
    [['lookup', 'example.test', '--dns', 'resolver.example:53'], /--dns: not a resolver address/],
    [['lookup', 'example.test', '--dns', '[::1]53'], /--dns: not a resolver address/],
    [['testkey', '--domain', 'example.test', '--dns', '127.0.0.1:99999'], /--dns: bad port/],
  ];
  for (const [args, pattern] of usageErrors) {
    it(`exits 2 for: ${args.join(' ') || '(nothing)'}`, async () => {
      const result = await cli(...args);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, pattern);
    });
  }

  it('exits 1 with the error code and message when a verb fails', async () => {
    const result = await cli('dns-record', '--domain', 'example.test', '--key', '/nonexistent/key.asc');
    assert.equal(result.code, 1);
    assert.equal(result.stderr, 'muse-milter dns-record: KEY_FILE_UNREADABLE: cannot read /nonexistent/key.asc: ENOENT\n');
  });

  it('runs as a program: shebang, exit codes from the process', () => {
    assert.ok(readFileSync('src/cli/main.ts', 'utf8').startsWith(`#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node ${YOUNG_GENERATION_FLAG}\n`));
    const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8', timeout: 30_000 });
    const help = run('--help');
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^Usage: muse-milter <verb>/);
    const bad = run('nope');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown verb "nope"/);
  });
});
