/**
 * The federated credential's behaviour around refusals: each is one line naming the
 * fix; it is remembered for a minute, so a function reading many blobs does not ask
 * STS and Entra ID once per blob; and a refusal while reading a blob fails that blob
 * with the same line (what the run report then shows), where a listing stops the run.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { BlobFailure, ConfigError } from '../../lambdas/core/errors';
import type { WebIdentityTokens } from '../../lambdas/core/stores/aws-web-identity';
import { explainFederatedRefusal, federatedCredential } from '../../lambdas/core/stores/azure-federation';
import { azureSource } from '../../lambdas/core/stores/azure-source';
import { startSts, type StsStandIn } from '../helpers/sts';

const APP = { tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47', clientId: '0c1e4700-1234-4000-8000-00000000c11e' };
const ROLE = 'arn:aws:iam::123456789012:role/etl-azs3copy-PipelineParterRole1234ABCD-XYZ';
const ISSUER = 'https://abc123-def456.tokens.sts.global.api.aws';
const CLAIMS = { iss: ISSUER, sub: ROLE, aud: 'api://AzureADTokenExchange' };

describe('explainFederatedRefusal', () => {
  const line = (message: string) => explainFederatedRefusal(message, APP, CLAIMS)?.message;

  it('names the role, the issuer and the audience to trust, from the token\'s claims', () => {
    const trust = `add a federated credential to app ${APP.clientId} with issuer ${ISSUER}, subject ${ROLE} and audience api://AzureADTokenExchange ` +
      '(azs3copy federation --stack STACK prints the commands)';
    expect(line(`invalid_client: AADSTS700213: No matching federated identity record found for presented assertion subject '${ROLE}'.`)).toBe(
      `Entra ID does not trust AWS role ${ROLE} to sign in as app ${APP.clientId} (AADSTS700213): ${trust}`,
    );
    expect(line('AADSTS70021: No matching federated identity record found for presented assertion.')).toBe(
      `Entra ID found no federated credential of app ${APP.clientId} matching this AWS role's token (AADSTS70021): ${trust}`,
    );
    expect(line('AADSTS90061: Request to External OIDC endpoint failed.')).toBe(
      `Entra ID could not read the OpenID configuration of issuer ${ISSUER} (AADSTS90061): check that ${ISSUER}/.well-known/openid-configuration can be reached from the internet, then run again`,
    );
  });

  it('takes the subject from Entra ID\'s message when the token\'s claims are not at hand', () => {
    expect(explainFederatedRefusal(`AADSTS700213: No matching federated identity record found for presented assertion subject '${ROLE}'.`, APP, undefined)?.message)
      .toMatch(new RegExp(`^Entra ID does not trust AWS role ${ROLE.replace(/[/.]/g, '\\$&')} `));
  });

  it('leaves codes it has nothing to add to (a wrong client id is said elsewhere)', () => {
    expect(line('AADSTS700016: Application with identifier was not found in the directory')).toBeUndefined();
    expect(line('no code at all')).toBeUndefined();
  });
});

describe('a refused federated sign-in', () => {
  let sts: StsStandIn;
  beforeAll(async () => {
    sts = await startSts({ roles: { AKIAPARTER: { secretAccessKey: 'parter-secret', arn: ROLE } }, federation: false });
  });
  afterAll(() => sts?.stop());
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllEnvs();
  });

  it('is remembered for a minute: five blobs, one try', async () => {
    vi.useFakeTimers({ now: Date.now(), toFake: ['Date'] });
    let asked = 0;
    const tokens: WebIdentityTokens = {
      token: async () => {
        asked++;
        throw new ConfigError('outbound identity federation is off');
      },
      claims: () => undefined,
    };
    const credential = federatedCredential(APP, tokens, { authorityHost: 'https://127.0.0.1:9', disableInstanceDiscovery: true }, (e) => e);
    for (let i = 0; i < 5; i++) await expect(credential.getToken('https://storage.azure.com/.default')).rejects.toThrow('outbound identity federation is off');
    expect(asked).toBe(1);
    vi.setSystemTime(Date.now() + 61_000);
    await expect(credential.getToken('https://storage.azure.com/.default')).rejects.toThrow(ConfigError);
    expect(asked).toBe(2);
  });

  it('fails the blob being read with the line (so the report says it), and stops a listing with it', async () => {
    vi.stubEnv('AWS_ENDPOINT_URL_STS', sts.url);
    const source = azureSource(
      { account: 'acct123', container: 'c01', blobEndpoint: 'https://127.0.0.1:9/acct123', credentials: { kind: 'federated', ...APP, authorityHost: 'https://127.0.0.1:9' } },
      { aws: { credentials: async () => ({ accessKeyId: 'AKIAPARTER', secretAccessKey: 'parter-secret' }), region: async () => 'eu-west-1' }, maxTries: 1 },
    );
    const read = await source.read('a.bin', '"0x1"').then(() => undefined, (e: unknown) => e);
    expect(read).toBeInstanceOf(BlobFailure);
    expect((read as Error).message).toMatch(/^outbound identity federation is off in this AWS account, so STS gives no token to sign in to Azure with \(OutboundWebIdentityFederationDisabled\): turn it on with /);
    await expect(source.listPage(undefined, 10)).rejects.toThrow(ConfigError);
    expect(sts.requests.map((r) => r.refused)).toEqual(['OutboundWebIdentityFederationDisabled']);
  });
});
