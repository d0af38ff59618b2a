/**
 * An AWS call the CLI made on the user's behalf that failed for a reason the user
 * can fix (permissions, credentials, the network), as one line; anything else as it is.
 */
import { ConfigError, codeOf, errorMessage, statusOf } from '../core/errors';

export function explainAwsError(error: unknown, what: string, permission: string): unknown {
  const code = codeOf(error) ?? '';
  if (statusOf(error) === 403 || /AccessDenied|UnauthorizedOperation/.test(code)) {
    return new ConfigError(`AWS refused to ${what} (${code}): the credentials need ${permission}`);
  }
  if (code === 'CredentialsProviderError') return new ConfigError('no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)');
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN/.test(`${code} ${errorMessage(error)}`)) {
    return new ConfigError(`cannot reach AWS to ${what} (${code || errorMessage(error)}): check the region and the network`);
  }
  return error;
}
