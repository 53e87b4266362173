/**
 * Builds and submits the copy of a message for the recipients that cannot share the original's body
 * (the split strategy). The copy is the finished message — header edits applied, new body — carrying the
 * re-injection marker bound to exactly this copy: its envelope, its Message-ID fields and its body as the milter
 * at the re-injection listener will see it. That milter checks the marker, removes it and lets the copy pass.
 * The copy keeps the envelope's handling parameters (SMTPUTF8, and the DSN requests ENVID, RET, NOTIFY, ORCPT):
 * its recipients are owed the same treatment as if the message had not been split.
 */
import { applyHeaderEdits, type HeaderEdit, type OutputBody } from '../engine/index.ts';
import type { HeaderField } from '../engine/index.ts';
import { toCrlf } from '../mime/crlf.ts';
import { keptParameters } from '../smtp/parameters.ts';
import { bareAddress, digestBody, messageIdValues } from './copy-identity.ts';
import { createMarker, MARKER_HEADER } from './reinjection-marker.ts';
import type { Runtime } from './runtime.ts';

export { bareAddress } from './copy-identity.ts';

/** The copy to submit. */
export interface CopySpec {
  queueId: string;
  sender: string;
  recipients: readonly string[];
  /** The MAIL FROM parameters the MTA reported, as received. */
  senderParameters: readonly string[];
  /** The RCPT TO parameters of each recipient, in the order of {@link recipients}, as received. */
  recipientParameters: ReadonlyArray<readonly string[]>;
  headers: readonly HeaderField[];
  edits: readonly HeaderEdit[];
  /** The new body, or undefined to keep the original body. */
  body: OutputBody | undefined;
  originalBody: () => AsyncIterable<Buffer>;
}

/** The copy's header section, marker first, and its body. */
async function copyMessage(runtime: Runtime, copy: CopySpec, sender: string, recipients: string[]): Promise<{ head: Buffer; body: () => AsyncIterable<Buffer> }> {
  const body = (): AsyncIterable<Buffer> => (copy.body === undefined ? copy.originalBody() : copy.body.chunks());
  const fields = applyHeaderEdits(copy.headers, copy.edits);
  // The body is read once more for its digest: the marker goes in the header, before the body is sent.
  const marker = createMarker(runtime.markerSecret, {
    queueId: copy.queueId,
    time: Math.floor(runtime.now().getTime() / 1000),
    sender,
    recipients,
    messageIds: messageIdValues(fields),
    bodyDigest: await digestBody(body()),
  });
  // Header values are binary strings (one character per byte), so latin1 gives back the exact bytes. The MTA
  // hands folded values over with bare LF line breaks (Postfix does); on the SMTP wire every line ends in CRLF.
  const head = toCrlf(Buffer.from([{ name: MARKER_HEADER, value: marker }, ...fields].map((f) => `${f.name}:${f.value}\r\n`).join('') + '\r\n', 'latin1'));
  return { head, body };
}

async function* concat(head: Buffer, body: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield head;
  yield* body;
}

/** Submits the copy; resolves with the MTA's queue reply, rejects if the MTA did not take it whole. */
export async function submitCopy(runtime: Runtime, copy: CopySpec): Promise<string> {
  const recipients = copy.recipients.map(bareAddress);
  const sender = bareAddress(copy.sender);
  const settings = runtime.config.mixedRecipients.reinject;
  const { head, body } = await copyMessage(runtime, copy, sender, recipients);
  const mail = keptParameters('mail', copy.senderParameters);
  const rcpts = copy.recipients.map((_, i) => keptParameters('rcpt', copy.recipientParameters[i] ?? []));
  const malformed = [...mail.malformed, ...rcpts.flatMap((r) => r.malformed)];
  // The MTA checked them already; one it let through that our grammar refuses is left off the copy, and said.
  if (malformed.length > 0) runtime.log.notice('ESMTP parameters left off the re-injected copy: not RFC 5321 syntax', { queueId: copy.queueId, count: malformed.length });
  const result = await runtime.submit({
    host: settings.host,
    port: settings.port,
    heloName: settings.heloName,
    timeout: settings.timeout,
    sender,
    recipients,
    mailParameters: mail.kept,
    recipientParameters: rcpts.map((r) => r.kept),
    message: concat(head, body()),
  });
  return result.reply;
}
