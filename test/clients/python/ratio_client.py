"""A Python gRPC client of the ratio and sampler services, generated from proto/.

Usage: ratio_client.py <stubs_dir> <ratio_address> <sampler_address> <model_name> <version>
Prints one JSON object with what it observed; the TypeScript test compares it.
"""
import json
import sys

stubs_dir, ratio_address, sampler_address, model_name, version = sys.argv[1:6]
sys.path.insert(0, stubs_dir)

import grpc  # noqa: E402
from gsil.v1 import common_pb2, ratio_pb2, ratio_pb2_grpc  # noqa: E402
from gsil.v1 import sampler_pb2, sampler_pb2_grpc  # noqa: E402

model = common_pb2.ModelRef(name=model_name, version=version)
out = {}

with grpc.insecure_channel(ratio_address) as channel:
    ratio = ratio_pb2_grpc.RatioServiceStub(channel)
    pair = ratio_pb2.ScoringPair(
        prompt=common_pb2.TextOrTokens(text="Once upon a time"),
        response=common_pb2.TextOrTokens(text="there was a little girl"),
    )
    response = ratio.LogProbs(
        ratio_pb2.LogProbsRequest(request_id="py-1", model=model, pairs=[pair], per_token=True),
        timeout=60,
    )
    result = response.results[0]
    out["logprob"] = result.logprob
    out["token_count"] = result.token_count
    out["token_logprobs"] = list(result.token_logprobs)
    try:
        bad = ratio_pb2.ScoringPair(
            prompt=common_pb2.TextOrTokens(text="Once"),
            response=common_pb2.TextOrTokens(tokens=common_pb2.TokenIds(ids=[5, 99999])),
        )
        ratio.LogProbs(ratio_pb2.LogProbsRequest(model=model, pairs=[pair, bad]), timeout=60)
        out["bad_request_code"] = "OK"
    except grpc.RpcError as error:
        out["bad_request_code"] = error.code().name
        out["bad_request_message"] = error.details()

with grpc.insecure_channel(sampler_address) as channel:
    sampler = sampler_pb2_grpc.SamplerServiceStub(channel)
    request = sampler_pb2.GenerateRequest(
        request_id="py-2",
        model=model,
        prompts=[common_pb2.TextOrTokens(text="Once upon a time")],
        sampling=common_pb2.SamplingParams(temperature=0, max_new_tokens=16),
    )
    completions = list(sampler.Generate(request, timeout=120))
    out["completion_text"] = completions[0].text
    out["completion_token_ids"] = list(completions[0].token_ids)
    out["finish_reason"] = sampler_pb2.FinishReason.Name(completions[0].finish_reason)

print(json.dumps(out))
