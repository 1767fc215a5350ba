/** One file of an asset, pinned by its sha256 (from shared/data/SHA256SUMS). */
export interface AssetFile {
  name: string;
  /** Canonical public location, used when no local copy is found. */
  url: string;
  /** Lowercase hex sha256 of the exact bytes. */
  sha256: string;
  sizeBytes: number;
}

export interface AssetSpec {
  name: string;
  description: string;
  /** Folder of the asset below a data root, e.g. "mawps/fold0" (the shared/data layout). */
  subdir: string;
  license: string;
  files: AssetFile[];
}

const TINYLLAMAS = 'https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K';
const SVAMP = 'https://raw.githubusercontent.com/arkilpatel/SVAMP/main/data/cv_mawps/fold0';
const GSM8K =
  'https://raw.githubusercontent.com/openai/grade-school-math/master/grade_school_math/data';

export const ASSETS: Record<string, AssetSpec> = {
  stories260k: {
    name: 'stories260k',
    description: 'stories260K Llama model and its 512-token vocabulary (llama2.c format)',
    subdir: 'stories260k',
    license: 'MIT (karpathy/llama2.c tinyllamas)',
    files: [
      {
        name: 'stories260K.bin',
        url: `${TINYLLAMAS}/stories260K.bin`,
        sha256: 'b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696',
        sizeBytes: 1_056_540,
      },
      {
        name: 'tok512.bin',
        url: `${TINYLLAMAS}/tok512.bin`,
        sha256: '037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312',
        sizeBytes: 6_227,
      },
      {
        name: 'tok512.model',
        url: `${TINYLLAMAS}/tok512.model`,
        sha256: 'dfff07d929db979913f166ec94a6f5ecad4c70cfed8eb5c9cbe7e464455e46f5',
        sizeBytes: 7_645,
      },
    ],
  },
  'mawps-fold0': {
    name: 'mawps-fold0',
    description: 'MAWPS fold 0 (1,537 train and 384 dev math word problems)',
    subdir: 'mawps/fold0',
    license: 'MIT (arkilpatel/SVAMP); MAWPS by Koncel-Kedziorski et al.',
    files: [
      {
        name: 'train.csv',
        url: `${SVAMP}/train.csv`,
        sha256: '0674253e6099813cefbb1d6eae3d2dc784ab6ebfdaf8755f6ebb4b99fc1f6ebe',
        sizeBytes: 595_844,
      },
      {
        name: 'dev.csv',
        url: `${SVAMP}/dev.csv`,
        sha256: 'bad59cff796b01a87363ea970f1fa80c15f56ff5f4388143aadbdc3feaf5f990',
        sizeBytes: 148_020,
      },
    ],
  },
  gsm8k: {
    name: 'gsm8k',
    description: 'GSM8K grade-school math (7,473 train and 1,319 test problems)',
    subdir: 'gsm8k',
    license: 'MIT (openai/grade-school-math)',
    files: [
      {
        name: 'train.jsonl',
        url: `${GSM8K}/train.jsonl`,
        sha256: '17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465',
        sizeBytes: 4_166_206,
      },
      {
        name: 'test.jsonl',
        url: `${GSM8K}/test.jsonl`,
        sha256: '3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14',
        sizeBytes: 749_738,
      },
    ],
  },
};

export function assetSpec(name: string): AssetSpec {
  const spec = ASSETS[name];
  if (!spec) {
    throw new Error(`unknown asset "${name}"; known assets: ${Object.keys(ASSETS).join(', ')}`);
  }
  return spec;
}
