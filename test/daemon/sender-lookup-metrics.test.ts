/** Inbound sender-key lookups reach the DNS metrics hook, as recipient lookups do. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyService } from '../../src/daemon/key-service.ts';
import type { SiteKeyFinder, SiteKeyLookup } from '../../src/keys/index.ts';

const NONE: SiteKeyLookup = {
  domain: 'a.test',
  owner: '_muse.a.test',
  status: 'none',
  keys: [],
  rejected: [],
  policy: null,
  maxAge: 0,
  dnssec: false,
  dnssecReason: 'no records',
  sources: [{ type: 'TXT', outcome: 'nxdomain', records: 0, foreign: 0, dnssec: null, server: '127.0.0.1:53', transport: 'udp', cache: { state: 'hit', remainingMs: 1000 } }],
} as unknown as SiteKeyLookup;

describe('KeyService.senderKeys', () => {
  it('reports each lookup to lookupDone, cached or not', async () => {
    const finder: SiteKeyFinder = { findSiteKeys: async () => NONE };
    const seen: Array<[string, boolean]> = [];
    const service = new KeyService(finder, undefined, () => new Date(), { lookupDone: (domain, seconds, cached) => void (assert.ok(seconds >= 0), seen.push([domain, cached])) });
    assert.equal(await service.senderKeys('a.test'), null);
    assert.deepEqual(seen, [['a.test', true]]);
  });
});
