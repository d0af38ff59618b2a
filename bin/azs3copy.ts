/**
 * The azs3copy command line: argument parsing and dispatch only; the commands live
 * in lambdas/local/ and are imported when they run, so `--help` or a bad flag
 * answers without loading any SDK. bin/build.mjs builds this into dist/.
 */
import { parseArgs } from 'node:util';
import { ConfigError, errorMessage } from '../lambdas/core/errors';
import { redact } from '../lambdas/core/log';
import type { CliValues } from '../lambdas/local/commands';
import { USAGE } from '../lambdas/local/usage';

/** What a command is given. */
interface CommandCall {
  values: CliValues;
  /** The positional arguments after the command's name. */
  args: string[];
  env: NodeJS.ProcessEnv;
}

interface Command {
  /** Imports the command's module and runs it; the exit status. */
  run(call: CommandCall): Promise<number>;
  /** Checks the positional arguments of a command that takes some (by default a command takes none). */
  checkArgs?(args: string[]): void;
}

/** Every command, in the order the "unknown command" message lists them. Adding one is one line here (and its USAGE). */
const COMMANDS: Record<string, Command> = {
  copy: { run: async (c) => (await import('../lambdas/local/commands')).copyCommand(c.values, c.env) },
  plan: { run: async (c) => (await import('../lambdas/local/plan-commands')).planCommand(c.values, c.env) },
  redrive: { run: async (c) => (await import('../lambdas/local/redrive-commands')).redriveCommand(c.values, c.env) },
  'check-secret': {
    checkArgs: (args) => {
      if (args.length !== 1) throw new ConfigError('check-secret takes the secret\'s file: azs3copy check-secret FILE');
    },
    run: async (c) => (await import('../lambdas/local/commands')).checkSecretCommand(c.args[0]),
  },
  status: { run: async (c) => (await import('../lambdas/local/status-commands')).statusCommand(c.values, c.env) },
  runs: { run: async (c) => (await import('../lambdas/local/status-commands')).runsCommand(c.values, c.env) },
  federation: { run: async (c) => (await import('../lambdas/local/federation-commands')).federationCommand(c.values, c.env) },
  watch: { run: async (c) => (await import('../lambdas/local/watch-commands')).watchCommand(c.values, c.env) },
  demo: { run: async (c) => (await import('../lambdas/local/commands')).demoCommand(c.values) },
};

const OPTIONS = {
  'azure-connection-string': { type: 'string' },
  'azure-account': { type: 'string' },
  'azure-tenant-id': { type: 'string' },
  'azure-client-id': { type: 'string' },
  'azure-blob-endpoint': { type: 'string' },
  'azure-authority-host': { type: 'string' },
  container: { type: 'string', multiple: true },
  'all-containers': { type: 'boolean' },
  include: { type: 'string', multiple: true },
  exclude: { type: 'string', multiple: true },
  'min-size': { type: 'string' },
  'max-size': { type: 'string' },
  mirror: { type: 'boolean' },
  'max-deletes': { type: 'string' },
  'storage-class': { type: 'string' },
  'tier-map': { type: 'string' },
  archive: { type: 'string' },
  's3-endpoint': { type: 'string' },
  bucket: { type: 'string' },
  'also-to': { type: 'string', multiple: true },
  prefix: { type: 'string' },
  begindate: { type: 'string' },
  report: { type: 'string' },
  region: { type: 'string' },
  plan: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'large-blob-mib': { type: 'string' },
  'part-mib': { type: 'string' },
  concurrency: { type: 'string' },
  'function-timeout': { type: 'string' },
  'log-file': { type: 'string' },
  'secret-file': { type: 'string' },
  'run-id': { type: 'string' },
  'dead-letters': { type: 'string' },
  'queue-url': { type: 'string' },
  'topic-arn': { type: 'string' },
  'max-messages': { type: 'string' },
  listen: { type: 'string' },
  'webhook-key': { type: 'string' },
  stack: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
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
  const found = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (found?.checkArgs) found.checkArgs(rest);
  else if (rest.length > 0) throw new ConfigError(`unexpected argument "${rest[0]}"; run "azs3copy --help" for the options`);
  if (!found) throw new ConfigError(`unknown command "${command}": use ${listed(Object.keys(COMMANDS))}`);
  return found.run({ values: parsed.values, args: rest, env: process.env });
}

/** `"a", "b" or "c"` */
function listed(names: string[]): string {
  const quoted = names.map((name) => `"${name}"`);
  return quoted.length > 1 ? `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}` : quoted.join('');
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const line = error instanceof ConfigError ? errorMessage(error) : `unexpected error: ${errorMessage(error)}`;
    process.stderr.write(`azs3copy: ${redact(line)}\n`);
    process.exit(error instanceof ConfigError ? 2 : 3);
  },
);
