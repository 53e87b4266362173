/**
 * Header edits as the milter protocol applies them: change (or delete, with an empty value) the
 * n-th field of a name, add a field at the end, insert one at a position. Edits are emitted so that
 * it does not matter whether the MTA counts `index` among the original fields or the current ones:
 * for any one name, changes come first and deletions follow in descending index order.
 */
import { sameHeaderName, type HeaderField } from '../mime/header-fields.ts';

/** One header modification, applied in list order. Values are raw (leading space, CRLF folding). */
export type HeaderEdit =
  /** Replace the `index`-th (1-based) field named `name`; an empty `value` deletes it (SMFIR_CHGHEADER). */
  | { readonly op: 'change'; readonly name: string; readonly index: number; readonly value: string }
  /** Append a field (SMFIR_ADDHEADER). */
  | { readonly op: 'add'; readonly name: string; readonly value: string }
  /** Insert a field at 0-based position `index` of the whole list (SMFIR_INSHEADER). */
  | { readonly op: 'insert'; readonly index: number; readonly name: string; readonly value: string };

/**
 * Applies edits to a header list, with the semantics the MTA gives them: `change` of a missing
 * field adds it (or does nothing when deleting), `insert` beyond the end appends.
 */
export function applyHeaderEdits(fields: readonly HeaderField[], edits: readonly HeaderEdit[]): HeaderField[] {
  const out = [...fields];
  for (const edit of edits) {
    if (edit.op === 'add') {
      out.push({ name: edit.name, value: edit.value });
    } else if (edit.op === 'insert') {
      out.splice(Math.min(edit.index, out.length), 0, { name: edit.name, value: edit.value });
    } else {
      let seen = 0;
      const at = out.findIndex((f) => sameHeaderName(f.name, edit.name) && ++seen === edit.index);
      if (at === -1) {
        if (edit.value !== '') out.push({ name: edit.name, value: edit.value });
      } else if (edit.value === '') {
        out.splice(at, 1);
      } else {
        out[at] = { name: (out[at] as HeaderField).name, value: edit.value };
      }
    }
  }
  return out;
}

/**
 * Edits that make the fields named `name` carry exactly `values`, in order: changes where the
 * value differs, deletions of surplus fields (highest index first), additions of missing ones.
 */
export function syncFieldEdits(current: readonly HeaderField[], name: string, values: readonly string[]): HeaderEdit[] {
  const existing = current.filter((f) => sameHeaderName(f.name, name));
  const edits: HeaderEdit[] = [];
  const common = Math.min(existing.length, values.length);
  for (let i = 0; i < common; i++) {
    const value = values[i] as string;
    if ((existing[i] as HeaderField).value !== value) edits.push({ op: 'change', name, index: i + 1, value });
  }
  for (let i = existing.length; i > values.length; i--) edits.push({ op: 'change', name, index: i, value: '' });
  for (let i = existing.length; i < values.length; i++) edits.push({ op: 'add', name, value: values[i] as string });
  return edits;
}

/** The distinct field names among `fields` matching `predicate`, first spelling kept. */
export function distinctNames(fields: readonly HeaderField[], predicate: (name: string) => boolean): string[] {
  const names: string[] = [];
  for (const f of fields) {
    if (predicate(f.name) && !names.some((n) => sameHeaderName(n, f.name))) names.push(f.name.trim());
  }
  return names;
}
