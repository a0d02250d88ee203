"""Every code block of README.md and docs/*.md that claims to run, run as a reader would run it.

A page is one session: its blocks run in order, in one working directory, Python blocks sharing one
namespace (a later block may use what an earlier one made). The directory holds `models/minilm` (the
session's export of the bundled all-MiniLM-L6-v2), `examples/` (the repository's) and an
EMBEDRT_CACHE where `default` is that same export. A page that makes its own models from scratch says
`<!-- docs-test: empty-dir -->` and gets an empty directory (the cache is kept).

Run: ```python blocks (exec'd) and ```bash/```sh/```shell/```console blocks (bash -e; in console blocks
only the `$ ` lines). Not run: any other language (text, json, yaml...: output or data, not commands).
A block preceded by `<!-- skip: REASON -->` is skipped with REASON (a GPU, a server the suite does not
start, a package install).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
PYTHON = ("python", "py")
SHELL = ("bash", "sh", "shell", "console")
BLOCK_TIMEOUT_S = 600  # four exports on a loaded 2-core machine took 280 s; a block that never returns (a server) still ends

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
_SKIP = re.compile(r"^\s*<!--\s*skip:\s*(?P<reason>.+?)\s*-->\s*$")
_EMPTY_DIR = "<!-- docs-test: empty-dir -->"


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    source: str
    skip: str | None = None

    @property
    def id(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{page}:{self.line}"


def blocks_of(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, with the skip reason written just before each (blank lines allowed)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence = len(match["indent"]), match["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        skip = _SKIP.match(lines[k]) if k >= 0 else None
        found.append(Block(page, i + 1, match["info"].lower(), "\n".join(body) + "\n", skip["reason"] if skip else None))
        i = j + 1
    return found


def runnable(page: Path) -> list[Block]:
    return [b for b in blocks_of(page) if b.language in PYTHON + SHELL]


BLOCKS = [block for page in PAGES for block in runnable(page)]


def shell_script(block: Block) -> str:
    if block.language != "console":
        return block.source
    commands = [line[2:] for line in block.source.splitlines() if line.startswith("$ ")]
    return "\n".join(commands) + "\n"


@dataclass
class PageSession:
    """One page's working directory and Python namespace, and how many of its blocks have run."""

    page: Path
    cwd: Path
    env: dict[str, str]
    namespace: dict = field(default_factory=lambda: {"__name__": "__main__"})
    done: int = 0
    failed: str | None = None

    def run(self, block: Block) -> None:
        if block.language in PYTHON:
            previous = os.getcwd()
            os.chdir(self.cwd)
            try:
                exec(compile(block.source, block.id, "exec"), self.namespace)
            finally:
                os.chdir(previous)
            return
        # Its own process group: a block that never returns (a server) is stopped with everything it started.
        process = subprocess.Popen(
            ["bash", "-e", "-o", "pipefail", "-c", shell_script(block)],
            cwd=self.cwd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            raise AssertionError(
                f"{block.id}: still running after {BLOCK_TIMEOUT_S} s (stopped). A block that starts a server or waits forever "
                f"needs <!-- skip: REASON --> before it.\n--- stderr\n{stderr[-4000:]}"
            ) from None
        if process.returncode != 0:
            raise AssertionError(f"{block.id}: exit code {process.returncode}\n--- stdout\n{stdout[-4000:]}\n--- stderr\n{stderr[-4000:]}")


@pytest.fixture(scope="session")
def docs_cache(tmp_path_factory, minilm_dir):
    """An EMBEDRT_CACHE where `default` is the session's export, so no page exports it again."""
    cache = tmp_path_factory.mktemp("docs-cache")
    (cache / "all-MiniLM-L6-v2").symlink_to(minilm_dir, target_is_directory=True)
    return cache


@pytest.fixture(scope="session")
def page_sessions(tmp_path_factory, minilm_dir, docs_cache):
    sessions: dict[Path, PageSession] = {}
    env = {**os.environ, "EMBEDRT_CACHE": str(docs_cache), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", "MPLBACKEND": "Agg"}

    def session_for(page: Path) -> PageSession:
        if page not in sessions:
            cwd = tmp_path_factory.mktemp(re.sub(r"\W", "_", page.stem))
            if _EMPTY_DIR not in page.read_text(encoding="utf-8"):
                (cwd / "models").mkdir()
                (cwd / "models" / "minilm").symlink_to(minilm_dir, target_is_directory=True)
                (cwd / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
            sessions[page] = PageSession(page, cwd, env)
        return sessions[page]

    return session_for


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_doc_example_runs(block, page_sessions, monkeypatch):
    for key, value in page_sessions(block.page).env.items():
        if key in ("EMBEDRT_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "MPLBACKEND"):
            monkeypatch.setenv(key, value)
    if block.skip:
        pytest.skip(block.skip)
    session = page_sessions(block.page)
    page_blocks = [b for b in runnable(block.page) if not b.skip]
    position = page_blocks.index(block)
    for earlier in page_blocks[session.done:position]:  # blocks before this one, when it runs alone (-k)
        if session.failed:
            break
        _run_recording(session, earlier)
    if session.failed:
        pytest.fail(f"an earlier block of this page failed ({session.failed}); this one depends on it")
    _run_recording(session, block)


def _run_recording(session: PageSession, block: Block) -> None:
    try:
        session.run(block)
    except BaseException:
        session.failed = block.id
        raise
    finally:
        session.done = max(session.done, [b for b in runnable(block.page) if not b.skip].index(block) + 1)


# -- the collector itself ---------------------------------------------------------------------------------
def test_blocks_of_reads_language_line_indent_and_skip_reason(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# t\n\n<!-- skip: needs a GPU -->\n```python\nimport x\n```\n\n- item\n\n    ```bash\n    echo hi\n    ```\n\n"
        "```text\nnot code\n```\n",
        encoding="utf-8",
    )
    blocks = blocks_of(page)
    assert [(b.line, b.language, b.skip) for b in blocks] == [(4, "python", "needs a GPU"), (10, "bash", None), (14, "text", None)]
    assert blocks[1].source == "echo hi\n"
    assert [b.language for b in runnable(page)] == ["python", "bash"]


def test_console_blocks_run_only_their_prompt_lines(tmp_path):
    block = Block(tmp_path / "p.md", 1, "console", "$ embedrt info x\nmanifest...\n$ echo done\ndone\n")
    assert shell_script(block) == "embedrt info x\necho done\n"



# -- figures quoted in prose come from the committed baseline --------------------------------------------
BASELINE = ROOT / "benchmarks" / "baseline-python-cpu.json"
HEADLINES = {  # (workload, engine, ratio) -> the pages that quote it
    ("text/throughput/budget/mixed", "embedrt fp32", "speedup_vs_pytorch_fp32"): ["README.md", "docs/benchmarks.md", "docs/precision.md"],
    ("text/throughput/budget/mixed", "embedrt fp32", "speedup_vs_pytorch_bf16"): ["README.md"],
    ("text/throughput/budget/mixed", "embedrt int8", "speedup_vs_pytorch_fp32"): ["README.md", "docs/benchmarks.md", "docs/precision.md"],
    ("text/throughput/budget/mixed", "embedrt int8", "speedup_vs_pytorch_bf16"): ["README.md", "docs/benchmarks.md", "docs/precision.md"],
    ("image/throughput/b16/photos", "embedrt int8", "speedup_vs_pytorch_fp32"): ["README.md", "docs/benchmarks.md"],
    ("image/throughput/b16/photos", "embedrt int8", "speedup_vs_pytorch_bf16"): ["README.md"],
}


def baseline_ratio(document: dict, workload: str, engine: str, key: str) -> float:
    result = next(r for r in document["results"] if r["name"] == workload)
    return next(e for e in result["engines"] if e["engine"] == engine)[key]


@pytest.mark.parametrize("headline", list(HEADLINES), ids=[" ".join(h) for h in HEADLINES])
def test_headline_figures_are_the_committed_baselines(headline):
    import json

    document = json.loads(BASELINE.read_text(encoding="utf-8"))
    figure = f"{baseline_ratio(document, *headline):.2f}x"
    for page in HEADLINES[headline]:
        text = (ROOT / page).read_text(encoding="utf-8")
        assert figure in text, f"{page} should quote {figure} for {' / '.join(headline)} (benchmarks/baseline-python-cpu.json)"


def test_pages_quoting_headline_figures_name_the_cpu_they_were_measured_on():
    for page in sorted({p for pages in HEADLINES.values() for p in pages}):
        text = (ROOT / page).read_text(encoding="utf-8")
        assert "AVX-512 VNNI" in text and "AVX2" in text, f"{page}: say the figures are from an AVX-512 VNNI CPU and differ on AVX2-only ones"


# -- the README's links: the site checks links between docs pages (mkdocs --strict); this checks the README's --
_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def heading_anchors(page: Path) -> set[str]:
    """Anchors of a page's headings as GitHub and MkDocs' toc both make them: lower case, punctuation dropped, spaces to -."""
    anchors, fenced = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"\s+", "-", re.sub(r"[^\w\s-]", "", title)))
    return anchors


def test_every_readme_link_reaches_a_file_and_its_heading():
    readme = ROOT / "README.md"
    links = [m["target"] for m in _LINK.finditer(readme.read_text(encoding="utf-8")) if "://" not in m["target"]]
    assert links, "the README links to its guides"
    for target in links:
        path, _, anchor = target.partition("#")
        file = ROOT / path
        assert file.is_file(), f"README.md links to {target}: no such file"
        if anchor:
            assert anchor in heading_anchors(file), f"README.md links to {target}: {path} has no heading with that anchor"


def test_the_readme_answers_the_three_first_questions_in_one_click():
    """Serve a model, pick a precision, device="cuda" fails: each a direct link from the README's front page."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in ("docs/precision.md#how-to-choose", "docs/troubleshooting.md#devicecuda-fails"):
        assert f"]({target})" in text
    assert re.search(r"serve a model\?\*.*\]\(docs/(serving|triton)\.md", text), "the README links 'how do I serve a model' to a guide"


def test_a_block_that_never_returns_is_stopped_with_what_it_started(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "BLOCK_TIMEOUT_S", 1)
    session = PageSession(tmp_path / "p.md", tmp_path, dict(os.environ))
    block = Block(tmp_path / "p.md", 3, "bash", "sleep 300 &\necho $! > child.pid\nwait\n")
    with pytest.raises(AssertionError, match="still running after 1 s"):
        session.run(block)
    child = int((tmp_path / "child.pid").read_text())
    for _ in range(50):  # the kill is asynchronous: give the kernel a moment to reap it
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the block's child {child} outlived it")
