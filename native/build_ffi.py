"""Build the C core as the out-of-line, API-mode cffi extension ``protocols._native``.

Used two ways:
* by setuptools through ``setup.py`` (``cffi_modules``) when the package is installed;
* directly, ``python native/build_ffi.py``, to rebuild the extension in place after editing C
  (what ``make native`` does). ``TILLWIRE_SANITIZE=1`` builds with AddressSanitizer and
  UndefinedBehaviorSanitizer (``make sanitize``).

The cdef is the real header ``native/tw_ffi.h`` with its preprocessor lines removed, so the compiler
checks every signature cffi is told about.
"""

from __future__ import annotations

import glob
import os
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _rel(path: str) -> str:
    # setuptools wants sources relative to the project root.
    return os.path.relpath(path, ROOT)


def _cdef_text() -> str:
    with open(os.path.join(HERE, "tw_ffi.h"), encoding="utf-8") as fh:
        lines = [ln for ln in fh if not ln.lstrip().startswith("#")]
    return "".join(lines)


def _flags() -> tuple[list[str], list[str]]:
    compile_args = ["-std=c99", "-Wall", "-Wextra"]
    link_args: list[str] = []
    if os.environ.get("TILLWIRE_SANITIZE") == "1":
        san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]
        compile_args += ["-O1", "-g"] + san
        link_args += san
    else:
        compile_args += ["-O2"]
    if os.environ.get("TILLWIRE_WERROR") == "1":
        compile_args.append("-Werror")
    return compile_args, link_args


def make_builder(absolute: bool = False) -> FFI:
    """Relative paths for setuptools (it builds from the project root); absolute ones for an in-place build,
    because cffi's compile() runs the compiler from its temporary directory."""
    place = (lambda p: p) if absolute else _rel
    builder = FFI()
    builder.cdef(_cdef_text())
    compile_args, link_args = _flags()
    builder.set_source(
        "protocols._native",
        '#include "tw_ffi.h"\n',
        sources=[place(p) for p in sorted(glob.glob(os.path.join(HERE, "*.c")))],
        include_dirs=[place(HERE)],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    return builder


ffibuilder = make_builder()


if __name__ == "__main__":
    # In-place build: the .so lands next to protocols/__init__.py.
    os.chdir(ROOT)
    tmp = os.path.join(ROOT, "build", "ffi-sanitize" if os.environ.get("TILLWIRE_SANITIZE") == "1" else "ffi")
    out = make_builder(absolute=True).compile(tmpdir=tmp, verbose=bool(os.environ.get("V")))
    # compile() writes protocols/_native.*.so under tmpdir; move it into the package.
    import shutil

    dest = os.path.join(ROOT, "protocols", os.path.basename(out))
    for old in glob.glob(os.path.join(ROOT, "protocols", "_native.*.so")):
        os.remove(old)
    shutil.copy2(out, dest)
    print(f"built {os.path.relpath(dest, ROOT)}", file=sys.stderr)
