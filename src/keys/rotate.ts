/**
 * Rotating a site key (docs/dns-records.md §9): a new key the old one certifies, so that senders holding a pin of
 * the old key follow the rotation without DNSSEC (src/pins/certification.ts checks the statement).
 */
import type { PrivateKey } from 'openpgp';
import { normaliseDomain } from './domain.ts';
import { KeyError } from './errors.ts';
import { generateSiteKey } from './generate.ts';
import { writeSiteKeyFiles, type SiteKeyPaths } from './key-files.ts';
import { fingerprintOf } from './openpgp-key.ts';
import { formatZoneRecords, siteKeyZoneRecords, type ZoneRecordOptions } from './zone-lines.ts';

/**
 * `next` with a certification by `previous`'s primary key over each of its user IDs: a standard OpenPGP
 * third-party certification (type 0x10), which travels inside `next`'s published public key.
 * @throws KeyError `KEY_MALFORMED` when `previous` cannot certify (no usable certification key at `now`)
 */
export async function certifySuccessor(previous: PrivateKey, next: PrivateKey, now: Date = new Date()): Promise<PrivateKey> {
  try {
    return await next.signAllUsers([previous], now);
  } catch (error) {
    throw new KeyError('KEY_MALFORMED', `the key ${fingerprintOf(previous)} cannot certify its successor: ${(error as Error).message}`, { cause: error });
  }
}

/** What a rotation wrote, and the records of both keys for the overlap. */
export interface RotatedSiteKey {
  /** The new key's files, next to the old ones. */
  readonly paths: SiteKeyPaths;
  readonly fingerprint: string;
  readonly previousFingerprint: string;
  /** Zone lines of the old key (unchanged) and of the new one, to publish side by side during the overlap. */
  readonly zone: string;
}

/**
 * Generates the successor of `previous` for `record.domain` (same parameters as a new site key), has `previous`
 * certify it, and writes its files into `dir` under the new key ID (`<domain>.<KEYID>.private.asc` …), never
 * overwriting anything.
 */
export async function rotateSiteKey(dir: string, previous: PrivateKey, record: ZoneRecordOptions, now: Date = new Date()): Promise<RotatedSiteKey> {
  const domain = normaliseDomain(record.domain);
  const next = await certifySuccessor(previous, await generateSiteKey(domain, now), now);
  const publicKey = next.toPublic();
  const newZone = formatZoneRecords(siteKeyZoneRecords(publicKey, record));
  const zone = formatZoneRecords(siteKeyZoneRecords(previous.toPublic(), record)) + newZone;
  const tag = next.getKeyID().toHex().toUpperCase();
  const paths = await writeSiteKeyFiles(dir, domain, { privateArmored: next.armor(), publicArmored: publicKey.armor(), zone: newZone }, false, tag);
  return { paths, fingerprint: fingerprintOf(next), previousFingerprint: fingerprintOf(previous), zone };
}
