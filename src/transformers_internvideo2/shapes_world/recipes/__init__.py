"""Laptop-scale training recipes (see docs/shapes_world_recipe.md)."""

import argparse
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


def add_setting_options(parser, names: tuple[str, ...], type=int) -> None:
    """`--some-name` options (default None: keep the settings' value) for the settings fields `names`."""
    for name in names:
        parser.add_argument(f"--{name.replace('_', '-')}", type=type, default=None)


def apply_setting_options(settings, args, names: tuple[str, ...]) -> None:
    """Copy the options of `names` that were given on the command line into `settings`."""
    for name in names:
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))


def recipe_argument_parser(module: str, description: str, default_threads: str = "torch's"):
    """The options every recipe has: `--output-dir`, `--quick`, `--seed`, `--threads`."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--quick", action="store_true", help="a few steps only (smoke test; meaningless metrics)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help=f"torch threads (default: {default_threads})")
    return parser
