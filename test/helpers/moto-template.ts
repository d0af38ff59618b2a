/**
 * The synthesized stack cut to what moto's CloudFormation can host: the functions'
 * roles and policies and the functions themselves, as synthesized (logical ids,
 * names, grants), with the functions' code inlined and their references to
 * resources moto would have to host removed, and policy statements that name such
 * resources dropped. The grant to ask STS for tokens (Resource "*") is kept whole.
 */
type Resource = { Type: string; Properties?: Record<string, any>; DependsOn?: unknown; Metadata?: unknown; Condition?: unknown };

const KEPT = new Set(['AWS::IAM::Role', 'AWS::IAM::Policy', 'AWS::Lambda::Function']);

/** Whether a value refers to a resource (Ref or GetAtt) other than the kept ones, or to a parameter. */
function refersOutside(value: unknown, kept: Set<string>): boolean {
  if (Array.isArray(value)) return value.some((v) => refersOutside(v, kept));
  if (!value || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  if (typeof v.Ref === 'string' && !v.Ref.startsWith('AWS::') && !kept.has(v.Ref)) return true;
  if (Array.isArray(v['Fn::GetAtt']) && !kept.has(v['Fn::GetAtt'][0] as string)) return true;
  return Object.values(v).some((x) => refersOutside(x, kept));
}

export function motoTemplate(json: Record<string, any>): { Resources: Record<string, Resource> } {
  const all = json.Resources as Record<string, Resource>;
  const kept = new Set(Object.keys(all).filter((id) => KEPT.has(all[id].Type)));
  const out: Record<string, Resource> = {};
  for (const id of kept) {
    const { Type, Properties = {} } = all[id];
    if (Type === 'AWS::IAM::Policy') {
      const statements = [Properties.PolicyDocument.Statement].flat().filter((st: any) => !refersOutside(st, kept));
      if (statements.length === 0) continue;
      out[id] = { Type, Properties: { ...Properties, PolicyDocument: { ...Properties.PolicyDocument, Statement: statements } } };
    } else if (Type === 'AWS::Lambda::Function') {
      const { Code: _c, Layers: _l, Environment: _e, LoggingConfig: _g, DeadLetterConfig: _d, ...rest } = Properties;
      out[id] = { Type, Properties: { ...rest, Code: { ZipFile: 'exports.handler = async () => ({});' }, Runtime: 'nodejs20.x', Handler: 'index.handler' } };
    } else {
      out[id] = { Type, Properties };
    }
  }
  return { Resources: out };
}
