/**
 * The operator's redrive (lambdas/redrive): invoked by hand, with
 * `{"queueUrl": "https://sqs..."}`, once the cause of a failure is fixed, it
 * sends the messages waiting in one of the pipeline's dead-letter queues back to
 * the topic of the stage that consumes them. It is a tool, not a stage: nothing
 * subscribes or schedules it, it takes no layers (it does not use the Azure
 * SDK), and its role may only empty the pipeline's dead-letter queues and
 * publish to the stage topics.
 */
import type { Construct } from 'constructs';
import type { TopicStage } from '../../lambdas/core/stages/specs';
import type { Naming } from '../naming';
import type { FunctionSizing } from '../stage-sizing';
import { CopyFunction } from './copy-function';
import type { DeadLetterQueue } from './dead-letter-queue';
import type { StageTopic } from './stage-topic';

/**
 * Small; a whole queue is moved in one invocation, so it may take Lambda's longest timeout. Nothing is
 * reserved (a deploy needs no concurrency quota); two redrives of one queue at once are harmless, as the
 * stages take duplicates.
 */
export const REDRIVE_SIZING: FunctionSizing = { memoryMiB: 256, timeoutMinutes: 15 };

export interface RedriveFunctionProps {
  readonly naming: Naming;
  /** The queues it may empty: every dead-letter queue of the pipeline. */
  readonly deadLetterQueues: readonly DeadLetterQueue[];
  /** The topic of every topic-fed stage, where the messages go back to. */
  readonly topics: Readonly<Record<TopicStage, StageTopic>>;
  /** @default REDRIVE_SIZING */
  readonly sizing?: FunctionSizing;
  /** Days the function's logs are kept. @default 30 */
  readonly logRetentionDays?: number;
}

export class RedriveFunction extends CopyFunction {
  constructor(scope: Construct, id: string, props: RedriveFunctionProps) {
    super(scope, id, {
      naming: props.naming,
      functionName: props.naming.redriveFunctionName,
      entry: 'redrive',
      sizing: props.sizing ?? REDRIVE_SIZING,
      grantsFor: 'a redrive of the pipeline\'s dead-letter queues',
      description: 'Invoke by hand with {"queueUrl": "https://sqs..."}: sends a dead-letter queue\'s messages back to their stage\'s topic',
      logRetentionDays: props.logRetentionDays,
    });
    for (const queue of props.deadLetterQueues) this.bindDeadLetterQueue(queue);
    for (const topic of Object.values<StageTopic>(props.topics)) this.bindTopic(topic);
  }

  /** Empty a dead-letter queue. No variable: each invocation names its queue. */
  bindDeadLetterQueue(queue: DeadLetterQueue): void {
    for (const statement of queue.redriveStatements()) this.role.addToPolicy(statement);
  }
}
