/** Module name kept in a variable so type checking does not require the optional package. */
const TFJS_NODE = '@tensorflow/tfjs-node';

/**
 * Loads the native TF.js backend if its addon is built; true when the backend is registered
 * as 'tensorflow' in the workspace's @tensorflow/tfjs engine. Never throws: a missing package
 * or an addon that fails to load (missing libtensorflow) both mean false.
 */
export async function loadNativeTfjs(): Promise<boolean> {
  // TensorFlow logs CPU-feature notices at INFO on load; keep them out unless asked for.
  // Under Bun this assignment does not reach the native getenv, so set it in the shell there.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  try {
    await import(TFJS_NODE);
  } catch {
    return false;
  }
  const tf = await import('@tensorflow/tfjs');
  return (
    tf.findBackendFactory('tensorflow') !== null &&
    tf.findBackendFactory('tensorflow') !== undefined
  );
}
