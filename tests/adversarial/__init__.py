"""The adversarial corpus (see build.py)."""
