// Mocha --require hook of bench/gpu/check.sh: every job of the tests it runs goes to the GPU, so
// the whole merge path (golden outputs, float64 references, DP) checks the CUDA kernels.
const { native } = require('../../dist/lib/native');
const chosen = native().setDevice('cuda'); // throws, with the reason, where no GPU is usable
if (chosen !== 'cuda') throw new Error(`setDevice('cuda') gave ${chosen}`);
process.stderr.write(`cuda-default: ${native().cuda.description}\n`);
