/**
 * Structured JSON logs, one object a line, with the run id on every line once it
 * is known. Every line passes through the redactor: a secret registered here, or
 * anything shaped like an account key or SAS signature, is replaced before it is
 * written, so a careless error message cannot leak one.
 */

export type Level = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const secrets = new Set<string>();

/** Values that must never appear in output: client secrets, connection strings, account keys, tokens. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 6) secrets.add(value);
}

const SHAPES: [RegExp, string][] = [
  [/(AccountKey=)[^;"\s]+/gi, '$1***'],
  [/(SharedAccessSignature=)[^;"\s]+/gi, '$1***'],
  [/([?&]sig=)[^&"\s]+/gi, '$1***'],
  [/(client_secret=)[^&"\s]+/gi, '$1***'],
  [/(Authorization["']?\s*[:=]\s*["']?)(Bearer |SharedKey )?[^"'\s,}]+/gi, '$1***'],
  // A JWT (an STS web identity token, an Entra ID access token), wherever it turns up.
  [/eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]*/g, '***'],
];

export function redact(text: string): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join('***');
  for (const [shape, replacement] of SHAPES) out = out.replace(shape, replacement);
  return out;
}

export interface LoggerOptions {
  level?: Level;
  /** Where lines go; stdout in Lambda (CloudWatch picks it up), a file or nowhere locally. */
  write?: (line: string) => void;
}

export function createLogger(base: Record<string, unknown> = {}, options: LoggerOptions = {}): Logger {
  const level = options.level ?? ((process.env.LOG_LEVEL as Level | undefined) ?? 'info');
  const write = options.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const emit = (lvl: Level, message: string, fields?: Record<string, unknown>) => {
    if (RANK[lvl] < (RANK[level] ?? 20)) return;
    const record = { time: new Date().toISOString(), level: lvl, message, ...base, ...fields };
    write(redact(JSON.stringify(record, errorReplacer)));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ ...base, ...fields }, { level, write }),
  };
}

export function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const withCode = value as Error & { code?: string; statusCode?: number };
    return { name: value.name, message: value.message, code: withCode.code, statusCode: withCode.statusCode };
  }
  return value;
}

export const silentLogger: Logger = createLogger({}, { write: () => undefined });
