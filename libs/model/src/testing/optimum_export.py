"""torch.onnx export of a transformers causal LM in the Optimum / transformers.js convention,
shared by the fixture scripts beside this file: inputs input_ids, attention_mask,
position_ids, past_key_values.{i}.key|value [batch, kv_heads, past, head_dim]; outputs
logits and present.{i}.key|value."""

import torch
from transformers import DynamicCache


class _WithPast(torch.nn.Module):
    """One forward pass with flat past inputs and flat present outputs."""

    def __init__(self, inner, layers):
        super().__init__()
        self.inner = inner
        self.layers = layers

    def forward(self, input_ids, attention_mask, position_ids, *past):
        cache = DynamicCache()
        for i in range(self.layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.inner(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=cache,
            use_cache=True,
        )
        present = []
        for i in range(self.layers):
            layer = out.past_key_values.layers[i]
            present += [layer.keys, layer.values]
        return (out.logits, *present)


def past_names(layers):
    return [f"past_key_values.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]


def export_with_past(model, layers, kv_heads, head_dim, vocab, path):
    """Writes `model` (in eval mode, left so) to `path` as an Optimum-convention decoder."""
    pasts = past_names(layers)
    presents = [name.replace("past_key_values", "present") for name in pasts]
    batch, seq, past_len = 2, 3, 4
    example = (
        torch.randint(3, vocab, (batch, seq)),
        torch.ones(batch, past_len + seq, dtype=torch.int64),
        torch.arange(past_len, past_len + seq).repeat(batch, 1),
        *[torch.randn(batch, kv_heads, past_len, head_dim) for _ in pasts],
    )
    dynamic = {
        "input_ids": {0: "batch_size", 1: "sequence_length"},
        "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
        "position_ids": {0: "batch_size", 1: "sequence_length"},
        "logits": {0: "batch_size", 1: "sequence_length"},
    }
    dynamic.update({name: {0: "batch_size", 2: "past_sequence_length"} for name in pasts})
    dynamic.update({name: {0: "batch_size", 2: "total_sequence_length"} for name in presents})
    torch.onnx.export(
        _WithPast(model, layers).eval(),
        example,
        str(path),
        input_names=["input_ids", "attention_mask", "position_ids", *pasts],
        output_names=["logits", *presents],
        dynamic_axes=dynamic,
        opset_version=17,
        dynamo=False,
    )
    model.eval()  # export restores the wrapper's training mode; dropout must stay off


def greedy_reference(model, prompt, new_tokens, eos):
    """transformers' greedy continuation of `prompt` (ids): the new ids, the temperature-1
    log-probability of each, and the smallest gap between the best and second-best logit on
    the path (a fixture is only useful when greedy is not decided by float rounding)."""
    out = model.generate(
        torch.tensor([prompt]),
        attention_mask=torch.ones(1, len(prompt), dtype=torch.int64),
        max_new_tokens=new_tokens,
        do_sample=False,
        output_scores=True,
        return_dict_in_generate=True,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    ids = out.sequences[0, len(prompt) :].tolist()
    logprobs = [torch.log_softmax(s[0].double(), -1)[t].item() for s, t in zip(out.scores, ids)]
    margin = min((s[0].topk(2).values[0] - s[0].topk(2).values[1]).item() for s in out.scores)
    return ids, logprobs, margin


def max_logit_difference(path, model, prompt, layers, kv_heads, head_dim):
    """Largest |logit| difference between the export at `path`, run by ONNX Runtime without a
    past, and `model` itself, over `prompt`."""
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path))
    feeds = {
        "input_ids": np.array([prompt], dtype=np.int64),
        "attention_mask": np.ones((1, len(prompt)), dtype=np.int64),
        "position_ids": np.arange(len(prompt), dtype=np.int64)[None],
    }
    for name in past_names(layers):
        feeds[name] = np.zeros((1, kv_heads, 0, head_dim), dtype=np.float32)
    with torch.no_grad():
        reference = model(torch.tensor([prompt])).logits.numpy()
    return float(np.abs(session.run(["logits"], feeds)[0] - reference).max())
