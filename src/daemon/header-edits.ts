/** Maps the engine's header edits onto milter modifications one to one. */
import { addHeader, changeHeader, insertHeader, type Modification } from '../../milter/src/index.ts';
import type { HeaderEdit } from '../engine/index.ts';

/** The milter modification for each engine edit, in the same order. */
export function editsToModifications(edits: readonly HeaderEdit[]): Modification[] {
  return edits.map((edit) => {
    switch (edit.op) {
      case 'change':
        return changeHeader(edit.name, edit.index, edit.value);
      case 'add':
        return addHeader(edit.name, edit.value);
      case 'insert':
        return insertHeader(edit.index, edit.name, edit.value);
    }
  });
}
