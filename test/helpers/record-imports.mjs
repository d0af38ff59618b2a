/**
 * `node --import ./record-imports.mjs ...`: appends the URL of every module the
 * process resolves through the ES module loader, one a line, to the file named by
 * AZS3COPY_RECORD_IMPORTS. The CLI's bundle imports its packages as ES modules, so
 * a package it loads shows up here by its entry point.
 */
import { register } from 'node:module';

const hooks = `
import { appendFileSync } from 'node:fs';
let log;
export function initialize(data) { log = data.log; }
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(log, resolved.url + '\\n');
  return resolved;
}`;

register(`data:text/javascript,${encodeURIComponent(hooks)}`, { data: { log: process.env.AZS3COPY_RECORD_IMPORTS } });
