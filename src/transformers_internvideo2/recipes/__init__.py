"""Laptop-scale training recipes (see docs/shapes_world_recipe.md)."""

import time


class StageClock:
    """Wall time per named stage of a recipe run: `lap(name)` stores the seconds since the previous lap (or since
    the clock was made) under `name` in `seconds`, rounded to 0.1 s."""

    def __init__(self, seconds: dict):
        self.seconds = seconds
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 1)
        self._last = now
