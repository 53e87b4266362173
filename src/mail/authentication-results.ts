/**
 * Reading an Authentication-Results field value (RFC 8601 §2.2) far enough to know who claims to have written it
 * (the authserv-id) and which methods it reports. Every incoming field is attacker-controlled: a sender can write
 * `Authentication-Results: "site.test" (looks like ours); x-muse=pass`, and only a reader that follows the grammar
 * (comments nest and may hold `;`, quoted strings may hold anything, CFWS may appear between any two tokens) sees
 * that it claims our authserv-id and our method.
 *
 * No maintained npm package parses this grammar (the one mail-authentication library that reads these fields
 * documents that it mishandles nested comments), so this is a small tokenizer following the ABNF: RFC 5322 CFWS,
 * RFC 2045 token / quoted-string for values, and the `;`-separated resinfo list.
 */

/** What a field value says about its origin and contents. */
export interface AuthenticationResultsClaim {
  /** The authserv-id, unquoted and lower-cased (RFC 8601 §2.5: compared case-insensitively). */
  readonly authservId: string;
  /** Method names of the results, lower-cased, without their method-version. */
  readonly methods: readonly string[];
  /** Whether the whole value followed the grammar; false when parsing stopped early (what was read is kept). */
  readonly complete: boolean;
}

/** A lexical unit: a value (atom or unquoted quoted-string) or one of the specials that structure the field. */
type Token = { readonly kind: 'word'; readonly text: string; readonly quoted: boolean } | { readonly kind: 'special'; readonly text: ';' | '=' | '/' | '.' | '@' };

/** Values longer than this are not read: an honest field is a few hundred characters. */
export const MAX_FIELD_LENGTH = 64 * 1024;

const SPECIALS = new Set([';', '=', '/', '.', '@']);

/**
 * Splits a value into tokens, dropping CFWS. Returns the tokens read and whether the end was reached cleanly (an
 * unterminated comment or quoted string stops it). Linear in the input: each character is looked at once.
 */
function tokenize(value: string): { tokens: Token[]; clean: boolean } {
  const tokens: Token[] = [];
  let i = 0;
  while (i < value.length) {
    const ch = value[i] as string;
    if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n') {
      i++;
    } else if (ch === '(') {
      // A comment, possibly nested, with quoted-pairs (RFC 5322 §3.2.2).
      let depth = 0;
      for (; i < value.length; i++) {
        const c = value[i];
        if (c === '\\') i++;
        else if (c === '(') depth++;
        else if (c === ')' && --depth === 0) break;
      }
      if (i >= value.length) return { tokens, clean: false };
      i++;
    } else if (ch === '"') {
      let text = '';
      for (i++; i < value.length && value[i] !== '"'; i++) {
        if (value[i] === '\\') i++;
        if (i < value.length) text += value[i];
      }
      if (i >= value.length) return { tokens, clean: false };
      i++;
      tokens.push({ kind: 'word', text, quoted: true });
    } else if (SPECIALS.has(ch)) {
      tokens.push({ kind: 'special', text: ch as ';' | '=' | '/' | '.' | '@' });
      i++;
    } else if (ch === ')') {
      return { tokens, clean: false };
    } else {
      let text = '';
      while (i < value.length) {
        const c = value[i] as string;
        if (c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === '(' || c === ')' || c === '"' || SPECIALS.has(c)) break;
        text += c;
        i++;
      }
      tokens.push({ kind: 'word', text, quoted: false });
    }
  }
  return { tokens, clean: true };
}

/**
 * Reads the authserv-id and the method names of an Authentication-Results value (everything after the colon).
 * @returns null when not even the authserv-id can be read
 */
export function readAuthenticationResults(value: string): AuthenticationResultsClaim | null {
  if (value.length > MAX_FIELD_LENGTH) return null;
  const { tokens, clean } = tokenize(value);
  // authserv-id = value (token / quoted-string); a token may contain dots (host names), which the tokenizer
  // splits, so the id is every word and dot up to the first `;` or the version number.
  let at = 0;
  let authservId = '';
  const first = tokens[0];
  if (first === undefined || first.kind !== 'word') return null;
  if (first.quoted) {
    authservId = first.text;
    at = 1;
  } else {
    while (at < tokens.length) {
      const t = tokens[at] as Token;
      if (t.kind === 'special' && t.text === ';') break;
      if (t.kind === 'word' && t.quoted) break;
      if (at > 0 && t.kind === 'word' && tokens[at - 1]?.kind === 'word') break; // CFWS separated: the version follows
      authservId += t.text;
      at++;
    }
  }
  if (authservId === '') return null;
  // Optional authres-version.
  const version = tokens[at];
  if (version?.kind === 'word' && !version.quoted && /^\d+$/.test(version.text)) at++;
  const methods: string[] = [];
  let complete = clean;
  while (at < tokens.length) {
    const semicolon = tokens[at] as Token;
    if (semicolon.kind !== 'special' || semicolon.text !== ';') {
      complete = false;
      break;
    }
    at++;
    const method = tokens[at];
    if (method?.kind !== 'word' || method.quoted) {
      complete = false;
      break;
    }
    methods.push(method.text.toLowerCase());
    // Skip the rest of this resinfo (version, result, reason, properties) up to the next `;`.
    for (at++; at < tokens.length; at++) {
      const t = tokens[at] as Token;
      if (t.kind === 'special' && t.text === ';') break;
    }
  }
  // `none` alone after the `;` is no-result: no method was reported.
  const reported = methods.length === 1 && methods[0] === 'none' ? [] : methods;
  return { authservId: authservId.toLowerCase(), methods: reported, complete };
}
