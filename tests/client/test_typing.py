"""``mypy --strict`` passes on an app's script after the README's install
(``pip install -e .``): the editable install must be visible to static tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = Path(__file__).resolve().parent / "examples" / "integration.py"


def test_mypy_strict_on_a_user_script_after_pip_install_e(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # The dependencies come from this venv (offline); tocsin only from the install below.
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                              "-e", str(ROOT)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    work = tmp_path / "app"  # outside the checkout: nothing found through the cwd
    work.mkdir()
    shutil.copy(EXAMPLE, work / "app.py")
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                          "--python-executable", str(python), "app.py"],
                         capture_output=True, text=True, cwd=work, timeout=300)
    # Before: 'Cannot find implementation or library stub for module named "tocsin.client"'
    assert out.returncode == 0, out.stdout + out.stderr
