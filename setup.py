"""Build script: declares the Cython extension; metadata lives in pyproject.toml.

``FASTREPLY_NO_EXTENSIONS=1`` at build time gives a pure-Python build (and wheel).
Otherwise the extension is required: a compiler or Cython failure fails the build
loudly instead of silently producing a slower package.
"""

import os
import sys

from setuptools import Extension, setup

NO_EXTENSIONS = bool(os.environ.get("FASTREPLY_NO_EXTENSIONS")) or (
    sys.implementation.name != "cpython"
)

ext_modules = []
if NO_EXTENSIONS:
    print("fastreply: building WITHOUT the C extension (pure-Python build)", file=sys.stderr)
else:
    from Cython.Build import cythonize

    macros = []
    if os.environ.get("FASTREPLY_CYTHON_TRACE"):
        # Line tracing for coverage of the .pyx (ci/ only; slow).
        macros.append(("CYTHON_TRACE_NOGIL", "1"))
    extensions = [
        Extension(
            "fastreply._parser_c",
            ["src/fastreply/_parser_c.pyx"],
            depends=["src/fastreply/_parser.h"],
            include_dirs=["src/fastreply"],
            define_macros=macros,
        ),
        Extension(
            "fastreply._classify_c",
            ["src/fastreply/_classify_c.pyx"],
            depends=["src/fastreply/_classify.h"],
            include_dirs=["src/fastreply"],
            define_macros=macros,
        ),
    ]
    ext_modules = cythonize(
        extensions,
        compiler_directives={
            "language_level": "3",
            "freethreading_compatible": True,
            "embedsignature": True,
            "linetrace": bool(os.environ.get("FASTREPLY_CYTHON_TRACE")),
        },
        annotate=bool(os.environ.get("FASTREPLY_CYTHON_ANNOTATE")),
    )
    print("fastreply: building WITH the C extensions (fastreply._parser_c, "
          "fastreply._classify_c)", file=sys.stderr)

setup(ext_modules=ext_modules)
