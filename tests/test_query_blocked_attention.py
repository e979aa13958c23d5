"""The query-blocked attention that the vision encoder's `sdpa` setting runs for bfloat16 inference on CPU.

It must be the same attention as the eager path (same order of operations, so float32 agrees to rounding), be chosen
exactly when it is meant to be (bfloat16, CPU, no autograd, `sdpa`; compiled graphs too, see test_torch_compile.py),
and leave training, float32 and the eager setting on their own kernels.
"""

from collections import Counter

import pytest
import torch
from torch import nn

from transformers_internvideo2 import InternVideo2VisionConfig, InternVideo2VisionModel
from transformers_internvideo2.models.internvideo2_vision.modeling_internvideo2_vision import (
    ATTENTION_QUERY_BLOCK,
    eager_attention_forward,
    query_blocked_attention_forward,
)

from test_autocast_dtypes import KernelDtypeRecorder


def _qkv(batch, heads, tokens, head_dim, dtype, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, tokens, head_dim, generator=generator).to(dtype) for _ in range(3)]


@pytest.mark.parametrize("tokens", [1, ATTENTION_QUERY_BLOCK - 1, ATTENTION_QUERY_BLOCK, 2 * ATTENTION_QUERY_BLOCK + 5])
def test_blocked_attention_equals_the_eager_attention_in_float32(tokens):
    module = nn.Module().eval()
    query, key, value = _qkv(2, 3, tokens, 8, torch.float32)
    blocked, weights = query_blocked_attention_forward(module, query, key, value, None, scaling=8**-0.5)
    eager, _ = eager_attention_forward(module, query, key, value, None, scaling=8**-0.5)
    assert weights is None
    assert blocked.shape == eager.shape == (2, tokens, 3, 8)  # (batch, tokens, heads, head_dim), like eager
    torch.testing.assert_close(blocked, eager, atol=1e-6, rtol=1e-5)


def test_blocked_attention_in_bfloat16_is_as_close_to_float32_as_the_eager_path():
    module = nn.Module().eval()
    tokens = 3 * ATTENTION_QUERY_BLOCK + 17
    query, key, value = _qkv(1, 4, tokens, 16, torch.bfloat16, seed=1)
    reference, _ = eager_attention_forward(module, query.float(), key.float(), value.float(), None, scaling=0.25)
    blocked, _ = query_blocked_attention_forward(module, query, key, value, None, scaling=0.25)
    eager, _ = eager_attention_forward(module, query, key, value, None, scaling=0.25)
    blocked_error = (blocked.float() - reference).abs().max()
    eager_error = (eager.float() - reference).abs().max()
    assert blocked.dtype == torch.bfloat16
    assert blocked_error <= 1.5 * eager_error + 1e-3, (blocked_error, eager_error)


def test_blocked_attention_refuses_a_mask_or_dropout():
    module = nn.Module()
    query, key, value = _qkv(1, 2, 5, 4, torch.float32)
    with pytest.raises(ValueError, match="mask"):
        query_blocked_attention_forward(module, query, key, value, torch.zeros(1, 1, 5, 5), scaling=0.5)
    with pytest.raises(ValueError, match="dropout"):
        query_blocked_attention_forward(module, query, key, value, None, scaling=0.5, dropout=0.1)


def _tiny_model(attn_implementation: str, dtype: torch.dtype) -> InternVideo2VisionModel:
    config = InternVideo2VisionConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=28,
        patch_size=14, num_frames=4, pooler_output_size=16, pooler_num_attention_heads=4, use_qk_norm=True,
    )  # fmt: skip
    torch.manual_seed(0)
    return InternVideo2VisionModel._from_config(config, dtype=dtype, attn_implementation=attn_implementation)


@pytest.mark.parametrize(
    "attn_implementation, dtype, mode, expected",
    [
        ("sdpa", torch.bfloat16, "inference", "blocked"),
        ("sdpa", torch.bfloat16, "no_grad", "blocked"),
        ("sdpa", torch.float32, "autocast", "blocked"),  # q/k/v reach attention in bfloat16
        ("sdpa", torch.bfloat16, "train", "sdpa"),  # autograd: the fused kernel's backward keeps no score matrix
        ("sdpa", torch.float32, "inference", "sdpa"),
        ("eager", torch.bfloat16, "inference", "eager"),
    ],
)
def test_the_blocks_run_the_blocked_kernel_exactly_for_bfloat16_cpu_inference_with_sdpa(
    monkeypatch, attn_implementation, dtype, mode, expected
):
    model = _tiny_model(attn_implementation, dtype)
    recorder = KernelDtypeRecorder(monkeypatch, model)
    pixel_values = torch.randn(1, 4, 3, 28, 28, dtype=dtype)
    if mode == "train":
        model.train()
        model(pixel_values).last_hidden_state.float().sum().backward()
    else:
        model.eval()
        context = torch.inference_mode if mode == "inference" else torch.no_grad
        with context(), torch.autocast("cpu", torch.bfloat16, enabled=mode == "autocast"):
            model(pixel_values)
    blocks = model.config.num_hidden_layers
    # the pooler's one-query attention always takes the registered kernel
    pooler_kernel = "eager" if attn_implementation == "eager" else "sdpa"
    calls = Counter(recorder.kernels)
    assert calls[expected] == blocks + (expected == pooler_kernel), calls
    assert sum(calls.values()) == blocks + 1, calls


def test_bfloat16_sdpa_inference_matches_the_eager_setting_on_a_whole_model():
    model = _tiny_model("sdpa", torch.bfloat16).eval()
    pixel_values = torch.randn(2, 4, 3, 28, 28, dtype=torch.bfloat16)
    with torch.inference_mode():
        blocked = model(pixel_values).last_hidden_state
        model.set_attn_implementation("eager")
        eager = model(pixel_values).last_hidden_state
    # the same operations in the same order; only the matmul's blocking may differ
    torch.testing.assert_close(blocked, eager, atol=2e-2, rtol=2e-2)
