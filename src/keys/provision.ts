/**
 * Creates a site's key and everything to publish for it in one step: used by `muse-milter genkey` and by
 * the daemon's first run with the embedded configuration.
 */
import { chown } from 'node:fs/promises';
import { generateSiteKey } from './generate.ts';
import { writeSiteKeyFiles, type SiteKeyPaths } from './key-files.ts';
import { formatZoneRecords, siteKeyZoneRecords, type ZoneRecordOptions } from './zone-lines.ts';

/** What was written, and the zone lines to publish. */
export interface ProvisionedSiteKey {
  readonly paths: SiteKeyPaths;
  readonly zone: string;
  readonly fingerprint: string;
}

/** The account that is to own the written files (the one the daemon runs as). */
export interface FileOwner {
  readonly uid: number;
  readonly gid: number;
}

/**
 * Generates a site key for `record.domain` and writes `DOMAIN.private.asc` (mode 0600),
 * `DOMAIN.public.asc` and `DOMAIN.zone` into `dir`. Refuses to overwrite unless `overwrite`. With `owner`, the files
 * are given to that account (the private key stays 0600: readable by it and no one else).
 */
export async function provisionSiteKey(dir: string, record: ZoneRecordOptions, overwrite: boolean, owner?: FileOwner): Promise<ProvisionedSiteKey> {
  const privateKey = await generateSiteKey(record.domain);
  const publicKey = privateKey.toPublic();
  const zone = formatZoneRecords(siteKeyZoneRecords(publicKey, record));
  const paths = await writeSiteKeyFiles(dir, record.domain, { privateArmored: privateKey.armor(), publicArmored: publicKey.armor(), zone }, overwrite);
  if (owner !== undefined) for (const path of [paths.privateKey, paths.publicKey, paths.zone]) await chown(path, owner.uid, owner.gid);
  return { paths, zone, fingerprint: publicKey.getFingerprint().toUpperCase() };
}
