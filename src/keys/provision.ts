/**
 * Creates a site's key and everything to publish for it in one step: used by `muse-milter genkey` and by
 * the daemon's first run with the embedded configuration.
 */
import { generateSiteKey } from './generate.ts';
import { writeSiteKeyFiles, type SiteKeyPaths } from './key-files.ts';
import { formatZoneRecords, siteKeyZoneRecords, type ZoneRecordOptions } from './zone-lines.ts';

/** What was written, and the zone lines to publish. */
export interface ProvisionedSiteKey {
  readonly paths: SiteKeyPaths;
  readonly zone: string;
  readonly fingerprint: string;
}

/**
 * Generates a site key for `record.domain` and writes `DOMAIN.private.asc` (mode 0600),
 * `DOMAIN.public.asc` and `DOMAIN.zone` into `dir`. Refuses to overwrite unless `overwrite`.
 */
export async function provisionSiteKey(dir: string, record: ZoneRecordOptions, overwrite: boolean): Promise<ProvisionedSiteKey> {
  const privateKey = await generateSiteKey(record.domain);
  const publicKey = privateKey.toPublic();
  const zone = formatZoneRecords(siteKeyZoneRecords(publicKey, record));
  const paths = await writeSiteKeyFiles(dir, record.domain, { privateArmored: privateKey.armor(), publicArmored: publicKey.armor(), zone }, overwrite);
  return { paths, zone, fingerprint: publicKey.getFingerprint().toUpperCase() };
}
