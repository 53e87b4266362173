/**
 * The files the daemon needs once it runs as its own account, and the check that the account can really use them.
 *
 * Started as root, the daemon reads its keys and binds its sockets as root, then switches to `user`; from then on a
 * SIGHUP reload re-reads the configuration, the keys and the marker secret, and mail writes spool files, ledger
 * entries and pins, all as that account. A file only root can read works at start and fails at the first reload, a
 * spool directory only root can write defers large messages for ever. So the check runs as the account itself (a
 * child process started with its uid and gid), not by reading mode bits, and each problem comes with the command
 * that fixes it.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config } from '../config/index.ts';
import { lookupGroup, lookupUser, PrivilegeError, SYSTEM_ACCOUNT_FILES, type AccountFiles, type AccountSettings } from './privileges.ts';

/** The account the daemon switches to, resolved to ids. */
export interface RunAccount {
  readonly user: string;
  /** The group name, when the configuration names one; else the user's primary group. */
  readonly group: string | undefined;
  readonly uid: number;
  readonly gid: number;
}

/**
 * Resolves the configured account, or undefined when no `user` is set.
 * @throws PrivilegeError `PRIV_UNKNOWN_USER`, `PRIV_UNKNOWN_GROUP`
 */
export async function resolveRunAccount(settings: AccountSettings, files: AccountFiles = SYSTEM_ACCOUNT_FILES): Promise<RunAccount | undefined> {
  if (settings.user === undefined) return undefined;
  const ids = await lookupUser(settings.user, files.passwd);
  if (ids === undefined) throw new PrivilegeError('PRIV_UNKNOWN_USER', `user "${settings.user}" is not in ${files.passwd}`);
  let gid = ids.gid;
  if (settings.group !== undefined) {
    const found = await lookupGroup(settings.group, files.group);
    if (found === undefined) throw new PrivilegeError('PRIV_UNKNOWN_GROUP', `group "${settings.group}" is not in ${files.group}`);
    gid = found;
  }
  return { user: settings.user, group: settings.group, uid: ids.uid, gid };
}

/** `user:group` (or `user:` for the primary group) as chown takes it. */
export function chownSpec(account: RunAccount): string {
  return `${account.user}:${account.group ?? ''}`;
}

/** One file the daemon uses after the switch, and how. */
export interface NeededPath {
  readonly path: string;
  /** `read`: a file it reads (keys, secret, configuration); `write`: a directory it creates files in. */
  readonly access: 'read' | 'write';
  /** What it is, for messages (`site.keyFile`). */
  readonly what: string;
}

/**
 * Everything the daemon reads or writes after the switch to its account. Paths that do not exist yet are listed
 * too: the check skips them, since the daemon creates them at start and hands them to the account.
 */
export function pathsNeededAfterDrop(config: Config, configPath: string | undefined): NeededPath[] {
  const needs: NeededPath[] = [];
  if (configPath !== undefined) needs.push({ path: configPath, access: 'read', what: 'the configuration file (re-read on SIGHUP)' });
  needs.push({ path: config.site.keyFile as string, access: 'read', what: 'site.keyFile' });
  for (const path of config.site.previousKeyFiles) needs.push({ path, access: 'read', what: 'site.previousKeyFiles' });
  needs.push({ path: config.mixedRecipients.reinject.markerSecretFile as string, access: 'read', what: 'mixedRecipients.reinject.markerSecretFile' });
  needs.push({ path: config.milter.spoolDirectory as string, access: 'write', what: 'milter.spoolDirectory' });
  needs.push({ path: config.mixedRecipients.reinject.ledgerDirectory as string, access: 'write', what: 'mixedRecipients.reinject.ledgerDirectory' });
  if (config.pins.enabled) needs.push({ path: config.pins.directory as string, access: 'write', what: 'pins.directory' });
  return needs;
}

/** What the account could not do with one path, and the command that fixes it. */
export interface AccessProblem {
  readonly path: string;
  readonly what: string;
  /** The errno code seen by the account (`EACCES`). */
  readonly code: string;
  /** A shell command (or instruction) that fixes it. */
  readonly fix: string;
}

/**
 * Runs in a child process under the account's ids: for each path, opens a file for reading or checks that a
 * directory is writable and searchable (access(2) judges by the real ids, which are the account's there). Missing
 * paths are reported as such; the parent decides what that means. Plain JavaScript: the child runs without tsx.
 */
const CHILD_SCRIPT = `
const fs = require('node:fs');
const path = require('node:path');
const needs = JSON.parse(process.argv[1]);
const results = needs.map((need) => {
  try {
    if (need.access === 'read') fs.closeSync(fs.openSync(need.path, 'r'));
    else fs.accessSync(need.path, fs.constants.W_OK | fs.constants.X_OK);
    return { ok: true };
  } catch (error) {
    let parentSearchable = true;
    try { fs.accessSync(path.dirname(need.path), fs.constants.X_OK); } catch { parentSearchable = false; }
    return { ok: false, code: error.code || String(error), parentSearchable };
  }
});
process.stdout.write(JSON.stringify(results));
`;

interface ChildResult {
  readonly ok: boolean;
  readonly code?: string;
  readonly parentSearchable?: boolean;
}

/**
 * Checks, as `account`, every path in `needs` that exists (as root, which sees them all). Call as root: only root
 * can start a process under another account.
 * @returns the problems, each with its fix; empty when the account can do everything it will need to
 */
export async function checkAccessAs(account: RunAccount, needs: readonly NeededPath[]): Promise<AccessProblem[]> {
  const existing = needs.filter((need) => pathExists(need.path));
  if (existing.length === 0) return [];
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      ['-e', CHILD_SCRIPT, JSON.stringify(existing.map(({ path, access }) => ({ path, access })))],
      { uid: account.uid, gid: account.gid, cwd: '/', env: {}, timeout: 30_000 },
      (error, out, err) => (error ? reject(new Error(`cannot check file access as ${account.user}: ${error.message}${err ? `: ${err.trim()}` : ''}`)) : resolve(out)),
    );
  });
  const results = JSON.parse(stdout) as ChildResult[];
  const problems: AccessProblem[] = [];
  existing.forEach((need, index) => {
    const result = results[index];
    if (result === undefined || result.ok) return;
    problems.push({ path: need.path, what: need.what, code: result.code ?? 'EACCES', fix: fixFor(need, account, result.parentSearchable !== false) });
  });
  return problems;
}

function fixFor(need: NeededPath, account: RunAccount, parentSearchable: boolean): string {
  if (!parentSearchable) return `let ${account.user} enter ${dirname(need.path)} (chmod o+x ${dirname(need.path)}, or chown ${chownSpec(account)} ${dirname(need.path)})`;
  // Secret files stay 0600: the account must own them rather than share them through a group.
  if (need.access === 'read') return `chown ${chownSpec(account)} ${need.path}`;
  return `chown ${chownSpec(account)} ${need.path} && chmod 0700 ${need.path}`;
}

/** The problems as lines for a log or a terminal: `what PATH: CODE for USER; fix: COMMAND`. */
export function describeAccessProblems(account: RunAccount, problems: readonly AccessProblem[]): string[] {
  return problems.map((p) => `${p.what} ${p.path}: ${p.code} for user ${account.user}; fix: ${p.fix}`);
}

function pathExists(path: string): boolean {
  // Synchronous on purpose: a handful of stat calls at start or in check-config.
  return existsSync(path);
}
