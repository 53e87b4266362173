/**
 * The header edits that turn an opened message's outer header back into the original: the inner
 * entity's Content-* fields replace the outer ones (the RFC 9788 `hp` parameter removed), and each
 * protected field present inside overrides the outer copy (RFC 9788 §4: the protected header is
 * authoritative). Only protected names are taken from inside, so a sender cannot smuggle trace or
 * authentication fields into the delivered header.
 */
import { isContentField, sameHeaderName, type HeaderField } from '../mime/header-fields.ts';
import { stripHeaderProtection } from '../mime/inner-entity.ts';
import { distinctNames, syncFieldEdits, type HeaderEdit } from './header-edits.ts';

/** Edits making `outer` carry the inner entity's content fields and protected fields. */
export function restoreEdits(outer: readonly HeaderField[], inner: readonly HeaderField[], protectedNames: readonly string[]): HeaderEdit[] {
  const edits: HeaderEdit[] = [];
  const valuesOf = (name: string): string[] =>
    inner
      .filter((f) => sameHeaderName(f.name, name))
      .map((f) => (sameHeaderName(name, 'Content-Type') ? stripHeaderProtection(f.value).value : f.value));
  for (const name of distinctNames([...inner, ...outer], isContentField)) edits.push(...syncFieldEdits(outer, name, valuesOf(name)));
  const protectedInside = distinctNames(inner, (n) => protectedNames.some((p) => sameHeaderName(p, n)));
  for (const name of protectedInside) edits.push(...syncFieldEdits(outer, name, valuesOf(name)));
  return edits;
}
