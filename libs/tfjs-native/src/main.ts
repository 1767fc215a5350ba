// Stand-alone entry, same as `gsil setup tfjs-native`: bun libs/tfjs-native/src/main.ts [options]
import { setupCommand } from './command.ts';

await setupCommand().parseAsync(process.argv);
