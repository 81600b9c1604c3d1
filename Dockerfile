# home-monitor: slim, multi-arch (amd64, arm64, arm/v7), non-root.
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 -t home-monitor .
# Plain Dockerfile syntax on purpose (no `# syntax=` line, no heredoc): it builds with the
# classic builder and BuildKit of Docker 20.10 (Debian's docker.io) and later, with no
# frontend image to pull. tests/test_container.py builds it with both.
# The build stage gets the compiler where needed (PyYAML has no arm/v7 wheel and builds from
# source there); the runtime stage gets only the finished virtualenv, so no build tool is left.
ARG PYTHON_IMAGE=python:3.13.9-slim-trixie

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
# A venv without pip of its own: the base image's pip installs into it. The compiler is only
# fetched where PyYAML has no wheel (arm/v7); amd64 and arm64 builds skip that download.
RUN python -m venv --without-pip /opt/home-monitor \
 && if ! pip --python /opt/home-monitor/bin/python install --no-compile --only-binary=PyYAML .; then \
      apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev libyaml-dev \
      && rm -rf /var/lib/apt/lists/* \
      && pip --python /opt/home-monitor/bin/python install --no-compile . ; \
    fi
COPY deploy/image/prune_botocore.py /tmp/
RUN python /tmp/prune_botocore.py /opt/home-monitor
RUN /opt/home-monitor/bin/python -m compileall -q -j 0 /opt/home-monitor/lib \
 && /opt/home-monitor/bin/python -c "import monitor.cli, boto3; boto3.session.Session().client('ec2', region_name='eu-west-2')"

FROM ${PYTHON_IMAGE}
# iperf3 (the iperf job runs it) and tzdata (TZ = local time in outage labels) from Debian.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iperf3 libyaml-0-2 tzdata \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/log/dpkg.log /var/log/apt \
 && groupadd --system --gid 10132 homemon \
 && useradd --system --uid 10132 --gid homemon --home-dir /var/lib/home-monitor --no-create-home \
      --shell /usr/sbin/nologin homemon \
 && install -d -o homemon -g homemon -m 0750 /var/lib/home-monitor \
 && install -d -m 0755 /etc/home-monitor
COPY --from=build /opt/home-monitor /opt/home-monitor
COPY config/home-monitor.yml /etc/home-monitor/home-monitor.yml
ENV PATH=/opt/home-monitor/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOMEMON_CONFIG=/etc/home-monitor/home-monitor.yml
USER homemon:homemon
WORKDIR /var/lib/home-monitor
VOLUME ["/var/lib/home-monitor"]
EXPOSE 10132
# No curl in the image: Python's urllib raises on anything but 2xx (503 = a job is stuck).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:10132/healthz', timeout=4)"]
ENTRYPOINT ["home-monitor"]
CMD ["run"]
