/**
 * The six stages and the topics between them, wired from STAGE_DEPLOYMENTS: each
 * topic-fed stage's function subscribes to its topic; each function may publish
 * to exactly the topics its stage publishes to, read the secret, and do its own
 * job in the bucket.
 */
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { ENV } from '../../lambdas/core/env';
import { STAGE_NAMES, type StageName, type TopicStage } from '../../lambdas/core/stages';
import type { Naming } from '../naming';
import type { CopySettings } from '../settings';
import { STAGE_DEPLOYMENTS } from '../stage-deployments';
import type { CopyBucket } from './copy-bucket';
import type { CopySecret } from './copy-secret';
import type { DeadLetterQueue } from './dead-letter-queue';
import { PipelineFunction } from './pipeline-function';
import { StageTopic } from './stage-topic';

export interface CopyPipelineProps {
  readonly naming: Naming;
  readonly settings: CopySettings;
  readonly layers: lambda.ILayerVersion[];
  readonly secret: CopySecret;
  readonly bucket: CopyBucket;
}

/** A construct id from a stage name: `largefile-initializer` -> `LargefileInitializer`. */
export function pascal(stage: string): string {
  return stage.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase());
}

export class CopyPipeline extends Construct {
  readonly functions: Record<StageName, PipelineFunction>;
  readonly topics: Record<TopicStage, StageTopic>;
  /** Encrypts the messages between stages (and the operator topic's). */
  readonly topicKey: kms.Key;

  constructor(scope: Construct, id: string, props: CopyPipelineProps) {
    super(scope, id);
    const { naming, settings } = props;
    this.topicKey = new kms.Key(this, 'TopicKey', {
      description: `Encrypts the azs3copy ${naming.prefix} messages between stages`,
      enableKeyRotation: true,
    });

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
      });
    }
    const topics = {} as Record<TopicStage, StageTopic>;
    for (const stage of STAGE_NAMES) {
      if (stage === 'qualify') continue;
      topics[stage] = new StageTopic(this, `To${pascal(stage)}`, { naming, stage, key: this.topicKey });
      topics[stage].subscribe(functions[stage]);
    }

    for (const stage of STAGE_NAMES) {
      const fn = functions[stage];
      const deployment = STAGE_DEPLOYMENTS[stage];
      fn.bindSecret(props.secret);
      fn.bindBucket(props.bucket, deployment.bucketAccess);
      for (const target of deployment.publishesTo) fn.bindTopic(topics[target]);
    }

    // qualify fixes a run's settings; the other stages read them from the messages.
    const qualify = functions.qualify;
    qualify.setEnvironment(ENV.prefix, settings.destinationPrefix);
    if (settings.largeBlobBytes !== undefined) qualify.setEnvironment(ENV.largeBlobBytes, String(settings.largeBlobBytes));
    if (settings.partBytes !== undefined) qualify.setEnvironment(ENV.partBytes, String(settings.partBytes));
    if (settings.downloadConcurrency !== undefined) {
      functions.download.setEnvironment(ENV.downloadConcurrency, String(settings.downloadConcurrency));
    }

    this.functions = functions;
    this.topics = topics;
  }

  /** Every dead-letter queue: each function's failed events, each subscription's undelivered messages. */
  deadLetterQueues(): DeadLetterQueue[] {
    return [...Object.values(this.functions).map((f) => f.failed), ...Object.values(this.topics).map((t) => t.undelivered)];
  }
}
