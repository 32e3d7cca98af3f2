"""The page of rrn serve in a real browser: Debian's Chromium, driven by selenium, its fake
camera fed from a real UCF-101 clip; the page must show the model's class names and the server
must have classified the camera's frames.

Needs /usr/bin/chromium and /usr/bin/chromedriver (`apt-get install chromium chromium-driver`;
.ci/run installs them), selenium, and ../shared/data; skipped, saying which is missing, elsewhere.
"""

import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")

pytestmark = [
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER),
        reason="needs Debian's chromium and chromium-driver (apt-get install "
        "chromium chromium-driver)",
    ),
    pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {DATA}"),
]
selenium = pytest.importorskip("selenium", reason="needs selenium (pip install selenium)")
pytest.importorskip("uvicorn")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service as DriverService  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from rrn import load_model  # noqa: E402
from runs import save_run  # noqa: E402

CLASSES = ("ApplyEyeMakeup", "ApplyLipstick", "Archery", "BabyCrawling")


def write_y4m(video: Path, out: Path, frames: int = 75) -> Path:
    """The first ``frames`` frames of ``video`` as a Y4M file (Chromium's fake camera input)."""
    import av

    with av.open(str(video)) as c, open(out, "wb") as fh:
        s = c.streams.video[0]
        w, h = s.width - s.width % 2, s.height - s.height % 2
        fh.write(f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\n".encode())
        for i, frame in enumerate(c.decode(video=0)):
            if i == frames:
                break
            yuv = frame.reformat(width=w, height=h, format="yuv420p").to_ndarray()  # (h*3/2, w)
            fh.write(b"FRAME\n" + np.ascontiguousarray(yuv).tobytes())
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    import uvicorn

    from rrn.config import ServeConfig
    from rrn.serve.app import create_app

    run = save_run(tmp_path / "run", frame_size=32, sample_every=5, classes=CLASSES)
    app = create_app(load_model(run), ServeConfig(allowed_hosts=("testserver",)))
    port = _free_port()
    srv = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio"
        )
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # the server's start, on a busy machine too
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "the server did not start within 120 s"
    yield f"http://127.0.0.1:{port}", app.state.service
    srv.should_exit = True
    thread.join(20)


def _browser(tmp_path, camera: Path):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
        "--window-size=1100,900",
    ):
        opts.add_argument(flag)
    return webdriver.Chrome(service=DriverService(DRIVER), options=opts)


def test_the_page_classifies_the_webcam_and_shows_class_names(server, tmp_path):
    url, service = server
    clip = sorted((DATA / "ucf101_mini" / "UCF-101").glob("*/*.mp4"))[0]
    camera = write_y4m(clip, tmp_path / "camera.y4m")
    browser = _browser(tmp_path, camera)
    try:
        browser.get(url + "/")
        wait = WebDriverWait(browser, 60)
        wait.until(lambda b: not b.find_element(By.ID, "camera").get_property("disabled"))
        assert (
            "4 classes (ApplyEyeMakeup, ApplyLipstick" in browser.find_element(By.ID, "model").text
        )
        browser.find_element(By.ID, "camera").click()
        wait.until(lambda b: any(c in b.find_element(By.ID, "top").text for c in CLASSES))
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#legend span")) >= 1)
        top = browser.find_element(By.ID, "top").text.splitlines()
        assert len(top) == 3 and all(line.split()[0] in CLASSES for line in top)
        assert browser.find_element(By.ID, "status").text.startswith("streaming:")
        browser.save_screenshot(str(tmp_path / "page.png"))
        shutil.copy(tmp_path / "page.png", "/tmp/serve_page.png")
    finally:
        browser.quit()
    assert service.batcher.stats().classified >= 2
    assert service.metrics.frames_received._value.get() >= 2
