"""Every command-line option, declared once: its spellings, kind, default and help.

Three readers use the same table: `run`'s fast parser (cli/run.py, which skips importing typer on a
plain command line), the typer commands (their `--help` and the parser of record for anything
unusual), and the documentation (docs/index.md's option tables are generated from here by
`python -m trainwatch.cli.options`, and a test keeps them equal).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping

from trainwatch.diagnostics.categories import CATEGORIES
from trainwatch.diagnostics.startup import startup_record

TYPE_CHECKING = False  # not typing's: a plain run reads this table before the program starts
if TYPE_CHECKING:  # inspect is for the typer command only, which a plain run never builds
    import inspect
    from typing import Any

# Kinds: "flag" (a switch), "value" (one string), "values" (repeatable), "number" (a finite float
# at least `minimum`), "integer" (a whole number at least `minimum`), "choice" (one of `choices`).


@startup_record  # read before `run` starts the program (diagnostics/startup.py)
class Option:
    """One option of one or more commands."""

    field: str  # the attribute of the parsed options
    flags: tuple[str, ...]  # "-q", "--quiet"
    kind: str
    help: str
    default: Any = None
    metavar: str | None = None
    minimum: float | None = None
    choices: tuple[str, ...] = ()
    off: str | None = None  # the spelling that turns a flag off: "--no-keep-artifacts"
    hidden: bool = False

    @property
    def takes_value(self) -> bool:
        return self.kind != "flag"

    def described(self) -> str:
        """The help text with the values the option takes, as --help and the docs show it."""
        text = self.help
        if self.choices:
            text += f" One of: {', '.join(self.choices)}."
        if self.kind == "number" and self.default is not None:
            text += f" Default: {self.default:g}."
        return text


# Marks, for the callback, that the user wrote `--` (a command) rather than a script. Inserted by
# cli/run.py's `protect_child_args`; hidden from --help.
COMMAND_MARK = "--as-command"
FAIL_ON_METAVAR = "CATEGORY[,CATEGORY...]"
FAIL_ON_HELP = (
    "Exit 3 when the program exited 0 (or, for a saved log, always) but the verdict is one of "
    f"these categories or category/subtypes. Categories: {', '.join(CATEGORIES)}."
)

# Where option values come from besides the command line (docs/live.md): notification URLs from
# the environment, and the user's configuration file (under $XDG_CONFIG_HOME, else ~/.config).
NOTIFY_ENV = "TRAINWATCH_NOTIFY"
CONFIG_FILE = os.path.join("trainwatch", "config.toml")
CONFIG_FILE_SHOWN = "~/.config/trainwatch/config.toml"
NOTIFY_FORMATS = ("auto", "slack", "discord", "teams", "plain")
NOTIFY_EVENTS = ("stall", "nan")


def config_file(env: Mapping[str, str]) -> str:
    """The user's configuration file (it may not exist)."""
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, CONFIG_FILE)


# The options every command that writes reports shares.
REPORT_OPTIONS = (
    Option(
        "json_path",
        ("--json",),
        "value",
        "Also write the JSON report here (- for stdout).",
        metavar="FILE",
    ),
    Option(
        "junit",
        ("--junit",),
        "value",
        "Also write a JUnit XML report here (GitLab, Jenkins, ...).",
        metavar="FILE",
    ),
    Option(
        "html",
        ("--html",),
        "value",
        "Also write a self-contained HTML report with charts here.",
        metavar="FILE",
    ),
    Option("quiet", ("-q", "--quiet"), "flag", "Print only the one-line verdict.", default=False),
    Option("fail_on", ("--fail-on",), "value", FAIL_ON_HELP, metavar=FAIL_ON_METAVAR),
)
SIGNATURES = Option(
    "signatures",
    ("--signatures",),
    "values",
    "An extra signature file (repeatable).",
    default=(),
    metavar="FILE",
)

RUN_OPTIONS = (
    Option(
        "module",
        ("-m", "--module"),
        "value",
        "Run a module, as `python -m MODULE`.",
        metavar="MODULE",
    ),
    Option(
        "python",
        ("--python",),
        "value",
        "Interpreter for a script or module (default: the python3 first on PATH).",
        metavar="PYTHON",
    ),
    *REPORT_OPTIONS,
    Option(
        "log", ("--log",), "value", "Also save the program's combined output here.", metavar="FILE"
    ),
    Option(
        "no_probe",
        ("--no-probe",),
        "flag",
        "Do not load the probe into the program's Python processes.",
        default=False,
    ),
    Option(
        "keep_artifacts",
        ("--keep-artifacts",),
        "flag",
        "Keep the probe's record files after the report.",
        default=False,
        off="--no-keep-artifacts",
    ),
    Option(
        "interval",
        ("--interval",),
        "number",
        "Seconds between memory samples.",
        default=0.5,
        minimum=0.05,
        metavar="SECONDS",
    ),
    SIGNATURES,
    Option(
        "stall_timeout",
        ("--stall-timeout",),
        "number",
        "Call the run stuck after this many seconds without output, progress or CPU use "
        "(off by default).",
        minimum=0.1,
        metavar="SECONDS",
    ),
    Option(
        "on_stall",
        ("--on-stall",),
        "choice",
        "What to do with a stuck run: auto stops it when idle and only reports a busy loop; "
        "kill stops both; report stops neither.",
        default="auto",
        choices=("auto", "kill", "report"),
        metavar="MODE",
    ),
    Option(
        "attach_to",
        ("--attach-to",),
        "choice",
        "After the run, attach the verdict to the run the program logged: W&B (summary fields, a "
        "tag and the report file, on the same run id; offline when the run was) or TensorBoard (a "
        "text summary in its log directory).",
        choices=("wandb", "tensorboard"),
        metavar="TRACKER",
    ),
    Option(
        "on_nan",
        ("--on-nan",),
        "value",
        "When the loss turns NaN/Inf: stop interrupts the run (SIGINT, which frameworks catch to "
        "save a checkpoint), then terminates it after --nan-grace, unless its loop had already "
        "reached its last epoch or step (then it warns); stop:N waits for N non-finite losses; "
        "warn only warns (and notifies).",
        metavar="stop[:N]|warn",
    ),
    Option(
        "nan_grace",
        ("--nan-grace",),
        "number",
        "Seconds between --on-nan stop's interrupt and its terminate.",
        default=30.0,
        minimum=0.0,
        metavar="SECONDS",
    ),
    Option(
        "notify",
        ("--notify",),
        "values",
        "Post a message to this webhook when the run ends: Slack, Discord, Teams, or any URL that "
        f"takes JSON (repeatable; also ${NOTIFY_ENV} and {CONFIG_FILE_SHOWN}).",
        default=(),
        metavar="URL",
    ),
    Option(
        "notify_format",
        ("--notify-format",),
        "choice",
        "The webhook's message format (default: told from the URL, else plain JSON).",
        choices=NOTIFY_FORMATS,
        metavar="FORMAT",
    ),
    Option(
        "notify_on",
        ("--notify-on",),
        "value",
        "Also notify when the run stalls (see --stall-timeout) or its loss first turns NaN/Inf: "
        "stall, nan, or stall,nan. The end is always notified.",
        metavar="EVENTS",
    ),
    Option(
        "on_exit",
        ("--on-exit",),
        "value",
        "Run this shell command once the run has ended and its reports are written, with the "
        "JSON report's path in $TRAINWATCH_REPORT; its failure changes no exit status.",
        metavar="CMD",
    ),
    Option("as_command", (COMMAND_MARK,), "flag", "", default=False, hidden=True),
)
EXPLAIN_OPTIONS = (*REPORT_OPTIONS, SIGNATURES)
REPORT_COMMAND_OPTIONS = (
    *REPORT_OPTIONS,
    Option(
        "github_summary",
        ("--github-summary",),
        "value",
        "Also write the GitHub Actions step summary (Markdown) here (- for stdout).",
        metavar="FILE",
    ),
)
MERGE_OPTIONS = (REPORT_OPTIONS[0], REPORT_OPTIONS[3])
DEMO_OPTIONS = (
    Option(
        "python",
        ("--python",),
        "value",
        "The Python to train with; it needs torch (default: the python3 first on PATH).",
        metavar="PYTHON",
    ),
    REPORT_OPTIONS[0],
    REPORT_OPTIONS[2],
    Option(
        "data",
        ("--data",),
        "value",
        "Where to write the demo's images (default: a new temporary folder).",
        metavar="DIR",
    ),
)
# `--json` for the commands whose whole output is for scripts (doctor, ps, dump): a switch, stdout.
JSON_FLAG = Option(
    "json_output", ("--json",), "flag", "Print JSON on stdout instead of text.", default=False
)
DOCTOR_OPTIONS = (
    Option(
        "python",
        ("--python",),
        "value",
        "The Python to check (default: the python3 first on PATH, which trainwatch run uses).",
        metavar="PYTHON",
    ),
    Option(
        "output_dir",
        ("--output-dir",),
        "value",
        "Where the run will write checkpoints and logs: its free space is checked (default: the "
        "current directory).",
        metavar="DIR",
    ),
    Option(
        "workers",
        ("--workers",),
        "integer",
        "DataLoader workers per process the run will use: /dev/shm is checked for them.",
        minimum=0,
        metavar="N",
    ),
    JSON_FLAG,
)


def spellings(options: tuple[Option, ...]) -> dict[str, tuple[Option, bool]]:
    """Every spelling -> (its option, whether it turns the option on)."""
    table: dict[str, tuple[Option, bool]] = {}
    for option in options:
        for flag in option.flags:
            table[flag] = (option, True)
        if option.off:
            table[option.off] = (option, False)
    return table


def value_flags(options: tuple[Option, ...]) -> frozenset[str]:
    """The spellings that take a value (the next word, or after `=`)."""
    return frozenset(f for o in options if o.takes_value for f in o.flags)


def parse_plain(
    args: list[str], options: tuple[Option, ...], words_anywhere: bool
) -> tuple[dict[str, Any], list[str]] | None:
    """A plain command line of `options`, parsed without typer (importing it and building the app
    costs ~60 ms): (every option's value by field, defaults filled in; the other words). The other
    words come after `--`, or, with `words_anywhere`, also between the options (`explain a.log -q
    b.log`; `-` alone is a word). None for anything unusual (help, an unknown option, a bad value,
    a flag given a value): typer then parses it again and says what is wrong, in its own words."""
    table = spellings(options)
    values: dict[str, Any] = {o.field: o.default for o in options}
    words: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            words.extend(args[i + 1 :])
            break
        if words_anywhere and (token == "-" or not token.startswith("-")):
            words.append(token)
            i += 1
            continue
        name, eq, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        known = table.get(name)
        if known is None:
            return None
        option, on = known
        if not option.takes_value:
            if eq:
                return None
            values[option.field] = on
            i += 1
            continue
        if eq:
            value, i = inline, i + 1
        elif i + 1 < len(args):
            value, i = args[i + 1], i + 2
        else:
            return None
        try:
            checked = check_value(option, value)
        except ValueError:
            return None
        if option.kind == "values":
            values[option.field] = tuple(values[option.field] or ()) + (checked,)
        else:
            values[option.field] = checked
    return values, words


def check_value(option: Option, text: str) -> Any:
    """A value as the option takes it; ValueError with a sentence when it does not fit."""
    if option.kind == "integer":
        whole = int(text)
        if option.minimum is not None and whole < option.minimum:
            raise ValueError(f"{option.flags[-1]} must be at least {option.minimum:g}, not {text}")
        return whole
    if option.kind == "number":
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(f"{option.flags[-1]} must be a finite number, not {text!r}")
        if option.minimum is not None and number < option.minimum:
            raise ValueError(f"{option.flags[-1]} must be at least {option.minimum:g}, not {text}")
        return number
    if option.kind == "choice" and text not in option.choices:
        raise ValueError(
            f"{option.flags[-1]} must be one of {', '.join(option.choices)}, not {text!r}"
        )
    return text


def typer_parameters(options: tuple[Option, ...]) -> list[inspect.Parameter]:
    """The options as keyword parameters annotated for typer (see `typer_command`)."""
    import inspect
    from typing import Annotated

    import typer

    params = []
    for option in options:
        python_type: Any
        extra: dict[str, Any] = {}
        if option.kind == "flag":
            python_type = bool
            flags = option.flags if option.off is None else (f"{option.flags[0]}/{option.off}",)
        else:
            flags = option.flags
            python_type = list[str] if option.kind == "values" else str
            if option.kind in ("number", "integer", "choice"):
                extra["callback"] = _validator(option)
        info = typer.Option(
            *flags,
            help=option.described() or None,
            metavar=option.metavar,
            show_default=False,
            hidden=option.hidden,
            **extra,
        )
        default = option.default if option.kind == "flag" else None
        hint = python_type if option.kind == "flag" else python_type | None
        annotation = Annotated[hint, info]
        params.append(
            inspect.Parameter(
                option.field, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
            )
        )
    return params


def typer_words(name: str, help: str, metavar: str) -> inspect.Parameter:
    """A command's positional words (`LOG...`, `REPORT...`) as a parameter for `typer_command`."""
    import inspect
    from typing import Annotated

    import typer

    argument = typer.Argument(help=help, metavar=metavar, show_default=False)
    return inspect.Parameter(
        name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[list[str], argument]
    )


def typer_command(
    body: Callable[..., Any],
    options: tuple[Option, ...],
    arguments: tuple[inspect.Parameter, ...] = (),
) -> Callable[..., Any]:
    """A function typer can register whose parameters are `arguments` and the options' table:
    `body(**values)` runs with numbers parsed and defaults filled in."""
    params = list(arguments) + typer_parameters(options)
    by_field = {o.field: o for o in options}

    def command(**values: Any) -> Any:
        for name, value in list(values.items()):
            option = by_field.get(name)
            if option is None:
                continue
            if value is None:
                values[name] = option.default
            elif option.kind == "number":
                values[name] = float(value)
            elif option.kind == "integer":
                values[name] = int(value)
            elif option.kind == "values":
                values[name] = tuple(value)
        return body(**values)

    import inspect

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = body.__doc__
    return command


def _validator(option: Option) -> Callable[[Any], Any]:
    import typer

    # typer evaluates this signature: `Any` is not in the module's names at run time
    def validate(value: object) -> object:
        if value is None:
            return value
        try:
            check_value(option, value)
        except ValueError as exc:
            kind = "a whole number" if option.kind == "integer" else "a number"
            message = (
                str(exc)
                if "must" in str(exc)
                else f"{option.flags[-1]} needs {kind}, not {value!r}"
            )
            raise typer.BadParameter(message) from None
        return value

    return validate


def markdown_table(options: tuple[Option, ...]) -> str:
    """The options as the Markdown table docs/index.md shows."""
    rows = ["| option | what it does |", "| --- | --- |"]
    for option in options:
        if option.hidden:
            continue
        spelled = ", ".join(f"`{f}`" for f in option.flags)
        if option.off:
            spelled += f" / `{option.off}`"
        if option.metavar:
            spelled += f" `{option.metavar}`"
        described = option.described().replace("|", "\\|")
        rows.append(f"| {spelled} | {described} |")
    return "\n".join(rows)


PS_OPTIONS = (JSON_FLAG,)
DUMP_OPTIONS = (
    Option(
        "timeout",
        ("--timeout",),
        "number",
        "Seconds the run's processes get to answer with their stacks.",
        default=2.0,
        minimum=0.1,
        metavar="SECONDS",
    ),
    JSON_FLAG,
)

DOC_TABLES = {
    "run": RUN_OPTIONS,
    "explain": EXPLAIN_OPTIONS,
    "report": REPORT_COMMAND_OPTIONS,
    "merge": MERGE_OPTIONS,
    "demo": DEMO_OPTIONS,
    "doctor": DOCTOR_OPTIONS,
    "ps": PS_OPTIONS,
    "dump": DUMP_OPTIONS,
}


def docs_block(command: str) -> str:
    """The generated block of docs/index.md for one command, markers included."""
    return (
        f"<!-- options: {command} "
        "(generated by python -m trainwatch.cli.options; do not edit) -->\n"
        + markdown_table(DOC_TABLES[command])
        + f"\n<!-- end options: {command} -->"
    )


if __name__ == "__main__":  # regenerate the option tables of docs/index.md
    import re
    import sys
    from pathlib import Path

    path = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/index.md")
    text = path.read_text(encoding="utf-8")
    for name in DOC_TABLES:
        pattern = re.compile(rf"<!-- options: {name} .*?-->.*?<!-- end options: {name} -->", re.S)
        text = pattern.sub(lambda _m, n=name: docs_block(n), text)
    path.write_text(text, encoding="utf-8")
