/**
 * The inbound message of the benchmark: a remote site (`r1.bench.test`, whose key the loopback DNS server
 * publishes) signs and encrypts mail to the site under test, as its own muse-milter would, and hands it over from
 * a remote client. Used for the memory of one large inbound message (docs/security.md §7).
 */
import type { PrivateKey, PublicKey } from 'openpgp';
import type { EndOfMessageReply } from '../milter/src/index.ts';
import { applyHeaderEdits, protectOutbound } from '../src/engine/index.ts';
import { SENDER_DOMAIN, textBody, type BenchMessage } from './messages.ts';

/** The remote site that sends the inbound message; its key is among the fixed ones the DNS server publishes. */
export const INBOUND_SENDER_DOMAIN = 'r1.bench.test';

/**
 * Encrypted, armored SEIPD grows the content by about 4/3 (base64) times 66/64 (CRLF per 64 characters); the
 * content is sized so that the whole message stays at or below the size asked for.
 */
const ARMOR_GROWTH = (4 / 3) * (66 / 64);
const SLACK = 64 * 1024;

/**
 * A message of at most `size` bytes on the wire (headers included) from {@link INBOUND_SENDER_DOMAIN} to the site
 * under test, signed with `senderKey` and encrypted to `siteKey`.
 */
export async function buildInboundMessage(size: number, senderKey: PrivateKey, siteKey: PublicKey, index = 0): Promise<BenchMessage> {
  const headers = [
    { name: 'From', value: ` Rita Remote <rita@${INBOUND_SENDER_DOMAIN}>` },
    { name: 'To', value: ` Alice Example <alice@${SENDER_DOMAIN}>` },
    { name: 'Subject', value: ` Inbound figures ${index}` },
    { name: 'Date', value: ' Mon, 23 Nov 2026 10:00:00 +0000' },
    { name: 'Message-ID', value: ` <bench-in-${index}@${INBOUND_SENDER_DOMAIN}>` },
    { name: 'MIME-Version', value: ' 1.0' },
    { name: 'Content-Type', value: ' text/plain; charset=us-ascii' },
    { name: 'Content-Transfer-Encoding', value: ' 7bit' },
  ];
  const content = textBody(Math.max(1024, Math.floor(size / ARMOR_GROWTH) - SLACK));
  const result = await protectOutbound({ headers, body: content, siteKey: senderKey, recipientKeys: [siteKey], headerEncoding: 'latin1' });
  if (result.kind !== 'protected') throw new Error(`inbound message not protected: ${result.kind}`);
  const body = await result.body.toBuffer();
  await result.body.dispose();
  const wire = applyHeaderEdits(headers, result.headerEdits);
  const headerText = wire.map((h) => `${h.name}:${h.value}\r\n`).join('');
  if (headerText.length + 2 + body.length > size) throw new Error(`inbound message of ${headerText.length + 2 + body.length} bytes, more than ${size}`);
  const queueId = `I${index.toString(16).toUpperCase().padStart(9, '0')}`;
  return {
    transaction: {
      // A remote client: the daemon takes the message as inbound (it is outside milter.internalNetworks).
      client: { hostname: `mx.${INBOUND_SENDER_DOMAIN}`, family: 'inet', port: 40000 + (index % 20000), address: '192.0.2.25' },
      helo: `mx.${INBOUND_SENDER_DOMAIN}`,
      sender: `<rita@${INBOUND_SENDER_DOMAIN}>`,
      recipients: [`<alice@${SENDER_DOMAIN}>`],
      headers: wire,
      body,
      macros: { i: queueId, j: `mx.${SENDER_DOMAIN}`, '{daemon_name}': 'smtpd', '{client_addr}': '192.0.2.25', v: 'Postfix 3.7.11' },
    },
    raw: Buffer.concat([Buffer.from(`${headerText}\r\n`, 'latin1'), body]),
  };
}

/** An inbound message counts when it was decrypted: its body replaced and the site's signature verified. */
export function checkInbound(reply: EndOfMessageReply): string | undefined {
  if (reply.verdict.kind !== 'continue') return `verdict ${reply.verdict.kind}`;
  const results = reply.modifications.find((m) => 'name' in m && m.name === 'Authentication-Results');
  const value = results !== undefined && 'value' in results ? String(results.value) : '';
  if (!/x-muse=(?:pass|policy)\b/.test(value)) return `not verified (${value.replace(/\s+/g, ' ').trim()})`;
  return reply.modifications.some((m) => m.kind === 'replaceBody') ? undefined : 'not decrypted';
}
