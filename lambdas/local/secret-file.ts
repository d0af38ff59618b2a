/**
 * The deployed configuration secret, read from a local file: `azs3copy check-secret
 * FILE` checks it with the very parser the functions use, and `copy --secret-file
 * FILE` runs locally with what it says (credentials, container, isactive,
 * begindate, bucket and prefix). Nothing from it is printed but names: never the
 * client secret or the connection string.
 */
import { readFileSync } from 'node:fs';
import { parseSecret, type CopyConfig } from '../core/config';
import { ConfigError, errorMessage } from '../core/errors';
import { registerSecret } from '../core/log';

export function readSecretFile(path: string): CopyConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the secret file ${path} (${(error as { code?: string }).code ?? errorMessage(error)}): check the path`);
  }
  const config = parseSecret(text, `the secret file ${path}`);
  const { credentials } = config.source;
  registerSecret(credentials.kind === 'connection-string' ? credentials.connectionString : credentials.clientSecret);
  return config;
}

/** One line on what the secret configures, with no credential in it. */
export function describeSecret(path: string, config: CopyConfig): string {
  const { source } = config;
  const who = source.credentials.kind === 'connection-string'
    ? 'an account connection string'
    : `service principal ${source.credentials.clientId} of tenant ${source.credentials.tenantId}`;
  const parts = [
    `${path} is valid: ${who} for container "${source.container}" in storage account "${source.account}"`,
    `isactive ${config.isActive ? 'on' : 'off (a run would not start)'}`,
    config.beginDate ? `only blobs modified after ${config.beginDate}` : 'every blob, whatever its date',
  ];
  if (config.bucket) parts.push(`into bucket "${config.bucket}"${config.prefix ? ` under "${config.prefix}"` : ''}`);
  return parts.join('; ');
}
