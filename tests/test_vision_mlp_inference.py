"""The vision MLP applies its GELU in place when autograd is off (fc1's output is a temporary nobody else reads).

It must give the bits of `fc2(act(fc1(x)))` for both GELU settings and every dtype, and leave any pass that autograd
records on the activation module, where overwriting fc1's output would corrupt the backward.
"""

import pytest
import torch

from transformers_internvideo2 import InternVideo2VisionConfig
from transformers_internvideo2.models.internvideo2_vision.modeling_internvideo2_vision import InternVideo2VisionMLP


def _mlp(hidden_act: str, dtype: torch.dtype) -> InternVideo2VisionMLP:
    torch.manual_seed(0)
    config = InternVideo2VisionConfig(
        hidden_size=24, num_attention_heads=4, intermediate_size=40, pooler_num_attention_heads=4, hidden_act=hidden_act
    )
    return InternVideo2VisionMLP(config).to(dtype).eval()


def _reference(mlp: InternVideo2VisionMLP, hidden: torch.Tensor) -> torch.Tensor:
    return mlp.fc2(mlp.act(mlp.fc1(hidden)))


@pytest.mark.parametrize("hidden_act", ["gelu", "gelu_pytorch_tanh"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("no_autograd", [torch.no_grad, torch.inference_mode])
def test_in_place_gelu_gives_the_bits_of_the_activation_module(hidden_act, dtype, no_autograd):
    mlp = _mlp(hidden_act, dtype)
    hidden = (torch.randn(2, 7, 24, generator=torch.Generator().manual_seed(1)) * 3).to(dtype)
    calls = []
    mlp.act.register_forward_hook(lambda *args: calls.append(1))
    with no_autograd():
        expected = _reference(mlp, hidden)
        calls.clear()
        output = mlp(hidden)
    assert not calls, "without autograd the GELU runs in place, not through the module"
    assert output.dtype == dtype and torch.equal(output, expected)


@pytest.mark.parametrize("hidden_act", ["gelu", "gelu_pytorch_tanh"])
def test_with_autograd_the_activation_module_runs_and_gradients_match(hidden_act):
    mlp = _mlp(hidden_act, torch.float64).train()
    hidden = torch.randn(2, 7, 24, dtype=torch.float64, requires_grad=True)
    calls = []
    mlp.act.register_forward_hook(lambda *args: calls.append(1))
    mlp(hidden).square().sum().backward()
    assert calls == [1]
    gradient = hidden.grad.clone()
    hidden.grad = None
    _reference(mlp, hidden).square().sum().backward()
    torch.testing.assert_close(gradient, hidden.grad, rtol=0, atol=0)
    # the autograd check of the whole MLP (fc1 output used by the GELU's backward)
    assert torch.autograd.gradcheck(lambda x: mlp(x), (hidden[:1, :2].detach().requires_grad_(),))


def test_an_activation_without_a_gelu_kernel_runs_through_its_module():
    mlp = _mlp("silu", torch.float32)
    assert mlp.gelu_approximation is None
    hidden = torch.randn(2, 5, 24)
    with torch.no_grad():
        assert torch.equal(mlp(hidden), _reference(mlp, hidden))
