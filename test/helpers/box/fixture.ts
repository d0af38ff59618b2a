/**
 * A small cloud assembly written by hand, for testing the box itself without a
 * synth: one function (plain ESM, with a layer) whose behaviour the event picks,
 * fed by an SNS subscription and an SQS event source mapping, with an on-failure
 * destination, a dead-letter queue, a table, a generated secret, and resources
 * the box ignores or skips.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const FIXTURE = {
  stackName: 'fixture',
  functionName: 'box-fixture',
  ungrantedFunctionName: 'box-fixture-ungranted',
  topicName: 'fixture-events',
  stageTopicName: 'fixture-to-stage',
  timeoutSeconds: 2,
} as const;

const HANDLER = `
import { greeting } from 'box-greeting';
let invocations = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const handler = async (event, context) => {
  invocations++;
  if (event?.Records?.[0]?.eventSource === 'aws:sqs') {
    console.log(JSON.stringify({ sqsEvent: event }));
    await sleep(300);
    const failures = [];
    for (const record of event.Records) {
      if (record.body === 'throw') throw new Error('a record asked to throw');
      if (record.body.startsWith('fail')) failures.push({ itemIdentifier: record.messageId });
    }
    return { batchItemFailures: failures };
  }
  if (event?.Records?.[0]?.EventSource === 'aws:sns') {
    if (event.Records[0].Sns.Message === 'fail') throw new Error('the notification says fail');
    return { ok: true };
  }
  switch (event?.action) {
    case 'hello':
      return {
        greeting: greeting(),
        invocations,
        env: process.env,
        remainingMs: context.getRemainingTimeInMillis(),
        requestId: context.awsRequestId,
        functionName: context.functionName,
      };
    case 'sleep':
      await sleep(event.ms);
      return { slept: event.ms };
    case 'throw':
      throw new TypeError('asked to throw');
    case 'crash':
      setTimeout(() => { throw new RangeError('thrown outside the handler'); }, 10);
      await sleep(2000);
      return 'not reached';
    default:
      return { echo: event };
  }
};
`;

const GREETING = `export const greeting = () => 'hello from the layer';\n`;

const asset = (key: string) => ({ S3Bucket: 'cdk-assets', S3Key: key });
const allow = (Action: string | string[], Resource: unknown) => ({ Effect: 'Allow', Action, Resource });
const trust = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] };

export const FIXTURE_TEMPLATE = {
  Parameters: { Stage: { Type: 'String', Default: 'test' } },
  Conditions: { IsProd: { 'Fn::Equals': [{ Ref: 'Stage' }, 'prod'] } },
  Resources: {
    Role: {
      Type: 'AWS::IAM::Role',
      Properties: {
        AssumeRolePolicyDocument: trust,
        Policies: [{ PolicyName: 'inline', PolicyDocument: { Version: '2012-10-17', Statement: [allow('sqs:SendMessage', { 'Fn::GetAtt': ['Failed', 'Arn'] })] } }],
      },
    },
    RolePolicy: {
      Type: 'AWS::IAM::Policy',
      Properties: {
        PolicyName: 'poll',
        Roles: [{ Ref: 'Role' }],
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            allow(['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'], [{ 'Fn::GetAtt': ['Work', 'Arn'] }, { 'Fn::GetAtt': ['StageQueue', 'Arn'] }]),
            allow('dynamodb:PutItem', { 'Fn::GetAtt': ['Table', 'Arn'] }),
            // Objects, but neither s3:ListBucket nor s3:PutObjectTagging.
            allow(['s3:GetObject', 's3:PutObject'], { 'Fn::Join': ['', [{ 'Fn::GetAtt': ['Bucket', 'Arn'] }, '/*']] }),
          ],
        },
      },
    },
    UngrantedRole: { Type: 'AWS::IAM::Role', Properties: { AssumeRolePolicyDocument: trust } },
    Layer: { Type: 'AWS::Lambda::LayerVersion', Properties: { Content: asset('layer.zip'), LayerName: 'fixture-greeting' } },
    Function: {
      Type: 'AWS::Lambda::Function',
      DependsOn: ['RolePolicy'],
      Properties: {
        FunctionName: FIXTURE.functionName,
        Code: asset('function.zip'),
        Handler: 'index.handler',
        Runtime: 'nodejs24.x',
        Timeout: FIXTURE.timeoutSeconds,
        MemorySize: 256,
        ReservedConcurrentExecutions: 3,
        Role: { 'Fn::GetAtt': ['Role', 'Arn'] },
        Layers: [{ Ref: 'Layer' }],
        Environment: {
          Variables: {
            TOPIC: { Ref: 'Topic' },
            WHERE: { 'Fn::Sub': '${AWS::Region}/${AWS::AccountId}/${Work.QueueName}/${!Literal}' },
            SECOND: { 'Fn::Select': [1, { 'Fn::Split': ['-', 'a-b-c'] }] },
            TABLE: { Ref: 'Table' },
            MODE: { 'Fn::If': ['IsProd', 'prod', { 'Fn::Join': ['', ['not-', { Ref: 'Stage' }]] }] },
          },
        },
      },
    },
    UngrantedFunction: {
      Type: 'AWS::Lambda::Function',
      Properties: {
        FunctionName: FIXTURE.ungrantedFunctionName,
        Code: asset('function.zip'),
        Handler: 'index.handler',
        Runtime: 'nodejs24.x',
        Role: { 'Fn::GetAtt': ['UngrantedRole', 'Arn'] },
        Layers: [{ Ref: 'Layer' }],
      },
    },
    Failed: { Type: 'AWS::SQS::Queue', Properties: { MessageRetentionPeriod: 1209600 } },
    WorkDlq: { Type: 'AWS::SQS::Queue', Properties: { QueueName: 'fixture-work-dlq' } },
    Work: {
      Type: 'AWS::SQS::Queue',
      Properties: {
        QueueName: 'fixture-work',
        VisibilityTimeout: 2, // at least the function's timeout, or CloudFormation refuses the mapping
        RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': ['WorkDlq', 'Arn'] }, maxReceiveCount: 2 },
      },
    },
    Untouched: { Type: 'AWS::SQS::Queue', Properties: { QueueName: 'fixture-untouched' } },
    Topic: { Type: 'AWS::SNS::Topic', Properties: { TopicName: FIXTURE.topicName } },
    // The SNS -> SQS -> Lambda shape: moto delivers to the queue, the mapping feeds the function.
    StageTopic: { Type: 'AWS::SNS::Topic', Properties: { TopicName: FIXTURE.stageTopicName } },
    StageQueue: { Type: 'AWS::SQS::Queue', Properties: { QueueName: 'fixture-stage', VisibilityTimeout: 5 } },
    StageQueuePolicy: {
      Type: 'AWS::SQS::QueuePolicy',
      Properties: {
        Queues: [{ Ref: 'StageQueue' }],
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [{
            Effect: 'Allow', Principal: { Service: 'sns.amazonaws.com' }, Action: 'sqs:SendMessage', Resource: { 'Fn::GetAtt': ['StageQueue', 'Arn'] },
            Condition: { ArnEquals: { 'aws:SourceArn': { Ref: 'StageTopic' } } },
          }],
        },
      },
    },
    StageSubscription: {
      Type: 'AWS::SNS::Subscription',
      Properties: { Protocol: 'sqs', TopicArn: { Ref: 'StageTopic' }, Endpoint: { 'Fn::GetAtt': ['StageQueue', 'Arn'] }, RawMessageDelivery: true },
    },
    StageMapping: {
      Type: 'AWS::Lambda::EventSourceMapping',
      Properties: {
        EventSourceArn: { 'Fn::GetAtt': ['StageQueue', 'Arn'] },
        FunctionName: { Ref: 'Function' },
        BatchSize: 10,
        MaximumBatchingWindowInSeconds: 1,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
      },
    },
    Subscription: {
      Type: 'AWS::SNS::Subscription',
      Properties: { Protocol: 'lambda', TopicArn: { Ref: 'Topic' }, Endpoint: { 'Fn::GetAtt': ['Function', 'Arn'] } },
    },
    InvokeConfig: {
      Type: 'AWS::Lambda::EventInvokeConfig',
      Properties: {
        FunctionName: { Ref: 'Function' },
        Qualifier: '$LATEST',
        MaximumRetryAttempts: 2,
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['Failed', 'Arn'] } } },
      },
    },
    Mapping: {
      Type: 'AWS::Lambda::EventSourceMapping',
      Properties: {
        EventSourceArn: { 'Fn::GetAtt': ['Work', 'Arn'] },
        FunctionName: { Ref: 'Function' },
        BatchSize: 5,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        ScalingConfig: { MaximumConcurrency: 2 },
      },
    },
    UngrantedMapping: {
      Type: 'AWS::Lambda::EventSourceMapping',
      Properties: { EventSourceArn: { 'Fn::GetAtt': ['Untouched', 'Arn'] }, FunctionName: { Ref: 'UngrantedFunction' } },
    },
    Bucket: { Type: 'AWS::S3::Bucket', Properties: { VersioningConfiguration: { Status: 'Enabled' } } },
    Table: {
      Type: 'AWS::DynamoDB::Table',
      Properties: {
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        TimeToLiveSpecification: { AttributeName: 'expires', Enabled: true },
      },
    },
    Secret: {
      Type: 'AWS::SecretsManager::Secret',
      Properties: { GenerateSecretString: { SecretStringTemplate: '{"user":"box"}', GenerateStringKey: 'password', PasswordLength: 16 } },
    },
    Alarm: { Type: 'AWS::CloudWatch::Alarm', Properties: { AlarmName: 'fixture-alarm', MetricName: 'Errors', Namespace: 'AWS/Lambda' } },
    Custom: { Type: 'Custom::Thing', Properties: { ServiceToken: { 'Fn::GetAtt': ['Function', 'Arn'] } } },
    ProdOnly: { Type: 'AWS::SQS::Queue', Condition: 'IsProd', Properties: {} },
  },
  Outputs: {
    Queue: { Value: { Ref: 'Work' } },
    BucketName: { Value: { Ref: 'Bucket' } },
    SecretArn: { Value: { Ref: 'Secret' } },
    Custom: { Value: { 'Fn::GetAtt': ['Custom', 'Result'] } },
  },
};

/** Write the fixture's cloud assembly into `dir` (as `cdk synth` would lay it out), `edit`ed, and return `dir`. */
export function writeFixtureAssembly(dir: string, edit?: (template: typeof FIXTURE_TEMPLATE) => void): string {
  const template = structuredClone(FIXTURE_TEMPLATE);
  edit?.(template);
  const write = (path: string, text: string) => {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  };
  write('asset.function/index.mjs', HANDLER);
  write('asset.layer/nodejs/node_modules/box-greeting/package.json', JSON.stringify({ name: 'box-greeting', type: 'module', exports: './index.mjs' }));
  write('asset.layer/nodejs/node_modules/box-greeting/index.mjs', GREETING);
  write('fixture.template.json', JSON.stringify(template, null, 1));
  const file = (path: string, key: string) => ({ source: { path, packaging: 'zip' }, destinations: { current: { bucketName: 'cdk-assets', objectKey: key } } });
  write('fixture.assets.json', JSON.stringify({ version: '55.0.0', files: { fn: file('asset.function', 'function.zip'), layer: file('asset.layer', 'layer.zip') } }));
  write(
    'manifest.json',
    JSON.stringify({
      version: '55.0.0',
      artifacts: {
        'fixture.assets': { type: 'cdk:asset-manifest', properties: { file: 'fixture.assets.json' } },
        fixture: {
          type: 'aws:cloudformation:stack',
          environment: 'aws://123456789012/eu-west-1',
          properties: { templateFile: 'fixture.template.json', stackName: FIXTURE.stackName },
        },
      },
    }),
  );
  return dir;
}
