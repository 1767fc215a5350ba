"""Builds the GPT-2 + byte-level BPE fixture for the sampler tests; run once, outputs committed.

A different architecture from the Llama family (learned positions, LayerNorm, GELU, tied
embeddings, no position_ids in GPT-2 itself) with random weights, and a byte-level BPE
tokenizer.json trained here whose one special token <|endoftext|> is both BOS and EOS. The
model is exported by torch.onnx with the Optimum / transformers.js names. config.json is
what save_pretrained writes: the context length is n_positions (no max_position_embeddings).
expected.json holds transformers' greedy tokens, their temperature-1 log-probabilities and
the decoded text, for prompts encoded as [BOS] + tokenizer ids.

    python3 make_fixture.py

needs torch, transformers, tokenizers, onnx and onnxruntime.
"""

import json
import random
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GPT2Config, GPT2LMHeadModel

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from optimum_export import export_with_past, greedy_reference, max_logit_difference  # noqa: E402
PROMPTS = ["Once upon a time", "The cat sat on the mat", "Lily", " leading space and  two", "café 🙂 naïve"]
NEW_TOKENS = 20

# 1. Tokenizer: byte-level BPE on a small made-up corpus.
random.seed(0)
subjects = ["The cat", "A small dog", "Lily", "Tom", "The old man", "My friend", "The bird", "She"]
verbs = ["sat on", "jumped over", "looked at", "ran to", "found", "liked", "painted", "saw"]
objects = ["the mat", "a big tree", "the red ball", "his house", "the river", "a shiny stone"]
endings = [".", "!", " today.", " again.", " in the morning.", ", and smiled.", "?"]
corpus = [
    f"{random.choice(subjects)} {random.choice(verbs)} {random.choice(objects)}{random.choice(endings)}"
    for _ in range(4000)
]
corpus += [
    "Once upon a time, there was a little girl named Lily. She loved to play in the sun.",
    "It's 3.14 o'clock -- don't   worry,  café naïve résumé 日本語 🙂 tabs\tand\nnewlines.",
] * 20
tokenizer = Tokenizer(models.BPE())
tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tokenizer.decoder = decoders.ByteLevel()
tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
tokenizer.train_from_iterator(
    corpus,
    trainers.BpeTrainer(
        vocab_size=1000,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    ),
)
VOCAB = tokenizer.get_vocab_size()
EOT = tokenizer.token_to_id("<|endoftext|>")
tokenizer.save(str(HERE / "tokenizer.json"))

# 2. Model: the seed whose greedy paths keep the widest top-2 logit gap (so float rounding
#    cannot flip a token between ONNX Runtime and torch).
config = GPT2Config(
    vocab_size=VOCAB,
    n_layer=2,
    n_head=4,
    n_embd=32,
    n_positions=256,
    bos_token_id=EOT,
    eos_token_id=EOT,
    initializer_range=0.2,
)


def greedy(model, text):
    prompt = [EOT, *tokenizer.encode(text).ids]
    return (prompt, *greedy_reference(model, prompt, NEW_TOKENS, EOT))


best = None
for seed in range(40):
    torch.manual_seed(seed)
    candidate = GPT2LMHeadModel(config).eval()
    worst = min(greedy(candidate, text)[3] for text in PROMPTS)
    if best is None or worst > best[0]:
        best = (worst, seed)
    if worst >= 0.03:
        break
torch.manual_seed(best[1])
model = GPT2LMHeadModel(config).eval()
print(f"seed {best[1]}, smallest top-2 logit gap on the greedy paths {best[0]:.4f}")


# 3. Export with past inputs and present outputs (Optimum names).
heads, head_dim = config.n_head, config.n_embd // config.n_head
export_with_past(model, config.n_layer, heads, head_dim, VOCAB, HERE / "model.onnx")
config.save_pretrained(HERE)

# 4. Expected results, and the export checked against torch.
cases = []
for text in PROMPTS:
    prompt, ids, logprobs, _ = greedy(model, text)
    cases.append(
        {"text": text, "prompt_ids": prompt, "ids": ids, "logprobs": logprobs,
         "completion_text": tokenizer.decode(ids, skip_special_tokens=True)}
    )
(HERE / "expected.json").write_text(json.dumps({"new_tokens": NEW_TOKENS, "cases": cases}, indent=2) + "\n")

difference = max_logit_difference(
    HERE / "model.onnx", model, cases[1]["prompt_ids"], config.n_layer, heads, head_dim
)
print("onnxruntime vs torch, max |logit difference|:", difference)
