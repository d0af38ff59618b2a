/**
 * Tokens from STS GetWebIdentityToken, against a stand-in that checks each request's
 * SigV4 signature itself and names the role by the access key that signed it: the
 * request is what STS takes, a token is fetched once and shared until shortly
 * before it expires, and each refusal is one line that says what to do.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../lambdas/core/errors';
import { claimsOf, stsEndpoint, webIdentityTokens, type AwsIdentity } from '../../lambdas/core/stores/aws-web-identity';
import { startSts, type StsStandIn } from '../helpers/sts';

const ROLE = 'arn:aws:iam::123456789012:role/etl-azs3copy-PipelineDownloadRole0A1B2C3D-Q1W2E3R4T5Y6';
const KEY = 'AKIAFEDERATEDCOPIER1';
// Characters that a signer must encode or keep as they are.
const SECRET = 'wJalr/XUtnFEMI+K7MDENG/bPxRfiCY=EXAMPLEKEY';

function identity(secretAccessKey = SECRET, sessionToken?: string): AwsIdentity {
  return { credentials: async () => ({ accessKeyId: KEY, secretAccessKey, sessionToken }), region: async () => 'eu-west-1' };
}

/** The one-line refusal a promise ends in. */
async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as Error).message).not.toContain('\n');
  return (error as Error).message;
}

describe('STS web identity tokens', () => {
  let sts: StsStandIn;
  beforeAll(async () => {
    sts = await startSts({ roles: { [KEY]: { secretAccessKey: SECRET, arn: ROLE } } });
  });
  afterAll(() => sts?.stop());
  afterEach(() => {
    vi.useRealTimers();
    sts.options.federation = true;
    sts.requests.length = 0;
  });

  it('asks for an RS256 token for Entra ID, five minutes long, and gets one whose subject is the role', async () => {
    const token = await webIdentityTokens({ identity: identity(), endpoint: sts.url }).token();

    expect(claimsOf(token)).toMatchObject({ iss: sts.issuer, sub: ROLE, aud: 'api://AzureADTokenExchange' });
    expect(sts.requests).toEqual([{
      action: 'GetWebIdentityToken',
      accessKeyId: KEY,
      form: { Action: 'GetWebIdentityToken', Version: '2011-06-15', 'Audience.member.1': 'api://AzureADTokenExchange', SigningAlgorithm: 'RS256', DurationSeconds: '300' },
    }]);
  });

  it('signs temporary credentials with their session token (a function role\'s)', async () => {
    const token = await webIdentityTokens({ identity: identity(SECRET, 'IQoJb3JpZ2luX2VjEXAMPLE//session+token='), endpoint: sts.url }).token();
    expect(claimsOf(token).sub).toBe(ROLE);
  });

  it('asks once for callers at the same time, and again only when less than a minute of the token is left', async () => {
    vi.useFakeTimers({ now: Date.now(), toFake: ['Date'] });
    const tokens = webIdentityTokens({ identity: identity(), endpoint: sts.url });
    const [a, b, c] = await Promise.all([tokens.token(), tokens.token(), tokens.token()]);
    expect(new Set([a, b, c]).size).toBe(1);
    vi.setSystemTime(Date.now() + 230_000);
    expect(await tokens.token()).toBe(a);
    expect(sts.requests).toHaveLength(1);
    vi.setSystemTime(Date.now() + 20_000); // 250 s of 300: under a minute left
    expect(await tokens.token()).not.toBe(a);
    expect(sts.requests).toHaveLength(2);
  });

  it('does not keep a failure: the next caller asks again', async () => {
    sts.options.federation = false;
    const tokens = webIdentityTokens({ identity: identity(), endpoint: sts.url });
    await expect(tokens.token()).rejects.toThrow(ConfigError);
    sts.options.federation = true;
    expect(claimsOf(await tokens.token()).sub).toBe(ROLE);
    expect(sts.requests.map((r) => r.refused)).toEqual(['OutboundWebIdentityFederationDisabled', undefined]);
  });

  it('says how to turn federation on when the account has it off', async () => {
    sts.options.federation = false;
    expect(await refusal(webIdentityTokens({ identity: identity(), endpoint: sts.url }).token())).toBe(
      'outbound identity federation is off in this AWS account, so STS gives no token to sign in to Azure with (OutboundWebIdentityFederationDisabled): ' +
        'turn it on with "aws iam enable-outbound-web-identity-federation", or the IAM console\'s "Account settings" > "Outbound identity federation", ' +
        'then trust the issuer it shows in Entra ID (azs3copy federation --stack STACK prints how)',
    );
  });

  it('says the credentials were not accepted when the signature is wrong (the stand-in checks it)', async () => {
    expect(await refusal(webIdentityTokens({ identity: identity('not-the-secret'), endpoint: sts.url }).token())).toBe(
      'STS did not accept the AWS credentials this runs with (SignatureDoesNotMatch): check them, or renew them if they are temporary',
    );
  });

  it('says where it could not reach STS, and that the API is regional', async () => {
    const endpoint = 'http://127.0.0.1:9';
    expect(await refusal(webIdentityTokens({ identity: identity(), endpoint }).token())).toBe(
      `cannot reach AWS STS at ${endpoint} (ECONNREFUSED): check AWS_REGION (GetWebIdentityToken is on regional endpoints only) and, if set, AWS_ENDPOINT_URL_STS`,
    );
  });

  it('uses the SDK\'s default credentials and the endpoint the environment names when given no identity', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', KEY);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', SECRET);
    vi.stubEnv('AWS_SESSION_TOKEN', '');
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    vi.stubEnv('AWS_ENDPOINT_URL_STS', sts.url);
    try {
      expect(claimsOf(await webIdentityTokens().token()).sub).toBe(ROLE);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('goes to the regional endpoint (the API is not on the global one), or the one the environment names', () => {
    expect(stsEndpoint('eu-west-1', {})).toBe('https://sts.eu-west-1.amazonaws.com');
    expect(stsEndpoint('cn-north-1', {})).toBe('https://sts.cn-north-1.amazonaws.com.cn');
    expect(stsEndpoint('eu-west-1', { AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:4566' })).toBe('http://127.0.0.1:4566');
  });
});
