"""Stand-in Lambda Runtime API on loopback: starts each binary in turn (interleaved one by one),
times process start -> first request line of GET /2018-06-01/runtime/invocation/next, kills it.
usage: init_bench.py ROUNDS name=path[@VAR=value,...] [...] (scripts/bench-init runs it)"""
import os, socket, subprocess, sys, time, statistics

rounds = int(sys.argv[1])
binaries = []
extra = {}
for arg in sys.argv[2:]:
    name, rest = arg.split("=", 1)
    path, _, env_text = rest.partition("@")
    extra[name] = dict(item.split("=", 1) for item in env_text.split(",") if item)
    binaries.append((name, path))
samples = {name: [] for name, _ in binaries}
base_env = {
    "AWS_LAMBDA_FUNCTION_NAME": "wsstack-test-push", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/wsstack-test-push",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/26/[$LATEST]0123456789abcdef", "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "WSSTACK_HANDLER": "push", "TABLE_NAME": "wsstack-test-connections",
    "TTL_HOURS": "3", "CALLBACK_URL": "http://127.0.0.1:9/test",
}
devnull = open(os.devnull, "wb")
for round_ in range(rounds):
    for name, path in binaries:
        listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(1)
        env = dict(base_env, **extra[name]); env.update(AWS_LAMBDA_RUNTIME_API="127.0.0.1:%d" % listener.getsockname()[1])
        listener.settimeout(20)
        started = time.perf_counter()
        child = subprocess.Popen([path], env=env, stdout=devnull, stderr=devnull)
        connection, _ = listener.accept()
        data = b""
        while b"\r\n" not in data:
            chunk = connection.recv(4096)
            if not chunk: raise SystemExit("%s closed without a request" % name)
            data += chunk
        elapsed = time.perf_counter() - started
        assert data.startswith(b"GET /2018-06-01/runtime/invocation/next"), data
        samples[name].append(elapsed * 1000)
        child.kill(); child.wait(); connection.close(); listener.close()
floor_median = None
for name, _ in binaries:
    values = sorted(samples[name])
    median = statistics.median(values)
    if name == "floor": floor_median = median
    print("%-10s n=%d min %.2f ms  median %.2f ms  max %.2f ms" % (name, len(values), values[0], median, values[-1]))
print("load average:", " ".join("%.2f" % x for x in os.getloadavg()))
