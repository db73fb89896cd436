/**
 * The relay's parts import each other one way: no file of libs/relay imports
 * itself back through others (type-only imports count: a cycle of types is
 * still a knot no part can be read or changed alone), and no folder does
 * either. Read from the sources with TypeScript's own import scanner.
 */
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const SRC = resolve(import.meta.dirname, '../libs/relay/src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter(e => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.spec.ts'))
    .map(e => join(e.parentPath, e.name));
}

/** File → the files of the package it imports (relative imports, static, type-only and dynamic alike). */
function importGraph(files: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const local = importedFiles
      .map(i => i.fileName)
      .filter(name => name.startsWith('.'))
      .map(name => resolve(dirname(file), name.replace(/\.js$/, '.ts')));
    graph.set(rel(file), local.map(rel));
  }
  return graph;
}

const rel = (file: string) => relative(SRC, file);

/** Each cycle found, as the path that closes it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, 'visiting');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'visiting') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (state.get(next) === undefined) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) if (state.get(node) === undefined) visit(node);
  return found;
}

/** The graph between top-level folders (a file at the root counts as its own node). */
function folderGraph(files: Map<string, string[]>): Map<string, string[]> {
  const folder = (file: string) => (file.includes('/') ? file.split('/')[0] + '/' : file);
  const graph = new Map<string, Set<string>>();
  for (const [file, imports] of files) {
    const from = folder(file);
    const edges = graph.get(from) ?? new Set<string>();
    for (const to of imports.map(folder)) if (to !== from) edges.add(to);
    graph.set(from, edges);
  }
  return new Map([...graph].map(([k, v]) => [k, [...v]]));
}

describe('libs/relay imports', () => {
  const files = importGraph(sources(SRC));

  it('reads every source file', () => {
    expect(files.size).toBeGreaterThan(40);
    expect(files.get('core/relay-core.ts')).toContain('requests/request-router.ts');
  });

  it('have no cycle between files', () => {
    expect(cycles(files).map(c => c.join(' -> '))).toEqual([]);
  });

  it('have no cycle between folders', () => {
    expect(cycles(folderGraph(files)).map(c => c.join(' -> '))).toEqual([]);
  });

  it('finds a cycle where there is one', () => {
    const knot = new Map([
      ['a.ts', ['b/x.ts']],
      ['b/x.ts', ['c/y.ts']],
      ['c/y.ts', ['b/z.ts']],
      ['b/z.ts', []],
    ]);
    expect(cycles(knot)).toEqual([]);
    expect(cycles(folderGraph(knot)).map(c => c.join(' -> '))).toEqual(['b/ -> c/ -> b/']);
  });
});
