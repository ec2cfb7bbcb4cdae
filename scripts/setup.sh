#!/usr/bin/env bash
# Installs everything livetranslate needs on a fresh Debian/Ubuntu machine:
# system packages, the project and its CPU models into .venv/, and the sample audio.
set -euo pipefail
cd "$(dirname "$0")/.."

# The images install less (no browser, no PulseAudio): they set these two.
# mbrola with German voices and SVOX Pico speak the natural test recording (livetranslate/quality/samples_natural.py);
# tmux runs the terminal view in a real terminal (tests/test_e2e_terminal.py)
read -r -a APT_PACKAGES <<< "${LIVETRANSLATE_APT_PACKAGES:-espeak-ng sox ffmpeg pulseaudio pulseaudio-utils libportaudio2 openssl chromium procps redis-server mbrola mbrola-de2 mbrola-de6 mbrola-de7 libttspico-utils tmux}"
EXTRAS=${LIVETRANSLATE_EXTRAS:-models,dashboard,test}
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done

# The voices live in Debian's contrib (mbrola) and non-free (its voices, Pico), Ubuntu's
# multiverse: add those components to the deb822 sources that lack them (no-op when present).
enable_apt_components() {
  local file changed=1
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    if grep -q '^URIs:.*debian' "$file" && grep -Eq '^Components:' "$file" \
        && grep -E '^Components:' "$file" | grep -Evq '\bnon-free\b'; then
      $SUDO sed -i -E '/^Components:/{/\bcontrib\b/!s/$/ contrib/;/\bnon-free\b/!s/$/ non-free/}' "$file"
      changed=0
    elif grep -q '^URIs:.*ubuntu' "$file" && grep -E '^Components:' "$file" | grep -Evq '\bmultiverse\b'; then
      $SUDO sed -i -E '/^Components:/{/\bmultiverse\b/!s/$/ multiverse/}' "$file"
      changed=0
    fi
  done
  # the one-line format (/etc/apt/sources.list): "deb URI suite main" gets contrib non-free
  if [ -f /etc/apt/sources.list ] && grep -Eq '^deb .*debian.* main' /etc/apt/sources.list \
      && grep -E '^deb .*debian.* main' /etc/apt/sources.list | grep -Evq '\bnon-free\b'; then
    $SUDO sed -i -E '/^deb .*debian.* main/{/\bcontrib\b/!s/$/ contrib/;/\bnon-free\b/!s/$/ non-free/}' \
      /etc/apt/sources.list
    changed=0
  fi
  return $changed
}

if ((${#missing[@]})); then
  SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)
  if [[ " ${missing[*]}" =~ \ (mbrola|libttspico) ]] && enable_apt_components; then
    echo "==> enabled the contrib/non-free (multiverse) apt components for the synthetic voices"
  fi
  echo "==> apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
# llama.cpp compiles from source: build it for a portable x86-64 with AVX2, not for this
# exact CPU (a native build used AMX/AVX-512 instructions that a virtual machine refused with
# SIGILL). Set CMAKE_ARGS yourself to build otherwise.
if [ "$(uname -m)" = x86_64 ]; then
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF}"
fi
echo "==> pip install -e '.[$EXTRAS]'"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$EXTRAS]" 2>&1 \
  | { grep -v "^WARNING: Location" || true; }
# The speaker encoder's weights come in the Resemblyzer wheel (15 MB), whose requirements
# would pull torch: installed without them (its pin is in pyproject.toml's models extra)
if [[ ",$EXTRAS," == *",models,"* ]]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps \
    "$(grep -o 'resemblyzer==[0-9.]*' pyproject.toml)" 2>&1 | { grep -v "^WARNING: Location" || true; }
fi
.venv/bin/python -c "import livetranslate, numpy; assert numpy.__version__ < '2'" \
  || { echo "install failed" >&2; exit 1; }
# checkov, the IaC scanner tests/test_deploy.py runs, in a venv of its own: its pins
# (packaging<24, importlib-metadata<8, ...) would downgrade the project's
if [[ ",$EXTRAS," == *",test,"* ]]; then
  echo "==> checkov into .cache/checkov-venv"
  [ -x .cache/checkov-venv/bin/python ] || "$PYTHON" -m venv .cache/checkov-venv
  .cache/checkov-venv/bin/python -m pip install -q --disable-pip-version-check checkov==3.3.30 2>&1 \
    | { grep -v "^WARNING: Location" || true; }
fi
echo "==> building the launcher's helper (keeps keys off the process list)"
.venv/bin/python -m livetranslate.launcher.native
echo "==> assembling models"
.venv/bin/livetranslate models fetch
# pip reuses a llama-cpp-python wheel from its cache whatever CMAKE_ARGS say now: one built
# natively on another CPU dies of SIGILL at its first token. Checked here, rebuilt if so.
if ! .venv/bin/python -m livetranslate.stages.llm.llamacpp >/dev/null 2>&1; then
  echo "==> llama.cpp does not run on this CPU (a wheel from pip's cache built for another): rebuilding it (about 10 minutes)"
  .venv/bin/python -m pip cache remove llama_cpp_python >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
    "$(grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)"
  .venv/bin/python -m livetranslate.stages.llm.llamacpp >/dev/null \
    || { echo "llama.cpp still does not run on this CPU: set CMAKE_ARGS for it and run this again" >&2; exit 1; }
fi
echo "==> setup done"
