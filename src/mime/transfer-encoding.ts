/**
 * Content-Transfer-Encoding codecs (RFC 2045 §6.7 quoted-printable, §6.8 base64) used to make a
 * signed entity 7-bit safe. The encoders write CRLF line breaks and never start a line with `-`
 * or `From `, so encoded text can neither be mistaken for a boundary delimiter nor be mangled by
 * an mbox `>From` rewrite (RFC 3156 §3).
 */

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const EQUALS = 0x3d;
/** RFC 2045 §6.7 rule 5: encoded lines are at most 76 characters, soft-break `=` included. */
const QP_LINE = 76;
/** RFC 2045 §6.8: base64 lines are at most 76 characters. */
const BASE64_LINE = 76;
const HEX = '0123456789ABCDEF';

/** Encodes bytes as quoted-printable; CRLF pairs are kept as hard line breaks. */
export function encodeQuotedPrintable(data: Buffer): Buffer {
  const out: string[] = [];
  let line = '';
  for (let i = 0; i < data.length; i++) {
    const c = data[i] as number;
    if (c === CR && data[i + 1] === LF) {
      out.push(line + '\r\n');
      line = '';
      i++;
      continue;
    }
    const atHardBreak = i + 1 === data.length || (data[i + 1] === CR && data[i + 2] === LF);
    // Break before the longest token (`=XX`) could overflow, so a token never straddles a break.
    if (line.length + 3 > QP_LINE - 1) {
      out.push(line + '=\r\n');
      line = '';
    }
    line += qpToken(c, data, i, atHardBreak, line.length === 0);
  }
  out.push(line);
  return Buffer.from(out.join(''), 'latin1');
}

/** The quoted-printable form of the byte at `i`. */
function qpToken(c: number, data: Buffer, i: number, atHardBreak: boolean, atLineStart: boolean): string {
  const escaped = '=' + HEX[c >> 4] + HEX[c & 15];
  if (c === SP || c === HT) return atHardBreak ? escaped : String.fromCharCode(c);
  if (c < 33 || c > 126 || c === EQUALS) return escaped;
  if (atLineStart && c === 0x2d) return escaped; // '-': never open a line that could read as a delimiter
  if (atLineStart && c === 0x46 && data.toString('latin1', i, i + 5) === 'From ') return escaped;
  return String.fromCharCode(c);
}

/** Decodes quoted-printable; malformed `=` sequences are kept literally (RFC 2045 §6.7 note 1). */
export function decodeQuotedPrintable(data: Buffer): Buffer {
  // Trailing blanks on an encoded line were added in transport (RFC 2045 §6.7 rule 3).
  const text = data.toString('latin1').replace(/[ \t]+(?=\r?\n|$)/g, '');
  const out = Buffer.allocUnsafe(text.length);
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === EQUALS) {
      if (text[i + 1] === '\r' && text[i + 2] === '\n') {
        i += 2;
        continue;
      }
      if (text[i + 1] === '\n') {
        i += 1;
        continue;
      }
      const hex = text.slice(i + 1, i + 3);
      if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
        out[o++] = parseInt(hex, 16);
        i += 2;
        continue;
      }
    }
    out[o++] = ch;
  }
  return out.subarray(0, o);
}

/** Encodes bytes as base64 in lines of 76 characters ending in CRLF. */
export function encodeBase64Lines(data: Buffer): Buffer {
  const encoded = data.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < encoded.length; i += BASE64_LINE) lines.push(encoded.slice(i, i + BASE64_LINE) + '\r\n');
  return Buffer.from(lines.join(''), 'latin1');
}

/** Decodes base64, skipping line breaks and any character outside the alphabet (RFC 2045 §6.8). */
export function decodeBase64(data: Buffer): Buffer {
  return Buffer.from(data.toString('latin1').replace(/[^A-Za-z0-9+/]/g, ''), 'base64');
}
