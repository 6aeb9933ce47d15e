"""The HTTP service: every endpoint, errors, controls, reload while serving, editing, concurrent clients."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from servers import free_port, running

import recommender as rec

starlette = pytest.importorskip("starlette", reason="the web layer's tests need the [web] extra (starlette)")
pytest.importorskip("httpx2", reason="Starlette's test client needs httpx2")
from starlette.testclient import TestClient  # noqa: E402

TOKEN = "s3cret-token"


def site(variant: int = 0) -> pd.DataFrame:
    extra = " replay" if variant else ""
    return pd.DataFrame(
        {
            "article_id": ["f1", "f2", "f3", "e1", "e2", "e3", "w/1"],
            "title": ["Cup final goal", "Striker goal in cup", "Keeper saves penalty", "Election vote",
                      "Ballots counted", "Polls open", "Storm closes harbour"],
            "body": [f"late goal wins cup final{extra}", f"striker scores cup goal{extra}", f"keeper penalty cup{extra}",
                     "votes cast election", "ballots counted election", "polls open election vote", "storm harbour"],
            "category": ["sport", "sport", "sport", "politics", "politics", "politics", "weather"],
            "published": ["2024-05-01", "2024-05-02", "2024-05-03", "2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04"],
            "views": [100, 50, 10, 500, 20, 5, 1000],
        }
    )  # fmt: skip


def build(path: Path, variant: int = 0) -> str:
    return rec.Recommender(min_df=1, max_df=1.0, latent_components=0, pool_size=6).fit(site(variant)).save(path)


@pytest.fixture
def served(tmp_path: Path):
    build(tmp_path / "m")
    app = rec.web.create_app(tmp_path / "m", editor_token=TOKEN, cors_origins=["https://widget.example"], interval=0.05)
    with TestClient(app) as client:
        yield client, tmp_path / "m", app.state.holder


def ids(document: dict) -> list[str]:
    return [item["article_id"] for item in document["items"]]


def test_related_is_the_holders_list_with_controls_and_exclusions(served) -> None:
    client, _path, holder = served
    response = client.get("/articles/f1/related", params={"k": 3})
    assert response.status_code == 200
    assert response.json() == holder.recommend("f1", k=3).to_dict()
    controlled = client.get(
        "/articles/f1/related",
        params=[("k", "4"), ("half_life_days", "30"), ("diversity", "0.3"), ("exclude", "f2"), ("exclude", "f3"),
                ("categories", "sport"), ("categories", "politics"), ("same_category", "false")],
    )  # fmt: skip
    expected = holder.recommend(
        "f1", k=4, half_life_days=30.0, diversity=0.3, exclude=["f2", "f3"], categories=("sport", "politics")
    )
    assert controlled.json() == expected.to_dict() and not {"f2", "f3"} & set(ids(controlled.json()))
    assert client.get("/articles/w/1/related").status_code == 200  # ids with a slash


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"k": "7"}, 422, "larger than the candidate pool"),
        ({"k": "zero"}, 422, "k must be an integer"),
        ({"half_life_days": "soon"}, 422, "half_life_days must be a number"),
        ({"diversity": "2"}, 422, "diversity"),
        ({"fallback": "maybe"}, 422, "fallback must be"),
    ],
)
def test_bad_values_are_json_errors(served, params, status, message) -> None:
    client, _, _ = served
    response = client.get("/articles/f1/related", params=params)
    assert response.status_code == status and message in response.json()["error"]


def test_an_unknown_article_is_a_404_or_the_popular_list(served) -> None:
    client, _, holder = served
    missing = client.get("/articles/not-yet/related")
    assert missing.status_code == 404 and missing.json()["article_id"] == "not-yet"
    assert "Unknown article_id" in missing.json()["error"]
    fallback = client.get("/articles/not-yet/related", params={"fallback": "popular", "k": 2})
    assert fallback.status_code == 200 and fallback.json()["fallback"] is True
    assert ids(fallback.json()) == [r.article_id for r in holder.popular(k=2)]


def test_answers_carry_an_etag_of_the_model_version(served) -> None:
    client, path, holder = served
    first = client.get("/articles/f1/related")
    tag = first.headers["etag"]
    assert first.headers["cache-control"].startswith("public, max-age=")
    assert client.get("/articles/f1/related").headers["etag"] == tag
    assert client.get("/articles/f2/related").headers["etag"] != tag
    assert client.get("/articles/f1/related", headers={"If-None-Match": tag}).status_code == 304
    build(path, variant=1)
    holder.reload()
    again = client.get("/articles/f1/related", headers={"If-None-Match": tag})
    assert again.status_code == 200 and again.headers["etag"] != tag


def test_a_drafts_list_popular_and_health(served) -> None:
    client, _path, holder = served
    draft = client.post("/related", json={"title": "Cup final", "body": "a late goal in the cup final", "k": 2})
    assert draft.status_code == 200
    assert (
        draft.json() == holder.recommend_for_text(title="Cup final", body="a late goal in the cup final", k=2).to_dict()
    )
    assert client.post("/related", json={"title": "  "}).status_code == 422
    assert "needs some text" in client.post("/related", json={}).json()["error"]
    assert client.post("/related", json={"title": "x", "colour": 1}).status_code == 422
    assert client.post("/related", content=b"not json", headers={"content-type": "application/json"}).status_code == 400
    assert client.post("/related", content=b"[1]").status_code == 400
    huge = client.post("/related", content=json.dumps({"body": "storm " * 300_000}).encode())
    assert huge.status_code == 413
    popular = client.get("/popular", params={"k": 3, "category": "sport"})
    assert ids(popular.json()) == [r.article_id for r in holder.popular(k=3, category="sport")]
    health = client.get("/health").json()
    assert (
        health["version"] == holder.version and health["articles"] == 7 and health["version_name"] == "version-000001"
    )
    assert health["loaded_at"].endswith("Z") and health["reload_error"] is None


def test_cors_is_configurable(served, tmp_path: Path) -> None:
    client, path, _ = served
    preflight = client.options(
        "/articles/f1/related",
        headers={"Origin": "https://widget.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.headers["access-control-allow-origin"] == "https://widget.example"
    other = client.get("/articles/f1/related", headers={"Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in other.headers
    with TestClient(rec.web.create_app(path, watch=False)) as plain:
        assert (
            "access-control-allow-origin" not in plain.get("/health", headers={"Origin": "https://x.example"}).headers
        )


def test_editing_needs_the_token_and_makes_a_new_version_with_an_audit_entry(served) -> None:
    client, path, _holder = served
    pin = {"source_id": "f1", "recommended_ids": ["e3"], "editor": "ann"}
    assert client.post("/editorial/pin", json=pin).status_code == 401
    assert client.post("/editorial/pin", json=pin, headers={"Authorization": "Bearer wrong"}).status_code == 401
    done = client.post("/editorial/pin", json=pin, headers={"Authorization": f"Bearer {TOKEN}"})
    assert (
        done.status_code == 200 and done.json()["changed"] == ["f1"] and done.json()["version_name"] == "version-000002"
    )
    listed = client.get("/articles/f1/related").json()
    assert listed["items"][0]["article_id"] == "e3" and listed["items"][0]["reason"] == "pinned"
    assert listed["version"] == done.json()["version"]  # this worker switched at once
    block = client.post("/editorial/block", json={"article_ids": ["f2"]}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert block.status_code == 200 and "f2" not in ids(client.get("/articles/f1/related").json())
    bad = client.post("/editorial/ban", json={"source_id": "f1"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert bad.status_code == 422
    unknown = client.post(
        "/editorial/pin",
        json={"source_id": "zz", "recommended_ids": ["f1"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert unknown.status_code == 404
    trail = rec._store.read_audit(path)
    assert [(e["editor"], e["action"], e["version"]) for e in trail] == [
        ("ann", "pin", "version-000002"),
        ("unknown", "block", "version-000003"),
    ]
    assert all(e["at"].endswith("Z") for e in trail)
    assert rec.load_model(path).pins == {"f1": ["e3"]}  # on disk, for every worker and later rebuilds


def test_editing_is_off_without_a_token(tmp_path: Path) -> None:
    build(tmp_path / "m")
    with TestClient(rec.web.create_app(tmp_path / "m", watch=False)) as client:
        response = client.post("/editorial/block", json={"article_ids": ["f1"]}, headers={"Authorization": "Bearer x"})
        assert response.status_code == 403 and "Editing is off" in response.json()["error"]


def test_a_new_version_is_picked_up_and_a_corrupt_one_skipped_while_serving(served) -> None:
    client, path, _holder = served
    first = client.get("/health").json()["version"]
    build(path, variant=1)
    deadline = time.monotonic() + 30
    while client.get("/health").json()["version"] == first and time.monotonic() < deadline:
        time.sleep(0.05)
    second = client.get("/health").json()["version"]
    assert second != first
    build(path, variant=0)
    current = path / (path / "CURRENT").read_text().strip()
    (current / "neighbours.npy").write_bytes(b"corrupt")  # the manifest's checksum no longer holds
    while client.get("/health").json()["reload_error"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    health = client.get("/health").json()
    assert health["version"] == second and "neighbours.npy" in health["reload_error"]
    assert client.get("/articles/f1/related").status_code == 200


def test_concurrent_clients_get_whole_answers_from_one_version_while_versions_change(tmp_path: Path) -> None:
    import httpx2 as httpx

    path = tmp_path / "m"
    build(path)
    with running(rec.web.create_app(path, interval=0.02)) as base:
        answers, errors, lists = _clients_while_versions_change(path, base, httpx)
    assert errors == [] and len(answers) == 160
    for version, article, listed in answers:
        assert listed == lists[version][article]  # the whole list of the version the answer names


def _clients_while_versions_change(path: Path, base: str, httpx):
    """4 clients x 40 requests while three new versions are saved; the answers and every version's lists."""
    lists: dict[str, dict[str, list[str]]] = {}

    def expected(version_path: Path) -> None:
        model = rec.load_model(version_path)
        lists[model.version] = {a: [r.article_id for r in model.recommend(a, k=3)] for a in model.article_ids}

    expected(path)
    errors: list[str] = []
    answers: list[tuple[str, str, list[str]]] = []

    def reader(seed: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as http:
            for i in range(40):
                article = site()["article_id"][(seed + i) % 6]
                response = http.get(f"/articles/{article}/related", params={"k": 3})
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:100]}")
                    continue
                document = response.json()
                answers.append((document["version"], article, ids(document)))

    readers = [threading.Thread(target=reader, args=(seed,)) for seed in range(4)]
    for t in readers:
        t.start()
    for variant in (1, 0, 1):
        build(path, variant=variant)
        expected(path)
        time.sleep(0.05)
    for t in readers:
        t.join(timeout=60)
    return answers, errors, lists


def test_recommender_serve_runs_worker_processes(tmp_path: Path) -> None:
    import httpx2 as httpx

    build(tmp_path / "m")
    port = free_port()
    command = [sys.executable, "-m", "recommender", "serve", str(tmp_path / "m"), "--port", str(port), "--workers", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, health = time.monotonic() + 60, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health is not None and health["articles"] == 7
        related = httpx.get(f"http://127.0.0.1:{port}/articles/f1/related", params={"k": 2}, timeout=5).json()
        assert ids(related) == [r.article_id for r in rec.load_model(tmp_path / "m").recommend("f1", k=2)]
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
    assert "Serving" in out and "editing off" in out


def test_a_service_can_be_told_to_serve_the_newest_valid_version(tmp_path: Path) -> None:
    build(tmp_path / "m")
    build(tmp_path / "m", variant=1)
    (tmp_path / "m" / "version-000002" / "groups.npy").write_bytes(b"broken")
    with pytest.raises(rec.ModelFormatError, match="version-000002"):
        rec.web.create_app(tmp_path / "m", watch=False)
    with TestClient(rec.web.create_app(tmp_path / "m", watch=False, newest_valid=True)) as client:
        assert client.get("/health").json()["version_name"] == "version-000001"
