# Image for the api and worker services of docker-compose.yml (CPU image; the LLM runs in vLLM).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/rac
COPY pyproject.toml README.md ./
COPY app ./app
COPY migrations ./migrations
COPY schemas ./schemas
# torch's CPU wheels: the default index would bring a multi-GB CUDA build the api never uses.
# A portable llama.cpp build: a native one crashes on CPUs with AMX (see the Makefile).
ENV CMAKE_ARGS=-DGGML_NATIVE=OFF
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu .
ENV RAC_DATA_DIR=/var/lib/rac
EXPOSE 8000
CMD ["rac", "serve", "--host", "0.0.0.0", "--port", "8000"]
