"""herewith.media.supervisor: a real Janus child process, its generated config, restart after kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from herewith.media.janus import VIDEOROOM, JanusSessionLost, VideoRoomAdmin
from herewith.media.supervisor import JanusStartError, JanusSupervisor

from .conftest import NETNS_IFACE
from .peers import publish, subscribe


def test_config_binds_loopback_and_holds_the_secrets(tmp_path: Path) -> None:
    sup = JanusSupervisor(tmp_path, http_port=18088, ws_port=18188, admin_port=17088, admin_key="k3y", api_secret="a",
                          admin_secret="b")
    cfg = sup.write_config()
    general = cfg.read_text()
    assert 'api_secret = "a"' in general and 'admin_secret = "b"' in general and "token_auth = true" in general
    assert "libjanus_echotest.so" in general and "libjanus_videoroom.so" not in general
    assert "libjanus_websockets.so" not in general and "libjanus_http.so" not in general  # both transports load
    http = (tmp_path / "janus.transport.http.jcfg").read_text()
    assert 'ip = "127.0.0.1"' in http and 'admin_ip = "127.0.0.1"' in http and "port = 18088" in http
    assert 'admin_key = "k3y"' in (tmp_path / "janus.plugin.videoroom.jcfg").read_text()
    assert oct(cfg.stat().st_mode & 0o777) == "0o600"
    ws = (tmp_path / "janus.transport.websockets.jcfg").read_text()
    assert 'ws_ip = "127.0.0.1"' in ws and "ws_port = 18188" in ws and "admin_ws = false" in ws and "wss = false" in ws
    assert sup.url == "ws://127.0.0.1:18188" and sup.admin_url == "http://127.0.0.1:17088/admin"  # WebSocket by default
    assert JanusSupervisor(tmp_path, http_port=18088, transport="http").url == "http://127.0.0.1:18088/janus"
    with pytest.raises(ValueError):
        JanusSupervisor(tmp_path, transport="mqtt")


def test_secrets_are_random_per_supervisor(tmp_path: Path) -> None:
    a, b = JanusSupervisor(tmp_path / "a"), JanusSupervisor(tmp_path / "b")
    assert len({a.api_secret, a.admin_secret, a.admin_key, b.api_secret, b.admin_secret, b.admin_key}) == 6


async def test_start_fails_cleanly_without_the_binary(tmp_path: Path) -> None:
    with pytest.raises(JanusStartError):
        await JanusSupervisor(tmp_path, binary="no-such-janus-binary").start()


@pytest.mark.netns
@pytest.mark.parametrize("transport", ["websocket", "http"])
async def test_restarts_a_killed_janus_and_calls_back(tmp_path: Path, pinned_ice: str, transport: str) -> None:
    rid, secret = 4242, "room-secret"
    recreated: list[int] = []
    restarted = asyncio.Event()

    async def recreate_rooms(sup: JanusSupervisor) -> None:  # what the control plane will do
        async with sup.client() as c:
            s = await c.create_session()
            await VideoRoomAdmin(await s.attach(VIDEOROOM), sup.admin_key).create_room(rid, secret=secret)
            await s.destroy()
        recreated.append(sup.generation)
        restarted.set()

    async with JanusSupervisor(tmp_path, ice_enforce_list=NETNS_IFACE, rtp_ports=(35000, 39999),
                               on_restart=recreate_rooms, transport=transport) as sup:
        old_pid = sup.pid
        assert old_pid is not None and sup.generation == 1
        async with sup.client() as client:
            session = await client.create_session()
            rooms = VideoRoomAdmin(await session.attach(VIDEOROOM), sup.admin_key)
            await rooms.create_room(rid, secret=secret)
            pub = await publish(session, rid)

            os.kill(old_pid, signal.SIGKILL)
            await asyncio.wait_for(restarted.wait(), 15)
            assert sup.pid not in (None, old_pid) and sup.restarts == 1 and recreated == [2]

            await asyncio.wait_for(session.lost.wait(), 10)  # old session died with the process
            with pytest.raises(JanusSessionLost):
                await session.attach()
            await pub.pc.close()

            # participants reconnect: a new session, the recreated room, media flows again
            session = await client.create_session()
            rooms = VideoRoomAdmin(await session.attach(VIDEOROOM), sup.admin_key)
            assert await rooms.exists(rid)
            pub = await publish(session, rid)
            sub = await subscribe(session, rid, pub.feed_id)
            await asyncio.wait_for(sub.first_frame.wait(), 20)
            await pub.pc.close()
            await sub.pc.close()
            await session.destroy()
        pid = sup.pid
    assert pid is not None and not Path(f"/proc/{pid}").exists() or _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
