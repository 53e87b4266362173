/**
 * The messages the benchmark sends: mail-like ASCII text of a given total size, with the envelope and headers
 * of an outbound message from the sending site to one or several recipient domains. Deterministic, so every
 * milter and baseline in a run gets the same bytes.
 */
import type { Transaction } from '../milter/src/index.ts';

/** The sending site: the milter under test holds its key. */
export const SENDER_DOMAIN = 'sender.bench.test';

/** The parent of every recipient domain the loopback DNS server answers for. */
export const RECIPIENT_ZONE = 'bench.test';

/** One message: the milter transaction and the same bytes as an RFC 5322 file (for gpg and the crypto limit). */
export interface BenchMessage {
  readonly transaction: Transaction;
  /** Header section, blank line and body, CRLF line ends. */
  readonly raw: Buffer;
}

/** A fixed line of prose, cut and rotated to give text with the shape (not the statistics) of mail. */
const PROSE =
  'The quarterly figures are attached below; please check the totals for the northern region before Friday, ' +
  'and let me know whether the shipping estimates still hold after the change of carrier we discussed. ';

/** A body of exactly `size` bytes: lines of at most 76 characters ended by CRLF. */
export function textBody(size: number): Buffer {
  const body = Buffer.alloc(size);
  let offset = 0;
  let line = 0;
  while (offset < size) {
    const start = (line * 17) % (PROSE.length - 76);
    const text = `${PROSE.slice(start, start + 70 + (line % 7)).trimEnd()}\r\n`;
    offset += body.write(text, offset, 'latin1');
    line++;
  }
  // A body cut inside its last line still ends with CRLF, as mail does.
  if (size >= 2) body.write('\r\n', size - 2, 'latin1');
  return body;
}

/** The recipient domains of message `index`: fixed names (warm DNS) or names never asked before (cold DNS). */
export function recipientDomains(count: number, index: number, cold: boolean, runTag: string): string[] {
  return Array.from({ length: count }, (_, k) => (cold ? `m${index}-${k}.${runTag}.cold.${RECIPIENT_ZONE}` : `r${k + 1}.${RECIPIENT_ZONE}`));
}

/**
 * Builds message `index` of about `size` bytes in total (headers included) to one recipient in each of
 * `domains`.
 */
export function buildMessage(size: number, domains: readonly string[], index: number, body?: Buffer): BenchMessage {
  const recipients = domains.map((domain, k) => `user${k + 1}@${domain}`);
  const headers = [
    { name: 'From', value: ` Alice Example <alice@${SENDER_DOMAIN}>` },
    { name: 'To', value: ` ${recipients.join(', ')}` },
    { name: 'Subject', value: ` Quarterly figures ${index}` },
    { name: 'Date', value: ' Mon, 23 Nov 2026 10:00:00 +0000' },
    { name: 'Message-ID', value: ` <bench-${index}@${SENDER_DOMAIN}>` },
    { name: 'MIME-Version', value: ' 1.0' },
    { name: 'Content-Type', value: ' text/plain; charset=us-ascii' },
    { name: 'Content-Transfer-Encoding', value: ' 7bit' },
  ];
  const headerText = headers.map((h) => `${h.name}:${h.value}\r\n`).join('');
  const bodyBytes = body ?? textBody(Math.max(2, size - headerText.length - 2));
  const queueId = `B${index.toString(16).toUpperCase().padStart(9, '0')}`;
  return {
    transaction: {
      client: { hostname: 'client.bench.test', family: 'inet', port: 40000 + (index % 20000), address: '127.0.0.1' },
      helo: 'client.bench.test',
      sender: `<alice@${SENDER_DOMAIN}>`,
      recipients: recipients.map((r) => `<${r}>`),
      headers,
      body: bodyBytes,
      macros: { i: queueId, j: `mx.${SENDER_DOMAIN}`, '{daemon_name}': 'smtpd', '{client_addr}': '127.0.0.1', v: 'Postfix 3.7.11' },
    },
    raw: Buffer.concat([Buffer.from(`${headerText}\r\n`, 'latin1'), bodyBytes]),
  };
}
