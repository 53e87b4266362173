/**
 * Decides whether a message is outbound (to be signed and encrypted) or inbound (to be decrypted and
 * verified), from what the MTA tells the milter. The rule follows OpenDKIM's InternalHosts idea, made
 * explicit and ordered so an administrator can predict it:
 *
 * 1. `{daemon_name}` listed in `inboundDaemonNames`  → inbound (e.g. the MX-facing smtpd);
 * 2. `{daemon_name}` listed in `outboundDaemonNames` → outbound (e.g. Postfix's ORIGINATING submission);
 * 3. an authenticated client (`{auth_authen}` set) and `authenticatedIsOutbound` → outbound;
 * 4. the client address inside `internalNetworks`  → outbound;
 * 5. otherwise the configured default (inbound).
 *
 * Local submission through Postfix's `sendmail` command reaches the milter with no client address
 * (family unknown); it counts as internal.
 */
import { NetworkList } from '../net/cidr.ts';

/** Which way a message goes. */
export type Direction = 'inbound' | 'outbound';

/** The direction settings (the `direction` section of the configuration). */
export interface DirectionRules {
  internalNetworks: readonly string[];
  authenticatedIsOutbound: boolean;
  outboundDaemonNames: readonly string[];
  inboundDaemonNames: readonly string[];
  default: Direction;
}

/** What the MTA told us about the client. */
export interface DirectionFacts {
  /** Client IP address; undefined for local submission (no network client). */
  clientAddress: string | undefined;
  /** `{daemon_name}` macro. */
  daemonName: string | undefined;
  /** `{auth_authen}` macro: the SASL login name, if the client authenticated. */
  authenticatedAs: string | undefined;
}

/** The decision and the rule that made it, for the per-message log line. */
export interface DirectionDecision {
  direction: Direction;
  reason: string;
}

/** Applies {@link DirectionRules} to one connection. Build once per configuration, use per message. */
export class DirectionClassifier {
  private readonly internal: NetworkList;

  constructor(private readonly rules: DirectionRules) {
    this.internal = new NetworkList(rules.internalNetworks);
  }

  classify(facts: DirectionFacts): DirectionDecision {
    const daemon = facts.daemonName;
    if (daemon !== undefined && this.rules.inboundDaemonNames.includes(daemon)) return { direction: 'inbound', reason: `daemon ${daemon}` };
    if (daemon !== undefined && this.rules.outboundDaemonNames.includes(daemon)) return { direction: 'outbound', reason: `daemon ${daemon}` };
    if (this.rules.authenticatedIsOutbound && facts.authenticatedAs !== undefined && facts.authenticatedAs !== '') {
      return { direction: 'outbound', reason: 'authenticated client' };
    }
    if (facts.clientAddress === undefined) return { direction: 'outbound', reason: 'local submission' };
    if (this.internal.contains(facts.clientAddress)) return { direction: 'outbound', reason: `internal network ${facts.clientAddress}` };
    return { direction: this.rules.default, reason: 'default' };
  }
}
