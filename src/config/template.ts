/**
 * The configuration template: `examples/muse.yaml` as shipped, and edits made to it through the YAML document (so
 * its comments stay where they are). `muse-milter init` writes a site's configuration this way, and the test
 * suites derive theirs from it, so the file administrators copy is the one that runs.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';

/** Where the daemon's configuration file is looked for when a tool is given no `--config`. */
export const DEFAULT_CONFIG_FILE = '/etc/muse-milter/muse.yaml';

/**
 * The path of `examples/muse.yaml` in this installation: the first ancestor of this module holding it (the module
 * runs from `src/config/` in a checkout and from `dist/src/config/` once built; `examples/` ships with both).
 * @throws Error when no ancestor holds it
 */
export function configTemplatePath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'examples', 'muse.yaml');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('examples/muse.yaml is not installed next to muse-milter');
    dir = parent;
  }
}

/** The template's text. */
export async function readConfigTemplate(): Promise<string> {
  return readFile(configTemplatePath(), 'utf8');
}

/** One change to a configuration text: set the key at `path` to `value`, or remove it when `value` is undefined. */
export interface ConfigEdit {
  readonly path: readonly string[];
  readonly value?: unknown;
}

/**
 * Applies `edits` to a configuration text, keeping its comments and layout. The result is not validated: load it
 * with `parseConfig` to check it.
 * @throws Error when the text is not valid YAML
 */
export function editConfigText(text: string, edits: readonly ConfigEdit[]): string {
  const document = parseDocument(text);
  if (document.errors.length > 0) throw new Error(`not valid YAML: ${document.errors[0]?.message ?? ''}`);
  for (const edit of edits) {
    if (edit.value === undefined) document.deleteIn([...edit.path]);
    else document.setIn([...edit.path], document.createNode(edit.value));
  }
  // No folding: a long path or comment stays on its line.
  return document.toString({ lineWidth: 0 });
}
