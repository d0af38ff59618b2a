/**
 * The service-principal path (tenant id, client id, client secret -> ClientSecretCredential),
 * for real and with no Entra ID: a local HTTPS token authority issues the tokens and an
 * HTTPS Azurite with --oauth basic checks them. Each case runs the real CLI, as a user would.
 *
 * Why a child process: the certificate is made by openssl at test time, and Node reads
 * NODE_EXTRA_CA_CERTS only when it starts, so the copy that must trust it (MSAL's requests
 * through @azure/identity, and the storage client) runs in a process started with it. That
 * also keeps the production code free of any test-only TLS option. The child must be
 * awaited asynchronously: the token authority lives in this process, and a synchronous spawn
 * would block it.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerClient } from '@azure/storage-blob';
import { TOKEN_TIMEOUT_ENV } from '../../lambdas/core/stores/azure-source';
import type { AzuriteEmulator } from '../../lambdas/local/emulators';
import { digestOf, patternStream, type BlobSpec } from '../../lambdas/local/seed';
import { runNode, type ChildRun } from '../helpers/children';
import { startOAuthAzurite, startTokenAuthority, type AuthorityOptions, type Certificate, type OAuthAzurite, type TokenAuthority } from '../helpers/entra';
import { emulators, newBucket, objectDigest, s3, uniqueName } from '../helpers/stores';

const MiB = 1024 * 1024;
/** Each request to the authority gets this long (through AZS3COPY_AZURE_TOKEN_TIMEOUT_MS; 30 s by default). */
const TOKEN_TIMEOUT_MS = 1500;

const BLOBS: BlobSpec[] = [
  { name: 'plain.txt', size: 1234 },
  { name: 'dir/sub dir/ünïcödé + more.bin', size: 300_000 },
  { name: 'empty', size: 0 },
  // Over --large-blob-mib 6: the multipart stages read ranges with the same token.
  { name: 'big/parts.bin', size: 6 * MiB + 1, singleShot: false },
];

/** Exit 2 (bad input), nothing on stdout, and exactly this on stderr: one line, no stack. */
function expectStopped(run: CliRun, stderr: string) {
  expect({ code: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({ code: 2, stdout: '', stderr });
}

type CliRun = ChildRun;

// The cases are independent (each has its own authority and CLI process), so they run at once:
// most of each case is the CLI loading its SDKs.
describe.concurrent('the service-principal path, against a local token authority and an OAuth Azurite', () => {
  const client = s3();
  let oauth: OAuthAzurite;
  let certificate: Certificate;
  let azurite: AzuriteEmulator;
  let container: ContainerClient;
  let bucket: string;
  let work: string;
  const authorities: TokenAuthority[] = [];

  beforeAll(async () => {
    oauth = await startOAuthAzurite(BLOBS, uniqueName('sp'));
    ({ certificate, azurite, container } = oauth);
    work = mkdtempSync(join(tmpdir(), 'azs3copy-sp-'));
    bucket = await newBucket(client);
  });

  afterAll(async () => {
    await Promise.all([oauth?.stop(), ...authorities.map((a) => a.stop())]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  async function newAuthority(options: Omit<AuthorityOptions, 'certificate'> = {}): Promise<TokenAuthority> {
    const authority = await startTokenAuthority({ certificate, ...options });
    authorities.push(authority);
    return authority;
  }

  /** `azs3copy copy` with the service principal's flags; `secret` undefined leaves AZURE_CLIENT_SECRET unset. */
  function copy(authority: TokenAuthority, secret: string | undefined, options: { tenantId?: string; extra?: string[] } = {}) {
    const args = [
      'copy', '--azure-account', azurite.account,
      '--azure-tenant-id', options.tenantId ?? authority.tenantId, '--azure-client-id', authority.clientId,
      '--azure-blob-endpoint', azurite.endpoint, '--azure-authority-host', authority.url,
      '--container', container.containerName, '--s3-endpoint', emulators().s3Endpoint, '--bucket', bucket,
      '--quiet', ...(options.extra ?? []),
    ];
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_EXTRA_CA_CERTS: certificate.certFile, [TOKEN_TIMEOUT_ENV]: String(TOKEN_TIMEOUT_MS) };
    for (const name of ['AZURE_CLIENT_SECRET', 'AZURE_STORAGE_CONNECTION_STRING', 'AZURE_TENANT_ID', 'AZURE_CLIENT_ID', 'AZURE_LOG_LEVEL']) delete env[name];
    if (secret !== undefined) env.AZURE_CLIENT_SECRET = secret;
    return runCli(args, env);
  }

  /** Nothing that authenticates may show: not a secret, not a token, not a piece of one. */
  function expectNoCredentials(authority: TokenAuthority, secrets: string[], ...texts: string[]) {
    const all = texts.join('\n');
    for (const secret of [authority.clientSecret, ...secrets]) expect(all).not.toContain(secret);
    for (const token of authority.issued) {
      expect(all).not.toContain(token);
      expect(all).not.toContain(token.split('.')[2]);
    }
    expect(all).not.toMatch(/eyJ[\w-]{10,}\./); // any JWT
  }

  it('copies every blob byte for byte with the right secret, fetching one token', async () => {
    const authority = await newAuthority();
    const report = join(work, 'report.json');
    const log = join(work, 'log.jsonl');
    const run = await copy(authority, authority.clientSecret, {
      extra: ['--report', report, '--large-blob-mib', '6', '--part-mib', '5', '--verbose', '--log-file', log],
    });
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
    const result = JSON.parse(readFileSync(report, 'utf8'));
    expect(result.copied.sort()).toEqual(BLOBS.map((b) => b.name).sort());
    expect(result.failed).toEqual([]);
    for (const spec of BLOBS) {
      const [got, want] = await Promise.all([objectDigest(client, bucket, spec.name), digestOf(patternStream(spec.name, spec.size))]);
      expect({ name: spec.name, ...got }).toEqual({ name: spec.name, ...want });
    }
    // One client-credentials grant for storage, reused by every request of the run.
    const grants = authority.requests.filter((r) => r.method === 'POST');
    expect(grants).toHaveLength(1);
    expect(grants[0]!.form).toMatchObject({
      grant_type: 'client_credentials', client_id: authority.clientId, scope: expect.stringContaining('https://storage.azure.com/.default'),
    });
    expect(authority.issued).toHaveLength(1);
    expectNoCredentials(authority, [], run.stdout, run.stderr, readFileSync(report, 'utf8'), readFileSync(log, 'utf8'));
  });

  it('stops with one line naming AADSTS7000215 and the fix when the secret is wrong', async () => {
    const authority = await newAuthority();
    const wrong = `${authority.clientSecret.slice(0, -4)}XXXX`;
    const report = join(work, 'wrong.json');
    const log = join(work, 'wrong.jsonl');
    const run = await copy(authority, wrong, { extra: ['--report', report, '--verbose', '--log-file', log] });
    expectStopped(
      run,
      'azs3copy: Azure rejected the client secret of the service principal (AADSTS7000215): ' +
        'use the secret\'s Value from the app registration\'s "Certificates & secrets" page, not its Secret ID\n',
    );
    expect(authority.requests.filter((r) => r.method === 'POST')).toHaveLength(1); // a rejected secret is not retried
    expect(existsSync(report)).toBe(false); // the run never started
    expectNoCredentials(authority, [wrong], run.stdout, run.stderr, existsSync(log) ? readFileSync(log, 'utf8') : '');
  });

  it('says an expired secret has expired, rather than that it is wrong', async () => {
    const expired = `expired~${uniqueName('secret')}`;
    const authority = await newAuthority({ expiredSecrets: [expired] });
    const run = await copy(authority, expired);
    expectStopped(
      run,
      'azs3copy: the client secret of the service principal has expired (AADSTS7000222): ' +
        'create a new one under the app registration\'s "Certificates & secrets" and use its value\n',
    );
    expectNoCredentials(authority, [expired], run.stdout, run.stderr);
  });

  it('names the authority and the tenant when the tenant is unknown', async () => {
    const authority = await newAuthority();
    const tenantId = '99999999-0000-4000-8000-000000000009';
    const run = await copy(authority, authority.clientSecret, { tenantId });
    expectStopped(
      run,
      `azs3copy: Azure sign-in failed: ${authority.url} gave no sign-in endpoints for tenant "${tenantId}" ` +
        `(no answer in time, unreachable, or no such tenant): check tenantid, and that this machine can reach ${authority.url}\n`,
    );
    expectNoCredentials(authority, [], run.stdout, run.stderr);
  });

  // MSAL fails differently when discovery hangs and when the token request hangs; and a request
  // timeout alone ends when the headers arrive, so a body that stalls is a case of its own.
  for (const mode of ['hang', 'hang-token', 'stall-token'] as const) {
    it(`gives up on an authority that never answers (${mode}) after the request timeout, with one line`, async () => {
      const authority = await newAuthority({ mode });
      const run = await copy(authority, authority.clientSecret);
      expectStopped(
        run,
        mode === 'hang'
          ? `azs3copy: Azure sign-in failed: ${authority.url} gave no sign-in endpoints for tenant "${authority.tenantId}" ` +
              `(no answer in time, unreachable, or no such tenant): check tenantid, and that this machine can reach ${authority.url}\n`
          : `azs3copy: Azure sign-in failed: the token request to ${authority.url} got no answer (timed out or the connection broke): ` +
              `check that this machine can reach ${authority.url}, then run again\n`,
      );
      // Discovery, then (hang-token) the token request: the one left unanswered is cut off and not retried.
      expect(authority.requests.map((r) => r.method)).toEqual(mode === 'hang' ? ['GET'] : ['GET', 'POST']);
      // Timed from the unanswered request's arrival, not the CLI's start (which loads SDKs for seconds on a busy machine).
      const waited = run.endedAt - authority.requests.at(-1)!.at;
      // The arrival is noted when this process's busy event loop gets to it, which may be well after the CLI sent it
      // and started its timer: half the timeout still tells waiting from giving up at once.
      expect(waited).toBeGreaterThanOrEqual(TOKEN_TIMEOUT_MS / 2);
      expect(waited).toBeLessThan(TOKEN_TIMEOUT_MS + 8000); // against 30 s by default, or for ever
    });
  }

  it('asks for AZURE_CLIENT_SECRET when it is not set, before calling anyone', async () => {
    const authority = await newAuthority();
    const run = await copy(authority, undefined);
    expectStopped(run, "azs3copy: AZURE_CLIENT_SECRET is not set: export the service principal's client secret (it is never a flag)\n");
    expect(authority.requests).toEqual([]);
  });
});

/** `azs3copy ARGS` as a user runs it. */
function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  return runNode(['bin/azs3copy.mjs', ...args], env);
}
