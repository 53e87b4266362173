/**
 * SMTP DATA transparency (RFC 5321 section 4.5.2) as a streaming transform: a line that starts with a
 * dot gets a second one, and the message ends with CRLF.CRLF. Works across chunk boundaries.
 */

/** Stateful dot-stuffer: feed chunks in order, then call {@link DotStuffer.end}. */
export class DotStuffer {
  /** Whether the next byte starts a line; the message itself starts a line. */
  private atLineStart = true;
  private lastTwo = Buffer.from('\r\n');

  /** Returns the chunk with every line-initial dot doubled. */
  push(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    const parts: Buffer[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (this.atLineStart && chunk[i] === 0x2e) {
        parts.push(chunk.subarray(start, i), Buffer.from('.'));
        start = i;
      }
      this.atLineStart = chunk[i] === 0x0a;
    }
    parts.push(chunk.subarray(start));
    this.lastTwo = Buffer.concat([this.lastTwo, chunk]).subarray(-2);
    return parts.length === 1 ? chunk : Buffer.concat(parts);
  }

  /** The terminator: CRLF first if the message did not end with one, then `.` CRLF. */
  end(): Buffer {
    return this.lastTwo.equals(Buffer.from('\r\n')) ? Buffer.from('.\r\n') : Buffer.from('\r\n.\r\n');
  }
}
