# syntax=docker/dockerfile:1
# Build stage: install the locked dependencies into a virtualenv with uv.
FROM python:3.11-slim-bookworm AS build
ENV UV_PROJECT_ENVIRONMENT=/opt/venv UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN pip install --no-cache-dir "uv==0.13.9"
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev

# Runtime stage: the virtualenv and the code, run as an unprivileged user.
FROM python:3.11-slim-bookworm AS runtime
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=mlplatform.settings.production \
    MLPLATFORM_VAR_DIR=/var/lib/mlplatform \
    WEB_BIND=0.0.0.0 \
    PORT=8000
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app app \
    && mkdir -p /var/lib/mlplatform && chown 10001:10001 /var/lib/mlplatform
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=10001:10001 . .
RUN DJANGO_SECRET_KEY=collectstatic-only DJANGO_ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput -v 0 \
    && python -c "import pyseccomp, landlock"
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["gunicorn", "mlplatform.wsgi", "--config", "python:mlplatform.gunicorn"]
