/**
 * Who may connect to the milter's unix socket. Whoever can connect can play MTA: have mail encrypted to the site
 * key decrypted, and any text signed with it. So the socket is mode 0660 (`milter.socketMode`) and belongs to the
 * MTA's group (`milter.socketGroup`): Postfix's smtpd and cleanup run as `postfix`, Sendmail connects as root.
 * This module picks that group and checks that the directories on the way let that group reach the socket and
 * let no one else replace it.
 */
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DEFAULT_SOCKET_GROUP } from '../config/index.ts';
import { lookupGroup, lookupUser, PrivilegeError, SYSTEM_ACCOUNT_FILES, type AccountFiles, type AccountSettings } from './privileges.ts';

/** The group chosen for the socket. */
export interface SocketGroup {
  /** The group id to give the socket; undefined: leave it as the bind created it. */
  readonly gid: number | undefined;
  /** The group in words, for logs: `postfix (113)`, `the daemon's own group (0)`. */
  readonly description: string;
  /** Why the MTA might not be able to connect, when the default could not be applied. */
  readonly warning?: string;
  /** The group the default wanted but could not apply: no warning is due if the socket has it anyway. */
  readonly wanted?: number;
}

/** The process's ids, as the privilege drop will leave them; tests pass their own. */
export interface ProcessIds {
  readonly euid: number;
  readonly gid: number;
  readonly groups: readonly number[];
}

function currentIds(): ProcessIds {
  return { euid: process.geteuid?.() ?? -1, gid: process.getgid?.() ?? -1, groups: process.getgroups?.() ?? [] };
}

/**
 * The socket's group: `configured` when given (it must exist), else `postfix` when that group exists and this
 * process may give a file to it (root, or a member), else the daemon's own group: the group it runs as once
 * privileges are dropped (`group`, or `user`'s primary group), or the process's group when it does not switch.
 * @throws PrivilegeError `PRIV_UNKNOWN_GROUP` when the configured group does not exist
 */
export async function chooseSocketGroup(
  configured: string | undefined,
  account: AccountSettings,
  files: AccountFiles = SYSTEM_ACCOUNT_FILES,
  ids: ProcessIds = currentIds(),
): Promise<SocketGroup> {
  if (configured !== undefined) {
    const gid = await lookupGroup(configured, files.group);
    if (gid === undefined) throw new PrivilegeError('PRIV_UNKNOWN_GROUP', `milter.socketGroup "${configured}" is not in ${files.group}`);
    return { gid, description: `${configured} (${gid})` };
  }
  const own = await ownGroup(account, files, ids);
  const mta = await lookupGroup(DEFAULT_SOCKET_GROUP, files.group);
  if (mta === undefined) return { gid: own, description: `the daemon's own group (${own})` };
  if (ids.euid === 0 || ids.groups.includes(mta) || ids.gid === mta) return { gid: mta, description: `${DEFAULT_SOCKET_GROUP} (${mta})` };
  // Not allowed to hand the socket to postfix: leave the group the bind gives it, which is postfix when the
  // directory is set-group-id postfix (the way to run unprivileged without joining the group).
  return {
    gid: undefined,
    wanted: mta,
    description: "the socket directory's or the daemon's own group",
    warning:
      `cannot give the milter socket to group ${DEFAULT_SOCKET_GROUP} (not root and not a member): Postfix can connect only if ` +
      `the socket's directory is set-group-id ${DEFAULT_SOCKET_GROUP} (chgrp ${DEFAULT_SOCKET_GROUP} DIR; chmod 2750 DIR), or set milter.socketGroup`,
  };
}

async function ownGroup(account: AccountSettings, files: AccountFiles, ids: ProcessIds): Promise<number> {
  // Only root switches accounts (privileges.ts); the names were already required to exist when it does.
  if (ids.euid !== 0 || account.user === undefined) return ids.gid;
  if (account.group !== undefined) return (await lookupGroup(account.group, files.group)) ?? ids.gid;
  return (await lookupUser(account.user, files.passwd))?.gid ?? ids.gid;
}

/**
 * What keeps the MTA from the socket at `path`, or lets others take its place: every directory above it must let
 * group `gid` search it (others may search, or it belongs to `gid` and its group may), and the directory holding it
 * must not be writable by others without the sticky bit (anyone could then put their own socket in its place and
 * read every message the MTA sends). Each problem is one sentence; none means fine. A directory that cannot be
 * examined is a problem too.
 */
export async function socketPathProblems(path: string, gid: number): Promise<string[]> {
  const problems: string[] = [];
  const directories: string[] = [];
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    directories.unshift(dir);
    if (dirname(dir) === dir) break;
  }
  for (const dir of directories) {
    const info = await stat(dir).catch((error: NodeJS.ErrnoException) => error);
    if (info instanceof Error) {
      problems.push(`cannot examine ${dir} (${info.code ?? info.message})`);
      continue;
    }
    const mode = info.mode & 0o7777;
    const searchable = (mode & 0o001) !== 0 || (info.gid === gid && (mode & 0o010) !== 0);
    if (!searchable) problems.push(`group ${gid} cannot reach the socket: ${dir} is mode ${octal(mode)} with group ${info.gid} (give it group ${gid} and g+x, or o+x)`);
  }
  const parent = dirname(path);
  const parentInfo = await stat(parent).catch(() => undefined);
  if (parentInfo !== undefined && (parentInfo.mode & 0o002) !== 0 && (parentInfo.mode & 0o1000) === 0) {
    problems.push(`${parent} is writable by everyone: anyone could replace the socket with their own and read the mail; use a directory of its own (mode 0750)`);
  }
  return problems;
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}
