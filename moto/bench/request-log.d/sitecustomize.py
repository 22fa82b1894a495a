"""moto/bench/request-log's start-up: gaps.py as the launcher loads it, then a log line for every
request the server answers, written to $MOTO_REQUEST_LOG (or moto-requests.log here)."""
import os
import threading
import time

_here = os.path.dirname(os.path.abspath(__file__))
_gaps = os.path.join(_here, "..", "..", "src", "gaps.py")
with open(_gaps) as _file:
    exec(compile(_file.read(), _gaps, "exec"))

_log = open(os.environ.get("MOTO_REQUEST_LOG", "moto-requests.log"), "a", buffering=1)

try:
    from moto.moto_server import werkzeug_app as _werkzeug_app
except ImportError:
    _werkzeug_app = None

if _werkzeug_app is not None:
    _dispatch = _werkzeug_app.DomainDispatcherApplication.__call__

    def _logged(self, environ, start_response):
        came = time.time()
        action = environ.get("HTTP_X_AMZ_TARGET") or environ.get("QUERY_STRING", "")[:40]
        try:
            return _dispatch(self, environ, start_response)
        finally:
            done = time.time()
            _log.write(f"{came:.4f} {done:.4f} {(done - came) * 1000:7.1f} {threading.get_ident()} {action}\n")

    _werkzeug_app.DomainDispatcherApplication.__call__ = _logged
