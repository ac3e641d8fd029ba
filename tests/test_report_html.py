"""feedback.html in a real browser: it loads with no console errors and renders its figures."""

from __future__ import annotations

import io

import numpy as np
import pytest

from .browser import visit

pytestmark = pytest.mark.kernel


def test_feedback_opens_in_chromium_without_errors(reference_structure, tmp_path):
    from PIL import Image

    _, out = reference_structure
    page = visit(out / "feedback.html", tmp_path / "feedback.png")
    assert page.page_errors == [] and page.dialogs == []
    assert [c for c in page.console if c[0] in ("error", "warning")] == []
    assert page.title == "Feedback: ex8_solution.ipynb"
    # every figure decoded (a broken data URI has a natural size of 0): in the structure
    # profile, five training histories and the bonus's frames (no predictions: noise there)
    assert len(page.image_sizes) == 6 and all(w > 0 and h > 0 for w, h in page.image_sizes)
    assert all(url.startswith(("file:", "data:")) for url in page.requests)
    shot = Image.open(io.BytesIO(page.screenshot))
    assert shot.width == 1200 and shot.height > 2000
    assert len(np.unique(np.asarray(shot.convert("L")))) > 20  # not a blank page
