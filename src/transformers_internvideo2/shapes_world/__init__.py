"""Wing: the procedural shapes world — the clip generator, the laptop-scale recipes that train on it, the tiny trained
models that ship with the package, and the demo that runs them.

The generator's public names are re-exported here (`from transformers_internvideo2.shapes_world import render_clip`).
"""

from .generator import *  # noqa: F401,F403
from .generator import __all__
