/**
 * The deployed configuration secret, read from a local file: `azs3copy check-secret
 * FILE` checks it with the very parser the functions use, and `copy --secret-file
 * FILE` runs locally with what it says (credentials, container, isactive,
 * begindate, bucket and prefix). Nothing from it is printed but names: never the
 * client secret or the connection string.
 */
import { readFileSync } from 'node:fs';
import { authModeOf, parseSecret, type AzureCredentials, type CopyConfig } from '../core/config';
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
  if (credentials.kind === 'connection-string') registerSecret(credentials.connectionString);
  if (credentials.kind === 'service-principal') registerSecret(credentials.clientSecret);
  return config;
}

/** Who signs in to Azure, and how, for `check-secret`. */
function whoSignsIn(credentials: AzureCredentials): string {
  switch (credentials.kind) {
    case 'federated':
      return `app ${credentials.clientId} of tenant ${credentials.tenantId}, signed in as the AWS identity running the copy (each function's role, no secret stored)`;
    case 'service-principal':
      return `service principal ${credentials.clientId} of tenant ${credentials.tenantId}, with its client secret`;
    default:
      return authModeOf(credentials) === 'SAS' ? 'a connection string with a shared access signature' : 'an account connection string';
  }
}

/** One line on what the secret configures, with no credential in it. */
export function describeSecret(path: string, config: CopyConfig): string {
  const { source } = config;
  const parts = [
    `${path} is valid: auth "${authModeOf(source.credentials)}": ${whoSignsIn(source.credentials)}, for container "${source.container}" in storage account "${source.account}"`,
    `isactive ${config.isActive ? 'on' : 'off (a run would not start)'}`,
    config.beginDate ? `only blobs modified after ${config.beginDate}` : 'every blob, whatever its date',
  ];
  if (config.bucket) parts.push(`into bucket "${config.bucket}"${config.prefix ? ` under "${config.prefix}"` : ''}`);
  return parts.join('; ');
}
