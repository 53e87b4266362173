/**
 * `muse-milter check-config`: validates a configuration file and the files it names (site keys with
 * their permissions), the way `postfix check` does, without starting anything.
 */
import { readFile } from 'node:fs/promises';
import { configNotices, loadConfig } from '../../config/index.ts';
import { loadSiteKeys } from '../../daemon/key-files.ts';
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
    'readable by group or others is refused). Settings written in an outdated form still load; each gets a ' +
    'notice on standard error saying what it is read as and how to write it now.\nExit status: 0 valid, 1 problems ' +
    'found, 2 usage error.',
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
    io.stdout(
      `${path}: valid\n` +
        `  site ${config.site.domain}, key ${keys.current.fingerprint}` +
        (keys.previous.length > 0 ? ` (+${keys.previous.length} previous)` : '') +
        `\n  milter ${config.milter.listen}, policy default ${config.policy.default}${config.policy.testing ? ' (testing: nothing is changed)' : ''}\n`,
    );
    return EXIT.OK;
  },
};
