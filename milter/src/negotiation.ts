/**
 * Option negotiation: the filter declares what it needs, the MTA offers what it can, and the reply takes
 * exactly the intersection — or fails clearly when the MTA cannot give what the filter requires.
 */
import { Action, MacroStage, MIN_PROTOCOL_VERSION, Protocol, PROTOCOL_VERSION, type MacroStageName } from './constants.ts';
import type { OptionNegotiationCommand } from './codec/commands.ts';
import type { MacroRequest, OptionNegotiationResponse } from './codec/responses.ts';
import { MilterProtocolError } from './errors.ts';

/** The protocol steps a filter can take part in (end of message always takes place). */
export type Step = 'connect' | 'helo' | 'mail' | 'rcpt' | 'data' | 'header' | 'eoh' | 'body' | 'unknown';

/** Every step, in protocol order. */
export const STEPS: readonly Step[] = ['connect', 'helo', 'mail', 'rcpt', 'data', 'header', 'eoh', 'body', 'unknown'];

/** The flag that lets the MTA leave a step out. */
export const NO_STEP_FLAG: Record<Step, number> = {
  connect: Protocol.NoConnect,
  helo: Protocol.NoHelo,
  mail: Protocol.NoMail,
  rcpt: Protocol.NoRcpt,
  data: Protocol.NoData,
  header: Protocol.NoHeaders,
  eoh: Protocol.NoEndOfHeaders,
  body: Protocol.NoBody,
  unknown: Protocol.NoUnknown,
};

/** The flag that lets the filter leave out its reply to a step. */
export const NO_REPLY_FLAG: Record<Step, number> = {
  connect: Protocol.NoReplyConnect,
  helo: Protocol.NoReplyHelo,
  mail: Protocol.NoReplyMail,
  rcpt: Protocol.NoReplyRcpt,
  data: Protocol.NoReplyData,
  header: Protocol.NoReplyHeader,
  eoh: Protocol.NoReplyEndOfHeaders,
  body: Protocol.NoReplyBody,
  unknown: Protocol.NoReplyUnknown,
};

/** Modifications by name, for declarations that read well. */
export type ActionName =
  | 'addHeaders'
  | 'changeHeaders'
  | 'changeBody'
  | 'addRecipients'
  | 'addRecipientsWithArgs'
  | 'deleteRecipients'
  | 'changeFrom'
  | 'quarantine';

/** The action flag of each named modification. */
export const ACTION_FLAG: Record<ActionName, number> = {
  addHeaders: Action.AddHeaders,
  changeHeaders: Action.ChangeHeaders,
  changeBody: Action.ChangeBody,
  addRecipients: Action.AddRecipient,
  addRecipientsWithArgs: Action.AddRecipientWithArgs,
  deleteRecipients: Action.DeleteRecipient,
  changeFrom: Action.ChangeFrom,
  quarantine: Action.Quarantine,
};

/** What a filter asks for in the negotiation. */
export interface NegotiationRequest {
  /** Modifications the filter will make; all must be offered or the negotiation fails. */
  actions: readonly ActionName[];
  /** Steps the filter wants to see; the MTA is asked to leave out every other step it can. */
  steps: ReadonlySet<Step>;
  /** Steps whose reply the filter leaves out when the MTA allows it. */
  noReply: ReadonlySet<Step>;
  /** Ask for header values with their leading whitespace, byte-exact; required when true. */
  headerLeadingSpace: boolean;
  /** Also see recipients the MTA already rejected. */
  rejectedRecipients: boolean;
  /** Macros wanted per stage; requested only if the MTA allows macro lists. */
  macros: Partial<Record<MacroStageName, readonly string[]>>;
}

/** The outcome: what both sides agreed, and the reply that says so. */
export interface Negotiated {
  version: number;
  /** Action flags granted. */
  actions: number;
  /** Protocol flags agreed. */
  protocol: number;
  /** What the MTA offered, kept for logs and diagnostics. */
  offered: { version: number; actions: number; protocol: number };
  reply: OptionNegotiationResponse;
}

/** Names the flags set in `bits` using a name table, for readable error messages. */
function describeFlags(bits: number, table: Record<string, number>): string {
  return Object.entries(table)
    .filter(([, flag]) => (bits & flag) !== 0)
    .map(([name]) => name)
    .join(', ');
}

/**
 * Computes the negotiation reply for an MTA's offer. Throws {@link MilterProtocolError}
 * ('negotiation-failed') when the versions cannot meet or a required action or flag is not offered.
 */
export function negotiate(offer: OptionNegotiationCommand, request: NegotiationRequest): Negotiated {
  if (offer.version < MIN_PROTOCOL_VERSION) {
    throw new MilterProtocolError('negotiation-failed', `MTA offers protocol version ${offer.version}; at least ${MIN_PROTOCOL_VERSION} is needed`);
  }
  const version = Math.min(offer.version, PROTOCOL_VERSION);

  let wantedActions = 0;
  for (const name of request.actions) wantedActions |= ACTION_FLAG[name];
  const missingActions = wantedActions & ~offer.actions;
  if (missingActions !== 0) {
    throw new MilterProtocolError(
      'negotiation-failed',
      `MTA does not offer the actions this filter needs: ${describeFlags(missingActions, ACTION_FLAG)} (offered 0x${offer.actions.toString(16)})`,
    );
  }

  let protocol = 0;
  for (const step of STEPS) {
    if (!request.steps.has(step)) protocol |= NO_STEP_FLAG[step] & offer.protocol;
    else if (request.noReply.has(step)) protocol |= NO_REPLY_FLAG[step] & offer.protocol;
  }
  if (request.headerLeadingSpace) {
    if ((offer.protocol & Protocol.HeaderLeadingSpace) === 0) {
      throw new MilterProtocolError('negotiation-failed', 'MTA cannot send header values with their leading space, which this filter requires');
    }
    protocol |= Protocol.HeaderLeadingSpace;
  }
  // SMFIR_SKIP may only be sent when the MTA declared it understands it.
  if (request.steps.has('body')) protocol |= Protocol.Skip & offer.protocol;
  if (request.rejectedRecipients) protocol |= Protocol.RcptRejected & offer.protocol;

  let actions = wantedActions;
  const macroRequests: MacroRequest[] = [];
  if ((offer.actions & Action.SetMacroList) !== 0) {
    for (const [stage, names] of Object.entries(request.macros) as Array<[MacroStageName, readonly string[] | undefined]>) {
      if (names !== undefined) macroRequests.push({ stage: MacroStage[stage], names: [...names] });
    }
    macroRequests.sort((a, b) => a.stage - b.stage);
    if (macroRequests.length > 0) actions |= Action.SetMacroList;
  }

  return {
    version,
    actions,
    protocol,
    offered: { version: offer.version, actions: offer.actions, protocol: offer.protocol },
    reply: { kind: 'optneg', version, actions, protocol, macroRequests },
  };
}
