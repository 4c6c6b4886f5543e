"""Every corruption kind the cleaning stage handles, in every form it comes in.

The cross product, one test id per combination:
    annotation  several valid replies: the paper's real sample (one frame, the Case_N mapping,
                one object per image), a Chinese variant (full-width punctuation, “quotes”,
                "ASCII quotes", {braces} and [brackets] and a newline inside string values;
                Chinese top-level keys), the prompt's own format under {"frames": [...]},
                numbers written as strings, fields missing
  x kind        how the JSON text is broken (see KINDS)
  x layout      compact on one line, or pretty-printed over many indented lines
  x wrapper     bare, prose around it, in a code fence, prose and a fence
  x encoding    none; the JSON text encoded again as a JSON string (escaped quotes) inside
                the prose and fences; the whole reply encoded as a JSON string

Each reply must clean to exactly what its uncorrupted original cleans to (a cut-off reply:
the frames before the cut exactly, the cut one a `truncated` loss), locally, without an LLM.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import pytest

from skyscript_assets.schema import FrameAnnotation, LossRecord
from skyscript_assets.stages.annotation.clean_json import CleanOutcome, clean_raw_output

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "skyscript_sample_en.json"
CUT = "@@CUT@@"  # put into the last frame of a reply that gets cut off, where the cut falls


# --- the valid annotations -----------------------------------------------------------------


@cache
def _sample() -> dict:
    if not SAMPLE.is_file():
        pytest.skip("../shared/reference/skyscript_sample_en.json is absent")
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def _case(n: int) -> dict:
    case = copy.deepcopy(_sample()[f"Case_{n}"])
    person = case["people"][0]  # a dialogue over two lines, as subtitles often are
    person["Line"] = person["Line"].replace(". ", ".\n", 1) if ". " in person["Line"] else person["Line"] + "\nOkay."
    return case


_ZH_TEXT = {
    "scene": ["安静的西餐厅", "医院走廊"],
    "description": [
        "室内，像是一家餐厅：桌上摆着牛排、薯条和一杯红酒；墙上挂着“营业中”的牌子。",
        '走廊很长（灯光昏暗），门上写着"ICU"，地上有{水渍}和[脚印]。',
    ],
    "looks": "短黑发，穿着带毛领的黑色夹克，打着花纹领带。",
    "actions": "坐在桌旁，举着酒杯：“干杯！”",
    "line": [
        '他说：“你别走，{我}马上回来！”[笑]\n她回答："好，我等你。"',
        "他喊道：“站住”，“别跑”！It's 老王的店：别乱来。",
    ],
    "temperament": "沉稳，友善",
    "object": "白色桌布：上面放着盘子、刀叉，还有一张写着“预订”的卡片。",
}


def _chinese(case: dict, k: int) -> dict:
    """A sample case with Chinese text in its values and Chinese top-level keys."""
    people = []
    for p, person in enumerate(case["people"]):
        person = dict(person)
        person.update(
            Looks=_ZH_TEXT["looks"],
            Actions=_ZH_TEXT["actions"],
            Temperament=_ZH_TEXT["temperament"],
            Line=_ZH_TEXT["line"][(k + p) % 2],
        )
        people.append(person)
    objects = [dict(o, Description=_ZH_TEXT["object"]) for o in case["objects"]]
    return {
        "场景": [case["Scene"][0], _ZH_TEXT["scene"][k % 2]],
        "背景音乐": ["True", "流行", "浪漫", "慢节奏"],
        "场景描述": _ZH_TEXT["description"][k % 2],
        "人物": people,
        "物体": objects,
    }


def _prompt_format(case: dict) -> dict:
    """A sample case in the prompt's snake_case format, with real booleans and nulls."""

    def person(p):
        vad = p.get("Continuous Emotion")
        return {
            "type": p["object"],
            "age": p["Age"],
            "gender": p["Gender"],
            "looks": p["Looks"],
            "emotion": p.get("Emotion"),
            "actions": p.get("Actions"),
            "vad": {"valence": vad["Valence (V)"], "arousal": vad["Arousal (A)"], "dominance": vad["Dominance (D)"]}
            if vad
            else None,
            "temperament": p.get("Temperament"),
            "facial_attractiveness": p.get("Facial Attractiveness"),
            "shot_type": p["Shot Type"],
            "line": None,
        }

    return {
        "scene": {"number": int(case["Scene"][0]), "name": case["Scene"][1]},
        "bgm": {"present": case["BGM"][0] == "True", "genre": case["BGM"][1], "mood": None, "tempo": None},
        "scene_description": case["Scene Description"].replace(". ", ".\n", 1),
        "people": [person(p) for p in case["people"]],
        "objects": [
            {"name": o["object"], "description": o["Description"], "shot_type": o["Shot Type"]}
            for o in case["objects"]
        ],
    }


def _numbers_as_strings(value):
    if isinstance(value, dict):
        return {k: _numbers_as_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_as_strings(v) for v in value]
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _missing_fields(case: dict) -> dict:
    case = {k: v for k, v in case.items() if k not in ("BGM", "objects")}
    case["people"] = [
        {k: v for k, v in p.items() if k not in ("Continuous Emotion", "Temperament")} for p in case["people"]
    ]
    return case


@dataclass(frozen=True)
class Annotation:
    build: Callable[[], object]  # the reply's value
    original: Callable[[], object] | None = None  # what it must clean to, when not the value itself
    per_image: bool = False  # one object per image ("Image 1: {...} Image 2: {...}"): build gives the list


ANNOTATIONS = {
    "en_single_frame": Annotation(lambda: _case(1)),
    "en_case_mapping": Annotation(lambda: {f"Case_{n}": _case(n) for n in (2, 3, 6)}),
    "en_per_image": Annotation(lambda: [_case(4), _case(5)], per_image=True),
    "zh_frame_list": Annotation(lambda: [_chinese(_case(7), 0), _chinese(_case(8), 1)]),
    "prompt_format_frames": Annotation(lambda: {"frames": [_prompt_format(_case(9)), _prompt_format(_case(10))]}),
    "numbers_as_strings": Annotation(
        lambda: _numbers_as_strings(_prompt_format(_case(11))), original=lambda: _prompt_format(_case(11))
    ),
    "missing_fields": Annotation(lambda: _missing_fields(_case(12))),
}


# --- writing JSON in many ways -------------------------------------------------------------


def _raw_body(text: str, quote: str, ascii_only: bool = False) -> str:
    """A string's text escaped as JSON does, except that `quote`'s character is left raw... or
    not: a raw " stays raw inside other quotes; newlines and tabs are escaped."""
    body = json.dumps(text, ensure_ascii=ascii_only)[1:-1]
    return body.replace('\\"', '"') if quote != '"' else body


_FULL_WIDTH_DIGITS = str.maketrans("0123456789.", "０１２３４５６７８９．")


@dataclass(frozen=True)
class Form:
    """How one kind writes JSON: its punctuation, strings, keys and literals."""

    braces: str = "{}"
    brackets: str = "[]"
    colon: str = ":"
    comma: str = ","
    list_comma: str | None = None  # the comma between list items, when not `comma`
    quotes: str = '""'  # the string delimiters; '' for Python's repr
    bare_keys: bool = False
    literals: tuple[str, str, str] = ("true", "false", "null")
    trailing_commas: bool = False
    missing_commas: bool = False  # no comma after a string followed by another member
    missing_list_commas: bool = False  # no comma between the strings of a list only
    comments: bool = False
    raw_newlines: bool = False  # newlines and tabs inside strings written raw
    full_width_digits: bool = False
    indent_char: str = " "
    spaced: bool = True  # a space after , and : on one line

    def string(self, text: str, ascii_only: bool) -> str:
        if self.quotes == "repr":
            body = repr(text)
        elif self.quotes == '""':
            body = json.dumps(text, ensure_ascii=ascii_only)
        else:
            body = self.quotes[0] + _raw_body(text, self.quotes[0], ascii_only) + self.quotes[1]
        return body.replace("\\n", "\n").replace("\\t", "\t") if self.raw_newlines else body

    def key(self, name: str, ascii_only: bool) -> str:
        return name if self.bare_keys else self.string(name, ascii_only)

    def scalar(self, value, ascii_only: bool) -> str:
        if isinstance(value, str):
            return self.string(value, ascii_only)
        if value is True or value is False or value is None:
            return self.literals[0 if value is True else 1 if value is False else 2]
        text = json.dumps(value)
        return text.translate(_FULL_WIDTH_DIGITS) if self.full_width_digits else text


def render(value, form: Form, indent: int | None, ascii_only: bool, level: int = 0) -> str:
    pad = "\n" + form.indent_char * (indent * (level + 1)) if indent else ""
    end_pad = "\n" + form.indent_char * (indent * level) if indent else ""
    if isinstance(value, dict):
        members = [
            (
                f"{form.key(k, ascii_only)}{form.colon}{' ' if form.spaced else ''}"
                f"{render(v, form, indent, ascii_only, level + 1)}",
                isinstance(v, str),
            )
            for k, v in value.items()
        ]
        opening, closing, comma = form.braces[0], form.braces[1], form.comma
        if form.comments:
            opening += (pad + "// the model's note: {keys} follow") if indent else "/* the model's note */"
    elif isinstance(value, list):
        members = [(render(v, form, indent, ascii_only, level + 1), isinstance(v, str) and "list") for v in value]
        opening, closing, comma = form.brackets[0], form.brackets[1], form.list_comma or form.comma
    else:
        return form.scalar(value, ascii_only)
    if not members:
        return opening + closing
    parts = []
    for i, (text, is_string) in enumerate(members):
        last = i == len(members) - 1
        if last:
            sep = comma if form.trailing_commas else ""
        else:
            sep = (
                ""
                if (form.missing_commas and is_string) or (form.missing_list_commas and is_string == "list")
                else comma
            )
        gap = "" if last or indent else " " if form.spaced or not sep else ""
        parts.append(text + sep + gap)
    return opening + pad + pad.join(parts) + end_pad + closing


FULL_WIDTH = Form(braces="｛｝", brackets="［］", colon="：", comma="，", quotes="“”", spaced=False)
KINDS: dict[str, Form | None] = {
    "valid": Form(),
    "trailing_commas": Form(trailing_commas=True),
    "missing_commas": Form(missing_commas=True),
    "missing_commas_in_lists": Form(missing_list_commas=True),
    "single_quotes": Form(quotes="''"),
    "python_literals": Form(quotes="repr", literals=("True", "False", "None")),
    "unquoted_keys": Form(bare_keys=True),
    "comments": Form(comments=True),
    "raw_newlines_in_strings": Form(raw_newlines=True),
    "smart_quotes": Form(quotes="“”"),
    "full_width": FULL_WIDTH,
    "full_width_ascii_quotes": replace(FULL_WIDTH, quotes='""'),
    "full_width_digits_spaces": replace(FULL_WIDTH, list_comma="、", full_width_digits=True, indent_char="\u3000"),
    "js_object": Form(bare_keys=True, quotes="''", trailing_commas=True, literals=("True", "False", "None")),
    "truncated": Form(),
    "truncated_full_width": FULL_WIDTH,
}
LAYOUTS = {"compact": None, "pretty": 2}
WRAPPERS = ("bare", "prose", "fence", "prose_fence")
ENCODINGS = ("plain", "json_string", "whole_reply_json_string")

_PROSE = {
    "en": (
        "Sure! Here is the annotation you asked for:",
        "I hope this helps. Let me know if {anything} else is needed [or not].",
    ),
    "zh": ("好的，以下是标注结果：", "如需修改请告诉我（谢谢）。"),
}


def _reply(name: str, kind: str, layout: str, wrapper: str, encoding: str) -> str:
    annotation = ANNOTATIONS[name]
    value = annotation.build()
    if kind.startswith("truncated"):  # the cut falls inside the last frame's description
        frames = value if isinstance(value, list) else value.get("frames") or list(value.values())
        last = frames[-1] if isinstance(frames, list) and isinstance(frames[-1], dict) else value
        key = next(k for k in last if "escription" in k or "描述" in k)
        last[key] = last[key][:20] + CUT + last[key][20:]
    form, indent = KINDS[kind], LAYOUTS[layout]
    ascii_only = layout == "compact" and form.quotes == '""' and form.braces == "{}"

    def block(one) -> str:
        text = render(one, form, indent, ascii_only)
        if encoding == "json_string":
            text = json.dumps(text, ensure_ascii=layout == "compact")
        return f"```json\n{text}\n```" if wrapper.endswith("fence") else text

    if annotation.per_image:
        reply = "\n\n".join(f"Image {i + 1}:\n{block(one)}" for i, one in enumerate(value))
    else:
        reply = block(value)
    if wrapper.startswith("prose"):
        before, after = _PROSE["zh" if name.startswith("zh") else "en"]
        reply = f"{before}\n\n{reply}\n\n{after}"
    if encoding == "whole_reply_json_string":
        reply = json.dumps(reply, ensure_ascii=layout == "compact")
    if kind.startswith("truncated"):
        assert reply.count(CUT) == 1, "the cut marker is written once"
        reply = reply[: reply.index(CUT)]
    return reply


@cache
def _expected(name: str) -> tuple:
    annotation = ANNOTATIONS[name]
    original = (annotation.original or annotation.build)()
    result = clean_raw_output(json.dumps(original))
    assert result.outcome is CleanOutcome.PARSED_AS_IS
    frames = tuple(result.frames)
    assert frames and all(isinstance(f, FrameAnnotation) for f in frames)
    return frames


def _plain_json(name: str, kind: str, layout: str, wrapper: str, encoding: str) -> bool:
    """Whether the reply is JSON as it comes, once fences are stripped (prose outside fences is
    dropped with them): the valid form, or a kind that finds nothing to break in this value
    (no list of strings to drop commas from)."""
    return (
        wrapper != "prose"
        and encoding == "plain"
        and not ANNOTATIONS[name].per_image
        and _reply(name, kind, layout, wrapper, encoding) == _reply(name, "valid", layout, wrapper, encoding)
    )


CASES = [
    (name, kind, layout, wrapper, encoding)
    for name in ANNOTATIONS
    for kind in KINDS
    for layout in LAYOUTS
    for wrapper in WRAPPERS
    for encoding in ENCODINGS
]


@pytest.mark.parametrize("name, kind, layout, wrapper, encoding", CASES, ids=["-".join(c) for c in CASES])
def test_every_form_of_every_kind_is_recovered_exactly(name, kind, layout, wrapper, encoding):
    reply = _reply(name, kind, layout, wrapper, encoding)
    expected = _expected(name)
    items = [f"kf{i + 1}" for i in range(len(expected))]
    result = clean_raw_output(reply, items)
    if kind.startswith("truncated"):
        [cut] = result.losses
        assert isinstance(cut, LossRecord) and cut.reason == "truncated" and cut.item == items[-1], (cut, reply[-200:])
        assert result.frames == list(expected[:-1]) and result.items == items[:-1], reply[:300]
        assert result.outcome is (CleanOutcome.LOST if len(expected) == 1 else CleanOutcome.FIXED_LOCALLY)
        return
    assert result.frames == list(expected) and result.losses == [], (result.losses, reply[:400])
    plain = _plain_json(name, kind, layout, wrapper, encoding)
    assert result.outcome is (CleanOutcome.PARSED_AS_IS if plain else CleanOutcome.FIXED_LOCALLY)
    assert result.unparseable is not plain


def test_the_generator_writes_each_kind_as_described():
    """The forms really differ and really carry their corruption (so a passing case means something)."""
    compact = _reply("zh_frame_list", "full_width", "compact", "bare", "plain")
    pretty = _reply("zh_frame_list", "full_width", "pretty", "bare", "plain")
    assert "\n" not in compact.replace("\\n", "") and pretty.count("\n") > 20
    assert compact.startswith("［｛“场景”：［“") and "“你别走，{我}马上回来！”" in compact
    encoded = _reply("en_single_frame", "valid", "compact", "prose", "json_string")
    assert '"{\\"Scene\\": [\\"1\\"' in encoded and encoded.startswith("Sure!")
    whole = _reply("en_single_frame", "valid", "pretty", "prose_fence", "whole_reply_json_string")
    assert whole.startswith('"Sure!') and "```json\\n{\\n" in whole
    assert "'Scene': ['1'," in _reply("en_single_frame", "python_literals", "compact", "bare", "plain")
    assert "present: True," in _reply("prompt_format_frames", "js_object", "compact", "bare", "plain")
    assert "\u3000\u3000“" in _reply("zh_frame_list", "full_width_digits_spaces", "pretty", "bare", "plain")
    assert "“流行”、“浪漫”" in _reply("zh_frame_list", "full_width_digits_spaces", "compact", "bare", "plain")
    cut = _reply("en_case_mapping", "truncated", "pretty", "prose_fence", "plain")
    assert CUT not in cut and cut.rstrip().endswith(_case(6)["Scene Description"][:20])
    for kind in KINDS:  # every kind breaks the sample's own frame in both layouts
        for layout in LAYOUTS:
            broken = _reply("en_single_frame", kind, layout, "bare", "plain")
            assert (broken == _reply("en_single_frame", "valid", layout, "bare", "plain")) is (kind == "valid")
    assert len(CASES) == len(ANNOTATIONS) * len(KINDS) * len(LAYOUTS) * len(WRAPPERS) * len(ENCODINGS)
