"""Does an exercise function only hand its work to the package's reference implementation?

The rule, read on the function's source (``inspect``) and resolved in the student's kernel:
without its docstring, ``pass``, imports and trivial assignments (a name bound to a constant,
a name or an attribute), the body is one ``return`` of a call

- whose callee is a function, method or class defined in ``dlmi_utils`` outside
  ``dlmi_utils.course`` (``metrics.psnr``, an alias of it, one imported in the body), and
- whose arguments only pass values on (names, constants, attributes, ``*args``), no computation,

or a call on the result of such a call (``metrics.psnr(...).item()``, ``float(metrics.psnr(...))``)
or an attribute of it (``.real``).
A lambda is read the same way (its body is the ``return``); ``functools.partial`` of a package
function is delegation too. ``fourier.ifft2c(kspace * mask)`` is not: its argument is the work.

Names resolve in the function's body, closure, globals and builtins, by static lookup
(``inspect.getattr_static``: nothing of the student's runs). Without source (``exec``, a C
function) or on any surprise, nothing is said: the rule flags only what it can show. This
module runs in the student's kernel: keep it free of the grader's imports.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import inspect
import sys
import textwrap

PACKAGE = "dlmi_utils"
EXEMPT = "dlmi_utils.course"  # the course's own helpers (checks, display) are not answers
_UNKNOWN = object()


def delegation(fn: object) -> str | None:
    """``None``, or one sentence naming the package callable ``fn`` only returns the result of."""
    try:
        return _delegation(fn)
    except Exception:  # a hostile or odd object: no evidence, no verdict
        return None


def _delegation(fn: object) -> str | None:
    if isinstance(fn, functools.partial):
        target = _package_callable(fn.func)
        return f"it is functools.partial of the package's `{target}`" if target else None
    try:
        fn = inspect.unwrap(fn)
    except ValueError:  # a __wrapped__ cycle
        return None
    code = getattr(fn, "__code__", None)
    if code is None or not inspect.isfunction(fn):
        return None
    targets = [_delegated_call(node, fn) for node in _function_nodes(fn, code)]
    if not targets or None in targets:  # any reading that does real work: say nothing
        return None
    return f"its body only returns the package's `{targets[0]}` called on its arguments"


def _function_nodes(fn, code) -> list[ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda]:
    """The AST nodes in ``fn``'s source that may be ``fn`` (empty when there is no source)."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return []
    tree = _parse_fragment(source)
    if tree is None:
        return []
    if code.co_name == "<lambda>":
        wanted = list(code.co_varnames[:code.co_argcount + code.co_kwonlyargcount])
        return [n for n in ast.walk(tree) if isinstance(n, ast.Lambda)
                and [a.arg for a in n.args.posonlyargs + n.args.args + n.args.kwonlyargs]
                == wanted]
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and n.name == code.co_name][:1]


def _parse_fragment(source: str) -> ast.Module | None:
    """The source's AST; for a lambda cut out of a larger expression, the lambda's own."""
    try:
        return ast.parse(source)
    except SyntaxError:
        pass
    fragment = source[source.find("lambda"):].rstrip() if "lambda" in source else ""
    for end in range(len(fragment), max(len(fragment) - 200, 0), -1):
        try:  # drop what closes the surrounding expression: ")", ",", "]" ...
            return ast.parse("(" + fragment[:end] + ")")
        except SyntaxError:
            continue
    return None


def _delegated_call(node, fn) -> str | None:
    """The package callable ``node`` only returns the result of, or None."""
    params = {a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs}
    params |= {a.arg for a in (node.args.vararg, node.args.kwarg) if a is not None}
    local: dict[str, object] = {p: _UNKNOWN for p in params}
    if isinstance(node, ast.Lambda):
        returned = node.body
    else:
        returned = None
        body = list(node.body)
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # the docstring
        for statement in body:
            if returned is not None:
                return None  # something after the return
            if isinstance(statement, ast.Return) and statement.value is not None:
                returned = statement.value
            elif not _bind_trivial(statement, local, fn):
                return None
    if returned is None:
        return None
    return _delegating(returned, local, fn)


def _bind_trivial(statement: ast.stmt, local: dict, fn) -> bool:
    """Record an import, ``pass`` or trivial assignment in ``local``; False for real work."""
    if isinstance(statement, ast.Pass):
        return True
    if isinstance(statement, ast.Import):
        for alias in statement.names:
            if alias.asname:
                local[alias.asname] = _module(alias.name)
            else:
                top = alias.name.split(".")[0]
                local[top] = _module(top)
        return True
    if isinstance(statement, ast.ImportFrom):
        module = _module(statement.module) if statement.module and not statement.level \
            else _UNKNOWN
        for alias in statement.names:
            value = _static_attr(module, alias.name)
            if value is _UNKNOWN and statement.module and not statement.level:
                value = _module(f"{statement.module}.{alias.name}")
            local[alias.asname or alias.name] = value
        return True
    if isinstance(statement, ast.Assign | ast.AnnAssign):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        if statement.value is None or not _is_plain(statement.value, allow_constant=True):
            return False
        value = _resolve(statement.value, local, fn)
        for target in targets:
            if not isinstance(target, ast.Name):
                return False
            local[target.id] = value
        return True
    return False


def _delegating(expr: ast.expr, local: dict, fn) -> str | None:
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Call):
        return _delegating(expr.value, local, fn)  # an attribute of the result: ``.real``
    if not isinstance(expr, ast.Call):
        return None
    target = _package_callable(_resolve(expr.func, local, fn))
    if target is not None:
        passes_on = all(_is_plain(a.value if isinstance(a, ast.Starred) else a, True)
                        for a in expr.args) and all(_is_plain(k.value, True)
                                                    for k in expr.keywords)
        return target if passes_on else None
    # a call on the result of one: a method of it, or a conversion of it
    if isinstance(expr.func, ast.Attribute) and isinstance(expr.func.value, ast.Call):
        return _delegating(expr.func.value, local, fn)
    if len(expr.args) == 1 and not expr.keywords:
        return _delegating(expr.args[0], local, fn)
    return None


def _is_plain(expr: ast.expr, allow_constant: bool) -> bool:
    """A name, an attribute of one, or (when allowed) a constant: no computation."""
    if isinstance(expr, ast.Name):
        return True
    if isinstance(expr, ast.Attribute):
        return _is_plain(expr.value, allow_constant=False)
    return allow_constant and isinstance(expr, ast.Constant)


def _resolve(expr: ast.expr, local: dict, fn) -> object:
    """The object a name or attribute chain means inside ``fn``, or ``_UNKNOWN``."""
    if isinstance(expr, ast.Attribute):
        return _static_attr(_resolve(expr.value, local, fn), expr.attr)
    if not isinstance(expr, ast.Name):
        return _UNKNOWN
    name = expr.id
    if name in local:
        return local[name]
    code = fn.__code__
    if name in code.co_freevars and fn.__closure__:
        try:
            return fn.__closure__[code.co_freevars.index(name)].cell_contents
        except ValueError:  # an empty cell
            return _UNKNOWN
    if name in fn.__globals__:
        return fn.__globals__[name]
    return getattr(builtins, name, _UNKNOWN)


def _static_attr(obj: object, name: str) -> object:
    if obj is _UNKNOWN:
        return _UNKNOWN
    try:
        value = inspect.getattr_static(obj, name)
    except AttributeError:
        return _UNKNOWN
    if isinstance(value, staticmethod | classmethod):
        value = value.__func__
    return value


def _module(name: str) -> object:
    """The module ``name``: imported when it is the package's, else only if already loaded."""
    if name in sys.modules:
        return sys.modules[name]
    if name == PACKAGE or name.startswith(PACKAGE + "."):
        try:
            return importlib.import_module(name)
        except ImportError:
            return _UNKNOWN
    return _UNKNOWN


def _package_callable(obj: object) -> str | None:
    """``"dlmi_utils.metrics.psnr"`` when ``obj`` is a package function, method or class."""
    if obj is _UNKNOWN:
        return None
    if isinstance(obj, functools.partial):
        obj = obj.func
    obj = getattr(obj, "__func__", obj)  # a bound method
    if not (inspect.isroutine(obj) or isinstance(obj, type)):
        return None
    module = getattr(obj, "__module__", None) or ""
    if not isinstance(module, str):
        return None
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        return None
    if module == EXEMPT or module.startswith(EXEMPT + "."):
        return None
    return f"{module}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"
