/**
 * Summaries of V8 CPU profiles (`node --cpu-prof`): self time per function, and time per module group
 * (openpgp.js, the milter library, the daemon, Node internals), over one or several profiles (one per
 * process of a multi-process milter).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** One row of the summary. */
export interface ProfileRow {
  /** `function (file:line)`, file relative to the project or the package. */
  readonly name: string;
  /** Share of all samples, percent. */
  readonly selfPercent: number;
  readonly selfMs: number;
}

/** What the profiles of one run show. */
export interface ProfileSummary {
  readonly processes: number;
  readonly totalMs: number;
  /** Functions by self time, largest first. */
  readonly top: readonly ProfileRow[];
  /** Self time by group, largest first. */
  readonly groups: readonly ProfileRow[];
}

interface CpuProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly CpuProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Where a function lives, in words a reader of the report knows. */
function groupOf(url: string, functionName: string): string {
  if (url === '') return functionName === '(garbage collector)' ? 'garbage collection' : functionName === '(idle)' ? 'idle' : 'V8 / native';
  if (url.includes('/node_modules/openpgp/')) return 'openpgp.js';
  if (url.includes('/node_modules/')) return `npm: ${/\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? 'other'}`;
  if (url.startsWith('node:')) return 'Node.js internals';
  const project = /\/dist\/(milter|src\/[^/]+|examples)\//.exec(url);
  return project ? `project: ${project[1]}` : 'other';
}

function shortUrl(url: string): string {
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + '/dist/'.length);
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) return url.slice(modules + '/node_modules/'.length);
  return url;
}

/** Summarises every `.cpuprofile` in `dir`; `idle` time is left out of the shares. */
export function summariseProfiles(dir: string, topCount = 15): ProfileSummary {
  const self = new Map<string, number>();
  const groups = new Map<string, number>();
  const files = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile'));
  for (const file of files) {
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    const byId = new Map(profile.nodes.map((node) => [node.id, node]));
    profile.samples.forEach((id, index) => {
      const node = byId.get(id);
      const micros = profile.timeDeltas[index] ?? 0;
      if (node === undefined || node.callFrame.functionName === '(idle)' || node.callFrame.functionName === '(program)') return;
      const { functionName, url, lineNumber } = node.callFrame;
      const name = url === '' ? functionName : `${functionName || '(anonymous)'} (${shortUrl(url)}:${lineNumber + 1})`;
      self.set(name, (self.get(name) ?? 0) + micros);
      const group = groupOf(url, functionName);
      groups.set(group, (groups.get(group) ?? 0) + micros);
    });
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const rows = (map: Map<string, number>, limit: number): ProfileRow[] =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([name, micros]) => ({ name, selfPercent: Math.round((micros / total) * 1000) / 10, selfMs: Math.round(micros / 1000) }));
  return { processes: files.length, totalMs: Math.round(total / 1000), top: rows(self, topCount), groups: rows(groups, 12) };
}
