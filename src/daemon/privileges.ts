/**
 * Dropping root after the sockets are bound. The daemon may start as root to bind a privileged port or a
 * socket in a root-owned directory; it must not handle mail as root. Names are resolved from the local
 * account files (Node has no getpwnam, and the daemon takes no native dependency for it), so accounts
 * must exist in /etc/passwd and /etc/group, as system accounts do.
 */
import { readFile } from 'node:fs/promises';
import type { MilterLogger } from '../../milter/src/index.ts';

/** Stable codes of {@link PrivilegeError}. */
export type PrivilegeErrorCode =
  /** The configured user is not in the passwd file. */
  | 'PRIV_UNKNOWN_USER'
  /** The configured group is not in the group file. */
  | 'PRIV_UNKNOWN_GROUP'
  /** setgroups/setgid/setuid failed, or the process could still become root afterwards. */
  | 'PRIV_DROP_FAILED';

/** The daemon cannot run as the configured account; it must stop rather than go on as root. */
export class PrivilegeError extends Error {
  override readonly name = 'PrivilegeError';

  /**
   * @param code stable failure code
   * @param message human-readable explanation, naming the account
   */
  constructor(
    readonly code: PrivilegeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The account to run as (the `user` and `group` keys of the configuration). */
export interface AccountSettings {
  readonly user?: string | undefined;
  /** Default: the user's primary group. */
  readonly group?: string | undefined;
}

/** Where accounts are looked up; tests point these at their own files. */
export interface AccountFiles {
  readonly passwd: string;
  readonly group: string;
}

/** The system's account files. */
export const SYSTEM_ACCOUNT_FILES: AccountFiles = { passwd: '/etc/passwd', group: '/etc/group' };

/** What {@link dropPrivileges} did. */
export type PrivilegeOutcome =
  | { readonly dropped: true; readonly user: string; readonly uid: number; readonly gid: number }
  | { readonly dropped: false; readonly reason: 'not-root' | 'no-user-configured' };

/**
 * Switches the process to the configured account when it runs as root: supplementary groups, then group, then
 * user (in that order: after setuid the others are no longer allowed). Not root: changes nothing and logs it.
 * Root without a configured user: stays root and warns.
 * @throws PrivilegeError when a configured account cannot be resolved or the switch does not hold; the caller
 *   must exit, never keep running as root
 */
export async function dropPrivileges(settings: AccountSettings, log: MilterLogger, files: AccountFiles = SYSTEM_ACCOUNT_FILES): Promise<PrivilegeOutcome> {
  if (process.geteuid?.() !== 0) {
    if (settings.user !== undefined) log.info('not running as root: user and group settings are not applied', { uid: process.geteuid?.() });
    return { dropped: false, reason: 'not-root' };
  }
  if (settings.user === undefined) {
    log.warn('running as root: set user in the configuration to run as an unprivileged account');
    return { dropped: false, reason: 'no-user-configured' };
  }
  const account = await lookupUser(settings.user, files.passwd);
  if (account === undefined) throw new PrivilegeError('PRIV_UNKNOWN_USER', `user "${settings.user}" is not in ${files.passwd}; refusing to run as root`);
  let gid = account.gid;
  if (settings.group !== undefined) {
    const groupId = await lookupGroup(settings.group, files.group);
    if (groupId === undefined) throw new PrivilegeError('PRIV_UNKNOWN_GROUP', `group "${settings.group}" is not in ${files.group}; refusing to run as root`);
    gid = groupId;
  }
  try {
    process.setgroups?.([gid]);
    process.setgid?.(gid);
    process.setuid?.(account.uid);
  } catch (error) {
    throw new PrivilegeError('PRIV_DROP_FAILED', `cannot switch to user ${settings.user} (${account.uid}:${gid}): ${(error as Error).message}`, { cause: error });
  }
  assertDropped(settings.user, account.uid, gid);
  log.info('running as an unprivileged account', { user: settings.user, uid: account.uid, gid });
  return { dropped: true, user: settings.user, uid: account.uid, gid };
}

/** Checks real and effective ids, and that root cannot be regained (as it could after a mere seteuid). */
function assertDropped(user: string, uid: number, gid: number): void {
  const ids = [process.getuid?.(), process.geteuid?.(), process.getgid?.(), process.getegid?.()];
  if (ids.join() !== [uid, uid, gid, gid].join()) {
    throw new PrivilegeError('PRIV_DROP_FAILED', `switching to user ${user} left ids ${ids.join(':')}, expected ${uid}:${uid}:${gid}:${gid}`);
  }
  if (uid === 0) return;
  let regained = true;
  try {
    process.setuid?.(0);
  } catch {
    regained = false;
  }
  if (regained) throw new PrivilegeError('PRIV_DROP_FAILED', `after switching to user ${user} the process could become root again`);
}

/** A passwd entry's ids. */
export interface UserIds {
  readonly uid: number;
  readonly gid: number;
}

/** Looks a user name up in a passwd-format file (`name:password:uid:gid:gecos:home:shell`). */
export async function lookupUser(name: string, passwdFile: string = SYSTEM_ACCOUNT_FILES.passwd): Promise<UserIds | undefined> {
  const fields = findEntry(await readFile(passwdFile, 'utf8'), name);
  const uid = parseId(fields?.[2]);
  const gid = parseId(fields?.[3]);
  return uid === undefined || gid === undefined ? undefined : { uid, gid };
}

/** Looks a group name up in a group-format file (`name:password:gid:members`). */
export async function lookupGroup(name: string, groupFile: string = SYSTEM_ACCOUNT_FILES.group): Promise<number | undefined> {
  return parseId(findEntry(await readFile(groupFile, 'utf8'), name)?.[2]);
}

/** The colon-separated fields of the first line for `name`; comments and NIS `+`/`-` lines are skipped. */
function findEntry(text: string, name: string): string[] | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    const fields = line.split(':');
    if (fields[0] === name) return fields;
  }
  return undefined;
}

function parseId(text: string | undefined): number | undefined {
  return text !== undefined && /^\d{1,10}$/.test(text) ? Number(text) : undefined;
}
