/** The configuration file of muse-milter: schema, loading, errors. This file is the public API of `src/config/`. */
export { ConfigError, type ConfigErrorCode } from './errors.ts';
export { DATA_DIR_ENV, DEFAULT_LOCAL_DATA_DIR, DEFAULT_SITE_DOMAIN, DNS_ENV, DOMAIN_ENV, METRICS_ENV, defaultConfig, loadConfig, parseConfig } from './load.ts';
export {
  DEFAULT_DATA_DIRECTORY,
  DEFAULT_KEY_DIRECTORY,
  DEFAULT_SOCKET_GROUP,
  DEFAULT_SOCKET_NAME,
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
export { DEFAULT_CONFIG_FILE, configTemplatePath, editConfigText, readConfigTemplate, type ConfigEdit } from './template.ts';
export { configNotices } from './notices.ts';
export { parseDuration, parseFileMode, parseSize } from './units.ts';
