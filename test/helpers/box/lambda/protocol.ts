/** The messages between the box and a Lambda container (runtime.ts), over Node's IPC channel. */

/** What Lambda returns for a function error: `{errorType, errorMessage, trace}`. */
export interface FunctionErrorPayload {
  errorType: string;
  errorMessage: string;
  trace: string[];
}

export type ChildRequest =
  | { type: 'init'; taskRoot: string; handler: string }
  | {
      type: 'invoke';
      requestId: string;
      event: unknown;
      /** Epoch ms at which the invocation times out. */
      deadline: number;
      functionName: string;
      functionVersion: string;
      invokedFunctionArn: string;
      memoryLimitInMB: number;
      logGroupName: string;
      logStreamName: string;
    };

export type ChildReply =
  | { type: 'ready' }
  | { type: 'init-error'; error: FunctionErrorPayload }
  | { type: 'result'; requestId: string; ok: true; payload: unknown }
  | { type: 'result'; requestId: string; ok: false; error: FunctionErrorPayload; fatal?: boolean };
