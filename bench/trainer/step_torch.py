"""The trainer's GSIL step in PyTorch, for bench/trainer/step.bench.ts: same model, same
token ids (the same linear congruential stream), bernoulli loss, AdamW, clip 1.0.

    python3 step_torch.py <hf_dir> <steps> <pairs> <response_tokens>
"""
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from transformers import LlamaForCausalLM

hf_dir, steps, pairs, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)


def token_stream(seed, count):
    ids, x = [], seed
    for _ in range(count):
        x = (x * 1103515245 + 12345) % 2147483648
        ids.append(3 + x % 509)
    return ids


rows = [[1] + token_stream(2 * i + 1, n) for i in range(pairs)]
rows += [[1] + token_stream(2 * i + 2, n) for i in range(pairs)]
ids = torch.tensor(rows)
model = LlamaForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32)
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)


def seq_logps():
    logits = model(ids).logits[:, :-1]
    return torch.gather(F.log_softmax(logits, -1), 2, ids[:, 1:, None]).squeeze(-1).sum(-1)


with torch.no_grad():
    ref = seq_logps()

fwd, fb, full = [], [], []
for i in range(steps + 1):
    t = time.perf_counter()
    with torch.no_grad():
        seq_logps()
    f = time.perf_counter() - t
    t = time.perf_counter()
    r = seq_logps() - ref
    fr, fg = 0.1 * r[:pairs], 0.1 * r[pairs:]
    loss = (-F.logsigmoid(fr) - F.logsigmoid(-fg)).mean()
    loss.backward()
    b = time.perf_counter() - t
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad()
    s = time.perf_counter() - t
    if i == 0:
        continue
    fwd.append(f * 1000)
    fb.append(b * 1000)
    full.append(s * 1000)
step_ms = statistics.median(full)
tokens = 2 * pairs * n
print(
    f"torch: {step_ms:.1f} ms/step, {tokens / step_ms * 1000:.0f} tokens/s; "
    f"forward {statistics.median(fwd):.1f} ms, backward {statistics.median(fb) - statistics.median(fwd):.1f} ms, "
    f"optimizer+clip {step_ms - statistics.median(fb):.1f} ms ({torch.get_num_threads()} threads)"
)
