"""config/gunicorn.py's process tuning: a frozen heap before fork, a short GIL interval
and rarer young-generation collections."""

import gc
import runpy
import sys
from pathlib import Path

import pytest

CONFIG = Path(__file__).resolve().parent.parent / "config" / "gunicorn.py"


@pytest.fixture
def gunicorn_config(monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("GUNICORN_THREADS", raising=False)
    interval, threshold = sys.getswitchinterval(), gc.get_threshold()
    yield runpy.run_path(str(CONFIG))
    sys.setswitchinterval(interval)
    gc.set_threshold(*threshold)
    gc.unfreeze()


def test_workers_are_two_per_core_plus_one_with_two_threads(gunicorn_config, monkeypatch):
    import multiprocessing

    assert gunicorn_config["workers"] == 2 * multiprocessing.cpu_count() + 1
    assert gunicorn_config["threads"] == 2
    assert gunicorn_config["worker_class"] == "gthread"
    assert gunicorn_config["preload_app"] is True


def test_the_master_is_loaded_and_sets_a_short_switch_interval(gunicorn_config):
    gunicorn_config["when_ready"](object())
    assert sys.getswitchinterval() == pytest.approx(0.001)


def test_the_master_sets_the_young_generation_threshold_for_its_workers(gunicorn_config):
    older = gc.get_threshold()[1:]
    gunicorn_config["when_ready"](object())
    assert gc.get_threshold() == (10_000, *older)


def test_objects_alive_before_fork_are_out_of_the_collectors_reach(gunicorn_config):
    gc.unfreeze()
    survivor = [object() for _ in range(1000)]
    gunicorn_config["pre_fork"](object(), object())
    assert gc.get_freeze_count() >= len(survivor)
    assert not any(obj is survivor for obj in gc.get_objects(generation=2))


@pytest.mark.parametrize(("proxies", "trusted"), [(None, []), ("0", []), ("1", ["127.0.0.1"])])
def test_x_forwarded_proto_is_trusted_from_nobody_without_a_proxy(monkeypatch, proxies, trusted):
    from gunicorn.config import validate_string_to_addr_list

    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    if proxies is None:
        monkeypatch.delenv("RATE_LIMIT_NUM_PROXIES", raising=False)
    else:
        monkeypatch.setenv("RATE_LIMIT_NUM_PROXIES", proxies)
    config = runpy.run_path(str(CONFIG))
    assert validate_string_to_addr_list(config["forwarded_allow_ips"]) == trusted


def test_gunicorns_own_errors_are_written_as_json():
    import json
    import socket

    config = runpy.run_path(str(CONFIG))
    ours, theirs = socket.socketpair()
    with ours, theirs:
        config["json_error"](ours, 431, "Request Header Fields Too Large", "Error parsing headers")
        head, _, body = theirs.recv(65536).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"Content-Type: application/json" in head
    error = json.loads(body)["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert "100 header fields of 16384 bytes" in error["message"]
