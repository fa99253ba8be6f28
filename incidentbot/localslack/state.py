"""In-memory, thread-safe state of a local Slack workspace.

`Workspace` is what the local Web API (`api.py`), the user-side simulator (`client.py`), tests and
the browser console all share. Every mutation bumps `version` and notifies a condition variable,
so callers wait for changes with `wait_for(predicate, timeout)` instead of sleeping.

All public accessors return *copies* (plain dicts / lists), safe to keep after the lock is
released. Timestamps (`ts`) are unique, strictly increasing strings like "1700000000.000100".

`Workspace` holds the workspace itself (users, channels, messages, ephemeral messages, views,
triggers) and is composed of four small parts, each its own class: the fault plan
(`faults.FaultPlan`, `ws.faults`), natural rate limits (`ratelimits.RateLimits`,
`ws.rate_limits`), the call log (`calllog.CallLog`, `ws.call_log`) and the response_url
contexts (`responses.ResponseUrls`, `ws.response_urls`). Its methods of the old names
(`fail_next`, `calls`, `use_response_url`, ...) hand over to them.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .calllog import CallLog, CallRecord
from .faults import Fault, FaultPlan
from .ratelimits import RateLimits
from .responses import RESPONSE_URL_MAX_USES, RESPONSE_URL_TTL_SECONDS, ResponseUrls
from .socket_mode import SocketModeHub

__all__ = ["CallRecord", "Fault", "RESPONSE_URL_MAX_USES", "RESPONSE_URL_TTL_SECONDS", "Workspace"]

T = TypeVar("T")
TRIGGER_TTL_SECONDS = 3.0
VIEW_STACK_MAX = 3


@dataclass
class _Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict]
    user: str
    bot_id: str | None = None
    thread_ts: str | None = None  # set on replies and (Slack-like) on thread parents
    replies: list[str] = field(default_factory=list)  # ts of replies (parents only)
    edits: int = 0
    history: list[dict] = field(default_factory=list)  # previous {"text","blocks"} versions
    deleted: bool = False
    attachments: list | None = None
    metadata: dict | None = None
    extra: dict = field(default_factory=dict)  # other params as sent (unfurl_links, link_names, ...)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": "message",
            "ts": self.ts,
            "user": self.user,
            "text": self.text,
            "blocks": copy.deepcopy(self.blocks),
        }
        if self.bot_id:
            d["bot_id"] = self.bot_id
        if self.thread_ts:
            d["thread_ts"] = self.thread_ts
        if self.replies:
            d["reply_count"] = len(self.replies)
            d["latest_reply"] = self.replies[-1]
        if self.edits:
            d["edited"] = {"user": self.user, "ts": self.history[-1].get("edited_ts", self.ts)}
        if self.attachments:
            d["attachments"] = copy.deepcopy(self.attachments)
        if self.metadata:
            d["metadata"] = copy.deepcopy(self.metadata)
        return d

    def to_state(self) -> dict[str, Any]:
        """Richer view for the console/tests: adds channel, edit count, history, raw extra params."""
        d = self.to_dict()
        d["channel"] = self.channel
        d["edit_count"] = self.edits
        d["history"] = copy.deepcopy(self.history)
        d["extra"] = copy.deepcopy(self.extra)
        return d


class Workspace:
    """A thread-safe in-memory Slack workspace.

    Construct with defaults and add users/channels::

        ws = Workspace()
        alice = ws.add_user("alice")            # -> "U..." id
        ch = ws.create_channel("gpu-incidents")  # -> "C..." id
        ws.bot_token                              # "xoxb-local-..." accepted by the Web API
        ws.app_token                              # "xapp-local-..." opens Socket Mode connections
    """

    def __init__(
        self,
        *,
        bot_token: str | None = None,
        team_id: str = "T0LOCAL01",
        team_name: str = "local",
        bot_user_id: str = "U0BOT0001",
        bot_id: str = "B0BOT0001",
        bot_name: str = "incidentbot",
        trigger_ttl: float = TRIGGER_TTL_SECONDS,
        response_url_ttl: float = RESPONSE_URL_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self.clock = clock  # monotonic seconds; tests may replace it to move time without sleeping
        self._wall = wall_clock
        self._ids = itertools.count(1)
        self._last_ts_us = 0

        self.bot_token: str = bot_token or f"xoxb-local-{secrets.token_hex(8)}"
        self.tokens: set[str] = {self.bot_token}
        # The app-level token (Socket Mode): good for apps.connections.open only.
        self.app_token: str = f"xapp-local-{secrets.token_hex(8)}"
        self.socket_mode = SocketModeHub()
        self.team_id = team_id
        self.team_name = team_name
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.trigger_ttl = trigger_ttl

        self.version = 0
        self._users: dict[str, dict] = {}
        self._channels: dict[str, dict] = {}
        self._channel_members: dict[str, set[str] | None] = {}
        self._messages: dict[str, dict[str, _Message]] = {}  # channel -> ts -> message (insertion order)
        self._ephemeral: dict[str, list[dict]] = {}  # user -> messages
        self._views: dict[str, list[dict]] = {}  # user -> stack (bottom first)
        self._view_index: dict[str, str] = {}  # view id -> user
        self._triggers: dict[str, tuple[str, float, bool]] = {}  # id -> (user, issued, used)
        self._usergroups: dict[str, dict] = {}
        # The parts share the workspace's lock (one lock, as before the split: a wait_for
        # predicate may read any of them) and read its clock at each call, so a test that
        # replaces `ws.clock` moves them all.
        self.faults = FaultPlan(clock=self._now, lock=self._lock)
        self.rate_limits = RateLimits(clock=self._now, lock=self._lock)
        self.call_log = CallLog(lock=self._lock, on_change=self._touch)
        self.response_urls = ResponseUrls(self, clock=self._now, ttl=response_url_ttl, lock=self._lock)

        self._users[bot_user_id] = {
            "id": bot_user_id,
            "team_id": team_id,
            "name": bot_name,
            "real_name": bot_name,
            "is_bot": True,
            "is_admin": False,
            "deleted": False,
            "tz": "UTC",
            "profile": {"display_name": bot_name, "real_name": bot_name, "bot_id": bot_id},
        }

    def _now(self) -> float:
        return self.clock()

    # ------------------------------------------------------------------ change notification
    def _touch(self) -> None:
        """Caller holds the lock."""
        self.version += 1
        self._cond.notify_all()

    def wait_for(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:
        """Block until `predicate()` returns something truthy (re-evaluated on every change) and return it.

        The predicate runs with the workspace lock held, so it may call accessors like
        `messages()`. Raises `TimeoutError` when `timeout` seconds pass first.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s (version {self.version})")
                self._cond.wait(remaining)

    def wait_for_version(self, after: int, timeout: float = 25.0) -> int:
        """Wait until `version > after` (or timeout) and return the current version (never raises)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.version <= after:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return self.version

    # ------------------------------------------------------------------ ids
    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08X}"

    def _next_ts(self) -> str:
        now_us = int(self._wall() * 1_000_000)
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    # ------------------------------------------------------------------ users / channels / groups
    def add_user(
        self,
        name: str,
        *,
        user_id: str | None = None,
        real_name: str | None = None,
        is_admin: bool = False,
        tz: str = "UTC",
    ) -> str:
        with self._lock:
            uid = user_id or self._new_id("U")
            self._users[uid] = {
                "id": uid,
                "team_id": self.team_id,
                "name": name,
                "real_name": real_name or name,
                "is_bot": False,
                "is_admin": is_admin,
                "deleted": False,
                "tz": tz,
                "profile": {"display_name": name, "real_name": real_name or name},
            }
            self._touch()
            return uid

    def user(self, user_id: str) -> dict | None:
        with self._lock:
            u = self._users.get(user_id)
            return copy.deepcopy(u) if u else None

    def users(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self._users.values()))

    def create_channel(
        self,
        name: str,
        *,
        channel_id: str | None = None,
        is_private: bool = False,
        members: list[str] | None = None,
        topic: str = "",
    ) -> str:
        """Create a channel and return its id. `members=None` means everyone is a member."""
        name = name.lstrip("#")
        with self._lock:
            if self.channel_id(name):
                raise ValueError(f"channel name taken: {name}")
            cid = channel_id or self._new_id("G" if is_private else "C")
            self._channels[cid] = {
                "id": cid,
                "name": name,
                "is_channel": not is_private,
                "is_group": is_private,
                "is_im": False,
                "is_private": is_private,
                "is_archived": False,
                "is_member": True,
                "created": int(self._wall()),
                "topic": {"value": topic},
                "purpose": {"value": ""},
            }
            self._channel_members[cid] = set(members) if members is not None else None
            self._messages[cid] = {}
            self._touch()
            return cid

    def open_dm(self, user_id: str) -> str:
        """The DM channel ("D...") between the bot and `user_id`, created on first use."""
        with self._lock:
            for cid, ch in self._channels.items():
                if ch.get("is_im") and ch.get("user") == user_id:
                    return cid
            cid = self._new_id("D")
            self._channels[cid] = {
                "id": cid,
                "is_channel": False,
                "is_group": False,
                "is_im": True,
                "is_private": True,
                "is_archived": False,
                "user": user_id,
                "created": int(self._wall()),
            }
            self._channel_members[cid] = {user_id, self.bot_user_id}
            self._messages[cid] = {}
            self._touch()
            return cid

    def archive_channel(self, channel: str) -> None:
        with self._lock:
            cid = self._require_channel(channel)
            self._channels[cid]["is_archived"] = True
            self._touch()

    def channel_id(self, channel: str) -> str | None:
        """Resolve an id ("C…"/"G…"/"D…"), a name or "#name" to a channel id, or None."""
        if not channel:
            return None
        with self._lock:
            if channel in self._channels:
                return channel
            name = channel.lstrip("#")
            for cid, ch in self._channels.items():
                if ch.get("name") == name:
                    return cid
            return None

    def _require_channel(self, channel: str) -> str:
        cid = self.channel_id(channel)
        if cid is None:
            raise KeyError(f"channel_not_found: {channel}")
        return cid

    def channel(self, channel: str) -> dict | None:
        with self._lock:
            cid = self.channel_id(channel)
            if cid is None:
                return None
            ch = copy.deepcopy(self._channels[cid])
            members = self._channel_members[cid]
            ch["num_members"] = len(members) if members is not None else len(self._users)
            return ch

    def channels(self) -> list[dict]:
        with self._lock:
            return [self.channel(cid) for cid in self._channels]  # type: ignore[misc]

    def is_member(self, channel: str, user_id: str) -> bool:
        with self._lock:
            cid = self._require_channel(channel)
            members = self._channel_members[cid]
            return members is None or user_id in members

    def add_member(self, channel: str, user_id: str) -> None:
        with self._lock:
            cid = self._require_channel(channel)
            members = self._channel_members[cid]
            if members is not None:
                members.add(user_id)
                self._touch()

    def add_usergroup(self, handle: str, users: list[str], *, group_id: str | None = None) -> str:
        with self._lock:
            gid = group_id or self._new_id("S")
            self._usergroups[gid] = {"id": gid, "handle": handle, "users": list(users)}
            self._touch()
            return gid

    def usergroup_users(self, group_id: str) -> list[str] | None:
        with self._lock:
            g = self._usergroups.get(group_id)
            return list(g["users"]) if g else None

    # ------------------------------------------------------------------ messages
    def post_message(
        self,
        channel: str,
        *,
        text: str = "",
        blocks: list[dict] | None = None,
        user: str | None = None,
        thread_ts: str | None = None,
        attachments: list | None = None,
        metadata: dict | None = None,
        extra: dict | None = None,
    ) -> dict:
        """Append a message (as the bot unless `user` is given) and return its dict.

        `thread_ts` pointing at a reply is resolved to that reply's parent like Slack does;
        an unknown `thread_ts` raises KeyError("thread_not_found").
        """
        with self._lock:
            cid = self._require_channel(channel)
            msgs = self._messages[cid]
            parent: _Message | None = None
            if thread_ts:
                parent = msgs.get(thread_ts)
                if parent is None or parent.deleted:
                    raise KeyError("thread_not_found")
                if parent.thread_ts and parent.thread_ts != parent.ts:
                    parent = msgs[parent.thread_ts]
            ts = self._next_ts()
            is_bot = user is None or user == self.bot_user_id
            m = _Message(
                channel=cid,
                ts=ts,
                text=text or "",
                blocks=copy.deepcopy(blocks or []),
                user=user or self.bot_user_id,
                bot_id=self.bot_id if is_bot else None,
                thread_ts=parent.ts if parent else None,
                attachments=copy.deepcopy(attachments),
                metadata=copy.deepcopy(metadata),
                extra=copy.deepcopy(extra or {}),
            )
            msgs[ts] = m
            if parent is not None:
                parent.thread_ts = parent.ts
                parent.replies.append(ts)
            self._touch()
            return m.to_dict()

    def _get(self, channel: str, ts: str) -> _Message | None:
        cid = self.channel_id(channel)
        if cid is None:
            return None
        m = self._messages[cid].get(ts)
        return None if m is None or m.deleted else m

    def update_message(
        self,
        channel: str,
        ts: str,
        *,
        text: str | None = None,
        blocks: list[dict] | None = None,
        attachments: list | None = None,
        extra: dict | None = None,
    ) -> dict:
        """Edit a message (counts one edit). Raises KeyError("message_not_found")."""
        with self._lock:
            m = self._get(channel, ts)
            if m is None:
                raise KeyError("message_not_found")
            m.history.append({"text": m.text, "blocks": copy.deepcopy(m.blocks), "edited_ts": self._next_ts()})
            if text is not None:
                m.text = text
            if blocks is not None:
                m.blocks = copy.deepcopy(blocks)
            if attachments is not None:
                m.attachments = copy.deepcopy(attachments)
            if extra:
                m.extra.update(copy.deepcopy(extra))
            m.edits += 1
            self._touch()
            return m.to_dict()

    def delete_message(self, channel: str, ts: str) -> None:
        with self._lock:
            m = self._get(channel, ts)
            if m is None:
                raise KeyError("message_not_found")
            m.deleted = True
            self._touch()

    def message(self, channel: str, ts: str) -> dict | None:
        """One live message with state extras (`edit_count`, `history`, `extra`), or None."""
        with self._lock:
            m = self._get(channel, ts)
            return m.to_state() if m else None

    def messages(self, channel: str, *, include_replies: bool = False) -> list[dict]:
        """Live top-level messages of a channel, oldest first (replies too if asked)."""
        with self._lock:
            cid = self._require_channel(channel)
            out = []
            for m in self._messages[cid].values():
                if m.deleted:
                    continue
                if not include_replies and m.thread_ts and m.thread_ts != m.ts:
                    continue
                out.append(m.to_state())
            return out

    def replies(self, channel: str, thread_ts: str) -> list[dict]:
        """Live replies of a thread (parent excluded), oldest first."""
        with self._lock:
            cid = self._require_channel(channel)
            parent = self._messages[cid].get(thread_ts)
            if parent is None:
                return []
            return [self._messages[cid][r].to_state() for r in parent.replies if not self._messages[cid][r].deleted]

    def edit_count(self, channel: str, ts: str) -> int:
        with self._lock:
            m = self._get(channel, ts)
            return m.edits if m else 0

    # ------------------------------------------------------------------ ephemeral
    def post_ephemeral(
        self,
        channel: str,
        user: str,
        *,
        text: str = "",
        blocks: list[dict] | None = None,
        thread_ts: str | None = None,
        source: str = "chat.postEphemeral",
    ) -> dict:
        """Show an ephemeral message to `user`. `source` records where it came from
        ("chat.postEphemeral", "response_url" or "ack")."""
        with self._lock:
            cid = self.channel_id(channel) or channel
            e = {
                "id": self._new_id("E"),
                "ts": self._next_ts(),
                "channel": cid,
                "user": user,
                "text": text or "",
                "blocks": copy.deepcopy(blocks or []),
                "thread_ts": thread_ts,
                "source": source,
                "edit_count": 0,
                "deleted": False,
            }
            self._ephemeral.setdefault(user, []).append(e)
            self._touch()
            return copy.deepcopy(e)

    def ephemeral_for(self, user: str, *, include_deleted: bool = False) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(e) for e in self._ephemeral.get(user, []) if include_deleted or not e["deleted"]]

    def _find_ephemeral(self, user: str, ts: str) -> dict | None:
        for e in self._ephemeral.get(user, []):
            if e["ts"] == ts and not e["deleted"]:
                return e
        return None

    def delete_ephemeral(self, user: str, ts: str) -> bool:
        """Delete a live ephemeral message of `user`; False when there is none at `ts`."""
        with self._lock:
            e = self._find_ephemeral(user, ts)
            if e is None:
                return False
            e["deleted"] = True
            self._touch()
            return True

    def replace_ephemeral(self, user: str, ts: str, *, text: str, blocks: list[dict]) -> bool:
        """Replace a live ephemeral message of `user` in place; False when there is none at `ts`."""
        with self._lock:
            e = self._find_ephemeral(user, ts)
            if e is None:
                return False
            e["text"] = text
            e["blocks"] = copy.deepcopy(blocks)
            e["edit_count"] += 1
            self._touch()
            return True

    # ------------------------------------------------------------------ triggers and views
    def issue_trigger(self, user: str) -> str:
        """A fresh trigger_id for `user`, valid for `trigger_ttl` seconds and one use."""
        with self._lock:
            tid = f"{next(self._ids)}.{secrets.token_hex(6)}"
            self._triggers[tid] = (user, self.clock(), False)
            return tid

    def consume_trigger(self, trigger_id: str) -> str:
        """Return the trigger's user; raises KeyError("invalid_trigger_id"/"expired_trigger_id")."""
        with self._lock:
            t = self._triggers.get(trigger_id)
            if t is None:
                raise KeyError("invalid_trigger_id")
            user, issued, used = t
            if used or self.clock() - issued > self.trigger_ttl:
                raise KeyError("expired_trigger_id")
            self._triggers[trigger_id] = (user, issued, True)
            return user

    def open_view(self, user: str, view: dict, *, push: bool = False) -> dict:
        """Open (or push onto the stack) a view for `user`; returns the stored view with id/hash."""
        with self._lock:
            stack = self._views.setdefault(user, [])
            if push:
                if not stack:
                    raise KeyError("not_found")
                if len(stack) >= VIEW_STACK_MAX:
                    raise KeyError("push_limit_reached")
            else:
                for v in stack:
                    self._view_index.pop(v["id"], None)
                stack.clear()
            stored = self._store_view(view, previous=None)
            stack.append(stored)
            self._view_index[stored["id"]] = user
            self._touch()
            return copy.deepcopy(stored)

    def _store_view(self, view: dict, previous: dict | None) -> dict:
        stored = copy.deepcopy(view)
        stored["id"] = previous["id"] if previous else self._new_id("V")
        stored["team_id"] = self.team_id
        stored["hash"] = f"{int(self._wall())}.{secrets.token_hex(4)}"
        stored.setdefault("private_metadata", "")
        stored.setdefault("callback_id", "")
        stored.setdefault("external_id", "")
        stored["state"] = previous.get("state", {"values": {}}) if previous else {"values": {}}
        stored["errors"] = {}
        stored["root_view_id"] = None
        stored["app_id"] = "A0LOCAL01"
        stored["bot_id"] = self.bot_id
        return stored

    def find_view(self, view_id: str | None = None, external_id: str | None = None) -> dict | None:
        with self._lock:
            for user, stack in self._views.items():
                for v in stack:
                    if (view_id and v["id"] == view_id) or (external_id and v.get("external_id") == external_id):
                        out = copy.deepcopy(v)
                        out["user"] = user
                        return out
            return None

    def update_view(
        self,
        view: dict,
        *,
        view_id: str | None = None,
        external_id: str | None = None,
        hash: str | None = None,
    ) -> dict:
        """Replace an open view. Raises KeyError("not_found"/"hash_conflict")."""
        with self._lock:
            for stack in self._views.values():
                for i, v in enumerate(stack):
                    if (view_id and v["id"] == view_id) or (external_id and v.get("external_id") == external_id):
                        if hash and hash != v["hash"]:
                            raise KeyError("hash_conflict")
                        stack[i] = self._store_view(view, previous=v)
                        self._touch()
                        return copy.deepcopy(stack[i])
            raise KeyError("not_found")

    def set_view_state(self, view_id: str, values: dict) -> None:
        with self._lock:
            for stack in self._views.values():
                for v in stack:
                    if v["id"] == view_id:
                        v["state"] = {"values": copy.deepcopy(values)}
                        self._touch()
                        return
            raise KeyError("not_found")

    def set_view_errors(self, view_id: str, errors: dict) -> None:
        with self._lock:
            for stack in self._views.values():
                for v in stack:
                    if v["id"] == view_id:
                        v["errors"] = copy.deepcopy(errors)
                        self._touch()
                        return
            raise KeyError("not_found")

    def close_view(self, user: str, *, all_views: bool = False) -> None:
        """Close the top view of `user` (or the whole stack)."""
        with self._lock:
            stack = self._views.get(user, [])
            while stack:
                v = stack.pop()
                self._view_index.pop(v["id"], None)
                if not all_views:
                    break
            self._touch()

    def views_for(self, user: str) -> list[dict]:
        """Open views of `user`, bottom of the stack first."""
        with self._lock:
            return copy.deepcopy(self._views.get(user, []))

    # ------------------------------------------------------------------ the parts, by their old names
    # The fault plan, rate limits, call log and response_url contexts are their own classes
    # (faults.py, ratelimits.py, calllog.py, responses.py); these keep the names callers use.
    @property
    def response_url_ttl(self) -> float:
        return self.response_urls.ttl

    @response_url_ttl.setter
    def response_url_ttl(self, seconds: float) -> None:
        self.response_urls.ttl = seconds

    def new_response_url(
        self,
        *,
        channel: str,
        user: str,
        message_ts: str | None = None,
        is_ephemeral: bool = False,
        thread_ts: str | None = None,
    ) -> str:
        """See :meth:`ResponseUrls.new`."""
        return self.response_urls.new(
            channel=channel, user=user, message_ts=message_ts, is_ephemeral=is_ephemeral, thread_ts=thread_ts
        )

    def use_response_url(self, token: str, body: dict) -> tuple[int, str]:
        """See :meth:`ResponseUrls.use`."""
        return self.response_urls.use(token, body)

    def response_url_uses(self, token: str) -> int:
        return self.response_urls.uses(token)

    def fail_next(self, method: str | None, *, status: int, retry_after: int | None = None, times: int = 1) -> None:
        """See :meth:`FaultPlan.fail_next`."""
        self.faults.fail_next(method, status=status, retry_after=retry_after, times=times)

    def fail_for(
        self, seconds: float, status: int, *, method: str | None = None, retry_after: int | None = None
    ) -> None:
        """See :meth:`FaultPlan.fail_for`."""
        self.faults.fail_for(seconds, status, method=method, retry_after=retry_after)

    def clear_faults(self) -> None:
        self.faults.clear()

    def take_fault(self, method: str) -> Fault | None:
        return self.faults.take(method)

    def enable_rate_limits(self, limits: dict[str, tuple[float, float]] | None = None) -> None:
        """Enforce Slack-like rate limits: `{method: (burst, per_second)}`, a token bucket per
        method and channel. Defaults: chat.postMessage (3, 1/s) per channel — Slack's "about one
        message per second per channel, short bursts allowed" — and chat.update (50, 50/min).
        Over the limit the API answers HTTP 429 with Retry-After. `{}` disables them again."""
        self.rate_limits.enable(limits)

    def check_rate_limit(self, method: str, key: str = "") -> int | None:
        return self.rate_limits.check(method, key)

    def record_call(self, record: CallRecord) -> None:
        self.call_log.record(record)

    def calls(self, method: str | None = None, **params: Any) -> list[CallRecord]:
        """See :meth:`CallLog.calls`."""
        return self.call_log.calls(method, **params)

    def call_count(self, method: str | None = None, **params: Any) -> int:
        return self.call_log.count(method, **params)

    # ------------------------------------------------------------------ snapshots
    def snapshot_channel(self, channel: str) -> dict:
        """JSON view used by GET /state/channels/{channel}: top-level messages with their replies."""
        with self._lock:
            ch = self.channel(channel)
            if ch is None:
                raise KeyError("channel_not_found")
            msgs = self.messages(ch["id"])
            for m in msgs:
                m["replies"] = self.replies(ch["id"], m["ts"]) if m.get("reply_count") else []
            return {"version": self.version, "channel": ch, "messages": msgs}
