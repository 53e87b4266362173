/**
 * Turns zod issues into messages an administrator can act on: `file:line:column: key.path: what is wrong`.
 * The position comes from the YAML node the issue's path leads to; an unknown key points at the key itself,
 * a missing key at the mapping that lacks it.
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter } from 'yaml';
import type { z } from 'zod';
import { describeValue } from './describe.ts';

/** One problem found in a configuration file, with its place. */
export interface ConfigProblem {
  /** 1-based line. */
  readonly line: number;
  /** 1-based column. */
  readonly column: number;
  /** The full message, `file:line:column: path: text`. */
  readonly message: string;
}

/** What {@link describeIssues} needs to place and word issues. */
export interface IssueContext {
  readonly fileName: string;
  readonly document: Document;
  readonly lineCounter: LineCounter;
  /** The schema that produced the issues, to suggest known keys for unknown ones. */
  readonly schema: z.ZodType;
}

type Path = readonly PropertyKey[];

/** Words and places every issue; the result is sorted by position in the file. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], context: IssueContext): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const add = (path: Path, text: string, at: 'key' | 'value'): void => {
    const offset = locate(context.document, path, at);
    const { line, col } = context.lineCounter.linePos(offset);
    const where = path.length === 0 ? '' : `${formatPath(path)}: `;
    problems.push({ line, column: col, message: `${context.fileName}:${line}:${col}: ${where}${text}` });
  };
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(context.schema, issue.path);
      for (const key of issue.keys) add([...issue.path, key], unknownKeyText(key, known), 'key');
    } else {
      add(issue.path, issueText(issue), 'value');
    }
  }
  return problems.sort((a, b) => a.line - b.line || a.column - b.column);
}

/** `policy.domains."partner.test"`, `dns.servers[1]`: names that are not plain identifiers are quoted. */
export function formatPath(path: Path): string {
  return path
    .map((segment, index) => {
      if (typeof segment === 'number') return `[${segment}]`;
      const name = String(segment);
      const plain = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(name) ? name : JSON.stringify(name);
      return index === 0 ? plain : `.${plain}`;
    })
    .join('');
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
};

function issueText(issue: z.core.$ZodIssue): string {
  const got = describeValue(issue.input);
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined ? 'missing required key' : `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${got}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map(String).join('|')}, got ${got}`;
    case 'too_small':
      if (issue.origin === 'array') return `expected at least ${issue.minimum} ${Number(issue.minimum) === 1 ? 'entry' : 'entries'}`;
      if (issue.origin === 'string') return `expected at least ${issue.minimum} character${Number(issue.minimum) === 1 ? '' : 's'}, got ${got}`;
      return `expected a number of at least ${issue.minimum}, got ${got}`;
    case 'too_big':
      if (issue.origin === 'array') return `expected at most ${issue.maximum} entries`;
      if (issue.origin === 'string') return `expected at most ${issue.maximum} characters`;
      return `expected a number of at most ${issue.maximum}, got ${got}`;
    case 'invalid_format':
      return `${issue.message}, got ${got}`;
    default:
      return issue.message;
  }
}

function unknownKeyText(key: string, known: readonly string[]): string {
  const suggestion = closest(key, known);
  return suggestion === undefined ? 'unknown key' : `unknown key (did you mean "${suggestion}"?)`;
}

/** The known key nearest to a misspelt one: same letters in another case, or at most two edits away. */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const distance = candidate.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance; keys are short, so the quadratic table is fine. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** The keys of the object schema found at `path`, looking through defaults, optionals and pipes. */
function knownKeys(schema: z.ZodType, path: Path): string[] {
  let node: z.core.$ZodType | undefined = schema;
  for (const segment of [...path, undefined]) {
    node = node === undefined ? undefined : unwrap(node);
    if (node === undefined || segment === undefined) break;
    const def = definition(node);
    if (def.type === 'object') node = def.shape[String(segment)];
    else if (def.type === 'record') node = def.valueType;
    else if (def.type === 'array') node = def.element;
    else node = undefined;
  }
  const def = node === undefined ? undefined : definition(node);
  return def?.type === 'object' ? Object.keys(def.shape) : [];
}

/** A schema's definition, typed as the union of zod's own schema kinds so `type` narrows it. */
function definition(schema: z.core.$ZodType): z.core.$ZodTypes['_zod']['def'] {
  return (schema as z.core.$ZodTypes)._zod.def;
}

function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  let node = schema;
  for (;;) {
    const def = definition(node);
    if (def.type === 'default' || def.type === 'prefault' || def.type === 'optional') node = def.innerType;
    else if (def.type === 'pipe') node = def.in;
    else return node;
  }
}

/**
 * The offset of the node a path leads to. When the path goes further than the document (a missing key), the
 * deepest node that exists is used. `at: 'key'` gives the key of the last mapping entry instead of its value.
 */
function locate(document: Document, path: Path, at: 'key' | 'value'): number {
  let node: unknown = document.contents;
  let offset = rangeStart(node) ?? 0;
  for (const [index, segment] of path.entries()) {
    if (isAlias(node)) node = node.resolve(document);
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment));
      if (pair === undefined) break;
      const keyOffset = rangeStart(pair.key) ?? offset;
      const last = index === path.length - 1;
      node = pair.value;
      offset = last && at === 'key' ? keyOffset : (rangeStart(node) ?? keyOffset);
    } else if (isSeq(node) && typeof segment === 'number') {
      const item: unknown = node.items[segment];
      if (item === undefined) break;
      node = item;
      offset = rangeStart(item) ?? offset;
    } else {
      break;
    }
  }
  return offset;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: readonly number[] | null } | null | undefined)?.range;
  return range?.[0];
}
