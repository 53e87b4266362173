/**
 * The codec against hand-written golden vectors (see vectors.ts): every command an MTA sends and every
 * reply a filter sends decodes to its typed value, encodes back byte for byte, and survives the frame
 * decoder whatever way the stream is cut. Malformed input fails with the documented error class and code.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CommandCode,
  decodeCommand,
  decodeResponse,
  encodeCommand,
  encodeResponse,
  FrameDecoder,
  MilterProtocolError,
  ResponseCode,
  type Command,
  type Frame,
  type ProtocolErrorCode,
  type Response,
} from '../../milter/src/index.ts';
import { bytes, COMMAND_VECTORS, MALFORMED_COMMANDS, MALFORMED_RESPONSES, RESPONSE_VECTORS, type Vector } from './vectors.ts';

/** The server's default frame limit: a 1 MiB body chunk plus its code byte. */
const MAX_FRAME_SIZE = 1024 * 1024 + 1;

/** The frame a vector stands for, read straight off the layout: code at offset 4, data after it. */
function layoutFrame(wire: Buffer): Frame {
  return { code: String.fromCharCode(wire[4] as number), data: wire.subarray(5) };
}

function pushAll(decoder: FrameDecoder, parts: readonly Buffer[]): Frame[] {
  const frames: Frame[] = [];
  for (const part of parts) frames.push(...decoder.push(part));
  return frames;
}

/** Feeds `wire` cut in two at every position, then one byte at a time; each way must give `expected`. */
function assertEverySplit(wire: Buffer, expected: readonly Frame[]): void {
  for (let at = 0; at <= wire.length; at++) {
    const decoder = new FrameDecoder({ maxFrameSize: MAX_FRAME_SIZE });
    assert.deepStrictEqual(pushAll(decoder, [wire.subarray(0, at), wire.subarray(at)]), expected, `split at byte ${at}`);
    assert.equal(decoder.buffered, 0);
    decoder.end();
  }
  const decoder = new FrameDecoder({ maxFrameSize: MAX_FRAME_SIZE });
  const single = [...wire].map((byte) => Buffer.from([byte]));
  assert.deepStrictEqual(pushAll(decoder, single), expected, 'byte by byte');
  assert.equal(decoder.buffered, 0);
  decoder.end();
}

function assertProtocolError(action: () => unknown, code: ProtocolErrorCode): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof MilterProtocolError, `expected MilterProtocolError, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  });
}

function assertVectorLengths(vectors: readonly { name: string; hex: string }[]): void {
  for (const vector of vectors) {
    const wire = bytes(vector.hex);
    assert.equal(wire.readUInt32BE(0), wire.length - 4, `${vector.name}: length field`);
  }
}

describe('golden vectors are consistent', () => {
  test('each length field counts exactly the code byte and the data', () => {
    assertVectorLengths([...COMMAND_VECTORS, ...RESPONSE_VECTORS, ...MALFORMED_COMMANDS, ...MALFORMED_RESPONSES]);
  });

  test('the command vectors cover every command code and every connect family', () => {
    const codes = new Set(COMMAND_VECTORS.map((v) => layoutFrame(bytes(v.hex)).code));
    assert.deepEqual([...codes].sort(), Object.values(CommandCode).sort());
    const families = COMMAND_VECTORS.flatMap((v) => (v.value.kind === 'connect' ? [v.value.family] : []));
    assert.deepEqual(families.sort(), ['inet', 'inet6', 'unix', 'unknown']);
  });

  test('the response vectors cover every response code', () => {
    const codes = new Set(RESPONSE_VECTORS.map((v) => layoutFrame(bytes(v.hex)).code));
    assert.deepEqual([...codes].sort(), Object.values(ResponseCode).sort());
  });
});

function describeVectors<T extends Command | Response>(
  title: string,
  vectors: readonly Vector<T>[],
  decode: (frame: Frame) => T,
  encode: (value: T) => Buffer,
): void {
  describe(title, () => {
    for (const vector of vectors) {
      describe(vector.name, () => {
        const wire = bytes(vector.hex);
        test('decodes to the typed value', () => {
          assert.deepStrictEqual(decode(layoutFrame(wire)), vector.value);
        });
        test('encodes to the vector byte for byte', () => {
          assert.equal(encode(vector.value).toString('hex'), wire.toString('hex'));
        });
        test('comes out of the frame decoder as one frame at every split point', () => {
          assertEverySplit(wire, [layoutFrame(wire)]);
        });
      });
    }
    test('all vectors concatenated come out in order at every split point, and decode', () => {
      const wires = vectors.map((v) => bytes(v.hex));
      const stream = Buffer.concat(wires);
      assertEverySplit(stream, wires.map(layoutFrame));
      const decoder = new FrameDecoder({ maxFrameSize: MAX_FRAME_SIZE });
      const middle = Math.floor(stream.length / 2);
      const values = pushAll(decoder, [stream.subarray(0, middle), stream.subarray(middle)]).map(decode);
      assert.deepStrictEqual(values, vectors.map((v) => v.value));
    });
  });
}

describeVectors('commands (MTA to filter)', COMMAND_VECTORS, decodeCommand, encodeCommand);
describeVectors('responses (filter to MTA)', RESPONSE_VECTORS, decodeResponse, encodeResponse);

describe('decoder leniency kept on purpose', () => {
  test('optneg fields a newer MTA appends are ignored, as libmilter does', () => {
    // version 6, actions 0x1ff, protocol 0x1fffff, then one more 32-bit field
    const wire = bytes('00000011 4f 00000006 000001ff 001fffff 00000000');
    assert.deepStrictEqual(decodeCommand(layoutFrame(wire)), { kind: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff });
  });

  test('a macro command with no pairs is an empty list', () => {
    assert.deepStrictEqual(decodeCommand(layoutFrame(bytes('00000002 44 43'))), { kind: 'macro', forCommand: 'C', macros: [] });
  });
});

describe('frame layer errors', () => {
  test("an empty frame (length 0) is 'frame-empty'", () => {
    const decoder = new FrameDecoder({ maxFrameSize: MAX_FRAME_SIZE });
    assertProtocolError(() => decoder.push(bytes('00000000')), 'frame-empty');
  });

  test("an empty frame after a good one in the same chunk is still 'frame-empty'", () => {
    const decoder = new FrameDecoder({ maxFrameSize: MAX_FRAME_SIZE });
    assertProtocolError(() => decoder.push(bytes('00000001 54 00000000')), 'frame-empty');
  });

  test("a length beyond maxFrameSize is 'frame-too-large' as soon as the length field is complete", () => {
    const decoder = new FrameDecoder({ maxFrameSize: 1000 });
    // 1001 = 0x3e9: only the four length bytes are pushed, so the body is never waited for or buffered.
    assert.deepEqual(decoder.push(bytes('0000')), []);
    assertProtocolError(() => decoder.push(bytes('03e9')), 'frame-too-large');
  });

  test("the largest announced length, 0xffffffff, is 'frame-too-large' at once", () => {
    const decoder = new FrameDecoder({ maxFrameSize: MAX_FRAME_SIZE });
    assertProtocolError(() => decoder.push(bytes('ffffffff 42')), 'frame-too-large');
  });

  test('a frame of exactly maxFrameSize is accepted', () => {
    const decoder = new FrameDecoder({ maxFrameSize: 6 });
    // length 6: code 'B' and five body bytes
    assert.deepEqual(decoder.push(bytes('00000006 42')), []);
    assert.equal(decoder.buffered, 5);
    const frames = decoder.push(bytes('0102030405'));
    assert.deepStrictEqual(frames, [{ code: 'B', data: bytes('0102030405') }]);
  });

  test("a stream that ends inside a frame is 'truncated-frame' at end(), at every cut", () => {
    const wire = bytes(COMMAND_VECTORS.find((v) => v.name === 'C connect, family 4')?.hex ?? '');
    assert.equal(wire.length, 26);
    for (let at = 1; at < wire.length; at++) {
      const decoder = new FrameDecoder({ maxFrameSize: MAX_FRAME_SIZE });
      assert.deepEqual(decoder.push(wire.subarray(0, at)), [], `cut at ${at}`);
      assertProtocolError(() => decoder.end(), 'truncated-frame');
    }
  });

  test("a whole frame followed by a partial one: the first comes out, end() is 'truncated-frame'", () => {
    const decoder = new FrameDecoder({ maxFrameSize: MAX_FRAME_SIZE });
    assert.deepStrictEqual(decoder.push(bytes('00000001 54 000000')), [{ code: 'T', data: Buffer.alloc(0) }]);
    assert.equal(decoder.buffered, 3);
    assertProtocolError(() => decoder.end(), 'truncated-frame');
  });
});

describe('malformed commands', () => {
  for (const vector of MALFORMED_COMMANDS) {
    test(`${vector.name} is '${vector.code}'`, () => {
      const frames = new FrameDecoder({ maxFrameSize: MAX_FRAME_SIZE }).push(bytes(vector.hex));
      assert.equal(frames.length, 1);
      assertProtocolError(() => decodeCommand(frames[0] as Frame), vector.code);
    });
  }
});

describe('malformed responses', () => {
  for (const vector of MALFORMED_RESPONSES) {
    test(`${vector.name} is '${vector.code}'`, () => {
      const frames = new FrameDecoder({ maxFrameSize: MAX_FRAME_SIZE }).push(bytes(vector.hex));
      assert.equal(frames.length, 1);
      assertProtocolError(() => decodeResponse(frames[0] as Frame), vector.code);
    });
  }
});
