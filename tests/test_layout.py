"""The code's shape, checked: short functions, an engine that holds only the engine."""
import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "fastprop"
LONGEST = 60  # lines of a function, docstring included


def test_no_python_function_is_over_60_lines_but_a_list_of_checks_that_says_so():
    long = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                says = "a list of checks" in (ast.get_docstring(node) or "")
                if lines > LONGEST and not says:
                    long.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "functions over 60 lines: " + ", ".join(long)
