"""Optional compiled core: ``SANSCHAT_COMPILE=1`` builds the Framer with mypyc.

The pure-Python package is complete and is what a plain ``pip install .``
gives. With mypy (which ships mypyc) and a C compiler at hand,

    pip install mypy setuptools
    SANSCHAT_COMPILE=1 pip install --no-build-isolation .

compiles the Framer and its output queue; ``sanschat.compiled`` then says True.
Everything else (metadata, packages) is in pyproject.toml.
"""

import os

from setuptools import setup

ext_modules = []
if os.environ.get("SANSCHAT_COMPILE") == "1":
    from mypyc.build import mypycify

    ext_modules = mypycify(
        [
            "src/sanschat/_output.py",
            "src/sanschat/_buffer.py",
            "src/sanschat/_readers.py",
            "src/sanschat/_framer.py",
        ],
        opt_level="3",
    )

# A build directory of its own, so that a later pure build never packs these modules.
setup(ext_modules=ext_modules, options={"build": {"build_base": "build-compiled"}} if ext_modules else {})
