/**
 * A call to an AWS JSON-protocol service for which the project has no SDK client
 * (KMS): one POST signed with the project's SigV4 signer.
 */
import { createHash } from 'node:crypto';
import { sigV4Signer, type SigningCredentials } from '../../../lambdas/core/stores/sigv4';

export interface AwsTarget {
  endpoint: string;
  region: string;
  credentials: SigningCredentials;
}

/** `target` is the X-Amz-Target, e.g. `TrentService.CreateKey`; `service` the signing name, e.g. `kms`. */
export async function awsJsonCall<T = Record<string, unknown>>(to: AwsTarget, service: string, target: string, input: unknown): Promise<T> {
  const body = JSON.stringify(input);
  const url = new URL(to.endpoint);
  const headers = sigV4Signer(service, to.region)(
    'POST',
    '/',
    {
      host: url.host,
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': target,
      'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'),
    },
    to.credentials,
    new Date(),
  );
  const response = await fetch(new URL('/', url), { method: 'POST', headers, body });
  const text = await response.text();
  if (!response.ok) throw new Error(`${target} answered ${response.status}: ${text.slice(0, 500)}`);
  return (text ? JSON.parse(text) : {}) as T;
}
