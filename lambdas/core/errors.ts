/**
 * The few kinds of failure the pipeline distinguishes. What matters is what the
 * caller does next: retry (rethrow so the platform retries and dead-letters),
 * record one blob as failed and go on, or stop with one line for the user.
 */

/** The user's input is wrong: a secret, a flag, a container or bucket name. One line, with the fix. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** This blob cannot be copied (too long a name, too much metadata, archived); the run goes on. */
export class BlobFailure extends Error {
  override name = 'BlobFailure';
}

/** The blob changed after it was listed; its copy must be abandoned, never mixed. */
export class SourceChangedError extends Error {
  override name = 'SourceChangedError';
}

/** Worth another try later (throttling, a dropped connection, a timeout). */
export class TransientError extends Error {
  override name = 'TransientError';
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message.split('\n')[0];
  return String(error);
}

/** HTTP status of an AWS or Azure SDK error, when it carries one. */
export function statusOf(error: unknown): number | undefined {
  const e = error as { statusCode?: number; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.statusCode ?? e?.$metadata?.httpStatusCode;
}

/** Service error code of an AWS or Azure SDK error (`NoSuchUpload`, `ConditionNotMet`, ...). */
export function codeOf(error: unknown): string | undefined {
  const e = error as { code?: string; name?: string; Code?: string; details?: { errorCode?: string } } | undefined;
  return e?.details?.errorCode ?? e?.Code ?? e?.code ?? e?.name;
}
