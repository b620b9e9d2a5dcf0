/**
 * Reading a merge config: YAML text (with line numbers for messages) or a plain object.
 */
import * as fs from 'fs';
import * as path from 'path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node } from 'yaml';
import { DppaError } from '../errors';
import type { MergeConfig, ParseOptions, ParseResult } from './types';
import { validateConfig } from './validate';
import type { Locator, PathSegment } from './validate';

function keyOf(node: unknown): unknown {
  return isScalar(node) ? node.value : node;
}

/** Maps a field path to the line of the deepest YAML node found along it (a key's own line). */
function makeLocator(doc: Document, lineCounter: LineCounter): Locator {
  return (fieldPath: PathSegment[]) => {
    let node: unknown = doc.contents;
    let offset: number | undefined = (node as Node | null)?.range?.[0];
    for (const segment of fieldPath) {
      if (isMap(node)) {
        const pair = node.items.find((item) => keyOf(item.key) === segment);
        if (!pair) break;
        offset = (pair.key as Node | null)?.range?.[0] ?? offset;
        node = pair.value;
      } else if (isSeq(node) && typeof segment === 'number') {
        const item = node.items[segment] as Node | undefined;
        if (!item) break;
        offset = item.range?.[0] ?? offset;
        node = item;
      } else {
        break;
      }
    }
    return offset === undefined ? undefined : lineCounter.linePos(offset).line;
  };
}

/**
 * Parses and validates YAML text. Never throws for a bad config: every problem found is in
 * `problems`, and `config` is set only when there are none.
 */
export function parseConfig(text: string, options: ParseOptions): ParseResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((error) => {
      const line = lineCounter.linePos(error.pos[0]).line;
      const where = options.file ? `${options.file}:${line}` : `line ${line}`;
      return `${where}: YAML syntax: ${error.message.split('\n')[0]}`;
    });
    return { problems, warnings: [] };
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 1000 });
  return validateConfig(raw, options, makeLocator(doc, lineCounter));
}

/** Validates a config given as a plain object (API users). */
export function parseConfigObject(raw: unknown, options: ParseOptions): ParseResult {
  return validateConfig(raw, options);
}

export interface LoadOptions {
  /** Folder model paths are resolved against: default the config file's folder, or the cwd for objects. */
  baseDir?: string;
  /** Name for messages when an object is given. */
  file?: string;
}

function failure(result: ParseResult, source: string): DppaError {
  const count = result.problems.length;
  const heading = `${source}: ${count} problem${count === 1 ? '' : 's'} in the merge config:`;
  return new DppaError('E_CONFIG', [heading, ...result.problems.map((problem) => `  - ${problem}`)].join('\n'), result.problems);
}

/**
 * Loads a config from a YAML file path or a plain object; throws one DppaError('E_CONFIG')
 * listing every problem (also in `error.problems`).
 */
export function loadConfig(pathOrObject: string | Record<string, unknown>, options: LoadOptions = {}): MergeConfig {
  let result: ParseResult;
  let source: string;
  if (typeof pathOrObject === 'string') {
    let text: string;
    try {
      text = fs.readFileSync(pathOrObject, 'utf8');
    } catch (error) {
      throw new DppaError('E_IO', `cannot read the merge config ${pathOrObject}: ${(error as Error).message}`);
    }
    source = pathOrObject;
    result = parseConfig(text, {
      file: options.file ?? pathOrObject,
      baseDir: path.resolve(options.baseDir ?? path.dirname(pathOrObject)),
    });
  } else {
    source = options.file ?? 'config';
    const parseOptions: ParseOptions = { baseDir: path.resolve(options.baseDir ?? process.cwd()) };
    if (options.file !== undefined) parseOptions.file = options.file;
    result = parseConfigObject(pathOrObject, parseOptions);
  }
  if (!result.config) throw failure(result, source);
  return result.config;
}
