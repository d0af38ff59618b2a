/**
 * `azs3copy redrive`: send dead-lettered messages back to their stage once the
 * cause is fixed. Locally, with the same options as the copy, it replays the dead
 * letters a local run kept (in the bucket, or a file); with --queue-url and
 * --topic-arn, it moves a deployed pipeline's dead-letter queue back to the
 * stage's topic. Each way imports only the SDKs it uses, once its flags are checked.
 */
import { ConfigError, codeOf, errorMessage, statusOf } from '../core/errors';
import { copyOptionsFromFlags, positive, runWithProgress, str, type CliValues } from './commands';

export async function redriveCommand(values: CliValues, env: NodeJS.ProcessEnv): Promise<number> {
  if (str(values, 'queue-url') || str(values, 'topic-arn')) return queueRedriveCommand(values, env);
  const options = copyOptionsFromFlags(values, env);
  const { runLocalRedrive } = await import('./redrive');
  const { result, code } = await runWithProgress(
    values,
    (onStart) => runLocalRedrive({ ...options, onStart, fromRun: str(values, 'run-id'), file: str(values, 'dead-letters') }),
    'nothing to redrive',
  );
  if (result.started) process.stdout.write(`sent ${result.redriven} dead-lettered message${result.redriven === 1 ? '' : 's'} back to their stages\n`);
  return code;
}

const TOPIC_ARN = /^arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[\w-]+$/;

async function queueRedriveCommand(values: CliValues, env: NodeJS.ProcessEnv): Promise<number> {
  const queueUrl = str(values, 'queue-url');
  const topicArn = str(values, 'topic-arn');
  if (!queueUrl) throw new ConfigError('--queue-url is missing: give the dead-letter queue\'s URL (SQS console, "Details")');
  if (!URL.canParse(queueUrl)) throw new ConfigError(`--queue-url "${queueUrl}" is not a URL: give the queue's URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME), not its name or ARN`);
  if (!topicArn) throw new ConfigError('--topic-arn is missing: give the ARN of the topic that feeds the stage, such as arn:aws:sns:REGION:ACCOUNT:PREFIX-to-download');
  const arn = TOPIC_ARN.exec(topicArn);
  if (!arn) throw new ConfigError(`--topic-arn "${topicArn}" is not an SNS topic ARN: give one like arn:aws:sns:REGION:ACCOUNT:PREFIX-to-download`);
  // The region of the topic, unless the environment names one.
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? arn[1];
  const [{ SNSClient }, { SQSClient }, { redriveQueue, singleTopic }] =
    await Promise.all([import('@aws-sdk/client-sns'), import('@aws-sdk/client-sqs'), import('../core/redrive')]);
  const result = await redriveQueue({
    sqs: new SQSClient({ region }),
    sns: new SNSClient({ region }),
    queueUrl,
    topicFor: singleTopic(topicArn),
    maxMessages: positive(values, 'max-messages'),
  }).catch((error: unknown) => {
    throw explainQueueError(error, queueUrl, topicArn);
  });
  const kinds = Object.entries(result.byKind).map(([kind, n]) => `${n} ${kind}`).join(', ');
  process.stdout.write(
    `read ${result.received} message${result.received === 1 ? '' : 's'} from ${queueUrl}; ` +
      `published ${result.published} to ${topicArn}${kinds ? ` (${kinds})` : ''}; ${result.kept.length} left in the queue\n`,
  );
  for (const kept of result.kept) process.stdout.write(`  kept ${kept.messageId}: ${kept.reason}\n`);
  return result.kept.length > 0 ? 1 : 0;
}

function explainQueueError(error: unknown, queueUrl: string, topicArn: string): unknown {
  const code = codeOf(error) ?? '';
  if (/NonExistentQueue|QueueDoesNotExist/.test(code)) {
    return new ConfigError(`queue ${queueUrl} does not exist: copy the dead-letter queue's URL from the SQS console`);
  }
  if (/^NotFound/.test(code)) return new ConfigError(`topic ${topicArn} does not exist: copy the stage topic's ARN from the SNS console`);
  if (statusOf(error) === 403 || /AccessDenied|AuthorizationError/.test(code)) {
    return new ConfigError(
      `AWS refused the redrive (${code}): the credentials need sqs:ReceiveMessage, sqs:DeleteMessage and sqs:ChangeMessageVisibility on the queue, and sns:Publish on the topic`,
    );
  }
  if (code === 'CredentialsProviderError') return new ConfigError('no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)');
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN/.test(`${code} ${errorMessage(error)}`)) {
    return new ConfigError(`cannot reach SQS or SNS (${code || errorMessage(error)}): check the queue URL, the region and the network`);
  }
  return error;
}
