/**
 * The fields only this site may write (docs/security.md §4): `x-muse` results under our authserv-id,
 * `Muse-Unverified-*`, and on inbound mail `Muse-Protection`. Whatever a message carries of them was forged (or
 * left from an earlier pass) and is removed from every message let through: inbound (even one delivered as
 * received), and outbound (mail a user of this site sends to a colleague is outbound, yet delivered here; and no
 * other site should receive a verdict we never gave). Outbound, `Muse-Protection` is the outbound engine's to write.
 */
import { forgedFieldDeletions, type HeaderField } from '../engine/index.ts';
import type { Modification } from '../../milter/src/index.ts';
import type { Direction } from './direction.ts';
import { editsToModifications } from './header-edits.ts';
import type { Runtime } from './runtime.ts';

/** The modifications removing our own fields from a message going `direction`. */
export function ownFieldsRemoval(runtime: Runtime, headers: readonly HeaderField[], direction: Direction): Modification[] {
  return editsToModifications(forgedFieldDeletions(headers, runtime.config.inbound.authservId, { protection: direction === 'inbound' }));
}
