/**
 * Deploys a template into the box as CloudFormation would: resources in
 * dependency order (independent ones at once), each with its intrinsics resolved
 * against what was created before it. What the box cannot emulate is skipped and
 * listed with the reason; a resource whose properties need a skipped one fails
 * with an error naming both.
 */
import { randomBytes } from 'node:crypto';
import type { StackAssembly } from './assembly';
import { IntrinsicError, evaluateConditions, referencesOf, resolve, type Created, type Pseudo, type ResolveScope } from './intrinsics';
import { IGNORED } from './resources/ignored';
import { IDENTITY_HANDLERS } from './resources/identity';
import { LAMBDA_HANDLERS } from './resources/lambda';
import { MESSAGING_HANDLERS } from './resources/messaging';
import { STORAGE_HANDLERS } from './resources/storage';
import { Unsupported, type AdminClients, type BoxResourceOptions, type LambdaPlan, type ResourceContext, type ResourceHandler } from './resources/types';

const HANDLERS: Record<string, ResourceHandler> = { ...MESSAGING_HANDLERS, ...STORAGE_HANDLERS, ...IDENTITY_HANDLERS, ...LAMBDA_HANDLERS };

export interface BoxResource {
  logicalId: string;
  type: string;
  /** created: in moto; emulated: run by the box; ignored: no local meaning; skipped: the box cannot emulate it. */
  status: 'created' | 'emulated' | 'ignored' | 'skipped';
  /** What Ref gives (a name, URL or ARN). */
  ref?: string;
  attrs: Record<string, string>;
  name?: string;
  note?: string;
}

export interface Deployment {
  resources: BoxResource[];
  /** The template's Outputs, resolved (an output that cannot be is left out and noted). */
  outputs: Record<string, string>;
  notes: string[];
  plan: LambdaPlan;
  pseudo: Pseudo;
  scope: ResolveScope;
}

/** Logical ids in dependency order, as levels whose members do not depend on one another. */
export function dependencyLevels(resources: Record<string, any>): string[][] {
  const deps = new Map<string, Set<string>>();
  for (const [id, r] of Object.entries(resources)) {
    const refs = referencesOf(r.Properties ?? {});
    for (const d of [r.DependsOn ?? []].flat() as string[]) refs.add(d);
    deps.set(id, new Set([...refs].filter((d) => d in resources && d !== id)));
  }
  const levels: string[][] = [];
  const done = new Set<string>();
  while (done.size < deps.size) {
    const level = [...deps.keys()].filter((id) => !done.has(id) && [...deps.get(id)!].every((d) => done.has(d)));
    if (level.length === 0) {
      const cycle = [...deps.keys()].filter((id) => !done.has(id));
      throw new Error(`the template's resources depend on one another in a cycle: ${cycle.join(', ')}`);
    }
    level.forEach((id) => done.add(id));
    levels.push(level);
  }
  return levels;
}

function randomSuffix(length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  return [...randomBytes(length)].map((b) => alphabet[b % alphabet.length]).join('');
}

export async function deploy(assembly: StackAssembly, admin: AdminClients, options: BoxResourceOptions): Promise<Deployment> {
  const template = assembly.template;
  const pseudo: Pseudo = {
    region: assembly.region,
    account: assembly.account,
    partition: 'aws',
    stackName: assembly.stackName,
    stackId: `arn:aws:cloudformation:${assembly.region}:${assembly.account}:stack/${assembly.stackName}/${randomBytes(16).toString('hex')}`,
    urlSuffix: 'amazonaws.com',
  };
  const byId = new Map<string, BoxResource>();
  const parameters = Object.fromEntries(Object.entries((template.Parameters ?? {}) as Record<string, any>).map(([k, p]) => [k, p.Default]));
  const scope: ResolveScope = {
    pseudo,
    parameters,
    resource: (id) => {
      const r = byId.get(id);
      return r && r.ref !== undefined ? ({ ref: r.ref, attrs: r.attrs } satisfies Created) : undefined;
    },
    skippedBecause: (id) => {
      const r = byId.get(id);
      return r?.status === 'skipped' ? `${r.type} skipped: ${r.note}` : undefined;
    },
  };
  scope.conditions = evaluateConditions(template, scope);
  const plan: LambdaPlan = { functions: [], layers: new Map(), invokeConfigs: [], mappings: [], snsLambda: [], roleUsers: new Map() };
  const resources = template.Resources as Record<string, any>;

  const one = async (logicalId: string): Promise<BoxResource> => {
    const r = resources[logicalId];
    const type = r.Type as string;
    if (r.Condition && !scope.conditions![r.Condition]) return { logicalId, type, status: 'skipped', attrs: {}, note: `condition ${r.Condition} is false` };
    const context = (props: Record<string, any>): ResourceContext => ({
      logicalId,
      type,
      props,
      stackName: pseudo.stackName,
      region: pseudo.region,
      account: pseudo.account,
      admin,
      plan,
      assembly,
      options,
      generatedName(maxLength, { lowercase = false, suffix = '' } = {}) {
        const tail = `-${randomSuffix(12)}${suffix}`;
        const name = `${pseudo.stackName}-${logicalId}`.slice(0, maxLength - tail.length) + tail;
        return lowercase ? name.toLowerCase() : name;
      },
    });
    const ignored = IGNORED[type];
    if (ignored) {
      let props: Record<string, any>;
      try {
        props = resolve(r.Properties ?? {}, scope) as Record<string, any>;
      } catch {
        props = {};
      }
      const ctx = context(props);
      const ref = ignored.ref(ctx);
      return { logicalId, type, status: 'ignored', ref, attrs: ignored.attrs?.(ctx, ref) ?? {}, note: ignored.reason };
    }
    const handler = HANDLERS[type];
    if (!handler) return { logicalId, type, status: 'skipped', attrs: {}, note: `the box has no emulation of ${type}` };
    const props = resolve(r.Properties ?? {}, scope) as Record<string, any>;
    try {
      const out = await handler(context(props));
      return { logicalId, type, status: out.status, ref: out.ref, attrs: out.attrs ?? {}, name: out.name, note: out.note };
    } catch (error) {
      if (error instanceof Unsupported) return { logicalId, type, status: 'skipped', attrs: {}, note: error.message };
      throw new Error(`the box could not create ${logicalId} (${type}): ${(error as Error).name}: ${(error as Error).message}`, { cause: error });
    }
  };

  for (const level of dependencyLevels(resources)) {
    const done = await Promise.all(
      level.map((id) =>
        one(id).catch((error: unknown) => {
          if (error instanceof IntrinsicError) throw new Error(`${id}: ${error.message}`, { cause: error });
          throw error;
        }),
      ),
    );
    for (const r of done) byId.set(r.logicalId, r);
  }
  const outputs: Record<string, string> = {};
  const notes: string[] = [];
  for (const [name, output] of Object.entries((template.Outputs ?? {}) as Record<string, any>)) {
    try {
      outputs[name] = String(resolve(output.Value, scope));
    } catch (error) {
      notes.push(`output ${name} not resolved: ${(error as Error).message}`);
    }
  }
  return { resources: [...byId.values()], outputs, notes, plan, pseudo, scope };
}
