"""Offline stand-in for the get-pip.py that ansible-test downloads to bootstrap its sanity venvs.

ansible-test runs `python get_pip.py [pip options] pip==X [--no-setuptools] [--no-wheel]`.
Without internet we bootstrap pip from the interpreter's own wheel (ensurepip) and then
install the requested pip from the configured package index. ensurepip wipes PIP_*
variables, which would lose the index configuration, so the environment is saved first.
"""

import ensurepip
import os
import subprocess
import sys

saved_env = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args, env=saved_env))
