from pathlib import Path

import pytest

from gateway.broker.topology import broker_urls, node_parameters
from gateway.config import load_settings


def test_file_then_environment_then_options_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.toml").write_text('listen = "0.0.0.0:9000"\ndelivery_limit = 9\n')
    monkeypatch.setenv("SILIAN_DELIVERY_LIMIT", "3")
    settings = load_settings(tmp_path, reflection="false")
    assert settings.listen == "0.0.0.0:9000"
    assert settings.delivery_limit == 3
    assert settings.reflection is False


def test_default_database_is_a_sqlite_file_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SILIAN_DATABASE_URL", raising=False)
    url = load_settings(tmp_path).effective_database_url
    assert url == f"sqlite:///{(tmp_path / 'silian.db').resolve()}"


def test_unknown_setting_is_named(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("lisen = 1\n")
    with pytest.raises(ValueError, match="unknown settings lisen"):
        load_settings(tmp_path)


def test_amqp_url_may_list_the_nodes_of_a_cluster() -> None:
    setting = "amqp://u:p@node1:5672/%2F, amqp://u:p@node2:5673/%2F,amqp://u:p@node3/%2F"
    assert broker_urls(setting) == [
        "amqp://u:p@node1:5672/%2F",
        "amqp://u:p@node2:5673/%2F",
        "amqp://u:p@node3/%2F",
    ]
    assert [(p.host, p.port) for p in node_parameters(setting)] == [
        ("node1", 5672),
        ("node2", 5673),
        ("node3", 5672),
    ]
    with pytest.raises(ValueError, match="amqp_url is empty"):
        broker_urls(" , ")
