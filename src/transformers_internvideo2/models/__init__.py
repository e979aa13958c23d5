"""The core: one folder per model family (configuration, modeling, processing), in the Transformers layout.

Nothing in `models/` imports the wings (conversion, tasks, training, shapes world, CLI); it may import the other core
packages, `media/` (decoding, frame sampling) and `losses/`.
"""

from .beats import *  # noqa: F401,F403
from .beats import __all__ as _beats_all
from .internvideo2_chat import *  # noqa: F401,F403
from .internvideo2_chat import __all__ as _chat_all
from .internvideo2_clip import *  # noqa: F401,F403
from .internvideo2_clip import __all__ as _clip_all
from .internvideo2_video_text import *  # noqa: F401,F403
from .internvideo2_video_text import __all__ as _video_text_all
from .internvideo2_vision import *  # noqa: F401,F403
from .internvideo2_vision import __all__ as _vision_all
from .internvideo_mm import *  # noqa: F401,F403
from .internvideo_mm import __all__ as _internvideo_mm_all
from .shot_boundary import *  # noqa: F401,F403
from .shot_boundary import __all__ as _shot_boundary_all
from .videomae_v1 import *  # noqa: F401,F403
from .videomae_v1 import __all__ as _videomae_v1_all
from .internvideo_cma import *  # noqa: F401,F403
from .internvideo_cma import __all__ as _internvideo_cma_all
from .registration import register_auto_classes


__all__ = [
    *_vision_all,
    *_video_text_all,
    *_chat_all,
    *_beats_all,
    *_shot_boundary_all,
    *_clip_all,
    *_internvideo_mm_all,
    *_videomae_v1_all,
    *_internvideo_cma_all,
    "register_auto_classes",
]
