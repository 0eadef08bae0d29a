# syntax=docker/dockerfile:1
# Build: docker build -t territory-service .
# Run:   docker run -p 8000:8000 -e DATABASE_URL=postgresql+asyncpg://user:pass@db/territory territory-service

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, so this layer is reused until pyproject.toml or constraints.txt change.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && pip install --constraint constraints.txt --requirement requirements.txt
# Then the service itself; the wheel carries the Alembic migrations.
COPY README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
RUN pip install --no-deps .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --create-home --home-dir /data territory
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATABASE_URL=sqlite+aiosqlite:////data/territory.db
WORKDIR /data
USER territory
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"
# Migrations run before the server starts; DATABASE_URL comes from the environment.
CMD ["sh", "-c", "territory-service migrate && exec territory-service serve"]
