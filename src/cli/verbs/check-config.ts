/**
 * `muse-milter check-config`: validates a configuration file and the files it names (site keys with
 * their permissions), the way `postfix check` does, without starting anything.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseMilterAddress } from '../../../milter/src/index.ts';
import { configNotices, loadConfig, type Config } from '../../config/index.ts';
import { checkAccessAs, describeAccessProblems, pathsNeededAfterDrop, resolveRunAccount } from '../../daemon/account-access.ts';
import { loadSiteKeys } from '../../daemon/key-files.ts';
import { chooseSocketGroup, socketPathProblems } from '../../daemon/socket-group.ts';
import { EXIT, type Verb } from '../verb.ts';

/** The check-config verb. */
export const checkConfigVerb: Verb = {
  name: 'check-config',
  summary: 'check a configuration file and the keys it names',
  positionals: { usage: '', min: 0, max: 0 },
  options: {
    config: { type: 'string', valueName: 'FILE', description: 'the configuration file to check (required)' },
  },
  details:
    'Reports every problem with its file, line and column, and whether the site keys load (a private key file ' +
    'readable by group or others is refused). Run as root with user set, it also checks, as that account, every ' +
    'file the daemon reads or writes after switching to it (configuration, keys, marker secret, spool, ledger, ' +
    "pins), and prints the command that fixes each problem. Warns, without failing, when the milter listens on TCP " +
    "(every local user could connect) and when the unix socket's group cannot reach it through its directories. " +
    'Settings written in an outdated form still load; each gets a notice on standard error saying what it is read ' +
    'as and how to write it now.\nExit status: 0 valid (warnings and notices included), 1 problems found, 2 usage error.',
  async run(args, io) {
    const path = args.values.config;
    if (typeof path !== 'string') {
      io.stderr('check-config: --config FILE is required\n');
      return EXIT.USAGE;
    }
    const config = await loadConfig(path);
    const keys = await loadSiteKeys(config.site);
    // Loaded already, so readable: the notices look at the same text the schema accepted.
    for (const notice of configNotices(await readFile(path, 'utf8'), path)) io.stderr(`${notice}\n`);
    const account = process.geteuid?.() === 0 ? await resolveRunAccount(config) : undefined;
    if (account !== undefined) {
      const problems = await checkAccessAs(account, pathsNeededAfterDrop(config, path));
      if (problems.length > 0) {
        io.stderr(`${path}: the daemon switches to user ${account.user} after start, and then:\n${describeAccessProblems(account, problems).map((p) => `  ${p}\n`).join('')}`);
        return EXIT.FAILURE;
      }
    }
    io.stdout(
      `${path}: valid\n` +
        `  site ${config.site.domain}, key ${keys.current.fingerprint}` +
        (keys.previous.length > 0 ? ` (+${keys.previous.length} previous)` : '') +
        `\n  milter ${config.milter.listen}, policy default ${config.policy.default}${config.policy.testing ? ' (testing: nothing is changed)' : ''}\n` +
        (account === undefined ? '' : `  runs as ${account.user} (${account.uid}:${account.gid}), which can use every file it needs\n`),
    );
    for (const warning of await socketWarnings(config)) io.stderr(`check-config: warning: ${warning}\n`);
    return EXIT.OK;
  },
};

/** What makes the milter socket reachable by others than the MTA, or unreachable by the MTA. */
async function socketWarnings(config: Config): Promise<string[]> {
  const address = parseMilterAddress(config.milter.listen);
  if (address.kind === 'inet') {
    return [
      `milter.listen ${config.milter.listen} is a TCP socket: every local user can connect to it, play MTA, and have mail ` +
        'decrypted or text signed with the site key; prefer a unix socket (milter.listen: unix:PATH, mode 0660, group of the MTA)',
    ];
  }
  const group = await chooseSocketGroup(config.milter.socketGroup, { user: config.user, group: config.group });
  // A set-group-id directory of the wanted group hands the socket that group without any privilege.
  const directory = await stat(dirname(address.path)).catch(() => undefined);
  const inherited = group.wanted !== undefined && directory !== undefined && (directory.mode & 0o2000) !== 0 && directory.gid === group.wanted;
  const warnings = group.warning === undefined || inherited ? [] : [group.warning];
  const gid = inherited ? group.wanted : group.gid;
  // Root's group: only root connects, and root passes every directory.
  if (gid !== undefined && gid !== 0) {
    for (const problem of await socketPathProblems(address.path, gid)) warnings.push(`milter socket ${address.path}: ${problem}`);
  }
  return warnings;
}
