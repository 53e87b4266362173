/**
 * Handing the daemon's files to the account it switches to. Started as root, the daemon creates its state (the
 * marker secret, the spool, the re-injection ledger, the pin files, the data directory itself when missing) as
 * root; without this step the account it then runs as could not re-read the secret on SIGHUP nor create a spool
 * file for a large message. Site key files that root owns (written by `genkey` run as root) are handed over too,
 * keeping mode 0600, so a reload can re-read them. Anything else the account cannot use stops the start, with the
 * command that fixes it: better no daemon than one that fails on the first reload or the first large message.
 */
import { chown, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import type { MuseLogger } from '../log/index.ts';
import { PIN_FILE_NAME, PIN_OWNER_FILE_NAME } from '../pins/index.ts';
import { checkAccessAs, chownSpec, describeAccessProblems, pathsNeededAfterDrop, type RunAccount } from './account-access.ts';

/** The daemon cannot run as its account: a file it needs is out of the account's reach. */
export class AccountAccessError extends Error {
  override readonly name = 'AccountAccessError';
  readonly code = 'ACCOUNT_ACCESS';
}

/** Directories that existed before the daemon started: only those it created itself are handed over whole. */
export interface PreexistingDirectories {
  readonly dataDirectory: boolean;
  readonly pinDirectory: boolean;
}

/** Which of the directories the daemon may create exist now (call before building the runtime). */
export async function preexistingDirectories(config: Config): Promise<PreexistingDirectories> {
  return { dataDirectory: await exists(config.dataDirectory), pinDirectory: await exists(config.pins.directory as string) };
}

/**
 * Gives `account` the files it will use, then checks, as the account, that it can use everything it needs.
 * Call as root, after the runtime was built (the files exist) and before the switch.
 * @throws AccountAccessError listing each path the account cannot use and the command that fixes it
 */
export async function handOverToAccount(config: Config, configPath: string | undefined, account: RunAccount, before: PreexistingDirectories, log: MuseLogger): Promise<void> {
  const handed: string[] = [];
  const give = async (path: string, onlyIfRoot: boolean): Promise<void> => {
    const info = await lstat(path).catch(() => undefined);
    // Never through a symbolic link: the daemon hands over its own files, not whatever a link points at.
    if (info === undefined || info.isSymbolicLink()) return;
    if (info.uid === account.uid && info.gid === account.gid) return;
    if (onlyIfRoot && info.uid !== 0) return;
    await chown(path, account.uid, account.gid);
    handed.push(path);
  };
  if (!before.dataDirectory) await give(config.dataDirectory, false);
  if (config.pins.enabled && !before.pinDirectory) await give(config.pins.directory as string, false);
  // The daemon's own state: always its account's.
  await give(config.mixedRecipients.reinject.markerSecretFile as string, false);
  await give(config.milter.spoolDirectory as string, false);
  const ledger = config.mixedRecipients.reinject.ledgerDirectory as string;
  await give(ledger, false);
  for (const entry of await readdir(ledger).catch(() => [] as string[])) await give(join(ledger, entry), false);
  if (config.pins.enabled) {
    for (const name of [PIN_FILE_NAME, PIN_OWNER_FILE_NAME]) await give(join(config.pins.directory as string, name), false);
  }
  // Key files root wrote (genkey as root): the account must re-read them on SIGHUP. Files of another owner are the
  // administrator's choice; the check below reports them if the account cannot read them.
  for (const keyFile of [config.site.keyFile as string, ...config.site.previousKeyFiles]) await give(keyFile, true);
  if (handed.length > 0) log.notice('handed files to the account the daemon runs as', { user: chownSpec(account), paths: handed });

  const problems = await checkAccessAs(account, pathsNeededAfterDrop(config, configPath));
  if (problems.length > 0) {
    throw new AccountAccessError(`user ${account.user} could not use what the daemon needs after the switch:\n  ${describeAccessProblems(account, problems).join('\n  ')}`);
  }
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}
