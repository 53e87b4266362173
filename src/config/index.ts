/** The configuration file of muse-milter: schema, loading, errors. This file is the public API of `src/config/`. */
export { ConfigError, type ConfigErrorCode } from './errors.ts';
export { DATA_DIR_ENV, DEFAULT_LOCAL_DATA_DIR, DEFAULT_SITE_DOMAIN, DOMAIN_ENV, defaultConfig, loadConfig, parseConfig } from './load.ts';
export {
  DEFAULT_DATA_DIRECTORY,
  DEFAULT_KEY_DIRECTORY,
  FAILURE_ACTIONS,
  LOG_LEVELS,
  POLICY_MODES,
  SYSLOG_FACILITIES,
  configSchema,
  type Config,
  type FailureAction,
  type LogLevel,
  type LoggingConfig,
  type PolicyMode,
} from './schema.ts';
export { configNotices } from './notices.ts';
export { parseDuration, parseFileMode, parseSize } from './units.ts';
