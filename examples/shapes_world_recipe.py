"""The three InternVideo2 training stages in miniature on the procedural shapes world (CPU, minutes).

    python examples/shapes_world_recipe.py --output-dir runs/shapes            # default settings (the bundled models)
    python examples/shapes_world_recipe.py --output-dir runs/shapes --quick    # a smoke test (seconds, no learning)
    python scripts/install_bundled.py runs/shapes/bundle                       # then install the trained bundle

Stage 0 trains a tiny InternVideo2 teacher on the motion direction, stage 1 distils a smaller student from it
(masked token alignment), stage 2 trains video-text alignment (VTC + VTM + MLM) with a text encoder initialised from
the pretrained all-MiniLM-L6-v2 BERT, and fine-tuning trains the motion-direction classifier. Held-out metrics are
printed and written to <output-dir>/metrics.json. Everything lives in `transformers_internvideo2.shapes_world.recipes.three_stage`
(see docs/shapes_world_recipe.md); this file only calls it.
"""

import sys

from transformers_internvideo2.shapes_world.recipes.three_stage import main


if __name__ == "__main__":
    sys.exit(main())
