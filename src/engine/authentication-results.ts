/**
 * The Authentication-Results field (RFC 8601) reporting an inbound verdict, and the removal of
 * fields that claim to come from this host (RFC 8601 §5: a forged result with our authserv-id must
 * not reach the user), whatever the shape of the message.
 *
 * Written as, folded with CRLF + TAB (absent values are left out):
 *   Authentication-Results: <authserv-id>;
 *     x-muse=<result> reason="<reason>"
 *     header.from=<domain>
 *     policy.key-fingerprint=<hex>
 *     policy.dnssec=<yes|no>
 *     policy.encrypted=<yes|no>
 */
import { readAuthenticationResults } from '../mail/authentication-results.ts';
import { fieldsNamed, type HeaderField } from '../mime/header-fields.ts';
import { groupFields, nameKey, syncGroupEdits, type HeaderEdit } from './header-edits.ts';
import type { Verdict } from './verdict.ts';

/** The field name. */
export const AUTHENTICATION_RESULTS = 'Authentication-Results';
/** The method name; `x-` because it is not registered with IANA. */
export const AUTH_METHOD = 'x-muse';

const FOLD = '\r\n\t';

/** The raw field value (leading space, folded) for `verdict`. */
export function authenticationResultsValue(authservId: string, verdict: Verdict): string {
  let value = ` ${authservId};${FOLD}${AUTH_METHOD}=${verdict.result} reason="${verdict.reason}"`;
  if (verdict.domain !== null) value += `${FOLD}header.from=${verdict.domain}`;
  const policy: string[] = [];
  if (verdict.fingerprint !== null) policy.push(`policy.key-fingerprint=${verdict.fingerprint}`);
  if (verdict.dnssec !== null) policy.push(`policy.dnssec=${verdict.dnssec ? 'yes' : 'no'}`);
  policy.push(`policy.encrypted=${verdict.encrypted ? 'yes' : 'no'}`);
  return value + FOLD + policy.join(FOLD);
}

/** The field outbound protection adds (see outbound.ts); on inbound mail only this site's own verdict counts. */
const PROTECTION_FIELD_NAME = 'Muse-Protection';

/** Prefix of the fields in which inbound delivery carries header values nobody vouched for (docs/security.md). */
export const UNVERIFIED_PREFIX = 'Muse-Unverified-';

/**
 * Whether an incoming Authentication-Results value must go: it claims our authserv-id (compared after comments
 * and quoting are removed, case-insensitively, RFC 8601 §5) and reports our method, or claims our id and cannot
 * be read to the end (a lenient reader might find our method in it), or cannot be read at all. Results of other
 * methods under our id (OpenDKIM's or OpenDMARC's, earlier in the same milter chain) stay.
 */
function claimsOurResult(value: string, own: string): boolean {
  const claim = readAuthenticationResults(value);
  if (claim === null) return true;
  if (claim.authservId !== own) return false;
  return !claim.complete || claim.methods.some((m) => m === AUTH_METHOD || m.startsWith(`${AUTH_METHOD}/`));
}

/** Options of {@link forgedFieldDeletions}. */
export interface ForgedFieldOptions {
  /**
   * Delete `Muse-Protection` fields too (default). Off for outgoing mail: the outbound side writes that field
   * itself and replaces any the message brought.
   */
  readonly protection?: boolean;
}

/**
 * Deletions of the fields an incoming message may carry only if someone forged them: Authentication-Results
 * fields claiming an `x-muse` result under our authserv-id, any `Muse-Protection` field (unless
 * `options.protection` is false), and any field in our {@link UNVERIFIED_PREFIX} namespace. Highest index first per
 * name, so each deletion leaves the indices of the remaining ones intact.
 */
export function forgedFieldDeletions(fields: readonly HeaderField[], authservId: string, options: ForgedFieldOptions = {}): HeaderEdit[] {
  const own = authservId.toLowerCase();
  const deletions: HeaderEdit[] = [];
  const groups = groupFields(fields);
  const existing = groups.get(nameKey(AUTHENTICATION_RESULTS))?.fields ?? [];
  for (let i = existing.length; i >= 1; i--) {
    if (claimsOurResult((existing[i - 1] as HeaderField).value, own)) deletions.push({ op: 'change', name: AUTHENTICATION_RESULTS, index: i, value: '' });
  }
  const protection = (options.protection ?? true) ? nameKey(PROTECTION_FIELD_NAME) : null;
  const unverified = nameKey(UNVERIFIED_PREFIX);
  for (const [key, group] of groups) {
    if (key !== protection && !key.startsWith(unverified)) continue;
    for (const edit of syncGroupEdits(group.fields, group.name, [])) deletions.push(edit);
  }
  return deletions;
}

/**
 * Whether a message carries an `x-muse` result under our authserv-id: on outbound mail, a message this site
 * decrypted (or verified) on its way in is leaving again, a forward.
 */
export function carriesOurResult(fields: readonly HeaderField[], authservId: string): boolean {
  const own = authservId.toLowerCase();
  return fieldsNamed(fields, AUTHENTICATION_RESULTS).some((field) => {
    const claim = readAuthenticationResults(field.value);
    return claim !== null && claim.authservId === own && claim.methods.includes(AUTH_METHOD);
  });
}

/** The new field, inserted at the top where RFC 8601 §4 places trace-like fields. */
export function authenticationResultsInsert(authservId: string, verdict: Verdict): HeaderEdit {
  return { op: 'insert', index: 0, name: AUTHENTICATION_RESULTS, value: authenticationResultsValue(authservId, verdict) };
}
