"""The server leaves what it loaded at start-up out of garbage collection (chatsite/asgi.py).

A full collection walks every tracked object; with the provider SDKs loaded that is about
265,000 of them and took 120-170 ms, during which no frame is relayed (docs/benchmarks.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.optimisation
def test_the_asgi_application_freezes_what_start_up_loaded() -> None:
    code = "import gc, chatsite.asgi; print(gc.get_freeze_count(), len(gc.get_objects()))"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DEBUG": "true", "DJANGO_SETTINGS_MODULE": "chatsite.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    frozen, tracked = (int(n) for n in result.stdout.split())
    assert frozen > 100_000
    # What a full collection still walks is a small part of what start-up loaded.
    assert tracked < frozen / 20
