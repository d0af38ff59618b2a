/**
 * Bad input at the command line, as a user meets it: each case ends with one line
 * on stderr that says what is wrong and what to do, a non-zero exit, no stack
 * trace and no credential; a secret switched off ends the run before it starts,
 * with exit 0.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';
import { AZURITE_KEY } from '../../lambdas/local/emulators';
import { runCli, type CliResult } from '../helpers/cli';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { emulators, newBucket, newContainer, s3, uniqueName } from '../helpers/stores';

const dir = mkdtempSync(join(tmpdir(), 'azs3copy-bad-input-'));
/** A wrong key of the right shape: Azure checks it against the signature, not its form. */
const WRONG_KEY = Buffer.from('not the account key, but 64 bytes long, as account keys are ....').toString('base64');
const CLIENT_SECRET = 'Xy7~supersecretvalue.Q-123';

function secretFile(name: string, value: Record<string, unknown> | string): string {
  const path = join(dir, name);
  writeFileSync(path, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  return path;
}

/** One line on stderr, nothing on stdout, the exit code, and no secret or stack anywhere. */
function expectOneLine(result: CliResult, code: number, line: string, secrets: string[] = []) {
  expect({ code: result.code, stdout: result.stdout, stderr: result.stderr }).toEqual({ code, stdout: '', stderr: `azs3copy: ${line}\n` });
  for (const secret of [AZURITE_KEY, WRONG_KEY, CLIENT_SECRET, ...secrets]) expect(result.stdout + result.stderr).not.toContain(secret);
}

describe.concurrent('bad input at the command line', () => {
  let container: ContainerClient;
  let bucket: string;
  let denyWrites: FaultProxy;
  let denyReads: FaultProxy;
  const flags = () => ['--container', container.containerName, '--bucket', bucket, '--s3-endpoint', emulators().s3Endpoint, '--quiet'];
  const connectionString = () => emulators().azurite.connectionString;

  beforeAll(async () => {
    container = await newContainer();
    await container.getBlockBlobClient('one.txt').upload('one', 3);
    bucket = await newBucket(s3());
    // moto grants everything: these two answer as S3 and Azure do to credentials without the permission.
    denyWrites = await startFaultProxy({ target: emulators().s3Endpoint, service: 's3', rule: (r) => (r.method === 'PUT' ? 'denied' : 'pass') });
    denyReads = await startFaultProxy({
      target: emulators().azurite.endpoint, service: 'azure',
      rule: (r) => (r.query.get('comp') !== 'list' && (r.method === 'GET' || r.method === 'HEAD') ? 'denied' : 'pass'),
    });
  });

  afterAll(async () => {
    await Promise.all([denyWrites?.stop(), denyReads?.stop()]);
  });

  it('a secret file that is not JSON', async () => {
    const file = secretFile('broken.json', `{ "connectionstring": "${connectionString()}", "container": "c01", "isactive": "True", }`);
    expectOneLine(await runCli(['copy', '--secret-file', file, '--bucket', 'b01']), 2,
      `the secret file ${file} is not valid JSON: in the Secrets Manager console choose "Plaintext" and fix the quotes and commas`);
  });

  it('a secret file without a key it needs', async () => {
    const file = secretFile('incomplete.json', { tenantid: '72f988bf-86f1-41af-91ab-2d7cd011db47', clientsecret: CLIENT_SECRET, storageaccount: 'acct123', container: 'c01', isactive: 'True' });
    expectOneLine(await runCli(['copy', '--secret-file', file, '--bucket', 'b01']), 2,
      `the secret file ${file} has no "clientid": add it, set to the application (client) id of the service principal, a GUID`);
  });

  // "False", 0, "off" and the rest are read the same way (test/unit/config.test.ts); one run shows where it leads.
  it('isactive "no": the run does not start, and that is not an error', async () => {
    const file = secretFile('off.json', { connectionstring: connectionString(), container: container.containerName, isactive: 'no' });
    const result = await runCli(['copy', '--secret-file', file, '--bucket', bucket, '--s3-endpoint', emulators().s3Endpoint, '--quiet']);
    expect(result).toEqual({ code: 0, stdout: 'run not started: the copy is switched off ("isactive" is false in the configuration)\n', stderr: '' });
  });

  it('isactive that is neither on nor off', async () => {
    const file = secretFile('maybe.json', { connectionstring: connectionString(), container: container.containerName, isactive: 'maybe' });
    expectOneLine(await runCli(['copy', '--secret-file', file, ...flags().slice(2)]), 2,
      `the secret file ${file} key "isactive" is "maybe", which is neither on nor off: set it to "True" or "False"`);
  });

  it('a begindate that is not a date', async () => {
    expectOneLine(await runCli(['copy', '--azure-connection-string', connectionString(), ...flags(), '--begindate', '2024-13-45']), 2,
      '--begindate is "2024-13-45": set it to an ISO 8601 date such as 2024-01-31 or 2024-01-31T08:00:00Z, or leave it empty to copy every blob');
  });

  it('a wrong account key, given in a secret file', async () => {
    const wrong = connectionString().replace(/AccountKey=[^;]+/, `AccountKey=${WRONG_KEY}`);
    const file = secretFile('wrong-key.json', { connectionstring: wrong, container: container.containerName, isactive: 'True' });
    expectOneLine(await runCli(['copy', '--secret-file', file, ...flags().slice(2)]), 2,
      // Azurite answers AuthorizationFailure where Azure answers AuthenticationFailed; the line carries whichever came.
      `Azure refused access to container "${container.containerName}" in storage account "devstoreaccount1" (403 AuthorizationFailure): ` +
      'check the account key (or the SAS and its "rl" permissions), or grant the service principal "Storage Blob Data Reader" on it');
  });

  it('a container that does not exist', async () => {
    const missing = uniqueName('nope');
    expectOneLine(await runCli(['copy', '--azure-connection-string', connectionString(), ...flags().map((f) => (f === container.containerName ? missing : f))]), 2,
      `Azure container "${missing}" in storage account "devstoreaccount1" does not exist: check the container name, or create it`);
  });

  it('a bucket that does not exist', async () => {
    const missing = uniqueName('nope');
    expectOneLine(await runCli(['copy', '--azure-connection-string', connectionString(), ...flags().map((f) => (f === bucket ? missing : f))]), 2,
      `S3 bucket "${missing}" does not exist: create it, or check the bucket name`);
  });

  it('credentials that may read the bucket but not write to it', async () => {
    const args = ['copy', '--azure-connection-string', connectionString(), ...flags().map((f) => (f === emulators().s3Endpoint ? denyWrites.endpoint : f))];
    expectOneLine(await runCli(args), 2,
      `access to S3 bucket "${bucket}" is denied: check the AWS credentials and allow s3:PutObject and s3:ListBucket on it`);
  });

  it('a SAS that may list the container but not read its blobs', async () => {
    const sas = generateBlobSASQueryParameters(
      { containerName: container.containerName, permissions: ContainerSASPermissions.parse('l'), expiresOn: new Date(Date.now() + 3_600_000) },
      new StorageSharedKeyCredential('devstoreaccount1', AZURITE_KEY),
    ).toString();
    const listOnly = `BlobEndpoint=${emulators().azurite.endpoint};SharedAccessSignature=${sas}`;
    expectOneLine(await runCli(['copy', '--azure-connection-string', listOnly, ...flags()]), 2,
      `Azure lets these credentials list container "${container.containerName}" in storage account "devstoreaccount1" but not read its blobs (403 AuthorizationPermissionMismatch): ` +
      'grant "Storage Blob Data Reader" (a SAS needs the "r" permission as well as "l")', [new URLSearchParams(sas).get('sig')!]);
  });

  it('a service that refuses reads with AuthorizationPermissionMismatch', async () => {
    const proxied = connectionString().replace(/BlobEndpoint=[^;]*/, `BlobEndpoint=${denyReads.endpoint}`);
    expectOneLine(await runCli(['copy', '--azure-connection-string', proxied, ...flags()]), 2,
      `Azure lets these credentials list container "${container.containerName}" in storage account "devstoreaccount1" but not read its blobs (403 AuthorizationPermissionMismatch): ` +
      'grant "Storage Blob Data Reader" (a SAS needs the "r" permission as well as "l")');
  });

  it('check-secret says what a good secret configures, without its secret', async () => {
    const file = secretFile('good.json', {
      tenantid: '72f988bf-86f1-41af-91ab-2d7cd011db47', clientid: '0c1e4700-1234-4000-8000-00000000c11e', clientsecret: CLIENT_SECRET,
      storageaccount: 'acct123', container: 'c01', isactive: 'False', begindate: '2024-01-31',
    });
    const result = await runCli(['check-secret', file]);
    expect(result).toEqual({
      code: 0,
      stderr: '',
      stdout: `${file} is valid: auth "client secret": service principal 0c1e4700-1234-4000-8000-00000000c11e of tenant 72f988bf-86f1-41af-91ab-2d7cd011db47, ` +
        'with its client secret, for container "c01" in storage account "acct123"; isactive off (a run would not start); only blobs modified after 2024-01-31T00:00:00.000Z\n',
    });
  });

  it('check-secret of a file that is not there', async () => {
    const file = join(dir, 'absent.json');
    expectOneLine(await runCli(['check-secret', file]), 2, `cannot read the secret file ${file} (ENOENT): check the path`);
  });
});
