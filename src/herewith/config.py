"""Configuration: one :class:`Settings` object read from ``HEREWITH_*`` environment variables.

Usage::

    settings = Settings()                       # from the environment
    settings = Settings(data_dir=tmp_path)      # explicit, in tests
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting of a Herewith process (prefix ``HEREWITH_``; see README "Configuration")."""

    model_config = SettingsConfigDict(env_prefix="HEREWITH_", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="SQLite file, secret key, uploaded files.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL, e.g. postgresql+asyncpg://user@host/db. Default: SQLite in data_dir.",
    )
    public_url: str = Field(
        default="", description="Base of roomUrl, no trailing slash. Default: http://<host>:<port>."
    )
    secret_key: str | None = Field(
        default=None, description="Signs roomKeys. Default: generated once into data_dir/secret_key."
    )
    redis_url: str | None = Field(default=None, description="Redis for rate limits and cross-process signaling.")
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = Field(default=5 * 1024 * 1024, description="Largest request body accepted (413 above).")
    log_level: str = "info"
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="Log lines as key=value text (default) or one JSON object a line (json: structlog's and "
                    "uvicorn's, each with the request_id of the request it belongs to; herewith.kit.logs).",
    )
    # Prometheus metrics at /metrics (herewith.kit.metrics, herewith.web.metrics)
    metrics_enabled: bool = Field(default=False, description="Serve /metrics (Prometheus text format). Off: 404.")
    metrics_token: str | None = Field(
        default=None,
        description="When set, /metrics asks for Authorization: Bearer <this token> (401 without it).",
    )
    # Security headers of the HTML pages (herewith.kit.security_headers)
    frame_ancestors: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"],
        description="Who may embed the room page in a frame: CSP frame-ancestors sources, comma-separated "
                    "(https://app.example.com, https://*.example.com, 'self', 'none'). Default * (any site): "
                    "embedding a room in the customer's own page is the main way rooms are used, and who "
                    "may enter a room is decided by its URL and roomKey, not by the embedding page. The same "
                    "sources (and this server's own origin) decide which sites' pages may open the signaling "
                    "WebSocket (its Origin header; herewith.signaling.endpoint.origin_allowed).",
    )

    @field_validator("frame_ancestors", mode="before")
    @classmethod
    def _split_frame_ancestors(cls, value: object) -> object:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        from herewith.kit.security_headers import check_sources

        return check_sources(value) if isinstance(value, list) else value

    background_tasks: bool = Field(default=True, description="Run sweepers and delivery workers in this process.")
    # Rooms and signaling (issue 3; herewith.signaling, herewith.rooms.service)
    stun_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="STUN URLs handed to browsers, comma-separated (stun:host:3478). None by default."
    )
    turn_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="TURN URLs, comma-separated (turn:host:3478?transport=udp). None by default."
    )
    turn_secret: str | None = Field(
        default=None, description="coturn static-auth-secret: TURN credentials are derived from it (REST-API scheme)."
    )
    turn_ttl_seconds: int = Field(default=86400, description="Lifetime of derived TURN credentials.")
    room_max_senders_normal: int = Field(default=4, description="roomMode normal: people who send media (mesh).")
    room_max_viewers_normal: int = Field(default=12, description="roomMode normal: receive-only viewers.")
    room_max_participants_group: int = Field(default=200, description="roomMode group: everyone in the room.")
    room_empty_grace_seconds: float = Field(default=30.0, description="Keep an empty room's lock state this long.")
    signaling_ping_interval_seconds: float = Field(
        default=20.0, description="Server keepalive ping; a silent socket is closed after 2.5 intervals."
    )
    signaling_max_message_bytes: int = Field(default=32 * 1024, description="Largest signaling frame accepted.")
    signaling_max_answer_bytes: int = Field(
        default=600 * 1024, ge=32 * 1024,
        description="Largest sfu_answer frame accepted (a group room subscriber's SDP answer: a browser's grows ~2 KB "
                    "per publisher it receives, ~100 KB for 50, ~400 KB for 200). The HTTP server's WebSocket frame "
                    "cap follows it.",
    )
    signaling_rate_per_second: float = Field(default=50.0, description="Sustained frames per second per connection.")
    signaling_rate_burst: int = Field(default=200, description="Burst of frames per connection above the rate.")
    signaling_max_strikes: int = Field(default=20, description="Bad frames before the socket is closed (1008).")

    @field_validator("stun_urls", "turn_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [u.strip() for u in value.split(",") if u.strip()]
        return value

    # Group rooms on the Janus SFU (issue 7; herewith.media, docs/janus-notes.md)
    janus: str = Field(
        default="auto",
        description="auto (a local Janus when the janus binary exists and no janus_url is set) | local | external | off.",
    )
    janus_url: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="External Janus API roots, comma-separated; rooms are placed by load. ws://10.0.0.5:8188 (WebSocket "
                    "transport: one connection per instance for every session) or http://10.0.0.5:8088/janus (HTTP "
                    "transport: one long poll per participant).",
    )
    janus_admin_url: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Admin API roots of the external instances, same order as janus_url (optional)."
    )
    janus_api_secret: str | None = Field(default=None, description="api_secret of the external Janus instances.")
    janus_admin_secret: str | None = Field(default=None, description="admin_secret of the external Janus instances.")
    janus_admin_key: str | None = Field(default=None, description="VideoRoom admin_key of the external instances.")
    janus_binary: str = Field(default="janus", description="The local Janus executable.")
    janus_transport: Literal["websocket", "http"] = Field(
        default="websocket",
        description="Local Janus: the API transport Herewith talks to it over: websocket (one connection carries every "
                    "participant's session) | http (one long poll per participant; what external instances with only "
                    "HTTP use).",
    )
    janus_ice_enforce_list: str | None = Field(
        default=None, description="Local Janus: interfaces ICE may use (the test namespace needs v0)."
    )
    janus_nat_1_1_mapping: str | None = Field(default=None, description="Local Janus: public IP to advertise (NAT 1:1).")
    janus_rtp_ports: str = Field(default="20000-40000", description="Local Janus: UDP port range for media.")
    janus_room_bitrate: int = Field(default=1_000_000, description="Cap on each publisher's video (all simulcast layers), bits per second (REMB).")
    group_audio_streams: int = Field(
        default=3, ge=1, le=50,
        description="Group rooms: a page that reports its grid receives the audio of this many loudest speakers.",
    )
    janus_room_idle_seconds: float = Field(default=60.0, description="Destroy a group room's Janus room after it stays empty this long.")

    @field_validator("janus_url", "janus_admin_url", mode="before")
    @classmethod
    def _split_janus_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [u.strip() for u in value.split(",") if u.strip()]
        return value

    @field_validator("janus_url")
    @classmethod
    def _janus_url_schemes(cls, value: list[str]) -> list[str]:
        """The scheme picks the transport (herewith.media.janus.JanusClient): ws(s):// or http(s):// only."""
        for url in value:
            if url.split("://", 1)[0].lower() not in ("ws", "wss", "http", "https"):
                raise ValueError(f"a Janus URL starts with ws://, wss://, http:// or https://: {url!r}")
        return value

    @property
    def janus_mode(self) -> str:
        """``local``, ``external`` or ``off`` after resolving ``auto`` (local when the binary is on the PATH)."""
        import shutil

        if self.janus == "auto":
            if self.janus_url:
                return "external"
            return "local" if shutil.which(self.janus_binary) else "off"
        return self.janus

    @property
    def janus_workdir(self) -> Path:
        """Where the local Janus's generated configuration and log live: ``data_dir/janus``."""
        return self.data_dir / "janus"

    # The recorder pool (herewith.media.recorder): headless Chromium processes rendering recordings
    recorders_per_node: int = Field(
        default=2, ge=0,
        description="Recordings this process records at once (one headless Chromium each, about 1 CPU core "
                    "for a 1280x720 composite); a start beyond is answered 'unavailable'. 0: no cloud recording here.",
    )
    chromium_path: str = Field(default="/usr/bin/chromium", description="The Chromium executable recorders run.")
    # Rate limiting (CONTRACT.md "Rate limiting"; herewith.ratelimit)
    ratelimit_enabled: bool = Field(default=True, description="Charge /v1 requests to the organization's budget.")
    ratelimit_backend: str = Field(default="auto", description="auto (Redis when redis_url is set) | memory | redis.")
    ratelimit_fail_open: bool = Field(
        default=True, description="Redis unreachable: admit and log (True) or answer 503 (False)."
    )
    ratelimit_window_seconds: float = Field(default=60.0, description="Length of the sliding window (contract: 60).")
    ratelimit_prefix: str = Field(default="herewith:rl:", description="Namespace of the limiter's Redis keys.")
    room_lookup_rate_per_minute: int = Field(
        default=60, ge=0,
        description="Room page requests (GET /{roomName}) one client address may make per minute, found or not "
                    "(429 beyond); bounds guessing short room names. 0: no limit. Raise it when many people "
                    "join through one address (a company NAT). Shared through Redis like the API's budget.",
    )
    # Room lifecycle, sessions, webhooks (CONTRACT.md "Meetings" lifecycle, "Insights", "Webhooks")
    session_grace_seconds: float = Field(default=60.0, description="A room session ends after fewer than two remain this long.")
    sweeper_interval_seconds: float = Field(default=5.0, description="How often the lifecycle/session sweeper runs.")
    node_heartbeat_seconds: float = Field(
        default=5.0, description="How often this process renews its row in the nodes table (its proof of life).")
    node_dead_after_seconds: float = Field(
        default=20.0,
        description="A process whose heartbeat is older than this died: its participants are closed at its last "
                    "heartbeat (room.client.left, then room.session.ended after the grace period).")
    room_deactivate_after_seconds: float = Field(default=3600.0, description="Deactivate a room this long after endDate.")
    room_delete_after_seconds: float = Field(
        default=23 * 3600.0, description="Delete a room this long after endDate (contract: within 24 h)."
    )
    webhook_timeout_seconds: float = Field(default=5.0, description="Per-attempt timeout of a webhook delivery.")
    webhook_retry_base_seconds: float = Field(default=5.0, description="First retry delay; doubles per attempt.")
    webhook_retry_max_interval_seconds: float = Field(default=3600.0, description="Longest delay between retries.")
    webhook_retry_window_seconds: float = Field(default=24 * 3600.0, description="Give up this long after the event.")
    webhook_poll_seconds: float = Field(default=1.0, description="How often the delivery worker looks for due events.")
    webhook_batch_size: int = Field(default=20, description="Events a delivery worker claims at once.")
    webhook_lease_slack_seconds: float = Field(
        default=30.0, description="A claimed event is retried this long after the timeout if its worker died mid-send."
    )
    webhook_log_retention_days: float = Field(
        default=30.0, description="Delivered or failed events and their delivery log are removed after this many days."
    )
    # Webhook delivery: isolation between endpoints and where deliveries may go (herewith.webhooks.delivery,
    # herewith.webhooks.targets)
    webhook_max_concurrent_deliveries: int = Field(
        default=16, ge=1,
        description="Deliveries in flight at once in one process, across all endpoints (the worker pool's size).",
    )
    webhook_max_in_flight_per_endpoint: int = Field(
        default=1, ge=1,
        description="Deliveries in flight at once to one endpoint, across processes; 1 keeps each endpoint's "
                    "first attempts in event order.",
    )
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="Allow webhook URLs on loopback (127.0.0.0/8, ::1) and private networks (10/8, 172.16/12, "
                    "192.168/16, 100.64/10, fc00::/7). Off: only public addresses. Link-local, cloud metadata, "
                    "multicast, reserved addresses and this server's own URL are refused either way.",
    )

    # Cloud recording (CONTRACT.md "Recordings"; herewith.recordings, herewith.jobs.recordings)
    recorder_launcher: str = Field(
        default="chromium",
        description="What starts a recorder for a recording: chromium (the supervised headless Chromium pool, "
                    "herewith.media.recorder) or module:callable, called with the Settings, returning an object "
                    "with async start(recording_id, page_url) -> bool, stop(recording_id) and close().",
    )
    recording_default_file_format: str = Field(
        default="mp4", pattern="^(mp4|mkv)$",
        description="fileFormat of recordings whose meeting names none: mp4 (H.264/AAC) or mkv (the recorder's VP8/Opus).",
    )
    recording_start_timeout_seconds: float = Field(
        default=30.0, description="A recording whose recorder sent no media this long after the start fails.")
    recording_stop_grace_seconds: float = Field(
        default=10.0, description="Stop a recording once no one but recorders has been in its room this long.")
    recording_recorder_lost_seconds: float = Field(
        default=15.0,
        description="A recording whose composite stream closed without a stop waits this long for the recorder to "
                    "come back, then stops with what it has.")
    recording_max_duration_seconds: float = Field(default=6 * 3600.0, description="Longest recording; stopped after.")
    recording_max_stream_bytes: int = Field(
        default=8 * 1024**3, description="Largest ingested stream (bytes); the ingest socket is closed beyond.")
    recording_poll_seconds: float = Field(
        default=2.0, description="How often the recording job looks for recordings to finalize or purge.")
    recording_finalize_attempts: int = Field(default=3, ge=1, description="Finalization runs before a recording fails.")
    recording_ffmpeg: str = Field(default="ffmpeg", description="The ffmpeg executable that finalizes recordings.")
    recording_ffprobe: str = Field(default="ffprobe", description="The ffprobe executable that measures them.")
    recording_s3_part_bytes: int = Field(
        default=8 * 1024 * 1024, ge=5 * 1024 * 1024, description="Part size of multipart uploads to S3 (>= 5 MiB).")

    # Speech-to-text, transcriptions and summaries (CONTRACT.md "Recordings, transcriptions, summaries";
    # herewith.speech, herewith.transcriptions, herewith.summaries). Needs the speech extra (README, "Speech").
    stt_model: str = Field(
        default="base",
        description="Whisper model of stored transcripts: base (multilingual) or tiny.en (English, faster), "
                    "both shipped in registry wheels, or the path of a directory holding a CTranslate2 Whisper "
                    "model (an operator's larger model). Nothing is downloaded.",
    )
    stt_workers: int = Field(
        default=1, ge=1, description="Speech worker processes (each holds the model: 150-350 MB; one decode at a time).")
    stt_cpu_threads: int = Field(
        default=0, ge=0, description="CPU threads per speech worker; 0: the cores divided among the workers.")
    transcription_poll_seconds: float = Field(
        default=2.0, description="How often the transcription and summary jobs look for queued work.")
    transcription_attempts: int = Field(
        default=3, ge=1, description="Runs of a transcription (or summary) before it fails.")
    summary_backend: str = Field(
        default="extractive", pattern="^(extractive|openai)$",
        description="extractive (built in: sentences picked from the transcript, offline) or openai (an "
                    "OpenAI-compatible chat-completions endpoint at summary_openai_url, e.g. a local model server).",
    )
    summary_openai_url: str | None = Field(
        default=None, description="Base URL of the chat-completions API (http://127.0.0.1:8000/v1); "
                                  "POST {url}/chat/completions.")
    summary_openai_model: str = Field(default="default", description="The model name sent to that endpoint.")
    summary_openai_api_key: str | None = Field(default=None, description="Bearer key of that endpoint, if it needs one.")
    summary_openai_timeout_seconds: float = Field(default=300.0, description="Timeout of one chat-completions call.")

    # Live transcription and captions (meetings' liveTranscription; herewith.captions)
    live_caption_model: str = Field(
        default="tiny.en",
        description="Whisper model of live captions: a known name (tiny.en, base) or a directory holding a "
                    "CTranslate2 Whisper model.")
    live_caption_workers: int = Field(
        default=2, ge=1, le=16,
        description="Decoder processes per captioned room (each about 300 MB). On 2 cores, 2 keep two speakers "
                    "at a one-second cadence with tiny.en; more speakers than that get captions less often.")
    live_captions_per_node: int = Field(
        default=2, ge=0, description="Rooms captioned at once by this node (a captioner process each); 0: none.")
    live_caption_start_timeout_seconds: float = Field(
        default=90.0, description="A captioner that has not joined its room this long after the start is stopped.")
    live_caption_ice_addresses: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses the captioner gathers ICE host candidates on, comma-separated. Default: every "
                    "address of the host but loopback (aioice's choice).")

    @field_validator("live_caption_ice_addresses", mode="before")
    @classmethod
    def _split_ice_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @model_validator(mode="after")
    def _defaults(self) -> "Settings":
        self.public_url = (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
        return self

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL in use: ``database_url`` or ``sqlite+aiosqlite:///<data_dir>/herewith.db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'herewith.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @cached_property
    def signing_key(self) -> str:
        """The roomKey signing secret: ``secret_key`` or the one generated into ``data_dir/secret_key``."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # Written once with owner-only permissions; concurrent first starts race benignly:
        # O_EXCL makes the first writer win and the others read its key.
        import os

        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key
