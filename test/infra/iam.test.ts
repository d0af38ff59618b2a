/**
 * Least privilege: each function's role holds exactly the grants its stage
 * needs, written out here independently of lib/stage-deployments.ts, and no
 * wildcard action or resource beyond the object ARNs a copier must have.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { STAGE_NAMES, type StageName } from '../../lambdas/core/stages';
import { Naming } from '../../lib/naming';
import { flat, resourcesOf, statementsOf, synthesize, type Synthesized } from './synth';

const naming = new Naming('etl');

/** Every grant of a role as "action on what", with what named by its kind. */
function grants(s: Synthesized, stage: StageName): string[] {
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
    if (r.Type === 'AWS::KMS::Key') {
      if (id.startsWith('Config')) return 'secret key';
      if (id.startsWith('Destination')) return 'bucket key';
      if (id.startsWith('PipelineTopicKey')) return 'topic key';
    }
    return resource;
  };
  return statementsOf(s.json, naming.functionName(stage)).flatMap((st) => {
    expect(st.Effect).toBe('Allow');
    const actions = [st.Action].flat() as string[];
    const resources = [st.Resource].flat().map(flat);
    return actions.flatMap((a) => resources.map((r) => `${a} on ${kindOf(r)}`));
  });
}

const common = (stage: StageName) => [
  `logs:CreateLogStream on logs /aws/lambda/${naming.functionName(stage)}`,
  `logs:PutLogEvents on logs /aws/lambda/${naming.functionName(stage)}`,
  `sqs:SendMessage on queue ${naming.failedQueueName(stage)}`,
  `sqs:GetQueueAttributes on queue ${naming.failedQueueName(stage)}`,
  `sqs:GetQueueUrl on queue ${naming.failedQueueName(stage)}`,
  'secretsmanager:GetSecretValue on secret',
  'kms:Decrypt on secret key',
];
const publish = (...stages: string[]) =>
  stages.length === 0 ? [] : [...stages.map((t) => `sns:Publish on topic etl-to-${t}`), 'kms:GenerateDataKey on topic key', 'kms:Decrypt on topic key'];
const readKey = ['kms:Decrypt on bucket key'];
const writeKey = ['kms:Decrypt on bucket key', 'kms:GenerateDataKey on bucket key'];

/** What each stage needs, from what its code calls (see lambdas/core/stages and stores/s3-sink.ts). */
const EXPECTED: Record<StageName, string[]> = {
  qualify: [...publish('find-blobs'), 's3:ListBucket on bucket'],
  'find-blobs': [...publish('find-blobs', 'download', 'largefile-initializer'), 's3:ListBucket on bucket', 's3:GetObject on objects', ...readKey],
  download: ['s3:PutObject on objects', 's3:PutObjectTagging on objects', 's3:DeleteObject on objects', ...writeKey],
  'largefile-initializer': [
    ...publish('parter', 'recombinator', 'download', 'largefile-initializer'),
    's3:ListBucket on bucket',
    's3:ListBucketMultipartUploads on bucket',
    ...['GetObject', 'PutObject', 'PutObjectTagging', 'ListMultipartUploadParts', 'AbortMultipartUpload'].map((a) => `s3:${a} on objects`),
    's3:DeleteObject on state',
    ...writeKey,
  ],
  parter: [
    ...publish('recombinator', 'largefile-initializer', 'download'),
    's3:ListBucket on bucket',
    's3:PutObject on objects',
    's3:AbortMultipartUpload on objects',
    's3:GetObject on state',
    's3:DeleteObject on state',
    ...writeKey,
  ],
  recombinator: [
    's3:ListBucket on bucket',
    ...['ListMultipartUploadParts', 'PutObject', 'GetObject', 'DeleteObject', 'AbortMultipartUpload'].map((a) => `s3:${a} on objects`),
    ...writeKey,
  ],
};

let created: Synthesized;
let existing: Synthesized;
beforeAll(() => {
  created = synthesize();
  existing = synthesize({ bucketName: 'my-existing-bucket', bucketKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab' });
}, 180_000);

describe('function roles', () => {
  it.each(STAGE_NAMES)('%s holds exactly its own grants', (stage) => {
    expect(grants(created, stage).sort()).toEqual([...common(stage), ...EXPECTED[stage]].sort());
  });

  it('gives each function a role of its own', () => {
    const roles = Object.values(resourcesOf(created.json, 'AWS::Lambda::Function')).map((f) => f.Properties.Role['Fn::GetAtt'][0]);
    expect(new Set(roles).size).toBe(STAGE_NAMES.length);
  });

  it('has no wildcard action and no wildcard resource beyond the bucket\'s objects and state prefix', () => {
    for (const stage of STAGE_NAMES) {
      for (const st of statementsOf(created.json, naming.functionName(stage))) {
        for (const action of [st.Action].flat()) expect(action, stage).not.toMatch(/\*/);
        for (const resource of [st.Resource].flat().map(flat)) {
          if (resource.includes('*')) expect(resource, stage).toMatch(/^<DestinationBucket[0-9A-F]{8}\.Arn>\/(\.azs3copy-state\/)?\*$/);
        }
      }
    }
  });

  it('decrypts with the secret key and the bucket key only through their services', () => {
    for (const stage of STAGE_NAMES) {
      for (const st of statementsOf(created.json, naming.functionName(stage))) {
        if (![st.Action].flat().some((a: string) => a.startsWith('kms:'))) continue;
        expect(flat(st.Condition.StringEquals['kms:ViaService'])).toMatch(/^(secretsmanager|s3|sns)\.<AWS::Region>\.amazonaws\.com$/);
      }
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
    const env = Object.values(resourcesOf(existing.json, 'AWS::Lambda::Function')).map((f) => f.Properties.Environment.Variables.AZS3COPY_BUCKET);
    expect(new Set(env)).toEqual(new Set(['my-existing-bucket']));
  });
});
