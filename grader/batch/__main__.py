"""``python -m grader.batch``: the grading process of one submission (see ``worker``)."""

import sys

from .worker import child_main

sys.exit(child_main())
