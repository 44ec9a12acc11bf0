"""The README's two set-up commands are the contract with users and CI: keep them and .ci/run in step."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_has_exactly_two_setup_commands():
    setup = ROOT.joinpath("README.md").read_text().split("## Set up", 1)[1].split("\n## ", 1)[0]
    blocks = _bash_blocks(setup)
    assert len(blocks) == 2, blocks
    assert blocks[0].endswith("run_app.py")
    assert "pytest" in blocks[1]
    for block in blocks:
        assert "torch==" in block, "torch must be pinned so CPU machines get the CPU wheel"


def test_ci_runs_the_readme_test_command():
    setup = ROOT.joinpath("README.md").read_text().split("## Set up", 1)[1]
    test_command = _bash_blocks(setup)[1]
    ci_script = ROOT.joinpath(".ci", "run").read_text()
    assert test_command in ci_script
