"""Build the deployment package of the rotation Lambda: ``make lambda-zip`` -> ``build/lambda.zip``.

Only what ``rotator.aws_lambda`` imports goes in: the project's modules are those importing the
handler loads in a fresh interpreter, together with every project module their ``import``
statements name, also inside functions (so no emulator, CLI, daemon, config, Vault backend);
third-party packages are ``requests`` and its dependencies, installed by pip for the Lambda runtime
(``--platform``/``--python-version``, wheels only). boto3/botocore are not packaged: the Python
runtimes of Lambda provide them, and the handler uses nothing newer than what they ship. hvac,
APScheduler, PyYAML and prometheus-client are never needed by the handler and are not packaged.

Bytecode: every ``.py`` in the zip also gets ``__pycache__/<name>.cpython-XY.pyc``, compiled by the
runtime's own Python (the ``Runtime`` of the SAM template, ``python3.12``), as *unchecked hash-based*
pycs (PEP 552): Python loads them without looking at the source's timestamp, which the zip cannot
promise to keep, and without reading the source at all. Lambda's ``/var/task`` is read-only, so
without them every cold start compiles every module again. When that Python is not on the build
machine the zip ships source only, and the build says so (``--bytecode require`` makes it an
error instead). See docs/aws-lambda.md#the-deployment-package.

    python deploy/aws/build_lambda_zip.py [--output build/lambda.zip] [--template deploy/aws/template.yaml]
        [--python-version 3.12] [--runtime-python /path/to/python3.12] [--bytecode auto|require|none]
        [--platform manylinux2014_x86_64]   # aarch64 for arm64
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "aws" / "template.yaml"
HANDLER = "rotator.aws_lambda"
PROJECT_PACKAGES = ("rotator", "backends")
RUNTIME_REQUIREMENTS = ("requests>=2.31", "urllib3>=2.0")  # as in pyproject.toml
NEVER = ("hvac", "apscheduler", "yaml", "prometheus_client", "boto3", "botocore", "s3transfer")
# Fixed timestamps: the same sources give the same zip (and the same CodeSha256).
EPOCH = (1980, 1, 1, 0, 0, 0)
#: Where Lambda unpacks the zip (LAMBDA_TASK_ROOT); the file names compiled into the bytecode.
TASK_ROOT = "/var/task"
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}


class BuildError(Exception):
    """Bad input or a build that cannot be made as asked: a message, exit status 2."""


# ---------------------------------------------------------------------------------------------
# The runtime the template deploys


def template_runtime(template: Path) -> tuple[str, str]:
    """``(python version, architecture)`` of the template's function, e.g. ``("3.12", "x86_64")``.

    Read as text (the template's ``!Ref``/``!If`` tags need CloudFormation's YAML loader): one
    ``Runtime: pythonX.Y`` and at most one ``Architectures: [...]`` (x86_64 when absent).
    """
    text = template.read_text()
    runtimes = set(re.findall(r"^\s*Runtime:\s*[\"']?python(\d+\.\d+)[\"']?\s*$", text, re.M))
    if len(runtimes) != 1:
        raise BuildError(f"{template}: expected one 'Runtime: pythonX.Y', found {sorted(runtimes) or 'none'}")
    architectures = set(re.findall(r"^\s*Architectures:\s*\[\s*[\"']?(\w+)[\"']?\s*\]\s*$", text, re.M)) or {"x86_64"}
    if len(architectures) != 1 or not architectures <= set(PLATFORMS):
        raise BuildError(f"{template}: expected one of Architectures {sorted(PLATFORMS)}, found {sorted(architectures)}")
    return runtimes.pop(), architectures.pop()


@dataclass(frozen=True)
class RuntimePython:
    """An interpreter of the runtime's Python version that compiles the bytecode."""

    path: str
    version: str  # full, e.g. 3.12.1
    magic: bytes  # importlib.util.MAGIC_NUMBER
    cache_tag: str  # sys.implementation.cache_tag, e.g. cpython-312


PROBE = ("import importlib.util, json, platform, sys\n"
         "print(json.dumps({'implementation': sys.implementation.name, 'version': platform.python_version(),\n"
         "                  'magic': importlib.util.MAGIC_NUMBER.hex(), 'cache_tag': sys.implementation.cache_tag}))")


def probe(path: str) -> RuntimePython | dict | None:
    """What the interpreter at ``path`` is, or ``None`` when it does not run (a pyenv shim of a
    version that is not selected exits with an error, for example)."""
    try:
        done = subprocess.run([path, "-I", "-c", PROBE], capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    if done.returncode != 0:
        return None
    try:
        facts = json.loads(done.stdout)
        return RuntimePython(path, facts["version"], bytes.fromhex(facts["magic"]), facts["cache_tag"]) \
            if facts["implementation"] == "cpython" else facts
    except (ValueError, KeyError):
        return None


def candidates(version: str) -> tuple[list[str], str]:
    """Where a Python ``version`` may be: ``pythonX.Y`` on PATH, then pyenv's versions; and a
    sentence saying where it looked."""
    found = [p for p in [shutil.which(f"python{version}")] if p]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    installed = sorted(pyenv.glob(f"{version}.*/bin/python{version}"),
                       key=lambda p: [int(x) if x.isdigit() else -1 for x in p.parts[-3].split(".")], reverse=True)
    found += [str(p) for p in installed if str(p) not in found]
    return found, f"python{version} on PATH and {pyenv}/{version}.*"


def minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def find_runtime_python(version: str, explicit: str | None) -> tuple[RuntimePython | None, str]:
    """The interpreter that compiles for ``version``, or ``None`` and a sentence saying where it
    looked. ``explicit`` (``--runtime-python``) must be that Python, or the build stops (bad input)."""
    if explicit:
        found = probe(explicit)
        if found is None:
            raise BuildError(f"--runtime-python {explicit}: cannot run it")
        if not isinstance(found, RuntimePython):
            raise BuildError(f"--runtime-python {explicit} is {found.get('implementation')}, not CPython")
        if minor(found.version) != version:
            raise BuildError(f"--runtime-python {explicit} is Python {found.version}, the runtime is Python {version}")
        return found, explicit
    paths, where = candidates(version)
    tried = []
    for path in paths:
        found = probe(path)
        if isinstance(found, RuntimePython) and minor(found.version) == version:
            return found, path
        tried.append(f"{path} ({'does not run' if found is None else 'is not CPython ' + version})")
    return None, f"looked for {where}" + (f"; tried {', '.join(tried)}" if tried else ": none there")


# Run by the runtime's Python in the staging directory: compile the listed sources into their
# __pycache__ as unchecked hash-based pycs, the file name in each code object being /var/task/<path>.
COMPILE = """\
import json, py_compile, sys
from importlib.util import cache_from_source
root, task_root = sys.argv[1], sys.argv[2]
names = json.load(sys.stdin)
for name in names:
    py_compile.compile(f"{root}/{name}", cfile=cache_from_source(f"{root}/{name}"), dfile=f"{task_root}/{name}",
                       doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
print(len(names))
"""


def compile_bytecode(runtime: RuntimePython, stage: Path, sources: list[str]) -> None:
    done = subprocess.run([runtime.path, "-I", "-c", COMPILE, str(stage), TASK_ROOT], input=json.dumps(sources),
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise BuildError(f"compiling with {runtime.path} (Python {runtime.version}) failed:\n{done.stderr.strip()}")


# ---------------------------------------------------------------------------------------------
# What goes in


def handler_modules() -> list[Path]:
    """Files of the project modules the handler needs, relative to the repository: those importing
    it loads, and every project module their import statements name (also inside a function)."""
    code = (f"import json, sys, {HANDLER}\n"
            "print(json.dumps(sorted(m.__file__ for n, m in sys.modules.items()\n"
            f"    if n.split('.')[0] in {PROJECT_PACKAGES!r} and getattr(m, '__file__', None))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    files = {Path(f).resolve().relative_to(ROOT) for f in json.loads(out)}
    todo = sorted(files)
    while todo:
        for name in imported_project_modules(ROOT / todo.pop()):
            path = module_file(name)
            if path is not None and path not in files:
                files.add(path)
                todo.append(path)
    # A package's __init__ runs before any of its modules: keep every parent package.
    for path in list(files):
        files.update(parent / "__init__.py" for parent in path.parents[:-1] if (ROOT / parent / "__init__.py").is_file())
    return sorted(files)


def imported_project_modules(path: Path) -> set[str]:
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    else:
        package = package.removesuffix(".__init__")
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in PROJECT_PACKAGES}


def module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path.relative_to(ROOT)
    return None  # a name imported from a module (``from x import Class``)


def install_dependencies(target: Path, python_version: str, platform: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--target", str(target), "--only-binary=:all:", "--implementation", "cp", "--no-compile",
                    "--python-version", python_version, "--platform", platform, *RUNTIME_REQUIREMENTS],
                   check=True)


def packaged(name: str) -> bool:
    top = name.split("/", 1)[0]
    return "__pycache__" not in name and top != "bin" and top.split("-")[0].lower() not in NEVER


def add(archive: zipfile.ZipFile, path: Path, name: str) -> None:
    info = zipfile.ZipInfo(name, EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, path.read_bytes())


@dataclass
class Built:
    names: list[str]
    python_version: str
    runtime: RuntimePython | None  # None: source only
    looked: str  # where the runtime's Python was looked for


def build(output: Path, python_version: str, platform: str, *, bytecode: str = "auto",
          runtime_python: str | None = None) -> Built:
    runtime, looked = (None, "") if bytecode == "none" else find_runtime_python(python_version, runtime_python)
    if runtime is None and bytecode == "require":
        raise BuildError(f"Python {python_version} is not on this machine ({looked}); install it or pass "
                         "--runtime-python; nothing was built")
    modules = handler_modules()
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "stage"
        install_dependencies(stage, python_version, platform)
        for module in modules:
            (stage / module).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / module, stage / module)
        sources = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
        sources = [name for name in sources if packaged(name)]
        names = list(sources)
        if runtime is not None:
            compiled = [name for name in sources if name.endswith(".py")]
            compile_bytecode(runtime, stage, compiled)
            names += [pyc_name(name, runtime.cache_tag) for name in compiled]
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_suffix(".zip.partial")
        with zipfile.ZipFile(partial, "w") as archive:
            for name in sorted(names):
                add(archive, stage / name, name)
        partial.replace(output)
    return Built(sorted(names), python_version, runtime, looked)


def pyc_name(source: str, cache_tag: str) -> str:
    """``a/b.py`` -> ``a/__pycache__/b.<cache_tag>.pyc`` (PEP 3147)."""
    head, _, tail = source.rpartition("/")
    return f"{head + '/' if head else ''}__pycache__/{tail[:-3]}.{cache_tag}.pyc"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--output", type=Path, default=ROOT / "build" / "lambda.zip")
    parser.add_argument("--template", type=Path, default=TEMPLATE,
                        help="the SAM template whose Runtime and Architectures the zip is built for")
    parser.add_argument("--python-version", help="the Lambda runtime's Python, X.Y (default: the template's Runtime)")
    parser.add_argument("--platform", help="wheel platform: manylinux2014_x86_64 (x86_64) or manylinux2014_aarch64 "
                                           "(arm64); default: the template's Architectures")
    parser.add_argument("--runtime-python", help="the interpreter that compiles the bytecode (default: pythonX.Y on "
                                                 "PATH, then pyenv's)")
    parser.add_argument("--bytecode", choices=("auto", "require", "none"), default="auto",
                        help="auto: bytecode when the runtime's Python is here, else source only (default); "
                             "require: fail without it; none: source only")
    args = parser.parse_args(argv)
    try:
        declared, architecture = template_runtime(args.template)
        version = args.python_version or declared
        if not re.fullmatch(r"3\.\d+", version):
            raise BuildError(f"--python-version must look like 3.12, not {version!r}")
        built = build(args.output, version, args.platform or PLATFORMS[architecture], bytecode=args.bytecode,
                      runtime_python=args.runtime_python)
    except BuildError as exc:
        print(f"build_lambda_zip: {exc}", file=sys.stderr)
        return 2
    if version != declared:
        print(f"build_lambda_zip: note: built for Python {version}, but {args.template} deploys python{declared}; "
              f"set its Runtime to python{version}", file=sys.stderr)
    size = args.output.stat().st_size
    print(f"{args.output}: {len(built.names)} files, {size / 1024:.0f} KiB (handler: {HANDLER}.handler)")
    if built.runtime is not None:
        print(f"bytecode: Python {built.runtime.version} ({built.runtime.path}), magic {built.runtime.magic.hex()}, "
              f"unchecked hash-based, in __pycache__/*.{built.runtime.cache_tag}.pyc")
    elif args.bytecode == "none":
        print("bytecode: none (--bytecode none): source only")
    else:
        print(f"build_lambda_zip: warning: Python {version} (the runtime python{version}) is not on this machine "
              f"({built.looked}): the zip ships source only, so every cold start compiles the handler's modules. "
              f"Install Python {version} or pass --runtime-python.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
