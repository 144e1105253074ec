# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every documentation text of the collection renders as written: each markup closes where its author meant.

A macro ends at its first unescaped ``)``, so ``V({{ lookup('x', 'Y') }})`` renders as the value
``{{ lookup('x', 'Y'`` followed by the text `` }})``: no parser error, and wrong in ansible-doc and the docsite
alike. The texts are parsed as ansible-doc and the docsite parse them (antsibull-docs-parser), and every part must
be well formed: in each code or value part, parentheses balanced and quotes paired; in the prose around the
parts, every bracket.
"""

from __future__ import annotations

import ast
import pathlib

import pytest
import yaml
from antsibull_docs_parser import dom
from antsibull_docs_parser.parser import Context, parse

ROOT = pathlib.Path(__file__).resolve().parents[4]
# The keys whose values are documentation markup; every other key (sample, default, choices, ...) is data.
MARKUP_KEYS = frozenset(("description", "short_description", "notes", "details", "requirements"))
PAIRS = {")": "(", "]": "[", "}": "{"}
CODE_PAIRS = {")": "("}


def python_docs(path):
    """The documentation strings of a plugin or doc fragment: DOCUMENTATION, RETURN and a fragment's others."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    fragment = "doc_fragments" in path.parts
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.Constant):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                if target.id in ("DOCUMENTATION", "RETURN") or (fragment and target.id.isupper()):
                    yield "%s:%s" % (path.relative_to(ROOT), target.id), yaml.safe_load(node.value.value)


def yaml_docs(path):
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("DOCUMENTATION", "RETURN"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), (dict, str)):
            value = loaded[key]
            yield "%s:%s" % (path.relative_to(ROOT), key), yaml.safe_load(value) if isinstance(value, str) else value
    if path.name == "argument_specs.yml":
        yield "%s:argument_specs" % path.relative_to(ROOT), loaded["argument_specs"]


def documents():
    for base in ("plugins", "extensions"):
        for path in sorted((ROOT / base).rglob("*.py")):
            if "module_utils" not in path.parts:
                yield from python_docs(path)
        for path in sorted((ROOT / base).rglob("*.yml")):
            yield from yaml_docs(path)
    for path in sorted((ROOT / "roles").glob("*/meta/argument_specs.yml")):
        yield from yaml_docs(path)


def markup_texts(node, where, under_markup=False):
    """(where, text) for every string under a markup key."""
    if isinstance(node, str):
        if under_markup:
            yield where, node
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from markup_texts(item, "%s[%d]" % (where, index), under_markup)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from markup_texts(value, "%s.%s" % (where, key), under_markup or key in MARKUP_KEYS)


def unbalanced(text, quotes, pairs=None):
    """Why ``text`` is not closed as it opens (for the brackets of ``pairs``, all by default), or None."""
    pairs = PAIRS if pairs is None else pairs
    stack = []
    for character in text:
        if character in pairs.values():
            stack.append(character)
        elif character in pairs:
            if not stack or stack.pop() != pairs[character]:
                return "%r closes what it did not open" % character
    if stack:
        return "%r is never closed" % stack[-1]
    if quotes:
        for quote in ("'", '"'):
            if text.count(quote) % 2:
                return "an odd number of %s" % quote
    return None


def literal(part):
    """What a code or value part shows, or None for a part that is not code (prose, links, bold...)."""
    if isinstance(part, dom.CodePart):
        return part.text
    if isinstance(part, dom.OptionValuePart):
        return part.value
    if isinstance(part, dom.EnvVariablePart):
        return part.name
    if isinstance(part, (dom.OptionNamePart, dom.ReturnValuePart)):
        return part.name + ("=" + part.value if part.value is not None else "")
    return None


def problems_of(text):
    """The problems of one text: each code or value part closed in itself, and the prose around the parts too."""
    problems = []
    for paragraph in parse(text, Context(), errors="exception"):
        prose = []
        for part in paragraph:
            shown = literal(part)
            if shown is not None:
                # A part that closed too early holds the "(" its ")" was meant for; a lone brace can be the point
                # of a code part (C({)), so only parentheses are checked in it, and quotes.
                problem = unbalanced(shown, quotes=True, pairs=CODE_PAIRS)
                if problem:
                    problems.append("%s in %r" % (problem, part))
            # A part stands in the prose as one word, so that the prose's own brackets are checked across parts.
            prose.append(part.text if isinstance(part, dom.TextPart) else "X")
        problem = unbalanced("".join(prose), quotes=False)
        if problem:
            problems.append("%s in the text around the markup: %r" % (problem, "".join(prose)))
    return problems


def collect():
    texts = []
    for name, document in documents():
        texts.extend(markup_texts(document, name))
    return texts


TEXTS = collect()


def test_the_collection_has_documentation_to_check():
    names = {where.split(":")[0] for where, _text in TEXTS}
    assert "plugins/doc_fragments/hzel.py" in names and "plugins/modules/hzel_containers.py" in names
    assert "roles/hzel_fleet/meta/argument_specs.yml" in names and len(TEXTS) > 200


@pytest.mark.parametrize(
    "text",
    [
        "May be templated, for example V({{ lookup('ansible.builtin.env', 'MY_TOKEN') }}), a vaulted value",
        "Give C(-e 'x=1), then more",
        "See O(foo=bar\"), done",
        "An unclosed macro V(web-{index}",
    ],
)
def test_markup_that_closes_too_early_or_never_is_found(text):
    try:
        assert problems_of(text)
    except ValueError:
        pass  # a parser error is a finding too


@pytest.mark.parametrize(
    "text",
    [
        "May be templated, for example V({{ lookup('ansible.builtin.env', 'MY_TOKEN'\\) }}), a vaulted value",
        "With V(web-{index}), V(web-1) and O(count=3) (see RV(group.active)); the user's token.",
    ],
)
def test_markup_written_as_meant_passes(text):
    assert problems_of(text) == []


def test_every_documentation_text_of_the_collection_renders_as_written():
    found = {}
    for where, text in TEXTS:
        try:
            problems = problems_of(text)
        except ValueError as exc:
            problems = ["does not parse: %s" % exc]
        if problems:
            found[where] = problems
    assert found == {}
