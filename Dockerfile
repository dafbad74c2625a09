# The whole exchange with mock departments and embedded SQLite, on port 8000.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY catalog ./catalog
COPY services ./services
RUN pip install --no-cache-dir .
ENV EXCHANGE_HOST=0.0.0.0 \
    EXCHANGE_PORT=8000 \
    EXCHANGE_CATALOG_DIR=/app/catalog \
    EXCHANGE_SERVICES_DIR=/app/services \
    EXCHANGE_DATABASE_URL=sqlite:////data/exchange.db
VOLUME ["/data"]
EXPOSE 8000
CMD ["exchange", "up"]
