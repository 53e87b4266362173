/**
 * The verdict of inbound processing, reported in Authentication-Results. docs/security.md says what each result
 * promises and what it does not; docs/pgp-mime.md lists the reasons.
 */
import type { SignatureCheck } from '../pgp/signature-check.ts';

/**
 * RFC 8601 result values used by the `x-muse` method: `pass` (signed by the author's domain, for us), `policy` (as
 * pass, but nothing binds the message to this site: possibly a copy of mail sent elsewhere), `fail`, `none`
 * (nothing to check), `temperror` (the key lookup failed).
 */
export type VerdictResult = 'pass' | 'policy' | 'fail' | 'none' | 'temperror';

/** Why the result is what it is (stable strings, also written as the A-R `reason`). */
export type VerdictReason =
  | 'signature-verified'
  | 'recipient-not-bound'
  | 'bad-signature'
  | 'signer-not-published'
  | 'signer-not-pinned'
  | 'not-intended-recipient'
  | 'from-not-signed'
  | 'multiple-from-fields'
  | 'multiple-from-mailboxes'
  | 'unparseable-from'
  | 'bad-from-domain'
  | 'unsigned'
  | 'no-published-key'
  | 'decryption-failed'
  | 'malformed'
  | 'key-lookup-failed';

/** The outcome for one incoming message. */
export interface Verdict {
  readonly result: VerdictResult;
  readonly reason: VerdictReason;
  /**
   * The author domain the verdict is about: the domain of the one From mailbox whose key was looked up (for pass,
   * the domain of the delivered From). Null when there was no single usable From.
   */
  readonly domain: string | null;
  /** Primary-key fingerprint (uppercase hex) of the domain key that signed, when one did. */
  readonly fingerprint: string | null;
  /** Whether DNSSEC validated the key lookup; `null` when no key was found. */
  readonly dnssec: boolean | null;
  /** Whether the message was encrypted to one of our keys. */
  readonly encrypted: boolean;
}

/** The failed checks of a signature as verdicts (a valid signature is judged further by the caller). */
export function verdictFromFailedCheck(
  check: Exclude<SignatureCheck, { status: 'valid' }>,
  domain: string,
  dnssec: boolean,
  encrypted: boolean,
  unpinnedSigner: boolean,
): Verdict {
  switch (check.status) {
    case 'invalid':
      return { result: 'fail', reason: 'bad-signature', domain, fingerprint: check.fingerprint, dnssec, encrypted };
    case 'unknown-signer':
      return { result: 'fail', reason: unpinnedSigner ? 'signer-not-pinned' : 'signer-not-published', domain, fingerprint: null, dnssec, encrypted };
    case 'unsigned':
      return { result: 'none', reason: 'unsigned', domain, fingerprint: null, dnssec, encrypted };
  }
}

/** A verdict reached without a key that signed. */
export function plainVerdict(result: VerdictResult, reason: VerdictReason, domain: string | null, encrypted: boolean): Verdict {
  return { result, reason, domain, fingerprint: null, dnssec: null, encrypted };
}
