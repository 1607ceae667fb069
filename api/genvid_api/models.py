"""Tables (SQLModel) and the request/response models of the HTTP API.

The tables mirror the Alembic migrations in api/migrations/; `video_generation_jobs` is shared
with the operator (it writes status, output and cost; the api inserts rows and sets
`resource_created`, `cancel_requested` and `cancel_delivered_at`). The social tables (`videos`,
`follows`, `likes`, `comments`) are the api's alone; `videos.like_count` and
`videos.comment_count` are kept by statement-level triggers on `likes` and `comments`
(migration 0002_social), not by this code. `webhook_endpoints` and `webhook_deliveries` (the
webhooks' outbox, migration 0006_webhooks) are the api's too.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, Self, TypeVar

import pydantic
import sqlalchemy as sa
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from sqlmodel import Field, SQLModel

from genvid_contracts.pricing import usd_text
from genvid_contracts.status import GenerationStatus

T = TypeVar("T")


def _timestamp(*, nullable: bool = False, server_default: bool = True) -> Any:
    return Field(
        default=None,
        sa_type=sa.DateTime(timezone=True),
        nullable=nullable,
        sa_column_kwargs={"server_default": sa.func.now()} if server_default else {},
    )


# ---------------------------------------------------------------------------------------------
# Tables


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        sa.Index("uq_users_email_lower", sa.text("lower(email)"), unique=True),
        sa.Index("uq_users_username_lower", sa.text("lower(username)"), unique=True),
        # Deactivated users, for the feeds' "author is active" anti-join (0002_social).
        sa.Index("ix_users_inactive", "id", postgresql_where=sa.text("is_active IS false")),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(sa_type=sa.Text)
    username: str = Field(sa_type=sa.Text)
    hashed_password: str = Field(sa_type=sa.Text)
    is_active: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})
    # In every token (`sv`): incremented to end every session of the user at once (0005).
    session_version: int = Field(default=0, sa_column_kwargs={"server_default": sa.text("0")})
    created_at: datetime = _timestamp()


class RefreshToken(SQLModel, table=True):
    """One row per issued refresh token (its JWT `jti`): rotation and revocation."""

    __tablename__ = "refresh_tokens"

    jti: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True))
    revoked_at: datetime | None = _timestamp(nullable=True, server_default=False)
    replaced_by: uuid.UUID | None = Field(default=None)
    created_at: datetime = _timestamp()


# Rows whose cancel the outbox still has to deliver (the partial index's predicate, and the
# outbox query's condition, written alike so the planner can use the index).
PENDING_CANCEL = (
    "cancel_requested AND cancel_delivered_at IS NULL AND status IN ('QUEUED', 'RUNNING')"
)


WAITING = "status = 'QUEUED' AND admitted_at IS NULL AND settled_at IS NULL"
ACTIVE = "admitted_at IS NOT NULL AND settled_at IS NULL"
UNSETTLED_FINISHED = (
    "settled_at IS NULL AND status IN ('SUCCEEDED', 'FAILED', 'CANCELED', 'REJECTED')"
)


class Generation(SQLModel, table=True):
    """One request to generate a video (the table keeps its first name)."""

    __tablename__ = "video_generation_jobs"
    __table_args__ = (
        sa.UniqueConstraint(
            "user_id", "idempotency_key", name="uq_video_generation_jobs_user_idempotency_key"
        ),
        sa.CheckConstraint(
            "status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELED', 'REJECTED')",
            name="ck_video_generation_jobs_status",
        ),
        sa.Index(
            "ix_video_generation_jobs_user_created",
            "user_id",
            sa.text("created_at DESC"),
        ),
        sa.Index(
            "ix_video_generation_jobs_pending_resource",
            "created_at",
            postgresql_where=sa.text("resource_created = false"),
        ),
        # The outbox's scan for cancels not yet on their resource (0003_pending_cancel).
        sa.Index(
            "ix_video_generation_jobs_pending_cancel",
            "updated_at",
            postgresql_where=sa.text(PENDING_CANCEL),
        ),
        # The operator's admission and the settlement reaper (0004_budgets).
        sa.Index(
            "ix_video_generation_jobs_waiting", "created_at", postgresql_where=sa.text(WAITING)
        ),
        sa.Index("ix_video_generation_jobs_active", "user_id", postgresql_where=sa.text(ACTIVE)),
        sa.Index(
            "ix_video_generation_jobs_unsettled_finished",
            "updated_at",
            postgresql_where=sa.text(UNSETTLED_FINISHED),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    prompt: str = Field(sa_type=sa.Text)
    model: str = Field(sa_type=sa.Text)
    duration_seconds: int
    aspect_ratio: str = Field(sa_type=sa.Text)
    negative_prompt: str | None = Field(default=None, sa_type=sa.Text)
    seed: int | None = Field(default=None, sa_type=sa.BigInteger)
    idempotency_key: str | None = Field(default=None, sa_type=sa.Text)
    status: str = Field(
        default=GenerationStatus.QUEUED,
        sa_type=sa.Text,
        sa_column_kwargs={"server_default": "QUEUED"},
    )
    reason: str | None = Field(default=None, sa_type=sa.Text)
    message: str | None = Field(default=None, sa_type=sa.Text)
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    bucket: str | None = Field(default=None, sa_type=sa.Text)
    object_name: str | None = Field(default=None, sa_type=sa.Text)
    poster_object: str | None = Field(default=None, sa_type=sa.Text)
    size_bytes: int | None = Field(default=None, sa_type=sa.BigInteger)
    video_duration_seconds: float | None = Field(default=None, sa_type=sa.Double)
    cost_usd: Decimal | None = Field(default=None, sa_type=sa.Numeric(12, 6))
    resource_created: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    cancel_requested: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    # When spec.cancel=true was known to be on the resource (set by a patch, or the resource
    # created canceled), or the resource was found gone: the outbox stops re-sending then.
    cancel_delivered_at: datetime | None = _timestamp(nullable=True, server_default=False)
    event_seq: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()
    started_at: datetime | None = _timestamp(nullable=True, server_default=False)
    finished_at: datetime | None = _timestamp(nullable=True, server_default=False)
    # Budgets (genvid_api.budgets): the estimate reserved at insertion in the period's
    # counters, and what was charged when it finished (settled_at, once).
    reserved_micros: int = Field(
        default=0, sa_type=sa.BigInteger, sa_column_kwargs={"server_default": "0"}
    )
    charged_micros: int | None = Field(default=None, sa_type=sa.BigInteger)
    budget_period_start: date | None = Field(default=None, sa_type=sa.Date)
    settled_at: datetime | None = _timestamp(nullable=True, server_default=False)
    # Admission (the operator's): counts against the caps from admitted_at to settled_at.
    admitted_at: datetime | None = _timestamp(nullable=True, server_default=False)
    queue_position: int | None = Field(default=None)
    # Finished by then or CANCELED (DeadlineExceeded, by the operator); None: no deadline.
    deadline_at: datetime | None = _timestamp(nullable=True, server_default=False)


class BudgetUsage(SQLModel, table=True):
    """Reserved and spent micro-USD of one scope (a user id, or 'global') in one period."""

    __tablename__ = "budget_usage"
    __table_args__ = (
        sa.CheckConstraint(
            "reserved_micros >= 0 AND spent_micros >= 0", name="ck_budget_usage_amounts"
        ),
    )

    scope: str = Field(sa_type=sa.Text, primary_key=True)
    period_start: date = Field(sa_type=sa.Date, primary_key=True)
    reserved_micros: int = Field(
        default=0, sa_type=sa.BigInteger, sa_column_kwargs={"server_default": "0"}
    )
    spent_micros: int = Field(
        default=0, sa_type=sa.BigInteger, sa_column_kwargs={"server_default": "0"}
    )
    updated_at: datetime = _timestamp()


class UserBudgetOverride(SQLModel, table=True):
    """A user's own budget per period, instead of GENVID_USER_DAILY_BUDGET_USD."""

    __tablename__ = "user_budget_overrides"
    __table_args__ = (
        sa.CheckConstraint("limit_micros >= 0", name="ck_user_budget_overrides_limit"),
    )

    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    limit_micros: int = Field(sa_type=sa.BigInteger)
    updated_at: datetime = _timestamp()


class RateLimitWindow(SQLModel, table=True):
    """Requests counted per key and fixed window (genvid_api.ratelimit)."""

    __tablename__ = "rate_limit_windows"

    key: str = Field(sa_type=sa.Text, primary_key=True)
    window_start: datetime = Field(sa_type=sa.DateTime(timezone=True), primary_key=True)
    count: int


class SseStream(SQLModel, table=True):
    """An open server-sent event stream, on any process: the per-user cap counts these
    (routes/events.py); a row left by a dead process stops counting once it expires."""

    __tablename__ = "sse_streams"
    __table_args__ = (sa.Index("ix_sse_streams_user_expires", "user_id", "expires_at"),)

    id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


class Video(SQLModel, table=True):
    """A SUCCEEDED generation its owner published. Unpublishing deletes the row (the generation
    stays, private); likes and comments go with it (ON DELETE CASCADE)."""

    __tablename__ = "videos"
    __table_args__ = (
        sa.UniqueConstraint("generation_id", name="uq_videos_generation_id"),
        sa.CheckConstraint(
            "char_length(title) BETWEEN 1 AND 120 AND btrim(title) <> ''", name="ck_videos_title"
        ),
        sa.CheckConstraint("char_length(description) <= 2000", name="ck_videos_description"),
        sa.CheckConstraint("like_count >= 0 AND comment_count >= 0", name="ck_videos_counts"),
        # The public feed: keyset on (published_at DESC, id DESC); user_id included so the
        # following feed's walk over the newest videos is index-only.
        sa.Index(
            "ix_videos_published",
            sa.text("published_at DESC"),
            sa.text("id DESC"),
            postgresql_include=["user_id"],
        ),
        # Profiles, and the following feed (index-only per followee).
        sa.Index(
            "ix_videos_user_published",
            "user_id",
            sa.text("published_at DESC"),
            sa.text("id DESC"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    generation_id: uuid.UUID = Field(foreign_key="video_generation_jobs.id", ondelete="CASCADE")
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    title: str = Field(sa_type=sa.Text)
    description: str = Field(default="", sa_type=sa.Text, sa_column_kwargs={"server_default": ""})
    published_at: datetime = _timestamp()
    like_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    comment_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Follow(SQLModel, table=True):
    __tablename__ = "follows"
    __table_args__ = (
        sa.CheckConstraint("follower_id <> followee_id", name="ck_follows_not_self"),
        # Followers of a user, newest first (and the FK's cascade from users).
        sa.Index(
            "ix_follows_followee",
            "followee_id",
            sa.text("created_at DESC"),
            sa.text("follower_id DESC"),
        ),
        # Whom a user follows, newest first (the primary key serves the following feed).
        sa.Index(
            "ix_follows_follower_created",
            "follower_id",
            sa.text("created_at DESC"),
            sa.text("followee_id DESC"),
        ),
    )

    follower_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    followee_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    created_at: datetime = _timestamp()


class Like(SQLModel, table=True):
    """One per user and video (the primary key); `videos.like_count` counts them."""

    __tablename__ = "likes"
    __table_args__ = (sa.Index("ix_likes_video_id", "video_id"),)

    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    video_id: uuid.UUID = Field(foreign_key="videos.id", ondelete="CASCADE", primary_key=True)
    created_at: datetime = _timestamp()


class Comment(SQLModel, table=True):
    __tablename__ = "comments"
    __table_args__ = (
        sa.CheckConstraint("char_length(body) BETWEEN 1 AND 2000", name="ck_comments_body"),
        # A video's comments in order (keyset on (created_at, id)).
        sa.Index("ix_comments_video_created", "video_id", "created_at", "id"),
        sa.Index("ix_comments_author_id", "author_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    video_id: uuid.UUID = Field(foreign_key="videos.id", ondelete="CASCADE")
    author_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    body: str = Field(sa_type=sa.Text)
    created_at: datetime = _timestamp()
    edited_at: datetime | None = _timestamp(nullable=True, server_default=False)


# Deliveries the delivery loop still has to make (the partial indexes' predicate, and the
# loop's condition, written alike so the planner can use them).
PENDING_DELIVERY = "status = 'pending'"


class WebhookEndpoint(SQLModel, table=True):
    """A user's HTTPS endpoint told of their generations' transitions (genvid_api.webhooks).
    The secret signs every delivery; it is shown once, when the endpoint is created or its
    secret rotated. After a rotation the previous secret signs too until
    `previous_secret_expires_at` (migration 0008_webhook_secret_rotation), so a receiver has
    time to take the new one. A 410 Gone answer disables the endpoint (`disabled_at`);
    deleting it deletes its deliveries."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (sa.Index("ix_webhook_endpoints_user_created", "user_id", "created_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    url: str = Field(sa_type=sa.Text)
    description: str = Field(default="", sa_type=sa.Text, sa_column_kwargs={"server_default": ""})
    secret: str = Field(sa_type=sa.Text)
    previous_secret: str | None = Field(default=None, sa_type=sa.Text)
    previous_secret_expires_at: datetime | None = _timestamp(nullable=True, server_default=False)
    secret_rotated_at: datetime | None = _timestamp(nullable=True, server_default=False)
    created_at: datetime = _timestamp()
    disabled_at: datetime | None = _timestamp(nullable=True, server_default=False)


class WebhookDelivery(SQLModel, table=True):
    """One message for one endpoint (the outbox of genvid_api.webhook_delivery): written once
    per (endpoint, message id) however often the transition is read from the stream, then
    attempted until delivered or failed."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint(
            "endpoint_id", "message_id", name="uq_webhook_deliveries_endpoint_message"
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name="ck_webhook_deliveries_status"
        ),
        # The delivery loop's scan for due messages.
        sa.Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=sa.text(PENDING_DELIVERY),
        ),
        # A generation's earlier messages still pending for the endpoint (delivery in order).
        sa.Index(
            "ix_webhook_deliveries_pending_order",
            "endpoint_id",
            "generation_id",
            "event_seq",
            postgresql_where=sa.text(PENDING_DELIVERY),
        ),
        # GET /webhooks/{id}/deliveries: newest first.
        sa.Index(
            "ix_webhook_deliveries_endpoint_created",
            "endpoint_id",
            sa.text("created_at DESC"),
            sa.text("id DESC"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    endpoint_id: uuid.UUID = Field(foreign_key="webhook_endpoints.id", ondelete="CASCADE")
    message_id: str = Field(sa_type=sa.Text)
    event_type: str = Field(sa_type=sa.Text)
    generation_id: uuid.UUID
    event_seq: int
    # The signed body, exactly as every attempt sends it.
    payload: str = Field(sa_type=sa.Text)
    status: str = Field(
        default="pending", sa_type=sa.Text, sa_column_kwargs={"server_default": "pending"}
    )
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    next_attempt_at: datetime = _timestamp()
    last_attempt_at: datetime | None = _timestamp(nullable=True, server_default=False)
    last_status_code: int | None = Field(default=None)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = _timestamp()
    finished_at: datetime | None = _timestamp(nullable=True, server_default=False)


# ---------------------------------------------------------------------------------------------
# Validation shared by request models


def _no_control_characters(value: str) -> str:
    """Reject C0/C1 control characters (tab, newline and carriage return are text)."""
    for char in value:
        if char not in "\t\n\r" and unicodedata.category(char) == "Cc":
            raise ValueError(f"must not contain control characters (found U+{ord(char):04X})")
    return value


def _text(value: str) -> str:
    """Text a person reads: not blank, and no control characters but tab, CR and LF."""
    if not value.strip():
        raise ValueError("must not be blank")
    return _no_control_characters(value)


USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$"
_USERNAME = re.compile(USERNAME_PATTERN)
# Pragmatic address check: one @, no spaces, a dot in the domain. Delivery proves the rest.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
_COMMON_PASSWORDS = frozenset(
    {"password", "password1", "12345678", "123456789", "1234567890", "qwertyuiop", "iloveyou",
     "sunshine", "princess", "football", "baseball", "welcome1", "passw0rd", "abcdefgh",
     "11111111", "00000000", "letmein1", "trustno1", "superman", "starwars"}
)  # fmt: skip


# The username or the email's local part, when at least this long, must not be in the password.
_MIN_PERSONAL_PART = 4


def _repeats(value: str) -> bool:
    """'abcabcabc', 'passwordpassword': one short unit, repeated."""
    size = len(value)
    return any(size % n == 0 and value == value[:n] * (size // n) for n in range(1, size // 2 + 1))


def _email(value: str) -> str:
    value = value.strip()
    if len(value) > 254 or not _EMAIL.fullmatch(value) or not value.isprintable():
        raise ValueError("is not a valid email address")
    return value.lower()


def _username(value: str) -> str:
    if not _USERNAME.fullmatch(value):
        raise ValueError(
            "must be 3-32 characters: letters, digits, '_', '.' or '-', starting with a "
            "letter or digit"
        )
    return value


Email = Annotated[str, AfterValidator(_email)]
Username = Annotated[str, AfterValidator(_username)]
Password = Annotated[str, StringConstraints(min_length=10, max_length=256)]
Prompt = Annotated[str, StringConstraints(min_length=1, max_length=2000), AfterValidator(_text)]
NegativePrompt = Annotated[
    str, StringConstraints(min_length=1, max_length=1000), AfterValidator(_text)
]
AspectRatio = Literal["16:9", "9:16"]


class Page(BaseModel, Generic[T]):
    """One page of a listing (see pagination.py); `next_cursor` is None on the last one."""

    items: list[T]
    next_cursor: str | None = None

    @classmethod
    def of(cls, found: tuple[list[T], str | None]) -> Self:
        """A listing query's answer, (rows, next cursor), as a page."""
        items, next_cursor = found
        return cls(items=items, next_cursor=next_cursor)

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        """`VideoPage` for `Page[VideoPublic]`: the OpenAPI schema's name."""
        return f"{params[0].__name__.removesuffix('Public')}Page"


# ---------------------------------------------------------------------------------------------
# Users and tokens


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    username: Username
    password: Password

    def weak_password_reason(self) -> str | None:
        """Why the password is too easy to guess, or None."""
        password = self.password.lower()
        core = password.strip("0123456789!@#$%^&*()-_=+.?")
        if password in _COMMON_PASSWORDS or core in _COMMON_PASSWORDS:
            return "password is too common"
        if len(set(password)) < 5 or _repeats(password):
            return "password is too simple"
        # Parts shorter than _MIN_PERSONAL_PART would forbid most passwords ("a@x.io": every
        # password with an "a") while protecting nothing.
        personal = (self.username.lower(), self.email.split("@")[0])
        if any(len(part) >= _MIN_PERSONAL_PART and part in password for part in personal):
            return "password must not contain the username or email"
        return None


class PasswordChange(BaseModel):
    """Body of POST /auth/password: the current password proves it is the owner, not a stolen
    access token, that changes it."""

    model_config = ConfigDict(extra="forbid")

    current_password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    new_password: Password


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    username: str
    created_at: datetime


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int  # seconds until the access token expires


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


# ---------------------------------------------------------------------------------------------
# Generations


class GenerationCreate(BaseModel):
    """Body of POST /generate; `model` defaults to the configured default model."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    prompt: Prompt
    duration_seconds: Annotated[int, pydantic.Field(strict=True, ge=1, le=8)] = 4
    aspect_ratio: AspectRatio = "16:9"
    model: str | None = None
    negative_prompt: NegativePrompt | None = None
    seed: Annotated[int, pydantic.Field(strict=True, ge=0, le=4294967295)] | None = None
    deadline_seconds: Annotated[int, pydantic.Field(strict=True, ge=1)] | None = pydantic.Field(
        default=None,
        description="Finished within this many seconds of acceptance, or CANCELED with reason "
        "DeadlineExceeded (bounds: GENVID_MIN_DEADLINE_SECONDS, GENVID_MAX_DEADLINE_SECONDS).",
    )

    def columns(self) -> dict[str, Any]:
        """The request's values that are columns of its row as they are (the deadline is
        stored as `deadline_at`, a time)."""
        return self.model_dump(exclude={"deadline_seconds"})


def public_cost(generation: Generation) -> str | None:
    """What the owner is charged: the settled amount, else the provider's figure, else the
    amount reserved while it is unfinished."""
    if generation.charged_micros is not None:
        return usd_text(generation.charged_micros)
    if generation.cost_usd is not None:
        return str(generation.cost_usd)
    return usd_text(generation.reserved_micros) if generation.reserved_micros else None


class GenerationPublic(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    id: uuid.UUID
    status: GenerationStatus
    prompt: str
    model: str
    duration_seconds: int
    aspect_ratio: str
    negative_prompt: str | None
    seed: int | None
    reason: str | None
    message: str | None
    attempts: int
    cancel_requested: bool
    # A decimal string, never a float: what was charged once finished, else the estimate.
    cost_usd: str | None = None
    queue_position: int | None = pydantic.Field(
        default=None, description="While waiting for capacity: 1 is admitted next."
    )
    size_bytes: int | None
    video_duration_seconds: float | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    deadline_at: datetime | None = pydantic.Field(
        default=None, description="Finished by then, or CANCELED with reason DeadlineExceeded."
    )
    video_url: str | None = None
    poster_url: str | None = None
    urls_expire_at: datetime | None = None

    @classmethod
    def from_row(
        cls,
        generation: Generation,
        *,
        video_url: str | None = None,
        poster_url: str | None = None,
        urls_expire_at: datetime | None = None,
    ) -> GenerationPublic:
        """The row's fields as they are, but the cost (a decimal string, never a float: what was
        charged once settled, else the reservation) and the queue position (only while QUEUED);
        the URLs are signed by the caller."""
        urls = {"video_url": video_url, "poster_url": poster_url, "urls_expire_at": urls_expire_at}
        row = {name: getattr(generation, name) for name in cls.model_fields.keys() - urls.keys()}
        waiting = generation.status == GenerationStatus.QUEUED
        return cls(
            **{
                **row,
                **urls,
                "cost_usd": public_cost(generation),
                "queue_position": generation.queue_position if waiting else None,
            }
        )


# ---------------------------------------------------------------------------------------------
# Social: videos, feeds, likes, comments, follows, profiles

Title = Annotated[str, StringConstraints(min_length=1, max_length=120), AfterValidator(_text)]
Description = Annotated[
    str, StringConstraints(max_length=2000), AfterValidator(_no_control_characters)
]
CommentBody = Annotated[
    str, StringConstraints(min_length=1, max_length=2000), AfterValidator(_text)
]


class VideoCreate(BaseModel):
    """Body of POST /videos: publish one of my SUCCEEDED generations."""

    model_config = ConfigDict(extra="forbid")

    generation_id: uuid.UUID
    title: Title
    description: Description = ""


class Author(BaseModel):
    """What anyone may see of a user next to their content (never the email)."""

    id: uuid.UUID
    username: str


class VideoBase(BaseModel):
    """A published video as anyone signed in sees it: one field list for the answer
    (`VideoPublic`) and for the listing query's row it is made from."""

    id: uuid.UUID
    author: Author
    title: str
    description: str
    published_at: datetime
    like_count: int
    comment_count: int
    liked_by_me: bool
    aspect_ratio: str
    duration_seconds: int


class VideoPublic(VideoBase):
    generation_id: uuid.UUID | None = pydantic.Field(
        default=None, description="The published generation; only its owner sees it."
    )
    video_url: str | None = None
    poster_url: str | None = None
    urls_expire_at: datetime | None = None


class LikeState(BaseModel):
    video_id: uuid.UUID
    liked: bool
    like_count: int


class CommentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: CommentBody


class CommentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: CommentBody


class CommentPublic(BaseModel):
    id: uuid.UUID
    video_id: uuid.UUID
    author: Author
    body: str
    created_at: datetime
    edited_at: datetime | None


class FollowState(BaseModel):
    username: str
    following: bool
    follower_count: int


class FollowUser(BaseModel):
    id: uuid.UUID
    username: str
    followed_at: datetime


class ProfileCounts(BaseModel):
    follower_count: int
    following_count: int
    video_count: int


class Profile(ProfileCounts):
    """GET /users/{username}: the user, counts, and the first page of their videos."""

    id: uuid.UUID
    username: str
    created_at: datetime
    followed_by_me: bool
    videos: Page[VideoPublic]


class Me(UserPublic, ProfileCounts):
    """GET /me: the signed-in user (with the email, theirs to see) and their counts."""


# ---------------------------------------------------------------------------------------------
# Webhooks

WebhookDescription = Annotated[
    str, StringConstraints(max_length=500), AfterValidator(_no_control_characters)
]


class WebhookCreate(BaseModel):
    """Body of POST /webhooks; the URL's rules (scheme, host, network) are the settings'
    (genvid_api.webhooks.check_url)."""

    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    description: WebhookDescription = ""


class WebhookPublic(BaseModel):
    """An endpoint as its owner sees it: never the secret."""

    id: uuid.UUID
    url: str
    description: str
    created_at: datetime
    disabled_at: datetime | None = pydantic.Field(
        default=None, description="Set when a delivery was answered 410 Gone: nothing is sent."
    )
    secret_rotated_at: datetime | None = pydantic.Field(
        default=None, description="When the secret was last rotated (never: null)."
    )
    previous_secret_expires_at: datetime | None = pydantic.Field(
        default=None,
        description="Until then the secret before the last rotation signs deliveries too.",
    )


class WebhookCreated(WebhookPublic):
    """The answer of POST /webhooks and of a rotation: the one time the signing secret is
    shown."""

    secret: str = pydantic.Field(
        description="`whsec_` and the base64 key of the signatures (Standard Webhooks)."
    )


class WebhookDeliveryPublic(BaseModel):
    """One message to an endpoint and its latest attempt."""

    message_id: str = pydantic.Field(description="The `webhook-id` header: the same on retries.")
    event_type: str
    generation_id: uuid.UUID
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = pydantic.Field(
        description="When it is tried next (None once delivered or failed)."
    )
    created_at: datetime
