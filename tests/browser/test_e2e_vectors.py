"""static/js/e2e.js against every vector of tests/vectors/e2e/, in Chromium: a writer given
the vector's secret and salt makes exactly its bytes, a reader gets its plaintext back, and
every damaged file fails with the vector's error code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page
from tests.conftest import LiveServer

from satchel.crypto import e2e

VECTORS = Path(__file__).parents[1] / "vectors" / "e2e"
POSITIVE = sorted(p.name for p in VECTORS.glob("*.json") if p.name != "negative.json")

RUN_POSITIVE = """async (v) => {
  const m = await import("/static/js/e2e.js");
  const hex = (s) => Uint8Array.from(s.match(/../g) || [], (h) => parseInt(h, 16));
  const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const secret = v.mode === "key" ? { key: hex(v.key) } : { password: v.password };
  const plain = new Blob([hex(v.plaintext)]);
  const writer = await m.encryptor(plain, v.name, v.content_type, secret, v.chunk_size,
                                   { salt: hex(v.salt), iterations: v.iterations || undefined });
  const pieces = [];
  for await (const piece of writer.chunks()) pieces.push(...piece);
  const ranged = await writer.read(5, writer.size - 3);
  const opened = await m.decryptor(hex(v.ciphertext), secret);
  const back = new Uint8Array(await (await m.streamToBlob(opened.stream)).arrayBuffer());
  // The reader from a stream of tiny pieces, as a network delivers them.
  const bytes = hex(v.ciphertext);
  let at = 0;
  const trickle = new ReadableStream({ pull(c) {
    if (at >= bytes.length) return c.close();
    c.enqueue(bytes.slice(at, at + 7)); at += 7;
  } });
  const trickled = await m.decryptor(trickle, secret);
  const back2 = new Uint8Array(await (await m.streamToBlob(trickled.stream)).arrayBuffer());
  const fragment = m.parseFragment("#" + v.link_fragment);
  return {
    ciphertext: toHex(new Uint8Array(pieces)),
    header: toHex(writer.header),
    size: writer.size,
    ranged: toHex(ranged),
    plaintext: toHex(back),
    plaintext2: toHex(back2),
    meta: opened.meta,
    fragmentKey: fragment.key ? toHex(fragment.key) : null,
    fragmentPassword: fragment.password,
    linkText: fragment.key ? m.keyText(fragment.key) : null,
    predicted: m.encryptedSize(v.size, v.chunk_size, v.name, v.content_type),
  };
}"""

RUN_NEGATIVE = """async (vectors) => {
  const m = await import("/static/js/e2e.js");
  const hex = (s) => Uint8Array.from(s.match(/../g) || [], (h) => parseInt(h, 16));
  const codes = {};
  for (const v of vectors) {
    const secret = v.key ? { key: hex(v.key) } : { password: v.password };
    try {
      const { stream } = await m.decryptor(hex(v.ciphertext), secret);
      await m.streamToBlob(stream);
      codes[v.name] = "none";
    } catch (error) {
      codes[v.name] = error.code || String(error);
    }
  }
  return codes;
}"""

RUN_LINKS = """async (cases) => {
  const m = await import("/static/js/e2e.js");
  return cases.map((hash) => {
    try {
      const parsed = m.parseFragment(hash);
      return parsed.key ? m.keyText(parsed.key) : (parsed.password ? "password" : "none");
    } catch (error) {
      return error.code;
    }
  });
}"""


@pytest.fixture
def satchel_page(live_server: LiveServer, page: Page) -> Page:
    page.goto(live_server.url + "/login")  # any page: its CSP admits /static/js/
    return page


@pytest.mark.parametrize("name", POSITIVE)
def test_positive_vector_both_ways(satchel_page: Page, name: str) -> None:
    vector: dict[str, Any] = json.loads((VECTORS / name).read_text())
    got = satchel_page.evaluate(RUN_POSITIVE, vector)
    assert got["header"] == vector["header"]
    assert got["ciphertext"] == vector["ciphertext"]
    assert got["size"] == len(vector["ciphertext"]) // 2 == got["predicted"]
    assert got["ranged"] == vector["ciphertext"][10:-6]
    assert got["plaintext"] == got["plaintext2"] == vector["plaintext"]
    assert got["meta"] == {
        "name": vector["name"],
        "type": vector["content_type"],
        "size": vector["size"],
    }
    if vector["mode"] == "key":
        assert got["fragmentKey"] == vector["key"]
        assert got["linkText"] == vector["link_fragment"].removeprefix("k=")
    else:
        assert got["fragmentKey"] is None
        assert got["fragmentPassword"] == ("p" in vector["link_fragment"].split("&"))


def test_negative_vectors_fail_with_their_codes(satchel_page: Page) -> None:
    negative = json.loads((VECTORS / "negative.json").read_text())["vectors"]
    codes = satchel_page.evaluate(RUN_NEGATIVE, negative)
    assert codes == {v["name"]: v["error"] for v in negative}


def test_links_parse_as_the_python_side_does(satchel_page: Page) -> None:
    key = e2e.key_to_fragment(bytes(range(32)))[2:]
    cases = [
        f"#k={key}",
        f"#p&k={key}&x=1",
        "#p",
        "",
        f"#k={key}&k={key}",
        "#k=short",
        f"#k={key[:-1]}B",  # not canonical: bits set past the 32 bytes
        f"#k={key[:-1]}+",
    ]
    got = satchel_page.evaluate(RUN_LINKS, cases)
    expected = []
    for case in cases:
        try:
            _, parsed = e2e.parse_link("https://x/d/y" + (case or ""))
        except e2e.BadLink:
            expected.append("bad_link")
            continue
        if parsed is not None:
            expected.append(e2e.key_to_fragment(parsed)[2:])
        else:
            expected.append("password" if case == "#p" else "none")
    assert got == expected
    assert expected[4:] == ["bad_link"] * 4
