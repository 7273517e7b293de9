/**
 * Every code example in README.md and docs/*.md runs: each ```ts block is written out as a file,
 * type-checked with tsc --strict against the built package (imported as users import it,
 * `wirekit-js/...`, through a node_modules/wirekit-js whose dist/ is this build), then run with
 * node and must exit 0. A block's info string may name its file (```ts file=worker.ts), for
 * examples made of several files (a child another example starts); `norun` compiles a block
 * without running it on its own (it is run by the example that starts it).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { PACKAGE_NAME, repoRoot } from '../helpers/paths.js';

const root = repoRoot();
/** The build these tests belong to (`.build/x` or `dist`): its src/ is what the package's dist/src is. */
const buildRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const work = mkdtempSync(path.join(os.tmpdir(), 'wk-examples-'));
// WIREKIT_KEEP_EXAMPLES=1 keeps the generated files to look at (their directory is printed).
after(() => (process.env.WIREKIT_KEEP_EXAMPLES ? console.log(`examples kept in ${work}`) : rmSync(work, { recursive: true, force: true })));

export interface Example {
  doc: string;
  line: number;
  file: string;
  run: boolean;
  code: string;
}

/** The ```ts blocks of a Markdown text. */
export function extractExamples(doc: string, text: string): Example[] {
  const out: Example[] = [];
  const lines = text.split('\n');
  let n = 0;
  for (let i = 0; i < lines.length; i++) {
    const m = /^```ts(?:\s+(.*))?$/.exec(lines[i]!);
    if (!m) continue;
    const info = m[1] ?? '';
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    n++;
    const file = /(?:^|\s)file=(\S+\.ts)/.exec(info)?.[1] ?? `example-${n}.ts`;
    out.push({ doc, line: start + 1, file, run: !/(?:^|\s)norun(?:\s|$)/.test(info), code: body.join('\n') + '\n' });
  }
  return out;
}

const docs = ['README.md', ...readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const examples = docs.flatMap((d) => extractExamples(d, readFileSync(path.join(root, d), 'utf8')));

/** A directory per page, with the package installed as a user's project has it. */
function pageDir(doc: string): string {
  const dir = path.join(work, doc.replace(/[/.]/g, '_'));
  const pkg = path.join(dir, 'node_modules', PACKAGE_NAME);
  mkdirSync(pkg, { recursive: true });
  copyFileSync(path.join(root, 'package.json'), path.join(pkg, 'package.json'));
  symlinkSync(buildRoot, path.join(pkg, 'dist'));
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  return dir;
}

const dirs = new Map(docs.map((d) => [d, pageDir(d)]));
for (const e of examples) writeFileSync(path.join(dirs.get(e.doc)!, e.file), e.code);

test('the docs have examples, and no two blocks of a page share a file name', () => {
  assert.ok(examples.length >= 10, `${examples.length} examples`);
  for (const d of docs) {
    const names = examples.filter((e) => e.doc === d).map((e) => e.file);
    assert.equal(new Set(names).size, names.length, d);
  }
});

/** Compiles every example (once, whichever tests run); the diagnostics as `doc:line: message`. */
function compile(): string[] {
  const files = examples.map((e) => path.join(dirs.get(e.doc)!, e.file));
  const program = ts.createProgram(files, {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
    types: ['node'],
    typeRoots: [path.join(root, 'node_modules', '@types')],
    skipLibCheck: true,
    outDir: work,
    rootDir: work,
  });
  const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.file === undefined || files.includes(path.resolve(d.file.fileName)));
  program.emit();
  const where = (d: ts.Diagnostic) => {
    if (!d.file || d.start === undefined) return '';
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    const e = examples.find((x) => path.join(dirs.get(x.doc)!, x.file) === path.resolve(d.file!.fileName))!;
    return `${e.doc}:${e.line + 1 + line}: `;
  };
  return diagnostics.map((d) => where(d) + ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}
let diagnostics: string[] = [];
before(() => {
  diagnostics = compile();
});

test('every example type-checks under tsc --strict against the package', () => {
  assert.deepEqual(diagnostics, []);
});

function run(file: string, cwd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} did not end within 30 s; output:\n${out}`));
    }, 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

for (const e of examples.filter((x) => x.run)) {
  test(`${e.doc}:${e.line} runs and exits 0`, async () => {
    const dir = dirs.get(e.doc)!;
    const r = await run(path.join(dir, e.file.replace(/\.ts$/, '.js')), dir);
    assert.equal(r.code, 0, r.out);
  });
}

/**
 * The parts of a page with the package subpaths they name and the error classes they list: the
 * README's sections (`## ...`, one module each), a docs/ page as a whole (one module's page).
 */
function sections(text: string, whole: boolean): { title: string; modules: Set<string>; errors: Set<string> }[] {
  return (whole ? [text] : text.split(/\n(?=## )/)).map((part) => {
    const modules = new Set([...part.matchAll(/['`](wirekit-js(?:\/[a-z/-]+)?)['`]/g)].map((m) => m[1]!));
    const errors = new Set([...part.matchAll(/`([A-Z][A-Za-z]*Error)`/g)].map((m) => m[1]!));
    return { title: part.split('\n')[0]!, modules, errors };
  });
}

test('every error class a section lists is exported by a module that section names', async () => {
  const pkg = path.join(dirs.get('README.md')!, 'node_modules', PACKAGE_NAME);
  const exportsOf = new Map<string, Set<string>>();
  const load = async (spec: string) => {
    if (!exportsOf.has(spec)) {
      const sub = spec === PACKAGE_NAME ? '.' : `.${spec.slice(PACKAGE_NAME.length)}`;
      const target = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { exports: Record<string, { default: string }> }).exports[sub];
      assert.ok(target, `${spec} is not an export of the package`);
      exportsOf.set(spec, new Set(Object.keys((await import(path.join(pkg, target.default))) as object)));
    }
    return exportsOf.get(spec)!;
  };
  const missing: string[] = [];
  for (const d of docs) {
    for (const s of sections(readFileSync(path.join(root, d), 'utf8'), d !== 'README.md')) {
      if (s.modules.size === 0) continue;
      const names = new Set<string>();
      for (const m of s.modules) for (const n of await load(m)) names.add(n);
      for (const e of s.errors) if (!names.has(e)) missing.push(`${d} "${s.title}": ${e} (not exported by ${[...s.modules].join(', ')})`);
    }
  }
  assert.deepEqual(missing, []);
});
