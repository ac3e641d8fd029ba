"""What runs inside the student's kernel: the harvest (the notebook's last cell, and the early
hand-out after every cell), the output cap, and the notebook a ``.py`` submission runs in.

``harvest`` and ``output_cap`` are written as ordinary modules, tested as such, and pasted
into the kernel as source (``cells``): the kernel never imports the grader's code for them.
Nothing they hand out is trusted (``grader.readers``).
"""
