"""The trainer's GSIL step in PyTorch, for bench/trainer/step.bench.ts: same model, same
token ids (the same linear congruential stream), bernoulli loss, AdamW, clip 1.0.

    python3 step_torch.py <hf_dir> <steps> <pairs> <response_tokens> [threads]

Times each phase in wall time and in process CPU time (all threads), as the TF.js side does.
"""
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from transformers import LlamaForCausalLM

hf_dir, steps, pairs, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if len(sys.argv) > 5:
    torch.set_num_threads(int(sys.argv[5]))
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


def clocks():
    return time.perf_counter(), time.process_time()


def since(start):
    wall, cpu = clocks()
    return (wall - start[0]) * 1000, (cpu - start[1]) * 1000


fwd, fb, full = [], [], []
for i in range(steps + 1):
    t = clocks()
    with torch.no_grad():
        seq_logps()
    f = since(t)
    t = clocks()
    r = seq_logps() - ref
    fr, fg = 0.1 * r[:pairs], 0.1 * r[pairs:]
    loss = (-F.logsigmoid(fr) - F.logsigmoid(-fg)).mean()
    loss.backward()
    b = since(t)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad()
    s = since(t)
    if i == 0:
        continue
    fwd.append(f)
    fb.append(b)
    full.append(s)


def med(rows, k):
    return statistics.median(r[k] for r in rows)


tokens = 2 * pairs * n
step_ms, step_cpu = med(full, 0), med(full, 1)
print(
    f"torch: {step_ms:.1f} ms/step wall, {step_cpu:.1f} ms cpu, {tokens / step_ms * 1000:.0f} tokens/s; "
    f"forward {med(fwd, 0):.1f} ms (cpu {med(fwd, 1):.1f}), "
    f"backward {med(fb, 0) - med(fwd, 0):.1f} ms (cpu {med(fb, 1) - med(fwd, 1):.1f}), "
    f"optimizer {step_ms - med(fb, 0):.1f} ms (cpu {step_cpu - med(fb, 1):.1f}) "
    f"({torch.get_num_threads()} threads)"
)
