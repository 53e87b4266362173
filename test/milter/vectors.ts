/**
 * Golden byte vectors of the milter protocol, written out by hand from the wire layout (never produced
 * by our own encoder), so the codec is checked against the protocol rather than against itself.
 *
 * Layout reminder: every frame is a 4-byte big-endian length that counts the code byte and the data,
 * then the code byte, then the data. Strings are NUL-terminated; integers are big-endian. Each hex string
 * below is grouped as `length code field field ...`, with the ASCII of string fields in the comment.
 */
import type { Command, ProtocolErrorCode, Response } from '../../milter/src/index.ts';

/** One frame and the typed value it stands for. */
export interface Vector<T> {
  /** What the frame is, for test names. */
  readonly name: string;
  /** The frame as hex; whitespace is only for reading. */
  readonly hex: string;
  readonly value: T;
}

/** A frame the decoders must refuse, with the error code they must refuse it with. */
export interface MalformedVector {
  readonly name: string;
  readonly hex: string;
  readonly code: ProtocolErrorCode;
}

/** Turns a vector's hex into bytes; a typo (odd length, stray character) fails loudly instead of truncating. */
export function bytes(hex: string): Buffer {
  const digits = hex.replace(/\s+/g, '');
  if (!/^(?:[0-9a-f]{2})*$/i.test(digits)) throw new Error(`malformed hex vector: ${hex}`);
  return Buffer.from(digits, 'hex');
}

/** Every command an MTA sends (SMFIC_*). */
export const COMMAND_VECTORS: readonly Vector<Command>[] = [
  {
    // version 6, actions 0x1ff, protocol 0x1fffff: Postfix's offer with milter_protocol = 6.
    name: "O optneg (Postfix's v6 offer)",
    hex: '0000000d 4f 00000006 000001ff 001fffff',
    value: { kind: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff },
  },
  {
    // "mx.test" NUL, family '4', port 25, "192.0.2.1" NUL
    name: 'C connect, family 4',
    hex: '00000016 43 6d782e7465737400 34 0019 3139322e302e322e3100',
    value: { kind: 'connect', hostname: 'mx.test', family: 'inet', port: 25, address: '192.0.2.1' },
  },
  {
    // "mx6.test" NUL, family '6', port 587, "2001:db8::1" NUL
    name: 'C connect, family 6',
    hex: '00000019 43 6d78362e7465737400 36 024b 323030313a6462383a3a3100',
    value: { kind: 'connect', hostname: 'mx6.test', family: 'inet6', port: 587, address: '2001:db8::1' },
  },
  {
    // "localhost" NUL, family 'L', port 0, "/tmp/s" NUL
    name: 'C connect, family L (unix socket)',
    hex: '00000015 43 6c6f63616c686f737400 4c 0000 2f746d702f7300',
    value: { kind: 'connect', hostname: 'localhost', family: 'unix', port: 0, address: '/tmp/s' },
  },
  {
    // "unknown" NUL, family 'U' and nothing after it
    name: 'C connect, family U (no port, no address)',
    hex: '0000000a 43 756e6b6e6f776e00 55',
    value: { kind: 'connect', hostname: 'unknown', family: 'unknown', port: 0, address: '' },
  },
  {
    // "client.test" NUL
    name: 'H helo',
    hex: '0000000d 48 636c69656e742e7465737400',
    value: { kind: 'helo', name: 'client.test' },
  },
  {
    // "<a@b.test>" NUL
    name: 'M mail without ESMTP arguments',
    hex: '0000000c 4d 3c6140622e746573743e00',
    value: { kind: 'mail', sender: '<a@b.test>', parameters: [] },
  },
  {
    // "<a@b.test>" NUL "SIZE=100" NUL "BODY=8BITMIME" NUL
    name: 'M mail with ESMTP arguments',
    hex: '00000023 4d 3c6140622e746573743e00 53495a453d31303000 424f44593d384249544d494d4500',
    value: { kind: 'mail', sender: '<a@b.test>', parameters: ['SIZE=100', 'BODY=8BITMIME'] },
  },
  {
    // "<c@d.test>" NUL
    name: 'R rcpt without ESMTP arguments',
    hex: '0000000c 52 3c6340642e746573743e00',
    value: { kind: 'rcpt', recipient: '<c@d.test>', parameters: [] },
  },
  {
    // "<c@d.test>" NUL "NOTIFY=NEVER" NUL
    name: 'R rcpt with ESMTP arguments',
    hex: '00000019 52 3c6340642e746573743e00 4e4f544946593d4e4556455200',
    value: { kind: 'rcpt', recipient: '<c@d.test>', parameters: ['NOTIFY=NEVER'] },
  },
  { name: 'T data', hex: '00000001 54', value: { kind: 'data' } },
  {
    // "Subject" NUL " Hello" NUL (leading space kept, as with SMFIP_HDR_LEADSPC)
    name: 'L header',
    hex: '00000010 4c 5375626a65637400 2048656c6c6f00',
    value: { kind: 'header', name: 'Subject', value: ' Hello' },
  },
  {
    // "Subject" NUL, then the raw UTF-8 bytes of " ü" NUL: one character per byte in the binary string
    name: 'L header with 8-bit bytes',
    hex: '0000000d 4c 5375626a65637400 20c3bc00',
    value: { kind: 'header', name: 'Subject', value: ' \u00c3\u00bc' },
  },
  { name: 'N end of headers', hex: '00000001 4e', value: { kind: 'eoh' } },
  {
    // raw bytes "Hi" CR LF NUL 0xff: body chunks are not strings, NUL and 8-bit bytes pass untouched
    name: 'B body chunk',
    hex: '00000007 42 48690d0a00ff',
    value: { kind: 'body', chunk: Buffer.from([0x48, 0x69, 0x0d, 0x0a, 0x00, 0xff]) },
  },
  { name: 'E end of message without data', hex: '00000001 45', value: { kind: 'eom', chunk: Buffer.alloc(0) } },
  {
    // raw bytes "bye" CR LF: a last body chunk carried by end of message
    name: 'E end of message with data',
    hex: '00000006 45 6279650d0a',
    value: { kind: 'eom', chunk: Buffer.from('bye\r\n', 'latin1') },
  },
  { name: 'A abort', hex: '00000001 41', value: { kind: 'abort' } },
  { name: 'Q quit', hex: '00000001 51', value: { kind: 'quit' } },
  { name: 'K quit, new connection follows', hex: '00000001 4b', value: { kind: 'quitNewConnection' } },
  {
    // for 'M': "i" NUL "ABC123" NUL "{auth_authen}" NUL "alice" NUL
    name: 'D macros for MAIL',
    hex: '0000001f 44 4d 6900 41424331323300 7b617574685f61757468656e7d00 616c69636500',
    value: {
      kind: 'macro',
      forCommand: 'M',
      macros: [
        ['i', 'ABC123'],
        ['{auth_authen}', 'alice'],
      ],
    },
  },
  {
    // for 'C': "j" NUL "mx.test" NUL
    name: 'D macros for CONNECT',
    hex: '0000000c 44 43 6a00 6d782e7465737400',
    value: { kind: 'macro', forCommand: 'C', macros: [['j', 'mx.test']] },
  },
  {
    // "HELP" NUL
    name: 'U unknown SMTP command',
    hex: '00000006 55 48454c5000',
    value: { kind: 'unknown', command: 'HELP' },
  },
];

/** Every reply a filter sends (SMFIR_* and the negotiation reply). */
export const RESPONSE_VECTORS: readonly Vector<Response>[] = [
  { name: 'a accept', hex: '00000001 61', value: { kind: 'accept' } },
  { name: 'c continue', hex: '00000001 63', value: { kind: 'continue' } },
  { name: 'd discard', hex: '00000001 64', value: { kind: 'discard' } },
  { name: 'r reject', hex: '00000001 72', value: { kind: 'reject' } },
  { name: 't tempfail', hex: '00000001 74', value: { kind: 'tempfail' } },
  { name: 's skip', hex: '00000001 73', value: { kind: 'skip' } },
  { name: 'p progress', hex: '00000001 70', value: { kind: 'progress' } },
  { name: 'f connection fail', hex: '00000001 66', value: { kind: 'connectionFail' } },
  {
    // "550 5.7.1 Rejected" NUL
    name: 'y reply code, single line',
    hex: '00000014 79 35353020352e372e312052656a656374656400',
    value: { kind: 'replyCode', reply: '550 5.7.1 Rejected' },
  },
  {
    // "550-5.7.1 a" CR LF "550 5.7.1 b" NUL
    name: 'y reply code, multi-line',
    hex: '0000001a 79 3535302d352e372e312061 0d0a 35353020352e372e312062 00',
    value: { kind: 'replyCode', reply: '550-5.7.1 a\r\n550 5.7.1 b' },
  },
  {
    // "X-Stamp" NUL " yes" NUL
    name: 'h add header',
    hex: '0000000e 68 582d5374616d7000 2079657300',
    value: { kind: 'addHeader', name: 'X-Stamp', value: ' yes' },
  },
  {
    // index 0, "X-First" NUL " 1" NUL
    name: 'i insert header',
    hex: '00000010 69 00000000 582d466972737400 203100',
    value: { kind: 'insertHeader', index: 0, name: 'X-First', value: ' 1' },
  },
  {
    // index 1, "Subject" NUL " New" NUL
    name: 'm change header',
    hex: '00000012 6d 00000001 5375626a65637400 204e657700',
    value: { kind: 'changeHeader', index: 1, name: 'Subject', value: ' New' },
  },
  {
    // index 2, "Received" NUL, empty value NUL: deletes the second Received
    name: 'm change header with empty value (delete)',
    hex: '0000000f 6d 00000002 526563656976656400 00',
    value: { kind: 'changeHeader', index: 2, name: 'Received', value: '' },
  },
  {
    // raw bytes "body" CR LF
    name: 'b replace body chunk',
    hex: '00000007 62 626f64790d0a',
    value: { kind: 'replaceBody', chunk: Buffer.from('body\r\n', 'latin1') },
  },
  {
    // "<new@x.test>" NUL
    name: '+ add recipient',
    hex: '0000000e 2b 3c6e657740782e746573743e00',
    value: { kind: 'addRecipient', recipient: '<new@x.test>' },
  },
  {
    // "<old@x.test>" NUL
    name: '- delete recipient',
    hex: '0000000e 2d 3c6f6c6440782e746573743e00',
    value: { kind: 'deleteRecipient', recipient: '<old@x.test>' },
  },
  {
    // "<p@x.test>" NUL "NOTIFY=NEVER" NUL
    name: '2 add recipient with ESMTP arguments',
    hex: '00000019 32 3c7040782e746573743e00 4e4f544946593d4e4556455200',
    value: { kind: 'addRecipientWithArgs', recipient: '<p@x.test>', args: 'NOTIFY=NEVER' },
  },
  {
    // "<s@x.test>" NUL
    name: 'e change sender without arguments',
    hex: '0000000c 65 3c7340782e746573743e00',
    value: { kind: 'changeFrom', sender: '<s@x.test>' },
  },
  {
    // "<s@x.test>" NUL "SIZE=10" NUL
    name: 'e change sender with arguments',
    hex: '00000014 65 3c7340782e746573743e00 53495a453d313000',
    value: { kind: 'changeFrom', sender: '<s@x.test>', args: 'SIZE=10' },
  },
  {
    // "held" NUL
    name: 'q quarantine',
    hex: '00000006 71 68656c6400',
    value: { kind: 'quarantine', reason: 'held' },
  },
  {
    // version 6, actions ADDHDRS, protocol: every NO* step flag of a v6 offer plus HDR_LEADSPC
    name: 'O optneg reply without macro lists',
    hex: '0000000d 4f 00000006 00000001 0010037f',
    value: { kind: 'optneg', version: 6, actions: 0x01, protocol: 0x10037f, macroRequests: [] },
  },
  {
    // version 6, actions ADDHDRS|CHGBODY|SETSYMLIST, protocol: the NO* step flags but NOBODY, SKIP and
    // HDR_LEADSPC; then stage 2 (MAIL) "i {auth_authen}" NUL, stage 5 (end of message) "i" NUL
    name: 'O optneg reply with macro lists',
    hex: '00000027 4f 00000006 00000103 0010076f 00000002 69207b617574685f61757468656e7d00 00000005 6900',
    value: {
      kind: 'optneg',
      version: 6,
      actions: 0x103,
      protocol: 0x10076f,
      macroRequests: [
        { stage: 2, names: ['i', '{auth_authen}'] },
        { stage: 5, names: ['i'] },
      ],
    },
  },
];

/** Frames that decodeCommand must refuse (the frame layer accepts them: their length is sound). */
export const MALFORMED_COMMANDS: readonly MalformedVector[] = [
  { name: "unknown command code 'Z'", hex: '00000001 5a', code: 'unknown-command' },
  { name: "a response code ('c') sent as a command", hex: '00000001 63', code: 'unknown-command' },
  // "abc" with no NUL after it
  { name: 'helo without its NUL', hex: '00000004 48 616263', code: 'malformed-command' },
  // "abc" NUL "x": one byte after the last field
  { name: 'helo with a trailing byte', hex: '00000006 48 61626300 78', code: 'malformed-command' },
  { name: 'data with a trailing byte', hex: '00000002 54 00', code: 'malformed-command' },
  { name: 'abort with a trailing byte', hex: '00000002 41 41', code: 'malformed-command' },
  // "mx.test" NUL, family 'X'
  { name: "connect with unknown family 'X'", hex: '0000000a 43 6d782e7465737400 58', code: 'malformed-command' },
  // "mx.test" NUL, family '4', only one byte of the port
  { name: 'connect with a short port', hex: '0000000b 43 6d782e7465737400 34 00', code: 'malformed-command' },
  // "mx.test" NUL, family '4', port 25, "1.2" without NUL
  { name: 'connect with an unterminated address', hex: '0000000f 43 6d782e7465737400 34 0019 312e32', code: 'malformed-command' },
  { name: 'mail with no address', hex: '00000001 4d', code: 'malformed-command' },
  { name: 'rcpt with no address', hex: '00000001 52', code: 'malformed-command' },
  // "<a@b.test>" without NUL
  { name: 'mail with an unterminated address', hex: '0000000b 4d 3c6140622e746573743e', code: 'malformed-command' },
  { name: 'optneg with 8 of its 12 bytes', hex: '00000009 4f 00000006 000001ff', code: 'malformed-command' },
  { name: 'macro without the command code', hex: '00000001 44', code: 'malformed-command' },
  // for 'M': "i" NUL and a value without NUL
  { name: 'macro with an unterminated value', hex: '00000006 44 4d 6900 4142', code: 'malformed-command' },
  // "Subject" NUL and no value
  { name: 'header without a value', hex: '00000009 4c 5375626a65637400', code: 'malformed-command' },
  { name: 'unknown command without its NUL', hex: '00000005 55 48454c50', code: 'malformed-command' },
];

/** Frames that decodeResponse must refuse. */
export const MALFORMED_RESPONSES: readonly MalformedVector[] = [
  { name: "unknown response code 'Z'", hex: '00000001 5a', code: 'unknown-response' },
  { name: "a command code ('T') sent as a response", hex: '00000001 54', code: 'unknown-response' },
  { name: 'continue with a trailing byte', hex: '00000002 63 00', code: 'malformed-response' },
  // "550 5.7.1 x" without NUL
  { name: 'reply code without its NUL', hex: '0000000c 79 35353020352e372e312078', code: 'malformed-response' },
  // index needs 4 bytes, only 2 given
  { name: 'insert header with a short index', hex: '00000003 69 0000', code: 'malformed-response' },
  // version 6, actions 0, protocol 0, stage 7 (no such stage) "i" NUL
  { name: 'optneg reply with an unknown macro stage', hex: '00000013 4f 00000006 00000000 00000000 00000007 6900', code: 'malformed-response' },
  // version 6, actions 0, protocol 0, stage 2 and no list after it
  { name: 'optneg reply with a stage but no list', hex: '00000011 4f 00000006 00000000 00000000 00000002', code: 'malformed-response' },
  // "<s@x.test>" NUL "SIZE=10" NUL "x" NUL: change sender takes at most two strings
  { name: 'change sender with a third string', hex: '00000016 65 3c7340782e746573743e00 53495a453d313000 7800', code: 'malformed-response' },
];
