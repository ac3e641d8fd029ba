"""Regenerate the golden results.json of the reference in the structure profile.

    python tests/golden/regenerate.py

Only after a deliberate change of the rubric or of a check's messages; review the diff.
"""

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from grader.pipeline import grade_submission  # noqa: E402

with tempfile.TemporaryDirectory() as tmp:
    grade_submission(ROOT / "reference" / "ex8_solution.ipynb", profile="structure",
                     out=Path(tmp) / "graded")
    data = json.loads((Path(tmp) / "graded" / "results.json").read_text())
data["execution_time"] = 0
target = Path(__file__).with_name("reference_structure_results.json")
target.write_text(json.dumps(data, indent=1) + "\n")
print(f"wrote {target}")
