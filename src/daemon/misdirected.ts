/**
 * Inbound mail that the direction rules called outbound. Mail from other sites that reaches the MTA from an
 * internal address (a filtering gateway, a front MTA on this host) is outbound by the address rule unless its
 * listener is named in `direction.inboundDaemonNames`. Processed as outbound, mail encrypted to this site's own
 * key would be delivered to local readers as the encrypted blob it arrived as, silently. It is recognised here by
 * its recipient key IDs, and never delivered so: it is decrypted as inbound when every recipient is local, and
 * deferred otherwise; either way a warning names the setting that is missing.
 */
import type { PrivateKey } from 'openpgp';
import type { HeaderField } from '../engine/index.ts';
import { contentTypeOf } from '../mime/content-fields.ts';
import { pgpMimeLayer, readPgpMime } from '../mime/pgp-mime-read.ts';
import { readEncrypted } from '../pgp/decrypt.ts';

/**
 * Whether the message is PGP/MIME encrypted to one of `keys` by key ID (an anonymous recipient does not count: it
 * proves nothing about who the mail was meant for). Reads at most `maxBytes` of the body; a longer body, or one that
 * does not parse, counts as not ours.
 */
export async function encryptedToSiteKey(headers: readonly HeaderField[], body: AsyncIterable<Buffer>, keys: readonly PrivateKey[], maxBytes: number): Promise<boolean> {
  const type = contentTypeOf(headers);
  if (pgpMimeLayer(type) !== 'encrypted') return false;
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > maxBytes) return false;
    parts.push(chunk);
  }
  const container = readPgpMime(type, Buffer.concat(parts));
  if (container === null || container.kind !== 'encrypted') return false;
  try {
    const encrypted = await readEncrypted(container.armoredMessage);
    const ours = new Set(keys.flatMap((key) => key.getKeyIDs().map((id) => id.toHex().toUpperCase())));
    return encrypted.recipientKeyIds.some((id) => ours.has(id));
  } catch {
    return false;
  }
}

/** The warning logged for such a message: what happened and which setting is missing. */
export function misdirectionWarning(directionReason: string, daemonName: string | undefined): string {
  const listener = daemonName === undefined || daemonName === '' ? 'the listener it arrived on (its {daemon_name})' : `"${daemonName}"`;
  return (
    `mail encrypted to this site's key was classified outbound (${directionReason}): add ${listener} to ` +
    'direction.inboundDaemonNames, and give that smtpd -o milter_macro_daemon_name=INBOUND in master.cf ' +
    '(examples/postfix/master.cf), so that mail from other sites is processed as inbound'
  );
}
