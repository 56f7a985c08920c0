"""The wheel's build step: the field app is built into the package (server/pwa_dist/).

Everything else is in pyproject.toml. build_py runs the same build function as
`kerbside build` (server/pwa_build.py), loaded by file path: the build environment has
only the build requirements (setuptools, webassets, babel), not Flask.
"""

import importlib.util
import os
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildWithFieldApp(build_py):
    """build_py, then the field app into the built package's server/pwa_dist/."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            # An editable install serves from its checkout's sources (built into the instance folder).
            return
        sources = os.path.join(HERE, "pwa")
        if not os.path.isfile(os.path.join(sources, "index.html")):
            # An sdist unpacked without pwa/ would build a server with no field app: refuse.
            raise SystemExit("pwa/ (the field app's sources) is missing; cannot build the package")
        # sync/ imports nothing outside the standard library; it is needed for the protocol constants.
        sys.path.insert(0, HERE)
        spec = importlib.util.spec_from_file_location("kerbside_pwa_build", os.path.join(HERE, "server", "pwa_build.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        info = module.build(sources, os.path.join(self.build_lib, "server", "pwa_dist"))
        self.announce(f"field app version {info['version']} built", level=2)
        # The server's gettext catalogues, compiled (.po -> .mo) into the package Flask-Babel reads.
        compiled = module.compile_translations(module.TRANSLATIONS_DIR, os.path.join(self.build_lib, "server", "translations"))
        self.announce(f"translations compiled: {', '.join(compiled) or 'none'}", level=2)


setup(cmdclass={"build_py": BuildWithFieldApp})
