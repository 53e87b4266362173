/**
 * A recipient site whose DNS answers an attacker controls, and a sender's outbound decision for it: the real key
 * lookup against a fake DNS server, the sender's pin store, the daemon's KeyService and recipient policy.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PrivateKey } from 'openpgp';
import { KeyService } from '../../../src/daemon/key-service.ts';
import { decideRecipient, type RecipientDecision } from '../../../src/daemon/recipient-policy.ts';
import { createResolver, RR_TYPE } from '../../../src/dns/index.ts';
import { buildSiteTxt, createSiteKeyFinder, splitCharacterStrings, type SitePolicy } from '../../../src/keys/index.ts';
import { PinStore } from '../../../src/pins/index.ts';
import { startFakeDns, zoneHandler, type FakeDnsServer, type FakeRecord } from '../../support/dns-servers.ts';

/** The recipient site of the attack tests. */
export const PARTNER = 'partner.test';

/** The TXT record publishing `key` for {@link PARTNER}. */
export function txt(key: PrivateKey, policy: SitePolicy, maxAge: number): FakeRecord {
  return { name: `_muse.${PARTNER}`, type: RR_TYPE.TXT, ttl: 0, data: splitCharacterStrings(buildSiteTxt({ policy, maxAge, key: key.toPublic().write() })) };
}

/** The fingerprint of a key, as pins and decisions name it. */
export function fp(key: PrivateKey): string {
  return key.getFingerprint().toUpperCase();
}

/** A sender with a pin store, and the DNS its lookups reach. */
export interface Sender {
  /** What the DNS serves from now on, and whether it sets AD (as a validating loopback resolver does). */
  serve(records: readonly FakeRecord[], options?: { ad?: boolean }): void;
  /** The decision for a message to {@link PARTNER} now, after a fresh lookup (no cache from earlier steps). */
  send(): Promise<RecipientDecision>;
  readonly store: () => Promise<PinStore>;
  close(): Promise<void>;
}

/** Starts the fake DNS and a sender whose pin store lives in a new directory. */
export async function startSender(): Promise<Sender> {
  let handler = zoneHandler([]);
  const dns: FakeDnsServer = await startFakeDns((query, via) => handler(query, via));
  const sender = await startResolverSender(dns.address);
  return {
    serve(records, options = {}) {
      handler = zoneHandler(records, { ad: options.ad ?? false, negativeTtl: 0 });
    },
    send: () => sender.send(PARTNER),
    store: sender.store,
    async close() {
      await dns.close();
      await sender.close();
    },
  };
}

/** A sender with a pin store of its own whose lookups go to a given resolver (a fake server or a real one). */
export interface ResolverSender {
  /** The decision for a message to `domain` now, after a fresh lookup (no cache from earlier steps). */
  send(domain: string): Promise<RecipientDecision>;
  /** The pin store as a new process would read it from disk. */
  readonly store: () => Promise<PinStore>;
  close(): Promise<void>;
}

/** Starts a sender asking `server` (`host:port`), its pin store in a new directory. */
export async function startResolverSender(server: string): Promise<ResolverSender> {
  const dir = await mkdtemp(join(tmpdir(), 'muse-pin-attack-'));
  const pins = await PinStore.open(dir);
  return {
    async send(domain) {
      // A new resolver per message: each step sees the answer served now, as after the TTL has run out.
      const service = new KeyService(createSiteKeyFinder(createResolver({ servers: [server] })), pins);
      const { facts } = await service.domainKeys(domain);
      await pins.flushed();
      return decideRecipient(domain, facts, {
        policyFor: () => 'dns',
        isLocal: () => false,
        requireDnssec: false,
        signCleartext: 'always',
        actions: { dnsError: 'tempfail', noKeyRequired: 'tempfail' },
      });
    },
    store: () => PinStore.open(dir),
    close: () => rm(dir, { recursive: true, force: true }),
  };
}
