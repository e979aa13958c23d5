"""Transformers' `zero-shot-audio-classification` pipeline with the audio-video-text model: it calls the model with
`input_ids`, `attention_mask` and `input_features` and reads `logits_per_audio`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import pipeline

from transformers_internvideo2 import InternVideo2Config, InternVideo2Model
from transformers_internvideo2.models.beats import BeatsFeatureExtractor


def _tiny_audio_model(model_class):
    config = InternVideo2Config(
        vision_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                           image_size=28, patch_size=14, num_frames=2, pooler_output_size=16,
                           pooler_num_attention_heads=2, clip_teacher_hidden_size=0),
        text_config=dict(vocab_size=30522, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=16, max_position_embeddings=64, fusion_layer=1, encoder_width=24),
        audio_config=dict(patch_size=16, patch_embed_dim=8, hidden_size=16, num_hidden_layers=1,
                          num_attention_heads=2, intermediate_size=16, num_conv_pos_embeddings=4,
                          num_conv_pos_embedding_groups=2, num_buckets=8, max_distance=16),
        use_vision_token_projection=True, vision_token_projection_size=24, projection_dim=8,
    )  # fmt: skip
    torch.manual_seed(0)
    return model_class(config).eval()


@pytest.mark.parametrize("model_class", [InternVideo2Model])
def test_zero_shot_audio_classification_pipeline(model_class):
    """The dual encoder serves the pipeline (`AutoModel` loads it from any audio-video-text folder);
    `InternVideo2ForRetrieval.forward` is the training step, so pass `retrieval_model.internvideo2` instead."""
    from transformers_internvideo2.assets import load_bert_uncased_tokenizer

    model, tokenizer, extractor = _tiny_audio_model(model_class), load_bert_uncased_tokenizer(), BeatsFeatureExtractor()
    classifier = pipeline("zero-shot-audio-classification", model=model, tokenizer=tokenizer, feature_extractor=extractor)
    waveform = np.sin(np.linspace(0, 2000 * np.pi, 16000 * 3)).astype(np.float32)
    labels = ["a dog barking", "a whistle", "rain"]
    result = classifier(waveform, candidate_labels=labels)
    assert sorted(entry["label"] for entry in result) == sorted(labels)
    assert abs(sum(entry["score"] for entry in result) - 1.0) < 1e-5
    # the scores are softmax(audio-text cosine / temperature) over the prompts
    texts = tokenizer([f"This is a sound of {label}." for label in labels], return_tensors="pt", padding=True)
    features = extractor([waveform], sampling_rate=16000, return_tensors="pt")["input_features"]
    dual = model if model_class is InternVideo2Model else model.internvideo2
    with torch.no_grad():
        audio = dual.get_audio_features(features).pooler_output
        text = dual.get_text_features(texts["input_ids"], texts["attention_mask"]).pooler_output
    expected = (audio @ text.t() / dual.clamped_temperature()).softmax(-1)[0]
    for entry in result:
        assert abs(entry["score"] - expected[labels.index(entry["label"])].item()) < 1e-5
