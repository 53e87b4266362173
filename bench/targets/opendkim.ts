/**
 * OpenDKIM (Debian's opendkim, a C milter on libmilter) signing with an RSA-2048 key: the reference for
 * what a mature milter costs per message. Signing mode for the sending domain; 127.0.0.1 is an internal
 * host, so the load generator's messages are signed rather than verified.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SENDER_DOMAIN } from '../messages.ts';
import { startTarget, type TargetProcess } from './process.ts';

const run = promisify(execFile);

/** OpenDKIM's selector in the benchmark. */
const SELECTOR = 'bench';

/** Starts OpenDKIM in the foreground on a unix socket in `dir` or a loopback TCP port; the key is made first. */
export async function startOpenDkim(dir: string, listen: 'unix' | number): Promise<{ address: string; process: TargetProcess }> {
  await run('opendkim-genkey', ['-b', '2048', '-d', SENDER_DOMAIN, '-s', SELECTOR, '-D', dir]);
  const socket = listen === 'unix' ? `local:${join(dir, 'opendkim.sock')}` : `inet:${listen}@127.0.0.1`;
  const config = join(dir, 'opendkim.conf');
  await writeFile(
    config,
    [
      'Syslog no',
      'Mode s',
      `Domain ${SENDER_DOMAIN}`,
      `Selector ${SELECTOR}`,
      `KeyFile ${join(dir, `${SELECTOR}.private`)}`,
      `Socket ${socket}`,
      'InternalHosts 127.0.0.1',
      'Canonicalization relaxed/simple',
      // The key file is root's in a temporary directory; OpenDKIM's ownership check is for shared hosts.
      'RequireSafeKeys false',
      '',
    ].join('\n'),
  );
  const address = listen === 'unix' ? `unix:${join(dir, 'opendkim.sock')}` : `inet:127.0.0.1:${listen}`;
  const child = await startTarget({ command: 'opendkim', args: ['-f', '-x', config], address });
  return { address, process: child };
}
