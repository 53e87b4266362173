/**
 * Mail a hostile sender can make without any key but our public one: PGP/MIME encrypted to the receiving site
 * (unsigned), built packet by packet where the attack needs it, and the engine's inbound entry with the test keys.
 */
import { openInbound, type InboundOptions, type InboundResult } from '../../../src/engine/inbound.ts';
import type { HeaderField } from '../../../src/mime/header-fields.ts';
import { armorBytes } from '../../../src/pgp/armor.ts';
import { FIXED_NOW, testKeys } from '../../engine/fixtures.ts';
import { PGP_MIME_TYPE, pgpMimeBody } from '../../support/encrypted-mail.ts';
import { encryptedTo, type HostileCompression } from '../../support/hostile-messages.ts';

/** The outer header of every hostile message: a PGP/MIME message to the receiving site. */
export const OUTER: HeaderField[] = [
  { name: 'From', value: ' Mallory <mallory@attacker.test>' },
  { name: 'To', value: ' bob@receiver.test' },
  { name: 'Subject', value: ' hello' },
  { name: 'MIME-Version', value: ' 1.0' },
  { name: 'Content-Type', value: PGP_MIME_TYPE },
];

/** A message as the milter hands it to the engine. */
export interface HostileMessage {
  readonly headers: HeaderField[];
  readonly body: Buffer;
}

/** Wraps a binary OpenPGP message as the body of {@link OUTER}. */
export function pgpMime(binary: Uint8Array): HostileMessage {
  return { headers: OUTER, body: pgpMimeBody(armorBytes('MESSAGE', binary)) };
}

/** `inner` (a whole MIME entity) encrypted, unsigned, to the receiving site; compressed when asked. */
export async function encryptedToUs(inner: Buffer, compression: HostileCompression = 'none'): Promise<HostileMessage> {
  const keys = await testKeys();
  return pgpMime(await encryptedTo(keys.receiverSite.public, inner, compression, FIXED_NOW));
}

/** Opens `message` as the receiving site, nobody's sender key published. */
export async function openAsReceiver(message: HostileMessage, overrides: Partial<InboundOptions> = {}): Promise<InboundResult> {
  const keys = await testKeys();
  return openInbound({
    headers: message.headers,
    body: message.body,
    siteKeys: [keys.receiverSite.secret],
    senderKeys: async () => null,
    authservId: 'mx.receiver.test',
    localDomains: ['receiver.test'],
    now: () => FIXED_NOW,
    ...overrides,
  });
}
