"""The loss report: every stage's losses and flags, per drama and over all dramas, beside the
paper's figures, and the stages whose loss rate is over its threshold.

A **loss** is an item a stage was given and dropped: it never reaches the release. A **flag**
is a quality signal on an item that was kept (a phantom object, a face-count or shot-size
disagreement): counted beside the losses, never as one. Each stage is measured against its
own input (`given`): episodes for `drama_manifest` and `keyframes`, keyframes for the
quality filter, keyframes sent to the MLLM, items in its replies for `cleaned_json`, and so
on. A stage that did not run (never materialized for the drama, or no model here) is
**not run**: it has no rate, never 0 %.

    counts = DramaCounts(...)                   # what the catalog knows of one drama
    report = loss_report([counts, ...], max_loss_rates=DEFAULT_MAX_LOSS_RATES)
    report.markdown, report.over_threshold()
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

# Stages a per-episode asset runs (their summaries give `given` and `not_run` per episode).
STEP_STAGES = ("keyframes", "raw_mllm_json", "cleaned_json", "detections", "character_refinements")
# Every stage with a known denominator, in pipeline order; `keyframes_invalid` is the keyframe quality filter.
STAGES = (
    "drama_manifest",
    "keyframes",
    "keyframes_invalid",
    "raw_mllm_json",
    "cleaned_json",
    "detections",
    "character_refinements",
    "restored_scripts",
    "relationships",
)
LABELS = {"keyframes_invalid": "keyframes (invalid)"}
UNITS = {
    "drama_manifest": "episode files",
    "keyframes": "episodes",
    "keyframes_invalid": "keyframes",
    "raw_mllm_json": "valid keyframes",
    "cleaned_json": "keyframes in replies",
    "detections": "MLLM objects",
    "character_refinements": "keyframes",
    "restored_scripts": "restorations",
    "relationships": "edge labels",
}
# The loss rate above which a stage fails its check in the report (run config can change them).
DEFAULT_MAX_LOSS_RATES = {
    "drama_manifest": 0.10,  # unusable files: a scrape gone wrong
    "keyframes": 0.05,  # episodes that could not be decoded
    "keyframes_invalid": 0.08,  # the paper: 3.9 % of keyframes invalid (motion blur, occlusion)
    "raw_mllm_json": 0.05,  # failed or unreadable requests
    "cleaned_json": 0.05,  # the paper: about 4 % of the MLLM's outputs not usable JSON
    "detections": 0.05,
    "character_refinements": 0.05,
    "restored_scripts": 0.30,  # near-duplicates and failed requests among N restorations
    "relationships": 0.10,  # edges whose label request failed (the edge itself is kept)
}


@dataclass(frozen=True)
class PaperFigure:
    rate: float
    what: str


# SkyScript-100M, cleaning (a 500-drama bad-case study); see shared/reference/PAPER.md.
PAPER_FIGURES = {
    "keyframes_invalid": PaperFigure(5_441 / (134_093 + 5_441), "5,441 of 139,534 keyframes invalid"),
    "cleaned_json": PaperFigure(0.04, "MLLM outputs unreadable or not JSON, before GPT-4o repair"),
}
NOT_MATERIALIZED = "not materialized for this drama"


@dataclass(frozen=True)
class DramaCounts:
    """What the catalog holds of one drama, as the report needs it."""

    drama_id: str
    losses: Mapping[str, int]  # losses by stage
    flags: Mapping[str, int]  # flags by stage
    episodes: int
    keyframes: int
    invalid_keyframes: int
    shooting_scripts: int
    restorations: int  # restorations written to the restored_scripts shards
    relationship_edges: int  # edges written with the release
    relationship_labeller: str = ""  # model id of the edge labels; "" when no labeller ran
    step_summaries: Mapping[str, Sequence[dict]] = field(default_factory=dict)  # stage -> episodes' summaries


@dataclass(frozen=True)
class StageTally:
    """One stage's losses and flags. `given` None: no known denominator (no rate)."""

    stage: str
    given: int | None
    lost: int
    flags: int = 0
    not_run: str | None = None  # why the stage did not run; then there is no rate
    dramas: int = 1  # dramas summed into this tally
    not_run_dramas: int = 0  # of those, where the stage did not run

    @property
    def rate(self) -> float | None:
        if self.not_run or not self.given:
            return None
        return self.lost / self.given

    def rate_text(self) -> str:
        if self.not_run:
            return f"not run: {self.not_run}" if not self.not_run.startswith("not run") else self.not_run
        return "-" if self.rate is None else f"{self.rate:.2%}"


def tally_drama(counts: DramaCounts) -> list[StageTally]:
    """Every stage of one drama: the known stages in order, then any other stage with losses or flags."""
    steps = {stage: _step(counts, stage) for stage in STEP_STAGES}
    keyframes = steps["keyframes"]
    manifest_lost = counts.losses.get("drama_manifest", 0)
    restored_lost = counts.losses.get("restored_scripts", 0)
    restored_given = counts.restorations + restored_lost
    known = {
        "drama_manifest": StageTally("drama_manifest", counts.episodes + manifest_lost, manifest_lost),
        "keyframes_invalid": StageTally(
            "keyframes_invalid", counts.keyframes, counts.invalid_keyframes, not_run=keyframes.not_run
        ),
        "restored_scripts": StageTally(
            "restored_scripts",
            restored_given,
            restored_lost,
            not_run=(NOT_MATERIALIZED if not restored_given and counts.shooting_scripts else None),
        ),
        "relationships": _relationships(counts),
        **steps,
    }
    tallies = [_with_flags(known[stage], counts) for stage in STAGES]
    others = sorted((set(counts.losses) | set(counts.flags)) - set(known))
    return tallies + [StageTally(s, None, counts.losses.get(s, 0), counts.flags.get(s, 0)) for s in others]


def _step(counts: DramaCounts, stage: str) -> StageTally:
    """A per-episode stage: given from the episodes that ran; not run when none did."""
    summaries = counts.step_summaries.get(stage, ())
    ran = [s for s in summaries if not s.get("not_run")]
    lost = counts.losses.get(stage, 0)
    if not summaries:
        return StageTally(stage, None, lost, not_run=NOT_MATERIALIZED)
    if not ran:
        return StageTally(stage, None, lost, not_run=str(summaries[0]["not_run"]))
    return StageTally(stage, sum(int(s.get("given") or 0) for s in ran), lost)


def _relationships(counts: DramaCounts) -> StageTally:
    lost = counts.losses.get("relationships", 0)
    unlabelled = counts.relationship_edges and not counts.relationship_labeller and not lost
    return StageTally(
        "relationships",
        counts.relationship_edges,
        lost,
        not_run="no labelling LLM (edges written unlabelled)" if unlabelled else None,
    )


def _with_flags(tally: StageTally, counts: DramaCounts) -> StageTally:
    flags = counts.flags.get(tally.stage, 0)
    return StageTally(
        tally.stage, tally.given, tally.lost, flags, tally.not_run, not_run_dramas=int(bool(tally.not_run))
    )


def combine(tallies: Iterable[StageTally]) -> StageTally:
    """One stage over many dramas: given and lost summed over the dramas where it ran (over all
    of them when it ran nowhere: then it has no rate, and says why)."""
    tallies = list(tallies)
    ran = [t for t in tallies if not t.not_run]
    skipped = [t for t in tallies if t.not_run]
    given = None if all(t.given is None for t in ran) else sum(t.given or 0 for t in ran)
    not_run = skipped[0].not_run if skipped and not ran else None
    return StageTally(
        tallies[0].stage,
        given,
        sum(t.lost for t in ran or tallies),
        sum(t.flags for t in tallies),
        not_run,
        dramas=len(tallies),
        not_run_dramas=len(skipped),
    )


@dataclass(frozen=True)
class LossReport:
    by_drama: dict[str, list[StageTally]]
    totals: list[StageTally]  # every stage over all dramas
    max_loss_rates: Mapping[str, float]
    loss_reasons: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (stage, reason) -> count
    flag_reasons: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def total(self, stage: str) -> StageTally:
        return next(t for t in self.totals if t.stage == stage)

    def over_threshold(self) -> list[StageTally]:
        """Stages whose loss rate over all dramas is above their threshold."""
        return [
            t
            for t in self.totals
            if t.stage in self.max_loss_rates and t.rate is not None and t.rate > self.max_loss_rates[t.stage]
        ]

    def dramas_over(self, stage: str) -> list[str]:
        """Dramas where `stage` alone is over its threshold."""
        limit = self.max_loss_rates[stage]
        return [
            d
            for d, tallies in self.by_drama.items()
            for t in tallies
            if t.stage == stage and t.rate is not None and t.rate > limit
        ]

    @property
    def summary_markdown(self) -> str:
        return "\n".join(
            [
                f"## All dramas ({len(self.by_drama)})",
                "",
                *_totals_table(self),
                "",
                *_reasons_table("Flags by reason (kept data, not losses)", self.flag_reasons),
                "",
                *_reasons_table("Losses by reason", self.loss_reasons),
            ]
        )

    @property
    def markdown(self) -> str:
        return self.render()

    def render(self, max_drama_rows: int | None = None) -> str:
        """The whole report; `max_drama_rows` cuts the per-drama table (for the UI; the file has it all)."""
        rows = [_drama_row(drama, t) for drama, tallies in self.by_drama.items() for t in tallies]
        shown = rows if max_drama_rows is None else rows[:max_drama_rows]
        more = (
            [f"| ... | {len(rows) - len(shown)} more rows in the report file | | | | | | |"]
            if len(shown) < len(rows)
            else []
        )
        return (
            "\n".join(
                [
                    "# Loss rates by stage",
                    "",
                    LEGEND,
                    "",
                    self.summary_markdown,
                    "",
                    "## Per drama",
                    "",
                    "| drama | stage | given | lost | loss rate | flags | paper | unit |",
                    "|---|---|---:|---:|---:|---:|---:|---|",
                    *shown,
                    *more,
                ]
            )
            + "\n"
        )

    def grid_markdown(self, max_dramas: int | None = None) -> str:
        """The loss rate of every stage (columns) in every drama (rows), "not run" where it did not run."""
        stages = [t.stage for t in self.totals]
        lines = [
            "| drama | " + " | ".join(label(s) for s in stages) + " |",
            "|---|" + "---:|" * len(stages),
        ]
        dramas = list(self.by_drama.items())
        for drama, tallies in dramas if max_dramas is None else dramas[:max_dramas]:
            rates = {t.stage: t for t in tallies}
            lines.append(f"| {drama} | " + " | ".join(_cell(rates.get(s)) for s in stages) + " |")
        if max_dramas is not None and len(dramas) > max_dramas:
            lines.append(f"| ... {len(dramas) - max_dramas} more dramas in the report file |" + " |" * len(stages))
        lines.append("| **all dramas** | " + " | ".join(_cell(t) for t in self.totals) + " |")
        return "\n".join(lines)

    def why(self, stage: str) -> str | None:
        """One line on a stage over its threshold (None when it is not): the rate and the worst dramas."""
        t = self.total(stage)
        if t not in self.over_threshold():
            return None
        worst = sorted(
            ((d, x.rate) for d in self.dramas_over(stage) for x in self.by_drama[d] if x.stage == stage),
            key=lambda item: -item[1],
        )
        names = ", ".join(f"{d} ({rate:.1%})" for d, rate in worst[:5])
        return (
            f"{label(stage)}: {t.lost} of {t.given} {UNITS.get(stage, 'items')} lost ({t.rate:.2%}), over "
            f"{self.max_loss_rates[stage]:.0%}" + (f"; worst: {names}" if names else "")
        )


LEGEND = (
    "Losses are items a stage was given and dropped (they never reach the release); flags are quality "
    "signals on kept data (phantom objects, face-count or shot-size disagreements), counted apart. "
    "*not run*: the step did not run (never materialized, or no model here), so it has no rate; "
    "`-`: nothing was given. The paper's figures (SkyScript-100M, cleaning, a 500-drama study) stand beside ours: "
    "3.9 % of keyframes invalid, about 4 % of MLLM outputs not usable JSON before repair, 4 % of the "
    "pre-extracted data lost overall."
)


def loss_report(
    dramas: Sequence[DramaCounts],
    *,
    max_loss_rates: Mapping[str, float] = DEFAULT_MAX_LOSS_RATES,
    loss_reasons: Mapping[tuple[str, str], int] | None = None,
    flag_reasons: Mapping[tuple[str, str], int] | None = None,
) -> LossReport:
    unknown = sorted(set(max_loss_rates) - set(STAGES))
    if unknown:
        raise ValueError(f"no such stage in the loss report: {', '.join(unknown)} (stages: {', '.join(STAGES)})")
    by_drama = {counts.drama_id: tally_drama(counts) for counts in dramas}
    stages = list(STAGES) + sorted({t.stage for ts in by_drama.values() for t in ts} - set(STAGES))
    totals = [
        combine(t for ts in by_drama.values() for t in ts if t.stage == stage)
        if by_drama
        else StageTally(stage, None, 0, not_run="no drama in the catalog", dramas=0)
        for stage in stages
    ]
    return LossReport(
        by_drama,
        totals,
        {**DEFAULT_MAX_LOSS_RATES, **max_loss_rates},
        Counter(loss_reasons or {}),
        Counter(flag_reasons or {}),
    )


def label(stage: str) -> str:
    return LABELS.get(stage, stage)


def _paper(stage: str) -> str:
    figure = PAPER_FIGURES.get(stage)
    return f"{figure.rate:.1%} ({figure.what})" if figure else ""


def _given(t: StageTally) -> str:
    return "-" if t.given is None else str(t.given)


def _drama_row(drama: str, t: StageTally) -> str:
    return (
        f"| {drama} | {label(t.stage)} | {_given(t)} | {t.lost} | {t.rate_text()} | {t.flags} | {_paper(t.stage)} "
        f"| {UNITS.get(t.stage, '')} |"
    )


def _cell(t: StageTally | None) -> str:
    """A grid cell: the rate, "not run" (never 0 %), or "-" when nothing was given."""
    if t is None or t.not_run:
        return "not run"
    return t.rate_text()


def stage_table(tallies: Sequence[StageTally], max_loss_rates: Mapping[str, float] = DEFAULT_MAX_LOSS_RATES) -> str:
    """One drama's stages as a Markdown table: given, lost, loss rate against its threshold, flags."""
    lines = ["| stage | given | lost | loss rate | threshold | flags | unit |", "|---|---:|---:|---:|---:|---:|---|"]
    for t in tallies:
        limit = max_loss_rates.get(t.stage)
        over = " **over**" if t.rate is not None and limit is not None and t.rate > limit else ""
        lines.append(
            f"| {label(t.stage)} | {_given(t)} | {t.lost} | {t.rate_text()}{over} | "
            f"{'' if limit is None else f'{limit:.0%}'} | {t.flags} | {UNITS.get(t.stage, '')} |"
        )
    return "\n".join(lines)


def _totals_table(report: LossReport) -> list[str]:
    lines = [
        "| stage | given | lost | loss rate | threshold | flags | paper | not run in | unit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for t in report.totals:
        limit = report.max_loss_rates.get(t.stage)
        over = " **over**" if t in report.over_threshold() else ""
        lines.append(
            f"| {label(t.stage)} | {_given(t)} | {t.lost} | {t.rate_text()}{over} | "
            f"{'' if limit is None else f'{limit:.0%}'} | {t.flags} | {_paper(t.stage)} | "
            f"{t.not_run_dramas} of {t.dramas} | {UNITS.get(t.stage, '')} |"
        )
    return lines


def _reasons_table(title: str, reasons: Mapping[tuple[str, str], int]) -> list[str]:
    if not reasons:
        return [f"### {title}", "", "None."]
    return [
        f"### {title}",
        "",
        "| stage | reason | count |",
        "|---|---|---:|",
        *(f"| {stage} | {reason} | {count} |" for (stage, reason), count in sorted(reasons.items())),
    ]
