"""Stage 3 on the shapes world: instruction-tune a tiny InternVideo2 chat model (SmolLM2-135M + LoRA) on CPU.

    python examples/shapes_world_chat.py --output-dir runs/shapes-chat            # the bundled model's run (~2 h: ~85 min + ~45 min)
    python examples/shapes_world_chat.py --output-dir runs/shapes-chat --micro    # a few seconds of plumbing

See docs/videochat_shapes.md and `transformers_internvideo2.shapes_world.recipes.chat`.
"""

import sys
from pathlib import Path


# run from a source checkout without installing the package
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from transformers_internvideo2.shapes_world.recipes.chat import main  # noqa: E402


if __name__ == "__main__":
    raise SystemExit(main())
