/**
 * A local sender of Azure Event Grid deliveries, shaped as Microsoft publishes them
 * (learn.microsoft.com, "Azure Blob Storage as an Event Grid source"): the Event
 * Grid schema (an array of events with topic, subject, eventType, eventTime, id,
 * data, dataVersion, metadataVersion) and CloudEvents 1.0 (specversion, type,
 * source, id, time, subject, data), and the subscription validation handshakes.
 */
import { randomUUID } from 'node:crypto';

export interface BlobChange {
  container: string;
  name: string;
  kind: 'created' | 'deleted';
  /** Orders a blob's events: a fixed-width hex string, as Azure's. */
  sequencer: number;
  eTag?: string;
  size?: number;
  api?: string;
  account?: string;
}

const topicOf = (account: string) =>
  `/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/${account}`;

const sequencer = (n: number) => n.toString(16).padStart(32, '0');

function dataOf(change: BlobChange) {
  const account = change.account ?? 'devstoreaccount1';
  const common = {
    clientRequestId: randomUUID(),
    requestId: randomUUID(),
    contentType: 'application/octet-stream',
    blobType: 'BlockBlob',
    url: `https://${account}.blob.core.windows.net/${change.container}/${encodeURIComponent(change.name).replace(/%2F/g, '/')}`,
    sequencer: sequencer(change.sequencer),
    storageDiagnostics: { batchId: randomUUID() },
  };
  return change.kind === 'created'
    ? { api: change.api ?? 'PutBlob', eTag: change.eTag ?? '0x8D4BCC2E4835CD0', contentLength: change.size ?? 0, ...common }
    : { api: change.api ?? 'DeleteBlob', ...common };
}

const typeOf = (change: BlobChange) => (change.kind === 'created' ? 'Microsoft.Storage.BlobCreated' : 'Microsoft.Storage.BlobDeleted');
const subjectOf = (change: BlobChange) => `/blobServices/default/containers/${change.container}/blobs/${change.name}`;

export function eventGridBatch(changes: BlobChange[]): object[] {
  return changes.map((change) => ({
    topic: topicOf(change.account ?? 'devstoreaccount1'),
    subject: subjectOf(change),
    eventType: typeOf(change),
    eventTime: new Date().toISOString(),
    id: randomUUID(),
    data: dataOf(change),
    dataVersion: '',
    metadataVersion: '1',
  }));
}

export function cloudEventsBatch(changes: BlobChange[]): object[] {
  return changes.map((change) => ({
    specversion: '1.0',
    type: typeOf(change),
    source: topicOf(change.account ?? 'devstoreaccount1'),
    id: randomUUID(),
    time: new Date().toISOString(),
    subject: subjectOf(change),
    datacontenttype: 'application/json',
    data: dataOf(change),
  }));
}

export function validationEvent(code: string): object[] {
  return [{
    id: randomUUID(),
    topic: topicOf('devstoreaccount1'),
    subject: '',
    data: { validationCode: code, validationUrl: `https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/x/validate?id=${code}&t=2026-12-01T00:00:00Z` },
    eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent',
    eventTime: new Date().toISOString(),
    metadataVersion: '1',
    dataVersion: '1',
  }];
}

/** POST a batch as Event Grid does (its content types), to `url` with `?code=` when a key is given. */
export async function deliver(url: string, body: unknown, options: { key?: string; schema?: 'eventgrid' | 'cloudevents' } = {}) {
  const target = new URL(url);
  if (options.key !== undefined) target.searchParams.set('code', options.key);
  const response = await fetch(target, {
    method: 'POST',
    headers: {
      'content-type': options.schema === 'cloudevents' ? 'application/cloudevents-batch+json; charset=utf-8' : 'application/json',
      'aeg-event-type': 'Notification',
    },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.text(), headers: response.headers };
}
