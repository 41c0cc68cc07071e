#!/usr/bin/env bash
# Makes build/sp-carry on a Debian/Ubuntu machine that has SentencePiece installed (launch/setup.sh
# installs it): the library, its headers and a sentencepiece.pc relative to its own directory, for
# the GPU image, which has no SentencePiece and no package registry. Carry it with the device
# tool (carry: ["build/sp-carry"]) and point PKG_CONFIG_PATH and LD_LIBRARY_PATH at it, as
# tests/lm_cuda/run_device.sh does. Idempotent.
# usage: bash tests/lm_cuda/make_sp_carry.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
carry=$root/build/sp-carry
lib=/usr/lib/$(gcc -print-multiarch)
[ -e "$lib/libsentencepiece.so" ] && [ -e /usr/include/sentencepiece_processor.h ] || {
  echo "make_sp_carry.sh: SentencePiece is not installed (run launch/setup.sh first)" >&2
  exit 1
}
rm -rf "$carry"
mkdir -p "$carry/lib/pkgconfig" "$carry/include"
cp -a "$lib"/libsentencepiece*.so* "$carry/lib/"
cp /usr/include/sentencepiece_processor.h /usr/include/sentencepiece_trainer.h "$carry/include/"
version=$(pkg-config --modversion sentencepiece)
cat > "$carry/lib/pkgconfig/sentencepiece.pc" <<PC
prefix=\${pcfiledir}/../..
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: sentencepiece
Description: Unsupervised text tokenizer and detokenizer for Neural Network-based text generation.
Version: $version
Libs: -L\${libdir} -lsentencepiece -lsentencepiece_train
Cflags: -I\${includedir}
PC
echo "build/sp-carry: SentencePiece $version ($(du -sh "$carry" | cut -f1))"
