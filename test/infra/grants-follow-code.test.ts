/**
 * The grants in lib/stage-deployments.ts against what each stage's code does:
 * when a stage starts calling another sink method or sending another kind of
 * message, this names the permission or topic its function now lacks (before a
 * deployed copy finds out with AccessDenied or a missing variable). A text scan
 * of each stage's own source, plus the helpers it uses; and of the redrive's,
 * against the statements the queues and topics grant it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Stack } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import { describe, expect, it } from 'vitest';
import type { ObjectSink } from '../../lambdas/core/stores/types';
import { STAGE_NAMES, stageOf, type StageName } from '../../lambdas/core/stages';
import type { StageMessage } from '../../lambdas/core/messages';
import { PROJECT_ROOT } from '../../lib/bundling';
import { DeadLetterQueue } from '../../lib/constructs/dead-letter-queue';
import { StageTopic } from '../../lib/constructs/stage-topic';
import { Naming } from '../../lib/naming';
import { STAGE_DEPLOYMENTS, type BucketAccess } from '../../lib/stage-deployments';

type Scope = keyof BucketAccess;
type Need = [action: string, scope: Scope];

/**
 * What each sink method takes in S3 (lambdas/core/stores/s3-sink.ts). HEAD and GET of a key that
 * may be missing need s3:ListBucket too, or S3 answers 403 instead of 404.
 */
const SINK_NEEDS: Record<keyof ObjectSink, Need[]> = {
  check: [['s3:ListBucket', 'bucket']],
  put: [['s3:PutObject', 'objects'], ['s3:PutObjectTagging', 'objects']],
  head: [['s3:GetObject', 'objects'], ['s3:ListBucket', 'bucket']],
  list: [['s3:ListBucket', 'bucket']],
  read: [['s3:GetObject', 'objects']],
  delete: [['s3:DeleteObject', 'objects']],
  createUpload: [['s3:PutObject', 'objects'], ['s3:PutObjectTagging', 'objects']],
  uploadPart: [['s3:PutObject', 'objects']],
  listParts: [['s3:ListMultipartUploadParts', 'objects']],
  listUploads: [['s3:ListBucketMultipartUploads', 'bucket']],
  complete: [['s3:PutObject', 'objects']],
  abort: [['s3:AbortMultipartUpload', 'objects']],
  getJson: [['s3:GetObject', 'state'], ['s3:ListBucket', 'bucket']],
  putJson: [['s3:PutObject', 'state']],
};

/** The manifest helpers in lambdas/core/uploads.ts work on state objects only. */
const HELPER_NEEDS: Record<string, Need[]> = {
  readManifest: [['s3:GetObject', 'state'], ['s3:ListBucket', 'bucket']],
  clearManifest: [['s3:GetObject', 'state'], ['s3:ListBucket', 'bucket'], ['s3:DeleteObject', 'state']],
};

function needsOf(stage: StageName): Need[] {
  const source = readFileSync(join(PROJECT_ROOT, 'lambdas', 'core', 'stages', `${stage}.ts`), 'utf8');
  const needs: Need[] = [];
  // Deleting a manifest (under the state prefix) needs only the state grant.
  const stateDelete = /\bsink\.delete\(manifestKey\(/g;
  if (stateDelete.test(source)) needs.push(['s3:DeleteObject', 'state']);
  for (const [, method] of source.replace(stateDelete, '').matchAll(/\bsink(?:For\([^)]*\))?\.(\w+)\(/g)) {
    const need = SINK_NEEDS[method as keyof ObjectSink];
    if (!need) throw new Error(`${stage} calls sink.${method}, which this test does not know: add it to SINK_NEEDS`);
    needs.push(...need);
  }
  for (const [, helper] of source.matchAll(/\b(readManifest|clearManifest)\(/g)) needs.push(...HELPER_NEEDS[helper]);
  return needs;
}

/** The stages whose topics a stage publishes to, from the messages its source builds. */
function topicsOf(stage: StageName): string[] {
  const source = readFileSync(join(PROJECT_ROOT, 'lambdas', 'core', 'stages', `${stage}.ts`), 'utf8');
  const kinds = new Set<string>();
  for (const [, kind] of source.matchAll(/\bkind: '([a-z-]+)'/g)) kinds.add(kind);
  // `{ ...message, ... } satisfies ListPageMessage`: a message built from another, named by its type.
  for (const [, type] of source.matchAll(/satisfies (\w+)Message\b/g)) kinds.add(type.replace(/(?<!^)([A-Z])/g, '-$1').toLowerCase());
  // replan (largefile-initializer.ts) sends the changed blob to download or back to largefile-initializer.
  if (/\breplan\(/.test(source)) ['copy-blobs', 'large-blob'].forEach((k) => kinds.add(k));
  return [...kinds].map((kind) => stageOf(kind as StageMessage['kind'])).sort();
}

function granted(access: BucketAccess, [action, scope]: Need): boolean {
  // An action on every object covers the state objects too.
  return (access[scope] ?? []).includes(action) || (scope === 'state' && (access.objects ?? []).includes(action));
}

describe('grants follow the code', () => {
  it.each(STAGE_NAMES)('%s is granted every S3 action its code needs', (stage) => {
    const missing = needsOf(stage)
      .filter((need) => !granted(STAGE_DEPLOYMENTS[stage].bucketAccess, need))
      .map(([action, scope]) => `${action} on ${scope}`);
    expect([...new Set(missing)], `add to STAGE_DEPLOYMENTS['${stage}'].bucketAccess in lib/stage-deployments.ts`).toEqual([]);
  });

  it.each(STAGE_NAMES)('%s may publish to exactly the topics of the messages its code sends', (stage) => {
    expect([...STAGE_DEPLOYMENTS[stage].publishesTo].sort(), `publishesTo of '${stage}' in lib/stage-deployments.ts`).toEqual(
      [...new Set(topicsOf(stage))],
    );
  });
});

/** The SQS and SNS actions a source sends: each `XxxCommand` imported from the service's client. */
function awsActionsOf(source: string): string[] {
  const actions: string[] = [];
  for (const [, names, service] of source.matchAll(/import\s*\{([^}]*)\}\s*from\s*'@aws-sdk\/client-(sqs|sns)'/g)) {
    for (const name of names.split(',').map((n) => n.replace(/^\s*type\s+/, '').trim())) {
      if (name.endsWith('Command')) actions.push(`${service}:${name.slice(0, -'Command'.length)}`);
    }
  }
  return actions.sort();
}

describe('the redrive\'s grants follow its code', () => {
  it('may do on a dead-letter queue and a stage topic exactly what lambdas/core/redrive.ts sends', () => {
    const source = readFileSync(join(PROJECT_ROOT, 'lambdas', 'core', 'redrive.ts'), 'utf8');
    const stack = new Stack();
    const queue = new DeadLetterQueue(stack, 'Queue', { queueName: 'q', holds: 'test messages' });
    const topic = new StageTopic(stack, 'Topic', { naming: new Naming('etl'), stage: 'download', key: new kms.Key(stack, 'Key') });
    const granted = [...queue.redriveStatements(), ...topic.publishStatements()]
      .flatMap((st) => st.actions)
      .filter((a) => !a.startsWith('kms:'));
    expect(awsActionsOf(source)).toEqual(['sns:Publish', 'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:ReceiveMessage']);
    expect([...granted].sort(), 'DeadLetterQueue.redriveStatements() in lib/constructs/dead-letter-queue.ts').toEqual(awsActionsOf(source));
  });
});
