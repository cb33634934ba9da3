"""The C under images/ in one style, Xen's CODING_STYLE (images/CODING_STYLE.md):
what images/.clang-format says, 80 columns, and Xen's comment form."""
import re
import shutil
import subprocess

import pytest

from xenboot.core import paths

SOURCES = sorted(p for p in paths.IMAGES.rglob("*") if p.suffix in (".c", ".h"))
STYLE = paths.IMAGES / ".clang-format"


def test_there_is_c_to_check():
    assert {p.parent.name for p in SOURCES} >= {"common", "init", "dom0", "rootfs"}


@pytest.mark.skipif(not shutil.which("clang-format"), reason="clang-format is not installed (ci/packages)")
def test_clang_format_leaves_every_file_as_it_is():
    proc = subprocess.run(["clang-format", "--dry-run", "-Werror", f"--style=file:{STYLE}",
                           *map(str, SOURCES)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(paths.IMAGES)))
def test_lines_fit_in_80_columns_unless_a_string_would_split(source):
    # clang-format wraps code but neither string literals (messages stay
    # greppable) nor comments (it would reflow them badly).
    long = [n for n, line in enumerate(source.read_text().splitlines(), 1)
            if len(line) > 80 and '"' not in line]
    assert not long, long


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(paths.IMAGES)))
def test_comments_are_xen_style(source):
    text = source.read_text()
    wrong = []
    for comment in re.finditer(r"/\*.*?\*/", text, re.S):
        lines = comment.group(0).splitlines()
        at = text.count("\n", 0, comment.start()) + 1
        if len(lines) > 1 and (lines[0].strip() != "/*" or lines[-1].strip() != "*/"
                               or not all(line.lstrip().startswith("*") for line in lines[1:])):
            wrong.append(at)
    wrong += [n for n, line in enumerate(re.sub(r'"(\\.|[^"\\])*"', '""', text).splitlines(), 1)
              if "//" in line]
    assert not wrong, wrong
