/**
 * Maps the engine's header edits onto milter modifications one to one. The engine folds long values with
 * CRLF + blank, as they appear in a message; the milter protocol carries line breaks inside a header value
 * as a bare LF (libmilter filters fold with "\n\t"), and the MTA writes its own line end for each. Sendmail
 * copies a CR through, which would put a stray CR before every folded line (`;\r\r\n boundary=...`), so
 * the CRs are taken out here.
 */
import { addHeader, changeHeader, insertHeader, type Modification } from '../../milter/src/index.ts';
import type { HeaderEdit } from '../engine/index.ts';

/** A header value with its CRLF line breaks written as the milter protocol expects them (bare LF). */
function milterValue(value: string): string {
  return value.replaceAll('\r\n', '\n');
}

/** The milter modification for each engine edit, in the same order. */
export function editsToModifications(edits: readonly HeaderEdit[]): Modification[] {
  return edits.map((edit) => {
    switch (edit.op) {
      case 'change':
        return changeHeader(edit.name, edit.index, milterValue(edit.value));
      case 'add':
        return addHeader(edit.name, milterValue(edit.value));
      case 'insert':
        return insertHeader(edit.index, edit.name, milterValue(edit.value));
    }
  });
}
