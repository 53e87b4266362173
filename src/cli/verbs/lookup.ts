/**
 * `muse-milter lookup`: what DNS says about a site's keys, the pin state, and what the milter would do with a
 * message to it. It decides through the daemon's own code (key service and recipient policy) with the daemon's
 * configuration (resolvers, pins, policy.domains, local domains, actions), so its answer is the milter's. Read-only:
 * the pin store is not changed.
 */
import { domainOfAddressOrDomain } from '../../keys/index.ts';
import { decideRecipient, type RecipientDecision } from '../../daemon/recipient-policy.ts';
import { PinStore, type PinEvaluation } from '../../pins/index.ts';
import { CONFIG_OPTION, daemonConfigOption, pinDirectoryFor, policyFor, resolverFor, toolKeyService } from '../daemon-config.ts';
import { COMMON_OPTIONS, DEFAULT_PIN_DIR, siteOrUsage, stringOption } from '../options.ts';
import { formatKey, formatRejected, formatSource, line, lookupToJson } from '../report.ts';
import { EXIT, UsageError, type Verb, type VerbArgs } from '../verb.ts';

/** The lookup verb. */
export const lookupVerb: Verb = {
  name: 'lookup',
  summary: 'show the keys, policy, DNSSEC, cache and pin state of a site, and what a message to it would get',
  positionals: { usage: 'DOMAIN|ADDRESS', min: 0, max: 1 },
  options: {
    domain: COMMON_OPTIONS.domain,
    config: CONFIG_OPTION,
    dns: COMMON_OPTIONS.dns,
    'pin-dir': COMMON_OPTIONS['pin-dir'],
    json: { type: 'boolean', description: 'print one JSON object instead of text' },
  },
  details:
    'The site is given as DOMAIN, as an address user@DOMAIN, or with --domain. With the daemon\'s configuration ' +
    '(--config, or the default file when it exists) the lookup uses its resolvers and pin directory, and the ' +
    '"milter" line is the decision the milter makes for a recipient there (policy.domains, local domains, ' +
    'requireDnssec and the failure actions applied); --dns and --pin-dir override the file. The pin store is ' +
    'read, never written.\nExit status: 0 looked up (whatever was found), 1 DNS temporary failure or unreadable ' +
    'pin store or configuration, 2 usage error.',
  async run(args, io) {
    const domain = target(args);
    const daemon = await daemonConfigOption(args);
    const resolver = resolverFor(args, daemon);
    const pinDir = pinDirectoryFor(args, daemon, DEFAULT_PIN_DIR);
    const store = pinDir === undefined ? undefined : await PinStore.open(pinDir);
    const found = await toolKeyService(resolver, store).domainKeys(domain);
    const { lookup, pin, outlook } = found;
    const decision = decideRecipient(lookup.domain, found.facts, policyFor(daemon));
    if (args.values.json === true) {
      io.stdout(`${JSON.stringify({ config: daemon?.path ?? null, lookup: lookupToJson(lookup), pin, outlook, decision }, null, 2)}\n`);
    } else {
      io.stdout(line('domain', `${lookup.domain} (${lookup.owner})`));
      io.stdout(line('status', lookup.error ? `${lookup.status}: ${lookup.error.code}` : lookup.status));
      io.stdout(line('policy', lookup.policy ? `${lookup.policy}, max-age ${lookup.maxAge} s` : 'none published (opportunistic, no pinning)'));
      io.stdout(line('dnssec', `${lookup.dnssec ? 'yes' : 'no'} (${lookup.dnssecReason})`));
      for (const source of lookup.sources) io.stdout(formatSource(source));
      for (const key of lookup.keys) io.stdout(formatKey(key));
      for (const rejected of lookup.rejected) io.stdout(formatRejected(rejected));
      io.stdout(line('pin', store === undefined ? 'pinning is off in the configuration' : `${pin.state}: ${pin.detail}${describeUpdate(pin)}`));
      const keys = outlook.encryptTo.length > 0 ? ` to ${outlook.encryptTo.join(', ')}` : '';
      io.stdout(line('action', `${outlook.action}${keys} (${outlook.reason})`));
      io.stdout(line('milter', `${describeDecision(decision)}${daemon === undefined ? ' [no configuration: defaults]' : ` [${daemon.path}]`}`));
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

/** The daemon's decision in words: what a recipient at the domain gets. */
export function describeDecision(decision: RecipientDecision): string {
  switch (decision.kind) {
    case 'local':
      return `deliver unchanged (${decision.reason})`;
    case 'encrypt':
      return `encrypt to ${decision.fingerprints.join(', ')}${decision.dnssec ? ' (DNSSEC)' : ''} (${decision.reason})`;
    case 'clear':
      return `send in clear${decision.signed ? ', signed' : ''} (${decision.reason})`;
    case 'refuse':
      return `${decision.temporary ? 'defer' : 'reject'} ${decision.reply.code} ${decision.reply.enhanced} ${decision.reply.text} (${decision.reason})`;
  }
}
