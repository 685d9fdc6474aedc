"""A few W3C WebDriver calls to a chromedriver of our own, for the benches that measure the web
UI in headless Chromium (bench-web.sh, bench-call-web.sh). Usage:

    with Chromium(["--use-fake-device-for-media-stream"]) as browser:
        browser.open(url); browser.js("return 1")
"""
import json
import random
import subprocess
import time
import urllib.error
import urllib.request


class Chromium:
    def __init__(self, extra_args=()):
        self.port = random.randint(41000, 49000)
        self.driver = subprocess.Popen(["chromedriver", f"--port={self.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                self._call("GET", "/status")
                break
            except Exception:
                time.sleep(0.1)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--autoplay-policy=no-user-gesture-required", *extra_args]
        self.session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"args": args}}}})["sessionId"]

    def _call(self, method, path, body=None):
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"content-type": "application/json"})
        try:
            return json.load(urllib.request.urlopen(request, timeout=60))["value"]
        except urllib.error.HTTPError as error:
            raise SystemExit(f"webdriver {path}: {error.read()[:300]}")

    def open(self, url):
        self._call("POST", f"/session/{self.session}/url", {"url": url})

    def js(self, code, args=()):
        return self._call("POST", f"/session/{self.session}/execute/sync", {"script": code, "args": list(args)})

    def login(self, base, user, password):
        self.open(base + "/login.html")
        self.js("document.getElementById('name').value=arguments[0];document.getElementById('password').value=arguments[1];"
                "document.getElementById('submit').click()", [user, password])
        self.wait("return location.pathname === '/'", 30)

    def wait(self, condition, seconds):
        """Polls `condition` (JavaScript returning a boolean) until it holds; False after `seconds`."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.js(condition):
                return True
            time.sleep(0.2)
        return False

    def __enter__(self):
        return self

    def __exit__(self, *_):
        try:
            self._call("DELETE", f"/session/{self.session}")
        finally:
            self.driver.kill()
