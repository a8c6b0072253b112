"""Test-wide settings: no test may reach the OS keyring of the machine it runs on."""

import os

# The default keyring of this test process and every process it starts is keyring's fail
# backend (the headless case). Without this, keyring's backend discovery may pick an in-memory
# test backend defined by some test module (they are KeyringBackend subclasses too), or a
# developer's real Secret Service, and secrets would leak from one test into another.
# Tests that need a working keyring set one explicitly with keyring.set_keyring() and restore it.
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
