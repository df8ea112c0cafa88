"""Every setting of waqr, in one place: environment variable, default, meaning, validation.

Values come from the environment and from a ``.env`` file in the working directory.
Names kept from the original deployment keep their names (``WA_QR_BRIDGE_TOKEN``,
``STREAMLIT_ORIGIN``, ``REDIS_URL``); new ones carry a ``WA_``/``WAQR_`` prefix.
README's configuration table mirrors this class.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from waqr.bridge.clientaddr import ProxyList
from waqr.errors import ConfigError
from waqr.token_strength import weakness

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
MIN_TOKEN_LENGTH = 32
WEBHOOK_EVENTS = frozenset({"message", "receipt", "state", "qr"})
PLACEHOLDER_TOKENS = frozenset({"changeme" * 4, "x" * 32, "your-token-here"})


def _env(name: str) -> AliasChoices:
    # Settings are addressed by their environment variable name only, so that an error
    # message names exactly what the operator has to fix.
    return AliasChoices(name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=False
    )

    # --- the bot service (internal) -------------------------------------------------------
    bot_host: str = Field("127.0.0.1", validation_alias=_env("WAQR_BOT_HOST"))
    bot_port: int = Field(3100, ge=1, le=65535, validation_alias=_env("WAQR_BOT_PORT"))
    data_dir: Path = Field(Path("./data"), validation_alias=_env("WAQR_DATA_DIR"))
    wa_proxy: str | None = Field(None, validation_alias=_env("WA_PROXY"))
    # Required on every bot route but /health when set; the bridge sends it. Required to listen
    # on anything but loopback. `waqr up` generates one for its own bot and bridge.
    bot_token: str | None = Field(None, validation_alias=_env("WAQR_BOT_TOKEN"))
    # Names this bot process in its /health answer, so that `waqr up` knows the bot that
    # answers is the one it started (not an older one still holding the port). Random if unset.
    instance_id: str = Field(
        default_factory=lambda: secrets.token_hex(8),
        max_length=64,
        validation_alias=_env("WAQR_INSTANCE_ID"),
    )
    # PEM certificate (chain) and private key: with both set the bot speaks HTTPS only.
    bot_tls_cert: Path | None = Field(None, validation_alias=_env("WAQR_BOT_TLS_CERT"))
    bot_tls_key: Path | None = Field(None, validation_alias=_env("WAQR_BOT_TLS_KEY"))

    # --- engine supervision -----------------------------------------------------------------
    # No QR, connection or error within this many seconds of starting a child -> SIGKILL.
    # whatsmeow waits up to 20 s for the Noise ServerHello, so less than that would kill
    # healthy-but-slow handshakes.
    engine_start_timeout: float = Field(
        30.0, gt=0, le=600, validation_alias=_env("WAQR_ENGINE_START_TIMEOUT")
    )
    # neonize's stop() can block on a lock held by a hung connect; after this, SIGKILL.
    engine_stop_timeout: float = Field(
        5.0, gt=0, le=120, validation_alias=_env("WAQR_ENGINE_STOP_TIMEOUT")
    )
    # An engine call (pairing code, logout) not answered within this is a hung engine: it is
    # killed and replaced. whatsmeow's own iq timeout is 75 s, but WhatsApp answers these in
    # about a second.
    engine_command_timeout: float = Field(
        30.0, gt=0, le=300, validation_alias=_env("WAQR_ENGINE_COMMAND_TIMEOUT")
    )
    # Sends the bot accepts per session in any 60 s (POST /messages answers 429 past it).
    # Conservative: bursts of messages are what gets WhatsApp accounts banned.
    send_rate_limit: int = Field(20, ge=1, le=10000, validation_alias=_env("WAQR_SEND_RATE_LIMIT"))
    # Webhooks (the bot delivers them; README "Webhooks"): comma-separated http(s) URLs.
    webhook_urls: str = Field("", validation_alias=_env("WAQR_WEBHOOK_URLS"))
    # The HMAC-SHA256 key every delivery is signed with; required with WAQR_WEBHOOK_URLS.
    webhook_secret: str | None = Field(None, validation_alias=_env("WAQR_WEBHOOK_SECRET"))
    # Which events go out by webhook: message, receipt, state, qr.
    webhook_events: str = Field("message,receipt", validation_alias=_env("WAQR_WEBHOOK_EVENTS"))
    # How long a failed delivery is retried (from the event) before it is listed as failed.
    webhook_retry_period: float = Field(
        86400.0, gt=0, validation_alias=_env("WAQR_WEBHOOK_RETRY_PERIOD")
    )
    # The longest wait between two retries of a delivery (they start at 1 s and double).
    webhook_backoff_max: float = Field(
        300.0, gt=0, le=86400, validation_alias=_env("WAQR_WEBHOOK_BACKOFF_MAX")
    )
    # Every this many seconds the bot checks that its engine still answers (a ping to the
    # engine process, not to WhatsApp).
    engine_ping_interval: float = Field(
        30.0, gt=0, le=3600, validation_alias=_env("WAQR_ENGINE_PING_INTERVAL")
    )
    # A connected link whose keepalive pings to WhatsApp have failed for this many seconds
    # (from the first miss) is replaced: 45 s lets one missed ping pass and not two.
    keepalive_fail_timeout: float = Field(
        45.0, gt=0, le=3600, validation_alias=_env("WAQR_KEEPALIVE_FAIL_TIMEOUT")
    )
    # WhatsApp sends 440 <conflict type="replaced"/> when another client logs in with the same
    # credentials. One is a restart overlap and is reconnected; this many within
    # replaced_window seconds is two clients fighting over one device: the session stops.
    replaced_limit: int = Field(3, ge=1, le=100, validation_alias=_env("WAQR_REPLACED_LIMIT"))
    replaced_window: float = Field(
        600.0, gt=0, le=86400, validation_alias=_env("WAQR_REPLACED_WINDOW")
    )
    # After the phone accepted the link, the engine must log in within this many seconds;
    # else it is replaced with the same (new) credentials. whatsmeow can stay silent forever
    # when WhatsApp closes the socket right after its 515 restart request.
    login_timeout: float = Field(30.0, gt=0, le=600, validation_alias=_env("WAQR_LOGIN_TIMEOUT"))
    engine_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "WARNING", validation_alias=_env("WAQR_ENGINE_LOG_LEVEL")
    )
    reconnect_backoff_min: float = Field(
        1.0, gt=0, le=3600, validation_alias=_env("WAQR_RECONNECT_BACKOFF_MIN")
    )
    reconnect_backoff_max: float = Field(
        60.0, gt=0, le=3600, validation_alias=_env("WAQR_RECONNECT_BACKOFF_MAX")
    )
    # A QR asked for within this many seconds means a person is waiting to scan: when the
    # engine's batch of QR refs runs out, start a fresh batch by itself.
    qr_demand_window: float = Field(
        180.0, ge=0, le=86400, validation_alias=_env("WAQR_QR_DEMAND_WINDOW")
    )
    # ...but at most this many fresh batches in a row (endless unscanned QR loops look like
    # abuse to WhatsApp); then rest in qr_timeout until someone asks again.
    qr_max_cycles: int = Field(3, ge=1, le=20, validation_alias=_env("WAQR_QR_MAX_CYCLES"))

    # --- the connection doctor (`waqr doctor`, GET /diagnose) --------------------------------
    # What it probes: WhatsApp by default; tests aim it at the simulator or a local fault server.
    doctor_host: str = Field("web.whatsapp.com", validation_alias=_env("WAQR_DOCTOR_HOST"))
    doctor_port: int = Field(443, ge=1, le=65535, validation_alias=_env("WAQR_DOCTOR_PORT"))
    # The Noise root key (64 hex characters) the server's certificate chain must lead to;
    # unset: WhatsApp's own, the one the engine trusts.
    doctor_root_key: str | None = Field(None, validation_alias=_env("WAQR_DOCTOR_ROOT_KEY"))
    # PEM file of the CAs trusted for the TLS step; unset: the system store (or SSL_CERT_FILE),
    # as the engine does.
    doctor_ca_bundle: Path | None = Field(None, validation_alias=_env("WAQR_DOCTOR_CA_BUNDLE"))
    # Bound on each network step (DNS, TCP, proxy, TLS, WebSocket).
    doctor_timeout: float = Field(10.0, gt=0, le=120, validation_alias=_env("WAQR_DOCTOR_TIMEOUT"))
    # How long to wait for ServerHello after ClientHello; whatsmeow itself waits 20 s.
    doctor_noise_timeout: float = Field(
        20.0, gt=0, le=120, validation_alias=_env("WAQR_DOCTOR_NOISE_TIMEOUT")
    )

    # When the engine fails to connect, run the doctor (each step bounded to 2 s) and put its
    # verdict into lastDisconnectReason.diagnosis.
    doctor_on_failure: bool = Field(True, validation_alias=_env("WAQR_DOCTOR_ON_FAILURE"))

    # --- the API bridge (public) -----------------------------------------------------------
    api_host: str = Field("0.0.0.0", validation_alias=_env("WAQR_API_HOST"))
    api_port: int = Field(8000, ge=1, le=65535, validation_alias=_env("WAQR_API_PORT"))
    # Bridge worker processes; each follows the bot's event stream and answers from it.
    api_workers: int = Field(1, ge=1, le=64, validation_alias=_env("WAQR_API_WORKERS"))
    bot_url: str = Field("http://127.0.0.1:3100", validation_alias=_env("BOT_URL"))
    # PEM CA bundle the bridge checks an https BOT_URL's certificate against (a private CA);
    # unset: the system's trusted CAs.
    bot_ca_file: Path | None = Field(None, validation_alias=_env("WAQR_BOT_CA_FILE"))
    # PEM certificate (chain) and private key: with both set the bridge speaks HTTPS only.
    api_tls_cert: Path | None = Field(None, validation_alias=_env("WAQR_API_TLS_CERT"))
    api_tls_key: Path | None = Field(None, validation_alias=_env("WAQR_API_TLS_KEY"))
    # Comma-separated: several tokens may be valid at once, so one can be rotated without
    # downtime. Required by `waqr api` (>= 32 characters each); `waqr up` generates one.
    bridge_tokens: str | None = Field(None, validation_alias=_env("WA_QR_BRIDGE_TOKEN"))
    # X-API-Key for the /wa/* aliases; unset means the bridge tokens are accepted there too.
    api_keys: str | None = Field(None, validation_alias=_env("WA_QR_API_KEY"))
    redis_url: str | None = Field(None, validation_alias=_env("REDIS_URL"))
    keepalive_interval: float = Field(
        25.0, gt=0, le=3600, validation_alias=_env("KEEPALIVE_INTERVAL")
    )
    cors_origins: str = Field("", validation_alias=_env("STREAMLIT_ORIGIN"))
    # Beyond this the bridge answers 504 bot_timeout.
    bot_timeout: float = Field(10.0, gt=0, le=300, validation_alias=_env("WAQR_BOT_TIMEOUT"))
    # POST /pair-code only: longer than the bot's own bound (up to 45 s waiting for the engine
    # to be ready, then up to 30 s for the engine's command), so the bridge never answers
    # 504 while the bot is still working on a code.
    bot_pair_timeout: float = Field(
        90.0, gt=0, le=600, validation_alias=_env("WAQR_BOT_PAIR_TIMEOUT")
    )
    # POST /logout only: longer than the bot's own bound (about 40 s to unlink at WhatsApp
    # and stop the engine).
    bot_logout_timeout: float = Field(
        60.0, gt=0, le=600, validation_alias=_env("WAQR_BOT_LOGOUT_TIMEOUT")
    )
    # Failed authentications from one client within a minute before it gets 429.
    auth_max_failures: int = Field(
        10, ge=1, le=10000, validation_alias=_env("WAQR_AUTH_MAX_FAILURES")
    )
    # Comma-separated IPs/CIDRs of the reverse proxies in front of the bridge. A request from
    # one of them is attributed to the right-most X-Forwarded-For entry that is not a proxy;
    # from anyone else the header is ignored (it could be made up). Empty: the peer address.
    trusted_proxies: ProxyList = Field("", validation_alias=_env("WAQR_TRUSTED_PROXIES"))
    # Request bodies beyond this are refused with 413 (the largest legitimate one, a pair-code
    # request, is under 100 bytes).
    max_body_bytes: int = Field(
        16384, ge=1024, le=10_485_760, validation_alias=_env("WAQR_MAX_BODY_BYTES")
    )

    # --- the UI -------------------------------------------------------------------------------
    ui_host: str = Field("127.0.0.1", validation_alias=_env("WAQR_UI_HOST"))
    ui_port: int = Field(8501, ge=1, le=65535, validation_alias=_env("WAQR_UI_PORT"))
    # The bridge the UI talks to (on Streamlit Community Cloud: st.secrets["WA_QR_API_URL"]).
    ui_api_url: str = Field("http://127.0.0.1:8000", validation_alias=_env("WA_QR_API_URL"))
    # Who may use the UI: none (loopback only; the page says it is open), password, oidc.
    ui_auth: Literal["none", "password", "oidc"] = Field(
        "none", validation_alias=_env("WAQR_UI_AUTH")
    )
    # An argon2 hash (python -c 'from argon2 import PasswordHasher; print(PasswordHasher()
    # .hash("..."))'), never the password itself.
    ui_password_hash: str | None = Field(None, validation_alias=_env("WAQR_UI_PASSWORD_HASH"))
    # Seconds a password sign-in lasts.
    ui_session_ttl: int = Field(
        28800, ge=60, le=30 * 86400, validation_alias=_env("WAQR_UI_SESSION_TTL")
    )
    # OIDC (Streamlit's st.login): the client registered at the identity provider, the
    # provider's discovery document, and this UI's callback (https://ui.example/oauth2callback).
    ui_oidc_client_id: str | None = Field(None, validation_alias=_env("WAQR_UI_OIDC_CLIENT_ID"))
    ui_oidc_client_secret: str | None = Field(
        None, validation_alias=_env("WAQR_UI_OIDC_CLIENT_SECRET")
    )
    ui_oidc_metadata_url: str | None = Field(
        None, validation_alias=_env("WAQR_UI_OIDC_METADATA_URL")
    )
    ui_oidc_redirect_uri: str | None = Field(
        None, validation_alias=_env("WAQR_UI_OIDC_REDIRECT_URI")
    )
    # Comma-separated emails or @domains that may sign in with OIDC (empty: nobody).
    ui_allowed_emails: str = Field("", validation_alias=_env("WAQR_UI_ALLOWED_EMAILS"))

    # --- logging ------------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=_env("WAQR_LOG_LEVEL")
    )
    log_format: Literal["json", "text"] = Field("json", validation_alias=_env("WAQR_LOG_FORMAT"))

    @field_validator("wa_proxy")
    @classmethod
    def _proxy_is_a_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in PROXY_SCHEMES:
            raise ValueError(
                f"scheme must be one of {', '.join(PROXY_SCHEMES)} "
                "(e.g. http://user:pass@host:3128 or socks5://host:1080)"
            )
        if not parts.hostname:
            raise ValueError("a host is required (e.g. http://proxy.example:3128)")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError("the port must be a number from 1 to 65535") from exc
        if port is None:
            raise ValueError("a port is required (e.g. http://proxy.example:3128)")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("only scheme://[user:pass@]host:port is allowed")
        return value

    @field_validator("doctor_root_key")
    @classmethod
    def _root_key_is_hex(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            key = bytes.fromhex(value.strip())
        except ValueError as exc:
            raise ValueError("must be 64 hexadecimal characters (a 32-byte key)") from exc
        if len(key) != 32:
            raise ValueError("must be 64 hexadecimal characters (a 32-byte key)")
        return value.strip()

    @field_validator("bridge_tokens", "api_keys", "bot_token")
    @classmethod
    def _tokens_are_long(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        tokens = [t.strip() for t in value.split(",") if t.strip()]
        short = [n for n, t in enumerate(tokens, 1) if len(t) < MIN_TOKEN_LENGTH]
        if short:
            which = ", ".join(str(n) for n in short)
            raise ValueError(
                f"every token must have at least {MIN_TOKEN_LENGTH} characters (token {which} "
                "is shorter); generate one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'"
            )
        if any(t.lower() in PLACEHOLDER_TOKENS for t in tokens):
            raise ValueError("a placeholder token is not a secret; generate a real one")
        for number, token in enumerate(tokens, 1):
            why = weakness(token)
            if why is not None:
                raise ValueError(
                    f"token {number} is too weak: {why}; generate one with: python -c "
                    "'import secrets; print(secrets.token_urlsafe(32))'"
                )
        return ",".join(tokens)

    @field_validator("bot_url", "ui_api_url")
    @classmethod
    def _bot_url_is_http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:3100")
        return value.rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("webhook_urls")
    @classmethod
    def _webhook_urls_are_http(cls, value: str) -> str:
        urls = [u.strip() for u in value.split(",") if u.strip()]
        for number, url in enumerate(urls, 1):
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"URL {number} must start with http:// or https://")
        return ",".join(urls)

    @field_validator("webhook_events")
    @classmethod
    def _webhook_events_are_known(cls, value: str) -> str:
        kinds = [k.strip() for k in value.split(",") if k.strip()]
        unknown = [k for k in kinds if k not in WEBHOOK_EVENTS]
        if unknown:
            raise ValueError(
                f"unknown event {unknown[0]!r}; choose from message, receipt, state, qr"
            )
        return ",".join(kinds)

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret_is_long(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if len(value.strip()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"must have at least {MIN_TOKEN_LENGTH} characters")
        return value.strip()

    @property
    def webhook_url_list(self) -> tuple[str, ...]:
        return tuple(self.webhook_urls.split(",")) if self.webhook_urls else ()

    @property
    def token_list(self) -> list[str]:
        return self.bridge_tokens.split(",") if self.bridge_tokens else []

    @property
    def api_key_list(self) -> list[str]:
        return self.api_keys.split(",") if self.api_keys else self.token_list

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @field_validator("bot_tls_cert", "bot_tls_key", "api_tls_cert", "api_tls_key", "bot_ca_file")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is None or not str(value).strip():
            return None
        if not value.is_file():
            raise ValueError(f"{value} is not a readable file")
        return value

    @model_validator(mode="after")
    def _cert_with_key(self) -> Settings:
        for server, cert, key in (
            ("BOT", self.bot_tls_cert, self.bot_tls_key),
            ("API", self.api_tls_cert, self.api_tls_key),
        ):
            if (cert is None) != (key is None):
                raise ValueError(
                    f"WAQR_{server}_TLS_CERT and WAQR_{server}_TLS_KEY must be set together"
                )
        if self.webhook_urls and self.webhook_secret is None:
            raise ValueError("WAQR_WEBHOOK_URLS needs WAQR_WEBHOOK_SECRET (deliveries are signed)")
        return self

    @property
    def bot_tls(self) -> tuple[Path, Path] | None:
        """The bot's (certificate, key) when it serves HTTPS."""
        if self.bot_tls_cert is None or self.bot_tls_key is None:
            return None
        return self.bot_tls_cert, self.bot_tls_key

    @property
    def api_tls(self) -> tuple[Path, Path] | None:
        """The bridge's (certificate, key) when it serves HTTPS."""
        if self.api_tls_cert is None or self.api_tls_key is None:
            return None
        return self.api_tls_cert, self.api_tls_key

    @field_validator("reconnect_backoff_max")
    @classmethod
    def _max_not_below_min(cls, value: float, info: object) -> float:
        data = getattr(info, "data", {})
        low = data.get("reconnect_backoff_min")
        if low is not None and value < low:
            raise ValueError("must not be smaller than WAQR_RECONNECT_BACKOFF_MIN")
        return value

    @property
    def auth_dir(self) -> Path:
        """Where the engine's credential store lives (kept across reconnects and restarts)."""
        return self.data_dir / "wa-auth"


def load_settings(overrides: dict[str, object] | None = None) -> Settings:
    """Read the settings. ``overrides`` are keyed by environment variable name (the CLI's
    ``--host``/``--port`` land here), so errors name the variable either way. A validation
    failure becomes a ConfigError that names the variable and says what is wrong, never
    echoing the value (it may be a secret)."""
    try:
        # Keys are the environment variable names (the fields' aliases), which the type
        # checker cannot match to the fields.
        return Settings(**(overrides or {}))  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{name}: {message}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
