/**
 * What feeds a function in the box, as AWS does it:
 * - SqsEventSource: an AWS::Lambda::EventSourceMapping from SQS. It polls with
 *   the function's own credentials (its role must allow ReceiveMessage and
 *   DeleteMessage), gathers up to BatchSize messages within the batching window,
 *   runs at most MaximumConcurrency batches at once, and deletes what succeeded:
 *   the whole batch, or with ReportBatchItemFailures all but the failures named.
 *   A thrown error or a timeout deletes nothing; the batch comes back after the
 *   visibility timeout, and moto moves it to the dead-letter queue by receive count.
 * - SnsToLambda: an SNS subscription with protocol `lambda`. moto delivers the
 *   topic's notifications into a tap queue of the box's own; each becomes an
 *   asynchronous invocation with the SNS event.
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { AsyncInvoker } from './async';
import { failedItems, snsEvent, sqsRecord, type SnsEnvelope } from './events';
import type { LambdaFunction } from './function';

type Problem = (text: string) => void;

/** A receive loop on one queue that can be stopped mid-poll. */
abstract class QueueReader {
  protected stopped = false;
  /** One controller per receive in flight (the SDK leaves a listener on a signal it was given). */
  private readonly polls = new Set<AbortController>();
  private lastError = '';
  private loop: Promise<void> | undefined;

  constructor(
    protected readonly sqs: SQSClient,
    readonly queueUrl: string,
    protected readonly label: string,
    protected readonly problem: Problem,
  ) {}

  /** True while it holds messages it has not handed on or settled. */
  abstract get busy(): boolean;

  protected abstract poll(): Promise<void>;

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) await this.poll();
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const poll of this.polls) poll.abort();
    await this.loop?.catch(() => undefined);
  }

  protected async receive(max: number, waitSeconds: number): Promise<Message[]> {
    const poll = new AbortController();
    this.polls.add(poll);
    try {
      const out = await this.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.queueUrl,
          MaxNumberOfMessages: Math.max(1, Math.min(10, max)),
          WaitTimeSeconds: waitSeconds,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
        { abortSignal: poll.signal },
      );
      this.lastError = '';
      return out.Messages ?? [];
    } catch (error) {
      if (this.stopped) return [];
      this.report(`${this.label} cannot receive from ${this.queueUrl}: ${(error as Error).name}: ${(error as Error).message}`);
      await new Promise((r) => setTimeout(r, 1000));
      return [];
    } finally {
      this.polls.delete(poll);
    }
  }

  protected async delete(messages: Message[]): Promise<void> {
    for (let i = 0; i < messages.length; i += 10) {
      const chunk = messages.slice(i, i + 10);
      try {
        const out = await this.sqs.send(
          new DeleteMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: chunk.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle })) }),
        );
        for (const failed of out.Failed ?? []) this.problem(`${this.label} could not delete a message: ${failed.Code} ${failed.Message ?? ''}`);
      } catch (error) {
        this.report(`${this.label} cannot delete from ${this.queueUrl}: ${(error as Error).name}: ${(error as Error).message}`);
      }
    }
  }

  /** Report an error once until it changes (a denied poll would otherwise repeat every second). */
  private report(text: string): void {
    if (text !== this.lastError) this.problem(text);
    this.lastError = text;
  }
}

export interface SqsMappingSpec {
  logicalId: string;
  uuid: string;
  queueArn: string;
  queueUrl: string;
  batchSize: number;
  batchingWindowMs: number;
  maximumConcurrency?: number;
  reportBatchItemFailures: boolean;
  region: string;
}

export class SqsEventSource extends QueueReader {
  private running = 0;
  private holding = false;
  private readonly limit: number;

  constructor(
    readonly spec: SqsMappingSpec,
    private readonly fn: LambdaFunction,
    sqs: SQSClient,
    problem: Problem,
  ) {
    super(sqs, spec.queueUrl, `event source mapping ${spec.logicalId} (${fn.spec.name})`, problem);
    this.limit = Math.min(spec.maximumConcurrency ?? Number.POSITIVE_INFINITY, fn.concurrency);
  }

  get busy(): boolean {
    return this.holding || this.running > 0;
  }

  protected async poll(): Promise<void> {
    if (this.running >= this.limit) return void (await new Promise((r) => setTimeout(r, 20)));
    // A receive in flight is not holding: what it takes is in flight in the queue (not visible) until it returns.
    const batch = await this.receive(this.spec.batchSize, 2);
    if (batch.length === 0) return;
    this.holding = true;
    try {
      const windowEnds = Date.now() + this.spec.batchingWindowMs;
      while (!this.stopped && batch.length < this.spec.batchSize && Date.now() < windowEnds) {
        const wait = Math.min(20, Math.ceil((windowEnds - Date.now()) / 1000));
        batch.push(...(await this.receive(this.spec.batchSize - batch.length, Math.max(0, wait))));
      }
      this.running++;
      void this.process(batch).finally(() => this.running--);
    } finally {
      this.holding = false;
    }
  }

  private async process(messages: Message[]): Promise<void> {
    const records = messages.map((m) => sqsRecord(m, this.spec.queueArn, this.spec.region));
    const outcome = await this.fn.invoke({ Records: records });
    if (!outcome.ok) return; // the batch comes back after the visibility timeout
    let keep = new Set<string>();
    if (this.spec.reportBatchItemFailures) {
      const failed = failedItems(outcome.payload, records);
      if (!failed) {
        this.problem(`${this.fn.spec.name} answered an invalid batchItemFailures (${JSON.stringify(outcome.payload)}): the whole batch is retried`);
        return;
      }
      keep = failed;
    }
    await this.delete(messages.filter((m) => !keep.has(m.MessageId!)));
  }
}

export interface SnsLambdaSpec {
  logicalId: string;
  topicArn: string;
  subscriptionArn: string;
  tapQueueUrl: string;
  /** Share of notifications delivered twice, as SNS and Lambda may (at least once). @default 0 */
  duplicateRate?: number;
}

export class SnsToLambda extends QueueReader {
  private holding = false;

  constructor(
    readonly spec: SnsLambdaSpec,
    private readonly invoker: AsyncInvoker,
    sqs: SQSClient,
    problem: Problem,
  ) {
    super(sqs, spec.tapQueueUrl, `SNS subscription ${spec.logicalId} (${invoker.fn.spec.name})`, problem);
  }

  get busy(): boolean {
    return this.holding;
  }

  protected async poll(): Promise<void> {
    const messages = await this.receive(10, 2);
    if (messages.length === 0) return;
    this.holding = true;
    try {
      for (const message of messages) {
        const event = snsEvent(JSON.parse(message.Body!) as SnsEnvelope, this.spec.subscriptionArn);
        this.invoker.enqueue(event);
        if (Math.random() < (this.spec.duplicateRate ?? 0)) this.invoker.enqueue(event);
      }
      await this.delete(messages);
    } finally {
      this.holding = false;
    }
  }
}
