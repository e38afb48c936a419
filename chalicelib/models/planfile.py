"""Reading DR plans from YAML, with errors that name the file, line and field a human has to fix."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode  # type: ignore[import-untyped]

from chalicelib.models.durations import describe_value
from chalicelib.models.plan import PATTERN_HINTS, RULE_ERROR, DRPlan

MAX_PLAN_BYTES = 1024 * 1024
"""Plans are a few kilobytes; anything near a megabyte is a mistake (or an attack on the parser)."""

MAX_PLAN_VALUES = 100_000
"""Upper bound on values after expanding YAML aliases: stops "billion laughs" documents that are small as
text but explode when validated."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class PlanProblem(BaseModel):
    """One thing wrong with a plan file, located as precisely as the YAML allows."""

    model_config = ConfigDict(frozen=True)

    source: str = Field(description="Where the plan came from: a path, an S3 URI or <string>.")
    line: int | None = Field(default=None, description="1-based line of the problem, when known.")
    column: int | None = Field(default=None, description="1-based column, for YAML syntax errors.")
    field: str = Field(
        default="", description="Dotted path of the field, e.g. smoke_tests.cases[0].expect.tolerance."
    )
    message: str = Field(description="What is wrong, in words a plan author understands.")

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        if self.line is not None and self.column is not None:
            where += f":{self.column}"
        return f"{where} {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class PlanError(ValueError):
    """A plan could not be loaded; `problems` lists every problem found, in file order."""

    def __init__(self, problems: list[PlanProblem]) -> None:
        super().__init__(problems)
        self.problems = list(problems)

    def __str__(self) -> str:
        count = len(self.problems)
        lines = [str(problem) for problem in self.problems] or ["(no details)"]
        lines[0] = f"{count} problem{'' if count == 1 else 's'}: {lines[0]}"
        return "\n".join(lines)


class _Failure(Exception):
    """A problem found before validation (size, YAML syntax, duplicate keys); stops loading at once."""

    def __init__(self, line: int | None, message: str, field: str = "", column: int | None = None) -> None:
        super().__init__(message)
        self.line, self.message, self.field, self.column = line, message, field, column


# -- YAML with line numbers
class _PlanLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping key and sequence item it constructs.

    Lines are kept per constructed container (by id, with the container held alive) so a pydantic error
    location can be followed through the data to a line, whatever anchors, aliases and merge keys did.
    """

    # Dates stay strings: a plan has no date fields, and a datetime inside a smoke-test payload could not be
    # sent as JSON anyway.
    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.lines: dict[int, tuple[object, dict[Any, int] | list[int]]] = {}

    def construct_plan_map(self, node: MappingNode) -> Any:
        data: dict[Any, Any] = {}
        yield data
        data.update(self.construct_mapping(node))
        # construct_mapping has flattened merge keys into node.value with the mapping's own keys last, so
        # "last one wins" here matches which value the dict kept.
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            # Already constructed (and checked hashable) by construct_mapping, so this is a cache lookup.
            lines[self.construct_object(key_node)] = key_node.start_mark.line + 1
        self.lines[id(data)] = (data, lines)

    def construct_plan_seq(self, node: SequenceNode) -> Any:
        data: list[Any] = []
        yield data
        data.extend(self.construct_sequence(node))
        self.lines[id(data)] = (data, [item.start_mark.line + 1 for item in node.value])


_PlanLoader.add_constructor("tag:yaml.org,2002:map", _PlanLoader.construct_plan_map)
_PlanLoader.add_constructor("tag:yaml.org,2002:seq", _PlanLoader.construct_plan_seq)


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _check_duplicates(node: MappingNode, path: tuple[str | int, ...]) -> None:
    first_line: dict[tuple[str, str], int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
            continue
        line = key_node.start_mark.line + 1
        ident = (key_node.tag, key_node.value)
        if ident in first_line:
            raise _Failure(
                line,
                f"duplicate key {key_node.value!r} (first defined on line {first_line[ident]})",
                _format_path((*path, key_node.value)),
            )
        first_line[ident] = line


def _inspect(root: Node) -> None:
    """Refuse duplicate keys, recursive aliases and alias bombs, before anything is constructed.

    PyYAML keeps the last of two equal keys without a word, which would let a plan say `quorum: 3` and mean
    `quorum: 1` a few lines further down. Aliases share nodes, so sizes are summed over the node graph
    (each node once) and a node met again while it is still being visited is a cycle.
    """
    in_progress = -1
    size: dict[int, int] = {}
    stack: list[tuple[Node, bool, tuple[str | int, ...]]] = [(root, False, ())]
    while stack:
        node, finished, path = stack.pop()
        if finished:
            size[id(node)] = 1 + sum(size[id(child)] for child in _children(node))
            if size[id(node)] > MAX_PLAN_VALUES:
                raise _Failure(
                    node.start_mark.line + 1,
                    f"the plan expands to more than {MAX_PLAN_VALUES} values (too many aliases?)",
                )
            continue
        state = size.get(id(node))
        if state == in_progress:
            raise _Failure(
                node.start_mark.line + 1, "recursive alias: a value contains itself", _format_path(path)
            )
        if state is not None:
            continue
        size[id(node)] = in_progress
        stack.append((node, True, path))
        if isinstance(node, MappingNode):
            _check_duplicates(node, path)
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, ScalarNode) else "?"
                stack.append((key_node, False, path))
                stack.append((value_node, False, (*path, key)))
        elif isinstance(node, SequenceNode):
            stack.extend((item, False, (*path, index)) for index, item in enumerate(node.value))


_TOKENS = {
    "<scalar>": "a value",
    "<block end>": "the end of an indented block",
    "<block mapping start>": "an indented 'key: value'",
    "<block sequence start>": "an indented '- ' list",
    "<block entry>": "a '- ' list item",
    "<flow mapping start>": "'{'",
    "<flow sequence start>": "'['",
    "<flow mapping end>": "'}'",
    "<flow sequence end>": "']'",
    "<key>": "a key",
    "<value>": "':'",
    "<anchor>": "an anchor (&name)",
    "<alias>": "an alias (*name)",
    "<tag>": "a tag (!name)",
    "<document start>": "'---'",
    "<document end>": "'...'",
    "<stream end>": "the end of the file",
}


def _token(text: str) -> str:
    """PyYAML names tokens like '<scalar>'; say what they are."""
    bare = text.strip("'\"")
    return _TOKENS.get(bare, f"'{bare}'")


def _plain_yaml(problem: str, context: str, started: int | None) -> str:
    """A PyYAML problem in words a plan author understands (`started`: the line the construct began on)."""
    since = f" on line {started}" if started is not None else ""
    found = re.search(r"(?:but found|but got) (.+)$", problem)
    what = _token(found.group(1)) if found else ""
    if problem == "mapping values are not allowed here":
        return (
            "a ':' where a value was expected: check this line's indentation (and the line above), "
            "or quote a value that contains ': '"
        )
    if problem.startswith("expected <block end>"):
        kind = "keys of the mapping" if "block mapping" in context else "items of the list"
        return f"found {what} not indented like the {kind} that starts{since}: align it with them"
    if problem.startswith("expected ',' or ']'"):
        return f"the list opened with '['{since} is not closed: expected ',' or ']' before {what}"
    if problem.startswith("expected ',' or '}'"):
        return f"the mapping opened with '{{'{since} is not closed: expected ',' or '}}' before {what}"
    if problem == "could not find expected ':'":
        return f"the key that starts{since} has no ':' after it: write it as key: value"
    if problem == "found unexpected end of stream" and "quoted" in context:
        return f"the quoted text opened{since} is never closed"
    if problem.startswith("found character '\\t'"):
        return "a tab character: YAML indents with spaces only"
    if problem.startswith("found character") and "cannot start any token" in problem:
        char = problem.split("'")[1] if "'" in problem else "this character"
        return f"'{char}' cannot start a value: put the value in quotes"
    if problem.startswith("found unknown escape character"):
        char = problem.rsplit(" ", 1)[-1].strip("'")
        return f"\\{char} is not an escape inside double quotes: use single quotes, or write \\\\{char}"
    if context == "expected a single document in the stream":
        return "the file holds more than one YAML document ('---' separates them); a plan is one document"
    if context.startswith("found undefined alias") or problem.startswith("found undefined alias"):
        name = (context + problem).rsplit(" ", 1)[-1].strip("'")
        return f"*{name} refers to no anchor &{name} defined above it"
    if problem.endswith("sequence entries are not allowed here"):
        return "a '- ' list item where a value was expected: check this line's indentation"
    if "while scanning an anchor" in context or "while scanning an alias" in context:
        return (
            "an anchor (&name) or alias (*name) needs a name of letters and digits; quote a value with & or *"
        )
    if "while scanning a tag" in context:
        return "'!' starts a YAML tag here: put the value in quotes"
    if "while scanning a directive" in context:
        return "'%' at the start of a line starts a YAML directive: put the value in quotes"
    if "while scanning a block scalar" in context:
        return "'|' and '>' start a block of text on the next lines: put a one-line value in quotes"
    if "while scanning a plain scalar" in context:
        return f"this value cannot continue here (it starts{since}): put it in quotes, or fix the indentation"
    words = re.sub(r"'?<[a-z ]+>'?", lambda m: _token(m.group(0)), problem)
    return f"{words} ({context}{since})" if context else words


def _yaml_failure(exc: yaml.YAMLError, text: str) -> _Failure:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        started = exc.context_mark.line + 1 if exc.context_mark is not None else None
        message = _plain_yaml(exc.problem or "", exc.context or "", started)
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        return _Failure(line, f"invalid YAML: {message}", column=column)
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        return _Failure(
            line,
            f"invalid YAML: character #x{exc.character:04x} is not allowed ({exc.reason})",
            column=column,
        )
    return _Failure(None, f"invalid YAML: {exc}")


def _parse(text: str) -> tuple[Any, _PlanLoader, int]:
    try:
        loader = _PlanLoader(text)
    except yaml.YAMLError as exc:  # the reader refuses control characters before parsing starts
        raise _yaml_failure(exc, text) from None
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise _yaml_failure(exc, text) from None
        if root is None:
            raise _Failure(None, "the plan is empty; expected a mapping with version, workload, tier, ...")
        _inspect(root)
        try:
            data = loader.construct_document(root)
        except yaml.YAMLError as exc:
            raise _yaml_failure(exc, text) from None
        except Exception as exc:  # noqa: BLE001 - explicit tags (!!int x, !!timestamp y) fail in odd ways
            raise _Failure(root.start_mark.line + 1, f"YAML value cannot be read: {exc}") from None
        return data, loader, root.start_mark.line + 1
    except RecursionError:
        # The composer recurses once per nesting level; a plan is a handful of levels deep.
        raise _Failure(None, "YAML is nested too deeply") from None
    finally:
        loader.dispose()


# -- validation errors -> problems
_SCHEMA_LABEL = re.compile(r"^(str|int|float|bool|list|dict|none|\[key\]|[a-z-]+\[.*\])$")


def _format_path(path: tuple[str | int, ...] | list[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _locate(
    loc: tuple[str | int, ...], data: Any, loader: _PlanLoader, root_line: int
) -> tuple[str, int | None]:
    """Follow a pydantic error location through the loaded data: the printed path and the best line.

    Discriminated unions put the tag ('http', 's3') into the location; it is not something the author
    wrote at that place, so it is dropped. A location that leaves the data (a missing field, a default that
    broke a rule) points at the deepest mapping the author did write, and at no line when that is the whole
    plan (a missing top-level section belongs to no line, certainly not to `version`'s).
    """
    node, line, path, inside = data, root_line, [], True
    entered = False
    for part in loc:
        if inside:
            lines = loader.lines.get(id(node), (None, None))[1]
            if isinstance(node, dict) and part in node:
                line = lines.get(part, line) if isinstance(lines, dict) else line
                node = node[part]
                path.append(part)
                entered = True
                continue
            if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                line = lines[part] if isinstance(lines, list) else line
                node = node[part]
                path.append(part)
                entered = True
                continue
            if isinstance(node, dict) and node.get("kind") == part:
                continue
            inside = False
        if isinstance(part, str) and _SCHEMA_LABEL.match(part):
            continue
        path.append(part)
    return _format_path(path), line if entered or not loc else None


def _strip(tp: Any) -> Any:
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        elif get_origin(tp) in (Union, UnionType) and type(None) in get_args(tp):
            rest = [arg for arg in get_args(tp) if arg is not type(None)]
            if len(rest) != 1:
                return tp
            tp = rest[0]
        else:
            return tp


def _type_at(loc: tuple[str | int, ...]) -> Any:
    """The type a (tag-including) pydantic location points at, or None when it leaves the schema."""
    tp: Any = DRPlan
    for part in loc:
        tp = _strip(tp)
        if get_origin(tp) in (Union, UnionType):
            tp = next((m for m in map(_strip, get_args(tp)) if _kind_of(m) == part), None)
        elif isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            tp = field.annotation if field is not None else None
        elif get_origin(tp) is list:
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            return None
    return _strip(tp)


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    tp = _type_at(loc)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _kind_of(model: Any) -> Any:
    if isinstance(model, type) and issubclass(model, BaseModel) and "kind" in model.model_fields:
        args = get_args(model.model_fields["kind"].annotation)
        return args[0] if args else None
    return None


def _choices(expected: str) -> list[str]:
    quoted = re.findall(r"'([^']*)'", expected)
    return quoted or [expected]


_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "model_type": "a mapping of key: value pairs",
    "model_attributes_type": "a mapping of key: value pairs",
    "dict_type": "a mapping of key: value pairs",
    "list_type": "a list",
}
_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


def _message(error: Any, loc: tuple[str | int, ...]) -> str:
    kind, ctx, got = error["type"], error.get("ctx") or {}, describe_value(error.get("input"))
    if kind == "missing":
        return "required field is missing" + _expected_shape(loc)
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        if model is None:
            return "unknown key (typo?)"
        return f"unknown key (typo?); expected one of: {', '.join(model.model_fields)}"
    if kind == "literal_error":
        choices = _choices(str(ctx.get("expected", "")))
        if len(choices) == 1:
            return f"must be {choices[0]} (got {got})"
        return f"expected one of: {', '.join(choices)} (got {got})"
    if kind == "union_tag_invalid":
        return (
            f"unknown kind {ctx.get('tag')!r}; expected one of: {', '.join(_choices(ctx['expected_tags']))}"
        )
    if kind == "union_tag_not_found":
        return f"required field is missing; expected one of: {', '.join(_choices_for_union(loc))}"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        if isinstance(bound, float) and bound.is_integer():  # "must be >= 0", not ">= 0.0"
            bound = int(bound)
        return f"must be {_BOUNDS[kind]} {bound}"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} item(s)"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long"
    if kind == "string_pattern_mismatch":
        hint = PATTERN_HINTS.get(str(ctx.get("pattern")), f"text matching {ctx.get('pattern')}")
        return f"expected {hint} (got {got})"
    if kind in _TYPE_NAMES:
        return f"expected {_TYPE_NAMES[kind]} (got {got})"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == RULE_ERROR:
        return str(error["msg"])
    if kind == "recursion_loop":
        return "a value refers to itself"
    msg = str(error["msg"])
    return msg[:1].lower() + msg[1:]


def _expected_shape(loc: tuple[str | int, ...]) -> str:
    """For a missing section, what it holds: its required keys, then the optional ones."""
    model = _model_at(loc)
    if model is None:
        return ""
    required = [name for name, f in model.model_fields.items() if f.is_required()]
    optional = [name for name, f in model.model_fields.items() if not f.is_required()]
    shape = f"; expected a mapping with {', '.join(required) or 'only optional keys'}"
    return shape + (f" (optional: {', '.join(optional)})" if optional else "")


def _choices_for_union(loc: tuple[str | int, ...]) -> list[str]:
    tp = _type_at(loc)
    if get_origin(tp) not in (Union, UnionType):
        return []
    return [str(_kind_of(_strip(member))) for member in get_args(tp)]


def _problems(
    exc: ValidationError, data: Any, loader: _PlanLoader, root_line: int, source: str
) -> list[PlanProblem]:
    found: dict[tuple[str, str], PlanProblem] = {}
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        message = _message(error, loc)
        where = loc
        if error["type"] == RULE_ERROR:
            where = loc + tuple((error.get("ctx") or {}).get("at", ()))
        elif error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            where = (*loc, "kind")
        field, line = _locate(where, data, loader, root_line)
        # Unions report the same mistake once per member; the author needs to hear it once.
        found.setdefault(
            (field, message), PlanProblem(source=source, line=line, field=field, message=message)
        )
    return sorted(found.values(), key=lambda p: p.line or 0)


# -- public API
def load_plan_text(text: str, source: str = "<string>") -> DRPlan:
    """Parse and validate a plan from YAML text; PlanError lists every problem with its line."""
    return _load_text(text, source)[0]


def _load_text(text: str, source: str) -> tuple[DRPlan, int | None]:
    """The plan, and the line of its `workload` key (where a second plan of the workload is reported)."""
    try:
        if not isinstance(text, str):
            raise _Failure(None, f"expected YAML text (got {describe_value(text)})")
        if len(text) > MAX_PLAN_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_PLAN_BYTES:
            raise _Failure(None, f"the plan is larger than {MAX_PLAN_BYTES // 1024} KiB")
        data, loader, root_line = _parse(text)
        if data is None:
            raise _Failure(None, "the plan is empty; expected a mapping with version, workload, tier, ...")
        if not isinstance(data, dict):
            raise _Failure(
                root_line,
                "the plan must be a mapping of keys such as version, workload, tier "
                f"(got {describe_value(data)})",
            )
    except _Failure as failure:
        problem = PlanProblem(
            source=source,
            line=failure.line,
            column=failure.column,
            field=failure.field,
            message=failure.message,
        )
        raise PlanError([problem]) from None
    try:
        plan = DRPlan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(_problems(exc, data, loader, root_line, source)) from None
    lines = loader.lines.get(id(data), (None, None))[1]
    return plan, lines.get("workload") if isinstance(lines, dict) else None


def _read(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(source, text) of a local plan file; PlanError when it cannot be read as a plan's text."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            raw = handle.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise PlanError(
            [PlanProblem(source=source, message=f"cannot read the file: {exc.strerror}")]
        ) from None
    if len(raw) > MAX_PLAN_BYTES:
        raise PlanError(
            [PlanProblem(source=source, message=f"the plan is larger than {MAX_PLAN_BYTES // 1024} KiB")]
        )
    try:
        return source, raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise PlanError(
            [PlanProblem(source=source, line=line, message="the file is not UTF-8 text")]
        ) from None


def load_plan_file(path: str | os.PathLike[str]) -> DRPlan:
    """Read a plan from a local file; the path appears, as given, in every problem."""
    return load_plan_text(*reversed(_read(path)))


class PlanCheck(BaseModel):
    """One plan source checked among others: its plan, or every problem it has (`check_plans`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    source: str
    plan: DRPlan | None = None
    problems: list[PlanProblem] = Field(default_factory=list)


def check_plans(sources: Iterable[tuple[str, str]]) -> list[PlanCheck]:
    """Each (source, text) loaded, in order; a plan of a workload an earlier source already declared is a
    problem of the later source, naming the earlier one: which of two plans would Lifeboat act on?"""
    checked: list[PlanCheck] = []
    first: dict[str, tuple[str, int | None]] = {}
    for source, text in sources:
        try:
            plan, line = _load_text(text, source)
        except PlanError as err:
            checked.append(PlanCheck(source=source, problems=err.problems))
            continue
        if plan.workload in first:
            earlier, earlier_line = first[plan.workload]
            where = earlier if earlier_line is None else f"{earlier}:{earlier_line}"
            problem = PlanProblem(
                source=source,
                line=line,
                field="workload",
                message=f"workload {plan.workload!r} is also declared by {where}; a workload has one plan",
            )
            checked.append(PlanCheck(source=source, problems=[problem]))
            continue
        first[plan.workload] = (source, line)
        checked.append(PlanCheck(source=source, plan=plan))
    return checked


def load_plans(sources: Iterable[tuple[str, str]]) -> list[DRPlan]:
    """Every plan of `sources` ((source, YAML text) pairs); PlanError listing every problem of every source,
    a workload declared twice included, when any has one."""
    checked = check_plans(sources)
    problems = [p for c in checked for p in c.problems]
    if problems:
        raise PlanError(problems)
    return [c.plan for c in checked if c.plan is not None]


def check_plan_files(paths: Iterable[str | os.PathLike[str]]) -> list[PlanCheck]:
    """`check_plans` over local files, in order (a file that cannot be read is a problem of that file)."""
    read: list[tuple[str, str] | PlanCheck] = []
    for path in paths:
        try:
            read.append(_read(path))
        except PlanError as err:
            read.append(PlanCheck(source=os.fspath(path), problems=err.problems))
    loaded = iter(check_plans(r for r in read if isinstance(r, tuple)))
    return [r if isinstance(r, PlanCheck) else next(loaded) for r in read]


def load_plan_files(paths: Iterable[str | os.PathLike[str]]) -> list[DRPlan]:
    """`load_plans` over local files."""
    checked = check_plan_files(paths)
    problems = [p for c in checked for p in c.problems]
    if problems:
        raise PlanError(problems)
    return [c.plan for c in checked if c.plan is not None]


def plan_to_yaml(plan: DRPlan) -> str:
    """The plan as YAML that loads back to an equal plan; defaults the plan did not set stay implicit."""
    # exclude_unset rather than exclude_none: `equals: null` is a real expectation and must survive.
    data = plan.model_dump(mode="json", exclude_unset=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
