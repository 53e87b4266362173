/**
 * The streaming reader of a multipart/encrypted body must find exactly the encrypted part's lines that the whole
 * read finds (readPgpMime, then the armor's lines as dearmor splits them), in any chunking, or refuse the shape
 * (Unstreamable) so the whole read answers. Bodies are varied in their delimiters (transport padding, a close
 * delimiter or none, a look-alike line), line breaks (CRLF, bare LF, mixed) and part headers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseContentType } from '../../src/mime/content-fields.ts';
import { EncryptedPartReader } from '../../src/mime/encrypted-part-stream.ts';
import { readPgpMime } from '../../src/mime/pgp-mime-read.ts';
import { Unstreamable } from '../../src/stream/unstreamable.ts';

const TYPE = parseContentType('multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"');
const ARMOR = ['-----BEGIN PGP MESSAGE-----', '', 'wcBMA0xyz', 'AbCdEf==', '=abcd', '-----END PGP MESSAGE-----'];

/** The lines dearmor reads from a buffer: split at LF, a CR before it dropped, the text after the last LF a line too. */
function wholeLines(part: Buffer): string[] {
  return part.toString('latin1').split('\n').map((l, i, all) => (i < all.length - 1 && l.endsWith('\r') ? l.slice(0, -1) : l));
}

function streamedLines(body: Buffer, chunk: number): string[] | 'unstreamable' {
  const lines: string[] = [];
  const reader = new EncryptedPartReader('b', (buf, start, end) => lines.push(buf.toString('latin1', start, end)));
  try {
    for (let at = 0; at < body.length; at += chunk) reader.push(body.subarray(at, at + chunk));
    reader.end();
  } catch (error) {
    if (error instanceof Unstreamable) return 'unstreamable';
    throw error;
  }
  return lines;
}

function body(eol: string, parts: { preamble?: string; second?: string; close?: string; epilogue?: string; third?: boolean; header?: string }): Buffer {
  const second = parts.second ?? `Content-Type: application/octet-stream${eol}${parts.header ?? ''}${eol}${ARMOR.join(eol)}${eol}`;
  return Buffer.from(
    `${parts.preamble ?? ''}--b${eol}Content-Type: application/pgp-encrypted${eol}${eol}Version: 1${eol}${eol}--b${eol}${second}` +
      (parts.third === true ? `${eol}--b${eol}Content-Type: text/plain${eol}${eol}x${eol}` : '') +
      (parts.close ?? `${eol}--b--${eol}`) +
      (parts.epilogue ?? ''),
    'latin1',
  );
}

const CASES: Array<[string, Buffer]> = [];
for (const eol of ['\r\n', '\n']) {
  CASES.push(
    [`plain ${JSON.stringify(eol)}`, body(eol, {})],
    ['preamble and epilogue', body(eol, { preamble: `This is PGP/MIME.${eol}--bb not a delimiter${eol}`, epilogue: `after${eol}--b${eol}` })],
    ['transport padding on the delimiters', body(eol, { close: `${eol}--b-- \t${eol}` })],
    ['no close delimiter', body(eol, { close: eol })],
    ['no close delimiter, no last line break', body(eol, { close: '' })],
    ['a look-alike line inside the part', body(eol, { second: `Content-Type: application/octet-stream${eol}${eol}${ARMOR[0]}${eol}--bx${eol}--b-x${eol}${ARMOR.slice(1).join(eol)}${eol}` })],
    ['headerless second part', body(eol, { second: `${ARMOR.join(eol)}${eol}` })],
    ['folded header and blank-looking lines', body(eol, { header: `X-A: one${eol} two${eol}`, second: undefined })],
    ['an empty line at once', body(eol, { second: `${eol}${ARMOR.join(eol)}${eol}${eol}` })],
    ['base64 transfer encoding', body(eol, { header: `Content-Transfer-Encoding: base64${eol}` })],
    ['8bit transfer encoding', body(eol, { header: `Content-Transfer-Encoding: 8bit${eol}` })],
    ['a third part', body(eol, { third: true })],
    ['second part ends at once', body(eol, { second: `Content-Type: application/octet-stream` })],
  );
}
CASES.push(
  ['mixed line breaks', Buffer.from(`--b\r\nContent-Type: application/pgp-encrypted\n\nVersion: 1\r\n--b\nContent-Type: application/octet-stream\r\n\n${ARMOR.join('\n')}\r\n\r\n--b--\n`, 'latin1')],
  ['a lone CR before the line break of a delimiter', Buffer.from(`--b\r\nContent-Type: application/pgp-encrypted\r\n\r\n--b\r\r\nContent-Type: application/octet-stream\r\n\r\n${ARMOR.join('\r\n')}\r\n--b--\r\n`, 'latin1')],
  ['first part of another type', Buffer.from(`--b\r\nContent-Type: text/plain\r\n\r\n--b\r\n\r\n${ARMOR.join('\r\n')}\r\n--b--\r\n`, 'latin1')],
  ['no delimiter at all', Buffer.from(`${ARMOR.join('\r\n')}\r\n`, 'latin1')],
);

test('the streaming reader finds the lines the whole read finds, in any chunking, or leaves the body to the whole read', () => {
  let compared = 0;
  for (const [name, bytes] of CASES) {
    const container = readPgpMime(TYPE, bytes);
    for (const chunk of [1, 2, 3, 7, 64, bytes.length]) {
      const streamed = streamedLines(bytes, chunk);
      if (streamed === 'unstreamable') continue;
      // What the streaming reader accepts, the whole read reads as an encrypted container with these very lines.
      assert.equal(container?.kind, 'encrypted', `${name} (chunks of ${chunk})`);
      if (container?.kind !== 'encrypted') continue;
      assert.deepEqual(streamed, wholeLines(container.armoredMessage), `${name} (chunks of ${chunk})`);
      compared++;
    }
  }
  // The ordinary shapes are streamed (not all left to the whole read).
  assert.ok(compared >= 18 * 6, String(compared));
});

test('exactly the shapes left to the whole read are refused', () => {
  const refused = CASES.filter(([, bytes]) => streamedLines(bytes, 5) === 'unstreamable').map(([name]) => name);
  assert.deepEqual(refused, [
    'base64 transfer encoding',
    'a third part',
    'base64 transfer encoding',
    'a third part',
    'a lone CR before the line break of a delimiter',
    'first part of another type',
    'no delimiter at all',
  ]);
});
