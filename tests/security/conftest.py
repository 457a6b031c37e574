"""Hostile-input suite: attacks through the public tool contract and hostile files on disk.

Every test here reproduces an attack that once worked. The runner helpers of the functional tests
(a sample project wired to the scripted model server) are shared.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "functional"))
