/**
 * Reading the configuration: YAML text → document (kept for positions) → plain data → schema. The problems are
 * reported together, each with its line and column (rules between keys are checked once the keys themselves
 * are valid, so those can show up on a second run).
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { siteKeyPaths } from '../keys/index.ts';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError } from './errors.ts';
import { describeIssues } from './issues.ts';
import { configSchema, type Config } from './schema.ts';

/** Environment variable naming the site domain of the built-in configuration. */
export const DOMAIN_ENV = 'MUSE_DOMAIN';

/** Environment variable naming the data directory of the built-in configuration. */
export const DATA_DIR_ENV = 'MUSE_DATA_DIR';

/**
 * Environment variable setting the metrics endpoint of the built-in configuration: a loopback `host:port` (port 0:
 * any free port), or `off` for none. Unset: the schema's default, 127.0.0.1:9464.
 */
export const METRICS_ENV = 'MUSE_METRICS_LISTEN';

/** Environment variable naming the resolvers of the built-in configuration: comma-separated `host:port`. */
export const DNS_ENV = 'MUSE_DNS';

/** Site domain of the built-in configuration when {@link DOMAIN_ENV} is unset. */
export const DEFAULT_SITE_DOMAIN = 'muse.localhost';

/** Data directory of the built-in configuration when {@link DATA_DIR_ENV} is unset, relative to the working directory. */
export const DEFAULT_LOCAL_DATA_DIR = './data';

/**
 * Parses and validates configuration text.
 * @param text the YAML text
 * @param fileName the name used in messages (`muse.yaml:14:3: …`)
 * @throws ConfigError `CONFIG_SYNTAX` for invalid YAML, `CONFIG_INVALID` for anything the schema refuses
 */
export function parseConfig(text: string, fileName: string): Config {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  // Warnings (an unresolved tag, say) mean the value is not what the administrator wrote: refuse them too.
  const yamlErrors = [...document.errors, ...document.warnings];
  if (yamlErrors.length > 0) {
    throw new ConfigError(
      'CONFIG_SYNTAX',
      yamlErrors.map((error) => {
        const { line, col } = lineCounter.linePos(error.pos[0]);
        return `${fileName}:${line}:${col}: ${error.message}`;
      }),
    );
  }
  let data: unknown;
  try {
    data = document.toJS() ?? {};
  } catch (error) {
    // toJS refuses alias bombs (more than 100 alias expansions); there is no position for that.
    throw new ConfigError('CONFIG_SYNTAX', [`${fileName}: ${(error as Error).message}`], { cause: error });
  }
  const result = configSchema.safeParse(data, { reportInput: true });
  if (!result.success) {
    const problems = describeIssues(result.error.issues, { fileName, document, lineCounter, schema: configSchema });
    throw new ConfigError(
      'CONFIG_INVALID',
      problems.map((problem) => problem.message),
    );
  }
  return result.data;
}

/**
 * Reads and validates a configuration file.
 * @throws ConfigError `CONFIG_UNREADABLE`, `CONFIG_SYNTAX`, `CONFIG_INVALID`
 */
export async function loadConfig(path: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigError('CONFIG_UNREADABLE', [`${path}: cannot read the configuration file (${reason})`], { cause: error });
  }
  return parseConfig(text, path);
}

/**
 * The configuration used when the daemon starts without a file (`npm start`): every default, the site domain
 * from `MUSE_DOMAIN` (else `muse.localhost`), the metrics endpoint from `MUSE_METRICS_LISTEN` (else the default;
 * `off` for none), the milter socket `milter.sock` in the data directory `dataDir`, made absolute against the
 * working directory, with the site key in its `keys/` subdirectory rather than under /etc, and the resolvers from
 * `MUSE_DNS` when set. It goes through the
 * same schema as a file, so a bad environment value is reported alike.
 * @param dataDir the data directory (default: `MUSE_DATA_DIR`, else `./data`)
 * @throws ConfigError `CONFIG_INVALID` when the environment names an unusable domain
 */
export function defaultConfig(dataDir: string = process.env[DATA_DIR_ENV] ?? DEFAULT_LOCAL_DATA_DIR): Config {
  const domain = process.env[DOMAIN_ENV] ?? DEFAULT_SITE_DOMAIN;
  const metrics = process.env[METRICS_ENV];
  const servers = (process.env[DNS_ENV] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  // JSON strings are valid YAML double-quoted scalars, so any directory, domain or address text round-trips.
  let text = `dataDirectory: ${JSON.stringify(resolve(dataDir))}\nsite:\n  domain: ${JSON.stringify(domain)}\n`;
  if (servers.length > 0) text += `dns:\n  servers: ${JSON.stringify(servers)}\n`;
  if (metrics === 'off') text += 'metrics:\n  enabled: false\n';
  else if (metrics !== undefined) text += `metrics:\n  listen: ${JSON.stringify(metrics)}\n`;
  const config = parseConfig(text, `built-in configuration (${DATA_DIR_ENV}, ${DOMAIN_ENV}, ${DNS_ENV}, ${METRICS_ENV})`);
  return { ...config, site: { ...config.site, keyFile: siteKeyPaths(join(config.dataDirectory, 'keys'), config.site.domain).privateKey } };
}
