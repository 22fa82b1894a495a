"""Runs wsstack's JavaScript client in real Chromium (Debian's, through Playwright's Python client;
no browser download) for tests/js_browser.rs, the way a team's web app uses it: a page served from
its own origin (a small HTTP server here, on another port than `wsstack dev`'s) imports the client
module from dev's /client.js, cross-origin, and connects to dev's stage.

The page runs tests/js_client/drive.mjs, the same harness as the Node test: commands arrive on
stdin as JSON lines and go to the page; what the client reports leaves on stdout as JSON lines,
in the order the page saw it.

Usage: page.py STAGE_URL CLIENT_MODULE_URL OPTIONS_JSON
"""

import http.server
import json
import pathlib
import queue
import sys
import threading

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
DRIVE = pathlib.Path(__file__).resolve().parent.parent / "js_client" / "drive.mjs"
# How often the page's reports are collected and commands looked for: the sync API runs nothing
# in the page while this thread waits on stdin, so stdin is read by a thread of its own.
POLL_MS = 20

PAGE = """<!doctype html><meta charset="utf-8"><title>wsstack client</title>
<script type="module">
window.reports = [];
const say = (report) => window.reports.push(report);
try {{
  const {{ WsstackClient }} = await import({client});
  const {{ drive }} = await import("/drive.mjs");
  window.command = drive(WsstackClient, {stage}, {options}, say);
  say({{ event: "page ready", origin: location.origin }});
}} catch (error) {{
  say({{ event: "page error", message: String(error) }});
}}
</script>"""


def say(report):
    print(json.dumps(report), flush=True)


def serve_page(stage, client, options):
    """The app's origin: the page, and the test harness module it imports."""
    page = PAGE.format(client=json.dumps(client), stage=json.dumps(stage), options=json.dumps(options)).encode()
    drive = DRIVE.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body, kind = {"/": (page, "text/html"), "/drive.mjs": (drive, "text/javascript")}.get(
                self.path, (None, None)
            )
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("content-type", f"{kind}; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def read_commands(commands):
    for line in sys.stdin:
        if line.strip():
            commands.put(json.loads(line))
    commands.put(None)


def main():
    if len(sys.argv) != 4:
        say({"event": "page error", "message": "usage: page.py STAGE_URL CLIENT_MODULE_URL OPTIONS_JSON"})
        sys.exit(2)
    stage, client, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    server, url = serve_page(stage, client, options)
    commands = queue.Queue()
    threading.Thread(target=read_commands, args=(commands,), daemon=True).start()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("pageerror", lambda error: say({"event": "page error", "message": str(error)}))
        page.on(
            "console",
            # Not a failure by itself: Chromium logs a refused or dropped WebSocket here too.
            lambda message: say({"event": "console error", "message": message.text})
            if message.type == "error"
            else None,
        )
        page.goto(url)
        running = True
        while running:
            try:
                command = commands.get_nowait()
            except queue.Empty:
                command = {}
            if command is None:
                running = False
            elif command:
                page.evaluate("(command) => window.command(command)", command)
                running = command.get("cmd") != "close"
            for report in page.evaluate("() => window.reports.splice(0)"):
                say(report)
            if running:
                page.wait_for_timeout(POLL_MS)
        browser.close()
    server.shutdown()


if __name__ == "__main__":
    main()
