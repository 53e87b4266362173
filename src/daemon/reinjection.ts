/**
 * Builds and submits the copy of a message for the recipients that cannot share the original's body
 * (the split strategy). The copy is the finished message — header edits applied, new body — because
 * the re-injection endpoint runs no milters; it carries the authenticated loop marker.
 */
import { applyHeaderEdits, type HeaderEdit, type OutputBody } from '../engine/index.ts';
import type { HeaderField } from '../engine/index.ts';
import { toCrlf } from '../mime/crlf.ts';
import { createMarker, MARKER_HEADER } from './reinjection-marker.ts';
import type { Runtime } from './runtime.ts';

/** Removes the angle brackets the MTA keeps around envelope addresses. */
export function bareAddress(address: string): string {
  return address.replace(/^<(.*)>$/, '$1');
}

/** The copy to submit. */
export interface CopySpec {
  queueId: string;
  group: string;
  sender: string;
  recipients: readonly string[];
  headers: readonly HeaderField[];
  edits: readonly HeaderEdit[];
  /** The new body, or undefined to keep the original body. */
  body: OutputBody | undefined;
  originalBody: () => AsyncIterable<Buffer>;
}

async function* copyBytes(runtime: Runtime, copy: CopySpec, recipients: string[]): AsyncGenerator<Buffer> {
  const marker = createMarker(runtime.markerSecret, {
    queueId: copy.queueId,
    group: copy.group,
    recipients,
    time: Math.floor(runtime.now().getTime() / 1000),
  });
  const fields = [{ name: MARKER_HEADER, value: marker }, ...applyHeaderEdits(copy.headers, copy.edits)];
  // Header values are binary strings (one character per byte), so latin1 gives back the exact bytes. The MTA
  // hands folded values over with bare LF line breaks (Postfix does); on the SMTP wire every line ends in CRLF.
  yield toCrlf(Buffer.from(fields.map((f) => `${f.name}:${f.value}\r\n`).join('') + '\r\n', 'latin1'));
  yield* copy.body === undefined ? copy.originalBody() : copy.body.chunks();
}

/** Submits the copy; resolves with the MTA's queue reply, rejects if the MTA did not take it whole. */
export async function submitCopy(runtime: Runtime, copy: CopySpec): Promise<string> {
  const recipients = copy.recipients.map(bareAddress);
  const settings = runtime.config.mixedRecipients.reinject;
  const result = await runtime.submit({
    host: settings.host,
    port: settings.port,
    heloName: settings.heloName,
    timeout: settings.timeout,
    sender: bareAddress(copy.sender),
    recipients,
    message: copyBytes(runtime, copy, recipients),
  });
  return result.reply;
}
