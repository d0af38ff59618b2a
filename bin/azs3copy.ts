/**
 * The azs3copy command line: argument parsing only; the commands live in
 * lambdas/local/commands.ts.
 */
import { parseArgs } from 'node:util';
import { ConfigError, errorMessage } from '../lambdas/core/errors';
import { redact } from '../lambdas/core/log';
import { checkSecretCommand, copyCommand, demoCommand, USAGE } from '../lambdas/local/commands';
import { redriveCommand } from '../lambdas/local/redrive-commands';

const OPTIONS = {
  'azure-connection-string': { type: 'string' },
  'azure-account': { type: 'string' },
  'azure-tenant-id': { type: 'string' },
  'azure-client-id': { type: 'string' },
  'azure-blob-endpoint': { type: 'string' },
  'azure-authority-host': { type: 'string' },
  container: { type: 'string' },
  's3-endpoint': { type: 'string' },
  bucket: { type: 'string' },
  prefix: { type: 'string' },
  begindate: { type: 'string' },
  report: { type: 'string' },
  'large-blob-mib': { type: 'string' },
  'part-mib': { type: 'string' },
  concurrency: { type: 'string' },
  'log-file': { type: 'string' },
  'secret-file': { type: 'string' },
  'run-id': { type: 'string' },
  'dead-letters': { type: 'string' },
  'queue-url': { type: 'string' },
  'topic-arn': { type: 'string' },
  'max-messages': { type: 'string' },
  quiet: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new ConfigError(`${errorMessage(error)}; run "azs3copy --help" for the options`);
  }
  const [command, ...rest] = parsed.positionals;
  if (parsed.values.help || command === 'help' || command === undefined) {
    process.stdout.write(USAGE);
    return command === undefined && !parsed.values.help ? 2 : 0;
  }
  if (command === 'check-secret') {
    if (rest.length !== 1) throw new ConfigError('check-secret takes the secret\'s file: azs3copy check-secret FILE');
    return checkSecretCommand(rest[0]);
  }
  if (rest.length > 0) throw new ConfigError(`unexpected argument "${rest[0]}"; run "azs3copy --help" for the options`);
  switch (command) {
    case 'copy':
      return copyCommand(parsed.values, process.env);
    case 'redrive':
      return redriveCommand(parsed.values, process.env);
    case 'demo':
      return demoCommand(parsed.values);
    default:
      throw new ConfigError(`unknown command "${command}": use "copy", "redrive", "check-secret" or "demo"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const line = error instanceof ConfigError ? errorMessage(error) : `unexpected error: ${errorMessage(error)}`;
    process.stderr.write(`azs3copy: ${redact(line)}\n`);
    process.exit(error instanceof ConfigError ? 2 : 3);
  },
);
