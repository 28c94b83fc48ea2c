"""A real cockpit-ws serving the page from the build tree, its bridge on the
test's own bus, and a real headless Chromium driven through WebDriver.

Every process started here runs in a session of its own (cockpit-ws with its
bridge; chromedriver with Chromium), and `stop()` ends that whole session,
also when a test fails half-way."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# `make cockpit` builds the package here: cockpit/storaged/manifest.json under it.
PACKAGES_DIR = os.path.join(REPO, "build", "share")
COCKPIT_WS = "/usr/lib/cockpit/cockpit-ws"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = os.path.join(REPO, "tests", "output", "cockpit")
NOBODY = 65534


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_pids(sid: int) -> list[int]:
    """Processes whose session id is `sid` (field 6 of /proc/PID/stat)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:
            pids.append(int(entry))
    return pids


def command_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def end_session(proc: subprocess.Popen) -> None:
    """SIGTERM the session `proc` leads, then SIGKILL whatever is left of it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
    deadline = time.monotonic() + 5
    while (left := session_pids(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in session_pids(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def packages_env(bus_address: str, home: str) -> dict:
    # The bridge inherits this: its "system" bus is the test's bus, and with a
    # session bus address it does not launch a dbus-daemon of its own.
    return dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus_address, DBUS_SESSION_BUS_ADDRESS=bus_address,
                XDG_DATA_DIRS=f"{PACKAGES_DIR}:/usr/share", HOME=home, LANG="C.UTF-8", LC_ALL="C.UTF-8")


class CockpitWS:
    """cockpit-ws with a local session (no login): the bridge runs as cockpit-ws's user."""

    def __init__(self, base: str, bus_address: str, user: int | None = None):
        self.port = free_port()
        self.home = tempfile.mkdtemp(prefix="cockpit-home-", dir=base)
        self.log_path = os.path.join(base, f"cockpit-ws-{self.port}.log")
        ids = {}
        if user is not None:
            os.chown(self.home, user, user)
            ids = dict(user=user, group=user, extra_groups=[])
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [COCKPIT_WS, "--no-tls", "--port", str(self.port), "--address", "127.0.0.1",
                 "--local-session=cockpit-bridge"],
                env=packages_env(bus_address, self.home), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, **ids)
        self._wait_listening()

    def _wait_listening(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cockpit-ws exited with {self.proc.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"cockpit-ws did not listen on {self.port}:\n{self.log()}")

    def url(self, fragment: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/cockpit/@localhost/storaged/index.html{fragment}"

    def bridges(self) -> list[int]:
        return [p for p in session_pids(self.proc.pid) if "cockpit-bridge" in command_of(p)]

    def log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()[-4000:]

    def stop(self) -> None:
        end_session(self.proc)


class Browser:
    """Headless Chromium through Debian's chromedriver; Selenium never fetches a driver."""

    def __init__(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="storaged-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    f"--user-data-dir={self.profile}", "--window-size=1280,900", "--lang=en-US"):
            options.add_argument(arg)
        # Its own session, so that stop() can end chromedriver and every Chromium process.
        self.service = Service(CHROMEDRIVER, popen_kw={"start_new_session": True})
        self.driver = None
        try:
            self.driver = webdriver.Chrome(service=self.service, options=options)
        except BaseException:
            self.stop()
            raise
        self.driver.implicitly_wait(0)

    def stop(self) -> None:
        try:
            if self.driver:
                self.driver.quit()
        finally:
            proc = getattr(self.service, "process", None)
            if proc is not None:
                end_session(proc)
            shutil.rmtree(self.profile, ignore_errors=True)

    def screenshot(self, name: str) -> str:
        """The whole page as a PNG under tests/output/cockpit/."""
        os.makedirs(SCREENSHOTS, exist_ok=True)
        path = os.path.join(SCREENSHOTS, name + ".png")
        height = self.driver.execute_script(
            "return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)")
        # The viewport itself made as tall as the page (the window's size would include
        # the browser's own frame), then put back.
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 1280, "height": max(800, min(int(height), 3000)), "deviceScaleFactor": 1, "mobile": False})
        try:
            self.driver.save_screenshot(path)
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        print("screenshot:", path)
        return path
