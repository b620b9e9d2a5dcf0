/**
 * The one error class of dppa. `code` is stable and meant for programs; `message` is meant
 * for people: it names the file, tensor or field, and the fix where one is known.
 */
export type ErrorCode =
  | 'E_CONFIG'     // the merge config is invalid
  | 'E_SHAPE'      // tensors disagree in name, shape or count across models
  | 'E_FORMAT'     // a checkpoint file is malformed
  | 'E_IO'         // reading or writing failed
  | 'E_EXISTS'     // the output exists and --overwrite was not given
  | 'E_NONFINITE'  // NaN or Inf in an input tensor
  | 'E_MEMORY'     // the memory budget cannot hold the work
  | 'E_ABORTED'    // the caller aborted
  | 'E_NATIVE'     // the native addon could not be loaded or failed
  | 'E_ARGUMENT';  // a bad argument to an API function

export class DppaError extends Error {
  readonly code: ErrorCode;
  /** Every problem found, when several were collected before failing (config validation). */
  readonly problems: string[];

  constructor(code: ErrorCode, message: string, problems: string[] = []) {
    super(message);
    this.name = 'DppaError';
    this.code = code;
    this.problems = problems;
  }
}

export function isDppaError(e: unknown): e is DppaError {
  return e instanceof DppaError;
}
