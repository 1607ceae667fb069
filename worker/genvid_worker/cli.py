"""The command line: validate the request, run the generation, report through the termination log.

Whatever happens (bad arguments, missing configuration, a provider failure, a bug, SIGTERM)
the process ends by writing exactly one result document and exiting with the code that
matches it, so the operator never has to guess from logs. The same document also goes to the
bucket beside the preview (`result_object`): a termination message is gone with its pod, and
a Job may be deleted before the operator has read it.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import FrameType
from typing import NoReturn

from pydantic import ValidationError

from genvid_contracts.worker import DEFAULT_MODEL, Reason, result_object
from genvid_worker import generation, log
from genvid_worker.config import Provider, Settings
from genvid_worker.request import GenerationRequest
from genvid_worker.result import (
    Failed,
    Result,
    WorkerError,
    encode,
    exit_code,
    permanent,
    to_document,
)
from genvid_worker.storage import open_store, storage_errors

DEFAULT_TERMINATION_LOG = Path("/dev/termination-log")
ASPECT_RATIOS = ("16:9", "9:16")
MAX_DURATION_SECONDS = 8
MAX_PROMPT_CHARS = 2000
MAX_SEED = 2**32 - 1
# Job ids become object-name segments: no slashes, no "..", nothing a URL would escape.
_JOB_ID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$")
# Model ids become a URL path segment of the Vertex AI request.
_MODEL = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")


class Interrupted(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so no library's `except Exception` swallows it."""


class UsageError(Exception):
    """The command line is wrong; argparse would print and exit 2, which the operator can't map."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m genvid_worker",
        description="Generate one preview video and its poster into the bucket.",
        allow_abbrev=False,
    )
    parser.add_argument("--job_id", required=True)
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--duration_seconds", type=int, default=4)
    parser.add_argument("--aspect_ratio", default="16:9")
    parser.add_argument("--negative_prompt", default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--provider", default=None, choices=[p.value for p in Provider])
    parser.add_argument("--price_usd_per_second", default=None)
    parser.add_argument("--termination_log", type=Path, default=DEFAULT_TERMINATION_LOG)
    return parser


def parse_request(argv: Sequence[str]) -> GenerationRequest:
    """The validated request, or `WorkerError(InvalidRequest)` saying what is wrong."""
    try:
        args = build_parser().parse_args(list(argv))
    except UsageError as exc:
        raise permanent(Reason.INVALID_REQUEST, f"invalid arguments: {exc}") from exc
    problems: list[str] = []
    if not _JOB_ID.match(args.job_id) or ".." in args.job_id:
        problems.append("--job_id must be 1-128 letters, digits, '.', '_' or '-'")
    prompt = args.prompt.strip()
    if not prompt:
        problems.append("--prompt must not be empty")
    elif len(prompt) > MAX_PROMPT_CHARS:
        problems.append(f"--prompt must be at most {MAX_PROMPT_CHARS} characters")
    if args.model is not None and not _MODEL.match(args.model):
        problems.append(f"--model must be a model id such as {DEFAULT_MODEL}")
    if not 1 <= args.duration_seconds <= MAX_DURATION_SECONDS:
        problems.append(f"--duration_seconds must be between 1 and {MAX_DURATION_SECONDS}")
    if args.aspect_ratio not in ASPECT_RATIOS:
        problems.append(f"--aspect_ratio must be one of {', '.join(ASPECT_RATIOS)}")
    negative = args.negative_prompt.strip() if args.negative_prompt else None
    if negative and len(negative) > MAX_PROMPT_CHARS:
        problems.append(f"--negative_prompt must be at most {MAX_PROMPT_CHARS} characters")
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        problems.append(f"--seed must be between 0 and {MAX_SEED}")
    price = _price(args.price_usd_per_second, problems)
    if problems:
        raise permanent(Reason.INVALID_REQUEST, "invalid arguments: " + "; ".join(problems))
    return GenerationRequest(
        job_id=args.job_id,
        prompt=prompt,
        model=args.model,
        duration_seconds=args.duration_seconds,
        aspect_ratio=args.aspect_ratio,
        negative_prompt=negative or None,
        seed=args.seed,
        provider=Provider(args.provider) if args.provider else None,
        price_usd_per_second=price,
    )


def _price(text: str | None, problems: list[str]) -> Decimal | None:
    if text is None:
        return None
    try:
        price = Decimal(text)
    except InvalidOperation:
        price = Decimal("NaN")
    if not price.is_finite() or price < 0:
        problems.append("--price_usd_per_second must be a non-negative decimal number")
        return None
    return price


def termination_log_path(argv: Sequence[str]) -> Path:
    """Found even when the rest of the command line is wrong, so the error reaches it too."""
    parser = _Parser(add_help=False, allow_abbrev=False)
    parser.add_argument("--termination_log", type=Path, default=DEFAULT_TERMINATION_LOG)
    try:
        known, _ = parser.parse_known_args(list(argv))
    except UsageError:
        return DEFAULT_TERMINATION_LOG
    path: Path = known.termination_log
    return path


def load_settings() -> Settings:
    try:
        return Settings()  # type: ignore[call-arg]  # the required fields come from the env
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise permanent(Reason.CONFIGURATION_ERROR, f"invalid configuration: {problems}") from exc


@contextmanager
def sigterm_is_retryable() -> Iterator[None]:
    """Kubernetes sends SIGTERM before killing a pod (eviction, deletion, deadline): say so."""

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def execute(argv: Sequence[str]) -> Result:
    """Run the generation; every outcome, a bug included, becomes a result (never an exception)."""
    try:
        with sigterm_is_retryable():
            request = parse_request(argv)
            log.bind_job(request.job_id)
            settings = load_settings()
            return generation.run(request, settings, now=datetime.now(UTC))
    except Interrupted:
        log.warning("generation.interrupted")
        return Failed(
            Reason.INTERRUPTED, "the worker was stopped (SIGTERM) before finishing", retryable=True
        )
    except WorkerError as exc:
        log.error(
            "generation.failed", reason=str(exc.reason), retryable=exc.retryable, error=exc.message
        )
        return exc.to_result()
    except Exception as exc:
        log.error("generation.crashed", exc_info=True)
        # Unknown trouble: let Kubernetes retry (within backoffLimit); Veo work is resumed.
        return Failed(Reason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}", retryable=True)


def write_termination_log(path: Path, result: Result) -> None:
    try:
        path.write_bytes(encode(result))
    except OSError as exc:
        log.error("termination_log.unwritable", path=str(path), error=str(exc))


def store_result(argv: Sequence[str], result: Result) -> None:
    """Best effort: the termination log stays the first report, this one outlives the pod."""
    try:
        job_id = parse_request(argv).job_id
        settings = load_settings()
    except WorkerError:
        return  # no valid job id or no bucket to name the object with: the log alone tells
    try:
        with storage_errors():
            open_store(settings).upload_bytes(
                result_object(job_id), encode(result), "application/json"
            )
    except WorkerError as exc:
        log.error("result.unstored", reason=str(exc.reason), error=exc.message)


def main(argv: Sequence[str] | None = None) -> int:
    log.configure()
    arguments = list(sys.argv[1:] if argv is None else argv)
    result = execute(arguments)
    write_termination_log(termination_log_path(arguments), result)
    store_result(arguments, result)
    code = exit_code(result)
    log.info("generation.finished", exit_code=code, result=to_document(result))
    return code
