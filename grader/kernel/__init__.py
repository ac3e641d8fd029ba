"""What runs inside the student's kernel: the harvest (the notebook's last cell, and the early
hand-out after every cell), the output cap, and the notebook a ``.py`` submission runs in.

``harvest`` and ``output_cap`` are written as ordinary modules, tested as such, and pasted
into the kernel as source (``cells``): the kernel never imports the grader's code for them.
Nothing they hand out is trusted (``grader.readers``).

``notebook_check`` is the one module a notebook imports itself (``from grader import check``):
advice for the student, the grader's structure checks run in the student's kernel. It hands
nothing to the grader, and where the grader confines the kernel it finds no rubric and does
nothing.
"""
