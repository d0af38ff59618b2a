/**
 * Least privilege, as properties of every role: no wildcard action or resource
 * beyond the object ARNs a copier must have, queues and tables and topics only the
 * pipeline's own, keys only through their services, a role per function. What a
 * stage needs in the bucket follows from its code (lib/grants.ts), and the
 * pipeline-in-a-box tests prove it under IAM. The redrive may only empty the
 * dead-letter queues and publish to the stage topics.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { AZURE_READER_STAGES, STAGE_NAMES, STAGE_SPECS, TOPIC_STAGE_NAMES, publishesTo, type StageName, type TopicStage } from '../../lambdas/core/stages/specs';
import { AZURE_SIGN_IN_GRANT, RUN_STATE_ACTIONS, WRITE_ACTIONS, bucketAccessOf } from '../../lib/grants';
import { Naming } from '../../lib/naming';
import { flat, resourcesOf, statementsOf, synthesize, type Synthesized } from './synth';

const naming = new Naming('etl');
const TOPIC_STAGES: readonly TopicStage[] = TOPIC_STAGE_NAMES;
/** Stages invoked asynchronously (the schedule, a person, an older release's SNS): each has a failed-events queue. */
const ASYNC_STAGES: readonly StageName[] = STAGE_NAMES.filter((stage) => stage !== 'events');
/** Every function: the seven stages, then the redrive. */
const FUNCTION_NAMES = [...STAGE_NAMES.map((stage) => naming.functionName(stage)), naming.redriveFunctionName];

/** Every grant of a function's role as "action on what", with what named by its kind. */
function grants(s: Synthesized, functionName: string): string[] {
  const kindOf = (resource: string): string => {
    const ids = Object.fromEntries(Object.entries(s.json.Resources as Record<string, any>).map(([id, r]) => [id, r]));
    const m = /^<([A-Za-z0-9]+)(\.Arn)?>(.*)$/.exec(resource);
    if (!m) return resource;
    const [, id, , rest] = m;
    const r = ids[id];
    if (!r) return resource;
    if (r.Type === 'AWS::S3::Bucket') return rest === '' ? 'bucket' : rest === '/*' ? 'objects' : rest === '/.azs3copy-state/*' ? 'state' : resource;
    if (r.Type === 'AWS::SNS::Topic') return `topic ${r.Properties.TopicName}`;
    if (r.Type === 'AWS::SQS::Queue') return `queue ${r.Properties.QueueName}`;
    if (r.Type === 'AWS::Logs::LogGroup') return `logs ${r.Properties.LogGroupName}`;
    if (r.Type === 'AWS::SecretsManager::Secret') return 'secret';
    if (r.Type === 'AWS::DynamoDB::Table') return 'run table';
    if (r.Type === 'AWS::KMS::Key') {
      if (id.startsWith('Config')) return 'secret key';
      if (id.startsWith('Destination')) return 'bucket key';
      if (id.startsWith('PipelineTopicKey')) return 'topic key';
    }
    return resource;
  };
  return statementsOf(s.json, functionName).flatMap((st) => {
    expect(st.Effect).toBe('Allow');
    const actions = [st.Action].flat() as string[];
    const resources = [st.Resource].flat().map(flat);
    return actions.flatMap((a) => resources.map((r) => `${a} on ${kindOf(r)}`));
  });
}

const publish = (...stages: string[]) =>
  stages.length === 0 ? [] : [...stages.map((t) => `sns:Publish on topic etl-to-${t}`), 'kms:GenerateDataKey on topic key', 'kms:Decrypt on topic key'];

/** The redrive: receive, delete and release on every dead-letter queue, publish to every stage topic. */
const REDRIVE_EXPECTED = [
  `logs:CreateLogStream on logs /aws/lambda/${naming.redriveFunctionName}`,
  `logs:PutLogEvents on logs /aws/lambda/${naming.redriveFunctionName}`,
  ...[...ASYNC_STAGES.map((stage) => naming.failedQueueName(stage)), ...TOPIC_STAGES.map((stage) => naming.undeliveredQueueName(stage))].flatMap(
    (queue) => ['ReceiveMessage', 'DeleteMessage', 'ChangeMessageVisibility'].map((a) => `sqs:${a} on queue ${queue}`),
  ),
  ...publish(...TOPIC_STAGES),
];

const DR_KEY = 'arn:aws:kms:eu-central-1:123456789012:key/9999abcd-12ab-34cd-56ef-1234567890ab';

let created: Synthesized;
let existing: Synthesized;
beforeAll(() => {
  created = synthesize();
  existing = synthesize({
    bucketName: 'my-existing-bucket',
    bucketKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    moreDestinations: JSON.stringify([
      { bucket: 'dr-copies', prefix: 'azure/', region: 'eu-central-1', keyArn: DR_KEY },
      'second-copies/x/',
    ]),
  });
}, 180_000);

describe('function roles', () => {
  // What each stage needs in the bucket follows from its code (lib/grants.ts); the pipeline-in-a-box tests run
  // every function under its role with IAM enforced. Here: what no stage may hold, whatever its code.
  it.each(STAGE_NAMES)('%s reaches only its own queue, the run table, the stage topics, the operator topic and its own logs', (stage) => {
    const held = grants(created, naming.functionName(stage));
    for (const grant of held) {
      const [action, , ...what] = grant.split(' ');
      const target = what.join(' ');
      if (action.startsWith('sqs:')) {
        const own = (TOPIC_STAGES as readonly string[]).includes(stage) ? [`queue ${naming.queueName(stage as TopicStage)}`] : [];
        const deadLetters = [...TOPIC_STAGES.map((t) => `queue ${naming.failedQueueName(t)}`), ...TOPIC_STAGES.map((t) => `queue ${naming.undeliveredQueueName(t)}`)];
        const sendFailed = ASYNC_STAGES.includes(stage) ? [`queue ${naming.failedQueueName(stage)}`] : [];
        const allowed = [...own, ...(stage === 'qualify' ? deadLetters : []), ...sendFailed];
        expect(allowed, `${stage}: ${grant}`).toContain(target);
        if (!sendFailed.includes(target) && !own.includes(target)) expect(['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility'], grant).toContain(action);
      }
      if (action.startsWith('dynamodb:')) expect(target, grant).toBe('run table');
      if (action === 'sns:Publish') expect(target, grant).toMatch(/^topic etl-(to-[a-z-]+|operator)$/);
      if (action.startsWith('logs:')) expect(target, grant).toBe(`logs /aws/lambda/${naming.functionName(stage)}`);
    }
    expect(held).toContain('dynamodb:UpdateItem on run table');
    expect(held).toEqual(expect.arrayContaining(publish(...publishesTo(stage))));
  });

  it('lets only qualify look into the stages\' dead-letter queues (a stalled run\'s report says where its blobs are)', () => {
    for (const stage of STAGE_NAMES) {
      const peeks = grants(created, naming.functionName(stage)).filter((g) => /^sqs:ReceiveMessage on queue .*-(failed|undelivered)$/.test(g));
      expect(peeks.length > 0, stage).toBe(stage === 'qualify');
    }
  });

  it('the redrive holds exactly its own grants: the eleven dead-letter queues and the five stage topics', () => {
    expect(ASYNC_STAGES.length + TOPIC_STAGES.length).toBe(11);
    expect(REDRIVE_EXPECTED.filter((g) => g.startsWith('sqs:'))).toHaveLength(3 * 11);
    expect(grants(created, naming.redriveFunctionName).sort()).toEqual([...REDRIVE_EXPECTED].sort());
  });

  it('lets exactly the stages that read Azure ask STS for tokens, and only Entra ID\'s, short-lived and RS256', () => {
    const asking = FUNCTION_NAMES.filter((name) => grants(created, name).some((g) => g.startsWith('sts:')));
    expect(asking).toEqual(AZURE_READER_STAGES.map((stage) => naming.functionName(stage)));
    expect(AZURE_READER_STAGES).toEqual(['qualify', 'find-blobs', 'download', 'largefile-initializer', 'parter', 'recombinator', 'events']);
    for (const name of asking) {
      const statements = statementsOf(created.json, name).filter((st) => [st.Action].flat().some((a: string) => a.startsWith('sts:')));
      expect(statements, name).toEqual([{
        Effect: 'Allow',
        Action: 'sts:GetWebIdentityToken',
        Resource: '*',
        Condition: {
          'ForAllValues:StringEquals': { 'sts:IdentityTokenAudience': 'api://AzureADTokenExchange' },
          Null: { 'sts:IdentityTokenAudience': 'false' },
          NumericLessThanEquals: { 'sts:DurationSeconds': '300' },
          StringEquals: { 'sts:SigningAlgorithm': 'RS256' },
        },
      }]);
    }
  });

  it('gives events exactly what its spec implies: its bucket capabilities, the secret, the run table, its topics, the operator, Azure sign-in, its logs', () => {
    const spec = STAGE_SPECS.events;
    const access = bucketAccessOf('events');
    const objectActions = [...(access.objects ?? []), ...(access.state ?? [])];
    const fn = naming.functionName('events');
    const expected = [
      `logs:CreateLogStream on logs /aws/lambda/${fn}`,
      `logs:PutLogEvents on logs /aws/lambda/${fn}`,
      'secretsmanager:GetSecretValue on secret',
      'kms:Decrypt on secret key',
      ...(access.bucket ?? []).map((a) => `${a} on bucket`),
      ...(access.objects ?? []).map((a) => `${a} on objects`),
      ...(access.state ?? []).map((a) => `${a} on state`),
      ...(objectActions.some((a) => WRITE_ACTIONS.includes(a)) ? ['kms:Decrypt on bucket key', 'kms:GenerateDataKey on bucket key'] : ['kms:Decrypt on bucket key']),
      ...RUN_STATE_ACTIONS.map((a) => `${a} on run table`),
      ...publish(...publishesTo('events')),
      'sns:Publish on topic etl-operator',
      ...(spec.readsAzure ? ['sts:GetWebIdentityToken on *'] : []),
    ];
    // The spec as it stands: reader, deleter, state; copy-blobs and large-blob; reads Azure; no queue of its own.
    expect(publishesTo('events').sort()).toEqual(['download', 'largefile-initializer']);
    expect(access).toEqual({ bucket: ['s3:ListBucket'], objects: ['s3:DeleteObject', 's3:GetObject'], state: ['s3:PutObject'] });
    expect([...new Set(grants(created, fn))].sort()).toEqual([...new Set(expected)].sort());
  });

  it('gives each function a role of its own', () => {
    const roles = Object.values(resourcesOf(created.json, 'AWS::Lambda::Function')).map((f) => f.Properties.Role['Fn::GetAtt'][0]);
    expect(roles).toHaveLength(FUNCTION_NAMES.length);
    expect(new Set(roles).size).toBe(FUNCTION_NAMES.length);
  });

  it('has no wildcard action and no wildcard resource beyond the bucket\'s objects and state prefix (and the resourceless token grant)', () => {
    for (const name of FUNCTION_NAMES) {
      for (const st of statementsOf(created.json, name)) {
        for (const action of [st.Action].flat()) expect(action, name).not.toMatch(/\*/);
        for (const resource of [st.Resource].flat().map(flat)) {
          if (resource === '*') expect(st, name).toMatchObject({ Action: 'sts:GetWebIdentityToken', Condition: AZURE_SIGN_IN_GRANT.conditions });
          else if (resource.includes('*')) expect(resource, name).toMatch(/^<DestinationBucket[0-9A-F]{8}\.Arn>\/(\.azs3copy-state\/)?\*$/);
        }
      }
    }
    const redriveResources = statementsOf(created.json, naming.redriveFunctionName).flatMap((st) => [st.Resource].flat().map(flat));
    expect(redriveResources.filter((r) => r.includes('*'))).toEqual([]);
  });

  it('decrypts with the secret key and the bucket key only through their services', () => {
    for (const name of FUNCTION_NAMES) {
      for (const st of statementsOf(created.json, name)) {
        if (![st.Action].flat().some((a: string) => a.startsWith('kms:'))) continue;
        expect(flat(st.Condition.StringEquals['kms:ViaService'])).toMatch(/^(secretsmanager|s3|sns)\.<AWS::Region>\.amazonaws\.com$/);
      }
    }
  });

  it('needs no key for the queues: SQS encrypts them with its own', () => {
    const queues = Object.values(resourcesOf(created.json, 'AWS::SQS::Queue'));
    expect(queues).toHaveLength(11 + TOPIC_STAGES.length);
    for (const queue of queues) {
      expect(queue.Properties.SqsManagedSseEnabled, queue.Properties.QueueName).toBe(true);
      expect(queue.Properties.KmsMasterKeyId, queue.Properties.QueueName).toBeUndefined();
    }
  });
});

describe('an existing bucket named by context', () => {
  it('creates no bucket and no bucket key, and scopes grants to that bucket by name', () => {
    expect(Object.keys(resourcesOf(existing.json, 'AWS::S3::Bucket'))).toEqual([]);
    expect(Object.keys(resourcesOf(existing.json, 'AWS::KMS::Key'))).toHaveLength(2);
    const statements = statementsOf(existing.json, naming.functionName('recombinator'));
    const resources = statements.flatMap((st) => [st.Resource].flat().map(flat));
    expect(resources).toContain('arn:<AWS::Partition>:s3:::my-existing-bucket');
    expect(resources).toContain('arn:<AWS::Partition>:s3:::my-existing-bucket/*');
    expect(resources).toContain('arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab');
    const env = Object.values(resourcesOf(existing.json, 'AWS::Lambda::Function'))
      .filter((f) => f.Properties.FunctionName !== naming.redriveFunctionName)
      .map((f) => f.Properties.Environment.Variables.AZS3COPY_BUCKET);
    expect(env).toHaveLength(STAGE_NAMES.length);
    expect(new Set(env)).toEqual(new Set(['my-existing-bucket']));
  });
});

describe('further destinations named by context', () => {
  const onBucket = (s: Synthesized, stage: StageName, bucket: string) => statementsOf(s.json, naming.functionName(stage)).flatMap((st) => {
    const resources = [st.Resource].flat().map(flat);
    const actions = [st.Action].flat() as string[];
    return resources.flatMap((r) => {
      const m = new RegExp(`^arn:<AWS::Partition>:s3:::${bucket}(.*)$`).exec(r);
      return m ? actions.map((a) => `${a} on ${m[1] || 'bucket'}`) : [];
    });
  }).sort();

  it.each(STAGE_NAMES)('%s may do in each exactly what it may do in the bucket', (stage) => {
    const inBucket = onBucket(existing, stage, 'my-existing-bucket');
    expect(inBucket.length).toBeGreaterThan(0);
    expect(onBucket(existing, stage, 'dr-copies')).toEqual(inBucket);
    expect(onBucket(existing, stage, 'second-copies')).toEqual(inBucket);
    // A bucket's own key, used through S3 in that bucket's region only.
    const writes = bucketAccessOf(stage).objects?.some((a) => WRITE_ACTIONS.includes(a)) || bucketAccessOf(stage).state?.some((a) => WRITE_ACTIONS.includes(a));
    const key = statementsOf(existing.json, naming.functionName(stage)).find((st) => [st.Resource].flat().map(flat).includes(DR_KEY));
    expect(key.Condition).toEqual({ StringEquals: { 'kms:ViaService': 's3.eu-central-1.amazonaws.com' } });
    expect([key.Action].flat().sort()).toEqual(writes ? ['kms:Decrypt', 'kms:GenerateDataKey'] : ['kms:Decrypt']);
  });

  it('are told to the stages that start runs, and only to them', () => {
    const also = Object.fromEntries(Object.values(resourcesOf(existing.json, 'AWS::Lambda::Function'))
      .filter((f) => f.Properties.FunctionName !== naming.redriveFunctionName)
      .map((f) => [f.Properties.FunctionName, f.Properties.Environment.Variables.AZS3COPY_ALSO]));
    expect(also).toEqual(Object.fromEntries(STAGE_NAMES.map((stage) => [
      naming.functionName(stage),
      stage === 'qualify' || stage === 'events'
        ? JSON.stringify([{ bucket: 'dr-copies', prefix: 'azure/', region: 'eu-central-1' }, { bucket: 'second-copies', prefix: 'x/' }])
        : undefined,
    ])));
    expect(Object.values(resourcesOf(created.json, 'AWS::Lambda::Function')).map((f) => f.Properties.Environment?.Variables?.AZS3COPY_ALSO).filter(Boolean)).toEqual([]);
  });
});
