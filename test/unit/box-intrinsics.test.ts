/** The box's CloudFormation: intrinsic functions, conditions and the order resources are created in. */
import { describe, expect, it } from 'vitest';
import { evaluateConditions, referencesOf, resolve, type ResolveScope } from '../helpers/box/intrinsics';
import { dependencyLevels } from '../helpers/box/provision';

const scope: ResolveScope = {
  pseudo: { region: 'eu-west-1', account: '123456789012', partition: 'aws', stackName: 'st', stackId: 'arn:stack', urlSuffix: 'amazonaws.com' },
  parameters: { Stage: 'test' },
  conditions: { IsTest: true, IsProd: false },
  resource: (id) => (id === 'Queue' ? { ref: 'http://q/url', attrs: { Arn: 'arn:aws:sqs:eu-west-1:123456789012:q', QueueName: 'q' } } : undefined),
  skippedBecause: (id) => (id === 'Custom' ? 'Custom::Thing skipped: no emulation' : undefined),
};

describe('intrinsic functions in the box', () => {
  it('resolves references, pseudo-parameters and the string functions', () => {
    expect(resolve({ Ref: 'Queue' }, scope)).toBe('http://q/url');
    expect(resolve({ 'Fn::GetAtt': ['Queue', 'Arn'] }, scope)).toBe('arn:aws:sqs:eu-west-1:123456789012:q');
    expect(resolve({ 'Fn::GetAtt': 'Queue.QueueName' }, scope)).toBe('q');
    expect(resolve({ 'Fn::Join': [':', ['arn', { Ref: 'AWS::Partition' }, { Ref: 'AWS::Region' }, { Ref: 'AWS::AccountId' }]] }, scope)).toBe('arn:aws:eu-west-1:123456789012');
    expect(resolve({ 'Fn::Sub': '${AWS::StackName}-${Queue.QueueName}-${Queue}-${!Kept}' }, scope)).toBe('st-q-http://q/url-${Kept}');
    expect(resolve({ 'Fn::Sub': ['${Name}-${Stage}', { Name: { Ref: 'AWS::Region' } }] }, scope)).toBe('eu-west-1-test');
    expect(resolve({ 'Fn::Select': [2, { 'Fn::Split': [':', { 'Fn::GetAtt': ['Queue', 'Arn'] }] }] }, scope)).toBe('sqs');
    expect(resolve({ 'Fn::Base64': 'hi' }, scope)).toBe('aGk=');
  });

  it('evaluates conditions and drops AWS::NoValue', () => {
    expect(resolve({ 'Fn::If': ['IsProd', 'p', { 'Fn::If': ['IsTest', 't', 'x'] }] }, scope)).toBe('t');
    expect(resolve({ a: 1, b: { 'Fn::If': ['IsProd', 2, { Ref: 'AWS::NoValue' }] }, c: [1, { Ref: 'AWS::NoValue' }] }, scope)).toEqual({ a: 1, c: [1] });
    const conditions = evaluateConditions(
      { Conditions: { Prod: { 'Fn::Equals': [{ Ref: 'Stage' }, 'prod'] }, NotProd: { 'Fn::Not': [{ Condition: 'Prod' }] }, Both: { 'Fn::And': [{ Condition: 'NotProd' }, { 'Fn::Or': [{ Condition: 'Prod' }, true] }] } } },
      { pseudo: scope.pseudo, parameters: scope.parameters, resource: scope.resource },
    );
    expect(conditions).toEqual({ Prod: false, NotProd: true, Both: true });
  });

  it('names what cannot be resolved instead of guessing', () => {
    expect(() => resolve({ Env: { X: { 'Fn::GetAtt': ['Custom', 'Result'] } } }, scope)).toThrow(/Env\.X refers to Custom, which the box did not create \(Custom::Thing skipped/);
    expect(() => resolve({ Ref: 'Missing' }, scope)).toThrow(/refers to Missing, which does not exist/);
    expect(() => resolve({ 'Fn::GetAtt': ['Queue', 'Nope'] }, scope)).toThrow(/Queue has no attribute Nope/);
    expect(() => resolve({ 'Fn::ImportValue': 'x' }, scope)).toThrow(/Fn::ImportValue is not supported/);
    expect(() => resolve({ 'Fn::Select': [5, ['a']] }, scope)).toThrow(/out of range/);
  });

  it('orders resources by what they refer to and depend on, and finds cycles', () => {
    const resources = {
      Sub: { Properties: { X: { 'Fn::Sub': '${Topic}/${Queue.Arn}/${!NotARef}' } } },
      Topic: { Properties: {} },
      Queue: { Properties: { Name: { Ref: 'AWS::StackName' } } },
      Fn: { DependsOn: 'Sub', Properties: { R: { 'Fn::GetAtt': ['Queue', 'Arn'] } } },
    };
    expect([...referencesOf(resources.Sub.Properties)].sort()).toEqual(['Queue', 'Topic']);
    expect(dependencyLevels(resources)).toEqual([['Topic', 'Queue'], ['Sub'], ['Fn']]);
    expect(() => dependencyLevels({ A: { Properties: { r: { Ref: 'B' } } }, B: { DependsOn: ['A'] } })).toThrow(/cycle: A, B/);
  });
});
