/**
 * The inside of one warm Lambda container: a Node process that imports the
 * function's handler once (as Lambda's Node.js runtime does at init), then runs
 * one invocation at a time as the parent sends them over IPC, with a Lambda-like
 * context, and answers with the result or the error. An uncaught exception or
 * unhandled rejection fails the invocation in progress and ends the process, as
 * it ends a Lambda runtime.
 *
 * This file runs in the child, compiled by esbuild into the box's temporary
 * directory; it imports nothing from the project.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ChildRequest, ChildReply, FunctionErrorPayload } from './protocol';

type Handler = (event: unknown, context: unknown) => unknown;

let handler: Handler | undefined;
let current: string | undefined;

function send(reply: ChildReply): void {
  process.send!(reply);
}

function errorPayload(error: unknown, fallbackType = 'Error'): FunctionErrorPayload {
  if (error instanceof Error) {
    return {
      errorType: error.name || fallbackType,
      errorMessage: error.message,
      trace: (error.stack ?? '').split('\n'),
    };
  }
  return { errorType: fallbackType, errorMessage: String(error), trace: [] };
}

/** `index.handler` -> module `index` in the task root, export `handler` (dotted paths allowed after the module). */
async function load(taskRoot: string, spec: string): Promise<Handler> {
  const slash = spec.lastIndexOf('/');
  const dot = spec.indexOf('.', slash + 1);
  if (dot < 0) throw Object.assign(new Error(`Bad handler ${spec}: missing module or export`), { name: 'Runtime.MalformedHandlerName' });
  const modulePath = spec.slice(0, dot);
  const file = ['.js', '.mjs', '.cjs'].map((ext) => join(taskRoot, modulePath + ext)).find(existsSync);
  if (!file) throw Object.assign(new Error(`Cannot find module '${modulePath}'`), { name: 'Runtime.ImportModuleError' });
  let target: any = await import(pathToFileURL(file).href);
  for (const part of spec.slice(dot + 1).split('.')) target = target?.[part];
  if (typeof target !== 'function') {
    throw Object.assign(new Error(`${spec} is undefined or not exported`), { name: 'Runtime.HandlerNotFound' });
  }
  return target as Handler;
}

async function invoke(request: Extract<ChildRequest, { type: 'invoke' }>): Promise<void> {
  current = request.requestId;
  const context = {
    functionName: request.functionName,
    functionVersion: request.functionVersion,
    invokedFunctionArn: request.invokedFunctionArn,
    memoryLimitInMB: String(request.memoryLimitInMB),
    awsRequestId: request.requestId,
    logGroupName: request.logGroupName,
    logStreamName: request.logStreamName,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, request.deadline - Date.now()),
  };
  try {
    const payload = await handler!(request.event, context);
    send({ type: 'result', requestId: request.requestId, ok: true, payload: payload === undefined ? null : payload });
  } catch (error) {
    send({ type: 'result', requestId: request.requestId, ok: false, error: errorPayload(error) });
  } finally {
    current = undefined;
  }
}

function crash(kind: string) {
  return (error: unknown) => {
    const payload = errorPayload(error, kind);
    console.error(`${kind}: ${payload.errorMessage}`);
    if (current) send({ type: 'result', requestId: current, ok: false, error: { ...payload, errorType: kind }, fatal: true });
    process.exit(129);
  };
}

process.on('uncaughtException', crash('Runtime.UncaughtException'));
process.on('unhandledRejection', crash('Runtime.UnhandledPromiseRejection'));

process.on('message', (request: ChildRequest) => {
  if (request.type === 'init') {
    load(request.taskRoot, request.handler).then(
      (loaded) => {
        handler = loaded;
        send({ type: 'ready' });
      },
      (error: unknown) => send({ type: 'init-error', error: errorPayload(error, 'Runtime.ImportModuleError') }),
    );
  } else if (request.type === 'invoke') {
    void invoke(request);
  }
});
