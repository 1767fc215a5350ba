"""transformers generate on a checkpoint directory; prints one JSON line per workload.

Usage: python3 hf_generate.py MODEL_DIR BATCHES NEW_TOKENS [THREADS] [wall|cpu] [recompute|kv-only]
Same workload as generate.bench.ts: prompts of [BOS], exactly NEW_TOKENS new tokens.
"""
import json
import sys
import time

import torch
from transformers import LlamaForCausalLM

model_dir, batches, new_tokens = sys.argv[1], [int(b) for b in sys.argv[2].split(",")], int(sys.argv[3])
torch.manual_seed(0)
torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
# cpu: KV-cache runs are timed in process CPU seconds (steadier on a shared machine).
cpu_clock = len(sys.argv) > 5 and sys.argv[5] == "cpu"
RUNS = 3
caches = (True,) if len(sys.argv) > 6 and sys.argv[6] == "kv-only" else (True, False)
model = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
for batch in batches:
    for mode in ("greedy", "top-p 0.9"):
        for cache in caches:
            ids = torch.full((batch, 1), model.config.bos_token_id, dtype=torch.long)
            kwargs = dict(
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                use_cache=cache,
                pad_token_id=0,
                do_sample=mode != "greedy",
            )
            if mode != "greedy":
                kwargs.update(top_p=0.9, top_k=0, temperature=1.0)
            # As the ONNX Runtime side: one warm-up run of the whole workload, then the median
            # of RUNS timed runs (one for the slow no-cache rows).
            runs = RUNS if cache else 1
            clock = time.process_time if cpu_clock and cache else time.perf_counter
            times = []
            with torch.inference_mode():
                if cache:
                    model.generate(ids, **kwargs)
                for _ in range(runs):
                    start = clock()
                    out = model.generate(ids, **kwargs)
                    times.append(clock() - start)
            seconds = sorted(times)[len(times) // 2]
            generated = (out.shape[1] - 1) * batch
            print(json.dumps({"batch": batch, "mode": mode, "cache": cache, "tokensPerSecond": generated / seconds}), flush=True)
