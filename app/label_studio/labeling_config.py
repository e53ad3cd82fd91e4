"""Label Studio labeling configs <-> label schemas.

A `<Choices>` tag is a label schema: each `<Choice value=...>` is a label (its `hint`, where
present, the description the judge reads) and `choice="multiple"` makes it multi-label. The
`toName` of the Choices names the `<Text>` tag whose `value="$field"` says which field of a task's
`data` holds the text. Only the first `<Choices>` of a config is used.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from app.errors import InvalidInput


@dataclass(frozen=True)
class ConfigChoice:
    value: str
    hint: str | None


@dataclass(frozen=True)
class ChoicesConfig:
    """What a labeling config says about one `<Choices>` over one `<Text>`."""

    from_name: str
    to_name: str
    data_field: str
    multiple: bool
    choices: tuple[ConfigChoice, ...]


def parse(config: str) -> ChoicesConfig:
    """Read the first `<Choices>` of a labeling config; a clear 422 if there is none."""
    try:
        root = ET.fromstring(config)
    except ET.ParseError as exc:
        raise InvalidInput(f"the labeling config is not valid XML: {exc}") from None
    tags = {el.get("name"): el for el in root.iter() if el.get("name")}
    choices = next((el for el in root.iter() if el.tag == "Choices"), None)
    if choices is None:
        raise InvalidInput("the labeling config has no <Choices> tag: only text classification "
                           "configs (<Choices> over <Text>) can be served")
    from_name, to_name = choices.get("name"), choices.get("toName")
    if not from_name or not to_name:
        raise InvalidInput("the <Choices> tag needs both `name` and `toName`")
    target = tags.get(to_name.split(",")[0])
    value = target.get("value", "") if target is not None else ""
    if not value.startswith("$"):
        raise InvalidInput(f"<Choices toName={to_name!r}> must point at a tag such as "
                           f"<Text name={to_name!r} value=\"$text\"/>")
    options = tuple(ConfigChoice(value=c.get("value") or (c.text or "").strip(),
                                 hint=c.get("hint") or None)
                    for c in choices.iter("Choice"))
    if not options or any(not o.value for o in options):
        raise InvalidInput("every <Choice> needs a `value`, and <Choices> needs at least one")
    return ChoicesConfig(from_name=from_name, to_name=to_name, data_field=value[1:],
                         multiple=choices.get("choice") == "multiple", choices=options)


def write(labels: list[tuple[str, str]], *, multiple: bool, from_name: str = "label",
          to_name: str = "text", data_field: str = "text") -> str:
    """A labeling config for a schema's (name, description) labels: paste it into Label Studio
    (Settings > Labeling Interface > Code) and the exported tasks fit it."""
    kind = ' choice="multiple"' if multiple else ' choice="single"'
    lines = ["<View>",
             f"  <Text name={quoteattr(to_name)} value={quoteattr('$' + data_field)}/>",
             f"  <Choices name={quoteattr(from_name)} toName={quoteattr(to_name)}{kind}>"]
    lines += [f"    <Choice value={quoteattr(name)} hint={quoteattr(description)}/>"
              for name, description in labels]
    lines += ["  </Choices>", "</View>"]
    return "\n".join(lines) + "\n"
