"""Transformers' own `VideoProcessingTestMixin` (from the transformers sdist, see `transformers_tests.py`) run on
`InternVideo2VideoProcessor`."""

from __future__ import annotations

import unittest

import numpy as np
import torch

from transformers_internvideo2.media.frame_sampling import sample_frame_indices
from transformers_internvideo2.models.internvideo2_vision.video_processing_internvideo2 import InternVideo2VideoProcessor
from transformers_tests import import_upstream
from transformers.video_utils import VideoMetadata


try:
    _common = import_upstream("test_video_processing_common")
    VideoProcessingTestMixin = _common.VideoProcessingTestMixin
    prepare_video_inputs = _common.prepare_video_inputs
    _SKIP_REASON = None
except unittest.SkipTest as err:  # no cached sdist and no network
    VideoProcessingTestMixin = object
    prepare_video_inputs = None
    _SKIP_REASON = str(err)


class InternVideo2VideoProcessingTester:
    """Small inputs and the processor settings the mixin expects (`size` 20 / `crop_size` 18, as its
    `test_video_processor_from_dict_with_kwargs` hard-codes)."""

    def __init__(self, parent, batch_size=5, num_frames=8, num_channels=3, min_resolution=30, max_resolution=80):
        self.parent = parent
        self.batch_size = batch_size
        self.num_frames = num_frames
        self.num_channels = num_channels
        self.min_resolution = min_resolution
        self.max_resolution = max_resolution
        self.size = {"shortest_edge": 20}
        self.crop_size = {"height": 18, "width": 18}

    def prepare_video_processor_dict(self):
        return {
            "do_resize": True,
            "size": self.size,
            "do_center_crop": True,
            "crop_size": self.crop_size,
            "do_normalize": True,
            "image_mean": [0.485, 0.456, 0.406],
            "image_std": [0.229, 0.224, 0.225],
            "do_convert_rgb": True,
            "do_sample_frames": False,  # the mixin's call tests expect every input frame back
        }

    def expected_output_video_shape(self, videos):
        return self.num_frames, self.num_channels, self.crop_size["height"], self.crop_size["width"]

    def prepare_video_inputs(self, equal_resolution=False, return_tensors="pil"):
        return prepare_video_inputs(
            batch_size=self.batch_size,
            num_frames=self.num_frames,
            num_channels=self.num_channels,
            min_resolution=self.min_resolution,
            max_resolution=self.max_resolution,
            equal_resolution=equal_resolution,
            return_tensors=return_tensors,
        )


# Upstream tests that skip themselves here (nothing is skipped by this file, except the whole class when the
# transformers sdist cannot be obtained):
# * test_can_compile_fast_video_processor: marked @slow and @require_torch_accelerator upstream (torch.compile on a
#   GPU); the CPU-only CI cannot run it.
# * test_override_instance_attributes_does_not_affect_other_instances: skips because in transformers 5.23 every
#   TorchvisionBackend processor stores `size` as a SizeDict and `image_mean` as a tuple (`_standardize_kwargs`),
#   not the dict/list that test mutates; instance isolation is still covered because `_set_attributes` deep-copies
#   class defaults.
# * test_video_processor_preprocess_arguments: skips for every BaseVideoProcessor in 5.23 (no `_valid_processor_keys`
#   and no `@filter_out_non_signature_kwargs`); kwarg validation is done by `valid_kwargs`, tested by
#   test_valid_kwargs_set and by test_invalid_backend_and_bad_paths in test_video_processing_internvideo2.py.
@unittest.skipIf(_SKIP_REASON is not None, _SKIP_REASON or "")
class InternVideo2VideoProcessingTest(VideoProcessingTestMixin, unittest.TestCase):
    fast_video_processing_class = InternVideo2VideoProcessor
    input_name = "pixel_values"  # our models take `pixel_values`, not `pixel_values_videos`
    test_cast_dtype = True

    def setUp(self):
        super().setUp()
        self.video_processor_tester = InternVideo2VideoProcessingTester(self)

    @property
    def video_processor_dict(self):
        return self.video_processor_tester.prepare_video_processor_dict()

    def test_video_processor_properties(self):
        processor = self.fast_video_processing_class(**self.video_processor_dict)
        for name in ("do_resize", "size", "do_center_crop", "crop_size", "do_normalize", "image_mean", "image_std",
                     "do_convert_rgb", "video_backend", "frame_sampling", "num_clips", "clip_index"):  # fmt: skip
            self.assertTrue(hasattr(processor, name), name)

    # Overridden, not skipped: the upstream test ends by expecting a ValueError when more frames are requested than
    # the video has. InternVideo2's segment sampler instead repeats frames (the original code does the same for
    # clips shorter than `num_frames`), so that last check is replaced by one asserting the repetition. Everything
    # else is the upstream test's checks.
    def test_call_sample_frames(self):
        processor = self.fast_video_processing_class(**self.video_processor_dict)
        tester = self.video_processor_tester
        previous = tester.num_frames
        tester.num_frames = 8
        try:
            videos = tester.prepare_video_inputs(equal_resolution=False, return_tensors="torch")

            processor.do_sample_frames = False
            self.assertEqual(processor(videos[0], return_tensors="pt", num_frames=3)[self.input_name].shape[1], 8)
            self.assertEqual(processor(videos, return_tensors="pt", num_frames=3)[self.input_name].shape[1], 8)

            processor.do_sample_frames = True
            self.assertEqual(processor(videos[0], return_tensors="pt", num_frames=3)[self.input_name].shape[1], 3)
            self.assertEqual(processor(videos, return_tensors="pt", num_frames=3)[self.input_name].shape[1], 3)

            with self.assertRaises(ValueError):
                processor.sample_frames(metadata=VideoMetadata(total_num_frames=8), fps=3)

            metadata = [[{"duration": 2.0, "total_num_frames": 8, "fps": 4}]]
            out = processor(videos[0], return_tensors="pt", fps=3, video_metadata=metadata)[self.input_name]
            self.assertEqual(out.shape[1], 6)
            out = processor(videos, return_tensors="pt", fps=3, video_metadata=metadata * len(videos))
            self.assertEqual(out[self.input_name].shape[1], 6)
            metadata = [[VideoMetadata(duration=2.0, total_num_frames=8, fps=4)]]
            out = processor(videos[0], return_tensors="pt", fps=3, video_metadata=metadata)[self.input_name]
            self.assertEqual(out.shape[1], 6)

            # more frames than the video has: repeated frames, in the original sampler's order
            out = processor(videos[0], return_tensors="pt", num_frames=10, return_metadata=True)
            self.assertEqual(out[self.input_name].shape[1], 10)
            indices = np.asarray(out["video_metadata"][0].frames_indices)
            np.testing.assert_array_equal(indices, sample_frame_indices(8, 10, "segments", warn_on_repeat=False))
            self.assertLess(len(set(indices.tolist())), 10)
            frames = processor(videos[0], return_tensors="pt", do_sample_frames=False)[self.input_name][0]
            torch.testing.assert_close(out[self.input_name][0], frames[torch.from_numpy(indices)])
        finally:
            tester.num_frames = previous
