/**
 * The secret as users type it: forgiving about form, strict about meaning, and
 * every refusal one line that names the key and says what to write. No message
 * ever carries the client secret or the connection string.
 */
import { describe, expect, it } from 'vitest';
import { authModeOf, parseBeginDate, parseSecret, parseSwitch } from '../../lambdas/core/config';
import { ConfigError } from '../../lambdas/core/errors';

const CLIENT_SECRET = 'Xy7~supersecretvalue.Q-123';
const VALID = {
  tenantid: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  clientid: '0c1e4700-1234-4000-8000-00000000c11e',
  clientsecret: CLIENT_SECRET,
  storageaccount: 'mystorageaccount',
  container: 'mycontainer',
  isactive: 'True',
  begindate: '2024-01-01T00:00:00Z',
};
const secret = (changes: Record<string, unknown>, drop: string[] = []) => {
  const value: Record<string, unknown> = { ...VALID, ...changes };
  for (const key of drop) delete value[key];
  return JSON.stringify(value);
};

/** The one-line message parseSecret refuses the text with. */
function refusal(text: string): string {
  try {
    parseSecret(text);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    expect(message).not.toContain(CLIENT_SECRET);
    return message;
  }
  throw new Error('parseSecret accepted it');
}

const DATE_FIX = 'set it to an ISO 8601 date such as 2024-01-31 or 2024-01-31T08:00:00Z, or leave it empty to copy every blob';

describe('parseSecret', () => {
  it('reads further destinations in the forms people write, and names a bad one in one line', () => {
    expect(parseSecret(secret({ destinations: ['backup/azure/', 's3://dr-copies', { bucket: 'far', prefix: 'x/', region: 'eu-west-1' }] })).also).toEqual([
      { bucket: 'backup', prefix: 'azure/' }, { bucket: 'dr-copies', prefix: '' }, { bucket: 'far', prefix: 'x/', region: 'eu-west-1' },
    ]);
    expect(parseSecret(secret({ Destinations: 'backup/azure/, other' })).also).toEqual([{ bucket: 'backup', prefix: 'azure/' }, { bucket: 'other', prefix: '' }]);
    expect(parseSecret(secret({ destinations: [] })).also).toBeUndefined();
    expect(() => parseSecret(secret({ destinations: ['arn:aws:s3:::backup'] }))).toThrow('the secret key "destinations" names "arn:aws:s3:::backup", not a valid S3 bucket name');
    expect(() => parseSecret(secret({ destinations: [{ bucket: 'backup', path: 'x/' }] }))).toThrow('the secret key "destinations" has a destination with "path", which is not known');
    expect(() => parseSecret(secret({ destinations: ['backup//x'] }))).toThrow(/starts with "\/"/);
  });

  it('reads a complete secret', () => {
    expect(parseSecret(secret({}))).toEqual({
      source: {
        account: 'mystorageaccount',
        container: 'mycontainer',
        blobEndpoint: undefined,
        credentials: { kind: 'service-principal', tenantId: VALID.tenantid, clientId: VALID.clientid, clientSecret: CLIENT_SECRET, authorityHost: undefined },
      },
      isActive: true,
      beginDate: '2024-01-01T00:00:00.000Z',
      bucket: undefined,
      prefix: undefined,
      // The keys added since (all optional) keep today's behaviour when absent.
      selection: { containers: ['mycontainer'], writing: {} },
    });
  });

  it('reads the optional keys of what to copy and how to write it', () => {
    const config = parseSecret(secret({
      container: ['alpha', 'beta'], include: '**/*.csv, reports/*', exclude: ['tmp/**'], minsize: '1K', maxsize: 10485760,
      mirror: 'yes', maxdeletes: '50', storageclass: 'standard-ia', tiermap: 'hot=STANDARD,Cool=GLACIER_IR', archive: 'Rehydrate', dryrun: 'true',
    }));
    expect(config.source.container).toBe('alpha');
    expect(config.dryRun).toBe(true);
    expect(config.selection).toEqual({
      containers: ['alpha', 'beta'],
      filters: { include: ['**/*.csv', 'reports/*'], exclude: ['tmp/**'], minSize: 1024, maxSize: 10485760 },
      mirror: true,
      maxDeletes: 50,
      writing: { storageClass: 'STANDARD_IA', tierMap: { Hot: 'STANDARD', Cool: 'GLACIER_IR' } },
      archive: 'rehydrate',
    });
    expect(parseSecret(secret({ container: '*' })).selection?.containers).toBe('all');
  });

  it.each([
    [{ storageclass: 'COLD' }, 'the secret key "storageclass" is "COLD", a class S3 does not know: use one of STANDARD, REDUCED_REDUNDANCY, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER, DEEP_ARCHIVE, GLACIER_IR'],
    [{ tiermap: 'Warm=STANDARD' }, 'the secret key "tiermap" names the tier "Warm": Azure\'s tiers are Hot, Cool, Cold, Archive'],
    [{ minsize: 'ten' }, 'the secret key "minsize" is "ten": give bytes, or a size with K, M, G or T (1024-based), like 10M'],
    [{ archive: 'thaw' }, 'the secret key "archive" is "thaw": use "skip" (report archived blobs) or "rehydrate" (start their rehydration, copy them on a later run)'],
    [{ mirror: 'sometimes' }, 'the secret key "mirror" is "sometimes", which is neither on nor off: set it to "True" or "False"'],
    [{ container: 'abc,Bad_Name' }, 'the secret key "container" is "Bad_Name", not a valid container name: use 3-63 lowercase letters, digits and single hyphens'],
  ])('refuses %j in one line naming the key', (extra, message) => {
    expect(refusal(secret(extra))).toBe(message);
  });

  it('matches keys whatever their case, underscores or hyphens', () => {
    const config = parseSecret(JSON.stringify({
      Tenant_Id: VALID.tenantid, 'client-id': VALID.clientid, ClientSecret: CLIENT_SECRET, StorageAccount: 'acct123', CONTAINER: 'c-1', IsActive: 'no',
    }));
    expect(config).toMatchObject({ isActive: false, source: { account: 'acct123', container: 'c-1' } });
  });

  it.each([['False'], ['false'], [' FALSE '], ['no'], ['N'], ['off'], ['0'], [0], [false]])('takes isactive %j as off', (value) => {
    expect(parseSecret(secret({ isactive: value })).isActive).toBe(false);
  });

  it.each([['True'], ['true'], ['yes'], ['Y'], ['on'], ['1'], [1], [true]])('takes isactive %j as on', (value) => {
    expect(parseSecret(secret({ isactive: value })).isActive).toBe(true);
  });

  it.each([
    ['maybe', 'the secret key "isactive" is "maybe", which is neither on nor off: set it to "True" or "False"'],
    ['', 'the secret key "isactive" is "", which is neither on nor off: set it to "True" or "False"'],
    [2, 'the secret key "isactive" is 2, which is neither on nor off: set it to "True" or "False"'],
    ['Truee', 'the secret key "isactive" is "Truee", which is neither on nor off: set it to "True" or "False"'],
  ])('refuses the ambiguous isactive %j', (value, message) => {
    expect(refusal(secret({ isactive: value }))).toBe(message);
  });

  it.each([
    ['2024-01-31', '2024-01-31T00:00:00.000Z'],
    ['2024-01-31 08:30', '2024-01-31T08:30:00.000Z'],
    ['2024-01-31T08:30:00+02:00', '2024-01-31T06:30:00.000Z'],
    ['', undefined],
    [null, undefined],
  ])('reads begindate %j as %j', (value, iso) => {
    expect(parseSecret(secret({ begindate: value })).beginDate).toBe(iso);
  });

  it.each([
    ['31/01/2024', `the secret key "begindate" is "31/01/2024": ${DATE_FIX}`],
    ['2024-13-45', `the secret key "begindate" is "2024-13-45": ${DATE_FIX}`],
    ['2024-02-31', `the secret key "begindate" is "2024-02-31", not a real date: ${DATE_FIX}`],
    ['yesterday', `the secret key "begindate" is "yesterday": ${DATE_FIX}`],
    [20240101, `the secret key "begindate" is 20240101: ${DATE_FIX}`],
  ])('refuses the begindate %j', (value, message) => {
    expect(refusal(secret({ begindate: value }))).toBe(message);
  });

  it('refuses text that is not JSON, or not an object', () => {
    expect(refusal('{"isactive": "True",}')).toBe(
      'the secret is not valid JSON: in the Secrets Manager console choose "Plaintext" and fix the quotes and commas',
    );
    expect(refusal('["True"]')).toMatch(/^the secret must be a JSON object of key\/value pairs, like \{"tenantid":/);
  });

  it.each([
    ['isactive', 'the secret has no "isactive": add "isactive": "True" to run or "False" to pause'],
    ['tenantid', 'the secret has no "tenantid": add it, set to the directory (tenant) id, a GUID such as 72f988bf-0000-4000-8000-000000000000'],
    ['clientid', 'the secret has no "clientid": add it, set to the application (client) id of the service principal, a GUID'],
    ['clientsecret', 'the secret has no "clientsecret": add it, set to the value of one of the service principal\'s client secrets'],
    ['storageaccount', 'the secret has no "storageaccount": add it, set to the storage account\'s name (3-24 lowercase letters and digits)'],
    ['container', 'the secret has no "container": add it, set to the container\'s name (3-63 lowercase letters, digits and hyphens), a list of them, or "*" for every container'],
  ])('names the missing key %s and what to put in it', (key, message) => {
    expect(refusal(secret({}, [key]))).toBe(message);
  });

  it('refuses a value of the wrong type, naming the key as written', () => {
    expect(refusal(secret({ Container: 123 }, ['container']))).toBe(
      'the secret key "Container" is 123: give a name, a list of names, or names separated by commas',
    );
  });

  it('refuses ids that are not ids, without echoing them (a secret pasted in the wrong key would be)', () => {
    expect(refusal(secret({ clientid: CLIENT_SECRET }))).toBe(
      'the secret key "clientid" is not a GUID: use the application (client) id from the app registration\'s "Overview" page, not a secret',
    );
    expect(refusal(secret({ tenantid: 'not a tenant' }))).toBe(
      'the secret key "tenantid" is neither a GUID nor a domain: use the directory (tenant) id from the app registration\'s "Overview" page',
    );
    expect(parseSecret(secret({ tenantid: 'contoso.onmicrosoft.com' })).source.credentials).toMatchObject({ tenantId: 'contoso.onmicrosoft.com' });
  });

  it('refuses the template\'s placeholder secret', () => {
    expect(refusal(secret({ clientsecret: 'REPLACE_WITH_CLIENT_SECRET' }))).toBe(
      'the secret still holds the placeholder "clientsecret": paste the service principal\'s client secret value',
    );
  });

  it('refuses an account URL, a bad container name, a bucket URL and an endpoint that is no URL', () => {
    expect(refusal(secret({ storageaccount: 'https://acct.blob.core.windows.net' }))).toBe(
      'the secret key "storageaccount" is "https://acct.blob.core.windows.net": use the storage account\'s name (3-24 lowercase letters and digits), not its URL',
    );
    expect(refusal(secret({ container: 'My_Container' }))).toBe(
      'the secret key "container" is "My_Container", not a valid container name: use 3-63 lowercase letters, digits and single hyphens',
    );
    expect(refusal(secret({ bucket: 's3://my-bucket' }))).toBe(
      'the secret key "bucket" is "s3://my-bucket", not a valid S3 bucket name: use 3-63 lowercase letters, digits, dots and hyphens (the name, not an s3:// URL or ARN)',
    );
    expect(refusal(secret({ blobendpoint: 'acct.blob.core.windows.net' }))).toBe(
      'the secret key "blobendpoint" is "acct.blob.core.windows.net", not a URL: use the blob service\'s endpoint, such as https://ACCOUNT.blob.core.windows.net, or leave it out',
    );
  });

  it('takes a connection string instead of a service principal, and says when it names no account', () => {
    const conn = 'DefaultEndpointsProtocol=https;AccountName=acct42;AccountKey=c2VjcmV0a2V5;EndpointSuffix=core.windows.net';
    expect(parseSecret(JSON.stringify({ connectionstring: conn, container: 'c01', isactive: 'on' })).source).toMatchObject({
      account: 'acct42', credentials: { kind: 'connection-string', connectionString: conn },
    });
    const message = refusal(JSON.stringify({ connectionstring: 'AccountKey=c2VjcmV0a2V5', container: 'c01', isactive: 'on' }));
    expect(message).toBe('the Azure connection string has no AccountName: copy it whole from the storage account\'s "Access keys" page');
    expect(message).not.toContain('c2VjcmV0a2V5');
  });

  it('takes "auth": "federated" with a tenant and client id and no secret at all', () => {
    const { clientsecret: _, ...federated } = VALID;
    expect(parseSecret(JSON.stringify({ ...federated, Auth: 'Federated' })).source.credentials).toEqual({
      kind: 'federated', tenantId: VALID.tenantid, clientId: VALID.clientid, authorityHost: undefined,
    });
    expect(authModeOf(parseSecret(JSON.stringify({ ...federated, auth: 'federated' })).source.credentials)).toBe('federated');
    // The ids are checked as for a service principal.
    expect(refusal(JSON.stringify({ ...federated, auth: 'federated', clientid: 'not-an-id' }))).toBe(
      'the secret key "clientid" is not a GUID: use the application (client) id from the app registration\'s "Overview" page, not a secret',
    );
    expect(refusal(JSON.stringify({ ...federated, auth: 'federated' }).replace(/"tenantid":"[^"]*",/, ''))).toBe(
      'the secret has no "tenantid": add it, set to the directory (tenant) id, a GUID such as 72f988bf-0000-4000-8000-000000000000',
    );
  });

  it('refuses a federated secret that still holds a client secret or a connection string, without echoing it', () => {
    expect(refusal(secret({ auth: 'federated' }))).toBe(
      'the secret says "auth": "federated" but still holds a "clientsecret": remove it (federation needs no secret, and one left stored is still a credential), or drop "auth" to keep signing in with it',
    );
    expect(parseSecret(secret({ auth: 'federated', clientsecret: '' })).source.credentials.kind).toBe('federated');
  });

  it('refuses an "auth" it does not know, naming the ones it does', () => {
    expect(refusal(secret({ auth: 'oidc' }))).toBe(
      'the secret key "auth" is "oidc": set it to "federated" (no secret: the functions sign in with their AWS roles), "clientsecret", "connectionstring" or "sas"',
    );
  });

  it('says which mode each secret selects, and an explicit mode must match what the secret holds', () => {
    const conn = 'DefaultEndpointsProtocol=https;AccountName=acct42;AccountKey=c2VjcmV0a2V5;EndpointSuffix=core.windows.net';
    const sas = 'BlobEndpoint=https://acct42.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&sp=rl&sig=c2lnbmF0dXJl';
    const mode = (value: Record<string, unknown>) => authModeOf(parseSecret(JSON.stringify({ container: 'c01', isactive: 'on', ...value })).source.credentials);
    expect(mode({ connectionstring: conn })).toBe('connection string');
    expect(mode({ connectionstring: sas })).toBe('SAS');
    expect(mode({ connectionstring: sas, auth: 'SAS' })).toBe('SAS');
    expect(authModeOf(parseSecret(secret({})).source.credentials)).toBe('client secret');
    expect(authModeOf(parseSecret(secret({ auth: 'client-secret' })).source.credentials)).toBe('client secret');
    expect(refusal(JSON.stringify({ connectionstring: conn, auth: 'sas', container: 'c01', isactive: 'on' }))).toBe(
      'the secret says "auth": "sas" but its connection string has no SharedAccessSignature: paste the SAS connection string, or set "auth" to "connectionstring"',
    );
    expect(refusal(JSON.stringify({ auth: 'connectionstring', container: 'c01', isactive: 'on' }))).toBe(
      'the secret has no "connectionstring": add it, set to the storage account\'s connection string',
    );
  });

  it('names the secret it read in every message', () => {
    expect(() => parseSecret(secret({ isactive: 'perhaps' }), 'the secret arn:aws:secretsmanager:eu-west-1:123456789012:secret:azs3copy')).toThrow(
      'the secret arn:aws:secretsmanager:eu-west-1:123456789012:secret:azs3copy key "isactive" is "perhaps", which is neither on nor off: set it to "True" or "False"',
    );
  });
});

describe('the same parsers on command-line flags', () => {
  it('names the flag', () => {
    expect(() => parseBeginDate('--begindate', 'last week')).toThrow(`--begindate is "last week": ${DATE_FIX}`);
    expect(() => parseSwitch('--active', 'sometimes')).toThrow('--active is "sometimes", which is neither on nor off: set it to "True" or "False"');
  });
});
