"""The image (Dockerfile, .dockerignore) holds everything the chart runs in it.

No container engine runs here, so the image is never built by the tests; a build that would
fail or an image that would crash at start is caught by reading the same files a build reads:
the build context after `.dockerignore`, the Dockerfile's COPY, WORKDIR, ENV and compileall,
and the commands the chart's templates (and the operator, for the worker Jobs) give it. Every
`genvid_*` module those commands import, followed import by import, must resolve through the
image's PYTHONPATH to a file that is sent to the build, copied, and compiled (the root
filesystem is read-only at run time, so bytecode cannot be written later).
"""

from __future__ import annotations

import ast
import configparser
import importlib.metadata
import json
import os
import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "charts" / "genvid" / "templates"
FIRST_PARTY = "genvid_"


# --- .dockerignore, with the semantics of moby/patternmatcher ------------------------------


@dataclass(frozen=True)
class IgnoreRule:
    regex: re.Pattern[str]
    exception: bool


def ignore_rules(text: str) -> list[IgnoreRule]:
    """Patterns as Docker reads them: cleaned paths, `!` for exceptions, no leading slash."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        if exception:
            line = line[1:].strip()
        pattern = os.path.normpath(line).lstrip("/") or "."
        rules.append(IgnoreRule(re.compile(pattern_regex(pattern)), exception))
    return rules


def pattern_regex(pattern: str) -> str:
    """Go's filepath.Match extended with `**` (any number of directories, even none)."""
    out = "^"
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
            out += ".*" if i == len(pattern) else "(.*/)?"
            continue
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        elif ch in ".+()|{}$^":
            out += "\\" + ch
        else:
            out += ch  # letters, '/', and the brackets of a character class
        i += 1
    return out + "$"


def excluded(rules: list[IgnoreRule], path: str) -> bool:
    """Whether `path` stays out of the build context: the last rule matching it or one of its
    parent folders decides (an exception re-admits what an earlier rule excluded)."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for rule in rules:
        if rule.exception != result:
            continue  # it could not change the outcome
        if any(rule.regex.match(candidate) for candidate in candidates):
            result = not rule.exception
    return result


@pytest.mark.parametrize(
    ("ignore", "path", "expected"),
    [
        ("*", "api/main.py", True),
        ("*\n!api/", "api/main.py", False),
        ("*\n!api/", "contracts/x.py", True),
        ("*\n!api\n**/__pycache__", "api/pkg/__pycache__/a.pyc", True),
        ("**/__pycache__\n!api", "api/__pycache__/a.pyc", False),  # the last match wins
        ("*.md", "README.md", True),
        ("*.md", "docs/README.md", False),  # `*` never crosses a folder
        ("**/*.md", "docs/deep/README.md", True),
        ("docs/**", "docs/a/b.txt", True),
        ("/build", "build/out.o", True),  # a leading slash is the context root
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[a-c].txt", "b.txt", True),
        ("# comment\n\n  tmp  ", "tmp", True),
        ("*\n!keep/\nkeep/secret", "keep/secret", True),
    ],
)
def test_dockerignore_matching_follows_docker(ignore: str, path: str, expected: bool) -> None:
    assert excluded(ignore_rules(ignore), path) is expected


# --- The Dockerfile: what each stage copies where -----------------------------------------


@dataclass
class Stage:
    name: str
    workdir: PurePosixPath = field(default_factory=lambda: PurePosixPath("/"))
    # Image path -> repository path (relative to the build context).
    files: dict[PurePosixPath, PurePosixPath] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    compiled: list[PurePosixPath] = field(default_factory=list)
    copy_sources: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)


def instructions(dockerfile: str) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    pending = ""
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        pending = ""
        yield keyword.upper(), rest.strip()


def stages(dockerfile: str) -> list[Stage]:
    result: list[Stage] = []
    for keyword, rest in instructions(dockerfile):
        if keyword == "FROM":
            words = rest.split()
            result.append(Stage(name=words[2] if len(words) > 2 else str(len(result))))
            continue
        if not result:
            continue
        stage = result[-1]
        if keyword == "WORKDIR":
            stage.workdir = stage.workdir / rest
        elif keyword == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                stage.env[key] = value
        elif keyword == "COPY":
            copy(stage, result, shlex.split(rest))
        elif keyword == "RUN" and "-m compileall" in rest:
            after = rest.split("-m compileall", 1)[1]
            stage.compiled += [stage.workdir / a for a in shlex.split(after) if a[0] != "-"]
        elif keyword == "CMD":
            stage.cmd = json.loads(rest)
    return result


def copy(stage: Stage, built: list[Stage], words: list[str]) -> None:
    flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
    *sources, target = [w for w in words if not w.startswith("--")]
    dest = stage.workdir / target
    into_folder = target.endswith("/") or len(sources) > 1
    if "from" in flags:
        origin = next(s for s in built if s.name == flags["from"])
        for source in sources:
            src = PurePosixPath(source)
            for path, repo_path in origin.files.items():
                if path == src or src in path.parents:
                    stage.files[dest / path.relative_to(src)] = repo_path
        return
    for source in sources:
        stage.copy_sources.append(source)
        repo_path = PurePosixPath(os.path.normpath(source))
        if (REPO / repo_path).is_dir():
            for file in sorted((REPO / repo_path).rglob("*")):
                if file.is_file():
                    relative = PurePosixPath(file.relative_to(REPO / repo_path).as_posix())
                    stage.files[dest / relative] = repo_path / relative
        else:
            stage.files[dest / repo_path.name if into_folder else dest] = repo_path


@dataclass(frozen=True)
class Image:
    """The final stage as the build would make it: only files the build context admits."""

    files: dict[PurePosixPath, PurePosixPath]
    pythonpath: list[PurePosixPath]
    compiled: list[PurePosixPath]
    cmd: list[str]


@pytest.fixture(scope="module")
def rules() -> list[IgnoreRule]:
    return ignore_rules((REPO / ".dockerignore").read_text())


@pytest.fixture(scope="module")
def built() -> list[Stage]:
    return stages((REPO / "Dockerfile").read_text())


@pytest.fixture(scope="module")
def image(built: list[Stage], rules: list[IgnoreRule]) -> Image:
    final = built[-1]
    compiled = [path for stage in built for path in stage.compiled]
    return Image(
        files={
            path: repo_path
            for path, repo_path in final.files.items()
            if not excluded(rules, str(repo_path))
        },
        pythonpath=[PurePosixPath(p) for p in final.env.get("PYTHONPATH", "").split(":") if p],
        compiled=compiled,
        cmd=final.cmd,
    )


def test_every_copy_source_is_in_the_build_context(
    built: list[Stage], rules: list[IgnoreRule]
) -> None:
    sources = [source for stage in built for source in stage.copy_sources]
    assert sources, "the Dockerfile copies nothing from the build context"
    for source in sources:
        path = REPO / source
        assert path.exists(), f"COPY {source}: no such path in the repository"
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        admitted = [f for f in files if not excluded(rules, f.relative_to(REPO).as_posix())]
        assert admitted, f"COPY {source}: .dockerignore keeps all of it out of the build context"


# --- What runs in the image: the chart's commands, the worker's, the image's own ----------


def template_commands() -> Iterator[tuple[str, list[str]]]:
    """Each container `command:` written in the chart's templates (template expressions kept
    as they are: no entry point is ever templated)."""
    for template in sorted(TEMPLATES.glob("*.yaml")):
        lines = template.read_text().splitlines()
        for number, line in enumerate(lines):
            match = re.match(r"^(\s*)command:\s*(.*)$", line)
            if not match:
                continue
            indent, inline = match.groups()
            if inline:
                command = [str(word) for word in yaml.safe_load(inline)]
            else:
                command = []
                for item in lines[number + 1 :]:
                    item_match = re.match(rf"^{indent}\s*- (.*)$", item)
                    if not item_match:
                        break
                    word = item_match.group(1)
                    command.append(word if "{{" in word else str(yaml.safe_load(word)))
            yield f"{template.name}:{number + 1}", command


def worker_command() -> list[str]:
    """What the operator puts in worker Jobs: the chart's override, else its own default."""
    values = yaml.safe_load((REPO / "charts" / "genvid" / "values.yaml").read_text())
    for env in values["operator"]["extraEnv"]:
        if env["name"] == "GENVID_WORKER_COMMAND":
            return [str(word) for word in json.loads(env["value"])]
    from genvid_operator.config import Settings

    default = Settings.model_fields["worker_command"].default
    return [str(word) for word in default]


def commands(image: Image) -> list[tuple[str, list[str]]]:
    found = list(template_commands())
    assert len(found) >= 3, f"expected the api, operator and migration commands: {found}"
    return [*found, ("worker Jobs", worker_command()), ("Dockerfile CMD", image.cmd)]


@dataclass
class EntryPoints:
    """What the image's commands start: modules to import, files to read."""

    modules: list[str] = field(default_factory=list)
    files: list[PurePosixPath] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def runtime_dependencies() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = (re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0] for spec in project["dependencies"])
    return {name.lower().replace("_", "-") for name in names}


def entry_points(where: str, command: list[str], image: Image, found: EntryPoints) -> None:
    program, *args = command
    if program != "python":
        scripts = importlib.metadata.entry_points(group="console_scripts", name=program)
        dists = {ep.dist.name.lower() for ep in scripts if ep.dist is not None}
        if not dists & runtime_dependencies():
            found.problems.append(f"{where}: {program} is no script of a runtime dependency")
    if program == "python" and args[:1] == ["-m"]:
        found.modules += [args[1], f"{args[1]}.__main__"]
    elif program == "uvicorn":
        apps = [a for a in args if re.fullmatch(r"[\w.]+:[\w.]+", a)]
        found.modules += [app.split(":")[0] for app in apps]
        if not apps:
            found.problems.append(f"{where}: uvicorn without an app")
    elif program == "alembic" and "-c" in args:
        ini = PurePosixPath(args[args.index("-c") + 1])
        found.files.append(ini)
        if ini in image.files:
            # Alembic's own reading: %(here)s is the folder of the file.
            parser = configparser.ConfigParser(defaults={"here": str(ini.parent)})
            parser.read_string((REPO / image.files[ini]).read_text())
            location = PurePosixPath(parser["alembic"]["script_location"])
            found.files.append(location / "env.py")
            # The revisions env.py loads by path, not by import.
            versions = location / "versions"
            found.files += sorted(
                f for f in image.files if f.parent == versions and f.suffix == ".py"
            )
    else:
        found.problems.append(f"{where}: this test does not know what {command} starts")


def resolve(module: str, image: Image) -> PurePosixPath | None:
    """The image file that `import module` loads, through the image's PYTHONPATH."""
    relative = PurePosixPath(*module.split("."))
    for root in image.pythonpath:
        for candidate in (root / relative.with_suffix(".py"), root / relative / "__init__.py"):
            if candidate in image.files:
                return candidate
    return None


def module_name(path: PurePosixPath, image: Image) -> str:
    root = next((r for r in image.pythonpath if r in path.parents), path.parent)
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: PurePosixPath, image: Image) -> Iterator[tuple[str, bool]]:
    """(module, optional) for each first-party import of a file, at any depth (lazy imports
    count), parent packages first; `from pkg import name` gives the optional candidate
    `pkg.name`, a module only if such a file exists."""
    tree = ast.parse((REPO / image.files[path]).read_text(), filename=str(path))
    name = module_name(path, image)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            required, optional = [alias.name for alias in node.names], []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".strip(".")
            required, optional = [base], [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for module in required:
            parts = module.split(".")
            yield from ((".".join(parts[: i + 1]), False) for i in range(len(parts)))
        yield from ((module, True) for module in optional)


@dataclass
class Reached:
    files: set[PurePosixPath] = field(default_factory=set)
    packages: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)


def walk(image: Image, found: EntryPoints) -> Reached:
    """Follow the first-party imports from the entry points through the image's files."""
    reached = Reached()
    queue: list[tuple[str, bool, str]] = [(m, False, "the command") for m in found.modules]
    files = [f for f in found.files if f.suffix == ".py" and f in image.files]
    while queue or files:
        if files:
            file = files.pop()
        else:
            module, optional, origin = queue.pop()
            if not module.startswith(FIRST_PARTY):
                continue
            resolved = resolve(module, image)
            if resolved is None:
                if not optional:
                    reached.missing.append(f"{module} (imported by {origin})")
                continue
            reached.packages.add(module.split(".")[0])
            file = resolved
        if file in reached.files:
            continue
        reached.files.add(file)
        queue += [(module, optional, str(file)) for module, optional in imported(file, image)]
    return reached


@pytest.fixture(scope="module")
def found(image: Image) -> EntryPoints:
    found = EntryPoints()
    for where, command in commands(image):
        entry_points(where, command, image, found)
    return found


def test_the_commands_run_programs_and_files_the_image_holds(
    image: Image, found: EntryPoints
) -> None:
    assert not found.problems, found.problems
    assert {"genvid_api.main", "genvid_operator", "genvid_worker"} <= set(found.modules)
    missing = [str(f) for f in found.files if f not in image.files]
    assert not missing, f"not in the image (copied and in the build context): {missing}"


def test_every_first_party_import_resolves_in_the_image(image: Image, found: EntryPoints) -> None:
    reached = walk(image, found)
    assert not reached.missing, f"imports that resolve to nothing in the image: {reached.missing}"
    assert {"genvid_api", "genvid_contracts", "genvid_operator", "genvid_worker"} <= (
        reached.packages
    )


def test_everything_the_image_runs_is_compiled_at_build_time(
    image: Image, found: EntryPoints
) -> None:
    reached = walk(image, found)
    uncompiled = sorted(
        str(f) for f in reached.files if not any(c == f or c in f.parents for c in image.compiled)
    )
    assert not uncompiled, f"not byte-compiled by the Dockerfile's compileall: {uncompiled}"


def test_the_web_app_is_in_the_image(image: Image) -> None:
    """The api serves the web app from its package folder: every file of it is copied."""
    static = REPO / "api" / "genvid_api" / "web" / "static"
    wanted = {
        PurePosixPath(f.relative_to(REPO).as_posix()) for f in static.rglob("*") if f.is_file()
    }
    assert {PurePosixPath("api/genvid_api/web/static/index.html")} <= wanted
    missing = wanted - set(image.files.values())
    assert not missing, f"web app files not in the image: {sorted(map(str, missing))}"
