"""Maps the three top-level folders onto the `tenchat` namespace.

The package list is computed by walking the folders, so a new subpackage
ships without anyone remembering to list it (tests/test_packaging.py checks
the built wheel).
"""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent
PARTS = ("common", "relay", "client")


def _packages() -> tuple[list[str], dict[str, str]]:
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    for part in PARTS:
        for init in sorted((ROOT / part).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT)
            name = "tenchat." + ".".join(rel.parts)
            packages.append(name)
            package_dir[name] = rel.as_posix()
    return packages, package_dir


packages, package_dir = _packages()
setup(
    packages=packages,
    package_dir=package_dir,
    package_data={name: ["*.md", "*.tcss", "py.typed"] for name in packages},
)
