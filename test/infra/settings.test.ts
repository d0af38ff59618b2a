/**
 * Context in, settings out: defaults, overrides, and errors that name the key
 * and the fix. No synthesis here.
 */
import { describe, expect, it } from 'vitest';
import { Naming } from '../../lib/naming';
import { DEFAULT_PREFIX, settingsFromContext } from '../../lib/settings';
import { STAGE_DEPLOYMENTS } from '../../lib/stage-sizing';

const from = (context: Record<string, unknown>) => settingsFromContext({ tryGetContext: (key: string) => context[key] });

describe('settings from context', () => {
  it('takes further destinations as "bucket/prefix" text or JSON, each checked with one line naming the fault', () => {
    expect(from({}).moreDestinations).toEqual([]);
    expect(from({ moreDestinations: 'dr-copies/azure/, second-copies' }).moreDestinations).toEqual([
      { bucket: 'dr-copies', prefix: 'azure/' }, { bucket: 'second-copies', prefix: '' },
    ]);
    const key = 'arn:aws:kms:eu-central-1:123456789012:key/9999abcd-12ab-34cd-56ef-1234567890ab';
    expect(from({ moreDestinations: [{ bucket: 'dr-copies', region: 'eu-central-1', keyArn: key }] }).moreDestinations).toEqual([
      { bucket: 'dr-copies', prefix: '', region: 'eu-central-1', keyArn: key },
    ]);
    expect(() => from({ moreDestinations: '[{"bucket": "dr-copies"' })).toThrow(/context "moreDestinations" is not valid JSON/);
    expect(() => from({ moreDestinations: 'Bad_Bucket' })).toThrow('context "moreDestinations" names "Bad_Bucket", not a valid S3 bucket name');
    expect(() => from({ moreDestinations: [{ bucket: 'dr-copies', keyArn: 'alias/mine' }] })).toThrow(/keyArn "alias\/mine": use the key's ARN/);
    expect(() => from({ moreDestinations: [{ bucket: 'dr-copies', region: 'Frankfurt' }] })).toThrow(/region "Frankfurt", which is not an AWS region/);
    expect(() => from({ bucketName: 'mine', moreDestinations: 'mine/x/' })).toThrow(/"mine", which is "bucketName" already/);
  });

  it('defaults to a daily schedule, a created unversioned bucket and the table\'s sizes', () => {
    const settings = from({});
    expect(settings).toMatchObject({
      prefix: DEFAULT_PREFIX,
      schedule: 'rate(1 day)',
      bucketName: undefined,
      versioned: false,
      destinationPrefix: '',
      logRetentionDays: 30,
      stallAfterMinutes: 30,
    });
    expect(settings.functions.parter).toEqual(STAGE_DEPLOYMENTS.parter.sizing);
  });

  it('takes overrides as -c strings and as cdk.json values', () => {
    const settings = from({
      prefix: 'etl2',
      schedule: 'cron(0 2 * * ? *)',
      versioned: 'true',
      largeBlobBytes: '268435456',
      functions: '{"parter":{"maxConcurrency":20,"memoryMiB":2048},"download":{"timeoutMinutes":10,"reservedConcurrency":5}}',
      stallAfterMinutes: '45',
    });
    expect(settings.schedule).toBe('cron(0 2 * * ? *)');
    expect(settings.versioned).toBe(true);
    expect(settings.largeBlobBytes).toBe(268435456);
    expect(settings.functions.parter).toEqual({ ...STAGE_DEPLOYMENTS.parter.sizing, maxConcurrency: 20, memoryMiB: 2048 });
    expect(settings.functions.download).toMatchObject({ timeoutMinutes: 10, reservedConcurrency: 5 });
    expect(settings.stallAfterMinutes).toBe(45);
    expect(from({ functions: { qualify: { memoryMiB: 512 } } }).functions.qualify.memoryMiB).toBe(512);
    expect(from({ schedule: 'off' }).schedule).toBeUndefined();
  });

  it.each([
    [{ prefix: 'ETL' }, /context "prefix" is "ETL"/],
    [{ prefix: 'a-very-long-prefix-code-indeed' }, /1-20 lowercase letters/],
    [{ schedule: 'daily' }, /context "schedule" is "daily": use an EventBridge expression/],
    [{ versioned: 'maybe' }, /context "versioned" is "maybe": use true or false/],
    [{ logRetentionDays: '45' }, /"logRetentionDays" is 45: CloudWatch Logs takes one of/],
    [{ bucketKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/abc' }, /only applies with "bucketName"/],
    [{ bucketName: 'b', bucketKeyArn: 'alias/mine' }, /use the key's ARN/],
    [{ destinationPrefix: '/copies/' }, /drop the leading "\/"/],
    [{ alarmEmail: 'ops' }, /"alarmEmail" is "ops", not an email address/],
    [{ functions: '{parter: 1}' }, /context "functions" is not valid JSON/],
    [{ functions: { partner: { memoryMiB: 512 } } }, /names "partner", which is not a stage/],
    [{ functions: { parter: { memory: 512 } } }, /has "memory": use memoryMiB, timeoutMinutes, maxConcurrency, reservedConcurrency/],
    [{ functions: { qualify: { maxConcurrency: 5 } } }, /"functions.qualify" has "maxConcurrency": use memoryMiB, timeoutMinutes, reservedConcurrency/],
    [{ functions: { parter: { maxConcurrency: 1 } } }, /"functions.parter.maxConcurrency" is 1: use a whole number from 2 to 1000/],
    [{ stallAfterMinutes: '1' }, /"stallAfterMinutes" is "1": use a whole number from 5 to 1440/],
    [{ functions: { parter: { timeoutMinutes: 20 } } }, /"functions.parter.timeoutMinutes" is 20: use a whole number from 1 to 15/],
    [{ functions: { 'find-blobs': { maxConcurrency: 5 } } }, /must stay 2/],
  ])('rejects %j with a message naming the key', (context, message) => {
    expect(() => from(context)).toThrow(message);
  });
});

describe('naming', () => {
  it('names functions as users know them from the reference design', () => {
    const naming = new Naming('etl');
    expect(naming.functionName('qualify')).toBe('etl-lambda01-qualify');
    expect(naming.functionName('largefile-initializer')).toBe('etl-lambda04-largefile-initializer');
    expect(naming.functionName('recombinator')).toBe('etl-lambda06-recombinator');
    expect(naming.stackName).toBe('etl-azs3copy');
  });

  it('keeps the longest names within AWS limits', () => {
    const naming = new Naming('a'.repeat(20));
    expect(naming.functionName('largefile-initializer').length).toBeLessThanOrEqual(64);
    expect(naming.failedQueueName('largefile-initializer').length).toBeLessThanOrEqual(80);
    expect(`${naming.failedQueueName('largefile-initializer')}-not-empty`.length).toBeLessThanOrEqual(255);
  });
});
