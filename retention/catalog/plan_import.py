"""``retention plan-import``: policy skeletons from a records-management plan, and re-imports.

Each class of the plan (``Luokka``) becomes one policy file, with one policy per record type
that holds personal data: ``retain`` from the plan's period, the start event as a comment, and
a ``records_plan:`` block citing the decision. What only a person can bind — connector, table,
key, trigger — is left out, so such a policy is written ``enabled: false``.

Importing a newer plan into the same folder finds each policy by the decision it cites (class
code and record type id), wherever it lives, and changes only what came from the plan: the
``records_plan:`` block, ``retain`` (unless the policy states a ``deviation:`` or keeps until a
fixed date), and the start-event comment. Everything a person wrote, comments included,
stays as it was — the files are edited with ruamel.yaml's round trip, which builds only plain
mappings, lists and scalars. Each file is validated with the catalog's own loader before
anything is written; on any problem nothing is.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from retention.catalog.model import PlannedPolicy, Policy, Register, unbound_keys
from retention.catalog.records_plan import PlanClass, RecordsPlan, RecordType, normalise_code
from retention.errors import CatalogError, Problem

HEADER = (
    "Imported from the records-management plan {title} (TOS {tos}, version {version}).\n"
    "Bind each policy to its source (connector, table, key, trigger), check its action, and\n"
    "set enabled: true. Re-importing a newer plan updates only retain and records_plan."
)


@dataclass
class ImportResult:
    """What an import wrote and changed, for the command to print."""

    written: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    """``file: policy`` of each new policy skeleton."""
    changed: list[str] = field(default_factory=list)
    """``file: policy: what`` of each plan-derived field that changed."""
    kept: list[str] = field(default_factory=list)
    """Plan changes not applied because a person decided otherwise (``deviation:``)."""
    gone: list[str] = field(default_factory=list)
    """Policies citing a decision the plan no longer has (left as they are)."""
    skipped: int = 0
    """Record types without personal data: no policy."""


def _yaml() -> YAML:
    rt = YAML(typ="rt")
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.width = 100
    rt.preserve_quotes = True
    return rt


def slug(text: str, limit: int = 60) -> str:
    """An identifier from a title: ascii, lower case, dashes (``Liikkuvuusasian tiedot`` →
    ``liikkuvuusasian-tiedot``)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    value = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(value) > limit:  # cut at a word's end, not inside one
        value = value[: limit + 1].rsplit("-", 1)[0] if "-" in value[:limit] else value[:limit]
    return value or "record"


def citation(plan: RecordsPlan, plan_class: PlanClass, record: RecordType) -> CommentedMap:
    """The ``records_plan:`` block of a policy enforcing ``record``."""
    block = CommentedMap()
    block["class_code"] = plan_class.code
    block["record_type"] = record.id
    block["tos"] = plan.id
    block["version"] = plan.version
    if plan.approved_on is not None:
        block["approved_on"] = plan.approved_on.isoformat()
    block["retention"] = record.retention.period
    values: dict[str, Any] = {
        "start_event": record.retention.start,
        "retention_reason": record.retention.reason or None,
        "personal_data": record.restriction.personal_data,
        "publicity": record.restriction.publicity,
        "secrecy_years": record.restriction.secrecy_years,
        "secrecy_reason": record.restriction.secrecy_reason,
    }
    for key, value in values.items():
        if value is not None:
            block[key] = value
    return block


def _start_comment(record: RecordType) -> str:
    start = record.retention.start or "not stated in the plan"
    return f"counted from (TOS): {start}"


def _skeleton(
    plan: RecordsPlan, plan_class: PlanClass, record: RecordType, ident: str
) -> CommentedMap:
    policy = CommentedMap()
    policy["id"] = ident
    policy["description"] = f"{record.title} (TOS {plan_class.code}: {plan_class.title})"
    policy["enabled"] = False
    policy["retain"] = record.retention.period
    policy.yaml_add_eol_comment(_start_comment(record), "retain")
    policy["action"] = "archive" if record.retention.permanent else "delete"
    policy["records_plan"] = citation(plan, plan_class, record)
    return policy


def _register(plan: RecordsPlan, plan_class: PlanClass, plan_file: str) -> CommentedMap:
    register = CommentedMap()
    register["id"] = slug(f"{plan.id}-{normalise_code(plan_class.code)}-{plan_class.title}", 90)
    register["name"] = plan_class.title or plan_class.code
    register["controller"] = plan.organisation or plan.title
    register["source"] = f"{plan.title}, TOS {plan.version}, luokka {plan_class.code}"
    register["records_plan"] = plan_file
    return register


@dataclass
class _Existing:
    path: Path
    doc: CommentedMap
    changed: bool = False


def _existing(out_dir: Path) -> Iterator[_Existing]:
    from ruamel.yaml.error import YAMLError

    rt = _yaml()
    for path in sorted([*out_dir.glob("*.yaml"), *out_dir.glob("*.yml")]):
        try:
            doc = rt.load(path.read_text(encoding="utf-8"))
        except (YAMLError, UnicodeDecodeError) as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            shown = f"{path.parent.name}/{path.name}"
            raise CatalogError(Problem(shown, f"cannot be read as YAML: {exc}", line)) from exc
        if isinstance(doc, CommentedMap):
            yield _Existing(path, doc)


def _cited(doc: CommentedMap) -> Iterator[tuple[CommentedMap, tuple[str, str]]]:
    items = doc.get("policies")
    if not isinstance(items, list):
        return
    for item in items:
        block = item.get("records_plan") if isinstance(item, dict) else None
        if isinstance(block, dict) and "class_code" in block and "record_type" in block:
            yield item, (normalise_code(str(block["class_code"])), str(block["record_type"]))


def import_plan(
    plan: RecordsPlan, out_dir: Path, plan_file: str, *, write: bool = True
) -> ImportResult:
    """Write or update the policy files of ``plan`` in ``out_dir``; say what changed."""
    result = ImportResult()
    out_dir.mkdir(parents=True, exist_ok=True)
    files = list(_existing(out_dir))
    index: dict[tuple[str, str], tuple[_Existing, CommentedMap]] = {}
    class_files: dict[str, _Existing] = {}
    for existing in files:
        for item, key in _cited(existing.doc):
            index[key] = (existing, item)
            class_files.setdefault(key[0], existing)
    wanted: set[tuple[str, str]] = set()
    new_files: list[_Existing] = []
    for plan_class, record in plan.record_types():
        if not record.personal:
            result.skipped += 1
            continue
        key = (normalise_code(plan_class.code), record.id)
        wanted.add(key)
        if key in index:
            existing, item = index[key]
            _update(existing, item, plan, plan_class, record, result)
            continue
        target = class_files.get(key[0])
        if target is None:
            name = f"{normalise_code(plan_class.code)}-{slug(plan_class.title, 40)}.yaml"
            target = _Existing(out_dir / name, _new_file(plan, plan_class, plan_file))
            class_files[key[0]], target.changed = target, True
            new_files.append(target)
        policies = target.doc["policies"]
        taken = {str(p.get("id")) for p in policies if isinstance(p, dict)}
        ident = slug(record.title, 50)
        number = 2
        while ident in taken:
            ident, number = f"{slug(record.title, 50)}-{number}", number + 1
        policies.append(_skeleton(plan, plan_class, record, ident))
        target.changed = True
        result.created.append(f"{target.path.name}: {ident}")
    for key, (existing, item) in index.items():
        if key not in wanted and _same_plan(item, plan):
            result.gone.append(f"{existing.path.name}: {item.get('id')} cites {key[0]} "
                               f"{key[1]}, which the plan no longer has")  # fmt: skip
    changed = [f for f in [*files, *new_files] if f.changed]
    texts = {f.path: _dump(f.doc) for f in changed}
    problems = [p for f in changed for p in _validate(f.path, texts[f.path])]
    if problems:
        raise CatalogError(problems)
    if write:
        for path, text in texts.items():
            path.write_text(text, encoding="utf-8")
            result.written.append(str(path))
    return result


def _same_plan(item: CommentedMap, plan: RecordsPlan) -> bool:
    tos = item["records_plan"].get("tos")
    return tos is None or str(tos) == plan.id


def _new_file(plan: RecordsPlan, plan_class: PlanClass, plan_file: str) -> CommentedMap:
    doc = CommentedMap()
    doc["register"] = _register(plan, plan_class, plan_file)
    doc["policies"] = CommentedSeq()
    header = HEADER.format(title=plan.title, tos=plan.id, version=plan.version)
    doc.yaml_set_start_comment(header)
    return doc


def _update(existing: _Existing, item: CommentedMap, plan: RecordsPlan, plan_class: PlanClass,
            record: RecordType, result: ImportResult) -> None:  # fmt: skip
    """Bring one policy's plan-derived fields up to the plan; touch nothing else."""
    name = f"{existing.path.name}: {item.get('id')}"
    new = citation(plan, plan_class, record)
    old = item["records_plan"]
    for key in sorted(set(new) | set(old)):
        if str(old.get(key)) != str(new.get(key)):
            result.changed.append(
                f"{name}: records_plan.{key} {old.get(key)!s} -> {new.get(key)!s}"
            )
            existing.changed = True
    for key in list(old):
        if key not in new:
            del old[key]
    for key, value in new.items():
        old[key] = value
    period = record.retention.period
    if "until" in item:
        pass  # a fixed last day is the person's reading of the plan; drift reports a conflict
    elif "deviation" in item:
        if str(item.get("retain")) != period:
            result.kept.append(f"{name}: retain {item.get('retain')} kept (deviation: "
                               f"{item['deviation']}); the plan says {period}")  # fmt: skip
    elif str(item.get("retain")) != period:
        result.changed.append(f"{name}: retain {item.get('retain')} -> {period}")
        item["retain"] = period
        existing.changed = True
    if "retain" in item:
        item.yaml_add_eol_comment(_start_comment(record), "retain")


def _dump(doc: CommentedMap) -> str:
    buffer = io.StringIO()
    _yaml().dump(doc, buffer)
    return buffer.getvalue()


def _validate(path: Path, text: str) -> list[Problem]:
    """The file as it would be written, read back safely and checked with the catalog's
    models: an import never writes a file the catalog would refuse."""
    import yaml
    from pydantic import ValidationError

    display = f"{path.parent.name}/{path.name}"
    doc = yaml.safe_load(text)
    items = doc.get("policies") or []
    try:
        Register.model_validate(doc.get("register"))
        for item in items:
            model = PlannedPolicy if unbound_keys(item) else Policy
            model.model_validate(item)
    except ValidationError as exc:
        return [Problem(display, f"the imported file would not load: {exc}")]
    return []
