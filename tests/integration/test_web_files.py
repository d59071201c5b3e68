"""Files on the web page in headless Chromium: sent with the picker or by drag and drop (chunked through
POST /uploads and PUT /uploads/<key>/<index>), images shown inline in every tab, other files as download
links, a file sent from another dialect shown alike, and a file's name always shown as text.

Needs /usr/bin/chromium and the playwright package (tests/browser.py); skipped, with the reason, without.
"""

import base64
import struct
import zlib

import pytest_twisted

from tests.browser import WebUser, browser  # noqa: F401  (the fixture)
from tests.conftest import typed_user
from tests.integration.test_web_browser import page_service
from tests.wsclient import http_port

IMAGE_JS = """(name) => { const img = [...document.querySelectorAll('#messages img.image')].find(i => i.alt === name);
    return img && img.src && img.complete ? [img.naturalWidth, img.naturalHeight, img.src.slice(0, 5)] : null; }"""
LINK_JS = """(name) => [...document.querySelectorAll('#messages a.file-link')].map(a => a.textContent)
    .filter(t => t.startsWith(name))"""


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid PNG of one colour, made here (no image library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


DROP_JS = """([name, text]) => {
    const data = new DataTransfer();
    data.items.add(new File([text], name, {type: 'text/plain'}));
    const target = document.getElementById('conversation');
    for (const type of ['dragenter', 'dragover', 'drop']) {
        target.dispatchEvent(new DragEvent(type, {dataTransfer: data, bubbles: true, cancelable: true}));
    }
}"""


async def wait_image(page: WebUser, name: str) -> list:
    await page.browser.run(lambda: page.page.wait_for_function(IMAGE_JS, arg=name))
    return await page.evaluate(IMAGE_JS, name)


@pytest_twisted.ensureDeferred
async def test_images_inline_and_files_as_links_from_the_page_and_from_another_dialect(data_dir, tmp_path, browser):  # noqa: F811
    service = await page_service(data_dir)
    url = f"http://127.0.0.1:{http_port(service)}/"
    pages, lines = [], []
    try:
        ann = await WebUser(browser, url).open()
        pages.append(ann)
        ben = await WebUser(browser, url).open()
        pages.append(ben)
        for page, name in ((ann, "ann"), (ben, "ben")):
            await page.enter(name)
            await page.join("pics")

        # an image by the picker: big enough for three chunks, shown inline in both tabs
        picture = tmp_path / "red square.png"
        picture.write_bytes(png(300, 200, (200, 30, 30)) + b"\0" * 70000)  # bytes after IEND are ignored by readers

        def pick():
            with ann.page.expect_file_chooser() as chooser:
                ann.page.get_by_role("button", name="Attach").click()
            chooser.value.set_files(str(picture))

        await ann.browser.run(pick)
        for page in (ann, ben):
            assert await wait_image(page, "red square.png") == [300, 200, "blob:"]
        size = picture.stat().st_size
        assert size > 2 * 32768  # three chunks
        assert await ben.evaluate(LINK_JS, "red square.png") == [f"red square.png ({size / 1024:.1f} KiB)"]

        # a text file dropped on the conversation: a download link, whose bytes are the file's
        await ann.evaluate(DROP_JS, ["notes.txt", "plain words\n"])
        await ben.browser.run(lambda: ben.page.wait_for_function(LINK_JS + ".length === 1", arg="notes.txt"))

        def download() -> bytes:
            with ben.page.expect_download() as saving:
                ben.page.get_by_role("link", name="notes.txt (12 B)").click()
            return open(saving.value.path(), "rb").read()

        assert await ben.browser.run(download) == b"plain words\n"
        assert await ann.evaluate("() => document.querySelectorAll('#messages img').length") == 1

        # a typed (seed 002) user's image, and a file whose name is markup: shown as the text it is
        tom = await typed_user(service, "tom")
        lines.append(tom)
        tom.send("USER_JOIN", room="pics")
        await tom.payload("USER_JOIN")
        for media_id, name, data in (
            ("m1", "blue.png", png(40, 30, (20, 40, 220))),
            ("m2", '<img src=x onerror="document.body.dataset.owned=1">.png', png(10, 10, (0, 0, 0))),
        ):
            tom.send("MEDIA_MESSAGE", receiver="pics", mediaId=media_id, mediaType="image/png", mediaSize=len(data),
                     fileName=name)  # fmt: skip
            await tom.payload("MEDIA_MESSAGE_ACK")
            tom.send("MEDIA_MESSAGE_DATA", mediaId=media_id, chunkIndex=1, totalChunks=1,
                     data=base64.b64encode(data).decode())  # fmt: skip
            await tom.payload("MEDIA_MESSAGE_COMPLETE")
        for page in (ann, ben):
            assert await wait_image(page, "blue.png") == [40, 30, "blob:"]
            trap = '<img src=x onerror="document.body.dataset.owned=1">.png'
            assert await wait_image(page, trap) == [10, 10, "blob:"]
            assert await page.evaluate(LINK_JS, "<img") == [f"{trap} ({len(png(10, 10, (0, 0, 0)))} B)"]
            assert await page.evaluate("() => document.body.dataset.owned") is None
            assert await page.evaluate("() => document.querySelectorAll('#messages img:not(.image)').length") == 0
        for page in pages:
            assert page.problems == []
    finally:
        for page in pages:
            await page.close()
        for line in lines:
            await line.close()
        await service.stopService()
