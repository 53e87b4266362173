/**
 * The commands an MTA sends, as a discriminated union, with a decoder and an encoder for each.
 * The encoder serves the MTA side of the library (the client and the test kit); the decoder serves the
 * filter side.
 */
import { CommandCode } from '../constants.ts';
import { MilterProtocolError } from '../errors.ts';
import type { Frame } from './frame-decoder.ts';
import { cstrings, encodeFrame, uint32, WireReader } from './wire.ts';

/** How the SMTP client connected, as the MTA reports it in SMFIC_CONNECT. */
export type ConnectFamily = 'unknown' | 'unix' | 'inet' | 'inet6';

const FAMILY_TO_WIRE: Record<ConnectFamily, string> = { unknown: 'U', unix: 'L', inet: '4', inet6: '6' };
const WIRE_TO_FAMILY: Record<string, ConnectFamily> = { U: 'unknown', L: 'unix', '4': 'inet', '6': 'inet6' };

/** SMFIC_OPTNEG: what the MTA offers. */
export interface OptionNegotiationCommand {
  kind: 'optneg';
  version: number;
  actions: number;
  protocol: number;
}
/** SMFIC_MACRO: macro values for the command that follows. No reply. */
export interface MacroCommand {
  kind: 'macro';
  /** The command code these macros belong to, e.g. `C` for connect. */
  forCommand: string;
  /** Name/value pairs in wire order. */
  macros: Array<[name: string, value: string]>;
}
/** SMFIC_CONNECT. */
export interface ConnectCommand {
  kind: 'connect';
  hostname: string;
  family: ConnectFamily;
  /** TCP port, or 0 when the family has none. */
  port: number;
  /** IP address or socket path; empty when the family is unknown. */
  address: string;
}
/** SMFIC_HELO. */
export interface HeloCommand {
  kind: 'helo';
  name: string;
}
/** SMFIC_MAIL: the envelope sender and its ESMTP parameters. */
export interface MailCommand {
  kind: 'mail';
  sender: string;
  parameters: string[];
}
/** SMFIC_RCPT: one envelope recipient and its ESMTP parameters. */
export interface RcptCommand {
  kind: 'rcpt';
  recipient: string;
  parameters: string[];
}
/** SMFIC_DATA. */
export interface DataCommand {
  kind: 'data';
}
/** SMFIC_HEADER: one header field. */
export interface HeaderCommand {
  kind: 'header';
  name: string;
  value: string;
}
/** SMFIC_EOH. */
export interface EndOfHeadersCommand {
  kind: 'eoh';
}
/** SMFIC_BODY: one body chunk, raw bytes. */
export interface BodyCommand {
  kind: 'body';
  chunk: Buffer;
}
/** SMFIC_BODYEOB: end of message, possibly carrying a last body chunk. */
export interface EndOfMessageCommand {
  kind: 'eom';
  chunk: Buffer;
}
/** SMFIC_ABORT: the current message is abandoned. No reply. */
export interface AbortCommand {
  kind: 'abort';
}
/** SMFIC_QUIT: the connection ends. No reply. */
export interface QuitCommand {
  kind: 'quit';
}
/** SMFIC_QUIT_NC: this SMTP session ends, another follows on the same milter connection. No reply. */
export interface QuitNewConnectionCommand {
  kind: 'quitNewConnection';
}
/** SMFIC_UNKNOWN: an SMTP command the MTA did not recognise. */
export interface UnknownCommand {
  kind: 'unknown';
  command: string;
}

/** Every command an MTA can send. */
export type Command =
  | OptionNegotiationCommand
  | MacroCommand
  | ConnectCommand
  | HeloCommand
  | MailCommand
  | RcptCommand
  | DataCommand
  | HeaderCommand
  | EndOfHeadersCommand
  | BodyCommand
  | EndOfMessageCommand
  | AbortCommand
  | QuitCommand
  | QuitNewConnectionCommand
  | UnknownCommand;

/** Reads the NUL-terminated argument list of MAIL and RCPT: at least one string, nothing after the last NUL. */
function readArguments(reader: WireReader, what: string): string[] {
  const args: string[] = [];
  while (reader.remaining > 0) args.push(reader.cstring(`${what} argument ${args.length + 1}`));
  if (args.length === 0) throw new MilterProtocolError('malformed-command', `${what}: no address`);
  return args;
}

/** Decodes one frame from an MTA. Throws {@link MilterProtocolError} on unknown or malformed commands. */
export function decodeCommand(frame: Frame): Command {
  const r = new WireReader(frame.data, `command '${printable(frame.code)}'`, 'malformed-command');
  let command: Command;
  switch (frame.code) {
    case CommandCode.OptionNegotiation: {
      command = { kind: 'optneg', version: r.uint32('version'), actions: r.uint32('actions'), protocol: r.uint32('protocol') };
      // Newer MTAs may append fields; libmilter ignores them, and so do we.
      r.rest();
      break;
    }
    case CommandCode.Macro: {
      const forCommand = r.char('command code');
      const macros: Array<[string, string]> = [];
      while (r.remaining > 0) macros.push([r.cstring('macro name'), r.cstring('macro value')]);
      command = { kind: 'macro', forCommand, macros };
      break;
    }
    case CommandCode.Connect: {
      const hostname = r.cstring('hostname');
      const familyCode = r.char('family');
      const family = WIRE_TO_FAMILY[familyCode];
      if (family === undefined) throw new MilterProtocolError('malformed-command', `connect: unknown family '${printable(familyCode)}'`);
      if (family === 'unknown') command = { kind: 'connect', hostname, family, port: 0, address: '' };
      else command = { kind: 'connect', hostname, family, port: r.uint16('port'), address: r.cstring('address') };
      break;
    }
    case CommandCode.Helo:
      command = { kind: 'helo', name: r.cstring('helo name') };
      break;
    case CommandCode.Mail: {
      const [sender, ...parameters] = readArguments(r, 'mail');
      command = { kind: 'mail', sender: sender as string, parameters };
      break;
    }
    case CommandCode.Rcpt: {
      const [recipient, ...parameters] = readArguments(r, 'rcpt');
      command = { kind: 'rcpt', recipient: recipient as string, parameters };
      break;
    }
    case CommandCode.Data:
      command = { kind: 'data' };
      break;
    case CommandCode.Header:
      command = { kind: 'header', name: r.cstring('header name'), value: r.cstring('header value') };
      break;
    case CommandCode.EndOfHeaders:
      command = { kind: 'eoh' };
      break;
    case CommandCode.Body:
      command = { kind: 'body', chunk: r.rest() };
      break;
    case CommandCode.BodyEnd:
      command = { kind: 'eom', chunk: r.rest() };
      break;
    case CommandCode.Abort:
      command = { kind: 'abort' };
      break;
    case CommandCode.Quit:
      command = { kind: 'quit' };
      break;
    case CommandCode.QuitNewConnection:
      command = { kind: 'quitNewConnection' };
      break;
    case CommandCode.Unknown:
      command = { kind: 'unknown', command: r.cstring('unknown command') };
      break;
    default:
      throw new MilterProtocolError('unknown-command', `unknown command code '${printable(frame.code)}'`);
  }
  r.end();
  return command;
}

/** Encodes a command as one frame, byte for byte as Sendmail and Postfix send it. */
export function encodeCommand(command: Command): Buffer {
  switch (command.kind) {
    case 'optneg':
      return encodeFrame(CommandCode.OptionNegotiation, Buffer.concat([uint32(command.version), uint32(command.actions), uint32(command.protocol)]));
    case 'macro':
      return encodeFrame(CommandCode.Macro, Buffer.concat([Buffer.from(command.forCommand, 'latin1'), cstrings(...command.macros.flat())]));
    case 'connect': {
      const head = Buffer.concat([cstrings(command.hostname), Buffer.from(FAMILY_TO_WIRE[command.family], 'latin1')]);
      if (command.family === 'unknown') return encodeFrame(CommandCode.Connect, head);
      const port = Buffer.allocUnsafe(2);
      port.writeUInt16BE(command.port, 0);
      return encodeFrame(CommandCode.Connect, Buffer.concat([head, port, cstrings(command.address)]));
    }
    case 'helo':
      return encodeFrame(CommandCode.Helo, cstrings(command.name));
    case 'mail':
      return encodeFrame(CommandCode.Mail, cstrings(command.sender, ...command.parameters));
    case 'rcpt':
      return encodeFrame(CommandCode.Rcpt, cstrings(command.recipient, ...command.parameters));
    case 'data':
      return encodeFrame(CommandCode.Data);
    case 'header':
      return encodeFrame(CommandCode.Header, cstrings(command.name, command.value));
    case 'eoh':
      return encodeFrame(CommandCode.EndOfHeaders);
    case 'body':
      return encodeFrame(CommandCode.Body, command.chunk);
    case 'eom':
      return encodeFrame(CommandCode.BodyEnd, command.chunk);
    case 'abort':
      return encodeFrame(CommandCode.Abort);
    case 'quit':
      return encodeFrame(CommandCode.Quit);
    case 'quitNewConnection':
      return encodeFrame(CommandCode.QuitNewConnection);
    case 'unknown':
      return encodeFrame(CommandCode.Unknown, cstrings(command.command));
  }
}

/** Renders a command code for a log line even when it is a control byte. */
export function printable(code: string): string {
  return /^[\x21-\x7e]$/.test(code) ? code : `\\x${code.charCodeAt(0).toString(16).padStart(2, '0')}`;
}
