/**
 * A scriptable `_muse` zone for daemon tests, on the shared dns2 server of test/support/dns-servers.ts: each test
 * domain publishes site keys as TXT, KEY and/or OPENPGPKEY records (or nothing), and can be told to answer SERVFAIL,
 * to drop queries, or to stall them until the test releases them.
 */
import { Packet } from 'dns2';
import { RR_TYPE } from '../../../src/dns/index.ts';
import { buildKeyRdata, buildSiteTxt, splitCharacterStrings, type SitePolicy } from '../../../src/keys/index.ts';
import { reply, startFakeDns, type FakeDnsServer, type FakeRecord, type FakeReply } from '../../support/dns-servers.ts';

/** The record types a site key is published as. */
export type MuseRecordType = keyof typeof RR_TYPE;

/** How a domain publishes its keys. */
export interface Publication {
  /** The TXT policy (`p=`); default `opportunistic`. */
  readonly policy?: SitePolicy;
  /** The TXT pinning lifetime (`ma=`); default 0 (no pin). */
  readonly maxAge?: number;
  /** Which record types carry the keys; default all three. */
  readonly types?: readonly MuseRecordType[];
  /** TTL of the records, seconds; default 0, so every message asks again. */
  readonly ttl?: number;
  /** Set the AD flag (the loopback server then counts as a validating resolver). Default false. */
  readonly ad?: boolean;
}

/** What a domain does with queries instead of answering them. */
export type Misbehaviour = 'servfail' | 'drop' | 'stall';

interface DomainState {
  readonly records: readonly FakeRecord[];
  readonly ad: boolean;
  /** TTL of the SOA in negative answers (how long "no record" is cached). */
  readonly negativeTtl: number;
  misbehaviour: Misbehaviour | undefined;
}

/** A running `_muse` zone. */
export class MuseZone {
  private readonly domains = new Map<string, DomainState>();
  private stalled: Array<() => void> = [];
  private stallWaiters: Array<{ owner: string; resolve: () => void }> = [];
  private readonly stalledOwners: string[] = [];

  private constructor(private readonly server: FakeDnsServer) {}

  /** Starts the server on an ephemeral loopback port. */
  static async start(): Promise<MuseZone> {
    let zone: MuseZone | undefined;
    const server = await startFakeDns((query) => (zone as MuseZone).answer(query));
    zone = new MuseZone(server);
    return zone;
  }

  /** `127.0.0.1:port`, for `dns.servers`. */
  get address(): string {
    return this.server.address;
  }

  /** Publishes `keys` (binary transferable public keys) for `domain`, replacing what it published before. */
  publish(domain: string, keys: readonly Uint8Array[], publication: Publication = {}): void {
    const owner = `_muse.${domain}`;
    const ttl = publication.ttl ?? 0;
    const types = publication.types ?? ['TXT', 'KEY', 'OPENPGPKEY'];
    const records: FakeRecord[] = [];
    for (const key of keys) {
      if (types.includes('TXT')) {
        const text = buildSiteTxt({ policy: publication.policy ?? 'opportunistic', maxAge: publication.maxAge ?? 0, key });
        records.push({ name: owner, type: RR_TYPE.TXT, ttl, data: splitCharacterStrings(text) });
      }
      if (types.includes('KEY')) records.push({ name: owner, type: RR_TYPE.KEY, ttl, data: buildKeyRdata(key) });
      if (types.includes('OPENPGPKEY')) records.push({ name: owner, type: RR_TYPE.OPENPGPKEY, ttl, data: Buffer.from(key) });
    }
    this.domains.set(domain, { records, ad: publication.ad ?? false, negativeTtl: 0, misbehaviour: undefined });
  }

  /** Publishes nothing for `domain` (NXDOMAIN), the answer cached for `negativeTtl` seconds (default 0). */
  withdraw(domain: string, negativeTtl = 0): void {
    this.domains.set(domain, { records: [], ad: false, negativeTtl, misbehaviour: undefined });
  }

  /** Makes `domain` misbehave (or behave again, with undefined); what it publishes is kept. */
  misbehave(domain: string, misbehaviour: Misbehaviour | undefined): void {
    const state = this.domains.get(domain) ?? { records: [], ad: false, negativeTtl: 0, misbehaviour: undefined };
    state.misbehaviour = misbehaviour;
    this.domains.set(domain, state);
  }

  /** Answers every stalled query now, with what the domain publishes. */
  release(): void {
    for (const answer of this.stalled.splice(0)) answer();
  }

  /** Resolves once a query for `_muse.<domain>` is being held by the `stall` misbehaviour (at once if one was). */
  stalledQuery(domain: string): Promise<void> {
    const owner = `_muse.${domain}`.toLowerCase();
    if (this.stalledOwners.includes(owner)) return Promise.resolve();
    return new Promise((resolve) => this.stallWaiters.push({ owner, resolve }));
  }

  /** Queries received for `_muse.<domain>` so far. */
  queriesFor(domain: string): number {
    const owner = `_muse.${domain}`.toLowerCase();
    return this.server.queries.filter((q) => q.packet.questions[0]?.name.toLowerCase() === owner).length;
  }

  /** Stops the server; stalled queries are dropped. */
  async close(): Promise<void> {
    this.stalled = [];
    await this.server.close();
  }

  private answer(query: Packet): FakeReply | Promise<FakeReply> {
    const question = query.questions[0];
    if (question === undefined) return undefined;
    const name = question.name.toLowerCase();
    const domain = name.startsWith('_muse.') ? name.slice('_muse.'.length) : name;
    const state = this.domains.get(domain);
    const respond = (): Packet => {
      const answers = (state?.records ?? []).filter((r) => r.type === question.type);
      if (answers.length > 0) return reply(query, { answers, ad: state?.ad ?? false });
      const negative = { soaTtl: state?.negativeTtl ?? 0, ad: state?.ad ?? false };
      // NODATA when the name holds records of another type, NXDOMAIN when it holds none.
      return (state?.records.length ?? 0) > 0 ? reply(query, negative) : reply(query, { ...negative, rcode: Packet.RCODE.NXDOMAIN });
    };
    switch (state?.misbehaviour) {
      case 'servfail':
        return reply(query, { rcode: Packet.RCODE.SERVFAIL });
      case 'drop':
        return undefined;
      case 'stall':
        return new Promise<FakeReply>((resolve) => {
          this.stalled.push(() => resolve(respond()));
          this.stalledOwners.push(name);
          for (const waiter of this.stallWaiters.filter((w) => w.owner === name)) waiter.resolve();
          this.stallWaiters = this.stallWaiters.filter((w) => w.owner !== name);
        });
      case undefined:
        return respond();
    }
  }
}
