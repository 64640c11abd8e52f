#!/usr/bin/env python3
"""Reads the container set-up without a Docker engine, for the two scripts beside it.

    compose_tool.py check RESOLVED.yml   # docker-compose.yml and the Dockerfile hold
                                         # what the service needs (compose-check.sh)
    compose_tool.py env RESOLVED.yml     # the app container's environment, as
                                         # NUL-separated NAME=value (compose-smoke.sh)
    compose_tool.py resolve docker-compose.yml   # ${VARIABLES} filled in from this
                                         # process's environment, when no compose
                                         # tool is installed to do it

RESOLVED.yml is the output of `docker-compose config` (or `docker compose config`):
docker-compose.yml with its ${VARIABLES} filled in by compose itself. The Dockerfile,
.dockerignore and docker/healthcheck.sh are read from the repository. Needs PyYAML
(Debian's python3-yaml, which docker-compose itself depends on).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - reported to the operator
    sys.exit(
        "FATAL: PyYAML is missing for this python3 "
        f"({sys.executable}): apt-get install -y python3-yaml, or pip install pyyaml"
    )

ROOT = Path(__file__).resolve().parent.parent

# What compose-check.sh fills the required variables with; `check` expects them back,
# and DATABASE_URL as docker-compose.yml builds it from POSTGRES_PASSWORD (it is not
# an input: .env.example has none, see check_sources).
SAMPLE = {
    "SECRET_KEY": "compose-check-secret-compose-check-secret-0123456789",
    "POSTGRES_PASSWORD": "compose-check-password",
    "DATABASE_URL": "postgres://chatbot:compose-check-password@db:5432/chatbot",
}


class Problems:
    def __init__(self) -> None:
        self.found: list[str] = []

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            self.found.append(message)


# --- the Dockerfile ---------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        if pending.strip():
            word, _, rest = pending.strip().partition(" ")
            instructions.append((word.upper(), rest.strip()))
        pending = ""
    if pending.strip():
        word, _, rest = pending.strip().partition(" ")
        instructions.append((word.upper(), rest.strip()))
    return instructions


def substitute(text: str, variables: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return variables.get(name, "")

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def env_pairs(arguments: str) -> dict[str, str]:
    """`ENV A=1 B="two words"` (or the old `ENV A 1`) as a dict."""
    words = shlex.split(arguments)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


class Dockerfile:
    def __init__(self, path: Path) -> None:
        self.instructions = dockerfile_instructions(path.read_text())
        self.args: dict[str, str] = {}
        self.stages: list[dict] = []
        for word, rest in self.instructions:
            if word == "ARG" and not self.stages:
                name, _, default = rest.partition("=")
                self.args[name.strip()] = default.strip()
            elif word == "FROM":
                image = substitute(rest.split()[0], self.args)
                name = rest.split()[-1] if " AS " in rest.upper() else None
                self.stages.append({"image": image, "name": name, "steps": []})
            elif self.stages:
                self.stages[-1]["steps"].append((word, rest))

    def runtime(self) -> dict:
        return self.stages[-1]

    def env(self) -> dict[str, str]:
        """The final stage's ENV, in order."""
        values: dict[str, str] = {}
        for word, rest in self.runtime()["steps"]:
            if word == "ENV":
                values.update(env_pairs(rest))
        return values

    def last(self, stage: dict, word: str) -> str | None:
        found = [rest for step, rest in stage["steps"] if step == word]
        return found[-1] if found else None


def dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker reads it: rooted at the context, `*` and `?`
    within one path segment, `**` across any number of them."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `path` (relative to the root) out of the context:
    the last pattern matching the path or one of its parent folders decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = dockerignore_regex(os.path.normpath(pattern.lstrip("!")).strip("/"))
        if any(regex.match(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def workspace_members() -> list[str]:
    text = (ROOT / "Cargo.toml").read_text()
    try:
        import tomllib

        members = tomllib.loads(text)["workspace"]["members"]
    except ImportError:  # Python < 3.11
        block = re.search(r"members\s*=\s*\[(.*?)\]", text, re.S)
        members = re.findall(r'"([^"]+)"', block.group(1) if block else "")
    found = []
    for member in members:
        found.extend(sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(member)))
    return found


def check_dockerfile(problems: Problems) -> None:
    dockerfile = Dockerfile(ROOT / "Dockerfile")
    stages = dockerfile.stages
    problems.expect(len(stages) >= 2, "Dockerfile: expected a build stage and a runtime stage")
    for stage in stages:
        image = stage["image"]
        problems.expect(
            ":" in image and not image.endswith(":latest"),
            f"Dockerfile: FROM {image} is not pinned to a version",
        )
    build, runtime = stages[0], dockerfile.runtime()

    # The dependency layer: a release build before the sources are copied, and again after.
    steps = build["steps"]
    runs = [i for i, (w, r) in enumerate(steps) if w == "RUN" and "cargo build" in r]
    copies_code = [i for i, (w, r) in enumerate(steps) if w == "COPY" and r.split()[0] == "crates/"]
    problems.expect(
        len(runs) >= 2 and copies_code and runs[0] < copies_code[0] < runs[-1],
        "Dockerfile: expected `cargo build` of the dependencies before `COPY crates/` and "
        "of the code after it",
    )
    for i in runs:
        problems.expect(
            all(flag in steps[i][1] for flag in ("--release", "--locked", "-p chatbot-server")),
            f"Dockerfile: `{steps[i][1][:60]}…` should be cargo build --release --locked -p chatbot-server",
        )
    copied = [shlex.split(r) for w, r in steps if w == "COPY"]
    before_code = [shlex.split(r)[0] for i, (w, r) in enumerate(steps)
                   if w == "COPY" and copies_code and i < copies_code[0]]
    for member in workspace_members():
        problems.expect(
            f"{member}/Cargo.toml" in before_code,
            f"Dockerfile: the dependency layer does not COPY {member}/Cargo.toml (a new crate?)",
        )
    problems.expect(
        any(c[0].rstrip("/") == ".cargo" for c in copied if c),
        "Dockerfile: .cargo/ (LIBSQLITE3_FLAGS) is not copied into the build",
    )

    # The runtime stage. OpenSSL is built into the binary (openssl-sys `vendored`), so
    # the image installs no libssl; CA certificates it keeps (sslrootcert=system).
    installs = " ".join(r for w, r in runtime["steps"] if w == "RUN")
    problems.expect(
        re.search(r"\blibssl|\bopenssl\b", installs) is None,
        "Dockerfile: the runtime stage installs OpenSSL; the binary carries its own (vendored)",
    )
    problems.expect(
        "ca-certificates" in installs,
        "Dockerfile: the runtime stage should install ca-certificates",
    )
    # The vendored OpenSSL looks for them in its own default place (/usr/local/ssl):
    # without these, sslrootcert=system finds no CA and refuses every server.
    runtime_env = dockerfile.env()
    problems.expect(
        runtime_env.get("SSL_CERT_FILE") == "/etc/ssl/certs/ca-certificates.crt"
        and runtime_env.get("SSL_CERT_DIR") == "/etc/ssl/certs",
        "Dockerfile: ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt and SSL_CERT_DIR=/etc/ssl/certs "
        "expected, for the binary's own OpenSSL to find the CA certificates",
    )
    user = dockerfile.last(runtime, "USER")
    problems.expect(
        user is not None and user.split(":")[0] not in ("root", "0"),
        f"Dockerfile: the runtime stage runs as {user or 'root'}; it must be a non-root user",
    )
    health = dockerfile.last(runtime, "HEALTHCHECK") or ""
    problems.expect("/api/health" in health, "Dockerfile: no HEALTHCHECK on /api/health")
    expose = (dockerfile.last(runtime, "EXPOSE") or "").split()
    problems.expect("5000" in expose or "5000/tcp" in expose, "Dockerfile: EXPOSE 5000 missing")
    env = dockerfile.env()
    for name, value in {"APP_ENV": "production", "HOST": "0.0.0.0"}.items():
        problems.expect(
            env.get(name) == value,
            f"Dockerfile: ENV {name}={value} expected, found {env.get(name)!r}",
        )
    problems.expect(
        any(w == "COPY" and "--from=" in r and "target/release/chatbot" in r for w, r in runtime["steps"]),
        "Dockerfile: the runtime stage does not take target/release/chatbot from the build",
    )
    problems.expect(
        os.access(ROOT / "docker" / "healthcheck.sh", os.X_OK),
        "docker/healthcheck.sh is missing or not executable",
    )

    # Everything COPY takes from the context exists and is not .dockerignore'd.
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    problems.expect(
        ignored("target/release/chatbot", patterns) and ignored(".git/HEAD", patterns),
        ".dockerignore: target/ and .git/ must stay out of the build context",
    )
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    ).stdout.split()
    for stage in stages:
        for word, rest in stage["steps"]:
            if word not in ("COPY", "ADD") or "--from=" in rest:
                continue
            words = [w for w in shlex.split(rest) if not w.startswith("--")]
            for source in words[:-1]:
                path = source.rstrip("/")
                problems.expect((ROOT / path).exists(), f"Dockerfile: COPY {source}: no such file")
                inside = [f for f in tracked if f == path or f.startswith(path + "/")]
                shut_out = [f for f in inside if ignored(f, patterns)]
                problems.expect(
                    not shut_out,
                    f"Dockerfile: COPY {source}: .dockerignore excludes {shut_out[:3]}",
                )


# --- docker-compose.yml -----------------------------------------------------------


def published_ports(service: dict) -> list[tuple[str, str]]:
    """(published, target) pairs, from the short or the long syntax."""
    pairs = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            pairs.append((str(port.get("published", "")), str(port.get("target", ""))))
        else:
            parts = str(port).split("/")[0].split(":")
            pairs.append((parts[-2] if len(parts) > 1 else "", parts[-1]))
    return pairs


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {}) or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def check_compose(config: dict, problems: Problems) -> None:
    services = config.get("services", {})
    problems.expect({"app", "db"} <= set(services), "compose: services app and db expected")
    app, db = services.get("app", {}), services.get("db", {})

    build = app.get("build")
    context = build.get("context") if isinstance(build, dict) else build
    problems.expect(
        context is not None and Path(context).resolve() == ROOT,
        f"compose: app must be built from the repository's Dockerfile (build: {build!r})",
    )
    depends = app.get("depends_on", {})
    problems.expect(
        isinstance(depends, dict) and depends.get("db", {}).get("condition") == "service_healthy",
        f"compose: app must depend on db with condition service_healthy ({depends!r})",
    )
    env = environment(app)
    wanted = {
        "APP_ENV": "production",
        "HOST": "0.0.0.0",
        "PORT": "5000",
        "SECRET_KEY": SAMPLE["SECRET_KEY"],
        "DATABASE_URL": SAMPLE["DATABASE_URL"],
        "CHATBOT__SESSION__COOKIE_SECURE": "true",
    }
    for name, value in wanted.items():
        problems.expect(
            env.get(name) == value,
            f"compose: app environment {name} should be {value!r}, is {env.get(name)!r}",
        )
    problems.expect(
        ("5000", "5000") in published_ports(app),
        f"compose: app must publish port 5000 ({published_ports(app)})",
    )

    image = str(db.get("image", ""))
    problems.expect(
        re.fullmatch(r"postgres:\d+\.\d+[\w.-]*", image) is not None,
        f"compose: db image {image!r} should be the official postgres image pinned to a minor version",
    )
    test = db.get("healthcheck", {}).get("test", [])
    test = " ".join(test) if isinstance(test, list) else str(test)
    problems.expect("pg_isready" in test, "compose: db healthcheck should run pg_isready")
    db_env = environment(db)
    problems.expect(
        db_env.get("POSTGRES_PASSWORD") == SAMPLE["POSTGRES_PASSWORD"],
        "compose: db must take POSTGRES_PASSWORD from the environment",
    )
    volumes = config.get("volumes", {}) or {}
    mounts = [str(v.get("source", "")) if isinstance(v, dict) else str(v).split(":")[0] for v in db.get("volumes", [])]
    problems.expect(
        any(m in volumes for m in mounts),
        f"compose: db data should be on a named volume ({mounts}, declared: {list(volumes)})",
    )


def strings(value):
    """Every string in a parsed YAML document, keys included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str):
        yield value


def check_sources(problems: Problems) -> None:
    """What the resolved file cannot show: docker-compose.yml as written, .env.example."""
    raw = load(str(ROOT / "docker-compose.yml"))
    # Only ${VAR}, ${VAR:-default} and ${VAR:?error}: docker-compose v1 and v2 agree on them.
    for text in strings(raw):
        for match in VARIABLE.finditer(text):
            problems.expect(
                match.group(1) is not None and match.group(2) in (None, ":-", ":?"),
                f"compose: {match.group(0)!r}: keep interpolation to ${{VAR}}, ${{VAR:-default}}, ${{VAR:?error}}",
            )
    app_env = environment(raw.get("services", {}).get("app", {}))
    url = app_env.get("DATABASE_URL", "")
    problems.expect(
        re.fullmatch(r"postgres://chatbot:\$\{POSTGRES_PASSWORD(:\?[^}]*)?\}@db:5432/chatbot", url) is not None,
        "compose: the app's DATABASE_URL must be built in docker-compose.yml from POSTGRES_PASSWORD "
        f"(postgres://chatbot:${{POSTGRES_PASSWORD:?...}}@db:5432/chatbot), is {url!r}",
    )
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    stray = [
        line for line in example.splitlines()
        if re.match(r"\s*#?\s*(export\s+)?DATABASE_URL\s*=", line)
    ]
    problems.expect(
        not stray,
        f".env.example must not carry DATABASE_URL (a `cargo run` on the host reads .env too): {stray}",
    )


# --- interpolation, for machines without a compose tool ---------------------------

VARIABLE = re.compile(r"\$(?:\$|\{(\w+)(?:(:?[-?])([^}]*))?\}|(\w+))")


def interpolate(value, environment: dict[str, str]):
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$."""
    if isinstance(value, dict):
        return {k: interpolate(v, environment) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, environment) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, argument = match.group(2), match.group(3) or ""
        current = environment.get(name)
        missing = current is None or (current == "" and operator in (":-", ":?"))
        if operator in (":?", "?") and missing:
            sys.exit(f'FATAL: docker-compose.yml: required variable {name} is missing: {argument}')
        if operator in (":-", "-") and missing:
            return argument
        return current or ""

    return VARIABLE.sub(one, value)


# --- commands ---------------------------------------------------------------------


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    if not isinstance(config, dict):
        sys.exit(f"FATAL: {path} is not a compose file")
    return config


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in ("check", "env", "resolve"):
        print(__doc__, file=sys.stderr)
        return 2
    config = load(sys.argv[2])
    if sys.argv[1] == "resolve":
        yaml.safe_dump(interpolate(config, dict(os.environ)), sys.stdout, sort_keys=False)
        return 0
    if sys.argv[1] == "check":
        problems = Problems()
        check_compose(config, problems)
        check_sources(problems)
        check_dockerfile(problems)
        for problem in problems.found:
            print(f"FAIL: {problem}", file=sys.stderr)
        return 1 if problems.found else 0

    # env: what the app container's process sees: the image's ENV, then compose's
    # environment, which wins.
    values = Dockerfile(ROOT / "Dockerfile").env()
    values.update(environment(config.get("services", {}).get("app", {})))
    sys.stdout.write("".join(f"{name}={value}\0" for name, value in values.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
