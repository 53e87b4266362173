/**
 * OpenDKIM and OpenDMARC (Debian's packages) for the e2e topology, beside muse-milter as
 * examples/postfix/opendkim.cf chains them: a DKIM signer for the sending site, a DKIM verifier and a DMARC
 * checker for the receiving site, each a real daemon on a loopback port the kernel picked.
 *
 * DNS: OpenDKIM resolves through libunbound, which a configuration file points at the topology's unbound.
 * OpenDMARC only knows the system resolver (/etc/resolv.conf, port 53 and no other), so it runs in a private
 * mount namespace whose resolv.conf names a loopback address of its own, where {@link startPort53Forwarder}
 * relays each query to unbound's port.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HarnessError } from '../support/errors.ts';
import { runCommand, startDaemon, waitForPort, type DaemonProcess } from '../support/processes.ts';

/** The DKIM selector of the sending site. */
export const DKIM_SELECTOR = 'mail';

/** Bound on a daemon accepting connections. */
const READY_TIMEOUT_MS = 20_000;

/** A DKIM key made by opendkim-genkey. */
export interface DkimKey {
  readonly privateKeyPath: string;
  /** The zone lines (relative owner `mail._domainkey`) that publish the public key. */
  readonly zoneRecords: string;
}

/** Makes a 2048-bit RSA key for `domain` in `dir` with opendkim-genkey, as an administrator would. */
export async function makeDkimKey(domain: string, dir: string): Promise<DkimKey> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const result = await runCommand('opendkim-genkey', ['-b', '2048', '-d', domain, '-s', DKIM_SELECTOR, '-D', dir], { timeoutMs: 60_000 });
  if (result.code !== 0) throw new HarnessError('START_FAILED', `opendkim-genkey exited ${result.code}: ${result.stderr}`);
  return { privateKeyPath: join(dir, `${DKIM_SELECTOR}.private`), zoneRecords: readFileSync(join(dir, `${DKIM_SELECTOR}.txt`), 'utf8') };
}

/** A started milter daemon. */
export interface MilterDaemon {
  readonly port: number;
  /** What it printed so far. */
  output(): string;
  stop(): Promise<void>;
}

async function startMilterDaemon(file: string, args: readonly string[], port: number, name: string): Promise<MilterDaemon> {
  const daemon: DaemonProcess = await startDaemon(file, args);
  try {
    await waitForPort(port, {
      timeoutMs: READY_TIMEOUT_MS,
      failFast: () => {
        const status = daemon.exitStatus();
        if (status !== undefined) throw new HarnessError('START_FAILED', `${name} exited (${status.code ?? status.signal}): ${daemon.output()}`);
      },
    });
  } catch (error) {
    await daemon.stop();
    throw error;
  }
  return { port, output: () => daemon.output(), stop: () => daemon.stop() };
}

/** OpenDKIM signing every message from 127.0.0.1 whose From is `domain` (opendkim.conf: Mode s). */
export function startDkimSigner(dir: string, port: number, domain: string, key: DkimKey): Promise<MilterDaemon> {
  const config = join(dir, 'opendkim-sign.conf');
  writeFileSync(
    config,
    [
      'Syslog no',
      'Mode s',
      `Domain ${domain}`,
      `Selector ${DKIM_SELECTOR}`,
      `KeyFile ${key.privateKeyPath}`,
      `Socket inet:${port}@127.0.0.1`,
      'InternalHosts 127.0.0.1',
      'Canonicalization relaxed/simple',
      // The key file is root's in a private test directory; the ownership check is for shared hosts.
      'RequireSafeKeys false',
      '',
    ].join('\n'),
  );
  return startMilterDaemon('opendkim', ['-f', '-x', config], port, 'OpenDKIM (signing)');
}

/** OpenDKIM verifying every message (Mode v), its result under `authservId`, keys from unbound on `dnsPort`. */
export function startDkimVerifier(dir: string, port: number, authservId: string, dnsPort: number): Promise<MilterDaemon> {
  const resolver = join(dir, 'opendkim-unbound.conf');
  // libunbound refuses loopback upstreams unless told otherwise, and answers every name under test. itself
  // (RFC 6761) unless that default zone is switched off.
  writeFileSync(
    resolver,
    ['server:', '  do-not-query-localhost: no', '  local-zone: "test." nodefault', 'forward-zone:', '  name: "."', `  forward-addr: 127.0.0.1@${dnsPort}`, ''].join('\n'),
  );
  const config = join(dir, 'opendkim-verify.conf');
  writeFileSync(
    config,
    [
      'Syslog no',
      'Mode v',
      `AuthservID ${authservId}`,
      `Socket inet:${port}@127.0.0.1`,
      `ResolverConfiguration ${resolver}`,
      '',
    ].join('\n'),
  );
  return startMilterDaemon('opendkim', ['-f', '-x', config], port, 'OpenDKIM (verifying)');
}

/**
 * OpenDMARC judging every message under `authservId`, trusting the DKIM results written under the same id, with
 * the system resolver pointed (in its own mount namespace) at `resolverAddress`, a forwarder on port 53.
 */
export function startDmarc(dir: string, port: number, authservId: string, resolverAddress: string): Promise<MilterDaemon> {
  const resolvConf = join(dir, 'opendmarc-resolv.conf');
  writeFileSync(resolvConf, `nameserver ${resolverAddress}\noptions attempts:2 timeout:2\n`);
  // The mail comes from the tap on 127.0.0.1, which OpenDMARC would otherwise leave unjudged.
  const ignoreHosts = join(dir, 'opendmarc-ignore-hosts');
  writeFileSync(ignoreHosts, '192.0.2.1\n');
  const config = join(dir, 'opendmarc.conf');
  writeFileSync(
    config,
    [
      'Syslog false',
      `AuthservID ${authservId}`,
      `TrustedAuthservIDs ${authservId}`,
      `Socket inet:${port}@127.0.0.1`,
      `IgnoreHosts ${ignoreHosts}`,
      'SPFIgnoreResults true',
      'SPFSelfValidate false',
      'FailureReports false',
      '',
    ].join('\n'),
  );
  const script = `mount --bind '${resolvConf}' /etc/resolv.conf && exec opendmarc -f -c '${config}'`;
  return startMilterDaemon('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], port, 'OpenDMARC');
}

/** A UDP relay on port 53 of a loopback address of its own. */
export interface Port53Forwarder {
  /** The loopback address it listens on (port 53). */
  readonly address: string;
  close(): Promise<void>;
}

/**
 * Relays DNS over UDP from port 53 of a random 127.x.y.z address to `127.0.0.1:upstreamPort`, reply for reply.
 * The records OpenDMARC asks for (`_dmarc` TXT) fit a datagram.
 */
export async function startPort53Forwarder(upstreamPort: number): Promise<Port53Forwarder> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const octet = () => 1 + Math.floor(Math.random() * 254);
    const address = `127.${octet()}.${octet()}.${octet()}`;
    const server = createSocket('udp4');
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.bind(53, address, () => resolve(true));
    });
    if (!bound) {
      server.close();
      continue;
    }
    // A failed send to one client must not end the test process; that query just goes unanswered.
    server.on('error', () => undefined);
    const upstreams = new Set<UdpSocket>();
    server.on('message', (query, client) => {
      const upstream = createSocket('udp4');
      upstreams.add(upstream);
      const done = () => {
        upstreams.delete(upstream);
        upstream.close();
      };
      upstream.on('error', done);
      upstream.once('message', (answer) => {
        server.send(answer, client.port, client.address);
        done();
      });
      upstream.send(query, upstreamPort, '127.0.0.1');
    });
    return {
      address,
      close: async () => {
        for (const upstream of upstreams) upstream.close();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }
  throw new HarnessError('START_FAILED', 'no free port 53 on ten loopback addresses');
}
