/**
 * The events endpoint as HTTP, shared by the deployed function URL and `azs3copy
 * watch`: Event Grid's two subscription handshakes, the shared key, and a batch of
 * events handed to the copy. Every request must carry the key (query parameter
 * `code`, as Event Grid users know it from Azure Functions), compared in constant
 * time; one without it, or with a wrong one, gets 401 and changes nothing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { DeliveryError, parseDelivery, type BlobEvent, type Schema } from './parse';

export interface WebhookRequest {
  method: string;
  /** Header names in lower case. */
  headers: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
  body: string;
}

export interface WebhookResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** What a batch of blob events came to (counted once per blob version, however often it is delivered). */
export interface EventsOutcome {
  runId?: string;
  /** To copy: sent to the copy stages. */
  copying: number;
  /** The destination already holds this version (a duplicate, or an older event after a newer one). */
  unchanged: number;
  /** Settled at once: skipped or failed before a byte moved (archived, a name S3 cannot take, ...). */
  settled: number;
  /** Left out by the run's filters, a container it does not copy, another account, or a blob gone since. */
  notTaken: number;
  /** Mirror: copies deleted because their blob was. */
  deleted: number;
  /** Deletions not followed (mirror is off, or the blob exists again). */
  deletionsIgnored: number;
  /** Events for a blob version this run has already routed. */
  duplicates: number;
  /**
   * Events for a blob version another delivery holds (at work on it, or died holding it until its lease runs out):
   * the request is answered 503, so Event Grid delivers the events again later.
   */
  held: number;
  /** The copy is switched off ("isactive" false): nothing was done; the scheduled listing catches up later. */
  switchedOff?: boolean;
  /** The configuration asks for a dry run: events copy nothing. */
  dryRun?: boolean;
}

export interface WebhookDeps {
  /** The shared key, or undefined when none is set up. */
  key(): Promise<string | undefined>;
  apply(events: BlobEvent[]): Promise<EventsOutcome>;
}

export interface Handled {
  response: WebhookResponse;
  /** For a one-line account of the request (never the key). */
  summary: string;
  schema?: Schema;
  events?: number;
  outcome?: EventsOutcome;
}

const json = (status: number, value: unknown): WebhookResponse => ({
  status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value),
});

/** Equal, in time that does not depend on where they differ (digests of equal length). */
export function sameKey(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

export async function handleWebhook(request: WebhookRequest, deps: WebhookDeps): Promise<Handled> {
  const expected = await deps.key();
  if (!expected) {
    return {
      response: json(503, { error: 'no webhook key is set up: set "webhookkey" in the secret (or --webhook-key) and subscribe with ?code=KEY' }),
      summary: 'refused: no webhook key is set up',
    };
  }
  const given = request.query.code;
  if (!given || !sameKey(given, expected)) {
    return { response: json(401, { error: 'a missing or wrong key: add ?code=KEY to the subscription\'s endpoint' }), summary: 'refused: a missing or wrong key (401)' };
  }
  const method = request.method.toUpperCase();
  if (method === 'OPTIONS') {
    // CloudEvents 1.0 webhook validation: allow the origin asking, at any rate.
    const origin = request.headers['webhook-request-origin'];
    if (!origin) return { response: { status: 400, body: 'an OPTIONS request without WebHook-Request-Origin' }, summary: 'refused: OPTIONS without an origin' };
    return {
      response: { status: 200, headers: { 'WebHook-Allowed-Origin': origin, 'WebHook-Allowed-Rate': '*', Allow: 'POST, OPTIONS' } },
      summary: `CloudEvents handshake: allowed ${origin}`,
    };
  }
  if (method !== 'POST') return { response: { status: 405, headers: { Allow: 'POST, OPTIONS' } }, summary: `refused: method ${method}` };

  let delivery;
  try {
    delivery = await parseDelivery(request.body);
  } catch (error) {
    if (!(error instanceof DeliveryError)) throw error;
    return { response: json(400, { error: error.message }), summary: `refused: ${error.message}` };
  }
  if (delivery.validationCode !== undefined) {
    return {
      response: json(200, { validationResponse: delivery.validationCode }),
      summary: 'Event Grid subscription validation answered',
      schema: delivery.schema,
    };
  }
  const outcome = await deps.apply(delivery.blobEvents);
  const total = delivery.blobEvents.length + delivery.ignored.length;
  // Some blob versions are another delivery's: Event Grid retries a 503 (not a 400, 401, 403 or 413), and the
  // redelivery finds them done (a 200 then) or takes over a claim whose holder died. The rest of the batch is done,
  // and a redelivery of it is answered as duplicates.
  const response = outcome.held > 0
    ? json(503, { error: `${outcome.held} of these blob versions are being handled by another delivery: deliver the events again later` })
    : json(200, { accepted: total });
  return {
    response,
    summary: summaryOf(delivery.schema, total, delivery.ignored.length, outcome),
    schema: delivery.schema,
    events: total,
    outcome,
  };
}

function summaryOf(schema: Schema, total: number, ignored: number, o: EventsOutcome): string {
  const name = schema === 'eventgrid' ? 'Event Grid' : 'CloudEvents';
  if (o.dryRun) return `${total} ${name} event${total === 1 ? '' : 's'}: the configuration asks for a dry run, nothing copied`;
  if (o.switchedOff) return `${total} ${name} event${total === 1 ? '' : 's'}: the copy is switched off, nothing done (the scheduled listing catches up)`;
  const parts = [
    `${o.copying} to copy`, `${o.unchanged} unchanged`, o.settled && `${o.settled} skipped or failed`, o.notTaken && `${o.notTaken} not taken`,
    o.deleted && `${o.deleted} deleted`, o.deletionsIgnored && `${o.deletionsIgnored} deletions not followed`, o.duplicates && `${o.duplicates} duplicates`,
    o.held && `${o.held} held by another delivery (answered 503: delivered again later)`,
    ignored && `${ignored} ignored`,
  ].filter(Boolean);
  return `${total} ${name} event${total === 1 ? '' : 's'}: ${parts.join(', ')}${o.runId ? `; run ${o.runId}` : ''}`;
}
