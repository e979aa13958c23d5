"""Under `torch.autocast(bfloat16)` every block matmul and the attention kernel run in bfloat16.

A float32 tensor reaching a linear layer or the attention kernel inside autocast means a silent float32 path (the
q/k RMSNorm once promoted q and k to float32, so the attention ran at a quarter of the bf16 speed). The tests record
the dtypes that reach the kernels instead of timing anything.
"""

import pytest
import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from transformers_internvideo2 import InternVideo2Model, InternVideo2VisionConfig, InternVideo2VisionModel
from transformers_internvideo2.models.internvideo2_vision import modeling_internvideo2_vision
from transformers_internvideo2.models.internvideo2_vision.modeling_internvideo2_vision import (
    eager_attention_forward,
)

from transformers_internvideo2.models.beats.modeling_beats import BeatsModel, beats_eager_attention_forward

from test_modeling_beats import tiny_config as tiny_beats_config
from test_modeling_internvideo2_chat import tiny_model as tiny_chat_model
from test_modeling_internvideo2_video_text import tiny_config as tiny_video_text_config


class KernelDtypeRecorder:
    """Records the q/k/v dtypes reaching the attention kernel (and which kernel: `kernels`, one name per call) and the
    input/output dtypes of every `nn.Linear`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, model: nn.Module, eager_kernel=eager_attention_forward):
        # `eager_kernel`: the model family's own eager function (the mapping's "eager" entry overrides it)
        self.attention: list[tuple[torch.dtype, ...]] = []
        self.kernels: list[str] = []  # "sdpa", "eager" or "blocked", per attention call
        self.linear: list[tuple[str, torch.dtype, torch.dtype]] = []
        for name in ("sdpa", "eager"):
            kernel = ALL_ATTENTION_FUNCTIONS.get(name, eager_kernel)
            monkeypatch.setitem(ALL_ATTENTION_FUNCTIONS._global_mapping, name, self._wrap(name, kernel))
        # what the vision blocks' `sdpa` runs for bf16 inference on CPU
        blocked = modeling_internvideo2_vision.query_blocked_attention_forward
        monkeypatch.setattr(modeling_internvideo2_vision, "query_blocked_attention_forward", self._wrap("blocked", blocked))
        self._handles = [
            module.register_forward_hook(self._linear_hook(name))
            for name, module in model.named_modules()
            if isinstance(module, nn.Linear)
        ]

    def _wrap(self, name: str, kernel):
        def recording_kernel(module, query, key, value, *args, **kwargs):
            self.attention.append((query.dtype, key.dtype, value.dtype))
            self.kernels.append(name)
            return kernel(module, query, key, value, *args, **kwargs)

        return recording_kernel

    def _linear_hook(self, name: str):
        def hook(module, inputs, output):
            self.linear.append((name, inputs[0].dtype, output.dtype))

        return hook


def _assert_all_bf16(recorder: KernelDtypeRecorder):
    assert recorder.attention, "no attention call was recorded"
    assert recorder.linear, "no linear layer was recorded"
    assert all(dtypes == (torch.bfloat16,) * 3 for dtypes in recorder.attention), recorder.attention
    float32_linears = [name for name, _, out_dtype in recorder.linear if out_dtype != torch.bfloat16]
    assert not float32_linears, f"linear layers computing in float32 under autocast: {float32_linears}"


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_vision_encoder_runs_bf16_kernels_under_autocast(monkeypatch, attn_implementation):
    config = InternVideo2VisionConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=28,
        patch_size=14, num_frames=4, pooler_output_size=16, pooler_num_attention_heads=4, use_qk_norm=True,
    )
    config._attn_implementation = attn_implementation
    model = InternVideo2VisionModel(config).eval()
    recorder = KernelDtypeRecorder(monkeypatch, model)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = model(torch.randn(1, 4, 3, 28, 28))
    _assert_all_bf16(recorder)
    assert len(recorder.attention) == config.num_hidden_layers + 1  # every block and the pooler
    assert outputs.pooler_output.dtype == torch.bfloat16


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_video_text_model_runs_bf16_kernels_under_autocast(monkeypatch, attn_implementation):
    config = tiny_video_text_config()
    config._attn_implementation = attn_implementation
    for sub_config in (config.vision_config, config.text_config):
        sub_config._attn_implementation = attn_implementation
    model = InternVideo2Model(config).eval()
    recorder = KernelDtypeRecorder(monkeypatch, model)
    input_ids = torch.tensor([[2, 5, 6, 7, 8]])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model.get_video_features(pixel_values=torch.randn(1, 4, 3, 28, 28))
        model.get_text_features(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
    _assert_all_bf16(recorder)


def _set_attention(model: nn.Module, attn_implementation: str) -> None:
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "_attn_implementation"):
            config._attn_implementation = attn_implementation


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_chat_video_path_qformer_and_projector_run_bf16_kernels_under_autocast(monkeypatch, attn_implementation):
    """The chat model's video path: vision encoder, Q-Former (self- and cross-attention, with an instruction) and the
    projector into the language model."""
    model = tiny_chat_model(qformer_text_input=True)
    _set_attention(model, attn_implementation)
    recorder = KernelDtypeRecorder(monkeypatch, model.qformer)
    projector = KernelDtypeRecorder(monkeypatch, model.multi_modal_projector)
    instruction = torch.tensor([[1, 5, 6, 2]])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = model.get_video_features(
            pixel_values_videos=torch.randn(1, 4, 3, 28, 28),
            qformer_input_ids=instruction,
            qformer_attention_mask=torch.ones_like(instruction),
        )
    _assert_all_bf16(recorder)
    projector_dtypes = [out_dtype for _, _, out_dtype in projector.linear]
    assert projector_dtypes and all(dtype == torch.bfloat16 for dtype in projector_dtypes), projector_dtypes
    assert outputs.pooler_output.dtype == torch.bfloat16


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_beats_audio_encoder_runs_bf16_kernels_under_autocast(monkeypatch, attn_implementation):
    model = BeatsModel(tiny_beats_config()).eval()
    model.set_attn_implementation(attn_implementation)
    recorder = KernelDtypeRecorder(monkeypatch, model, eager_kernel=beats_eager_attention_forward)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model(torch.randn(1, 64, 32))
    _assert_all_bf16(recorder)


class _AtenOpRecorder(torch.utils._python_dispatch.TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_layer_scale_in_one_16_bit_dtype_multiplies_directly_with_the_float32_bits(dtype):
    """LayerScale with `force_fp32` (the original's float32 product) and weights and activations in one 16-bit dtype:
    one multiply kernel, no float32 round trip, and the same bits as the float32 product rounded once (exact in
    float32, so rounding it once is the correctly rounded 16-bit product). Under autocast (float32 lambda) the
    float32 path stays."""
    from transformers_internvideo2.models.internvideo2_vision.modeling_internvideo2_vision import (
        InternVideo2LayerScale,
    )

    generator = torch.Generator().manual_seed(0)
    layer_scale = InternVideo2LayerScale(64, 1e-5, force_fp32=True)
    with torch.no_grad():  # lambdas of every magnitude a trained model holds, some negative
        layer_scale.lambda1.copy_(torch.randn(64, generator=generator) * torch.logspace(-6, 1, 64))
    # activations from subnormal to the dtype's large range
    scales = torch.logspace(-7, 3 if dtype == torch.float16 else 30, 512).reshape(8, 64)
    hidden = (torch.randn(3, 8, 64, generator=generator) * scales).to(dtype)
    layer_scale.to(dtype)
    expected = (hidden.float() * layer_scale.lambda1.float()).to(dtype)
    with _AtenOpRecorder() as recorder:
        output = layer_scale(hidden)
    assert recorder.ops == ["mul"], recorder.ops
    assert output.dtype == dtype and torch.equal(output.view(torch.int16), expected.view(torch.int16))

    # a float32 lambda (autocast keeps parameters in float32): the product is formed in float32 through type
    # promotion - no float32 copy of the activations first - and cast back, with the original's bits
    float32_lambda = InternVideo2LayerScale(64, 1e-5, force_fp32=True)
    with torch.no_grad():
        float32_lambda.lambda1.copy_(torch.randn(64, generator=generator) * torch.logspace(-6, 1, 64))
    with _AtenOpRecorder() as recorder:
        output = float32_lambda(hidden)
    assert recorder.ops == ["mul", "_to_copy"], recorder.ops
    expected = (hidden.float() * float32_lambda.lambda1.float()).to(dtype)
    assert output.dtype == dtype and torch.equal(output.view(torch.int16), expected.view(torch.int16))
