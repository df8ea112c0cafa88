"""Sessions by name. Only ``default`` exists today; the registry is the seam through which
several WhatsApp accounts will be served later."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from waqr.bot.diagnosis import DiagnosisWatch
from waqr.bot.messages import MessageStore
from waqr.bot.messenger import Messenger
from waqr.bot.policy import SessionPolicy
from waqr.bot.session import Session
from waqr.bot.store import SessionStore
from waqr.bot.webhooks import WebhookSender
from waqr.engine.protocol import Engine, EngineConfig
from waqr.engine.supervisor import ChildEngine
from waqr.engine.version import engine_version
from waqr.settings import Settings
from waqr.tasks import cancel, spawn

DEFAULT_SESSION = "default"

EngineMaker = Callable[[EngineConfig], Engine]


def child_engine_maker(settings: Settings) -> EngineMaker:
    def make(config: EngineConfig) -> Engine:
        return ChildEngine(
            config,
            start_timeout=settings.engine_start_timeout,
            stop_timeout=settings.engine_stop_timeout,
            command_timeout=settings.engine_command_timeout,
            # A ping needs no round trip to WhatsApp: ten seconds is already generous.
            ping_timeout=min(10.0, settings.engine_command_timeout),
        )

    return make


def session_policy(settings: Settings) -> SessionPolicy:
    """The session's deadlines from the settings; each backstop sits past the bound of the
    mechanism it backs (the engine's start watchdog, its command timeout, its stop)."""
    start, stop = settings.engine_start_timeout, settings.engine_stop_timeout
    return SessionPolicy(
        backoff_min=settings.reconnect_backoff_min,
        backoff_max=settings.reconnect_backoff_max,
        qr_demand_window=settings.qr_demand_window,
        qr_max_cycles=settings.qr_max_cycles,
        dial_timeout=start + stop + 5,
        login_timeout=settings.login_timeout,
        reconnect_grace=start,
        ping_interval=settings.engine_ping_interval,
        keepalive_grace=settings.keepalive_fail_timeout,
        replaced_limit=settings.replaced_limit,
        replaced_window=settings.replaced_window,
        command_bound=settings.engine_command_timeout + stop + 5,
        stop_bound=stop + 10,
        via_proxy=settings.wa_proxy is not None,
    )


class SessionRegistry:
    def __init__(self, settings: Settings, make_engine: EngineMaker | None = None) -> None:
        self.settings = settings
        self.make_engine = make_engine or child_engine_maker(settings)
        self.policy = session_policy(settings)
        self.sessions: dict[str, Session] = {}
        self.messengers: dict[str, Messenger] = {}
        self._locked: list[SessionStore] = []
        # The doctor probes the network path of the real engine child; an injected engine
        # (tests) has none, so it is not diagnosed.
        self._diagnose = make_engine is None and settings.doctor_on_failure
        self._watches: list[asyncio.Task[None]] = []

    def open(self, names: tuple[str, ...] = (DEFAULT_SESSION,)) -> None:
        """Create the sessions and take their data-directory locks (DataDirLocked if held)."""
        for name in names:
            store = SessionStore(self.settings.data_dir, name)
            store.lock()
            self._locked.append(store)
            config = EngineConfig(
                store_path=str(store.db_path),
                proxy=self.settings.wa_proxy,
                log_level=self.settings.engine_log_level,
            )
            factory = functools.partial(self.make_engine, config)
            session = Session(name, store, factory, self.policy, engine_version=engine_version())
            self.sessions[name] = session
            kinds = frozenset(filter(None, self.settings.webhook_events.split(",")))
            messages = MessageStore(
                self.settings.data_dir / "messages" / f"{name}.sqlite",
                webhook_urls=self.settings.webhook_url_list,
                webhook_kinds=kinds,
            )
            webhooks = None
            if self.settings.webhook_secret is not None and messages.webhook_urls:
                webhooks = WebhookSender(
                    messages,
                    self.settings.webhook_secret,
                    retry_period=self.settings.webhook_retry_period,
                    backoff_max=self.settings.webhook_backoff_max,
                )
            self.messengers[name] = Messenger(
                session, messages, rate_limit=self.settings.send_rate_limit, webhooks=webhooks
            )

    def get(self, name: str = DEFAULT_SESSION) -> Session:
        return self.sessions[name]

    def messenger(self, name: str = DEFAULT_SESSION) -> Messenger:
        return self.messengers[name]

    async def start(self) -> None:
        for name, session in self.sessions.items():
            # Before the session: no message the engine reports may find no one to store it.
            await self.messengers[name].start()
            await session.start()
            if self._diagnose:
                watch = DiagnosisWatch(session, self.settings)
                self._watches.append(spawn(watch.run(), name=f"diagnosis-{session.name}"))

    async def close(self) -> None:
        for task in self._watches:
            await cancel(task)
        self._watches.clear()
        for session in self.sessions.values():
            await session.close()
        for messenger in self.messengers.values():
            await messenger.close()
        self.messengers.clear()
        for store in self._locked:
            store.unlock()
        self._locked.clear()
