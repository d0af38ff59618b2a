/**
 * The copy's configuration as users write it: a JSON secret edited by hand in the
 * console, or CLI flags. Parsing is forgiving about form (`true`, `"True"`, `"1"`)
 * and strict about meaning: anything ambiguous is a ConfigError naming the key and
 * the fix. The parsed credentials stay in memory; they never enter a message.
 */
import { parseDestinations, type Destination } from './destinations';
import { registerSecret } from './log';
import { ConfigError } from './errors';
import { archiveFrom, namesFrom, sizeFrom, storageClassFrom, tierMapFrom, type Selection } from './selection';

export type AzureCredentials =
  | { kind: 'connection-string'; connectionString: string }
  | {
      kind: 'service-principal';
      tenantId: string;
      clientId: string;
      clientSecret: string;
      /** Entra ID authority; only for sovereign clouds and local tests. */
      authorityHost?: string;
    }
  | {
      /**
       * No secret: the app registration trusts the AWS identity the copy runs as (each function's role)
       * through a federated identity credential, and a token from STS GetWebIdentityToken is the proof.
       */
      kind: 'federated';
      tenantId: string;
      clientId: string;
      authorityHost?: string;
    };

/** How a secret signs in to Azure, as its `auth` key names it (or as its other keys imply). */
export type AuthMode = 'federated' | 'client secret' | 'connection string' | 'SAS';

/** The mode of parsed credentials, for messages (`check-secret`). */
export function authModeOf(credentials: AzureCredentials): AuthMode {
  if (credentials.kind === 'federated') return 'federated';
  if (credentials.kind === 'service-principal') return 'client secret';
  return parseConnectionString(credentials.connectionString).sharedaccesssignature ? 'SAS' : 'connection string';
}

/** The `auth` key's values, compared without case, spaces, `-` and `_`. */
const AUTH_WORDS: Record<string, AuthMode> = {
  federated: 'federated',
  federation: 'federated',
  clientsecret: 'client secret',
  secret: 'client secret',
  serviceprincipal: 'client secret',
  connectionstring: 'connection string',
  sas: 'SAS',
};

export interface SourceConfig {
  account: string;
  container: string;
  blobEndpoint?: string;
  credentials: AzureCredentials;
}

export interface CopyConfig {
  source: SourceConfig;
  isActive: boolean;
  /** ISO instant; blobs modified at or before it are left alone. */
  beginDate?: string;
  /** Overrides of the deployment's destination, when the secret retargets it. */
  bucket?: string;
  prefix?: string;
  /** Further destinations: every blob is read once and written to the first destination and to each of these. */
  also?: Destination[];
  /** Which containers and blobs, mirror, storage class, archive policy (optional keys; defaults in code). */
  selection?: Partial<Selection>;
  /** List and compare, copy nothing, write the plan as the run's report. */
  dryRun?: boolean;
  /** The events endpoint's shared key (Event Grid's `?code=`); no events are taken without one. */
  webhookKey?: string;
}

const TRUE_WORDS = new Set(['true', 'yes', 'y', '1', 'on']);
const FALSE_WORDS = new Set(['false', 'no', 'n', '0', 'off']);

/** `subject` names the value in messages: `the secret x key "isactive"`, `--flag`. */
export function parseSwitch(subject: string, value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number' && (value === 0 || value === 1)) return value === 1;
  if (typeof value === 'string') {
    const word = value.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
  }
  throw new ConfigError(`${subject} is ${JSON.stringify(value)}, which is neither on nor off: set it to "True" or "False"`);
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)(Z|[+-]\d{2}:?\d{2})?$/i;

/** An ISO 8601 date or date-time; without a zone it is read as UTC. Returns the ISO instant. */
export function parseBeginDate(subject: string, value: unknown): string | undefined {
  if (value === undefined || value === null || (typeof value === 'string' && value.trim() === '')) {
    return undefined;
  }
  const fix = `set it to an ISO 8601 date such as 2024-01-31 or 2024-01-31T08:00:00Z, or leave it empty to copy every blob`;
  if (typeof value !== 'string') throw new ConfigError(`${subject} is ${JSON.stringify(value)}: ${fix}`);
  const text = value.trim();
  let iso: string | undefined;
  if (DATE_ONLY.test(text)) iso = `${text}T00:00:00Z`;
  const m = DATE_TIME.exec(text);
  if (m) iso = `${m[1]}T${m[2]}${m[5] ? m[5].toUpperCase() : 'Z'}`;
  const time = iso ? Date.parse(iso) : NaN;
  if (!iso || Number.isNaN(time)) throw new ConfigError(`${subject} is ${JSON.stringify(value)}: ${fix}`);
  const canonical = new Date(time).toISOString();
  // Date.parse rolls 2024-02-31 over to March; a typo must not silently move the window.
  if (!canonical.startsWith(iso.slice(0, 10))) throw new ConfigError(`${subject} is ${JSON.stringify(value)}, not a real date: ${fix}`);
  return canonical;
}

/** The account name a connection string names (also for `UseDevelopmentStorage=true`, and a SAS one's BlobEndpoint). */
export function accountOfConnectionString(connectionString: string): string {
  const fields = parseConnectionString(connectionString);
  if (fields.usedevelopmentstorage?.toLowerCase() === 'true') return 'devstoreaccount1';
  const account = fields.accountname ?? accountOfEndpoint(fields.blobendpoint);
  if (!account) {
    throw new ConfigError(
      'the Azure connection string has no AccountName: copy it whole from the storage account\'s "Access keys" page',
    );
  }
  return account;
}

/** https://ACCOUNT.blob.core.windows.net, or an emulator's http://127.0.0.1:10000/ACCOUNT. */
function accountOfEndpoint(endpoint: string | undefined): string | undefined {
  if (!endpoint || !URL.canParse(endpoint)) return undefined;
  const url = new URL(endpoint);
  const byPath = /^(\d+\.\d+\.\d+\.\d+|localhost|\[[0-9a-f:]+\])$/i.test(url.hostname);
  return (byPath ? url.pathname.split('/').find(Boolean) : url.hostname.split('.')[0]) || undefined;
}

export function parseConnectionString(connectionString: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const part of connectionString.split(';')) {
    const at = part.indexOf('=');
    if (at > 0) fields[part.slice(0, at).trim().toLowerCase()] = part.slice(at + 1).trim();
  }
  return fields;
}

/** Secret keys are matched ignoring case, `_` and `-`, since people type them by hand. */
function normaliseKeys(raw: Record<string, unknown>): Map<string, { key: string; value: unknown }> {
  const out = new Map<string, { key: string; value: unknown }>();
  for (const [key, value] of Object.entries(raw)) out.set(key.toLowerCase().replace(/[_\-\s]/g, ''), { key, value });
  return out;
}

/** What each key holds, for the message that asks for it. */
const KEY_FORMS: Record<string, string> = {
  tenantid: 'the directory (tenant) id, a GUID such as 72f988bf-0000-4000-8000-000000000000',
  clientid: 'the application (client) id of the service principal, a GUID',
  clientsecret: 'the value of one of the service principal\'s client secrets',
  storageaccount: 'the storage account\'s name (3-24 lowercase letters and digits)',
  container: 'the container\'s name (3-63 lowercase letters, digits and hyphens)',
  connectionstring: 'the storage account\'s connection string',
  blobendpoint: 'the blob service\'s URL',
  bucket: 'the destination bucket\'s name',
  prefix: 'the destination key prefix',
  authorityhost: 'the Entra ID authority\'s URL',
  destinations: 'further destinations, each "bucket/prefix" or {"bucket", "prefix", "region"}',
  auth: '"federated" (no secret: the functions sign in with their AWS roles), "clientsecret", "connectionstring" or "sas"',
};

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TENANT_DOMAIN = /^[a-z0-9-]+(\.[a-z0-9-]+)+$/i;

export const SECRET_TEMPLATE = {
  tenantid: '00000000-0000-0000-0000-000000000000',
  clientid: '00000000-0000-0000-0000-000000000000',
  clientsecret: 'REPLACE_WITH_CLIENT_SECRET',
  storageaccount: 'mystorageaccount',
  container: 'mycontainer',
  isactive: 'False',
  begindate: '2024-01-01T00:00:00Z',
} as const;

/**
 * Parse the secret's JSON text. `where` names it in errors (the secret's name, never its value).
 */
export function parseSecret(text: string, where = 'the secret'): CopyConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ConfigError(
      `${where} is not valid JSON: in the Secrets Manager console choose "Plaintext" and fix the quotes and commas`,
    );
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${where} must be a JSON object of key/value pairs, like ${JSON.stringify(SECRET_TEMPLATE)}`);
  }
  const keys = normaliseKeys(raw as Record<string, unknown>);
  const text_ = (name: string, required: boolean): string | undefined => {
    const entry = keys.get(name);
    const form = KEY_FORMS[name] ?? 'text';
    if (entry === undefined || entry.value === null || entry.value === '') {
      if (required) throw new ConfigError(`${where} has no "${name}": add it, set to ${form}`);
      return undefined;
    }
    if (typeof entry.value !== 'string') {
      throw new ConfigError(`${where} key "${entry.key}" must be a string (${form}), not a ${typeof entry.value}: put it in quotes`);
    }
    return entry.value.trim();
  };

  const isActiveEntry = keys.get('isactive');
  if (!isActiveEntry) throw new ConfigError(`${where} has no "isactive": add "isactive": "True" to run or "False" to pause`);
  const isActive = parseSwitch(`${where} key "${isActiveEntry.key}"`, isActiveEntry.value);
  if (!isActive) {
    // Switched off wins: a fresh deployment's template (off, placeholder secret) is a paused copy, not an error.
    try {
      return parseSecretBody();
    } catch (error) {
      if (error instanceof ConfigError) throw new SwitchedOffError(error.message);
      throw error;
    }
  }
  return parseSecretBody();

  /** What `auth` asks for; undefined when it is absent (the other keys decide, as before it existed). */
  function authMode(): AuthMode | undefined {
    const entry = keys.get('auth');
    if (entry === undefined || entry.value === null || entry.value === '') return undefined;
    const mode = typeof entry.value === 'string' ? AUTH_WORDS[entry.value.toLowerCase().replace(/[_\-\s]/g, '')] : undefined;
    if (!mode) throw new ConfigError(`${where} key "${entry.key}" is ${JSON.stringify(entry.value)}: set it to ${KEY_FORMS.auth}`);
    return mode;
  }

  /** The app registration's tenant and client ids. The values are not echoed: a secret pasted into the wrong key would be. */
  function appIds(): { tenantId: string; clientId: string } {
    const tenantId = text_('tenantid', true)!;
    const clientId = text_('clientid', true)!;
    if (!GUID.test(clientId)) {
      throw new ConfigError(`${where} key "clientid" is not a GUID: use the application (client) id from the app registration's "Overview" page, not a secret`);
    }
    if (!GUID.test(tenantId) && !TENANT_DOMAIN.test(tenantId)) {
      throw new ConfigError(`${where} key "tenantid" is neither a GUID nor a domain: use the directory (tenant) id from the app registration's "Overview" page`);
    }
    return { tenantId, clientId };
  }

  function parseSecretBody(): CopyConfig {
    const beginDateEntry = keys.get('begindate');
    const beginDate = parseBeginDate(`${where} key "${beginDateEntry?.key ?? 'begindate'}"`, beginDateEntry?.value);

    const mode = authMode();
    const connectionString = mode === 'federated' || mode === 'client secret' ? undefined : text_('connectionstring', mode !== undefined);
    let credentials: AzureCredentials;
    let account: string;
    if (mode === 'federated') {
      const leftover = ['clientsecret', 'connectionstring'].find((name) => text_(name, false) !== undefined);
      if (leftover) {
        throw new ConfigError(
          `${where} says "auth": "federated" but still holds a "${leftover}": remove it (federation needs no secret, and one left stored is still a credential), or drop "auth" to keep signing in with it`,
        );
      }
      const { tenantId, clientId } = appIds();
      credentials = { kind: 'federated', tenantId, clientId, authorityHost: text_('authorityhost', false) };
      account = text_('storageaccount', true)!;
    } else if (connectionString) {
      if (mode === 'SAS' && !parseConnectionString(connectionString).sharedaccesssignature) {
        throw new ConfigError(`${where} says "auth": "sas" but its connection string has no SharedAccessSignature: paste the SAS connection string, or set "auth" to "connectionstring"`);
      }
      credentials = { kind: 'connection-string', connectionString };
      account = text_('storageaccount', false) ?? accountOfConnectionString(connectionString);
    } else {
      const { tenantId, clientId } = appIds();
      const clientSecret = text_('clientsecret', true)!;
      if (clientSecret === SECRET_TEMPLATE.clientsecret) {
        throw new ConfigError(`${where} still holds the placeholder "clientsecret": paste the service principal's client secret value`);
      }
      credentials = { kind: 'service-principal', tenantId, clientId, clientSecret, authorityHost: text_('authorityhost', false) };
      account = text_('storageaccount', true)!;
    }
    if (!/^[a-z0-9]{3,24}$/.test(account) && !connectionString) {
      throw new ConfigError(
        `${where} key "storageaccount" is "${account}": use the storage account's name (3-24 lowercase letters and digits), not its URL`,
      );
    }
    const containerEntry = keys.get('container');
    if (!containerEntry || containerEntry.value === '' || containerEntry.value === null) {
      throw new ConfigError(`${where} has no "container": add it, set to ${KEY_FORMS.container}, a list of them, or "*" for every container`);
    }
    const named = namesFrom(containerEntry.value, `${where} key "${containerEntry.key}"`);
    const all = named.length === 1 && named[0] === '*';
    if (!all) for (const name of named) checkContainerName(name, `${where} key "${containerEntry.key}"`);
    const container = all ? '' : named[0];
    const blobEndpoint = text_('blobendpoint', false);
    if (blobEndpoint !== undefined && !URL.canParse(blobEndpoint)) {
      throw new ConfigError(`${where} key "blobendpoint" is "${blobEndpoint}", not a URL: use the blob service's endpoint, such as https://ACCOUNT.blob.core.windows.net, or leave it out`);
    }
    const bucket = text_('bucket', false);
    if (bucket !== undefined) checkBucketName(bucket, `${where} key "bucket"`);
    return {
      source: { account, container, blobEndpoint, credentials },
      isActive,
      beginDate,
      bucket,
      prefix: text_('prefix', false),
      selection: selectionOf(all ? 'all' : named),
      dryRun: keys.has('dryrun') ? parseSwitch(`${where} key "${keys.get('dryrun')!.key}"`, keys.get('dryrun')!.value) : undefined,
      webhookKey: webhookKeyOf(text_('webhookkey', false)),
      also: alsoOf(),
    };
  }

  /** Further destinations (optional): every blob is also written to each. */
  function alsoOf(): Destination[] | undefined {
    const entry = keys.get('destinations');
    if (!entry || entry.value === null || entry.value === '' || (Array.isArray(entry.value) && entry.value.length === 0)) return undefined;
    return parseDestinations(entry.value, `${where} key "${entry.key}"`);
  }

  /** The optional keys of issue-era additions: absent keys keep today's behaviour. */
  function selectionOf(containers: string[] | 'all'): Partial<Selection> {
    const entry = (name: string) => keys.get(name);
    const subject = (name: string) => `${where} key "${entry(name)?.key ?? name}"`;
    const include = entry('include') ? namesFrom(entry('include')!.value, subject('include')) : undefined;
    const exclude = entry('exclude') ? namesFrom(entry('exclude')!.value, subject('exclude')) : undefined;
    const minSize = entry('minsize') ? sizeFrom(entry('minsize')!.value, subject('minsize')) : undefined;
    const maxSize = entry('maxsize') ? sizeFrom(entry('maxsize')!.value, subject('maxsize')) : undefined;
    const filters = include || exclude || minSize !== undefined || maxSize !== undefined ? { include, exclude, minSize, maxSize } : undefined;
    const storageClassText = text_('storageclass', false);
    const maxDeletesEntry = entry('maxdeletes');
    let maxDeletes: number | undefined;
    if (maxDeletesEntry) {
      const n = typeof maxDeletesEntry.value === 'string' ? Number(maxDeletesEntry.value) : maxDeletesEntry.value;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new ConfigError(`${subject('maxdeletes')} is ${JSON.stringify(maxDeletesEntry.value)}: give a whole number of objects`);
      maxDeletes = n;
    }
    return {
      containers,
      filters,
      mirror: entry('mirror') ? parseSwitch(subject('mirror'), entry('mirror')!.value) : undefined,
      maxDeletes,
      writing: {
        storageClass: storageClassText ? storageClassFrom(storageClassText, subject('storageclass')) : undefined,
        tierMap: entry('tiermap') ? tierMapFrom(entry('tiermap')!.value, subject('tiermap')) : undefined,
      },
      archive: entry('archive') ? archiveFrom(entry('archive')!.value, subject('archive')) : undefined,
    };
  }
}

/** A shared key long enough not to be guessed; kept out of every log line. */
export function webhookKeyOf(key: string | undefined, subject = 'the secret key "webhookkey"'): string | undefined {
  if (key === undefined || key === '') return undefined;
  if (key.length < 16 || /\s/.test(key)) {
    throw new ConfigError(`${subject} is too short or holds spaces: use at least 16 characters, e.g. from "openssl rand -hex 24"`);
  }
  registerSecret(key);
  return key;
}

/**
 * The secret says the copy is off and is incomplete as well (as the deployed template is):
 * a run is simply not started; the problem is only worth a mention.
 */
export class SwitchedOffError extends ConfigError {
  override name = 'SwitchedOffError';
}

/** S3's rules for a bucket name, checked before a request makes them a 400 or a 404. */
export function checkBucketName(bucket: string, where: string): void {
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) || bucket.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(bucket)) {
    throw new ConfigError(
      `${where} is "${bucket}", not a valid S3 bucket name: use 3-63 lowercase letters, digits, dots and hyphens (the name, not an s3:// URL or ARN)`,
    );
  }
}

export function checkContainerName(container: string, where: string): void {
  if (!/^(\$root|[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9])$/.test(container)) {
    throw new ConfigError(
      `${where} is "${container}", not a valid container name: use 3-63 lowercase letters, digits and single hyphens`,
    );
  }
}

/** A destination prefix is used as given; a missing trailing slash is the user's choice, not ours. */
export function checkPrefix(prefix: string, where: string): void {
  if (prefix.startsWith('/')) {
    throw new ConfigError(`${where} "${prefix}" starts with "/", which S3 keeps as part of the key: drop the leading slash`);
  }
}
