/**
 * `muse-milter lookup`: what DNS says about a site's keys, the pin state, and what the milter would do with a
 * message to it. Read-only: the pin store is not changed.
 */
import { domainOfAddressOrDomain, lookupSiteKeys } from '../../keys/index.ts';
import { evaluatePin, PinStore, withCertifications, type PinEvaluation } from '../../pins/index.ts';
import { domainOutlook } from '../../policy/domain-outlook.ts';
import { COMMON_OPTIONS, pinDirOption, resolverOption, siteOrUsage, stringOption } from '../options.ts';
import { formatKey, formatRejected, formatSource, line, lookupToJson } from '../report.ts';
import { EXIT, UsageError, type Verb, type VerbArgs } from '../verb.ts';

/** The lookup verb. */
export const lookupVerb: Verb = {
  name: 'lookup',
  summary: 'show the keys, policy, DNSSEC, cache and pin state of a site, and what a message to it would get',
  positionals: { usage: 'DOMAIN|ADDRESS', min: 0, max: 1 },
  options: {
    domain: COMMON_OPTIONS.domain,
    dns: COMMON_OPTIONS.dns,
    'pin-dir': COMMON_OPTIONS['pin-dir'],
    json: { type: 'boolean', description: 'print one JSON object instead of text' },
  },
  details:
    'The site is given as DOMAIN, as an address user@DOMAIN, or with --domain. The pin store is read, never ' +
    'written.\nExit status: 0 looked up (whatever was found), 1 DNS temporary failure or unreadable pin store, ' +
    '2 usage error.',
  async run(args, io) {
    const domain = target(args);
    const resolver = resolverOption(args);
    const store = await PinStore.open(pinDirOption(args));
    const now = new Date();
    const lookup = await lookupSiteKeys(domain, { resolver, now });
    const pin = evaluatePin(store.get(domain), await withCertifications(store.get(domain), lookup, now), now);
    const outlook = domainOutlook({ lookup, pin });
    if (args.values.json === true) {
      io.stdout(`${JSON.stringify({ lookup: lookupToJson(lookup), pin, outlook }, null, 2)}\n`);
    } else {
      io.stdout(line('domain', `${lookup.domain} (${lookup.owner})`));
      io.stdout(line('status', lookup.error ? `${lookup.status}: ${lookup.error.code}` : lookup.status));
      io.stdout(line('policy', lookup.policy ? `${lookup.policy}, max-age ${lookup.maxAge} s` : 'none published (opportunistic, no pinning)'));
      io.stdout(line('dnssec', `${lookup.dnssec ? 'yes' : 'no'} (${lookup.dnssecReason})`));
      for (const source of lookup.sources) io.stdout(formatSource(source));
      for (const key of lookup.keys) io.stdout(formatKey(key));
      for (const rejected of lookup.rejected) io.stdout(formatRejected(rejected));
      io.stdout(line('pin', `${pin.state}: ${pin.detail}${describeUpdate(pin)}`));
      const keys = outlook.encryptTo.length > 0 ? ` to ${outlook.encryptTo.join(', ')}` : '';
      io.stdout(line('action', `${outlook.action}${keys} (${outlook.reason})`));
    }
    return lookup.status === 'temporary-failure' ? EXIT.FAILURE : EXIT.OK;
  },
};

/** The site from the positional argument or `--domain` (exactly one of them). */
function target(args: VerbArgs): string {
  const given = [args.positionals[0], stringOption(args, 'domain')].filter((v): v is string => v !== undefined);
  if (given.length !== 1) throw new UsageError('give the site once: lookup DOMAIN|ADDRESS or lookup --domain DOMAIN');
  return siteOrUsage(given[0] ?? '', domainOfAddressOrDomain);
}

function describeUpdate(pin: PinEvaluation): string {
  if (pin.update.kind === 'set') return `; the milter would pin ${pin.update.pin.fingerprints.length} key(s) until ${pin.update.pin.expiresAt}`;
  if (pin.update.kind === 'delete') return '; the milter would remove the pin';
  return '';
}
