from fastapi.testclient import TestClient

from core.redis import free_port


def test_health_names_the_components_that_are_down(
    client: TestClient, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from core.settings import get_settings

    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("CDP_RASA__URL", closed)
    monkeypatch.setenv("CDP_RASA__ACTIONS_URL", closed)
    get_settings.cache_clear()

    response = client.get("/health")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    components = body["components"]
    assert components["database"]["status"] == "up"
    assert components["redis"]["status"] == "up"
    assert components["index"] == {"status": "up", "detail": "179 products"}
    assert components["rasa"]["status"] == "down"
    assert components["actions"]["status"] == "down"
    assert "no heartbeat" in components["worker"]["detail"]
    assert "no heartbeat" in components["campaigns_worker"]["detail"]
