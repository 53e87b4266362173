/**
 * A first question to the configured resolvers when the daemon starts with the embedded configuration. A newcomer
 * without a resolver on 127.0.0.1:53 would otherwise see every message deferred (451 4.4.3) and nothing on screen
 * saying why; this says it, and how to point the milter at a resolver.
 */
import { DNS_ENV, type Config } from '../config/index.ts';
import { createResolver, DnsError, RR_TYPE } from '../dns/index.ts';
import { resolverOptions } from '../daemon/build-runtime.ts';

/**
 * Asks the configured resolvers for the site's own `_muse` TXT record. Resolves to undefined when one answered
 * (whatever it answered, NXDOMAIN included), else to the explanation to print.
 */
export async function probeResolvers(config: Config): Promise<string | undefined> {
  const resolver = createResolver({ ...resolverOptions(config), tries: 1, deadlineMs: Math.min(config.dns.overallTimeout, 3000) });
  try {
    await resolver.query(`_muse.${config.site.domain}`, RR_TYPE.TXT);
    return undefined;
  } catch (error) {
    if (!(error instanceof DnsError)) throw error;
    if (error.code === 'DNS_BAD_NAME') return undefined;
    return (
      `no DNS resolver answers at ${config.dns.servers.join(', ')} (${error.code}: ${error.message}).\n` +
      '  Until one does, every message is deferred with 451 4.4.3 (key lookup failed).\n' +
      '  Run a validating resolver on this host (apt-get install unbound), or point the milter at one:\n' +
      `    ${DNS_ENV}=192.0.2.53:53 npm start            (the embedded configuration)\n` +
      '    dns.servers: ["192.0.2.53:53"]                (a configuration file)\n'
    );
  }
}
