#!/usr/bin/env bash
# One entry point for a fresh machine (see README):
#   bash scripts/run.sh chat   install everything, index the seeds, start the web chat
#   bash scripts/run.sh test   install everything (browser included), run the whole test suite
#   bash scripts/run.sh install
# Every step is idempotent: a second run only checks what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

log() { printf '\n==> %s\n' "$*"; }

install_python() {
  # torch first, pinned to the local CPU build: any other spec pulls gigabytes of CUDA wheels.
  if ! "$PY" -c 'import torch,sys; sys.exit(0 if torch.__version__.startswith("2.13.0") else 1)' 2>/dev/null; then
    log "installing torch 2.13.0 (CPU)"
    "$PY" -m pip install torch==2.13.0
  fi
  # llama.cpp is compiled for a portable x86-64-v3 CPU (AVX2/FMA/F16C), not -march=native: on
  # hosts that advertise AVX-512/AMX, the native build's AMX kernels crash with a general
  # protection fault on the first multi-token decode (seen on this project's machines), and CI
  # machines are not the machine that built the wheel. `rag models install` then builds the same
  # llama.cpp source for this CPU's AVX-512/VNNI/BF16 (never AMX) and keeps it only if a self-test in
  # a child process passes (rag/llm/kernels.py); RAG_LLM_KERNELS=portable forces this build.
  # Speeds of both builds: benchmarks/results/llm.md.
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF}"
  log "installing the project and its dependencies (llama-cpp-python compiles once, ~7 min)"
  "$PY" -m pip install -e ".[local,test]"
  # a llama-cpp-python built natively before (or taken from pip's wheel cache) is rebuilt once
  if "$PY" -c 'import llama_cpp,sys; i=llama_cpp.llama_print_system_info().decode(); sys.exit(0 if ("AMX_INT8 = 1" in i or "AVX512 = 1" in i) else 1)' 2>/dev/null; then
    log "rebuilding llama-cpp-python without native AVX-512/AMX kernels (~7 min)"
    "$PY" -m pip install --force-reinstall --no-deps --no-cache-dir "llama-cpp-python==0.3.36"
  fi
}

install_models() {
  log "building models into the model cache (once)"
  rag models install
}

apt_install() {
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

install_ocr() {
  # Tesseract chi_tra reads traditional-script scans beside RapidOCR (rag/ingest/ocr/tesseract.py;
  # without it traditional pages are read by RapidOCR alone, ~6 % CER: benchmarks/results/ocr.md)
  if [ ! -x /usr/bin/tesseract ] || [ ! -e /usr/share/tesseract-ocr/5/tessdata/chi_tra.traineddata ]; then
    log "installing Debian's Tesseract (chi_sim, chi_tra) for scanned documents"
    apt_install tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-chi-tra
  fi
}

install_browser() {
  # Debian's chromium for the browser tests, and a CJK font so its screenshots show Chinese
  # text rather than empty boxes (a headless machine has none; the OCR tests draw their pages
  # with it)
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] || [ ! -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ]; then
    log "installing Debian's chromium and a CJK font for the browser tests"
    apt_install chromium chromium-driver fonts-wqy-zenhei
  fi
}

cmd=${1:-chat}
shift || true
case "$cmd" in
  install)
    install_python; install_models; install_ocr ;;
  chat)
    install_python; install_models; install_ocr
    log "starting the web chat (indexes the seeds on first start)"
    exec rag chat "$@" ;;
  test)
    install_python; install_models; install_ocr; install_browser
    log "running the test suite"
    exec "$PY" -m pytest "$@" ;;
  *)
    echo "usage: bash scripts/run.sh chat|test|install [args…]" >&2; exit 2 ;;
esac
