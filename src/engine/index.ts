/**
 * The PGP/MIME engine's public API: what the daemon imports. Independent of the milter layer; it
 * takes header fields and body bytes and returns header edits and a new body.
 */
export { protectOutbound, PROTECTION_FIELD, DEFAULT_SUBJECT_PLACEHOLDER } from './outbound.ts';
export type { OutboundOptions, OutboundResult, OutboundProtected } from './outbound.ts';
export { DEFAULT_STREAM_ABOVE_BYTES, openInbound } from './inbound.ts';
export type { InboundOptions, InboundResult, InboundOpened, InboundLayer, UnchangedReason, SenderKeys, SenderKeyLookup, Alignment } from './inbound.ts';
export { applyHeaderEdits } from './header-edits.ts';
export type { HeaderEdit } from './header-edits.ts';
export { AUTH_METHOD, AUTHENTICATION_RESULTS, UNVERIFIED_PREFIX, carriesOurResult, forgedFieldDeletions, type ForgedFieldOptions } from './authentication-results.ts';
export { USER_FACING_FIELDS } from './delivered-header.ts';
export type { Verdict, VerdictResult, VerdictReason } from './verdict.ts';
export { DEFAULT_LIMITS } from './limits.ts';
export { DecryptionQueues } from './decryption-queues.ts';
export { Slots } from './slots.ts';
export type { Limits, LimitExceeded, LimitName } from './limits.ts';
export { DEFAULT_SPOOL } from './output-body.ts';
export type { OutputBody, SpoolOptions } from './output-body.ts';
export type { BodyInput } from './body-input.ts';
export { EngineError } from './errors.ts';
export type { EngineErrorCode } from './errors.ts';
export { DEFAULT_PROTECTED_FIELDS } from '../mime/inner-entity.ts';
export type { HeaderField, HeaderEncoding } from '../mime/header-fields.ts';
export type { BoundaryGenerator } from '../mime/boundary.ts';
