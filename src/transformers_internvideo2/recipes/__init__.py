"""Laptop-scale training recipes (see docs/shapes_world_recipe.md)."""
