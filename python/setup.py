"""pip install ./python: the rewire package, pure Python (it calls
librewire.so through cffi's ABI mode, nothing to compile). When the
library is built (build/librewire.so, or $REWIRE_LIBRARY), it is copied
into the package with the rewire.h it was built from; otherwise the
package finds the system's (cmake --install) at import.

Deliberately no pyproject.toml: pip then builds with the setuptools that
is installed (Debian's python3-setuptools) instead of fetching one, so
the install works offline."""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "rewire")
        lib = os.environ.get("REWIRE_LIBRARY") or os.path.join(ROOT, "build", "librewire.so")
        header = os.environ.get("REWIRE_HEADER") or os.path.join(ROOT, "include", "rewire.h")
        if os.path.isfile(lib) and os.path.isfile(header):
            shutil.copyfile(os.path.realpath(lib), os.path.join(target, "librewire.so"))
            shutil.copyfile(header, os.path.join(target, "rewire.h"))
            print("rewire: bundling %s and %s" % (lib, header))
        else:
            print("rewire: no %s: the package will load the system's librewire.so.0 "
                  "(cmake --install build)" % lib)


setup(
    name="rewire",
    version="0.1.0",
    description="Truly sparse neural networks (CSR weights, zeros never stored or multiplied)",
    packages=["rewire"],
    python_requires=">=3.9",
    install_requires=["numpy", "cffi"],
    cmdclass={"build_py": BuildWithLibrary},
    zip_safe=False,
)
