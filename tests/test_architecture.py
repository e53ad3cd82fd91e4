"""The rules of docs/architecture.md, computed from the source (nothing is imported or run).

Imports: every `import` / `from ... import` of an `app.` module counts, at module level or inside
a function (an import inside a function hides a cycle, it does not remove it). Imports under
`if TYPE_CHECKING:` are excluded: they never run, so they cannot form a cycle at run time.
A `from app.x import name` counts as importing `app.x.name` when that is a module, else `app.x`.

Features: every folder of `app/` other than the engine and the CLI has the fixed file set, its
tables are in its `models.py`, and its HTTP handlers run no query. Each check is a function of
the `app/` folder it reads, so the self-tests run it on a broken copy and see it fail.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"


def _modules() -> dict[str, Path]:
    found = {}
    for path in APP.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module `name` refers to: itself, or the nearest enclosing module."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _type_checking_only(tree: ast.Module) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skipped


def imports_of(module: str) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_only(tree)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    targets: set[str | None] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets.update(_resolve(a.name) for a in node.names if a.name.startswith("app"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            if base == "app" or base.startswith("app."):
                targets.update(_resolve(f"{base}.{a.name}") for a in node.names)
    return {t for t in targets if t and t != module}


GRAPH = {module: imports_of(module) for module in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_there_is_no_import_cycle_in_app():
    assert cycles(GRAPH) == []


def test_the_engine_imports_nothing_outside_itself():
    outside = {module: sorted(t for t in targets if not t.startswith("app.rac"))
               for module, targets in GRAPH.items() if module.startswith("app.rac")}
    assert {m: t for m, t in outside.items() if t} == {}


def test_runtime_holds_heavy_objects_only():
    """`Runtime` builds models and the index store; it neither queries nor imports a feature."""
    allowed = {"app.config", "app.metrics"}
    assert {t for t in GRAPH["app.runtime"] if not t.startswith("app.rac")} <= allowed


def test_the_checks_see_imports_inside_functions_and_find_cycles():
    assert "app.runtime" in GRAPH["app.cli.judge"]  # imported inside a function
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


# --- features ----------------------------------------------------------------------------------

NOT_FEATURES = {"rac", "cli", "migrations"}
"""Folders of app/ that are not features: the engine, the command line, the migrations."""

FIXED_FILES = ("routes.py", "api.py", "service.py", "repository.py")

MISSING_ON_PURPOSE = {
    ("scorer", "routes.py"): "no endpoint: the learnt scorer is refitted in the background "
                             "(worker.py) and read by labelling; its version shows in decisions",
    ("scorer", "api.py"): "no endpoint, so no request or response model",
    ("review_page", "service.py"): "its pages call the review, datasets, jobs and schema "
                                   "services, like the JSON API; auth.py holds its sign-in",
    ("review_page", "repository.py"): "its queries are the items browser's, in browse.py",
}
"""(feature, file) a feature lacks, with the reason; docs/architecture.md lists them too."""

QUERY_FUNCTIONS = {"select", "insert", "update", "delete"}
QUERY_METHODS = {"execute", "scalar", "scalars", "query"}


def features(app: Path) -> list[str]:
    return sorted(p.name for p in app.iterdir()
                  if (p / "__init__.py").exists() and p.name not in NOT_FEATURES)


def _defines_table(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.ClassDef) and any(
        isinstance(stmt, ast.Assign | ast.AnnAssign) and "__tablename__" in ast.unparse(stmt)
        for stmt in node.body) for node in ast.walk(tree))


def missing_feature_files(app: Path) -> set[tuple[str, str]]:
    """(feature, file) of every fixed file a feature lacks, and of models.py where the feature
    defines tables without one."""
    missing = set()
    for feature in features(app):
        folder = app / feature
        missing |= {(feature, name) for name in FIXED_FILES if not (folder / name).exists()}
        if not (folder / "models.py").exists() and any(
                _defines_table(ast.parse(p.read_text(encoding="utf-8")))
                for p in folder.glob("*.py")):
            missing.add((feature, "models.py"))
    return missing


def tables_outside_models(app: Path) -> list[str]:
    """Feature modules other than models.py that define an ORM table."""
    return sorted(str(p.relative_to(app)) for feature in features(app)
                  for p in (app / feature).glob("*.py")
                  if p.name != "models.py" and _defines_table(ast.parse(p.read_text("utf-8"))))


def routes_modules(app: Path) -> list[Path]:
    """Every routes.py, and any other feature module that makes an APIRouter (page routers)."""
    return sorted(p for feature in features(app) for p in (app / feature).glob("*.py")
                  if p.name == "routes.py" or "APIRouter(" in p.read_text(encoding="utf-8"))


def _query_calls(tree: ast.Module, *, primary_key_lookups: bool = True) -> list[str]:
    """Calls that build or run a statement. `session.get(Model, id)` counts unless
    `primary_key_lookups` is False (services may fetch a row by its key)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in QUERY_FUNCTIONS:
            found.append(f"{f.id}() line {node.lineno}")
        elif isinstance(f, ast.Attribute) and (
                f.attr in QUERY_METHODS
                # session.get(Model, id) is a query; request.session.get(key) is a dict lookup
                or (primary_key_lookups and f.attr == "get" and isinstance(f.value, ast.Name)
                    and f.value.id == "session")):
            found.append(f"{ast.unparse(f)}() line {node.lineno}")
    return found


def queries_in_routes(app: Path) -> dict[str, list[str]]:
    """Routes modules that run a query or import SQLAlchemy's statement builders."""
    out = {}
    for path in routes_modules(app):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found = _query_calls(tree)
        found += [f"imports sqlalchemy line {n.lineno}" for n in ast.walk(tree)
                  if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("sqlalchemy")
                  and {a.name for a in n.names} & (QUERY_FUNCTIONS | {"text", "func"})]
        if found:
            out[str(path.relative_to(app))] = found
    return out


def queries_in_services(app: Path) -> dict[str, list[str]]:
    """service.py modules that build or run a statement (their queries belong in repository.py)."""
    out = {}
    for feature in features(app):
        path = app / feature / "service.py"
        if path.exists():
            found = _query_calls(ast.parse(path.read_text(encoding="utf-8")),
                                 primary_key_lookups=False)
            if found:
                out[str(path.relative_to(app))] = found
    return out


def routes_imported_elsewhere(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """Modules importing another feature's routes module (only app.main mounts routers)."""
    routers = {m for m in graph if m.endswith(".routes")}
    out = {}
    for module, targets in graph.items():
        if module == "app.main":
            continue
        foreign = sorted(t for t in targets & routers
                         if t.rpartition(".")[0] != module.rpartition(".")[0])
        if foreign:
            out[module] = foreign
    return out


def test_every_feature_has_the_fixed_files():
    assert missing_feature_files(APP) == set(MISSING_ON_PURPOSE)


def test_tables_live_in_models_modules():
    assert tables_outside_models(APP) == []


def test_no_routes_module_runs_a_query():
    assert queries_in_routes(APP) == {}


def test_no_service_module_runs_a_query():
    assert queries_in_services(APP) == {}


def feature_graph(graph: dict[str, set[str]], names: list[str]) -> dict[str, set[str]]:
    """Feature -> the features whose services or repositories it imports. Imports of another
    feature's tables (models.py) do not count: tables are shared by design (most features read
    labelling's item states); nor do routes modules' imports (the web layer on top)."""
    def feature(module: str) -> str | None:
        parts = module.split(".")
        return parts[1] if len(parts) > 2 and parts[1] in names else None

    out: dict[str, set[str]] = {name: set() for name in names}
    for module, targets in graph.items():
        source = feature(module)
        if source is None or module.endswith(".routes"):
            continue
        out[source] |= {t for t in map(feature, (t for t in targets
                                                 if not t.endswith(".models")))
                        if t is not None and t != source}
    return out


def test_no_two_features_depend_on_each_other():
    """E.g. labelling asks judges and scorer which judge and scorer a schema has, so they must
    not import labelling: the label index they fit on lives in label_schemas/index.py."""
    assert cycles(feature_graph(GRAPH, features(APP))) == []


def test_the_feature_graph_ignores_tables_and_routes_and_sees_a_cycle():
    graph = {"app.a.service": {"app.b.repository"}, "app.b.service": {"app.a.models"},
             "app.b.routes": {"app.a.service"}, "app.a.models": set(),
             "app.b.repository": set(), "app.a.service2": set()}
    assert feature_graph(graph, ["a", "b"]) == {"a": {"b"}, "b": set()}
    graph["app.b.service"].add("app.a.service2")
    assert cycles(feature_graph(graph, ["a", "b"])) == [["a", "b"]]


def test_no_module_imports_another_features_routes():
    assert routes_imported_elsewhere(GRAPH) == {}


def test_the_feature_checks_fail_on_a_broken_copy(tmp_path):
    """Break a copy of app/ on purpose: each check names exactly what was broken."""
    app = tmp_path / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("static", "templates", "__pycache__",
                                                             "versions"))
    assert missing_feature_files(app) == set(MISSING_ON_PURPOSE)  # the copy is faithful
    assert queries_in_routes(app) == {} and tables_outside_models(app) == []
    assert queries_in_services(app) == {}

    (app / "review" / "repository.py").unlink()
    (app / "exports" / "api.py").rename(app / "exports" / "formats_api.py")
    (app / "calibration" / "models.py").rename(app / "calibration" / "tables.py")
    assert missing_feature_files(app) - set(MISSING_ON_PURPOSE) == {
        ("review", "repository.py"), ("exports", "api.py"), ("calibration", "models.py")}
    assert tables_outside_models(app) == ["calibration/tables.py"]

    routes = app / "calibration" / "routes.py"
    routes.write_text(routes.read_text(encoding="utf-8") + """
from sqlalchemy import select


def _latest(session, request):
    request.session.get("review")  # a cookie lookup, not a query
    return session.scalar(select(CalibratorVersion))
""", encoding="utf-8")
    page = app / "review_page" / "workbench.py"
    page.write_text(page.read_text(encoding="utf-8") + "\n\ndef _job(session, job):\n"
                    "    return session.get(Job, job)\n", encoding="utf-8")
    service = app / "review" / "service.py"
    service.write_text(service.read_text(encoding="utf-8") + """

def _pending(session, item):
    session.get(Item, item)  # a lookup by primary key is allowed in a service
    return session.execute(update(ItemState).values(label=None))
""", encoding="utf-8")
    assert {m: [re.sub(r" line \d+$", "", q) for q in qs]
            for m, qs in queries_in_services(app).items()} == {
        "review/service.py": ["session.execute()", "update()"]}
    found = {module: sorted(re.sub(r" line \d+$", "", q) for q in queries)
             for module, queries in queries_in_routes(app).items()}
    assert found == {"calibration/routes.py": ["imports sqlalchemy", "select()",
                                               "session.scalar()"],
                     "review_page/workbench.py": ["session.get()"]}


def test_the_routes_import_check_sees_a_foreign_routes_module():
    graph = {"app.main": {"app.jobs.routes"}, "app.jobs.routes": set(),
             "app.review_page.workbench": {"app.jobs.routes", "app.review_page.routes"},
             "app.review_page.routes": set()}
    assert routes_imported_elsewhere(graph) == {"app.review_page.workbench": ["app.jobs.routes"]}
