/**
 * The `azs3copy copy` command against the emulators, exactly as documented.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STATE_PREFIX } from '../../lambdas/core/keys';
import { describe, expect, it } from 'vitest';
import { uploadBlob } from '../../lambdas/local/seed';
import { runCli } from '../helpers/cli';
import { emulators, listKeys, newBucket, newContainer, s3 } from '../helpers/stores';

describe('azs3copy copy', () => {
  const client = s3();

  it('copies a container, prints progress and a summary, writes the report, exits 0', async () => {
    const container = await newContainer();
    const bucket = await newBucket(client);
    for (let i = 0; i < 5; i++) await uploadBlob(container, { name: `dir/file ${i}.txt`, size: 100 * i });
    const report = join(mkdtempSync(join(tmpdir(), 'azs3copy-cli-')), 'report.json');
    const { azurite, s3Endpoint } = emulators();

    const result = await runCli([
      'copy', '--azure-connection-string', azurite.connectionString, '--container', container.containerName,
      '--s3-endpoint', s3Endpoint, '--bucket', bucket, '--prefix', 'copied/', '--report', report,
    ]);

    expect(result.stderr).not.toMatch(/Warning|Error/);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/copied 5\/5 objects, 1000 B/);
    expect(result.stdout).toMatch(/copied 5 objects \(1000 B\) in [\d.]+s; 0 unchanged, 0 skipped, 0 failed/);
    const written = JSON.parse(readFileSync(report, 'utf8'));
    expect(written).toMatchObject({
      runId: expect.any(String),
      copied: [0, 1, 2, 3, 4].map((i) => `dir/file ${i}.txt`),
      skipped: [],
      failed: [],
      bytes: 1000,
    });
    expect((await listKeys(client, bucket)).filter((k) => !k.startsWith(STATE_PREFIX)).sort()).toEqual(written.copied.map((n: string) => `copied/${n}`));
    // The account key is in the command line; it must not be echoed anywhere.
    expect(result.stdout + result.stderr + readFileSync(report, 'utf8')).not.toContain(azurite.connectionString.split('AccountKey=')[1].split(';')[0]);
  });

  it('exits 1 and names the blob with its reason when a blob cannot be copied', async () => {
    const container = await newContainer();
    const bucket = await newBucket(client);
    await uploadBlob(container, { name: 'fine.txt', size: 3 });
    await uploadBlob(container, { name: 'n'.repeat(1025), size: 3 });
    const { azurite, s3Endpoint } = emulators();

    const result = await runCli(
      ['copy', '--container', container.containerName, '--s3-endpoint', s3Endpoint, '--bucket', bucket, '--quiet'],
      { AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString },
    );

    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/copied 1 objects .* 1 failed/);
    expect(result.stdout).toMatch(/failed:\n {2}"n+"\.\.\."n+" \(1025 characters\): the S3 key would be 1025 bytes/);
  });
});

describe('npm start (azs3copy demo), the README\'s second command', () => {
  it('starts its own emulators from the prebuilt command, copies the demo data and verifies every copy', async () => {
    // The prebuilt command runs from dist/: it must find moto's wrapper script there too (it once did not).
    const result = await runCli(['demo', '--report', join(mkdtempSync(join(tmpdir(), 'azs3copy-demo-')), 'report.json')], {}, 240_000);
    expect(result.stderr).not.toMatch(/unexpected error/);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^verified (\d+) copies byte for byte against the source pattern: 0 mismatches$/m);
  }, 300_000);
});
