"""Which Host values the host answers, which names a user may allow, and what binding to the
network prints: the pure part, and the settings and options that feed it."""

import json

import pytest

from devhost.commands.cli import main
from devhost.host_names import AllowedHosts, HostCheck
from devhost.http.guard import network_warning
from devhost.settings import SettingsError, load_settings

PORT = 7071


@pytest.mark.parametrize(
    ("listen", "header", "answered"),
    [
        ("127.0.0.1", "127.0.0.1:7071", True),
        ("127.0.0.1", "localhost:7071", True),
        ("127.0.0.1", "[::1]:7071", True),
        ("127.0.0.1", "[::ffff:127.0.0.1]:7071", True),
        ("127.0.0.1", "127.0.0.2:7071", True),
        ("127.0.0.1", "192.168.1.5:7071", False),
        ("127.0.0.1", "evil.example:7071", False),
        ("192.168.1.5", "192.168.1.5:7071", True),  # the address it listens on
        ("192.168.1.5", "192.168.1.6:7071", False),
        ("devbox", "devbox:7071", True),
        ("devbox", "DevBox:7071", True),
        ("::1", "[::1]:7071", True),
        ("0.0.0.0", "192.168.1.5:7071", True),  # every interface: any address, never a name
        ("0.0.0.0", "[2001:db8::1]:7071", True),
        ("0.0.0.0", "192.168.1.5:7072", False),
        ("0.0.0.0", "devbox:7071", False),
        ("::", "10.0.0.7:7071", True),
    ],
)
def test_which_hosts_are_answered(listen, header, answered):
    assert HostCheck(listen).accepts(header, PORT) is answered


def test_port_80_may_go_without_saying():
    assert HostCheck("127.0.0.1").accepts("localhost", 80)
    assert not HostCheck("127.0.0.1").accepts("localhost", PORT)


@pytest.mark.parametrize(
    ("entries", "header", "answered"),
    [
        ("box.test", "box.test:7071", True),
        ("box.test", "box.test", True),  # a tunnel's name comes without the port
        ("box.test", "box.test:9999", True),
        ("box.test:8443", "box.test:8443", True),
        ("box.test:8443", "box.test:7071", False),
        (".tunnel.test", "tunnel.test", True),
        (".tunnel.test", "a.b.tunnel.test:443", True),
        ("*.tunnel.test", "a.tunnel.test", True),
        (".tunnel.test", "eviltunnel.test", False),
        ("box.test", "box.test.evil.example", False),
        ("*", "anything.example:1", True),
        ("", "box.test", False),
        (["Box.Test", " other.test "], "other.test", True),
    ],
)
def test_allowed_hosts(entries, header, answered):
    assert HostCheck("127.0.0.1", AllowedHosts.parse(entries)).accepts(header, PORT) is answered


@pytest.mark.parametrize("entry", ["a b", "user@box", "box/path", "[zz]", "box:99999", "*.*"])
def test_a_malformed_allowed_host_is_refused_with_its_name(entry):
    with pytest.raises(ValueError, match="is not a host name, name:port, .domain or"):
        AllowedHosts.parse(entry)


def test_what_is_answered_reads_as_a_sentence():
    assert HostCheck("127.0.0.1").answered(PORT) == "localhost, 127.0.0.1 or [::1] on port 7071"
    wide = HostCheck("0.0.0.0", AllowedHosts.parse("box.test")).answered(8080)
    assert wide == (
        "localhost, 127.0.0.1, [::1] or this machine's IP addresses on port 8080, and box.test"
    )


@pytest.mark.parametrize("listen", ["0.0.0.0", "::", "192.168.1.5", "devbox"])
def test_binding_to_the_network_warns_once(listen):
    warning = network_warning(listen)
    assert warning is not None and listen in warning
    assert "dashboard (/_devhost/) are reachable from the network" in warning


@pytest.mark.parametrize("listen", ["127.0.0.1", "127.0.0.5", "localhost", "::1"])
def test_loopback_binding_does_not_warn(listen):
    assert network_warning(listen) is None


def write_settings(tmp_path, host: dict) -> None:
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": {}, "Host": host}))


def test_host_allowed_hosts_in_local_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("DEVHOST_ALLOWED_HOSTS", raising=False)
    write_settings(tmp_path, {"AllowedHosts": "box.test, .tunnel.test"})
    assert load_settings(tmp_path).allowed_hosts.entries == ("box.test", ".tunnel.test")
    write_settings(tmp_path, {"AllowedHosts": ["box.test"]})
    assert load_settings(tmp_path).allowed_hosts.entries == ("box.test",)


def test_the_environment_wins_over_local_settings(tmp_path, monkeypatch):
    write_settings(tmp_path, {"AllowedHosts": "box.test"})
    monkeypatch.setenv("DEVHOST_ALLOWED_HOSTS", "other.test")
    assert load_settings(tmp_path).allowed_hosts.entries == ("other.test",)


def test_a_malformed_setting_names_where_it_came_from(tmp_path, monkeypatch):
    monkeypatch.delenv("DEVHOST_ALLOWED_HOSTS", raising=False)
    write_settings(tmp_path, {"AllowedHosts": "user@box"})
    with pytest.raises(SettingsError, match="Host.AllowedHosts in local.settings.json"):
        load_settings(tmp_path)
    write_settings(tmp_path, {})
    monkeypatch.setenv("DEVHOST_ALLOWED_HOSTS", "a b")
    with pytest.raises(SettingsError, match="DEVHOST_ALLOWED_HOSTS"):
        load_settings(tmp_path)


def test_a_malformed_option_stops_the_start_with_exit_status_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DEVHOST_ALLOWED_HOSTS", raising=False)
    write_settings(tmp_path, {})
    code = main(
        ["start", "--app-dir", str(tmp_path), "--store", "memory", "--allowed-hosts", "a@b"]
    )
    assert code == 2
    assert "--allowed-hosts: 'a@b' is not a host name" in capsys.readouterr().err
