"""POST /v1/text on the service, with the bundled GoEmotions model."""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("fastapi")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from emodetect.runtime import assets_dir
from emodetect.serve import ServeConfig, create_app

# The route serves the bundled GoEmotions model; without it there is nothing to serve.
pytestmark = pytest.mark.skipif(not (assets_dir() / "text_default.onnx").is_file(),
                                reason="bundled text model emodetect/assets/text_default.onnx is missing")


@pytest.fixture(scope="module")
def client():
    app = create_app(ServeConfig(workers=1),
                     route_modules=("emodetect.serve.routes_health", "emodetect.serve.routes_text"))
    with TestClient(app) as c:
        yield c


def test_texts_get_labels_in_order(client):
    texts = ["Thank you so much, this is wonderful!", "   ", "😀 Привет " + "word " * 600]
    response = client.post("/v1/text", json={"texts": texts})
    assert response.status_code == 200, response.text
    body = response.json()
    # The joint default: the shared labels, and each corpus's own labels in its heads.
    assert body["model"] == "default" and not body["multilabel"] and len(body["labels"]) == 7
    assert set(body["heads"]) == {"goemotions", "dair", "isear"} and len(body["heads"]["goemotions"]) == 28
    first, empty, long = body["results"]
    assert first["text"] == texts[0] and first["label"] == "happy"
    assert "gratitude" in first["heads"]["goemotions"]["labels"] and first["heads"]["dair"]["label"] == "joy"
    assert set(first["probabilities"]) == set(body["labels"])
    assert set(first["heads"]["isear"]["probabilities"]) == set(body["heads"]["isear"])
    assert empty["label"] is None and empty["error"] == "empty text" and empty["heads"]["dair"]["label"] is None
    assert long["truncated"] and long["label"] in body["labels"]


@pytest.mark.parametrize("payload", [{"texts": []}, {"texts": "one text"}, {"texts": [1, 2]}, {"words": ["x"]}])
def test_malformed_bodies_are_422_with_a_reason(client, payload):
    response = client.post("/v1/text", json=payload)
    assert response.status_code == 422
    assert "texts" in response.json()["detail"]


def test_oversized_text_is_413(client):
    response = client.post("/v1/text", json={"texts": ["a" * 20_001]})
    assert response.status_code == 413 and "20,000" in response.json()["detail"]


def test_openapi_documents_the_route(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "post" in paths["/v1/text"]


def test_a_body_over_the_limit_is_refused_before_it_is_parsed():
    app = create_app(ServeConfig(workers=1, max_upload_bytes=100_000),
                     route_modules=("emodetect.serve.routes_health", "emodetect.serve.routes_text"))
    padded = b'{"texts": ["hello"]' + b" " * 200_000 + b"}"
    with TestClient(app) as c:
        declared = c.post("/v1/text", content=padded, headers={"Content-Type": "application/json"})
        assert declared.status_code == 413 and "100,000 bytes" in declared.json()["detail"]

        def chunks():  # no Content-Length: refused while streaming
            yield b'{"texts": ["hello"]'
            for _ in range(50):
                yield b" " * 4096
            yield b"}"

        streamed = c.post("/v1/text", content=chunks(), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413
        assert c.post("/v1/text", json={"texts": ["hello"]}).status_code == 200


def test_an_unpaired_surrogate_is_a_422_not_a_500(client):
    response = client.post("/v1/text", content=b'{"texts": ["ok", "bad \\ud800 text"]}',
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "Invalid JSON" in response.json()["detail"] or "surrogate" in response.json()["detail"]


def test_a_422_does_not_echo_a_huge_input(client):
    response = client.post("/v1/text", json={"texts": "x" * 1_000_000})
    assert response.status_code == 422 and len(response.text) < 2_000


def test_the_service_serves_the_text_model_it_is_given():
    app = create_app(ServeConfig(workers=1, text_model="minilm-int8"),
                     route_modules=("emodetect.serve.routes_health", "emodetect.serve.routes_text"))
    with TestClient(app) as c:
        body = c.post("/v1/text", json={"texts": ["Thank you so much, this is wonderful!"]}).json()
    assert body["model"] == "minilm-int8" and body["max_tokens"] == 512
    assert set(body["heads"]) == {"goemotions", "dair", "isear"}
    assert body["results"][0]["label"] in body["labels"]


def test_explaining_more_tokens_than_the_budget_is_413_before_any_model_call():
    """1,000 texts of 200 words with ?explain=true held a worker for about 49 minutes (issue 34,
    point 4): texts times tokens are counted first and a request over max_explain_tokens is refused."""
    app = create_app(ServeConfig(workers=1, max_explain_tokens=50),
                     route_modules=("emodetect.serve.routes_health", "emodetect.serve.routes_text"))
    long_text = " ".join(["happy"] * 40)
    with TestClient(app) as c:
        model = app.state.emodetect.services["text"]
        calls = []
        original = model.model.predict
        model.model.predict = lambda rows: calls.append(len(rows)) or original(rows)
        try:
            over = c.post("/v1/text?explain=true", json={"texts": [long_text, long_text]})
            assert over.status_code == 413 and "max_explain_tokens" in over.json()["detail"]
            assert "80" in over.json()["detail"] and "50" in over.json()["detail"] and calls == []
            plain = c.post("/v1/text", json={"texts": [long_text, long_text]})  # without explain: no budget
            assert plain.status_code == 200
            under = c.post("/v1/text?explain=true", json={"texts": [long_text, ""]})
            assert under.status_code == 200 and len(under.json()["results"][0]["explanation"]) == 40
        finally:
            model.model.predict = original


def test_label_sets_are_named_by_what_they_are_and_shown_on_request(client):
    """`dair=joy isear=disgust` named corpora that mean nothing to a user (issue 32, point 10): the
    joint model's other label sets are "28 fine-grained", "6 basic", ..., shown with --label-sets."""
    from typer.testing import CliRunner

    from emodetect.cli import app

    text = "Thank you so much, this made my day!"
    plain = CliRunner().invoke(app, ["text", text])
    asked = CliRunner().invoke(app, ["text", text, "--label-sets"])
    assert plain.exit_code == 0 and asked.exit_code == 0, plain.output + asked.output
    for corpus in ("goemotions", "dair", "isear"):
        assert corpus not in plain.stdout and corpus not in asked.stdout
    assert "fine-grained" not in plain.stdout
    assert "28 fine-grained: " in asked.stdout and "gratitude" in asked.stdout and "6 basic: joy" in asked.stdout
    heads = client.post("/v1/text", json={"texts": [text, ""]}).json()["results"]
    assert {name: h["title"] for name, h in heads[0]["heads"].items()} == {
        "goemotions": "28 fine-grained", "dair": "6 basic", "isear": "7 with shame and guilt"}
    assert heads[1]["heads"]["dair"]["title"] == "6 basic"  # an empty text's too
