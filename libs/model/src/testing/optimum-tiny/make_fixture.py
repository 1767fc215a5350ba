"""Builds the foreign-export fixture for the sampler tests; run once, its outputs are committed.

A small Llama with random weights (vocab 512, so the stories260K tokenizer fits it) and grouped
query attention (4 heads, 2 KV heads), exported by torch.onnx with the Optimum / transformers.js
input and output names, not by this project's exporter. expected.json holds what transformers
itself generates: greedy tokens for each prompt (the prompt encoded by sentencepiece, BOS
first) and the temperature-1 log-probability of each generated token.

    python3 make_fixture.py path/to/tok512.model

needs torch, transformers, sentencepiece, onnx and onnxruntime.
"""

import json
import sys
from pathlib import Path

import sentencepiece
import torch
from transformers import LlamaConfig, LlamaForCausalLM

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from optimum_export import export_with_past, greedy_reference, max_logit_difference  # noqa: E402
PROMPTS = ["Once upon a time", "The cat sat", "Lily"]
NEW_TOKENS = 24

config = LlamaConfig(
    vocab_size=512,
    hidden_size=48,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    bos_token_id=1,
    eos_token_id=2,
    tie_word_embeddings=False,
    initializer_range=0.25,
)
torch.manual_seed(20261204)
model = LlamaForCausalLM(config).eval()
LAYERS = config.num_hidden_layers


kv_heads = config.num_key_value_heads
head_dim = config.hidden_size // config.num_attention_heads
export_with_past(model, LAYERS, kv_heads, head_dim, config.vocab_size, HERE / "model.onnx")
config.save_pretrained(HERE)

sp = sentencepiece.SentencePieceProcessor(model_file=sys.argv[1])
cases = []
for text in PROMPTS:
    prompt = [config.bos_token_id, *sp.encode(text)]
    ids, logprobs, margin = greedy_reference(model, prompt, NEW_TOKENS, config.eos_token_id)
    cases.append({"text": text, "prompt_ids": prompt, "ids": ids, "logprobs": logprobs})
    print(text, prompt, ids, f"smallest top-2 logit gap {margin:.4f}")
(HERE / "expected.json").write_text(
    json.dumps({"new_tokens": NEW_TOKENS, "cases": cases}, indent=2) + "\n"
)

difference = max_logit_difference(
    HERE / "model.onnx", model, cases[0]["prompt_ids"], LAYERS, kv_heads, head_dim
)
print("onnxruntime vs torch, max |logit difference|:", difference)
