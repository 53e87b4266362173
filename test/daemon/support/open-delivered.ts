/**
 * Opens what the daemon delivered the way the receiving site would: the PGP/MIME engine's `openInbound` with the
 * receiving site's private key and the sending site's public key as the DNS would give it.
 */
import { applyHeaderEdits, openInbound, type InboundResult } from '../../../src/engine/index.ts';
import type { DeliveredMessage } from '../../../milter/src/index.ts';
import type { TestSite } from './harness.ts';

/** The opened message: the engine's result, and for `opened` the header and body a user would see. */
export interface OpenedMessage {
  readonly result: InboundResult;
  readonly headers: Array<{ name: string; value: string }> | undefined;
  readonly body: Buffer | undefined;
}

/**
 * Opens `message` at `receiver` (whose private key decrypts) with `sender`'s public key published. Multipart/signed
 * mail is unwrapped once its signature verifies.
 */
export async function openDelivered(message: Pick<DeliveredMessage, 'headers' | 'body'>, receiver: TestSite, sender: TestSite): Promise<OpenedMessage> {
  const result = await openInbound({
    headers: message.headers,
    body: message.body,
    siteKeys: [receiver.privateKey],
    senderKeys: async (domain) => (domain === sender.domain ? { keys: [sender.publicKey], dnssec: false } : null),
    authservId: receiver.domain,
    localDomains: [receiver.domain],
    unwrapSigned: true,
    headerEncoding: 'latin1',
  });
  if (result.kind !== 'opened') return { result, headers: undefined, body: undefined };
  return { result, headers: applyHeaderEdits(message.headers, result.headerEdits), body: await result.body.toBuffer() };
}

/** The MIME boundary of a multipart Content-Type value. */
export function boundaryOf(contentType: string | undefined): string {
  const match = /boundary="([^"]+)"/.exec(contentType ?? '');
  if (match?.[1] === undefined) throw new Error(`no boundary in ${JSON.stringify(contentType)}`);
  return match[1];
}
