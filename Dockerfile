FROM python:3.11-slim
WORKDIR /app
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md ./
COPY api api
COPY services services
COPY workers workers
COPY migrations migrations
# The server alone (no SDK): its own command, `lrlab-server`, runs it.
RUN pip install --no-cache-dir .
ENV LRLAB_DATA_DIR=/data LRLAB_API_HOST=0.0.0.0
EXPOSE 8765
CMD ["lrlab-server", "serve"]
