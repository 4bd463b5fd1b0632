"""`folio serve` through the OpenAI Python SDK, as PaddleX and MinerU reach vLLM: list the models,
an answer whole and streamed (the same text), usage, and errors raised as the SDK's own exception
types. Run by tests/clients.rs against a server on the tiny fixture model, with the venv that
scripts/setup.sh makes (.venv-clients, openai pinned there).

    python openai_sdk.py BASE_URL API_KEY IMAGE.png
"""
import base64
import sys

import openai
from openai import OpenAI


def expect(error_type, call):
    try:
        call()
    except error_type as e:
        return e
    raise AssertionError(f"expected {error_type.__name__}")


def main():
    base, key, image_path = sys.argv[1:]
    client = OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
    models = [m.id for m in client.models.list().data]
    assert models == ["tiny"], models

    with open(image_path, "rb") as f:
        url = "data:image/png;base64," + base64.b64encode(f.read()).decode()
    messages = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "OCR:"}]}]

    whole = client.chat.completions.create(model="tiny", messages=messages, max_tokens=16, temperature=0)
    text = whole.choices[0].message.content
    assert whole.choices[0].finish_reason == "length", whole
    assert whole.usage.completion_tokens == 16, whole.usage
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + 16, whole.usage

    chunks = list(client.chat.completions.create(
        model="tiny", messages=messages, max_tokens=16, stream=True, stream_options={"include_usage": True}))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text, (streamed, text)
    assert chunks[-1].usage.completion_tokens == 16, chunks[-1]

    expect(openai.NotFoundError, lambda: client.chat.completions.create(model="nope", messages=messages))
    bad_image = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,!!!"}}, {"type": "text", "text": "OCR:"}]}]
    e = expect(openai.BadRequestError, lambda: client.chat.completions.create(model="tiny", messages=bad_image))
    assert "base64" in str(e), e
    e = expect(openai.BadRequestError, lambda: client.chat.completions.create(model="tiny", messages=messages, n=2))
    wrong_key = OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0)
    expect(openai.AuthenticationError, lambda: wrong_key.models.list())
    print(f"openai {openai.__version__}: models, whole and streamed answers ({len(chunks)} chunks), usage, "
          "NotFoundError, BadRequestError, AuthenticationError: ok")


if __name__ == "__main__":
    main()
