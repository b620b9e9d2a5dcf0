/**
 * `npm run example`: generate a small Llama-shaped base model and two bf16 fine-tunes of it,
 * then merge them with DPPA through the CLI, and show what the merge did.
 *
 * Everything lands in examples/out/ (git-ignored); run it again to start afresh.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { writeLlamaFamily } from '../lib/synth/llama';

const repoRoot = path.resolve(__dirname, '..', '..');
const outDir = path.join(repoRoot, 'examples', 'out');
const cli = path.join(repoRoot, 'bin', 'dppa.js');

const CONFIG = `# DPPA: prune each fine-tune's delta to 10% / 20% with per-layer, per-module densities,
# amplify the two partitions, then add the deltas (task arithmetic).
merge_method: dppa
base_model: ./base
models:
  - model: ./math
    parameters: { weight: 1.0 }
  - model: ./code
    parameters: { weight: 0.8 }
parameters:
  partitions: [0.1, 0.2]
  amplify: [1.8, 1.0]
  dp_lambda: 0.08
out_dtype: bfloat16
`;

function dppa(args: string[]): void {
  console.log(`\n$ dppa ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

async function main(): Promise<void> {
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  console.log(`generating a Llama-shaped base and two bf16 fine-tunes in ${path.relative(process.cwd(), outDir)}/ …`);
  const family = await writeLlamaFamily(outDir, {
    layers: 6, hidden: 256, intermediate: 688, vocab: 1024, heads: 8, kvHeads: 4,
    fineTunes: ['math', 'code'], dtype: 'BF16', seed: 42, shardBytes: 4_000_000,
  });
  console.log(`  ${family.params.toLocaleString('en-US')} parameters per model, ${(family.bytes / 1e6).toFixed(1)} MB written`);
  const configPath = path.join(outDir, 'dppa.yml');
  fs.writeFileSync(configPath, CONFIG);
  console.log(`\n${configPath}:\n${CONFIG}`);

  const rel = (p: string) => path.relative(process.cwd(), p);
  dppa(['inspect', rel(path.join(outDir, 'base'))]);
  dppa(['plan', rel(configPath)]);
  dppa(['merge', rel(configPath), rel(path.join(outDir, 'merged')), '--out-shard-size', '5M']);
  console.log(`\nthe merged model: ${fs.readdirSync(path.join(outDir, 'merged')).join(', ')}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
