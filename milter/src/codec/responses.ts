/**
 * The replies a filter sends, as a discriminated union, with an encoder (filter side) and a decoder
 * (MTA side: the client and the test kit).
 */
import { MacroStage, ResponseCode } from '../constants.ts';
import { MilterProtocolError } from '../errors.ts';
import type { Frame } from './frame-decoder.ts';
import { printable } from './commands.ts';
import { cstrings, encodeFrame, uint32, WireReader } from './wire.ts';

/** A macro list requested for one stage in the negotiation reply. */
export interface MacroRequest {
  /** Stage index, see {@link MacroStage}. */
  stage: number;
  /** Macro names, e.g. `['i', '{auth_authen}']`. */
  names: string[];
}

/** The negotiation reply: what the filter takes of the MTA's offer. */
export interface OptionNegotiationResponse {
  kind: 'optneg';
  version: number;
  actions: number;
  protocol: number;
  /** Per-stage macro lists (sent only when the MTA offered SetMacroList). */
  macroRequests: MacroRequest[];
}
/** Final or step verdicts that carry no data. */
export interface SimpleResponse {
  kind: 'accept' | 'continue' | 'discard' | 'reject' | 'tempfail' | 'skip' | 'progress' | 'connectionFail';
}
/** SMFIR_REPLYCODE: a full SMTP reply, e.g. `550 5.7.1 Rejected`, possibly multi-line. */
export interface ReplyCodeResponse {
  kind: 'replyCode';
  reply: string;
}
/** SMFIR_ADDHEADER: append a header at the end. */
export interface AddHeaderResponse {
  kind: 'addHeader';
  name: string;
  value: string;
}
/** SMFIR_INSHEADER: insert a header at a 0-based position in the header list. */
export interface InsertHeaderResponse {
  kind: 'insertHeader';
  index: number;
  name: string;
  value: string;
}
/** SMFIR_CHGHEADER: change (or with an empty value, delete) the index-th (1-based) header of that name. */
export interface ChangeHeaderResponse {
  kind: 'changeHeader';
  index: number;
  name: string;
  value: string;
}
/** SMFIR_REPLBODY: one chunk of the replacement body. */
export interface ReplaceBodyResponse {
  kind: 'replaceBody';
  chunk: Buffer;
}
/** SMFIR_ADDRCPT. */
export interface AddRecipientResponse {
  kind: 'addRecipient';
  recipient: string;
}
/** SMFIR_ADDRCPT_PAR: add a recipient with ESMTP arguments. */
export interface AddRecipientWithArgsResponse {
  kind: 'addRecipientWithArgs';
  recipient: string;
  args: string;
}
/** SMFIR_DELRCPT. */
export interface DeleteRecipientResponse {
  kind: 'deleteRecipient';
  recipient: string;
}
/** SMFIR_CHGFROM: change the envelope sender, optionally with ESMTP arguments. */
export interface ChangeFromResponse {
  kind: 'changeFrom';
  sender: string;
  args?: string;
}
/** SMFIR_QUARANTINE: hold the message with a reason. */
export interface QuarantineResponse {
  kind: 'quarantine';
  reason: string;
}

/** Every reply a filter can send. */
export type Response =
  | OptionNegotiationResponse
  | SimpleResponse
  | ReplyCodeResponse
  | AddHeaderResponse
  | InsertHeaderResponse
  | ChangeHeaderResponse
  | ReplaceBodyResponse
  | AddRecipientResponse
  | AddRecipientWithArgsResponse
  | DeleteRecipientResponse
  | ChangeFromResponse
  | QuarantineResponse;

const SIMPLE_CODES: Record<SimpleResponse['kind'], string> = {
  accept: ResponseCode.Accept,
  continue: ResponseCode.Continue,
  discard: ResponseCode.Discard,
  reject: ResponseCode.Reject,
  tempfail: ResponseCode.Tempfail,
  skip: ResponseCode.Skip,
  progress: ResponseCode.Progress,
  connectionFail: ResponseCode.ConnectionFail,
};
const SIMPLE_KINDS = new Map(Object.entries(SIMPLE_CODES).map(([kind, code]) => [code, kind as SimpleResponse['kind']]));


/** Encodes a reply as one frame. */
export function encodeResponse(response: Response): Buffer {
  switch (response.kind) {
    case 'optneg': {
      const parts = [uint32(response.version), uint32(response.actions), uint32(response.protocol)];
      for (const request of response.macroRequests) parts.push(uint32(request.stage), cstrings(request.names.join(' ')));
      return encodeFrame(ResponseCode.OptionNegotiation, Buffer.concat(parts));
    }
    case 'replyCode':
      return encodeFrame(ResponseCode.ReplyCode, cstrings(response.reply));
    case 'addHeader':
      return encodeFrame(ResponseCode.AddHeader, cstrings(response.name, response.value));
    case 'insertHeader':
      return encodeFrame(ResponseCode.InsertHeader, Buffer.concat([uint32(response.index), cstrings(response.name, response.value)]));
    case 'changeHeader':
      return encodeFrame(ResponseCode.ChangeHeader, Buffer.concat([uint32(response.index), cstrings(response.name, response.value)]));
    case 'replaceBody':
      return encodeFrame(ResponseCode.ReplaceBody, response.chunk);
    case 'addRecipient':
      return encodeFrame(ResponseCode.AddRecipient, cstrings(response.recipient));
    case 'addRecipientWithArgs':
      return encodeFrame(ResponseCode.AddRecipientWithArgs, cstrings(response.recipient, response.args));
    case 'deleteRecipient':
      return encodeFrame(ResponseCode.DeleteRecipient, cstrings(response.recipient));
    case 'changeFrom':
      return encodeFrame(
        ResponseCode.ChangeFrom,
        response.args === undefined ? cstrings(response.sender) : cstrings(response.sender, response.args),
      );
    case 'quarantine':
      return encodeFrame(ResponseCode.Quarantine, cstrings(response.reason));
    default:
      return encodeFrame(SIMPLE_CODES[response.kind]);
  }
}

/** Decodes one frame from a filter. Throws {@link MilterProtocolError} on unknown or malformed replies. */
export function decodeResponse(frame: Frame): Response {
  const r = new WireReader(frame.data, `response '${printable(frame.code)}'`, 'malformed-response');
  let response: Response;
  switch (frame.code) {
    case ResponseCode.OptionNegotiation: {
      const version = r.uint32('version');
      const actions = r.uint32('actions');
      const protocol = r.uint32('protocol');
      const macroRequests: MacroRequest[] = [];
      while (r.remaining > 0) {
        const stage = r.uint32('macro stage');
        if (stage > MacroStage.EndOfHeaders) throw new MilterProtocolError('malformed-response', `optneg: unknown macro stage ${stage}`);
        const list = r.cstring('macro list');
        macroRequests.push({ stage, names: list.split(' ').filter((name) => name.length > 0) });
      }
      response = { kind: 'optneg', version, actions, protocol, macroRequests };
      break;
    }
    case ResponseCode.ReplyCode:
      response = { kind: 'replyCode', reply: r.cstring('reply') };
      break;
    case ResponseCode.AddHeader:
      response = { kind: 'addHeader', name: r.cstring('name'), value: r.cstring('value') };
      break;
    case ResponseCode.InsertHeader:
      response = { kind: 'insertHeader', index: r.uint32('index'), name: r.cstring('name'), value: r.cstring('value') };
      break;
    case ResponseCode.ChangeHeader:
      response = { kind: 'changeHeader', index: r.uint32('index'), name: r.cstring('name'), value: r.cstring('value') };
      break;
    case ResponseCode.ReplaceBody:
      response = { kind: 'replaceBody', chunk: r.rest() };
      break;
    case ResponseCode.AddRecipient:
      response = { kind: 'addRecipient', recipient: r.cstring('recipient') };
      break;
    case ResponseCode.AddRecipientWithArgs:
      response = { kind: 'addRecipientWithArgs', recipient: r.cstring('recipient'), args: r.cstring('args') };
      break;
    case ResponseCode.DeleteRecipient:
      response = { kind: 'deleteRecipient', recipient: r.cstring('recipient') };
      break;
    case ResponseCode.ChangeFrom: {
      const sender = r.cstring('sender');
      response = r.remaining > 0 ? { kind: 'changeFrom', sender, args: r.cstring('args') } : { kind: 'changeFrom', sender };
      break;
    }
    case ResponseCode.Quarantine:
      response = { kind: 'quarantine', reason: r.cstring('reason') };
      break;
    default: {
      const kind = SIMPLE_KINDS.get(frame.code);
      if (kind === undefined) throw new MilterProtocolError('unknown-response', `unknown response code '${printable(frame.code)}'`);
      response = { kind };
    }
  }
  r.end();
  return response;
}
