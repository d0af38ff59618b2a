/**
 * CloudFormation's intrinsic functions and pseudo-parameters, resolved against
 * what the box created: a Ref or Fn::GetAtt becomes the physical id or attribute
 * of the resource in moto (or in the box's own Lambda emulation). A function the
 * box does not know, or a reference to a resource it did not create, is an error
 * that names it: nothing resolves to a guess.
 */

export interface Pseudo {
  region: string;
  account: string;
  partition: string;
  stackName: string;
  stackId: string;
  urlSuffix: string;
}

/** What a created resource answers to: its Ref value and its Fn::GetAtt attributes. */
export interface Created {
  ref: string;
  attrs: Record<string, string>;
}

export interface ResolveScope {
  pseudo: Pseudo;
  /** A created resource by logical id; undefined when it was not (yet) created. */
  resource(logicalId: string): Created | undefined;
  /** Why a resource was not created, when it was skipped on purpose. */
  skippedBecause?(logicalId: string): string | undefined;
  parameters?: Record<string, unknown>;
  conditions?: Record<string, boolean>;
}

export class IntrinsicError extends Error {
  override name = 'IntrinsicError';
}

const NO_VALUE = Symbol('AWS::NoValue');

/** Every logical id a value refers to (Ref, Fn::GetAtt, ${X} and ${X.Attr} in Fn::Sub). */
export function referencesOf(value: unknown, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    for (const v of value) referencesOf(v, into);
  } else if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (typeof v.Ref === 'string' && !v.Ref.startsWith('AWS::')) into.add(v.Ref);
    const getAtt = v['Fn::GetAtt'];
    if (getAtt) into.add(Array.isArray(getAtt) ? String(getAtt[0]) : String(getAtt).split('.')[0]);
    const sub = v['Fn::Sub'];
    if (sub !== undefined) {
      const [text, vars] = Array.isArray(sub) ? [sub[0] as string, (sub[1] ?? {}) as Record<string, unknown>] : [sub as string, {}];
      for (const m of text.matchAll(/\$\{([^!}][^}]*)\}/g)) {
        const name = m[1].split('.')[0];
        if (!(m[1] in vars) && !name.startsWith('AWS::')) into.add(name);
      }
      referencesOf(vars, into);
    }
    for (const [key, inner] of Object.entries(v)) if (key !== 'Ref' && key !== 'Fn::GetAtt' && key !== 'Fn::Sub') referencesOf(inner, into);
  }
  return into;
}

export function resolve(value: unknown, scope: ResolveScope): unknown {
  const out = resolveInner(value, scope, '');
  return out === NO_VALUE ? undefined : out;
}

/** Resolve to a string, or fail naming where. */
export function resolveString(value: unknown, scope: ResolveScope, where: string): string {
  const out = resolve(value, scope);
  if (typeof out !== 'string' && typeof out !== 'number' && typeof out !== 'boolean') {
    throw new IntrinsicError(`${where} resolved to ${JSON.stringify(out)}, not a string`);
  }
  return String(out);
}

function pseudoParameter(name: string, scope: ResolveScope): string | typeof NO_VALUE | undefined {
  const p = scope.pseudo;
  const values: Record<string, string> = {
    'AWS::Region': p.region,
    'AWS::AccountId': p.account,
    'AWS::Partition': p.partition,
    'AWS::StackName': p.stackName,
    'AWS::StackId': p.stackId,
    'AWS::URLSuffix': p.urlSuffix,
  };
  if (name === 'AWS::NoValue') return NO_VALUE;
  if (name === 'AWS::NotificationARNs') throw new IntrinsicError('Ref AWS::NotificationARNs is not supported in the box');
  return values[name];
}

function created(logicalId: string, scope: ResolveScope, where: string): Created {
  const found = scope.resource(logicalId);
  if (found) return found;
  const skipped = scope.skippedBecause?.(logicalId);
  throw new IntrinsicError(
    skipped
      ? `${where} refers to ${logicalId}, which the box did not create (${skipped})`
      : `${where} refers to ${logicalId}, which does not exist (yet)`,
  );
}

function ref(name: string, scope: ResolveScope, where: string): unknown {
  if (name.startsWith('AWS::')) {
    const value = pseudoParameter(name, scope);
    if (value === undefined) throw new IntrinsicError(`${where}: unknown pseudo-parameter ${name}`);
    return value;
  }
  if (scope.parameters && name in scope.parameters) return scope.parameters[name];
  return created(name, scope, where).ref;
}

function getAtt(logicalId: string, attr: string, scope: ResolveScope, where: string): string {
  const resource = created(logicalId, scope, where);
  const value = resource.attrs[attr];
  if (value === undefined) throw new IntrinsicError(`${where}: ${logicalId} has no attribute ${attr} in the box`);
  return value;
}

function sub(text: string, vars: Record<string, unknown>, scope: ResolveScope, where: string): string {
  return text.replace(/\$\{([^}]*)\}/g, (_whole, name: string) => {
    if (name.startsWith('!')) return `\${${name.slice(1)}}`;
    if (name in vars) return String(vars[name]);
    if (name.startsWith('AWS::')) return String(ref(name, scope, where));
    const dot = name.indexOf('.');
    if (dot > 0) return getAtt(name.slice(0, dot), name.slice(dot + 1), scope, where);
    return String(ref(name, scope, where));
  });
}

function condition(name: string, scope: ResolveScope, where: string): boolean {
  const value = scope.conditions?.[name];
  if (value === undefined) throw new IntrinsicError(`${where}: unknown condition ${name}`);
  return value;
}

function resolveInner(value: unknown, scope: ResolveScope, where: string): unknown {
  if (Array.isArray(value)) {
    return value.map((v, i) => resolveInner(v, scope, `${where}[${i}]`)).filter((v) => v !== NO_VALUE);
  }
  if (!value || typeof value !== 'object') return value;
  const v = value as Record<string, unknown>;
  const keys = Object.keys(v);
  if (keys.length === 1) {
    const [fn] = keys;
    const arg = v[fn];
    const r = (x: unknown) => resolveInner(x, scope, `${where}.${fn}`);
    switch (fn) {
      case 'Ref':
        return ref(String(arg), scope, where || 'Ref');
      case 'Fn::GetAtt': {
        const [id, attr] = Array.isArray(arg) ? [String(arg[0]), String(r(arg[1]))] : String(arg).split(/\.(.*)/s);
        return getAtt(id, attr, scope, where || 'Fn::GetAtt');
      }
      case 'Fn::Join': {
        const [sep, list] = arg as [string, unknown];
        return (r(list) as unknown[]).map(String).join(sep);
      }
      case 'Fn::Sub': {
        const [text, vars] = Array.isArray(arg) ? [arg[0] as string, r(arg[1] ?? {}) as Record<string, unknown>] : [arg as string, {}];
        return sub(text, vars, scope, where || 'Fn::Sub');
      }
      case 'Fn::Select': {
        const [index, list] = arg as [unknown, unknown];
        const items = r(list) as unknown[];
        const i = Number(r(index));
        if (!Array.isArray(items) || !(i >= 0 && i < items.length)) throw new IntrinsicError(`${where}: Fn::Select index ${i} out of range`);
        return items[i];
      }
      case 'Fn::Split': {
        const [sep, text] = arg as [string, unknown];
        return String(r(text)).split(sep);
      }
      case 'Fn::Base64':
        return Buffer.from(String(r(arg))).toString('base64');
      case 'Fn::ToJsonString':
        return JSON.stringify(r(arg));
      case 'Fn::Length':
        return (r(arg) as unknown[]).length;
      case 'Fn::If': {
        const [name, yes, no] = arg as [string, unknown, unknown];
        return condition(name, scope, where) ? r(yes) : r(no);
      }
      case 'Fn::Equals': {
        const [a, b] = arg as [unknown, unknown];
        return JSON.stringify(r(a)) === JSON.stringify(r(b));
      }
      case 'Fn::Not':
        return !(r((arg as unknown[])[0]) as boolean);
      case 'Fn::And':
        return (arg as unknown[]).every((c) => r(c) === true);
      case 'Fn::Or':
        return (arg as unknown[]).some((c) => r(c) === true);
      case 'Condition':
        return condition(String(arg), scope, where);
      default:
        if (fn.startsWith('Fn::')) throw new IntrinsicError(`${where}: ${fn} is not supported in the box`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(v)) {
    const resolved = resolveInner(inner, scope, where ? `${where}.${key}` : key);
    if (resolved !== NO_VALUE) out[key] = resolved;
  }
  return out;
}

/** The template's Conditions, evaluated (they may refer to one another and to parameters). */
export function evaluateConditions(template: Record<string, any>, scope: Omit<ResolveScope, 'conditions'>): Record<string, boolean> {
  const definitions = (template.Conditions ?? {}) as Record<string, unknown>;
  const done: Record<string, boolean> = {};
  const evaluating = new Set<string>();
  const inner: ResolveScope = {
    ...scope,
    conditions: new Proxy(done, {
      get: (_, name: string) => evaluate(name),
    }),
  };
  function evaluate(name: string): boolean | undefined {
    if (name in done) return done[name];
    if (!(name in definitions)) return undefined;
    if (evaluating.has(name)) throw new IntrinsicError(`condition ${name} refers to itself`);
    evaluating.add(name);
    done[name] = resolve(definitions[name], inner) === true;
    return done[name];
  }
  for (const name of Object.keys(definitions)) evaluate(name);
  return done;
}
