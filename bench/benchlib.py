"""What the Python benchmarks share: a release server on a fresh SQLite database in a
temporary directory, a free port, and a watch for builds that would skew the figures.
Imported by the scripts beside it (Python puts a script's own folder on its path)."""
import http.client, os, re, secrets, signal, socket, subprocess, sys, tempfile, threading, time

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Settings the server gets from here, never from whoever runs the benchmark.
OWN = ("DATABASE_URL", "RUST_LOG", "APP_ENV", "HOST", "PORT", "SECRET_KEY")


class Compilers:
    """Watches for cargo and rustc processes (another build on the machine) while measuring."""

    def __init__(self):
        self.seen = set()
        self.stop = threading.Event()
        threading.Thread(target=self.watch, daemon=True).start()

    def watch(self):
        while not self.stop.wait(0.5):
            self.seen.update(subprocess.run(["pgrep", "-x", "rustc|cargo"],
                                            capture_output=True).stdout.split())

    def take(self):
        seen, self.seen = self.seen, set()
        return len(seen)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`bin_path` serving on a free port from a temporary directory with its own SQLite
    database, mail folder (`mail_dir`), a random SECRET_KEY and text logs, plus `settings`; the environment's
    variables pass through unless `keep` says no (a name) or `settings` sets them.
    Waits until `ready` answers 200; exits the script, with the log, if it never does."""

    def __init__(self, bin_path, prefix, settings, keep=lambda name: True,
                 ready="/api/health", ready_seconds=60):
        self.dir = tempfile.TemporaryDirectory(prefix=prefix)
        self.log_path = os.path.join(self.dir.name, "server.log")
        self.mail_dir = os.path.join(self.dir.name, "mail")
        self.port = free_port()
        self.stopped = None
        env = {k: v for k, v in os.environ.items() if k not in OWN and keep(k)}
        self.passed = sorted(k for k in env if k.startswith("CHATBOT__") and k not in settings)
        env.update({
            "DATABASE_URL": f"sqlite://{self.dir.name}/chatbot.db",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "SECRET_KEY": secrets.token_hex(32),
            "CHATBOT__MAIL__FILE_DIR": self.mail_dir,
            "CHATBOT__LOG__FORMAT": "text",
        })
        env.update(settings)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([bin_path], cwd=self.dir.name, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + ready_seconds
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", ready)
                if c.getresponse().status == 200:
                    c.close()
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        text = self.stop()
        sys.exit(f"setup: the server did not answer GET {ready}:\n{text}")

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return ANSI.sub("", f.read().decode(errors="replace"))

    def stop(self):
        """Stops it with SIGTERM (SIGKILL after a minute); its log, without colours."""
        if self.stopped is not None:
            return self.stopped
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.stopped = self.log_text()
        self.dir.cleanup()
        return self.stopped
