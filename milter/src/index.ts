/**
 * muse-milter's milter protocol library: a complete, dependency-free implementation of the Sendmail
 * milter protocol (version 6) for Node.js — codec, negotiation, session rules, server, client and a
 * test kit. This file is the whole public API; deeper imports are private.
 */
export { Action, ALL_ACTIONS, CommandCode, Macro, MacroStage, MAX_BODY_CHUNK, PROTOCOL_VERSION, Protocol, ResponseCode } from './constants.ts';
export type { MacroStageName } from './constants.ts';
export { MilterProtocolError, MilterUsageError } from './errors.ts';
export type { ProtocolErrorCode, UsageErrorCode } from './errors.ts';
export { FrameDecoder } from './codec/frame-decoder.ts';
export type { Frame, FrameDecoderOptions } from './codec/frame-decoder.ts';
export { decodeCommand, encodeCommand } from './codec/commands.ts';
export type { Command, ConnectFamily } from './codec/commands.ts';
export { decodeResponse, encodeResponse } from './codec/responses.ts';
export { FramePool, POOLED_FRAME_BYTES } from './frame-pool.ts';
export type { MacroRequest, Response } from './codec/responses.ts';
export { negotiate, STEPS } from './negotiation.ts';
export type { ActionName, Negotiated, NegotiationRequest, Step } from './negotiation.ts';
export { ACCEPT, CONNECTION_FAIL, CONTINUE, describeVerdict, DISCARD, REJECT, reply, SKIP, TEMPFAIL } from './verdicts.ts';
export type { Verdict } from './verdicts.ts';
export {
  addHeader,
  addRecipient,
  changeFrom,
  changeHeader,
  deleteHeader,
  deleteRecipient,
  insertHeader,
  quarantine,
  replaceBody,
} from './modifications.ts';
export type { BodySource, Modification } from './modifications.ts';
export { defineMilter } from './milter.ts';
export type {
  ConnectInfo,
  EndOfMessageResult,
  MessageState,
  MilterContext,
  MilterDefinition,
  MilterHandler,
  MilterOptions,
  ReceivedHeader,
} from './milter.ts';
export { BodySpool, SPOOL_NAME_PREFIX, sweepSpoolDirectory } from './body-spool.ts';
export type { BodySpoolOptions } from './body-spool.ts';
export { MilterSession } from './session.ts';
export type { SessionOptions } from './session.ts';
export { formatMilterAddress, parseMilterAddress } from './address.ts';
export type { MilterAddress } from './address.ts';
export { MilterServer, SERVER_DEFAULTS } from './server.ts';
export type { BodyPacer } from './server.ts';
export type { MilterServerOptions } from './server.ts';
export { MilterClient } from './client.ts';
export type { MilterClientOptions } from './client.ts';
export { MtaConversation, POSTFIX_DEFAULT_MACROS, POSTFIX_OFFER, POSTFIX_PROTOCOL_OFFER } from './mta.ts';
export type { EndOfMessageReply, MacroValues, MtaOffer, MtaTransport, StepReply, Transaction, TransactionReplies } from './mta.ts';
export { applyModifications, runTransaction } from './testing.ts';
export type { DeliveredMessage, RunTransactionOptions, TransactionResult } from './testing.ts';
export { debugEnabled, silentLogger, withContext } from './logger.ts';
export type { LogFields, MilterLogger } from './logger.ts';
