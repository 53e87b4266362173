/**
 * The Authentication-Results field (RFC 8601) reporting an inbound verdict, and the removal of
 * fields that claim to come from this host (RFC 8601 §5: a forged result with our authserv-id must
 * not reach the user).
 *
 * Written as, folded with CRLF + TAB (absent values are left out):
 *   Authentication-Results: <authserv-id>;
 *     x-muse=<result> reason="<reason>"
 *     header.from=<domain>
 *     policy.key-fingerprint=<hex>
 *     policy.dnssec=<yes|no>
 *     policy.encrypted=<yes|no>
 */
import { fieldsNamed, unfold, type HeaderField } from '../mime/header-fields.ts';
import type { HeaderEdit } from './header-edits.ts';
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

/** The authserv-id of a raw Authentication-Results value (text before the first `;`, comments dropped). */
export function authservIdOf(value: string): string {
  const head = unfold(value).split(';')[0] ?? '';
  return head
    .replace(/\([^)]*\)/g, ' ')
    .trim()
    .split(/\s+/)[0]
    ?.toLowerCase() ?? '';
}

/**
 * Deletions of existing Authentication-Results fields that carry `authservId`, highest index
 * first so each deletion leaves the indices of the remaining ones intact.
 */
export function forgedResultsDeletions(fields: readonly HeaderField[], authservId: string): HeaderEdit[] {
  const own = authservId.toLowerCase();
  const existing = fieldsNamed(fields, AUTHENTICATION_RESULTS);
  const deletions: HeaderEdit[] = [];
  for (let i = existing.length; i >= 1; i--) {
    if (authservIdOf((existing[i - 1] as HeaderField).value) === own) deletions.push({ op: 'change', name: AUTHENTICATION_RESULTS, index: i, value: '' });
  }
  return deletions;
}

/** The new field, inserted at the top where RFC 8601 §4 places trace-like fields. */
export function authenticationResultsInsert(authservId: string, verdict: Verdict): HeaderEdit {
  return { op: 'insert', index: 0, name: AUTHENTICATION_RESULTS, value: authenticationResultsValue(authservId, verdict) };
}
