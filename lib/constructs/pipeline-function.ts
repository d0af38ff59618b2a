/**
 * One stage's Lambda function with the defaults every stage shares: current
 * Node.js on arm64, an esbuild bundle (minified ESM with source maps) that takes
 * the Azure SDK from the layers, a role of its own that starts empty, a log group
 * with a retention, and a dead-letter destination for failed asynchronous
 * invocations. Access is added only through the bind methods, each of which
 * grants and sets the matching environment variable together.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { acknowledgeWildcardResources } from '../nag';
import { Construct } from 'constructs';
import { ENV, topicEnv } from '../../lambdas/core/env';
import type { StageName } from '../../lambdas/core/stages';
import { FUNCTION_BUNDLE, FUNCTION_NODE_OPTIONS, PROJECT_ROOT, entryOf } from '../bundling';
import type { Naming } from '../naming';
import type { BucketAccess, FunctionSizing } from '../stage-deployments';
import type { CopyBucket } from './copy-bucket';
import type { CopySecret } from './copy-secret';
import { DeadLetterQueue } from './dead-letter-queue';
import type { StageTopic } from './stage-topic';

/** The Lambda runtime; its major version is the esbuild target in lib/bundling.ts. */
export const LAMBDA_RUNTIME = lambda.Runtime.NODEJS_24_X;
export const LAMBDA_ARCHITECTURE = lambda.Architecture.ARM_64;

/** NodejsFunction's bundling options, derived from the shared esbuild settings. */
export function functionBundling(): nodejs.BundlingOptions {
  return {
    forceDockerBundling: false,
    format: nodejs.OutputFormat.ESM,
    target: FUNCTION_BUNDLE.target,
    minify: FUNCTION_BUNDLE.minify,
    sourceMap: FUNCTION_BUNDLE.sourcemap,
    sourcesContent: FUNCTION_BUNDLE.sourcesContent,
    keepNames: FUNCTION_BUNDLE.keepNames,
    mainFields: [...FUNCTION_BUNDLE.mainFields],
    banner: FUNCTION_BUNDLE.banner.js,
    logLevel: nodejs.LogLevel.WARNING,
    // Replaces NodejsFunction's default (@aws-sdk/*): the AWS SDK is bundled, at the version tested.
    externalModules: [...FUNCTION_BUNDLE.external],
    esbuildArgs: { '--legal-comments': FUNCTION_BUNDLE.legalComments },
  };
}

export interface PipelineFunctionProps {
  readonly naming: Naming;
  readonly stage: StageName;
  readonly sizing: FunctionSizing;
  /** @default - none */
  readonly description?: string;
  /** Layers providing the modules the bundle leaves out. */
  readonly layers: lambda.ILayerVersion[];
  /** Days the function's logs are kept. @default 30 */
  readonly logRetentionDays?: number;
}

export class PipelineFunction extends Construct {
  readonly stage: StageName;
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  /** Invocations that failed after Lambda's two retries, or that waited too long. */
  readonly failed: DeadLetterQueue;

  constructor(scope: Construct, id: string, props: PipelineFunctionProps) {
    super(scope, id);
    this.stage = props.stage;
    const functionName = props.naming.functionName(props.stage);

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/aws/lambda/${functionName}`,
      retention: (props.logRetentionDays ?? 30) as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs ${functionName}; grants only what the ${props.stage} stage needs`,
    });
    // In place of the AWSLambdaBasicExecutionRole managed policy: this function's own log group only.
    this.role.addToPolicy(
      new iam.PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [this.logGroup.logGroupArn] }),
    );
    this.failed = new DeadLetterQueue(this, 'Failed', {
      queueName: props.naming.failedQueueName(props.stage),
      holds: `events ${functionName} failed on after Lambda's retries`,
    });

    this.function = new nodejs.NodejsFunction(this, 'Function', {
      functionName,
      description: props.description,
      entry: entryOf(props.stage),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: `${PROJECT_ROOT}/package-lock.json`,
      runtime: LAMBDA_RUNTIME,
      architecture: LAMBDA_ARCHITECTURE,
      memorySize: props.sizing.memoryMiB,
      timeout: Duration.minutes(props.sizing.timeoutMinutes),
      reservedConcurrentExecutions: props.sizing.reservedConcurrency,
      role: this.role,
      logGroup: this.logGroup,
      layers: props.layers,
      bundling: functionBundling(),
      environment: { NODE_OPTIONS: FUNCTION_NODE_OPTIONS, [ENV.pipeline]: props.naming.prefix },
      // Asynchronous invocations (SNS, the schedule): two retries, then the failed-events queue.
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      onFailure: new destinations.SqsDestination(this.failed.queue),
    });
  }

  /** Read the configuration secret: GetSecretValue and its key, and the variable that names it. */
  bindSecret(secret: CopySecret): void {
    for (const statement of secret.readStatements()) this.role.addToPolicy(statement);
    this.function.addEnvironment(ENV.secretArn, secret.secret.secretArn);
  }

  /** Publish to a stage's topic, and the variable the handler finds it by. */
  bindTopic(topic: StageTopic): void {
    for (const statement of topic.publishStatements()) this.role.addToPolicy(statement);
    this.function.addEnvironment(topicEnv(topic.stage), topic.topic.topicArn);
  }

  /** Do exactly `access` in the destination bucket, and the variable that names it. */
  bindBucket(bucket: CopyBucket, access: BucketAccess): void {
    for (const statement of bucket.accessStatements(access)) this.role.addToPolicy(statement);
    acknowledgeWildcardResources(
      this.role,
      bucket.wildcardResources(access),
      'Copies land under any key a run names (destination prefix + blob name), so object actions apply to the bucket\'s objects; ' +
        'actions on the pipeline\'s own state are limited to the ".azs3copy-state/" prefix.',
    );
    this.function.addEnvironment(ENV.bucket, bucket.bucket.bucketName);
  }

  /** A plain setting (no access attached). */
  setEnvironment(name: string, value: string): void {
    this.function.addEnvironment(name, value);
  }
}
