"""Drives `wsstack dev`'s console in real Chromium (Debian's, through Playwright's Python client; no
browser download), as tests/dev_console.rs asks:

- the page loads with no console error, every control has a label;
- the client pane mints a token, connects to the stage, subscribes (from the keyboard), and the
  send form's entity update and user notification arrive as frames in the pane and as pushes in the
  activity stream, with the connection and its subscription in the connections table;
- a page of another origin (served here on another port) cannot use the console: its form POST,
  fetch and WebSocket are refused (even with the session's key), and nothing reaches the bus; a
  DNS-rebinding name (Chromium's resolver maps it to 127.0.0.1) gets 403 for the page itself;
- a screenshot of the page.

Usage: console.py CONSOLE_URL SCREENSHOT [README_SCREENSHOT]. Exits 1 with the reason on failure.
"""

import http.server
import re
import sys
import threading
import urllib.parse

from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 20_000
REBIND_HOST = "rebind.test"

ATTACKER_PAGE = """<!doctype html><meta charset="utf-8"><title>another site</title>
<form id="f" method="POST" action="{console}__console/api/send" enctype="text/plain">
<input name='{{"kind":"entity","id":"order-42","message":"from another site","x":"' value='"}}'>
</form>
<script>
const key = {key!r};
const results = {{}};
window.results = results;
(async () => {{
  try {{
    const r = await fetch("{console}__console/api/send", {{method: "POST", mode: "no-cors",
      headers: {{"content-type": "text/plain"}},
      body: JSON.stringify({{kind: "entity", id: "order-42", message: "from another site"}})}});
    results.noCorsPost = r.type;
  }} catch (e) {{ results.noCorsPost = "error: " + e.message; }}
  try {{
    const r = await fetch("{console}__console/api/send", {{method: "POST",
      headers: {{"content-type": "application/json", "x-wsstack-console-key": key}},
      body: JSON.stringify({{kind: "entity", id: "order-42", message: "from another site"}})}});
    results.corsPost = "status " + r.status;
  }} catch (e) {{ results.corsPost = "blocked"; }}
  try {{
    const r = await fetch("{console}__console/api/state", {{headers: {{"x-wsstack-console-key": key}}}});
    results.state = "status " + r.status;
  }} catch (e) {{ results.state = "blocked"; }}
  results.stream = await new Promise((resolve) => {{
    const s = new WebSocket("{ws}__console/api/stream?key=" + key);
    s.onmessage = () => resolve("got data");
    s.onclose = (e) => resolve("closed " + e.code);
  }});
  results.done = true;
}})();
</script>"""


def fail(message):
    print(f"console.py: FAILED: {message}", flush=True)
    sys.exit(1)


def serve_attacker_page(console_url, key):
    """Another origin (127.0.0.1 on another port): a page that tries the console's API."""
    ws = console_url.replace("http://", "ws://")
    page = ATTACKER_PAGE.format(console=console_url, ws=ws, key=key).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def main():
    if len(sys.argv) < 3:
        fail("usage: console.py CONSOLE_URL SCREENSHOT [README_SCREENSHOT]")
    console_url, screenshot = sys.argv[1], sys.argv[2]
    readme_screenshot = sys.argv[3] if len(sys.argv) > 3 else None
    port = urllib.parse.urlparse(console_url).port

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            # A name that resolves to 127.0.0.1, as a DNS-rebinding attacker's would.
            args=[f"--host-resolver-rules=MAP {REBIND_HOST} 127.0.0.1", "--no-sandbox"],
        )
        context = browser.new_context(viewport={"width": 1440, "height": 1000}, color_scheme="light")
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        errors = []
        page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))

        response = page.goto(console_url)
        if response.status != 200:
            fail(f"the console answered {response.status}")
        expect(page.get_by_role("status").filter(has_text="Live.")).to_be_visible()

        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea')]
                 .filter((e) => e.labels.length === 0 && !e.getAttribute('aria-label'))
                 .map((e) => e.id || e.outerHTML)"""
        )
        if unlabelled:
            fail(f"controls without a label: {unlabelled}")

        # The client pane: a token minted on the spot (the stack has `auth:`), then connect.
        page.get_by_label("Token's user id").fill("user-1")
        page.get_by_label("Entities it may subscribe to").fill("order-*")
        page.get_by_role("button", name="Mint a token").click()
        expect(page.get_by_label("Token", exact=True)).to_have_value(re.compile(r"^ey"))
        page.get_by_role("button", name="Connect", exact=True).click()
        expect(page.locator("#client-status")).to_contain_text("Connected to")

        # Subscribe from the keyboard: type the entity, Enter.
        entity = page.get_by_label("Entity", exact=True)
        entity.focus()
        page.keyboard.type("order-42")
        page.keyboard.press("Enter")
        frames = page.locator("#frames")
        expect(frames.locator("li[data-direction=in]", has_text='"subscribed"')).to_have_count(1)
        row = page.locator("#connection-rows tr", has_text="order-42")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("user-1")
        expect(page.locator("#top-entities")).to_contain_text("order-42")

        # The send form: an entity update (Enter in the message field submits it).
        page.get_by_label("Entity id").fill("order-42")
        page.get_by_label("Message").fill("Hello from the console")
        page.get_by_label("Message").press("Enter")
        expect(page.locator("#send-result")).to_contain_text("Sent event")
        expect(frames.locator("li[data-direction=in]", has_text="Hello from the console")).to_have_count(1)

        # A user notification to the token's user.
        page.get_by_label("User notification").check()
        expect(page.locator("#send-id-label")).to_have_text("User id")
        page.get_by_label("User id", exact=True).fill("user-1")
        page.get_by_label("Message").fill("A note for user-1")
        page.get_by_label("Callback").fill("orders/42")
        page.get_by_role("button", name="Send event").click()
        expect(frames.locator("li[data-direction=in]", has_text="A note for user-1")).to_have_count(1)

        activity = page.locator("#activity-log")
        for kind, text in [
            ("connect", "connected"),
            ("subscribe", "order-42"),
            ("bus", "Hello from the console"),
            ("event", "Hello from the console"),
            ("push", "Hello from the console"),
            ("push", "A note for user-1"),
        ]:
            expect(activity.locator(f"li[data-kind={kind}]", has_text=text).first).to_be_visible()

        if readme_screenshot:
            page.wait_for_timeout(500)
            page.screenshot(path=readme_screenshot, full_page=True)

        # Another origin, even knowing the key, gets nothing done.
        key = page.locator('meta[name="wsstack-key"]').get_attribute("content")
        server, attacker_url = serve_attacker_page(console_url, key)
        attacker = context.new_page()
        attacker.goto(attacker_url)
        attacker.wait_for_function("() => window.results && window.results.done", timeout=TIMEOUT_MS)
        results = attacker.evaluate("() => window.results")
        if results.get("corsPost") != "blocked" or results.get("state") != "blocked":
            fail(f"a cross-origin fetch was not blocked: {results}")
        if not results.get("stream", "").startswith("closed"):
            fail(f"a cross-origin page opened the stream: {results}")
        with attacker.expect_navigation() as navigation:
            attacker.evaluate("() => document.getElementById('f').submit()")
        if navigation.value is None or navigation.value.status != 403:
            status = navigation.value and navigation.value.status
            fail(f"the cross-site form POST was answered {status}, not 403")
        attacker.close()
        server.shutdown()
        # The refusals show in the stream; the bus got nothing from the other site.
        expect(activity.locator("li[data-kind=refusal]", has_text="Origin").first).to_be_visible()
        page.wait_for_timeout(1500)
        if activity.locator("li", has_text="from another site").count() or frames.locator(
            "li", has_text="from another site"
        ).count():
            fail("an event from another site reached the bus")

        # DNS rebinding: the page under another name is refused outright.
        rebound = context.new_page()
        answer = rebound.goto(f"http://{REBIND_HOST}:{port}/")
        if answer.status != 403:
            fail(f"the console answered {answer.status} to Host {REBIND_HOST}:{port}")
        rebound.close()

        if errors:
            fail(f"the console page logged errors: {errors}")
        page.screenshot(path=screenshot, full_page=True)
        browser.close()
    print(f"console.py: ok; screenshot {screenshot}", flush=True)


if __name__ == "__main__":
    main()
