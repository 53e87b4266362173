/** Types for winston-syslog 2.7, which ships none: only what src/log/ uses. */
declare module 'winston-syslog' {
  import TransportStream from 'winston-transport';

  /** Options of the syslog transport. */
  export interface SyslogTransportOptions extends TransportStream.TransportStreamOptions {
    /** `unix` (datagrams sent to `path`), `udp4`, `udp6`, and others. */
    protocol?: string;
    /** Unix socket path, for the unix protocols. */
    path?: string;
    host?: string;
    port?: number;
    facility?: string;
    /** `BSD` (RFC 3164) or `5424`. */
    type?: string;
    appName?: string;
    /** The HOSTNAME field; an empty string leaves it out. */
    localhost?: string;
  }

  /** The syslog transport. */
  export class Syslog extends TransportStream {
    constructor(options?: SyslogTransportOptions);
    /** Lines waiting for the socket; unbounded in the package itself. */
    queue: string[];
    close(): void;
  }
}
