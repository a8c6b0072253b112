"""Which packages the distribution carries; the project's metadata is in pyproject.toml.

The data folder `resources/` is installed as the package `teller_guard_resources`, so it cannot
collide with another distribution's `resources`; code reads it only through importlib.resources
(`teller_guard_resources.resource`).
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["guard", "guard.*", "ui", "ui.*"]),
              "teller_guard_resources"],
    package_dir={"teller_guard_resources": "resources"},
    package_data={
        "teller_guard_resources": ["policy.toml", "data/*", "icons/*.png", "translations/*.qm",
                                   "translations/*.ts", "samples/*"],
    },
)
