/**
 * Notices about a configuration that loads but is written in an outdated form: the file keeps working, and
 * `check-config` says how to write it today. Each notice names its place as `file:line:column: key: ...`, like the
 * problems the schema reports.
 */
import { isScalar, LineCounter, parseDocument } from 'yaml';

/** What an old boolean `policy.signCleartext` means now, and what to write instead. */
const SIGN_CLEARTEXT_MIGRATION: Readonly<Record<'true' | 'false', string>> = {
  true:
    'the boolean form is outdated; true is read as "always" (every clear-text message is signed, also to sites ' +
    'without a MUSE record). Write "always" to keep that, or "muse-sites" (the default: sign only for domains that ' +
    'publish a _muse record, and leave mail to every other site exactly as it arrived)',
  false: 'the boolean form is outdated; false is read as "never" (no clear-text message is signed). Write "never"',
};

/**
 * The notices for a configuration text that {@link parseConfig} accepts. Text that does not parse yields none (the
 * errors say what is wrong).
 * @param text the YAML text
 * @param fileName the name used in the notices
 */
export function configNotices(text: string, fileName: string): string[] {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (document.errors.length > 0) return [];
  const notices: string[] = [];
  const node = document.getIn(['policy', 'signCleartext'], true);
  if (isScalar(node) && typeof node.value === 'boolean') {
    const { line, col } = lineCounter.linePos(node.range?.[0] ?? 0);
    notices.push(`${fileName}:${line}:${col}: policy.signCleartext: ${SIGN_CLEARTEXT_MIGRATION[node.value ? 'true' : 'false']}`);
  }
  return notices;
}
