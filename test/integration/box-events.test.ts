/**
 * Event Grid's webhook in the box: the stack as synthesized, deployed into a moto
 * that enforces IAM, with Event Grid's deliveries sent as HTTPS requests to the
 * events function's URL (the stack's EventsEndpoint output), which the box turns
 * into the payload format 2.0 events Lambda hands the function. The subscription
 * handshake is answered, a delivery without the right key is refused and changes
 * nothing, and a created blob's event copies it through the deployed stages under
 * their own roles.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ContainerClient } from '@azure/storage-blob';
import { STATE_PREFIX } from '../../lambdas/core/keys';
import { digestOf, patternStream, uploadBlob, type BlobSpec } from '../../lambdas/local/seed';
import { startBox, type Box, type UrlResponse } from '../helpers/box/index';
import { expectExactCopies, listKeys, newContainer, objectDigest } from '../helpers/stores';

const MiB = 1024 * 1024;
const LARGE = 8 * MiB;
const PREFIX = 'bx';
const EVENTS = `${PREFIX}-lambda07-events`;
const KEY = `webhook-${randomUUID()}`;
/** A further destination: each blob read once, written to the bucket and here, under the function roles' grants. */
const MORE_BUCKET = `bx-more-${randomUUID().slice(0, 8)}`;
const BLOBS: BlobSpec[] = [
  { name: 'events/small note.txt', size: 7_001 },
  // Large: routed to the multipart path (largefile-initializer), as the listing would.
  { name: 'events/large.bin', size: LARGE + 3, singleShot: false },
];

/** A BlobCreated event in the Event Grid schema, as Azure Storage publishes it. */
function blobCreated(container: string, name: string, sequencer: number) {
  return {
    topic: '/subscriptions/x/resourceGroups/y/providers/Microsoft.Storage/storageAccounts/devstoreaccount1',
    subject: `/blobServices/default/containers/${container}/blobs/${name}`,
    eventType: 'Microsoft.Storage.BlobCreated',
    eventTime: new Date().toISOString(),
    id: randomUUID(),
    data: {
      api: 'PutBlob',
      clientRequestId: randomUUID(),
      requestId: randomUUID(),
      contentType: 'application/octet-stream',
      blobType: 'BlockBlob',
      url: `https://devstoreaccount1.blob.core.windows.net/${container}/${encodeURIComponent(name).replace(/%2F/g, '/')}`,
      sequencer: sequencer.toString(16).padStart(32, '0'),
      storageDiagnostics: { batchId: randomUUID() },
    },
    dataVersion: '',
    metadataVersion: '1',
  };
}

describe('Event Grid\'s webhook in the box: the events function at its URL, under its own IAM policies', () => {
  let box: Box;
  let container: ContainerClient;
  let endpoint: string;
  let validation: UrlResponse;
  let wrongKey: UrlResponse;
  let noKey: UrlResponse;
  let keysAfterRefusals: string[];
  let delivered: UrlResponse;

  beforeAll(async () => {
    const seeded = (async () => {
      const c = await newContainer();
      await Promise.all(BLOBS.map((spec) => uploadBlob(c, spec)));
      return c;
    })();
    [box, container] = await Promise.all([
      startBox({
        context: { prefix: PREFIX, largeBlobBytes: LARGE, partBytes: 5 * MiB, schedule: 'off', moreDestinations: `${MORE_BUCKET}/copies/` },
        functionTimeoutSeconds: 30,
        visibilityTimeoutSeconds: 30,
        asyncRetryDelaysMs: [300, 600],
        environment: { AZS3COPY_RETRY_DELAYS_SECONDS: '1,1,1,1,1', AZS3COPY_CONFIG_TTL_SECONDS: '0' },
      }),
      seeded,
    ]);
    const { azurite } = inject('emulators');
    await box.putSecret({ connectionstring: azurite.connectionString, container: container.containerName, isactive: 'True', begindate: '', webhookkey: KEY });
    endpoint = box.outputs.EventsEndpoint;
    const events = BLOBS.map((spec, i) => blobCreated(container.containerName, spec.name, i + 1));

    validation = await box.request(`${endpoint}?code=${encodeURIComponent(KEY)}`, {
      headers: { 'aeg-event-type': 'SubscriptionValidation' },
      body: [{
        id: randomUUID(),
        topic: '/subscriptions/x/resourceGroups/y/providers/Microsoft.Storage/storageAccounts/devstoreaccount1',
        subject: '',
        data: { validationCode: 'validation-code-512', validationUrl: 'https://rp-eastus2.eventgrid.azure.net/api/subscriptions/x/validate?id=1&t=2' },
        eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent',
        eventTime: new Date().toISOString(),
        metadataVersion: '1',
        dataVersion: '2',
      }],
    });
    // The same events with a wrong key, and with none: refused before anything is read or sent.
    wrongKey = await box.request(`${endpoint}?code=${encodeURIComponent(`${KEY}x`)}`, { headers: { 'aeg-event-type': 'Notification' }, body: events });
    noKey = await box.request(endpoint, { headers: { 'aeg-event-type': 'Notification' }, body: events });
    await box.idle({ timeoutMs: 30_000 });
    keysAfterRefusals = await listKeys(box.s3(), box.outputs.BucketName);

    delivered = await box.request(`${endpoint}?code=${encodeURIComponent(KEY)}`, { headers: { 'aeg-event-type': 'Notification' }, body: events });
    await box.idle({ timeoutMs: 150_000 });
  }, 240_000);

  afterAll(async () => {
    await box?.stop();
  });

  it('puts the events function\'s URL in the outputs, and serves it with that function', () => {
    expect(endpoint).toMatch(/^https:\/\/[a-z0-9]{32}\.lambda-url\.[a-z0-9-]+\.on\.aws\/$/);
    expect(box.invocations(EVENTS).length).toBeGreaterThanOrEqual(4);
    expect(box.invocations(EVENTS)[0].event).toMatchObject({ version: '2.0', requestContext: { http: { method: 'POST' } }, queryStringParameters: { code: KEY } });
  });

  it('answers Event Grid\'s subscription validation with its code', () => {
    expect(validation.statusCode, validation.body).toBe(200);
    expect(validation.json).toEqual({ validationResponse: 'validation-code-512' });
  });

  it('refuses a delivery with a wrong key or none with 401, and nothing is copied', () => {
    expect([wrongKey.statusCode, noKey.statusCode]).toEqual([401, 401]);
    expect(wrongKey.json).toEqual({ error: expect.stringMatching(/wrong key/) });
    expect(keysAfterRefusals).toEqual([]);
  });

  it('copies the blobs a BlobCreated delivery names, byte for byte, through the deployed stages', async () => {
    expect(delivered.statusCode, `${delivered.body}\n${box.logText(EVENTS, 20)}`).toBe(200);
    expect(delivered.json).toEqual({ accepted: BLOBS.length });
    const keys = (await listKeys(box.s3(), box.outputs.BucketName)).filter((k) => !k.startsWith(STATE_PREFIX));
    expect(keys.sort(), box.report()).toEqual(BLOBS.map((b) => b.name).sort());
    await expectExactCopies(box.s3(), box.outputs.BucketName, BLOBS);
    // And in the further destination, under its prefix.
    const more = (await listKeys(box.s3(), MORE_BUCKET)).filter((k) => !k.startsWith(STATE_PREFIX));
    expect(more.sort(), box.report()).toEqual(BLOBS.map((b) => `copies/${b.name}`).sort());
    for (const spec of BLOBS) {
      const [got, want] = await Promise.all([objectDigest(box.s3(), MORE_BUCKET, `copies/${spec.name}`), digestOf(patternStream(spec.seed ?? spec.name, spec.size))]);
      expect({ name: spec.name, ...got }).toEqual({ name: spec.name, ...want });
    }
    // Routed as the listing routes blobs: the small one to download, the large one to the multipart path.
    expect(box.stats()[`${PREFIX}-lambda03-download`].invocations).toBeGreaterThanOrEqual(1);
    expect(box.stats()[`${PREFIX}-lambda04-largefile-initializer`].invocations).toBeGreaterThanOrEqual(1);
  });

  it('needs nothing its role does not grant: no invocation failed and nothing was denied', () => {
    for (const [name, s] of Object.entries(box.stats())) {
      expect({ name, failures: s.failures, timeouts: s.timeouts }, box.logText(name, 40)).toEqual({ name, failures: 0, timeouts: 0 });
    }
    expect(box.problems).toEqual([]);
    expect(box.denials).toEqual([]);
  });
});
