/** Key pinning: evaluating lookups against what sites announced, and the on-disk store. Public API of `src/pins/`. */
export { evaluatePin, type Pin, type PinEvaluation, type PinInput, type PinState, type PinUpdate } from './evaluate.ts';
export type { PinKeeper } from './keeper.ts';
export { domainSchema, fingerprintSchema, isoDateSchema, keyBytesSchema, pinSchema } from './pin-schema.ts';
export {
  MAX_PINS,
  PIN_FILE_VERSION,
  PIN_FILE_NAME,
  PinStore,
  PinStoreError,
  openPinDirectory,
  writePinFileAtomically,
  type PinFileWriter,
  type PinStoreErrorCode,
  type PinStoreOptions,
} from './store.ts';
export { certifiedByPin, withCertifications, type FoundKey } from './certification.ts';
export { PIN_OWNER_FILE_NAME, claimPinDirectory, pinDirectoryOwner } from './owner.ts';
