/**
 * Azure Event Grid deliveries, in both schemas it pushes to a webhook: the Event
 * Grid schema (a JSON array) and CloudEvents 1.0 (one event, or a batch array).
 * The Azure SDK's deserializer checks each event's required fields and types; this
 * module only says which schema a body is in and turns storage events into what
 * the copy needs: which blob, created or deleted, by which API, and its sequencer.
 */
import { EventGridDeserializer, type CloudEvent, type EventGridEvent } from '@azure/eventgrid';

export const BLOB_CREATED = 'Microsoft.Storage.BlobCreated';
export const BLOB_DELETED = 'Microsoft.Storage.BlobDeleted';
export const SUBSCRIPTION_VALIDATION = 'Microsoft.EventGrid.SubscriptionValidationEvent';

/**
 * APIs whose BlobCreated event means the blob's content is committed. Others (CreateFile, the empty file an
 * ADLS write starts with; its content follows with FlushWithClose) are not a version to copy.
 */
export const COMMITTING_APIS = new Set(['PutBlob', 'PutBlockList', 'FlushWithClose', 'CopyBlob', 'PutBlobFromUrl', 'PutBlobFromURL']);

export type Schema = 'eventgrid' | 'cloudevents';

export interface BlobEvent {
  id: string;
  kind: 'created' | 'deleted';
  /** The storage account, from the event's topic or source. */
  account?: string;
  container: string;
  /** The blob name exactly as stored (the subject carries it unencoded). */
  name: string;
  api?: string;
  /** Orders the events of one blob name: compared as strings. */
  sequencer?: string;
  eTag?: string;
  time?: string;
}

export interface ParsedDelivery {
  schema: Schema;
  /** The subscription's validation handshake (Event Grid schema): answer with this code. */
  validationCode?: string;
  blobEvents: BlobEvent[];
  /** Events that are not a copy's business (other types, a created event before its content is committed). */
  ignored: { id: string; why: string }[];
}

export class DeliveryError extends Error {
  override name = 'DeliveryError';
}

const deserializer = new EventGridDeserializer();

/** Which schema a parsed body is in: CloudEvents carry `specversion`, Event Grid events `eventType`. */
function schemaOf(body: unknown): Schema {
  const first = Array.isArray(body) ? body[0] : body;
  if (first && typeof first === 'object' && 'specversion' in first) return 'cloudevents';
  if (first && typeof first === 'object' && 'eventType' in first) return 'eventgrid';
  throw new DeliveryError('the body is neither Event Grid events (eventType) nor CloudEvents (specversion)');
}

export async function parseDelivery(text: string): Promise<ParsedDelivery> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new DeliveryError('the body is not JSON');
  }
  if (Array.isArray(body) && body.length === 0) return { schema: 'eventgrid', blobEvents: [], ignored: [] };
  const schema = schemaOf(body);
  const delivery: ParsedDelivery = { schema, blobEvents: [], ignored: [] };
  let events: (EventGridEvent<unknown> | CloudEvent<unknown>)[];
  try {
    events = schema === 'eventgrid'
      ? await deserializer.deserializeEventGridEvents(body as Record<string, unknown>)
      : await deserializer.deserializeCloudEvents(body as Record<string, unknown>);
  } catch (error) {
    throw new DeliveryError(`the events do not follow the ${schema === 'eventgrid' ? 'Event Grid' : 'CloudEvents 1.0'} schema: ${(error as Error).message}`);
  }
  for (const event of events) {
    const type = 'eventType' in event ? event.eventType : event.type;
    const origin = 'topic' in event ? event.topic : (event as CloudEvent<unknown>).source;
    const data = (event.data ?? {}) as Record<string, unknown>;
    if (type === SUBSCRIPTION_VALIDATION) {
      delivery.validationCode = String(data.validationCode ?? '');
      continue;
    }
    if (type !== BLOB_CREATED && type !== BLOB_DELETED) {
      delivery.ignored.push({ id: event.id, why: `an event of type ${type}` });
      continue;
    }
    const where = blobOf(event.subject);
    if (!where) {
      delivery.ignored.push({ id: event.id, why: `a subject that names no blob (${event.subject})` });
      continue;
    }
    const api = typeof data.api === 'string' ? data.api : undefined;
    if (type === BLOB_CREATED && api && !COMMITTING_APIS.has(api)) {
      delivery.ignored.push({ id: event.id, why: `created by ${api}, which commits no content` });
      continue;
    }
    const time = 'eventTime' in event ? event.eventTime : (event as CloudEvent<unknown>).time;
    delivery.blobEvents.push({
      id: event.id,
      kind: type === BLOB_CREATED ? 'created' : 'deleted',
      account: accountOf(origin),
      ...where,
      api,
      sequencer: typeof data.sequencer === 'string' ? data.sequencer : undefined,
      eTag: typeof data.eTag === 'string' ? data.eTag : undefined,
      time: time instanceof Date ? time.toISOString() : undefined,
    });
  }
  return delivery;
}

/** `/blobServices/default/containers/<container>/blobs/<name>`: the name may hold `/` and anything else. */
export function blobOf(subject: string | undefined): { container: string; name: string } | undefined {
  const m = /^\/blobServices\/default\/containers\/([^/]+)\/blobs\/(.+)$/s.exec(subject ?? '');
  return m ? { container: m[1], name: m[2] } : undefined;
}

/** `/subscriptions/.../providers/Microsoft.Storage/storageAccounts/<account>` */
function accountOf(origin: string | undefined): string | undefined {
  return /\/storageAccounts\/([^/]+)$/i.exec(origin ?? '')?.[1];
}
