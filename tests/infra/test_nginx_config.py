"""The prod nginx template, rendered the way the nginx image's entrypoint renders it (envsubst of
the variables set in the container), then checked; `nginx -t` too when nginx is installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra/nginx/templates/default.conf.template"
CONTAINER_ENV = {
    "PUBLIC_HOSTNAME": "meetings.example.org",
    "MAX_UPLOAD_MB": "321",
    # Always present in the container: must not collide with nginx's own $variables.
    "HOSTNAME": "3f2a1b",
    "HOME": "/root",
    "PATH": "/usr/sbin:/usr/bin",
    "NGINX_VERSION": "1.28.0",
}


def render(env: dict[str, str]) -> str:
    """envsubst with an explicit list, as /docker-entrypoint.d/20-envsubst-on-templates.sh
    does: only the named variables are replaced, in both $NAME and ${NAME} forms."""
    text = TEMPLATE.read_text()
    for name, value in env.items():
        text = re.sub(rf"\$\{{{name}\}}|\${name}(?![A-Za-z0-9_])", lambda _m, v=value: v, text)
    return text


@pytest.fixture(scope="module")
def conf() -> str:
    return render(CONTAINER_ENV)


def _server_blocks(text: str) -> list[str]:
    return re.findall(r"^server \{\n.*?^\}", text, flags=re.S | re.M)


def test_every_template_variable_is_set_by_the_prod_service(conf):
    assert "${" not in conf
    assert "server_name meetings.example.org;" in conf
    # nginx's own variables survive rendering
    assert "$request_uri" in conf and "$proxy_add_x_forwarded_for" in conf


def test_uploads_are_limited_with_a_json_413(conf):
    assert "client_max_body_size 321m;" in conf
    assert "proxy_request_buffering off;" in conf
    body = re.search(r"return 413 '(.*)';", conf)
    assert body is not None
    assert "321 MB" in json.loads(body.group(1))["detail"]


def test_tls_server_sends_security_headers_and_no_location_drops_them(conf):
    http, https = _server_blocks(conf)
    assert "return 301 https://" in http
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in https
    for header in (
        "Strict-Transport-Security",
        "X-Content-Type-Options",
        "X-Frame-Options",
        "Referrer-Policy",
        "Content-Security-Policy",
    ):
        assert re.search(rf"^    add_header {header} .* always;$", https, flags=re.M), header
    # An add_header inside a location replaces every inherited one there.
    locations = re.findall(r"^    location [^\n]*\{\n.*?^    \}", https, flags=re.S | re.M)
    assert locations and not any("add_header" in block for block in locations)


def test_metrics_stay_inside_the_network(conf):
    block = re.search(r"location = /metrics \{.*?\}", conf, flags=re.S)
    assert block is not None and "return 404" in block.group(0)


def test_nginx_accepts_the_rendered_config(conf, tmp_path):
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:/usr/bin")
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light to run this check)")
    version = subprocess.run([str(nginx), "-v"], capture_output=True, text=True, check=False)
    major_minor = tuple(int(n) for n in re.findall(r"nginx/(\d+)\.(\d+)", version.stderr)[0])
    text = conf.replace("/etc/nginx/certs", str(tmp_path))
    text = re.sub(r"listen (\[::\]:)?(80|443)", r"listen \g<1>1\g<2>0", text)  # unprivileged
    if major_minor < (1, 25):  # `http2 on;` arrived in 1.25.1; the image runs 1.28
        text = text.replace("    http2 on;\n", "")
    (tmp_path / "default.conf").write_text(text)
    # The script the README tells users to run for a first, self-signed pair.
    subprocess.run(
        [str(ROOT / "scripts/make_tls_cert.sh"), "meetings.example.org", str(tmp_path)],
        capture_output=True,
        check=True,
    )
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_path}/body;\n"
        f"  proxy_temp_path {tmp_path}/proxy;\n  include {tmp_path}/default.conf;\n}}\n"
    )
    result = subprocess.run(
        [str(nginx), "-t", "-c", str(main)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
