"""Exercise 8 reference solution: the one source, the generated notebooks and module."""
