/**
 * `muse-milter pins`: the pins the milter holds (pins.json), and `pins forget DOMAIN` to remove one by hand, for
 * instance after a site lost its key and cannot publish a certified successor. Forgetting refuses while the
 * daemon runs: it holds every pin in memory and is the only writer of the file (src/pins/owner.ts).
 */
import { normaliseDomain } from '../../keys/index.ts';
import { PinStore, pinDirectoryOwner, type Pin } from '../../pins/index.ts';
import { CONFIG_OPTION, daemonConfigOption, pinDirectoryFor } from '../daemon-config.ts';
import { COMMON_OPTIONS, DEFAULT_PIN_DIR, siteOrUsage } from '../options.ts';
import { line } from '../report.ts';
import { EXIT, UsageError, type CliIo, type Verb } from '../verb.ts';

/** The pins verb. */
export const pinsVerb: Verb = {
  name: 'pins',
  summary: 'list the pins of other sites, or forget one',
  positionals: { usage: 'forget DOMAIN', min: 0, max: 2 },
  options: {
    config: CONFIG_OPTION,
    'pin-dir': COMMON_OPTIONS['pin-dir'],
    json: { type: 'boolean', description: 'list as one JSON object (pins by domain) instead of text' },
  },
  details:
    'Without arguments, lists every pin in force: domain, pinned fingerprints, policy, expiry and whether the ' +
    'answer that last set it was DNSSEC-validated.\n' +
    '"pins forget DOMAIN" removes the pin of DOMAIN. The running milter is the only writer of pins.json, so ' +
    'forget refuses while the process named in pins.pid lives: stop muse-milter (mail waits in the MTA queue), ' +
    'forget, start it again.\n' +
    'Exit status: 0 listed or forgotten, 1 no such pin, the milter runs, or the store is unreadable, 2 usage error.',
  async run(args, io) {
    const daemon = await daemonConfigOption(args);
    const dir = pinDirectoryFor(args, daemon, DEFAULT_PIN_DIR);
    if (dir === undefined) {
      io.stderr(`pins: pinning is off in ${daemon?.path ?? 'the configuration'} (pins.enabled: false)\n`);
      return EXIT.FAILURE;
    }
    const [action, domainText] = args.positionals;
    if (action === undefined) return list(await PinStore.open(dir), args.values.json === true, io);
    if (action !== 'forget') throw new UsageError(`unknown action "${action}": the only action is forget`);
    if (domainText === undefined) throw new UsageError('missing DOMAIN: pins forget DOMAIN');
    const domain = siteOrUsage(domainText, normaliseDomain);
    const owner = await pinDirectoryOwner(dir);
    if (owner !== undefined) {
      io.stderr(
        `pins: muse-milter (pid ${owner}) is running and writes ${dir}/pins.json; it would write the pin back. ` +
          `Stop it, run "muse-milter pins forget ${domain}" again, then start it.\n`,
      );
      return EXIT.FAILURE;
    }
    const store = await PinStore.open(dir);
    if (!(await store.apply(domain, { kind: 'delete' }))) {
      io.stderr(`pins: no pin for ${domain} in ${store.path}\n`);
      return EXIT.FAILURE;
    }
    io.stderr(`pins: forgot the pin of ${domain}\n`);
    return EXIT.OK;
  },
};

function list(store: PinStore, json: boolean, io: CliIo): number {
  const now = Date.now();
  const pins = store.all().filter((pin) => Date.parse(pin.expiresAt) > now);
  if (json) {
    const byDomain = Object.fromEntries(pins.map(({ domain, publicKeys: _keys, ...pin }) => [domain, pin]));
    io.stdout(`${JSON.stringify({ pins: byDomain }, null, 2)}\n`);
    return EXIT.OK;
  }
  if (pins.length === 0) io.stdout(`no pins in ${store.path}\n`);
  for (const pin of pins) io.stdout(describe(pin));
  return EXIT.OK;
}

function describe(pin: Pin): string {
  return (
    line('domain', pin.domain) +
    pin.fingerprints.map((fp) => line('key', fp)).join('') +
    line('policy', `${pin.policy}, max-age ${pin.maxAge} s`) +
    line('expires', pin.expiresAt) +
    line('dnssec', pin.dnssec ? 'yes' : 'no') +
    '\n'
  );
}
