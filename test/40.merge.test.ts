/**
 * Whole merges, end to end, against two independent references: the golden outputs of an
 * independent float64 implementation (test/fixtures/golden), and this suite's own float64
 * reference (test/ref/merge-ref.ts), on generated sharded Llama-shaped checkpoints run
 * through the CLI.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { stringify } from 'yaml';
import { merge, plan } from '../lib/index';
import { writeLlamaFamily } from '../lib/synth/llama';
import { tmpDir } from './hooks';
import * as ref from './ref/merge-ref';

const repoRoot = path.resolve(__dirname, '..', '..');
const golden = path.join(repoRoot, 'test', 'fixtures', 'golden');
const cli = path.join(repoRoot, 'bin', 'dppa.js');

function runCli(args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
}

/** Count elements beyond one bf16 ulp, over every tensor of the expected model. */
function compareModels(actual: ref.RefModel, expected: ref.RefModel): { bad: number; total: number; worst: string } {
  let bad = 0, total = 0, worst = '';
  for (const [name, e] of expected) {
    const a = actual.get(name);
    assert.ok(a, `output lacks ${name}`);
    assert.deepEqual(a.shape, e.shape, `shape of ${name}`);
    const n = ref.countBeyondUlp(a.values, e.values);
    if (n > 0) worst += `${name}: ${n}; `;
    bad += n;
    total += e.values.length;
  }
  return { bad, total, worst };
}

describe('40 merge: golden outputs of an independent implementation', function () {
  this.timeout(120000);
  const cases = ['task_arithmetic', 'ties', 'dppa_two_models', 'dppa_single_model'];
  let base: ref.RefModel, ft0: ref.RefModel, ft1: ref.RefModel;

  before(async () => {
    base = await ref.loadModel(path.join(golden, 'models', 'base'));
    ft0 = await ref.loadModel(path.join(golden, 'models', 'ft0'));
    ft1 = await ref.loadModel(path.join(golden, 'models', 'ft1'));
  });

  for (const name of cases) {
    it(`${name}: within one bf16 ulp of the golden output (a handful of legitimate exceptions)`, async () => {
      const out = path.join(tmpDir('golden'), name);
      await merge(path.join(golden, `${name}.yml`), out);
      const actual = await ref.loadModel(out);
      const expected = await ref.loadModel(path.join(golden, 'expected', `${name}.safetensors`));
      const { bad, worst } = compareModels(actual, expected);
      // The README of the golden set allows a handful per model: threshold ties, exact cancellations.
      assert.ok(bad <= 8, `${bad} elements beyond one bf16 ulp: ${worst}`);
    });
  }

  it('DP densities of ft0 at 0.2 match the golden densities', async () => {
    const expected = JSON.parse(fs.readFileSync(path.join(golden, 'expected', 'dp_densities_ft0_d0.2.json'), 'utf8'));
    const report = await plan({
      merge_method: 'dppa',
      base_model: path.join(golden, 'models', 'base'),
      models: [{ model: path.join(golden, 'models', 'ft0') }],
      parameters: { partitions: [0.2], amplify: [1] },
    });
    const densities = Object.values(report.densities!)[0];
    assert.equal(Object.keys(densities).length, Object.keys(expected).length);
    for (const [tensor, d] of Object.entries(expected)) {
      assert.ok(Math.abs(densities[tensor][0] - (d as number)) < 1e-9, `${tensor}: ${densities[tensor][0]} vs ${d}`);
    }
    // And our own float64 reference agrees.
    const offsets = ref.dpOffsets(base, ft0);
    for (const [tensor, d] of Object.entries(expected)) {
      assert.ok(Math.abs(ref.clampDensity(0.2 + offsets.get(tensor)!) - (d as number)) < 1e-9, tensor);
    }
  });

  it('the golden outputs agree with this suite\'s own float64 reference', () => {
    // Guards the reference itself: if it misread the spec, the CLI tests below would be moot.
    const c = { weights: [1, 1], consensus: 'none' as const, normalize: false, lambda: 0.8 };
    const mine = ref.taskArithmetic(base, [ft0, ft1], c);
    const rounded = new Map([...mine].map(([n, t]) => [n, { shape: t.shape, values: t.values.map(ref.roundBf16) }]));
    return ref.loadModel(path.join(golden, 'expected', 'task_arithmetic.safetensors')).then((expected) => {
      assert.equal(compareModels(rounded, expected).bad, 0);
    });
  });
});

describe('40 merge: CLI on generated sharded checkpoints vs the float64 reference', function () {
  this.timeout(300000);
  let dir: string;
  let base: ref.RefModel, fts: ref.RefModel[];

  before(async () => {
    dir = tmpDir('family');
    await writeLlamaFamily(dir, {
      layers: 3, hidden: 48, intermediate: 112, vocab: 96, heads: 4, fineTunes: 2,
      dtype: 'BF16', seed: 7, shardBytes: 60_000, deltaScale: 0.004,
    });
    assert.ok(fs.existsSync(path.join(dir, 'base', 'model.safetensors.index.json')), 'input is sharded');
    base = await ref.loadModel(path.join(dir, 'base'));
    fts = [await ref.loadModel(path.join(dir, 'ft0')), await ref.loadModel(path.join(dir, 'ft1'))];
  });

  function writeConfig(name: string, config: object): string {
    const file = path.join(dir, `${name}.yml`);
    fs.writeFileSync(file, stringify(config));
    return file;
  }

  async function runAndCompare(name: string, config: object, expected: ref.RefModel) {
    const out = path.join(dir, `out-${name}`);
    const r = runCli(['merge', writeConfig(name, config), out, '--out-shard-size', '50K', '-j', '2']);
    assert.equal(r.status, 0, r.stderr);
    const index = JSON.parse(fs.readFileSync(path.join(out, 'model.safetensors.index.json'), 'utf8'));
    const shards = new Set(Object.values(index.weight_map));
    assert.ok(shards.size > 1, 'output is sharded');
    for (const s of shards) assert.ok(fs.statSync(path.join(out, s as string)).size <= 50_000 + 20_000);
    const rounded = new Map([...expected].map(([n, t]) => [n, { shape: t.shape, values: t.values.map(ref.roundBf16) }]));
    const { bad, total, worst } = compareModels(await ref.loadModel(out), rounded);
    assert.ok(bad <= 4, `${bad}/${total} beyond one bf16 ulp: ${worst}`);
    return out;
  }

  it('task_arithmetic', async () => {
    const c = { weights: [0.7, 1.2], consensus: 'none' as const, normalize: false, lambda: 0.9 };
    await runAndCompare('ta', {
      merge_method: 'task_arithmetic', base_model: './base',
      models: [{ model: './ft0', parameters: { weight: 0.7 } }, { model: './ft1', parameters: { weight: 1.2 } }],
      parameters: { lambda: 0.9 },
    }, ref.taskArithmetic(base, fts, c));
  });

  it('ties', async () => {
    const c = { weights: [1, 0.5], consensus: 'sum' as const, normalize: true, lambda: 1 };
    await runAndCompare('ties', {
      merge_method: 'ties', base_model: './base',
      models: [{ model: './ft0', parameters: { weight: 1, density: 0.3 } }, { model: './ft1', parameters: { weight: 0.5, density: 0.6 } }],
    }, ref.ties(base, fts, [0.3, 0.6], c));
  });

  it('dppa, and the output folder is a complete model', async () => {
    const o = { weights: [1, 1], consensus: 'none' as const, normalize: false, lambda: 1, partitions: [0.1, 0.2], amplify: [1.8, 1.0] };
    const out = await runAndCompare('dppa', {
      merge_method: 'dppa', base_model: './base',
      models: [{ model: './ft0' }, { model: './ft1' }],
      parameters: { partitions: [0.1, 0.2], amplify: [1.8, 1.0] },
    }, ref.dppa(base, fts, o));
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    assert.equal(config.torch_dtype, 'bfloat16');
    assert.ok(fs.existsSync(path.join(out, 'tokenizer_config.json')));
    const card = fs.readFileSync(path.join(out, 'README.md'), 'utf8');
    assert.match(card, /dppa/);
    assert.match(card, /partitions/);
  });

  it('a failed merge leaves no target folder, and an existing target is refused', async () => {
    const out = path.join(dir, 'out-failed');
    const bad = writeConfig('bad', { merge_method: 'ties', base_model: './base', models: [{ model: './ft0' }, { model: './missing' }] });
    let r = runCli(['merge', bad, out]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /missing/);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
    assert.ok(!fs.existsSync(out));

    const controller = new AbortController();
    controller.abort();
    await assert.rejects(
      merge(path.join(dir, 'ta.yml'), out, { signal: controller.signal }),
      (e: { code?: string }) => e.code === 'E_ABORTED',
    );
    assert.ok(!fs.existsSync(out));
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('dppa-tmp')), [], 'no temporary folder left');

    r = runCli(['merge', path.join(dir, 'ta.yml'), path.join(dir, 'out-ta')]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--overwrite/);
    r = runCli(['merge', path.join(dir, 'ta.yml'), path.join(dir, 'out-ta'), '--overwrite']);
    assert.equal(r.status, 0, r.stderr);
  });

  it('reports every config problem at once, before reading any tensor', () => {
    const file = writeConfig('typos', {
      merge_method: 'dare-ties', base_model: './base',
      models: [{ model: './ft0', parameters: { densty: 0.5 } }, { model: './nowhere' }],
    });
    const r = runCli(['merge', file, path.join(dir, 'never')]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /dare_ties/);
    assert.ok(!fs.existsSync(path.join(dir, 'never')));
  });

  it('inspect and plan print what they promise', () => {
    let r = runCli(['inspect', path.join(dir, 'base')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /layers:\s+3, 21 prunable/);
    r = runCli(['plan', path.join(dir, 'dppa.yml')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /DP densities of \.\/ft0/);
    assert.match(r.stdout, /model\.layers\.2\.mlp\.down_proj\.weight/);
  });
});
