"""transformers generate on a checkpoint directory, one timed run per request.

Usage: python3 hf_generate.py MODEL_DIR NEW_TOKENS THREADS [wall|cpu]
Reads requests "BATCH MODE CACHE" from stdin (MODE greedy|top-p; CACHE kv|recompute), one per
line, and answers each with one JSON line: {"tokensPerSecond": ...} of one timed run. The
first request for a workload runs it once untimed first (warm-up), as generate.bench.ts does
on its side. The bench alternates requests with its own runs, so both sides meet the same
machine load. Same workload as generate.bench.ts: prompts of [BOS], exactly NEW_TOKENS new
tokens.
"""
import json
import sys
import time

import torch
from transformers import LlamaForCausalLM
from transformers.utils import logging

model_dir, new_tokens, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# cpu: KV-cache runs are timed in process CPU seconds (steadier on a shared machine).
cpu_clock = len(sys.argv) > 4 and sys.argv[4] == "cpu"
logging.disable_progress_bar()
torch.manual_seed(0)
torch.set_num_threads(threads)
model = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
warmed = set()
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    batch_text, mode, cache_text = line.split()
    batch, cache = int(batch_text), cache_text == "kv"
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
    clock = time.process_time if cpu_clock and cache else time.perf_counter
    with torch.inference_mode():
        if cache and (batch, mode) not in warmed:
            model.generate(ids, **kwargs)
            warmed.add((batch, mode))
        start = clock()
        out = model.generate(ids, **kwargs)
        seconds = clock() - start
    generated = (out.shape[1] - 1) * batch
    print(json.dumps({"tokensPerSecond": generated / seconds}), flush=True)
