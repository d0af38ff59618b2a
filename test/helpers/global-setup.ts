/**
 * Start Azurite and moto once for the whole test run, on free loopback ports, and
 * hand their endpoints to the tests. Each test makes its own container and bucket.
 * First build dist/ from the current sources (half a second), so the tests that
 * run the `azs3copy` command run this code.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { startAzurite, startMoto, type AzuriteEmulator, type Emulator } from '../../lambdas/local/emulators';

export interface EmulatorEndpoints {
  azurite: { endpoint: string; connectionString: string; account: string };
  s3Endpoint: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    emulators: EmulatorEndpoints;
  }
}

let azurite: AzuriteEmulator | undefined;
let moto: Emulator | undefined;

export async function setup(project: TestProject) {
  execFileSync(process.execPath, [fileURLToPath(new URL('../../bin/build.mjs', import.meta.url)), '--quiet'], { stdio: 'inherit' });
  [azurite, moto] = await Promise.all([startAzurite(), startMoto()]);
  project.provide('emulators', {
    azurite: { endpoint: azurite.endpoint, connectionString: azurite.connectionString, account: azurite.account },
    s3Endpoint: moto.endpoint,
  });
}

export async function teardown() {
  await Promise.all([azurite?.stop(), moto?.stop()]);
}
