/**
 * Federated sign-in ("auth": "federated": no Azure secret anywhere), for real and with
 * no AWS or Entra ID: a local STS stand-in issues RS256 web identity tokens for the
 * role whose access key signed the request (it checks the SigV4 signature) and
 * publishes its key through OIDC discovery and JWKS; the local Entra ID authority
 * takes the token as a client assertion only if the app trusts its issuer, subject
 * and audience, verifying its signature with the published key; an HTTPS Azurite
 * with --oauth basic checks the access token.
 *
 * The copy runs the deployed functions' path: the AWS runtime reads the secret from
 * Secrets Manager (moto) and builds its Azure source. The refusals run the CLI as a
 * user would, and qualify's handler as Lambda does (its log is what CloudWatch
 * would hold). Both in child processes: Node reads NODE_EXTRA_CA_CERTS only at start.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../lambdas/core/env';
import { TOKEN_TIMEOUT_ENV } from '../../lambdas/core/stores/azure-source';
import type { AzuriteEmulator } from '../../lambdas/local/emulators';
import { digestOf, patternStream, type BlobSpec } from '../../lambdas/local/seed';
import { runNode } from '../helpers/children';
import { startOAuthAzurite, startTokenAuthority, type AuthorityOptions, type Certificate, type OAuthAzurite, type TokenAuthority } from '../helpers/entra';
import { startSts, type StsOptions, type StsStandIn } from '../helpers/sts';
import { emulators, newBucket, objectDigest, s3, uniqueName } from '../helpers/stores';

const MiB = 1024 * 1024;
const AUDIENCE = 'api://AzureADTokenExchange';
const TRUSTED = { key: 'AKIAFEDERATEDTRUSTED', secret: 'trusted/role+secret=key', arn: 'arn:aws:iam::123456789012:role/etl-azs3copy-PipelineDownloadRole0A1B2C3D-AbCdEfGhIjKl' };
const UNTRUSTED = { key: 'AKIAFEDERATEDOTHER01', secret: 'other/role+secret=key', arn: 'arn:aws:iam::123456789012:role/some-other-role' };
const SETUP = 'azs3copy federation --stack STACK prints the commands';

const BLOBS: BlobSpec[] = [
  { name: 'plain.txt', size: 1234 },
  { name: 'dir/sub dir/ünïcödé + more.bin', size: 300_000 },
  { name: 'empty', size: 0 },
  // Over the 6 MiB large-blob size: the initializer and the parters read with the same token.
  { name: 'big/parts.bin', size: 6 * MiB + 1, singleShot: false },
];

describe.concurrent('federated sign-in, against an STS stand-in, a local Entra ID and an OAuth Azurite', () => {
  const client = s3();
  let oauth: OAuthAzurite;
  let certificate: Certificate;
  let azurite: AzuriteEmulator;
  let container: ContainerClient;
  let bucket: string;
  let work: string;
  const stopping: { stop(): Promise<void> }[] = [];

  beforeAll(async () => {
    oauth = await startOAuthAzurite(BLOBS, uniqueName('fed'));
    ({ certificate, azurite, container } = oauth);
    work = mkdtempSync(join(tmpdir(), 'azs3copy-fed-'));
    bucket = await newBucket(client);
  });

  afterAll(async () => {
    await Promise.all([oauth?.stop(), ...stopping.map((s) => s.stop())]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** An STS for the account, and an Entra ID whose app trusts the trusted role from it (unless told otherwise). */
  async function setUp(options: { sts?: Partial<StsOptions>; trust?: (issuer: string) => AuthorityOptions['trusts'] } = {}) {
    const sts = await startSts({
      roles: { [TRUSTED.key]: { secretAccessKey: TRUSTED.secret, arn: TRUSTED.arn }, [UNTRUSTED.key]: { secretAccessKey: UNTRUSTED.secret, arn: UNTRUSTED.arn } },
      ...options.sts,
    });
    const authority = await startTokenAuthority({
      certificate,
      trusts: options.trust ? options.trust(sts.issuer) : [{ issuer: sts.issuer, subject: TRUSTED.arn, audience: AUDIENCE }],
    });
    stopping.push(sts, authority);
    return { sts, authority };
  }

  /** The secret as the user writes it: no client secret, no connection string. */
  function federatedSecret(authority: TokenAuthority, tenantId = authority.tenantId) {
    return {
      auth: 'federated', tenantid: tenantId, clientid: authority.clientId,
      storageaccount: azurite.account, container: container.containerName, blobendpoint: azurite.endpoint,
      authorityhost: authority.url, isactive: 'True', bucket,
    };
  }

  /** The environment of a function (or a user's shell) whose AWS identity is `as`. */
  function awsEnv(sts: StsStandIn, as: { key: string; secret: string }): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_EXTRA_CA_CERTS: certificate.certFile,
      [TOKEN_TIMEOUT_ENV]: '5000',
      AWS_ACCESS_KEY_ID: as.key,
      AWS_SECRET_ACCESS_KEY: as.secret,
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_STS: sts.url,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: emulators().s3Endpoint,
    };
    for (const name of ['AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_ENDPOINT_URL', 'AZURE_CLIENT_SECRET', 'AZURE_STORAGE_CONNECTION_STRING', 'AZURE_TENANT_ID', 'AZURE_CLIENT_ID']) delete env[name];
    return env;
  }

  /** Nothing that authenticates may show: no web identity token, no access token, nor a piece of one. */
  function expectNoTokens(sts: StsStandIn, authority: TokenAuthority, ...texts: string[]) {
    const all = texts.join('\n');
    for (const token of [...sts.issued, ...authority.issued]) {
      expect(all).not.toContain(token);
      expect(all).not.toContain(token.split('.')[2]);
    }
    expect(all).not.toMatch(/eyJ[\w-]{10,}\./);
  }

  /** The deployed runtime's environment: its secret in Secrets Manager (moto), its bucket and run table. */
  async function deployedEnv(sts: StsStandIn, authority: TokenAuthority, as = TRUSTED) {
    const secrets = new SecretsManagerClient({ endpoint: emulators().s3Endpoint, region: 'us-east-1' });
    const created = await secrets.send(new CreateSecretCommand({ Name: uniqueName('etl-azure-source'), SecretString: JSON.stringify(federatedSecret(authority)) }));
    secrets.destroy();
    return {
      ...awsEnv(sts, as),
      [ENV.secretArn]: created.ARN!,
      [ENV.bucket]: bucket,
      [ENV.runTable]: 'etl-azs3copy-runs',
      AZS3COPY_TEST_S3_ENDPOINT: emulators().s3Endpoint,
    };
  }

  it('copies every blob through the deployed runtime\'s Azure source: one STS token and one Entra ID grant, for the role', async () => {
    const { sts, authority } = await setUp();
    const out = join(work, 'report.json');

    const run = await runNode(['--import', 'tsx', 'test/helpers/federated-runtime.ts', 'copy', out], await deployedEnv(sts, authority));

    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(report.copied.sort()).toEqual(BLOBS.map((b) => b.name).sort());
    expect(report.failed).toEqual([]);
    for (const spec of BLOBS) {
      const [got, want] = await Promise.all([objectDigest(client, bucket, spec.name), digestOf(patternStream(spec.name, spec.size))]);
      expect({ name: spec.name, ...got }).toEqual({ name: spec.name, ...want });
    }
    // One token from STS, signed by the role's key, and one grant for it: not one per blob.
    expect(sts.requests.map((r) => [r.action, r.accessKeyId, r.refused])).toEqual([['GetWebIdentityToken', TRUSTED.key, undefined]]);
    const grants = authority.requests.filter((r) => r.method === 'POST');
    expect(grants).toHaveLength(1);
    expect(grants[0]!.form).toMatchObject({
      grant_type: 'client_credentials',
      client_id: authority.clientId,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      scope: expect.stringContaining('https://storage.azure.com/.default'),
    });
    expect(grants[0]!.form).not.toHaveProperty('client_secret');
    expect(grants[0]!.assertion).toMatchObject({ iss: sts.issuer, sub: TRUSTED.arn, aud: AUDIENCE });
    expectNoTokens(sts, authority, run.stdout, run.stderr, readFileSync(out, 'utf8'));
  });

  it('logs one line naming the fix when Entra ID does not trust the function\'s role, as qualify\'s handler runs in Lambda', async () => {
    const { sts, authority } = await setUp();
    const out = join(work, 'qualify-untrusted.json');

    const run = await runNode(['--import', 'tsx', 'test/helpers/federated-runtime.ts', 'qualify', out], await deployedEnv(sts, authority, UNTRUSTED));

    const line = `Entra ID does not trust AWS role ${UNTRUSTED.arn} to sign in as app ${authority.clientId} (AADSTS700213): ` +
      `add a federated credential to app ${authority.clientId} with issuer ${sts.issuer}, subject ${UNTRUSTED.arn} and audience ${AUDIENCE} (${SETUP})`;
    expect(run.code).toBe(0);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual({ started: false, error: line });
    // The function's log, as CloudWatch would hold it (Powertools writes errors to stderr): JSON lines only.
    const logged = `${run.stdout}${run.stderr}`.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged.filter((l) => l.level === 'ERROR')).toEqual([expect.objectContaining({ message: line, stage: 'qualify' })]);
    expect(`${run.stdout}${run.stderr}`).not.toMatch(/\n\s+at |"stack"/); // no stack trace
    expectNoTokens(sts, authority, run.stdout, run.stderr);
    expect(sts.requests).toHaveLength(1);
  });

  // Each refusal, by the CLI (the same Azure source), as one line naming the fix; the run never starts.
  const refusals: { name: string; setup: Parameters<typeof setUp>[0]; as?: typeof TRUSTED; tenant?: string; line(sts: StsStandIn, authority: TokenAuthority): string; grants: number }[] = [
    {
      name: 'federation switched off in the account',
      setup: { sts: { federation: false } },
      line: () => 'outbound identity federation is off in this AWS account, so STS gives no token to sign in to Azure with (OutboundWebIdentityFederationDisabled): ' +
        'turn it on with "aws iam enable-outbound-web-identity-federation", or the IAM console\'s "Account settings" > "Outbound identity federation", ' +
        'then trust the issuer it shows in Entra ID (azs3copy federation --stack STACK prints how)',
      grants: 0,
    },
    {
      name: 'a role Entra ID does not trust',
      setup: {},
      as: UNTRUSTED,
      line: (sts, a) => `Entra ID does not trust AWS role ${UNTRUSTED.arn} to sign in as app ${a.clientId} (AADSTS700213): ` +
        `add a federated credential to app ${a.clientId} with issuer ${sts.issuer}, subject ${UNTRUSTED.arn} and audience ${AUDIENCE} (${SETUP})`,
      grants: 1,
    },
    {
      name: 'a token for another audience than the credential\'s',
      setup: { trust: (issuer) => [{ issuer, subject: TRUSTED.arn, audience: 'api://AzureADTokenExchangeUSGov' }] },
      line: (_, a) => `Entra ID has no federated credential of app ${a.clientId} for audience ${AUDIENCE} (AADSTS700212): set the credential's audience to ${AUDIENCE}`,
      grants: 1,
    },
    {
      name: 'a credential for another issuer',
      setup: { trust: () => [{ issuer: 'https://abc123-def456.tokens.sts.global.api.aws', subject: TRUSTED.arn, audience: AUDIENCE }] },
      line: (sts, a) => `Entra ID has no federated credential of app ${a.clientId} for issuer ${sts.issuer} (AADSTS700211): ` +
        `set the credential's issuer to exactly ${sts.issuer}, this AWS account's issuer (${SETUP})`,
      grants: 1,
    },
    {
      name: 'a token signed by a key the issuer does not publish',
      setup: { sts: { unpublishedKey: true } },
      line: (sts) => `Entra ID could not verify the AWS token's signature with the keys ${sts.issuer} publishes (AADSTS7000272): ` +
        `check that the federated credential's issuer is this AWS account's issuer URL, and that ${sts.issuer}/.well-known/jwks.json can be reached from the internet`,
      grants: 1,
    },
    {
      name: 'an expired token',
      setup: { sts: { expiredBySeconds: 600 } },
      line: () => 'Entra ID found the AWS token outside its valid time (AADSTS700024): check the clock of the machine this runs on, then run again',
      grants: 1,
    },
    {
      name: 'a wrong tenant',
      setup: {},
      tenant: '99999999-0000-4000-8000-000000000009',
      line: (_, a) => `Azure sign-in failed: ${a.url} gave no sign-in endpoints for tenant "99999999-0000-4000-8000-000000000009" ` +
        `(no answer in time, unreachable, or no such tenant): check tenantid, and that this machine can reach ${a.url}`,
      grants: 0,
    },
  ];

  for (const refusal of refusals) {
    it(`stops with one line naming the fix: ${refusal.name}`, async () => {
      const { sts, authority } = await setUp(refusal.setup);
      const name = uniqueName('refused');
      const secretFile = join(work, `${name}.json`);
      writeFileSync(secretFile, JSON.stringify(federatedSecret(authority, refusal.tenant)));
      const report = join(work, `${name}-report.json`);
      const log = join(work, `${name}.jsonl`);

      const run = await runNode(
        ['bin/azs3copy.mjs', 'copy', '--secret-file', secretFile, '--s3-endpoint', emulators().s3Endpoint, '--quiet', '--report', report, '--verbose', '--log-file', log],
        awsEnv(sts, refusal.as ?? TRUSTED),
      );

      expect({ code: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({ code: 2, stdout: '', stderr: `azs3copy: ${refusal.line(sts, authority)}\n` });
      expect(authority.requests.filter((r) => r.method === 'POST')).toHaveLength(refusal.grants); // a refusal is not retried
      expect(existsSync(report)).toBe(false);
      expectNoTokens(sts, authority, run.stdout, run.stderr, existsSync(log) ? readFileSync(log, 'utf8') : '');
    });
  }

  it('check-secret says a federated secret signs in with the AWS identity and holds no secret', async () => {
    const file = join(work, 'check.json');
    writeFileSync(file, JSON.stringify({
      auth: 'Federated', tenantid: '72f988bf-86f1-41af-91ab-2d7cd011db47', clientid: '0c1e4700-1234-4000-8000-00000000c11e',
      storageaccount: 'acct123', container: 'c01', isactive: 'True',
    }));
    const run = await runNode(['bin/azs3copy.mjs', 'check-secret', file], process.env);
    expect({ code: run.code, stderr: run.stderr, stdout: run.stdout }).toEqual({
      code: 0,
      stderr: '',
      stdout: `${file} is valid: auth "federated": app 0c1e4700-1234-4000-8000-00000000c11e of tenant 72f988bf-86f1-41af-91ab-2d7cd011db47, ` +
        'signed in as the AWS identity running the copy (each function\'s role, no secret stored), for container "c01" in storage account "acct123"; ' +
        'isactive on; every blob, whatever its date\n',
    });
  });
});
