/**
 * The synthesized template: the seven stage functions and the redrive, and their
 * settings, which topic feeds which queue and which queue which function, which
 * variables point to which topic, the events function's public URL, the
 * dead-letter queues and their alarms, the run table, the schedules, the secret,
 * the bucket, the dashboard and the outputs.
 */
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { topicEnv, ENV } from '../../lambdas/core/env';
import { METRIC, METRICS_NAMESPACE } from '../../lambdas/core/metrics';
import { SECRET_TEMPLATE } from '../../lambdas/core/config';
import { MAX_RECEIVES } from '../../lambdas/core/retry-policy';
import { STAGE_NAMES, TOPIC_STAGE_NAMES, type TopicStage } from '../../lambdas/core/stages/specs';
import { FUNCTION_NODE_OPTIONS, NODE_MAJOR } from '../../lib/bundling';
import { flat, functionId, resourcesOf, synthesize, type Synthesized } from './synth';

const NAMES = {
  qualify: 'etl-lambda01-qualify',
  'find-blobs': 'etl-lambda02-find-blobs',
  download: 'etl-lambda03-download',
  'largefile-initializer': 'etl-lambda04-largefile-initializer',
  parter: 'etl-lambda05-parter',
  recombinator: 'etl-lambda06-recombinator',
  events: 'etl-lambda07-events',
} as const;
const REDRIVE = 'etl-redrive';
const TOPIC_STAGES: readonly TopicStage[] = TOPIC_STAGE_NAMES;
/** The stages that fix a run's settings: qualify starts runs, events the hourly run its events count in. */
const RUN_STARTERS = ['qualify', 'events'] as const;

let s: Synthesized;
/** A second deployment: another prefix, a versioned bucket, no schedule. */
let other: Synthesized;
beforeAll(() => {
  s = synthesize({ prefix: 'etl', alarmEmail: 'ops@example.com' });
  other = synthesize({ prefix: 'etl2', versioned: 'true', schedule: 'off' });
}, 180_000);

const fnProps = (stage: keyof typeof NAMES) => s.json.Resources[functionId(s.json, NAMES[stage])].Properties;
const redriveProps = () => s.json.Resources[functionId(s.json, REDRIVE)].Properties;
/** The stage a topic (by logical id) feeds, from its name. */
const topicIdOf = (stage: TopicStage) =>
  Object.entries(resourcesOf(s.json, 'AWS::SNS::Topic')).find(([, t]) => t.Properties.TopicName === `etl-to-${stage}`)![0];

describe('functions', () => {
  it('deploys the seven stages under their numbered names, and the redrive beside them, on current Node.js and arm64', () => {
    expect(Object.keys(NAMES).sort()).toEqual([...STAGE_NAMES].sort());
    const names = Object.values(resourcesOf(s.json, 'AWS::Lambda::Function')).map((f) => f.Properties.FunctionName);
    expect(names.sort()).toEqual([...Object.values(NAMES), REDRIVE].sort());
    expect(names.filter((n) => /-lambda\d\d-/.test(n)).sort()).toEqual(STAGE_NAMES.map((stage, i) => `etl-lambda0${i + 1}-${stage}`).sort());
    for (const stage of STAGE_NAMES) {
      const props = fnProps(stage);
      expect(props.Runtime).toBe(`nodejs${NODE_MAJOR}.x`);
      expect(props.Architectures).toEqual(['arm64']);
      expect(props.Handler).toBe('index.handler');
      expect(props.Environment.Variables.NODE_OPTIONS).toBe(FUNCTION_NODE_OPTIONS);
      expect(props.Environment.Variables[ENV.pipeline]).toBe('etl');
    }
  });

  it('reserves no concurrency, so a deploy needs no account quota; the queues bound the stages instead', () => {
    for (const props of Object.values(resourcesOf(s.json, 'AWS::Lambda::Function'))) expect(props.Properties.ReservedConcurrentExecutions).toBeUndefined();
    const ceiling = (stage: TopicStage) => mappingOf(stage).Properties.ScalingConfig?.MaximumConcurrency;
    expect(ceiling('find-blobs')).toBe(2);
    for (const stage of TOPIC_STAGES) expect(ceiling(stage), stage).toBeGreaterThanOrEqual(2);
    expect(ceiling('recombinator')).toBeLessThanOrEqual(10);
    expect(ceiling('parter')).toBeGreaterThan(ceiling('recombinator'));
    // A stage's ceiling can be set, and a reservation asked for explicitly.
    const tuned = synthesize({ functions: JSON.stringify({ parter: { maxConcurrency: 20, reservedConcurrency: 30 } }) });
    const parter = Object.values(resourcesOf(tuned.json, 'AWS::Lambda::Function')).find((f) => f.Properties.FunctionName === NAMES.parter)!;
    expect(parter.Properties.ReservedConcurrentExecutions).toBe(30);
    expect(Object.values(resourcesOf(tuned.json, 'AWS::Lambda::EventSourceMapping')).map((m) => m.Properties.ScalingConfig?.MaximumConcurrency)).toContain(20);
  });

  it('gives every function both Azure SDK layers', () => {
    const layers = Object.keys(resourcesOf(s.json, 'AWS::Lambda::LayerVersion'));
    expect(layers).toHaveLength(2);
    for (const stage of STAGE_NAMES) expect(fnProps(stage).Layers.map(flat).sort()).toEqual(layers.map((l) => `<${l}>`).sort());
    s.template.hasResourceProperties('AWS::Lambda::LayerVersion', {
      LayerName: 'etl-azure-identity',
      CompatibleRuntimes: [`nodejs${NODE_MAJOR}.x`],
      Description: Match.stringLikeRegexp('^@azure/identity@\\d+\\.\\d+\\.\\d+'),
    });
    s.template.hasResourceProperties('AWS::Lambda::LayerVersion', {
      LayerName: 'etl-azure-storage',
      Description: Match.stringLikeRegexp('^@azure/storage-blob@\\d+\\.\\d+\\.\\d+'),
    });
  });

  it('gives every function the secret and the bucket, and only the stages that start runs (qualify, events) the run settings', () => {
    const runSettings = [ENV.prefix, ENV.stallAfterSeconds, ENV.partTimeoutSeconds, ENV.largeBlobBytes, ENV.partBytes];
    for (const stage of STAGE_NAMES) {
      const env = fnProps(stage).Environment.Variables;
      expect(flat(env[ENV.secretArn])).toMatch(/^<ConfigSecret[0-9A-F]{8}>$/);
      expect(flat(env[ENV.bucket])).toMatch(/^<DestinationBucket[0-9A-F]{8}>$/);
      if (!(RUN_STARTERS as readonly string[]).includes(stage)) for (const name of runSettings) expect(env[name], `${stage} ${name}`).toBeUndefined();
    }
    for (const stage of RUN_STARTERS) {
      const env = fnProps(stage).Environment.Variables;
      expect(env[ENV.prefix], stage).toBe('');
      expect(env[ENV.stallAfterSeconds], stage).toBe('1800');
      expect(env[ENV.partTimeoutSeconds], stage).toBe(String(fnProps('parter').Timeout));
    }
    // Sizes given by context reach both, so a blob is routed the same way whether listed or announced by Event Grid.
    const sized = synthesize({ largeBlobBytes: 8 * 1024 * 1024, partBytes: 5 * 1024 * 1024 });
    for (const stage of RUN_STARTERS) {
      const env = Object.values(resourcesOf(sized.json, 'AWS::Lambda::Function')).find((f) => f.Properties.FunctionName === NAMES[stage])!.Properties.Environment.Variables;
      expect([env[ENV.largeBlobBytes], env[ENV.partBytes]], stage).toEqual([String(8 * 1024 * 1024), String(5 * 1024 * 1024)]);
    }
  });

  it('deploys the redrive small, one at a time, with no layer, no secret and no bucket, logging to its own group', () => {
    const props = redriveProps();
    expect(props.Runtime).toBe(`nodejs${NODE_MAJOR}.x`);
    expect(props.Architectures).toEqual(['arm64']);
    expect(props.Handler).toBe('index.handler');
    expect([props.MemorySize, props.ReservedConcurrentExecutions]).toEqual([256, undefined]);
    expect(props.Timeout).toBeGreaterThanOrEqual(5 * 60);
    expect(props.Timeout).toBeLessThanOrEqual(15 * 60);
    expect(props.Layers).toBeUndefined();
    const env = props.Environment.Variables;
    expect(env.NODE_OPTIONS).toBe(FUNCTION_NODE_OPTIONS);
    expect(env[ENV.pipeline]).toBe('etl');
    for (const name of [ENV.secretArn, ENV.bucket, ENV.prefix, ENV.runTable]) expect(env[name], name).toBeUndefined();
    const logGroupId = props.LoggingConfig.LogGroup.Ref;
    expect(s.json.Resources[logGroupId].Properties).toMatchObject({ LogGroupName: `/aws/lambda/${REDRIVE}`, RetentionInDays: 30 });
  });

  it('sends failed asynchronous invocations (the schedule\'s; an older release\'s SNS events) to the function\'s failed queue, after two retries', () => {
    for (const stage of STAGE_NAMES.filter((x) => x !== 'events')) {
      const id = functionId(s.json, NAMES[stage]);
      const config = Object.values(resourcesOf(s.json, 'AWS::Lambda::EventInvokeConfig')).find((c) => c.Properties.FunctionName.Ref === id)!;
      expect(config.Properties.MaximumRetryAttempts).toBe(2);
      const queueId = config.Properties.DestinationConfig.OnFailure.Destination['Fn::GetAtt'][0];
      expect(s.json.Resources[queueId].Properties.QueueName).toBe(`${NAMES[stage]}-failed`);
    }
  });
});

/** The event source mapping that feeds a stage's function. */
const mappingOf = (stage: TopicStage) =>
  Object.values(resourcesOf(s.json, 'AWS::Lambda::EventSourceMapping')).find((m) => flat(m.Properties.FunctionName) === `<${functionId(s.json, NAMES[stage])}>`)!;
const queueIdNamed = (name: string) => Object.entries(resourcesOf(s.json, 'AWS::SQS::Queue')).find(([, q]) => q.Properties.QueueName === name)![0];

describe('topics and queues', () => {
  it('subscribes one queue to each stage\'s topic (raw delivery, a dead-letter queue for what SNS cannot deliver), and nothing else', () => {
    const subscriptions = Object.values(resourcesOf(s.json, 'AWS::SNS::Subscription')).filter((x) => x.Properties.Protocol !== 'email');
    expect(subscriptions).toHaveLength(TOPIC_STAGES.length);
    for (const stage of TOPIC_STAGES) {
      const topicId = topicIdOf(stage);
      expect(s.json.Resources[topicId].Properties.KmsMasterKeyId).toBeDefined();
      const subs = subscriptions.filter((x) => x.Properties.TopicArn.Ref === topicId);
      expect(subs).toHaveLength(1);
      expect(subs[0].Properties).toMatchObject({ Protocol: 'sqs', RawMessageDelivery: true });
      expect(flat(subs[0].Properties.Endpoint)).toBe(`<${queueIdNamed(`${NAMES[stage]}-queue`)}.Arn>`);
      const dlqId = subs[0].Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0];
      expect(s.json.Resources[dlqId].Properties.QueueName).toBe(`etl-to-${stage}-undelivered`);
    }
  });

  it('feeds each stage\'s function from its queue, a message at a time, reporting failures per message', () => {
    const mappings = Object.values(resourcesOf(s.json, 'AWS::Lambda::EventSourceMapping'));
    expect(mappings).toHaveLength(TOPIC_STAGES.length);
    for (const stage of TOPIC_STAGES) {
      const mapping = mappingOf(stage);
      expect(flat(mapping.Properties.EventSourceArn)).toBe(`<${queueIdNamed(`${NAMES[stage]}-queue`)}.Arn>`);
      expect(mapping.Properties).toMatchObject({ BatchSize: 1, FunctionResponseTypes: ['ReportBatchItemFailures'] });
    }
  });

  it('gives each stage queue days of retention, a visibility timeout of six times its function\'s, and a dead-letter queue after the last try', () => {
    for (const stage of TOPIC_STAGES) {
      const queue = s.json.Resources[queueIdNamed(`${NAMES[stage]}-queue`)].Properties;
      expect(queue.MessageRetentionPeriod).toBeGreaterThanOrEqual(4 * 86400);
      expect(queue.VisibilityTimeout).toBe(6 * fnProps(stage).Timeout);
      expect(queue.RedrivePolicy.maxReceiveCount).toBe(MAX_RECEIVES);
      expect(flat(queue.RedrivePolicy.deadLetterTargetArn)).toBe(`<${queueIdNamed(`${NAMES[stage]}-failed`)}.Arn>`);
    }
  });

  it('points each function\'s topic variables at exactly the topics its stage publishes to', () => {
    const expected: Record<string, TopicStage[]> = {
      qualify: ['find-blobs'],
      'find-blobs': ['find-blobs', 'download', 'largefile-initializer'],
      // Blobs that hit passing errors go round again; one that grew past the large-blob size goes to the initializer.
      download: ['download', 'largefile-initializer'],
      'largefile-initializer': ['parter', 'recombinator', 'download', 'largefile-initializer'],
      parter: ['recombinator', 'largefile-initializer', 'download'],
      // Verification of a large copy continues in the next invocation; a vanished upload re-plans the blob.
      recombinator: ['recombinator', 'largefile-initializer', 'download'],
      // A created blob is routed as the listing routes it: small ones to download, large ones to the initializer.
      events: ['download', 'largefile-initializer'],
    };
    for (const stage of STAGE_NAMES) {
      const env = fnProps(stage).Environment.Variables as Record<string, unknown>;
      const topicVars = Object.keys(env).filter((k) => k.startsWith('AZS3COPY_TOPIC_')).sort();
      expect(topicVars, stage).toEqual(expected[stage].map(topicEnv).sort());
      for (const target of expected[stage]) expect(flat(env[topicEnv(target)])).toBe(`<${topicIdOf(target)}>`);
    }
  });

  it('points the redrive\'s topic variables at every stage\'s topic', () => {
    const env = redriveProps().Environment.Variables as Record<string, unknown>;
    expect(Object.keys(env).filter((k) => k.startsWith('AZS3COPY_TOPIC_')).sort()).toEqual(TOPIC_STAGES.map(topicEnv).sort());
    for (const stage of TOPIC_STAGES) expect(flat(env[topicEnv(stage)]), stage).toBe(`<${topicIdOf(stage)}>`);
  });

  it('starts the redrive only by hand: no subscription, schedule, event source, permission or asynchronous setting', () => {
    const id = functionId(s.json, REDRIVE);
    const mentions = (type: string) =>
      Object.entries(resourcesOf(s.json, type)).filter(([, r]) => JSON.stringify(r.Properties).includes(`"${id}"`)).map(([rid]) => rid);
    for (const type of ['AWS::SNS::Subscription', 'AWS::Events::Rule', 'AWS::Lambda::EventSourceMapping', 'AWS::Lambda::Permission', 'AWS::Lambda::EventInvokeConfig']) {
      expect(mentions(type), type).toEqual([]);
    }
    // Nothing but its outputs refers to it.
    const referrers = Object.entries(s.json.Resources as Record<string, any>)
      .filter(([rid, r]) => rid !== id && JSON.stringify(r).includes(`"${id}"`))
      .map(([rid]) => rid);
    expect(referrers).toEqual([]);
  });

  it('lets SNS write to each subscription dead-letter queue only from its own topic', () => {
    for (const stage of TOPIC_STAGES) {
      const queueId = Object.entries(resourcesOf(s.json, 'AWS::SQS::Queue')).find(([, q]) => q.Properties.QueueName === `etl-to-${stage}-undelivered`)![0];
      const policy = Object.values(resourcesOf(s.json, 'AWS::SQS::QueuePolicy')).find((p) => p.Properties.Queues.some((q: any) => q.Ref === queueId))!;
      const allow = policy.Properties.PolicyDocument.Statement.find((st: any) => st.Effect === 'Allow');
      expect(allow.Principal).toEqual({ Service: 'sns.amazonaws.com' });
      expect(flat(allow.Condition.ArnEquals['aws:SourceArn'])).toBe(`<${topicIdOf(stage)}>`);
    }
  });
});

describe('dead letters and alarms', () => {
  it('alarms on the first message in each of the eleven dead-letter queues, notifying the operator topic', () => {
    const deadLetterQueues = Object.values(resourcesOf(s.json, 'AWS::SQS::Queue')).filter((q) => /-(failed|undelivered)$/.test(q.Properties.QueueName));
    // qualify's failed events, and each queue-fed stage's failed and undelivered messages (events has no queue).
    expect(deadLetterQueues.map((q) => q.Properties.QueueName).sort()).toEqual([
      `${NAMES.qualify}-failed`, ...TOPIC_STAGES.flatMap((stage) => [`${NAMES[stage]}-failed`, `etl-to-${stage}-undelivered`]),
    ].sort());
    expect(deadLetterQueues).toHaveLength(11);
    const alarms = Object.values(resourcesOf(s.json, 'AWS::CloudWatch::Alarm')).filter((a) => a.Properties.Namespace === 'AWS/SQS');
    expect(alarms).toHaveLength(deadLetterQueues.length);
    const operator = Object.entries(resourcesOf(s.json, 'AWS::SNS::Topic')).find(([, t]) => t.Properties.TopicName === 'etl-operator')![0];
    for (const alarm of alarms) {
      expect(alarm.Properties).toMatchObject({
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Namespace: 'AWS/SQS',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      });
      expect(alarm.Properties.AlarmActions.map(flat)).toEqual([`<${operator}>`]);
    }
    s.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com', TopicArn: { Ref: operator } });
  });

  it('alarms when a run ends with failed blobs or stalls, from the metrics the run state emits, notifying the operator topic', () => {
    const operator = Object.entries(resourcesOf(s.json, 'AWS::SNS::Topic')).find(([, t]) => t.Properties.TopicName === 'etl-operator')![0];
    const runAlarms = Object.values(resourcesOf(s.json, 'AWS::CloudWatch::Alarm')).filter((a) => a.Properties.Namespace === METRICS_NAMESPACE);
    expect(runAlarms.map((a) => [a.Properties.AlarmName, a.Properties.MetricName]).sort()).toEqual([
      ['etl-run-ended-with-failures', METRIC.runsWithFailures],
      ['etl-run-stalled', METRIC.runsStalled],
    ]);
    for (const alarm of runAlarms) {
      expect(alarm.Properties.Dimensions).toEqual([{ Name: 'Pipeline', Value: 'etl' }, { Name: 'service', Value: 'azs3copy' }]);
      expect(alarm.Properties.AlarmActions.map(flat)).toEqual([`<${operator}>`]);
    }
    // Every stage may end a run, and then tells the operator topic.
    for (const stage of STAGE_NAMES) expect(flat(fnProps(stage).Environment.Variables[ENV.operatorTopic])).toBe(`<${operator}>`);
  });

  it('lets CloudWatch alarms use the key of the encrypted operator topic', () => {
    const operator = Object.values(resourcesOf(s.json, 'AWS::SNS::Topic')).find((t) => t.Properties.TopicName === 'etl-operator')!;
    const keyId = operator.Properties.KmsMasterKeyId['Fn::GetAtt'][0];
    const statements = s.json.Resources[keyId].Properties.KeyPolicy.Statement;
    expect(statements).toContainEqual(expect.objectContaining({ Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: ['kms:Decrypt', 'kms:GenerateDataKey'] }));
  });
});

describe('schedule', () => {
  it('invokes qualify daily by default, and every five minutes to check the current run for a stall', () => {
    const rules = Object.values(resourcesOf(s.json, 'AWS::Events::Rule'));
    expect(rules.map((r) => r.Properties.ScheduleExpression).sort()).toEqual(['rate(1 day)', 'rate(5 minutes)']);
    for (const rule of rules) expect(rule.Properties.Targets.map((t: any) => flat(t.Arn))).toEqual([`<${functionId(s.json, NAMES.qualify)}.Arn>`]);
    const watch = rules.find((r) => r.Properties.ScheduleExpression === 'rate(5 minutes)')!;
    expect(JSON.parse(watch.Properties.Targets[0].Input)).toEqual({ watch: true });
    expect(fnProps('qualify').Environment.Variables[ENV.stallAfterSeconds]).toBe('1800');
    s.template.hasResourceProperties('AWS::Lambda::Permission', {
      Principal: 'events.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [functionId(s.json, NAMES.qualify), 'Arn'] },
    });
  });

  it('is left out with schedule=off, for runs started by hand only; the stall check stays', () => {
    expect(Object.values(resourcesOf(other.json, 'AWS::Events::Rule')).map((r) => r.Properties.ScheduleExpression)).toEqual(['rate(5 minutes)']);
  });
});

describe('run table', () => {
  it('keeps the runs\' state on demand, encrypted, expiring with TTL, and every function may use it', () => {
    const [id, table] = Object.entries(resourcesOf(s.json, 'AWS::DynamoDB::Table'))[0];
    expect(table.Properties).toMatchObject({
      TableName: 'etl-azs3copy-runs',
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      SSESpecification: { SSEEnabled: true },
    });
    for (const stage of STAGE_NAMES) expect(flat(fnProps(stage).Environment.Variables[ENV.runTable])).toBe(`<${id}>`);
  });
});

describe('secret', () => {
  it('holds the template value, switched off, encrypted with its own rotating customer-managed key', () => {
    const secret = Object.values(resourcesOf(s.json, 'AWS::SecretsManager::Secret'))[0];
    expect(secret.Properties.Name).toBe('etl-azure-source');
    expect(JSON.parse(secret.Properties.SecretString)).toEqual(SECRET_TEMPLATE);
    expect(JSON.parse(secret.Properties.SecretString).isactive).toBe('False');
    const keyId = secret.Properties.KmsKeyId['Fn::GetAtt'][0];
    expect(s.json.Resources[keyId].Type).toBe('AWS::KMS::Key');
    expect(s.json.Resources[keyId].Properties.EnableKeyRotation).toBe(true);
  });

  it('keeps the template value users start from unchanged', () => {
    // CloudFormation writes SecretString again whenever it changes: a new template would overwrite
    // every deployed secret (credentials included) on the next deploy. Change it only with a migration.
    expect(SECRET_TEMPLATE).toEqual({
      tenantid: '00000000-0000-0000-0000-000000000000',
      clientid: '00000000-0000-0000-0000-000000000000',
      clientsecret: 'REPLACE_WITH_CLIENT_SECRET',
      storageaccount: 'mystorageaccount',
      container: 'mycontainer',
      isactive: 'False',
      begindate: '2024-01-01T00:00:00Z',
    });
  });
});

describe('bucket', () => {
  it('is private, KMS-encrypted, retained, and aborts incomplete multipart uploads', () => {
    const [id, bucket] = Object.entries(resourcesOf(s.json, 'AWS::S3::Bucket'))[0];
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true,
    });
    const sse = bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0];
    expect(sse.ServerSideEncryptionByDefault.SSEAlgorithm).toBe('aws:kms');
    expect(sse.BucketKeyEnabled).toBe(true);
    // An upload is aborted only after every message that could still finish it has expired: no redrive ever finds it gone.
    const abort = bucket.Properties.LifecycleConfiguration.Rules.find((r: any) => r.AbortIncompleteMultipartUpload);
    expect(abort.Status).toBe('Enabled');
    const longestWait = Math.max(...Object.values(resourcesOf(s.json, 'AWS::SQS::Queue')).map((q) => q.Properties.MessageRetentionPeriod ?? 4 * 86400));
    expect(abort.AbortIncompleteMultipartUpload.DaysAfterInitiation * 86400).toBeGreaterThan(longestWait);
    expect(bucket.Properties.VersioningConfiguration).toBeUndefined();
    const policy = Object.values(resourcesOf(s.json, 'AWS::S3::BucketPolicy')).find((p) => p.Properties.Bucket.Ref === id)!;
    const denies = policy.Properties.PolicyDocument.Statement.filter((st: any) => st.Effect === 'Deny');
    expect(denies).toContainEqual(expect.objectContaining({ Condition: { Bool: { 'aws:SecureTransport': 'false' } }, Action: 's3:*' }));
    expect(denies).toContainEqual(expect.objectContaining({ Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } } }));
    expect(policy.Properties.PolicyDocument.Statement.filter((st: any) => st.Effect === 'Allow')).toEqual([]);
  });

  it('is versioned when context asks', () => {
    other.template.hasResourceProperties('AWS::S3::Bucket', { VersioningConfiguration: { Status: 'Enabled' } });
  });
});

describe('outputs', () => {
  it('names the secret, the bucket, the start and redrive functions, the operator topic and the dashboard', () => {
    const outputs = s.json.Outputs as Record<string, { Value: unknown }>;
    expect(Object.keys(outputs).sort()).toEqual(['BucketName', 'DashboardName', 'EventsEndpoint', 'OperatorTopic', 'RedriveFunction', 'RunTable', 'SecretName', 'StartFunction']);
    expect(flat(outputs.StartFunction.Value)).toBe(`<${functionId(s.json, NAMES.qualify)}>`);
    expect(flat(outputs.RedriveFunction.Value)).toBe(`<${functionId(s.json, REDRIVE)}>`);
  });
});

describe('dashboard', () => {
  const body = () => {
    const dashboard = Object.values(resourcesOf(s.json, 'AWS::CloudWatch::Dashboard'))[0];
    expect(dashboard.Properties.DashboardName).toBe('etl-azs3copy');
    return flat(dashboard.Properties.DashboardBody);
  };

  it('shows each function\'s invocations, errors, throttles and duration', () => {
    const text = body();
    for (const metric of ['Invocations', 'Errors', 'Throttles', 'Duration']) {
      for (const name of Object.values(NAMES)) expect(text).toContain(`["AWS/Lambda","${metric}","FunctionName","${name}"`);
    }
  });

  it('shows the handlers\' custom metrics under their namespace and dimension', () => {
    const text = body();
    // The dimension is the deployment's prefix, which each function gets as AZS3COPY_PIPELINE.
    for (const metric of [METRIC.objectsCopied, METRIC.bytesCopied, METRIC.blobsSkipped, METRIC.blobsFailed, METRIC.configErrors]) {
      expect(text).toContain(`["${METRICS_NAMESPACE}","${metric}","Pipeline","etl","service","azs3copy"`);
    }
  });

  it('tells how to start a run and how to redrive a dead-letter queue', () => {
    const text = body();
    expect(text).toContain(`\`${NAMES.qualify}\``);
    expect(text).toContain(`\`${REDRIVE}\``);
    expect(text).toContain('queueUrl');
  });

  it('shows every dead-letter queue\'s depth and a query of the latest failures over every stage\'s log group', () => {
    const text = body();
    expect(text.match(/"AWS\/SQS","ApproximateNumberOfMessagesVisible"/g)).toHaveLength(11);
    expect(text).toContain('filter level in [\\"ERROR\\", \\"error\\"]');
    for (const field of ['level', 'message', 'runId', 'name', 'reason']) expect(text).toMatch(new RegExp(`fields [^|]*\\b${field}\\b`));
    expect(text.match(/SOURCE '/g)).toHaveLength(STAGE_NAMES.length);
    for (const stage of STAGE_NAMES) expect(text, stage).toContain(`SOURCE '<${fnProps(stage).LoggingConfig.LogGroup.Ref}>'`);
  });
});

describe('the events endpoint', () => {
  const eventsId = () => functionId(s.json, NAMES.events);

  it('gives events, and only events, a public function URL: auth NONE (the handler checks the key), no CORS', () => {
    const urls = Object.entries(resourcesOf(s.json, 'AWS::Lambda::Url'));
    expect(urls).toHaveLength(1);
    const [, url] = urls[0];
    expect(flat(url.Properties.TargetFunctionArn)).toBe(`<${eventsId()}.Arn>`);
    expect(url.Properties.AuthType).toBe('NONE');
    expect(url.Properties.Cors).toBeUndefined();
    expect(url.Properties.Qualifier).toBeUndefined();
    expect(url.Properties.InvokeMode ?? 'BUFFERED').toBe('BUFFERED');
  });

  it('lets anyone call the URL, and the function only through it', () => {
    const permissions = Object.values(resourcesOf(s.json, 'AWS::Lambda::Permission')).filter((p) => flat(p.Properties.FunctionName) === `<${eventsId()}.Arn>`);
    expect(permissions.map((p) => p.Properties).map(({ FunctionName, ...rest }) => rest).sort((a, b) => a.Action.localeCompare(b.Action))).toEqual([
      { Action: 'lambda:InvokeFunction', Principal: '*', InvokedViaFunctionUrl: true },
      { Action: 'lambda:InvokeFunctionUrl', Principal: '*', FunctionUrlAuthType: 'NONE' },
    ]);
  });

  it('is invoked only synchronously: no queue, subscription, schedule or asynchronous settings, so no failed-events queue', () => {
    const mentions = (type: string) =>
      Object.entries(resourcesOf(s.json, type)).filter(([, r]) => JSON.stringify(r.Properties).includes(`"${eventsId()}"`)).map(([rid]) => rid);
    for (const type of ['AWS::SNS::Subscription', 'AWS::Events::Rule', 'AWS::Lambda::EventSourceMapping', 'AWS::Lambda::EventInvokeConfig']) {
      expect(mentions(type), type).toEqual([]);
    }
    const queueNames = Object.values(resourcesOf(s.json, 'AWS::SQS::Queue')).map((q) => q.Properties.QueueName as string);
    expect(queueNames.filter((n) => n.startsWith(NAMES.events))).toEqual([]);
    // Event Grid waits 30 s for an answer: the function gives up well before it delivers again, not 15 minutes later.
    expect(fnProps('events').Timeout).toBe(60);
  });

  it('puts the URL in the outputs, telling the user to add ?code=<webhookkey> when subscribing', () => {
    const output = s.json.Outputs.EventsEndpoint as { Value: unknown; Description: string };
    const [urlId] = Object.keys(resourcesOf(s.json, 'AWS::Lambda::Url'));
    expect(flat(output.Value)).toBe(`<${urlId}.FunctionUrl>`);
    expect(output.Description).toContain('?code=<webhookkey');
    expect(output.Description).toMatch(/Event Grid/);
  });
});

describe('naming', () => {
  it('starts every named resource with the prefix, so two deployments can share an account', () => {
    const named = (json: Record<string, any>) =>
      Object.values(json.Resources as Record<string, any>).flatMap((r) =>
        ['FunctionName', 'TopicName', 'QueueName', 'AlarmName', 'Name', 'DashboardName', 'LayerName', 'LogGroupName']
          .map((k) => r.Properties?.[k])
          .filter((v): v is string => typeof v === 'string'),
      );
    const names = named(other.json);
    expect(names.length).toBeGreaterThan(40);
    for (const name of names) expect(name).toMatch(/^(\/aws\/lambda\/)?etl2-/);
    expect(other.stack.stackName).toBe('etl2-azs3copy');
    expect(new Set(names).size).toBe(names.length);
    expect(names.filter((n) => named(s.json).includes(n))).toEqual([]);
  });
});
