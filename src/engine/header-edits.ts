/**
 * Header edits as the milter protocol applies them: change (or delete, with an empty value) the
 * n-th field of a name, add a field at the end, insert one at a position. Edits are emitted so that
 * it does not matter whether the MTA counts `index` among the original fields or the current ones:
 * for any one name, changes come first and deletions follow in descending index order.
 *
 * A header may hold as many fields as its size limit allows, so nothing here looks through the whole
 * list once per name or per edit: fields are grouped by name once ({@link groupFields}) and every
 * computation works on the groups.
 */
import type { HeaderField } from '../mime/header-fields.ts';

/** One header modification, applied in list order. Values are raw (leading space, CRLF folding). */
export type HeaderEdit =
  /** Replace the `index`-th (1-based) field named `name`; an empty `value` deletes it (SMFIR_CHGHEADER). */
  | { readonly op: 'change'; readonly name: string; readonly index: number; readonly value: string }
  /** Append a field (SMFIR_ADDHEADER). */
  | { readonly op: 'add'; readonly name: string; readonly value: string }
  /** Insert a field at 0-based position `index` of the whole list (SMFIR_INSHEADER). */
  | { readonly op: 'insert'; readonly index: number; readonly name: string; readonly value: string };

/** The key fields are grouped under: the name without surrounding blanks, lower-cased (RFC 5322 §1.2.2). */
export function nameKey(name: string): string {
  return name.trim().toLowerCase();
}

/** Fields of one name, in header order, with the first spelling of the name (trimmed). */
export interface FieldGroup {
  readonly name: string;
  readonly fields: HeaderField[];
}

/** The fields grouped by {@link nameKey}, groups in the order their names first appear. One pass. */
export function groupFields(fields: readonly HeaderField[]): Map<string, FieldGroup> {
  const groups = new Map<string, FieldGroup>();
  for (const f of fields) {
    const key = nameKey(f.name);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, { name: f.name.trim(), fields: [f] });
    else group.fields.push(f);
  }
  return groups;
}

/** A field in {@link applyHeaderEdits}'s working list; `live` false once deleted. */
interface Slot {
  name: string;
  value: string;
  live: boolean;
}

/**
 * Applies edits to a header list, with the semantics the MTA gives them: `change` of a missing
 * field adds it (or does nothing when deleting), `insert` beyond the end appends.
 *
 * Linear in fields plus edits for the edits this module emits (per name, changes and then deletions from
 * the highest index down): each name keeps the list of its live fields, and a deleted field is only marked.
 * A deletion below the last field of its name, and an `insert`, cost a pass over that name's fields or the
 * list respectively.
 */
export function applyHeaderEdits(fields: readonly HeaderField[], edits: readonly HeaderEdit[]): HeaderField[] {
  let slots: Slot[] = fields.map((f) => ({ name: f.name, value: f.value, live: true }));
  const byName = new Map<string, Slot[]>();
  const named = (name: string): Slot[] => {
    const key = nameKey(name);
    let list = byName.get(key);
    if (list === undefined) byName.set(key, (list = []));
    return list;
  };
  for (const slot of slots) named(slot.name).push(slot);
  const append = (name: string, value: string): void => {
    const slot = { name, value, live: true };
    slots.push(slot);
    named(name).push(slot);
  };
  for (const edit of edits) {
    if (edit.op === 'add') {
      append(edit.name, edit.value);
    } else if (edit.op === 'insert') {
      // The position counts live fields: drop the deleted ones first, then the index is a plain array index.
      slots = slots.filter((s) => s.live);
      const slot = { name: edit.name, value: edit.value, live: true };
      slots.splice(Math.min(Math.max(edit.index, 0), slots.length), 0, slot);
      // Its rank among fields of its name depends on where it went: rebuild that one name's list.
      byName.set(nameKey(edit.name), slots.filter((s) => nameKey(s.name) === nameKey(edit.name)));
    } else {
      const list = named(edit.name);
      const at = edit.index - 1;
      const target = at >= 0 ? list[at] : undefined;
      if (target === undefined) {
        if (edit.value !== '') append(edit.name, edit.value);
      } else if (edit.value === '') {
        target.live = false;
        if (at === list.length - 1) list.pop();
        else list.splice(at, 1);
      } else {
        target.value = edit.value;
      }
    }
  }
  const out: HeaderField[] = [];
  for (const slot of slots) if (slot.live) out.push({ name: slot.name, value: slot.value });
  return out;
}

/**
 * Edits that make the fields named `name` carry exactly `values`, in order, where `existing` are the fields
 * of that name now (one group of {@link groupFields}): changes where the value differs, deletions of surplus
 * fields (highest index first), additions of missing ones.
 */
export function syncGroupEdits(existing: readonly HeaderField[], name: string, values: readonly string[]): HeaderEdit[] {
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

/**
 * {@link syncGroupEdits} for one name of a whole header: a pass over `current`, so for one name or a few only;
 * for many names group the header once instead.
 */
export function syncFieldEdits(current: readonly HeaderField[], name: string, values: readonly string[]): HeaderEdit[] {
  const key = nameKey(name);
  return syncGroupEdits(current.filter((f) => nameKey(f.name) === key), name, values);
}

/** The distinct field names among `fields` matching `predicate`, first spelling kept (trimmed). One pass. */
export function distinctNames(fields: readonly HeaderField[], predicate: (name: string) => boolean): string[] {
  const names = new Map<string, string>();
  for (const f of fields) {
    const key = nameKey(f.name);
    if (!names.has(key) && predicate(f.name)) names.set(key, f.name.trim());
  }
  return [...names.values()];
}
