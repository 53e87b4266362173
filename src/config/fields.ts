/**
 * Field schemas shared by the sections of the configuration: durations, sizes, modes, domains, addresses.
 * Each one words its own error as "expected …, got …" so every message in the file reads alike.
 */
import { z } from 'zod';
import { parseMilterAddress } from '../../milter/src/index.ts';
import { parseServerAddress } from '../dns/index.ts';
import { normaliseDomain } from '../keys/index.ts';
import { parseLoopbackAddress } from '../metrics/listen-address.ts';
import { parseNetwork } from '../net/cidr.ts';
import { describeValue } from './describe.ts';
import { parseDuration, parseFileMode, parseSize } from './units.ts';

/** Builds a schema from a parser that returns `undefined` (or throws) for values it refuses. */
function parsed<T>(parse: (value: unknown) => T | undefined, expected: (value: unknown) => string) {
  return z.unknown().transform((value, ctx): T => {
    let result: T | undefined;
    try {
      result = parse(value);
    } catch {
      result = undefined;
    }
    if (result === undefined) {
      ctx.issues.push({ code: 'custom', message: `${expected(value)}, got ${describeValue(value)}`, input: value });
      return z.NEVER;
    }
    return result;
  });
}

/** A duration in milliseconds (`30s`, `5m`, `2h`, `30d`, or a number of ms); zero only where `allowZero`. */
export function duration(options: { allowZero?: boolean } = {}) {
  return parsed(
    (value) => {
      const ms = parseDuration(value);
      return ms === 0 && options.allowZero !== true ? undefined : ms;
    },
    () => `expected a${options.allowZero === true ? '' : ' non-zero'} duration such as 30s, 5m or 2h, or a number of milliseconds`,
  );
}

/** A non-zero size in bytes (`64KiB`, `50MiB`, or a number of bytes). */
export const size = parsed(
  (value) => {
    const bytes = parseSize(value);
    return bytes === 0 ? undefined : bytes;
  },
  () => 'expected a non-zero size such as 64KiB or 50MiB, or a number of bytes',
);

/** A size in bytes where 0 means "no limit". */
export const sizeOrZero = parsed(parseSize, () => 'expected a size such as 64KiB or 50MiB, a number of bytes, or 0');

/** A unix permission mode written in quotes as octal (`"0660"`). */
export const fileMode = parsed(parseFileMode, () => 'expected an octal mode in quotes such as "0660"');

/** A mail domain, normalised (lower case, IDNA A-labels, no trailing dot). */
export const domainName = z.string().transform((value, ctx) => {
  try {
    return normaliseDomain(value);
  } catch {
    ctx.issues.push({ code: 'custom', message: `expected a mail domain such as example.org, got ${describeValue(value)}`, input: value });
    return z.NEVER;
  }
});

/** A file or directory path; relative ones are taken under `dataDirectory` by the configuration's last step. */
export const filePath = z.string().min(1);

/** An absolute path. */
export const absolutePath = z.string().regex(/^\//, { message: 'expected an absolute path' });

/** A TCP port number. */
export const port = z.number().int().min(1).max(65535);

/** Runs a throwing validator from another module and turns its message into the issue. */
function checkedBy(check: (value: string) => unknown) {
  return z.string().superRefine((value, ctx) => {
    try {
      check(value);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message, input: value });
    }
  });
}

/** A milter socket as Postfix and Sendmail write it (`inet:127.0.0.1:8899`, `unix:/run/muse/milter.sock`). */
export const milterSocket = checkedBy(parseMilterAddress);

/** A DNS resolver address (`127.0.0.1:53`, `[::1]:5300`), in its canonical text form. */
export const resolverAddress = checkedBy(parseServerAddress).transform((value) => parseServerAddress(value).text);

/** An IP network in CIDR notation, or a single address. */
export const network = checkedBy(parseNetwork);

/** The metrics endpoint: a loopback `host:port`. */
export const loopbackEndpoint = checkedBy(parseLoopbackAddress);

/**
 * A string that ends up in a header field or an SMTP command: no control characters, so a configuration value
 * can never inject a line break.
 */
export const singleLine = z.string().refine((value) => !/[\x00-\x1f\x7f]/.test(value), {
  message: 'must not contain line breaks or other control characters',
});
