/**
 * Site keys: the DNS record formats (docs/dns-records.md), key checks, the lookup that merges all three record
 * types, key generation and key files. This file is the public API of `src/keys/`.
 */
export { KeyError, type KeyErrorCode } from './errors.ts';
export { SITE_KEY_LABEL, domainOfAddressOrDomain, normaliseDomain, siteKeyOwner } from './domain.ts';
export {
  CHARACTER_STRING_MAX,
  MAX_AGE_LIMIT,
  MAX_KEY_BYTES,
  MUSE_VERSION,
  SITE_POLICIES,
  buildSiteTxt,
  isSitePolicy,
  parseSiteTxt,
  splitCharacterStrings,
  strongerPolicy,
  type SitePolicy,
  type SiteTxtRecord,
  type TxtParseResult,
} from './txt-record.ts';
export {
  KEY_ALGORITHM_PRIVATEDNS,
  KEY_FLAGS_ENTITY,
  KEY_PROTOCOL_EMAIL,
  OPENPGP_KEY_FORMAT_NAME,
  buildKeyRdata,
  parseKeyRdata,
  type KeyRrParseResult,
} from './key-rr.ts';
export { fingerprintOf, readPublicKeyBytes } from './openpgp-key.ts';
export { PARSED_KEY_CACHE_BYTES, PARSED_KEY_CACHE_SIZE, ParsedKeyCache } from './parsed-key-cache.ts';
export { MIN_RSA_BITS, validateSiteKey, type KeyRejectReason, type KeyValidation, type ValidatedKey } from './validate.ts';
export {
  LOOKUP_MEMO_SIZE,
  MAX_RECORDS_PER_TYPE,
  createSiteKeyFinder,
  lookupSiteKeys,
  type LookupDependencies,
  type RecordSource,
  type RejectReason,
  type RejectedKey,
  type SiteKey,
  type SiteKeyFinder,
  type SiteKeyLookup,
  type SourceReport,
} from './lookup.ts';
export { formatZoneRecords, siteKeyZoneRecords, type ZoneRecordOptions, type ZoneRecords } from './zone-lines.ts';
export { generateSiteKey } from './generate.ts';
export { provisionSiteKey, type ProvisionedSiteKey } from './provision.ts';
export { certifySuccessor, rotateSiteKey, type RotatedSiteKey } from './rotate.ts';
export { PRIVATE_KEY_MODE, readKeyFile, siteKeyPaths, writeSiteKeyFiles, type KeyFile, type SiteKeyFileContents, type SiteKeyPaths } from './key-files.ts';
export { loadSitePrivateKey, type LocalSiteKey, type PermissionPolicy } from './private-key.ts';
