/**
 * The seven stages, the topics and queues between them, and the run state's table,
 * wired from the stages' specs (lambdas/core/stages/specs.ts): each queue-fed
 * stage's function takes its queue, and events (Event Grid's webhook) answers at
 * its function URL; each function may publish to exactly the
 * topics of the messages its stage sends, read the secret, keep the run state, do
 * in the bucket what its declared capabilities need (lib/grants.ts), and, when its
 * stage reads Azure, get the web identity tokens a federated sign-in needs.
 */
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { ENV } from '../../lambdas/core/env';
import { STAGE_NAMES, STAGE_SPECS, TOPIC_STAGE_NAMES, publishesTo, type StageName, type StageSpec, type TopicStage } from '../../lambdas/core/stages/specs';
import { bucketAccessOf } from '../grants';
import type { Naming } from '../naming';
import type { CopySettings } from '../settings';
import { STAGE_DEPLOYMENTS } from '../stage-sizing';
import type { CopyBucket } from './copy-bucket';
import type { CopySecret } from './copy-secret';
import type { DeadLetterQueue } from './dead-letter-queue';
import { PipelineFunction } from './pipeline-function';
import { RunTable } from './run-table';
import { StageTopic } from './stage-topic';

export interface CopyPipelineProps {
  readonly naming: Naming;
  readonly settings: CopySettings;
  readonly layers: lambda.ILayerVersion[];
  readonly secret: CopySecret;
  readonly bucket: CopyBucket;
  /** Further destinations' buckets (settings.moreDestinations), each granted as the bucket is. @default - none */
  readonly moreBuckets?: CopyBucket[];
}

/** A construct id from a stage name: `largefile-initializer` -> `LargefileInitializer`. */
export function pascal(stage: string): string {
  return stage.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase());
}

/**
 * The stage whose function answers HTTPS requests (Event Grid's deliveries) at a URL of its own, synchronously:
 * a function URL, and no asynchronous invocation settings.
 */
export const WEBHOOK_STAGE: StageName = 'events';

/** Stages that fix a run's settings from the deployment's (qualify starts a run; events, the hourly run its events count in). */
export const RUN_STARTING_STAGES: readonly StageName[] = ['qualify', 'events'];

export class CopyPipeline extends Construct {
  readonly functions: Record<StageName, PipelineFunction>;
  /** The events function's URL, where Event Grid delivers (with `?code=<webhookkey>`). */
  readonly eventsUrl: lambda.FunctionUrl;
  readonly topics: Record<TopicStage, StageTopic>;
  readonly runTable: RunTable;
  /** Encrypts the messages between stages (and the operator topic's). */
  readonly topicKey: kms.Key;

  constructor(scope: Construct, id: string, props: CopyPipelineProps) {
    super(scope, id);
    const { naming, settings } = props;
    this.topicKey = new kms.Key(this, 'TopicKey', {
      description: `Encrypts the azs3copy ${naming.prefix} messages between stages`,
      enableKeyRotation: true,
    });
    this.runTable = new RunTable(this, 'RunTable', { naming });

    const topics = {} as Record<TopicStage, StageTopic>;
    for (const stage of TOPIC_STAGE_NAMES) {
      topics[stage] = new StageTopic(this, `To${pascal(stage)}`, { naming, stage, key: this.topicKey });
    }
    const functions = {} as Record<StageName, PipelineFunction>;
    for (const stage of STAGE_NAMES) {
      const deployment = STAGE_DEPLOYMENTS[stage];
      functions[stage] = new PipelineFunction(this, pascal(stage), {
        naming,
        stage,
        sizing: settings.functions[stage],
        description: deployment.description,
        layers: props.layers,
        logRetentionDays: settings.logRetentionDays,
        failed: stage in topics ? topics[stage as TopicStage].failed : undefined,
        invokedAsynchronously: stage !== WEBHOOK_STAGE,
      });
    }
    for (const stage of TOPIC_STAGE_NAMES) topics[stage].subscribe(functions[stage]);

    for (const stage of STAGE_NAMES) {
      const fn = functions[stage];
      fn.bindSecret(props.secret);
      fn.bindBucket(props.bucket, bucketAccessOf(stage));
      for (const more of props.moreBuckets ?? []) fn.bindMoreBucket(more, bucketAccessOf(stage));
      fn.bindRunTable(this.runTable);
      for (const target of publishesTo(stage)) fn.bindTopic(topics[target]);
      if ((STAGE_SPECS[stage] as StageSpec).readsAzure) fn.bindAzureSignIn();
    }

    // The stages that start runs fix their settings; the other stages read them from the messages.
    for (const stage of RUN_STARTING_STAGES) {
      const fn = functions[stage];
      fn.setEnvironment(ENV.prefix, settings.destinationPrefix);
      if (settings.moreDestinations.length > 0) {
        fn.setEnvironment(ENV.also, JSON.stringify(settings.moreDestinations.map(({ bucket, prefix, region }) => ({ bucket, prefix, ...(region ? { region } : {}) }))));
      }
      fn.setEnvironment(ENV.stallAfterSeconds, String(settings.stallAfterMinutes * 60));
      // Parts are planned to fit the parter's timeout.
      fn.setEnvironment(ENV.partTimeoutSeconds, String(settings.functions.parter.timeoutMinutes * 60));
      if (settings.largeBlobBytes !== undefined) fn.setEnvironment(ENV.largeBlobBytes, String(settings.largeBlobBytes));
      if (settings.partBytes !== undefined) fn.setEnvironment(ENV.partBytes, String(settings.partBytes));
    }
    if (settings.downloadConcurrency !== undefined) {
      functions.download.setEnvironment(ENV.downloadConcurrency, String(settings.downloadConcurrency));
    }
    this.eventsUrl = functions[WEBHOOK_STAGE].addWebhookUrl();
    this.functions = functions;
    this.topics = topics;
    for (const stage of STAGE_NAMES) {
      if ((STAGE_SPECS[stage] as { readsDeadLetters?: boolean }).readsDeadLetters) functions[stage].bindDeadLetterSearch(this.stageDeadLetterQueues());
    }
  }

  /** The queues a stage's messages wait in when they could not be done: where a stalled run's blobs are. */
  stageDeadLetterQueues(): DeadLetterQueue[] {
    return Object.values(this.topics).flatMap((t) => [t.failed, t.undelivered]);
  }

  /** Every dead-letter queue: each stage's failed and undelivered messages, and qualify's failed events. */
  deadLetterQueues(): DeadLetterQueue[] {
    const own = Object.values(this.functions).flatMap((f) => (f.ownsFailedQueue && f.failed ? [f.failed] : []));
    return [...own, ...this.stageDeadLetterQueues()];
  }
}
