/**
 * A function's files and environment as Lambda gives them. The bundle is copied
 * into a directory of its own (Lambda's /var/task) with its layers' packages in
 * `node_modules` beside it: an ES module resolves bare imports by walking up
 * from its own file and ignores NODE_PATH, so this is how the layers'
 * `nodejs/node_modules` become importable (later layers overwrite earlier ones,
 * as Lambda extracts them in order). The environment is the template's variables
 * plus what Lambda sets, and nothing of the parent process.
 */
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Credentials } from '../iam';

export function prepareTaskRoot(root: string, codeDir: string, layerDirs: string[]): { taskRoot: string; notes: string[] } {
  const taskRoot = join(root, 'task');
  mkdirSync(taskRoot, { recursive: true });
  cpSync(codeDir, taskRoot, { recursive: true });
  const notes: string[] = [];
  for (const layer of layerDirs) {
    const modules = join(layer, 'nodejs', 'node_modules');
    if (existsSync(modules)) cpSync(modules, join(taskRoot, 'node_modules'), { recursive: true, force: true });
    else notes.push(`layer ${layer} has no nodejs/node_modules; nothing of it is importable in the box`);
  }
  return { taskRoot, notes };
}

export interface LambdaEnvironment {
  templateVariables: Record<string, string>;
  functionName: string;
  handler: string;
  runtime: string;
  memoryMiB: number;
  region: string;
  taskRoot: string;
  runtimeDir: string;
  logGroupName: string;
  credentials: Credentials;
  endpoint: string;
}

export function lambdaEnvironment(e: LambdaEnvironment): Record<string, string> {
  return {
    ...e.templateVariables,
    PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    NODE_PATH: join(e.taskRoot, 'node_modules'),
    LAMBDA_TASK_ROOT: e.taskRoot,
    LAMBDA_RUNTIME_DIR: e.runtimeDir,
    _HANDLER: e.handler,
    AWS_EXECUTION_ENV: `AWS_Lambda_${e.runtime}`,
    AWS_REGION: e.region,
    AWS_DEFAULT_REGION: e.region,
    AWS_LAMBDA_FUNCTION_NAME: e.functionName,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(e.memoryMiB),
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_LOG_GROUP_NAME: e.logGroupName,
    AWS_LAMBDA_LOG_STREAM_NAME: `box/[$LATEST]${e.functionName}`,
    AWS_ACCESS_KEY_ID: e.credentials.accessKeyId,
    AWS_ACCESS_KEY: e.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: e.credentials.secretAccessKey,
    // Not Lambda's: where the box's AWS is (the AWS SDK v3 reads it for every service).
    AWS_ENDPOINT_URL: e.endpoint,
    // Not Lambda's: the box runs this machine's Node, for which the SDK would print a support warning the Lambda runtime never shows.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}
