/**
 * The verdict of inbound processing, reported in Authentication-Results (see docs/pgp-mime.md for
 * the meaning of each result and reason).
 */
import type { SignatureCheck } from '../pgp/signature-check.ts';

/** RFC 8601 result values used by the `x-muse` method. */
export type VerdictResult = 'pass' | 'fail' | 'none' | 'temperror';

/** Why the result is what it is (stable strings, also written as the A-R `reason`). */
export type VerdictReason =
  | 'signature-verified'
  | 'bad-signature'
  | 'signer-not-published'
  | 'unsigned'
  | 'no-published-key'
  | 'no-sender-domain'
  | 'decryption-failed'
  | 'malformed'
  | 'key-lookup-failed';

/** The outcome for one incoming message. */
export interface Verdict {
  readonly result: VerdictResult;
  readonly reason: VerdictReason;
  /** The sender domain whose key was looked up, when known. */
  readonly domain: string | null;
  /** Primary-key fingerprint (uppercase hex) of the domain key that signed, when one did. */
  readonly fingerprint: string | null;
  /** Whether DNSSEC validated the key lookup; `null` when no key was found. */
  readonly dnssec: boolean | null;
  /** Whether the message was encrypted to one of our keys. */
  readonly encrypted: boolean;
}

/** Turns a signature check into a verdict. */
export function verdictFromCheck(check: SignatureCheck, domain: string, dnssec: boolean, encrypted: boolean): Verdict {
  switch (check.status) {
    case 'valid':
      return { result: 'pass', reason: 'signature-verified', domain, fingerprint: check.fingerprint, dnssec, encrypted };
    case 'invalid':
      return { result: 'fail', reason: 'bad-signature', domain, fingerprint: check.fingerprint, dnssec, encrypted };
    case 'unknown-signer':
      return { result: 'fail', reason: 'signer-not-published', domain, fingerprint: null, dnssec, encrypted };
    case 'unsigned':
      return { result: 'none', reason: 'unsigned', domain, fingerprint: null, dnssec, encrypted };
  }
}

/** A verdict reached without checking a signature. */
export function plainVerdict(result: VerdictResult, reason: VerdictReason, domain: string | null, encrypted: boolean): Verdict {
  return { result, reason, domain, fingerprint: null, dnssec: null, encrypted };
}
