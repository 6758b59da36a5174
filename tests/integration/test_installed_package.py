"""Issue 16: the package as the Dockerfile builds it works once installed (not editable).

The wheel is built from a directory holding only what the Dockerfile's build stage COPYs (the
COPY lines are read from the Dockerfile, so this follows it), installed into a new virtualenv
outside the source tree, checked for every data file the code reads, and its ``wirewatch
worker`` is run from outside the tree against the session's broker: both seeds must open an
alert on each of the two watches.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import time
import zipfile
from fnmatch import fnmatch
from pathlib import Path

import pytest

from streams.processes import free_port, wait_http
from tests.conftest import PACKAGES, SEED_000, SEED_003
from tests.integration.harness import Pipeline

REPO = Path(__file__).resolve().parents[2]
# Sources, not data: Python modules and stubs, and Cython files compiled into the extension.
SOURCE_SUFFIXES = {".py", ".pyi", ".pyx", ".pxd"}
# Variables that would let the repo's own copy (or its virtualenv) be imported instead.
LEAKY_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV")
WATCHES = "Taiwan Strait: Taiwan Strait\ncrisis communications: crisis communications\n"


def _instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per Dockerfile instruction: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    out = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            out.append((keyword.upper(), args.strip()))
    return out


def _stages(text: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """(name, instructions) per stage; a stage without ``AS name`` is named by its index."""
    stages: list[tuple[str, list[tuple[str, str]]]] = []
    for keyword, args in _instructions(text):
        if keyword == "FROM":
            alias = re.search(r"\s+AS\s+(\S+)\s*$", args, re.I)
            stages.append((alias.group(1) if alias else str(len(stages)), []))
        elif stages:
            stages[-1][1].append((keyword, args))
    return stages


def _build_stage(text: str) -> list[tuple[str, str]]:
    """The instructions of the stage the runtime image takes its wheels from."""
    stages = _stages(text)
    runtime = stages[-1][1]
    sources = [m.group(1) for keyword, args in runtime if keyword == "COPY"
               for m in [re.search(r"--from=(\S+)", args)] if m]
    assert len(sources) == 1, f"the runtime stage should COPY --from one build stage: {sources}"
    named = dict(stages)
    assert sources[0] in named, f"no stage named {sources[0]!r}"
    return named[sources[0]]


def _project_files() -> list[str]:
    """The files of a clean checkout plus uncommitted ones: git's tracked and unignored files
    (what `docker build` sees from a fresh clone; a local build's .so/.c/__pycache__ are not)."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True).stdout.decode()
    return sorted(p for p in set(listing.split("\0")) if p and (REPO / p).is_file())


def _copy_build_context(stage: list[tuple[str, str]], root: Path) -> Path:
    """Replays the stage's WORKDIR and COPY lines with ``root`` as the image's ``/``; returns
    the directory its ``pip wheel`` runs in."""
    files = _project_files()
    workdir, wheel_dir = "/", None
    for keyword, args in stage:
        if keyword == "WORKDIR":
            workdir = posixpath.normpath(posixpath.join(workdir, args))
        elif keyword == "COPY":
            words = json.loads(args) if args.startswith("[") else shlex.split(args)
            assert not any(w.startswith("--from") for w in words), f"COPY {args}: not from context"
            *sources, dest = [w for w in words if not w.startswith("--")]
            target = root / posixpath.normpath(posixpath.join(workdir, dest)).lstrip("/")
            into_dir = dest.endswith("/") or len(sources) > 1
            for source in sources:
                source = posixpath.normpath(source)
                if source in files:  # a file: into the folder, or as the named file
                    out = target / posixpath.basename(source) if into_dir else target
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(REPO / source, out)
                    continue
                inside = [f for f in files if source == "." or f.startswith(source + "/")]
                assert inside, f"COPY {args}: {source} is not in the repository"
                for f in inside:  # a folder: its contents into the target
                    out = target / posixpath.relpath(f, source)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(REPO / f, out)
        elif keyword == "RUN" and "pip wheel" in args:
            assert re.search(r"\s\.(\s|$)", args), f"RUN {args}: expected to build '.'"
            wheel_dir = workdir
    assert wheel_dir is not None, "the build stage has no `pip wheel` RUN"
    return root / wheel_dir.lstrip("/")


def _run(command: list[str], *, timeout: float, **kwargs: object) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            **kwargs)  # type: ignore[call-overload]
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, f"{shlex.join(command)} failed:\n{output[-6000:]}"
    return str(result.stdout)


def _runtime_data(names: list[str]) -> set[str]:
    """Every non-source file under the packages: the word lists, the samples and any file
    added beside them later (the code opens them next to its modules)."""
    return {name for name in names
            if name.startswith(tuple(f"{package}/" for package in PACKAGES))
            and posixpath.splitext(name)[1] not in SOURCE_SUFFIXES}


@pytest.mark.timeout(900)  # a cold pip cache downloads numpy, lingua and wordfreq
def test_wheel_built_like_the_dockerfile_installs_and_runs(pipeline: Pipeline,
                                                           tmp_path: Path) -> None:
    # Every command below runs without the variables that would bring in the repo's copy.
    env = {k: v for k, v in pipeline.env.items() if k not in LEAKY_ENV}
    stage = _build_stage((REPO / "Dockerfile").read_text())
    context = _copy_build_context(stage, tmp_path / "image")
    wheels = tmp_path / "wheels"
    # As the Dockerfile's `pip wheel`, with --no-deps (the install below resolves them) and
    # the pip cache kept, so a rerun is quick.
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(wheels), "."],
         cwd=context, env=env, timeout=600)
    (wheel,) = wheels.glob("wirewatch-*.whl")

    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
    expected = _runtime_data(_project_files())
    assert any(fnmatch(f, "agents/*/data/*") for f in expected)  # the listing found them...
    assert any(fnmatch(f, "streams/samples/*") for f in expected)
    missing = sorted(expected - in_wheel)  # ...and the wheel must hold each one
    assert not missing, f"{wheel.name} lacks files the code reads at run time: {missing}"
    assert any(fnmatch(f, "agents/watch/kernel.*.so") for f in in_wheel), "no compiled kernel"

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], env=env, timeout=300)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", str(wheel)], cwd=tmp_path, env=env, timeout=900)

    probe = json.loads(_run([str(python), "-c", (
        "import json, sysconfig, streams, agents.tag, agents.watch.kernel\n"
        "paths = sysconfig.get_paths()\n"
        "print(json.dumps({'site': [paths['purelib'], paths['platlib']],"
        " 'streams': streams.__file__, 'kernel': agents.watch.kernel.__file__}))")],
        cwd=tmp_path, env=env, timeout=120))
    sites = [Path(p).resolve() for p in probe["site"]]
    for module in ("streams", "kernel"):
        found = Path(probe[module]).resolve()
        assert any(found.is_relative_to(s) for s in sites), f"{module} from {found}, not {sites}"
        assert not found.is_relative_to(REPO), f"{module} imported from the source tree"

    watches = tmp_path / "watches.txt"
    watches.write_text(WATCHES, encoding="utf-8")
    port = free_port()
    env.update({"WIREWATCH_WEB_PORT": str(port), "WIREWATCH_CACHE_DIR": str(tmp_path / "cache"),
                "WIREWATCH_WATCHES_FILE": str(watches)})
    log_path = tmp_path / "installed-worker.log"
    with log_path.open("ab") as out:
        process = subprocess.Popen([str(venv / "bin" / "wirewatch"), "worker"], cwd=tmp_path,
                                   env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    pipeline.workers.append((process, port, log_path))  # pipeline.log/diagnosis/stop read it
    try:
        deadline = time.monotonic() + 120  # /readyz, or give up as soon as the worker dies
        while not wait_http(f"http://127.0.0.1:{port}/readyz", 1):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"installed worker did not become ready (exit code "
                                     f"{process.poll()}):\n{pipeline.log(-1)}")

        pipeline.send("raw", SEED_000.read_bytes(), SEED_003.read_bytes())
        names = {"Taiwan Strait", "crisis communications"}

        def opened(records: list[dict[str, object]]) -> list[dict[str, object]] | None:
            found = [r for r in records if r.get("kind") == "opened"]
            return found if {r.get("watch_name") for r in found} >= names else None

        alerts = pipeline.wait_for("alerts", opened, timeout=90)
        assert sorted(str(a["watch_name"]) for a in alerts) == sorted(names), (
            f"one opened alert per watch expected: {alerts}\n{pipeline.log(-1)}")
        assert process.poll() is None, f"installed worker exited:\n{pipeline.log(-1)}"
    finally:
        pipeline.stop_workers()
    shutil.rmtree(venv)  # ~330 MB; pytest keeps the last runs' tmp_path (kept on a failure)
