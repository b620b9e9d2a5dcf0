/**
 * 23: fuzzing the reader (test/fuzz/run.ts) for a bounded time: every mutated file either
 * opens and reads back exactly, or is refused with E_FORMAT/E_IO. DPPA_FUZZ_SECONDS sets the
 * time (default 5); DPPA_FUZZ_SEED the seed (default: a fixed one, so failures reproduce).
 */
import * as assert from 'assert';
import { runFuzz } from './fuzz/run';
import { tmpDir } from './hooks';

describe('23 fuzz: mutated safetensors files', function () {
  const seconds = Number(process.env.DPPA_FUZZ_SECONDS ?? 5);
  const seed = Number(process.env.DPPA_FUZZ_SEED ?? 20240601);
  this.timeout((seconds + 60) * 1000);

  it(`never fails other than with E_FORMAT/E_IO (${seconds} s, seed ${seed})`, async () => {
    const report = await runFuzz({ seconds, seed, dir: tmpDir('23-fuzz') });
    console.log(`      fuzz: ${report.cases} cases in ${report.seconds.toFixed(1)} s: ${report.opened} opened, rejected ${JSON.stringify(report.rejected)}`);
    assert.deepStrictEqual(report.failures, []);
    assert.ok(report.cases > 0);
    assert.ok(report.opened > 0, 'some mutations (data bytes) leave a valid file');
    assert.ok((report.rejected.E_FORMAT ?? 0) > 0, 'most header mutations are refused');
  });
});
