#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (an Ubuntu base
# image): Python 3.11 or later, this grader from the source in the bundle, bubblewrap for the
# kernel's confinement, and the IMDB reviews tokenised once into the grader's cache.
# EX8_AUTOGRADER_ROOT moves /autograder, EX8_VENV the grader's environment.
set -euo pipefail

root="${EX8_AUTOGRADER_ROOT:-/autograder}"
venv="${EX8_VENV:-/opt/ex8-grader}"
export DEBIAN_FRONTEND=noninteractive

apt-get update -qq
apt-get install -y -qq --no-install-recommends bubblewrap ca-certificates >/dev/null

python=""
for candidate in python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        python="$candidate"
        break
    fi
done
if [ -z "$python" ]; then
    # Ubuntu 22.04, Gradescope's default image, has Python 3.10; its universe has 3.11
    apt-get install -y -qq --no-install-recommends python3.11 >/dev/null
    python=python3.11
fi
# Debian and Ubuntu ship venv (and the pip it installs) in a package of its own
apt-get install -y -qq --no-install-recommends "$python-venv" >/dev/null

# /opt, not /root: the kernel runs as another user and must read the environment
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q "$root/source/ex8-grader"
"$venv/bin/python" -m grader.export.gradescope setup --root "$root"
