/**
 * Reading the MIME content fields (Content-Type, Content-Transfer-Encoding) from raw header
 * values with libmime, applying the RFC 2045 defaults when a field is absent.
 */
import libmime from 'libmime';
import { firstValue, unfold, type HeaderField } from './header-fields.ts';

/** A parsed Content-Type: lowercase `type/subtype` and parameters keyed by lowercase name. */
export interface ContentType {
  readonly mediaType: string;
  readonly params: Readonly<Record<string, string>>;
}

/** RFC 2045 §5.2: without a Content-Type field the entity is `text/plain; charset=us-ascii`. */
export const DEFAULT_CONTENT_TYPE_VALUE = 'text/plain; charset=us-ascii';

/**
 * Parses a raw Content-Type value. Comments are dropped from the media type and RFC 2231
 * continuations are assembled by libmime.
 */
export function parseContentType(rawValue: string): ContentType {
  const parsed = libmime.parseHeaderValue(unfold(rawValue));
  const mediaType = parsed.value.replace(/\([^)]*\)/g, '').trim().toLowerCase();
  return { mediaType, params: parsed.params };
}

/** The entity's Content-Type, or the RFC 2045 default when it has none. */
export function contentTypeOf(fields: readonly HeaderField[]): ContentType {
  const raw = firstValue(fields, 'Content-Type');
  const parsed = raw === undefined ? undefined : parseContentType(raw);
  // RFC 2045 §5.2: a syntactically invalid Content-Type is treated as the default as well.
  if (parsed === undefined || !/^[^\s/]+\/[^\s/]+$/.test(parsed.mediaType)) return parseContentType(DEFAULT_CONTENT_TYPE_VALUE);
  return parsed;
}

/** The entity's transfer encoding in lowercase; `7bit` when absent (RFC 2045 §6.1). */
export function transferEncodingOf(fields: readonly HeaderField[]): string {
  const raw = firstValue(fields, 'Content-Transfer-Encoding');
  if (raw === undefined) return '7bit';
  return unfold(raw).replace(/\([^)]*\)/g, '').trim().toLowerCase() || '7bit';
}

/** Whether a parsed type is `multipart/*` with a usable boundary parameter. */
export function multipartBoundary(type: ContentType): string | undefined {
  if (!type.mediaType.startsWith('multipart/')) return undefined;
  const boundary = type.params['boundary'];
  return boundary !== undefined && boundary.length > 0 ? boundary : undefined;
}
