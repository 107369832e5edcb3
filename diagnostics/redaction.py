"""Secret redaction: the one place that removes credentials from a Diagnosis before any report is
written.

The reports package (cli/reports) redacts a Diagnosis once with `redact_diagnosis()`, before any
format sees it; text read later for a report (the culprit's source lines) goes through
`redact_text()`. Redaction works on
shapes (known token formats, `key=value` pairs whose key names a secret, `--token VALUE` on a
command line, credentials in URLs, `Authorization:` headers) and on the values of the
environment's secret-named variables (`HF_TOKEN`, `WANDB_API_KEY`, `AWS_SECRET_ACCESS_KEY`, ...),
wherever they appear. Reports never list the environment itself.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

MASK = "[REDACTED]"

# Token formats recognisable on their own, anywhere in a line.
_TOKEN_SHAPES = [
    r"\bhf_[A-Za-z0-9]{20,}",  # Hugging Face user access tokens
    # OpenAI, Anthropic, Stripe style secret keys
    r"\bsk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_\-]{20,}",
    r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b",  # AWS access key ids
    r"\bgh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{22,}",
    r"\bglpat-[A-Za-z0-9_\-]{20,}",  # GitLab personal access tokens
    r"\bxox[abprs]-[A-Za-z0-9\-]{10,}",  # Slack tokens
    r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",  # JSON web tokens
]
_TOKENS = re.compile("|".join(_TOKEN_SHAPES))

# Names that say "this is a secret", as a key (`password=`, `"api_key": `) or an option
# (`--hf-token`). `token` must end the name: `max_tokens=512` and `pad_token_id=0` are not secrets.
_SECRET_NAME = (
    r"(?:password|passwd|passphrase|(?<![A-Za-z0-9])pwd?|secret|token|api[_\-]?key|apikey|"
    r"access[_\-]?key|secret[_\-]?key|private[_\-]?key|client[_\-]?secret|credentials?)"
)
# Names whose values are secrets only when they look like one (long enough, not a number):
# `eos_token: </s>`.
_WEAK_NAME = re.compile(r"(?i)(?:token|key)$")

# A Python string prefix before the quote (`f"Bearer {token}"`) belongs to the separator, not the
# value.
_STRING_PREFIX = r"(?:[rbfuRBFU]{1,2}(?=[\"']))?"
_KEY_VALUE = re.compile(
    r"(?i)(?<![A-Za-z0-9])(?P<key>[A-Za-z0-9_.\-]*" + _SECRET_NAME + r")(?![A-Za-z0-9])"
    r"(?P<sep>[\"']?\s*[=:]\s*" + _STRING_PREFIX + r"[\"']?)(?P<value>[^\s\"',;&)}\]]+)"
)
_OPTION_VALUE = re.compile(
    r"(?i)(?<!\S)(?P<key>--?[A-Za-z0-9_\-]*" + _SECRET_NAME + r")(?P<sep>\s+)"
    r"(?P<value>[^\s\-][^\s]*)"
)
_AUTH_HEADER = re.compile(
    r"(?i)\b(?P<key>(?:proxy-)?authorization)"
    r"(?P<sep>[\"']?\s*[:=]\s*" + _STRING_PREFIX + r"[\"']?"
    r"(?:(?:bearer|basic|token|digest)\s+)?)(?P<value>[^\s\"',;]+)"
)
_BEARER = re.compile(r"(?i)\b(?P<key>bearer)(?P<sep>\s+)(?P<value>[A-Za-z0-9._~+/\-]{8,}=*)")
_URL_CREDENTIALS = re.compile(
    r"(?i)\b(?P<key>[a-z][a-z0-9+.\-]*://[^/\s:@]+)(?P<sep>:)(?P<value>[^/\s@]+)(?=@)"
)
_ARG_NAME = re.compile(r"(?i)^--?[A-Za-z0-9_\-]*" + _SECRET_NAME + r"$")

# Environment variables whose values are secrets, by name; values shorter than this are left alone
# ("1", "true").
_SECRET_ENV_NAME = re.compile(
    r"(?i)(?:TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|"
    r"CREDENTIAL|AUTH(?![A-Z])|COOKIE|_PAT$|_KEY$)"
)
# ... except those that name a place, not a secret (SSH_AUTH_SOCK, GOOGLE_APPLICATION_CREDENTIALS is
# a file's path).
_PLACE_ENV_NAME = re.compile(r"(?i)(?:_SOCK|_FILE|_PATH|_DIR|_HOME)$")
_MIN_ENV_SECRET = 6

# Every pattern above needs one of these in the line (lower-cased): plain substring tests let the
# ~all lines without any pass untouched, so a run's 1 MiB output tail costs milliseconds (one regex
# alternation cost seconds).
_TRIGGERS = (
    "hf_",
    "sk-",
    "akia",
    "asia",
    "agpa",
    "aida",
    "aroa",
    "anpa",
    "anva",
    "aipa",
    "gh",
    "glpat",
    "xox",
    "eyj",
    "pass",
    "pw",
    "secret",
    "token",
    "key",
    "credential",
    "auth",
    "bearer",
    "://",
)


def secret_env_values(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The values of the environment's secret-named variables, longest first (so no value hides a
    longer one).
    """
    env = os.environ if env is None else env
    values = {
        v
        for k, v in env.items()
        if v
        and len(v) >= _MIN_ENV_SECRET
        and _SECRET_ENV_NAME.search(k)
        and not _PLACE_ENV_NAME.search(k)
        and not v.startswith(("/", "~"))
    }
    return tuple(sorted(values, key=len, reverse=True))


class Redactor:
    """Redacts strings, argument vectors and whole reports; built once per report from the
    environment.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        values = secret_env_values(env)
        self._literal = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def text(self, text: str) -> str:
        """A string with every secret-looking value replaced by MASK."""
        if not text:
            return text
        if self._literal is not None:
            text = self._literal.sub(MASK, text)
        low = text.lower()
        if not any(word in low for word in _TRIGGERS):
            return text
        text = _TOKENS.sub(MASK, text)
        for pattern in (_AUTH_HEADER, _BEARER, _URL_CREDENTIALS, _OPTION_VALUE, _KEY_VALUE):
            text = pattern.sub(_mask_value, text)
        return text

    def argv(self, argv: Sequence[str]) -> tuple[str, ...]:
        """A command line with the value after `--token`, `--password`, ... masked, and each word
        redacted.
        """
        out: list[str] = []
        mask_next = False
        for word in argv:
            if mask_next and not word.startswith("-"):
                out.append(MASK)
                mask_next = False
                continue
            mask_next = bool(_ARG_NAME.match(word))
            out.append(self.text(word))
        return tuple(out)

    def value(self, value: Any) -> Any:
        """Any report value: strings, containers and frozen dataclasses, rebuilt only where
        something changed.
        """
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, tuple):
            if value and all(isinstance(v, str) for v in value):
                new = self.argv(value)
            else:
                new = tuple(self.value(v) for v in value)
            return value if all(a is b for a, b in zip(new, value, strict=False)) else new
        if isinstance(value, list):
            if value and all(isinstance(v, str) for v in value):
                return list(self.argv(value))
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes = {}
            for f in dataclasses.fields(value):
                if not f.init:
                    continue
                old = getattr(value, f.name)
                new = self.value(old)
                if new is not old:
                    changes[f.name] = new
            return dataclasses.replace(value, **changes) if changes else value
        return value


_PLACEHOLDERS = ("{", "$", "<", "%(", "os.environ", "getenv", "args.", "self.", "config.", "cfg.")


def _mask_value(match: re.Match) -> str:
    key, value = match.group("key"), match.group("value")
    if value.startswith(MASK[:-1]):  # already masked by an earlier pattern (`token=[REDACTED]`)
        return match.group(0)
    # `Bearer {token}`, `password=$DB_PASS` in source lines: no secret there
    if value.startswith(_PLACEHOLDERS):
        return match.group(0)
    if _WEAK_NAME.search(key) and not _looks_generated(value):
        # `eos_token=</s>`, `pad_token: 0`: vocabulary; `pad_token = tokenizer.eos_token`: code;
        # `no pad token: Decoder-only tokenizers`: words (a message, or trainwatch's own advice)
        return match.group(0)
    return key + match.group("sep") + MASK


# a dotted name (`tokenizer.eos_token`, `cfg.model.key`): an expression in code, not a credential
_DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
# a class's name made of words (`DataCollatorForLanguageModeling`): code, where a generated key's
# letters fall in no such pattern
_CLASS_NAME = re.compile(r"(?:[A-Z][a-z]{2,}){3,}")
GENERATED_MIN = 20  # a credential without a figure in it is at least this long


def _looks_generated(value: str) -> bool:
    """Could this value after a name ending in `token` or `key` be a credential? Keys and tokens
    are generated: long, and with figures among their letters (a word or two of prose is not one,
    nor a number alone, nor a dotted name)."""
    value = value.strip("`")  # Markdown's code marks around an expression
    if len(value) < 8 or value.replace(".", "").isdigit() or _DOTTED_NAME.fullmatch(value):
        return False
    if _CLASS_NAME.fullmatch(value):
        return False
    return any(c.isdigit() for c in value) or len(value) >= GENERATED_MIN


def redact_text(text: str, env: Mapping[str, str] | None = None) -> str:
    """One string, redacted (source lines, output excerpts)."""
    return Redactor(env).text(text)


def redact_diagnosis(diagnosis, env: Mapping[str, str] | None = None):
    """A copy of a Diagnosis with every string in it (verdict, evidence, command, output tail,
    sections) redacted. Called once per report, before any writer sees the diagnosis."""
    return Redactor(env).value(diagnosis)
