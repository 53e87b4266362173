/**
 * Zone-file text for a site key: the TXT, KEY and OPENPGPKEY records of docs/dns-records.md, in RFC 1035 §5
 * master-file syntax, with absolute owner names so the lines can go into any zone file.
 */
import type { PublicKey } from 'openpgp';
import { normaliseDomain, siteKeyOwner } from './domain.ts';
import { buildKeyRdata, keyRdataPresentation } from './key-rr.ts';
import { fingerprintOf } from './openpgp-key.ts';
import { buildSiteTxt, splitCharacterStrings, type SitePolicy } from './txt-record.ts';

/** What goes into the records besides the key. */
export interface ZoneRecordOptions {
  readonly domain: string;
  readonly policy: SitePolicy;
  /** Pinning lifetime, seconds. */
  readonly maxAge: number;
  /** TTL of the records, seconds. */
  readonly ttl: number;
}

/** The records for one key, each a complete zone-file entry (possibly spanning lines in parentheses). */
export interface ZoneRecords {
  /** A comment naming the key, for the operator. */
  readonly comment: string;
  readonly TXT: string;
  readonly KEY: string;
  readonly OPENPGPKEY: string;
}

/** Width of base64 lines inside parentheses; any width works, this one reads well. */
const BASE64_LINE = 64;

/** Builds the three records publishing `key` for a site. */
export function siteKeyZoneRecords(key: PublicKey, options: ZoneRecordOptions): ZoneRecords {
  const binary = key.write();
  const site = normaliseDomain(options.domain);
  const owner = `${siteKeyOwner(site)}.`;
  const lead = `${owner} ${options.ttl} IN`;
  const indent = ' '.repeat(lead.length + 1);
  const strings = splitCharacterStrings(buildSiteTxt({ policy: options.policy, maxAge: options.maxAge, key: binary }));
  const keyRdata = keyRdataPresentation(buildKeyRdata(binary));
  return {
    comment:
      `; MUSE site key for ${site}: ${fingerprintOf(key)}, ` +
      `created ${key.getCreationTime().toISOString()}, policy ${options.policy}, max-age ${options.maxAge}`,
    // Character-strings hold only base64 and tag characters, so no quoting or escaping is needed inside them.
    TXT: `${lead} TXT ( ${strings.map((s) => `"${s}"`).join(`\n${indent}      `)} )`,
    KEY: `${lead} KEY ( ${keyRdata.fields}\n${wrap(keyRdata.base64, indent)} )`,
    OPENPGPKEY: `${lead} OPENPGPKEY (\n${wrap(Buffer.from(binary).toString('base64'), indent)} )`,
  };
}

/** Joins records into zone-file text, one blank-line-free block ending in a newline. */
export function formatZoneRecords(records: ZoneRecords): string {
  return `${records.comment}\n${records.TXT}\n${records.KEY}\n${records.OPENPGPKEY}\n`;
}

function wrap(base64: string, indent: string): string {
  const lines: string[] = [];
  for (let at = 0; at < base64.length; at += BASE64_LINE) lines.push(indent + base64.slice(at, at + BASE64_LINE));
  return lines.join('\n');
}
