/**
 * A Lambda function of this project with the defaults every one shares, the seven
 * stages and the operator's redrive alike: current Node.js on arm64, an esbuild
 * bundle (minified ESM with source maps), a role of its own that starts empty
 * but for writing to the function's own log group, and that log group with a
 * retention. Access is added only through bind methods, each of which grants and
 * sets the matching environment variable together; subclasses add the binds
 * their kind of function needs.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ENV, topicEnv } from '../../lambdas/core/env';
import { FUNCTION_BUNDLE, FUNCTION_NODE_OPTIONS, PROJECT_ROOT, entryOf, type FunctionEntry } from '../bundling';
import type { Naming } from '../naming';
import type { FunctionSizing } from '../stage-sizing';
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

export interface CopyFunctionProps {
  readonly naming: Naming;
  /** The function's physical name, from Naming. */
  readonly functionName: string;
  /** The handler's directory under `lambdas/`. */
  readonly entry: FunctionEntry;
  readonly sizing: FunctionSizing;
  /** Whose needs the role is limited to, for its description (`the download stage`). */
  readonly grantsFor: string;
  /** @default - none */
  readonly description?: string;
  /** Layers providing the modules the bundle leaves out. @default - none */
  readonly layers?: lambda.ILayerVersion[];
  /** Days the function's logs are kept. @default 30 */
  readonly logRetentionDays?: number;
}

export class CopyFunction extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: CopyFunctionProps) {
    super(scope, id);
    const { functionName } = props;

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/aws/lambda/${functionName}`,
      retention: (props.logRetentionDays ?? 30) as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs ${functionName}; grants only what ${props.grantsFor} needs`,
    });
    // In place of the AWSLambdaBasicExecutionRole managed policy: this function's own log group only.
    this.role.addToPolicy(
      new iam.PolicyStatement({ actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [this.logGroup.logGroupArn] }),
    );

    this.function = new nodejs.NodejsFunction(this, 'Function', {
      functionName,
      description: props.description,
      entry: entryOf(props.entry),
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
    });
  }

  /** Publish to a stage's topic, and the variable the handler finds it by. */
  bindTopic(topic: StageTopic): void {
    for (const statement of topic.publishStatements()) this.role.addToPolicy(statement);
    this.function.addEnvironment(topicEnv(topic.stage), topic.topic.topicArn);
  }

  /** A plain setting (no access attached). */
  setEnvironment(name: string, value: string): void {
    this.function.addEnvironment(name, value);
  }
}
