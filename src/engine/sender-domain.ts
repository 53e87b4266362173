/**
 * The sending domain whose DNS key must have signed an incoming message: the domain of the
 * RFC 5322 From address (the first one, should there be several).
 */
import { unfold } from '../mime/header-fields.ts';

/** The lowercase domain of the first address in a raw From value, or `null` when there is none. */
export function senderDomainOf(fromValue: string | undefined): string | null {
  if (fromValue === undefined) return null;
  const text = stripComments(unfold(fromValue));
  const angle = /<([^<>]*)>/.exec(text);
  const address = angle !== null ? (angle[1] as string) : (text.split(',')[0] ?? '');
  const at = address.lastIndexOf('@');
  if (at === -1) return null;
  const domain = address
    .slice(at + 1)
    .trim()
    .replace(/\.$/, '')
    .toLowerCase();
  return /^[^\s@<>()",;:]+$/.test(domain) ? domain : null;
}

/** Removes RFC 5322 comments (nested parentheses) outside quoted strings. */
function stripComments(text: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (ch === '\\' && (quoted || depth > 0)) {
      if (depth === 0) out += ch + (text[i + 1] ?? '');
      i++;
    } else if (depth === 0 && ch === '"') {
      quoted = !quoted;
      out += ch;
    } else if (!quoted && ch === '(') {
      depth++;
    } else if (!quoted && ch === ')' && depth > 0) {
      depth--;
    } else if (depth === 0) {
      out += ch;
    }
  }
  return out;
}
