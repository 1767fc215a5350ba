// `gsil assets list` and `gsil assets import <dir>`.
import { importAssets, listAssets } from '@gsil/assets';

export async function assetsListCommand(): Promise<void> {
  for (const asset of await listAssets()) {
    const where = asset.found ? `${asset.found.dir} (${asset.found.source})` : 'not found';
    process.stdout.write(`${asset.name}: ${asset.description}\n`);
    process.stdout.write(`  license: ${asset.license}\n  found:   ${where}\n`);
    for (const file of asset.files) {
      process.stdout.write(`  ${file.name}  sha256 ${file.sha256}\n    ${file.url}\n`);
    }
    if (!asset.found) {
      for (const place of asset.searched) process.stdout.write(`  searched: ${place}\n`);
    }
  }
}

export async function assetsImportCommand(dir: string): Promise<void> {
  const result = await importAssets(dir);
  for (const { name, dir: target } of result.imported) {
    process.stdout.write(`imported ${name} -> ${target}\n`);
  }
  for (const { name, reason } of result.skipped) {
    process.stdout.write(`skipped ${name}: ${reason}\n`);
  }
  if (result.imported.length === 0) throw new Error(`no asset found under ${dir}`);
}
