"""Secrets planted in the command line, the environment and the output never reach any report."""

from __future__ import annotations

import json

from trainwatch.diagnostics.evidence import Evidence, ExitStatus
from trainwatch.diagnostics.redaction import (
    MASK,
    Redactor,
    redact_diagnosis,
    secret_env_values,
)
from trainwatch.diagnostics.verdict import Cited, Culprit, Diagnosis, Verdict

HF = "hf_PLANTEDabcdefghijklmnopqrstuv"
ENV_SECRET = "wandbsecret0123456789"
SECRETS = (HF, ENV_SECRET, "hunter2hunter2", "AKIAABCDEFGHIJKLMNOP")


def test_shapes_are_masked_and_ordinary_text_is_not():
    r = Redactor({})
    cases = {
        "python train.py --token abc123xyz --epochs 3": "python train.py --token [REDACTED] "
        "--epochs 3",
        "password=hunter2 user=bob": "password=[REDACTED] user=bob",
        "Authorization: Bearer abcdefgh12345": "Authorization: Bearer [REDACTED]",
        "key AKIAIOSFODNN7EXAMPLE here": "key [REDACTED] here",
        "client sk-proj-ABCDEFGHIJKLMNOPQRSTUV ok": "client [REDACTED] ok",
        f"login {HF}": "login [REDACTED]",
        "https://user:pa55word@example.com/x": "https://user:[REDACTED]@example.com/x",
        "Namespace(api_key='0123456789abcdef', lr=0.1)": "Namespace(api_key='[REDACTED]', lr=0.1)",
        '{"password": "s3cr3t!"}': '{"password": "[REDACTED]"}',
        f"token={HF}": "token=[REDACTED]",
        "api_key=QwErTyUiOpAsDfGhJkLzXcVbNm": "api_key=[REDACTED]",  # letters only, no words
        "db pw=hunter2 user=bob": "db pw=[REDACTED] user=bob",
        "--db_pwd s3cretvalue": "--db_pwd [REDACTED]",
    }
    for text, expected in cases.items():
        assert r.text(text) == expected, text
    for harmless in (
        "max_tokens=512 eos_token=</s> pad_token_id=0",
        "disk-space task-manager",
        "epoch 3/10 step 7/100 loss=0.2531",
        "RuntimeError: CUDA out of memory. Tried to allocate 2 GiB",
        'headers = {"Authorization": f"Bearer {token}"}',
        "login(token=os.environ['HF_TOKEN'])",
        # a message's words, and trainwatch's own advice, about tokenizers
        "the tokenizer has no pad token: Decoder-only tokenizers",
        "Set one before tokenising: `tokenizer.pad_token = tokenizer.eos_token`",
        "has no mask token: `DataCollatorForLanguageModeling` masks tokens by default",
    ):
        assert r.text(harmless) == harmless


def test_argv_masks_the_value_after_a_secret_option():
    argv = Redactor({}).argv(
        ["python", "train.py", "--hf-token", "abcdef", "--password", "x", "--max-tokens", "5"]
    )
    assert argv == (
        "python",
        "train.py",
        "--hf-token",
        MASK,
        "--password",
        MASK,
        "--max-tokens",
        "5",
    )


def test_environment_values_of_secret_named_variables_are_masked_wherever_they_appear():
    env = {
        "WANDB_API_KEY": ENV_SECRET,
        "GIT_AUTHOR_NAME": "Ada Lovelace",
        "SSH_AUTH_SOCK": "/tmp/ssh-x/agent",
        "HOME": "/root",
        "DEBUG_TOKEN": "1",
    }
    assert secret_env_values(env) == (ENV_SECRET,)
    assert Redactor(env).text(f"logged in as {ENV_SECRET}!") == f"logged in as {MASK}!"


def _diagnosis() -> Diagnosis:
    verdict = Verdict(
        category="code",
        subtype=None,
        confidence=0.8,
        summary=f"failed with key {HF}",
        evidence=(Cited("exception", "RuntimeError: password=hunter2hunter2", "probe pid 1"),),
        culprit=Culprit("train.py", 3, "main", f"login('{ENV_SECRET}')"),
        advice=("rotate",),
    )
    return Diagnosis(
        trainwatch_version="0",
        command=("python3", "train.py", "--token", "plain-token-value"),
        started_at=None,
        duration_s=1.0,
        exit=ExitStatus(1, None, 1),
        verdict=verdict,
        evidence=Evidence(source="run", notes=(f"seen {ENV_SECRET}",)),
        sections={"extra": {"argv": ["--api-key", "zzzzzzzzzz"]}},
    )


def test_redacted_diagnosis_holds_no_secret_anywhere_and_the_original_is_untouched():
    original = _diagnosis()
    redacted = redact_diagnosis(original, env={"MY_SECRET": ENV_SECRET})
    text = json.dumps(redacted.to_dict())
    for secret in (HF, ENV_SECRET, "hunter2hunter2", "plain-token-value", "zzzzzzzzzz"):
        assert secret not in text, secret
    assert redacted.verdict.category == "code" and redacted.verdict.culprit.line == 3
    assert HF in original.verdict.summary  # a copy: the caller's object is not changed
    # No hidden cache: the same object redacted again with another environment is redacted for it
    # (a cache once returned the copy made without the secret-bearing environment).
    plain = redact_diagnosis(original, env={})
    assert ENV_SECRET in json.dumps(plain.to_dict())
    again = redact_diagnosis(original, env={"MY_SECRET": ENV_SECRET})
    assert ENV_SECRET not in json.dumps(again.to_dict())


def test_trainwatch_s_own_words_are_never_masked():
    # the knowledge base's titles, explanations and advice go into every report, redacted with it
    from trainwatch.diagnostics.knowledge import load_knowledge

    r = Redactor({})
    own = [
        text
        for s in load_knowledge(include_user=False).signatures
        for text in (s.title, s.explanation, *s.advice)
    ]
    assert len(own) > 1000
    assert [text for text in own if r.text(text) != text] == []
