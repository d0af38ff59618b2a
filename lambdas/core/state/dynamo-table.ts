/**
 * The state table in DynamoDB: what the deployed pipeline uses. The stack creates
 * the table (on demand, encrypted, TTL on `expiresAt`); keys `pk` and `sk` are
 * strings. Versioned writes are condition expressions on `v`, counters are `ADD`,
 * and transact is TransactWriteItems, so a unit's outcome and the run's counters
 * change together or not at all.
 */
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactWriteItemsCommand,
  TransactionCanceledException,
  UpdateItemCommand,
  type AttributeValue,
  type Update as DynamoUpdate,
} from '@aws-sdk/client-dynamodb';
import { checkKey, conditionsOf, writeToken, type Precondition, type StateItem, type StateTable, type Update } from './table';

type Attributes = Record<string, AttributeValue>;

export function toAttribute(value: unknown): AttributeValue {
  if (value === null || value === undefined) return { NULL: true };
  if (typeof value === 'string') return { S: value };
  if (typeof value === 'number') return { N: String(value) };
  if (typeof value === 'boolean') return { BOOL: value };
  if (Array.isArray(value)) return { L: value.map(toAttribute) };
  if (typeof value === 'object') {
    return { M: Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, toAttribute(v)])) };
  }
  throw new Error(`cannot store a ${typeof value} in the state table`);
}

export function fromAttribute(value: AttributeValue): unknown {
  if (value.S !== undefined) return value.S;
  if (value.N !== undefined) return Number(value.N);
  if (value.BOOL !== undefined) return value.BOOL;
  if (value.NULL) return null;
  if (value.L) return value.L.map(fromAttribute);
  if (value.M) return Object.fromEntries(Object.entries(value.M).map(([k, v]) => [k, fromAttribute(v)]));
  if (value.NS) return value.NS.map(Number);
  if (value.SS) return value.SS;
  throw new Error('an attribute of a type the state table does not use');
}

const toItem = (attributes: Attributes): StateItem =>
  Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, fromAttribute(v)])) as StateItem;

const toAttributes = (item: Record<string, unknown>): Attributes =>
  Object.fromEntries(Object.entries(item).filter(([, v]) => v !== undefined).map(([k, v]) => [k, toAttribute(v)]));

function conditionOf(precondition: Precondition | undefined) {
  if (!precondition) return {};
  if ('ifAbsent' in precondition) return { ConditionExpression: 'attribute_not_exists(pk)' };
  return { ConditionExpression: '#v = :expected', ExpressionAttributeNames: { '#v': 'v' }, ExpressionAttributeValues: { ':expected': { N: String(precondition.ifVersion) } } };
}

/**
 * An Update as DynamoDB's UpdateExpression, with names and values kept apart from the expression, setting
 * the write token. (A retried plain update is not idempotent: counters are only ever added inside a
 * transaction, which its ClientRequestToken makes idempotent.)
 */
function expressionOf(update: Update, token: string) {
  const names: Record<string, string> = { '#v': 'v', '#tok': 'w' };
  const values: Attributes = { ':one': { N: '1' }, ':tok': { S: token } };
  const adds = ['#v :one'];
  const sets: string[] = ['#tok = :tok'];
  const removes: string[] = [];
  let n = 0;
  for (const [name, delta] of Object.entries(update.add ?? {})) {
    names[`#a${n}`] = name;
    values[`:a${n}`] = { N: String(delta) };
    adds.push(`#a${n} :a${n}`);
    n++;
  }
  for (const [name, value] of Object.entries(update.set ?? {})) {
    names[`#s${n}`] = name;
    if (value === undefined) {
      removes.push(`#s${n}`);
    } else {
      values[`:s${n}`] = toAttribute(value);
      sets.push(`#s${n} = :s${n}`);
    }
    n++;
  }
  const conditions = conditionsOf(update).map((when, c) => {
    names[`#w${c}`] = when.attribute;
    if ('absent' in when) return `attribute_not_exists(#w${c})`;
    const options = when.in.map((value, i) => {
      values[`:w${c}_${i}`] = toAttribute(value);
      return `#w${c} = :w${c}_${i}`;
    });
    return options.length ? `(${options.join(' OR ')})` : '(attribute_exists(pk) AND attribute_not_exists(pk))';
  });
  const condition = conditions.length ? conditions.join(' AND ') : undefined;
  const expression = [`ADD ${adds.join(', ')}`, sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : '']
    .filter(Boolean)
    .join(' ');
  return {
    UpdateExpression: expression,
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
    ...(condition ? { ConditionExpression: condition } : {}),
  };
}

/** A cancelled transaction whose cause was a condition (not a conflict with another transaction, which is retried). */
function conditionFailed(error: TransactionCanceledException): boolean {
  if (error.CancellationReasons) return error.CancellationReasons.some((r) => r.Code === 'ConditionalCheckFailed');
  return /ConditionalCheckFailed/.test(error.message);
}

export function dynamoTable(tableName: string, client = new DynamoDBClient({}), where: { region?: string; endpoint?: string } = {}): StateTable {
  const key = (pk: string, sk: string): Attributes => ({ pk: { S: checkKey(pk, 'pk') }, sk: { S: checkKey(sk, 'sk') } });

  const get = async (pk: string, sk: string): Promise<StateItem | undefined> => {
    const out = await client.send(new GetItemCommand({ TableName: tableName, Key: key(pk, sk), ConsistentRead: true }));
    return out.Item ? toItem(out.Item) : undefined;
  };

  return {
    description: { kind: 'dynamodb', table: tableName, ...where },
    get,
    async put(item, precondition) {
      const version = precondition && 'ifVersion' in precondition ? precondition.ifVersion + 1 : 1;
      const w = writeToken();
      checkKey(item.pk, 'pk');
      checkKey(item.sk, 'sk');
      try {
        await client.send(new PutItemCommand({ TableName: tableName, Item: toAttributes({ ...item, v: version, w }), ...conditionOf(precondition) }));
        return true;
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) return (await get(item.pk, item.sk))?.w === w;
        throw error;
      }
    },
    async update(update) {
      const w = writeToken();
      try {
        const out = await client.send(
          new UpdateItemCommand({ TableName: tableName, Key: key(update.pk, update.sk), ReturnValues: 'ALL_NEW', ...expressionOf(update, w) }),
        );
        return toItem(out.Attributes ?? {});
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) {
          const current = await get(update.pk, update.sk);
          return current?.w === w ? current : undefined;
        }
        throw error;
      }
    },
    async query(pk, skPrefix, options = {}) {
      const out = await client.send(
        new QueryCommand({
          TableName: tableName,
          ConsistentRead: true,
          KeyConditionExpression: skPrefix ? 'pk = :pk AND begins_with(sk, :prefix)' : 'pk = :pk',
          ExpressionAttributeValues: { ':pk': { S: checkKey(pk, 'pk') }, ...(skPrefix ? { ':prefix': { S: skPrefix } } : {}) },
          ExclusiveStartKey: options.after === undefined ? undefined : key(pk, options.after),
          Limit: options.limit ?? 1000,
        }),
      );
      return { items: (out.Items ?? []).map(toItem), next: out.LastEvaluatedKey?.sk?.S };
    },
    async delete(pk, sk) {
      await client.send(new DeleteItemCommand({ TableName: tableName, Key: key(pk, sk) }));
    },
    async transact(put, updates) {
      const version = 'ifVersion' in put.precondition ? put.precondition.ifVersion + 1 : 1;
      const w = writeToken();
      checkKey(put.item.pk, 'pk');
      checkKey(put.item.sk, 'sk');
      try {
        await client.send(
          new TransactWriteItemsCommand({
            // DynamoDB itself makes a retried transaction with this token (within 10 minutes) a no-op.
            ClientRequestToken: w,
            TransactItems: [
              { Put: { TableName: tableName, Item: toAttributes({ ...put.item, v: version, w }), ...conditionOf(put.precondition) } },
              ...updates.map((u) => ({ Update: { TableName: tableName, Key: key(u.pk, u.sk), ...expressionOf(u, w) } as DynamoUpdate })),
            ],
          }),
        );
        return true;
      } catch (error) {
        if (error instanceof TransactionCanceledException && conditionFailed(error)) {
          return (await get(put.item.pk, put.item.sk))?.w === w;
        }
        throw error;
      }
    },
  };
}
