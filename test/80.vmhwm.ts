/**
 * Preloaded into a child process (`node -r dist/test/80.vmhwm.js ...`): at exit it writes
 * the process's peak resident set size, VmHWM in kB from /proc/self/status, to the file
 * named by $DPPA_VMHWM_FILE. The memory tests compare it with the --max-memory budget.
 */
import * as fs from 'fs';

const file = process.env.DPPA_VMHWM_FILE;
if (file) {
  process.on('exit', () => {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    fs.writeFileSync(file, match ? match[1] : 'NaN');
  });
}
