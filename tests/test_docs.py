"""Every code block of README.md and docs/*.md runs, and every command they show is real.

- ```python blocks run in order, one namespace per file, in a temporary directory and in a child
  process (what they do -- MPI, thread limits, files -- stays out of this one). A block that needs
  an optional package which is not installed is skipped, and so is a block that fails using a
  name or a file that only a skipped block defines or writes. `<!-- not run: why -->` on the line before a block: compiled, not run.
- Shell blocks (bash, sh, console): every command is checked. Scripts must exist; examples run
  (unless under mpirun), benchmarks answer `--help` where that is cheap; `pip install` names
  extras that pyproject.toml has, and a benchmark command comes with the `pip install ".[extra]"`
  its script's import guard names (`bench` for a script that needs nothing more); `fastprop
  <command>` is a real subcommand; an unknown program fails the test.
- ```text blocks and blocks without a language are output: not run.
- Inline code naming a file of the repository names one that exists, inline `pip install`s name
  real extras, relative links and their anchors resolve, and the README links every page of docs/.
"""
import ast
import functools
import glob
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = ["README.md"] + sorted(os.path.relpath(p, ROOT)
                               for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
OPTIONAL = ("torch", "sklearn", "onnx", "onnxruntime", "mpi4py", "matplotlib", "tqdm", "joblib")
# fastprop modules and methods that need an optional package
NEEDS = {"fastprop.sklearn": "sklearn", "fastprop.onnx": "onnx", "to_torch_state_dict": "torch",
         "from_torch_state_dict": "torch", "world": "mpi4py"}
SHELL = ("bash", "sh", "console", "shell")
OUTPUT = ("", "text")
# benchmarks whose --help is not cheap
SLOW_HELP = {"benchmarks/compare.py": "builds the GEMM floor with Cython when it starts"}
GUARD = re.compile(r'^[\w.-]+ needs .*: pip install "\.\[([\w,-]+)\]"')


# --------------------------------------------------------------------------------------------
# Reading the Markdown

class Block:
    def __init__(self, path, line, lang, source, not_run):
        self.path, self.line, self.lang, self.source, self.not_run = \
            path, line, lang, source, not_run

    @property
    def id(self):
        return f"{self.path}:{self.line}"


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


@functools.lru_cache(maxsize=None)
def blocks(path):
    """The fenced code blocks of a Markdown file, in order (line: the opening fence's, 1-based)."""
    found, lines, i = [], read(path).split("\n"), 0
    while i < len(lines):
        m = re.match(r"^(\s*)```\s*([\w-]*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        indent, lang, start = len(m.group(1)), m.group(2).lower(), i
        i += 1
        body = []
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            body.append(lines[i][indent:] if lines[i][:indent].isspace() else lines[i])
            i += 1
        assert i < len(lines), f"{path}:{start + 1}: a code block that is never closed"
        i += 1
        before = next((l for l in reversed(lines[:start]) if l.strip()), "")
        not_run = re.match(r"^\s*<!--\s*not run:\s*(.+?)\s*-->\s*$", before)
        found.append(Block(path, start + 1, lang, "\n".join(body) + "\n",
                           not_run.group(1) if not_run else None))
    return found


def prose(path):
    """The file without its fenced blocks (their lines blanked, so that line numbers hold)."""
    out, inside = [], False
    for line in read(path).split("\n"):
        if re.match(r"^\s*```", line):
            inside = not inside
            out.append("")
        else:
            out.append("" if inside else line)
    return "\n".join(out)


@functools.lru_cache(maxsize=None)
def extras():
    """The optional-dependency groups of pyproject.toml."""
    text = read("pyproject.toml")
    section = re.search(r"^\[project\.optional-dependencies\]\s*$(.*?)(?=^\[|\Z)", text,
                        re.M | re.S)
    assert section, "pyproject.toml has no [project.optional-dependencies]"
    return set(re.findall(r"^([\w-]+)\s*=", section.group(1), re.M))


# --------------------------------------------------------------------------------------------
# Python blocks: run one file's blocks in a child process

RUNNER = r'''
import contextlib, importlib.util, io, json, re, sys, traceback
OPTIONAL = sys.argv[1].split(",")
namespace = {"__name__": "__main__"}
skipped = {}  # a name or file only a skipped block defines or writes -> why it was skipped
results = []


def missing(names):
    return [n for n in names if importlib.util.find_spec(n) is None]


def run(b):
    # ["ok", output], ["fail", traceback] or ["skip", why]
    code = compile("\n" * b["line"] + b["source"], b["path"], "exec")
    if b["not_run"] is not None:
        return ["skip", "not run: " + b["not_run"]]
    gone = missing(b["needs"])
    if gone:
        return ["skip", "needs " + ", ".join(gone) + " (not installed)"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            exec(code, namespace)
        return ["ok", out.getvalue()]
    except ImportError as e:  # an optional package imported or asked for at run time
        gone = missing(n for n in OPTIONAL if n == (e.name or "").split(".")[0]
                       or re.search(r"\b%s\b" % n, str(e)))
        if gone:
            return ["skip", "needs " + ", ".join(gone) + " (not installed)"]
        error = traceback.format_exc()
    except NameError as e:
        name = re.search(r"name '(\w+)' is not defined", str(e))
        if name and name.group(1) in skipped:
            return ["skip", skipped[name.group(1)]]
        error = traceback.format_exc()
    except BaseException:
        error = traceback.format_exc()
    files = [f for f in b["files"] if f in skipped]  # a file only a skipped block writes
    if files:
        return ["skip", skipped[files[0]]]
    return ["fail", error + out.getvalue()]


for b in json.load(sys.stdin):
    try:
        result = run(b)
    except BaseException:  # a syntax error
        result = ["fail", traceback.format_exc()]
    if result[0] == "skip":
        for n in b["defines"] + b["files"]:
            skipped.setdefault(n, result[1])
    results.append(result)
print("\n@@results@@" + json.dumps(results))
'''


def needs(tree):
    """The optional packages a block imports or calls for."""
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        for name in names:
            if name.split(".")[0] in OPTIONAL:
                found.add(name.split(".")[0])
            for key, package in NEEDS.items():
                if name == key or name.startswith(key + "."):
                    found.add(package)
    return sorted(found)


def files(tree):
    """The file names a block mentions (string constants such as "model.npz")."""
    return sorted({node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                   and isinstance(node.value, str) and re.fullmatch(r"[\w.-]+\.\w+", node.value)})


def defines(tree):
    """The names a block binds."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return sorted(names)


@functools.lru_cache(maxsize=None)
def run_file(path):
    """Runs a file's python blocks in order; {line: (status, output or traceback or reason)}."""
    todo = []
    for b in blocks(path):
        if b.lang != "python":
            continue
        tree = ast.parse(b.source, filename=b.id)  # a syntax error fails here, with its place
        todo.append(dict(path=path, line=b.line, source=b.source, not_run=b.not_run,
                         needs=needs(tree), defines=defines(tree), files=files(tree)))
    if not todo:
        return {}
    with tempfile.TemporaryDirectory(prefix="fastprop-docs-") as cwd:
        done = subprocess.run([sys.executable, "-c", RUNNER, ",".join(OPTIONAL)],
                              input=json.dumps(todo), capture_output=True, text=True,
                              cwd=cwd, timeout=900)
    assert "@@results@@" in done.stdout, \
        f"{path}: the blocks' process ended early ({done.returncode}):\n{done.stdout}{done.stderr}"
    results = json.loads(done.stdout.rsplit("@@results@@", 1)[1])
    return {t["line"]: tuple(r) for t, r in zip(todo, results)}


PYTHON = [b for f in FILES for b in blocks(f) if b.lang == "python"]


@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_python_block_runs(block):
    status, detail = run_file(block.path)[block.line]
    if status == "skip":
        pytest.skip(detail)
    assert status == "ok", f"{block.id} failed:\n{detail}"


# --------------------------------------------------------------------------------------------
# Shell blocks

def shell_commands(block):
    """Each command of a shell block, as argv lists (`&&`, `;` and `|` split commands)."""
    lines = block.source.split("\n")
    if block.lang == "console":
        lines = [l[2:] for l in lines if l.startswith("$ ")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    commands = []
    for line in text.split("\n"):
        lex = shlex.shlex(line, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        argv = []
        for token in list(lex) + [";"]:
            if token in ("&&", "||", ";", "|", "&"):
                if argv:
                    commands.append(argv)
                argv = []
            else:
                argv.append(token)
    return commands


def run(argv, timeout=300):
    with tempfile.TemporaryDirectory(prefix="fastprop-docs-") as cwd:
        return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=timeout)


def guard_exit(done):
    """The extra a benchmark's or example's one-line 'needs X: pip install' exit names, or None."""
    lines = done.stderr.strip().splitlines()
    if done.returncode != 1 or len(lines) != 1 or "pip install" not in lines[0]:
        return None
    return lines[0]


@functools.lru_cache(maxsize=None)
def subcommand_help(name):
    return run([sys.executable, "-m", "fastprop", name, "--help"], timeout=120)


@functools.lru_cache(maxsize=None)
def script_help(path):
    return run([sys.executable, os.path.join(ROOT, path), "--help"], timeout=300)


@functools.lru_cache(maxsize=None)
def run_example(path, args):
    return run([sys.executable, os.path.join(ROOT, path)] + list(args))


def declared_extras(path):
    """The extras a benchmark script's import guard names; bench when it names none."""
    return re.findall(r'^need\("([\w-]+)"', read(path), re.M) or ["bench"]


class Check:
    """The problems found in one shell block, and what was skipped for want of a package."""

    def __init__(self, block):
        self.block, self.problems, self.skips = block, [], []
        self.extras, self.benchmarks = set(), []

    def command(self, argv, launched=False):
        while argv and re.match(r"^[A-Za-z_]\w*=", argv[0]):  # VAR=value before the program
            argv = argv[1:]
        if not argv:
            return
        program, args = argv[0], argv[1:]
        if program in ("mpirun", "mpiexec", "srun"):
            start = next((i for i, a in enumerate(args) if a in ("python", "python3", "fastprop")),
                         None)
            if start is None:
                self.problems.append(f"`{' '.join(argv)}`: launches no python or fastprop")
            else:
                self.command(args[start:], launched=True)
        elif program in ("python", "python3"):
            self.python(args, launched)
        elif program == "fastprop":
            self.subcommand(args)
        elif program == "pip":
            self.pip(args)
        elif program == "pytest":
            for a in args:
                if not a.startswith("-") and not os.path.exists(os.path.join(ROOT, a.split("::")[0])):
                    self.problems.append(f"`pytest {' '.join(args)}`: no {a}")
        elif program != "cd":
            self.problems.append(f"`{' '.join(argv)}`: tests/test_docs.py knows no check for "
                                 f"`{program}`; add one")

    def python(self, args, launched):
        if args[:2] == ["-m", "fastprop"]:
            return self.subcommand(args[2:])
        if args[:1] == ["-m"] and len(args) > 1 and args[1] == "pytest":
            return self.command(["pytest"] + args[2:])
        if not args or not args[0].endswith(".py"):
            return self.problems.append(f"`python {' '.join(args)}`: no script to check")
        path = os.path.normpath(args[0])
        if not os.path.isfile(os.path.join(ROOT, path)):
            return self.problems.append(f"`python {args[0]}`: no such file")
        if path.startswith("benchmarks" + os.sep):
            self.benchmarks.append(path)
            if "argparse" in read(path) and path not in SLOW_HELP:
                self.expect(script_help(path), f"python {path} --help", help=True)
        elif path.startswith("examples" + os.sep) and not launched:
            self.expect(run_example(path, tuple(args[1:])), f"python {' '.join(args)}")

    def expect(self, done, what, help=False):
        if done.returncode == 0 and (not help or "usage:" in done.stdout):
            return
        message = guard_exit(done)
        if message is None:
            self.problems.append(f"`{what}` exited with {done.returncode}:\n{done.stdout}"
                                 f"{done.stderr}")
            return
        named = GUARD.match(message)
        if named and not set(named.group(1).split(",")) <= extras():
            self.problems.append(f"`{what}`: its message names an extra pyproject.toml lacks: "
                                 f"{message}")
        self.skips.append(f"`{what}`: {message}")

    def subcommand(self, args):
        if not args or args[0].startswith("-"):
            return self.problems.append("`fastprop` without a command")
        done = subcommand_help(args[0])
        if done.returncode != 0:
            self.problems.append(f"`fastprop {args[0]}` is no fastprop command:\n{done.stderr}")

    def pip(self, args):
        if args[:1] != ["install"]:
            return self.problems.append(f"`pip {' '.join(args)}`: only pip install is shown")
        for a in args[1:]:
            m = re.fullmatch(r"(?:\.|fastprop)\[([\w,-]+)\]", a)
            if m:
                for extra in m.group(1).split(","):
                    if extra not in extras():
                        self.problems.append(f"`pip install \"{a}\"`: pyproject.toml has no "
                                             f"extra {extra!r}")
                    self.extras.add(extra)

    def finish(self):
        for path in sorted(set(self.benchmarks)):
            for extra in declared_extras(path):
                if extra not in self.extras:
                    self.problems.append(f"`python {path}` needs `pip install \".[{extra}]\"` "
                                         f"in its block")


SHELL_BLOCKS = [b for f in FILES for b in blocks(f) if b.lang in SHELL]


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=[b.id for b in SHELL_BLOCKS])
def test_shell_block_commands_are_real(block):
    check = Check(block)
    commands = shell_commands(block)
    assert commands, f"{block.id}: a shell block without a command"
    for argv in commands:
        check.command(argv)
    check.finish()
    assert not check.problems, f"{block.id}:\n" + "\n".join(check.problems)
    if check.skips:
        pytest.skip("; ".join(check.skips))


def test_every_block_has_a_known_language():
    for f in FILES:
        for b in blocks(f):
            assert b.lang in ("python",) + SHELL + OUTPUT, \
                f"{b.id}: ```{b.lang}: tests/test_docs.py neither runs nor skips this language"


def test_the_readme_begins_with_the_two_commands():
    first = blocks("README.md")[0]
    assert first.lang == "bash" and first.line == 3
    commands = [l.split("#")[0].strip() for l in first.source.strip().split("\n")]
    assert commands == ['pip install . && fastprop demo', 'pip install ".[test]" && pytest']


# --------------------------------------------------------------------------------------------
# Prose: inline code, links

PATH = re.compile(r"(?<![\w./-])((?:benchmarks|examples|tests|csrc|fastprop|docs|\.ci)/[\w./*-]*)")


def slug(heading):
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def links(path):
    """The targets of a file's Markdown links and images, outside code."""
    return re.findall(r"\]\(([^)\s]+)\)", re.sub(r"`[^`]*`", "", prose(path)))


def anchors(path):
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", prose(path), re.M)}


@pytest.mark.parametrize("path", FILES)
def test_inline_code_names_real_files_extras_and_commands(path):
    text, problems = prose(path), []
    for span in re.findall(r"`([^`]+)`", text):
        for name in PATH.findall(span):
            name = name.rstrip(".,;:")
            if not glob.glob(os.path.join(ROOT, name)):
                problems.append(f"`{span}`: no {name} in the repository")
        for extra in re.findall(r"pip install [\"']?(?:\.|fastprop)\[([\w,-]+)\]", span):
            problems += [f"`{span}`: pyproject.toml has no extra {e!r}"
                         for e in extra.split(",") if e not in extras()]
        m = re.match(r"^(?:python -m )?fastprop (\w+)", span)
        if m and subcommand_help(m.group(1)).returncode != 0:
            problems.append(f"`{span}`: no fastprop command {m.group(1)!r}")
    assert not problems, f"{path}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", FILES)
def test_relative_links_resolve(path):
    problems = []
    for target in links(path):
        if re.match(r"^[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
        if not os.path.exists(os.path.join(ROOT, resolved)):
            problems.append(f"({target}): no {resolved}")
        elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
            problems.append(f"({target}): no heading #{anchor} in {resolved}")
    assert not problems, f"{path}:\n" + "\n".join(problems)


def test_the_readme_links_every_page_of_docs():
    linked = {os.path.normpath(t.partition("#")[0])
             for t in links("README.md")}
    assert set(FILES[1:]) <= linked, f"not linked from README.md: {set(FILES[1:]) - linked}"
