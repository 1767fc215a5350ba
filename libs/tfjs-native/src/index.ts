export { setupCommand } from './command.ts';
export { loadNativeTfjs } from './load.ts';
export { SetupError } from './preflight.ts';
export { type SetupOptions, type SetupResult, setupTfjsNative } from './setup.ts';
export { TENSORFLOW_VERSION } from './wheel.ts';
